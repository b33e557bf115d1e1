"""docs/onboarding.md, run: a town goes live on an empty database from its own files.

The real DataV county file (GCJ-02) from ../shared/realdata, then files this test writes the way
a town has them: a town boundary in CGCS2000 Gauss–Krüger metres (GeoPackage), a village and its
two grids (GeoJSON), a GBK CSV of units with surveyors' X/Y in GK metres, a camera ledger
(.xlsx, Chinese headers) in GCJ-02 from a phone map, and an .xlsx of grid members that also makes
their users. Every step is the `gis` command the document shows; the check after each is the
one the document asks for. Then a member files a report with the token the import printed, and
it lands in the member's grid with the town's police station.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import sqlalchemy as sa
from pyproj import Transformer
from shapely.geometry import LineString, box

from gis import provision
from gis.geo import wgs84_to_gcj02
from gis.settings import Settings
from tests.conftest import TEST_DATABASE_URL, Cli
from tests.ingest.test_boundaries import realdata
from tests.services.test_ledger_tables import xlsx

# Around 大洲镇 (330803110) in 衢江区, WGS84.
LON, LAT = 118.9807, 28.8725
W, E, S, N = LON - 0.02, LON + 0.02, LAT - 0.015, LAT + 0.015
TOWN, VILLAGE = "330803110", "330803110201"
GRID_W, GRID_E = f"{VILLAGE}-01", f"{VILLAGE}-02"


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def town_database(database_url: str) -> Iterator[str]:
    """An empty database of its own (the procedure starts from nothing), dropped afterwards."""
    url = f"{TEST_DATABASE_URL}_town"
    provision.drop_database(url, log=_quiet)
    yield url
    provision.drop_database(url, log=_quiet)


@pytest.fixture
def gis(cli: Cli, town_database: str) -> Callable[..., str]:
    """Run `gis …` on the town's database and return what it printed; any failure fails the test
    with the output."""

    def run(*args: str | Path) -> str:
        result = cli(*(str(a) for a in args), database_url=town_database)
        assert result.exit_code == 0, result.output
        return result.output

    return run


def write_files(folder: Path) -> dict[str, Path]:
    """The town's own files."""
    files: dict[str, Path] = {}
    # The town boundary from the land-survey office: CGCS2000 3-degree GK, CM 120°E.
    town = gpd.GeoDataFrame(
        {"code": [TOWN], "name": ["大洲镇"]}, geometry=[box(W, S, E, N)], crs="EPSG:4490"
    )
    files["town"] = folder / "town_gk.gpkg"
    town.to_crs("EPSG:4549").to_file(files["town"], driver="GPKG", engine="pyogrio")
    village = gpd.GeoDataFrame(
        {"code": [VILLAGE], "name": ["大洲村"]}, geometry=[box(W, S, E, N)], crs="EPSG:4326"
    )
    files["village"] = folder / "village.geojson"
    village.to_file(files["village"], driver="GeoJSON", engine="pyogrio")
    grids = gpd.GeoDataFrame(
        {"code": [GRID_W, GRID_E], "name": ["一网格", "二网格"]},
        geometry=[box(W, S, LON, N), box(LON, S, E, N)],
        crs="EPSG:4326",
    )
    files["grids"] = folder / "grids.geojson"
    grids.to_file(files["grids"], driver="GeoJSON", engine="pyogrio")
    # Roads (an OSM extract, say): one along the cameras' street, two across it.
    roads = gpd.GeoDataFrame(
        {"highway": ["secondary", "residential", "residential"]},
        geometry=[
            LineString([(W, LAT), (E, LAT)]),
            LineString([(LON - 0.01, S), (LON - 0.01, N)]),
            LineString([(LON + 0.01, S), (LON + 0.01, N)]),
        ],
        crs="EPSG:4326",
    )
    files["roads"] = folder / "roads.geojson"
    roads.to_file(files["roads"], driver="GeoJSON", engine="pyogrio")
    # Units: a GBK CSV with the surveyors' X (northing) and Y (easting, zone 40 in front).
    gk = Transformer.from_crs("EPSG:4490", "EPSG:4528", always_xy=True)
    units = [
        ("DZ-police", "大洲派出所", "派出所", "0570-3012110", LON + 0.01, LAT),
        ("DZ-market", "大洲市场监管所", "市场监管所", "0570-3012315", LON - 0.01, LAT),
        ("DZ-service", "大洲镇便民服务中心", "便民服务中心", "13800000001", LON, LAT + 0.005),
    ]
    lines = ["编号,名称,类型,电话,X,Y,坐标系"]
    for code, name, kind, phone, lon, lat in units:
        easting, northing = gk.transform(lon, lat)
        lines.append(f"{code},{name},{kind},{phone},{northing:.3f},{easting:.3f},CGCS2000-GK")
    files["units"] = folder / "单位.csv"
    files["units"].write_bytes("\n".join(lines).encode("gbk"))
    # Cameras: the 天眼台账 from a phone map (GCJ-02), Chinese headers.
    rows: list[list[object]] = [["编号", "名称", "类型", "朝向", "视角", "距离", "经度", "纬度"]]
    for i in range(8):
        lon, lat = wgs84_to_gcj02(W + 0.004 + 0.004 * i, LAT)
        rows.append(
            [
                f"DZ-TY-{i:02d}",
                f"大洲路口{i}",
                "球机" if i % 3 == 0 else "枪机",
                90,
                "",
                "",
                lon,
                lat,
            ]
        )
    files["cameras"] = folder / "天眼台账.xlsx"
    files["cameras"].write_bytes(xlsx(rows))
    members = [
        ["姓名", "电话", "所属网格", "所属村社"],
        ["王网格", "13900000011", "一网格", "大洲村"],
        ["李网格", "13900000012", "二网格", "大洲村"],
    ]
    files["members"] = folder / "网格员.xlsx"
    files["members"].write_bytes(xlsx(members))
    return files


