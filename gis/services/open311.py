"""Open311 GeoReport v2 on top of intake and the workflow: the rules that map between the two.

A request filed by an Open311 client is an ordinary report: it goes through ``report_incident``
(same grid, platform, unit, deadline, duplicates and idempotency), and what GeoReport carries that
an incident does not (the reporter's contacts, ``attribute[...]``, the jurisdiction) is kept beside
it in ``open311_requests``. Statuses, updates and comments are read from and written to the same
event log as every other case. Formats (XML, JSON) are the API's business, not this module's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.orm import Session

from gis.errors import NotFoundError, ValidationError
from gis.layers.base import same_columns, utcnow
from gis.layers.categories import PLATFORM_NAMES_ZH, Category, Platform
from gis.layers.incidents import FINAL_STATUSES, Incident, IncidentEvent, IncidentStatus
from gis.layers.open311 import Open311Request, Open311Update
from gis.layers.regions import Region, RegionLevel
from gis.layers.units import ResponderUnit
from gis.services.intake import (
    IncidentDetail,
    IncidentReport,
    Reporter,
    ReportLocation,
    report_incident,
)
from gis.services.media import MediaStore, Photo, forget, save_photo
from gis.services.workflow import Action, apply_action
from gis.settings import Settings

# GeoReport v2: a date range may span at most 90 days; without one, the last 90 days.
MAX_SPAN = timedelta(days=90)
# At most this many requests per answer (the spec's own limit); page through the rest.
MAX_REQUESTS = 1000

S = IncidentStatus
# The extended statuses FixMyStreet and others read (``external_status_code`` carries ours).
EXTENDED_STATUS: dict[IncidentStatus, str] = {
    S.REPORTED: "OPEN",
    S.ASSIGNED: "ACTION_SCHEDULED",
    S.ACCEPTED: "INVESTIGATING",
    S.IN_PROGRESS: "IN_PROGRESS",
    # Resolved waits for the command room's verification: not fixed until closed.
    S.RESOLVED: "IN_PROGRESS",
    S.RETURNED: "IN_PROGRESS",
    S.ESCALATED: "INTERNAL_REFERRAL",
    S.CLOSED: "FIXED",
    S.CANCELLED: "NO_FURTHER_ACTION",
    S.DUPLICATE: "DUPLICATE",
}
EXTENDED_STATUSES = tuple(sorted(set(EXTENDED_STATUS.values()) | {"OPEN", "CLOSED"}))


def basic_status(status: str) -> str:
    """GeoReport's ``open`` or ``closed`` for one of our statuses: closed once it is final."""
    return "closed" if IncidentStatus(status) in FINAL_STATUSES else "open"


def extended_status(status: str) -> str:
    """The extended status (``IN_PROGRESS``, ``FIXED``…) for one of our statuses."""
    return EXTENDED_STATUS[IncidentStatus(status)]


# --- services ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """A category as an Open311 service."""

    code: str
    name: str
    description: str
    group: str
    keywords: str


def _service(category: Category) -> Service:
    platform = Platform(category.platform)
    return Service(
        code=category.code,
        name=f"{category.name_zh} {category.name_en}",
        description=category.description or category.name_en,
        group=platform.value,
        keywords=", ".join(
            (category.name_zh, category.name_en, PLATFORM_NAMES_ZH[platform], platform.value)
        ),
    )


def list_services(session: Session) -> list[Service]:
    """Every category as a service, by platform then code."""
    categories = session.scalars(sa.select(Category).order_by(Category.platform, Category.code))
    return [_service(category) for category in categories]


def get_service(session: Session, code: str) -> Service:
    """The service of category ``code``, or ``NotFoundError``."""
    category = session.get(Category, code)
    if category is None:
        raise NotFoundError(f"no service with service_code {code!r}; GET services lists them")
    return _service(category)


# --- jurisdictions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Jurisdiction:
    """A county or a town whose cases an Open311 call is about."""

    code: str
    level: RegionLevel

    def contains(self, town_code: str | None, county_code: str | None) -> bool:
        """Whether a case of this town and county is inside the jurisdiction."""
        if self.level is RegionLevel.TOWN:
            return town_code == self.code
        return county_code == self.code

    def clause(self) -> sa.ColumnElement[bool]:
        """The WHERE clause keeping the jurisdiction's cases."""
        if self.level is RegionLevel.TOWN:
            return Incident.town_code == self.code
        return Incident.county_code == self.code


