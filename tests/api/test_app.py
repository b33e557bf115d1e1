"""The app factory, the one error shape and the request guards."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gis.api import create_app
from gis.layers.categories import Platform
from gis.settings import Settings


def test_health_reports_postgis(client: Any, engine: Any) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["postgis"].startswith("3.")
    with engine.connect() as connection:
        migrated = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
    assert response.json()["schema_revision"] == migrated


def test_unknown_route_uses_the_error_shape(client: Any) -> None:
    response = client.get("/no-such-thing")
    assert response.status_code == 404
    assert set(response.json()) >= {"code", "detail"}


def test_categories_come_from_the_catalog(client: Any) -> None:
    body = client.get("/categories").json()
    platforms = {c["platform"] for c in body}
    assert platforms == {"governance", "market", "enforcement", "service"}
    assert len(body) >= 20
    only_market = client.get("/categories", params={"platform": "market"}).json()
    assert only_market and all(c["platform"] == "market" for c in only_market)


def test_unknown_platform_filter_is_422_with_reason(
    client: Any, admin_headers: dict[str, str]
) -> None:
    # Every route takes its platform through one dependency (gis.api.deps.PlatformDep): the same
    # code and the four platforms named, whether the route lists categories, cases or a map.
    for path, params in [
        ("/categories", {}),
        ("/incidents", {}),
        ("/analytics/hotspots", {"town": "330803001000"}),
    ]:
        response = client.get(path, params={**params, "platform": "fishing"}, headers=admin_headers)
        assert response.status_code == 422, path
        assert response.json()["code"] == "unknown_code", path
        assert "fishing" in response.json()["detail"], path
        assert all(p.value in response.json()["detail"] for p in Platform), path
    response = client.get("/categories", params={"platform": "MARKET"})
    assert response.status_code == 200 and {c["platform"] for c in response.json()} == {"market"}


def test_oversized_body_is_413_before_parsing(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    small = settings.model_copy(update={"max_body_bytes": 2048})
    app = create_app(small)

    @app.post("/echo")
    def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    with TestClient(app) as client:
        response = client.post("/echo", content=b"{" + b" " * 4096 + b"}")
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"
        assert client.post("/echo", json={"a": 1}).json() == {"a": 1}

        def chunks(n: int) -> Any:
            yield b"{"
            for _ in range(n):
                yield b" " * 512
            yield b"}"

        # No Content-Length to check up front: the bytes are counted as they stream in.
        streamed = client.post("/echo", content=chunks(8), headers={"content-type": "x/json"})
        assert streamed.status_code == 413, streamed.text
        assert streamed.json()["code"] == "payload_too_large"
        small_stream = client.post(
            "/echo", content=chunks(1), headers={"content-type": "application/json"}
        )
        assert small_stream.status_code == 200, small_stream.text


def test_malformed_json_is_400(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    app = create_app(settings)

    @app.post("/echo")
    def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    with TestClient(app) as client:
        response = client.post(
            "/echo", content=b'{"a": ', headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "malformed_json"


def test_database_outage_is_503_with_retry_after(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    dead = settings.model_copy(
        update={
            "database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none",
            "db_connect_timeout_s": 1,
        }
    )
    with TestClient(create_app(dead)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "5"


def test_public_layers_are_readable_without_a_token_only_when_allowed(
    settings: Settings, session: Any, catalog: int
) -> None:
    from fastapi.testclient import TestClient

    from tests.conftest import use_session

    for public, expected in ((True, 200), (False, 401)):
        app = create_app(settings.model_copy(update={"public_layers": public}))
        use_session(app, session)
        with TestClient(app) as client:
            response = client.get("/categories")
        assert response.status_code == expected, response.text
        if expected == 401:
            assert "Bearer" in response.json()["detail"]


def test_an_error_carrying_nan_still_serialises(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from gis.errors import InvalidCoordinatesError

    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise InvalidCoordinatesError("lon is not finite", lon=float("nan"), box=[float("inf")])

    with TestClient(app) as client:
        response = client.get("/boom")
    assert response.status_code == 422
    assert response.json() == {
        "code": "invalid_coordinates",
        "detail": "lon is not finite",
        "lon": "nan",
        "box": ["inf"],
    }


def test_error_extras_named_like_the_shape_do_not_break_it(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from gis.errors import ConflictError

    app = create_app(settings)

    @app.get("/clash")
    def clash() -> None:
        raise ConflictError("not now", status="closed", code="sneaky")

    with TestClient(app) as client:
        response = client.get("/clash")
    assert response.status_code == 409
    assert response.json() == {"code": "conflict", "detail": "not now", "status": "closed"}


def test_page_size_is_capped_with_a_reason(client: Any, admin_headers: dict[str, str]) -> None:
    too_many = client.get("/incidents", params={"limit": 1001}, headers=admin_headers)
    assert too_many.status_code == 422
    assert "GIS_MAX_PAGE_SIZE" in too_many.json()["detail"]
    assert (
        client.get("/incidents", params={"limit": 1000}, headers=admin_headers).status_code == 200
    )
    negative = client.get("/incidents", params={"offset": -1}, headers=admin_headers)
    assert negative.status_code == 422


def test_every_guarded_operation_documents_the_bearer_scheme(settings: Settings) -> None:
    """The hot paths guard themselves with one dependency (``allow_hot``) and declare the scheme
    by hand; every other guarded route gets it from ``allow``. /docs must show the lock on all."""
    schema = create_app(settings).openapi()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    unguarded = {("get", "/health"), ("get", "/login"), ("post", "/login"), ("post", "/logout")}
    # GeoReport's service list and discovery are public by the spec; tokens are never issued.
    unguarded |= {
        ("get", f"/open311/v2/{path}.{{fmt}}")
        for path in ("discovery", "services", "services/{service_code}", "tokens/{token}")
    }
    missing = [
        (method, path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "security" not in operation and (method, path) not in unguarded
    ]
    # Public layers are readable without a token when GIS_PUBLIC_LAYERS is on, but still accept
    # one, so they document it as well; only health and logging in/out are open to all.
    assert missing == [], missing
    locate = schema["paths"]["/locate"]["get"]
    assert [p["name"] for p in locate["parameters"]] == ["lon", "lat", "crs", "at"]
    assert {p["in"] for p in locate["parameters"]} == {"query"}


def test_fastapi_telemetry_can_be_switched_on(settings: Settings) -> None:
    """GIS_TELEMETRY hands FastAPI its default telemetry config; the app still answers (with no
    OpenTelemetry provider configured it records nothing)."""
    from fastapi.testclient import TestClient

    for on in (False, True):
        app = create_app(settings.model_copy(update={"telemetry": on}))
        with TestClient(app) as client:
            assert client.get("/health").status_code == 200, on
