"""Load the demo county into a migrated database through a session (the caller commits)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.orm import Session
from tqdm import tqdm

from gis.errors import ConflictError
from gis.layers.categories import load_catalog, read_catalog
from gis.sample import bulk
from gis.sample.boundaries import Boundaries
from gis.sample.county import build_county
from gis.sample.incidents import HISTORY_DAYS, REPORTERS, STATUSES, STEPS, Cases
from gis.sample.names import person_names
from gis.sample.places import STREAM_MEMBERS, Plan, stream
from gis.services.assignment import grid_member, place_points, unit_choice
from gis.services.partitions import Month, ensure_partitions
from gis.settings import DEFAULT_SNAP_M

log = logging.getLogger(__name__)

# Every table the sample writes, children first (the order TRUNCATE and emptiness checks use).
LAYER_TABLES = (
    "incident_events",
    "incidents",
    "incident_keys",  # every case's keys (written by a trigger on incidents)
    "grid_member_grids",
    "grid_members",
    "grids",
    "cameras",
    "responder_units",
    "roads",
    "regions",
)
# Tables whose ``id`` the sample sets explicitly (so ids are deterministic); their sequences are
# moved past the largest id afterwards.
ID_TABLES = (
    "incident_events", "incidents", "grid_members", "grids", "cameras", "responder_units", "roads",
)  # fmt: skip
# Grids existed a while before the first case of the history.
GRIDS_VALID_BEFORE_HISTORY = timedelta(days=30)


@dataclass(frozen=True)
class SampleSummary:
    """What ``load_sample`` wrote: rows per layer and the seconds it took."""

    towns: int
    villages: int
    grids: int
    members: int
    units: int
    cameras: int
    roads: int
    incidents: int
    events: int
    seconds: float

    def counts(self) -> dict[str, int]:
        """The row counts by layer (everything but ``seconds``)."""
        return {k: v for k, v in asdict(self).items() if k != "seconds"}


class _Progress:
    """tqdm bars on stderr, one per stage, or nothing at all."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def bar(self, desc: str, total: int, unit: str = "step") -> tqdm[Any]:
        """A bar for one stage."""
        return tqdm(
            total=total, desc=desc, unit=unit, file=sys.stderr, disable=not self.enabled, leave=True
        )


def load_sample(
    session: Session,
    *,
    seed: int,
    scale: int = 1,
    end: datetime | None = None,
    incidents_per_town: int | None = None,
    progress: bool = True,
    replace: bool = False,
) -> SampleSummary:
    """Load the deterministic demo county (and a year of cases ending at ``end``); no commit."""
    started = time.perf_counter()
    # Bulk statements at K=100 run for minutes: lift the service's per-statement limit for this
    # transaction only, and give sorts and hashes room.
    session.execute(sa.text("SET LOCAL statement_timeout = 0"))
    session.execute(sa.text("SET LOCAL work_mem = '256MB'"))
    session.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
    # JIT compiling the wide INSERT … SELECT costs seconds and saves nothing at these sizes.
    session.execute(sa.text("SET LOCAL jit = off"))
    _make_room(session, replace)
    county = build_county(
        seed, scale, end=end, incidents_per_town=incidents_per_town, progress=progress
    )
    load_catalog(session)
    bars = _Progress(progress)
    bar = bars.bar("sample: writing regions, grids, units, roads, cameras", 5)
    _load_regions(session, county.boundaries)
    bar.update()
    valid_from = county.end - timedelta(days=HISTORY_DAYS) - GRIDS_VALID_BEFORE_HISTORY
    grids = _load_grids(session, seed, county.boundaries, valid_from)
    bar.update()
    _load_units(session, county.units, county.end)
    bar.update()
    _load_roads(session, county.roads)
    bar.update()
    _load_cameras(session, county.cameras, county.end)
    bar.update()
    bar.close()
    events = _load_cases(session, county.cases, county.plan, bars) if len(county.cases) else 0
    _set_unit_statuses(session, county.units)
    _finish(session)
    return SampleSummary(
        towns=len(county.boundaries.towns),
        villages=len(county.boundaries.villages),
        grids=grids,
        members=grids,
        units=len(county.units),
        cameras=len(county.cameras),
        roads=len(county.roads),
        incidents=len(county.cases),
        events=events,
        seconds=round(time.perf_counter() - started, 3),
    )


