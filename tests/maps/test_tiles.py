"""Basemaps that work where the town is: the local tile archive (MBTiles, PMTiles) read and served
at /maps/tiles, the intranet URL (XYZ, WMTS) with its declared CRS, the kiosk page, the page's
own files, and the login check the kiosk makes."""

from __future__ import annotations

import random
import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pmtiles.reader import MemorySource, Reader
from pmtiles.tile import Compression, TileType, deserialize_header, tileid_to_zxy, zxy_to_tileid
from pmtiles.writer import Writer
from sqlalchemy.orm import Session

from gis.errors import BasemapUnavailableError, ValidationError
from gis.geo import Crs
from gis.layers.users import Role
from gis.maps import Basemap, build_command_room_map, render
from gis.maps.base import TileSource
from gis.maps.tiles import (
    BASEMAP_CRS_NAMES,
    archive_tile,
    open_archive,
    resolve_basemap,
    tile_url_template,
)
from gis.services import access
from gis.services.mapdata import command_room_data
from gis.settings import BASEMAP_CRS_PATTERN, Settings
from tests.api.test_maps import _client, _error
from tests.maps.conftest import ARCHIVE_BOUNDS, ARCHIVE_ZOOMS
from tests.maps.tile_archives import tile_png, tile_range
from tests.maps.town import NOW, SINCE, TOWN, UNTIL, VILLAGE_1, build_town

PNG = b"\x89PNG\r\n\x1a\n"
ARCHIVES = ["mbtiles", "pmtiles"]
# A tile of the archive (z14 over the town) and one the archive lacks (inside the world).
PRESENT = next(tile_range(ARCHIVE_BOUNDS, 14))
ABSENT = (14, 0, 0)


@pytest.fixture
def tiles_client(
    settings: Settings, session: Session, catalog: int, tile_archives: dict[str, Path], request: Any
) -> Any:
    """A client whose GIS_BASEMAP_FILE is the archive named by the test's parameter."""
    build_town(session)
    with _client(settings, session, basemap_file=str(tile_archives[request.param])) as client:
        yield client


@pytest.mark.parametrize("kind", ARCHIVES)
def test_an_archive_gives_back_each_tile_by_its_xyz_address(
    tile_archives: dict[str, Path], kind: str
) -> None:
    archive = open_archive(str(tile_archives[kind]))
    assert archive.info.format == "png" and archive.info.media_type == "image/png"
    assert (archive.info.min_zoom, archive.info.max_zoom) == (ARCHIVE_ZOOMS[0], ARCHIVE_ZOOMS[-1])
    assert archive.info.bounds == pytest.approx(ARCHIVE_BOUNDS)
    assert archive.info.attribution == "测试底图 test tiles"
    for z in (ARCHIVE_ZOOMS[0], 13, ARCHIVE_ZOOMS[-1]):
        # Rows counted from the top (XYZ): MBTiles stores them from the bottom.
        for address in list(tile_range(ARCHIVE_BOUNDS, z))[:3]:
            assert archive_tile(archive, *address) == tile_png(*address)
    assert archive_tile(archive, *ABSENT) is None


@pytest.mark.parametrize("tiles_client", ARCHIVES, indirect=True)
def test_the_service_serves_tiles_204_where_none_and_404_outside_the_world(
    tiles_client: TestClient,
) -> None:
    z, x, y = PRESENT
    found = tiles_client.get(f"/maps/tiles/{z}/{x}/{y}")
    assert found.status_code == 200
    assert found.headers["content-type"] == "image/png"
    assert found.content.startswith(PNG) and found.content == tile_png(z, x, y)
    assert "max-age" in found.headers["cache-control"]
    missing = tiles_client.get("/maps/tiles/{}/{}/{}".format(*ABSENT))
    assert missing.status_code == 204 and missing.content == b""
    _error(tiles_client.get("/maps/tiles/3/8/0"), 404, "not_found")  # x runs 0..7 at z3
    _error(tiles_client.get("/maps/tiles/31/0/0"), 422, "validation_error")
    _error(tiles_client.get("/maps/tiles/3/a/0"), 422, "validation_error")
    _error(tiles_client.get("/maps/tiles/3/-1/0"), 422, "validation_error")


