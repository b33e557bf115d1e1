"""The OpenAPI document tells the truth: schemathesis, with every check, over the whole API.

This is ``st run --checks all`` (docs/contract.md) run in-process by schemathesis' own engine:
every phase (examples, coverage, fuzzing, stateful), every operation, a fixed seed, as an admin,
against the app of the ``app`` fixture, so every generated request runs inside the test's
rolled-back transaction. It passes only with 0 failures.

Adding an endpoint needs nothing here. One that cannot run in-process, or a check that cannot
apply to one, goes in ``EXCLUDED_OPERATIONS`` / ``EXCLUDED_CHECKS`` with its reason; a service
that publishes its own document (OGC API, Open311) adds it to ``DOCUMENTS``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from sqlalchemy.orm import Session

from gis.layers.errands import load_services

# Examples per operation and phase (GIS_FUZZ_EXAMPLES); the seed makes a failure reproducible.
EXAMPLES = int(os.environ.get("GIS_FUZZ_EXAMPLES", "5"))
SEED = int(os.environ.get("GIS_FUZZ_SEED", "22"))
# Only the paths matching this regex (GIS_FUZZ_ONLY='^/cameras'): a quick run while working on
# some endpoints; the suite runs them all.
ONLY = os.environ.get("GIS_FUZZ_ONLY")

# The OpenAPI documents the app publishes; each is checked on its own.
DOCUMENTS = ["/openapi.json"]

# "METHOD /path" (as in the document) -> why it is not generated against.
EXCLUDED_OPERATIONS: dict[str, str] = {
    # e.g. "GET /events/stream": "an endless server-sent event stream: no response to check",
}

# Path regex -> {check name -> why it is off for the operations of those paths}.
EXCLUDED_CHECKS_BY_PATH: dict[str, dict[str, str]] = {
    "^/events/stream$": {
        "positive_data_acceptance": "schemathesis sends the optional Last-Event-ID header's "
        "null as the text 'null'; the stream answers a Last-Event-ID that is not a number with "
        "400, as issue #13 requires (a browser only ever sends the id it received)",
    },
    "^/open311/": {
        "positive_data_acceptance": "GeoReport v2 answers every refusal 400, its domain rules "
        "too (a 90-day window, a location given as lat/long, address_string or address_id, "
        "fields that depend on one another), so a documented rule cannot be told from a "
        "hidden limit by status; its form bodies are free-form in this document",
    },
}

# Check name -> why it is off for the whole run. (`max_response_time` runs only when given a
# limit, as on the command line; none is given: speed is measured by bench/, not in tests.)
EXCLUDED_CHECKS: dict[str, str] = {}


@schemathesis.check
def domain_rejection_is_documented(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request refused with 422 names a rule its operation documents.

    Rules no schema can express (a point outside the service area, a code not in the catalog)
    are listed per operation with their error codes (``x-domain-errors``, see
    ``gis.api.errors.domain_errors``); any other 422 to valid data is a limit the schema hides.
    """
    meta = case.meta
    if response.status_code != 422 or meta is None or not meta.generation.mode.is_positive:
        return None
    documented = case.operation.definition.raw.get("responses", {}).get("422", {})
    codes = documented.get("x-domain-errors", [])
    try:
        code = json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        code = None
    if code not in codes:
        raise AssertionError(
            f"a schema-valid request was refused with 422 {code!r}, which this operation does "
            f"not document (x-domain-errors: {codes}): {response.content[:300]!r}"
        )
    return None


def _operation(label: str) -> dict[str, str]:
    """The config selector of one operation, "METHOD /path"."""
    method, path = label.split(" ", 1)
    return {"include-method": method, "include-path": path}


def _config(headers: dict[str, str]) -> SchemathesisConfig:
    """`st run --checks all` with a fixed seed, as the caller of ``headers``."""
    # A 422 to valid data is judged by domain_rejection_is_documented instead.
    accepted = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "workers": 1,  # the app shares the test's one session
            "headers": headers,
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            "checks": {
                "enabled": True,
                "positive_data_acceptance": {"expected-statuses": accepted},
                **{name: {"enabled": False} for name in EXCLUDED_CHECKS},
            },
            "operations": ([{"exclude-path-regex": ONLY, "enabled": False}] if ONLY else [])
            + [{**_operation(label), "enabled": False} for label in EXCLUDED_OPERATIONS]
            + [
                {
                    "include-path-regex": paths,
                    "checks": {name: {"enabled": False} for name in checks},
                }
                for paths, checks in EXCLUDED_CHECKS_BY_PATH.items()
            ],
        }
    )


def _failures(stream: Any) -> tuple[list[str], set[str]]:
    """Every failed check and engine error of a run, and the operations it tested."""
    failures: list[str] = []
    tested: set[str] = set()
    for event in stream:
        if isinstance(event, events.ScenarioFinished):
            tested.add(event.recorder.label)
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    interaction = event.recorder.interactions.get(case_id)
                    sent = ""
                    if interaction is not None:
                        request = interaction.request
                        body = (request.body or b"")[:200]
                        sent = f"\n    {request.method} {request.uri[:300]} {body!r}"
                        if interaction.response is not None:
                            reply = interaction.response
                            sent += f"\n    -> {reply.status_code} {reply.content[:300]!r}"
                    failures.append(
                        f"[{event.phase.value}] {event.recorder.label}: {check.name}: "
                        f"{failure.title}: {failure.message[:400]}{sent}"
                    )
        elif isinstance(event, events.NonFatalError):
            # Mostly an exception the app raised (a 500): its traceback and the request.
            failures.append(f"[{event.phase}] {event.label}: error: {event.info.format()[-2500:]}")
        elif isinstance(event, events.FatalError):
            failures.append(f"fatal error: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            failures.extend(f"after run: {f.title}: {f.message[:400]}" for f in event.failures)
    return failures, tested


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_check_of_schemathesis_passes(
    app: Any,
    session: Session,
    demo: dict[str, object],
    admin_headers: dict[str, str],
    document: str,
) -> None:
    """All of schemathesis' checks over every operation of ``document``: 0 failures."""
    load_services(session)  # the errand catalog, so that errands can be requested
    schema = schemathesis.openapi.from_asgi(document, app, config=_config(admin_headers))
    failures, tested = _failures(from_schema(schema).execute())
    unique = sorted(set(failures))
    assert not unique, f"{len(unique)} failures:\n" + "\n".join(unique[:40])
    documented = {
        f"{method.upper()} {path}"
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    }
    missed = documented - tested - set(EXCLUDED_OPERATIONS)
    assert ONLY or not missed, f"operations never tested: {sorted(missed)}"