def _make_room(session: Session, replace: bool) -> None:
    """Empty the layer tables (``replace``) or refuse if any of them holds rows."""
    if replace:
        names = sql.SQL(", ").join(map(sql.Identifier, LAYER_TABLES))
        with bulk.driver_connection(session).cursor() as cursor:
            cursor.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(names))
        return
    busy = []
    with bulk.driver_connection(session).cursor() as cursor:
        for table in LAYER_TABLES:
            query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
            row = cursor.execute(query).fetchone()
            if row is not None and row[0]:
                busy.append(table)
    if busy:
        raise ConflictError(
            f"the database already holds data ({', '.join(busy)}); load the sample into an "
            "empty database, or pass replace=True (--replace) to empty these tables first"
        )


def _load_regions(session: Session, boundaries: Boundaries) -> None:
    """City, counties, towns and villages, parents first."""
    columns = (
        "code",
        "name",
        "name_en",
        "level",
        "parent_code",
        "households",
        "population",
        "geom",
    )
    rows = []
    for level, frame, parent in (
        ("city", boundaries.city, "parent_code"),
        ("county", boundaries.counties, "parent_code"),
        ("town", boundaries.towns, "county_code"),
        ("village", boundaries.villages, "town_code"),
    ):
        geoms = bulk.ewkb(frame.geometry.values)
        for row, geom in zip(frame.itertuples(index=False), geoms, strict=True):
            rows.append(
                (
                    row.code, row.name, row.name_en, level, getattr(row, parent),
                    int(row.households), int(row.population), geom,
                )
            )  # fmt: skip
    bulk.copy_rows(session, "regions", columns, rows)


def _load_grids(session: Session, seed: int, boundaries: Boundaries, valid_from: datetime) -> int:
    """Grids (version 1, valid from before the history) and one member per grid."""
    grids = boundaries.grids
    ids = range(1, len(grids) + 1)
    bulk.copy_rows(
        session,
        "grids",
        (
            "id", "code", "version", "name", "village_code", "town_code", "households",
            "population", "geom", "valid_from", "created_by", "created_at",
        ),
        (
            (
                i, row.code, 1, row.name, row.village_code, row.town_code, int(row.households),
                int(row.population), geom, valid_from, "sample", valid_from,
            )
            for i, row, geom in zip(
                ids, grids.itertuples(index=False), bulk.ewkb(grids.geometry.values), strict=True
            )
        ),
    )  # fmt: skip
    names = person_names(stream(seed, STREAM_MEMBERS), len(grids))
    bulk.copy_rows(
        session,
        "grid_members",
        ("id", "name", "phone", "town_code", "active"),
        (
            (i, name, f"170{i:08d}", town, True)
            for i, name, town in zip(ids, names, grids["town_code"], strict=True)
        ),
    )
    bulk.copy_rows(
        session,
        "grid_member_grids",
        ("member_id", "grid_code"),
        zip(ids, grids["code"], strict=True),
    )
    return len(grids)


def _load_units(session: Session, units: list[dict[str, Any]], now: datetime) -> None:
    """Responder units with their points, all available while the year's cases are assigned
    (by intake's rule, which takes available units only); their statuses of today are set after
    the history (``_set_unit_statuses``), so no past case goes without a unit because of them."""
    points = bulk.ewkb(shapely.points([(u["lon"], u["lat"]) for u in units]))
    bulk.copy_rows(
        session,
        "responder_units",
        (
            "id", "code", "name", "platform", "unit_type", "jurisdiction_code", "status",
            "phone", "geom", "updated_at",
        ),
        (
            (
                i, u["code"], u["name"], u["platform"], u["unit_type"], u["jurisdiction_code"],
                "available", u["phone"], geom, now,
            )
            for i, (u, geom) in enumerate(zip(units, points, strict=True), start=1)
        ),
    )  # fmt: skip


