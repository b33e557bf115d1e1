"""Every text field is stored verbatim: SQL-looking input is data, never SQL (all parameters are
bound). Each hostile string goes in through the API and comes back unchanged from the database."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.layers.errands import load_services
from tests.services.intake_fixtures import Area, area

__all__ = ["area"]

HOSTILE = [
    "'; DROP TABLE incidents; --",
    '" OR "1"="1',
    "1' OR '1'='1' /*",
    "$$; SELECT pg_sleep(5); $$",
    "%s %(x)s {0} :name ?",
    "\\x27\\\\ back\\slash",
    "Robert'); DELETE FROM incident_events WHERE ('1'='1",
    "<script>alert(1)</script> 油烟扰民 ☕",
]


@pytest.fixture
def api(client: Any, area: Area, admin_headers: dict[str, str]) -> Any:
    """An admin client over the hand-made county."""
    client.headers.update(admin_headers)
    return client


@pytest.mark.parametrize("text", HOSTILE)
def test_incident_text_fields_are_stored_verbatim(api: Any, session: Session, text: str) -> None:
    key = text if text.isascii() else "non-ascii"  # HTTP header values are ASCII
    reply = api.post(
        "/incidents",
        json={
            "category": "public_security_hazard",
            "location": {"lon": 110.005, "lat": 30.005},
            "description": text,
            "reporter": {"kind": "citizen", "id": text[:100]},
        },
        headers={"Idempotency-Key": key},
    )
    assert reply.status_code == 201, reply.text
    row = session.execute(
        sa.text("SELECT description, reporter_id, idempotency_key FROM incidents WHERE id = :id"),
        {"id": reply.json()["id"]},
    ).one()
    assert tuple(row) == (text, text[:100], key)
    assert api.get(f"/incidents/{reply.json()['id']}").json()["description"] == text
    # The tables the strings talk about are all still there.
    assert session.scalar(sa.text("SELECT count(*) FROM incident_events")) > 0

    action = api.post(
        f"/incidents/{reply.json()['id']}/actions",
        json={"action": "accept", "note": text},
    )
    assert action.status_code == 200, action.text
    note = session.scalar(
        sa.text("SELECT note FROM incident_events WHERE incident_id = :id AND action = 'accept'"),
        {"id": reply.json()["id"]},
    )
    assert note == text


@pytest.mark.parametrize("text", HOSTILE)
def test_errand_and_camera_text_fields_are_stored_verbatim(
    api: Any, session: Session, text: str
) -> None:
    load_services(session)
    errand = api.post(
        "/errands",
        json={
            "service": "elderly_card",
            "applicant_name": text[:100],
            "applicant_phone": "13800000000",
            "home": {"lon": 110.005, "lat": 30.005},
            "note": text,
        },
    )
    assert errand.status_code == 201, errand.text
    stored = session.execute(
        sa.text("SELECT applicant_name, note FROM errands WHERE id = :id"),
        {"id": errand.json()["id"]},
    ).one()
    assert tuple(stored) == (text[:100], text)

    camera = api.post(
        "/cameras",
        json={"code": "CAM-INJ-1", "name": text[:100], "lon": 110.005, "lat": 30.005},
    )
    assert camera.status_code == 201, camera.text
    assert (
        session.scalar(sa.text("SELECT name FROM cameras WHERE code = 'CAM-INJ-1'")) == text[:100]
    )


def test_hostile_filters_are_values_not_sql(api: Any) -> None:
    for text in HOSTILE:
        reply = api.get("/incidents", params={"category": text[:50], "town": text[:12]})
        assert reply.status_code == 200, reply.text
        assert reply.json()["features"] == []
