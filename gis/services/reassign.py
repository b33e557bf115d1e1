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
  its status is unchanged. A case whose code stays but whose grid version changed only has its
  ``grid_id`` updated (no event: nothing changed for the people handling it).
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
from gis.services import assignment

REASSIGN_ACTION = "reassign_grid"
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
    snap_m: float = 50.0,
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
    cases = "incidents AS i"
    if not scope.everything:
        # A scope (one village): collect its cases first, with real statistics, so the planner
        # drives the join from those few points instead of probing with every grid.
        collect = (
            f"CREATE TEMP TABLE {table}_scope ON COMMIT DROP AS "  # noqa: S608
            f"SELECT i.id FROM incidents i WHERE {_case_filter(scope, 'i')} {status_filter}"
        )
        session.execute(sa.text(collect), params)
        session.execute(sa.text(f"ANALYZE {table}_scope"))
        cases = f"{table}_scope AS s JOIN incidents AS i ON i.id = s.id"
    # County-wide, the grids are the outer side of the join, each current polygon probing the
    # cases' GiST index once (the planner picks this; bench/plans prints the plan).
    points = (
        "(SELECT i.id, i.geom, i.status, (i.status <> ALL(:final)) AS is_open, "  # noqa: S608 -- constants only
        "i.grid_id AS from_grid_id, i.grid_code AS from_code, i.member_id AS from_member "
        f"FROM {cases} WHERE TRUE {status_filter})"
    )
    assignment.place_points(
        session,
        points,
        into=table,
        params=params,
        carry=("status", "is_open", "from_grid_id", "from_code", "from_member"),
    )
    # The member of the new grid, only where the code changes (the others keep theirs).
    session.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN to_member integer"))
    session.execute(
        sa.text(
            f"UPDATE {table} AS m SET to_member = {assignment.grid_member('m.to_code')} "  # noqa: S608
            "WHERE m.to_code IS DISTINCT FROM m.from_code"
        )
    )
    count_sql = f"SELECT count(*) FROM {table}"  # noqa: S608
    return int(session.execute(sa.text(count_sql)).scalar_one())


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
    """Apply the open cases' new grids from ``table`` with one keyed UPDATE and their events."""
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
    # Events first, while the incident still shows where it came from.
    session.execute(
        sa.text(
            f"""
            INSERT INTO incident_events
                   (incident_id, at, actor, action, from_status, to_status, note, data)
            SELECT m.incident_id, :now, :actor, :action, m.status, m.status, :reason,
                   jsonb_build_object('from_grid', m.from_code, 'to_grid', m.to_code,
                                      'from_member', m.from_member, 'to_member', m.to_member,
                                      'quality', m.quality, 'plan_id', CAST(:plan_id AS integer))
              FROM {table} m
             WHERE m.is_open AND m.to_code IS DISTINCT FROM m.from_code
            """  # noqa: S608
        ),
        {
            "now": now,
            "actor": actor,
            "action": REASSIGN_ACTION,
            "reason": reason,
            "plan_id": plan_id,
        },
    )
    session.execute(
        sa.text(
            f"""
            UPDATE incidents i
               SET grid_id = m.to_grid_id,
                   grid_code = m.to_code,
                   village_code = COALESCE(m.to_village, i.village_code),
                   town_code = COALESCE(m.to_town, i.town_code),
                   member_id = CASE WHEN m.to_code IS DISTINCT FROM m.from_code
                                    THEN m.to_member ELSE i.member_id END,
                   location_quality = m.quality,
                   updated_at = :now
              FROM {table} m
             WHERE i.id = m.incident_id AND m.is_open
               AND (m.to_grid_id IS DISTINCT FROM m.from_grid_id
                    OR i.location_quality IS DISTINCT FROM m.quality)
            """  # noqa: S608
        ),
        {"now": now},
    )
    return result


def reassign_cases(
    session: Session,
    *,
    actor: str,
    reason: str,
    scope: CaseScope = CaseScope(),
    include_historic: bool = False,
    snap_m: float = 50.0,
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
