"""Real clients against a real server: GDAL's OAPIF driver (Debian gdal-bin: ogrinfo, ogr2ogr)
and OWSLib read the OGC API as they would any other. The server is uvicorn on a loopback port,
its requests recorded so a test can see what reached it. Without gdal-bin the GDAL tests are
skipped locally and fail in CI (scripts/test-deps.sh installs it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pyogrio
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.api import create_app
from gis.layers.grids import Grid, GridMember, GridMemberGrid
from gis.layers.users import Role
from gis.settings import Settings
from tests.conftest import IN_CI, use_session
from tests.ogc.conftest import live_server

OGRINFO = shutil.which("ogrinfo")
OGR2OGR = shutil.which("ogr2ogr")


class Recorder:
    """An ASGI wrapper that remembers the path and query of every HTTP request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests.append(unquote_plus(scope["path"] + "?" + scope["query_string"].decode()))
        await self.app(scope, receive, send)


@pytest.fixture
def server(settings: Settings, session: Session, demo: object) -> Iterator[tuple[str, Recorder]]:
    """The API on a free loopback port, answering from the test's session."""
    recorder = Recorder(use_session(create_app(settings), session))
    with live_server(recorder) as url:
        yield url + "/ogc", recorder


def _gdal(*args: str, headers: dict[str, str] | None = None) -> str:
    if OGRINFO is None or OGR2OGR is None:
        if IN_CI:
            pytest.fail("CI needs gdal-bin (scripts/test-deps.sh installs it)", pytrace=False)
        pytest.skip("gdal-bin is not installed (scripts/test-deps.sh installs it)")
    env = {**os.environ, "GDAL_HTTP_TIMEOUT": "60"}
    if headers:
        env["GDAL_HTTP_HEADERS"] = "\r\n".join(f"{k}: {v}" for k, v in headers.items())
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_ogrinfo_lists_the_public_collections_and_with_a_token_the_rest(
    server: tuple[str, Recorder], admin_headers: dict[str, str]
) -> None:
    url, _ = server
    listing = _gdal("ogrinfo", "-ro", "-q", f"OAPIF:{url}")
    assert [line.split(":")[1].split("(")[0].strip() for line in listing.splitlines()] == [
        "towns",
        "villages",
        "grids",
        "roads",
    ]
    with_token = _gdal("ogrinfo", "-ro", "-q", f"OAPIF:{url}", headers=admin_headers)
    assert "incidents" in with_token and "cameras" in with_token and "units" in with_token
    assert "members" in with_token and "coverage" in with_token


def test_ogr2ogr_copies_a_towns_grid_members_and_ogrinfo_filters_coverage(
    server: tuple[str, Recorder],
    session: Session,
    tmp_path: Path,
    headers_for: Any,
    town_codes: list[str],
) -> None:
    url, recorder = server
    town = town_codes[0]
    target = tmp_path / "members.gpkg"
    headers = headers_for(Role.DISPATCHER, (town,))
    _gdal(
        "ogr2ogr", "-f", "GPKG", str(target), f"OAPIF:{url}", "members", "-oo", "PAGE_SIZE=50",
        headers=headers,
    )  # fmt: skip
    copied = pyogrio.read_dataframe(target, layer="members")
    expected = session.execute(
        sa.select(GridMemberGrid.grid_code, sa.func.ST_Area(Grid.geom))
        .join(GridMember, GridMember.id == GridMemberGrid.member_id)
        .join(Grid, sa.and_(Grid.code == GridMemberGrid.grid_code, Grid.valid_to.is_(None)))
        .where(GridMember.active.is_(True), Grid.town_code == town)
    ).all()
    assert len(copied) == len(expected) > 0 and set(copied["town_code"]) == {town}
    areas = dict(expected)
    for code, geometry in zip(copied["grid_code"], copied.geometry, strict=True):
        assert geometry.area == pytest.approx(areas[code], rel=1e-4)
    # A filter on a computed figure passes through to the server.
    out = _gdal(
        "ogrinfo", "-ro", "-q", f"OAPIF:{url}", "coverage", "-where", "cameras >= 3",
        headers=headers_for(Role.COUNTY),
    )  # fmt: skip
    assert out.count("OGRFeature(coverage)") > 0
    assert all(int(n) >= 3 for n in re.findall(r"cameras \(Integer\) = (\d+)", out))
    pages = [r for r in recorder.requests if r.startswith("/ogc/collections/coverage/items")]
    assert pages and "cameras >= 3" in pages[-1]


