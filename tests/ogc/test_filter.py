"""OGC API – Features Part 3 (filtering): queryables, CQL2-text and CQL2-JSON, each result
compared with the same question asked of the database directly."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.layers.grids import Grid
from gis.layers.incidents import Incident
from gis.layers.roads import Road
from gis.services.ogc_collections import COLLECTIONS
from tests.ogc.conftest import ogc_error

GRIDS = "/ogc/collections/grids/items?limit=1000"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


def _ids(client: Any, url: str, headers: dict[str, str] | None = None) -> set[Any]:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["numberMatched"] == len(body["features"])  # one page holds them here
    return {f["id"] for f in body["features"]}


def _text(client: Any, cql: str, url: str = GRIDS, **kw: Any) -> set[Any]:
    return _ids(client, f"{url}&filter={quote(cql)}", **kw)


def _json(client: Any, cql: dict[str, Any], url: str = GRIDS, **kw: Any) -> set[Any]:
    return _ids(client, f"{url}&filter-lang=cql2-json&filter={quote(json.dumps(cql))}", **kw)


def _current(session: Session, *where: Any) -> set[str]:
    return set(session.scalars(sa.select(Grid.code).where(Grid.valid_to.is_(None), *where)))


def test_queryables_are_json_schema_of_the_properties(client: Any, demo: object) -> None:
    response = client.get("/ogc/collections/grids/queryables")
    assert response.headers["content-type"].startswith("application/schema+json")
    body = response.json()
    assert body["type"] == "object" and body["$schema"].startswith("https://json-schema.org")
    assert set(body["properties"]) == set(COLLECTIONS["grids"].properties) | {"geometry"}
    assert body["properties"]["households"] == {"type": "integer"}
    assert body["properties"]["valid_from"]["format"] == "date-time"


def test_basic_cql2_comparisons_and_logic(client: Any, session: Session, demo: object) -> None:
    assert _text(client, "households > 400 AND NOT population < 1300") == _current(
        session, Grid.households > 400, Grid.population >= 1300
    )
    town = session.scalar(sa.select(sa.func.min(Grid.town_code)))
    assert _text(client, f"town_code = '{town}' OR households <= 300") == _current(
        session, sa.or_(Grid.town_code == town, Grid.households <= 300)
    )
    assert _text(client, "valid_to IS NULL") == _current(session)


def test_advanced_comparisons_like_in_between_and_casei(
    client: Any, session: Session, demo: object
) -> None:
    assert _text(client, "name LIKE '%第1网格'") == _current(session, Grid.name.like("%第1网格"))
    codes = sorted(_current(session))[:3]
    listed = ", ".join(f"'{c}'" for c in codes)
    assert _text(client, f"code IN ({listed})") == set(codes)
    assert _text(client, "households BETWEEN 300 AND 400") == _current(
        session, Grid.households.between(300, 400)
    )
    assert _text(client, f"CASEI(code) = CASEI('{codes[0]}')") == {codes[0]}


def test_spatial_functions_with_bbox_envelope_and_polygon_literals(
    client: Any, session: Session, demo: object
) -> None:
    envelope = sa.func.ST_MakeEnvelope(118.9, 28.85, 119.0, 28.95, 4326)
    inside_box = _current(session, sa.func.ST_Intersects(Grid.geom, envelope))
    assert inside_box
    # pygeofilter 0.4 parses the CQL2-text BBOX literal as a function called bbox.
    assert _text(client, "S_INTERSECTS(geometry, BBOX(118.9, 28.85, 119.0, 28.95))") == inside_box
    polygon = "POLYGON((118.9 28.85, 119.0 28.85, 119.0 28.95, 118.9 28.95, 118.9 28.85))"
    assert _text(client, f"S_INTERSECTS(geometry, {polygon})") == inside_box
    within = _current(session, sa.func.ST_Within(Grid.geom, envelope))
    assert _text(client, f"S_WITHIN(geometry, {polygon})") == within
    assert within < inside_box


POLYGON = "POLYGON((118.9 28.85, 119.0 28.85, 119.0 28.95, 118.9 28.95, 118.9 28.85))"


@pytest.mark.parametrize(
    ("cql", "function", "literal"),
    [
        *[
            (f"S_{name.upper()}", f"ST_{name}", POLYGON)
            for name in ("Contains", "Disjoint", "Touches", "Crosses", "Overlaps", "Equals")
        ],
        ("S_INTERSECTS", "ST_Intersects", "POINT(118.95 28.9)"),
        ("S_INTERSECTS", "ST_Intersects", "LINESTRING(118.9 28.85, 119.0 28.95)"),
        ("S_INTERSECTS", "ST_Intersects", "MULTIPOINT((118.95 28.9), (118.96 28.91))"),
    ],
)
def test_spatial_functions_and_geometry_types_match_postgis(
    client: Any, session: Session, demo: object, cql: str, function: str, literal: str
) -> None:
    geometry = sa.func.ST_GeomFromText(literal, 4326)
    expected = _current(session, getattr(sa.func, function)(Grid.geom, geometry))
    assert _text(client, f"{cql}(geometry, {literal})") == expected


def test_cql2_json_bbox_is_read_min_x_min_y_max_x_max_y(
    client: Any, session: Session, demo: object
) -> None:
    # pygeofilter 0.4 turns {"bbox": [a, b, c, d]} into Envelope(x1=a, x2=b, y1=c, y2=d).
    expected = _current(
        session,
        sa.func.ST_Intersects(Grid.geom, sa.func.ST_MakeEnvelope(118.9, 28.85, 119.0, 28.95, 4326)),
    )
    cql = {
        "op": "s_intersects",
        "args": [{"property": "geometry"}, {"bbox": [118.9, 28.85, 119.0, 28.95]}],
    }
    assert _json(client, cql) == expected


def test_cql2_json_comparisons_in_and_not(client: Any, session: Session, demo: object) -> None:
    cql = {
        "op": "and",
        "args": [
            {"op": ">", "args": [{"property": "households"}, 350]},
            {"op": "not", "args": [{"op": "like", "args": [{"property": "name"}, "%第2网格"]}]},
        ],
    }
    assert _json(client, cql) == _current(
        session, Grid.households > 350, sa.not_(Grid.name.like("%第2网格"))
    )


def test_filter_crs_lat_first_geometry_is_flipped_not_tagged_4326(
    client: Any, session: Session, demo: object
) -> None:
    box_lonlat = "POLYGON((118.9 28.85, 119.0 28.85, 119.0 28.95, 118.9 28.95, 118.9 28.85))"
    box_latlon = "POLYGON((28.85 118.9, 28.85 119.0, 28.95 119.0, 28.95 118.9, 28.85 118.9))"
    expected = _text(client, f"S_INTERSECTS(geometry, {box_lonlat})")
    got = _text(client, f"S_INTERSECTS(geometry, {box_latlon})", f"{GRIDS}&filter-crs={EPSG}4326")
    assert got == expected and expected
    # The same lat-first numbers read as CRS84 lie in the Indian Ocean: nothing.
    assert _text(client, f"S_INTERSECTS(geometry, {box_latlon})") == set()


def test_temporal_filter_on_incidents(
    client: Any, session: Session, demo: object, admin_headers: dict[str, str]
) -> None:
    url = "/ogc/collections/incidents/items?limit=10000"
    got = _text(
        client,
        "T_INTERSECTS(reported_at, INTERVAL('2026-10-01T00:00:00Z', '2026-10-03T00:00:00Z'))",
        url,
        headers=admin_headers,
    )
    expected = set(
        session.scalars(
            sa.select(Incident.id).where(
                Incident.reported_at.between(
                    datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 3, tzinfo=UTC)
                )
            )
        )
    )
    assert got == expected and expected
    after = _text(
        client, "reported_at > TIMESTAMP('2026-10-31T00:00:00Z')", url, headers=admin_headers
    )
    assert after == set(
        session.scalars(
            sa.select(Incident.id).where(Incident.reported_at > datetime(2026, 10, 31, tzinfo=UTC))
        )
    )


def test_property_property_comparison(client: Any, session: Session, demo: object) -> None:
    got = _text(client, "population < households")
    assert got == _current(session, Grid.population < Grid.households)
    ogc_error(client.get(f"{GRIDS}&filter={quote('name = households')}"), 400)


def test_pygeofilter_pitfalls_are_still_there(client: Any, demo: object) -> None:
    """Pins what gis.services.ogc_filter works around; if pygeofilter fixes one, revisit it."""
    from pygeofilter import ast, values
    from pygeofilter.parsers.cql2_json import parse as parse_json
    from pygeofilter.parsers.cql2_text import parse as parse_text

    text = parse_text("S_INTERSECTS(geometry, BBOX(1, 2, 3, 4))")
    assert isinstance(text.rhs, ast.Function) and text.rhs.name == "bbox"
    box = parse_json({"op": "s_intersects", "args": [{"property": "g"}, {"bbox": [1, 2, 3, 4]}]})
    assert box.rhs == values.Envelope(1, 2, 3, 4)  # i.e. x1=1, x2=2: minx=1, maxx=2 (wrong)


def test_boolean_and_number_properties(client: Any, session: Session, demo: object) -> None:
    url = "/ogc/collections/roads/items?limit=10000"
    assert _text(client, "oneway = false AND speed_kmh >= 40", url) == set(
        session.scalars(sa.select(Road.id).where(Road.oneway.is_(False), Road.speed_kmh >= 40))
    )


@pytest.mark.parametrize(
    "cql",
    [
        "households >",  # syntax
        "nope = 1",  # not queryable
        "households = 'many'",  # wrong type
        "name > 3",
        "households LIKE '1%'",
        "S_INTERSECTS(households, POINT(1 2))",
        "S_INTERSECTS(geometry, BBOX(1, 2, 3))",
        "T_INTERSECTS(name, TIMESTAMP('2026-01-01T00:00:00Z'))",
        "valid_from > 'someday'",
        "households BETWEEN 1.5 AND 3",
        "CASEI(households) = 1",
        "S_INTERSECTS(geometry, POLYGON((1 2, 3 4)))",  # not a ring
        "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))",  # self-intersecting
        "A_CONTAINS(code, ('a'))",
    ],
)
def test_bad_filters_are_400(client: Any, demo: object, cql: str) -> None:
    ogc_error(client.get(f"{GRIDS}&filter={quote(cql)}"), 400)


def test_bad_cql2_json_and_unknown_filter_lang_are_400(client: Any, demo: object) -> None:
    ogc_error(client.get(f"{GRIDS}&filter-lang=cql2-json&filter={quote('{nope')}"), 400)
    ogc_error(client.get(f"{GRIDS}&filter-lang=ecql&filter=households>1"), 400)
    bad = {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [1, 2]}]}
    ogc_error(client.get(f"{GRIDS}&filter-lang=cql2-json&filter={quote(json.dumps(bad))}"), 400)


def test_a_filter_that_runs_too_long_is_stopped_by_the_statement_timeout(
    client: Any, settings: Any, session: Session, demo: object
) -> None:
    from fastapi.testclient import TestClient

    from gis.api import create_app
    from tests.conftest import use_session

    # 1 ms (below the setting's floor, to make any spatial filter "too slow" here).
    fast = settings.model_copy(update={"ogc_statement_timeout_ms": 1})
    ring = ", ".join(f"{118 + i / 2000:.5f} {28 + (i % 2) / 10:.2f}" for i in range(400))
    cql = f"S_CROSSES(geometry, LINESTRING({ring})) OR S_TOUCHES(geometry, LINESTRING({ring}))"
    with TestClient(use_session(create_app(fast), session)) as slow_client:
        response = slow_client.get(f"{GRIDS}&filter={quote(cql)}")
    ogc_error(response, 503)
    # The limit was the transaction's own: the session goes on with the default afterwards.
    session.rollback()
