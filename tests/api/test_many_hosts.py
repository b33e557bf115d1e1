"""Many API hosts behind one proxy: two `gis serve` processes behind a local nginx share what an
API process keeps (token cache, live feed) through the database alone (docs/scaling.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.layers.users import Role
from gis.services import access
from tests.api.live_fixtures import SseStream, Town, committed_users, demo_towns
from tests.conftest import IN_CI
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN_CACHE_S = 5.0
USERS = {
    "hosts-county": (Role.COUNTY, []),
    "hosts-revoked": (Role.COUNTY, []),
    "hosts-unnoticed": (Role.COUNTY, []),
}

# The proxy: round robin over the hosts, no buffering (event streams), and which host answered
# in X-Upstream (so the test knows; a deployment would not need it). docs/scaling.md shows it.
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  upstream gis {{
    server 127.0.0.1:{a};
    server 127.0.0.1:{b};
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://gis;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
      proxy_read_timeout 1h;
      add_header X-Upstream $upstream_addr always;
    }}
  }}
}}
"""


def nginx_binary() -> str:
    """nginx (Debian installs it in /usr/sbin); in CI its absence fails, locally it skips."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        if IN_CI:
            pytest.fail("the many-hosts test needs nginx (scripts/test-deps.sh installs it)")
        pytest.skip("needs nginx (apt-get install nginx)")
    return found


def wait_http(url: str, seconds: float = 60) -> None:
    """Wait until ``url`` answers below 500."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


@dataclass(frozen=True)
class Hosts:
    """The proxy's URL, the hosts' addresses (as nginx names them), tokens, and a town."""

    url: str
    upstreams: tuple[str, str]
    headers: dict[str, dict[str, str]]
    town: Town


