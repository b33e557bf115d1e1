"""Real Dask clusters for the bulk-job tests (tests/services/test_bulk.py, the boundary import,
the many-town analytics): a ``LocalCluster`` of two worker processes shared by the whole test
session, and a ``dask scheduler`` + ``dask worker`` on loopback for a test to kill. Registered
for the whole suite by ``pytest_plugins`` in tests/conftest.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from distributed import Client

DASK = Path(sys.executable).with_name("dask")
# A running scheduler and the process to kill.
Scheduler = tuple[str, "subprocess.Popen[bytes]"]


def free_port() -> int:
    """A TCP port nobody listens on (the OS's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def local_client() -> Iterator[Client]:
    """A real distributed LocalCluster of two worker processes (its scheduler listens on
    loopback TCP, so a command can be pointed at it with ``--scheduler``)."""
    from gis.services import bulk

    with bulk.dask_client(None, workers=2) as client:
        yield client


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    """A real ``dask scheduler`` and one ``dask worker`` process on loopback."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    # The workers run this checkout's gis (a real cluster installs the same package).
    root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
        "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "5s",
    }
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    sched = subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--dashboard-address", ":0"],
        **quiet,  # type: ignore[call-overload]
    )  # fmt: skip
    worker = subprocess.Popen(
        [str(DASK), "worker", address, "--nthreads", "1", "--nworkers", "1",
         "--no-dashboard", "--no-nanny", "--death-timeout", "10"],
        **quiet,  # type: ignore[call-overload]
    )  # fmt: skip
    try:
        with Client(address, timeout=30) as probe:
            probe.wait_for_workers(1, timeout=300)
        yield address, sched
    finally:
        for process in (worker, sched):
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a scheduler and wait for it to be gone."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
