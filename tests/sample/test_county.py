"""The demo county: documented counts, valid and exactly tiled geometry, sound assignments and
case histories, and generation that depends on the seed alone."""

from __future__ import annotations

import collections
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from pyproj import Geod
from sqlalchemy.orm import Session

from gis.errors import ConflictError
from gis.sample import generate_boundaries, load_sample
from gis.sample.boundaries import BOUNDARIES_DIR, LAYER_FILES, geojson_texts, read_boundaries
from gis.sample.county import build_county
from gis.sample.places import REAL_COUNTIES, REAL_TOWNS, make_plan
from gis.settings import Settings
from tests.conftest import SAMPLE_END, SAMPLE_SEED, count

GEOD = Geod(ellps="WGS84")


def rows(session: Session, query: str, **params: object) -> list[sa.Row[tuple[object, ...]]]:
    """All rows of a query written in the test."""
    return list(session.execute(sa.text(query), params))


def scalar(session: Session, query: str, **params: object) -> Any:
    """The single value of a query written in the test."""
    return session.execute(sa.text(query), params).scalar_one()


# --- counts -------------------------------------------------------------------------------------


def test_summary_matches_the_tables(demo: dict[str, object], session: Session) -> None:
    for key, table in (
        ("grids", "grids"),
        ("members", "grid_members"),
        ("units", "responder_units"),
        ("cameras", "cameras"),
        ("roads", "roads"),
        ("incidents", "incidents"),
        ("events", "incident_events"),
    ):
        assert demo[key] == count(session, table), key
    assert demo["towns"] == 5
    # The load time is reported in the summary, not asserted: performance is measured in bench/.
    assert demo["seconds"] > 0  # type: ignore[operator]


def test_regions_are_a_city_four_counties_five_towns_and_their_villages(
    demo: dict[str, object], session: Session
) -> None:
    levels = dict(rows(session, "SELECT level, count(*) FROM regions GROUP BY level"))
    assert levels["city"] == 1
    assert levels["county"] == 4
    assert levels["town"] == 5
    assert levels["village"] == demo["villages"]
    towns = dict(rows(session, "SELECT code, name FROM regions WHERE level = 'town'"))
    assert towns == {t.code: t.name for t in REAL_TOWNS}
    assert all(len(code) == 12 for (code,) in rows(session, "SELECT code FROM regions"))
    orphans = scalar(
        session,
        "SELECT count(*) FROM regions c LEFT JOIN regions p ON p.code = c.parent_code "
        "WHERE c.level <> 'city' AND (p.code IS NULL OR p.level <> CASE c.level "
        "WHEN 'county' THEN 'city' WHEN 'town' THEN 'county' ELSE 'town' END)",
    )
    assert orphans == 0


def test_each_town_has_10_to_25_villages_and_each_village_1_to_4_grids(
    demo: dict[str, object], session: Session
) -> None:
    per_town = rows(
        session,
        "SELECT parent_code, count(*) FROM regions WHERE level = 'village' GROUP BY parent_code",
    )
    assert len(per_town) == 5
    assert all(10 <= n <= 25 for _, n in per_town)
    per_village = rows(session, "SELECT village_code, count(*) FROM grids GROUP BY village_code")
    assert len(per_village) == demo["villages"]
    assert all(1 <= n <= 4 for _, n in per_village)
    codes = rows(session, "SELECT code, village_code, name FROM grids")
    assert all(code.startswith(village) and len(code) == 15 for code, village, _ in codes)
    assert all("网格" in name for _, _, name in codes)


def test_households_per_grid_are_mostly_300_to_500_and_villages_carry_the_sums(
    demo: dict[str, object], session: Session
) -> None:
    households = np.array([h for (h,) in rows(session, "SELECT households FROM grids")])
    assert np.mean((households >= 300) & (households <= 500)) >= 0.9
    assert 350 <= households.mean() <= 450
    ratio = scalar(session, "SELECT min(population::float / households) FROM grids")
    assert ratio >= 2.5
    assert scalar(session, "SELECT max(population::float / households) FROM grids") <= 3.2
    mismatched = scalar(
        session,
        "SELECT count(*) FROM regions r JOIN (SELECT village_code, sum(households) h, "
        "sum(population) p FROM grids GROUP BY village_code) g ON g.village_code = r.code "
        "WHERE r.households <> g.h OR r.population <> g.p",
    )
    assert mismatched == 0


