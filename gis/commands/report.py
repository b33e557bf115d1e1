"""`gis report`: report a case from the shell and print its assignment."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``gis report`` to the root command."""
    app.command("report")(report)


def report(
    category: str = typer.Option(..., help="Category code (see GET /categories)"),
    lon: float = typer.Option(..., help="Longitude in --crs"),
    lat: float = typer.Option(..., help="Latitude in --crs"),
    crs: str = typer.Option("EPSG:4326", help="EPSG:4326, EPSG:4490, GCJ-02 or BD-09"),
    description: str = typer.Option("", help="What happened"),
    reporter_kind: str = typer.Option(
        "hotline", help="grid_member, citizen, camera, hotline or system"
    ),
    reporter_id: str | None = typer.Option(None, help="Who reports (member id, phone…)"),
    idempotency_key: str | None = typer.Option(
        None, "--key", help="Idempotency key: re-running with it prints the first answer"
    ),
) -> None:
    """Report a case and print its grid, platform, unit and deadline."""
    from pydantic import ValidationError as PydanticValidationError
    from rich.console import Console
    from rich.table import Table

    from gis.commands import command_session, fail
    from gis.errors import ValidationError
    from gis.services.intake import IncidentReport, report_incident
    from gis.settings import get_settings

    settings = get_settings()
    try:
        body = IncidentReport.model_validate(
            {
                "category": category,
                "location": {"lon": lon, "lat": lat, "crs": crs},
                "description": description,
                "reporter": {"kind": reporter_kind, "id": reporter_id},
            }
        )
    except PydanticValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise fail(ValidationError(f"{where}: {first['msg']}")) from None
    with command_session(settings) as session:
        result = report_incident(session, body, settings=settings, idempotency_key=idempotency_key)
    d = result.incident
    table = Table(
        title=f"incident {d.id}" + ("" if result.created else " (already reported with this key)"),
        show_header=False,
    )
    table.add_column(style="bold")
    table.add_column()
    grid = f"{d.grid_code} {d.grid_name}" if d.grid_code else "— (outside every grid)"
    unit = (
        f"{d.unit_name} ({d.unit_code}), {d.unit_distance_m:,.0f} m"
        if d.unit_id is not None and d.unit_distance_m is not None
        else "— none"
    )
    for label, value in (
        ("status", d.status),
        ("category", f"{d.category_code} {d.category_name}"),
        ("platform", d.platform),
        ("location", f"{d.lon:.6f}, {d.lat:.6f} (WGS84; sent as {d.source_crs})"),
        ("quality", d.location_quality),
        ("grid", grid),
        ("member", d.member_name or "—"),
        ("village", f"{d.village_code} {d.village_name}" if d.village_code else "—"),
        ("town", f"{d.town_code} {d.town_name}" if d.town_code else "—"),
        ("unit", unit),
        ("note", d.unit_note or ""),
        ("due", d.due_at.isoformat(timespec="minutes") if d.due_at else "—"),
        ("cameras", ", ".join(c["code"] for c in d.cameras) or "—"),
        ("duplicates?", ", ".join(str(p["id"]) for p in d.possible_duplicates) or "—"),
    ):
        table.add_row(label, value)
    Console().print(table)
