"""What the OpenAPI document promises, checked directly: methods and Allow, optional security
that follows the settings, limits that follow the settings, strict types at the boundary.
(tests/api/test_fuzz.py checks the whole document with schemathesis.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gis.settings import Settings

METHODS = {"get", "put", "post", "patch", "delete"}


def _openapi(settings: Settings, **update: Any) -> dict[str, Any]:
    from gis.api import create_app

    schema: dict[str, Any] = create_app(settings.model_copy(update=update)).openapi()
    return schema


def test_a_method_the_path_lacks_is_405_with_every_method_it_has(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    """GET and POST /cameras are two routes; Allow names both (Starlette named only one)."""
    reply = client.request("TRACE", "/cameras", headers=admin_headers)
    assert reply.status_code == 405
    assert reply.headers["allow"] == "GET, OPTIONS, POST"
    assert reply.json()["code"] == "method_not_allowed" and "GET" in reply.json()["detail"]
    assert client.delete("/incidents/1").headers["allow"] == "GET, OPTIONS"


def test_options_names_the_methods_of_every_documented_path(client: TestClient) -> None:
    """OPTIONS on each path of the document: 204 and exactly its documented methods."""
    paths = client.get("/openapi.json").json()["paths"]
    for path, item in paths.items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        reply = client.options(concrete)
        assert reply.status_code == 204, (path, reply.text)
        documented = {m.upper() for m in item if m in METHODS} | {"OPTIONS"}
        assert set(reply.headers["allow"].split(", ")) == documented, path


def test_a_literal_path_is_not_confused_with_a_template_it_fits(client: TestClient) -> None:
    """/cameras/seeing also fits /cameras/{code} (GET, PATCH); its own resource has only GET."""
    assert client.options("/cameras/seeing").headers["allow"] == "GET, OPTIONS"
    assert client.options("/cameras/C-1").headers["allow"] == "GET, OPTIONS, PATCH"


def test_options_on_a_path_that_does_not_exist_is_404(client: TestClient) -> None:
    reply = client.options("/no/such/path")
    assert reply.status_code == 404 and "allow" not in reply.headers


@pytest.mark.parametrize("public", [True, False])
def test_public_layers_document_an_optional_token_only_when_public(
    settings: Settings, public: bool
) -> None:
    schema = _openapi(settings, public_layers=public)
    optional = [{}, {"HTTPBearer": []}]
    for path in ("/categories", "/regions", "/grids", "/grids/{code}/history", "/services"):
        security = schema["paths"][path]["get"]["security"]
        assert security == (optional if public else [{"HTTPBearer": []}]), path
    # Never for what needs a token whatever the setting.
    assert schema["paths"]["/cameras"]["get"]["security"] == [{"HTTPBearer": []}]
    assert schema["paths"]["/incidents"]["post"]["security"] == [{"HTTPBearer": []}]


def test_without_auth_every_guarded_operation_documents_an_optional_token(
    settings: Settings,
) -> None:
    schema = _openapi(settings, auth_required=False)
    for item in schema["paths"].values():
        for method, operation in item.items():
            if method in METHODS and "security" in operation:
                assert {} in operation["security"]


def test_limits_are_in_the_schema_and_follow_the_settings(settings: Settings) -> None:
    schema = _openapi(settings, max_page_size=250)
    params = {p["name"]: p for p in schema["paths"]["/incidents"]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == 250
    assert "x-gis-maximum-setting" not in str(schema)
    nearest = {p["name"]: p for p in schema["paths"]["/dispatch/nearest"]["get"]["parameters"]}
    assert (nearest["k"]["schema"]["minimum"], nearest["k"]["schema"]["maximum"]) == (1, 50)
    assert nearest["lat"]["schema"]["maximum"] == 90
    assert "GCJ-02" in nearest["crs"]["schema"]["enum"]
    group_by = {p["name"]: p for p in schema["paths"]["/stats/cases"]["get"]["parameters"]}
    assert group_by["group_by"]["schema"]["uniqueItems"] is True
    assert group_by["group_by"]["explode"] is False


def test_domain_rules_are_documented_per_operation(settings: Settings) -> None:
    """A 422 no schema can prevent is listed, with its code, on the operation it can come from."""
    schema = _openapi(settings)
    report = schema["paths"]["/incidents"]["post"]["responses"]["422"]
    assert set(report["x-domain-errors"]) == {
        "invalid_coordinates",
        "outside_coverage",
        "unknown_code",
        "validation_error",  # a media: photo not uploaded first
    }
    assert "`outside_coverage`" in report["description"]
    assert "x-domain-errors" not in schema["paths"]["/cameras"]["get"]["responses"]["422"]


@pytest.mark.parametrize(
    "query",
    [
        {"until": "0.5"},
        {"since": "1700000000"},
        {"since": "2026-11-01T00:00:00"},  # no offset: which zone?
    ],
)
def test_a_time_in_a_query_is_an_iso_string_with_an_offset(
    client: TestClient, admin_headers: dict[str, str], query: dict[str, str]
) -> None:
    reply = client.get("/incidents", params=query, headers=admin_headers)
    assert reply.status_code == 422, reply.text
    assert reply.json()["code"] == "validation_error"


def _report(**location: Any) -> dict[str, Any]:
    return {
        "category": "cooking_fume",
        "location": {"lon": 118.87, "lat": 28.94, **location},
        "reporter": {"kind": "citizen"},
    }


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/incidents", _report(lon=True), "lon"),
        ("/incidents", _report(lat="28.94"), "lat"),
        ("/incidents", {**_report(), "occurred_at": 0.5}, "occurred_at"),
        ("/incidents", {**_report(), "occurred_at": "2026-11-27T09:30:00"}, "occurred_at"),
        ("/incidents", {**_report(), "photos": ["ftp://example.org/p.jpg"]}, "photos"),
        ("/incidents/1/actions", {"action": "assign", "unit_id": True}, "unit_id"),
        ("/incidents/1/actions", {"action": "assign", "unit_id": "3"}, "unit_id"),
        ("/incidents/1/actions", {"action": "extend", "due_at": 1800000000}, "due_at"),
    ],
)
def test_a_body_takes_numbers_as_numbers_and_times_as_iso_strings(
    client: TestClient, admin_headers: dict[str, str], path: str, body: dict[str, Any], field: str
) -> None:
    reply = client.post(path, json=body, headers=admin_headers)
    assert reply.status_code == 422, reply.text
    assert reply.json()["code"] == "validation_error" and field in reply.json()["detail"]


def test_a_partial_update_refuses_null_for_a_field_it_would_keep(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    reply = client.patch("/units/1", json={"status": None}, headers=admin_headers)
    assert reply.status_code == 422 and "status" in reply.json()["detail"]


@pytest.mark.parametrize("public", [True, False])
def test_open311_reads_document_an_optional_key_only_when_public(
    settings: Settings, public: bool
) -> None:
    schema = _openapi(settings, open311_public=public)
    security = schema["paths"]["/open311/v2/requests.{fmt}"]["get"]["security"]
    assert ({} in security) is public
    assert {"Open311ApiKey": []} in security  # a key still works