def test_towns_measure_60_to_150_km2_on_the_ellipsoid(
    demo: dict[str, object], session: Session
) -> None:
    areas = rows(
        session, "SELECT code, ST_Area(geom::geography) / 1e6 FROM regions WHERE level = 'town'"
    )
    assert all(60 <= area <= 150 for _, area in areas), areas


def test_towns_sit_at_their_documented_centres(demo: dict[str, object], session: Session) -> None:
    centroids = dict(
        (code, (lon, lat))
        for code, lon, lat in rows(
            session,
            "SELECT code, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM regions "
            "WHERE level = 'town'",
        )
    )
    for town in REAL_TOWNS:
        lon, lat = centroids[town.code]
        _, _, distance = GEOD.inv(town.lon, town.lat, lon, lat)
        assert distance < 5_000, (town.name, distance)


def test_units_are_four_per_town_and_two_per_county(
    demo: dict[str, object], session: Session
) -> None:
    per_town = rows(
        session,
        "SELECT r.level, r.code, array_agg(u.unit_type ORDER BY u.unit_type) "
        "FROM responder_units u JOIN regions r ON r.code = u.jurisdiction_code "
        "GROUP BY r.level, r.code",
    )
    town_types = ["enforcement_squad", "market_office", "police_station", "service_centre"]
    county_types = ["emergency_team", "traffic_police"]
    assert sorted(level for level, _, _ in per_town) == ["county"] * 4 + ["town"] * 5
    for level, _, types in per_town:
        assert types == (town_types if level == "town" else county_types)
    catalog_types = {t for (t,) in rows(session, "SELECT DISTINCT unit_type FROM categories")}
    assert set(town_types + county_types) == catalog_types
    available = scalar(session, "SELECT avg((status = 'available')::int) FROM responder_units")
    assert available >= 0.7


def test_each_town_has_50_to_150_cameras_with_their_view_sectors(
    demo: dict[str, object], session: Session
) -> None:
    per_town = rows(session, "SELECT town_code, count(*) FROM cameras GROUP BY town_code")
    assert len(per_town) == 5
    assert all(50 <= n <= 150 for _, n in per_town)
    kinds = dict(rows(session, "SELECT kind, count(*) FROM cameras GROUP BY kind"))
    assert kinds["fixed"] > kinds.get("dome", 0) + kinds.get("ptz", 0)
    wrong = scalar(
        session,
        "SELECT count(*) FROM cameras c JOIN regions t ON t.code = c.town_code "
        "WHERE NOT ST_Covers(t.geom, c.geom) OR NOT ST_Covers(c.view, c.geom) "
        "OR (c.kind = 'fixed' AND (c.fov_deg NOT BETWEEN 40 AND 90 "
        "    OR c.range_m NOT BETWEEN 60 AND 200)) "
        "OR (c.kind <> 'fixed' AND c.fov_deg <> 360)",
    )
    assert wrong == 0


# --- geometry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("regions", "geom"),
        ("grids", "geom"),
        ("responder_units", "geom"),
        ("cameras", "geom"),
        ("cameras", "view"),
        ("roads", "geom"),
        ("incidents", "geom"),
    ],
)
def test_every_geometry_is_valid(
    demo: dict[str, object], session: Session, table: str, column: str
) -> None:
    invalid = scalar(
        session, f"SELECT count(*) FROM {table} WHERE NOT ST_IsValid({column}) OR {column} IS NULL"
    )
    assert invalid == 0


def test_grids_and_regions_are_multipolygons(demo: dict[str, object], session: Session) -> None:
    types = {
        t
        for (t,) in rows(
            session,
            "SELECT DISTINCT GeometryType(geom) FROM grids "
            "UNION SELECT DISTINCT GeometryType(geom) FROM regions",
        )
    }
    assert types == {"MULTIPOLYGON"}


