"""Report intake: a report in, and at once its grid, platform, unit and deadline, all saved.

``report_incident`` is the one entry point (API, CLI, camera alerts). It validates and converts
the coordinates in Python, reads the category, then runs ONE statement that locates the point
(``gis.services.assignment.LOCATE_CTES``), picks the unit, inserts the incident and its first
events and returns the whole reply. The caller owns the transaction.

Idempotency: the case's row in ``incident_keys`` is inserted first, ``ON CONFLICT
(idempotency_key) DO NOTHING``, and the case only with it (``incidents`` is partitioned by month,
so the key is unique there, not here: docs/partitioning.md). A retry of a committed report
inserts nothing and the first answer is read back; a concurrent retry waits on the unique index
until the first commits, then does the same. The same key with a different body is 409.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Required, TypedDict, Unpack

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, StringConstraints
from sqlalchemy.orm import Session

from gis.errors import (
    ConflictError,
    NotFoundError,
    ValidationError,
)
from gis.geo import checked_wgs84
from gis.layers.categories import unknown_category
from gis.layers.incidents import OPEN_STATUSES, ReporterKind
from gis.queries import Flow, Query, run
from gis.services.assignment import (
    LOCATE_CTES,
    POINT_SQL,
    Placement,
    locate_flow,
    locate_params,
    unit_choice,
)
from gis.services.clock import check_device_time
from gis.services.deadlines import due_at
from gis.services.media import MEDIA_REF_PATTERN, check_media_flow
from gis.settings import Settings

# A photo this service stores (``POST /media``), named in a report's photo list.
MediaRef = Annotated[str, StringConstraints(pattern=MEDIA_REF_PATTERN)]

MAX_CAMERAS = 20
MAX_DUPLICATES = 20


class LocationMethod(StrEnum):
    """How a reporter's point was found; kept in the report's event."""

    GPS = "gps"
    MANUAL = "manual"
    PHOTO_EXIF = "photo_exif"


class ReportLocation(BaseModel):
    """Where the case is, in ``crs`` (default WGS84); lon first, as GeoJSON."""

    model_config = ConfigDict(extra="forbid")

    lon: float = Field(description="Longitude (east), degrees")
    lat: float = Field(description="Latitude (north), degrees")
    crs: str = Field(
        "EPSG:4326",
        max_length=32,
        description="EPSG:4326 (default), EPSG:4490 (CGCS2000), GCJ-02 (Amap/Tencent) or BD-09",
    )
    accuracy_m: float | None = Field(
        None, ge=0, le=100_000, description="The fix's accuracy radius in metres (a phone's GPS)"
    )
    method: LocationMethod | None = Field(
        None,
        description="How the point was found: gps (the phone, at capture time), manual (moved "
        "by hand on a map) or photo_exif (read from a photo's EXIF: flagged, as it may be stale)",
    )


class Reporter(BaseModel):
    """Who reports: a grid member, a citizen, a camera, the hotline or another system."""

    model_config = ConfigDict(extra="forbid")

    kind: ReporterKind
    id: str | None = Field(None, max_length=100, description="Member id, camera code, phone…")


def occurred_at_field() -> Any:
    """A report's ``occurred_at``: the service's field, and the API's with a stricter type."""
    return Field(
        None, description="When it happened, with a UTC offset (e.g. 2026-11-27T09:30:00+08:00)"
    )


def photos_field() -> Any:
    """A report's ``photos``: the service's field, and the API's with a stricter type."""
    return Field(
        default_factory=list,
        max_length=20,
        description="Photos: http(s) URLs, or media:<id> of a photo uploaded with POST /media",
    )


