"""The map pages over HTTP: HTML for good requests, the JSON error shape for bad ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gis.api import create_app
from gis.maps import command_room as cr
from gis.settings import Settings
from tests.conftest import use_session
from tests.maps.town import OTHER_TOWN, TOWN, VILLAGE_1, build_town, page_text

PERIOD = {"since": "2026-10-01T00:00:00+08:00", "until": "2026-11-01T00:00:00+08:00"}


def _client(settings: Settings, session: Session, **changes: Any) -> TestClient:
    application = create_app(
        settings.model_copy(update={"auth_required": False, "map_assets": "cdn", **changes})
    )
    use_session(application, session)
    return TestClient(application)


@pytest.fixture
def maps_client(settings: Settings, session: Session, catalog: int) -> Iterator[TestClient]:
    """A client on the hand-made town, without tokens (auth is tested separately)."""
    build_town(session)
    # The town lives in the test's transaction, never in the stored facts: figures read exactly.
    with _client(settings, session, stats_stale_after_s=0) as client:
        yield client


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    return str(body["detail"])


def test_command_room_page_is_html_with_every_layer(maps_client: TestClient) -> None:
    response = maps_client.get("/maps/command-room", params={"town": TOWN, **PERIOD})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert "高家镇 综合信息指挥室 — Gaojia command room" in page_text(html)
    assert "受理 Received 7" in page_text(html)
    for name in cr.LAYERS:
        assert name.encode("unicode_escape").decode() in html


def test_command_room_filters_by_platform(maps_client: TestClient) -> None:
    response = maps_client.get(
        "/maps/command-room", params={"town": TOWN, "platform": "market", **PERIOD}
    )
    assert response.status_code == 200
    text = page_text(response.text)
    assert "受理 Received 2" in text and "平台 platform: market" in text


def test_the_same_request_gives_the_same_page(maps_client: TestClient) -> None:
    params = {"town": TOWN, **PERIOD}
    first = maps_client.get("/maps/command-room", params=params).text
    assert first == maps_client.get("/maps/command-room", params=params).text


def test_unknown_town_is_404(maps_client: TestClient) -> None:
    detail = _error(maps_client.get("/maps/command-room", params={"town": "123"}), 404, "not_found")
    assert "no town with code '123'" in detail


def test_until_before_since_is_422_with_the_reason(maps_client: TestClient) -> None:
    params = {"town": TOWN, "since": PERIOD["until"], "until": PERIOD["since"]}
    detail = _error(maps_client.get("/maps/command-room", params=params), 422, "validation_error")
    assert "must be after since" in detail


def test_unknown_basemap_is_422_naming_the_known_ones(maps_client: TestClient) -> None:
    response = maps_client.get("/maps/command-room", params={"town": TOWN, "basemap": "google"})
    detail = _error(response, 422, "validation_error")
    assert "basemap" in detail and "amap" in detail


def test_tianditu_without_a_key_is_422_saying_to_set_it(maps_client: TestClient) -> None:
    response = maps_client.get("/maps/command-room", params={"town": TOWN, "basemap": "tianditu"})
    assert "GIS_TIANDITU_KEY" in _error(response, 422, "validation_error")


def test_tianditu_with_a_key_serves_its_tiles(
    settings: Settings, session: Session, catalog: int
) -> None:
    build_town(session)
    with _client(settings, session, tianditu_key="abc") as client:
        response = client.get("/maps/command-room", params={"town": TOWN, "basemap": "tianditu"})
    assert response.status_code == 200 and "tk=abc" in response.text


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"platform": "weather"}, 422, "unknown_code"),
        ({"category": "no_such_category"}, 422, "unknown_code"),
        ({"cell_m": "1"}, 422, "validation_error"),
        ({"cell_m": "nan"}, 422, "validation_error"),
        ({"since": "yesterday"}, 422, "validation_error"),
        ({"step": "hour"}, 422, "validation_error"),
        ({"max_markers": "-1"}, 422, "validation_error"),
        ({"max_markers": "5001"}, 422, "validation_error"),
        ({"since": "2024-01-01", "until": "2026-01-01", "step": "day"}, 422, "validation_error"),
    ],
)
def test_bad_parameters_are_4xx_in_the_error_shape(
    maps_client: TestClient, params: dict[str, str], status: int, code: str
) -> None:
    response = maps_client.get("/maps/command-room", params={"town": TOWN, **params})
    _error(response, status, code)


def test_missing_town_is_422(maps_client: TestClient) -> None:
    _error(maps_client.get("/maps/command-room"), 422, "validation_error")


def test_village_grids_page(maps_client: TestClient) -> None:
    response = maps_client.get("/maps/grids", params={"village": VILLAGE_1})
    assert response.status_code == 200
    assert "高家镇东山村 网格图 — Dongshan grids" in page_text(response.text)


def test_village_grids_of_a_town_code_is_404(maps_client: TestClient) -> None:
    _error(maps_client.get("/maps/grids", params={"village": TOWN}), 404, "not_found")


def test_local_assets_missing_is_503_saying_how_to_fetch(
    settings: Settings, session: Session, catalog: int, tmp_path: Path
) -> None:
    build_town(session)
    with _client(settings, session, map_assets="local", map_assets_dir=str(tmp_path)) as client:
        response = client.get("/maps/command-room", params={"town": TOWN})
    assert "gis map assets" in _error(response, 503, "map_assets_missing")


def test_assets_are_served_from_the_folder_and_nothing_outside_it(
    settings: Settings, session: Session, tmp_path: Path
) -> None:
    (tmp_path / "assets" / "leaflet@1.9.3" / "dist").mkdir(parents=True)
    (tmp_path / "assets" / "leaflet@1.9.3" / "dist" / "leaflet.js").write_text("/* leaflet */")
    (tmp_path / "secret.txt").write_text("secret")
    changes = {"map_assets_dir": str(tmp_path / "assets")}
    with _client(settings, session, **changes) as client:
        ok = client.get("/maps/assets/leaflet@1.9.3/dist/leaflet.js")
        assert ok.status_code == 200 and ok.text == "/* leaflet */"
        assert "max-age" in ok.headers["cache-control"]
        _error(client.get("/maps/assets/%2e%2e/secret.txt"), 404, "not_found")
        _error(client.get("/maps/assets/leaflet@1.9.3/nothing.js"), 404, "not_found")


def test_auto_mode_uses_local_assets_once_fetched(
    settings: Settings, session: Session, catalog: int, tmp_path: Path
) -> None:
    from gis.maps.assets import missing_files

    for path in missing_files(tmp_path):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    build_town(session)
    with _client(settings, session, map_assets="auto", map_assets_dir=str(tmp_path)) as client:
        html = client.get("/maps/command-room", params={"town": TOWN}).text
    assert "/maps/assets/leaflet@1.9.3/dist/leaflet.js" in html
    assert "cdn.jsdelivr.net" not in html


def test_pages_need_a_token_when_auth_is_on(
    settings: Settings, session: Session, catalog: int
) -> None:
    build_town(session)
    application = create_app(settings.model_copy(update={"auth_required": True}))
    use_session(application, session)
    with TestClient(application) as client:
        response = client.get("/maps/command-room", params={"town": OTHER_TOWN})
    _error(response, 401, "unauthorized")


def _token(session: Session, role: str, towns: list[str]) -> str:
    from gis.layers.users import Role
    from gis.services import access

    user = access.add_user(session, name=f"maps-{role}", role=Role(role), town_codes=towns)
    return access.issue_token(session, user)


def test_a_command_room_sees_its_town_and_not_another(
    settings: Settings, session: Session, catalog: int
) -> None:
    build_town(session)
    token = _token(session, "command_room", [OTHER_TOWN])
    application = create_app(settings.model_copy(update={"auth_required": True}))
    use_session(application, session)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(application) as client:
        own = client.get("/maps/command-room", params={"town": OTHER_TOWN}, headers=headers)
        other = client.get("/maps/command-room", params={"town": TOWN}, headers=headers)
        village = client.get("/maps/grids", params={"village": VILLAGE_1}, headers=headers)
    assert own.status_code == 200 and "别镇 综合信息指挥室" in page_text(own.text)
    _error(other, 404, "not_found")
    _error(village, 404, "not_found")


def test_a_grid_member_may_not_open_the_command_room(
    settings: Settings, session: Session, catalog: int
) -> None:
    build_town(session)
    token = _token(session, "grid_member", [TOWN])
    application = create_app(settings.model_copy(update={"auth_required": True}))
    use_session(application, session)
    with TestClient(application) as client:
        response = client.get(
            "/maps/command-room",
            params={"town": TOWN},
            headers={"Authorization": f"Bearer {token}"},
        )
    _error(response, 403, "forbidden")


def test_a_cached_page_is_served_again_but_only_to_those_who_may_see_its_town(
    settings: Settings, session: Session, catalog: int
) -> None:
    """The page cache (GIS_PAGE_CACHE_S): the same page for the same filters, another for
    others, and the access check still runs on every request."""
    build_town(session)
    own = {"Authorization": f"Bearer {_token(session, 'command_room', [TOWN])}"}
    other = {"Authorization": f"Bearer {_token(session, 'dispatcher', [OTHER_TOWN])}"}
    application = create_app(
        settings.model_copy(update={"auth_required": True, "page_cache_s": 60.0})
    )
    use_session(application, session)
    with TestClient(application) as client:
        first = client.get("/maps/command-room", params={"town": TOWN}, headers=own)
        again = client.get("/maps/command-room", params={"town": TOWN}, headers=own)
        by_load = client.get(
            "/maps/command-room", params={"town": TOWN, "metric": "closure"}, headers=own
        )
        refused = client.get("/maps/command-room", params={"town": TOWN}, headers=other)
    assert first.status_code == again.status_code == by_load.status_code == 200
    assert again.text == first.text  # built once: element ids would differ otherwise
    assert "gis-live" in first.text and '"after":' in first.text
    assert by_load.text != first.text
    _error(refused, 404, "not_found")
