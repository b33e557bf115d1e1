"""Cameras (天眼): their view sectors, what sees a place, grid coverage and camera-raised cases.

A camera's view is stored as a polygon computed in metres on the WGS84 ellipsoid
(``gis.geo.sector_polygon``): a sector for a fixed camera, a full circle for PTZ and dome
cameras, which can turn. Every change to a camera goes through this module, so the stored view
always matches the camera's fields.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from pyproj import Geod
from shapely.geometry import Point, Polygon
from sqlalchemy.orm import Session

from gis.errors import ConflictError, UnknownCodeError, ValidationError
from gis.geo import sector_polygon
from gis.layers.base import point_lonlat, utcnow
from gis.layers.cameras import Camera, CameraKind, CameraStatus, find_camera, get_camera
from gis.layers.incidents import ReporterKind
from gis.layers.regions import Region, RegionLevel
from gis.services.dispatch import check_near_county
from gis.services.intake import (
    IncidentReport,
    IntakeResult,
    Reporter,
    ReportLocation,
    report_incident,
)
from gis.settings import DEFAULT_DISPATCH_MAX_OUTSIDE_M, Settings

MAX_RANGE_M = 5_000.0
# Vertices along a view's arc: with 64 the chord of a full circle falls short of the range by
# 0.12 % at most (a 40° sector by far less), so "within range" is decided to within a metre.
VIEW_SEGMENTS = 64
_GEOD = Geod(ellps="WGS84")
# Fields of a camera that change its view.
VIEW_FIELDS = frozenset({"kind", "heading_deg", "fov_deg", "range_m", "lon", "lat"})


def check_view(heading_deg: float, fov_deg: float, range_m: float) -> None:
    """Reject a heading outside [0, 360), a field of view outside (0, 360], a bad range."""
    values = {"heading_deg": heading_deg, "fov_deg": fov_deg, "range_m": range_m}
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValidationError(f"{name} must be a finite number")
    if not 0.0 <= heading_deg < 360.0:
        raise ValidationError(
            f"heading_deg must be in [0, 360) degrees clockwise from north, got {heading_deg}"
        )
    if not 0.0 < fov_deg <= 360.0:
        raise ValidationError(f"fov_deg must be in (0, 360], got {fov_deg}")
    if not 0.0 < range_m <= MAX_RANGE_M:
        raise ValidationError(
            f"range_m must be more than 0 and at most {MAX_RANGE_M:g} m "
            f"(no camera sees farther usefully), got {range_m}"
        )


def view_polygon(
    kind: CameraKind, lon: float, lat: float, heading_deg: float, fov_deg: float, range_m: float
) -> Polygon:
    """The area a camera sees: a sector, or a full circle for cameras that can turn."""
    full = kind in (CameraKind.PTZ, CameraKind.DOME) or fov_deg >= 360.0
    return sector_polygon(
        lon, lat, heading_deg, 360.0 if full else fov_deg, range_m, segments=VIEW_SEGMENTS
    )


def camera_lonlat(camera: Camera) -> tuple[float, float]:
    """A camera's WGS84 lon/lat."""
    return point_lonlat(camera.geom)


def refresh_view(camera: Camera) -> None:
    """Recompute a camera's stored view from its location, kind, heading, fov and range."""
    lon, lat = camera_lonlat(camera)
    polygon = view_polygon(
        CameraKind(camera.kind), lon, lat, camera.heading_deg, camera.fov_deg, camera.range_m
    )
    camera.view = from_shape(polygon, srid=4326)


def view_centre(camera: Camera) -> tuple[float, float]:
    """Where a camera looks: halfway along its heading for a fixed camera, else its location."""
    lon, lat = camera_lonlat(camera)
    if camera.kind != CameraKind.FIXED.value or camera.fov_deg >= 360.0:
        return lon, lat
    centre_lon, centre_lat, _ = _GEOD.fwd(lon, lat, camera.heading_deg, camera.range_m / 2.0)
    return float(centre_lon), float(centre_lat)