@pytest.mark.parametrize("tiles_client", ["pmtiles"], indirect=True)
def test_the_archive_file_itself_is_served_with_range_requests(
    tiles_client: TestClient, tile_archives: dict[str, Path]
) -> None:
    whole = tile_archives["pmtiles"].read_bytes()
    part = tiles_client.get("/maps/tiles/file", headers={"Range": "bytes=0-126"})
    assert part.status_code == 206
    assert part.content == whole[:127] and part.content.startswith(b"PMTiles")
    assert part.headers["content-range"] == f"bytes 0-126/{len(whole)}"
    assert part.headers["content-type"] == "application/vnd.pmtiles"
    assert tiles_client.get("/maps/tiles/file").content == whole


def test_without_an_archive_tiles_are_404_and_a_bad_one_is_503_saying_why(
    settings: Settings, session: Session, catalog: int, tmp_path: Path
) -> None:
    with _client(settings, session) as client:
        detail = _error(client.get("/maps/tiles/14/0/0"), 404, "not_found")
        assert "GIS_BASEMAP_FILE" in detail
        detail = _error(
            client.get("/maps/command-room?town=1&basemap=local"), 422, "validation_error"
        )
        assert "GIS_BASEMAP_FILE" in detail
    garbage = tmp_path / "broken.pmtiles"
    garbage.write_bytes(b"not a tile archive at all")
    vector = tmp_path / "vector.mbtiles"
    with sqlite3.connect(vector) as db:
        db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        db.execute("CREATE TABLE tiles (zoom_level, tile_column, tile_row, tile_data)")
        db.execute("INSERT INTO metadata VALUES ('format', 'pbf')")
        db.execute("INSERT INTO tiles VALUES (0, 0, 0, x'00')")
    db.close()
    for path, words in (
        (garbage, "not a PMTiles"),
        (vector, "raster tiles"),
        (tmp_path / "town.zip", ".mbtiles or .pmtiles"),
        (tmp_path / "gone.mbtiles", "cannot be read"),
    ):
        with _client(settings, session, basemap_file=str(path)) as client:
            detail = _error(client.get("/maps/tiles/14/0/0"), 503, "basemap_unavailable")
        assert words in detail


@pytest.mark.parametrize("tiles_client", ["mbtiles"], indirect=True)
def test_the_local_basemap_page_asks_the_service_for_the_archive_tiles(
    tiles_client: TestClient,
) -> None:
    page = tiles_client.get("/maps/command-room", params={"town": TOWN, "basemap": "local"})
    assert page.status_code == 200, page.text
    html = page.text
    assert '"/maps/tiles/{z}/{x}/{y}"' in html
    assert '"maxNativeZoom": 16' in html and '"minNativeZoom": 10' in html
    assert '"bounds":[[28.98,110.98,],[29.05,111.06,],]' in re.sub(r"\s", "", html)
    assert "测试底图 test tiles".encode("unicode_escape").decode() in html
    assert "openstreetmap" not in html.lower()


def test_wmts_placeholders_become_leaflet_ones_and_unfillable_urls_are_refused() -> None:
    restful = "http://10.1.2.3/wmts/vec/default/w/{TileMatrix}/{TileRow}/{TileCol}.png"
    assert tile_url_template(restful) == "http://10.1.2.3/wmts/vec/default/w/{z}/{y}/{x}.png"
    kvp = (
        "http://t{s}.zj.tianditu.internal/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&LAYER=vec"
        "&TILEMATRIXSET=w&TILEMATRIX={TileMatrix}&TILEROW={TileRow}&TILECOL={TileCol}"
    )
    assert tile_url_template(kvp).endswith("TILEMATRIX={z}&TILEROW={y}&TILECOL={x}")
    assert tile_url_template("/tiles/{z}/{x}/{-y}.jpg") == "/tiles/{z}/{x}/{-y}.jpg"
    for bad, words in (
        ("http://h/{TileMatrixSet}/{z}/{x}/{y}.png", "{TileMatrixSet}"),
        ("http://h/{z}/{x}.png", "{z}, {x} and {y}"),
        ("ftp://h/{z}/{x}/{y}.png", "http://"),
    ):
        with pytest.raises(BasemapUnavailableError, match=re.escape(words)):
            tile_url_template(bad)


