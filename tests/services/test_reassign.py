"""Set-based re-assignment: open cases follow the grids in force, historic ones keep theirs."""

from __future__ import annotations

from datetime import datetime

import pytest
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy.orm import Session

from gis.errors import ValidationError
from gis.layers.grids import Grid
from gis.layers.incidents import Incident, IncidentEvent
from gis.services import reassign
from tests.conftest import Cli
from tests.services.planfixtures import (
    EAST,
    MID,
    NORTH,
    SOUTH,
    WEST,
    Village,
    add_case,
    make_village,
)

T1 = datetime.fromisoformat("2026-11-10T00:00:00+00:00")
AREA = shapely.to_wkb(box(WEST - 0.01, SOUTH - 0.01, EAST + 0.01, NORTH + 0.01))


@pytest.fixture
def village(session: Session, catalog: int) -> Village:
    """The hand-made village."""
    return make_village(session)


def _redraw(
    session: Session, village: Village, cuts: dict[str, tuple[float, float]]
) -> dict[str, Grid]:
    """Retire the current grids and put in vertical strips {code: (west, east)} from T1."""
    for grid in session.scalars(
        sa.select(Grid).where(Grid.village_code == village.village, Grid.valid_to.is_(None))
    ):
        grid.valid_to = T1
    session.flush()
    new = {}
    for code, (west, east) in cuts.items():
        version = 1 + int(
            session.scalar(
                sa.select(sa.func.coalesce(sa.func.max(Grid.version), 0)).where(Grid.code == code)
            )
            or 0
        )
        grid = Grid(
            code=code,
            version=version,
            name=code,
            village_code=village.village,
            town_code=village.town,
            geom=from_shape(MultiPolygon([box(west, SOUTH, east, NORTH)]), srid=4326),
            valid_from=T1,
            created_by="test",
        )
        session.add(grid)
        new[code] = grid
    session.flush()
    return new


def _incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    assert incident is not None
    session.refresh(incident)
    return incident


def test_open_cases_follow_new_grids_and_historic_cases_keep_theirs(
    session: Session, village: Village
) -> None:
    # The west grid shrinks to the western 0.003°; the east grid takes the rest.
    old_west = _incident(session, village.cases["open_west_staying"]).grid_id
    new = _redraw(
        session, village, {village.west: (WEST, WEST + 0.003), village.east: (WEST + 0.003, EAST)}
    )
    result = reassign.reassign_cases(
        session, actor="tester", reason="reload", scope=reassign.CaseScope(area_wkb=AREA), now=T1
    )
    assert result.considered == 3  # the closed case is not considered
    assert result.moved == 1 and result.version_only == 2
    moved = _incident(session, village.cases["open_west_moving"])
    assert (moved.grid_code, moved.grid_id) == (village.east, new[village.east].id)
    assert moved.member_id == village.member_e and moved.status == "assigned"
    stayed = _incident(session, village.cases["open_west_staying"])
    # Same code, new version: not rewritten, the case keeps the version it was assigned to.
    assert (stayed.grid_code, stayed.grid_id) == (village.west, old_west)
    assert stayed.grid_id != new[village.west].id
    closed = _incident(session, village.cases["closed_west_moving"])
    assert closed.grid_code == village.west and closed.grid_id != new[village.west].id
    events = session.scalars(
        sa.select(IncidentEvent).where(
            IncidentEvent.incident_id.in_(village.cases.values()),
            IncidentEvent.action == reassign.REASSIGN_ACTION,
        )
    ).all()
    assert [(e.incident_id, e.data["from_grid"], e.data["to_grid"]) for e in events] == [
        (moved.id, village.west, village.east)
    ]
    assert events[0].data["to_member"] == village.member_e and events[0].actor == "tester"


def test_point_on_a_shared_edge_goes_to_the_lowest_code(session: Session, village: Village) -> None:
    grids = {
        g.code: g
        for g in session.scalars(sa.select(Grid).where(Grid.village_code == village.village))
    }
    on_edge = add_case(session, MID, 28.905, "reported", grids[village.east], village.member_e)
    reassign.reassign_cases(session, actor="t", reason="r", scope=reassign.CaseScope(area_wkb=AREA))
    incident = _incident(session, on_edge)
    assert incident.grid_code == min(village.west, village.east)  # "…-E" < "…-W"
    assert incident.location_quality == "on_edge"


