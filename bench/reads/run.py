"""What read routing (``gis.api.reads.ReadRouting``) costs a request, against the same request
without it, in the same run.

    python -m bench.reads.run [--requests 20000] [--repeat 7]

No database: the middleware wraps a bare ASGI endpoint that answers at once, so what is timed is
the middleware alone — with no replica configured (it passes the request on), and with replicas
configured for a GET of a route that did not declare ``StaleReadOk`` and for a POST (a write
that sets the read-your-writes cookie and remembers its client). CPU time of this process
(``time.process_time``): the machine this ran on is shared, and wall times follow its load.
Prints medians (µs per request) and the overhead over the bare endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from types import SimpleNamespace
from typing import Any

from gis.api.reads import ReadRouting

TOKEN = b"Bearer gis_" + b"x" * 43


class _Replicas:
    """A ``ReadRouter`` with replicas configured (none is asked: no route declared them)."""

    enabled = True
    read_your_writes_s = 15.0

    def pick(self) -> None:
        return None


async def _endpoint(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _send(message: Any) -> None:
    pass


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def _per_request(app: Any, state: Any, method: str, requests: int) -> float:
    headers = [(b"host", b"gis"), (b"authorization", TOKEN), (b"accept", b"application/json")]
    app_object = SimpleNamespace(state=state)
    started = time.process_time()
    for _ in range(requests):
        scope = {"type": "http", "method": method, "path": "/x", "app": app_object}
        scope["headers"] = headers
        await app(scope, _receive, _send)
    return (time.process_time() - started) / requests * 1e6


async def measure(requests: int, repeat: int) -> dict[str, float]:
    """Median µs per request of each case."""
    off = SimpleNamespace(reads=SimpleNamespace(enabled=False))
    on = SimpleNamespace(reads=_Replicas(), recent_writers={})
    routed = ReadRouting(_endpoint)
    cases = {
        "bare endpoint": (_endpoint, off, "GET"),
        "no replica configured": (routed, off, "GET"),
        "replicas, GET": (routed, on, "GET"),
        "replicas, POST": (routed, on, "POST"),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, (app, state, method) in cases.items():
            times[name].append(await _per_request(app, state, method, requests))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    result = asyncio.run(measure(args.requests, args.repeat))
    bare = result["bare endpoint"]
    for name, micros in result.items():
        print(f"{name:24} {micros:7.2f} µs/request  overhead {micros - bare:+6.2f} µs")


if __name__ == "__main__":
    main()
