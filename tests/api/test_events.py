"""GET /events/stream against the real service: a committed demo county, an asyncpg pool and
its LISTEN connection, streams read as a browser reads them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.layers.users import Role
from gis.services import access
from gis.settings import Settings
from tests.api.live_fixtures import (
    SseStream,
    Town,
    committed_users,
    demo_towns,
    listener_pids,
    live_settings,
    serve,
)


@pytest.fixture(scope="module")
def towns(demo: object, engine: Engine) -> list[Town]:
    """Two demo towns (the county is committed once per session)."""
    return demo_towns(engine)


@pytest.fixture(scope="module")
def live(settings: Settings, engine: Engine, towns: list[Town]) -> Iterator[dict[str, Any]]:
    """The service, and tokens: command rooms of each town, the county, a planner of town A."""
    from gis.api import create_app

    a, b = towns
    specs = {
        "live-room-a": (Role.COMMAND_ROOM, [a.code]),
        "live-room-b": (Role.COMMAND_ROOM, [b.code]),
        "live-county": (Role.COUNTY, []),
        "live-planner-a": (Role.PLANNER, [a.code]),
    }
    with engine.connect() as conn:
        start = conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM live_events"))
        # What the tests report leaves with them (the feed may lose rows on the way: one test
        # prunes it).
        first_case = conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM incidents"))
    app = create_app(live_settings(settings, live_max_replay=20))
    with committed_users(engine, specs) as headers, serve(app) as url:
        yield {"url": url, "headers": headers, "app": app}
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM incidents WHERE id > :id"), {"id": first_case})
        conn.execute(sa.text("DELETE FROM live_events WHERE id > :start"), {"start": start})


def report(live: dict[str, Any], town: Town, category: str = "public_security_hazard") -> int:
    """POST a case in ``town`` as the county; returns its id."""
    reply = httpx.post(
        live["url"] + "/incidents",
        headers=live["headers"]["live-county"],
        json={
            "category": category,
            "location": {"lon": town.lon, "lat": town.lat},
            "reporter": {"kind": "citizen"},
        },
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


def stream(live: dict[str, Any], user: str, **params: str) -> SseStream:
    """An open stream of ``user``."""
    return SseStream(live["url"], live["headers"][user], params).start()


def test_each_subscriber_gets_its_own_towns_events_in_id_order(
    live: dict[str, Any], towns: list[Town]
) -> None:
    a, b = towns
    room_a, room_b, county = (
        stream(live, u) for u in ("live-room-a", "live-room-b", "live-county")
    )
    created_only = stream(live, "live-county", types="case.created", town=a.code)
    planner = stream(live, "live-planner-a")
    first, second, other = report(live, a), report(live, a), report(live, b)
    # A report with an available unit is two events: created, then assigned.
    got_a = room_a.wait_for(4)
    got_county = county.wait_for(6)
    got_b = room_b.wait_for(2)
    time.sleep(0.3)  # nothing more is coming
    assert [e.data["incident_id"] for e in room_a.events] == [first, first, second, second]
    assert [e.type for e in got_a] == ["case.created", "case.assigned"] * 2
    assert {e.data["town"] for e in got_a} == {a.code}
    assert [e.data["incident_id"] for e in room_b.events] == [other, other]
    assert [e.data["town"] for e in got_b] == [b.code, b.code]
    ids = [e.id for e in got_county]
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert {e.data["incident_id"] for e in got_county} == {first, second, other}
    # Enough to redraw without asking again: where, what, state, deadline.
    created = got_a[0].data
    assert created["lon"] == pytest.approx(a.lon) and created["lat"] == pytest.approx(a.lat)
    assert created["status"] == "assigned" and created["platform"] == "governance"
    assert created["category_zh"] and created["due_at"] and created["open"] is True
    assert [e.data["incident_id"] for e in created_only.wait_for(2)] == [first, second]
    # A planner of town A may not read cases: none reach it.
    assert planner.events == []
    for s in (room_a, room_b, county, created_only, planner):
        assert s.status == 200


def test_reconnect_with_last_event_id_replays_exactly_what_was_missed(
    live: dict[str, Any], towns: list[Town], engine: Engine
) -> None:
    a, b = towns
    before = stream(live, "live-room-a")
    report(live, a)
    seen = before.wait_for(2)[-1].id
    # Disconnected: these are written while nobody listens.
    missed = [report(live, a), report(live, b), report(live, a)]
    again = SseStream(
        live["url"], {**live["headers"]["live-room-a"], "Last-Event-ID": str(seen)}
    ).start()
    got = again.wait_for(4)
    with engine.connect() as conn:
        expected = list(
            conn.scalars(
                sa.text(
                    "SELECT id FROM live_events WHERE id > :seen AND town_code = :town "
                    "AND incident_id = ANY(:ids) ORDER BY id"
                ),
                {"seen": seen, "town": a.code, "ids": missed},
            )
        )
    time.sleep(0.3)
    assert [e.id for e in again.events] == expected
    assert {e.data["incident_id"] for e in got} == {missed[0], missed[2]}


def test_streams_reconnecting_together_share_their_replay_reads(
    live: dict[str, Any], towns: list[Town], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every screen reconnecting at once (a proxy restart) asks for the same ids: each batch
    is read from the database once and every stream still gets exactly what it missed."""
    a, b = towns
    before = stream(live, "live-room-a")
    report(live, a)
    seen = before.wait_for(2)[-1].id
    missed = [report(live, a), report(live, b), report(live, a)]
    time.sleep(0.5)  # the hub has read them: the cursor is past them
    hub = live["app"].state.hub
    reads: list[str] = []
    run = hub.database.run

    async def counted(flow: Any) -> Any:
        reads.append(getattr(flow, "__name__", str(flow)))
        return await run(flow)

    monkeypatch.setattr(hub.database, "run", counted)
    headers = {**live["headers"]["live-room-a"], "Last-Event-ID": str(seen)}
    again = [SseStream(live["url"], headers) for _ in range(8)]
    threads = [threading.Thread(target=s.start) for s in again]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for other in again:
        got = other.wait_for(4)
        assert {e.data["incident_id"] for e in got} == {missed[0], missed[2]}
    replays = [name for name in reads if name == "read"]
    assert 1 <= len(replays) < len(again), reads


