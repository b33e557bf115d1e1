"""A real service (uvicorn on loopback, asyncpg pool, LISTEN connection) for the live-feed
tests, committed users and cases, and a small Server-Sent Events reader."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.layers.users import Role, User
from gis.services import access
from gis.settings import Settings
from tests.live import serve as serve_app


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """uvicorn serving ``app`` in a thread on a free loopback port; yields its base URL. Open
    event streams are cut after a second when it stops."""
    with serve_app(app, graceful_shutdown_s=1) as url:
        yield url


def listener_pids(engine: Engine) -> list[int]:
    """Backends of the API's LISTEN connections (``gis.db_async.AsyncDatabase.listen``)."""
    with engine.connect() as conn:
        return list(
            conn.scalars(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'gis-listen' "
                    "AND datname = current_database()"
                )
            )
        )


@dataclass
class Town:
    """A demo town: its code and a point inside one of its grids."""

    code: str
    lon: float
    lat: float
    grid_code: str


def demo_towns(engine: Engine) -> list[Town]:
    """Two demo towns with a point well inside a grid of each."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """
SELECT DISTINCT ON (g.town_code) g.town_code, g.code,
       ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat
FROM grids AS g WHERE g.valid_to IS NULL ORDER BY g.town_code, g.code LIMIT 2
"""
            )
        ).all()
    return [Town(r.town_code, r.lon, r.lat, r.code) for r in rows]


def report_case(url: str, headers: dict[str, str], lon: float, lat: float) -> int:
    """POST a citizen's case at (lon, lat) to the service at ``url``; returns its id."""
    reply = httpx.post(
        url + "/incidents",
        headers=headers,
        json={
            "category": "public_security_hazard",
            "location": {"lon": lon, "lat": lat},
            "reporter": {"kind": "citizen"},
        },
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


@contextmanager
def committed_users(
    engine: Engine, specs: dict[str, tuple[Role, list[str]]]
) -> Iterator[dict[str, dict[str, str]]]:
    """Committed users (name → role, towns); yields name → Authorization header; removes them
    afterwards."""
    names = list(specs)
    headers = {}
    with Session(engine) as setup:
        setup.execute(sa.delete(User).where(User.name.in_(names)))
        for name, (role, towns) in specs.items():
            user = access.add_user(setup, name=name, role=role, town_codes=towns)
            headers[name] = {"Authorization": f"Bearer {access.issue_token(setup, user)}"}
        setup.commit()
    try:
        yield headers
    finally:
        with Session(engine) as cleanup:
            cleanup.execute(sa.delete(User).where(User.name.in_(names)))
            cleanup.commit()


def live_settings(settings: Settings, **changes: Any) -> Settings:
    """The test settings with a short heartbeat (tests read streams with short timeouts) and
    streams without an end."""
    return settings.model_copy(update={"live_heartbeat_s": 0.5, "sse_max_s": 0, **changes})


@dataclass
class Event:
    """One received Server-Sent Event."""

    type: str
    id: int | None
    data: dict[str, Any]


@dataclass
class SseStream:
    """A background reader of one stream: events land in ``events`` as they arrive."""

    url: str
    headers: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    status: int | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)
    # The stream's first line (``retry:``): the service has subscribed it by then, so every
    # event committed afterwards reaches it (the headers alone come before the subscription).
    listening: threading.Event = field(default_factory=threading.Event)
    heartbeats: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)

    def start(self) -> SseStream:
        """Open the stream in a thread; returns once the response headers arrived and, for a
        stream that was accepted, once it is listening."""
        threading.Thread(target=self._read, daemon=True).start()
        assert self.opened.wait(10), "the stream did not open"
        if self.status == 200:
            assert self.listening.wait(10), "the stream did not start listening"
        return self

    def _read(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10, read=30)) as client,
                client.stream(
                    "GET", self.url + "/events/stream", headers=self.headers, params=self.params
                ) as response,
            ):
                self.status = response.status_code
                self.response_headers = dict(response.headers)
                self.opened.set()
                kind, ident, data = "message", None, ""
                for line in response.iter_lines():
                    if line.startswith("retry:"):
                        self.listening.set()
                    elif line.startswith(":"):
                        self.heartbeats += 1
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("id: "):
                        ident = int(line[4:])
                    elif line.startswith("data: "):
                        data = line[6:]
                    elif line == "" and data:
                        self.events.append(Event(kind, ident, json.loads(data)))
                        kind, ident, data = "message", None, ""
        except httpx.HTTPError:
            pass
        finally:
            self.opened.set()
            self.listening.set()
            self.ended.set()

    def wait_for(self, count: int, seconds: float = 5.0) -> list[Event]:
        """The events once there are at least ``count`` (fails after ``seconds``)."""
        deadline = time.monotonic() + seconds
        while len(self.events) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"{len(self.events)} of {count} events after {seconds} s")
            time.sleep(0.02)
        return list(self.events)
