"""What autogenerate compares: our tables, not PostGIS's, nor the indexes only SQL declares."""

from __future__ import annotations

from typing import Any

from geoalchemy2 import alembic_helpers

from gis.layers.incidents import PARTITION

# Expression and materialized-view indexes live in migrations only (SQLAlchemy cannot
# reflect ``(geom::geography)`` expressions back into the models).
SQL_ONLY_INDEXES = frozenset(
    {"ix_responder_units_geog", "ix_incidents_geog", "ix_grids_geog", "ix_roads_geog"}
)
# PostGIS's table, Alembic's, and the statistics' stored facts with their refresh log and
# pending cases (raw SQL in migrations 0005b and 0012, read and written only by
# gis.services.stats).
FOREIGN_TABLES = frozenset(
    {
        "spatial_ref_sys",
        "alembic_version",
        "stats_refreshes",
        "incident_facts",
        "stats_refresh_pending",
    }
)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's filter: skip PostGIS/pgRouting tables and SQL-only indexes."""
    if type_ == "table" and name in FOREIGN_TABLES:
        return False
    # The monthly partitions of the cases and the event log are made by migrations 0012 and
    # 0023 and `gis partitions ensure`, not by a model: the model is the partitioned table.
    if type_ == "table" and reflected and name is not None and PARTITION.match(name):
        return False
    # A foreign key to a partitioned table is also listed once per partition (PostgreSQL keeps
    # one internal constraint for each); the model declares the one on the partitioned table.
    if type_ == "foreign_key_constraint" and reflected and PARTITION.match(obj.referred_table.name):
        return False
    if type_ == "index" and name in SQL_ONLY_INDEXES:
        return False
    return bool(alembic_helpers.include_object(obj, name, type_, reflected, compare_to))
