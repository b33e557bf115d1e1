"""grids keep their geometry in Web Mercator too (a generated column), for vector tiles

Revision ID: 0019_tile_geom
Revises: 0018_plan_submit
Create Date: 2026-12-07 02:50:00

A grid tile transformed every grid it drew from EPSG:4326 to 3857 on every request: ~15 % of
the database's work for a z10 tile of ~700 grids (bench/ogc). ``geom_3857`` is computed by
PostgreSQL from ``geom`` on every insert and update (a STORED generated column), so no write
path can leave it out of step; tiles select and clip on it, through a GiST index on the current
grids.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019_tile_geom"
down_revision: str | None = "0018_plan_submit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the generated column and its index."""
    op.execute(
        "ALTER TABLE grids ADD COLUMN geom_3857 geometry(MULTIPOLYGON, 3857) "
        "GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED"
    )
    op.execute(
        "CREATE INDEX ix_grids_geom_3857_current ON grids USING gist (geom_3857) "
        "WHERE valid_to IS NULL"
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_grids_geom_3857_current", table_name="grids")
    op.drop_column("grids", "geom_3857")
