"""Errand runners (跑小二) over HTTP: the service catalog, requests, and their progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from sqlalchemy.orm import Session

from gis.api.deps import ClockDep, PageDep, SessionDep, SettingsDep, status_query
from gis.api.errors import SWAPPED, domain_errors
from gis.api.schemas.errands import (
    ErrandActionCreate,
    ErrandCreate,
    ErrandEventRead,
    ErrandRead,
    Member,
    ServiceRead,
)
from gis.api.schemas.types import MAX_ID, read_from
from gis.api.security import (
    READ_CASES,
    REPORT,
    CaseActor,
    CaseReader,
    acted_by,
    allow,
    check_town,
    errand_filter,
)
from gis.errors import UnknownCodeError, ValidationError
from gis.layers.errands import Errand, ErrandStatus, get_errand, list_errands, list_services
from gis.services import errands as errand_service
from gis.services.access import Principal

router = APIRouter(tags=["errands"])

ErrandId = Annotated[int, Path(ge=1, le=MAX_ID, description="Errand id")]


@router.get("/services", response_model=list[ServiceRead])
def services(
    session: SessionDep,
    _: Annotated[Principal | None, Depends(allow(*READ_CASES, public=True))],
    proxy_allowed: Annotated[
        bool | None, Query(description="Only those a runner may (true) or may not (false) run")
    ] = None,
) -> list[ServiceRead]:
    """The service catalog: materials, approving level, time limit, whether a runner may run it."""
    return [
        ServiceRead.model_validate(s) for s in list_services(session, proxy_allowed=proxy_allowed)
    ]


def errand_read(session: Session, errand: Errand) -> ErrandRead:
    """The reply for an errand, with its member, home point and log."""
    detail = errand_service.errand_detail(session, errand)
    member = detail.member
    return read_from(
        ErrandRead,
        errand,
        detail,
        service=errand.service_code,
        home={"lon": detail.lon, "lat": detail.lat},
        member=None if member is None else read_from(Member, member),
        events=[ErrandEventRead.model_validate(e) for e in detail.events],
    )


@router.post(
    "/errands",
    response_model=ErrandRead,
    status_code=status.HTTP_201_CREATED,
    responses=domain_errors(
        SWAPPED,
        (UnknownCodeError, "the service is not in the catalog (GET /services)"),
        (ValidationError, "the service needs the applicant in person: no runner may run it"),
    ),
)
def create_errand(
    session: SessionDep,
    settings: SettingsDep,
    body: ErrandCreate,
    response: Response,
    principal: Annotated[Principal | None, Depends(allow(*REPORT))],
    now: ClockDep,
) -> ErrandRead:
    """Request an errand: it goes to the grid member of the grid covering the applicant's home
    (outside every grid: the town's queue). A service that needs the applicant in person is 422."""
    errand = errand_service.request_errand(
        session,
        errand_service.ErrandRequest(
            service=body.service,
            applicant_name=body.applicant_name,
            applicant_phone=body.applicant_phone,
            lon=body.home.lon,
            lat=body.home.lat,
            crs=body.home.crs,
            note=body.note,
        ),
        settings=settings,
        actor=principal.name if principal is not None else "hotline",
        now=now,
    )
    reply = errand_read(session, errand)
    session.commit()
    response.headers["Location"] = f"/errands/{errand.id}"
    return reply


@router.get("/errands", response_model=list[ErrandRead])
def errands(
    session: SessionDep,
    page: PageDep,
    principal: CaseReader,
    status_: Annotated[list[ErrandStatus] | None, status_query()] = None,
) -> list[ErrandRead]:
    """Errands newest first: a grid member's own (跑小二), or those of the caller's towns."""
    rows = list_errands(
        session,
        scope=errand_filter(principal, Errand),
        statuses=tuple(s.value for s in status_ or ()),
        page=page,
    )
    return [errand_read(session, errand) for errand in rows]


@router.get("/errands/{errand_id}", response_model=ErrandRead)
def read_errand(
    session: SessionDep,
    errand_id: ErrandId,
    principal: CaseReader,
) -> ErrandRead:
    """One errand with its log."""
    errand = get_errand(session, errand_id)
    check_town(principal, errand.town_code, "errand")
    return errand_read(session, errand)


@router.post(
    "/errands/{errand_id}/actions",
    response_model=ErrandRead,
    responses=domain_errors(
        (
            ValidationError,
            "a field the action needs is missing (reject and cancel: note; assign: member_id; "
            "deliver: applicant_trips), member_id is not a grid member, or a photo is not "
            "stored or was uploaded by another user",
        )
    ),
)
def act_on_errand(
    session: SessionDep,
    errand_id: ErrandId,
    body: ErrandActionCreate,
    principal: CaseActor,
    now: ClockDep,
) -> ErrandRead:
    """collect → submit → approve | reject → deliver (with applicant_trips), or cancel."""
    check_town(principal, get_errand(session, errand_id).town_code, "errand")
    result = errand_service.apply_errand_action(
        session,
        errand_id,
        body.action,
        **body.model_dump(exclude={"action", "actor"}),
        **acted_by(principal, body.actor),
        now=now,
    )
    reply = errand_read(session, result.errand)
    session.commit()
    return reply
