"""Where a point belongs: its grid (as of a date), village, town, county, grid member and unit.

The rules (DESIGN §3): the grid version in force that ``ST_Covers`` the point, the lowest code on
a shared edge; outside every grid but within the snap distance, the nearest grid ("snapped");
farther out, the queue of the town that covers the point, else of the county that covers it, else
of the nearest town within ``coverage_margin_m`` ("outside" — still saved, never dropped); beyond
that the point is not in the service area and ``OutsideCoverageError`` says how far it is. The
grid's member is its lowest-id active member; the unit is the nearest available unit of the
category's type with jurisdiction over the town, else the county, else any town of the county.

This module is the one home of these rules. They are written once, as SQL fragments
(``covering_grids``, ``snapped_grid``, ``grid_member``, ``unit_choice``), and composed two ways:

- one point (``LOCATE_CTES``): the hot path of every report, ONE statement whose steps are gated
  on the earlier ones finding nothing; ``gis.services.intake`` extends it with the unit;
- a set of points (``place_points``): the grids as the outer side of one join, for the
  re-assignment after a redraw (``gis.services.reassign``) and the demo loader (``gis.sample``).

``tests/services/test_assignment_paths.py`` runs every path on the same points and demands the
same answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import OutsideCoverageError
from gis.layers.incidents import LocationQuality
from gis.queries import Flow, Query, run
from gis.settings import DEFAULT_COVERAGE_MARGIN_M, DEFAULT_SNAP_M

# The query point, built server-side from bound parameters. Spelled inline (not joined from a
# CTE) wherever an index should serve it: the planner can only use a GiST index, and KNN
# ordering, against an expression of parameters.
POINT_SQL = "ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326)"
_GEOG = f"({POINT_SQL})::geography"
_VALID_AT = "g.valid_from <= :at AND (g.valid_to IS NULL OR g.valid_to > :at)"
CURRENT = "g.valid_to IS NULL"

# --- the rules, as SQL fragments over a point expression (module constants only) ----------------
# Each takes SQL text for a point (``POINT_SQL`` or a column such as ``p.geom``) and the validity
# condition of grid versions (``_VALID_AT`` for "as of :at", ``CURRENT`` for "in force now").


def covering_grids(point: str, valid: str) -> str:
    """Condition: grid ``g`` covers ``point`` (an edge counts) and is in force."""
    return f"ST_Covers(g.geom, {point}) AND {valid}"


# On a shared edge the lowest code wins, so the answer never flips.
GRID_TIE_BREAK = "g.code"


def edge_quality(covering_count: str) -> str:
    """The location quality of a covered point: ``on_edge`` when several grids cover it."""
    return f"CASE WHEN {covering_count} > 1 THEN 'on_edge' ELSE 'inside' END"


def snapped_grid(point: str, valid: str, *, only_if: str = "TRUE") -> str:
    """A query for the grid a point outside every grid snaps to (none beyond ``:snap_m``).

    Exact ellipsoidal distance, then the lowest code; the geography GiST index finds the few
    candidates within the snap distance. ``only_if`` gates the whole query (a one-time filter
    such as "no grid covers the point"), so a covered point costs nothing here."""
    geog = f"({point})::geography"
    return f"""SELECT g.id, g.code, g.village_code, g.town_code,
           ST_Distance(g.geom::geography, {geog}) AS d
      FROM grids AS g
     WHERE {only_if}
       AND ST_DWithin(g.geom::geography, {geog}, CAST(:snap_m AS float8)) AND {valid}
     ORDER BY d, {GRID_TIE_BREAK}
     LIMIT 1"""  # noqa: S608 -- module constants only


def grid_member(grid_code: str) -> str:
    """A scalar query for the member who handles a grid's cases: its lowest-id active member."""
    return f"""(SELECT gm.id FROM grid_member_grids AS gmg
              JOIN grid_members AS gm ON gm.id = gmg.member_id
             WHERE gmg.grid_code = {grid_code} AND gm.active
             ORDER BY gm.id LIMIT 1)"""  # noqa: S608 -- module constants only