def _town_code(session: Session, lon: float, lat: float, given: str | None) -> str | None:
    """The given town code (checked), or the town covering the point, if any."""
    if given is not None:
        region = session.get(Region, given)
        if region is None or region.level != RegionLevel.TOWN.value:
            raise UnknownCodeError(f"unknown town code {given!r}; see GET /regions?level=town")
        return given
    point = sa.func.ST_SetSRID(sa.func.ST_MakePoint(lon, lat), 4326)
    return session.scalar(
        sa.select(Region.code)
        .where(Region.level == RegionLevel.TOWN.value, sa.func.ST_Covers(Region.geom, point))
        .order_by(Region.code)
        .limit(1)
    )


def create_camera(
    session: Session,
    *,
    code: str,
    name: str,
    lon: float,
    lat: float,
    kind: CameraKind = CameraKind.FIXED,
    status: CameraStatus = CameraStatus.ONLINE,
    heading_deg: float = 0.0,
    fov_deg: float | None = None,
    range_m: float = 100.0,
    town_code: str | None = None,
    max_outside_m: float = DEFAULT_DISPATCH_MAX_OUTSIDE_M,
) -> Camera:
    """Add a camera at a WGS84 point, with its view computed; a used code is a conflict."""
    if fov_deg is None:
        fov_deg = 60.0 if kind is CameraKind.FIXED else 360.0
    check_view(heading_deg, fov_deg, range_m)
    check_near_county(session, lon, lat, max_outside_m=max_outside_m)
    if find_camera(session, code) is not None:
        raise ConflictError(f"a camera with code {code!r} already exists; PATCH it instead")
    camera = Camera(
        code=code,
        name=name,
        kind=kind.value,
        status=status.value,
        heading_deg=heading_deg,
        fov_deg=fov_deg,
        range_m=range_m,
        town_code=_town_code(session, lon, lat, town_code),
        geom=from_shape(Point(lon, lat), srid=4326),
        updated_at=utcnow(),
    )
    refresh_view(camera)
    session.add(camera)
    session.flush()
    return camera


def update_camera(
    session: Session,
    code: str,
    changes: dict[str, Any],
    *,
    max_outside_m: float = DEFAULT_DISPATCH_MAX_OUTSIDE_M,
) -> Camera:
    """Change a camera's fields (name, kind, status, heading, fov, range, position, town);
    the view is recomputed whenever what it depends on changes."""
    camera = get_camera(session, code)
    unknown = set(changes) - {"name", "town_code", "status", *VIEW_FIELDS}
    if unknown:
        raise ValidationError(f"cannot change {', '.join(sorted(unknown))} of a camera")
    if not changes:
        raise ValidationError("nothing to change")
    if ("lon" in changes) != ("lat" in changes):
        raise ValidationError("give both lon and lat to move a camera")
    kind = CameraKind(changes.get("kind", camera.kind))
    heading = float(changes.get("heading_deg", camera.heading_deg))
    fov = float(changes.get("fov_deg", camera.fov_deg))
    if "kind" in changes and "fov_deg" not in changes and kind is not CameraKind.FIXED:
        fov = 360.0
    range_m = float(changes.get("range_m", camera.range_m))
    check_view(heading, fov, range_m)
    lon, lat = camera_lonlat(camera)
    if "lon" in changes:
        lon, lat = float(changes["lon"]), float(changes["lat"])
        check_near_county(session, lon, lat, max_outside_m=max_outside_m)
        camera.geom = from_shape(Point(lon, lat), srid=4326)
        if "town_code" not in changes:
            camera.town_code = _town_code(session, lon, lat, None)
    if "town_code" in changes:
        camera.town_code = _town_code(session, lon, lat, changes["town_code"])
    if "name" in changes:
        camera.name = changes["name"]
    if "status" in changes:
        camera.status = CameraStatus(changes["status"]).value
    camera.kind, camera.heading_deg, camera.fov_deg, camera.range_m = (
        kind.value,
        heading,
        fov,
        range_m,
    )
    if VIEW_FIELDS & set(changes):
        refresh_view(camera)
    camera.updated_at = utcnow()
    session.flush()
    return camera


