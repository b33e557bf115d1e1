"""`gis db check` and `gis db repair`: find and repair damage in the event logs (the record)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gis.services.eventlog import Finding


def register(app: typer.Typer) -> None:
    """Add `check` and `repair` to the `gis db` group."""
    db_app = next(group.typer_instance for group in app.registered_groups if group.name == "db")
    if db_app is None:  # pragma: no cover - gis.cli defines the group before mounting commands
        raise RuntimeError("the gis db group is missing")
    db_app.command("check")(check)
    db_app.command("repair")(repair)


def check() -> None:
    """Report events dated in the future, events out of order within a case, and cases whose
    status disagrees with their last event; exit status 1 when any is found."""
    from gis.commands import command_session
    from gis.services import eventlog

    with command_session() as session:
        _no_time_limit(session)
        findings = eventlog.check(session)
    _print_findings(findings)
    if findings:
        raise typer.Exit(code=1)


def repair(
    commit: bool = typer.Option(False, help="Write the repairs (default: a dry run)"),
) -> None:
    """Repair what `gis db check` finds (docs/workflow.md says how, per kind); a dry run that
    prints what it would change unless --commit. Deleted events are printed as JSON lines."""
    import json

    from gis.commands import command_engine
    from gis.db import make_sessionmaker, translate_db_errors
    from gis.services import eventlog

    out = Console()
    with (
        command_engine() as engine,
        make_sessionmaker(engine)() as session,
        translate_db_errors(),
    ):
        _no_time_limit(session)
        result = eventlog.repair(session)
        if commit:
            session.commit()
        else:
            session.rollback()
    _print_findings(result.findings)
    for row in result.deleted:
        typer.echo(json.dumps(row, ensure_ascii=False, default=str))
    for change in result.changes:
        out.print(change, highlight=False)
    if not result.changes:
        out.print("nothing to repair")
    elif commit:
        out.print(f"repaired: {len(result.changes)} change(s) committed")
    else:
        out.print("dry run: nothing written; run `gis db repair --commit` to apply")


def _no_time_limit(session: Session) -> None:
    # A pass over every event of a province (~10M a year) outlasts the service's per-statement
    # limit (GIS_DB_STATEMENT_TIMEOUT_MS), which is meant for requests, not maintenance.
    import sqlalchemy as sa

    session.execute(sa.text("SET LOCAL statement_timeout = 0"))


def _print_findings(findings: list[Finding]) -> None:
    from collections import Counter

    out = Console()
    for finding in findings:
        event = "" if finding.event_id is None else f" event {finding.event_id}"
        out.print(
            f"{finding.damage.value}: {finding.log} {finding.case_id}{event}: {finding.detail}",
            highlight=False,
        )
    counts = Counter(finding.damage.value for finding in findings)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no damage"
    out.print(f"event logs: {summary}", highlight=False)