class IncidentReport(BaseModel):
    """A report of a case, as sent by a phone, the hotline, a camera or another system."""

    model_config = ConfigDict(extra="forbid")

    category: str = Field(min_length=1, max_length=50, description="Category code (/categories)")
    location: ReportLocation
    description: str = Field("", max_length=4000)
    reporter: Reporter
    occurred_at: AwareDatetime | None = occurred_at_field()
    photos: list[HttpUrl | MediaRef] = photos_field()

    def request_hash(self) -> str:
        """A digest of the report's content, to tell a retry from a different request."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class IncidentDetail(Placement):
    """An incident with everything a reply shows: grid, places, member, unit, cameras…"""

    id: int
    status: str
    category_code: str
    category_name: str
    platform: str
    description: str
    reporter_kind: str
    reporter_id: str | None
    photos: list[str]
    lon: float
    lat: float
    source_crs: str
    source_lon: float
    source_lat: float
    location_quality: str
    snap_distance_m: float | None
    unit_id: int | None
    unit_code: str | None
    unit_name: str | None
    unit_type: str | None
    unit_phone: str | None
    unit_distance_m: float | None
    unit_note: str | None
    occurred_at: datetime | None
    reported_at: datetime
    assigned_at: datetime | None
    due_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime
    request_hash: str | None
    cameras: list[dict[str, Any]] = field(default_factory=list)
    possible_duplicates: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class IntakeResult:
    """The saved incident, and whether this call created it (False: an idempotent replay)."""

    incident: IncidentDetail
    created: bool


_OPEN = ", ".join(f"'{s.value}'" for s in sorted(OPEN_STATUSES))


def _reply_sql(source: str, where: str = "", months: str = "") -> str:
    """The reply SELECT over ``source`` (the ``incidents`` table or the inserted row)."""
    # One implementation for the intake reply, GET /incidents/{id} and idempotent replays:
    # ``source`` is a table or CTE name and ``where`` a fixed condition, both module constants;
    # ``months`` adds conditions on ``o.reported_at`` that bound the duplicate search's months.
    return f"""
SELECT src.id, src.status, src.category_code, cat.name_zh AS category_name, src.platform,
       src.description, src.reporter_kind, src.reporter_id, src.photos,
       ST_X(src.geom) AS lon, ST_Y(src.geom) AS lat,
       src.source_crs, src.source_lon, src.source_lat, src.location_quality,
       CASE WHEN src.location_quality = 'snapped'
            THEN ST_Distance(g.geom::geography, src.geom::geography) END AS snap_distance_m,
       src.grid_id, g.code AS grid_code, g.name AS grid_name,
       src.member_id, m.name AS member_name,
       src.village_code, v.name AS village_name, src.town_code, t.name AS town_name,
       src.county_code, c.name AS county_name,
       src.unit_id, u.code AS unit_code, u.name AS unit_name, u.unit_type, u.phone AS unit_phone,
       src.unit_distance_m, src.unit_note,
       src.occurred_at, src.reported_at, src.assigned_at, src.due_at, src.resolved_at,
       src.closed_at, src.updated_at, src.request_hash,
       (SELECT COALESCE(json_agg(json_build_object(
                    'id', s.id, 'code', s.code, 'name', s.name, 'kind', s.kind,
                    'distance_m', s.d, 'bearing_deg', s.b) ORDER BY s.d, s.code), '[]'::json)
          FROM (SELECT cam.id, cam.code, cam.name, cam.kind,
                       ST_Distance(cam.geom::geography, src.geom::geography) AS d,
                       degrees(ST_Azimuth(cam.geom::geography, src.geom::geography)) AS b
                  FROM cameras AS cam
                 WHERE ST_Covers(cam.view, src.geom) AND cam.status = 'online'
                 ORDER BY d, cam.code
                 LIMIT {MAX_CAMERAS}) AS s) AS cameras,
       (SELECT COALESCE(json_agg(json_build_object(
                    'id', s.id, 'status', s.status, 'distance_m', s.d,
                    'reported_at', s.reported_at, 'grid_code', s.grid_code)
                    ORDER BY s.d, s.id), '[]'::json)
          FROM (SELECT o.id, o.status, o.reported_at, o.grid_code,
                       ST_Distance(o.geom::geography, src.geom::geography) AS d
                  FROM incidents AS o
                 WHERE o.category_code = src.category_code AND o.id <> src.id
                   AND o.status IN ({_OPEN})
                   AND o.reported_at <= src.reported_at
                   AND o.reported_at >= src.reported_at
                       - make_interval(secs => CAST(:dup_window_s AS float8)){months}
                   AND ST_DWithin(o.geom::geography, src.geom::geography,
                                  CAST(:dup_radius_m AS float8))
                 ORDER BY d, o.id
                 LIMIT {MAX_DUPLICATES}) AS s) AS possible_duplicates
