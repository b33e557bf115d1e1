"""The two derived collections: grid members (personal, scoped like cases) and camera coverage
per grid (the coverage service's figures), in items, single features, tiles and queryables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mapbox_vector_tile
import morecantile
import pytest
import sqlalchemy as sa
from shapely.geometry import shape
from sqlalchemy.orm import Session

from gis.layers.grids import Grid, GridMember, GridMemberGrid
from gis.layers.users import Role
from gis.services.cameras import grid_coverage
from tests.ogc.conftest import ogc_error

TMS = morecantile.tms.get("WebMercatorQuad")


def _member_pairs(session: Session, town: str | None = None) -> set[str]:
    query = (
        sa.select(GridMemberGrid.grid_code, GridMember.id)
        .join(GridMember, GridMember.id == GridMemberGrid.member_id)
        .join(Grid, sa.and_(Grid.code == GridMemberGrid.grid_code, Grid.valid_to.is_(None)))
        .where(GridMember.active.is_(True))
    )
    if town is not None:
        query = query.where(Grid.town_code == town)
    return {f"{code}:{member}" for code, member in session.execute(query)}


def test_members_are_not_public_and_a_dispatcher_sees_its_towns_members_only(
    client: Any,
    session: Session,
    demo: object,
    town_codes: list[str],
    headers_for: Callable[..., dict[str, str]],
) -> None:
    # GIS_PUBLIC_LAYERS is on in the tests: still no names and phones without a token.
    ogc_error(client.get("/ogc/collections/members/items"), 401)
    listed = [c["id"] for c in client.get("/ogc/collections").json()["collections"]]
    assert "members" not in listed and "coverage" not in listed
    own, other = town_codes[0], town_codes[1]
    headers = headers_for(Role.DISPATCHER, (own,))
    body = client.get("/ogc/collections/members/items?limit=1000", headers=headers).json()
    expected = _member_pairs(session, own)
    assert expected and body["numberMatched"] == len(expected)
    assert {f["id"] for f in body["features"]} == expected
    assert {f["properties"]["town_code"] for f in body["features"]} == {own}
    first = body["features"][0]
    assert first["geometry"]["type"] == "MultiPolygon" and first["properties"]["phone"]
    # The grid's geometry is the member's.
    grid = session.scalar(
        sa.select(Grid).where(
            Grid.code == first["properties"]["grid_code"], Grid.valid_to.is_(None)
        )
    )
    assert grid is not None
    from geoalchemy2.shape import to_shape

    assert shape(first["geometry"]).symmetric_difference(to_shape(grid.geom)).area < 1e-12
    # Another town's member: not in a filter, not by id, not in the count.
    foreign = sorted(_member_pairs(session, other))[0]
    ogc_error(client.get(f"/ogc/collections/members/items/{foreign}", headers=headers), 404)
    leak = client.get(
        f"/ogc/collections/members/items?filter=town_code='{other}'", headers=headers
    ).json()
    assert leak["numberMatched"] == 0 and leak["features"] == []
    one = client.get(f"/ogc/collections/members/items/{first['id']}", headers=headers)
    assert one.status_code == 200 and one.json()["id"] == first["id"]


def test_a_grid_member_sees_the_members_of_its_own_grids_and_a_planner_none(
    client: Any,
    session: Session,
    demo: object,
    headers_for: Callable[..., dict[str, str]],
) -> None:
    member_id, grid_code = session.execute(
        sa.select(GridMemberGrid.member_id, GridMemberGrid.grid_code).limit(1)
    ).one()
    town = session.scalar(sa.select(Grid.town_code).where(Grid.code == grid_code))
    headers = headers_for(Role.GRID_MEMBER, (town,), member_id=member_id)
    own_grids = set(
        session.scalars(
            sa.select(GridMemberGrid.grid_code).where(GridMemberGrid.member_id == member_id)
        )
    )
    body = client.get("/ogc/collections/members/items?limit=1000", headers=headers).json()
    assert body["features"]
    assert {f["properties"]["grid_code"] for f in body["features"]} <= own_grids
    ogc_error(
        client.get("/ogc/collections/members/items", headers=headers_for(Role.PLANNER, (town,))),
        403,
    )


def test_member_tiles_are_scoped_and_private(
    client: Any,
    session: Session,
    demo: object,
    town_codes: list[str],
    headers_for: Callable[..., dict[str, str]],
) -> None:
    own, other = town_codes[0], town_codes[1]
    lon, lat = session.execute(
        sa.select(
            sa.func.ST_X(sa.func.ST_PointOnSurface(Grid.geom)),
            sa.func.ST_Y(sa.func.ST_PointOnSurface(Grid.geom)),
        )
        .join(GridMemberGrid, GridMemberGrid.grid_code == Grid.code)
        .where(Grid.town_code == other, Grid.valid_to.is_(None))
        .limit(1)
    ).one()
    tile = TMS.tile(lon, lat, 14)
    url = f"/ogc/collections/members/tiles/WebMercatorQuad/14/{tile.x}/{tile.y}"
    admin = client.get(url, headers=headers_for(Role.ADMIN))
    assert admin.status_code == 200 and "private" in admin.headers["cache-control"]
    assert mapbox_vector_tile.decode(admin.content)["members"]["features"]
    outsider = client.get(url, headers=headers_for(Role.DISPATCHER, (own,)))
    if outsider.status_code == 200:
        features = mapbox_vector_tile.decode(outsider.content)["members"]["features"]
        codes = {f["properties"]["grid_code"] for f in features}
        own_codes = set(
            session.scalars(sa.select(Grid.code).where(Grid.town_code == own, Grid.code.in_(codes)))
        )
        assert codes == own_codes
    else:
        assert outsider.status_code == 204


def test_coverage_items_give_the_coverage_services_figures(
    client: Any,
    session: Session,
    demo: object,
    headers_for: Callable[..., dict[str, str]],
) -> None:
    headers = headers_for(Role.COUNTY)
    ogc_error(client.get("/ogc/collections/coverage/items"), 401)
    body = client.get(
        "/ogc/collections/coverage/items?limit=20&sortby=-cameras", headers=headers
    ).json()
    assert body["numberReturned"] == 20
    current = session.scalar(sa.select(sa.func.count()).where(Grid.valid_to.is_(None)))
    assert body["numberMatched"] == current
    seen = [f for f in body["features"] if f["properties"]["cameras"] > 0]
    assert seen, "the demo county has grids that cameras see"
    for feature in body["features"][:5]:
        expected = grid_coverage(session, feature["id"])
        props = feature["properties"]
        assert props["cameras"] == expected.cameras
        assert props["area_m2"] == pytest.approx(expected.area_m2, rel=1e-9)
        assert props["covered_m2"] == pytest.approx(expected.covered_m2, rel=1e-9, abs=1e-6)
        assert props["covered_share"] == pytest.approx(expected.area_share, rel=1e-9, abs=1e-12)
        assert 0.0 <= props["covered_share"] <= 1.0 + 1e-9
    # A filter on a computed figure, and a single grid by its code.
    covered = client.get(
        "/ogc/collections/coverage/items?filter=covered_share > 0.5&limit=100", headers=headers
    ).json()
    assert all(f["properties"]["covered_share"] > 0.5 for f in covered["features"])
    one = client.get(f"/ogc/collections/coverage/items/{seen[0]['id']}", headers=headers).json()
    assert one["properties"]["cameras"] == seen[0]["properties"]["cameras"]
    queryables = client.get("/ogc/collections/coverage/queryables", headers=headers).json()
    assert queryables["properties"]["covered_share"] == {"type": "number"}
    assert queryables["properties"]["cameras"] == {"type": "integer"}
    town = body["features"][0]["properties"]["town_code"]
    member = headers_for(Role.GRID_MEMBER, (town,))
    ogc_error(client.get("/ogc/collections/coverage/items", headers=member), 403)


def test_coverage_tiles_carry_the_share_from_zoom_12(
    client: Any, session: Session, demo: object, headers_for: Callable[..., dict[str, str]]
) -> None:
    headers = headers_for(Role.COUNTY)
    lon, lat = session.execute(
        sa.select(
            sa.func.ST_X(sa.func.ST_PointOnSurface(Grid.geom)),
            sa.func.ST_Y(sa.func.ST_PointOnSurface(Grid.geom)),
        )
        .where(Grid.valid_to.is_(None))
        .order_by(Grid.code)
        .limit(1)
    ).one()
    tile = TMS.tile(lon, lat, 13)
    got = client.get(
        f"/ogc/collections/coverage/tiles/WebMercatorQuad/13/{tile.x}/{tile.y}", headers=headers
    )
    assert got.status_code == 200
    features = mapbox_vector_tile.decode(got.content)["coverage"]["features"]
    assert features and all(0 <= f["properties"]["covered_share"] <= 1 for f in features)
    low = TMS.tile(lon, lat, 11)
    below = client.get(
        f"/ogc/collections/coverage/tiles/WebMercatorQuad/11/{low.x}/{low.y}", headers=headers
    )
    assert below.status_code == 204
