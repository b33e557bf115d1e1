"""Dispatch: unit position track (AVL), geography indexes for snapping to roads.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create unit_positions and the geography indexes used by routing and coverage."""
    op.create_table(
        "unit_positions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column(
            "geom",
            Geometry(geometry_type="POINT", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column("source_crs", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["responder_units.id"],
            name=op.f("fk_unit_positions_unit_id_responder_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_positions")),
    )
    op.create_index("ix_unit_positions_unit_recorded", "unit_positions", ["unit_id", "recorded_at"])
    op.create_index("idx_unit_positions_geom", "unit_positions", ["geom"], postgresql_using="gist")
    # Snapping a point to the nearest road orders by geography distance (exact on the sphere,
    # unlike planar degrees), so the expression needs its own GiST index.
    op.execute("CREATE INDEX ix_roads_geog ON roads USING gist ((geom::geography))")


def downgrade() -> None:
    """Drop what upgrade created."""
    op.execute("DROP INDEX IF EXISTS ix_roads_geog")
    op.drop_index("idx_unit_positions_geom", table_name="unit_positions")
    op.drop_index("ix_unit_positions_unit_recorded", table_name="unit_positions")
    op.drop_table("unit_positions")
