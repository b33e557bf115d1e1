"""available units by jurisdiction and type, for the unit choice of every path

Revision ID: 0020_units_pick
Revises: 0019_tile_geom
Create Date: 2026-12-07 04:00:00

``gis.services.assignment.unit_choice`` asks, per case, for the available units of one type in
one jurisdiction (the town, then the county) and whether there are any. With only the
single-column indexes PostgreSQL scanned the whole units table for each case: 2,108 units × 1.2M
demo cases at ×100 kept the demo loader's nearest-unit step running for over an hour. A partial
index (available units only): a busy or off-duty unit costs it nothing.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020_units_pick"
down_revision: str | None = "0019_tile_geom"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The partial index."""
    op.execute(
        "CREATE INDEX ix_responder_units_available ON responder_units "
        "(jurisdiction_code, unit_type) WHERE status = 'available'"
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_responder_units_available", table_name="responder_units")
