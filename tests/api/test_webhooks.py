"""Webhooks against the real service and a receiver on loopback: signed deliveries, retries,
records, and the outbox written in the transaction of the change (a crash loses nothing)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.layers.live import Webhook
from gis.layers.users import Role
from gis.services import webhooks
from gis.settings import Settings
from tests.api.live_fixtures import committed_users, demo_towns, live_settings, serve
from tests.live import free_port


class Receiver:
    """An HTTP server on loopback that records what it is sent and answers with the statuses
    it is told, in turn (then 200)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, seconds: float = 10) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + seconds
        while len(self.received) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"{len(self.received)} of {count} deliveries after {seconds} s")
            time.sleep(0.05)
        return self.received


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="module")
def camera(demo: object, engine: Engine) -> Iterator[tuple[str, str]]:
    """(code, town) of an online demo camera; its status is put back afterwards."""
    with engine.connect() as conn:
        code, town = conn.execute(
            sa.text(
                "SELECT code, town_code FROM cameras WHERE status = 'online' ORDER BY id LIMIT 1"
            )
        ).one()
    yield code, town
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE cameras SET status = 'online' WHERE code = :c"), {"c": code})
        conn.execute(sa.text("DELETE FROM webhooks"))


def set_camera(engine: Engine, code: str, status: str) -> int:
    """Commit a camera's status; returns the feed id of the change."""
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE cameras SET status = :s WHERE code = :c"), {"s": status, "c": code}
        )
        return int(conn.scalar(sa.text("SELECT max(id) FROM live_events")))


def deliveries(engine: Engine, webhook_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT event_id, status, attempts, last_status_code, last_error "
                    "FROM webhook_deliveries WHERE webhook_id = :w ORDER BY id"
                ),
                {"w": webhook_id},
            )
        )


@pytest.fixture(scope="module")
def service(settings: Settings, engine: Engine, demo: object) -> Iterator[dict[str, Any]]:
    from gis.api import create_app

    town = demo_towns(engine)[0]
    specs = {"hook-admin": (Role.ADMIN, []), "hook-room": (Role.COMMAND_ROOM, [town.code])}
    with (
        committed_users(engine, specs) as headers,
        serve(create_app(live_settings(settings))) as url,
    ):
        yield {"url": url, "headers": headers}


def test_the_outbox_is_written_with_the_change_and_delivered_after_a_crash(
    settings: Settings, engine: Engine, receiver: Receiver, camera: tuple[str, str]
) -> None:
    """No service runs while the change commits (as if it crashed): the delivery is owed all
    the same, a rolled-back change owes nothing, and a delivery claimed by a sender that died
    (its lease ran out) is sent again. The next service start delivers both."""
    from gis.api import create_app

    code, _ = camera
    with Session(engine) as setup:
        hook = webhooks.register(
            setup, url=receiver.url, event_types=["camera.status"], town_codes=None,
            created_by="test", own=[],
        ).webhook  # fmt: skip
        setup.commit()
        hook_id = hook.id
    with engine.connect() as conn, conn.begin() as tx:  # rolled back: nothing owed
        conn.execute(
            sa.text("UPDATE cameras SET status = 'maintenance' WHERE code = :c"), {"c": code}
        )
        tx.rollback()
    assert deliveries(engine, hook_id) == []
    set_camera(engine, code, "offline")  # whatever it was, so that both below are changes
    with engine.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM webhook_deliveries WHERE webhook_id = :w"), {"w": hook_id}
        )
    first = set_camera(engine, code, "maintenance")
    second = set_camera(engine, code, "online")
    # The first was claimed by a sender that died before recording: its lease has run out.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE webhook_deliveries SET attempts = 1, next_attempt_at = now() "
                "WHERE webhook_id = :w AND event_id = :e"
            ),
            {"w": hook_id, "e": first},
        )
    assert [(d.event_id, d.status) for d in deliveries(engine, hook_id)] == [
        (first, "pending"),
        (second, "pending"),
    ]
    with serve(create_app(live_settings(settings))):
        got = receiver.wait_for(2)
        assert sorted(int(h["X-Gis-Event-Id"]) for h, _ in got) == [first, second]
        deadline = time.monotonic() + 5
        while {d.status for d in deliveries(engine, hook_id)} != {"delivered"}:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert [d.attempts for d in deliveries(engine, hook_id)] == [2, 1]
    with Session(engine) as cleanup:
        cleanup.execute(sa.delete(Webhook).where(Webhook.id == hook_id))
        cleanup.commit()


def test_a_delivery_is_signed_retried_after_a_failure_and_recorded(
    service: dict[str, Any], receiver: Receiver, camera: tuple[str, str], engine: Engine
) -> None:
    code, town = camera
    created = httpx.post(
        service["url"] + "/webhooks",
        headers=service["headers"]["hook-admin"],
        json={"url": receiver.url, "event_types": ["camera.status"], "towns": [town]},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    receiver.answers = [500]  # the first attempt fails
    event_id = set_camera(engine, code, "offline")
    (first, _), (second, body) = receiver.wait_for(2, seconds=10)
    assert first["X-Gis-Delivery"] == second["X-Gis-Delivery"]  # the same delivery, again
    stamp = second["X-Gis-Timestamp"]
    expected = hmac.new(hook["secret"].encode(), stamp.encode() + b"." + body, hashlib.sha256)
    assert second["X-Gis-Signature"] == "sha256=" + expected.hexdigest()
    assert second["X-Gis-Signature"] == webhooks.sign(hook["secret"], stamp, body)
    event = json.loads(body)
    assert (event["id"], event["type"], event["town"], event["status"]) == (
        event_id,
        "camera.status",
        town,
        "offline",
    )
    assert second["X-Gis-Event-Id"] == str(event_id)
    deadline = time.monotonic() + 5
    while deliveries(engine, hook["id"])[0].status != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    record = httpx.get(
        f"{service['url']}/webhooks/{hook['id']}/deliveries",
        headers=service["headers"]["hook-admin"],
        timeout=10,
    ).json()
    assert [(d["event_id"], d["status"], d["attempts"]) for d in record] == [
        (event_id, "delivered", 2)
    ]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.org/x", "http"),
        ("http:///nohost", "host"),
        ("https://user:pw@example.org/", "credentials"),
        ("not a url", "http"),
    ],
)
def test_bad_webhook_urls_are_refused(service: dict[str, Any], url: str, why: str) -> None:
    reply = httpx.post(
        service["url"] + "/webhooks",
        headers=service["headers"]["hook-admin"],
        json={"url": url, "event_types": ["case.created"]},
        timeout=10,
    )
    assert reply.status_code == 422 and why in reply.json()["detail"]


def test_the_service_itself_unknown_types_and_non_admins_are_refused(
    service: dict[str, Any],
) -> None:
    admin = service["headers"]["hook-admin"]
    port = service["url"].rsplit(":", 1)[1]
    for url in (service["url"] + "/incidents", f"http://localhost:{port}/x"):
        itself = httpx.post(
            service["url"] + "/webhooks",
            headers=admin,
            json={"url": url, "event_types": ["case.created"]},
            timeout=10,
        )
        assert itself.status_code == 422 and "itself" in itself.json()["detail"]
    unknown = httpx.post(
        service["url"] + "/webhooks",
        headers=admin,
        json={"url": "http://example.org/", "event_types": ["case.teleported"]},
        timeout=10,
    )
    assert unknown.status_code == 422
    room = httpx.post(
        service["url"] + "/webhooks",
        headers=service["headers"]["hook-room"],
        json={"url": "http://example.org/", "event_types": ["case.created"]},
        timeout=10,
    )
    assert room.status_code == 403
