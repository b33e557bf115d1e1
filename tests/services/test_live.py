"""The live feed's triggers and rules, in the test's rolled-back transaction (the demo county
is committed once per session)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import BadRequestError, UnknownCodeError
from gis.layers.cameras import Camera, CameraStatus
from gis.layers.incidents import ACTIVE_STATUSES, Incident
from gis.layers.live import EventType
from gis.layers.units import ResponderUnit, UnitStatus
from gis.services import cameras, dispatch, live, sla
from gis.services.workflow import apply_action


def feed(session: Session, after: int) -> list[live.FeedEvent]:
    """The feed events written after id ``after`` (visible in this transaction)."""
    from gis.queries import run

    return run(session, live.events_after_flow(after, 1000))


def newest(session: Session) -> int:
    """The newest feed id."""
    return int(session.scalar(sa.text("SELECT coalesce(max(id), 0) FROM live_events")))


def test_the_demo_history_is_not_news(session: Session, demo: object) -> None:
    """``gis sample load`` turns the triggers off: a year of cases writes no feed events."""
    loaded = session.scalar(sa.text("SELECT count(*) FROM incident_events"))
    assert loaded > 10_000
    assert session.scalar(sa.text("SELECT count(*) FROM live_events")) < loaded / 100


def test_a_unit_that_moves_and_changes_state_is_published_in_its_town(
    session: Session, demo: object
) -> None:
    unit = session.scalars(
        sa.select(ResponderUnit)
        .where(ResponderUnit.status == UnitStatus.AVAILABLE.value)
        .order_by(ResponderUnit.id)
    ).first()
    assert unit is not None
    town = unit.jurisdiction_code
    lon, lat = session.execute(
        sa.text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p "
            "FROM regions WHERE code = :town) AS t"
        ),
        {"town": town},
    ).one()
    start = newest(session)
    dispatch.update_unit(session, unit.id, status=UnitStatus.BUSY, position=(lon, lat))
    events = feed(session, start)
    assert [e.type for e in events] == [EventType.UNIT_MOVED, EventType.UNIT_STATUS]
    assert {e.town_code for e in events} == {town}
    moved = json.loads(events[0].payload)
    assert moved["lon"] == pytest.approx(lon) and moved["unit_id"] == unit.id
    assert moved["status"] == "busy" and moved["id"] == events[0].id and moved["town"] == town


def test_a_camera_going_offline_is_published(session: Session, demo: object) -> None:
    camera = session.scalars(
        sa.select(Camera).where(Camera.status == CameraStatus.ONLINE.value).order_by(Camera.id)
    ).first()
    assert camera is not None
    start = newest(session)
    cameras.update_camera(session, camera.code, {"heading_deg": 10.0})
    assert feed(session, start) == []  # only the status is news
    cameras.update_camera(session, camera.code, {"status": "offline"})
    (event,) = feed(session, start)
    assert event.type == EventType.CAMERA_STATUS and event.town_code == camera.town_code
    assert json.loads(event.payload)["status"] == "offline"


def test_workflow_and_sweep_changes_are_published_with_the_new_state(
    session: Session, demo: object
) -> None:
    case = session.scalars(
        sa.select(Incident).where(Incident.status == "in_progress").order_by(Incident.id)
    ).first()
    assert case is not None
    start = newest(session)
    apply_action(session, case.id, "resolve", actor="test", now=datetime.now(UTC))
    (resolved,) = feed(session, start)
    data = json.loads(resolved.payload)
    assert resolved.type == EventType.CASE_STATUS and data["incident_id"] == case.id
    assert (data["action"], data["from_status"], data["status"]) == (
        "resolve",
        "in_progress",
        "resolved",
    )
    assert data["open"] is False and resolved.town_code == case.town_code
    # Every active case's deadline passed (the sweep runs on server time, never ahead of it:
    # the event log refuses future events): all flagged in one statement.
    session.execute(
        sa.update(Incident)
        .where(Incident.status.in_(sorted(ACTIVE_STATUSES)), Incident.overdue_at.is_(None))
        .values(due_at=datetime.now(UTC) - timedelta(hours=1))
    )
    start = newest(session)
    result = sla.sweep(session, now=datetime.now(UTC), escalate_after_hours=24 * 365)
    published = feed(session, start)
    overdue = [e for e in published if e.type == EventType.CASE_OVERDUE]
    escalated = [e for e in published if json.loads(e.payload)["action"] == "escalate"]
    assert len(overdue) == len(result.flagged_ids) > 0
    assert len(escalated) == len(result.escalated_ids)
    assert all(json.loads(e.payload)["overdue"] for e in overdue)
    assert [e.id for e in published] == sorted(e.id for e in published)


def test_filters_parse_or_say_what_is_known() -> None:
    assert live.parse_types("case.created, unit.moved") == {
        EventType.CASE_CREATED,
        EventType.UNIT_MOVED,
    }
    assert live.parse_types(None) is None
    with pytest.raises(UnknownCodeError, match=r"case\.teleported"):
        live.parse_types("case.teleported")
    assert live.parse_last_event_id("42") == 42
    for bad in ("abc", "-1", "1e3", "٣", "9" * 19):
        with pytest.raises(BadRequestError):
            live.parse_last_event_id(bad)


def test_delivery_stops_at_a_gap_until_it_is_settled() -> None:
    def events(*ids: int) -> list[live.FeedEvent]:
        return [live.FeedEvent(i, "camera.status", None, None, None, None, "{}") for i in ids]

    ready, gap = live.deliverable(events(5, 6, 8, 9), after=4, settled=4)
    assert [e.id for e in ready] == [5, 6] and gap
    ready, gap = live.deliverable(events(5, 6, 8, 9), after=4, settled=9)
    assert [e.id for e in ready] == [5, 6, 8, 9] and not gap
    ready, gap = live.deliverable(events(7, 9), after=4, settled=7)
    assert [e.id for e in ready] == [7] and gap


def test_a_writer_of_another_database_does_not_hold_the_feed_back(
    engine: sa.Engine, settings: object
) -> None:
    """pg_locks lists the whole server's locks: the feed's writers are those of its own
    database (a test worker or a staging copy beside it must not stall the hubs)."""
    from sqlalchemy.engine import make_url

    from gis.layers.live import LIVE_LOCK
    from gis.queries import run

    here = make_url(engine.url)
    elsewhere = sa.create_engine(here.set(database="postgres"))
    lock = sa.text("SELECT pg_advisory_xact_lock_shared(:a, :b)")
    try:
        with elsewhere.connect() as other, other.begin():
            other.execute(lock, {"a": LIVE_LOCK[0], "b": LIVE_LOCK[1]})
            with engine.connect() as mine, mine.begin():
                with Session(bind=mine) as session:
                    assert run(session, live.writers_flow()) == frozenset()
                with engine.connect() as writer, writer.begin():
                    writer.execute(lock, {"a": LIVE_LOCK[0], "b": LIVE_LOCK[1]})
                    with Session(bind=mine) as session:
                        assert len(run(session, live.writers_flow())) == 1
    finally:
        elsewhere.dispose()