# --- coverage -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """How much of a grid (area and road length) online cameras see; shares in [0, 1]."""

    grid_code: str
    grid_name: str
    town_code: str
    cameras: int
    area_m2: float
    covered_m2: float
    road_m: float
    covered_road_m: float
    blind_spots: Any | None = None  # WKB of the uncovered part (WGS84), when asked for

    @property
    def area_share(self) -> float:
        """Share of the grid's area inside some online camera view."""
        return self.covered_m2 / self.area_m2 if self.area_m2 > 0 else 0.0

    @property
    def road_share(self) -> float | None:
        """Share of the grid's road length inside some view (None: no roads in the grid)."""
        return self.covered_road_m / self.road_m if self.road_m > 0 else None


def utm_srid(geom: Any) -> sa.ColumnElement[int]:
    """The SRID of the WGS84 UTM zone of ``geom``'s centroid: where coverage is measured."""
    centroid = sa.func.ST_Centroid(geom)
    x = sa.func.ST_X(centroid, type_=sa.Float)
    zone = sa.cast(sa.func.floor((x + 180) / sa.literal_column("6.0", sa.Float)), sa.Integer) + 1
    north = sa.case((sa.func.ST_Y(centroid) >= 0, 32600), else_=32700)
    return north + sa.func.least(sa.func.greatest(zone, 1), 60)


def online_views(grid_geom: Any, srid: Any) -> Any:
    """The union (in the UTM zone ``srid``) of the views of the online cameras that touch
    ``grid_geom``, as ``views_m``, and how many they are, as ``cameras``."""
    return sa.select(
        # Typed plainly: a geometry column would be wrapped in ST_AsEWKB for reading.
        sa.type_coerce(
            sa.func.ST_Union(sa.func.ST_Transform(Camera.view, srid)), sa.types.NullType()
        ).label("views_m"),
        sa.func.count().label("cameras"),
    ).where(
        Camera.status == CameraStatus.ONLINE.value, sa.func.ST_Intersects(Camera.view, grid_geom)
    )


def coverage_columns(grid_geom: Any) -> dict[str, sa.ColumnElement[Any]]:
    """Per-row coverage of a grid geometry column, for a set of grids (the OGC collection):
    ``cameras`` seeing it, ``area_m2``, ``covered_m2`` and ``covered_share``. Each is its own
    scalar subquery, so a query that does not ask for one (a count) does not compute it."""
    srid = utm_srid(grid_geom)
    grid_m = sa.func.ST_Transform(grid_geom, srid)
    views = online_views(grid_geom, srid)
    area = sa.func.ST_Area(grid_m)
    covered = sa.func.coalesce(
        sa.func.ST_Area(
            sa.func.ST_Intersection(
                grid_m, views.with_only_columns(views.selected_columns.views_m).scalar_subquery()
            )
        ),
        0.0,
    )
    return {
        "cameras": views.with_only_columns(sa.func.count()).scalar_subquery(),
        "area_m2": area,
        "covered_m2": covered,
        "covered_share": sa.case((area > 0, covered / area), else_=0.0),
    }


