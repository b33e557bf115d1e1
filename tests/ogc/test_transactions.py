"""OGC API – Features Part 4 on draft plans: the request sequence QGIS ≥ 3.32 sends when a
planner edits an OAPIF layer, OWSLib's transaction calls, and every refusal (bad geometry,
unknown CRS, stale ETag, a current-grid collection, another town, another role)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyproj
import pytest
import shapely
import sqlalchemy as sa
from geoalchemy2.shape import to_shape
from shapely import affinity
from shapely.geometry import mapping, shape
from sqlalchemy.orm import Session

from gis.api import create_app
from gis.api.ogc.features import CONFORMANCE
from gis.layers.grids import Grid
from gis.layers.plans import Plan, PlanScope, PlanStatus
from gis.layers.users import Role
from gis.services import planning
from gis.settings import Settings
from tests.conftest import use_session
from tests.ogc.conftest import live_server, ogc_error

EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
PART4 = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/"


@pytest.fixture
def draft(session: Session, settings: Settings, demo: object) -> Plan:
    """A draft plan over the first village with grids, proposing its grids as they are."""
    first = session.scalars(
        sa.select(Grid).where(Grid.valid_to.is_(None)).order_by(Grid.code).limit(1)
    ).one()
    token, grids = planning.scope_version(session, PlanScope.VILLAGE, first.village_code)
    proposed = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": g.code,
                "geometry": mapping(to_shape(g.geom)),
                "properties": {"code": g.code, "name": g.name},
            }
            for g in grids
        ],
    }
    plan = planning.create_plan(
        session,
        scope_level=PlanScope.VILLAGE,
        scope_code=first.village_code,
        proposed=proposed,
        based_on_version=token,
        actor="planner",
        settings=settings,
    )
    session.flush()
    return plan


def _town(plan: Plan, session: Session) -> str:
    return planning.scope_town(session, PlanScope(plan.scope_level), plan.scope_code)


@pytest.fixture
def planner(session: Session, draft: Plan, headers_for: Callable[..., dict[str, str]]) -> dict:
    """The bearer header of a planner of the draft plan's town."""
    return headers_for(Role.PLANNER, (_town(draft, session),))


def _items(plan: Plan) -> str:
    return f"/ogc/collections/plan-{plan.id}-grids/items"


def _inside(plan: Plan, session: Session) -> Any:
    """A small square (lon/lat) in the middle of the plan's first grid."""
    first = shape(plan.proposed["features"][0]["geometry"])
    centre = first.representative_point()
    return centre.buffer(0.001, cap_style="square")


