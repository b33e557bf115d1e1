"""`gis analytics` from the shell, on the committed demo county: a table, and the reason on
bad input."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.orm import Session

from gis.commands.analytics import camera_siting_command, station_siting_command
from gis.services import siting, stations
from tests.conftest import SAMPLE_END, Cli

if TYPE_CHECKING:
    from typer.testing import Result


@pytest.fixture
def demo_town(demo: dict[str, object], engine: Any) -> str:
    from gis.services.mapdata import towns_with_cases

    with Session(engine) as session:
        return towns_with_cases(session)[0]


@pytest.fixture
def analytics(cli: Cli) -> Callable[..., Result]:
    """Run `gis analytics …` on the test database, 160 columns wide."""
    return lambda *args: cli("analytics", *args, env={"COLUMNS": "160"})


UNTIL = SAMPLE_END.isoformat()


def test_hotspots_print_one_row_per_grid(demo_town: str, analytics: Callable[..., Result]) -> None:
    result = analytics("hotspots", "--town", demo_town, "--until", UNTIL, "--seed", "1",
                       "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert rows and set(rows[0]) == {"grid", "name", "cases", "z", "p", "class"}
    table = analytics("hotspots", "--town", demo_town, "--until", UNTIL, "--seed", "1")
    assert table.exit_code == 0 and "class" in table.stdout
    cells = analytics("hotspots", "--town", demo_town, "--until", UNTIL, "--seed", "1",
                      "--cell-m", "500", "--format", "json")  # fmt: skip
    assert cells.exit_code == 0, cells.output
    rows = json.loads(cells.stdout.strip().splitlines()[-1])
    assert rows and rows[0]["cell"].startswith("C") and "(distance)" in cells.output


def test_recurring_and_emerging_run(demo_town: str, analytics: Callable[..., Result]) -> None:
    recurring = analytics("recurring", "--town", demo_town, "--until", UNTIL, "--weeks", "12")
    assert recurring.exit_code == 0, recurring.output
    emerging = analytics("emerging", "--town", demo_town, "--until", UNTIL, "--since",
                         "2026-08-01", "--seed", "1")  # fmt: skip
    assert emerging.exit_code == 0, emerging.output
    assert "category" in emerging.stdout


def test_bad_input_exits_2_with_the_reason(
    demo_town: str, analytics: Callable[..., Result]
) -> None:
    result = analytics("hotspots", "--town", demo_town, "--platform", "police")
    assert result.exit_code == 2 and "unknown platform" in result.output
    result = analytics("hotspots", "--town", demo_town, "--since", "yesterday")
    assert result.exit_code == 2 and "not ISO 8601" in result.output


def test_camera_siting_prints_a_csv_and_writes_a_layer(
    demo_town: str, analytics: Callable[..., Result], tmp_path: Any
) -> None:
    layer = tmp_path / "sites.geojson"
    result = analytics("camera-siting", "--town", demo_town, "--k", "2", "--range-m", "150",
                       "--spacing-m", "100", "--until", UNTIL, "--format", "csv",
                       "--geojson", str(layer))  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith(("rank", "1,", "2,"))]
    assert lines[0].startswith("rank,lon,lat") and len(lines) == 3
    assert len(json.loads(layer.read_text())["features"]) == 2


def test_redistrict_refuses_an_unknown_weight_column(
    demo_town: str, analytics: Callable[..., Result]
) -> None:
    result = analytics("redistrict", "--town", demo_town, "--weight", "cameras=1")
    assert result.exit_code == 2 and "unknown weight column" in result.output
    result = analytics("redistrict", "--village", "x", "--town", demo_town)
    assert result.exit_code == 2 and "exactly one of" in result.output


def test_station_siting_prints_a_csv_and_the_drive_times(
    demo_town: str, analytics: Callable[..., Result], tmp_path: Any
) -> None:
    layer = tmp_path / "stations.geojson"
    result = analytics("station-siting", "--town", demo_town, "--platform", "market",
                       "--k", "2", "--since", "2026-07-01", "--until", UNTIL,
                       "--max-candidates", "40", "--format", "csv",
                       "--geojson", str(layer))  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith(("rank", "1,", "2,"))]
    assert lines[0].startswith("rank,node,lon,lat") and len(lines) == 3
    assert "drive time mean" in result.output and "90th percentile" in result.output
    assert len(json.loads(layer.read_text())["features"]) == 2
    bad = analytics("station-siting", "--town", demo_town, "--platform", "police", "--k", "2")
    assert bad.exit_code == 2 and "unknown platform" in bad.output


def test_siting_commands_default_to_the_services_figures() -> None:
    # The CLI spells its defaults out (it imports the solvers only when a command runs).
    def default(command: Any, name: str) -> Any:
        return inspect.signature(command).parameters[name].default.default

    assert default(camera_siting_command, "range_m") == siting.DEFAULT_RANGE_M
    assert default(camera_siting_command, "spacing_m") == siting.DEFAULT_SPACING_M
    assert default(station_siting_command, "max_candidates") == stations.DEFAULT_MAX_CANDIDATES
    for command in (camera_siting_command, station_siting_command):
        assert default(command, "time_limit_s") == siting.DEFAULT_TIME_LIMIT_S


# --- many towns, in-process and on Dask ---------------------------------------------------------


def _rows_by_town(stdout: str) -> dict[str, list[dict[str, Any]]]:
    by_town: dict[str, list[dict[str, Any]]] = {}
    for row in json.loads(stdout.strip().splitlines()[-1]):
        by_town.setdefault(row.pop("town"), []).append(row)
    return by_town


def _json_rows(stdout: str) -> list[dict[str, Any]]:
    return list(json.loads(stdout.strip().splitlines()[-1]))


def test_many_towns_on_dask_and_in_process_equal_each_single_town_run(
    demo_town: str, engine: Any, local_client: Any, analytics: Callable[..., Result]
) -> None:
    from gis.services.mapdata import towns_with_cases

    with Session(engine) as session:
        towns = towns_with_cases(session)[:2]
    common = ["--until", UNTIL, "--since", "2026-06-01", "--seed", "7", "--permutations", "99",
              "--format", "json"]  # fmt: skip
    address = local_client.scheduler.address
    many = [arg for town in towns for arg in ("--town", town)]
    for command, extra in (("hotspots", []), ("emerging", ["--step", "month"])):
        single = {}
        for town in towns:
            result = analytics(command, "--town", town, *common, *extra)
            assert result.exit_code == 0, result.output
            single[town] = _json_rows(result.stdout)
        on_dask = analytics(command, *many, "--scheduler", address, *common, *extra)
        assert on_dask.exit_code == 0, on_dask.output
        assert f"Dask: {address}" in on_dask.output and "2/2" in on_dask.output
        assert _rows_by_town(on_dask.stdout) == single
        in_process = analytics(command, *many, *common, *extra)
        assert in_process.exit_code == 0 and _rows_by_town(in_process.stdout) == single
    # Every town of a county, in code order; a town with too few cases would be skipped.
    county = analytics("hotspots", "--county", towns[0][:6], *common)  # 330803: the county's adcode
    assert county.exit_code == 0, county.output
    assert list(_rows_by_town(county.stdout)) == sorted(_rows_by_town(county.stdout))


def test_many_town_bad_input_exits_2_with_the_reason(
    demo_town: str, analytics: Callable[..., Result]
) -> None:
    for args, reason in (
        (["--town", demo_town, "--town", "330899999000"], "no town with code '330899999000'"),
        ([], "give --town (repeatable), --county or --all-towns"),
        (["--town", demo_town, "--all-towns"], "give --town (repeatable), --county or"),
        (["--county", "330899000000"], "no county with code"),
        (["--all-towns", "--scheduler", "127.0.0.1:8786"], "must be an address like tcp://"),
    ):
        result = analytics("hotspots", *args, "--until", UNTIL)
        assert result.exit_code == 2 and reason in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_a_scheduler_killed_mid_job_fails_cleanly_and_a_rerun_succeeds(
    demo_town: str, engine: Any, scheduler: Any, local_client: Any
) -> None:
    from functools import partial

    from distributed import Client

    from gis.commands.analytics import hotspots_of_town, run_per_town
    from gis.errors import BulkJobError
    from gis.services.hotspots import HotspotQuery
    from gis.services.mapdata import towns_with_cases
    from tests.dask_fixtures import kill

    address, process = scheduler
    # A window of one hour: each town's job counts its cases in the database on the worker and
    # is skipped for too few, which spares this worker process compiling Gi*'s kernels (the
    # test above runs Gi* on Dask); what is tested here is the cluster dying mid-job.
    query = HotspotQuery("", since=SAMPLE_END - timedelta(hours=1), until=SAMPLE_END)
    job = partial(hotspots_of_town, query)
    with Session(engine) as session:
        towns = towns_with_cases(session)[:3]
        with (
            pytest.raises(BulkJobError, match="failed mid-job"),
            Client(address, timeout=30) as client,
        ):
            run_per_town(session, towns, job, client=client, on_done=lambda _: kill(process))
        rerun = run_per_town(session, towns, job, client=local_client)
        assert rerun == run_per_town(session, towns, job)
        assert [outcome.town for outcome in rerun] == towns
        assert all("case(s) match" in (outcome.skipped or "") for outcome in rerun)
