"""Camera siting (MCLP): coverage recomputed in PostGIS, the optimum checked by brute force on a
small instance, the reductions keep the optimum, bad input is refused."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from scipy import sparse
from sqlalchemy.orm import Session

from gis.errors import NotFoundError, ValidationError
from gis.services import siting
from gis.services.siting import CameraSitingQuery
from gis.services.stations import StationSitingQuery
from tests.services.analytics_fixtures import ONE_GRID_TOWN, TOWN, WEEK_0
from tests.services.proposal_fixtures import add_roads, uneven_village

PERIOD = {"since": WEEK_0 - timedelta(days=1), "until": WEEK_0 + timedelta(days=7)}


@pytest.fixture
def town(session: Session, catalog: int) -> None:
    uneven_village(session, 4, 5, cases=300)
    add_roads(session, 4, 5)


def test_cases_seen_are_recomputed_in_postgis(session: Session, town: None) -> None:
    result = siting.site_cameras(session, CameraSitingQuery(TOWN, k=3, range_m=150, **PERIOD))
    assert len(result.sites) == 3 and result.added > 0
    seen = session.execute(
        sa.text(
            """
            SELECT count(*) FROM incidents i
            WHERE i.town_code = :town AND i.reported_at >= :since AND i.reported_at < :until
              AND EXISTS (SELECT 1 FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[]))
                               AS s(lon, lat)
                          WHERE ST_DWithin(i.geom::geography,
                                ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)::geography, 150))
            """
        ),
        {
            "town": TOWN,
            **PERIOD,
            "lons": [s.lon for s in result.sites],
            "lats": [s.lat for s in result.sites],
        },
    ).scalar_one()
    # UTM metres vs geodesic metres differ by < 0.1 % here: a case right on the edge may flip.
    assert abs(seen - result.added) <= 2
    assert sum(result.per_grid.values()) == result.added
    assert sum(s.cases for s in result.sites) >= result.added
    assert result.solution.gap <= 1e-6


def test_result_is_a_layer_and_a_table(session: Session, town: None) -> None:
    result = siting.site_cameras(session, CameraSitingQuery(TOWN, k=2, range_m=150, **PERIOD))
    body = result.result()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 2
    assert body["summary"]["added_by_new_cameras"] == result.added
    assert body["table"]["columns"][0] == "rank" and len(body["table"]["rows"]) == 2
    assert all(f["properties"]["grid"] for f in body["features"])


def test_solver_matches_brute_force_and_reduction_keeps_the_optimum() -> None:
    rng = np.random.default_rng(3)
    demand = rng.uniform(0, 1000, size=(120, 2))
    sites = rng.uniform(0, 1000, size=(14, 2))
    matrix = siting.coverage(demand, sites, 180.0)
    dense = matrix.toarray().astype(bool)
    best = max(
        int(dense[:, list(combo)].any(axis=1).sum())
        for combo in itertools.combinations(range(14), 3)
    )
    reduced = siting.reduce_problem(matrix)
    assert len(reduced.kept) <= 14 and reduced.weights.sum() == dense.any(axis=1).sum()
    solution = siting.solve_mclp(reduced, 3, time_limit_s=30)
    chosen = reduced.kept[solution.chosen]
    assert int(dense[:, chosen].any(axis=1).sum()) == best == round(solution.objective)


def test_a_dominated_candidate_is_dropped() -> None:
    # Site 0 sees cases {0, 1}; site 1 sees {0}; site 2 sees {2}: site 1 is dominated.
    matrix = sparse.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=np.int8))
    reduced = siting.reduce_problem(matrix)
    assert reduced.kept.tolist() == [0, 2]
    assert sorted(reduced.weights.tolist()) == [1.0, 2.0]


@pytest.mark.parametrize(
    ("query", "error", "match"),
    [
        (CameraSitingQuery(TOWN, k=500, **PERIOD), ValidationError, "k must be"),
        (CameraSitingQuery(TOWN, k=90, spacing_m=1000, **PERIOD), ValidationError, "candidate"),
        (
            CameraSitingQuery(
                TOWN, k=1, since=WEEK_0 + timedelta(days=30), until=WEEK_0 + timedelta(days=31)
            ),
            ValidationError,
            "only 0 case",
        ),
        (CameraSitingQuery(ONE_GRID_TOWN, k=1, **PERIOD), ValidationError, "case"),
        (CameraSitingQuery("999999999999", k=1, **PERIOD), NotFoundError, "town"),
    ],
)
def test_bad_input_is_refused(
    session: Session, town: None, query: CameraSitingQuery, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        siting.site_cameras(session, query)


def test_the_solver_prints_nothing_on_standard_output() -> None:
    """HiGHS' one-time banner goes to standard error: `--format csv` output is only the CSV."""
    script = "from gis.services.siting import highs_model\nhighs_model(1.0)\nprint('csv')\n"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout == "csv\n" and "HiGHS" in run.stderr


@pytest.mark.parametrize("period", [PERIOD, {"since": None, "until": PERIOD["until"]}, {}])
def test_a_siting_query_stored_as_job_params_reads_back_the_same(period: dict[str, Any]) -> None:
    camera = CameraSitingQuery(TOWN, k=3, range_m=150, **period)
    assert CameraSitingQuery.from_params(json.loads(json.dumps(camera.params()))) == camera
    station = StationSitingQuery(TOWN, "market", 2, max_candidates=50, **period)
    assert StationSitingQuery.from_params(json.loads(json.dumps(station.params()))) == station