def test_a_town_goes_live_from_its_own_files(
    town_database: str, tmp_path: Path, cli: Cli, gis: Callable[..., str]
) -> None:
    county = realdata("datav/330800_full.json")
    files = write_files(tmp_path)
    gis("db", "up")
    assert "categories" in gis("db", "migrate")
    # 1. Counties: the real DataV file is GCJ-02 whatever it says.
    gis("boundaries", "import", county, "--level", "county", "--crs", "GCJ-02",
        "--code-field", "adcode", "--commit")  # fmt: skip
    # 2. The town in GK metres (its CRS is in the GeoPackage), then village and grids.
    gis(
        "boundaries",
        "import",
        files["town"],
        "--level",
        "town",
        "--parent",
        "330803",
        "--commit",
    )
    gis(
        "boundaries",
        "import",
        files["village"],
        "--level",
        "village",
        "--parent",
        TOWN,
        "--commit",
    )
    gis(
        "boundaries",
        "import",
        files["grids"],
        "--level",
        "grid",
        "--parent",
        VILLAGE + "",
        "--commit",
    )
    gis("roads", "import", files["roads"], "--commit")
    # 3. Units: dry run, then commit; the second run changes nothing.
    dry = gis("import", "units", files["units"])
    assert "added" in dry and "DZ-police" in dry and "surveyors' order" in dry
    gis("import", "units", files["units"], "--commit")
    assert "0 added, 0 changed, 3 unchanged" in gis("import", "units", files["units"], "--commit")
    # 4. Cameras: declared WGS84 the phone-map ledger is refused, with the fix named.
    wrong = cli("import", "cameras", str(files["cameras"]), database_url=town_database)
    assert wrong.exit_code == 1 and "--crs GCJ-02" in wrong.output
    gis("import", "cameras", files["cameras"], "--crs", "GCJ-02", "--commit")
    # 5. Members, with a user and token each, printed once.
    out = gis("import", "members", files["members"], "--with-users", "--commit")
    tokens = dict(line.split("\t") for line in out.splitlines() if "\t" in line)
    assert set(tokens) == {"member-13900000011", "member-13900000012"}
    # Export and re-import: nothing changes.
    gis("export", "cameras", tmp_path / "cameras-out.xlsx")
    again = gis("import", "cameras", tmp_path / "cameras-out.xlsx", "--commit")
    assert "0 added, 0 changed, 8 unchanged" in again
    report_lands_right(town_database, tokens["member-13900000012"])


def report_lands_right(url: str, token: str) -> None:
    """A member's report east of the centre: grid 二网格, the police station, a camera sees it."""
    from fastapi.testclient import TestClient

    from gis.api import create_app

    settings = Settings(database_url=url, token_cache_s=0, _env_file=None)  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as client:
        reply = client.post(
            "/incidents",
            json={
                "category": "public_security_hazard",
                "location": {"lon": LON + 0.006, "lat": LAT + 0.001},
                "description": "路口可疑人员",
                "reporter": {"kind": "grid_member", "id": "13900000012"},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["grid"]["code"] == GRID_E and body["grid"]["member"]["name"] == "李网格"
    assert body["town"]["code"] == f"{TOWN}000"
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        code = connection.scalar(
            sa.text("SELECT code FROM responder_units WHERE id = :id"), {"id": body["unit"]["id"]}
        )
        runs = connection.scalar(sa.text("SELECT count(*) FROM imports"))
    engine.dispose()
    assert code == "DZ-police"
    assert runs == 5  # committed runs: units twice, cameras and its re-export, members
