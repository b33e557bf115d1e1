"""Background jobs: how far a long analysis is, its result, and cancelling it (its owner and
admins only; anyone else gets 404, as for another town's resources)."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.responses import JSONResponse

from gis.api.deps import SessionDep, settings_of
from gis.api.errors import ERROR_RESPONSES, domain_errors
from gis.api.jobs import JobRunner
from gis.api.schemas.jobs import JobRead
from gis.api.schemas.types import read_from
from gis.api.security import PLAN, WATCH, allow
from gis.errors import ConflictError, NotFoundError
from gis.layers.jobs import Job, JobStatus
from gis.layers.users import Role
from gis.services import jobs
from gis.services.access import Principal

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobUser = Annotated[Principal | None, Depends(allow(*PLAN, *WATCH))]
JobId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Job id")]


def owner_of(principal: Principal | None) -> str:
    """The name a job started by ``principal`` is recorded under."""
    return principal.name if principal is not None else "anonymous"


def _owner_filter(principal: Principal | None) -> str | None:
    """Whose jobs the caller sees: admins (and an open server's anonymous caller) see all."""
    if principal is None or principal.role is Role.ADMIN:
        return None
    return principal.name


def result_url(job: Job) -> str | None:
    """Where a succeeded job's result is: its draft plan, or the job's own result."""
    if job.status != JobStatus.SUCCEEDED.value or job.result is None:
        return None
    link = job.result.get("link")
    return str(link) if link else f"/jobs/{job.id}/result"


def job_read(job: Job) -> JobRead:
    """The reply for ``job``."""
    return read_from(JobRead, job, result_url=result_url(job))


def start_job(
    request: Request,
    session: SessionDep,
    principal: Principal | None,
    kind: str,
    params: dict[str, Any],
) -> JSONResponse:
    """Check and queue a job, commit it, hand it to this process's runner: 202 + Location."""
    job = jobs.create_job(session, kind=kind, params=params, owner=owner_of(principal))
    session.commit()
    runner: JobRunner = request.app.state.jobs
    runner.submit(job.id)
    return JSONResponse(
        job_read(job).model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/jobs/{job.id}"},
    )


def _job(request: Request, session: SessionDep, principal: Principal | None, job_id: int) -> Job:
    job = jobs.get_job(
        session,
        job_id,
        owner=_owner_filter(principal),
        timeout_s=settings_of(request).job_heartbeat_timeout_s,
    )
    session.commit()  # a job found dead is recorded as failed
    return job


@router.get("/{job_id}", response_model=JobRead)
def get_job(request: Request, session: SessionDep, principal: JobUser, job_id: JobId) -> JobRead:
    """Status, progress (0–1), message, result link or error of a job."""
    return job_read(_job(request, session, principal, job_id))


@router.post(
    "/{job_id}/cancel",
    response_model=JobRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **ERROR_RESPONSES,
        **domain_errors((ConflictError, "the job has already ended")),
    },
)
def cancel_job(request: Request, session: SessionDep, principal: JobUser, job_id: JobId) -> JobRead:
    """Cancel a job: a queued one at once, a running one at its next step (cooperatively)."""
    job = jobs.request_cancel(session, _job(request, session, principal, job_id))
    session.commit()
    return job_read(job)


def _result(request: Request, session: SessionDep, principal: Principal | None, job_id: int) -> Any:
    job = _job(request, session, principal, job_id)
    if job.status != JobStatus.SUCCEEDED.value or job.result is None:
        raise NotFoundError(f"job {job_id} has no result (it is {job.status})")
    return job.result


@router.get("/{job_id}/result", response_model=dict[str, Any])
def get_result(
    request: Request, session: SessionDep, principal: JobUser, job_id: JobId
) -> dict[str, Any]:
    """The result of a succeeded job (siting: a GeoJSON FeatureCollection of the chosen sites
    with the summary; redistricting: the draft plan's id and link)."""
    result: dict[str, Any] = _result(request, session, principal, job_id)
    return result


@router.get(
    "/{job_id}/result.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def get_result_csv(
    request: Request, session: SessionDep, principal: JobUser, job_id: JobId
) -> Response:
    """The result's table as CSV (siting: one row per chosen site)."""
    result = _result(request, session, principal, job_id)
    table = result.get("table")
    if not table:
        raise NotFoundError(f"job {job_id}'s result has no table")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table["columns"])
    writer.writerows(table["rows"])
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="job-{job_id}.csv"'},
    )
