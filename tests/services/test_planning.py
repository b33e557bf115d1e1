"""Boundary plans: validation with geometries, balance, impact, and an all-or-nothing apply."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from shapely.geometry import Polygon, box, shape
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.db import translate_db_errors
from gis.errors import ConflictError
from gis.layers.grids import Grid, GridMemberGrid, list_grids
from gis.layers.incidents import Incident, IncidentEvent
from gis.layers.plans import GridChange, PlanScope, PlanStatus
from gis.services import planning
from gis.settings import Settings
from tests.services.planfixtures import (
    EAST,
    MID,
    NORTH,
    SOUTH,
    WEST,
    Village,
    collection,
    feature,
    make_village,
    thirds,
)

NOW = datetime.fromisoformat("2026-11-01T08:00:00+00:00")


@pytest.fixture
def village(session: Session, catalog: int) -> Village:
    """The hand-made village, inside the test's rolled-back transaction."""
    return make_village(session)


def _plan(
    session: Session, settings: Settings, village: Village, proposed: dict[str, Any], **kw: Any
) -> Any:
    token, _ = planning.scope_version(session, PlanScope.VILLAGE, village.village)
    return planning.create_plan(
        session,
        scope_level=PlanScope.VILLAGE,
        scope_code=village.village,
        proposed=proposed,
        based_on_version=token,
        actor="planner-zhao",
        settings=settings,
        now=NOW,
        **kw,
    )


def _issues(plan: Any, kind: str) -> list[dict[str, Any]]:
    return [i for i in plan.validation["issues"] if i["kind"] == kind]


def _same_area(geometry: dict[str, Any], expected: Any, tolerance_m2: float = 1.0) -> bool:
    """Whether a reported geometry is the expected shape (symmetric difference under 1 m²)."""
    return planning.area_m2(shape(geometry).symmetric_difference(expected)) < tolerance_m2


def test_valid_plan_has_no_errors_and_shows_moving_cases_cameras_and_balance(
    session: Session, settings: Settings, village: Village
) -> None:
    plan = _plan(session, settings, village, thirds(village))
    assert plan.validation["valid"], plan.validation["issues"]
    impact = plan.impact
    assert impact["grids"] == {
        "added": [f"{village.village}-M"],
        "retired": [],
        "changed": sorted([village.east, village.west]),
        "unchanged": [],
    }
    moves = {m["incident_id"]: (m["from"], m["to"]) for m in impact["moves"]}
    assert moves == {village.cases["open_west_moving"]: (village.west, f"{village.village}-M")}
    assert impact["historic_cases_keeping_grid"] == 1
    assert impact["cameras"][0]["from"] == village.west
    assert impact["cameras"][0]["to"] == f"{village.village}-M"
    by_code = {g["code"]: g for g in plan.balance["grids"]}
    assert by_code[f"{village.village}-M"]["households"] == 140
    assert by_code[f"{village.village}-M"]["cameras"] == 1
    assert by_code[f"{village.village}-M"]["incidents_12m"] == 2
    assert plan.balance["village_means"][village.village]["households"] == pytest.approx(
        400 / 3, abs=0.01
    )


