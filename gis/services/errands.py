"""Errand runners (跑小二): a resident asks, the grid member of their grid runs the approval.

States: requested → collecting (the member collects the papers) → submitted (to the approver) →
approved | rejected → delivered (the result is brought back). ``cancel`` ends an errand before it
is submitted; ``assign`` gives it to a member (from the town queue, or a handover). Every change
appends an ``errand_events`` row; the caller commits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import InvalidTransitionError, NotFoundError, ValidationError
from gis.geo import checked_wgs84
from gis.layers.base import query_point, utcnow
from gis.layers.errands import (
    Errand,
    ErrandEvent,
    ErrandStatus,
    get_service,
    list_errand_events,
)
from gis.layers.grids import GridMember
from gis.services.assignment import locate
from gis.services.deadlines import DEFAULT_CALENDAR, WorkingCalendar
from gis.services.media import action_photos
from gis.services.transitions import record_transition
from gis.settings import Settings

E = ErrandStatus


class ErrandAction(StrEnum):
    """What can happen to an errand."""

    REQUEST = "request"
    ASSIGN = "assign"
    COLLECT = "collect"
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    DELIVER = "deliver"
    CANCEL = "cancel"


# THE errand transition table: action → {state before → state after}.
TRANSITIONS: Mapping[ErrandAction, Mapping[ErrandStatus | None, ErrandStatus]] = {
    ErrandAction.REQUEST: {None: E.REQUESTED},
    # The command room gives a queued errand (home outside every grid) to a member, or hands
    # one over while the papers are still being collected; the state does not change.
    ErrandAction.ASSIGN: {E.REQUESTED: E.REQUESTED, E.COLLECTING: E.COLLECTING},
    ErrandAction.COLLECT: {E.REQUESTED: E.COLLECTING},
    ErrandAction.SUBMIT: {E.COLLECTING: E.SUBMITTED},
    ErrandAction.APPROVE: {E.SUBMITTED: E.APPROVED},
    ErrandAction.REJECT: {E.SUBMITTED: E.REJECTED},
    # A refusal is delivered too: the papers and the written reasons go back to the resident.
    ErrandAction.DELIVER: {E.APPROVED: E.DELIVERED, E.REJECTED: E.DELIVERED},
    ErrandAction.CANCEL: {E.REQUESTED: E.CANCELLED, E.COLLECTING: E.CANCELLED},
}
USER_ACTIONS = tuple(a for a in ErrandAction if a is not ErrandAction.REQUEST)
NEEDS_REASON = frozenset({ErrandAction.REJECT, ErrandAction.CANCEL})

# Mainland mobiles (1xx xxxx xxxx), landlines with an area code, optionally +86; spaces/dashes.
_PHONE = re.compile(r"^(\+?86)?[\s-]?(1[3-9]\d{9}|0\d{2,3}[\s-]?\d{7,8})$")


def allowed_errand_actions(status: str | None) -> list[str]:
    """The actions allowed on an errand in ``status``, in table order."""
    state = None if status is None else ErrandStatus(status)
    return [a.value for a in USER_ACTIONS if state in TRANSITIONS[a]]


def _next(status: str | None, action: str) -> tuple[ErrandAction, ErrandStatus]:
    try:
        known = ErrandAction(action)
    except ValueError:
        names = ", ".join(a.value for a in USER_ACTIONS)
        raise ValidationError(f"unknown errand action {action!r}; known: {names}") from None
    if known is ErrandAction.REQUEST:
        raise ValidationError("request is how an errand is created: POST /errands")
    state = None if status is None else ErrandStatus(status)
    target = TRANSITIONS[known].get(state)
    if target is None:
        allowed = allowed_errand_actions(status)
        raise InvalidTransitionError(
            f"cannot {known.value} an errand that is {status}; allowed actions: "
            f"{', '.join(allowed) if allowed else 'none (the errand is finished)'}",
            current_status=status,
            action=known.value,
            allowed_actions=allowed,
        )
    return known, target


def check_phone(phone: str) -> str:
    """A mainland mobile or landline number, normalised to digits (and a leading +86)."""
    text = (phone or "").strip()
    if not _PHONE.match(text):
        raise ValidationError(
            f"phone {phone!r} is not a mainland number: 11-digit mobile (13812345678) or "
            "landline with area code (0570-1234567)"
        )
    return re.sub(r"[\s-]", "", text)


@dataclass(frozen=True)
class ErrandRequest:
    """What a resident (or the hotline on their behalf) asks for."""

    service: str
    applicant_name: str
    applicant_phone: str
    lon: float
    lat: float
    crs: str | None = None
    note: str | None = None


def request_errand(
    session: Session,
    request: ErrandRequest,
    *,
    settings: Settings,
    actor: str = "hotline",
    now: datetime | None = None,
    calendar: WorkingCalendar = DEFAULT_CALENDAR,
) -> Errand:
    """Save an errand for the grid member of the grid covering the applicant's home.

    A home outside every grid goes to its town's queue (no member), as intake does; a service
    that needs the applicant in person is refused with the reason, and nothing is written.
    """
    now = now or utcnow()
    service = get_service(session, request.service)
    if not service.proxy_allowed:
        raise ValidationError(
            f"{service.name_zh} ({service.code}) cannot be run by a grid member: "
            f"{service.proxy_note}",
            service=service.code,
        )
    name = (request.applicant_name or "").strip()
    if not name:
        raise ValidationError("applicant_name is required")
    phone = check_phone(request.applicant_phone)
    lon, lat, crs = checked_wgs84(request.lon, request.lat, request.crs)
    place = locate(
        session,
        lon,
        lat,
        at=now,
        snap_m=settings.snap_meters,
        coverage_margin_m=settings.coverage_margin_m,
    )
    errand = Errand(
        service_code=service.code,
        status=ErrandStatus.REQUESTED.value,
        applicant_name=name,
        applicant_phone=phone,
        geom=query_point(lon, lat),
        source_crs=crs.value,
        source_lon=float(request.lon),
        source_lat=float(request.lat),
        location_quality=place.quality.value,
        grid_id=place.grid_id,
        grid_code=place.grid_code,
        village_code=place.village_code,
        town_code=place.town_code,
        county_code=place.county_code,
        member_id=place.member_id,
        note=(request.note or "").strip() or None,
        requested_at=now,
        due_at=calendar.add_working_days(now, service.time_limit_days),
        updated_at=now,
    )
    session.add(errand)
    session.flush()
    queue = None if place.member_id is not None else f"town queue {place.town_code}"
    session.add(
        ErrandEvent(
            errand_id=errand.id,
            at=now,
            actor=actor,
            action=ErrandAction.REQUEST.value,
            from_status=None,
            to_status=ErrandStatus.REQUESTED.value,
            note=queue,
            data={
                "member_id": place.member_id,
                "grid_code": place.grid_code,
                "location_quality": place.quality.value,
            },
        )
    )
    session.flush()
    return errand


@dataclass(frozen=True)
class ErrandDetail:
    """An errand with what a reply shows besides its row: home point, member, service, log."""

    errand: Errand
    lon: float
    lat: float
    member: GridMember | None
    service_name: str
    events: list[ErrandEvent]
    allowed_actions: list[str]


def errand_detail(session: Session, errand: Errand) -> ErrandDetail:
    """The errand's home point (WGS84), member, service name, event log and allowed actions."""
    lon, lat = session.execute(
        sa.select(sa.func.ST_X(Errand.geom), sa.func.ST_Y(Errand.geom)).where(
            Errand.id == errand.id
        )
    ).one()
    return ErrandDetail(
        errand=errand,
        lon=lon,
        lat=lat,
        member=None if errand.member_id is None else session.get(GridMember, errand.member_id),
        service_name=get_service(session, errand.service_code).name_zh,
        events=list(list_errand_events(session, errand.id)),
        allowed_actions=allowed_errand_actions(errand.status),
    )


