"""Vector tiles: the MVT of a collection decoded and compared with the database, caching
headers, the caller's scope, and bad tile addresses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mapbox_vector_tile
import morecantile
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.layers.grids import Grid
from gis.layers.incidents import Incident
from gis.layers.regions import Region
from gis.layers.users import Role
from tests.ogc.conftest import ogc_error

TMS = morecantile.tms.get("WebMercatorQuad")
BASE = "/ogc/collections/{}/tiles/WebMercatorQuad"


def _tile_over(session: Session, town: str, z: int) -> morecantile.Tile:
    lon, lat = session.execute(
        sa.select(
            sa.func.ST_X(sa.func.ST_PointOnSurface(Region.geom)),
            sa.func.ST_Y(sa.func.ST_PointOnSurface(Region.geom)),
        ).where(Region.code == town)
    ).one()
    return TMS.tile(lon, lat, z)


def _envelope(tile: morecantile.Tile) -> Any:
    b = TMS.xy_bounds(tile)
    return sa.func.ST_Transform(
        sa.func.ST_MakeEnvelope(b.left, b.bottom, b.right, b.top, 3857), 4326
    )


def _decode(response: Any, layer: str) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    return mapbox_vector_tile.decode(response.content)[layer]["features"]  # type: ignore[no-any-return]


def test_grid_tile_holds_the_current_grids_it_touches(
    client: Any, session: Session, town_codes: list[str]
) -> None:
    tile = _tile_over(session, town_codes[0], 12)
    features = _decode(client.get(BASE.format("grids") + f"/{tile.z}/{tile.x}/{tile.y}"), "grids")
    expected = set(
        session.scalars(
            sa.select(Grid.code).where(
                Grid.valid_to.is_(None), sa.func.ST_Intersects(Grid.geom, _envelope(tile))
            )
        )
    )
    assert expected and {f["properties"]["code"] for f in features} == expected
    assert {"code", "name", "village_code", "town_code"} <= set(features[0]["properties"])


def test_incident_tiles_hold_only_the_callers_cases(
    client: Any,
    session: Session,
    town_codes: list[str],
    headers_for: Callable[..., dict[str, str]],
) -> None:
    own, other = town_codes[0], town_codes[1]
    tile = _tile_over(session, own, 10)
    select_in_tile = sa.select(Incident.id).where(
        sa.func.ST_Intersects(Incident.geom, _envelope(tile))
    )
    # The demo's towns lie in different tiles: move a few cases of this tile to another town.
    moved = set(session.scalars(select_in_tile.order_by(Incident.id).limit(5)))
    session.execute(sa.update(Incident).where(Incident.id.in_(moved)).values(town_code=other))
    in_tile = set(session.scalars(select_in_tile))
    assert moved < in_tile
    url = BASE.format("incidents") + f"/{tile.z}/{tile.x}/{tile.y}"
    response = client.get(url, headers=headers_for(Role.DISPATCHER, (own,)))
    ids = {f["id"] for f in _decode(response, "incidents")}
    assert ids == in_tile - moved
    assert response.headers["Cache-Control"].startswith("private")
    ogc_error(client.get(url), 401)


def test_etag_and_304_and_a_change_of_the_layer_changes_the_etag(
    client: Any, session: Session, town_codes: list[str]
) -> None:
    tile = _tile_over(session, town_codes[0], 13)
    url = BASE.format("grids") + f"/{tile.z}/{tile.x}/{tile.y}"
    first = client.get(url)
    tag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=60"
    assert client.get(url).headers["ETag"] == tag
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 304
    code = _decode(first, "grids")[0]["properties"]["code"]
    session.execute(
        sa.update(Grid).where(Grid.code == code, Grid.valid_to.is_(None)).values(name="改名网格")
    )
    changed = client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag


def test_empty_tiles_and_tiles_below_the_minimum_zoom_are_204(
    client: Any, session: Session, town_codes: list[str]
) -> None:
    assert client.get(BASE.format("grids") + "/12/0/0").status_code == 204
    tile = _tile_over(session, town_codes[0], 6)
    response = client.get(BASE.format("grids") + f"/{tile.z}/{tile.x}/{tile.y}")
    assert response.status_code == 204  # grids start at zoom 8
    towns = client.get(BASE.format("towns") + f"/{tile.z}/{tile.x}/{tile.y}")
    assert len(_decode(towns, "towns")) == len(town_codes)


@pytest.mark.parametrize("zxy", ["25/0/0", "-1/0/0", "3/8/0", "3/0/8", "3/-1/0", "a/0/0"])
def test_tiles_outside_the_matrix_set_are_400(client: Any, demo: object, zxy: str) -> None:
    ogc_error(client.get(BASE.format("grids") + f"/{zxy}"), 400)


def test_unknown_matrix_set_or_collection_is_404(client: Any, demo: object) -> None:
    ogc_error(client.get("/ogc/collections/grids/tiles/WorldCRS84Quad/1/0/0"), 404)
    ogc_error(client.get(BASE.format("nope") + "/1/0/0"), 404)


def test_tilejson_describes_the_layer(client: Any, demo: object) -> None:
    body = client.get(BASE.format("grids") + "/tilejson.json").json()
    assert body["tilejson"] == "3.0.0"
    assert body["tiles"][0].endswith("/ogc/collections/grids/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert body["minzoom"] == 8 and body["maxzoom"] >= 14
    west, south, east, north = body["bounds"]
    assert 118 < west < east < 120 and 28 < south < north < 30
    (layer,) = body["vector_layers"]
    assert layer["id"] == "grids" and layer["fields"]["code"] == "String"


def test_tile_matrix_sets_and_tilesets_list(client: Any, demo: object) -> None:
    sets = client.get("/ogc/tileMatrixSets").json()["tileMatrixSets"]
    assert [s["id"] for s in sets] == ["WebMercatorQuad"]
    definition = client.get("/ogc/tileMatrixSets/WebMercatorQuad").json()
    assert definition["crs"].endswith("/3857") and len(definition["tileMatrices"]) == 25
    tilesets = client.get("/ogc/collections/roads/tiles").json()["tilesets"]
    item = next(link for link in tilesets[0]["links"] if link["rel"] == "item")
    assert item["templated"] and item["type"] == "application/vnd.mapbox-vector-tile"
