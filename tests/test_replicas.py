"""Read replicas with a real streaming replica (tests/replica.py): stale-tolerant reads go to it,
a client reads its own writes, a lagging or lost replica is skipped, and nothing is lost."""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gis.layers.users import Role
from gis.settings import Settings
from tests.api.live_fixtures import Town, committed_users, demo_towns, serve
from tests.live import free_port
from tests.replica import LocalReplica, replica_fixture, sql  # noqa: F401  (the fixture `replica`)

pytestmark = pytest.mark.slow

USERS = {"replica-writer": (Role.COUNTY, []), "replica-reader": (Role.COUNTY, [])}


@pytest.fixture(scope="module")
def town(demo: object, engine: Engine) -> Town:
    """A demo town and a point inside one of its grids."""
    return demo_towns(engine)[0]


@pytest.fixture(scope="module")
def headers(engine: Engine) -> Iterator[dict[str, dict[str, str]]]:
    """Committed county users: a writer and a reader (removed afterwards), and the cases the
    tests report removed with them."""
    with engine.connect() as conn:
        first_case = conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM incidents"))
        first_event = conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM live_events"))
    with committed_users(engine, USERS) as made:
        yield made
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM incidents WHERE id > :id"), {"id": first_case})
        conn.execute(sa.text("DELETE FROM live_events WHERE id > :id"), {"id": first_event})


@contextmanager
def service(settings: Settings, **changes: Any) -> Iterator[str]:
    """The API (uvicorn, asyncpg pools, background replica checks) with ``changes``."""
    from gis.api import create_app

    app = create_app(settings.model_copy(update={"replica_check_s": 0.2, **changes}))
    with serve(app) as url:
        yield url


