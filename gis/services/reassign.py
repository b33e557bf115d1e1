"""Set-based re-assignment of cases to the grids in force now, after a redraw or a reload.

Why set-based: computing the new grid of every case in one ``CREATE TABLE AS`` with the grids
as the outer side of the join (each polygon probes the cases' GiST index once, with GEOS'
prepared-geometry cache warm) is an order of magnitude faster than one row at a time or an
``UPDATE … FROM`` doing the join in place (numbers: docs/architecture.md). The write-back is then
a keyed ``UPDATE`` on the primary key of the rows that really changed. The grid rule itself is
``gis.services.assignment.place_points``, shared with the demo loader.

Rules:
- Only unfinished cases move (status not closed/cancelled/duplicate). Historic cases keep their
  grid; on request their would-be grid is computed for analysis and reported, never written.
- A point covered by several grids (a shared edge) goes to the lowest code and is ``on_edge``; a
  point outside every grid but within ``GIS_SNAP_METERS`` goes to the nearest one (``snapped``);
  farther out it loses its grid (``outside``: the town's unassigned queue) — it is not dropped.
- Every case whose grid *code* changes gets a ``reassign_grid`` event with from/to in ``data``;
  its status is unchanged. A case whose code stays but whose grid version changed keeps its
  ``grid_id`` (the version it was assigned to, DESIGN §3) and is not written at all: counted as
  ``version_only``. Rewriting those rows was 75 % of a county reload's write (docs/bench-plans.md).

The write-back reads a staging table (``compute_assignments`` fills it with a ``CREATE TABLE
AS`` join in PostGIS; the Dask path, ``gis.services.bulk``, COPYs its partitions into it) and
writes in **one statement**: an ``UPDATE … FROM`` the staging table of only the rows whose grid
code, village, town or location quality really changes, and still have the grid and an
unfinished status the join saw (a case closed or moved by someone else meanwhile is left
alone), ``RETURNING`` the rows that feed the events of the same statement. Intake is never
blocked (an ``INSERT`` does not conflict with the row locks); the moved rows are locked from
this statement until the caller commits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import ValidationError
from gis.layers.base import utcnow
from gis.layers.incidents import FINAL_STATUSES
from gis.layers.live import EventType
from gis.services import assignment
from gis.settings import DEFAULT_SNAP_M

REASSIGN_ACTION = "reassign_grid"
# Above this many moved cases a write-back publishes one ``cases.moved`` feed event per town
# (its screens reload) instead of one per case: a subscriber falling ``GIS_LIVE_QUEUE`` (2,000)
# events behind is sent ``reload`` anyway, and the per-case feed rows cost a fifth of a county's
# write-back (docs/bench-plans.md). A village redraw (~1,000 cases) keeps its per-case events.
LIVE_PER_CASE_MAX = 1_000
# The towns a bulk write-back's moved cases entered or left, one feed event each with how many
# of its cases moved (the tail of ``write_back``'s statement, reading its ``changed`` rows). The
# town left is the old grid's; ``OFFSET 0`` keeps the planner from probing the grids' index once
# per moved case (it estimates ``changed`` at a few rows): one hash of the grids instead.
_TOWN_SUMMARY = """
INSERT INTO live_events (type, town_code, data)
SELECT :type, t.town_code,
       jsonb_build_object('action', :action, 'moved', count(*), 'reason', :reason,
                          'plan_id', CAST(:plan_id AS integer))
  FROM (SELECT c.town_code FROM changed c WHERE c.to_code IS DISTINCT FROM c.from_code
        UNION ALL
        SELECT g.town_code
          FROM changed c JOIN (SELECT id, town_code FROM grids OFFSET 0) g ON g.id = c.from_grid_id
         WHERE c.to_code IS DISTINCT FROM c.from_code
           AND g.town_code IS DISTINCT FROM c.town_code) t
 WHERE t.town_code IS NOT NULL
 GROUP BY t.town_code
 ORDER BY t.town_code