def test_an_intranet_basemap_declared_gcj02_gets_the_same_shift_as_amap(
    session: Session, town: dict[str, int], settings: Settings
) -> None:
    data = command_room_data(session, town_code=TOWN, since=SINCE, until=UNTIL, now=NOW)
    with pytest.raises(ValidationError, match="GIS_BASEMAP_URL"):
        resolve_basemap(Basemap.INTRANET, settings, tiles_url="/maps/tiles")
    configured = settings.model_copy(
        update={
            "basemap_url": "http://t{s}.gov.internal/vec/{TileMatrix}/{TileRow}/{TileCol}",
            "basemap_labels_url": "http://t{s}.gov.internal/cva/{z}/{y}/{x}",
            "basemap_subdomains": "0123",
            "basemap_crs": "gcj02",
        }
    )
    source = resolve_basemap(Basemap.INTRANET, configured, tiles_url="/maps/tiles")
    assert isinstance(source, TileSource) and source.crs is Crs.GCJ02
    intranet = render(build_command_room_map(data, basemap=source))
    amap = render(build_command_room_map(data, basemap=Basemap.AMAP))

    def overlays(html: str) -> list[str]:
        # Everything drawn over the tiles: GeoJSON, heat points, markers, the fitted bounds.
        return re.findall(r"\[\[?\d+\.\d+, \d+\.\d+", html)

    assert overlays(intranet) == overlays(amap) and len(overlays(amap)) > 20
    assert '"http://t{s}.gov.internal/vec/{z}/{y}/{x}"' in intranet
    assert '"http://t{s}.gov.internal/cva/{z}/{y}/{x}"' in intranet
    assert '"subdomains": "0123"' in intranet
    wgs84 = settings.model_copy(update={"basemap_url": "http://gov.internal/{z}/{x}/{y}.png"})
    plain = resolve_basemap(Basemap.INTRANET, wgs84, tiles_url="/maps/tiles")
    assert overlays(render(build_command_room_map(data, basemap=plain))) == overlays(
        render(build_command_room_map(data, basemap=Basemap.OSM))
    )


def test_the_kiosk_page_has_no_controls_and_starts_the_kiosk_module(
    session: Session, town: dict[str, int]
) -> None:
    data = command_room_data(session, town_code=TOWN, since=SINCE, until=UNTIL, now=NOW)
    kiosk = render(build_command_room_map(data, kiosk=True), pages_url="/web")
    normal = render(build_command_room_map(data), pages_url="/web")
    assert "L.control.layers(" in normal and "L.control.layers(" not in kiosk
    assert '"zoomControl": false' in kiosk and "L.control.scale(" not in kiosk
    assert 'import { kioskMode } from "/web/maps/map-kiosk.js"' in kiosk
    assert "collapsibleControls" in normal and "collapsibleControls" not in kiosk
    figures = re.compile(r'data-figure="(\w+)">.*?<b>([^<]+)</b>')
    assert figures.findall(kiosk) == figures.findall(normal) != []


def test_the_page_files_are_served_with_the_assets_or_inlined_without_them(
    session: Session, town: dict[str, int], settings: Settings
) -> None:
    with _client(settings, session) as client:
        module = client.get("/web/maps/map-controls.js")
        assert module.status_code == 200 and "javascript" in module.headers["content-type"]
        assert "export function collapsibleControls" in module.text
        assert client.get("/web/maps/map-page.css").headers["content-type"].startswith("text/css")
        live = client.get("/web/common/live.js")
        assert live.status_code == 200 and "export function startLive" in live.text
        _error(client.get("/web/maps/static/map-page.css"), 404, "not_found")
        _error(client.get("/web/maps/__init__.py"), 404, "not_found")
        _error(client.get("/web/../settings.py"), 404, "not_found")
        _error(client.get("/web/maps/.hidden.js"), 404, "not_found")
    data = command_room_data(session, town_code=TOWN, since=SINCE, until=UNTIL, now=NOW)
    inline = render(build_command_room_map(data))  # a file the CLI writes: no service to ask
    assert "export function collapsibleControls" in inline and ".gis-toggles" in inline
    assert '<link rel="stylesheet" href="/web/maps' not in inline
    assert 'from "/web/maps' not in inline
    served = render(build_command_room_map(data), pages_url="/web")
    assert '<link rel="stylesheet" href="/web/maps/map-page.css">' in served
    assert "export function" not in served