@pytest.mark.parametrize(
    ("children", "parents", "key"),
    [
        ("SELECT village_code AS parent, geom FROM grids", "village", "village_code"),
        (
            "SELECT parent_code AS parent, geom FROM regions WHERE level = 'village'",
            "town",
            "parent_code",
        ),
    ],
    ids=["grids-tile-villages", "villages-tile-towns"],
)
def test_children_tile_their_parent_without_gaps_or_overlaps(
    demo: dict[str, object], session: Session, children: str, parents: str, key: str
) -> None:
    areas = rows(
        session,
        f"WITH c AS ({children}) "
        "SELECT p.code, ST_Area(p.geom::geography), ST_Area(ST_Union(c.geom)::geography), "
        "sum(ST_Area(c.geom::geography)) "
        f"FROM regions p JOIN c ON c.parent = p.code WHERE p.level = '{parents}' "
        "GROUP BY p.code, p.geom",
    )
    assert len(areas) == count_level(session, parents)
    for code, parent, union, total in areas:
        assert abs(union - parent) <= 1e-4 * parent, code  # no gap
        assert abs(total - parent) <= 1e-4 * parent, code  # no overlap either
    overlap = scalar(
        session,
        f"WITH c AS ({children}), n AS (SELECT row_number() OVER () AS id, geom FROM c) "
        "SELECT coalesce(max(ST_Area(ST_Intersection(a.geom, b.geom)::geography)), 0) "
        "FROM n a JOIN n b ON a.id < b.id AND ST_Intersects(a.geom, b.geom)",
    )
    assert overlap < 1.0


def count_level(session: Session, level: str) -> int:
    """Regions of one level."""
    return int(scalar(session, "SELECT count(*) FROM regions WHERE level = :l", l=level))


def test_towns_do_not_overlap(demo: dict[str, object], session: Session) -> None:
    overlapping = scalar(
        session,
        "SELECT count(*) FROM regions a JOIN regions b ON a.code < b.code "
        "AND ST_Intersects(a.geom, b.geom) WHERE a.level = 'town' AND b.level = 'town'",
    )
    assert overlapping == 0


def test_counties_and_city_are_unions_of_their_towns(
    demo: dict[str, object], session: Session
) -> None:
    different = scalar(
        session,
        "SELECT count(*) FROM regions p JOIN (SELECT parent_code, ST_Union(geom) g "
        "FROM regions WHERE level = 'town' GROUP BY parent_code) t ON t.parent_code = p.code "
        "WHERE NOT ST_Equals(p.geom, t.g)",
    )
    assert different == 0
    assert scalar(
        session,
        "SELECT ST_Equals(c.geom, (SELECT ST_Union(geom) FROM regions WHERE level = 'town')) "
        "FROM regions c WHERE level = 'city'",
    )


def test_roads_form_a_noded_topology_connected_within_each_county(
    demo: dict[str, object], session: Session
) -> None:
    # Every node id stands for exactly one point, and every segment starts and ends at its nodes.
    ambiguous = scalar(
        session,
        "WITH ends AS (SELECT source AS node, ST_StartPoint(geom) AS p FROM roads "
        "UNION ALL SELECT target, ST_EndPoint(geom) FROM roads) "
        "SELECT count(*) FROM (SELECT node FROM ends GROUP BY node "
        "HAVING count(DISTINCT ST_AsEWKB(p)) > 1) x",
    )
    assert ambiguous == 0
    classes = {c for (c,) in rows(session, "SELECT DISTINCT road_class FROM roads")}
    assert classes == {"primary", "secondary", "tertiary", "residential"}
    bad_length = scalar(
        session,
        "SELECT count(*) FROM roads WHERE abs(length_m - ST_Length(geom::geography)) "
        "> 0.001 * length_m + 0.01 OR speed_kmh <= 0",
    )
    assert bad_length == 0
    # Union-find over the edges: one component per county (衢江区's two towns share a road).
    parent: dict[int, int] = {}

    def find(node: int) -> int:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for source, target in rows(session, "SELECT source, target FROM roads"):
        parent[find(source)] = find(target)
    components = collections.Counter(find(node) for node in list(parent))
    assert len(components) == 4
    primary = scalar(session, "SELECT count(*) FROM roads WHERE road_class = 'primary'")
    assert primary > 0


# --- members, assignment ------------------------------------------------------------------------


