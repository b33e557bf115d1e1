"""A real uvicorn server on a loopback port, for tests whose client speaks real HTTP."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(
    app: Any, *, timeout_s: float = 20.0, graceful_shutdown_s: int | None = None
) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL, stops it afterwards
    (``graceful_shutdown_s`` bounds the wait for open event streams when stopping)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=free_port(),
        log_level="warning",
        workers=1,
        timeout_graceful_shutdown=graceful_shutdown_s,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class OneAtATime:
    """An ASGI wrapper answering one HTTP request at a time: for an app whose sessions are the
    test's one session (``tests.conftest.use_session``), which the concurrent requests of a
    browser must not share. An event stream holds the turn only until its response starts (it
    would hold it forever): its work on the session (the login check, the first reads) is done
    by then, and done in turn — a page's other request used to meet it on the session."""

    STREAMS = ("/events/stream",)

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = asyncio.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not scope["path"].endswith(self.STREAMS):
            async with self.lock:
                await self.app(scope, receive, send)
            return
        await self.lock.acquire()
        turn = {"held": True}

        def give_back() -> None:
            if turn["held"]:
                turn["held"] = False
                self.lock.release()

        async def send_then_give_back(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.start":
                give_back()

        try:
            await self.app(scope, receive, send_then_give_back)
        finally:
            give_back()
