"""Intake: the saved case, its unit (属地管理), deadline, events, duplicates, idempotency."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from geoalchemy2.shape import from_shape
from pyproj import Geod
from shapely.geometry import Point
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.errors import (
    ConflictError,
    InvalidCoordinatesError,
    OutsideCoverageError,
    UnknownCodeError,
    UnknownCrsError,
    ValidationError,
)
from gis.layers.incidents import Incident, IncidentEvent, list_events
from gis.layers.units import ResponderUnit
from gis.services.intake import report_incident
from gis.settings import Settings
from tests.conftest import count
from tests.services.intake_fixtures import (
    COUNTY,
    GRID_B,
    TOWN_1,
    TOWN_2,
    Area,
    area,
    build_area,
    delete_area,
    make_report,
)

__all__ = ["area"]

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # a Friday, 10:00 in China


def test_report_in_a_grid_is_assigned_to_its_town_unit_not_a_nearer_one_next_door(
    session: Session, settings: Settings, area: Area
) -> None:
    # The point is in T1, 578 m from T2's police station and 1.35 km from T1's own.
    result = report_incident(session, make_report(110.015, 30.005), settings=settings, now=NOW)
    d = result.incident
    assert result.created
    assert (d.status, d.platform, d.grid_code, d.town_code) == (
        "assigned",
        "governance",
        GRID_B,
        TOWN_1,
    )
    assert d.unit_id == area.units["police_t1"]
    assert d.unit_distance_m == pytest.approx(
        Geod(ellps="WGS84").inv(110.001, 30.005, 110.015, 30.005)[2], abs=0.01
    )
    assert d.unit_note is None
    assert d.due_at == NOW + timedelta(hours=24)
    assert d.assigned_at == NOW and d.reported_at == NOW
    events = list_events(session, d.id)
    assert [(e.action, e.from_status, e.to_status) for e in events] == [
        ("report", None, "reported"),
        ("assign", "reported", "assigned"),
    ]
    assert events[0].actor == "citizen:13900000000"
    assert events[1].data == {"unit_id": d.unit_id, "distance_m": d.unit_distance_m}


def test_county_unit_takes_a_case_when_the_town_has_none(
    session: Session, settings: Settings, area: Area
) -> None:
    report = make_report(110.005, 30.005, category="traffic_accident")
    d = report_incident(session, report, settings=settings, now=NOW).incident
    assert d.unit_id == area.units["traffic_county"]
    assert d.unit_note is not None and "county unit" in d.unit_note


def test_nearest_unit_of_the_county_takes_a_case_when_town_and_county_have_none(
    session: Session, settings: Settings, area: Area
) -> None:
    report = make_report(110.005, 30.005, category="elderly_fraud_sales")
    d = report_incident(session, report, settings=settings, now=NOW).incident
    assert d.unit_id == area.units["market_t2"]
    assert d.unit_note is not None and f"county {COUNTY}" in d.unit_note


def test_busy_town_unit_is_skipped(session: Session, settings: Settings, area: Area) -> None:
    unit = session.get(ResponderUnit, area.units["police_t1"])
    assert unit is not None
    unit.status = "busy"
    session.flush()
    d = report_incident(session, make_report(110.015, 30.005), settings=settings).incident
    assert d.unit_id == area.units["police_t2"]


def test_no_unit_of_the_type_saves_the_case_reported_and_flagged(
    session: Session, settings: Settings, area: Area
) -> None:
    report = make_report(110.005, 30.005, category="cooking_fume")
    d = report_incident(session, report, settings=settings, now=NOW).incident
    assert (d.status, d.unit_id, d.assigned_at) == ("reported", None, None)
    assert d.unit_note is not None and "enforcement_squad" in d.unit_note
    assert [e.action for e in list_events(session, d.id)] == ["report"]


def test_nearest_unit_equals_a_brute_force_geodesic_search(
    session: Session, settings: Settings, area: Area
) -> None:
    rng = random.Random(20261127)
    geod = Geod(ellps="WGS84")
    units: list[tuple[int, float, float]] = []
    for i in range(40):
        lon, lat = rng.uniform(109.95, 110.05), rng.uniform(29.95, 30.05)
        unit = ResponderUnit(
            code=f"T-RND-{i}",
            name=f"随机所{i}",
            platform="governance",
            unit_type="police_station",
            jurisdiction_code=TOWN_1,
            geom=from_shape(Point(lon, lat), srid=4326),
        )
        session.add(unit)
        session.flush()
        units.append((unit.id, lon, lat))
    units.append((area.units["police_t1"], 110.001, 30.005))
    ids = np.array([u[0] for u in units])
    lons = np.array([u[1] for u in units])
    lats = np.array([u[2] for u in units])
    for _ in range(60):
        lon, lat = rng.uniform(110.0, 110.02), rng.uniform(30.0, 30.01)  # in grids A and B
        d = report_incident(session, make_report(lon, lat), settings=settings).incident
        _, _, dist = geod.inv(np.full(len(units), lon), np.full(len(units), lat), lons, lats)
        assert d.unit_id == int(ids[np.argmin(dist)])
        assert d.unit_distance_m == pytest.approx(float(np.min(dist)), abs=0.001)


def test_report_in_a_gap_of_a_town_is_saved_in_the_town_queue(
    session: Session, settings: Settings, area: Area
) -> None:
    d = report_incident(session, make_report(110.015, 30.015), settings=settings).incident
    assert (d.location_quality, d.grid_id, d.town_code) == ("outside", None, TOWN_1)
    assert d.unit_id == area.units["police_t1"]
    assert session.get(Incident, d.id) is not None


def test_report_far_outside_the_service_area_is_rejected_and_writes_nothing(
    session: Session, settings: Settings, area: Area
) -> None:
    before = count(session, "incidents")
    with pytest.raises(OutsideCoverageError, match="not in the service area"):
        report_incident(session, make_report(80.0, 45.0), settings=settings)
    assert count(session, "incidents") == before


def test_snapped_report_keeps_the_snap_distance(
    session: Session, settings: Settings, area: Area
) -> None:
    d = report_incident(session, make_report(110.0403, 30.005), settings=settings).incident
    assert d.location_quality == "snapped"
    assert d.snap_distance_m == pytest.approx(28.9, abs=0.2)
    assert d.town_code == TOWN_2


def test_gcj02_report_is_stored_in_wgs84_with_its_source(
    session: Session, settings: Settings, area: Area
) -> None:
    from gis.geo import wgs84_to_gcj02

    gcj_lon, gcj_lat = wgs84_to_gcj02(110.005, 30.005)
    report = make_report(gcj_lon, gcj_lat, crs="gcj02")
    d = report_incident(session, report, settings=settings).incident
    assert (d.lon, d.lat) == (pytest.approx(110.005, abs=1e-8), pytest.approx(30.005, abs=1e-8))
    assert (d.source_crs, d.source_lon, d.source_lat) == ("GCJ-02", gcj_lon, gcj_lat)


def test_camera_that_sees_the_point_is_listed(
    session: Session, settings: Settings, area: Area
) -> None:
    d = report_incident(session, make_report(110.0055, 30.005), settings=settings).incident
    assert [c["id"] for c in d.cameras] == [area.camera]
    assert d.cameras[0]["distance_m"] == pytest.approx(48.2, abs=0.5)
    far = report_incident(session, make_report(110.015, 30.005), settings=settings).incident
    assert far.cameras == []


def test_possible_duplicates_are_open_same_category_near_and_recent(
    session: Session, settings: Settings, area: Area
) -> None:
    def at(lon: float, when: datetime, category: str = "public_security_hazard") -> int:
        report = make_report(lon, 30.005, category=category)
        return report_incident(session, report, settings=settings, now=when).incident.id

    old = at(110.0050, NOW - timedelta(hours=25))
    near = at(110.0051, NOW - timedelta(hours=1))
    far = at(110.0070, NOW - timedelta(hours=1))  # ~190 m away
    other = at(110.0050, NOW - timedelta(hours=1), category="neighbour_dispute")
    closed = at(110.0050, NOW - timedelta(hours=2))
    session.execute(sa.update(Incident).where(Incident.id == closed).values(status="closed"))
    # Resolved but not yet verified is still open: a new report beside it may say the fix failed.
    resolved = at(110.00515, NOW - timedelta(hours=3))
    session.execute(sa.update(Incident).where(Incident.id == resolved).values(status="resolved"))
    d = report_incident(session, make_report(110.0050, 30.005), settings=settings, now=NOW).incident
    assert [p["id"] for p in d.possible_duplicates] == [near, resolved]
    assert d.possible_duplicates[0]["distance_m"] == pytest.approx(9.6, abs=0.2)
    assert not {old, far, other, closed} & {p["id"] for p in d.possible_duplicates}
    wider = settings.model_copy(update={"duplicate_radius_m": 500, "duplicate_window_h": 48})
    e = report_incident(session, make_report(110.0050, 30.005), settings=wider, now=NOW).incident
    assert {p["id"] for p in e.possible_duplicates} == {near, resolved, far, old, d.id}


def test_working_hours_deadline_skips_the_weekend(
    session: Session, settings: Settings, area: Area
) -> None:
    report = make_report(110.005, 30.005, category="document_errand")  # 120 working hours
    d = report_incident(session, report, settings=settings, now=NOW).incident
    assert d.due_at == NOW + timedelta(days=7)  # Friday 10:00 to the next Friday 10:00


def test_retry_with_the_same_key_returns_the_first_answer_and_writes_nothing(
    session: Session, settings: Settings, area: Area
) -> None:
    first = report_incident(
        session, make_report(110.005, 30.005), settings=settings, idempotency_key="k-1"
    )
    incidents, events = count(session, "incidents"), count(session, "incident_events")
    again = report_incident(
        session, make_report(110.005, 30.005), settings=settings, idempotency_key="k-1"
    )
    assert first.created and not again.created
    assert again.incident.id == first.incident.id
    assert again.incident.due_at == first.incident.due_at
    assert (count(session, "incidents"), count(session, "incident_events")) == (incidents, events)


def test_same_key_with_a_different_report_is_a_conflict(
    session: Session, settings: Settings, area: Area
) -> None:
    report_incident(session, make_report(110.005, 30.005), settings=settings, idempotency_key="k")
    before = count(session, "incidents")
    with pytest.raises(ConflictError, match="already used for a different report"):
        report_incident(
            session, make_report(110.006, 30.005), settings=settings, idempotency_key="k"
        )
    assert count(session, "incidents") == before


def test_two_concurrent_retries_make_exactly_one_incident(
    engine: Engine, settings: Settings, catalog: int
) -> None:
    """Two connections send the same key; the second waits on the unique index, then replays."""
    with Session(engine) as setup:
        build_area(setup)
        setup.commit()
    try:
        barrier = threading.Barrier(2)
        results: dict[str, Any] = {}

        def first() -> None:
            with Session(engine) as s:
                results["first"] = report_incident(
                    s, make_report(110.005, 30.005), settings=settings, idempotency_key="race"
                )
                barrier.wait()
                time.sleep(0.5)  # hold the uncommitted row while the retry arrives
                s.commit()

        def retry() -> None:
            with Session(engine) as s:
                barrier.wait()
                results["retry"] = report_incident(
                    s, make_report(110.005, 30.005), settings=settings, idempotency_key="race"
                )
                s.commit()

        threads = [threading.Thread(target=first), threading.Thread(target=retry)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert results["first"].created and not results["retry"].created
        assert results["first"].incident.id == results["retry"].incident.id
        with Session(engine) as check:
            n = check.scalar(sa.select(sa.func.count()).where(Incident.idempotency_key == "race"))
            events = check.scalar(
                sa.select(sa.func.count()).where(
                    IncidentEvent.incident_id == results["first"].incident.id
                )
            )
        assert (n, events) == (1, 2)
    finally:
        with Session(engine) as cleanup:
            delete_area(cleanup)
            cleanup.commit()


@pytest.mark.parametrize(
    ("lon", "lat", "error", "message"),
    [
        (float("nan"), 30.0, InvalidCoordinatesError, "finite"),
        (110.0, float("inf"), InvalidCoordinatesError, "finite"),
        (200.0, 30.0, InvalidCoordinatesError, "outside"),
        (30.005, 110.005, InvalidCoordinatesError, "swapped"),
    ],
)
def test_bad_coordinates_are_rejected_and_write_nothing(
    session: Session,
    settings: Settings,
    area: Area,
    lon: float,
    lat: float,
    error: type[Exception],
    message: str,
) -> None:
    before = count(session, "incidents")
    with pytest.raises(error, match=message):
        report_incident(session, make_report(lon, lat), settings=settings)
    assert count(session, "incidents") == before


def test_unknown_crs_and_category_are_rejected_with_the_valid_choices(
    session: Session, settings: Settings, area: Area
) -> None:
    with pytest.raises(UnknownCrsError, match="GCJ-02"):
        report_incident(session, make_report(110.0, 30.0, crs="EPSG:3857"), settings=settings)
    with pytest.raises(UnknownCodeError, match="cooking_fume"):
        report_incident(session, make_report(110.0, 30.0, category="ufo"), settings=settings)


def test_occurred_at_in_the_future_is_rejected(
    session: Session, settings: Settings, area: Area
) -> None:
    report = make_report(110.005, 30.005, occurred_at=(NOW + timedelta(hours=1)).isoformat())
    with pytest.raises(ValidationError, match="in the future"):
        report_incident(session, report, settings=settings, now=NOW)
    slightly = make_report(110.005, 30.005, occurred_at=(NOW + timedelta(minutes=2)).isoformat())
    # The phone's time is kept as data beside the server's receipt time, which dates the case.
    detail = report_incident(session, slightly, settings=settings, now=NOW).incident
    assert (detail.occurred_at, detail.reported_at) == (NOW + timedelta(minutes=2), NOW)
    strict = settings.model_copy(update={"device_clock_skew_s": 60})
    with pytest.raises(ValidationError, match="60 s of clock skew"):
        report_incident(session, slightly, settings=strict, now=NOW)


def test_reports_in_the_demo_county_follow_jurisdiction_and_nearest_unit(
    demo: dict[str, object], session: Session, settings: Settings
) -> None:
    """On the realistic demo county: grid by ST_Covers, unit by tier then geodesic distance."""
    geod = Geod(ellps="WGS84")
    points = session.execute(
        sa.text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, 1, 11))).geom"
            " AS p FROM grids WHERE valid_to IS NULL ORDER BY md5(code) LIMIT 30) AS s"
        )
    ).all()
    units = session.execute(
        sa.text(
            "SELECT u.id, u.unit_type, u.jurisdiction_code, r.parent_code, ST_X(u.geom),"
            " ST_Y(u.geom) FROM responder_units u JOIN regions r ON r.code = u.jurisdiction_code"
            " WHERE u.status = 'available'"
        )
    ).all()
    categories = ["public_security_hazard", "traffic_accident", "food_safety", "cooking_fume"]
    for i, (lon, lat) in enumerate(points):
        category = categories[i % len(categories)]
        d = report_incident(
            session, make_report(lon, lat, category=category), settings=settings
        ).incident
        covering = session.execute(
            sa.text(
                "SELECT code FROM grids WHERE valid_to IS NULL AND ST_Covers(geom,"
                " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) ORDER BY code LIMIT 1"
            ),
            {"lon": lon, "lat": lat},
        ).scalar_one()
        assert d.grid_code == covering and d.location_quality in ("inside", "on_edge")
        unit_type = session.execute(
            sa.text("SELECT unit_type FROM categories WHERE code = :c"), {"c": category}
        ).scalar_one()
        of_type = [u for u in units if u.unit_type == unit_type]
        tiers = (
            [u for u in of_type if u.jurisdiction_code == d.town_code],
            [u for u in of_type if u.jurisdiction_code == d.county_code],
            [u for u in of_type if u.parent_code == d.county_code],
        )
        eligible = next((tier for tier in tiers if tier), [])
        if not eligible:
            assert d.unit_id is None and d.unit_note
            continue
        distances = [geod.inv(lon, lat, u[4], u[5])[2] for u in eligible]
        best = int(np.argmin(distances))
        assert d.unit_id == eligible[best].id
        assert d.unit_distance_m == pytest.approx(distances[best], abs=0.001)
