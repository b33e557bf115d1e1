"""The service under test, started with uvicorn on a free loopback port, for the benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(env: dict[str, str], *, workers: int = 1, ready_s: float = 20.0) -> Iterator[str]:
    """Run ``gis.api.app:create_app`` with ``env`` added; yields its base URL once /health
    answers 200, and stops it afterwards."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "gis.api.app:create_app", "--factory",
        "--port", str(port), "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the service did not answer /health within {ready_s:.0f} s")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
