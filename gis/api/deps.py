"""Request dependencies as ``Annotated`` aliases; they raise domain errors, never HTTP ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from gis.api.openapi import setting_maximum
from gis.api.reads import replica_for, stale_read_ok
from gis.db_async import Database
from gis.layers.base import Page, utcnow
from gis.layers.categories import Platform, parse_platform
from gis.settings import Settings


# These two are ``async`` on purpose: FastAPI runs a sync dependency in a worker thread, and each
# such hand-off costs more CPU than the work itself (neither does any I/O up front).
async def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return settings_of(request)


def settings_of(request: Request) -> Settings:
    """The settings the app was built with (for code that has the request at hand)."""
    settings: Settings = request.app.state.settings
    return settings


def database_of(request: Request) -> Database:
    """Where the hot paths run their flows: the app's asyncpg pool (``gis.db_async``), or what
    was handed in as ``app.state.database`` before startup; a read replica's pool for a route
    that declared ``StaleReadOk`` (``gis.api.reads``)."""
    replica = replica_for(request)
    if replica is not None:
        return replica.database
    return primary_database_of(request)


def primary_database_of(request: Request) -> Database:
    """The primary's flows whatever the route declared: token checks, which must see a
    revocation at once, never read a replica."""
    database: Database = request.app.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request; the route commits what it writes, anything else is rolled back.
    A route that declared ``StaleReadOk`` may get a read replica's session."""
    replica = replica_for(request)
    maker = request.app.state.sessionmaker if replica is None else replica.sessionmaker
    session: Session = maker()
    try:
        yield session
    finally:
        session.close()


async def server_clock() -> datetime:
    """The server's time for this request: every time a write records comes from here, never
    from the client (tests override this dependency to set the clock)."""
    return utcnow()


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ClockDep = Annotated[datetime, Depends(server_clock)]
# A route's (or router's) declaration that its reads may come from a read replica:
# ``APIRouter(dependencies=[StaleReadOk])`` or ``@router.get(..., dependencies=[StaleReadOk])``.
StaleReadOk = Depends(stale_read_ok)


def get_page(
    settings: SettingsDep,
    limit: Annotated[
        int,
        Query(
            ge=1,
            description="Items per page, at most GIS_MAX_PAGE_SIZE",
            json_schema_extra=setting_maximum("max_page_size"),
        ),
    ] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")] = 0,
) -> Page:
    """Paging parameters, checked against the configured maximum page size."""
    from gis.errors import ValidationError

    if limit > settings.max_page_size:
        raise ValidationError(
            f"limit must be at most {settings.max_page_size} (GIS_MAX_PAGE_SIZE); page with offset"
        )
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(get_page)]


def get_platform(
    platform: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Only this platform: " + ", ".join(p.value for p in Platform),
            examples=["governance"],
            json_schema_extra={"enum": [p.value for p in Platform]},
        ),
    ] = None,
) -> Platform | None:
    """The ``platform`` query parameter, parsed (``UnknownCodeError`` lists the four)."""
    return parse_platform(platform)


# Every route that takes a platform takes it through this. Among optional filters it may be
# written ``platform: PlatformDep = None`` to keep its place: FastAPI still calls get_platform.
PlatformDep = Annotated[Platform | None, Depends(get_platform)]

# The header that makes a report (from a phone, a camera alert, an Open311 client) retry-safe.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Any unique string per report; a retry with the same key and body "
        "returns the first answer and writes nothing",
    ),
]


@dataclass(frozen=True)
class Upload:
    """An uploaded file (multipart field ``file``) and the text fields sent beside it."""

    filename: str
    data: bytes
    fields: dict[str, str | None]


def upload_body(**fields: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` documenting a multipart body: the required ``file`` and ``fields`` (the
    JSON Schema of each), as ``read_upload`` reads it."""
    properties = {"file": {"type": "string", "format": "binary"}, **fields}
    schema = {"type": "object", "required": ["file"], "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


async def read_upload(request: Request, settings: Settings, what: str, default_name: str) -> Upload:
    """The multipart upload of a request: 422 unless it is multipart with a ``file`` field, 413
    past ``GIS_IMPORT_MAX_BYTES``."""
    from gis.errors import PayloadTooLargeError

    form, upload = await multipart_file(request, f"the {what}")
    data = await upload.read(settings.import_max_bytes + 1)
    if len(data) > settings.import_max_bytes:
        raise PayloadTooLargeError(
            f"the file has more than {settings.import_max_bytes} bytes (GIS_IMPORT_MAX_BYTES)"
        )
    fields = {k: str(form[k]) if isinstance(form.get(k), str) else None for k in form}
    return Upload(upload.filename or default_name, data, fields)


async def multipart_file(request: Request, what: str) -> tuple[FormData, UploadFile]:
    """The form of a multipart request and its field ``file`` (``what`` it should hold, for
    the 422 when it is missing)."""
    from gis.errors import ValidationError

    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ValidationError(f"send {what} as multipart/form-data, in the field 'file'")
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ValidationError(f"send {what} as the multipart field 'file'")
    return form, upload


def status_query() -> Any:
    """The ``status`` list parameter of a case or errand list (repeatable)."""
    return Query(alias="status", description="One or more statuses (repeat the parameter)")