@dataclass(frozen=True)
class ErrandActionResult:
    """The errand after an action and the event that recorded it."""

    errand: Errand
    event: ErrandEvent
    allowed_actions: list[str]


def apply_errand_action(
    session: Session,
    errand_id: int,
    action: str,
    *,
    actor: str,
    note: str | None = None,
    applicant_trips: int | None = None,
    member_id: int | None = None,
    photos: Sequence[str] = (),
    uploader: int | None = None,
    now: datetime | None = None,
) -> ErrandActionResult:
    """Move an errand along its table; ``deliver`` records how many trips the applicant made.

    ``photos`` (``media:<id>``, uploaded by ``uploader`` when given: the papers collected, the
    result handed over) are kept in the event, as a case action's are."""
    now = now or utcnow()
    actor = (actor or "").strip()
    if not actor:
        raise ValidationError("actor is required: who is acting")
    errand = session.get(Errand, errand_id, with_for_update=True)
    if errand is None:
        raise NotFoundError(f"no errand with id {errand_id}")
    before = errand.status
    known, after = _next(before, action)
    why = (note or "").strip() or None
    if known in NEEDS_REASON and not why:
        raise ValidationError(f"{known.value} needs a reason in 'note'")
    if now < errand.updated_at:
        raise ValidationError("the action's time is before the errand's last change")
    data: dict[str, Any] = action_photos(session, photos, uploader=uploader)
    if known is ErrandAction.DELIVER:
        if applicant_trips is None or not 0 <= applicant_trips <= 50:
            raise ValidationError(
                "deliver needs applicant_trips: how many times the applicant had to go in "
                "person (0 = zero-trip 零跑腿)"
            )
        errand.applicant_trips = applicant_trips
        errand.delivered_at = now
        data["applicant_trips"] = applicant_trips
    elif applicant_trips is not None:
        raise ValidationError("applicant_trips is recorded on deliver only")
    if known is ErrandAction.ASSIGN:
        member = None if member_id is None else session.get(GridMember, member_id)
        if member is None or not member.active:
            raise ValidationError("assign needs member_id: an active grid member")
        if member.id == errand.member_id:
            raise ValidationError(f"the errand is already with member {member.id}")
        data.update(from_member_id=errand.member_id, member_id=member.id)
        errand.member_id = member.id
    elif member_id is not None:
        raise ValidationError("member_id is given on assign only")
    if known is ErrandAction.SUBMIT:
        errand.submitted_at = now
    elif known in (ErrandAction.APPROVE, ErrandAction.REJECT):
        errand.decided_at = now
    event: ErrandEvent = record_transition(
        session, errand, ErrandEvent.errand_id, known.value, after.value, actor, why, data, now
    )
    return ErrandActionResult(errand, event, allowed_errand_actions(after.value))