def test_every_grid_has_a_member_of_its_town(demo: dict[str, object], session: Session) -> None:
    without = scalar(
        session,
        "SELECT count(*) FROM grids g WHERE NOT EXISTS (SELECT 1 FROM grid_member_grids mg "
        "JOIN grid_members m ON m.id = mg.member_id "
        "WHERE mg.grid_code = g.code AND m.town_code = g.town_code AND m.active)",
    )
    assert without == 0
    assert count(session, "grid_members") == count(session, "grids")


def test_every_case_has_the_grid_that_covers_it(demo: dict[str, object], session: Session) -> None:
    wrong = scalar(
        session,
        "SELECT count(*) FROM incidents i WHERE i.grid_id IS NULL OR i.grid_code IS DISTINCT FROM "
        "(SELECT g.code FROM grids g WHERE g.valid_to IS NULL AND ST_Covers(g.geom, i.geom) "
        "ORDER BY g.code LIMIT 1)",
    )
    assert wrong == 0
    mismatched = scalar(
        session,
        "SELECT count(*) FROM incidents i JOIN grids g ON g.id = i.grid_id "
        "JOIN regions t ON t.code = g.town_code LEFT JOIN grid_member_grids mg "
        "ON mg.grid_code = g.code WHERE i.village_code <> g.village_code "
        "OR i.town_code <> g.town_code OR i.county_code <> t.parent_code "
        "OR i.member_id IS DISTINCT FROM mg.member_id "
        "OR i.location_quality NOT IN ('inside', 'on_edge')",
    )
    assert mismatched == 0


def test_cases_carry_the_platform_deadline_and_source_of_their_category(
    demo: dict[str, object], session: Session
) -> None:
    wrong = scalar(
        session,
        "SELECT count(*) FROM incidents i JOIN categories c ON c.code = i.category_code "
        "WHERE i.platform <> c.platform OR i.source_crs <> 'EPSG:4326' "
        "OR abs(i.source_lon - ST_X(i.geom)) > 1e-9 OR abs(i.source_lat - ST_Y(i.geom)) > 1e-9 "
        "OR (i.due_at <> i.reported_at + make_interval(secs => c.time_limit_hours * 3600) "
        "    AND NOT EXISTS (SELECT 1 FROM incident_events e "
        "                    WHERE e.incident_id = i.id AND e.action = 'extend'))",
    )
    assert wrong == 0
    shares = dict(rows(session, "SELECT platform, count(*) FROM incidents GROUP BY platform"))
    total = sum(shares.values())
    # Enforcement and governance cases are the bulk of a command room's load.
    assert shares["enforcement"] + shares["governance"] > 0.6 * total
    assert min(shares.values()) > 0.05 * total
    reporters = dict(
        rows(session, "SELECT reporter_kind, count(*) FROM incidents GROUP BY reporter_kind")
    )
    assert reporters["grid_member"] == max(reporters.values())


def test_nearest_unit_matches_a_brute_force_geodesic_search(
    demo: dict[str, object], session: Session
) -> None:
    # The history is assigned while every unit is available (their statuses of today are set
    # afterwards, gis.sample.load._set_unit_statuses): no past case lacks a unit because of them.
    units = rows(
        session,
        "SELECT id, unit_type, jurisdiction_code, ST_X(geom), ST_Y(geom) FROM responder_units",
    )
    county_of = dict(rows(session, "SELECT code, parent_code FROM regions WHERE level = 'town'"))
    sample = rows(
        session,
        "SELECT i.id, ST_X(i.geom), ST_Y(i.geom), i.town_code, i.county_code, c.unit_type, "
        "i.unit_id, i.unit_distance_m FROM incidents i JOIN categories c "
        "ON c.code = i.category_code WHERE i.id % 97 = 0 ORDER BY i.id",
    )
    assert len(sample) > 300
    for _, lon, lat, town, county, unit_type, unit_id, distance in sample:
        of_type = [u for u in units if u[1] == unit_type]
        # Available units of the town itself come first, then the county's, then those of the
        # county's other towns (属地管理, the same three tiers as intake).
        tiers = (
            [u for u in of_type if u[2] == town],
            [u for u in of_type if u[2] == county],
            [u for u in of_type if county_of.get(u[2]) == county and u[2] != town],
        )
        local = next((tier for tier in tiers if tier), [])
        if not local:
            assert unit_id is None
            continue
        measured = [(GEOD.inv(lon, lat, u[3], u[4])[2], u[0]) for u in local]
        best_distance, best_id = min(measured)
        assert unit_id == best_id
        assert distance == pytest.approx(best_distance, abs=0.05)


