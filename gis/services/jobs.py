"""Background jobs: the rules of the ``jobs`` table (who sees a job, when it counts as dead, how
it is cancelled) and the kinds of work a job can do.

A job kind is a pair of functions: ``check(session, params)`` runs in the request that starts the
job, so bad input is a 4xx at once and no job row is written; ``run(session, params, progress)``
does the work later in a worker thread (``gis.api.jobs.JobRunner``) and returns the result's JSON.
``progress(fraction, message)`` records how far the work is and raises ``JobCancelledError``
once the job's owner asked to cancel it: cancellation is cooperative, between steps.

A process that dies leaves its jobs ``running`` with a heartbeat that stops moving; such a job is
marked failed when it is read (``get_job``) or when an API process starts (``reap_stale``), once
its heartbeat is older than ``GIS_JOB_HEARTBEAT_TIMEOUT_S``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import ConflictError, GisError, NotFoundError
from gis.layers.base import utcnow
from gis.layers.jobs import FINAL_JOB_STATUSES, Job, JobStatus

DIED = "the process running this job stopped (no heartbeat for {timeout:.0f} s); start it again"


class JobCancelledError(GisError):
    """The job's owner asked to stop it; raised from ``progress`` between steps."""

    code = "cancelled"


class Progress(Protocol):
    """What a job's work calls to report progress (and to learn that it was cancelled)."""

    def __call__(self, fraction: float, message: str) -> None:
        """Record ``fraction`` (0–1) done and what is happening; raises when cancelled."""


def no_progress(fraction: float, message: str) -> None:
    """A ``Progress`` that records nothing (the CLI and notebooks run jobs' work directly)."""


@dataclass(frozen=True)
class JobKind:
    """A kind of job: the quick checks done before it is queued, and the work."""

    check: Callable[[Session, dict[str, Any]], None]
    run: Callable[[Session, dict[str, Any], Progress], dict[str, Any]]


KINDS: dict[str, JobKind] = {}


def register(name: str, kind: JobKind) -> None:
    """Make ``name`` a job kind (each service registers its own when imported)."""
    KINDS[name] = kind


def job_kind(name: str) -> JobKind:
    """The kind called ``name`` (the proposal services register theirs on import)."""
    from gis.services import redistricting, siting, stations  # noqa: F401  (register kinds)

    try:
        return KINDS[name]
    except KeyError:
        raise NotFoundError(f"no job kind {name!r}") from None


def create_job(
    session: Session,
    *,
    kind: str,
    params: dict[str, Any],
    owner: str,
    now: datetime | None = None,
) -> Job:
    """Check ``params`` with the kind's own checks and queue a job (flushed, not committed)."""
    job_kind(kind).check(session, params)
    job = Job(
        kind=kind,
        owner=owner,
        params=params,
        status=JobStatus.QUEUED.value,
        progress=0.0,
        message="queued",
        cancel_requested=False,
        created_at=now or utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def _stale(job: Job, *, timeout_s: float, now: datetime) -> bool:
    if job.status != JobStatus.RUNNING.value:
        return False
    beat = job.heartbeat_at or job.started_at or job.created_at
    return beat < now - timedelta(seconds=timeout_s)


def _mark_died(job: Job, *, timeout_s: float, now: datetime) -> None:
    job.status = JobStatus.FAILED.value
    job.error = DIED.format(timeout=timeout_s)
    job.message = "failed"
    job.finished_at = now


def get_job(
    session: Session,
    job_id: int,
    *,
    owner: str | None,
    timeout_s: float,
    now: datetime | None = None,
) -> Job:
    """The job, if ``owner`` started it (``None``: an admin, who sees every job); a running job
    whose heartbeat stopped is marked failed on the way."""
    job = session.get(Job, job_id)
    if job is None or (owner is not None and job.owner != owner):
        raise NotFoundError(f"no job {job_id}")
    now = now or utcnow()
    if _stale(job, timeout_s=timeout_s, now=now):
        _mark_died(job, timeout_s=timeout_s, now=now)
        session.flush()
    return job


def request_cancel(session: Session, job: Job, *, now: datetime | None = None) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next step. 409 if final."""
    if JobStatus(job.status) in FINAL_JOB_STATUSES:
        raise ConflictError(f"job {job.id} has already {job.status}; nothing to cancel")
    job.cancel_requested = True
    if job.status == JobStatus.QUEUED.value:
        job.status = JobStatus.CANCELLED.value
        job.message = "cancelled before it started"
        job.finished_at = now or utcnow()
    else:
        job.message = "cancelling…"
    session.flush()
    return job


def reap_stale(session: Session, *, timeout_s: float, now: datetime | None = None) -> int:
    """Mark failed every running job whose heartbeat is older than ``timeout_s``; their count."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=timeout_s)
    jobs = session.scalars(
        sa.select(Job)
        .where(
            Job.status == JobStatus.RUNNING.value,
            sa.func.coalesce(Job.heartbeat_at, Job.started_at, Job.created_at) < cutoff,
        )
        .with_for_update(skip_locked=True)
    ).all()
    for job in jobs:
        _mark_died(job, timeout_s=timeout_s, now=now)
    session.flush()
    return len(jobs)


def start(session: Session, job_id: int, *, worker: str, now: datetime | None = None) -> bool:
    """Claim a queued job for ``worker`` (False: it was cancelled or taken meanwhile)."""
    now = now or utcnow()
    claimed = session.execute(
        sa.update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
        .values(
            status=JobStatus.RUNNING.value,
            worker=worker,
            started_at=now,
            heartbeat_at=now,
            message="started",
        )
        .returning(Job.id)
    ).first()
    return claimed is not None


def beat(
    session: Session,
    job_id: int,
    *,
    progress: float | None = None,
    message: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Renew a running job's heartbeat (and its progress); True when cancel was requested."""
    values: dict[str, Any] = {"heartbeat_at": now or utcnow()}
    if progress is not None:
        values["progress"] = min(1.0, max(0.0, float(progress)))
    if message is not None:
        values["message"] = message[:300]
    row = session.execute(
        sa.update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING.value)
        .values(**values)
        .returning(Job.cancel_requested)
    ).first()
    # A job no longer running (reaped as dead meanwhile) must stop too.
    return row is None or bool(row[0])


def finish(
    session: Session,
    job_id: int,
    status: JobStatus,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    message: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record how a job ended (its result, or the reason it failed or stopped)."""
    values: dict[str, Any] = {
        "status": status.value,
        "finished_at": now or utcnow(),
        "message": (message or status.value)[:300],
        "error": error,
        "result": result,
    }
    if status is JobStatus.SUCCEEDED:
        values["progress"] = 1.0
    session.execute(sa.update(Job).where(Job.id == job_id).values(**values))