def test_valid_plan_applies_new_versions_moves_open_cases_and_keeps_history(
    session: Session, settings: Settings, village: Village
) -> None:
    plan = _plan(session, settings, village, thirds(village, member=village.member_w))
    applied = planning.apply_plan(
        session, plan.id, actor="planner-zhao", settings=settings, now=NOW
    )
    assert applied.status == PlanStatus.APPLIED.value
    assert applied.applied_at == NOW

    current = {g.code: g for g in list_grids(session, village_code=village.village)}
    assert set(current) == {village.west, village.east, f"{village.village}-M"}
    assert current[village.west].version == 2 and current[village.east].version == 2
    assert current[f"{village.village}-M"].version == 1
    assert all(g.valid_from == NOW and g.created_by == "planner-zhao" for g in current.values())
    before = list_grids(session, village_code=village.village, at=NOW - timedelta(seconds=1))
    before_ids = {g.code: g.id for g in before}
    assert sorted((g.code, g.version, g.valid_to) for g in before) == sorted(
        [(village.west, 1, NOW), (village.east, 1, NOW)]
    )
    assert len(list_grids(session, village_code=village.village, at=NOW)) == 3

    moving = session.get(Incident, village.cases["open_west_moving"])
    assert moving is not None
    session.refresh(moving)
    assert moving.grid_code == f"{village.village}-M"
    assert moving.grid_id == current[f"{village.village}-M"].id
    assert moving.status == "assigned"
    assert moving.member_id == village.member_w
    event = session.scalars(
        sa.select(IncidentEvent).where(IncidentEvent.incident_id == moving.id)
    ).one()
    assert event.action == "reassign_grid"
    assert event.from_status == event.to_status == "assigned"
    assert event.data["from_grid"] == village.west
    assert event.data["to_grid"] == f"{village.village}-M"
    assert event.data["plan_id"] == plan.id

    staying = session.get(Incident, village.cases["open_west_staying"])
    assert staying is not None
    session.refresh(staying)
    # Same code, new version: the case keeps the version it was assigned to (not rewritten).
    assert (staying.grid_code, staying.grid_id) == (village.west, before_ids[village.west])
    closed = session.get(Incident, village.cases["closed_west_moving"])
    assert closed is not None
    session.refresh(closed)
    assert closed.grid_code == village.west and closed.grid_id != current[village.west].id

    # Members: the named member now serves all three grids; the other lost the east grid.
    links = set(
        session.execute(sa.select(GridMemberGrid.member_id, GridMemberGrid.grid_code)).all()
    )
    assert {(village.member_w, c) for c in current} <= links
    assert (village.member_e, village.east) not in links
    changes = session.scalars(
        sa.select(GridChange).where(GridChange.code == village.west).order_by(GridChange.id)
    ).all()
    assert [(c.change, c.version, c.actor) for c in changes] == [
        ("retired", 1, "planner-zhao"),
        ("created", 2, "planner-zhao"),
    ]


def test_applying_twice_or_after_the_grids_changed_is_a_conflict(
    session: Session, settings: Settings, village: Village
) -> None:
    first = _plan(session, settings, village, thirds(village))
    second = _plan(session, settings, village, thirds(village))
    planning.apply_plan(session, first.id, actor="a", settings=settings, now=NOW)
    with pytest.raises(ConflictError, match="only a draft"):
        planning.apply_plan(session, first.id, actor="a", settings=settings, now=NOW)
    # The other draft on the same base was superseded by the apply.
    session.refresh(second)
    assert second.status == PlanStatus.SUPERSEDED.value
    with pytest.raises(ConflictError, match="changed"):
        planning.create_plan(
            session,
            scope_level=PlanScope.VILLAGE,
            scope_code=village.village,
            proposed=thirds(village),
            based_on_version=first.based_on_version,
            actor="a",
            settings=settings,
        )


def test_overlap_is_reported_with_the_overlapping_strip(
    session: Session, settings: Settings, village: Village
) -> None:
    # West grid reaches 0.001° (≈ 97 m) into the east one.
    plan = _plan(
        session,
        settings,
        village,
        collection(
            feature(village.west, box(WEST, SOUTH, MID + 0.001, NORTH)),
            feature(village.east, box(MID, SOUTH, EAST, NORTH)),
        ),
    )
    (overlap,) = _issues(plan, "overlap")
    assert overlap["severity"] == "error"
    assert overlap["grids"] == sorted([village.west, village.east])
    expected = box(MID, SOUTH, MID + 0.001, NORTH)
    assert _same_area(overlap["geometry"], expected)
    assert overlap["area_m2"] == pytest.approx(planning.area_m2(expected), rel=1e-3)
    assert not plan.validation["valid"]


def test_overlap_within_the_tolerance_is_not_an_error(
    session: Session, settings: Settings, village: Village
) -> None:
    # A 5e-9° sliver (≈ 0.5 mm × 1.1 km ≈ 0.5 m²) is digitising noise, under the 1 m² default.
    plan = _plan(
        session,
        settings,
        village,
        collection(
            feature(village.west, box(WEST, SOUTH, MID + 5e-9, NORTH)),
            feature(village.east, box(MID, SOUTH, EAST, NORTH)),
        ),
    )
    assert not _issues(plan, "overlap")


def test_gap_is_reported_with_its_area_and_polygon(
    session: Session, settings: Settings, village: Village
) -> None:
    plan = _plan(
        session,
        settings,
        village,
        collection(
            feature(village.west, box(WEST, SOUTH, MID - 0.001, NORTH)),
            feature(village.east, box(MID, SOUTH, EAST, NORTH)),
        ),
    )
    (gap,) = _issues(plan, "gap")
    expected = box(MID - 0.001, SOUTH, MID, NORTH)
    assert gap["severity"] == "error" and gap["village"] == village.village
    assert _same_area(gap["geometry"], expected)
    assert gap["area_m2"] == pytest.approx(planning.area_m2(expected), rel=1e-3)


