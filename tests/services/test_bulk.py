"""Re-assignment with the join on Dask: a real LocalCluster, and a real scheduler and worker
processes on loopback, one of which is killed mid-job."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from distributed import Client
from sqlalchemy.orm import Session

from gis.errors import BulkJobError
from gis.layers.grids import Grid
from gis.services import bulk, reassign
from tests.dask_fixtures import Scheduler, free_port, kill
from tests.services.planfixtures import EAST, WEST, Village, add_case, make_village
from tests.services.test_reassign import _redraw


@pytest.fixture
def village(session: Session, catalog: int) -> Village:
    """The hand-made village, redrawn into strips, with cases on an edge and outside it."""
    made = make_village(session)
    grids = {
        g.code: g for g in session.scalars(sa.select(Grid).where(Grid.village_code == made.village))
    }
    # On the edge between the two new strips (the same float as the strips' shared side).
    made.cases["on_edge"] = add_case(
        session, WEST + 0.003, 28.905, "reported", grids[made.east], made.member_e
    )
    made.cases["near"] = add_case(
        session, EAST + 0.0002, 28.905, "reported", grids[made.east], made.member_e
    )
    made.cases["far"] = add_case(
        session, EAST + 0.005, 28.905, "reported", grids[made.east], made.member_e
    )
    _redraw(session, made, {made.west: (WEST, WEST + 0.003), made.east: (WEST + 0.003, EAST)})
    return made


def _staged(session: Session, table: str) -> list[tuple[object, ...]]:
    return [
        tuple(row)
        for row in session.execute(
            sa.text(
                "SELECT incident_id, from_code, to_grid_id, to_code, to_village, to_town, "
                f"quality, round(snap_distance_m), to_member FROM {table} ORDER BY incident_id"
            )
        )
    ]


def _grids_of(session: Session, village: Village) -> dict[int, tuple[object, ...]]:
    rows = session.execute(
        sa.text(
            "SELECT id, grid_id, grid_code, member_id, location_quality FROM incidents "
            "WHERE id = ANY(:ids) ORDER BY id"
        ),
        {"ids": list(village.cases.values())},
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def test_dask_join_stages_exactly_what_the_postgis_join_computes(
    session: Session, village: Village, local_client: Client
) -> None:
    reassign.compute_assignments(session, snap_m=50.0, table="in_db")
    staged = bulk.stage_on_dask(session, local_client, partitions=3, progress=False)
    assert staged == len(_staged(session, "in_db")) >= 6
    assert _staged(session, reassign.STAGE_PREFIX) == _staged(session, "in_db")
    qualities = {row[6] for row in _staged(session, reassign.STAGE_PREFIX)}
    assert {"inside", "on_edge", "snapped", "outside"} <= qualities


def test_dask_reassignment_writes_moves_and_events_like_the_postgis_one(
    session: Session, village: Village, local_client: Client
) -> None:
    bulk.stage_on_dask(session, local_client, partitions=2, progress=False)
    result = reassign.write_back(session, actor="dask", reason="r", table=reassign.STAGE_PREFIX)
    assert (result.moved, result.snapped, result.unassigned) == (2, 1, 1)
    after = _grids_of(session, village)
    assert after[village.cases["open_west_moving"]][1:3] == (village.east, village.member_e)
    assert after[village.cases["far"]][1] is None and after[village.cases["far"]][3] == "outside"
    events = session.execute(
        sa.text(
            "SELECT count(*) FROM incident_events WHERE action = 'reassign_grid' AND actor = 'dask'"
        )
    ).scalar_one()
    assert events == result.moved


def test_a_scheduler_killed_mid_job_fails_cleanly_and_a_rerun_succeeds(
    session: Session, village: Village, scheduler: Scheduler, local_client: Client
) -> None:
    address, process = scheduler
    before = _grids_of(session, village)

    def kill_scheduler(rows: int) -> None:
        kill(process)

    started = time.perf_counter()
    with (
        pytest.raises(BulkJobError, match="failed mid-job"),
        bulk.dask_client(address) as client,
    ):
        bulk.stage_on_dask(
            session, client, partitions=4, progress=False, on_partition=kill_scheduler
        )
    assert time.perf_counter() - started < 60
    # Nothing half-written: the staging table is gone and every case keeps its grid.
    assert session.execute(sa.text("SELECT to_regclass('reassign_stage')")).scalar_one() is None
    assert _grids_of(session, village) == before

    bulk.stage_on_dask(session, local_client, partitions=2, progress=False)
    result = reassign.write_back(session, actor="rerun", reason="r", table=reassign.STAGE_PREFIX)
    assert result.moved == 2
    assert _grids_of(session, village) != before


def test_an_unreachable_scheduler_is_a_clear_error() -> None:
    with (
        pytest.raises(BulkJobError, match="no Dask scheduler"),
        bulk.dask_client(f"tcp://127.0.0.1:{free_port()}", timeout_s=2),
    ):
        pass
    with pytest.raises(BulkJobError, match="must be an address"), bulk.dask_client("nonsense"):
        pass
