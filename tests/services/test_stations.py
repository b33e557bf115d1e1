"""Station siting (p-median by drive time) on a lattice town with a road grid: the sites go to
the clusters of cases, every drive time is dispatch's own (``routing.drive_times``), the solver
matches brute force, and bad input is refused with the reason."""

from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy.orm import Session

from gis.errors import NotFoundError, UnknownCodeError, ValidationError
from gis.layers.units import ResponderUnit
from gis.services import routing, stations
from gis.services.stations import StationSitingQuery
from gis.settings import Settings
from tests.services.analytics_fixtures import (
    CELL,
    ORIGIN,
    TOWN,
    WEEK_0,
    add_case_points,
    build_lattice,
)

ROWS = COLS = 6
PERIOD = {"since": WEEK_0 - timedelta(days=1), "until": WEEK_0 + timedelta(days=7)}
OPTIONS = routing.RouteOptions()
NODE_0 = 9_800_000


def node_id(r: int, c: int) -> int:
    """The road node at lattice corner (r, c)."""
    return NODE_0 + r * 100 + c


def corner(r: int, c: int) -> tuple[float, float]:
    """Lon/lat of lattice corner (r, c)."""
    return ORIGIN[0] + c * CELL, ORIGIN[1] + r * CELL


def add_road_grid(session: Session) -> None:
    """A road along every lattice edge, corner to corner, 30 km/h, noded at the corners."""
    n = 0
    for r in range(ROWS + 1):
        for c in range(COLS + 1):
            for r2, c2 in ((r, c + 1), (r + 1, c)):
                if r2 > ROWS or c2 > COLS:
                    continue
                n += 1
                (ax, ay), (bx, by) = corner(r, c), corner(r2, c2)
                session.execute(
                    sa.text(
                        "INSERT INTO roads (id, name, road_class, speed_kmh, oneway, length_m, "
                        "source, target, geom) VALUES (:id, :name, 'residential', 30, false, "
                        "ST_Length(ST_SetSRID(ST_MakeLine(ST_MakePoint(:ax, :ay), "
                        "ST_MakePoint(:bx, :by)), 4326)::geography), :s, :t, "
                        "ST_SetSRID(ST_MakeLine(ST_MakePoint(:ax, :ay), ST_MakePoint(:bx, :by)), "
                        "4326))"
                    ),
                    {
                        "id": 9_800_000 + n,
                        "name": f"站路{n}",
                        "ax": ax, "ay": ay, "bx": bx, "by": by,
                        "s": node_id(r, c),
                        "t": node_id(r2, c2),
                    },
                )  # fmt: skip
    session.flush()


def add_market_cases(session: Session) -> None:
    """Market cases crowded near corners (1, 1) and (5, 4), a few scattered elsewhere."""
    rng = np.random.default_rng(19)
    points = []
    for (r, c), n in (((1, 1), 60), ((5, 4), 40)):
        lon, lat = corner(r, c)
        points += [
            (lon + dx, lat + dy) for dx, dy in rng.normal(0, CELL * 0.15, size=(n, 2)).tolist()
        ]
    points += [
        (ORIGIN[0] + x * COLS * CELL, ORIGIN[1] + y * ROWS * CELL)
        for x, y in rng.uniform(0.02, 0.98, size=(12, 2)).tolist()
    ]
    add_case_points(
        session, points, reported=[WEEK_0] * len(points), category="food_safety", platform="market"
    )


def add_market_unit(session: Session, code: str, lon: float, lat: float) -> int:
    """A market office of the lattice town at a WGS84 point."""
    unit = ResponderUnit(
        code=code,
        name=code,
        platform="market",
        unit_type="market_office",
        jurisdiction_code=TOWN,
        status="available",
        geom=from_shape(Point(lon, lat), srid=4326),
    )
    session.add(unit)
    session.flush()
    return unit.id


@pytest.fixture
def town(session: Session, catalog: int) -> None:
    build_lattice(session, ROWS, COLS)
    add_road_grid(session)
    add_market_cases(session)
    # Today's one market office stands in the far north-west corner.
    add_market_unit(session, "98-MKT", *corner(ROWS, 0))


