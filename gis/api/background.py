"""Jobs an API process runs beside its requests (the live feed's hub, the webhook sender):
one step at a time, woken at once by ``wake()`` and otherwise every ``tick_s``."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gis.errors import GisError

log = logging.getLogger(__name__)

# Seconds between steps when nothing wakes the job (a job may tick faster: the live feed's hub
# polls), and at least between two steps: one read per burst serves them all (measured with
# bench/load: a read per report cost every worker two queries per report).
TICK_S = 1.0
MIN_INTERVAL_S = 0.05


class Background:
    """A background job: subclasses say what one ``step`` does."""

    name = "background job"
    tick_s = TICK_S

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Run the next step now."""
        self._wake.set()

    @property
    def running(self) -> bool:
        """Whether the job has been started and not stopped."""
        return self._task is not None

    def start(self) -> None:
        """Run in the background (the app's lifespan)."""
        self._task = asyncio.create_task(self._run())

    def cancel(self) -> None:
        """Stop without waiting (from code that cannot await)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def stop(self) -> None:
        """Stop and wait until stopped.

        Cancelled again until it is done: on Python 3.11 ``asyncio.wait_for`` can swallow a
        cancellation that arrives as the awaited event is set (fixed in 3.12), and the loop
        then runs on — a shutdown that waited for it hung (seen in the suite, intermittently).
        """
        if self._task is not None:
            task, self._task = self._task, None
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
            with contextlib.suppress(asyncio.CancelledError):
                task.result()

    async def step(self) -> None:
        """One round of the job's work."""
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except GisError as error:  # the database is away: try again on the next tick
                log.warning("%s: %s", self.name, error.detail)
            except Exception:  # a bug must not stop the job for good
                log.exception("%s failed", self.name)
            await asyncio.sleep(MIN_INTERVAL_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(self.tick_s - MIN_INTERVAL_S, 0.0))
            self._wake.clear()
