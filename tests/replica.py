"""A real streaming replica of the test server, for the read-replica tests.

``replica`` (session-scoped) makes a second local cluster on ``GIS_TEST_REPLICA_PORT``
(default 5440) with ``pg_basebackup -R`` from the server of ``GIS_TEST_DATABASE_URL``
(``scripts/replica.sh``, which also lets the primary accept replication from loopback), waits
until it has replayed the demo county, and drops the cluster at the end of the session. It needs
Debian's cluster tools and root, like the outage drill: in CI their absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "replica.sh"
REPLICA_PORT = int(os.environ.get("GIS_TEST_REPLICA_PORT", "5440"))


def libpq(url: str) -> str:
    """A SQLAlchemy URL as libpq takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sql(url: str, statement: str) -> object:
    """The first value of ``statement`` run in autocommit on ``url``."""
    with psycopg.connect(libpq(url), autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(statement).fetchone()
    return None if row is None else row[0]


def wait_caught_up(primary_url: str, replica_url: str, seconds: float = 600) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    target = sql(primary_url, "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            done = sql(replica_url, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
        except psycopg.OperationalError:
            done = False
        if done:
            return
        time.sleep(0.1)
    raise AssertionError(f"the replica did not replay up to {target} within {seconds} s")


def _cluster(action: str, primary_url: str, port: int) -> None:
    subprocess.run(
        [str(SCRIPT), action, libpq(primary_url), str(port)],
        check=True,
        timeout=1800,
        capture_output=True,
        text=True,
    )


@dataclass(frozen=True)
class LocalReplica:
    """The replica cluster: its URL (the test database on it), its primary's, and controls."""

    url: str
    primary_url: str
    port: int

    def _ctl(self, action: str, *extra: str) -> None:
        # pg_ctl waits up to -t seconds for a start: replaying a busy primary's WAL takes long.
        major = int(str(sql(self.primary_url, "SHOW server_version_num"))) // 10000
        name = f"gisreplica{self.port}"
        command = ["pg_ctlcluster", "--skip-systemctl-redirect", str(major), name, action]
        subprocess.run([*command, *extra], check=True, capture_output=True, timeout=960)

    def stop(self) -> None:
        """Lose it: an immediate shutdown, as in a crash (connections cut, no checkpoint)."""
        self._ctl("stop", "-m", "immediate")

    def start(self) -> None:
        """Start it again and wait until it has caught up with the primary."""
        self._ctl("start", "--", "-t", "900")
        wait_caught_up(self.primary_url, self.url)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Inside: the replica receives WAL but replays none of it (``pg_wal_replay_pause``);
        afterwards it replays again and has caught up."""
        sql(self.url, "SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            sql(self.url, "SELECT pg_wal_replay_resume()")
            wait_caught_up(self.primary_url, self.url)


@pytest.fixture(scope="session", name="replica")
def replica_fixture(database_url: str, demo: object) -> Iterator[LocalReplica]:
    """The test database on a streaming replica of its server (the cluster is dropped at the
    end of the session)."""
    if shutil.which("pg_createcluster") is None or os.geteuid() != 0:
        if IN_CI:
            pytest.fail("the replica tests need Debian's pg_createcluster and root")
        pytest.skip("needs Debian's pg_createcluster and root")
    try:
        _cluster("create", database_url, REPLICA_PORT)
    except subprocess.CalledProcessError as error:
        _cluster("drop", database_url, REPLICA_PORT)  # no cluster, no slot keeping WAL
        pytest.fail(f"scripts/replica.sh create failed: {error.stderr[-2000:]}")
    url = make_url(database_url).set(host="127.0.0.1", port=REPLICA_PORT)
    local = LocalReplica(url.render_as_string(hide_password=False), database_url, REPLICA_PORT)
    try:
        wait_caught_up(database_url, local.url)
        yield local
    finally:
        _cluster("drop", database_url, REPLICA_PORT)