def _set_unit_statuses(session: Session, units: list[dict[str, Any]]) -> None:
    """Give the units their statuses of today (off duty, busy…) once the history is written."""
    changed = [
        {"code": u["code"], "status": u["status"]} for u in units if u["status"] != "available"
    ]
    if changed:
        session.execute(
            sa.text("UPDATE responder_units SET status = :status WHERE code = :code"), changed
        )


def _load_roads(session: Session, roads: Any) -> None:
    """Road segments with their topology node ids."""
    bulk.copy_rows(
        session,
        "roads",
        (
            "id", "name", "road_class", "speed_kmh", "oneway", "length_m", "source", "target",
            "geom",
        ),
        (
            (
                int(r.id), r.name, r.road_class, float(r.speed_kmh), bool(r.oneway),
                round(float(r.length_m), 3), int(r.source), int(r.target), geom,
            )
            for r, geom in zip(
                roads.itertuples(index=False), bulk.ewkb(roads.geometry.values), strict=True
            )
        ),
    )  # fmt: skip


def _load_cameras(session: Session, cameras: list[dict[str, Any]], now: datetime) -> None:
    """Cameras with their points and view sectors."""
    points = bulk.ewkb(shapely.points([(c["lon"], c["lat"]) for c in cameras]))
    views = bulk.ewkb([c["view"] for c in cameras])
    bulk.copy_rows(
        session,
        "cameras",
        (
            "id", "code", "name", "kind", "status", "heading_deg", "fov_deg", "range_m",
            "town_code", "geom", "view", "updated_at",
        ),
        (
            (
                c["id"], c["code"], c["name"], c["kind"], c["status"], c["heading_deg"],
                c["fov_deg"], c["range_m"], c["town_code"], geom, view, now,
            )
            for c, geom, view in zip(cameras, points, views, strict=True)
        ),
    )  # fmt: skip


# --- cases --------------------------------------------------------------------------------------

_STAGING = """
CREATE TEMP TABLE sample_cases (
    id bigint, town integer, category smallint, reporter smallint, camera integer,
    lon double precision, lat double precision, occurred bigint, reported bigint,
    assigned bigint, due bigint, resolved bigint, closed bigint, updated bigint, status smallint
) ON COMMIT DROP;
CREATE TEMP TABLE sample_events (
    id bigint, incident_id bigint, step smallint, at bigint, due bigint
) ON COMMIT DROP;
CREATE TEMP TABLE sample_towns (idx integer, code text, county_code text) ON COMMIT DROP;
CREATE TEMP TABLE sample_categories (
    idx smallint, code text, platform text, unit_type text, name_zh text
) ON COMMIT DROP;
CREATE TEMP TABLE sample_statuses (idx smallint, status text) ON COMMIT DROP;
CREATE TEMP TABLE sample_reporters (idx smallint, kind text) ON COMMIT DROP;
CREATE TEMP TABLE sample_steps (
    idx smallint, action text, from_status text, to_status text, actor text, note text
) ON COMMIT DROP;
"""

# Points as geometries with a GiST index, so the grid join can run polygon-outer: for each
# grid, an index scan of the points it covers (docs/architecture.md).
_POINTS = """
ANALYZE sample_towns;
ANALYZE sample_categories;
ANALYZE sample_statuses;
ANALYZE sample_reporters;
ANALYZE sample_steps;
CREATE TEMP TABLE sample_points ON COMMIT DROP AS
    SELECT id, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS geom FROM sample_cases;
CREATE INDEX ON sample_points USING gist (geom);
ANALYZE sample_points;
ANALYZE sample_cases;
"""