"""
_FINAL = sorted(status.value for status in FINAL_STATUSES)
# Table names are interpolated into SQL (identifiers cannot be bound), so they must match this.
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass
class ReassignResult:
    """What a re-assignment found and changed."""

    considered: int = 0
    moved: int = 0
    version_only: int = 0
    snapped: int = 0
    unassigned: int = 0
    historic_considered: int = 0
    historic_would_move: int = 0
    moves: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class CaseScope:
    """Which cases to consider: all, or those in an area / with one of some grid codes."""

    area_wkb: bytes | None = None
    grid_codes: Sequence[str] = ()

    @property
    def everything(self) -> bool:
        """True when no filter applies (the county-wide reload)."""
        return self.area_wkb is None and not self.grid_codes


def _case_filter(scope: CaseScope, alias: str) -> str:
    """SQL predicate selecting the cases of ``scope`` (parameters ``area``, ``codes``)."""
    if scope.everything:
        return "TRUE"
    # A UNION of two index scans (GiST on geom, btree on grid_code), not an OR, which would
    # defeat both indexes and scan every case of the county for a one-village redraw.
    parts = []
    if scope.area_wkb is not None:
        parts.append(
            "SELECT id FROM incidents WHERE ST_Intersects(geom, ST_GeomFromWKB(:area, 4326))"
        )
    if scope.grid_codes:
        parts.append("SELECT id FROM incidents WHERE grid_code = ANY(:codes)")
    return f"{alias}.id IN ({' UNION '.join(parts)})"


def _no_jit(session: Session) -> None:
    """Tune this transaction for a few big statements: JIT off (compiling them costs more than
    it saves, see docs/architecture.md) and enough sort memory that the DISTINCT ON of a
    county's cases does not spill to disk."""
    session.execute(sa.text("SELECT set_config('jit', 'off', true)"))
    session.execute(sa.text("SELECT set_config('work_mem', '256MB', true)"))


def compute_assignments(
    session: Session,
    *,
    scope: CaseScope = CaseScope(),
    include_historic: bool = False,
    snap_m: float = DEFAULT_SNAP_M,
    table: str = "reassign_moves",
) -> int:
    """Fill temp table ``table`` with every in-scope case's grid under the current grids.

    Columns: incident_id, status, is_open, from_grid_id, from_code, from_member, to_grid_id,
    to_code, to_village, to_town, quality, snap_distance_m, to_member. Returns the number of
    rows. The grid rule is ``gis.services.assignment``'s (``place_points``).
    """
    if not _TABLE_NAME.match(table):
        raise ValidationError(f"table name {table!r} must be lower-case letters, digits and _")
    status_filter = "" if include_historic else "AND i.status <> ALL(:final)"
    _no_jit(session)
    session.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    session.execute(sa.text(f"DROP TABLE IF EXISTS {table}_scope"))
    params = {
        "final": _FINAL,
        "area": scope.area_wkb,
        "codes": list(scope.grid_codes),
        "snap_m": snap_m,
    }
    # The in-scope cases' points first, into a temp table with its own GiST index and real
    # statistics: the join then drives from whichever side is smaller (a village's few points,
    # or the county's grids each probing one index). Joined to the partitioned ``incidents``
    # directly, each grid would probe every month's index: 18.4 s instead of 8.6 s for 1M
    # cases and 100k grids, copy and index included (docs/bench-plans.md).
    session.execute(
        sa.text(
            f"CREATE TEMP TABLE {table}_scope ON COMMIT DROP AS "  # noqa: S608 -- constants
            "SELECT i.id, i.geom, i.status, (i.status <> ALL(:final)) AS is_open, "
            "i.grid_id AS from_grid_id, i.grid_code AS from_code, i.member_id AS from_member "
            f"FROM incidents AS i WHERE {_case_filter(scope, 'i')} {status_filter}"
        ),
        params,
    )
    session.execute(sa.text(f"CREATE INDEX ON {table}_scope USING gist (geom)"))
    session.execute(sa.text(f"ANALYZE {table}_scope"))
    points = f"(SELECT * FROM {table}_scope)"  # noqa: S608 -- constants only
    assignment.place_points(
        session,
        points,
        into=table,
        params=params,
        carry=("status", "is_open", "from_grid_id", "from_code", "from_member"),
    )
    session.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN to_member integer"))
    return _add_members(session, table)


def _add_members(session: Session, table: str) -> int:
    """Fill ``to_member`` (the member of the new grid) where the code changes; the row count."""
    session.execute(
        sa.text(
            f"UPDATE {table} AS m SET to_member = {assignment.grid_member('m.to_code')} "  # noqa: S608
            "WHERE m.to_code IS DISTINCT FROM m.from_code"
        )
    )
    count_sql = f"SELECT count(*) FROM {table}"  # noqa: S608
    return int(session.execute(sa.text(count_sql)).scalar_one())


