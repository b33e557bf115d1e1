"""Built map pages kept for a few seconds (``GIS_PAGE_CACHE_S``), per everything that shapes them.

A command-room page costs 0.3–0.6 s of CPU to build and is the same for every caller allowed to
see its town (access is checked before the cache is asked). Under load, one build per page and
period serves every screen that opens it; concurrent misses of one page wait for a single build
instead of each building it. A page from the cache is not stale on screen: it carries the feed id
its data is as of, and its live updates replay every event after it (gis.maps.live), which is why
pages are not dropped on each event — at a report every few ms they would never be reused. The
exception is ``cases.moved`` (a bulk re-assignment), which tells a page to reload rather than
replay: a page built before the newest such event (the hub's ``reset_after``) is never served.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    """A built page and the feed id its data is as of (``gis.maps.live``)."""

    html: str
    after: int = 0


class PageCache:
    """Pages by key for ``ttl_s`` seconds (0: no caching), at most ``max_entries``."""

    def __init__(self, ttl_s: float, max_entries: int = 256) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._pages: dict[Hashable, tuple[float, Page]] = {}
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    def get_or_build(
        self,
        key: Hashable,
        build: Callable[[], Page],
        *,
        newest: int | None = None,
        max_behind: int | None = None,
        reset_after: int = 0,
    ) -> Page:
        """The cached page of ``key``, or ``build()``'s, one build at a time per key.

        A page more than ``max_behind`` feed events behind ``newest`` is never served: its live
        updates could not replay that many (they would reload it, again and again). It is
        rebuilt before that: once it has expired or is half that far behind, the first caller
        rebuilds it while the others get it as it is at once (its live updates bring it up to
        date). Callers wait only when there is no page they may be given. A page built before
        feed event ``reset_after`` (the newest ``cases.moved``) is never served either.
        """
        if self.ttl_s <= 0:
            return build()
        hit = self._pages.get(key)
        if hit is not None and _fresh(hit, newest, max_behind, reset_after):
            return hit[1]
        behind = 0 if hit is None or newest is None else newest - hit[1].after
        usable = (
            hit is not None
            and (max_behind is None or behind <= max_behind)
            and hit[1].after >= reset_after
        )
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        if hit is not None and usable:
            if not building.acquire(blocking=False):
                return hit[1]  # somebody is rebuilding it
        else:
            building.acquire()  # nothing to show meanwhile: wait for the one build
        try:
            again = self._pages.get(key)
            if again is not None and again is not hit and again[0] >= time.monotonic():
                return again[1]  # built by the caller we waited for
            page = build()
            with self._lock:
                if len(self._pages) >= self.max_entries:
                    self._drop_expired()
                self._pages[key] = (time.monotonic() + self.ttl_s, page)
            return page
        finally:
            building.release()

    def peek(
        self,
        key: Hashable,
        *,
        newest: int | None = None,
        max_behind: int | None = None,
        reset_after: int = 0,
    ) -> Page | None:
        """The page ``get_or_build`` would give at once without building (fresh and near
        enough to the feed), or None: for the paths that answer before the router."""
        hit = self._pages.get(key)
        fresh = hit is not None and _fresh(hit, newest, max_behind, reset_after)
        return hit[1] if hit is not None and fresh else None

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for key in [k for k, (until, _) in self._pages.items() if until < now]:
            del self._pages[key]
            self._building.pop(key, None)
        if len(self._pages) >= self.max_entries:  # all fresh: start over rather than grow
            self._pages.clear()


def _fresh(
    hit: tuple[float, Page], newest: int | None, max_behind: int | None, reset_after: int = 0
) -> bool:
    """Whether a cached page is served as it is: not expired, built after the newest
    ``cases.moved``, and at most half as far behind the feed as its live updates can replay."""
    if hit[0] < time.monotonic() or hit[1].after < reset_after:
        return False
    return newest is None or max_behind is None or 2 * (newest - hit[1].after) <= max_behind
