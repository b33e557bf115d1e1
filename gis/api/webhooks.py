"""The webhook sender of one process: works through the outbox (``webhook_deliveries``).

Woken by the feed's NOTIFY (the same LISTEN connection as the hub, ``gis.api.app``) and once a
second, it claims due deliveries with ``FOR UPDATE SKIP LOCKED`` (so several workers and
processes share the work without sending one twice at a time), POSTs each signed event, and
records the answer (``gis.services.webhooks``).
"""

from __future__ import annotations

import asyncio
import time

import httpx

from gis.api.background import Background
from gis.db_async import Database
from gis.services.webhooks import SIGNATURE_HEADER, Due, claim_flow, record_flow, sign
from gis.settings import Settings

BATCH = 50


class WebhookSender(Background):
    """Delivers what the outbox owes, in the background of the app. A claimed delivery not yet
    recorded when it stops is sent again after its lease."""

    name = "webhooks"

    def __init__(self, database: Database, settings: Settings) -> None:
        super().__init__()
        self.database = database
        self.settings = settings
        self._client: httpx.AsyncClient | None = None

    async def step(self) -> None:
        """Send every due delivery, batch after batch."""
        if self._client is None:
            timeout = httpx.Timeout(self.settings.webhook_timeout_s)
            self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        while await self.send_due(self._client) == BATCH:
            pass

    async def stop(self) -> None:
        """Stop sending and close the HTTP client."""
        await super().stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

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