# The staging table's columns, in COPY order: what a join computed outside the database
# (gis.services.bulk) hands to the write-back. ``quality`` null: no grid covered the point,
# ``finish_stage`` snaps it (or not) by the one SQL rule.
STAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("incident_id", "bigint"),
    ("status", "varchar(20)"),
    ("is_open", "boolean"),
    ("from_grid_id", "integer"),
    ("from_code", "varchar(64)"),
    ("from_member", "integer"),
    ("to_grid_id", "integer"),
    ("to_code", "varchar(64)"),
    ("to_village", "varchar(12)"),
    ("to_town", "varchar(12)"),
    ("quality", "varchar(10)"),
    ("snap_distance_m", "float8"),
    ("to_member", "integer"),
)
STAGE_PREFIX = "reassign_stage"


def create_stage(session: Session, table: str = STAGE_PREFIX) -> str:
    """Create the (temporary, dropped at commit or rollback) staging table; its name."""
    if not _TABLE_NAME.match(table):
        raise ValidationError(f"table name {table!r} must be lower-case letters, digits and _")
    columns = ", ".join(f"{name} {kind}" for name, kind in STAGE_COLUMNS)
    session.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    session.execute(sa.text(f"CREATE TEMP TABLE {table} ({columns}) ON COMMIT DROP"))
    return table


def copy_into_stage(session: Session, table: str, rows_csv: str) -> None:
    """COPY rows (CSV in ``STAGE_COLUMNS`` order, ``\\N`` for null) into the staging table."""
    if not _TABLE_NAME.match(table):
        raise ValidationError(f"table name {table!r} must be lower-case letters, digits and _")
    raw = session.connection().connection.driver_connection
    assert raw is not None
    statement = f"COPY {table} FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(rows_csv)


def finish_stage(
    session: Session, *, table: str = STAGE_PREFIX, snap_m: float = DEFAULT_SNAP_M
) -> int:
    """Index the staged rows, snap the uncovered ones and add the new members; the row count.

    A staged row without ``quality`` had no covering grid: it gets the nearest grid within
    ``snap_m`` (``snapped``) or none (``outside``), by ``assignment.snapped_grid``.
    """
    if not _TABLE_NAME.match(table):
        raise ValidationError(f"table name {table!r} must be lower-case letters, digits and _")
    _no_jit(session)
    session.execute(sa.text(f"CREATE UNIQUE INDEX ON {table} (incident_id)"))
    session.execute(sa.text(f"ANALYZE {table}"))
    session.execute(
        sa.text(
            f"""
            UPDATE {table} AS m
               SET to_grid_id = n.id, to_code = n.code, to_village = n.village_code,
                   to_town = n.town_code, snap_distance_m = n.d,
                   quality = CASE WHEN n.id IS NULL THEN 'outside' ELSE 'snapped' END
              FROM incidents AS i
              LEFT JOIN LATERAL ({assignment.snapped_grid("i.geom", assignment.CURRENT)}) AS n
                ON TRUE
             WHERE m.quality IS NULL AND i.id = m.incident_id
            """  # noqa: S608 -- module constants only
        ),
        {"snap_m": snap_m},
    )
    return _add_members(session, table)


