"""Schemathesis against the app's own OpenAPI: no 500s and responses that match their schemas,
for a bounded number of generated requests per operation (GIS_FUZZ_EXAMPLES, default 10).

The operations are driven from a plain test (not schemathesis' pytest plugin) so the per-test
rolled-back session of the ``app`` fixture holds every generated request."""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("GIS_FUZZ_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_no_server_errors_and_responses_match_their_schema(
    app: Any, demo: dict[str, object], admin_headers: dict[str, str]
) -> None:
    """Every operation, with generated input: never a 500, always a documented response."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
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
            if response.status_code >= 500 and response.status_code != 503:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query or ''} -> "
                    f"{response.status_code}: {response.text[:300]}"
                )
                return
            try:
                case.validate_response(response, checks=CHECKS)
            except (Exception, BaseExceptionGroup) as error:  # a group of check failures
                failures.append(f"{case.method} {case.formatted_path}: {str(error)[:300]}")

        exercise()
    assert operations >= 10
    assert not failures, "\n".join(failures[:20])
