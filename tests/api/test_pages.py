"""The page cache: one build per page and period, however many callers miss at once."""

from __future__ import annotations

import threading
import time

from gis.api.pages import PageCache


def test_concurrent_misses_of_one_page_wait_for_a_single_build() -> None:
    cache = PageCache(ttl_s=60)
    builds: list[str] = []

    def build() -> str:
        builds.append("x")
        time.sleep(0.2)
        return f"page {len(builds)}"

    pages: list[str] = []
    threads = [
        threading.Thread(target=lambda: pages.append(cache.get_or_build("a", build)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert pages == ["page 1"] * 8 and len(builds) == 1
    assert cache.get_or_build("b", build) == "page 2"  # another key is another page


def test_a_page_is_rebuilt_after_its_time_and_never_kept_with_zero() -> None:
    cache = PageCache(ttl_s=0.05)
    count = iter(range(100))
    assert cache.get_or_build("a", lambda: str(next(count))) == "0"
    assert cache.get_or_build("a", lambda: str(next(count))) == "0"
    time.sleep(0.06)
    assert cache.get_or_build("a", lambda: str(next(count))) == "1"
    off = PageCache(ttl_s=0)
    assert [off.get_or_build("a", lambda: str(next(count))) for _ in range(2)] == ["2", "3"]


def test_a_full_cache_drops_what_expired_first() -> None:
    cache = PageCache(ttl_s=60, max_entries=2)
    for key in "abc":
        cache.get_or_build(key, lambda k=key: k)
    assert cache.get_or_build("c", lambda: "rebuilt") == "c"
