"""What the write-back would cost if a case's grid assignment lived in a narrow table of its own
(the schema lever named in docs/scaling.md), against today's write-back into ``incidents``.

    python -m bench.plans.narrow --rounds 3 --database-url …/gis_bench_writeback_1m

On ``bench.plans.run``'s data (``bench.plans.bulk`` uses the same database): the staging table
is filled once per round by ``reassign.compute_assignments`` (not timed), then, in that one
transaction and each rolled back to a savepoint:

- ``incidents``: today's ``reassign.write_back`` (the update of the changing rows of
  ``incidents`` with its 16 indexes, the events, the per-town feed rows);
- ``narrow``: the same rows' assignment columns updated in ``bench_incident_grid`` (incident id,
  grid id, code, village, town, member, location quality; its primary key, the foreign keys
  ``incidents`` has on those columns, and indexes on grid code and town), plus the same events.

A spike, not a schema: it prices the lever before anyone redesigns the reads that filter
``incidents`` by grid and town (lists, maps, statistics, OGC, tiles, the SLA sweep).
"""

from __future__ import annotations

import argparse
import statistics
import time

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.plans.run import DEFAULT_URL, SNAP_M, vacuum
from gis.db import make_engine
from gis.services import reassign
from gis.settings import Settings

NARROW = "bench_incident_grid"

CREATE = f"""
CREATE TABLE {NARROW} AS
SELECT id AS incident_id, grid_id, grid_code, village_code, town_code, member_id,
       location_quality
  FROM incidents;
ALTER TABLE {NARROW} ADD PRIMARY KEY (incident_id),
  ADD FOREIGN KEY (incident_id) REFERENCES incidents (id),
  ADD FOREIGN KEY (grid_id) REFERENCES grids (id),
  ADD FOREIGN KEY (member_id) REFERENCES grid_members (id),
  ADD FOREIGN KEY (village_code) REFERENCES regions (code),
  ADD FOREIGN KEY (town_code) REFERENCES regions (code);
CREATE INDEX ON {NARROW} (grid_code);
CREATE INDEX ON {NARROW} (town_code);
"""

# The narrow table's write-back: the rows of reassign.write_back's UPDATE, and the same events.
NARROW_WRITE = f"""
WITH changed AS (
    UPDATE {NARROW} a
       SET grid_id = CASE WHEN m.to_code IS DISTINCT FROM m.from_code
                          THEN m.to_grid_id ELSE a.grid_id END,
           grid_code = m.to_code,
           village_code = COALESCE(m.to_village, a.village_code),
           town_code = COALESCE(m.to_town, a.town_code),
           member_id = CASE WHEN m.to_code IS DISTINCT FROM m.from_code
                            THEN m.to_member ELSE a.member_id END,
           location_quality = m.quality
      FROM reassign_moves m
     WHERE a.incident_id = m.incident_id AND m.is_open
       AND a.grid_code IS NOT DISTINCT FROM m.from_code
       AND (m.to_code IS DISTINCT FROM m.from_code
            OR a.location_quality IS DISTINCT FROM m.quality
            OR a.village_code IS DISTINCT FROM COALESCE(m.to_village, a.village_code)
            OR a.town_code IS DISTINCT FROM COALESCE(m.to_town, a.town_code))
 RETURNING a.incident_id, m.status, m.from_code, m.to_code, m.from_member, m.to_member, m.quality
)
INSERT INTO incident_events (incident_id, at, actor, action, from_status, to_status, note, data)
SELECT c.incident_id, now(), 'bench', 'reassign_grid', c.status, c.status, 'bench',
       jsonb_build_object('from_grid', c.from_code, 'to_grid', c.to_code,
                          'from_member', c.from_member, 'to_member', c.to_member,
                          'quality', c.quality)
  FROM changed c
 WHERE c.to_code IS DISTINCT FROM c.from_code
"""


def _log(message: str) -> None:
    print(message, flush=True)


def _vacuum_narrow(engine: sa.Engine, *, analyze: bool = False) -> None:
    with engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        autocommit.execute(sa.text(f"VACUUM {'ANALYZE ' if analyze else ''}{NARROW}"))


def main(argv: list[str] | None = None) -> None:
    """Time both write-backs on the same staging table in interleaved rounds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    settings = Settings(
        database_url=args.database_url, db_statement_timeout_ms=7_200_000, _env_file=None
    )  # type: ignore[call-arg]
    engine = make_engine(settings)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {NARROW}"))
        for statement in CREATE.split(";"):
            if statement.strip():
                connection.execute(sa.text(statement))
    vacuum(engine)
    _vacuum_narrow(engine, analyze=True)
    wide_s, narrow_s = [], []
    try:
        for number in range(1, args.rounds + 1):
            with Session(engine) as session:
                reassign.compute_assignments(session, snap_m=SNAP_M)
                savepoint = session.begin_nested()
                started = time.perf_counter()
                result = reassign.write_back(session, actor="bench", reason="bench")
                wide_s.append(time.perf_counter() - started)
                savepoint.rollback()
                session.execute(sa.text("SET LOCAL jit = off"))
                savepoint = session.begin_nested()
                started = time.perf_counter()
                events = session.execute(sa.text(NARROW_WRITE)).rowcount
                narrow_s.append(time.perf_counter() - started)
                savepoint.rollback()
                session.rollback()
            vacuum(engine)
            _vacuum_narrow(engine)
            _log(
                f"round {number}: incidents {wide_s[-1]:.1f} s ({result.moved:,} moved), "
                f"narrow table {narrow_s[-1]:.1f} s ({events:,} events)"
            )
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {NARROW}"))
    ratios = [w / n for w, n in zip(wide_s, narrow_s, strict=True)]
    _log(
        f"write-back median: incidents {statistics.median(wide_s):.1f} s, narrow table "
        f"{statistics.median(narrow_s):.1f} s: {statistics.median(ratios):.2f}x "
        f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
