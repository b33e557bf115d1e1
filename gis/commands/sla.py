"""`gis sla sweep`: flag overdue cases and escalate those overdue too long (run it from cron);
`gis sla preview`: what a sweep at a given time would do, without writing."""

from __future__ import annotations

import typer
from rich.console import Console

from gis.commands import command_group

sla_app = command_group("sla", "Time limits (限时办结): the overdue sweep.")

ESCALATE_HELP = "Escalate cases overdue by more than this many hours (GIS_SLA_ESCALATE_AFTER_H)"


def _run(at: str | None, escalate_after: float | None, *, write: bool) -> None:
    from datetime import datetime

    from gis.commands import command_session, fail
    from gis.errors import ValidationError
    from gis.layers.base import utcnow
    from gis.services import sla
    from gis.settings import get_settings

    settings = get_settings()
    try:
        clock = datetime.fromisoformat(at) if at else utcnow()
    except ValueError:
        example = "2026-03-10T12:00+08:00"
        error = ValidationError(f"--at {at!r} is not ISO 8601 (e.g. {example})")
        raise fail(error) from None
    threshold = settings.sla_escalate_after_h if escalate_after is None else escalate_after
    with command_session(settings) as session:
        if write:
            result = sla.sweep(session, now=clock, escalate_after_hours=threshold)
        else:
            result = sla.preview(session, at=clock, escalate_after_hours=threshold)
    verbs = ("flagged", "escalated") if write else ("would flag", "would escalate")
    Console().print(
        f"{result.now.isoformat(timespec='seconds')}: {verbs[0]} {len(result.flagged_ids)} "
        f"overdue, {verbs[1]} {len(result.escalated_ids)} "
        f"(overdue > {result.escalate_after_hours:g} h)"
    )


@sla_app.command("sweep")
def sweep_command(
    escalate_after: float | None = typer.Option(None, help=ESCALATE_HELP),
) -> None:
    """Flag open cases past their deadline; escalate those overdue too long to the county.
    Runs at the server's time: the events it writes are the record (no --now; see preview)."""
    _run(None, escalate_after, write=True)


@sla_app.command("preview")
def preview_command(
    at: str | None = typer.Option(
        None, help="Imagine the sweep at this time, ISO 8601 with a zone (default: now)"
    ),
    escalate_after: float | None = typer.Option(None, help=ESCALATE_HELP),
) -> None:
    """What a sweep at --at would flag and escalate, given the cases as they stand; writes
    nothing."""
    _run(at, escalate_after, write=False)