def test_a_gap_is_not_passed_while_its_writer_may_still_commit(
    live: dict[str, Any], towns: list[Town], engine: Engine
) -> None:
    """Ids are taken in insert order but committed in commit order: the event of the slower
    transaction (lower id) must come first, and the faster one wait for it."""
    a, _ = towns
    county = stream(live, "live-county", types="camera.status")
    insert = sa.text(
        "INSERT INTO live_events (type, town_code, data) "
        "VALUES ('camera.status', :town, jsonb_build_object('mark', CAST(:mark AS text))) "
        "RETURNING id"
    )
    with engine.connect() as slow, engine.connect() as fast:
        slow_tx = slow.begin()
        low = slow.scalar(insert, {"town": a.code, "mark": "slow"})
        with fast.begin():
            high = fast.scalar(insert, {"town": a.code, "mark": "fast"})
        time.sleep(1.5)  # the hub has read 'fast' by now, and must hold it back
        assert county.events == []
        slow_tx.commit()
    got = county.wait_for(2)
    assert [(e.id, e.data["mark"]) for e in got] == [(low, "slow"), (high, "fast")]


def test_the_listener_reconnects_and_catches_up_from_the_database(
    live: dict[str, Any], towns: list[Town], engine: Engine
) -> None:
    a, _ = towns

    watching = stream(live, "live-room-a")
    killed = listener_pids(engine)
    assert killed
    with engine.connect() as conn:
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM unnest(:p) AS pid"), {"p": killed}
        )
    incident = report(live, a)  # the hub reads the feed by itself: no notice is needed
    assert [e.data["incident_id"] for e in watching.wait_for(2, seconds=6)] == [incident] * 2
    deadline = time.monotonic() + 10
    while not (set(listener_pids(engine)) - set(killed)):
        assert time.monotonic() < deadline, "the listener did not come back"
        time.sleep(0.2)


def test_writing_the_feed_notifies_nobody(
    live: dict[str, Any], towns: list[Town], settings: Settings
) -> None:
    """A NOTIFY makes the writer's commit take a database-wide lock until its WAL is flushed,
    so every report would wait for the others' (migration 0021): the hubs poll instead, and a
    report still reaches a stream."""
    import psycopg

    a, _ = towns
    watching = stream(live, "live-room-a")
    url = settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN gis_live")
        incident = report(live, a)
        assert [e.data["incident_id"] for e in watching.wait_for(2, seconds=6)] == [incident] * 2
        assert list(listener.notifies(timeout=0.5)) == []


def test_a_revoked_token_closes_its_stream(
    live: dict[str, Any], engine: Engine, towns: list[Town]
) -> None:
    a, _ = towns
    with committed_users(engine, {"live-revoked": (Role.COMMAND_ROOM, [a.code])}) as headers:
        revoked = SseStream(live["url"], headers["live-revoked"]).start()
        with Session(engine) as admin:
            access.revoke(admin, "live-revoked")
            admin.commit()
        assert revoked.ended.wait(5), "the stream outlived its token"
        assert [e.type for e in revoked.events] == ["revoked"]


