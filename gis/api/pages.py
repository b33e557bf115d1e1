"""Built map pages kept for a few seconds (``GIS_PAGE_CACHE_S``), per everything that shapes them.

A command-room page costs 0.3–0.6 s of CPU to build and is the same for every caller allowed to
see its town (access is checked before the cache is asked). Under load, one build per page and
period serves every screen that opens it; concurrent misses of one page wait for a single build
instead of each building it. A page from the cache is not stale on screen: it carries the feed id
its data is as of, and its live updates replay every event after it (gis.maps.live), which is why
pages are not dropped on each event — at a report every few ms they would never be reused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable


class PageCache:
    """Pages by key for ``ttl_s`` seconds (0: no caching), at most ``max_entries``."""

    def __init__(self, ttl_s: float, max_entries: int = 256) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._pages: dict[Hashable, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    def get_or_build(self, key: Hashable, build: Callable[[], str]) -> str:
        """The cached page of ``key``, or ``build()``'s (one build at a time per key)."""
        if self.ttl_s <= 0:
            return build()
        page = self._fresh(key)
        if page is not None:
            return page
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            page = self._fresh(key)  # built by the caller we waited for
            if page is None:
                page = build()
                with self._lock:
                    if len(self._pages) >= self.max_entries:
                        self._drop_expired()
                    self._pages[key] = (time.monotonic() + self.ttl_s, page)
        return page

    def _fresh(self, key: Hashable) -> str | None:
        hit = self._pages.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for key in [k for k, (until, _) in self._pages.items() if until < now]:
            del self._pages[key]
            self._building.pop(key, None)
        if len(self._pages) >= self.max_entries:  # all fresh: start over rather than grow
            self._pages.clear()