def write_back(
    session: Session,
    *,
    actor: str,
    reason: str,
    plan_id: int | None = None,
    now: datetime | None = None,
    table: str = "reassign_moves",
    keep_moves: int = 10_000,
) -> ReassignResult:
    """Apply the open cases' new grids from ``table``: one UPDATE of the rows whose grid code,
    village, town or location quality changes, with the events of those whose code changes."""
    if not _TABLE_NAME.match(table):
        raise ValidationError(f"table name {table!r} must be lower-case letters, digits and _")
    now = now or utcnow()
    _no_jit(session)
    result = ReassignResult()
    counts = session.execute(
        sa.text(
            f"""
            SELECT count(*) FILTER (WHERE is_open),
                   count(*) FILTER (WHERE is_open AND to_code IS DISTINCT FROM from_code),
                   count(*) FILTER (WHERE is_open AND to_code IS NOT DISTINCT FROM from_code
                                     AND to_grid_id IS DISTINCT FROM from_grid_id),
                   count(*) FILTER (WHERE is_open AND quality = 'snapped'),
                   count(*) FILTER (WHERE is_open AND to_grid_id IS NULL),
                   count(*) FILTER (WHERE NOT is_open),
                   count(*) FILTER (WHERE NOT is_open AND to_code IS DISTINCT FROM from_code)
              FROM {table}
            """  # noqa: S608
        )
    ).one()
    (
        result.considered,
        result.moved,
        result.version_only,
        result.snapped,
        result.unassigned,
        result.historic_considered,
        result.historic_would_move,
    ) = (int(value) for value in counts)
    rows = session.execute(
        sa.text(
            f"""
            SELECT incident_id, status, from_code, to_code, quality FROM {table}
             WHERE is_open AND to_code IS DISTINCT FROM from_code
             ORDER BY incident_id LIMIT :keep
            """  # noqa: S608
        ),
        {"keep": keep_moves},
    )
    result.moves = [
        {"incident_id": r[0], "status": r[1], "from": r[2], "to": r[3], "quality": r[4]}
        for r in rows
    ]
    summary = result.moved > LIVE_PER_CASE_MAX
    if summary:
        # The feed's per-case trigger off for this statement only (restored below): the
        # statement publishes one ``cases.moved`` per town instead.
        previous = session.execute(
            sa.text("SELECT current_setting('gis.live', true)")
        ).scalar_one_or_none()
        session.execute(sa.text("SELECT set_config('gis.live', 'off', true)"))
    # One statement: the rows really changing are updated, and the same rows (RETURNING) get
    # their events, so the two cannot disagree even when cases move or close meanwhile.
    session.execute(
        sa.text(
            f"""
            WITH changed AS (
                UPDATE incidents i
                   SET grid_id = CASE WHEN m.to_code IS DISTINCT FROM m.from_code
                                      THEN m.to_grid_id ELSE i.grid_id END,
                       grid_code = m.to_code,
                       village_code = COALESCE(m.to_village, i.village_code),
                       town_code = COALESCE(m.to_town, i.town_code),
                       member_id = CASE WHEN m.to_code IS DISTINCT FROM m.from_code
                                        THEN m.to_member ELSE i.member_id END,
                       location_quality = m.quality,
                       updated_at = :now
                  FROM {table} m
                 WHERE i.id = m.incident_id AND m.is_open
                   AND i.status <> ALL(:final)
                   AND i.grid_code IS NOT DISTINCT FROM m.from_code
                   AND (m.to_code IS DISTINCT FROM m.from_code
                        OR i.location_quality IS DISTINCT FROM m.quality
                        OR i.village_code IS DISTINCT FROM COALESCE(m.to_village, i.village_code)
                        OR i.town_code IS DISTINCT FROM COALESCE(m.to_town, i.town_code))
             RETURNING i.id, i.town_code, m.from_grid_id, m.status, m.from_code, m.to_code,
                       m.from_member, m.to_member, m.quality
            ), events AS (
            INSERT INTO incident_events
                   (incident_id, at, actor, action, from_status, to_status, note, data)
            SELECT c.id, :now, :actor, :action, c.status, c.status, :reason,
                   jsonb_build_object('from_grid', c.from_code, 'to_grid', c.to_code,
                                      'from_member', c.from_member, 'to_member', c.to_member,
                                      'quality', c.quality, 'plan_id', CAST(:plan_id AS integer))
              FROM changed c
             WHERE c.to_code IS DISTINCT FROM c.from_code
            )
            {_TOWN_SUMMARY if summary else "SELECT 1"}
            """  # noqa: S608
        ),
        {
            "now": now,
            "actor": actor,
            "action": REASSIGN_ACTION,
            "reason": reason,
            "plan_id": plan_id,
            "final": _FINAL,
            "type": EventType.CASES_MOVED.value,
        },
    )
    if summary:
        session.execute(
            sa.text("SELECT set_config('gis.live', :previous, true)"), {"previous": previous or ""}
        )
    return result


def reassign_cases(
    session: Session,
    *,
    actor: str,
    reason: str,
    scope: CaseScope = CaseScope(),
    include_historic: bool = False,
    snap_m: float = DEFAULT_SNAP_M,
    plan_id: int | None = None,
    now: datetime | None = None,
) -> ReassignResult:
    """Re-assign the in-scope open cases to the grids in force now (set-based); never commits."""
    compute_assignments(session, scope=scope, include_historic=include_historic, snap_m=snap_m)
    return write_back(session, actor=actor, reason=reason, plan_id=plan_id, now=now)


def keep_analysis_table(session: Session, name: str, *, table: str = "reassign_moves") -> int:
    """Copy the computed assignments (historic included) into a real table for analysis."""
    if not _TABLE_NAME.match(name) or name in {"incidents", "grids", "plans", "regions"}:
        raise ValidationError(
            f"analysis table name {name!r} must be a new lower-case identifier (letters, digits, _)"
        )
    if session.execute(sa.select(sa.func.to_regclass(name))).scalar_one() is not None:
        raise ValidationError(f"table {name!r} exists already; choose a new name or drop it")
    session.execute(sa.text(f"CREATE TABLE {name} AS SELECT * FROM {table}"))  # noqa: S608
    return int(session.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())  # noqa: S608
