"""Every path that places a point gives the same answer: single-point locate, intake, the
set-based re-assignment and the demo loader, on the same random points and edge cases."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

import shapely
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.sample import bulk, load
from gis.services import reassign
from gis.services.assignment import locate
from gis.services.intake import report_incident
from gis.settings import Settings
from tests.services.intake_fixtures import make_report

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
RANDOM_POINTS = 40


@dataclass(frozen=True)
class Case:
    """A point to place and the category reported there."""

    lon: float
    lat: float
    category: str
    kind: str  # "random", "edge", "corner", "snapped" or "outside"


def _vertex_covered_by(session: Session, grids: int) -> tuple[float, float]:
    """A vertex of the lowest grid that exactly ``grids`` current grids cover."""
    row = session.execute(
        sa.text(
            "SELECT ST_X(d.geom), ST_Y(d.geom) FROM ("
            "  SELECT (ST_DumpPoints(g.geom)).geom FROM grids g WHERE g.valid_to IS NULL"
            "   ORDER BY g.code LIMIT 20000) AS d "
            "WHERE (SELECT count(*) FROM grids o WHERE o.valid_to IS NULL "
            "       AND ST_Covers(o.geom, d.geom)) = :n "
            "ORDER BY ST_X(d.geom), ST_Y(d.geom) LIMIT 1"
        ),
        {"n": grids},
    ).one()
    return float(row[0]), float(row[1])


def _cases(session: Session) -> list[Case]:
    rng = random.Random(20261206)
    categories = list(session.scalars(sa.text("SELECT code FROM categories ORDER BY code")))
    x0, y0, x1, y1 = session.execute(
        sa.text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom) AS e FROM grids WHERE valid_to IS NULL) AS x"
        )
    ).one()
    west = session.execute(
        sa.text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_DumpPoints(geom)).geom AS p FROM grids "
            "WHERE valid_to IS NULL) AS d ORDER BY ST_X(p), ST_Y(p) LIMIT 1"
        )
    ).one()
    points = [(rng.uniform(x0, x1), rng.uniform(y0, y1), "random") for _ in range(RANDOM_POINTS)]
    points += [
        (*_vertex_covered_by(session, 2), "edge"),
        (*_vertex_covered_by(session, 3), "corner"),
        (west[0] - 0.0002, west[1], "snapped"),  # ~20 m west of the westernmost grid
        (west[0] - 0.02, west[1], "outside"),  # ~2 km out: the town's queue
    ]
    return [Case(lon, lat, rng.choice(categories), kind) for lon, lat, kind in points]


def test_every_path_places_the_same_points_identically(
    demo: dict[str, object], session: Session, settings: Settings
) -> None:
    cases = _cases(session)
    params = {"snap_m": settings.snap_meters, "coverage_margin_m": settings.coverage_margin_m}

    located = [locate(session, c.lon, c.lat, at=NOW, **params) for c in cases]
    kinds = {c.kind: loc for c, loc in zip(cases, located, strict=True)}
    assert kinds["edge"].quality == "on_edge" and kinds["corner"].quality == "on_edge"
    assert kinds["snapped"].quality == "snapped" and kinds["outside"].quality == "outside"
    assert kinds["outside"].grid_code is None and kinds["outside"].town_code is not None
    assert {loc.quality for loc in located[:RANDOM_POINTS]} >= {"inside"}

    reported = [
        report_incident(
            session, make_report(c.lon, c.lat, category=c.category), settings=settings, now=NOW
        ).incident
        for c in cases
    ]

    # Re-assignment from scratch: forget the grids intake gave, then place the cases again.
    ids = [d.id for d in reported]
    session.execute(
        sa.text(
            "UPDATE incidents SET grid_id = NULL, grid_code = NULL, member_id = NULL "
            "WHERE id = ANY(:ids)"
        ),
        {"ids": ids},
    )
    area = shapely.box(min(c.lon for c in cases), min(c.lat for c in cases), 180, 90)
    reassign.compute_assignments(
        session,
        scope=reassign.CaseScope(area_wkb=shapely.to_wkb(area)),
        snap_m=settings.snap_meters,
    )
    moves = {
        row.incident_id: row
        for row in session.execute(
            sa.text(
                "SELECT incident_id, to_code, quality, to_member FROM reassign_moves "
                "WHERE incident_id = ANY(:ids)"
            ),
            {"ids": ids},
        )
    }

    # The demo loader, fed the same points as its staged cases (each drawn in the town locate
    # names: the loader knows the town it drew a case in).
    load._execute_script(session, load._STAGING)
    catalog = session.execute(
        sa.text("SELECT code, platform, unit_type, name_zh FROM categories ORDER BY code")
    ).all()
    category_idx = {row[0]: i for i, row in enumerate(catalog)}
    bulk.copy_rows(
        session,
        "sample_categories",
        ("idx", "code", "platform", "unit_type", "name_zh"),
        ((i, *row) for i, row in enumerate(catalog)),
    )
    towns = session.execute(
        sa.text("SELECT code, parent_code FROM regions WHERE level = 'town' ORDER BY code")
    ).all()
    town_idx = {code: i for i, (code, _) in enumerate(towns)}
    bulk.copy_rows(
        session,
        "sample_towns",
        ("idx", "code", "county_code"),
        ((i, code, county) for i, (code, county) in enumerate(towns)),
    )
    bulk.copy_rows(
        session,
        "sample_cases",
        ("id", "town", "category", "lon", "lat"),
        (
            (n, town_idx[loc.town_code], category_idx[c.category], c.lon, c.lat)
            for n, (c, loc) in enumerate(zip(cases, located, strict=True))
        ),
    )
    load.assign_cases(session)
    loaded = {
        row.id: row
        for row in session.execute(
            sa.text(
                "SELECT h.incident_id AS id, h.to_code, h.quality, n.member_id, n.unit_id "
                "FROM sample_hits h JOIN sample_nearest n ON n.id = h.incident_id"
            )
        )
    }

    for n, (case, loc, detail) in enumerate(zip(cases, located, reported, strict=True)):
        moved, staged = moves[detail.id], loaded[n]
        expected = (loc.grid_code, loc.quality.value, loc.member_id)
        assert (detail.grid_code, detail.location_quality, detail.member_id) == expected, case
        assert (moved.to_code, moved.quality, moved.to_member) == expected, case
        assert (staged.to_code, staged.quality, staged.member_id) == expected, case
        assert staged.unit_id == detail.unit_id, case
