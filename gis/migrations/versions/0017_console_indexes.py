"""the dispatch queue and the unit board read active cases by town and by unit

Revision ID: 0017_console
Revises: 0016_facts
Create Date: 2026-12-07 02:50:00

Both read only active cases (not resolved, not final), a small share of ``incidents``: the
queue of one town (``town_code``, by deadline) and the open cases each unit holds
(``unit_id``). Without these the queue filtered every open case of the county by town and the
board every open case per unit (``ix_incidents_open_due``), which grows with the county, not
with the town. Partial indexes: a closed case costs them nothing.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017_console"
down_revision: str | None = "0016_facts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As gis.layers.incidents.ACTIVE_WHERE when written (a migration keeps its own copy).
ACTIVE_WHERE = (
    "status IN ('accepted', 'assigned', 'escalated', 'in_progress', 'reported', 'returned')"
)


def upgrade() -> None:
    """Two partial indexes on active cases."""
    op.execute(
        "CREATE INDEX ix_incidents_town_active_due ON incidents (town_code, due_at) "
        f"WHERE {ACTIVE_WHERE}"
    )
    op.execute(f"CREATE INDEX ix_incidents_unit_active ON incidents (unit_id) WHERE {ACTIVE_WHERE}")


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_incidents_unit_active", table_name="incidents")
    op.drop_index("ix_incidents_town_active_due", table_name="incidents")