def unit_choice(point: str, town: str, county: str, unit_type: str) -> str:
    """A query for the unit of a case (属地管理): an available unit of ``unit_type`` with
    jurisdiction over the town (tier 0), else over the county (1), else the nearest of any town
    of the same county (2); columns ``id``, ``d`` (metres) and ``tier``.

    Nearest by the exact ellipsoidal distance, ties by id. Each tier ranks its own units (a
    town or county holds a few of a type, found through the jurisdiction index) and is gated on
    the earlier tiers having no available unit of the type (a one-time filter): tier 2, which
    ranks the units of every town of the county, runs only for a case that needs it — at ×100
    (125 towns a county) ranking all three tiers for each of 1.2M demo cases took hours. Tiers 0
    and 1 and the gates are probes of the partial index of available units by (jurisdiction,
    type)."""
    available = f"u.unit_type = {unit_type} AND u.status = 'available'"
    distance = f"ST_Distance(u.geom::geography, ({point})::geography)"

    def none_in(code: str) -> str:
        # An index-only probe of ix_responder_units_available (jurisdiction, type).
        return (
            "NOT EXISTS (SELECT FROM responder_units AS x WHERE x.jurisdiction_code = "
            f"{code} AND x.unit_type = {unit_type} AND x.status = 'available')"
        )

    return f"""SELECT c.id, c.d, c.tier FROM (
        (SELECT u.id, {distance} AS d, 0 AS tier
           FROM responder_units AS u
          WHERE u.jurisdiction_code = {town} AND {available}
          ORDER BY d, u.id LIMIT 1)
        UNION ALL
        (SELECT u.id, {distance}, 1
           FROM responder_units AS u
          WHERE u.jurisdiction_code = {county} AND {available} AND {none_in(town)}
          ORDER BY 2, u.id LIMIT 1)
        UNION ALL
        (SELECT u.id, {distance}, 2
           FROM regions AS r
           JOIN responder_units AS u ON u.jurisdiction_code = r.code
          WHERE r.parent_code = {county} AND r.code IS DISTINCT FROM {town} AND {available}
            AND {none_in(town)} AND {none_in(county)}
          ORDER BY 2, u.id LIMIT 1)
      ) AS c
     ORDER BY c.tier
     LIMIT 1"""  # noqa: S608 -- module constants only


# Common table expressions ending in ``loc``: exactly one row describing where the point belongs.
# Parameters: lon, lat, at, snap_m, margin_m. Every later step is gated on the earlier ones
# finding nothing (one-time filters), so a point inside a grid costs one index probe.
LOCATE_CTES = f"""
covering AS (
    SELECT g.id, count(*) OVER () AS n
    FROM grids AS g
    WHERE {covering_grids(POINT_SQL, _VALID_AT)}
    ORDER BY {GRID_TIE_BREAK}
    LIMIT 1
),
snapped AS (
    {snapped_grid(POINT_SQL, _VALID_AT, only_if="NOT EXISTS (SELECT FROM covering)")}
),
picked AS (
    SELECT id, {edge_quality("n")} AS quality, CAST(NULL AS float8) AS snap_d
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
           {grid_member("g.code")} AS member_id
    FROM (SELECT 1) AS one
    LEFT JOIN picked AS p ON true
    LEFT JOIN grids AS g ON g.id = p.id
    LEFT JOIN queue AS q ON true
    LEFT JOIN regions AS t ON t.code = COALESCE(g.town_code, q.town_code)
)"""  # noqa: S608 -- only module constants are interpolated; values are bound parameters

# --- a set of points ----------------------------------------------------------------------------


