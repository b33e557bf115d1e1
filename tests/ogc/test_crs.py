"""OGC API – Features Part 2 (CRS by reference): coordinates in the requested CRS, in the axis
order its authority defines, checked against pyproj."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import box, shape

from tests.ogc.conftest import ogc_error

EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def _first_point(feature: dict[str, Any]) -> tuple[float, float]:
    ring = feature["geometry"]["coordinates"][0][0]
    return ring[0][0], ring[0][1]


def _town(client: Any, crs: str | None = None) -> tuple[dict[str, Any], Any]:
    query = "limit=1" + (f"&crs={crs}" if crs else "")
    response = client.get(f"/ogc/collections/towns/items?{query}")
    assert response.status_code == 200, response.text
    return response.json()["features"][0], response


@pytest.mark.parametrize("code", [4326, 4490, 4549])
def test_epsg_uris_answer_in_the_authority_axis_order(client: Any, demo: object, code: int) -> None:
    reference, _ = _town(client)
    lon, lat = _first_point(reference)
    feature, response = _town(client, f"{EPSG}{code}")
    assert response.headers["Content-Crs"] == f"<{EPSG}{code}>"
    # pyproj with the authority's axis order (always_xy off): lat/lon, northing/easting.
    expected = pyproj.Transformer.from_crs("OGC:CRS84", f"EPSG:{code}").transform(lon, lat)
    assert _first_point(feature) == pytest.approx(expected, abs=1e-6 if code != 4549 else 0.01)
    if code in (4326, 4490):
        assert _first_point(feature) == pytest.approx((lat, lon), abs=1e-6)  # latitude first


def test_crs84_is_the_default_and_longitude_first(client: Any, demo: object) -> None:
    feature, response = _town(client)
    assert response.headers["Content-Crs"] == f"<{CRS84}>"
    lon, lat = _first_point(feature)
    assert 118 < lon < 120 and 28 < lat < 30


def test_bbox_crs_lat_first_selects_what_the_same_box_in_crs84_selects(
    client: Any, demo: object
) -> None:
    url = "/ogc/collections/grids/items?limit=1000"
    lonlat = client.get(f"{url}&bbox=118.9,28.85,119.0,28.95").json()
    latlon = client.get(f"{url}&bbox=28.85,118.9,28.95,119.0&bbox-crs={EPSG}4326").json()
    assert {f["id"] for f in latlon["features"]} == {f["id"] for f in lonlat["features"]}
    assert lonlat["numberMatched"] > 0


def test_bbox_in_the_gauss_kruger_zone_selects_the_same_grids(client: Any, demo: object) -> None:
    to_gk = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:4549")
    north_1, east_1 = to_gk.transform(118.9, 28.85)
    north_2, east_2 = to_gk.transform(119.0, 28.95)
    url = "/ogc/collections/grids/items?limit=1000"
    projected = client.get(
        f"{url}&bbox={north_1},{east_1},{north_2},{east_2}&bbox-crs={EPSG}4549"
    ).json()
    # The projected box is not the degree box exactly; compare with the degree box transformed.
    everything = client.get(url).json()["features"]
    to_degrees = pyproj.Transformer.from_crs("EPSG:4549", "OGC:CRS84")
    box_degrees = shapely.transform(
        box(north_1, east_1, north_2, east_2),
        lambda xy: np.column_stack(to_degrees.transform(xy[:, 0], xy[:, 1])),
    )
    expected = {f["id"] for f in everything if shape(f["geometry"]).intersects(box_degrees)}
    assert {f["id"] for f in projected["features"]} == expected
    assert expected


def test_a_single_feature_honours_crs(client: Any, demo: object) -> None:
    reference, _ = _town(client)
    response = client.get(f"/ogc/collections/towns/items/{reference['id']}?crs={EPSG}4490")
    assert response.headers["Content-Crs"] == f"<{EPSG}4490>"
    lon, lat = _first_point(reference)
    assert _first_point(response.json()) == pytest.approx((lat, lon), abs=1e-6)


def test_unsupported_crs_is_a_400(client: Any, demo: object) -> None:
    for parameter in ("crs", "bbox-crs", "filter-crs"):
        body = ogc_error(
            client.get(f"/ogc/collections/grids/items?{parameter}={EPSG}3857&bbox=1,2,3,4"), 400
        )
        assert parameter in body["description"]