def test_a_bulk_reassignment_tells_each_affected_towns_screens_once(
    live: dict[str, Any], towns: list[Town], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write-back above ``LIVE_PER_CASE_MAX`` moves: one ``cases.moved`` per town, to the
    readers of that town's cases (the page reloads on it, gis/web/common/live.js)."""
    from gis.services import reassign

    a, b = towns
    room_a, room_b, county, planner = (
        stream(live, u) for u in ("live-room-a", "live-room-b", "live-county", "live-planner-a")
    )
    incident = report(live, a)
    # Its own events first (created, assigned), then nothing but the write-back's.
    room_a.wait_for(2)
    county.wait_for(2)
    time.sleep(0.3)
    for screen in (room_a, room_b, county, planner):
        screen.events.clear()
    # The case stands in town B's grid (a stale assignment); the write-back moves it home to A.
    with Session(engine) as session:
        session.execute(
            sa.text(
                "UPDATE incidents AS i SET grid_id = g.id, grid_code = g.code, "
                "village_code = g.village_code, town_code = g.town_code FROM grids AS g "
                "WHERE g.code = :code AND g.valid_to IS NULL AND i.id = :id"
            ),
            {"code": b.grid_code, "id": incident},
        )
        monkeypatch.setattr(reassign, "LIVE_PER_CASE_MAX", 0)
        around = shapely.to_wkb(shapely.Point(a.lon, a.lat).buffer(1e-6))
        result = reassign.reassign_cases(
            session, actor="test", reason="reload", scope=reassign.CaseScope(area_wkb=around)
        )
        session.commit()
    assert result.moved == 1
    expected = {"action": "reassign_grid", "moved": 1, "reason": "reload", "plan_id": None}
    for screen, town in ((room_a, a), (room_b, b)):
        (moved,) = screen.wait_for(1)
        assert (moved.type, moved.data["town"]) == ("cases.moved", town.code)
        assert {k: moved.data[k] for k in expected} == expected
    assert sorted(e.data["town"] for e in county.wait_for(2)) == sorted([a.code, b.code])
    time.sleep(0.3)  # nothing more is coming: no per-case event, nothing for a planner
    assert len(room_a.events) == len(room_b.events) == 1 and len(county.events) == 2
    assert planner.events == []
    with engine.connect() as conn:
        logged = conn.scalar(
            sa.text(
                "SELECT count(*) FROM incident_events WHERE incident_id = :id "
                "AND action = 'reassign_grid'"
            ),
            {"id": incident},
        )
    assert logged == 1  # the history still has the case's own event


@pytest.mark.parametrize(
    ("params", "headers", "status"),
    [
        ({"types": "case.created,case.teleported"}, {}, 422),
        ({"town": "999999999999"}, {}, 422),
        ({"platform": "weather"}, {}, 422),
        ({}, {"Last-Event-ID": "abc"}, 400),
        ({}, {"Last-Event-ID": "-1"}, 400),
    ],
)
def test_bad_filters_are_refused(
    live: dict[str, Any], params: dict[str, str], headers: dict[str, str], status: int
) -> None:
    reply = httpx.get(
        live["url"] + "/events/stream",
        params=params,
        headers={**live["headers"]["live-county"], **headers},
        timeout=5,
    )
    assert reply.status_code == status, reply.text
    assert "code" in reply.json()


def test_another_towns_stream_is_not_found_and_no_token_is_401(
    live: dict[str, Any], towns: list[Town]
) -> None:
    _, b = towns
    other = httpx.get(
        live["url"] + "/events/stream",
        params={"town": b.code},
        headers=live["headers"]["live-room-a"],
        timeout=5,
    )
    assert other.status_code == 404
    assert httpx.get(live["url"] + "/events/stream", timeout=5).status_code == 401


def test_an_id_older_than_the_feed_keeps_or_too_far_behind_gets_reload(
    live: dict[str, Any], towns: list[Town], engine: Engine
) -> None:
    a, _ = towns
    for _ in range(11):  # 22 events > live_max_replay (20)
        report(live, a)
    with engine.connect() as conn:
        oldest, newest = conn.execute(sa.text("SELECT min(id), max(id) FROM live_events")).one()
    behind = SseStream(
        live["url"], {**live["headers"]["live-county"], "Last-Event-ID": str(newest - 22)}
    ).start()
    assert behind.ended.wait(5)
    assert [e.type for e in behind.events] == ["reload"]
    # An id below the oldest kept: pruned events cannot be replayed.
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM live_events WHERE id <= :id"), {"id": oldest + 1})
    pruned = SseStream(
        live["url"], {**live["headers"]["live-county"], "Last-Event-ID": str(oldest - 1)}
    ).start()
    assert pruned.ended.wait(5)
    assert [e.type for e in pruned.events] == ["reload"]