def test_points_outside_every_grid_snap_when_near_and_lose_their_grid_when_far(
    session: Session, village: Village
) -> None:
    grids = {
        g.code: g
        for g in session.scalars(sa.select(Grid).where(Grid.village_code == village.village))
    }
    # ≈ 20 m east of the village edge (inside the 50 m snap distance) and ≈ 480 m east.
    near = add_case(
        session, EAST + 0.0002, 28.905, "reported", grids[village.east], village.member_e
    )
    far = add_case(session, EAST + 0.005, 28.905, "reported", grids[village.east], village.member_e)
    result = reassign.reassign_cases(
        session, actor="t", reason="r", scope=reassign.CaseScope(area_wkb=AREA), snap_m=50.0
    )
    assert (_incident(session, near).grid_code, _incident(session, near).location_quality) == (
        village.east,
        "snapped",
    )
    lost = _incident(session, far)
    assert (lost.grid_code, lost.grid_id, lost.location_quality) == (None, None, "outside")
    assert lost.town_code == village.town  # still in the town's unassigned queue
    assert result.snapped == 1 and result.unassigned == 1


def test_historic_cases_are_computed_for_analysis_but_never_written(
    session: Session, village: Village
) -> None:
    _redraw(
        session, village, {village.west: (WEST, WEST + 0.003), village.east: (WEST + 0.003, EAST)}
    )
    reassign.compute_assignments(
        session, scope=reassign.CaseScope(area_wkb=AREA), include_historic=True
    )
    kept = reassign.keep_analysis_table(session, "plans_test_analysis")
    assert kept == 4
    row = session.execute(
        sa.text(
            "SELECT from_code, to_code, is_open FROM plans_test_analysis WHERE incident_id = :i"
        ),
        {"i": village.cases["closed_west_moving"]},
    ).one()
    assert (row.from_code, row.to_code, row.is_open) == (village.west, village.east, False)
    result = reassign.write_back(session, actor="t", reason="r")
    assert result.historic_would_move == 1 and result.moved == 1
    assert _incident(session, village.cases["closed_west_moving"]).grid_code == village.west
    with pytest.raises(ValidationError, match="exists already"):
        reassign.keep_analysis_table(session, "plans_test_analysis")
    with pytest.raises(ValidationError, match="lower-case"):
        reassign.keep_analysis_table(session, "incidents; DROP TABLE grids")


def test_point_inside_after_snap_is_marked_inside_again(session: Session, village: Village) -> None:
    grids = {
        g.code: g
        for g in session.scalars(sa.select(Grid).where(Grid.village_code == village.village))
    }
    incident_id = add_case(
        session, 118.8095, 28.905, "reported", grids[village.east], village.member_e
    )
    session.execute(
        sa.update(Incident).where(Incident.id == incident_id).values(location_quality="snapped")
    )
    reassign.reassign_cases(session, actor="t", reason="r", scope=reassign.CaseScope(area_wkb=AREA))
    assert _incident(session, incident_id).location_quality == "inside"
    assert Point(118.8095, 28.905).within(box(MID, SOUTH, EAST, NORTH))


def test_cli_reassign_is_a_dry_run_unless_commit(cli: Cli) -> None:
    result = cli("reassign")
    assert result.exit_code == 0, result.output
    assert "open cases" in result.output and "dry run" in result.output
    bad = cli("reassign", "--town", "999999999999")
    assert bad.exit_code == 2 and "no town" in bad.output


def test_a_resolved_case_is_open_and_follows_its_grid(session: Session, village: Village) -> None:
    # Resolved (awaiting verification) is open, not final: it moves like any open case.
    resolved = _incident(session, village.cases["open_west_moving"])
    resolved.status = "resolved"
    session.flush()
    _redraw(
        session, village, {village.west: (WEST, WEST + 0.003), village.east: (WEST + 0.003, EAST)}
    )
    result = reassign.reassign_cases(
        session, actor="tester", reason="reload", scope=reassign.CaseScope(area_wkb=AREA), now=T1
    )
    assert (result.considered, result.moved) == (3, 1)
    moved = _incident(session, resolved.id)
    assert (moved.grid_code, moved.status) == (village.east, "resolved")