def find_jurisdiction(session: Session, jurisdiction_id: str | None) -> Jurisdiction | None:
    """The county or town named by ``jurisdiction_id`` (None if not given), or ``NotFoundError``."""
    if jurisdiction_id is None or not jurisdiction_id.strip():
        return None
    code = jurisdiction_id.strip()
    region = session.get(Region, code) if len(code) <= 12 else None
    if region is None or region.level not in (RegionLevel.COUNTY, RegionLevel.TOWN):
        raise NotFoundError(
            f"unknown jurisdiction_id {code!r}: use the 12-digit code of a county or a town "
            "(GET /regions lists them)"
        )
    return Jurisdiction(region.code, RegionLevel(region.level))


# --- filing a request ----------------------------------------------------------------------------


@dataclass
class Submission:
    """What an Open311 client sends with ``POST requests``, parsed but not yet checked."""

    service_code: str | None
    lat: float | None = None
    lon: float | None = None
    crs: str | None = None
    address_string: str | None = None
    description: str = ""
    media_urls: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    email: str | None = None
    phone: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None


def _report_of(submission: Submission) -> IncidentReport:
    """The intake report of a submission, or the error GeoReport expects (both as 400s)."""
    if not submission.service_code:
        raise ValidationError("service_code is required: GET services lists the codes")
    has_point = submission.lat is not None or submission.lon is not None
    if has_point and submission.address_string:
        raise ValidationError("send either lat and long or address_string, not both")
    if not has_point:
        if submission.address_string:
            raise ValidationError(
                "address_string cannot be located: no geocoder is configured here; "
                "send lat and long (WGS84, or with crs=GCJ-02 or BD-09)"
            )
        raise ValidationError("a location is required: send lat and long")
    if submission.lat is None or submission.lon is None:
        raise ValidationError("send both lat and long")
    reporter_id = submission.account_id or submission.device_id
    try:
        return IncidentReport(
            category=submission.service_code,
            location=ReportLocation(
                lon=submission.lon, lat=submission.lat, crs=submission.crs or "EPSG:4326"
            ),
            description=submission.description,
            reporter=Reporter(kind="citizen", id=reporter_id[:100] if reporter_id else None),
            photos=submission.media_urls,
        )
    except PydanticValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        names = {"photos": "media_url", "description": "description", "location.crs": "crs"}
        field_name = next((v for k, v in names.items() if where.startswith(k)), where)
        raise ValidationError(f"{field_name}: {first['msg']}") from None


def submit_request(
    session: Session,
    submission: Submission,
    *,
    settings: Settings,
    jurisdiction: Jurisdiction | None,
    user_id: int | None,
    idempotency_key: str | None = None,
    uploads: Sequence[bytes] = (),
    store: MediaStore | None = None,
    now: datetime | None = None,
) -> IncidentDetail:
    """File an Open311 request through intake and keep its Open311 extras; the caller commits.

    Uploaded photos are stored and named in the case's photos. Everything runs in a savepoint,
    so a failure (a point outside the jurisdiction, a bad photo) undoes all of it even inside a
    caller's longer transaction, and the stored files no record kept are removed again.
    """
    report = _report_of(submission)
    get_service(session, report.category)  # GeoReport: an unknown service is 404, not 400
    if uploads and store is None:
        raise ValidationError("uploaded photos need a media store")
    stored: list[Photo] = []
    try:
        with session.begin_nested():
            for data in uploads:
                assert store is not None
                stored.append(
                    save_photo(session, store, data, settings=settings, uploaded_by=user_id)
                )
            if stored:
                photos = [*report.photos, *(photo.ref for photo in stored)]
                report = report.model_copy(update={"photos": photos})
            result = report_incident(
                session, report, settings=settings, now=now, idempotency_key=idempotency_key
            )
            detail = result.incident
            if jurisdiction is not None and not jurisdiction.contains(
                detail.town_code, detail.county_code
            ):
                where = detail.town_name or detail.county_name or "no town of this service"
                raise ValidationError(
                    f"the point lies in {where}, outside jurisdiction_id {jurisdiction.code}; "
                    "check lat/long or send the jurisdiction that covers it"
                )
            if result.created:
                session.add(_extras(detail.id, submission, jurisdiction, user_id))
                session.flush()
    except BaseException:
        if store is not None:
            forget(session, store, stored)
        raise
    return detail


def _extras(
    incident_id: int, submission: Submission, jurisdiction: Jurisdiction | None, user_id: int | None
) -> Open311Request:
    # The contact fields, address and attributes, as sent.
    return Open311Request(
        **same_columns(Open311Request, submission),
        incident_id=incident_id,
        jurisdiction_id=jurisdiction.code if jurisdiction else None,
        user_id=user_id,
    )


