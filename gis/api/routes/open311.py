"""Open311 GeoReport v2 under ``/open311/v2``: civic apps and hotlines file cases and follow them.

Each path answers in XML (``.xml``, which FixMyStreet's client speaks) or JSON (``.json``).
Requests are filed through the same intake as ``POST /incidents`` and followed through the same
event log; ``gis.services.open311`` holds the mapping, ``gis.api.open311`` the formats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials
from starlette.datastructures import UploadFile

from gis import __version__
from gis.api.deps import (
    ClockDep,
    IdempotencyKey,
    SessionDep,
    SettingsDep,
    primary_database_of,
    settings_of,
)
from gis.api.open311 import Format, Open311Route, reply
from gis.api.openapi import public
from gis.api.schemas import open311 as schemas
from gis.api.security import (
    READ_CASES,
    REPORT,
    admit,
    bearer,
    case_filter,
    check_case,
    principal_of,
)
from gis.errors import AuthenticationError, NotFoundError, ValidationError
from gis.layers.incidents import Incident
from gis.services import media, open311
from gis.services.access import Principal, authenticate_flow
from gis.services.clock import check_device_time
from gis.services.media import MAX_UPLOADS

# FixMyStreet names its photo parts photo1…photoN; GeoReport's own name is media.
PHOTO_FIELD = re.compile(r"^(media|photo\d*)$")
# Not ``StaleReadOk``: Open311 clients authenticate with an api_key parameter and seldom keep
# cookies, so a client reading the request it just filed could not be recognised as its writer.
router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)

SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-12-06T00:00:00Z"


def _content(model: Any, *, many: bool = True) -> dict[str, Any]:
    schema = {"type": "array", "items": model.model_json_schema()} if many else None
    json_schema = schema or model.model_json_schema()
    return {"application/json": {"schema": json_schema}, "text/xml": {"schema": {"type": "string"}}}


_ERROR = {
    "description": "GeoReport's error list (<errors><error>… in XML)",
    "content": _content(schemas.Open311Error),
}
ERRORS: dict[int | str, dict[str, Any]] = {status: _ERROR for status in (400, 403, 404, 500, 503)}


# GeoReport bodies are form fields (multipart when files come along); JSON is accepted too.
FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            media: {"schema": {"type": "object", "additionalProperties": True}}
            for media in (
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "application/json",
            )
        }
    }
}


def _ok(model: Any, *, many: bool = True) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": "OK", "content": _content(model, many=many)}, **ERRORS}


FmtPath = Annotated[Format, Path(description="xml or json")]
JurisdictionQuery = Annotated[
    str | None,
    Query(max_length=12, description="The 12-digit code of a county or town (optional)"),
]
# GeoReport's api_key: a token of this service, as a query parameter (or a form field of a POST);
# the bearer header works as well.
api_key_query = APIKeyQuery(
    name="api_key",
    scheme_name="Open311ApiKey",
    description="A token of this service (GeoReport's api_key); POSTs may send it as a field",
    auto_error=False,
)
ApiKeyDep = Annotated[str | None, Security(api_key_query)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


# --- who is calling ------------------------------------------------------------------------------


async def _principal(request: Request, api_key: str | None) -> Principal | None:
    """The caller of an ``api_key`` (GeoReport's way) or of the bearer header or login cookie."""
    if api_key:
        principal: Principal = await primary_database_of(request).run(authenticate_flow(api_key))
        return principal
    return await principal_of(request)


@dataclass(frozen=True)
class Reader:
    """Who reads requests: staff (a token that may read cases) or the public."""

    principal: Principal | None

    @property
    def staff(self) -> bool:
        """Whether the caller sees contacts and private platforms (within its scope)."""
        return self.principal is not None


async def get_reader(request: Request, api_key: ApiKeyDep, _bearer: BearerDep) -> Reader:
    """The reader of a GET: a staff token's scope, or the public when the settings allow it."""
    settings = settings_of(request)
    principal = await _principal(request, api_key)
    if principal is None:
        if not settings.open311_public:
            raise AuthenticationError("this service publishes requests only to api_key holders")
        return Reader(None)
    return Reader(admit(principal, frozenset(READ_CASES), public=False, settings=settings))


# Without a token when GIS_OPEN311_PUBLIC is on: the OpenAPI document says so (gis.api.openapi).
ReaderDep = Annotated[Reader, Depends(public(get_reader, "open311_public"))]


def _filters(reader: Reader, request: Request, **values: Any) -> open311.RequestFilter:
    settings = settings_of(request)
    hidden = () if reader.staff else tuple(settings.open311_private_platforms)
    scope = case_filter(reader.principal, Incident) if reader.staff else None
    return open311.RequestFilter(hidden_platforms=hidden, scope=scope, **values)


# --- form bodies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fields:
    """The fields of a POST: form-encoded, multipart or JSON, each name with its values, and
    the photos uploaded with it."""

    values: dict[str, list[str]]
    uploads: tuple[bytes, ...] = ()

    def get(self, name: str) -> str | None:
        """The field's last non-blank value, stripped, or None."""
        found = [v.strip() for v in self.values.get(name, []) if v.strip()]
        return found[-1] if found else None

    def all(self, name: str) -> list[str]:
        """Every non-blank value of the field."""
        return [v.strip() for v in self.values.get(name, []) if v.strip()]

    def number(self, name: str) -> float | None:
        """The field as a number, or a 400 naming it."""
        text = self.get(name)
        if text is None:
            return None
        try:
            return float(text)
        except ValueError:
            raise ValidationError(f"{name} must be a number, got {text!r}") from None

    def attributes(self) -> dict[str, str]:
        """``attribute[code]=value`` fields as a mapping."""
        return {
            name[len("attribute[") : -1]: values[-1]
            for name, values in self.values.items()
            if name.startswith("attribute[") and name.endswith("]") and values
        }


async def get_fields(request: Request) -> Fields:
    """The POST body's fields, and its photos (multipart parts ``media`` or ``photo1``…)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise ValidationError("the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ValidationError("the JSON body must be an object of GeoReport fields")
        return Fields(
            {
                str(k): [str(x) for x in (v if isinstance(v, list) else [v]) if x is not None]
                for k, v in data.items()
            }
        )
    if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise ValidationError(
            "send the fields form-encoded (application/x-www-form-urlencoded), as "
            "multipart/form-data or as a JSON object"
        )
    form = await request.form()
    files = [(name, v) for name, v in form.multi_items() if isinstance(v, UploadFile)]
    strangers = sorted({name for name, _ in files if not PHOTO_FIELD.match(name)})
    if strangers:
        raise ValidationError(
            f"unexpected file fields {', '.join(strangers)}: send photos as media or photo1…"
            f"photo{MAX_UPLOADS}"
        )
    if len(files) > MAX_UPLOADS:
        raise ValidationError(f"at most {MAX_UPLOADS} photos per request, got {len(files)}")
    uploads = tuple([await upload.read() for _, upload in files])
    values = {
        name: [str(v) for v in form.getlist(name) if not isinstance(v, UploadFile)] for name in form
    }
    return Fields(values, uploads)


FieldsDep = Annotated[Fields, Depends(get_fields)]


async def get_reporter(
    request: Request, fields: FieldsDep, api_key: ApiKeyDep, _bearer: BearerDep
) -> Principal | None:
    """The caller of a POST: its ``api_key`` field (or bearer header) of a role that reports."""
    principal = await _principal(request, fields.get("api_key") or api_key)
    if principal is None and settings_of(request).auth_required:
        raise AuthenticationError("an api_key is required to post (a token that may report)")
    return admit(principal, frozenset(REPORT), public=False, settings=settings_of(request))


ReporterDep = Annotated[Principal | None, Depends(get_reporter)]


@dataclass
class Post:
    """What every GeoReport POST takes: its session, settings and clock, the reply format,
    the posted fields and who posts them."""

    session: SessionDep
    settings: SettingsDep
    now: ClockDep
    fmt: FmtPath
    fields: FieldsDep
    principal: ReporterDep

    @property
    def user_id(self) -> int | None:
        """The poster's user id (None without a token)."""
        return self.principal.user_id if self.principal else None


PostDep = Annotated[Post, Depends(Post)]


def _when(text: str | None, name: str) -> datetime | None:
    if text is None or not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "+"))
    except ValueError:
        raise ValidationError(
            f"{name} must be a W3C date-time such as 2026-12-01T00:00:00Z, got {text!r}"
        ) from None
    if value.tzinfo is None:
        raise ValidationError(f"{name} needs a UTC offset (…Z or …+08:00), got {text!r}")
    return value