@contextmanager
def clients(
    url: str, headers: dict[str, dict[str, str]]
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """HTTP clients (keeping cookies) of the writer and of the reader."""
    with (
        httpx.Client(base_url=url, headers=headers["replica-writer"], timeout=30) as writer,
        httpx.Client(base_url=url, headers=headers["replica-reader"], timeout=30) as reader,
    ):
        yield writer, reader


def post_case(client: httpx.Client, town: Town) -> httpx.Response:
    """POST a case in ``town`` with an idempotency key of its own."""
    return client.post(
        "/incidents",
        json={
            "category": "road_hazard",
            "location": {"lon": town.lon, "lat": town.lat},
            "reporter": {"kind": "citizen"},
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


def report(client: httpx.Client, town: Town) -> int:
    """POST a case in ``town``; returns its id."""
    reply = post_case(client, town)
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


def tile_of(town: Town, z: int) -> str:
    """``z/x/y`` of the Web-Mercator tile around the town's point."""
    n = 2**z
    lat = math.radians(town.lat)
    x = int((town.lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(lat)) / math.pi) / 2 * n)
    return f"{z}/{x}/{y}"


def replicas_health(url: str) -> list[dict[str, Any]]:
    """The replicas as /health reports them."""
    reply = httpx.get(url + "/health", timeout=10)
    assert reply.status_code == 200, reply.text
    return list(reply.json()["replicas"])


def wait_state(url: str, state: str, seconds: float = 60) -> dict[str, Any]:
    """Wait until /health reports the (only) replica in ``state``; returns its entry."""
    deadline = time.monotonic() + seconds
    while True:
        (entry,) = replicas_health(url)
        if entry["state"] == state:
            return entry
        if time.monotonic() > deadline:
            pytest.fail(f"the replica is {entry} after {seconds} s, not {state}")
        time.sleep(0.1)


def test_stale_read_is_served_by_the_replica_and_a_writer_reads_its_own_write(
    settings: Settings, replica: LocalReplica, headers: dict[str, dict[str, str]], town: Town
) -> None:
    with service(settings, read_database_urls=(replica.url,), replica_max_lag_s=600) as url:
        wait_state(url, "ok")
        with replica.paused(), clients(url, headers) as (writer, reader):
            case = report(writer, town)
            # The replica has not replayed the report: a stale-tolerant read served by it
            # does not find the case; the primary does.
            assert reader.get(f"/incidents/{case}").status_code == 404
            listing = {"status": "assigned", "limit": 1000}
            stale = reader.get("/incidents", params=listing)
            fresh_list = reader.get(
                "/incidents", params=listing, headers={"Cache-Control": "no-cache"}
            )
            assert case in [f["id"] for f in fresh_list.json()["features"]]
            assert case not in [f["id"] for f in stale.json()["features"]]
            # The writer reads its own write at once: by its token (this process) …
            assert writer.get(f"/incidents/{case}").status_code == 200
            # … and by the cookie its write's answer set (any process or host).
            cookie = writer.cookies.get("gis_primary_until")
            assert cookie is not None and float(cookie) > time.time()
            fresh = reader.get(
                f"/incidents/{case}", headers={"Cookie": f"gis_primary_until={cookie}"}
            )
            assert fresh.status_code == 200
            # Anyone may ask for a fresh read.
            no_cache = reader.get(f"/incidents/{case}", headers={"Cache-Control": "no-cache"})
            assert no_cache.status_code == 200
            # The replica's lag is reported but within the (large) bound: still in use.
            (entry,) = replicas_health(url)
            assert entry["state"] == "ok" and entry["name"].endswith(
                f":{replica.port}/" + replica.url.rsplit("/", 1)[1]
            )
        with httpx.Client(base_url=url, headers=headers["replica-reader"], timeout=10) as reader:
            assert reader.get(f"/incidents/{case}").status_code == 200


def test_replica_lagging_beyond_the_bound_is_skipped_and_health_shows_its_lag(
    settings: Settings, replica: LocalReplica, headers: dict[str, dict[str, str]], town: Town
) -> None:
    # A bound that a replica of a server busy with other databases' WAL still meets, and that
    # a paused one passes within seconds.
    with service(settings, read_database_urls=(replica.url,), replica_max_lag_s=15.0) as url:
        # Within the bound once it has replayed what other databases' loads wrote meanwhile.
        wait_state(url, "ok", seconds=600)
        with replica.paused(), clients(url, headers) as (writer, reader):
            case = report(writer, town)
            lagging = wait_state(url, "lagging")
            assert lagging["lag_s"] > 15.0
            # Skipped: the reader's stale-tolerant read comes from the primary.
            assert reader.get(f"/incidents/{case}").status_code == 200
        back = wait_state(url, "ok", seconds=600)
        assert back["lag_s"] <= 15.0


def test_unreachable_replica_at_start_is_logged_and_the_primary_serves(
    settings: Settings,
    headers: dict[str, dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    nobody = f"postgresql+psycopg://postgres:postgres@127.0.0.1:{free_port()}/gis"
    with (
        caplog.at_level(logging.WARNING, logger="gis.replicas"),
        service(settings, read_database_urls=(nobody,), db_connect_timeout_s=1) as url,
    ):
        (entry,) = replicas_health(url)
        assert entry["state"] == "down" and entry["lag_s"] is None
        with httpx.Client(base_url=url, headers=headers["replica-reader"], timeout=10) as reader:
            assert reader.get("/incidents", params={"limit": 5}).status_code == 200
            assert reader.get("/stats/towns").status_code == 200
    assert any("unreachable at start" in r.getMessage() for r in caplog.records)


def test_replica_lost_under_load_costs_no_error_and_no_write(
    settings: Settings,
    replica: LocalReplica,
    headers: dict[str, dict[str, str]],
    town: Town,
    engine: Engine,
) -> None:
    statuses: dict[str, list[int]] = {"write": [], "own read": [], "list": [], "tile": []}
    created: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def writer_loop(url: str) -> None:
        with httpx.Client(base_url=url, headers=headers["replica-writer"], timeout=30) as client:
            while not stop.is_set():
                try:
                    case = post_case(client, town)
                    statuses["write"].append(case.status_code)
                    if case.status_code == 201:
                        created.append(int(case.json()["id"]))
                        own = client.get(f"/incidents/{created[-1]}")
                        statuses["own read"].append(own.status_code)
                except httpx.HTTPError as error:
                    errors.append(repr(error))

    def reader_loop(url: str) -> None:
        with httpx.Client(base_url=url, headers=headers["replica-reader"], timeout=30) as client:
            while not stop.is_set():
                try:
                    listed = client.get("/incidents", params={"limit": 20})
                    statuses["list"].append(listed.status_code)
                    # An OGC vector tile: a read on the replica's asyncpg pool.
                    tile = client.get(f"/ogc/collections/grids/tiles/WebMercatorQuad/{tile_path}")
                    statuses["tile"].append(tile.status_code)
                except httpx.HTTPError as error:
                    errors.append(repr(error))

    tile_path = tile_of(town, 12)
    # A bound the replica meets even while other databases on the server write so much WAL
    # that replay falls minutes behind (seen on the shared machine this was written on).
    with service(settings, read_database_urls=(replica.url,), replica_max_lag_s=3600) as url:
        wait_state(url, "ok")
        threads = [
            threading.Thread(target=loop, args=(url,), daemon=True)
            for loop in (writer_loop, reader_loop, reader_loop)
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.5)
            # The stale-tolerant reads are on the replica: the service holds connections there.
            in_use = sql(
                replica.url,
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gis' "
                "AND datname = current_database()",
            )
            served_before = sum(len(v) for v in statuses.values())
            replica.stop()
            # The load goes on without the replica: wait for a good number of answers.
            deadline = time.monotonic() + 60
            while sum(len(v) for v in statuses.values()) < served_before + 40:
                assert time.monotonic() < deadline, f"no answers without the replica: {statuses}"
                time.sleep(0.1)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        down = wait_state(url, "down")
        assert down["error"]
        replica.start()
        wait_state(url, "ok")
    assert errors == []
    assert isinstance(in_use, int) and in_use > 0
    assert served_before > 0, statuses
    assert set(statuses["write"]) == {201}, statuses["write"]
    assert set(statuses["own read"]) == {200}
    assert set(statuses["list"]) == {200}
    assert set(statuses["tile"]) == {200}
    with engine.connect() as conn:
        stored = conn.scalar(
            sa.text("SELECT count(*) FROM incidents WHERE id = ANY(:ids)"), {"ids": created}
        )
    assert stored == len(created) > 0