def place_points(
    session: Session,
    points: str,
    *,
    into: str,
    params: Mapping[str, Any],
    carry: Sequence[str] = (),
    grids_first: bool = False,
) -> None:
    """Fill temp table ``into`` with the grid of every point of ``points`` under the grids in
    force: one row per point, columns ``incident_id``, the ``carry`` columns, ``to_grid_id``,
    ``to_code``, ``to_village``, ``to_town``, ``quality`` and ``snap_distance_m``.

    ``points`` is a relation (a table name or a parenthesised SELECT, module constants only)
    with columns ``id`` and ``geom`` and whatever ``carry`` names; ``params`` binds its
    parameters and ``snap_m``. Points no grid covers are few: each gets a nearest-grid probe.
    ``grids_first`` materialises the grids so the planner must put them on the outer side of
    the join (each polygon probes the points' GiST index once, DESIGN §4a); leave it off when
    ``points`` is a small scope the planner should drive the join from.
    """
    carried = "".join(f"p.{name}, " for name in carry)
    grids, with_grids = "grids AS g", ""
    if grids_first:
        # Materialised, the grids have no index left to probe, so the planner cannot pick the
        # point-outer plan (an index lookup per point; slower, see docs/architecture.md).
        grids = "g"
        with_grids = (
            "WITH g AS MATERIALIZED (SELECT id, code, village_code, town_code, geom, valid_to "  # noqa: S608 -- constants only
            f"FROM grids AS g WHERE {CURRENT})"
        )
    session.execute(
        sa.text(
            f"""
            CREATE TEMP TABLE {into} ON COMMIT DROP AS {with_grids}
            SELECT DISTINCT ON (p.id)
                   p.id AS incident_id, {carried}
                   g.id AS to_grid_id, g.code AS to_code, g.village_code AS to_village,
                   g.town_code AS to_town,
                   CAST({edge_quality("count(*) OVER (PARTITION BY p.id)")} AS varchar(10))
                       AS quality,
                   CAST(NULL AS float8) AS snap_distance_m
              FROM {grids}
              JOIN {points} AS p ON {covering_grids("p.geom", CURRENT)}
             ORDER BY p.id, {GRID_TIE_BREAK}
            """  # noqa: S608 -- module constants only; values are bound parameters
        ),
        params,
    )
    # Index first: the anti-join below and every later keyed lookup find rows by point id.
    session.execute(sa.text(f"CREATE UNIQUE INDEX ON {into} (incident_id)"))
    session.execute(sa.text(f"ANALYZE {into}"))
    session.execute(
        sa.text(
            f"""
            INSERT INTO {into}
            SELECT p.id, {carried} n.id, n.code, n.village_code, n.town_code,
                   CASE WHEN n.id IS NULL THEN 'outside' ELSE 'snapped' END, n.d
              FROM {points} AS p
              LEFT JOIN LATERAL ({snapped_grid("p.geom", CURRENT)}) AS n ON TRUE
             WHERE NOT EXISTS (SELECT 1 FROM {into} AS m WHERE m.incident_id = p.id)
            """  # noqa: S608 -- module constants only; values are bound parameters
        ),
        params,
    )


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
class Placement:
    """The grid a point or case belongs to, its member, and its village, town and county (codes
    and names); the grid's fields are None outside every grid."""

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


@dataclass(frozen=True)
class Location(Placement):
    """Where a point belongs; the grid's fields are None when the quality is ``outside``."""

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
    values = {f.name: row[f.name] for f in fields(Location)}
    return Location(**{**values, "quality": LocationQuality(row["quality"])})


def locate(
    session: Session,
    lon: float,
    lat: float,
    *,
    at: datetime | None = None,
    snap_m: float = DEFAULT_SNAP_M,
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
    snap_m: float = DEFAULT_SNAP_M,
    coverage_margin_m: float = DEFAULT_COVERAGE_MARGIN_M,
) -> Flow[Location]:
    """``locate`` as a flow (``gis.queries``): the API runs it on asyncpg."""
    at = at or datetime.now(UTC)
    params = locate_params(lon, lat, at=at, snap_m=snap_m, coverage_margin_m=coverage_margin_m)
    row = yield Query(_LOCATE_SQL, params)
    if not row["covered"]:
        raise outside_coverage(lon, lat, row["outside_distance_m"])
    return location_from_row(row)