def _ids(values: list[str]) -> tuple[int, ...]:
    ids = []
    for text in open311.split_codes(values):
        if not text.isdigit() or len(text) > 18:
            raise ValidationError(f"service_request_id must be numbers, got {text!r}")
        ids.append(int(text))
    return tuple(ids)


def _actor(principal: Principal | None) -> str:
    return f"open311:{principal.name}" if principal is not None else "open311"


# --- discovery and services ----------------------------------------------------------------------


@router.get("/discovery.{fmt}", responses=_ok(schemas.Open311Discovery, many=False))
def discovery(request: Request, settings: SettingsDep, fmt: FmtPath) -> Response:
    """Where this GeoReport v2 endpoint is and what it speaks."""
    base = str(request.base_url).rstrip("/") + router.prefix
    body = {
        "changeset": CHANGESET,
        "contact": settings.open311_contact,
        "key_service": "an api_key is a token of this service (ask the town's admin)",
        "endpoints": [
            {
                "specification": SPEC,
                "url": base,
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
        "version": __version__,
    }
    return reply(fmt, "discovery", None, body)


@router.get("/services.{fmt}", responses=_ok(schemas.Open311Service))
def services(
    session: SessionDep, fmt: FmtPath, jurisdiction_id: JurisdictionQuery = None
) -> Response:
    """Every category as a service: code, Chinese and English name, platform as the group."""
    open311.find_jurisdiction(session, jurisdiction_id)
    rows = [_service(service) for service in open311.list_services(session)]
    return reply(fmt, "services", "service", rows)


def _service(service: open311.Service) -> dict[str, Any]:
    return {
        "service_code": service.code,
        "service_name": service.name,
        "description": service.description,
        "metadata": False,
        "type": "realtime",
        "keywords": service.keywords,
        "group": service.group,
    }


@router.get(
    "/services/{service_code}.{fmt}", responses=_ok(schemas.Open311ServiceDefinition, many=False)
)
def service_definition(
    session: SessionDep,
    service_code: Annotated[str, Path(max_length=50)],
    fmt: FmtPath,
    jurisdiction_id: JurisdictionQuery = None,
) -> Response:
    """A service's extra attributes: our categories have none, so the list is empty."""
    open311.find_jurisdiction(session, jurisdiction_id)
    service = open311.get_service(session, service_code)
    body = {"service_code": service.code, "attributes": []}
    return reply(fmt, "service_definition", None, body)


# --- requests ------------------------------------------------------------------------------------


@router.post(
    "/requests.{fmt}",
    responses=_ok(schemas.Open311Created),
    openapi_extra=FORM_BODY,
)
def create_request(
    post: PostDep,
    idempotency_key: IdempotencyKey = None,  # an extension of GeoReport
) -> Response:
    """File a request: it is assigned like any report (grid, unit, deadline) before the reply."""
    fields = post.fields
    jurisdiction = open311.find_jurisdiction(post.session, fields.get("jurisdiction_id"))
    submission = open311.Submission(
        service_code=fields.get("service_code"),
        lat=fields.number("lat"),
        lon=fields.number("long"),
        crs=fields.get("crs"),
        address_string=fields.get("address_string"),
        description=fields.get("description") or "",
        media_urls=fields.all("media_url"),
        attributes=fields.attributes(),
        email=fields.get("email"),
        phone=fields.get("phone"),
        device_id=fields.get("device_id"),
        account_id=fields.get("account_id"),
        first_name=fields.get("first_name"),
        last_name=fields.get("last_name"),
    )
    detail = open311.submit_request(
        post.session,
        submission,
        settings=post.settings,
        jurisdiction=jurisdiction,
        user_id=post.user_id,
        idempotency_key=idempotency_key,
        uploads=fields.uploads,
        store=media.store_for(post.settings),
        now=post.now,
    )
    post.session.commit()
    due = detail.due_at.isoformat(timespec="minutes") if detail.due_at else None
    if detail.unit_name:
        notice = (
            f"已受理，交{detail.unit_name}办理，期限 {due}。Received; assigned to the unit above."
        )
    else:
        notice = "已受理，待指挥室分派。Received; the command room will assign it."
    row = {
        "service_request_id": detail.id,
        "service_notice": notice,
        "account_id": submission.account_id,
        "grid_code": detail.grid_code,
        "agency_responsible": detail.unit_name,
        "expected_datetime": due,
    }
    return reply(post.fmt, "service_requests", "request", [row])


def _media_url(photos: list[str], base: str, *, staff: bool) -> str | None:
    """The first photo as a link: stored ones (``media:<id>``) only for staff, who may fetch
    them from ``/media``; the public gets the first link from elsewhere, if any."""
    for photo in photos:
        stored = media.media_ids([photo])
        if not stored:
            return photo
        if staff:
            return f"{base}/media/{stored[0]}"
    return None


def _request_row(case: open311.Open311Case, base: str, *, staff: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "service_request_id": case.id,
        "status": case.status,
        "extended_status": case.extended_status,
        "status_notes": case.status_notes,
        "service_name": case.service_name,
        "service_code": case.service_code,
        "description": case.description,
        "agency_responsible": case.agency_responsible,
        "service_notice": None,
        "requested_datetime": case.requested_at,
        "updated_datetime": case.updated_at,
        "expected_datetime": case.expected_at,
        "address": case.address,
        "address_id": None,
        "zipcode": None,
        "lat": round(case.lat, 7),
        "long": round(case.lon, 7),
        "media_url": _media_url(case.photos, base, staff=staff),
        "grid_code": case.grid_code,
        "jurisdiction_id": case.town_code,
    }
    if case.contacts is not None:
        row["contact"] = case.contacts
    return row


@router.get("/requests.{fmt}", responses=_ok(schemas.Open311Request))
def list_requests(
    request: Request,
    session: SessionDep,
    fmt: FmtPath,
    reader: ReaderDep,
    service_request_id: Annotated[
        list[str] | None, Query(description="Ids, comma-separated")
    ] = None,
    service_code: Annotated[list[str] | None, Query(description="Codes, comma-separated")] = None,
    start_date: Annotated[str | None, Query(max_length=40)] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20, description="open, closed or both")] = None,
    jurisdiction_id: JurisdictionQuery = None,
    page: Annotated[int, Query(ge=1, le=100_000, description="Extension: page number")] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=open311.MAX_REQUESTS, description="Extension: requests per page")
    ] = open311.MAX_REQUESTS,
) -> Response:
    """Requests by ids, or by service, dates (at most 90 days, default the last 90) and status."""
    statuses = open311.split_codes([status] if status else [])
    unknown = set(statuses) - {"open", "closed"}
    if unknown:
        raise ValidationError(f"status must be open or closed, got {', '.join(sorted(unknown))}")
    ids = _ids(service_request_id or [])
    start, end = _when(start_date, "start_date"), _when(end_date, "end_date")
    if not ids:
        start, end = open311.date_window(start, end)
    filters = _filters(
        reader,
        request,
        ids=ids,
        service_codes=open311.split_codes(service_code or []),
        start=start,
        end=end,
        statuses=statuses,
        jurisdiction=open311.find_jurisdiction(session, jurisdiction_id),
    )
    cases = open311.list_requests(
        session, filters, staff=reader.staff, limit=page_size, offset=(page - 1) * page_size
    )
    base = str(request.base_url).rstrip("/")
    rows = [_request_row(case, base, staff=reader.staff) for case in cases]
    return reply(fmt, "service_requests", "request", rows)


