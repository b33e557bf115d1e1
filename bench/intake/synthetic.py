"""A synthetic lattice county set for the intake benchmark when the ×100 demo is not loaded.

    python -m bench.intake.synthetic --database-url … --side 316

``side``² square grids of 0.005° (~500 m) from (118.0°E, 28.0°N); 5×5 grids make a village,
4×4 villages a town, 4×4 towns a county. Each town has one available unit of every town-level
type, each county a traffic-police unit, and each grid one member. All in one transaction with
set-based SQL; the database must be migrated and empty of these codes.
"""

from __future__ import annotations

import argparse

import sqlalchemy as sa

from gis.layers.categories import load_catalog
from gis.migrations.api import upgrade
from gis.provision import up

CELL = 0.005
LON0, LAT0 = 118.0, 28.0


def _county(i: str, j: str) -> str:
    """SQL for the county code of cell (i, j) (i, j are SQL expressions in cells)."""
    return f"('9' || lpad(({i} / 80)::text, 2, '0') || lpad(({j} / 80)::text, 2, '0') || '0')"


def _town(i: str, j: str) -> str:
    """SQL for the 12-digit town code of cell (i, j)."""
    local = f"((({i} / 20) % 4) * 4 + ({j} / 20) % 4 + 1)"
    return f"({_county(i, j)} || lpad({local}::text, 3, '0') || '000')"


def _village(i: str, j: str) -> str:
    """SQL for the 12-digit village code of cell (i, j)."""
    town = f"((({i} / 20) % 4) * 4 + ({j} / 20) % 4 + 1)"
    local = f"((({i} / 5) % 4) * 4 + ({j} / 5) % 4 + 1)"
    return f"({_county(i, j)} || lpad({town}::text, 3, '0') || lpad({local}::text, 3, '0'))"


def _box(i: str, j: str, size: int) -> str:
    """SQL for the envelope of ``size`` cells whose lower-left cell is (i, j)."""
    return (
        f"ST_Multi(ST_MakeEnvelope(:lon0 + ({i}) * :cell, :lat0 + ({j}) * :cell, "
        f":lon0 + ({i} + {size}) * :cell, :lat0 + ({j} + {size}) * :cell, 4326))"
    )


STATEMENTS = [
    # Counties, towns, villages: squares of 80, 20 and 5 cells, named by their lower-left cell.
    f"""
    INSERT INTO regions (code, name, level, parent_code, geom)
    SELECT {_county("i", "j")}, format('县%s-%s', i, j), 'county', NULL, {_box("i", "j", 80)}
    FROM generate_series(0, :side - 1, 80) AS i CROSS JOIN generate_series(0, :side - 1, 80) AS j
    """,
    f"""
    INSERT INTO regions (code, name, level, parent_code, geom)
    SELECT {_town("i", "j")}, format('镇%s-%s', i, j), 'town', {_county("i", "j")},
           {_box("i", "j", 20)}
    FROM generate_series(0, :side - 1, 20) AS i CROSS JOIN generate_series(0, :side - 1, 20) AS j
    """,
    f"""
    INSERT INTO regions (code, name, level, parent_code, geom)
    SELECT {_village("i", "j")}, format('村%s-%s', i, j), 'village', {_town("i", "j")},
           {_box("i", "j", 5)}
    FROM generate_series(0, :side - 1, 5) AS i CROSS JOIN generate_series(0, :side - 1, 5) AS j
    """,
    f"""
    INSERT INTO grids (code, version, name, village_code, town_code, households, population,
                       geom, valid_from, created_by, created_at)
    SELECT 'G' || lpad(i::text, 4, '0') || lpad(j::text, 4, '0'), 1, format('网格%s-%s', i, j),
           {_village("i", "j")}, {_town("i", "j")}, 300, 900, {_box("i", "j", 1)},
           '2020-01-01', 'bench', now()
    FROM generate_series(0, :side - 1) AS i CROSS JOIN generate_series(0, :side - 1) AS j
    """,
    """
    INSERT INTO grid_members (name, phone, town_code, active)
    SELECT '网格员' || g.code, '138' || lpad(g.id::text, 8, '0'), g.town_code, true
    FROM grids g WHERE g.created_by = 'bench' ORDER BY g.id
    """,
    """
    INSERT INTO grid_member_grids (member_id, grid_code)
    SELECT m.id, substr(m.name, 4) FROM grid_members m WHERE m.name LIKE '网格员G%'
    """,
    """
    INSERT INTO responder_units (code, name, platform, unit_type, jurisdiction_code, status,
                                 geom, updated_at)
    SELECT t.code || '-' || k.unit_type, t.name || k.unit_type, k.platform, k.unit_type,
           t.code, 'available', ST_GeometryN(ST_GeneratePoints(t.geom, 1, k.seed), 1), now()
    FROM regions t
    CROSS JOIN (VALUES ('police_station', 'governance', 1), ('emergency_team', 'governance', 2),
                       ('market_office', 'market', 3), ('enforcement_squad', 'enforcement', 4),
                       ('service_centre', 'service', 5)) AS k(unit_type, platform, seed)
    WHERE t.level = 'town'
    UNION ALL
    SELECT c.code || '-traffic_police', c.name || '交警', 'governance', 'traffic_police', c.code,
           'available', ST_GeometryN(ST_GeneratePoints(c.geom, 1, 6), 1), now()
    FROM regions c WHERE c.level = 'county'
    """,
    "ANALYZE regions",
    "ANALYZE grids",
    "ANALYZE responder_units",
    "ANALYZE grid_member_grids",
]


def main(argv: list[str] | None = None) -> None:
    """Create, migrate and fill the database."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--side", type=int, default=316, help="grids per side (316² ≈ 100k)")
    args = parser.parse_args(argv)
    up(args.database_url, log=print)
    upgrade(args.database_url)
    engine = sa.create_engine(args.database_url)
    params = {"side": args.side, "cell": CELL, "lon0": LON0, "lat0": LAT0}
    with engine.begin() as conn:
        from sqlalchemy.orm import Session

        load_catalog(Session(bind=conn))
        for statement in STATEMENTS:
            conn.execute(sa.text(statement), params)
        grids = conn.scalar(sa.text("SELECT count(*) FROM grids"))
        units = conn.scalar(sa.text("SELECT count(*) FROM responder_units"))
    engine.dispose()
    print(f"loaded {grids:,} grids and {units:,} units")


if __name__ == "__main__":
    main()
