"""Schemathesis over the OGC API's own document (/ogc/api): generated requests to every
operation never get a server error, and every error is an OGC exception."""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

EXAMPLES = int(os.environ.get("GIS_FUZZ_EXAMPLES", "10"))


def test_no_server_errors_and_errors_are_ogc_exceptions(
    app: Any, demo: dict[str, object], admin_headers: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_asgi("/ogc/api", app)
    schema.config.update(base_url="http://testserver/ogc")
    failures: list[str] = []
    statuses: set[int] = set()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: Any) -> None:
            case.headers = {**(case.headers or {}), **admin_headers}
            response = case.call()
            statuses.add(response.status_code)
            where = f"{case.method} {case.formatted_path} {case.query or ''}"
            if response.status_code >= 500 and response.status_code != 503:
                failures.append(f"{where} -> {response.status_code}: {response.text[:300]}")
            elif response.status_code >= 400:
                body = response.json()
                if not (isinstance(body, dict) and body.get("code") and body.get("description")):
                    failures.append(f"{where} -> not an OGC exception: {response.text[:200]}")

        exercise()
    assert operations >= 12
    assert {200, 404} <= statuses  # the generated requests reached the routes
    assert not failures, "\n".join(failures[:20])
