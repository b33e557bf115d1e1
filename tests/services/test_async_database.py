"""The asyncpg runner (``gis.db_async``): the same flows give the same answers as on a session,
concurrent retries save one incident, and driver failures become the usual 4xx/503 errors.

These tests need committed data (asyncpg has its own connections), so they build the hand-made
county in a committed transaction and remove it afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.db_async import AsyncDatabase, asyncpg_dsn
from gis.errors import DatabaseUnavailableError, OutsideCoverageError, ValidationError
from gis.layers.grids import GridMember
from gis.layers.incidents import Incident
from gis.layers.users import Role, User
from gis.queries import Flow, Query, run
from gis.services import access
from gis.services.assignment import locate_flow
from gis.services.intake import find_incident_by_key, report_flow
from gis.settings import Settings
from tests.services.intake_fixtures import (
    GRID_A,
    GRID_B,
    TOWN_1,
    committed_area,
    make_report,
)

T = TypeVar("T")

# Inside A; on the A|B edge; on the A/B/C vertex; 20 m east of T2 (snapped into D); in the gap
# of T1 with no grid (outside, T1's queue).
POINTS = [
    (110.005, 30.005),
    (110.01, 30.005),
    (110.01, 30.01),
    (110.0402, 30.01),
    (110.015, 30.015),
]


@pytest.fixture
def committed(engine: Engine, catalog: int) -> Iterator[None]:
    """The hand-made county, committed; removed with its incidents and test users after."""
    with committed_area(engine):
        try:
            yield
        finally:  # users first: they refer to the area's grid member
            with Session(engine) as cleanup:
                cleanup.execute(sa.delete(User).where(User.name.like("async-%")))
                cleanup.commit()


def on_asyncpg(settings: Settings, work: Callable[[AsyncDatabase], Awaitable[T]]) -> T:
    """Open a pool, run ``work`` with it, close it — in a thread of its own: the browser tests'
    session-wide Playwright keeps an event loop running in the main thread."""

    async def main() -> T:
        database = AsyncDatabase(settings)
        await database.open()
        try:
            return await work(database)
        finally:
            await database.close()

    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, main()).result()


def test_dsn_drops_the_sqlalchemy_driver_and_keeps_the_password() -> None:
    url = "postgresql+psycopg://u:p%40ss@db.example:6543/gis?sslmode=require"
    assert asyncpg_dsn(url) == "postgresql://u:p%40ss@db.example:6543/gis?sslmode=require"


def test_locate_answers_the_same_on_asyncpg_and_on_a_session(
    committed: None, engine: Engine, settings: Settings
) -> None:
    with Session(engine) as session:
        expected = [run(session, locate_flow(lon, lat)) for lon, lat in POINTS]

    async def work(database: AsyncDatabase) -> list[Any]:
        return [await database.run(locate_flow(lon, lat)) for lon, lat in POINTS]

    found = on_asyncpg(settings, work)
    assert found == expected
    assert [f.quality.value for f in found] == [
        "inside",
        "on_edge",
        "on_edge",
        "snapped",
        "outside",
    ]
    assert [f.grid_code for f in found[:3]] == [GRID_A, GRID_A, GRID_A]


def _session_settings_flow() -> Flow[dict[str, Any]]:
    row = yield Query(
        sa.text(
            "SELECT current_setting('jit') AS jit, "
            "current_setting('statement_timeout') AS statement_timeout"
        )
    )
    return dict(row)


def test_both_drivers_open_connections_with_the_same_server_settings(
    session: Session, settings: Settings
) -> None:
    """jit off and the statement timeout, on the pool the API's flows run on and on the
    sessions (``gis.db.session_settings``, GIS_DB_JIT)."""
    on_pool = on_asyncpg(settings, lambda database: database.run(_session_settings_flow()))
    on_session = run(session, _session_settings_flow())
    assert on_pool == on_session
    assert on_pool["jit"] == "off"
    assert on_pool["statement_timeout"] == "30s"


def test_outside_the_service_area_is_the_same_error_on_asyncpg(
    committed: None, settings: Settings
) -> None:
    async def work(database: AsyncDatabase) -> None:
        await database.run(locate_flow(10.0, 10.0))

    with pytest.raises(OutsideCoverageError, match="not in the service area"):
        on_asyncpg(settings, work)


def test_a_report_saved_on_asyncpg_reads_back_identically_on_a_session(
    committed: None, engine: Engine, settings: Settings
) -> None:
    report = make_report(110.005, 30.005, photos=["https://example.org/a.jpg"])

    async def work(database: AsyncDatabase) -> Any:
        first = await database.run(report_flow(report, settings=settings, idempotency_key="a-1"))
        again = await database.run(report_flow(report, settings=settings, idempotency_key="a-1"))
        return first, again

    first, again = on_asyncpg(settings, work)
    assert first.created and not again.created
    assert again.incident == first.incident
    with Session(engine) as session:
        stored = find_incident_by_key(session, "a-1", settings=settings)
    assert stored is not None
    # Same values and the same Python types (json decoded, aware datetimes, floats).
    assert dataclasses.asdict(stored) == dataclasses.asdict(first.incident)
    assert first.incident.grid_code == GRID_A and first.incident.unit_id is not None
    assert first.incident.photos == ["https://example.org/a.jpg"]
    assert [c["code"] for c in first.incident.cameras] == ["T-CAM-1"]


def test_concurrent_retries_on_asyncpg_save_one_incident(
    committed: None, engine: Engine, settings: Settings
) -> None:
    report = make_report(110.015, 30.005)

    async def work(database: AsyncDatabase) -> list[Any]:
        flows = [
            database.run(report_flow(report, settings=settings, idempotency_key="a-race"))
            for _ in range(6)
        ]
        return list(await asyncio.gather(*flows))

    results = on_asyncpg(settings.model_copy(update={"db_pool_size": 6}), work)
    assert len({r.incident.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    with Session(engine) as session:
        saved = session.scalar(
            sa.select(sa.func.count()).where(Incident.idempotency_key == "a-race")
        )
        events = session.execute(
            sa.text("SELECT count(*) FROM incident_events WHERE incident_id = :i"),
            {"i": results[0].incident.id},
        ).scalar_one()
    assert saved == 1
    assert events == 2  # report + assign, written once
    assert results[0].incident.grid_code == GRID_B


def test_a_nul_character_is_a_validation_error_on_asyncpg(
    committed: None, settings: Settings
) -> None:
    report = make_report(110.005, 30.005, description="bad \x00 byte")

    async def work(database: AsyncDatabase) -> None:
        await database.run(report_flow(report, settings=settings))

    with pytest.raises(ValidationError, match="invalid value"):
        on_asyncpg(settings, work)


def test_tokens_authenticate_the_same_on_asyncpg(
    committed: None, engine: Engine, settings: Settings
) -> None:
    with Session(engine) as setup:
        member = setup.scalars(sa.select(GridMember).where(GridMember.town_code == TOWN_1)).first()
        assert member is not None
        user = access.add_user(
            setup,
            name="async-member",
            role=Role.GRID_MEMBER,
            town_codes=[TOWN_1],
            member_id=member.id,
        )
        token = access.issue_token(setup, user)
        setup.commit()
        expected = access.authenticate(setup, token)

    async def work(database: AsyncDatabase) -> Any:
        return await database.run(access.authenticate_flow(token))

    principal = on_asyncpg(settings, work)
    assert principal == expected
    assert principal.grid_codes is not None and GRID_A in principal.grid_codes
    assert principal.town_codes == frozenset({TOWN_1})


def test_an_unreachable_database_is_503_through_the_api(settings: Settings) -> None:
    from gis.api import create_app

    dead = settings.model_copy(
        update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none"}
    )

    async def work(database: AsyncDatabase) -> None:
        await database.run(locate_flow(110.005, 30.005))

    with pytest.raises(DatabaseUnavailableError):
        on_asyncpg(dead, work)
    # The service starts without the database and answers 503 (with Retry-After) until it is
    # back: the token check and locate both run on asyncpg.
    with TestClient(create_app(dead)) as client:
        response = client.get(
            "/locate",
            params={"lon": 110.005, "lat": 30.005},
            headers={"Authorization": "Bearer gis_whatever"},
        )
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "5"


def test_ogc_pages_and_tiles_are_the_same_on_asyncpg_and_on_a_session(
    committed: None, engine: Engine, settings: Settings
) -> None:
    """Core statements of varying shape (an items page with or without bbox, an IN-list scope,
    the planner's estimate, a tile) compiled and cached by shape for asyncpg."""
    import morecantile

    from gis.services import ogc
    from gis.services.ogc_collections import get_collection
    from gis.services.ogc_crs import parse_crs

    grids, incidents = get_collection("grids"), get_collection("incidents")
    crs = parse_crs(None, "crs")

    def page(collection: Any, bbox: Any, scope: Any, exact_max: int = 1000) -> Any:
        query = ogc.ItemsQuery(
            limit=3,
            crs=crs,
            bbox=bbox,
            bbox_crs=crs,
            properties=list(collection.properties),
        )
        return ogc.feature_page_flow(collection, query, scope, exact_max=exact_max)

    boxes = [None, (110.0, 30.0, 110.012, 30.012), (110.0, 30.0, 110.006, 30.006)]
    tile = morecantile.tms.get("WebMercatorQuad").tile(110.005, 30.005, 14)

    def flows() -> list[Any]:
        return [
            *(page(grids, box, sa.true()) for box in boxes),
            page(grids, None, sa.true(), exact_max=1),  # the estimate (EXPLAIN) path
            page(incidents, None, Incident.town_code.in_([TOWN_1])),
            page(incidents, None, Incident.town_code.in_([TOWN_1, "x"])),
            ogc.tile_flow(grids, tile.z, tile.x, tile.y),
        ]

    with Session(engine) as session:
        expected = [run(session, flow) for flow in flows()]

    async def work(database: AsyncDatabase) -> tuple[list[Any], int]:
        found = [await database.run(flow) for flow in flows()]
        again = [await database.run(flow) for flow in flows()]  # from the shape cache
        assert again == found
        return found, len(database._shaped)

    found, shapes = on_asyncpg(settings, work)
    assert found == expected
    assert expected[0].returned == 3 and expected[1].matched != expected[2].matched
    assert expected[3].estimated and expected[-1]
    # Kept by shape, not per request: fewer entries than the statements run (8 per round).
    assert 0 < shapes < 8
