"""The OGC tiles and items pages answered before FastAPI's router (``gis.api.hot``) must answer
exactly as the routed endpoints do: the same status, body and headers, errors in the OGC shape
included; and what the fast path declines (a filter, a caller-scoped tile, a parameter FastAPI
rejects, a draft plan's collection) must still reach the route that serves it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gis.api import create_app
from gis.api.hot import HotPaths, fast_path, hot_routes
from gis.layers.plans import Plan
from gis.layers.users import Role
from gis.settings import Settings
from tests.conftest import use_session
from tests.ogc.test_tiles import TMS, _tile_over
from tests.ogc.test_transactions import draft  # noqa: F401  (a fixture)


@pytest.fixture
def both(settings: Settings, session: Session) -> Iterator[tuple[TestClient, TestClient]]:
    """A client of the app as served (fast paths on) and one of the same app without them."""

    def client(hot: bool) -> TestClient:
        app = use_session(create_app(settings), session)
        assert any(m.cls is HotPaths for m in app.user_middleware)
        if not hot:
            app.user_middleware = [m for m in app.user_middleware if m.cls is not HotPaths]
        return TestClient(app)

    with client(hot=True) as hot, client(hot=False) as routed:
        yield hot, routed


def _same(hot: TestClient, routed: TestClient, path: str, headers: dict[str, str]) -> int:
    a = hot.get(path, headers=headers)
    b = routed.get(path, headers=headers)
    assert a.status_code == b.status_code, (path, a.text, b.text)
    # The page's timeStamp is the only thing allowed to differ.
    strip = re.compile(rb'"timeStamp":"[^"]*"')
    assert strip.sub(b"", a.content) == strip.sub(b"", b.content), path
    for name in ("content-type", "etag", "cache-control", "vary", "content-crs"):
        assert a.headers.get(name) == b.headers.get(name), (path, name)
    return a.status_code


def test_fast_tiles_and_items_answer_exactly_as_the_routed_endpoints(
    both: tuple[TestClient, TestClient],
    session: Session,
    town_codes: list[str],
    headers_for: Callable[..., dict[str, str]],
    admin_headers: dict[str, str],
    draft: Plan,  # noqa: F811
) -> None:
    hot, routed = both
    tile = _tile_over(session, town_codes[0], 12)
    xyz = f"{tile.z}/{tile.x}/{tile.y}"
    w, s, e, n = TMS.bounds(tile)
    bbox = f"{w:.5f},{s:.5f},{e:.5f},{n:.5f}"
    dispatcher = headers_for(Role.DISPATCHER, (town_codes[0],))
    # A browser's map page sends the login cookie instead of a header.
    cookie = {"Cookie": "gis_token=" + dispatcher["Authorization"].split()[1]}
    cases: list[tuple[str, dict[str, str], int]] = [
        (f"/ogc/collections/grids/tiles/WebMercatorQuad/{xyz}", {}, 200),
        (f"/ogc/collections/villages/tiles/WebMercatorQuad/{xyz}", {}, 200),
        ("/ogc/collections/grids/tiles/WebMercatorQuad/3/0/0", {}, 204),  # below min zoom
        (f"/ogc/collections/incidents/tiles/WebMercatorQuad/{xyz}", dispatcher, 200),  # scoped
        (f"/ogc/collections/incidents/tiles/WebMercatorQuad/{xyz}", {}, 401),
        (f"/ogc/collections/cameras/tiles/WebMercatorQuad/{xyz}", dispatcher, 200),
        (f"/ogc/collections/cameras/tiles/WebMercatorQuad/{xyz}", cookie, 200),
        (f"/ogc/collections/incidents/tiles/WebMercatorQuad/{xyz}", cookie, 200),
        ("/ogc/collections/grids/tiles/WebMercatorQuad/25/0/0", {}, 400),  # zoom out of range
        ("/ogc/collections/grids/tiles/WebMercatorQuad/12/5000/0", {}, 400),  # x out of range
        ("/ogc/collections/grids/tiles/WebMercatorQuad/z/0/0", {}, 400),  # not a number
        ("/ogc/collections/grids/tiles/WebMercatorQuad/99999/0/0", {}, 400),
        ("/ogc/collections/grids/tiles/Other/1/0/0", {}, 404),
        ("/ogc/collections/nothing/tiles/WebMercatorQuad/1/0/0", {}, 404),
        (f"/ogc/collections/grids/items?limit=100&bbox={bbox}", {}, 200),
        (f"/ogc/collections/incidents/items?limit=20&bbox={bbox}", admin_headers, 200),
        (f"/ogc/collections/incidents/items?limit=20&bbox={bbox}", dispatcher, 200),
        ("/ogc/collections/incidents/items", {}, 401),
        ("/ogc/collections/grids/items?limit=3&offset=2&sortby=-name&properties=name", {}, 200),
        ("/ogc/collections/grids/items?crs=http://www.opengis.net/def/crs/EPSG/0/4490", {}, 200),
        ("/ogc/collections/grids/items?datetime=2020-01-01T00:00:00Z/..", {}, 200),
        ("/ogc/collections/grids/items?filter=name%20LIKE%20'%25a%25'&limit=2", {}, 200),
        ("/ogc/collections/grids/items?limit=0", {}, 400),
        ("/ogc/collections/grids/items?limit=ten", {}, 400),
        ("/ogc/collections/grids/items?limit=99999999", {}, 400),  # over GIS_OGC_MAX_LIMIT
        ("/ogc/collections/grids/items?offset=-1", {}, 400),
        ("/ogc/collections/grids/items?bbox=1,2,3", {}, 400),
        ("/ogc/collections/grids/items?crs=EPSG:9999", {}, 400),
        ("/ogc/collections/grids/items?sortby=nope", {}, 400),
        ("/ogc/collections/grids/items?bbox=" + "1" * 201, {}, 400),  # over max_length
        ("/ogc/collections/nothing/items", {}, 404),
        (f"/ogc/collections/plan-{draft.id}-grids/items", admin_headers, 200),  # a plan's route
    ]
    statuses = [_same(hot, routed, path, headers) for path, headers, _ in cases]
    assert statuses == [status for _, _, status in cases]


def test_a_fast_path_is_skipped_where_an_earlier_route_matches_and_declines_to_its_route() -> None:
    """The router would pick ``/things/special`` before ``/things/{name}``: so must the fast
    path; and what the fast function declines reaches its own route."""
    router = APIRouter()
    calls: list[str] = []

    @router.get("/things/special")
    async def special() -> dict[str, str]:
        return {"by": "special"}

    async def fast(request: Request) -> Response | None:
        calls.append(request.path_params["name"])
        if request.path_params["name"] == "declined":
            return None
        return Response(f"fast {request.path_params['name']}")

    @router.get("/things/{name}")
    @fast_path(fast)
    async def thing(name: str) -> dict[str, str]:
        return {"by": "route", "name": name}

    table = hot_routes(router.routes)
    assert len(table.parameterised) == 1 and len(table.parameterised[0].before) == 1

    app = FastAPI()
    app.include_router(router)
    app.add_middleware(HotPaths, routes=table)
    client = TestClient(app)
    assert client.get("/things/special").json() == {"by": "special"}
    assert client.get("/things/a").text == "fast a"
    assert client.get("/things/declined").json() == {"by": "route", "name": "declined"}
    assert calls == ["a", "declined"]
