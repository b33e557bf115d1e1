"""the live feed's ``cases.moved``: one event per town for a bulk re-assignment

Revision ID: 0022_writeback_moved
Revises: 0021_live_poll
Create Date: 2026-12-07 05:30:00

A county or province re-assignment moves hundreds of thousands of cases at once. One
``case.status`` feed row per moved case (the trigger of 0010_live) cost a fifth of the write-back
and told no screen anything useful: a subscriber that falls ``GIS_LIVE_QUEUE`` events behind is
sent ``reload`` anyway. A bulk job now writes its case events with the trigger off and publishes
one ``cases.moved`` row per affected town, which tells the town's screens to reload
(``gis.services.reassign``, docs/live.md).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022_writeback_moved"
down_revision: str | None = "0021_live_poll"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TYPES = (
    "'case.created', 'case.assigned', 'case.status', 'case.overdue', "
    "'unit.moved', 'unit.status', 'camera.status'"
)
BEFORE = f"type IN ({_TYPES})"
AFTER = f"type IN ({_TYPES}, 'cases.moved')"


def upgrade() -> None:
    """Allow the type ``cases.moved``."""
    op.drop_constraint(op.f("ck_live_events_type_allowed"), "live_events", type_="check")
    op.create_check_constraint(op.f("ck_live_events_type_allowed"), "live_events", AFTER)


def downgrade() -> None:
    """The ``cases.moved`` rows go (the feed is a 48-hour buffer, not history), then the type."""
    op.execute("DELETE FROM live_events WHERE type = 'cases.moved'")
    op.drop_constraint(op.f("ck_live_events_type_allowed"), "live_events", type_="check")
    op.create_check_constraint(op.f("ck_live_events_type_allowed"), "live_events", BEFORE)
