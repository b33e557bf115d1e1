"""Where a point belongs: its grid (as of a date), village, town, county and grid member.

The rules (DESIGN §3): the grid version in force that ``ST_Covers`` the point, the lowest code on
a shared edge; outside every grid but within the snap distance, the nearest grid ("snapped");
farther out, the queue of the town that covers the point, else of the county that covers it, else
of the nearest town within ``coverage_margin_m`` ("outside" — still saved, never dropped); beyond
that the point is not in the service area and ``OutsideCoverageError`` says how far it is.

This is the hot path of every report, so the whole decision is ONE SQL statement. Its common
table expressions (``LOCATE_CTES``) are also the first half of the intake statement in
``gis.services.intake``: one implementation of the query, used by both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import OutsideCoverageError
from gis.layers.incidents import LocationQuality
from gis.queries import Flow, Query, run

DEFAULT_COVERAGE_MARGIN_M = 50_000.0

# The query point, built server-side from bound parameters. Spelled inline (not joined from a
# CTE) wherever an index should serve it: the planner can only use a GiST index, and KNN
# ordering, against an expression of parameters.
POINT_SQL = "ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326)"
_GEOG = f"({POINT_SQL})::geography"
_VALID_AT = "g.valid_from <= :at AND (g.valid_to IS NULL OR g.valid_to > :at)"

# Common table expressions ending in ``loc``: exactly one row describing where the point belongs.
# Parameters: lon, lat, at, snap_m, margin_m. Every later step is gated on the earlier ones
# finding nothing (one-time filters), so a point inside a grid costs one index probe.
LOCATE_CTES = f"""
covering AS (
    SELECT g.id, count(*) OVER () AS n
    FROM grids AS g
    WHERE ST_Covers(g.geom, {POINT_SQL}) AND {_VALID_AT}
    ORDER BY g.code
    LIMIT 1
),
snapped AS (
    SELECT g.id, ST_Distance(g.geom::geography, {_GEOG}) AS d
    FROM grids AS g
    WHERE NOT EXISTS (SELECT FROM covering)
      AND ST_DWithin(g.geom::geography, {_GEOG}, CAST(:snap_m AS float8))
      AND {_VALID_AT}
    ORDER BY d, g.code
    LIMIT 1
),
picked AS (
    SELECT id, CASE WHEN n > 1 THEN 'on_edge' ELSE 'inside' END AS quality,
           CAST(NULL AS float8) AS snap_d
    FROM covering
    UNION ALL
    SELECT id, 'snapped', d FROM snapped
),
town_queue AS (
    SELECT t.code AS town_code, t.parent_code AS county_code, CAST(0 AS float8) AS d
    FROM regions AS t
    WHERE NOT EXISTS (SELECT FROM picked)
      AND t.level = 'town' AND ST_Covers(t.geom, {POINT_SQL})
    ORDER BY t.code
    LIMIT 1
),
county_queue AS (
    SELECT CAST(NULL AS varchar) AS town_code, c.code AS county_code, CAST(0 AS float8) AS d
    FROM regions AS c
    WHERE NOT EXISTS (SELECT FROM picked) AND NOT EXISTS (SELECT FROM town_queue)
      AND c.level = 'county' AND ST_Covers(c.geom, {POINT_SQL})
    ORDER BY c.code
    LIMIT 1
),
near_towns AS (
    -- Planar KNN picks candidates through the GiST index; the exact ellipsoidal distance
    -- re-ranks them below (degrees are not metres).
    SELECT t.code, t.parent_code, t.geom
    FROM regions AS t
    WHERE NOT EXISTS (SELECT FROM picked) AND NOT EXISTS (SELECT FROM town_queue)
      AND NOT EXISTS (SELECT FROM county_queue) AND t.level = 'town'
    ORDER BY t.geom <-> {POINT_SQL}
    LIMIT 8
),
nearest_town AS (
    SELECT code AS town_code, parent_code AS county_code,
           ST_Distance(geom::geography, {_GEOG}) AS d
    FROM near_towns
    ORDER BY d, code
    LIMIT 1
),
queue AS (
    SELECT * FROM town_queue
    UNION ALL SELECT * FROM county_queue
    UNION ALL SELECT * FROM nearest_town
),
loc AS (
    SELECT p.id AS grid_id, g.code AS grid_code, g.name AS grid_name,
           COALESCE(p.quality, 'outside') AS quality, p.snap_d AS snap_distance_m,
           g.village_code, COALESCE(g.town_code, q.town_code) AS town_code,
           COALESCE(t.parent_code, q.county_code) AS county_code,
           q.d AS outside_distance_m,
           (p.id IS NOT NULL OR q.d <= CAST(:margin_m AS float8)) AS covered,
           (SELECT gm.id FROM grid_member_grids AS gmg
              JOIN grid_members AS gm ON gm.id = gmg.member_id
             WHERE gmg.grid_code = g.code AND gm.active
             ORDER BY gm.id LIMIT 1) AS member_id
    FROM (SELECT 1) AS one
    LEFT JOIN picked AS p ON true
    LEFT JOIN grids AS g ON g.id = p.id
    LEFT JOIN queue AS q ON true
    LEFT JOIN regions AS t ON t.code = COALESCE(g.town_code, q.town_code)
)"""  # noqa: S608 -- only module constants are interpolated; values are bound parameters

_LOCATE_SQL = sa.text(
    f"""
