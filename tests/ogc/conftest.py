"""Fixtures of the OGC API tests: the demo county (committed once per session) and callers of
each kind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.layers.regions import Region, RegionLevel
from gis.layers.users import Role
from gis.services import access
from tests.live import OneAtATime, serve


@pytest.fixture
def town_codes(session: Session, demo: dict[str, object]) -> list[str]:
    """The demo county's town codes, in order."""
    return list(
        session.scalars(
            sa.select(Region.code)
            .where(Region.level == RegionLevel.TOWN.value)
            .order_by(Region.code)
        )
    )


@pytest.fixture
def headers_for(session: Session) -> Callable[..., dict[str, str]]:
    """A bearer header of a fresh user of ``role`` (town-scoped roles: ``towns``)."""

    def make(role: Role, towns: tuple[str, ...] = (), **extra: Any) -> dict[str, str]:
        user = access.add_user(
            session, name=f"ogc-{role.value}-{len(towns)}", role=role, town_codes=towns, **extra
        )
        return {"Authorization": f"Bearer {access.issue_token(session, user)}"}

    return make


def ogc_error(response: Any, status: int) -> dict[str, Any]:
    """The OGC exception body of ``response``, after checking its status and shape."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["description"], str) and body["description"]
    return body


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """uvicorn serving ``app`` on a free loopback port in a thread, one request at a time;
    yields its base URL."""
    with serve(OneAtATime(app)) as url:
        yield url


@pytest.fixture
def owslib_features() -> Iterator[Any]:
    """OWSLib's OGC API – Features client class, its module-wide request headers restored after
    the test: ``owslib.ogcapi.API.__init__`` updates that one dict with the headers a client is
    given, so a token passed in one test would be sent by every later client in the process."""
    import owslib.ogcapi
    from owslib.ogcapi.features import Features

    saved = dict(owslib.ogcapi.REQUEST_HEADERS)
    yield Features
    owslib.ogcapi.REQUEST_HEADERS.clear()
    owslib.ogcapi.REQUEST_HEADERS.update(saved)