# The unit and member of each case, by the rules of intake (``gis.services.assignment``): its
# town is the one its grid (or, outside every grid, the drawing) puts it in. The tables the two
# rules probe were filled in this transaction: analyzed first, or PostgreSQL probes a member's
# grids through the (member, grid) primary key, a whole-index scan per case (hours at ×100).
_NEAREST = f"""
ANALYZE regions;
ANALYZE responder_units;
ANALYZE grid_members;
ANALYZE grid_member_grids;
CREATE TEMP TABLE sample_nearest ON COMMIT DROP AS
SELECT s.id, u.id AS unit_id, u.d AS distance, {grid_member("h.to_code")} AS member_id
FROM sample_cases AS s
JOIN sample_points AS p ON p.id = s.id
JOIN sample_towns AS t ON t.idx = s.town
JOIN sample_categories AS k ON k.idx = s.category
JOIN sample_hits AS h ON h.incident_id = s.id
LEFT JOIN LATERAL ({
    unit_choice("p.geom", "COALESCE(h.to_town, t.code)", "t.county_code", "k.unit_type")
}) AS u ON TRUE;
CREATE UNIQUE INDEX ON sample_nearest (id);
ANALYZE sample_nearest;
"""  # noqa: S608 -- module constants only

_INSERT_INCIDENTS = """
INSERT INTO incidents (
    id, category_code, platform, status, description, reporter_kind, reporter_id, photos,
    geom, source_crs, source_lon, source_lat, location_quality, grid_id, grid_code,
    village_code, town_code, county_code, member_id, unit_id, unit_distance_m,
    occurred_at, reported_at, assigned_at, due_at, resolved_at, closed_at, updated_at
)
SELECT
    s.id, k.code, k.platform, st.status,
    k.name_zh || '：' || coalesce(v.name, t.code),
    r.kind,
    CASE r.kind
        WHEN 'grid_member' THEN n.member_id::text
        WHEN 'camera' THEN cam.code
        WHEN 'hotline' THEN '12345'
    END,
    '[]'::jsonb,
    p.geom, 'EPSG:4326', s.lon, s.lat,
    h.quality, h.to_grid_id, h.to_code, h.to_village, coalesce(h.to_town, t.code),
    t.county_code, n.member_id, n.unit_id, n.distance,
    to_timestamp(s.occurred), to_timestamp(s.reported), to_timestamp(nullif(s.assigned, -1)),
    to_timestamp(s.due), to_timestamp(nullif(s.resolved, -1)),
    to_timestamp(nullif(s.closed, -1)), to_timestamp(s.updated)
FROM sample_cases AS s
JOIN sample_points AS p ON p.id = s.id
JOIN sample_towns AS t ON t.idx = s.town
JOIN sample_categories AS k ON k.idx = s.category
JOIN sample_statuses AS st ON st.idx = s.status
JOIN sample_reporters AS r ON r.idx = s.reporter
JOIN sample_hits AS h ON h.incident_id = s.id
JOIN sample_nearest AS n ON n.id = s.id
LEFT JOIN regions AS v ON v.code = h.to_village
LEFT JOIN cameras AS cam ON cam.id = s.camera;
"""

# Actors: the reporter ("grid_member:<member id>", "camera:<code>", "hotline:12345",
# "citizen"), the town's command room, or the handling unit ("unit:<code>").
_INSERT_EVENTS = """
INSERT INTO incident_events (
    id, incident_id, at, actor, action, from_status, to_status, note, data
)
SELECT
    e.id, e.incident_id, to_timestamp(e.at),
    CASE st.actor
        WHEN 'reporter' THEN i.reporter_kind || coalesce(':' || i.reporter_id, '')
        WHEN 'unit' THEN 'unit:' || coalesce(u.code, 'unassigned')
        ELSE 'command_room:' || i.town_code
    END,
    st.action, st.from_status, st.to_status, st.note,
    CASE
        WHEN e.due >= 0 THEN jsonb_build_object('due_at', to_timestamp(e.due))
        WHEN st.action = 'assign' THEN jsonb_build_object('unit_id', i.unit_id)
        ELSE '{}'::jsonb
    END
FROM sample_events AS e
JOIN sample_steps AS st ON st.idx = e.step
JOIN incidents AS i ON i.id = e.incident_id
LEFT JOIN responder_units AS u ON u.id = i.unit_id;
"""