@pytest.fixture(scope="module")
def hosts(
    database_url: str, demo: object, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hosts]:
    """Two `gis serve` processes on their own ports and nginx in front of them."""
    nginx = nginx_binary()
    tmp = tmp_path_factory.mktemp("nginx")
    with engine.connect() as conn:
        first_case = conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM incidents"))
        first_event = conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM live_events"))
    ports = (free_port(), free_port())
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GIS_DATABASE_URL": database_url,
        "GIS_TOKEN_CACHE_S": str(TOKEN_CACHE_S),
        "GIS_ANALYTICS_WARMUP": "false",
        "GIS_LIVE_HEARTBEAT_S": "0.5",
        "GIS_SSE_MAX_S": "0",
    }
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "gis.cli", "serve", "--host", "127.0.0.1", "--port", str(p)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in ports
    ]
    proxy_port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            tmp=tmp,
            a=ports[0],
            b=ports[1],
            port=proxy_port,
            # As root, nginx's workers would switch to www-data, which cannot enter tmp_path.
            user="user root;" if os.geteuid() == 0 else "",
        ),
        encoding="utf-8",
    )
    proxy = None
    try:
        for p in ports:
            # Importing the service takes ~3 s of CPU, much longer on a loaded machine.
            wait_http(f"http://127.0.0.1:{p}/health", seconds=180)
        proxy = subprocess.Popen(
            [nginx, "-e", str(tmp / "error.log"), "-p", str(tmp), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{proxy_port}"
        wait_http(url + "/health", seconds=10)
        with committed_users(engine, USERS) as headers:
            yield Hosts(
                url,
                (f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}"),
                headers,
                demo_towns(engine)[0],
            )
    finally:
        for process in [proxy, *servers]:
            if process is not None:
                process.terminate()
        for process in [proxy, *servers]:
            if process is not None:
                try:  # `gis serve` cuts open streams after 5 s
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM incidents WHERE id > :id"), {"id": first_case})
            conn.execute(sa.text("DELETE FROM live_events WHERE id > :id"), {"id": first_event})


def statuses_by_host(hosts: Hosts, headers: dict[str, str]) -> dict[str, int]:
    """GET /incidents through the proxy until each host has answered once: host → status."""
    seen: dict[str, int] = {}
    for _ in range(20):
        reply = httpx.get(
            hosts.url + "/incidents", params={"limit": 1}, headers=headers, timeout=10
        )
        seen.setdefault(reply.headers["X-Upstream"], reply.status_code)
        if len(seen) == 2:
            return seen
    raise AssertionError(f"nginx sent every request to {list(seen)}")


def test_both_hosts_serve_through_the_proxy(hosts: Hosts) -> None:
    seen = statuses_by_host(hosts, hosts.headers["hosts-county"])
    assert seen == {hosts.upstreams[0]: 200, hosts.upstreams[1]: 200}


def test_token_revoked_on_one_host_is_refused_by_the_other_at_once(
    hosts: Hosts, engine: Engine
) -> None:
    victim = hosts.headers["hosts-revoked"]
    # Both hosts have just checked the token and keep it in their caches.
    assert set(statuses_by_host(hosts, victim).values()) == {200}
    cached_at = time.monotonic()
    # Revoked as `gis users revoke` does it (the service NOTIFYs every process on every host).
    with Session(engine) as session:
        access.revoke(session, "hosts-revoked")
        session.commit()
    time.sleep(0.3)
    assert set(statuses_by_host(hosts, victim).values()) == {401}
    # Both refused while their caches would still have trusted it: the notice emptied them.
    assert time.monotonic() - cached_at < TOKEN_CACHE_S


def test_token_revoked_without_notice_is_refused_everywhere_within_the_cache_bound(
    hosts: Hosts, engine: Engine
) -> None:
    victim = hosts.headers["hosts-unnoticed"]
    assert set(statuses_by_host(hosts, victim).values()) == {200}
    # A revocation whose NOTIFY is lost (written straight to the table): the bound holds.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE api_tokens SET revoked_at = now() WHERE user_id = "
                "(SELECT id FROM users WHERE name = 'hosts-unnoticed')"
            )
        )
    revoked_at = time.monotonic()
    refused: set[str] = set()
    while len(refused) < 2:
        assert time.monotonic() - revoked_at < TOKEN_CACHE_S + 2.0, f"still accepted: {refused}"
        reply = httpx.get(hosts.url + "/incidents", params={"limit": 1}, headers=victim, timeout=10)
        if reply.status_code == 401:
            refused.add(reply.headers["X-Upstream"])
        time.sleep(0.05)


def test_event_posted_on_one_host_streams_from_the_other(hosts: Hosts) -> None:
    county = hosts.headers["hosts-county"]
    stream = SseStream(hosts.url, county).start()
    assert stream.status == 200
    streaming_host = stream.response_headers["x-upstream"]
    with httpx.Client(base_url=hosts.url, headers=county, timeout=10) as client:
        for _ in range(10):  # round robin: the first or second report lands on the other host
            reply = client.post(
                "/incidents",
                json={
                    "category": "road_hazard",
                    "location": {"lon": hosts.town.lon, "lat": hosts.town.lat},
                    "reporter": {"kind": "citizen"},
                },
            )
            assert reply.status_code == 201, reply.text
            if reply.headers["X-Upstream"] != streaming_host:
                break
        else:
            pytest.fail("nginx sent every report to the streaming host")
    case = int(reply.json()["id"])
    deadline = time.monotonic() + 20  # the machine the tests run on may be very busy
    while not any(e.data.get("incident_id") == case for e in stream.events):
        assert time.monotonic() < deadline, (
            f"case {case} (reported on {reply.headers['X-Upstream']}) did not stream from "
            f"{streaming_host}: {stream.events}, {stream.heartbeats} heartbeats, "
            f"ended: {stream.ended.is_set()}"
        )
        time.sleep(0.02)
    created = next(e for e in stream.events if e.data.get("incident_id") == case)
    assert created.type == "case.created" and created.id is not None