def test_ogr2ogr_copies_every_grid_with_the_same_geometry(
    server: tuple[str, Recorder], session: Session, tmp_path: Path
) -> None:
    url, _ = server
    target = tmp_path / "grids.gpkg"
    _gdal("ogr2ogr", "-f", "GPKG", str(target), f"OAPIF:{url}", "grids", "-oo", "PAGE_SIZE=100")
    copied = pyogrio.read_dataframe(target, layer="grids")
    rows = session.execute(
        sa.select(Grid.code, sa.func.ST_Area(Grid.geom)).where(Grid.valid_to.is_(None))
    ).all()
    assert len(copied) == len(rows)
    areas = dict(rows)
    # The same shapes: areas (in square degrees, no reprojection on either side) agree to the
    # 1e-7 degree rounding of the coordinates.
    for code, geometry in zip(copied["code"], copied.geometry, strict=True):
        assert geometry.area == pytest.approx(areas[code], rel=1e-4)


def test_gdal_sends_the_filter_and_the_bbox_to_the_server(
    server: tuple[str, Recorder], session: Session
) -> None:
    url, recorder = server
    out = _gdal(
        "ogrinfo", "-ro", "-q", f"OAPIF:{url}", "grids",
        "-where", "households > 400",
        "-spat", "118.9", "28.85", "119.0", "28.95",
    )  # fmt: skip
    found = out.count("OGRFeature(grids)")
    envelope = sa.func.ST_MakeEnvelope(118.9, 28.85, 119.0, 28.95, 4326)
    expected = session.scalar(
        sa.select(sa.func.count()).where(
            Grid.valid_to.is_(None),
            Grid.households > 400,
            sa.func.ST_Intersects(Grid.geom, envelope),
        )
    )
    assert found == expected > 0
    pages = [r for r in recorder.requests if r.startswith("/ogc/collections/grids/items")]
    assert pages and all("households > 400" in r and "bbox=118.9" in r for r in pages[-1:])


def test_owslib_reads_collections_items_and_queryables(
    server: tuple[str, Recorder],
    session: Session,
    headers_for: Any,
    town_codes: list[str],
    owslib_features: Any,
) -> None:
    Features = owslib_features  # noqa: N806 -- the class, under its own name
    url, _ = server
    anonymous = Features(url)
    assert [c["id"] for c in anonymous.collections()["collections"]] == [
        "towns",
        "villages",
        "grids",
        "roads",
    ]
    page = anonymous.collection_items("grids", limit=5)
    current = session.scalar(sa.select(sa.func.count()).where(Grid.valid_to.is_(None)))
    assert page["numberMatched"] == current and len(page["features"]) == 5
    assert "households" in anonymous.collection_queryables("grids")["properties"]
    dispatcher = Features(url, headers=headers_for(Role.DISPATCHER, (town_codes[0],)))
    cases = dispatcher.collection_items("incidents", limit=50)
    assert {f["properties"]["town_code"] for f in cases["features"]} == {town_codes[0]}
    members = dispatcher.collection_items("members", limit=50)
    assert members["features"]
    assert {f["properties"]["town_code"] for f in members["features"]} == {town_codes[0]}
    assert "phone" in dispatcher.collection_queryables("members")["properties"]
    county = Features(url, headers=headers_for(Role.COUNTY))
    coverage = county.collection_items("coverage", limit=5)
    assert len(coverage["features"]) == 5
    assert "covered_share" in county.collection_queryables("coverage")["properties"]
