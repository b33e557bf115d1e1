"""Live updates fanned out in each process: one reader of the feed, many streams.

``Hub`` reads ``live_events`` (``gis.services.live``) every ``GIS_LIVE_POLL_S`` (0.1 s) — one
indexed read per process, however many streams it serves — and offers each event to every
subscriber whose role, towns and filters admit it. Writers do not NOTIFY: a transaction that
NOTIFYs holds a database-wide lock through its commit's WAL flush, which queued every report
behind the others' (migration 0021). A hub that could not read (the database away) catches up
from its cursor at the next read: nothing committed meanwhile is missed. A reconnecting browser
replays from the database, not from memory (``Stream``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from gis.api.background import Background
from gis.api.security import READ_CASES, WATCH
from gis.db_async import Database
from gis.errors import AuthenticationError, GisError
from gis.layers.base import utcnow
from gis.layers.live import EventType
from gis.layers.users import Role
from gis.services.access import Principal
from gis.services.live import (
    CASE_EVENTS,
    FeedEvent,
    bounds_flow,
    deliverable,
    events_after_flow,
    prune_flow,
    writers_flow,
)
from gis.settings import Settings

# Events read per query; the hub reads again at once while a batch comes back full.
BATCH = 500
# Seconds a replayed batch is kept for other streams asking for the same one: when every
# screen reconnects at once (a proxy restart), they replay the same ids.
REPLAY_KEEP_S = 5.0
# Seconds between checks that a gap's writers have finished, and between prunes of the feed.
GAP_POLL_S = 0.01
PRUNE_EVERY_S = 600.0


@dataclass(frozen=True)
class Subscription:
    """Who listens (``None``: auth is off) and the filters they gave."""

    principal: Principal | None
    town: str | None = None
    platform: str | None = None
    types: frozenset[EventType] | None = None

    def wants(self, event: FeedEvent) -> bool:
        """Whether ``event`` may and should go to this subscriber: the API's scoping (cases as
        ``check_case``; units and cameras to the roles that watch them, in their towns), then
        the filters."""
        if self.types is not None and event.type not in self.types:
            return False
        if self.town is not None and event.town_code != self.town:
            return False
        if self.platform is not None and event.platform not in (None, self.platform):
            return False
        p = self.principal
        if p is None:
            return True
        if event.type in CASE_EVENTS:
            return (p.role is Role.ADMIN or p.role in READ_CASES) and p.sees_case(
                event.town_code, event.grid_code, event.unit_id
            )
        if event.type == EventType.CASES_MOVED:  # a count per town, no case: its readers
            return (p.role is Role.ADMIN or p.role in READ_CASES) and p.sees_town(event.town_code)
        return (p.role is Role.ADMIN or p.role in WATCH) and p.sees_town(event.town_code)


@dataclass(eq=False)
class Subscriber:
    """One open stream's inbox."""

    subscription: Subscription
    queue: asyncio.Queue[FeedEvent] = field(default_factory=asyncio.Queue)
    capacity: int = 1000
    overflowed: bool = False

    def offer(self, event: FeedEvent) -> None:
        """Queue ``event`` if wanted; a full inbox marks the stream as fallen behind."""
        if self.overflowed or not self.subscription.wants(event):
            return
        if self.queue.qsize() >= self.capacity:
            self.overflowed = True
            return
        self.queue.put_nowait(event)


