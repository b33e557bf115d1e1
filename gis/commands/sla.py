"""`gis sla sweep`: flag overdue cases and escalate those overdue too long (run it from cron)."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.console import Console

sla_app = typer.Typer(help="Time limits (限时办结): the overdue sweep.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Mount `gis sla`."""
    app.add_typer(sla_app, name="sla")


@sla_app.command("sweep")
def sweep_command(
    now: str | None = typer.Option(
        None, help="The sweep's clock, ISO 8601 with a zone (default: now); for replays"
    ),
    escalate_after: float | None = typer.Option(
        None, help="Escalate cases overdue by more than this many hours (GIS_SLA_ESCALATE_AFTER_H)"
    ),
) -> None:
    """Flag open cases past their deadline; escalate those overdue too long to the county."""
    from gis.commands import command_session, fail
    from gis.errors import ValidationError
    from gis.layers.base import utcnow
    from gis.services import sla
    from gis.settings import get_settings

    settings = get_settings()
    try:
        clock = datetime.fromisoformat(now) if now else utcnow()
    except ValueError:
        example = "2026-03-10T12:00+08:00"
        error = ValidationError(f"--now {now!r} is not ISO 8601 (e.g. {example})")
        raise fail(error) from None
    threshold = settings.sla_escalate_after_h if escalate_after is None else escalate_after
    with command_session(settings) as session:
        result = sla.sweep(session, now=clock, escalate_after_hours=threshold)
    Console().print(
        f"{result.now.isoformat(timespec='seconds')}: flagged {len(result.flagged_ids)} overdue, "
        f"escalated {len(result.escalated_ids)} (overdue > {result.escalate_after_hours:g} h)"
    )