def _execute_script(session: Session, script: str) -> None:
    """Run a fixed multi-statement SQL script (no parameters), logging each statement's time."""
    with bulk.driver_connection(session).cursor() as cursor:
        for statement in script.split(";"):
            if statement.strip():
                started = time.perf_counter()
                cursor.execute(statement)
                log.debug(
                    "%.2fs %s", time.perf_counter() - started, " ".join(statement.split())[:70]
                )


def _load_cases(session: Session, cases: Cases, plan: Plan, bars: _Progress) -> int:
    """COPY the cases, assign grid, member and unit in SQL, then write the event log."""
    bar = bars.bar("sample: loading cases", 8)
    _execute_script(session, _STAGING)
    bulk.copy_rows(
        session,
        "sample_towns",
        ("idx", "code", "county_code"),
        ((t.index, t.code, t.county_code) for t in plan.towns),
    )
    catalog = read_catalog()
    bulk.copy_rows(
        session,
        "sample_categories",
        ("idx", "code", "platform", "unit_type", "name_zh"),
        (
            (i, c["code"], c["platform"], c["unit_type"], c["name_zh"])
            for i, c in enumerate(catalog)
        ),
    )
    bulk.copy_rows(session, "sample_statuses", ("idx", "status"), enumerate(STATUSES))
    bulk.copy_rows(
        session,
        "sample_reporters",
        ("idx", "kind"),
        ((i, r.value) for i, r in enumerate(REPORTERS)),
    )
    bulk.copy_rows(
        session,
        "sample_steps",
        ("idx", "action", "from_status", "to_status", "actor", "note"),
        ((i, s.action, s.from_status, s.to_status, s.actor, s.note) for i, s in enumerate(STEPS)),
    )
    ids = np.arange(1, len(cases) + 1, dtype=np.int64)
    bulk.copy_arrays(
        session,
        "sample_cases",
        {
            "id": ids,
            "town": cases.town.astype(np.int32),
            "category": cases.category.astype(np.int16),
            "reporter": cases.reporter.astype(np.int16),
            "camera": cases.camera.astype(np.int32),
            "lon": cases.lon,
            "lat": cases.lat,
            "occurred": cases.occurred,
            "reported": cases.reported,
            "assigned": cases.assigned,
            "due": cases.due,
            "resolved": cases.resolved,
            "closed": cases.closed,
            "updated": cases.updated,
            "status": cases.status.astype(np.int16),
        },
    )
    bar.update()
    assign_cases(session, bar)
    if len(cases.event_at):
        # The history's months get their partitions first: rows go straight into them rather
        # than into the default partition (docs/partitioning.md).
        ensure_partitions(
            session,
            first=Month.of(datetime.fromtimestamp(int(cases.event_at.min()), UTC)),
            last=Month.of(datetime.fromtimestamp(int(cases.event_at.max()), UTC)),
        )
    with _bulk_mode(session, ("incidents", "incident_events")):
        _execute_script(session, _INSERT_INCIDENTS)
        bar.update()
        bulk.copy_arrays(
            session,
            "sample_events",
            {
                # Event ids in case-then-step order, set here so they never depend on a plan.
                "id": np.arange(1, len(cases.event_case) + 1, dtype=np.int64),
                "incident_id": ids[cases.event_case],
                "step": cases.event_step.astype(np.int16),
                "at": cases.event_at,
                "due": cases.event_due,
            },
        )
        bar.update()
        _execute_script(session, "ANALYZE sample_events; ANALYZE incidents;" + _INSERT_EVENTS)
        bar.update()
    bar.update()
    bar.close()
    _execute_script(
        session,
        "DROP TABLE sample_cases, sample_events, sample_towns, sample_categories, "
        "sample_statuses, sample_reporters, sample_steps, sample_points, sample_hits, "
        "sample_nearest",
    )
    return len(cases.event_case)


