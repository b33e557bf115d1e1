"""The boundary import on Dask: a file read and checked in partitions on a real cluster gives the
same features, problems and plan as in-process; a scheduler killed mid-read fails cleanly."""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from distributed import Client
from shapely.geometry import LineString, Polygon
from sqlalchemy.orm import Session

from gis.errors import BulkJobError
from gis.ingest.boundaries import Level, commit_import, plan_import, read_boundaries
from tests.conftest import Cli
from tests.dask_fixtures import Scheduler, kill
from tests.ingest.test_boundaries import realdata
from tests.services.planfixtures import EAST, NORTH, SOUTH, WEST, Village, make_village

CELLS = 20_000


def _grid_file(path: Path, cells: int) -> Path:
    """A GeoPackage of ``cells`` grid squares tiling the hand-made village, in CGCS2000 GK CM
    120E (EPSG:4549), with a broken feature of each kind spread over the file."""
    side = int(np.ceil(np.sqrt(cells)))
    k = np.arange(cells)
    size = (EAST - WEST) / side
    x, y = WEST + (k % side) * size, SOUTH + (k // side) * size * (side / np.ceil(cells / side))
    height = (NORTH - SOUTH) / np.ceil(cells / side)
    geoms = list(shapely.box(x, y, x + size, y + height))
    codes: list[str | None] = [f"3308990010010{n:05d}" for n in k]
    x0, y0 = float(x[cells // 3]), float(y[cells // 3])
    # A bow tie (repaired), a line (rejected), a code twice, no code, a square in Europe.
    geoms[cells // 3] = Polygon(
        [(x0, y0), (x0 + size, y0 + height), (x0 + size, y0), (x0, y0 + height), (x0, y0)]
    )
    geoms[cells // 2] = LineString([(WEST, SOUTH), (EAST, NORTH)])
    codes[2 * cells // 3] = codes[5]
    codes[cells - 1] = None
    geoms[7] = shapely.box(10.0, 50.0, 10.001, 50.001)
    frame = gpd.GeoDataFrame(
        {"code": codes, "name": [f"网格{n}" for n in k], "households": k % 50},
        geometry=geoms,
        crs="EPSG:4326",
    ).to_crs("EPSG:4549")
    frame.to_file(path, driver="GPKG", engine="pyogrio")
    return path


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The large generated grid file (written once per module)."""
    return _grid_file(tmp_path_factory.mktemp("grids") / "grids.gpkg", CELLS)


@pytest.fixture
def village(session: Session, catalog: int) -> Village:
    """The hand-made village of the planning tests."""
    return make_village(session)


def test_a_large_grid_file_checked_on_dask_gives_the_same_features_and_problems(
    grid_file: Path, local_client: Client
) -> None:
    options = {"households_field": "households"}
    here = read_boundaries(grid_file, **options)
    on_dask = read_boundaries(grid_file, client=local_client, partitions=7, **options)
    assert on_dask == here
    assert len(here.features) == CELLS - 5
    assert [p.index for p in here.repaired] == [CELLS // 3]
    reasons = {p.index: p.reason for p in here.rejected}
    assert "LineString" in reasons[CELLS // 2] and "outside China" in reasons[7]
    assert "no value" in reasons[CELLS - 1]
    assert "more than once" in reasons[5] and "more than once" in reasons[2 * CELLS // 3]


@pytest.mark.parametrize(
    ("relative", "options"),
    [
        # Two self-intersecting cities (repaired), GCJ-02 coordinates.
        ("datav/330000_full.json", {"crs": "GCJ-02", "code_field": "adcode"}),
        # A Shapefile without .cpg: every slice must be read as UTF-8 like the whole file.
        ("amap-garybikini/zhejiang_district.shp", {"crs": "GCJ-02"}),
    ],
)
def test_real_files_read_on_dask_equal_the_in_process_read(
    session: Session, local_client: Client, relative: str, options: dict[str, str]
) -> None:
    path = realdata(relative)
    here = read_boundaries(path, **options)  # type: ignore[arg-type]
    on_dask = read_boundaries(path, client=local_client, partitions=3, **options)  # type: ignore[arg-type]
    assert on_dask == here and here.features
    assert plan_import(session, on_dask, level=Level.COUNTY) == plan_import(
        session, here, level=Level.COUNTY
    )


def test_a_geojson_file_is_read_once_and_only_its_checking_goes_to_the_workers(
    grid_file: Path, local_client: Client, tmp_path: Path
) -> None:
    # GDAL cannot start a GeoJSON in the middle: a slice read on a worker would parse the file
    # up to it. The file is gone once the first slice is done; every later slice still checks.
    path = tmp_path / "grids.geojson"
    gpd.read_file(grid_file, engine="pyogrio").head(3_000).to_file(
        path, driver="GeoJSON", engine="pyogrio"
    )
    here = read_boundaries(path)
    on_dask = read_boundaries(
        path, client=local_client, partitions=8, on_partition=lambda _: path.unlink(missing_ok=True)
    )
    assert not path.exists()
    assert on_dask == here
    # Of the first 3,000 features only the square in Europe (feature 7) is refused.
    assert len(here.features) == 3_000 - 1 and [p.index for p in here.rejected] == [7]


def test_a_scheduler_killed_mid_read_fails_cleanly_and_a_rerun_commits(
    session: Session,
    village: Village,
    tmp_path: Path,
    scheduler: Scheduler,
    local_client: Client,
) -> None:
    path = _grid_file(tmp_path / "small.gpkg", 2_000)
    address, process = scheduler
    grids_before = session.execute(sa.text("SELECT count(*) FROM grids")).scalar_one()
    started = time.perf_counter()
    with (
        pytest.raises(BulkJobError, match="failed mid-job"),
        Client(address, timeout=30) as client,
    ):
        read_boundaries(path, client=client, partitions=8, on_partition=lambda _: kill(process))
    assert time.perf_counter() - started < 60
    assert session.execute(sa.text("SELECT count(*) FROM grids")).scalar_one() == grids_before

    # The re-run: the same features, problems and plan as in-process, then written.
    read = read_boundaries(path, client=local_client, partitions=8)
    here = read_boundaries(path)
    assert read == here and len(read.rejected) == 5 and len(read.repaired) == 1
    plan = plan_import(session, read, level=Level.GRID, parent=village.village)
    assert plan == plan_import(session, here, level=Level.GRID, parent=village.village)
    written = commit_import(session, plan, actor="rerun")
    assert written["added"] == 1_995 and written["retired"] == 2


def test_cli_import_on_dask_prints_the_same_plan_and_refuses_a_bad_scheduler(
    local_client: Client, cli: Cli
) -> None:
    path = str(realdata("datav/330800_full.json"))
    address = local_client.scheduler.address
    wide = {"COLUMNS": "200"}
    command = ["boundaries", "import", path, "--level", "county", "--crs", "GCJ-02"]

    def run(*extra: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
        result = cli(*command, *extra, env={**wide, **(env or {})})
        # The plan's table, and which cluster ran the read.
        shown = [line for line in result.output.splitlines() if "│" in line or "Dask:" in line]
        return result.exit_code, shown

    code, table = run()
    assert code == 0 and any("added" in line for line in table)
    on_dask = (0, [f"Dask: {address}", *table])
    assert run("--scheduler", address) == on_dask
    # --dask takes GIS_DASK_SCHEDULER's cluster (this one) rather than starting a local one.
    assert run("--dask", env={"GIS_DASK_SCHEDULER": address}) == on_dask
    bad = cli(*command, "--scheduler", "localhost:8786", env=wide)
    assert bad.exit_code == 2 and "must be an address like tcp://" in bad.output
    assert "Traceback" not in bad.output
