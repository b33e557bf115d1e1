"""Importing a town's ledgers: responder units, cameras and grid members, checked as a whole.

``plan_import`` compares a read ``Table`` with the database and returns what would be added,
changed, unchanged and retired (by code; members by phone) with every row-level error; it writes
nothing. ``commit_import`` applies a plan without errors in the caller's transaction, all or
nothing, and records the run. Running the same file twice changes nothing the second time.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Literal, TypeVar

import numpy as np
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy.orm import Session

from gis.errors import ValidationError
from gis.geo import Crs, gcj02_to_wgs84, geodesic_distance_m
from gis.layers.base import point_lonlat, utcnow
from gis.layers.cameras import Camera, CameraKind, CameraStatus
from gis.layers.categories import Category, Platform
from gis.layers.grids import Grid, GridMember, GridMemberGrid
from gis.layers.imports import ImportRun
from gis.layers.regions import Region, RegionLevel, region_code
from gis.layers.units import ResponderUnit, UnitStatus, UnitType
from gis.layers.users import Role, User
from gis.services.cameras import check_view, refresh_view
from gis.services.ledger_points import Points, parse_point_crs, resolve_points
from gis.services.ledger_tables import HEADERS, RowError, Table, cell_text


class LedgerKind(StrEnum):
    """What a ledger lists."""

    UNITS = "units"
    CAMERAS = "cameras"
    MEMBERS = "members"


# Columns of each kind, in the order templates and exports write them.
COLUMNS: dict[LedgerKind, tuple[str, ...]] = {
    LedgerKind.UNITS: ("code", "name", "type", "platform", "town", "phone", "lon", "lat", "crs"),
    LedgerKind.CAMERAS: (
        "code",
        "name",
        "type",
        "status",
        "bearing",
        "fov",
        "range",
        "lon",
        "lat",
        "crs",
    ),
    LedgerKind.MEMBERS: ("name", "phone", "grid", "village", "town"),
}
REQUIRED: dict[LedgerKind, tuple[str, ...]] = {
    LedgerKind.UNITS: ("code", "name", "type"),
    LedgerKind.CAMERAS: ("code", "name"),
    LedgerKind.MEMBERS: ("name", "phone", "grid"),
}

UNIT_TYPES: dict[str, UnitType] = {
    "派出所": UnitType.POLICE_STATION,
    "交警": UnitType.TRAFFIC_POLICE,
    "交警大队": UnitType.TRAFFIC_POLICE,
    "交警中队": UnitType.TRAFFIC_POLICE,
    "应急队": UnitType.EMERGENCY_TEAM,
    "应急防汛队": UnitType.EMERGENCY_TEAM,
    "防汛队": UnitType.EMERGENCY_TEAM,
    "市场监管所": UnitType.MARKET_OFFICE,
    "综合执法中队": UnitType.ENFORCEMENT_SQUAD,
    "执法中队": UnitType.ENFORCEMENT_SQUAD,
    "便民服务中心": UnitType.SERVICE_CENTRE,
    **{t.value: t for t in UnitType},
}
PLATFORMS: dict[str, Platform] = {
    "综治": Platform.GOVERNANCE,
    "综治工作": Platform.GOVERNANCE,
    "市场监管": Platform.MARKET,
    "综合执法": Platform.ENFORCEMENT,
    "便民服务": Platform.SERVICE,
    **{p.value: p for p in Platform},
}
CAMERA_KINDS: dict[str, CameraKind] = {
    "枪机": CameraKind.FIXED,
    "固定": CameraKind.FIXED,
    "bullet": CameraKind.FIXED,
    "球机": CameraKind.DOME,
    "半球": CameraKind.DOME,
    "云台": CameraKind.PTZ,
    **{k.value: k for k in CameraKind},
}
CAMERA_STATUSES: dict[str, CameraStatus] = {
    "在线": CameraStatus.ONLINE,
    "离线": CameraStatus.OFFLINE,
    "维修": CameraStatus.MAINTENANCE,
    **{s.value: s for s in CameraStatus},
}
# View defaults by kind when the ledger leaves them blank: fov (degrees) and range (metres).
CAMERA_DEFAULTS: dict[CameraKind, tuple[float, float]] = {
    CameraKind.FIXED: (60.0, 100.0),
    CameraKind.DOME: (360.0, 60.0),
    CameraKind.PTZ: (360.0, 150.0),
}
# A point farther than this from every town is a mistake, not a camera on the town line.
OUTSIDE_TOWN_TOLERANCE_M = 1_000.0
# A GCJ-02 ledger read as WGS84 sits ~300–700 m off: flag when converting it as GCJ-02 brings
# the points at least this much closer to the roads (median).
GCJ_ROAD_GAIN_M = 100.0
GCJ_SAMPLE = 200
_PHONE = re.compile(r"^(?:(?:\+?86)?1[3-9]\d{9}|0\d{2,3}\d{7,8}(?:\d{1,6})?|\d{7,8}|\d{3,5})$")
_SPLIT = re.compile(r"[、,，;；\s]+")
MEMBER_TOKEN_DAYS = 90


@dataclass(frozen=True)
class Record:
    """One good row of a ledger as the fields it sets, keyed by ``key`` (code, or phone)."""

    row: int
    key: str
    fields: dict[str, Any]


@dataclass
class ImportPlan:
    """What importing a ledger would do; ``errors`` non-empty means it cannot be committed."""

    kind: LedgerKind
    source: str
    added: list[Record] = field(default_factory=list)
    changed: list[tuple[Record, list[str]]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    retire_missing: bool = False

    def summary(self) -> dict[str, int]:
        """Counts of each outcome."""
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "unchanged": len(self.unchanged),
            "retired": len(self.retired) if self.retire_missing else 0,
            "errors": len(self.errors),
        }


@dataclass
class CommitResult:
    """What a commit wrote, and the tokens of the users it made (shown once)."""

    summary: dict[str, int]
    tokens: list[tuple[str, str]] = field(default_factory=list)


def parse_kind(value: str) -> LedgerKind:
    """A ledger kind, or ``ValidationError`` listing them."""
    try:
        return LedgerKind(value.strip().lower())
    except ValueError:
        known = ", ".join(k.value for k in LedgerKind)
        raise ValidationError(f"unknown ledger kind {value!r}; one of: {known}") from None


# --- planning -----------------------------------------------------------------------------------


def plan_import(
    session: Session,
    kind: LedgerKind,
    table: Table,
    *,
    crs: str | None = None,
    retire_missing: bool = False,
) -> ImportPlan:
    """Check a ledger against the database and say what importing it would change."""
    plan = ImportPlan(kind=kind, source=table.source, retire_missing=retire_missing)
    plan.errors.extend(table.errors)
    missing = [c for c in REQUIRED[kind] if c not in table.headers]
    if missing:
        wanted = ", ".join(f"{_header(c)}/{c}" for c in missing)
        plan.errors.append(RowError(None, None, None, f"missing column(s): {wanted}"))
        return plan
    if crs is not None:
        parse_point_crs(crs)  # an unknown --crs is the caller's mistake: a 422, not row errors
    records: list[Record]
    if kind is LedgerKind.MEMBERS:
        records = _member_records(session, table, plan)
    else:
        points = resolve_points(table, crs)
        plan.errors.extend(points.errors)
        plan.notes.extend(points.notes)
        towns = _towns_of(session, points, table, plan)
        _suspect_gcj(session, points, crs or table.layer_crs, plan)
        build = _unit_record if kind is LedgerKind.UNITS else _camera_record
        records = []
        for number, row in table.rows:
            # Rows without a usable position are checked too: every error of the file at once.
            located = points.lonlat.get(number) if number in towns else None
            line = _Line(plan, table, number, row)
            record = build(session, line, located, towns.get(number, ""))
            if record is not None:
                records.append(record)
    _drop_duplicates(records, table, kind, plan)
    _compare(session, kind, records, plan)
    plan.errors.sort(key=lambda e: (e.row or 0, e.column or ""))
    return plan


def _header(column: str) -> str:
    return HEADERS[column]


def _text(row: dict[str, Any], column: str) -> str | None:
    return cell_text(row.get(column))


def _error(plan: ImportPlan, table: Table, row: int, column: str, value: Any, why: str) -> None:
    header = table.headers.get(column, column)
    plan.errors.append(RowError(row, header, cell_text(value), why))


W = TypeVar("W")


@dataclass(frozen=True)
class _Line:
    """A row of the file being checked: its number and cells, and the plan its errors go to
    (named by the file's own headers)."""

    plan: ImportPlan
    table: Table
    number: int
    row: dict[str, Any]

    def text(self, column: str) -> str | None:
        """The cell of ``column`` as text (None: blank)."""
        return _text(self.row, column)

    def error(self, column: str, value: Any, why: str) -> None:
        """Record why the cell of ``column`` (``value``) is refused."""
        _error(self.plan, self.table, self.number, column, value, why)

    def lookup(
        self, column: str, words: Mapping[str, W], what: str, known: str
    ) -> W | Literal[False] | None:
        """What the cell of ``column`` names in ``words`` (lower-cased or as written): None
        when blank, False after recording that it is an unknown ``what`` (one of ``known``)."""
        text = self.text(column)
        if text is None:
            return None
        found = words.get(text.lower()) or words.get(text)
        if found is None:
            self.error(column, text, f"unknown {what}; one of: {known}")
            return False
        return found


def _required(line: _Line) -> bool:
    ok = True
    for column in REQUIRED[line.plan.kind]:
        if line.text(column) is None:
            line.error(column, None, "required")
            ok = False
    for column, limit in (("code", 40), ("name", 100)):
        value = line.text(column)
        if value is not None and len(value) > limit:
            line.error(column, value, f"longer than {limit} characters")
            ok = False
    return ok


def check_phone(text: str) -> str | None:
    """The phone number without spaces and dashes, or None when it is not one."""
    digits = re.sub(r"[\s\-()（）]", "", text)
    return digits if _PHONE.match(digits) else None


def _phone(line: _Line) -> str | bool | None:
    """The row's phone (None: blank), or False after recording why it is not a phone."""
    text = line.text("phone")
    if text is None:
        return None
    phone = check_phone(text)
    if phone is None:
        line.error("phone", text, "not a phone number (11-digit mobile or landline)")
        return False
    return phone


def _towns_of(session: Session, points: Points, table: Table, plan: ImportPlan) -> dict[int, str]:
    """The town of each located row: the one covering it, else the nearest within the
    tolerance; rows farther from every town are errors. With no towns loaded, rows get ''."""
    if not points.lonlat:
        return {}
    if session.scalar(sa.select(sa.func.count()).where(Region.level == "town")) == 0:
        plan.notes.append("no towns loaded: positions not checked against town boundaries")
        return dict.fromkeys(points.lonlat, "")
    numbers = list(points.lonlat)
    rows = session.execute(
        _TOWN_OF_SQL,
        {
            "i": numbers,
            "x": [points.lonlat[n][0] for n in numbers],
            "y": [points.lonlat[n][1] for n in numbers],
            "max_m": OUTSIDE_TOWN_TOLERANCE_M,
        },
    ).all()
    towns: dict[int, str] = {}
    column = table.headers.get("lon", table.headers.get("x", "lon"))
    for number, code in rows:
        if code is None:
            lon, lat = points.lonlat[number]
            plan.errors.append(
                RowError(
                    number,
                    column,
                    f"{lon:.6f}, {lat:.6f} (WGS84)",
                    f"outside every town (more than {OUTSIDE_TOWN_TOLERANCE_M:g} m away): check "
                    "the coordinates and their crs",
                )
            )
        else:
            towns[number] = code
    return towns


_TOWN_OF_SQL = sa.text(
    """
    SELECT p.i, t.code
    FROM unnest(CAST(:i AS int[]), CAST(:x AS float8[]), CAST(:y AS float8[])) AS p(i, x, y)
    LEFT JOIN LATERAL (
        SELECT r.code
        FROM regions r
        WHERE r.level = 'town'
          AND r.geom && ST_Expand(ST_SetSRID(ST_MakePoint(p.x, p.y), 4326),
                                  2.0 * CAST(:max_m AS float8) / 111320.0)
          AND ST_DWithin(r.geom::geography, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326)::geography,
                         CAST(:max_m AS float8))
        ORDER BY ST_Distance(r.geom::geography,
                             ST_SetSRID(ST_MakePoint(p.x, p.y), 4326)::geography), r.code
        LIMIT 1
    ) AS t ON true
    """
)
_ROAD_DISTANCE_SQL = sa.text(
    """
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d)
    FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) AS p(x, y)
    CROSS JOIN LATERAL (
        SELECT ST_Distance(rd.geom::geography,
                           ST_SetSRID(ST_MakePoint(p.x, p.y), 4326)::geography) AS d
        FROM roads rd
        ORDER BY rd.geom <-> ST_SetSRID(ST_MakePoint(p.x, p.y), 4326)
        LIMIT 1
    ) AS nearest
    """
)
_OUTSIDE_TOWNS_SQL = sa.text(
    """
    SELECT count(*) FILTER (WHERE NOT EXISTS (
        SELECT 1 FROM regions r
        WHERE r.level = 'town' AND ST_Covers(r.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326))
    ))
    FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) AS p(x, y)
    """
)


def _suspect_gcj(session: Session, points: Points, crs: str | None, plan: ImportPlan) -> None:
    """Flag a ledger declared (or defaulted to) WGS84 whose points fit the roads or the towns
    far better read as GCJ-02: a phone-map ledger with the wrong crs."""
    declared = parse_point_crs(crs)
    if declared.geographic not in (Crs.WGS84, Crs.CGCS2000) or not points.lonlat:
        return
    numbers = [n for n in points.lonlat if points.crs_used.get(n) == declared.label]
    if len(numbers) < 3:
        return
    step = max(1, len(numbers) // GCJ_SAMPLE)
    sample = numbers[::step][:GCJ_SAMPLE]
    lon = np.array([points.lonlat[n][0] for n in sample])
    lat = np.array([points.lonlat[n][1] for n in sample])
    alt_lon, alt_lat = gcj02_to_wgs84(lon, lat)
    offset = float(np.median(geodesic_distance_m(lon, lat, alt_lon, alt_lat)))
    as_given = {"x": lon.tolist(), "y": lat.tolist()}
    as_gcj = {"x": alt_lon.tolist(), "y": alt_lat.tolist()}
    reason = None
    if session.scalar(sa.text("SELECT EXISTS (SELECT 1 FROM roads)")):
        given_m = float(session.scalar(_ROAD_DISTANCE_SQL, as_given) or 0.0)
        gcj_m = float(session.scalar(_ROAD_DISTANCE_SQL, as_gcj) or 0.0)
        if given_m - gcj_m >= GCJ_ROAD_GAIN_M and gcj_m < given_m / 2:
            reason = (
                f"read as {declared.label} the points lie a median {given_m:.0f} m from the "
                f"nearest road, read as GCJ-02 {gcj_m:.0f} m"
            )
    if reason is None:
        outside_given = int(session.scalar(_OUTSIDE_TOWNS_SQL, as_given) or 0)
        outside_gcj = int(session.scalar(_OUTSIDE_TOWNS_SQL, as_gcj) or 0)
        if outside_given - outside_gcj >= max(2, len(sample) // 10):
            reason = (
                f"read as {declared.label} {outside_given} of {len(sample)} points fall outside "
                f"every town, read as GCJ-02 {outside_gcj}"
            )
    if reason is not None:
        plan.errors.append(
            RowError(
                None,
                "crs",
                declared.label,
                f"the ledger looks like GCJ-02 (Amap, a phone map; ~{offset:.0f} m off): "
                f"{reason}. Import it again with --crs GCJ-02",
            )
        )


def _town_given(session: Session, line: _Line) -> str | bool | None:
    """The jurisdiction the row names (code or name of a town or county), None when blank,
    False after recording an error."""
    text = line.text("town")
    if text is None:
        return None
    if text.isdigit():
        for level in (RegionLevel.TOWN, RegionLevel.COUNTY):
            try:
                code = region_code(text, level)
            except ValidationError:
                continue
            if session.get(Region, code) is not None:
                return code
    else:
        named = session.scalar(
            sa.select(Region.code)
            .where(Region.name == text, Region.level.in_(["town", "county"]))
            .order_by(Region.code)
            .limit(1)
        )
        if named is not None:
            return named
    line.error("town", text, "no town or county with this code or name")
    return False


def _unit_record(
    session: Session, line: _Line, lonlat: tuple[float, float] | None, town: str
) -> Record | None:
    ok = _required(line)
    unit_type = line.lookup("type", UNIT_TYPES, "unit type", ", ".join(t.value for t in UnitType))
    platform = line.lookup("platform", PLATFORMS, "platform", ", ".join(p.value for p in Platform))
    phone = _phone(line)
    jurisdiction = _town_given(session, line)
    if not ok or not unit_type or platform is False or phone is False or jurisdiction is False:
        return None
    if lonlat is None:
        return None
    jurisdiction = jurisdiction or town
    if not jurisdiction:
        line.error("town", None, "no town covers the point: give 所属乡镇/town")
        return None
    platform = platform or platform_of(session, unit_type)
    if platform is None:
        why = "no category of the catalog is handled by this unit type: give 平台/platform"
        line.error("type", line.text("type"), why)
        return None
    return Record(
        line.number,
        str(line.text("code")),
        {
            "name": line.text("name"),
            "unit_type": unit_type.value,
            "platform": platform.value,
            "jurisdiction_code": jurisdiction,
            "phone": phone,
            "lonlat": lonlat,
        },
    )


def platform_of(session: Session, unit_type: UnitType) -> Platform | None:
    """The platform whose categories a unit type handles, from the category catalog (the one
    place that pairs them), when the ledger does not say."""
    platforms = set(
        session.scalars(
            sa.select(Category.platform).where(Category.unit_type == unit_type.value).distinct()
        )
    )
    return Platform(platforms.pop()) if len(platforms) == 1 else None


def _float(line: _Line, column: str) -> float | bool | None:
    text = line.text(column)
    if text is None:
        return None
    try:
        return float(text.rstrip("°度米m"))
    except ValueError:
        line.error(column, text, "not a number")
        return False


def _camera_record(
    session: Session, line: _Line, lonlat: tuple[float, float] | None, town: str
) -> Record | None:
    ok = _required(line)
    kind = line.lookup("type", CAMERA_KINDS, "camera type", "fixed/枪机, dome/球机, ptz/云台")
    status = line.lookup(
        "status", CAMERA_STATUSES, "status", "online/在线, offline/离线, maintenance/维修"
    )
    values = {c: _float(line, c) for c in ("bearing", "fov", "range")}
    if not ok or kind is False or status is False or any(v is False for v in values.values()):
        return None
    kind = kind or CameraKind.FIXED
    fov_default, range_default = CAMERA_DEFAULTS[kind]
    given = {c: float(v) for c, v in values.items() if v is not None}
    heading = given.get("bearing", 0.0)
    fov = 360.0 if kind is not CameraKind.FIXED else given.get("fov", fov_default)
    range_m = given.get("range", range_default)
    try:
        check_view(heading, fov, range_m)
    except ValidationError as error:
        column = {"heading_deg": "bearing", "fov_deg": "fov", "range_m": "range"}[
            error.detail.split(" ", 1)[0]
        ]
        line.error(column, line.row.get(column), error.detail)
        return None
    if lonlat is None:
        return None
    fields: dict[str, Any] = {
        "name": line.text("name"),
        "kind": kind.value,
        "heading_deg": heading,
        "fov_deg": fov,
        "range_m": range_m,
        "town_code": town or None,
        "lonlat": lonlat,
    }
    if status is not None:
        fields["status"] = status.value
    return Record(line.number, str(line.text("code")), fields)


def _member_records(session: Session, table: Table, plan: ImportPlan) -> list[Record]:
    """Members with their grids, found by grid code or by village + grid name."""
    grids = list(session.scalars(sa.select(Grid).where(Grid.valid_to.is_(None))))
    by_code = {g.code: g for g in grids}
    villages = dict(
        session.execute(sa.select(Region.code, Region.name).where(Region.level == "village")).all()
    )
    by_name: dict[str, list[Grid]] = {}
    for each in grids:
        by_name.setdefault(each.name, []).append(each)
    records: list[Record] = []
    for number, row in table.rows:
        line = _Line(plan, table, number, row)
        ok = _required(line)
        phone = _phone(line)
        village = line.text("village")
        found: list[Grid] = []
        for part in _SPLIT.split(line.text("grid") or ""):
            if not part:
                continue
            grid: Grid | None = by_code.get(part)
            if grid is None:
                named = [
                    g
                    for g in by_name.get(part, [])
                    if village is None or village in (g.village_code, villages.get(g.village_code))
                ]
                if len(named) == 1:
                    grid = named[0]
                elif len(named) > 1:
                    line.error(
                        "grid",
                        part,
                        "more than one grid has this name: give 所属村社/village or the grid code",
                    )
                    ok = False
                    continue
            if grid is None:
                where = f" in village {village}" if village else ""
                line.error("grid", part, f"no current grid with this code or name{where}")
                ok = False
                continue
            found.append(grid)
        if not ok or not isinstance(phone, str) or not found:
            continue
        towns = {g.town_code for g in found}
        if len(towns) > 1:
            line.error("grid", line.text("grid"), "grids of different towns")
            continue
        records.append(
            Record(
                number,
                phone,
                {
                    "name": line.text("name"),
                    "phone": phone,
                    "town_code": towns.pop(),
                    "grids": sorted({g.code for g in found}),
                    "active": True,
                },
            )
        )
    return records


def _drop_duplicates(
    records: list[Record], table: Table, kind: LedgerKind, plan: ImportPlan
) -> None:
    """Every row whose code (members: phone) another row of the file repeats is an error,
    whether or not the rows are otherwise good; none of them is imported."""
    column = "phone" if kind is LedgerKind.MEMBERS else "code"
    keys = {number: _key(kind, row) for number, row in table.rows}
    counts = Counter(k for k in keys.values() if k is not None)
    twice = {k for k, n in counts.items() if n > 1}
    for number, key in keys.items():
        if key in twice:
            _error(plan, table, number, column, key, "appears more than once in the file")
    records[:] = [r for r in records if r.key not in twice]


def _key(kind: LedgerKind, row: dict[str, Any]) -> str | None:
    if kind is not LedgerKind.MEMBERS:
        return _text(row, "code")
    text = _text(row, "phone")
    return check_phone(text) or text if text else None


# --- comparing with the database ----------------------------------------------------------------


def _existing(session: Session, kind: LedgerKind) -> dict[str, Any]:
    if kind is LedgerKind.UNITS:
        return {u.code: u for u in session.scalars(sa.select(ResponderUnit))}
    if kind is LedgerKind.CAMERAS:
        return {c.code: c for c in session.scalars(sa.select(Camera))}
    return {m.phone: m for m in session.scalars(sa.select(GridMember))}


def _current(session: Session, kind: LedgerKind, obj: Any) -> dict[str, Any]:
    """The fields of a stored object, as a record holds them."""
    if kind is LedgerKind.MEMBERS:
        grids = session.scalars(
            sa.select(GridMemberGrid.grid_code)
            .where(GridMemberGrid.member_id == obj.id)
            .order_by(GridMemberGrid.grid_code)
        )
        return {
            "name": obj.name,
            "phone": obj.phone,
            "town_code": obj.town_code,
            "grids": list(grids),
            "active": obj.active,
        }
    names = ["name", "status"]
    if kind is LedgerKind.UNITS:
        names += ["unit_type", "platform", "jurisdiction_code", "phone"]
    else:
        names += ["kind", "heading_deg", "fov_deg", "range_m", "town_code"]
    return {**{n: getattr(obj, n) for n in names}, "lonlat": point_lonlat(obj.geom)}


def _differences(current: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    changed = []
    for name, value in wanted.items():
        old: Any = current.get(name)
        if name == "lonlat":
            if geodesic_distance_m(old[0], old[1], value[0], value[1]) > 0.01:
                changed.append("position")
        elif isinstance(value, float) and isinstance(old, float):
            if abs(value - old) > 1e-9:
                changed.append(name)
        elif value != old:
            changed.append(name)
    return changed


def _compare(session: Session, kind: LedgerKind, records: list[Record], plan: ImportPlan) -> None:
    existing = _existing(session, kind)
    for record in records:
        obj = existing.get(record.key)
        if obj is None:
            plan.added.append(record)
            continue
        changed = _differences(_current(session, kind, obj), record.fields)
        if changed:
            plan.changed.append((record, changed))
        else:
            plan.unchanged.append(record.key)
    # Only what the file could have listed: a town's ledger retires nothing of other towns.
    column = "jurisdiction_code" if kind is LedgerKind.UNITS else "town_code"
    keys = {r.key for r in records}
    towns = {r.fields[column] for r in records}
    for key, obj in sorted(existing.items()):
        if key not in keys and getattr(obj, column) in towns and not _is_retired(kind, obj):
            plan.retired.append(key)


def _is_retired(kind: LedgerKind, obj: Any) -> bool:
    if kind is LedgerKind.UNITS:
        return bool(obj.status == UnitStatus.OFF_DUTY.value)
    if kind is LedgerKind.CAMERAS:
        return bool(obj.status == CameraStatus.OFFLINE.value)
    return not obj.active


# --- committing ---------------------------------------------------------------------------------


def commit_import(
    session: Session,
    plan: ImportPlan,
    *,
    actor: str,
    filename: str,
    sha256: str,
    with_users: bool = False,
) -> CommitResult:
    """Apply a plan in the caller's transaction (which it never commits) and record the run;
    a plan with errors writes nothing and raises ``ValidationError``."""
    if plan.errors:
        raise ValidationError(
            f"{len(plan.errors)} row-level error(s): nothing written; fix the file and run again"
        )
    if with_users and plan.kind is not LedgerKind.MEMBERS:
        raise ValidationError("--with-users makes users for grid members only")
    existing = _existing(session, plan.kind)
    now = utcnow()
    if plan.kind is LedgerKind.MEMBERS:
        for record in plan.added:
            _write(session, plan.kind, None, record, now)
    else:
        _insert_new(session, plan.kind, plan.added, now)
    for record, _ in plan.changed:
        _write(session, plan.kind, existing[record.key], record, now)
    if plan.retire_missing:
        for key in plan.retired:
            _retire(plan.kind, existing[key], now)
    session.flush()
    tokens = _member_users(session, plan) if with_users else []
    summary = plan.summary()
    del summary["errors"]
    summary["users"] = len(tokens)
    session.add(
        ImportRun(
            kind=plan.kind.value,
            filename=filename[:255],
            sha256=sha256,
            actor=actor[:100],
            imported_at=now,
            **summary,
        )
    )
    session.flush()
    return CommitResult(summary=summary, tokens=tokens)


def _write(session: Session, kind: LedgerKind, obj: Any, record: Record, now: Any) -> None:
    """Add a member (``obj`` None) or change a stored member, unit or camera to the record."""
    fields = dict(record.fields)
    if kind is LedgerKind.MEMBERS:
        grids = fields.pop("grids")
        if obj is None:
            obj = GridMember(**fields)
            session.add(obj)
            session.flush()
        else:
            for name, value in fields.items():
                setattr(obj, name, value)
            session.execute(sa.delete(GridMemberGrid).where(GridMemberGrid.member_id == obj.id))
        session.add_all(GridMemberGrid(member_id=obj.id, grid_code=code) for code in grids)
        return
    lon, lat = fields.pop("lonlat")
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.geom = from_shape(Point(lon, lat), srid=4326)
    obj.updated_at = now
    if kind is LedgerKind.CAMERAS:
        refresh_view(obj)  # the one rule for a camera's stored view


def _insert_new(session: Session, kind: LedgerKind, records: list[Record], now: Any) -> None:
    """Insert new units or cameras in bulk (one multi-row INSERT per thousand: a 10,000-camera
    ledger in a fraction of the unit-of-work's time, bench/imports)."""
    model: type[ResponderUnit] | type[Camera] = (
        ResponderUnit if kind is LedgerKind.UNITS else Camera
    )
    status = UnitStatus.AVAILABLE if kind is LedgerKind.UNITS else CameraStatus.ONLINE
    rows: list[dict[str, Any]] = []
    for record in records:
        fields = dict(record.fields)
        lon, lat = fields.pop("lonlat")
        row = {"code": record.key, "status": status.value, **fields, "updated_at": now}
        row["geom"] = from_shape(Point(lon, lat), srid=4326)
        if kind is LedgerKind.CAMERAS:
            # A transient camera, only to compute its view by the one rule for it.
            camera = Camera(**{k: v for k, v in row.items() if k != "updated_at"})
            refresh_view(camera)
            row["view"] = camera.view
        rows.append(row)
    for start in range(0, len(rows), 1000):
        session.execute(sa.insert(model), rows[start : start + 1000])


def _retire(kind: LedgerKind, obj: Any, now: Any) -> None:
    """Take a unit off duty, a camera offline, a member out of service: their history stays."""
    if kind is LedgerKind.UNITS:
        obj.status, obj.updated_at = UnitStatus.OFF_DUTY.value, now
    elif kind is LedgerKind.CAMERAS:
        obj.status, obj.updated_at = CameraStatus.OFFLINE.value, now
    else:
        obj.active = False


def _member_users(session: Session, plan: ImportPlan) -> list[tuple[str, str]]:
    """A grid-member user and token for every member of the file who has none yet."""
    from gis.services import access

    keys = [r.key for r in (*plan.added, *(r for r, _ in plan.changed))] + plan.unchanged
    members = session.scalars(sa.select(GridMember).where(GridMember.phone.in_(keys))).all()
    with_user = set(session.scalars(sa.select(User.member_id).where(User.member_id.isnot(None))))
    tokens = []
    for member in sorted(members, key=lambda m: m.phone):
        if member.id in with_user:
            continue
        user = access.add_user(
            session,
            name=f"member-{member.phone}",
            role=Role.GRID_MEMBER,
            town_codes=[member.town_code],
            member_id=member.id,
        )
        token = access.issue_token(session, user, valid_for=timedelta(days=MEMBER_TOKEN_DAYS))
        tokens.append((user.name, token))
    return tokens


# --- templates and exports ----------------------------------------------------------------------

EXAMPLES: dict[LedgerKind, dict[str, Any]] = {
    LedgerKind.UNITS: {
        "code": "330803110-police",
        "name": "大洲派出所",
        "type": "派出所",
        "platform": "governance",
        "town": "330803110",
        "phone": "0570-3012110",
        "lon": 118.9,
        "lat": 28.95,
        "crs": "GCJ-02",
    },
    LedgerKind.CAMERAS: {
        "code": "TY-0001",
        "name": "大洲镇中心路口",
        "type": "枪机",
        "status": "在线",
        "bearing": 90,
        "fov": 60,
        "range": 100,
        "lon": 118.9,
        "lat": 28.95,
        "crs": "GCJ-02",
    },
    LedgerKind.MEMBERS: {
        "name": "张三",
        "phone": "13800000000",
        "grid": "330803110201-01",
        "village": "",
        "town": "",
    },
}
NOTES: dict[str, str] = {
    "code": "编号 code: unique; the key of re-imports (members are keyed by phone)",
    "name": "名称/姓名 name",
    "type": "类型 type: units 派出所/交警/应急队/市场监管所/综合执法中队/便民服务中心 or "
    "police_station…; cameras 枪机 fixed, 球机 dome, 云台 ptz",
    "platform": "平台 platform: governance, market, enforcement, service (default: the platform "
    "whose categories the type handles)",
    "status": "状态 status: 在线 online, 离线 offline, 维修 maintenance (blank: unchanged)",
    "town": "所属乡镇 town: code (9 or 12 digits) or name; default the town covering the point",
    "phone": "电话 phone: 11-digit mobile or landline with area code",
    "bearing": "朝向 bearing: degrees clockwise from north, 0–359 (blank 0)",
    "fov": "视角 fov: degrees, 1–360 (blank: fixed 60, dome/ptz 360)",
    "range": "距离 range: metres, up to 5000 (blank: fixed 100, dome 60, ptz 150)",
    "lon": "经度 lon (or X: easting/northing in metres with crs CGCS2000-GK or EPSG:45xx)",
    "lat": "纬度 lat (or Y)",
    "crs": "坐标系 crs, per row or --crs per file: WGS84, GCJ-02 (高德/phone maps), BD-09 (百度), "
    "CGCS2000, CGCS2000-GK, EPSG:4549…",
    "grid": "所属网格 grid: grid code(s) or name(s), separated by 、",
    "village": "所属村社 village: name or code, to tell grids of the same name apart",
}


def export_rows(session: Session, kind: LedgerKind) -> list[dict[str, Any]]:
    """Every unit, camera or member in its ledger's column layout (WGS84), by key."""
    rows: list[dict[str, Any]] = []
    if kind is LedgerKind.MEMBERS:
        for member in sorted(_existing(session, kind).values(), key=lambda m: m.phone):
            if not member.active:
                continue
            current = _current(session, kind, member)
            rows.append(
                {
                    "name": member.name,
                    "phone": member.phone,
                    "grid": "、".join(current["grids"]),
                    "village": "",
                    "town": member.town_code,
                }
            )
        return rows
    for key, obj in sorted(_existing(session, kind).items()):
        lon, lat = point_lonlat(obj.geom)
        row: dict[str, Any] = {"code": key, "name": obj.name, "lon": lon, "lat": lat}
        row["crs"] = "WGS84"
        if kind is LedgerKind.UNITS:
            row.update(
                type=obj.unit_type,
                platform=obj.platform,
                town=obj.jurisdiction_code,
                phone=obj.phone,
            )
        else:
            row.update(
                type=obj.kind,
                status=obj.status,
                bearing=obj.heading_deg,
                fov=obj.fov_deg,
                range=obj.range_m,
            )
        rows.append(row)
    return rows