def _sql_text(element: Any) -> str:
    """A SQL expression of this module as text (for the one statement written as text)."""
    dialect = sa.dialects.postgresql.dialect()
    return str(element.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


# Everything is measured in the UTM zone of each grid's centroid (metres), from the grid and
# the union of the online views that touch it; roads are clipped to the grid first. The zone
# and the views are the expressions above, so the OGC collection computes the same figures.
_COVERAGE_TEMPLATE = """
WITH g AS (
    SELECT code, name, town_code, geom, {srid} AS srid
    FROM grids
    WHERE valid_to IS NULL
      AND code = ANY(CAST(:codes AS text[]))
), m AS (
    SELECT g.code, g.name, g.town_code, g.srid, g.geom,
           ST_Transform(g.geom, g.srid) AS grid_m,
           v.views_m, v.cameras
    FROM g
    CROSS JOIN LATERAL ({views}) AS v
)
SELECT m.code, m.name, m.town_code, m.cameras,
       ST_Area(m.grid_m) AS area_m2,
       COALESCE(ST_Area(ST_Intersection(m.grid_m, m.views_m)), 0) AS covered_m2,
       COALESCE(r.road_m, 0) AS road_m,
       COALESCE(r.covered_road_m, 0) AS covered_road_m,
       {blind} AS blind_spots
FROM m
CROSS JOIN LATERAL (
    SELECT sum(ST_Length(clip)) AS road_m,
           sum(CASE WHEN m.views_m IS NULL THEN 0
                    ELSE ST_Length(ST_Intersection(clip, m.views_m)) END) AS covered_road_m
    FROM (
        SELECT ST_CollectionExtract(
                   ST_Intersection(ST_Transform(rd.geom, m.srid), m.grid_m), 2) AS clip
        FROM roads rd
        WHERE ST_Intersects(rd.geom, m.geom)
    ) AS clipped
) AS r
ORDER BY m.code
"""
_COVERAGE_SQL = _COVERAGE_TEMPLATE.replace(
    "{srid}", _sql_text(utm_srid(sa.literal_column("geom")))
).replace(
    "{views}", _sql_text(online_views(sa.literal_column("g.geom"), sa.literal_column("g.srid")))
)
_BLIND_SQL = (
    "ST_AsBinary(ST_Transform(CASE WHEN m.views_m IS NULL THEN m.grid_m "
    "ELSE ST_Difference(m.grid_m, m.views_m) END, 4326))"
)


def _coverage_rows(session: Session, codes: list[str], *, with_geometry: bool) -> list[Coverage]:
    """Coverage of the current grids with these codes."""
    # Only one of two module constants is formatted in; values are bound.
    sql = _COVERAGE_SQL.format(blind=_BLIND_SQL if with_geometry else "NULL")
    rows = session.execute(sa.text(sql), {"codes": codes}).all()
    return [
        Coverage(
            grid_code=row.code,
            grid_name=row.name,
            town_code=row.town_code,
            cameras=int(row.cameras),
            area_m2=float(row.area_m2),
            covered_m2=float(row.covered_m2),
            road_m=float(row.road_m),
            covered_road_m=float(row.covered_road_m),
            blind_spots=bytes(row.blind_spots) if row.blind_spots is not None else None,
        )
        for row in rows
    ]


def grid_coverage(session: Session, code: str) -> Coverage:
    """Camera coverage of one current grid, with its blind spots as geometry."""
    from gis.layers.grids import get_current_grid

    get_current_grid(session, code)  # NotFoundError for an unknown or retired grid
    return _coverage_rows(session, [code], with_geometry=True)[0]


def coverage_by_grid(
    session: Session,
    *,
    town_code: str | None = None,
    batch: int = 200,
    progress: Callable[[int, int], None] | None = None,
) -> list[Coverage]:
    """Camera coverage of every current grid (of a town), worst covered first."""
    from gis.layers.grids import Grid

    query = sa.select(Grid.code).where(Grid.valid_to.is_(None)).order_by(Grid.code)
    if town_code is not None:
        if session.get(Region, town_code) is None:
            raise UnknownCodeError(f"unknown town code {town_code!r}")
        query = query.where(Grid.town_code == town_code)
    codes = list(session.scalars(query))
    result: list[Coverage] = []
    # Batches keep each statement short and let a long run report progress.
    for start in range(0, len(codes), batch):
        chunk = codes[start : start + batch]
        result.extend(_coverage_rows(session, chunk, with_geometry=False))
        if progress is not None:
            progress(start + len(chunk), len(codes))
    result.sort(key=lambda c: (c.area_share, c.road_share or 0.0, c.grid_code))
    return result


# --- camera-raised cases --------------------------------------------------------------------


def raise_alert(
    session: Session,
    code: str,
    *,
    category: str,
    note: str = "",
    settings: Settings,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> IntakeResult:
    """Report a case seen on a camera, at the centre of its view, through the normal intake."""
    camera = get_camera(session, code)
    lon, lat = view_centre(camera)
    report = IncidentReport(
        category=category,
        location=ReportLocation(lon=lon, lat=lat, crs="EPSG:4326"),
        description=note,
        reporter=Reporter(kind=ReporterKind.CAMERA, id=camera.code),
    )
    return report_incident(
        session, report, settings=settings, now=now, idempotency_key=idempotency_key
    )