@router.get("/requests/{service_request_id}.{fmt}", responses=_ok(schemas.Open311Request))
def read_request(
    request: Request,
    session: SessionDep,
    service_request_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    fmt: FmtPath,
    reader: ReaderDep,
    jurisdiction_id: JurisdictionQuery = None,
) -> Response:
    """One request; another town's, or a private one, is 404 as if it did not exist."""
    filters = _filters(
        reader,
        request,
        ids=(service_request_id,),
        jurisdiction=open311.find_jurisdiction(session, jurisdiction_id),
    )
    cases = open311.list_requests(session, filters, staff=reader.staff, limit=1)
    if not cases:
        raise NotFoundError(f"no service request {service_request_id}")
    row = _request_row(cases[0], str(request.base_url).rstrip("/"), staff=reader.staff)
    return reply(fmt, "service_requests", "request", [row])


@router.get(
    "/tokens/{token}.{fmt}",
    responses={200: {"description": "never: no tokens are issued"}, **ERRORS},
)
def read_token(token: Annotated[str, Path(max_length=200)], fmt: FmtPath) -> Response:
    """Tokens are never issued: intake is synchronous and the POST reply carries the id."""
    del fmt
    raise NotFoundError(
        f"no token {token!r}: requests are filed synchronously here, so the reply to "
        "POST requests carries service_request_id"
    )