# --- reading requests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestFilter:
    """Which requests ``GET requests`` asks for; ``scope`` comes from the access layer."""

    ids: tuple[int, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[str, ...] = ()  # "open" / "closed"
    jurisdiction: Jurisdiction | None = None
    scope: sa.ColumnElement[bool] | None = None
    # Anonymous callers: these platforms' cases are left out.
    hidden_platforms: tuple[str, ...] = ()


def date_window(
    start: datetime | None, end: datetime | None, *, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The spec's window: both given, at most 90 days apart; one or none, 90 days around it."""
    now = now or utcnow()
    if start is None and end is None:
        return now - MAX_SPAN, now
    if start is None:
        assert end is not None
        return end - MAX_SPAN, end
    if end is None:
        return start, min(now, start + MAX_SPAN) if start < now else start + MAX_SPAN
    if end < start:
        raise ValidationError("end_date is before start_date")
    if end - start > MAX_SPAN:
        raise ValidationError("start_date and end_date may be at most 90 days apart")
    return start, end


@dataclass(frozen=True)
class Open311Case:
    """One case as GeoReport shows it; the contact fields are filled for staff only."""

    id: int
    status: str
    extended_status: str
    status_notes: str | None
    service_code: str
    service_name: str
    description: str
    agency_responsible: str | None
    requested_at: datetime
    updated_at: datetime
    expected_at: datetime | None
    address: str
    lat: float
    lon: float
    photos: list[str]  # URLs and media:<id> references, as the case stores them
    grid_code: str | None
    town_code: str | None
    contacts: dict[str, str] | None


def _last_note() -> Any:
    """The note of the case's last event that has one (the status_notes)."""
    return (
        sa.select(IncidentEvent.note)
        .where(IncidentEvent.incident_id == Incident.id, IncidentEvent.note.is_not(None))
        .order_by(IncidentEvent.at.desc(), IncidentEvent.id.desc())
        .limit(1)
        .scalar_subquery()
    )


_CONTACTS = ("email", "phone", "first_name", "last_name", "account_id", "device_id")


def _conditions(filters: RequestFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.scope is not None:
        conditions.append(filters.scope)
    if filters.hidden_platforms:
        conditions.append(Incident.platform.not_in(filters.hidden_platforms))
    if filters.jurisdiction is not None:
        conditions.append(filters.jurisdiction.clause())
    if filters.ids:
        # The spec: a list of ids overrides every other filter (but never the access scope).
        conditions.append(Incident.id.in_(filters.ids))
        return conditions
    if filters.service_codes:
        conditions.append(Incident.category_code.in_(filters.service_codes))
    if filters.start is not None:
        conditions.append(Incident.reported_at >= filters.start)
    if filters.end is not None:
        conditions.append(Incident.reported_at <= filters.end)
    if filters.statuses and set(filters.statuses) != {"open", "closed"}:
        final = [s.value for s in FINAL_STATUSES]
        closed = "closed" in filters.statuses
        conditions.append(Incident.status.in_(final) if closed else Incident.status.not_in(final))
    return conditions


def list_requests(
    session: Session, filters: RequestFilter, *, staff: bool, limit: int, offset: int = 0
) -> list[Open311Case]:
    """The requests matching ``filters``, newest first; contacts only when ``staff``."""
    query = (
        sa.select(
            Incident,
            Category.name_zh,
            Category.name_en,
            ResponderUnit.name.label("unit_name"),
            Open311Request,
            Region.name.label("town_name"),
            _last_note().label("status_notes"),
            sa.func.ST_X(Incident.geom).label("lon"),
            sa.func.ST_Y(Incident.geom).label("lat"),
        )
        .join(Category, Category.code == Incident.category_code)
        .outerjoin(ResponderUnit, ResponderUnit.id == Incident.unit_id)
        .outerjoin(Open311Request, Open311Request.incident_id == Incident.id)
        .outerjoin(Region, Region.code == Incident.town_code)
        .where(*_conditions(filters))
        .order_by(Incident.reported_at.desc(), Incident.id.desc())
        .limit(min(limit, MAX_REQUESTS))
        .offset(offset)
    )
    cases = []
    for row in session.execute(query):
        incident: Incident = row.Incident
        extra: Open311Request | None = row.Open311Request
        contacts = None
        if staff and extra is not None:
            contacts = {
                name: value for name in _CONTACTS if (value := getattr(extra, name)) is not None
            }
        address = extra.address_string if extra and extra.address_string else None
        cases.append(
            Open311Case(
                id=incident.id,
                status=basic_status(incident.status),
                extended_status=extended_status(incident.status),
                status_notes=row.status_notes,
                service_code=incident.category_code,
                service_name=f"{row.name_zh} {row.name_en}",
                description=incident.description,
                agency_responsible=row.unit_name,
                requested_at=incident.reported_at,
                updated_at=incident.updated_at,
                expected_at=incident.due_at,
                address=address
                or " ".join(part for part in (row.town_name, incident.grid_code) if part),
                lon=float(row.lon),
                lat=float(row.lat),
                photos=list(incident.photos or ()),
                grid_code=incident.grid_code,
                town_code=incident.town_code,
                contacts=contacts,
            )
        )
    return cases


# --- updates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestUpdate:
    """One change of a case as the updates extension shows it."""

    update_id: int
    service_request_id: int
    status: str
    updated_at: datetime
    description: str | None
    media_url: str | None
    external_status_code: str


def list_updates(
    session: Session, filters: RequestFilter, *, limit: int, offset: int = 0
) -> list[RequestUpdate]:
    """Every status change and note of the window (``filters.start`` to ``end``), oldest first."""
    event = IncidentEvent
    conditions = [
        event.action != Action.REPORT.value,
        event.at >= filters.start if filters.start else sa.true(),
        event.at <= filters.end if filters.end else sa.true(),
    ]
    # The window is the events' own; the requests' report times and statuses do not narrow it.
    window_free = replace(filters, start=None, end=None, statuses=())
    query = (
        sa.select(
            event.id,
            event.incident_id,
            event.to_status,
            event.at,
            event.note,
            event.action,
            Open311Update.media_url,
        )
        .join(Incident, Incident.id == event.incident_id)
        .outerjoin(
            Open311Update,
            (Open311Update.event_id == event.id) & (Open311Update.event_at == event.at),
        )
        .where(*conditions, *_conditions(window_free))
        .order_by(event.at, event.id)
        .limit(min(limit, MAX_REQUESTS))
        .offset(offset)
    )
    return [
        RequestUpdate(
            update_id=row.id,
            service_request_id=row.incident_id,
            status=extended_status(row.to_status),
            updated_at=row.at,
            description=row.note,
            media_url=row.media_url,
            external_status_code=row.action,
        )
        for row in session.execute(query)
    ]


@dataclass
class UpdatePost:
    """A client's ``POST servicerequestupdates``."""

    service_request_id: int
    update_id: str
    status: str  # OPEN or CLOSED, as the client sees the case
    description: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    media_url: str | None = None
    updated_datetime: datetime | None = None


def post_update(
    session: Session,
    post: UpdatePost,
    *,
    actor: str,
    user_id: int | None,
    now: datetime | None = None,
) -> int:
    """Record a client's update as an action on the case; return the event's id (the update id).

    ``OPEN`` on a closed case reopens it (rework, with the text as the reason); anything else is
    a comment. The client's ``updated_datetime`` is kept as data, never as the event's time.
    """
    if not post.update_id.strip():
        raise ValidationError("update_id is required: your own id of this update")
    if session.scalar(
        sa.select(Open311Update.id).where(Open311Update.client_update_id == post.update_id)
    ):
        raise ValidationError(f"update_id {post.update_id!r} was already received")
    status = post.status.strip().upper()
    if status not in ("OPEN", "CLOSED", *EXTENDED_STATUSES):
        raise ValidationError(f"unknown status {post.status!r}; send OPEN or CLOSED")
    text = post.description.strip()
    if not text:
        raise ValidationError("description is required: what the update says")
    incident = session.get(Incident, post.service_request_id)
    if incident is None:
        raise NotFoundError(f"no service request {post.service_request_id}")
    reopen = status == "OPEN" and incident.status == S.CLOSED
    result = apply_action(
        session,
        incident.id,
        Action.REOPEN.value if reopen else Action.COMMENT.value,
        actor=actor,
        reason=text,
        now=now,
    )
    session.add(
        Open311Update(
            **same_columns(Open311Update, post),  # the contact fields and media_url, as sent
            client_update_id=post.update_id,
            incident_id=incident.id,
            event_id=result.event.id,
            event_at=result.event.at,
            user_id=user_id,
            client_updated_at=post.updated_datetime,
        )
    )
    session.flush()
    return int(result.event.id)


def split_codes(values: Iterable[str]) -> tuple[str, ...]:
    """Comma-separated values, also repeated, as one tuple without blanks."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())