def test_grid_reaching_outside_its_village_is_reported_with_the_outside_part(
    session: Session, settings: Settings, village: Village
) -> None:
    plan = _plan(
        session,
        settings,
        village,
        collection(
            feature(village.west, box(WEST - 0.002, SOUTH, MID, NORTH)),
            feature(village.east, box(MID, SOUTH, EAST, NORTH)),
        ),
    )
    (outside,) = _issues(plan, "outside")
    assert outside["grids"] == [village.west]
    assert _same_area(outside["geometry"], box(WEST - 0.002, SOUTH, WEST, NORTH))


def test_multi_piece_grid_is_an_error_unless_allowed(
    session: Session, settings: Settings, village: Village
) -> None:
    # The east grid also claims a detached island in the west half.
    island = box(WEST + 0.001, SOUTH + 0.001, WEST + 0.002, SOUTH + 0.002)
    east = box(MID, SOUTH, EAST, NORTH).union(island)
    west = box(WEST, SOUTH, MID, NORTH).difference(island)
    proposal = collection(feature(village.west, west), feature(village.east, east))
    plan = _plan(session, settings, village, proposal)
    (piece,) = _issues(plan, "multi_piece")
    assert piece["severity"] == "error" and piece["grids"] == [village.east]
    assert piece["pieces"] == 2
    assert _same_area(piece["geometry"], island)
    allowed = _plan(session, settings, village, proposal, allow_multipart=True)
    (piece,) = _issues(allowed, "multi_piece")
    assert piece["severity"] == "warning"
    assert allowed.validation["valid"]


def test_self_intersecting_grid_is_repaired_and_the_repair_is_shown(
    session: Session, settings: Settings, village: Village
) -> None:
    # A "bow-tie" over the west half: the crossing edges make it invalid.
    bowtie = Polygon([(WEST, SOUTH), (MID, NORTH), (MID, SOUTH), (WEST, NORTH), (WEST, SOUTH)])
    plan = _plan(
        session,
        settings,
        village,
        collection(
            feature(village.west, bowtie), feature(village.east, box(MID, SOUTH, EAST, NORTH))
        ),
    )
    (repaired,) = _issues(plan, "repaired")
    assert repaired["severity"] == "warning"
    assert "Self-intersection" in repaired["reason"]
    assert shape(repaired["original"]).equals(bowtie)
    fixed = shape(repaired["geometry"])
    assert fixed.is_valid and len(fixed.geoms) == 2  # the two triangles of the tie
    # What the repair leaves is itself wrong here: two pieces and a gap where the tie narrows.
    assert _issues(plan, "multi_piece") and _issues(plan, "gap")


def test_grid_without_area_is_an_invalid_geometry_error(
    session: Session, settings: Settings, village: Village
) -> None:
    flat = Polygon([(WEST, SOUTH), (MID, SOUTH), (EAST, SOUTH), (WEST, SOUTH)])
    plan = _plan(
        session,
        settings,
        village,
        collection(
            feature(village.west, flat), feature(village.east, box(WEST, SOUTH, EAST, NORTH))
        ),
    )
    (invalid,) = _issues(plan, "invalid_geometry")
    assert invalid["severity"] == "error" and invalid["grids"] == [village.west]


def test_duplicate_and_taken_codes_are_errors(
    session: Session, settings: Settings, village: Village
) -> None:
    other = make_village(session, prefix="330899002")
    plan = _plan(
        session,
        settings,
        village,
        collection(
            feature(village.west, box(WEST, SOUTH, MID, NORTH)),
            feature(village.west, box(MID, SOUTH, EAST, 28.905)),
            feature(other.east, box(MID, 28.905, EAST, NORTH)),
        ),
    )
    assert _issues(plan, "duplicate_code")[0]["grids"] == [village.west]
    assert _issues(plan, "code_taken")[0]["grids"] == [other.east]


def test_unbalanced_grid_is_flagged_beyond_the_threshold(
    session: Session, settings: Settings, village: Village
) -> None:
    plan = _plan(
        session,
        settings,
        village,
        collection(
            feature(village.west, box(WEST, SOUTH, MID, NORTH), households=300),
            feature(village.east, box(MID, SOUTH, EAST, NORTH), households=100),
        ),
    )
    flagged = {g["code"]: g for g in plan.balance["grids"]}
    assert flagged[village.west]["deviation"]["households"] == pytest.approx(0.5)
    assert "households" in flagged[village.west]["flagged"]
    assert {i["grids"][0] for i in _issues(plan, "imbalanced")} == {village.west, village.east}
    assert plan.validation["valid"]  # imbalance warns, it does not block


