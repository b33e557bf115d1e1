"""Which reads of a request may go to a read replica (docs/scaling.md, "Read replicas").

A route says that its reads may be a little stale with the dependency ``StaleReadOk``
(``gis.api.deps``, on the route or its router); it never chooses an engine. ``SessionDep`` and
``database_of`` (``gis.api.deps``) then hand it a replica's session or pool when
``ReadRouting`` allowed it for this request and ``gis.replicas.ReadRouter`` has a replica fit to
serve; otherwise the primary's. ``ReadRouting`` (an ASGI middleware) keeps the promises around
that:

- only GET and HEAD requests may read from a replica; anything else runs on the primary;
- read-your-writes: a successful write marks its client (its token here, in this process, and a
  cookie on the answer, for every process and host) as a recent writer, whose reads go to the
  primary for ``ReadRouter.read_your_writes_s``; ``Cache-Control: no-cache`` asks the same for
  one request;
- a read that a replica failed (503, a conflict with recovery, an error) before anything was
  sent is answered again from the primary, and that replica is skipped until its next check.

Without replicas configured the middleware passes every request straight on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gis.services.access import hash_token

if TYPE_CHECKING:
    from gis.replicas import ReadRouter, Replica

# Where a request's choice lives (in its ASGI scope, shared by every Request object of it).
SCOPE_KEY = "gis.read"
# The cookie a write's answer carries: until when (Unix time) this client reads the primary.
WROTE_COOKIE = "gis_primary_until"
READ_METHODS = frozenset({"GET", "HEAD"})
# Answers after which a replica's read is answered again from the primary: unavailable, and a
# query cancelled by a conflict with recovery (SQLSTATE 40001, translated to 409).
_RETRY_STATUSES = frozenset({409, 503})
# Recent writers remembered per process at most (then forgotten at once, like the token cache).
_MAX_WRITERS = 10_000


@dataclass
class ReadChoice:
    """What a request may read from: ``stale_ok`` once its route declared it, never when
    ``primary_only``; ``replica`` is the one its reads went to, once picked."""

    primary_only: bool
    stale_ok: bool = False
    replica: Replica | None = None


async def stale_read_ok(request: Request) -> None:
    """Declare that this route's reads may be served by a read replica (a few seconds stale at
    most, GIS_REPLICA_MAX_LAG_S). Only GET and HEAD requests are affected."""
    choice: ReadChoice | None = request.scope.get(SCOPE_KEY)
    if choice is not None and request.method in READ_METHODS:
        choice.stale_ok = True


def replica_for(request: Request) -> Replica | None:
    """The replica this request's reads go to, or ``None`` for the primary. Decided on the
    first read of a stale-tolerant route, so that other requests pay nothing for it."""
    choice: ReadChoice | None = request.scope.get(SCOPE_KEY)
    if choice is None or not choice.stale_ok or choice.primary_only:
        return None
    if choice.replica is None:
        if wants_primary(request.scope, request.app.state.recent_writers):
            choice.primary_only = True
            return None
        reads: ReadRouter = request.app.state.reads
        choice.replica = reads.pick()
    return choice.replica


def wants_primary(scope: Scope, writers: dict[str, float]) -> bool:
    """Whether the client of a read wrote a moment ago (its token, in this process, or the
    cookie of its write's answer) or asks for a fresh answer (``Cache-Control: no-cache``)."""
    headers = _headers(scope)
    if b"no-cache" in headers.get(b"cache-control", b"").lower():
        return True
    if writers:
        key = _writer_key(headers)
        if key is not None and writers.get(key, 0.0) > time.monotonic():
            return True
    until = _cookie(headers, WROTE_COOKIE)
    try:
        return until is not None and float(until) > time.time()
    except ValueError:
        return False


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", [])}


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    """The value of cookie ``name`` of the request, or ``None``."""
    raw = headers.get(b"cookie")
    if raw is None or name.encode() not in raw:
        return None
    for part in raw.decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip().strip('"')
    return None


def _writer_key(headers: dict[bytes, bytes]) -> str | None:
    """Who the client is, for read-your-writes: its token's hash (header, else login cookie)."""
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return hash_token(token.strip())
    cookie = _cookie(headers, "gis_token")  # gis.api.security.TOKEN_COOKIE
    return hash_token(cookie) if cookie else None


class ReadRouting:
    """The ASGI middleware that sets each request's ``ReadChoice`` (see the module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route the request's reads; record writes; answer a failed replica read again."""
        reads: ReadRouter | None = (
            getattr(scope["app"].state, "reads", None) if scope["type"] == "http" else None
        )
        if reads is None or not reads.enabled:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in READ_METHODS:
            scope[SCOPE_KEY] = ReadChoice(primary_only=True)
            await self.app(scope, receive, self._recording(scope, send, reads))
            return
        pristine = dict(scope)
        choice = scope[SCOPE_KEY] = ReadChoice(primary_only=False)
        started = failed = False

        async def guarded(message: Message) -> None:
            nonlocal started, failed
            if message["type"] == "http.response.start":
                if choice.replica is not None and message["status"] in _RETRY_STATUSES:
                    failed = True
                    return
                started = True
            if not failed:
                await send(message)

        try:
            await self.app(scope, receive, guarded)
        except Exception as error:
            if choice.replica is None or started:
                raise
            failed, reason = True, f"{type(error).__name__}: {error}"
        else:
            reason = "answered 503 or 409"
        if not failed or choice.replica is None:
            return
        reads.failed(choice.replica, reason)
        retry = dict(pristine)
        if isinstance(pristine.get("state"), dict):  # the first attempt may have written to it
            retry["state"] = dict(pristine["state"])
        retry[SCOPE_KEY] = ReadChoice(primary_only=True)
        await self.app(retry, _empty_body_then(receive), send)

    @staticmethod
    def _recording(scope: Scope, send: Send, reads: ReadRouter) -> Send:
        """``send``, remembering the client as a recent writer when the write succeeded."""

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                window = reads.read_your_writes_s
                key = _writer_key(_headers(scope))
                if key is not None:
                    writers: dict[str, float] = scope["app"].state.recent_writers
                    if len(writers) >= _MAX_WRITERS:
                        writers.clear()
                    writers[key] = time.monotonic() + window
                cookie = (
                    f"{WROTE_COOKIE}={time.time() + window:.3f}; Max-Age={int(window) + 1}; "
                    "Path=/; HttpOnly; SameSite=Lax"
                )
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())],
                }
            await send(message)

        return recording


def _empty_body_then(receive: Receive) -> Receive:
    """A GET's (empty) body once more, then the client's own messages (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return await receive()

    return replay