# --- updates -------------------------------------------------------------------------------------


@router.get("/servicerequestupdates.{fmt}", responses=_ok(schemas.Open311Update))
def list_updates(
    request: Request,
    session: SessionDep,
    fmt: FmtPath,
    reader: ReaderDep,
    start_date: Annotated[str | None, Query(max_length=40)] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    jurisdiction_id: JurisdictionQuery = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=open311.MAX_REQUESTS)] = open311.MAX_REQUESTS,
) -> Response:
    """Every status change and note in the window (at most 90 days), oldest first."""
    start, end = open311.date_window(_when(start_date, "start_date"), _when(end_date, "end_date"))
    filters = _filters(
        reader,
        request,
        start=start,
        end=end,
        jurisdiction=open311.find_jurisdiction(session, jurisdiction_id),
    )
    updates = open311.list_updates(session, filters, limit=page_size, offset=(page - 1) * page_size)
    rows = [
        {
            "update_id": u.update_id,
            "service_request_id": u.service_request_id,
            "status": u.status,
            "updated_datetime": u.updated_at,
            "description": u.description,
            "media_url": u.media_url,
            "external_status_code": u.external_status_code,
        }
        for u in updates
    ]
    return reply(fmt, "service_request_updates", "request_update", rows)


@router.post(
    "/servicerequestupdates.{fmt}",
    responses=_ok(schemas.Open311UpdateCreated),
    openapi_extra=FORM_BODY,
)
def post_update(post: PostDep) -> Response:
    """A client's comment on a request, or a reopen (status OPEN on a closed request)."""
    fields = post.fields
    ids = _ids(fields.all("service_request_id"))
    if len(ids) != 1:
        raise ValidationError("service_request_id is required: the request the update is about")
    incident = post.session.get(Incident, ids[0])
    if incident is None:
        raise NotFoundError(f"no service request {ids[0]}")
    check_case(post.principal, incident, "service request")
    update = open311.UpdatePost(
        service_request_id=ids[0],
        update_id=fields.get("update_id") or fields.get("update_id_ext") or "",
        status=fields.get("status") or "OPEN",
        description=fields.get("description") or "",
        email=fields.get("email"),
        first_name=fields.get("first_name"),
        last_name=fields.get("last_name"),
        media_url=fields.get("media_url"),
        updated_datetime=_when(fields.get("updated_datetime"), "updated_datetime"),
    )
    if update.updated_datetime is not None:
        check_device_time(
            "updated_datetime",
            update.updated_datetime,
            now=post.now,
            skew_s=post.settings.device_clock_skew_s,
        )
    event_id = open311.post_update(
        post.session,
        update,
        actor=_actor(post.principal),
        user_id=post.user_id,
        now=post.now,
    )
    post.session.commit()
    return reply(post.fmt, "service_request_updates", "request_update", [{"update_id": event_id}])
