"""The service under test, started with uvicorn on a free loopback port, for the benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running server: its base URL and the process id of uvicorn (parent of any workers)."""

    base: str
    pid: int


@contextmanager
def serve(
    env: dict[str, str],
    *,
    app: str = "gis.api.app:create_app",
    workers: int = 1,
    ready_s: float = 180.0,
    python: str = sys.executable,
    factory: bool = True,
    root: Path = ROOT,
) -> Iterator[Server]:
    """Run ``uvicorn --factory app`` on a free loopback port with ``env`` added; yields it once
    it answers ``GET /health`` below 500 (the service: 200 with the database up; an app without
    the route: 404), and stops it afterwards. ``python`` runs uvicorn (another virtualenv's, for
    a reference server such as tipg); ``factory=False`` for an ``app`` that is an app object;
    ``root``: the checkout whose code is served (a baseline's worktree, see
    ``baseline_checkout``)."""
    port = free_port()
    command = [
        python, "-m", "uvicorn", app, *(["--factory"] if factory else []), "--host",
        "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning",
        "--no-access-log", "--timeout-graceful-shutdown", "2",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=root, env={**os.environ, "PYTHONPATH": str(root), **env}
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/health", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{app} did not answer /health within {ready_s:.0f} s")
        yield Server(base, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def admin_token(session: Session, name: str) -> str:
    """A fresh admin token for a benchmark's own user ``name`` (replaced on each run; the
    caller commits)."""
    from gis.layers.users import Role, User
    from gis.services import access

    session.execute(sa.delete(User).where(User.name == name))
    return access.issue_token(session, access.add_user(session, name=name, role=Role.ADMIN))


def run_cli(root: Path, url: str, *args: str) -> None:
    """``gis ARGS`` by ``root``'s own code on the database ``url``."""
    env = {**os.environ, "PYTHONPATH": str(root), "GIS_DATABASE_URL": url}
    cli = [sys.executable, "-c", "from gis.cli import app; app()"]
    subprocess.run([*cli, *args], cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)


def provision_demo(root: Path, url: str) -> None:
    """Create, migrate and fill ``url`` with the demo county by ``root``'s own code (its
    migrations, its loader): a baseline version is measured on the schema it was written for,
    not on this checkout's."""
    for args in (
        ["db", "up"],
        ["db", "migrate"],
        ["sample", "load", "--if-empty", "--no-progress"],
        ["stats", "refresh"],
    ):
        run_cli(root, url, *args)


@contextmanager
def baseline_checkout(ref: str) -> Iterator[Path]:
    """``ref`` (e.g. ``main``) checked out into a temporary git worktree, removed afterwards:
    the version a benchmark compares against in the same run, on the same machine and data."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="gis-baseline-")) / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(folder), ref],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, capture_output=True
        )
