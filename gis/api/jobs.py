"""The in-process job runner: background jobs (``gis.services.jobs``) run in a thread pool of the
API process, with their progress and a heartbeat written to the ``jobs`` table.

Each job's work runs in one transaction of its own, committed together with its result (a draft
plan and the job that made it appear at once, or not at all). Progress and the heartbeat go
through short transactions on another connection, so ``GET /jobs/{id}`` sees them while the
work is under way. A heartbeat thread renews the heartbeat every few seconds even while the work
is inside a long solver call, and brings a cancel request from the table to the work, which
stops at its next ``progress`` call.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Engine

from gis.db import session_scope
from gis.errors import DatabaseUnavailableError, GisError
from gis.layers.jobs import Job, JobStatus
from gis.services import jobs
from gis.settings import Settings

log = logging.getLogger(__name__)

# Progress is written at most this often (the last call always shows in the final state).
PROGRESS_INTERVAL_S = 0.5
STOPPED = "the server stopped while the job ran; start it again"


class JobRunner:
    """Runs queued jobs in ``GIS_JOB_WORKERS`` threads of this process."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.timeout_s = settings.job_heartbeat_timeout_s
        self.beat_s = max(0.05, min(5.0, self.timeout_s / 4))
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._pool = ThreadPoolExecutor(settings.job_workers, thread_name_prefix="gis-job")
        self._stopping = threading.Event()
        self._futures: dict[int, Future[None]] = {}

    def start(self) -> int:
        """Mark failed the jobs a dead process left running; their count. A database that is
        down at start-up does not stop the service (it answers 503 until the database is back):
        such jobs are then marked failed when they are read (``jobs.get_job``)."""
        try:
            with session_scope(self.engine) as session:
                return jobs.reap_stale(session, timeout_s=self.timeout_s)
        except DatabaseUnavailableError as error:
            log.warning("stale jobs not reaped at start-up: %s", error)
            return 0

    def submit(self, job_id: int) -> Future[None]:
        """Run the (committed, queued) job ``job_id`` when a worker is free."""
        future = self._pool.submit(self._run, job_id)
        self._futures[job_id] = future
        future.add_done_callback(lambda _: self._futures.pop(job_id, None))
        return future

    def wait(self, job_id: int, timeout_s: float | None = None) -> None:
        """Wait until the job ``job_id`` of this runner has ended (tests, the CLI)."""
        future = self._futures.get(job_id)
        if future is not None:
            future.result(timeout=timeout_s)

    def stop(self, *, wait_s: float = 10.0) -> None:
        """Stop: queued jobs stay queued no more (they fail), running ones stop at their next
        step and are marked failed, saying the server stopped."""
        self._stopping.set()
        pending = dict(self._futures)
        self._pool.shutdown(wait=False, cancel_futures=True)
        for job_id, future in pending.items():
            if future.cancelled():  # queued here, never started: it would wait for ever
                with session_scope(self.engine) as session:
                    jobs.finish(session, job_id, JobStatus.FAILED, error=STOPPED)
        deadline = time.monotonic() + wait_s
        for future in list(self._futures.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                future.result(timeout=remaining)
            except Exception:
                continue

    def _beat(self, job_id: int, **values: Any) -> bool:
        with session_scope(self.engine) as session:
            return jobs.beat(session, job_id, **values)

    def _run(self, job_id: int) -> None:
        if self._stopping.is_set():
            return
        with session_scope(self.engine) as session:
            if not jobs.start(session, job_id, worker=self.worker):
                return  # cancelled while queued
            job = session.get(Job, job_id)
            assert job is not None
            kind, params = job.kind, dict(job.params)
        cancel = threading.Event()
        done = threading.Event()
        heart = threading.Thread(
            target=self._heartbeat,
            args=(job_id, cancel, done),
            daemon=True,
            name=f"gis-job-{job_id}-heartbeat",
        )
        heart.start()
        last = [0.0]

        def progress(fraction: float, message: str) -> None:
            if cancel.is_set() or self._stopping.is_set():
                raise jobs.JobCancelledError("cancelled")
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL_S:
                last[0] = now
                if self._beat(job_id, progress=fraction, message=message):
                    cancel.set()
                    raise jobs.JobCancelledError("cancelled")

        try:
            with session_scope(self.engine) as session:
                result = jobs.job_kind(kind).run(session, params, progress)
                jobs.finish(session, job_id, JobStatus.SUCCEEDED, result=result, message="done")
        except jobs.JobCancelledError:
            self._end(job_id, JobStatus.FAILED if self._stopping.is_set() else JobStatus.CANCELLED)
        except GisError as error:
            self._end(job_id, JobStatus.FAILED, error=f"{error.code}: {error.detail}")
        except Exception as error:  # a bug: recorded on the job, logged with its traceback
            log.exception("job %s (%s) failed", job_id, kind)
            self._end(job_id, JobStatus.FAILED, error=f"internal error: {type(error).__name__}")
        finally:
            done.set()
            heart.join()

    def _end(self, job_id: int, status: JobStatus, *, error: str | None = None) -> None:
        if status is JobStatus.FAILED and error is None:
            error = STOPPED
        message = "cancelled at the owner's request" if status is JobStatus.CANCELLED else None
        with session_scope(self.engine) as session:
            jobs.finish(session, job_id, status, error=error, message=message)

    def _heartbeat(self, job_id: int, cancel: threading.Event, done: threading.Event) -> None:
        while not done.wait(self.beat_s):
            try:
                if self._beat(job_id):
                    cancel.set()
            except GisError as error:  # the database is away: the next beat may get through
                log.warning("job %s heartbeat: %s", job_id, error.detail)
