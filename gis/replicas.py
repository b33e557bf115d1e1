"""Read replicas: which database a read may go to (docs/scaling.md, "Read replicas").

``ReadRouter`` holds, for each URL of ``GIS_READ_DATABASE_URLS``, a sync engine and an asyncpg
pool (the same two kinds the primary has, ``gis.db`` and ``gis.db_async``), and checks every
``GIS_REPLICA_CHECK_S`` in the background how far each replica's replay lags the primary. A
request never measures anything: ``pick`` hands out, round robin, a replica that answered the
last check within ``GIS_REPLICA_MAX_LAG_S``, or ``None`` (then the primary serves). The API
decides *whether* a request may read stale data (``gis.api.reads``); this module only decides
*where* such a read goes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from gis.db import make_engine, make_sessionmaker
from gis.db_async import AsyncDatabase
from gis.queries import Flow, Query
from gis.settings import Settings

log = logging.getLogger("gis.replicas")

State = Literal["ok", "lagging", "down", "unknown"]

# The replay lag of a standby: none when it has replayed all it received (an idle primary sends
# nothing, so the last replayed commit may be old without the replica being behind); else the
# age of the last commit it replayed. NULL (never replayed a commit while behind): unknown.
_LAG_SQL = sa.text(
    """
SELECT pg_is_in_recovery() AS standby,
       CASE
         WHEN NOT pg_is_in_recovery() THEN 0.0
         WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
         ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
       END AS lag_s
"""
)


def lag_flow() -> Flow[float | None]:
    """The replay lag of the database it runs on, in seconds (0 on a primary; ``None``:
    unknown)."""
    row = yield Query(_LAG_SQL)
    lag = row["lag_s"] if row else None
    return None if lag is None else max(0.0, float(lag))


def display_name(url: str) -> str:
    """``host:port/database`` of a URL: what logs and /health show (never the password)."""
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


@dataclass
class Replica:
    """One read replica: its engine, sessions and pool, and what the last check found."""

    name: str
    url: str
    engine: Engine
    sessionmaker: sessionmaker[Session]
    database: AsyncDatabase
    state: State = "unknown"
    lag_s: float | None = None
    error: str | None = None
    checked_at: float | None = field(default=None)


class ReadRouter:
    """The replicas of ``settings.read_database_urls`` and their health (none: all primary)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.replicas: list[Replica] = []
        for url in settings.read_database_urls:
            engine = make_engine(settings, url=url)
            self.replicas.append(
                Replica(
                    name=display_name(url),
                    url=url,
                    engine=engine,
                    sessionmaker=make_sessionmaker(engine),
                    database=AsyncDatabase(settings, url=url),
                )
            )
        self._turn = itertools.count()
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        """Whether any replica is configured (if not, nothing here costs anything)."""
        return bool(self.replicas)

    @property
    def read_your_writes_s(self) -> float:
        """How long a client reads from the primary after its own write: the setting, and at
        least the worst staleness a replica in use can have (its lag bound plus one check)."""
        s = self.settings
        return max(s.read_your_writes_s, s.replica_max_lag_s + s.replica_check_s)

    async def open(self) -> None:
        """Open the pools, check every replica once and start the periodic checks. A replica
        that does not answer is logged and skipped, never fatal: the primary serves."""
        for replica in self.replicas:
            await replica.database.open()
        await self.check_all()
        for replica in self.replicas:
            if replica.state == "down":
                log.warning(
                    "read replica %s is unreachable at start (%s); its reads go to the primary "
                    "until it answers",
                    replica.name,
                    replica.error,
                )
        if self.replicas:
            self._task = asyncio.create_task(self._check_forever())

    async def close(self) -> None:
        """Stop the checks, close the pools and dispose of the engines."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for replica in self.replicas:
            await replica.database.close()
            replica.engine.dispose()

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.replica_check_s)
            await self.check_all()

    async def check_all(self) -> None:
        """Measure every replica's lag now (concurrently)."""
        await asyncio.gather(*(self.check(r) for r in self.replicas))

    async def check(self, replica: Replica) -> None:
        """Measure ``replica``'s lag and set its state; log when the state changes."""
        before = replica.state
        timeout = self.settings.db_connect_timeout_s + self.settings.replica_check_s
        try:
            lag = await asyncio.wait_for(replica.database.run(lag_flow()), timeout)
        except Exception as error:  # whatever it is, the replica cannot serve now
            replica.state, replica.lag_s = "down", None
            replica.error = str(error) or type(error).__name__
        else:
            replica.lag_s, replica.error = lag, None
            fresh = lag is not None and lag <= self.settings.replica_max_lag_s
            replica.state = "ok" if fresh else "lagging"
        replica.checked_at = time.time()
        if before != replica.state and before != "unknown":
            log.warning("read replica %s: %s → %s", replica.name, before, replica.state)

    def pick(self) -> Replica | None:
        """A replica fit to serve a stale-tolerant read (round robin), or ``None``."""
        usable = [r for r in self.replicas if r.state == "ok"]
        if not usable:
            return None
        return usable[next(self._turn) % len(usable)]

    def failed(self, replica: Replica, reason: str) -> None:
        """``replica`` failed a request: skip it until the next check finds it well again."""
        if replica.state != "down":
            log.warning("read replica %s failed a read (%s); skipped", replica.name, reason)
        replica.state, replica.error = "down", reason