# --- case histories -----------------------------------------------------------------------------


def test_cases_older_than_30_days_are_at_least_99_percent_closed_mostly_on_time(
    demo: dict[str, object], session: Session
) -> None:
    closed, total, late = rows(
        session,
        "SELECT count(*) FILTER (WHERE status = 'closed'), count(*), "
        "count(*) FILTER (WHERE closed_at > due_at) FROM incidents WHERE reported_at < :cutoff",
        cutoff=SAMPLE_END - timedelta(days=30),
    )[0]
    assert closed / total >= 0.99
    assert 0.03 <= late / closed <= 0.08


def test_recent_cases_are_open_in_various_states(demo: dict[str, object], session: Session) -> None:
    states = dict(
        rows(
            session,
            "SELECT status, count(*) FROM incidents WHERE reported_at >= :since GROUP BY status",
            since=SAMPLE_END - timedelta(days=1),
        )
    )
    open_cases = sum(n for status, n in states.items() if status != "closed")
    assert open_cases > sum(states.values()) / 2
    assert len(set(states) - {"closed"}) >= 3
    assert scalar(session, "SELECT max(reported_at) < :end FROM incidents", end=SAMPLE_END)


def test_event_logs_follow_the_workflow_and_match_their_case(
    demo: dict[str, object], session: Session
) -> None:
    broken = scalar(
        session,
        "WITH e AS (SELECT incident_id, at, action, from_status, to_status, "
        "lag(to_status) OVER w AS before, lag(at) OVER w AS previous, "
        "row_number() OVER w AS n, "
        "last_value(to_status) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING "
        "AND UNBOUNDED FOLLOWING) AS final "
        "FROM incident_events WINDOW w AS (PARTITION BY incident_id ORDER BY at, id)) "
        "SELECT count(*) FROM e JOIN incidents i ON i.id = e.incident_id "
        "WHERE (e.n = 1 AND (e.action <> 'report' OR e.at <> i.reported_at)) "
        "OR (e.n > 1 AND (e.from_status IS DISTINCT FROM e.before OR e.at <= e.previous)) "
        "OR e.final <> i.status OR e.at > :end",
        end=SAMPLE_END,
    )
    assert broken == 0
    inconsistent = scalar(
        session,
        "SELECT count(*) FROM incidents i WHERE "
        "(i.status = 'closed') <> (i.closed_at IS NOT NULL) "
        "OR (i.status IN ('resolved', 'closed')) <> (i.resolved_at IS NOT NULL) "
        "OR i.closed_at <> (SELECT max(at) FROM incident_events e "
        "                   WHERE e.incident_id = i.id AND e.action = 'close') "
        "OR i.updated_at <> (SELECT max(at) FROM incident_events e WHERE e.incident_id = i.id)",
    )
    assert inconsistent == 0
    actions = dict(rows(session, "SELECT action, count(*) FROM incident_events GROUP BY action"))
    cases = count(session, "incidents")
    assert 0.01 <= actions["return"] / cases <= 0.03  # returned once for rework
    assert 0.005 <= actions["extend"] / cases <= 0.02
    extended = scalar(
        session,
        "SELECT count(*) FROM incident_events e JOIN incidents i ON i.id = e.incident_id "
        "WHERE e.action = 'extend' AND (e.data ->> 'due_at')::timestamptz <> i.due_at",
    )
    assert extended == 0


# --- the load itself ----------------------------------------------------------------------------


def test_loading_into_a_database_with_data_is_refused(
    demo: dict[str, object], session: Session
) -> None:
    with pytest.raises(ConflictError, match="already holds data"):
        load_sample(session, seed=SAMPLE_SEED, end=SAMPLE_END, progress=False)


