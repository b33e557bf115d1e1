"""The background loops (live hub, webhook sender) stop when asked, even if a cancellation is
swallowed once — as ``asyncio.wait_for`` on Python 3.11 can do."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from gis.api.background import Background


class SwallowsOnce(Background):
    """A job whose step swallows the first cancellation it receives and goes on."""

    name = "swallows once"

    def __init__(self) -> None:
        super().__init__()
        self.swallowed = 0
        self.started = asyncio.Event()

    async def step(self) -> None:
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed += 1


def test_stop_returns_even_when_a_cancellation_is_swallowed() -> None:
    async def scenario() -> int:
        job = SwallowsOnce()
        job.start()
        await job.started.wait()
        # The old stop() (one cancel, then await) waited here for the step's whole minute.
        stopping = asyncio.ensure_future(job.stop())
        done, _ = await asyncio.wait({stopping}, timeout=5)
        assert stopping in done, "stop() did not return after a swallowed cancellation"
        return job.swallowed

    # A thread of its own: a test before may leave an event loop running in this one.
    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(asyncio.run, scenario()).result(timeout=60) == 1
