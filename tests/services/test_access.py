"""Users and tokens: hashed at rest, expiring, revocable; roles checked by one dependency."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, box
from sqlalchemy.orm import Session

from gis.api.security import allow, check_town
from gis.errors import AuthenticationError, NotFoundError, ValidationError
from gis.layers.base import utcnow
from gis.layers.regions import Region
from gis.layers.users import ApiToken, Role, User
from gis.services import access
from gis.services.access import Principal
from tests.api.live_fixtures import listener_pids

TOWN_A, TOWN_B = "990001001000", "990001002000"


@pytest.fixture
def towns(session: Session) -> None:
    """Two made-up towns in a made-up county."""
    session.add(Region(code="990001000000", name="测试县", level="county", geom=_square(0, 0, 2)))
    session.add(
        Region(
            code=TOWN_A,
            name="甲镇",
            level="town",
            parent_code="990001000000",
            geom=_square(0, 0, 1),
        )
    )
    session.add(
        Region(
            code=TOWN_B,
            name="乙镇",
            level="town",
            parent_code="990001000000",
            geom=_square(1, 0, 1),
        )
    )
    session.flush()


def _square(x: float, y: float, size: float) -> Any:
    return from_shape(MultiPolygon([box(120 + x, 20 + y, 120 + x + size, 20 + y + size)]), 4326)


def test_token_authenticates_and_only_its_hash_is_stored(session: Session, towns: None) -> None:
    user = access.add_user(session, name="cr-a", role=Role.COMMAND_ROOM, town_codes=[TOWN_A])
    token = access.issue_token(session, user)
    stored = session.scalars(sa.select(ApiToken.token_hash)).all()
    assert token not in stored and access.hash_token(token) in stored
    principal = access.authenticate(session, token)
    assert principal.role is Role.COMMAND_ROOM
    assert principal.sees_town(TOWN_A) and not principal.sees_town(TOWN_B)


def test_expired_token_is_refused(session: Session, towns: None) -> None:
    user = access.add_user(session, name="d", role=Role.DISPATCHER, town_codes=[TOWN_A])
    token = access.issue_token(session, user, valid_for=timedelta(minutes=5))
    access.authenticate(session, token, now=utcnow())
    with pytest.raises(AuthenticationError, match="expired"):
        access.authenticate(session, token, now=utcnow() + timedelta(minutes=6))


def test_revoked_token_is_refused(session: Session, towns: None) -> None:
    user = access.add_user(session, name="p", role=Role.PLANNER, town_codes=[TOWN_B])
    token = access.issue_token(session, user)
    assert access.revoke(session, "p") == 1
    with pytest.raises(AuthenticationError, match="revoked"):
        access.authenticate(session, token)


def test_unknown_token_is_refused(session: Session) -> None:
    with pytest.raises(AuthenticationError, match="unknown token"):
        access.authenticate(session, "gis_not-a-token")


def test_town_scoped_role_needs_real_towns(session: Session, towns: None) -> None:
    with pytest.raises(ValidationError, match="town-scoped"):
        access.add_user(session, name="x", role=Role.COMMAND_ROOM)
    with pytest.raises(ValidationError, match="unknown town"):
        access.add_user(session, name="y", role=Role.COMMAND_ROOM, town_codes=["990001009000"])
    with pytest.raises(ValidationError, match="every town"):
        access.add_user(session, name="z", role=Role.COUNTY, town_codes=[TOWN_A])


def test_county_sees_every_town(session: Session, towns: None) -> None:
    user = access.add_user(session, name="county", role=Role.COUNTY)
    principal = access.authenticate(session, access.issue_token(session, user))
    assert principal.town_codes is None and principal.sees_town(TOWN_B)


@pytest.fixture
def guarded(settings: Any, session: Session, towns: None) -> TestClient:
    """A tiny app with one command-room route that reads a town's resource."""
    from gis.api import create_app
    from tests.conftest import use_session

    app: FastAPI = create_app(settings)
    use_session(app, session)

    @app.get("/towns/{code}/secret")
    def secret(
        code: str, principal: Annotated[Principal | None, Depends(allow(Role.COMMAND_ROOM))]
    ) -> dict[str, str]:
        check_town(principal, code, "town secret")
        return {"town": code}

    return TestClient(app)


def _token(session: Session, name: str, role: Role, towns: list[str]) -> dict[str, str]:
    user = access.add_user(session, name=name, role=role, town_codes=towns)
    return {"Authorization": f"Bearer {access.issue_token(session, user)}"}


