"""The webhook sender of one process: works through the outbox (``webhook_deliveries``).

Woken by the feed's NOTIFY (the same LISTEN connection as the hub, ``gis.api.app``) and once a
second, it claims due deliveries with ``FOR UPDATE SKIP LOCKED`` (so several workers and
processes share the work without sending one twice at a time), POSTs each signed event, and
records the answer (``gis.services.webhooks``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx

from gis.db_async import Database
from gis.errors import GisError
from gis.services.webhooks import SIGNATURE_HEADER, Due, claim_flow, record_flow, sign
from gis.settings import Settings

log = logging.getLogger(__name__)

TICK_S = 1.0
BATCH = 50


class WebhookSender:
    """Delivers what the outbox owes, in the background of the app."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look at the outbox now (new events were committed)."""
        self._wake.set()

    def start(self) -> None:
        """Run in the background (the app's lifespan)."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop sending (a claimed delivery not yet recorded is sent again after its lease)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        timeout = httpx.Timeout(self.settings.webhook_timeout_s)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            while True:
                try:
                    while await self.send_due(client) == BATCH:
                        pass
                except GisError as error:  # the database is away: next tick
                    log.warning("webhooks: %s", error.detail)
                except Exception:  # a bug must not stop the deliveries for good
                    log.exception("webhooks: sending failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), TICK_S)
                self._wake.clear()

    async def send_due(self, client: httpx.AsyncClient) -> int:
        """Claim, send and record one batch of due deliveries; returns how many."""
        due = await self.database.run(claim_flow(BATCH))
        await asyncio.gather(*(self._deliver(client, d) for d in due))
        return len(due)

    async def _deliver(self, client: httpx.AsyncClient, due: Due) -> None:
        code: int | None = None
        error: str | None = None
        if due.payload is None:
            error = "the event is no longer kept (GIS_LIVE_RETENTION_H)"
        else:
            body = due.payload.encode()
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "gis-webhooks",
                "X-Gis-Event": due.type or "",
                "X-Gis-Event-Id": str(due.event_id),
                "X-Gis-Delivery": str(due.id),
                "X-Gis-Timestamp": stamp,
                SIGNATURE_HEADER: sign(due.secret, stamp, body),
            }
            try:
                response = await client.post(due.url, content=body, headers=headers)
                code = response.status_code
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: {failure}"
        await self.database.run(record_flow(due, status_code=code, error=error))