def test_the_map_session_says_who_is_logged_in_and_until_when(
    settings: Settings, session: Session, town: dict[str, int]
) -> None:
    user = access.add_user(session, name="wall-gaojia", role=Role.COMMAND_ROOM, town_codes=[TOWN])
    token = access.issue_token(session, user, valid_for=timedelta(hours=8))
    expires = access.token_expiry(session, token)
    assert expires is not None
    with _client(settings, session, auth_required=True) as client:
        own = client.get("/maps/session", headers={"Authorization": f"Bearer {token}"})
        assert own.status_code == 200
        assert own.json()["user"] == "wall-gaojia" and own.json()["role"] == "command_room"
        assert own.json()["expires_at"].startswith(expires.isoformat()[:19])
        _error(client.get("/maps/session"), 401, "unauthorized")
    with _client(settings, session) as client:  # no login needed: nothing expires
        assert client.get("/maps/session").json() == {
            "user": None,
            "role": None,
            "expires_at": None,
        }


def test_the_basemap_settings_know_every_basemap_and_crs() -> None:
    pattern = Settings.model_fields["basemap"].metadata[0].pattern
    assert pattern == "^(" + "|".join(b.value for b in Basemap) + ")$"
    assert "^(" + "|".join(BASEMAP_CRS_NAMES) + ")$" == BASEMAP_CRS_PATTERN


def test_a_large_pmtiles_archive_with_leaf_directories_answers_as_the_package_reader(
    tmp_path: Path,
) -> None:
    # 30,000 tiles with gaps and sizes that do not compress away: the root points to leaves.
    rnd = random.Random(25)
    path = tmp_path / "large.pmtiles"
    first = zxy_to_tileid(10, 0, 0)
    tile_id = first
    with path.open("wb") as file:
        writer = Writer(file)
        for _ in range(30_000):
            tile_id += rnd.randint(1, 5)
            writer.write_tile(tile_id, tile_id.to_bytes(4, "big") * rnd.randint(1, 30))
        world = {"min_lon_e7": -1_800_000_000, "max_lon_e7": 1_800_000_000}
        writer.finalize(
            {
                "tile_type": TileType.PNG,
                "tile_compression": Compression.NONE,
                "min_zoom": 10,
                "max_zoom": 10,
                **world,
                "min_lat_e7": -850_000_000,
                "max_lat_e7": 850_000_000,
                "center_zoom": 10,
                "center_lon_e7": 0,
                "center_lat_e7": 0,
            },
            {},
        )
    data = path.read_bytes()
    assert deserialize_header(data[:127])["leaf_directory_length"] > 0
    reference = Reader(MemorySource(data))
    archive = open_archive(str(path))
    for probe in rnd.sample(range(first, tile_id + 10), 300):
        z, x, y = tileid_to_zxy(probe)
        expected = reference.get(z, x, y)
        assert archive_tile(archive, z, x, y) == (None if expected is None else bytes(expected))


def test_both_map_pages_take_kiosk_and_the_default_basemap_from_the_settings(
    settings: Settings, session: Session, tile_archives: dict[str, Path], town: dict[str, int]
) -> None:
    local = {"basemap": "local", "basemap_file": str(tile_archives["mbtiles"])}
    with _client(settings, session, **local) as client:
        for path in (f"/maps/command-room?town={TOWN}", f"/maps/grids?village={VILLAGE_1}"):
            html = client.get(path + "&kiosk=1").text
            assert "kioskMode(" in html and "L.control.layers(" not in html, path
            assert '"/maps/tiles/{z}/{x}/{y}"' in html, path  # GIS_BASEMAP=local, unasked
            osm = client.get(path + "&basemap=osm").text
            assert "collapsibleControls(" in osm and "/maps/tiles/" not in osm, path
