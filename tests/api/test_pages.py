"""The page cache: one build per page and period, however many callers miss at once."""

from __future__ import annotations

import threading
import time

from gis.api.pages import Page, PageCache


def test_concurrent_misses_of_one_page_wait_for_a_single_build() -> None:
    cache = PageCache(ttl_s=60)
    builds: list[str] = []

    def build() -> Page:
        builds.append("x")
        time.sleep(0.2)
        return Page(f"page {len(builds)}")

    pages: list[str] = []
    threads = [
        threading.Thread(target=lambda: pages.append(cache.get_or_build("a", build).html))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert pages == ["page 1"] * 8 and len(builds) == 1
    assert cache.get_or_build("b", build).html == "page 2"  # another key is another page


def test_a_page_is_rebuilt_after_its_time_and_never_kept_with_zero() -> None:
    cache = PageCache(ttl_s=0.05)
    count = iter(range(100))

    def build() -> Page:
        return Page(str(next(count)), after=100)

    assert cache.get_or_build("a", build).html == "0"
    assert cache.get_or_build("a", build).html == "0"
    time.sleep(0.06)
    assert cache.get_or_build("a", build).html == "1"
    # Up to half as far behind the feed as its live updates can replay: served as it is.
    assert cache.get_or_build("a", build, newest=125, max_behind=50).html == "1"
    # Further: the caller rebuilds it (and while it does, the others get it as it is: below).
    assert cache.get_or_build("a", build, newest=126, max_behind=50).html == "2"
    off = PageCache(ttl_s=0)
    assert [off.get_or_build("a", build).html for _ in range(2)] == ["3", "4"]


def test_a_page_too_far_behind_is_never_served() -> None:
    cache = PageCache(ttl_s=60)
    count = iter(range(100))

    def build() -> Page:
        return Page(str(next(count)), after=100)

    assert cache.get_or_build("a", build).html == "0"
    release = threading.Event()
    started = threading.Event()

    def slow() -> Page:
        started.set()
        assert release.wait(2)
        return Page("slow", after=200)

    # Half-way behind: one caller rebuilds, another gets the old page at once.
    builder = threading.Thread(
        target=lambda: cache.get_or_build("a", slow, newest=130, max_behind=50)
    )
    builder.start()
    assert started.wait(2)
    assert cache.get_or_build("a", build, newest=130, max_behind=50).html == "0"
    # Past the bound its live updates could replay: this caller waits for the rebuilt page.
    got: list[str] = []
    waiter = threading.Thread(
        target=lambda: got.append(cache.get_or_build("a", build, newest=151, max_behind=50).html)
    )
    waiter.start()
    time.sleep(0.1)
    assert got == []
    release.set()
    builder.join()
    waiter.join()
    assert got == ["slow"]


def test_a_full_cache_drops_what_expired_first() -> None:
    cache = PageCache(ttl_s=60, max_entries=2)
    for key in "abc":
        cache.get_or_build(key, lambda k=key: Page(k))
    assert cache.get_or_build("c", lambda: Page("rebuilt")).html == "c"


def test_while_one_caller_rebuilds_an_expired_page_the_others_get_it_at_once() -> None:
    cache = PageCache(ttl_s=0.05)
    cache.get_or_build("a", lambda: Page("old"))
    time.sleep(0.06)
    started = threading.Event()

    def slow() -> Page:
        started.set()
        time.sleep(0.3)
        return Page("new")

    rebuilt: list[str] = []
    builder = threading.Thread(target=lambda: rebuilt.append(cache.get_or_build("a", slow).html))
    builder.start()
    assert started.wait(2)
    began = time.monotonic()
    assert cache.get_or_build("a", slow).html == "old"  # not waiting for the rebuild
    assert time.monotonic() - began < 0.1
    builder.join()
    assert rebuilt == ["new"] and cache.get_or_build("a", slow).html == "new"


def test_a_page_built_before_a_bulk_move_is_never_served() -> None:
    """``cases.moved`` (event 8) tells a page to reload: a page built as of event 5 would get it
    again on replay and reload again, so it is rebuilt, and the rebuilt one is served."""
    cache = PageCache(ttl_s=60)
    cache.get_or_build("a", lambda: Page("before", after=5))
    assert cache.peek("a", newest=8, max_behind=100) is not None
    assert cache.peek("a", newest=8, max_behind=100, reset_after=8) is None
    rebuilt = cache.get_or_build("a", lambda: Page("after", after=8), newest=8, reset_after=8)
    assert rebuilt.html == "after"
    assert cache.get_or_build("a", lambda: Page("again", after=9), reset_after=8).html == "after"