def test_role_and_jurisdiction_are_enforced(guarded: TestClient, session: Session) -> None:
    own = _token(session, "cr", Role.COMMAND_ROOM, [TOWN_A])
    planner = _token(session, "pl", Role.PLANNER, [TOWN_A])
    admin = _token(session, "ad", Role.ADMIN, [])
    with guarded as client:
        assert client.get(f"/towns/{TOWN_A}/secret").status_code == 401
        bad = client.get(f"/towns/{TOWN_A}/secret", headers={"Authorization": "Basic abc"})
        assert bad.status_code == 401
        assert client.get(f"/towns/{TOWN_A}/secret", headers=own).status_code == 200
        other = client.get(f"/towns/{TOWN_B}/secret", headers=own)
        assert other.status_code == 404 and other.json()["code"] == "not_found"
        denied = client.get(f"/towns/{TOWN_A}/secret", headers=planner)
        assert denied.status_code == 403 and "command_room" in denied.json()["detail"]
        assert client.get(f"/towns/{TOWN_B}/secret", headers=admin).status_code == 200


def test_check_town_hides_other_towns() -> None:
    principal = Principal(user_id=1, name="a", role=Role.DISPATCHER, town_codes=frozenset({"1"}))
    check_town(principal, "1", "case")
    with pytest.raises(NotFoundError):
        check_town(principal, "2", "case")


def test_token_cache_trusts_a_checked_token_for_its_ttl_only(
    settings: Any, session: Session, towns: None
) -> None:
    from gis.api import create_app
    from tests.conftest import use_session

    user = access.add_user(session, name="cached", role=Role.COUNTY)
    token = access.issue_token(session, user)
    headers = {"Authorization": f"Bearer {token}"}
    for ttl, after_revoke in ((60.0, 200), (0.0, 401)):
        app = create_app(settings.model_copy(update={"token_cache_s": ttl}))
        use_session(app, session)

        @app.get("/who")
        def who(principal: Annotated[Principal | None, Depends(allow(Role.COUNTY))]) -> str:
            return principal.name if principal else ""

        session.execute(sa.update(ApiToken).values(revoked_at=None))
        with TestClient(app) as client:
            assert client.get("/who", headers=headers).json() == "cached"
            access.revoke(session, "cached")
            assert client.get("/who", headers=headers).status_code == after_revoke, ttl
        session.execute(sa.update(User).values(active=True))


@contextmanager
def committed_county_user(engine: Any, name: str) -> Iterator[dict[str, str]]:
    """A committed county user (the real app checks tokens on its own connections); yields its
    Authorization header and removes the user afterwards."""
    with Session(engine) as setup:
        setup.execute(sa.delete(User).where(User.name == name))
        token = access.issue_token(setup, access.add_user(setup, name=name, role=Role.COUNTY))
        setup.commit()
    try:
        yield {"Authorization": f"Bearer {token}"}
    finally:
        with Session(engine) as cleanup:
            cleanup.execute(sa.delete(User).where(User.name == name))
            cleanup.commit()


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    """Whether ``condition()`` comes true within ``seconds`` (polled every 0.1 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_revoked_token_is_refused_at_once_despite_the_cache(
    settings: Any, engine: Any, catalog: int
) -> None:
    """The real app (asyncpg pool, NOTIFY listener): revoking in another process's session
    clears every worker's token cache, long before GIS_TOKEN_CACHE_S (60 s here) runs out."""
    from gis.api import create_app

    app = create_app(settings.model_copy(update={"token_cache_s": 60.0}))
    with committed_county_user(engine, "revoked-at-once") as headers, TestClient(app) as client:

        def status() -> int:
            return client.get("/incidents", params={"limit": 1}, headers=headers).status_code

        assert status() == 200
        assert len(app.state.token_cache) == 1
        with Session(engine) as admin:
            access.revoke(admin, "revoked-at-once")
            admin.commit()
        assert wait_for(lambda: status() == 401, seconds=5)


def test_the_revocation_listener_comes_back_after_its_connection_is_cut(
    settings: Any, engine: Any, catalog: int
) -> None:
    """The listening connection is killed (as by a database restart): the app opens another
    one by itself, and a revocation after that is still seen at once."""
    from gis.api import create_app

    app = create_app(settings.model_copy(update={"token_cache_s": 60.0}))
    with committed_county_user(engine, "revoked-after-cut") as headers, TestClient(app) as client:

        def status() -> int:
            return client.get("/incidents", params={"limit": 1}, headers=headers).status_code

        assert wait_for(lambda: len(listener_pids(engine)) == 1)
        (first,) = listener_pids(engine)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        assert wait_for(lambda: len(pids := listener_pids(engine)) == 1 and pids[0] != first)
        assert status() == 200
        with Session(engine) as admin:
            access.revoke(admin, "revoked-after-cut")
            admin.commit()
        assert wait_for(lambda: status() == 401, seconds=5)