def assign_cases(session: Session, bar: tqdm[Any] | None = None) -> None:
    """Place the staged cases (``sample_cases``) by the rules of every path: temp tables
    ``sample_hits`` (grid, quality: ``gis.services.assignment.place_points``, grids outer) and
    ``sample_nearest`` (unit: ``unit_choice``, as intake)."""
    _execute_script(session, _POINTS)
    place_points(
        session,
        "sample_points",
        into="sample_hits",
        params={"snap_m": DEFAULT_SNAP_M},
        grids_first=True,
    )
    if bar is not None:
        bar.update(2)
    _execute_script(session, _NEAREST)
    if bar is not None:
        bar.update()


@contextmanager
def _bulk_mode(session: Session, tables: tuple[str, ...]) -> Iterator[None]:
    """Drop the tables' secondary indexes and foreign keys, and put them back afterwards.

    PostgreSQL's advice for populating a table: building an index once over the loaded rows
    beats updating it per row (two GiST indexes on incidents), and one validating join per
    foreign key beats a trigger lookup per row (7M+ events at K=100). Definitions are read
    from the catalog, so whatever the migrations created comes back exactly.
    """
    saved: list[tuple[str, str, str, str]] = []  # (kind, table, name, definition)
    with bulk.driver_connection(session).cursor() as cursor:
        # A year of generated history is not news: the live feed's triggers skip it.
        cursor.execute("SET LOCAL gis.live = 'off'")
        for table in tables:
            for name, definition in cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
                (table,),
            ).fetchall():
                saved.append(("fk", table, name, definition))
            for name, definition in cursor.execute(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index AS i "
                "JOIN pg_class AS c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = %s::regclass AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid) "
                "ORDER BY c.relname",
                (table,),
            ).fetchall():
                saved.append(("index", table, name, definition))
        for kind, table, name, _ in saved:
            if kind == "fk":
                cursor.execute(
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        sql.Identifier(table), sql.Identifier(name)
                    )
                )
            else:
                cursor.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    yield
    with bulk.driver_connection(session).cursor() as cursor:
        for kind, table, name, definition in saved:
            started = time.perf_counter()
            if kind == "index":
                # An index of a partitioned table reads back "ON ONLY" (its partitions' indexes
                # were dropped with it): create it on the partitions too.
                cursor.execute(sql.SQL(definition.replace(" ON ONLY ", " ON ", 1)))
            else:
                cursor.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
                        sql.Identifier(table), sql.Identifier(name)
                    )
                    + sql.SQL(definition)
                )
            log.debug("%.2fs restore %s %s", time.perf_counter() - started, kind, name)


def _finish(session: Session) -> None:
    """Move every id sequence past the explicit ids, and refresh planner statistics."""
    with bulk.driver_connection(session).cursor() as cursor:
        for table in ID_TABLES:
            cursor.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({table_name}, 'id'), "
                    "coalesce(max(id), 0) + 1, false) FROM {table}"
                ).format(table_name=sql.Literal(table), table=sql.Identifier(table))
            )
        # incidents and incident_events were analyzed while loading; again would cost seconds
        # (statistics of the geography expression index) for nothing autovacuum will not do.
        for table in LAYER_TABLES[2:]:
            started = time.perf_counter()
            cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
            log.debug("%.2fs ANALYZE %s", time.perf_counter() - started, table)