FROM {source} AS src
JOIN categories AS cat ON cat.code = src.category_code
LEFT JOIN grids AS g ON g.id = src.grid_id
LEFT JOIN grid_members AS m ON m.id = src.member_id
LEFT JOIN regions AS v ON v.code = src.village_code
LEFT JOIN regions AS t ON t.code = src.town_code
LEFT JOIN regions AS c ON c.code = src.county_code
LEFT JOIN responder_units AS u ON u.id = src.unit_id
{where}
"""  # noqa: S608 -- only module constants are interpolated; values are bound parameters


# Intake's duplicate search reads the months of ``incidents`` in the window before the new case
# (reported at ``:now``). Said with the case's own time (a value of this statement), the executor
# would start every month's scan and skip all but one or two only while running; said with
# ``:now`` alone, PostgreSQL would plan the whole statement again for every report (a plan made
# for the value always looks cheaper than the cached one: 4.4 ms a report). These conditions
# hold for every row the search can find, so they change no answer, but they are known when a
# plan starts and ``now()`` keeps them out of planning: a cached plan starts only the window's
# months (docs/partitioning.md).
_DUPLICATE_MONTHS = """
                   AND o.reported_at <= GREATEST(now(), CAST(:now AS timestamptz))
                   AND o.reported_at >= LEAST(now(), CAST(:now AS timestamptz))
                       - make_interval(secs => CAST(:dup_window_s AS float8))"""

# The unit of the case: the rule is ``gis.services.assignment.unit_choice``.
_UNIT_CTE = f"""
unit AS (
    SELECT c.id, c.d, c.tier
    FROM loc
    CROSS JOIN LATERAL ({
    unit_choice(POINT_SQL, "loc.town_code", "loc.county_code", "CAST(:unit_type AS text)")
}) AS c
    WHERE loc.covered
)"""  # noqa: S608 -- constants only

_INTAKE_SQL = sa.text(
    f"""