class Hub(Background):
    """The feed reader of one process and its subscribers."""

    name = "live feed"

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        always: bool = True,
        on_events: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.database = database
        self.settings = settings
        self.tick_s = settings.live_poll_s
        # Told when new events were read (the webhook sender: their outbox rows are committed).
        self.on_events = on_events
        # Reads shared by streams replaying at the same time (``replay_batch``, ``bounds``).
        self._shared: dict[object, asyncio.Future[Any]] = {}
        # False: read only while somebody listens (a database handed in by the tests, which
        # must not be queried behind their back).
        self.always = always
        self.subscribers: set[Subscriber] = set()
        # Every event with an id up to ``cursor`` has been offered, and no other can appear.
        self.cursor = 0
        # The newest ``cases.moved`` offered: a page built before it must not be served from
        # the page cache (gis.api.pages), since its live updates would only reload it.
        self.reset_after = 0
        self.ready = asyncio.Event()
        # Bumped when a revocation is heard: streams check their token at once.
        self.token_epoch = 0
        self._pruned_at = 0.0

    def tokens_changed(self) -> None:
        """A token was revoked somewhere: every stream re-checks its own."""
        self.token_epoch += 1

    def subscribe(self, subscription: Subscription) -> Subscriber:
        """A new inbox receiving every wanted event after ``cursor``."""
        subscriber = Subscriber(subscription, capacity=self.settings.live_queue)
        self.subscribers.add(subscriber)
        if not self.running:
            self.start()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget an inbox (its stream ended)."""
        self.subscribers.discard(subscriber)
        if not self.always and not self.subscribers and self.running:
            self.cancel()
            self.ready.clear()

    async def step(self) -> None:
        """Offer what was committed since the last step; prune the feed now and then."""
        if not self.ready.is_set():
            await self._start_cursor()
            self.ready.set()
        await self._drain()
        if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
            before = utcnow() - timedelta(hours=self.settings.live_retention_h)
            await self.database.run(prune_flow(before))
            self._pruned_at = time.monotonic()

    async def _start_cursor(self) -> None:
        """Start after the newest event, once every transaction that could still commit an
        older one has ended."""
        _, newest = await self.database.run(bounds_flow())
        await self._wait_for(await self.database.run(writers_flow()))
        self.cursor = newest

    async def _wait_for(self, writers: frozenset[str]) -> None:
        while writers:
            await asyncio.sleep(GAP_POLL_S)
            writers &= await self.database.run(writers_flow())

    async def _drain(self) -> None:
        """Offer every event committed after the cursor, in id order, never past a gap that
        a transaction still writing could fill."""
        settled = self.cursor
        while True:
            events = await self.database.run(events_after_flow(self.cursor, BATCH))
            ready, gap = deliverable(events, self.cursor, settled)
            self._offer(ready)
            if gap:
                # Whoever writes now may hold the missing ids; once they are done the gap
                # below the newest event seen is final.
                await self._wait_for(await self.database.run(writers_flow()))
                settled = events[-1].id
                continue
            if len(events) < BATCH:
                return

    async def bounds(self) -> tuple[int, int]:
        """The oldest and newest ids kept; streams starting together share one read."""
        return await self._share("bounds", bounds_flow, keep_s=0.0)

    async def replay_batch(self, after: int, upto: int) -> list[FeedEvent]:
        """Up to ``BATCH`` events in (after, upto], read from the database; ``upto`` is at most
        the cursor, so every id up to it is settled and the batch is the same for every stream
        asking — one read serves them all for ``REPLAY_KEEP_S``."""

        def read() -> Any:
            events = yield from events_after_flow(after, BATCH)
            return [e for e in events if e.id <= upto]

        return await self._share(("replay", after, upto), read, keep_s=REPLAY_KEEP_S)

    async def _share(self, key: object, flow: Callable[[], Any], *, keep_s: float) -> Any:
        future = self._shared.get(key)
        if future is None:
            future = asyncio.ensure_future(self.database.run(flow()))
            self._shared[key] = future
            loop = asyncio.get_running_loop()

            def forget(done: asyncio.Future[Any]) -> None:
                if done.cancelled() or done.exception() is not None or keep_s <= 0:
                    self._shared.pop(key, None)
                else:
                    loop.call_later(keep_s, self._shared.pop, key, None)

            future.add_done_callback(forget)
        # One stream going away must not cancel the read the others wait for.
        return await asyncio.shield(future)

    def _offer(self, events: Iterable[FeedEvent]) -> None:
        cursor = self.cursor
        for event in events:
            if event.type == EventType.CASES_MOVED:
                self.reset_after = event.id  # before any screen is told to reload
            for subscriber in self.subscribers:
                subscriber.offer(event)
            self.cursor = event.id
        if self.cursor != cursor and self.on_events is not None:
            self.on_events()


@dataclass
class Stream:
    """One subscriber's Server-Sent Events: replay after ``last_id``, then live events,
    heartbeats, and an end when the token is revoked, the client falls behind, or ``GIS_SSE_MAX_S``
    has passed."""

    hub: Hub
    subscription: Subscription
    last_id: int | None
    # Re-checks the caller's token (raises AuthenticationError once it is revoked).
    check_token: Callable[[], Awaitable[object]] | None = None

    async def events(self) -> AsyncIterator[str]:
        """The text of the stream, message by message."""
        s = self.hub.settings
        subscriber = self.hub.subscribe(self.subscription)
        try:
            await self.hub.ready.wait()
            # Where this stream starts is fixed before its first line: a client that has read
            # it gets every event committed afterwards.
            last = self.hub.cursor if self.last_id is None else self.last_id
            yield "retry: 2000\n\n"
            try:
                async for missed in self._replay(last, self.hub.cursor):
                    if isinstance(missed, str):  # reload
                        yield missed
                        return
                    yield missed.sse()
                    last = max(last, missed.id)
            except GisError:
                # The database is busy or away: end here; the browser reconnects (retry) with
                # the last id it has and the replay goes on from there.
                return
            started = time.monotonic()
            # Through the token cache (a dict lookup; the database only when it has expired):
            # a revocation closes the stream at once, or within GIS_TOKEN_CACHE_S + 1 s if
            # its notice was lost.
            recheck_s = 1.0
            checked_at, epoch = time.monotonic(), self.hub.token_epoch
            beat_at = time.monotonic()
            while True:
                if subscriber.overflowed:
                    yield _reload("this stream fell too far behind")
                    return
                now = time.monotonic()
                if s.sse_max_s and now - started >= s.sse_max_s:
                    return
                if self.check_token is not None and (
                    now - checked_at >= recheck_s or epoch != self.hub.token_epoch
                ):
                    checked_at, epoch = now, self.hub.token_epoch
                    try:
                        await self.check_token()
                    except AuthenticationError:
                        yield _reload("the token is no longer valid", event="revoked")
                        return
                    except GisError:  # the database is busy or away: check on the next round
                        checked_at = now - recheck_s + 1.0
                try:
                    async with asyncio.timeout(1.0):
                        first = await subscriber.queue.get()
                except TimeoutError:
                    if time.monotonic() - beat_at >= s.live_heartbeat_s:
                        beat_at = time.monotonic()
                        yield ": heartbeat\n\n"
                    continue
                # Everything queued goes out in one write: under load that is many events.
                chunk = []
                for event in _drain(subscriber.queue, first):
                    if event.id > last:
                        last = event.id
                        chunk.append(event.sse())
                if chunk:
                    beat_at = time.monotonic()
                    yield "".join(chunk)
        finally:
            self.hub.unsubscribe(subscriber)

    async def _replay(self, after: int, upto: int) -> AsyncIterator[FeedEvent | str]:
        """The wanted events in (after, upto] from the database, or one ``reload`` when they
        are no longer kept or too many."""
        oldest, newest = await self.hub.bounds()
        if after >= max(upto, newest):
            return
        if oldest == 0 or after < oldest - 1:
            yield _reload("events after this id are no longer kept")
            return
        # Ids of the whole feed, not only the wanted ones: decided before sending anything, and
        # against the feed's newest id in the database (the hub's cursor may not have seen it).
        if max(upto, newest) - after > self.hub.settings.live_max_replay:
            yield _reload("too many events missed")
            return
        while after < upto:
            events = await self.hub.replay_batch(after, upto)
            if not events:
                return
            for event in events:
                after = event.id
                if self.subscription.wants(event):
                    yield event


def _drain(queue: asyncio.Queue[FeedEvent], first: FeedEvent) -> list[FeedEvent]:
    events = [first]
    while not queue.empty():
        events.append(queue.get_nowait())
    return events


def _reload(reason: str, *, event: str = "reload") -> str:
    return f'event: {event}\ndata: {{"reason": "{reason}"}}\n\n'