WITH {LOCATE_CTES}
SELECT loc.*, v.name AS village_name, t.name AS town_name, c.name AS county_name,
       m.name AS member_name
FROM loc
LEFT JOIN regions AS v ON v.code = loc.village_code
LEFT JOIN regions AS t ON t.code = loc.town_code
LEFT JOIN regions AS c ON c.code = loc.county_code
LEFT JOIN grid_members AS m ON m.id = loc.member_id
"""  # noqa: S608 -- only module constants are interpolated; values are bound parameters
)


@dataclass(frozen=True)
class Location:
    """Where a point belongs; grid fields are None when the quality is ``outside``."""

    grid_id: int | None
    grid_code: str | None
    grid_name: str | None
    village_code: str | None
    village_name: str | None
    town_code: str | None
    town_name: str | None
    county_code: str | None
    county_name: str | None
    member_id: int | None
    member_name: str | None
    quality: LocationQuality
    snap_distance_m: float | None
    # Metres to the queue's town when the point lies outside every town (0 inside one).
    outside_distance_m: float | None = None


def locate_params(
    lon: float, lat: float, *, at: datetime, snap_m: float, coverage_margin_m: float
) -> dict[str, Any]:
    """The bound parameters of ``LOCATE_CTES``."""
    return {
        "lon": float(lon),
        "lat": float(lat),
        "at": at,
        "snap_m": float(snap_m),
        "margin_m": float(coverage_margin_m),
    }


def outside_coverage(lon: float, lat: float, distance_m: float | None) -> OutsideCoverageError:
    """The error for a point too far from every town the service knows."""
    if distance_m is None:
        return OutsideCoverageError(
            f"the point ({lon}, {lat}) is not in the service area: no town or county is loaded",
            lon=lon,
            lat=lat,
        )
    return OutsideCoverageError(
        f"the point ({lon}, {lat}) is not in the service area: the nearest town is "
        f"{distance_m / 1000:.1f} km away; check the coordinates and their crs",
        lon=lon,
        lat=lat,
        distance_m=round(distance_m, 1),
    )


def location_from_row(row: Mapping[str, Any]) -> Location:
    """A ``Location`` from a row (mapping) carrying the ``loc`` columns and the names."""
    return Location(
        grid_id=row["grid_id"],
        grid_code=row["grid_code"],
        grid_name=row["grid_name"],
        village_code=row["village_code"],
        village_name=row["village_name"],
        town_code=row["town_code"],
        town_name=row["town_name"],
        county_code=row["county_code"],
        county_name=row["county_name"],
        member_id=row["member_id"],
        member_name=row["member_name"],
        quality=LocationQuality(row["quality"]),
        snap_distance_m=row["snap_distance_m"],
        outside_distance_m=row["outside_distance_m"],
    )


def locate(
    session: Session,
    lon: float,
    lat: float,
    *,
    at: datetime | None = None,
    snap_m: float = 50.0,
    coverage_margin_m: float = DEFAULT_COVERAGE_MARGIN_M,
) -> Location:
    """The grid, village, town, county and member of a WGS84 point as of ``at`` (default now)."""
    return run(
        session, locate_flow(lon, lat, at=at, snap_m=snap_m, coverage_margin_m=coverage_margin_m)
    )


def locate_flow(
    lon: float,
    lat: float,
    *,
    at: datetime | None = None,
    snap_m: float = 50.0,
    coverage_margin_m: float = DEFAULT_COVERAGE_MARGIN_M,
) -> Flow[Location]:
    """``locate`` as a flow (``gis.queries``): the API runs it on asyncpg."""
    at = at or datetime.now(UTC)
    params = locate_params(lon, lat, at=at, snap_m=snap_m, coverage_margin_m=coverage_margin_m)
    row = yield Query(_LOCATE_SQL, params)
    if not row["covered"]:
        raise outside_coverage(lon, lat, row["outside_distance_m"])
    return location_from_row(row)