def _feed_after(session: Session, after: int) -> list[tuple[str, str | None, dict[str, object]]]:
    """(type, town, data) of the feed rows written after id ``after`` in this transaction."""
    rows = session.execute(
        sa.text("SELECT type, town_code, data FROM live_events WHERE id > :a ORDER BY id"),
        {"a": after},
    ).all()
    return [(r.type, r.town_code, r.data) for r in rows]


def _newest_feed_id(session: Session) -> int:
    return int(session.scalar(sa.text("SELECT coalesce(max(id), 0) FROM live_events")) or 0)


def test_a_small_write_back_publishes_each_moved_case(session: Session, village: Village) -> None:
    _redraw(
        session, village, {village.west: (WEST, WEST + 0.003), village.east: (WEST + 0.003, EAST)}
    )
    start = _newest_feed_id(session)
    result = reassign.reassign_cases(
        session, actor="t", reason="r", scope=reassign.CaseScope(area_wkb=AREA), now=T1
    )
    assert result.moved == 1 <= reassign.LIVE_PER_CASE_MAX
    ((kind, town, data),) = _feed_after(session, start)
    assert (kind, town) == ("case.status", village.town)
    assert (data["action"], data["incident_id"]) == (
        reassign.REASSIGN_ACTION,
        village.cases["open_west_moving"],
    )


def test_a_bulk_write_back_logs_every_move_and_tells_each_town_once(
    session: Session, village: Village, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A second moving case, so that the town's one feed event stands for two moves.
    grids = {
        g.code: g
        for g in session.scalars(sa.select(Grid).where(Grid.village_code == village.village))
    }
    second = add_case(session, 118.8045, 28.9055, "assigned", grids[village.west], village.member_w)
    monkeypatch.setattr(reassign, "LIVE_PER_CASE_MAX", 1)  # two moves make it a bulk job
    _redraw(
        session, village, {village.west: (WEST, WEST + 0.003), village.east: (WEST + 0.003, EAST)}
    )
    start = _newest_feed_id(session)
    result = reassign.reassign_cases(
        session, actor="bulk", reason="reload", scope=reassign.CaseScope(area_wkb=AREA), now=T1
    )
    moved = sorted([village.cases["open_west_moving"], second])
    assert result.moved == 2
    # History: one event per moved case, as always.
    logged = session.scalars(
        sa.select(IncidentEvent.incident_id)
        .where(IncidentEvent.action == reassign.REASSIGN_ACTION, IncidentEvent.actor == "bulk")
        .order_by(IncidentEvent.incident_id)
    ).all()
    assert logged == moved
    # The feed: no row per case, one for the town, saying how many moved.
    assert _feed_after(session, start) == [
        (
            "cases.moved",
            village.town,
            {"action": reassign.REASSIGN_ACTION, "moved": 2, "reason": "reload", "plan_id": None},
        )
    ]
    # The per-case trigger is on again for the rest of the transaction.
    from gis.services.workflow import apply_action

    staying = village.cases["open_west_staying"]
    start = _newest_feed_id(session)
    apply_action(session, staying, "resolve", actor="t", now=datetime.now(T1.tzinfo))
    assert [(kind, data["incident_id"]) for kind, _, data in _feed_after(session, start)] == [
        ("case.status", staying)
    ]


def test_a_bulk_write_back_that_fails_leaves_nothing(
    session: Session, village: Village, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reassign, "LIVE_PER_CASE_MAX", 0)
    _redraw(
        session, village, {village.west: (WEST, WEST + 0.003), village.east: (WEST + 0.003, EAST)}
    )
    before = _incident(session, village.cases["open_west_moving"]).grid_code
    start = _newest_feed_id(session)
    reassign.compute_assignments(session, scope=reassign.CaseScope(area_wkb=AREA))
    # A staged row pointing at a grid that does not exist: the foreign key refuses the statement.
    session.execute(
        sa.text(
            "UPDATE reassign_moves SET to_grid_id = -1 WHERE to_code IS DISTINCT FROM from_code"
        )
    )
    savepoint = session.begin_nested()
    with pytest.raises(sa.exc.IntegrityError, match="fk_incidents_grid_id_grids"):
        reassign.write_back(session, actor="bulk", reason="r")
    savepoint.rollback()
    assert _incident(session, village.cases["open_west_moving"]).grid_code == before
    assert _feed_after(session, start) == []
    assert not session.scalar(
        sa.select(sa.func.count()).select_from(IncidentEvent).where(IncidentEvent.actor == "bulk")
    )
