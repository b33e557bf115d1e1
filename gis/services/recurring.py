"""Recurring problems (治标不治本): the same category at the same place, again and again, although
every case was closed — a sign that closing the cases did not fix the cause.

A group is a density cluster (``ST_ClusterDBSCAN``) of *closed* cases of one category reported
in the last ``weeks`` weeks before ``until``: every case of it lies within ``radius_m`` of a
case that has at least ``min_cases - 1`` others within ``radius_m`` (DBSCAN's core points), and
the group has at least ``min_cases`` cases. Distances are measured in the UTM zone of the cases'
centre (metres; ≤ 0.1 % off within a zone). docs/analytics.md has an example.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import shapely.wkb
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from gis.errors import ValidationError
from gis.geo import utm_crs_for
from gis.layers.categories import get_category
from gis.services.hotspots import check_years
from gis.services.mapdata import as_aware

DEFAULT_RADIUS_M = 100.0
DEFAULT_MIN_CASES = 3
DEFAULT_WEEKS = 8
RADIUS_RANGE_M = (5.0, 2000.0)
MIN_CASES_RANGE = (2, 100)
WEEKS_RANGE = (1, 104)


@dataclass(frozen=True)
class RecurringQuery:
    """Where and how to look for recurring problems."""

    until: datetime | None = None
    weeks: int = DEFAULT_WEEKS
    radius_m: float = DEFAULT_RADIUS_M
    min_cases: int = DEFAULT_MIN_CASES
    town_codes: tuple[str, ...] | None = None  # None: every town
    category: str | None = None


class RecurringCases(BaseModel):
    """Closed cases of one category that keep coming back at one place (a model: the API's
    properties of a group extend it)."""

    model_config = ConfigDict(frozen=True)

    category_code: str
    category_name: str
    platform: str
    town_code: str | None
    grid_codes: list[str]
    cases: int
    case_ids: list[int]
    first_reported_at: datetime
    last_reported_at: datetime
    spread_m: float  # the farthest case from the centre


class RecurringGroup(RecurringCases):
    """Recurring cases and the centre of their place."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    centre: BaseGeometry


@dataclass(frozen=True)
class RecurringResult:
    """The groups found, and the window they were looked for in."""

    since: datetime
    until: datetime
    radius_m: float
    min_cases: int
    groups: list[RecurringGroup]


_CASES_SQL = """
WITH cases AS (
    SELECT i.id, i.category_code, i.platform, i.town_code, i.grid_code, i.reported_at, i.geom
    FROM incidents AS i
    WHERE i.status = 'closed' AND i.reported_at >= :since AND i.reported_at < :until
      AND (CAST(:category AS text) IS NULL OR i.category_code = :category)
      AND (CAST(:all_towns AS boolean) OR i.town_code = ANY(:towns))
)
"""

# Both statements share the case filter; they are built from constants only.
_CENTRE_SQL = (
    _CASES_SQL  # noqa: S608
    + "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) AS c "
    "FROM cases) AS centre"
)

_GROUPS_SQL = (
    _CASES_SQL  # noqa: S608
    + """, clustered AS (
    SELECT c.*, ST_ClusterDBSCAN(ST_Transform(c.geom, :srid), eps => :radius,
                                 minpoints => :min_cases)
                OVER (PARTITION BY c.category_code) AS cluster
    FROM cases AS c
), groups AS (
    SELECT category_code, min(platform) AS platform, min(town_code) AS town_code,
           array_agg(DISTINCT grid_code) FILTER (WHERE grid_code IS NOT NULL) AS grid_codes,
           count(*) AS cases, array_agg(id ORDER BY reported_at, id) AS case_ids,
           min(reported_at) AS first_reported_at, max(reported_at) AS last_reported_at,
           ST_Centroid(ST_Collect(geom)) AS centre, ST_Collect(geom) AS points
    FROM clustered
    WHERE cluster IS NOT NULL
    GROUP BY category_code, cluster
    HAVING count(*) >= :min_cases
)
SELECT g.category_code, cat.name_zh || ' ' || cat.name_en AS category_name, g.platform,
       g.town_code, g.grid_codes,
       g.cases, g.case_ids, g.first_reported_at, g.last_reported_at,
       ST_AsBinary(g.centre) AS centre,
       (SELECT max(ST_Distance(g.centre::geography, d.geom::geography))
        FROM ST_Dump(g.points) AS d) AS spread_m
FROM groups AS g
JOIN categories AS cat ON cat.code = g.category_code
ORDER BY g.cases DESC, g.last_reported_at DESC, g.category_code
"""
)


def _check(query: RecurringQuery) -> None:
    low, high = RADIUS_RANGE_M
    if not low <= query.radius_m <= high:
        raise ValidationError(f"radius_m must be between {low:g} and {high:g} metres")
    low_n, high_n = MIN_CASES_RANGE
    if not low_n <= query.min_cases <= high_n:
        raise ValidationError(f"min_cases must be between {low_n} and {high_n}")
    low_w, high_w = WEEKS_RANGE
    if not low_w <= query.weeks <= high_w:
        raise ValidationError(f"weeks must be between {low_w} and {high_w}")


def find_recurring(
    session: Session, query: RecurringQuery, *, now: datetime | None = None
) -> RecurringResult:
    """Groups of closed cases of one category within ``radius_m`` of each other, in the window."""
    _check(query)
    check_years(query.until)
    if query.category is not None:
        get_category(session, query.category)
    until = as_aware(query.until or now or datetime.now().astimezone())
    since = until - timedelta(weeks=query.weeks)
    params: dict[str, object] = {
        "since": since,
        "until": until,
        "category": query.category,
        "all_towns": query.town_codes is None,
        "towns": list(query.town_codes or ()),
    }
    lon, lat = session.execute(sa.text(_CENTRE_SQL), params).one()
    groups: list[RecurringGroup] = []
    if lon is not None:
        srid = int(utm_crs_for(lon, lat).removeprefix("EPSG:"))
        rows = session.execute(
            sa.text(_GROUPS_SQL),
            {**params, "srid": srid, "radius": query.radius_m, "min_cases": query.min_cases},
        )
        groups = [_group(row) for row in rows]
    return RecurringResult(since, until, query.radius_m, query.min_cases, groups)


def _group(row: sa.Row[tuple[object, ...]]) -> RecurringGroup:
    centre = shapely.wkb.loads(bytes(row.centre))
    return RecurringGroup(
        category_code=row.category_code,
        category_name=row.category_name,
        platform=row.platform,
        town_code=row.town_code,
        grid_codes=sorted(row.grid_codes or []),
        cases=int(row.cases),
        case_ids=[int(i) for i in row.case_ids],
        first_reported_at=row.first_reported_at,
        last_reported_at=row.last_reported_at,
        centre=centre,
        spread_m=round(float(row.spread_m or 0.0), 1),
    )