def test_plan_with_errors_is_refused_at_apply(
    session: Session, settings: Settings, village: Village
) -> None:
    plan = _plan(
        session,
        settings,
        village,
        collection(feature(village.west, box(WEST, SOUTH, MID, NORTH))),
    )
    with pytest.raises(planning.PlanInvalidError, match="in no proposed grid"):
        planning.apply_plan(session, plan.id, actor="a", settings=settings, now=NOW)
    assert len(list_grids(session, village_code=village.village)) == 2


def test_unknown_member_is_an_error(session: Session, settings: Settings, village: Village) -> None:
    plan = _plan(session, settings, village, thirds(village, member=999_999))
    assert _issues(plan, "unknown_member")


def test_two_concurrent_applies_on_the_same_version_exactly_one_succeeds(
    engine: Engine, settings: Settings, catalog: int
) -> None:
    prefix = "330899077"
    with Session(engine) as setup:
        village = make_village(setup, prefix=prefix)
        token, _ = planning.scope_version(setup, PlanScope.VILLAGE, village.village)
        plans = [
            planning.create_plan(
                setup,
                scope_level=PlanScope.VILLAGE,
                scope_code=village.village,
                proposed=thirds(village),
                based_on_version=token,
                actor=f"planner-{n}",
                settings=settings,
            ).id
            for n in range(2)
        ]
        setup.commit()
    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def apply(plan_id: int) -> None:
        with Session(engine) as session:
            barrier.wait()
            try:
                planning.apply_plan(session, plan_id, actor="t", settings=settings)
                session.commit()
                outcomes[plan_id] = "applied"
            except ConflictError as error:
                session.rollback()
                outcomes[plan_id] = f"conflict: {error.detail}"

    try:
        threads = [threading.Thread(target=apply, args=(p,)) for p in plans]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(o.split(":")[0] for o in outcomes.values()) == ["applied", "conflict"]
        with Session(engine) as check:
            current = check.scalars(
                sa.select(Grid).where(Grid.village_code == village.village, Grid.valid_to.is_(None))
            ).all()
            assert len(current) == 3
    finally:
        _drop_village(engine, prefix)


def _drop_village(engine: Engine, prefix: str) -> None:
    """Remove the committed test village and everything that points at it."""
    like = {"p": f"{prefix}%"}
    with engine.begin() as connection:
        for statement in (
            "DELETE FROM incidents WHERE village_code LIKE :p",
            "DELETE FROM grid_member_grids WHERE grid_code LIKE :p",
            "DELETE FROM grid_members WHERE town_code LIKE :p",
            "DELETE FROM cameras WHERE town_code LIKE :p",
            "DELETE FROM grid_changes WHERE code LIKE :p",
            "DELETE FROM plans WHERE scope_code LIKE :p",
            "DELETE FROM grids WHERE village_code LIKE :p",
            "DELETE FROM regions WHERE code LIKE :p AND level = 'village'",
            "DELETE FROM regions WHERE code LIKE :p",
        ):
            connection.execute(sa.text(statement), like)


def test_town_plan_redraws_every_village_and_places_grids_by_overlap(
    session: Session, settings: Settings, village: Village
) -> None:
    from geoalchemy2.shape import from_shape
    from shapely.geometry import MultiPolygon

    from gis.layers.regions import Region

    second = "330899001002"
    session.add(
        Region(
            code=second,
            name="二村",
            level="village",
            parent_code=village.town,
            geom=from_shape(MultiPolygon([box(EAST, SOUTH, EAST + 0.01, NORTH)]), srid=4326),
        )
    )
    session.flush()
    token, current = planning.scope_version(session, PlanScope.TOWN, village.town)
    assert {g.code for g in current} == {village.west, village.east}
    plan = planning.create_plan(
        session,
        scope_level=PlanScope.TOWN,
        scope_code=village.town,
        proposed=collection(
            feature(village.west, box(WEST, SOUTH, MID, NORTH)),
            feature(village.east, box(MID, SOUTH, EAST, NORTH)),
            feature(f"{second}-01", box(EAST, SOUTH, EAST + 0.01, NORTH), name="二村一格"),
        ),
        based_on_version=token,
        actor="planner-zhao",
        settings=settings,
        now=NOW,
    )
    assert plan.validation["valid"], plan.validation["issues"]
    # Unchanged grids (same shape; no name given keeps the current name) keep their version.
    assert plan.impact["grids"]["unchanged"] == sorted([village.east, village.west])
    planning.apply_plan(session, plan.id, actor="planner-zhao", settings=settings, now=NOW)
    new = session.scalars(sa.select(Grid).where(Grid.code == f"{second}-01")).one()
    assert (new.village_code, new.town_code, new.name) == (second, village.town, "二村一格")
    kept = session.scalars(sa.select(Grid).where(Grid.code == village.west)).one()
    assert (kept.version, kept.valid_to) == (1, None)


