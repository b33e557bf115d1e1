"""OGC API – Features Part 1 (core, GeoJSON, OpenAPI 3) over the demo county: one test per
requirement area, against the real database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy.orm import Session

from gis.api import create_app
from gis.api.ogc.features import CONFORMANCE
from gis.layers.grids import Grid
from gis.layers.incidents import Incident
from gis.layers.users import Role
from gis.settings import Settings
from tests.conftest import count, use_session
from tests.ogc.conftest import ogc_error

OGC = "http://www.opengis.net/spec/"
QGIS_FILTER_CLASSES = {
    OGC + "ogcapi-features-3/1.0/conf/filter",
    OGC + "ogcapi-features-3/1.0/conf/features-filter",
    OGC + "cql2/1.0/conf/cql2-text",
    OGC + "cql2/1.0/conf/basic-cql2",
}


def _all_pages(client: Any, url: str, headers: dict[str, str] | None = None) -> list[dict]:
    features: list[dict] = []
    while url:
        body = client.get(url, headers=headers).json()
        features += body["features"]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), "")
    return features


def test_landing_page_links_api_conformance_and_collections(client: Any) -> None:
    body = client.get("/ogc").json()
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert rels["service-desc"].endswith("/ogc/api")
    assert rels["conformance"].endswith("/ogc/conformance")
    assert rels["data"].endswith("/ogc/collections")


def test_conformance_declares_core_geojson_oas30_and_the_four_qgis_filter_classes(
    client: Any,
) -> None:
    declared = set(client.get("/ogc/conformance").json()["conformsTo"])
    assert declared == set(CONFORMANCE)
    assert declared >= QGIS_FILTER_CLASSES
    assert OGC + "ogcapi-features-1/1.0/conf/core" in declared
    assert OGC + "ogcapi-features-1/1.0/conf/geojson" in declared


def test_openapi_document_gives_limit_default_and_the_configured_maximum(
    client: Any, settings: Settings
) -> None:
    response = client.get("/ogc/api")
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    document = response.json()
    assert document["openapi"].startswith("3.0")
    assert document["servers"][0]["url"].endswith("/ogc")
    items = document["paths"]["/collections/{collectionId}/items"]["get"]
    limit = next(p for p in items["parameters"] if p["name"] == "limit")
    assert limit["schema"]["default"] == 10
    assert limit["schema"]["maximum"] == settings.ogc_max_limit
    names = {p["name"] for p in items["parameters"]}
    assert {"bbox", "datetime", "crs", "bbox-crs", "filter", "filter-lang", "sortby"} <= names


def test_ogc_routes_are_left_out_of_the_main_openapi(client: Any) -> None:
    assert not [path for path in client.get("/openapi.json").json()["paths"] if "/ogc" in path]


def test_anonymous_callers_see_only_the_public_layers(client: Any, demo: object) -> None:
    ids = [c["id"] for c in client.get("/ogc/collections").json()["collections"]]
    assert ids == ["towns", "villages", "grids", "roads"]
    ogc_error(client.get("/ogc/collections/incidents/items"), 401)
    ogc_error(client.get("/ogc/collections/cameras"), 401)


def test_public_layers_need_a_token_when_gis_public_layers_is_off(
    settings: Settings, session: Session, demo: object
) -> None:
    closed = settings.model_copy(update={"public_layers": False})
    with TestClient(use_session(create_app(closed), session)) as client:
        assert client.get("/ogc/collections").json()["collections"] == []
        ogc_error(client.get("/ogc/collections/grids/items"), 401)


def test_collection_has_extent_crs_list_and_links(client: Any, demo: object) -> None:
    body = client.get("/ogc/collections/grids").json()
    assert body["storageCrs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert "http://www.opengis.net/def/crs/EPSG/0/4490" in body["crs"]
    minx, miny, maxx, maxy = body["extent"]["spatial"]["bbox"][0]
    assert 118 < minx < maxx < 120 and 28 < miny < maxy < 30
    assert {"self", "items"} <= {link["rel"] for link in body["links"]}


def test_items_page_by_ten_and_the_pages_hold_every_current_grid_once(
    client: Any, session: Session, demo: object
) -> None:
    first = client.get("/ogc/collections/grids/items")
    assert first.headers["content-type"] == "application/geo+json"
    body = first.json()
    current = session.scalar(sa.select(sa.func.count()).where(Grid.valid_to.is_(None)))
    assert body["numberReturned"] == 10 == len(body["features"])
    assert body["numberMatched"] == current
    assert "numberMatchedEstimated" not in body
    features = _all_pages(client, "/ogc/collections/grids/items?limit=50")
    codes = [f["id"] for f in features]
    assert len(codes) == len(set(codes)) == current


def test_prev_link_goes_back_and_last_page_has_no_next(client: Any, demo: object) -> None:
    body = client.get("/ogc/collections/towns/items?limit=2&offset=4").json()
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert "next" not in rels
    assert "offset=2" in rels["prev"] and "limit=2" in rels["prev"]
    assert body["numberReturned"] == body["numberMatched"] - 4


def test_number_matched_is_the_planner_estimate_above_the_threshold(
    settings: Settings, session: Session, demo: object, admin_headers: dict[str, str]
) -> None:
    small = settings.model_copy(update={"ogc_exact_count_max": 5})
    with TestClient(use_session(create_app(small), session)) as client:
        body = client.get("/ogc/collections/incidents/items", headers=admin_headers).json()
        exact = client.get("/ogc/collections/towns/items", headers=admin_headers).json()
    assert body["numberMatchedEstimated"] is True
    assert body["numberMatched"] > 5
    assert "next" in {link["rel"] for link in body["links"]}
    assert exact["numberMatched"] == 5 and "numberMatchedEstimated" not in exact


def test_bbox_keeps_the_features_that_intersect_it(client: Any, demo: object) -> None:
    box = (118.9, 28.85, 119.0, 28.95)
    features = _all_pages(
        client, "/ogc/collections/grids/items?limit=100&bbox=" + ",".join(map(str, box))
    )
    everything = _all_pages(client, "/ogc/collections/grids/items?limit=1000")
    from shapely.geometry import box as make_box

    expected = {f["id"] for f in everything if shape(f["geometry"]).intersects(make_box(*box))}
    assert {f["id"] for f in features} == expected
    assert 0 < len(expected) < len(everything)


def test_feature_by_id_and_unknown_ids_are_ogc_404s(client: Any, demo: object) -> None:
    code = client.get("/ogc/collections/grids/items?limit=1").json()["features"][0]["id"]
    body = client.get(f"/ogc/collections/grids/items/{code}").json()
    assert body["id"] == code and body["type"] == "Feature"
    assert {"self", "collection"} <= {link["rel"] for link in body["links"]}
    ogc_error(client.get("/ogc/collections/grids/items/nope"), 404)
    ogc_error(client.get("/ogc/collections/nope/items"), 404)
    ogc_error(client.get("/ogc/collections/roads/items/abc"), 404)
    ogc_error(client.get("/ogc/collections/grids/tiles/nowhere/x"), 404)


def test_bad_parameters_are_400_in_the_ogc_exception_shape(
    client: Any, settings: Settings, demo: object
) -> None:
    url = "/ogc/collections/grids/items"
    for query in (
        f"limit={settings.ogc_max_limit + 1}",
        "limit=0",
        "limit=ten",
        "bbox=1,2,3",
        "bbox=a,b,c,d",
        "bbox=119,29,118,28",
        "bbox=0,0,200,95",
        "datetime=yesterday",
        "datetime=2026-01-01T00:00:00",
        "datetime=../..",
        "crs=EPSG:3857",
        "bbox-crs=http://www.opengis.net/def/crs/EPSG/0/3857&bbox=1,2,3,4",
        "sortby=nope",
        "properties=nope",
        "offset=-1",
    ):
        ogc_error(client.get(f"{url}?{query}"), 400)


def test_properties_and_sortby_shape_the_page(client: Any, demo: object) -> None:
    body = client.get(
        "/ogc/collections/grids/items?limit=20&properties=name,households&sortby=-households"
    ).json()
    assert all(set(f["properties"]) == {"name", "households"} for f in body["features"])
    households = [f["properties"]["households"] for f in body["features"]]
    assert households == sorted(households, reverse=True)


def test_grids_datetime_gives_the_versions_in_force_then(
    client: Any, session: Session, demo: object
) -> None:
    grid = session.scalars(sa.select(Grid).where(Grid.valid_to.is_(None)).limit(1)).one()
    changed = grid.valid_from + timedelta(days=30)
    grid.valid_to = changed
    session.add(
        Grid(
            code=grid.code,
            version=grid.version + 1,
            name=grid.name + " (new)",
            village_code=grid.village_code,
            town_code=grid.town_code,
            households=grid.households,
            population=grid.population,
            geom=grid.geom,
            valid_from=changed,
        )
    )
    session.flush()
    url = f"/ogc/collections/grids/items?filter=code='{grid.code}'"
    now = client.get(url).json()["features"]
    assert [f["properties"]["version"] for f in now] == [grid.version + 1]
    before = (changed - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    then = client.get(f"{url}&datetime={before}").json()["features"]
    assert [f["properties"]["version"] for f in then] == [grid.version]
    both = client.get(f"{url}&datetime={before}/..").json()["features"]
    assert sorted(f["properties"]["version"] for f in both) == [grid.version, grid.version + 1]
    # The feature itself is the current version.
    one = client.get(f"/ogc/collections/grids/items/{grid.code}").json()
    assert one["properties"]["version"] == grid.version + 1


def test_incidents_datetime_interval_matches_reported_at(
    client: Any, session: Session, demo: object, admin_headers: dict[str, str]
) -> None:
    start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 8, tzinfo=UTC)
    expected = session.scalar(
        sa.select(sa.func.count()).where(Incident.reported_at.between(start, end))
    )
    body = client.get(
        "/ogc/collections/incidents/items?datetime=2026-10-01T00:00:00Z/2026-10-08T00:00:00Z",
        headers=admin_headers,
    ).json()
    assert body["numberMatched"] == expected > 0


def test_a_dispatcher_sees_only_the_cases_of_its_town_in_items_and_counts(
    client: Any,
    session: Session,
    demo: object,
    town_codes: list[str],
    headers_for: Callable[..., dict[str, str]],
) -> None:
    own, other = town_codes[0], town_codes[1]
    headers = headers_for(Role.DISPATCHER, (own,))
    body = client.get("/ogc/collections/incidents/items?limit=1000", headers=headers).json()
    own_count = session.scalar(sa.select(sa.func.count()).where(Incident.town_code == own))
    assert body["numberMatched"] == own_count < count(session, "incidents")
    assert {f["properties"]["town_code"] for f in body["features"]} == {own}
    foreign = session.scalar(sa.select(sa.func.min(Incident.id)).where(Incident.town_code == other))
    ogc_error(client.get(f"/ogc/collections/incidents/items/{foreign}", headers=headers), 404)
    # A filter naming the other town finds nothing, and says so in the count too.
    leak = client.get(
        f"/ogc/collections/incidents/items?filter=town_code='{other}'", headers=headers
    ).json()
    assert leak["numberMatched"] == 0 and leak["features"] == []


def test_a_grid_member_sees_only_its_grids_cases_and_may_not_read_cameras(
    client: Any,
    session: Session,
    demo: object,
    town_codes: list[str],
    headers_for: Callable[..., dict[str, str]],
) -> None:
    from gis.layers.grids import GridMemberGrid

    member_id, grid_code = session.execute(
        sa.select(GridMemberGrid.member_id, GridMemberGrid.grid_code)
        .join(Incident, Incident.grid_code == GridMemberGrid.grid_code)
        .limit(1)
    ).one()
    town = session.scalar(sa.select(Grid.town_code).where(Grid.code == grid_code))
    codes = set(
        session.scalars(
            sa.select(GridMemberGrid.grid_code).where(GridMemberGrid.member_id == member_id)
        )
    )
    headers = headers_for(Role.GRID_MEMBER, (town,), member_id=member_id)
    body = client.get("/ogc/collections/incidents/items?limit=1000", headers=headers).json()
    assert body["features"] and {f["properties"]["grid_code"] for f in body["features"]} <= codes
    ogc_error(client.get("/ogc/collections/cameras/items", headers=headers), 403)
    listed = [
        c["id"] for c in client.get("/ogc/collections", headers=headers).json()["collections"]
    ]
    assert "incidents" in listed and "cameras" not in listed