WITH {LOCATE_CTES},
{_UNIT_CTE},
key AS (
    -- The case's keys first (``incident_keys``): retries are arbitrated here, where the
    -- idempotency key is unique on its own (docs/partitioning.md).
    INSERT INTO incident_keys (id, reported_at, idempotency_key)
    SELECT nextval('incidents_id_seq'), CAST(:now AS timestamptz),
           CAST(:idempotency_key AS text)
    FROM loc
    WHERE loc.covered
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id
),
ins AS (
    INSERT INTO incidents (
        id, category_code, platform, status, description, reporter_kind, reporter_id, photos,
        geom, source_crs, source_lon, source_lat, location_quality, grid_id, grid_code,
        village_code, town_code, county_code, member_id, unit_id, unit_distance_m, unit_note,
        occurred_at, reported_at, assigned_at, due_at, updated_at, idempotency_key,
        request_hash)
    SELECT (SELECT key.id FROM key), CAST(:category AS text), CAST(:platform AS text),
           CASE WHEN unit.id IS NULL THEN 'reported' ELSE 'assigned' END,
           CAST(:description AS text), CAST(:reporter_kind AS text),
           CAST(:reporter_id AS text), CAST(:photos AS jsonb),
           {POINT_SQL}, CAST(:source_crs AS text), CAST(:source_lon AS float8),
           CAST(:source_lat AS float8), loc.quality, loc.grid_id, loc.grid_code,
           loc.village_code, loc.town_code, loc.county_code, loc.member_id, unit.id, unit.d,
           CASE
             WHEN unit.id IS NULL THEN format(
               'no available %s unit with jurisdiction over %s or anywhere in its county; '
               'waiting for the command room to assign one',
               CAST(:unit_type AS text), COALESCE(loc.town_code, loc.county_code, 'this place'))
             WHEN unit.tier = 1 THEN format(
               'no available %s unit of town %s; the county unit was assigned',
               CAST(:unit_type AS text), loc.town_code)
             WHEN unit.tier = 2 THEN format(
               'no available %s unit with jurisdiction over %s; the nearest one in county %s '
               'was assigned', CAST(:unit_type AS text),
               COALESCE(loc.town_code, loc.county_code), loc.county_code)
           END,
           CAST(:occurred_at AS timestamptz), CAST(:now AS timestamptz),
           CASE WHEN unit.id IS NULL THEN NULL ELSE CAST(:now AS timestamptz) END,
           CAST(:due_at AS timestamptz), CAST(:now AS timestamptz),
           CAST(:idempotency_key AS text), CAST(:request_hash AS text)
    FROM loc
    LEFT JOIN unit ON true
    -- Not a join with ``key``: the planner would multiply its row estimates, and plan the
    -- reply's joins for many cases instead of one.
    WHERE loc.covered AND EXISTS (SELECT FROM key)
    RETURNING *
),
events AS (
    INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note,
                                 data)
    SELECT ins.id, ins.reported_at, e.actor, e.action, e.from_status, e.to_status, e.note,
           e.data
    FROM ins
    CROSS JOIN LATERAL (VALUES
        (1, CAST(:actor AS text), 'report', CAST(NULL AS text), 'reported', CAST(NULL AS text),
         jsonb_build_object('source_crs', ins.source_crs, 'source_lon', ins.source_lon,
                            'source_lat', ins.source_lat,
                            'location_quality', ins.location_quality,
                            'grid_code', ins.grid_code)
         || jsonb_strip_nulls(jsonb_build_object(
                'accuracy_m', CAST(:accuracy_m AS float8),
                'location_method', CAST(:location_method AS text)))),
        (2, 'system', 'assign', 'reported', 'assigned', ins.unit_note,
         jsonb_build_object('unit_id', ins.unit_id, 'distance_m', ins.unit_distance_m))
    ) AS e(ord, actor, action, from_status, to_status, note, data)
    WHERE e.ord = 1 OR ins.unit_id IS NOT NULL
    ORDER BY e.ord
)
{_reply_sql("ins", months=_DUPLICATE_MONTHS)}
"""  # noqa: S608 -- only module constants are interpolated; values are bound parameters
)

# A case by id, or by idempotency key, found through ``incident_keys``: its month then names the
# one partition of ``incidents`` to read (run-time pruning), not one probe per month.
_BY_ID_SQL = sa.text(
    _reply_sql(
        "incidents",
        "WHERE src.id = :incident_id AND src.reported_at = "
        "(SELECT k.reported_at FROM incident_keys AS k WHERE k.id = :incident_id)",
    )
)
_BY_KEY_SQL = sa.text(
    _reply_sql(
        "incidents",
        "WHERE (src.id, src.reported_at) = (SELECT k.id, k.reported_at FROM incident_keys AS k "
        "WHERE k.idempotency_key = :idempotency_key)",
    )
)
_CATEGORY_SQL = sa.text(
    "SELECT platform, unit_type, time_limit_hours, working_hours FROM categories WHERE code = :code"
)
_CATEGORY_CODES_SQL = sa.text("SELECT code FROM categories ORDER BY code")


_JSON_FIELDS = ("photos", "cameras", "possible_duplicates")


def _detail(row: Mapping[str, Any]) -> IncidentDetail:
    """An ``IncidentDetail`` from a row of the reply SELECT, as a flow receives it."""
    values = dict(row)
    for name in _JSON_FIELDS:
        # psycopg decodes json/jsonb; asyncpg hands over the text.
        if isinstance(values[name], str):
            values[name] = json.loads(values[name])
    return IncidentDetail(**values)


def _duplicate_params(settings: Settings) -> dict[str, float]:
    return {
        "dup_radius_m": settings.duplicate_radius_m,
        "dup_window_s": settings.duplicate_window_h * 3600.0,
    }


class ReportOptions(TypedDict, total=False):
    """The keyword arguments of ``report_flow``, forwarded by ``report_incident``."""

    settings: Required[Settings]
    now: datetime | None
    idempotency_key: str | None
    uploader: int | None


def report_incident(
    session: Session, report: IncidentReport, **options: Unpack[ReportOptions]
) -> IntakeResult:
    """Save a report with its grid, platform, unit and deadline, and its first events."""
    return run(session, report_flow(report, **options))


def report_flow(
    report: IncidentReport,
    *,
    settings: Settings,
    now: datetime | None = None,
    idempotency_key: str | None = None,
    uploader: int | None = None,
) -> Flow[IntakeResult]:
    """``report_incident`` as a flow (``gis.queries``): the API runs it on asyncpg.

    ``uploader`` (the reporting user's id) must have uploaded every ``media:`` photo named."""
    now = now or datetime.now(UTC)
    lon, lat, crs = checked_wgs84(report.location.lon, report.location.lat, report.location.crs)
    if report.occurred_at is not None:
        # The phone's own clock: data about the observation, beside reported_at (the server's).
        check_device_time(
            "occurred_at", report.occurred_at, now=now, skew_s=settings.device_clock_skew_s
        )
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise ValidationError("Idempotency-Key must be 1 to 200 characters")
    photos = [str(photo) for photo in report.photos]
    yield from check_media_flow(photos, uploader=uploader)
    category = yield Query(_CATEGORY_SQL, {"code": report.category})
    if category is None:
        known = yield Query(_CATEGORY_CODES_SQL, many=True)
        raise unknown_category(report.category, [row["code"] for row in known])
    request_hash = report.request_hash()
    reporter = report.reporter
    params = {
        **locate_params(
            lon,
            lat,
            at=now,
            snap_m=settings.snap_meters,
            coverage_margin_m=settings.coverage_margin_m,
        ),
        **_duplicate_params(settings),
        "unit_type": category["unit_type"],
        "category": report.category,
        "platform": category["platform"],
        "description": report.description,
        "reporter_kind": reporter.kind.value,
        "reporter_id": reporter.id,
        "actor": f"{reporter.kind.value}:{reporter.id}" if reporter.id else reporter.kind.value,
        "photos": json.dumps(photos),
        "source_crs": crs.value,
        "source_lon": float(report.location.lon),
        "source_lat": float(report.location.lat),
        "accuracy_m": report.location.accuracy_m,
        "location_method": report.location.method.value if report.location.method else None,
        "occurred_at": report.occurred_at,
        "now": now,
        "due_at": due_at(
            now, category["time_limit_hours"], working_hours=category["working_hours"]
        ),
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
    }
    row = yield Query(_INTAKE_SQL, params)
    if row is not None:
        return IntakeResult(_detail(row), created=True)
    if idempotency_key is not None:
        first = yield from _by_key_flow(idempotency_key, settings=settings)
        if first is not None:
            if first.request_hash != request_hash:
                raise ConflictError(
                    f"Idempotency-Key {idempotency_key!r} was already used for a different "
                    f"report (incident {first.id}); use a new key for a new report",
                    incident_id=first.id,
                )
            return IntakeResult(first, created=False)
    # Nothing inserted and no earlier report: the point is outside the service area.
    yield from locate_flow(
        lon,
        lat,
        at=now,
        snap_m=settings.snap_meters,
        coverage_margin_m=settings.coverage_margin_m,
    )
    raise ConflictError("the report could not be saved because of a concurrent change; retry")


def _by_key_flow(idempotency_key: str, *, settings: Settings) -> Flow[IncidentDetail | None]:
    params = {"idempotency_key": idempotency_key, **_duplicate_params(settings)}
    row = yield Query(_BY_KEY_SQL, params)
    return None if row is None else _detail(row)


def find_incident_by_key(
    session: Session, idempotency_key: str, *, settings: Settings
) -> IncidentDetail | None:
    """The incident first saved under this idempotency key, or None."""
    return run(session, _by_key_flow(idempotency_key, settings=settings))


def get_incident_detail(
    session: Session, incident_id: int, *, settings: Settings
) -> IncidentDetail:
    """The incident with its assignment, cameras and possible duplicates, or ``NotFoundError``."""
    return run(session, _by_id_flow(incident_id, settings=settings))


def _by_id_flow(incident_id: int, *, settings: Settings) -> Flow[IncidentDetail]:
    params = {"incident_id": incident_id, **_duplicate_params(settings)}
    row = yield Query(_BY_ID_SQL, params)
    if row is None:
        raise NotFoundError(f"no incident with id {incident_id}")
    return _detail(row)