def test_replace_empties_the_layers_first(demo: dict[str, object], session: Session) -> None:
    summary = load_sample(
        session,
        seed=SAMPLE_SEED,
        end=SAMPLE_END,
        incidents_per_town=40,
        progress=False,
        replace=True,
    )
    assert summary.incidents == count(session, "incidents") == 200
    assert summary.grids == count(session, "grids") == demo["grids"]
    # Sequences moved past the explicit ids, so the next insert gets a fresh one.
    next_id = scalar(session, "SELECT nextval(pg_get_serial_sequence('incidents', 'id'))")
    assert next_id == 201


# --- determinism --------------------------------------------------------------------------------


def test_the_same_seed_generates_identical_boundaries() -> None:
    first, second = generate_boundaries(SAMPLE_SEED), generate_boundaries(SAMPLE_SEED)
    for layer in ("city", "counties", "towns", "villages", "grids"):
        a, b = getattr(first, layer), getattr(second, layer)
        assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
        assert shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0).all()
    other = generate_boundaries(SAMPLE_SEED + 1)
    assert not shapely.equals_exact(
        first.grids.geometry.values[:1], other.grids.geometry.values[:1], tolerance=0
    ).all()


def test_committed_geojson_equals_a_fresh_generation() -> None:
    fresh = geojson_texts(generate_boundaries(SAMPLE_SEED))
    for layer in LAYER_FILES:
        committed = (BOUNDARIES_DIR / f"{layer}.geojson").read_text(encoding="utf-8")
        assert committed == fresh[layer], f"data/boundaries/{layer}.geojson is stale"


def test_end_only_shifts_the_time_axis() -> None:
    first = build_county(SAMPLE_SEED, end=SAMPLE_END, incidents_per_town=300)
    later = build_county(SAMPLE_SEED, end=SAMPLE_END + timedelta(days=10), incidents_per_town=300)
    shift = 10 * 86_400
    a, b = first.cases, later.cases
    for name in ("town", "category", "reporter", "camera", "lon", "lat", "status"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ("reported", "occurred", "due", "updated"):
        assert np.array_equal(getattr(a, name) + shift, getattr(b, name)), name
    assert np.array_equal(a.event_at + shift, b.event_at)


def test_scale_two_gives_ten_towns_that_do_not_overlap() -> None:
    boundaries = generate_boundaries(SAMPLE_SEED, scale=2)
    towns = boundaries.towns
    assert len(towns) == 10
    assert set(t.code for t in REAL_TOWNS) <= set(towns["code"])
    geoms = towns.geometry.values
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    assert (left == right).all()
    for geom in geoms:
        area = abs(GEOD.geometry_area_perimeter(geom)[0]) / 1e6
        assert 60 <= area <= 150
    per_village = boundaries.grids.groupby("village_code").size()
    assert per_village.min() >= 1 and per_village.max() <= 18
    assert per_village.mean() > 4
    synthetic = towns[~towns["code"].isin([t.code for t in REAL_TOWNS])]
    assert synthetic["name"].str.startswith("示范镇").all()
    assert synthetic["county_code"].str.match(r"^3308[3-7]\d000000$").all()


def test_plan_codes_are_unique_and_clear_of_real_counties_at_scale_100() -> None:
    plan = make_plan(SAMPLE_SEED, 100)
    counties = [c.code for c in plan.counties]
    towns = [t.code for t in plan.towns]
    assert len(towns) == 500 and len(set(towns)) == 500
    assert len(set(counties)) == len(counties)
    assert all(t.county_code in counties and t.code[:6] == t.county_code[:6] for t in plan.towns)
    real = {"330802", "330803", "330822", "330824", "330825", "330881"}
    assert not {c[:6] for c in counties[len(REAL_COUNTIES) :]} & real


def test_committed_files_record_the_default_seed_and_other_seeds_are_generated() -> None:
    assert read_boundaries().seed == Settings(_env_file=None).sample_seed == SAMPLE_SEED  # type: ignore[call-arg]
    other = build_county(SAMPLE_SEED + 1, end=SAMPLE_END, incidents_per_town=0)
    assert other.boundaries.seed == SAMPLE_SEED + 1
    assert len(other.cases) == 0
    assert set(other.boundaries.towns["code"]) == {t.code for t in REAL_TOWNS}