def test_merging_two_demo_grids_is_valid_and_moves_exactly_their_open_cases(
    session: Session, settings: Settings, demo: dict[str, object]
) -> None:
    from geoalchemy2.shape import to_shape
    from shapely.geometry import mapping

    from gis.layers.incidents import FINAL_STATUSES

    # A demo village with at least two grids: merge its first two into one.
    village_code = session.execute(
        sa.select(Grid.village_code)
        .where(Grid.valid_to.is_(None))
        .group_by(Grid.village_code)
        .having(sa.func.count() >= 2)
        .order_by(Grid.village_code)
        .limit(1)
    ).scalar_one()
    token, grids = planning.scope_version(session, PlanScope.VILLAGE, village_code)
    first, second, *rest = grids
    merged = to_shape(first.geom).union(to_shape(second.geom))
    features = [
        {
            "type": "Feature",
            "geometry": dict(mapping(merged)),
            "properties": {"code": first.code, "allow_multipart": True},
        }
    ] + [
        {
            "type": "Feature",
            "geometry": dict(mapping(to_shape(g.geom))),
            "properties": {"code": g.code},
        }
        for g in rest
    ]
    plan = planning.create_plan(
        session,
        scope_level=PlanScope.VILLAGE,
        scope_code=village_code,
        proposed={"type": "FeatureCollection", "features": features},
        based_on_version=token,
        actor="planner",
        settings=settings,
        now=NOW,
    )
    errors = [i for i in plan.validation["issues"] if i["severity"] == "error"]
    assert not errors, errors
    assert plan.impact["grids"]["retired"] == [second.code]
    assert plan.impact["grids"]["unchanged"] == sorted(g.code for g in rest)
    open_in_second = session.scalar(
        sa.select(sa.func.count())
        .select_from(Incident)
        .where(
            Incident.grid_code == second.code,
            Incident.status.not_in([s.value for s in FINAL_STATUSES]),
        )
    )
    moving = plan.impact["moves"]
    assert {m["to"] for m in moving} <= {first.code}
    assert len(moving) == open_in_second
    planning.apply_plan(session, plan.id, actor="planner", settings=settings, now=NOW)
    assert (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Incident)
            .where(
                Incident.grid_code == second.code,
                Incident.status.not_in([s.value for s in FINAL_STATUSES]),
            )
        )
        == 0
    )


def test_apply_waiting_too_long_for_a_concurrent_change_is_a_conflict(
    engine: Engine, settings: Settings, catalog: int
) -> None:
    prefix = "330899078"
    impatient = settings.model_copy(update={"plan_lock_timeout_s": 0.3})
    with Session(engine) as setup:
        village = make_village(setup, prefix=prefix)
        token, _ = planning.scope_version(setup, PlanScope.VILLAGE, village.village)
        plan_id = planning.create_plan(
            setup,
            scope_level=PlanScope.VILLAGE,
            scope_code=village.village,
            proposed=thirds(village),
            based_on_version=token,
            actor="p",
            settings=settings,
        ).id
        setup.commit()
    try:
        with Session(engine) as holder, Session(engine) as waiter:
            # Another change (an import, say) holds the village.
            holder.execute(
                sa.text("SELECT code FROM regions WHERE code = :c FOR UPDATE"),
                {"c": village.village},
            )
            # The lock timeout is translated where every SQLSTATE is (gis.db), as routes do.
            with pytest.raises(ConflictError, match="retry in a moment"), translate_db_errors():
                planning.apply_plan(waiter, plan_id, actor="p", settings=impatient)
            waiter.rollback()
            holder.rollback()
        with Session(engine) as check:
            assert len(list_grids(check, village_code=village.village)) == 2
    finally:
        _drop_village(engine, prefix)