def _current_grids(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(
        sa.select(Grid.code, Grid.version).where(Grid.valid_to.is_(None)).order_by(Grid.code)
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_conformance_declares_part4_create_replace_delete_and_update(client: Any) -> None:
    declared = set(client.get("/ogc/conformance").json()["conformsTo"])
    assert {PART4 + "create-replace-delete", PART4 + "update"} <= declared == set(CONFORMANCE)


def test_qgis_edit_sequence_on_a_draft_plan(
    client: Any, session: Session, draft: Plan, planner: dict
) -> None:
    before = _current_grids(session)
    listed = [
        c["id"] for c in client.get("/ogc/collections", headers=planner).json()["collections"]
    ]
    assert f"plan-{draft.id}-grids" in listed
    # QGIS enables editing only when OPTIONS on /items allows POST.
    options = client.options(_items(draft), headers=planner)
    assert options.status_code == 204 and "POST" in options.headers["Allow"]
    page = client.get(_items(draft), params={"limit": 1000}, headers=planner).json()
    assert page["numberMatched"] == len(draft.proposed["features"])

    # POST in EPSG:4326, latitude first, as QGIS sends for a lat/lon layer CRS.
    square = _inside(draft, session)
    latlon = shapely.transform(square, lambda xy: xy[:, ::-1])
    created = client.post(
        _items(draft),
        json={"type": "Feature", "geometry": mapping(latlon), "properties": {"name": "新网格"}},
        headers={**planner, "Content-Crs": f"<{EPSG}4326>", "Content-Type": "application/geo+json"},
    )
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    code = location.rsplit("/", 1)[1]
    assert code.startswith("NEW-")
    read = client.get(location, headers=planner)
    assert read.headers["Content-Crs"] == f"<{CRS84}>"
    stored = shape(read.json()["geometry"])
    assert stored.symmetric_difference(square).area < 1e-12 * square.area + 1e-14
    # The plan was validated again: the new square overlaps the grid it was drawn in.
    session.refresh(draft)
    assert draft.validation["valid"] is False
    assert any(code in issue["grids"] for issue in draft.validation["issues"])
    item_options = client.options(location, headers=planner)
    assert {"PUT", "PATCH", "DELETE"} <= set(item_options.headers["Allow"].split(", "))

    # PUT in the Gauss–Krüger zone (northing first), with the ETag just read.
    etag = read.headers["ETag"]
    to_gk = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:4549")
    moved = affinity.translate(square, xoff=0.0005)
    in_gk = shapely.transform(
        moved, lambda xy: np.column_stack(to_gk.transform(xy[:, 0], xy[:, 1]))
    )
    replaced = client.put(
        location,
        json={"type": "Feature", "geometry": mapping(in_gk), "properties": {"name": "改"}},
        headers={**planner, "Content-Crs": f"<{EPSG}4549>", "If-Match": etag},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.headers["ETag"] != etag
    again = shape(client.get(location, headers=planner).json()["geometry"])
    assert abs(again.area - moved.area) / moved.area < 1e-6
    assert again.centroid.distance(moved.centroid) < 1e-7

    # The old ETag is stale now: 412, nothing written.
    stale = client.put(
        location,
        json={"type": "Feature", "geometry": mapping(square), "properties": {}},
        headers={**planner, "If-Match": etag},
    )
    ogc_error(stale, 412)
    assert shape(client.get(location, headers=planner).json()["geometry"]).equals(again)

    # PATCH one property: the geometry stays.
    patched = client.patch(
        location,
        json={"properties": {"households": 12}},
        headers={**planner, "Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    body = client.get(location, headers=planner).json()
    assert body["properties"]["households"] == 12 and body["properties"]["name"] == "改"
    assert shape(body["geometry"]).equals(again)

    # In EPSG:4490 (CGCS2000) the reply is latitude first.
    cgcs = client.get(location, params={"crs": f"{EPSG}4490"}, headers=planner)
    assert cgcs.headers["Content-Crs"] == f"<{EPSG}4490>"
    lat, lon = shape(cgcs.json()["geometry"]).centroid.coords[0]
    assert abs(lat - again.centroid.y) < 1e-4 and abs(lon - again.centroid.x) < 1e-4

    # DELETE with the current ETag; then it is gone and the plan is valid again.
    deleted = client.delete(location, headers={**planner, "If-Match": patched.headers["ETag"]})
    assert deleted.status_code == 204
    ogc_error(client.get(location, headers=planner), 404)
    session.refresh(draft)
    assert draft.validation["valid"] is True
    # Current grids never changed: applying the plan stays the one door.
    assert _current_grids(session) == before


def test_invalid_geometry_is_400_with_the_reason_and_nothing_written(
    client: Any, session: Session, draft: Plan, planner: dict
) -> None:
    proposed = json.loads(json.dumps(draft.proposed))
    x0, y0 = shape(proposed["features"][0]["geometry"]).representative_point().coords[0]
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [[x0, y0], [x0 + 0.001, y0 + 0.001], [x0 + 0.001, y0], [x0, y0 + 0.001], [x0, y0]]
        ],
    }
    body = ogc_error(
        client.post(_items(draft), json={"type": "Feature", "geometry": bowtie}, headers=planner),
        400,
    )
    assert "Self-intersection" in body["description"]
    point = {"type": "Point", "coordinates": [x0, y0]}
    body = ogc_error(
        client.post(_items(draft), json={"type": "Feature", "geometry": point}, headers=planner),
        400,
    )
    assert "Polygon" in body["description"]
    code = proposed["features"][0]["id"]
    body = ogc_error(
        client.put(
            f"{_items(draft)}/{code}",
            json={"type": "Feature", "geometry": bowtie, "properties": {}},
            headers=planner,
        ),
        400,
    )
    ogc_error(client.post(_items(draft), content=b"{not json", headers=planner), 400)
    session.refresh(draft)
    assert draft.proposed == proposed


def test_unknown_content_crs_is_400(
    client: Any, session: Session, draft: Plan, planner: dict
) -> None:
    square = mapping(_inside(draft, session))
    grids = len(draft.proposed["features"])
    body = ogc_error(
        client.post(
            _items(draft),
            json={"type": "Feature", "geometry": square},
            headers={**planner, "Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/3857>"},
        ),
        400,
    )
    assert "Content-Crs" in body["description"]
    # Latitude-first coordinates sent as CRS84 (the default) land outside lon/lat range.
    latlon = mapping(shapely.transform(_inside(draft, session), lambda xy: xy[:, ::-1]))
    ogc_error(
        client.post(_items(draft), json={"type": "Feature", "geometry": latlon}, headers=planner),
        400,
    )
    session.refresh(draft)
    assert len(draft.proposed["features"]) == grids


def test_current_grids_are_read_only_405_with_allow(
    client: Any, session: Session, draft: Plan, planner: dict
) -> None:
    code = draft.proposed["features"][0]["id"]
    options = client.options("/ogc/collections/grids/items", headers=planner)
    assert options.status_code == 204 and "POST" not in options.headers["Allow"]
    response = client.post(
        "/ogc/collections/grids/items", json={"type": "Feature"}, headers=planner
    )
    ogc_error(response, 405)
    assert "POST" not in response.headers["Allow"] and "GET" in response.headers["Allow"]
    for method in ("PUT", "PATCH", "DELETE"):
        response = client.request(method, f"/ogc/collections/grids/items/{code}", headers=planner)
        ogc_error(response, 405)
    ogc_error(client.post("/ogc/collections/nothing/items", json={}, headers=planner), 404)


def test_only_planners_of_the_plans_town_edit_and_only_drafts(
    client: Any,
    session: Session,
    draft: Plan,
    planner: dict,
    headers_for: Callable[..., dict[str, str]],
    town_codes: list[str],
) -> None:
    town = _town(draft, session)
    others = tuple(t for t in town_codes if t != town)[:2]
    square = {"type": "Feature", "geometry": mapping(_inside(draft, session))}
    ogc_error(client.post(_items(draft), json=square), 401)
    dispatcher = headers_for(Role.DISPATCHER, (town,))
    ogc_error(client.post(_items(draft), json=square, headers=dispatcher), 403)
    ogc_error(client.get(_items(draft), headers=dispatcher), 403)
    stranger = headers_for(Role.PLANNER, others)  # two towns: another user name
    ogc_error(client.post(_items(draft), json=square, headers=stranger), 404)
    ogc_error(client.options(_items(draft), headers=stranger), 404)
    listed = client.get("/ogc/collections", headers=stranger).json()["collections"]
    assert f"plan-{draft.id}-grids" not in [c["id"] for c in listed]
    planning.reject_plan(session, draft.id, actor="lead")
    assert draft.status == PlanStatus.REJECTED.value
    ogc_error(client.get(_items(draft), headers=planner), 404)
    ogc_error(client.post(_items(draft), json=square, headers=planner), 404)


@pytest.fixture
def server(settings: Settings, session: Session, demo: object) -> Iterator[str]:
    """The API on a free loopback port, answering from the test's session."""
    with live_server(use_session(create_app(settings), session)) as url:
        yield url + "/ogc"


def test_owslib_transactions_create_update_delete(
    server: str, session: Session, draft: Plan, planner: dict, owslib_features: Any
) -> None:
    api = owslib_features(server, headers=planner)
    collection = f"plan-{draft.id}-grids"
    square = _inside(draft, session)
    feature = {
        "type": "Feature",
        "geometry": mapping(square),
        "properties": {"code": "OWS-1", "name": "owslib"},
    }
    assert api.collection_item_create(collection, feature)
    assert api.collection_item(collection, "OWS-1")["properties"]["name"] == "owslib"
    feature["properties"]["name"] = "owslib 2"
    assert api.collection_item_update(collection, "OWS-1", feature)
    assert api.collection_item(collection, "OWS-1")["properties"]["name"] == "owslib 2"
    assert api.collection_item_delete(collection, "OWS-1")
    with pytest.raises(RuntimeError):
        api.collection_item(collection, "OWS-1")
    session.refresh(draft)
    assert "OWS-1" not in [f["id"] for f in draft.proposed["features"]]
