"""ASGI middleware: a hard limit on request body size, checked before the body is parsed."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """Reject bodies larger than ``max_bytes`` with 413, whether announced or streamed; paths
    under ``upload_prefixes`` (photo uploads) may carry up to ``upload_bytes``."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        upload_bytes: int = 0,
        upload_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = max(upload_bytes, max_bytes)
        self.upload_prefixes = upload_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting body bytes as they arrive."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (
            self.upload_bytes
            if scope.get("path", "").startswith(self.upload_prefixes)
            else self.max_bytes
        )
        chunked = False
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = 0
                if announced > limit:
                    await self._reject(send, limit)
                    return
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked:
            # The server hands the app exactly Content-Length bytes (none without the header),
            # and that was checked above: nothing left to count, so no wrapper on the hot path.
            await self.app(scope, receive, send)
            return
        # A chunked body announces no length: read it here, counting, and refuse it as soon as
        # it is too large (raising inside the app's receive would surface as a parse error).
        chunks = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            received += len(message.get("body", b""))
            if received > limit:
                await self._reject(send, limit)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send, limit: int) -> None:
        which = (
            "GIS_MAX_BODY_BYTES" if limit == self.max_bytes else "photos: GIS_MEDIA_MAX_BYTES each"
        )
        body = json.dumps(
            {
                "code": "payload_too_large",
                "detail": f"the request body is larger than {limit} bytes ({which})",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