def test_sites_go_to_the_clusters_and_drives_get_shorter(
    session: Session, town: None, settings: Settings
) -> None:
    result = stations.site_stations(
        session, StationSitingQuery(TOWN, "market", 2, **PERIOD), settings=settings
    )
    assert {s.node for s in result.stations} == {node_id(1, 1), node_id(5, 4)}
    assert result.stations[0].node == node_id(1, 1) and result.stations[0].cases >= 60
    assert result.after["mean_s"] < result.before["mean_s"]
    assert result.after["p90_s"] < result.before["p90_s"]
    assert result.current_units == ["98-MKT"] and result.cases == 112
    assert result.solution.gap <= 1e-6
    assert result.solution.bound <= result.solution.objective + 1e-6
    body = result.result()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 2
    assert body["table"]["columns"][:2] == ["rank", "node"] and len(body["table"]["rows"]) == 2
    assert body["summary"]["before"]["mean_s"] == result.before["mean_s"]
    assert all(f["properties"]["grid"] for f in body["features"])


def test_every_drive_time_is_dispatchs_drive_time(
    session: Session, town: None, settings: Settings
) -> None:
    options = routing.RouteOptions.from_settings(settings)
    _, nodes = stations.candidate_nodes(session, TOWN, 300)
    cases = session.execute(
        sa.text(
            "SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM incidents "
            "WHERE town_code = :town AND platform = 'market' ORDER BY id"
        ),
        {"town": TOWN},
    ).all()
    units = session.execute(
        sa.text(
            "SELECT id, code, name, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM responder_units "
            "WHERE code = '98-MKT'"
        )
    ).all()
    matrix = stations.drive_matrix(session, cases, nodes, units, options)
    assert matrix.times.shape == (len(cases), len(nodes)) and matrix.off_network == 0
    # Units standing on three candidate nodes, timed by dispatch for a sample of cases.
    picks = [0, len(nodes) // 2, len(nodes) - 1]
    unit_ids = [add_market_unit(session, f"98-AT-{j}", nodes[j].lon, nodes[j].lat) for j in picks]
    for i in range(0, len(cases), 17):
        times = routing.drive_times(
            session, cases[i].lon, cases[i].lat, [*unit_ids, units[0].id], options=options
        )
        for j, unit_id in zip(picks, unit_ids, strict=True):
            assert times[unit_id].eta_s == pytest.approx(matrix.times[i, j], abs=0.5)
        assert times[units[0].id].eta_s == pytest.approx(matrix.current[i], abs=1e-6)


def test_solver_matches_brute_force_and_its_bound_holds() -> None:
    rng = np.random.default_rng(5)
    costs = rng.uniform(30, 900, size=(40, 12))
    reduced = stations.Reduced(np.arange(40), costs, rng.integers(1, 6, 40).astype(float))
    best = min(
        stations.assigned_cost(reduced, np.array(combo))
        for combo in itertools.combinations(range(12), 3)
    )
    for nearest in (25, 2):  # all candidates kept; two kept, the rest by fallback and rounds
        solution = stations.solve_pmedian(reduced, 3, time_limit_s=30, nearest=nearest)
        assert solution.objective == pytest.approx(best)
        assert solution.bound <= solution.objective + 1e-6 and solution.gap <= 1e-6
        assert stations.assigned_cost(reduced, solution.chosen) == pytest.approx(best)


def test_thinning_keeps_one_junction_per_cell() -> None:
    nodes = [stations.Node(n, 112.0 + n * 1e-5, 28.0, 2) for n in range(50)]
    nodes[7] = stations.Node(7, nodes[7].lon, 28.0, 4)
    kept = stations.thin(nodes, 10)
    assert len(kept) <= 10 and any(n.id == 7 for n in kept)


@pytest.mark.parametrize(
    ("query", "error", "match"),
    [
        (StationSitingQuery(TOWN, "market", 50, max_candidates=10, **PERIOD), ValidationError,
         "more than the"),
        (StationSitingQuery(TOWN, "police", 1, **PERIOD), UnknownCodeError, "unknown platform"),
        (StationSitingQuery(TOWN, "service", 1, **PERIOD), ValidationError, "only 0 service"),
        (StationSitingQuery(TOWN, "market", 0, **PERIOD), ValidationError, "k must be"),
        (StationSitingQuery("999999999999", "market", 1, **PERIOD), NotFoundError, "town"),
    ],
)  # fmt: skip
def test_bad_input_is_refused(
    session: Session, town: None, query: StationSitingQuery, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        stations.check(session, query.params())


def test_a_town_without_roads_is_refused(session: Session, catalog: int) -> None:
    build_lattice(session, ROWS, COLS)
    add_market_cases(session)
    with pytest.raises(ValidationError, match="no road network"):
        stations.check(session, StationSitingQuery(TOWN, "market", 1, **PERIOD).params())
