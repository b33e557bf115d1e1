"""The town × month × platform closure table, from the event log, against a pandas baseline.

    python -m bench.stats --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench

Refreshes the stored per-case facts once (timed), then runs ``gis.services.stats.case_figures``
grouped by town, month and platform over the whole history: from the stored facts (the default
path, ``--repeat`` runs) and exactly from the events as of the last event (``--exact-repeat``
runs). In the same run, the baseline fetches the cases and their events into pandas (COPY,
numeric columns only) and computes the same figures there; fetch and computation are timed
apart. The results are compared group by group (received, closed, on time, reworked, extended,
overdue), so the benchmark also checks the SQL against an independent implementation.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.db import make_engine
from gis.services import stats
from gis.settings import Settings

DEFAULT_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench"
ACTIONS = ("report", "close", "reopen", "resolve", "return", "cancel", "mark_duplicate", "extend")
CODE = {name: i for i, name in enumerate(ACTIONS)}
SHANGHAI_OFFSET_S = 8 * 3600
KEYS = ["town_code", "month", "platform"]
CHECKED = ["received", "valid", "closed", "closed_on_time", "reworked", "extended", "overdue_open"]


def _copy(engine: sa.Engine, sql: str, dtype: dict[str, str] | None = None) -> pd.DataFrame:
    """Rows of ``sql`` through COPY … TO STDOUT (CSV) into a DataFrame."""
    buffer = io.BytesIO()
    with engine.connect() as connection:
        raw: Any = connection.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH CSV HEADER") as copy:
            for block in copy:
                buffer.write(block)
    buffer.seek(0)
    return pd.read_csv(buffer, na_values=[""], keep_default_na=False, dtype=dtype)


def fetch(engine: sa.Engine, as_of: datetime) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cases, their events (numeric action codes) and their extensions, as of ``as_of``."""
    stamp = f"'{as_of.isoformat()}'::timestamptz"
    cases = _copy(
        engine,
        "SELECT id, town_code, platform, extract(epoch FROM reported_at)::bigint AS reported, "
        "extract(epoch FROM due_at)::bigint AS due FROM incidents",
        dtype={"town_code": "str", "platform": "str"},
    )
    when = " ".join(f"WHEN '{name}' THEN {code}" for name, code in CODE.items())
    events = _copy(
        engine,
        f"SELECT incident_id, extract(epoch FROM at)::bigint AS t, "
        f"CASE action {when} ELSE -1 END AS action FROM incident_events WHERE at <= {stamp}",
    )
    extensions = _copy(
        engine,
        "SELECT incident_id, extract(epoch FROM at)::bigint AS t, "
        "extract(epoch FROM (data ->> 'due_at')::timestamptz)::bigint AS due, "
        "extract(epoch FROM (data ->> 'previous_due_at')::timestamptz)::bigint AS previous "
        "FROM incident_events WHERE action = 'extend'",
    )
    return cases, events, extensions


def pandas_figures(
    cases: pd.DataFrame, events: pd.DataFrame, extensions: pd.DataFrame, as_of: datetime
) -> pd.DataFrame:
    """The same figures as the SQL, computed in pandas from the fetched rows."""
    now = int(as_of.timestamp())

    def last(code: int) -> pd.Series:
        return events.loc[events.action == code].groupby("incident_id").t.max()

    def any_of(*codes: int) -> pd.Series:
        hit = events.loc[events.action.isin(codes), "incident_id"].unique()
        return pd.Series(True, index=hit)

    facts = pd.DataFrame(index=pd.Index(events.incident_id.unique(), name="id"))
    facts["last_close"] = last(CODE["close"])
    facts["last_reopen"] = last(CODE["reopen"])
    facts["last_resolve"] = last(CODE["resolve"])
    facts["last_return"] = (
        events.loc[events.action.isin([CODE["return"], CODE["reopen"]])]
        .groupby("incident_id")
        .t.max()
    )
    for name, codes in (
        ("cancelled", (CODE["cancel"],)),
        ("duplicate", (CODE["mark_duplicate"],)),
        ("extended", (CODE["extend"],)),
        ("reworked", (CODE["return"], CODE["reopen"])),
    ):
        facts[name] = any_of(*codes).reindex(facts.index, fill_value=False).astype(bool)
    facts = facts.join(cases.set_index("id"), how="inner")
    within = extensions.loc[extensions.t <= now].sort_values(["incident_id", "t"])
    facts["last_ext_due"] = within.groupby("incident_id").due.last()
    first = extensions.sort_values(["incident_id", "t"]).groupby("incident_id").previous.first()
    facts["first_ext_previous"] = first
    facts["due_in_force"] = (
        facts.last_ext_due.fillna(facts.first_ext_previous).fillna(facts.due).astype("float64")
    )
    closed = facts.last_close.notna() & (
        facts.last_reopen.isna() | (facts.last_reopen < facts.last_close)
    )
    valid = ~(facts.cancelled | facts.duplicate)
    resolved = facts.last_resolve.notna()
    waiting = resolved & (facts.last_return.isna() | (facts.last_return < facts.last_resolve))
    frame = pd.DataFrame(
        {
            "town_code": facts.town_code,
            "month": pd.to_datetime(facts.reported + SHANGHAI_OFFSET_S, unit="s")
            .dt.to_period("M")
            .dt.start_time.dt.date,
            "platform": facts.platform,
            "received": 1,
            "valid": valid,
            "closed": closed,
            "closed_on_time": closed & (facts.last_close <= facts.due_in_force),
            "reworked": valid & resolved & facts.reworked,
            "extended": valid & facts.extended,
            "overdue_open": valid & ~closed & ~waiting & (facts.due_in_force < now),
            "hours": np.where(closed, (facts.last_close - facts.reported) / 3600, np.nan),
        }
    )
    grouped = frame.groupby(KEYS)
    out = grouped[CHECKED].sum()
    out["median_hours_to_close"] = grouped.hours.median()
    out["closure_rate"] = (out.closed / out.valid.where(out.valid > 0)).round(4)
    return out.reset_index()


def _backend_cpu_s(session: Session) -> float | None:
    """CPU seconds used so far by this session's PostgreSQL backend (local server, Linux)."""
    pid = session.scalar(sa.text("SELECT pg_backend_pid()"))
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serial_cpu_s(engine: sa.Engine, query: stats.StatsQuery) -> float | None:
    """Backend CPU seconds of one run without parallel workers: a figure the other engineers'
    load on a shared machine does not change (wall times do)."""
    with Session(engine) as session:
        session.execute(sa.text("SET max_parallel_workers_per_gather = 0"))
        before = _backend_cpu_s(session)
        stats.case_figures(session, query)
        after = _backend_cpu_s(session)
    return None if before is None or after is None else after - before


def _time(run: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def _agree(sql: pd.DataFrame, table: pd.DataFrame, columns: list[str], name: str) -> None:
    """Stop with an error unless the SQL rows and the pandas rows agree on ``columns``."""
    merged = sql[KEYS + columns].merge(
        table[KEYS + columns], on=KEYS, how="outer", suffixes=("_sql", "_pd")
    )
    mismatched = [
        column
        for column in columns
        if not (merged[f"{column}_sql"].fillna(-1) == merged[f"{column}_pd"].fillna(-1)).all()
    ]
    if mismatched:
        sys.exit(f"MISMATCH between SQL ({name}) and pandas in: {', '.join(mismatched)}")
    print(f"SQL ({name}) and pandas agree on {', '.join(columns)} in all {len(merged)} groups")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table of timings and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--repeat", type=int, default=5, help="Runs of the SQL table")
    parser.add_argument("--exact-repeat", type=int, default=2, help="Runs of the exact SQL")
    parser.add_argument("--baseline-repeat", type=int, default=1, help="Runs of the baseline")
    args = parser.parse_args(argv)

    settings = Settings(database_url=args.database_url, db_statement_timeout_ms=600_000)
    engine = make_engine(settings)
    with engine.connect() as connection:
        n_cases, n_events, first, last_at = connection.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM incidents), (SELECT count(*) FROM incident_events),"
                " (SELECT min(reported_at) FROM incidents), (SELECT max(at) FROM incident_events)"
            )
        ).one()
    if not n_cases:
        sys.exit(f"no incidents in {args.database_url}: load the demo first (gis sample load)")
    print(f"{n_cases:,} cases, {n_events:,} events, {first:%Y-%m-%d} … {last_at:%Y-%m-%d}")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores)")
    group_by = ("town", "month", "platform")
    end = last_at + timedelta(seconds=1)

    def timed_runs(
        query: stats.StatsQuery, repeat: int
    ) -> tuple[list[float], list[dict[str, Any]]]:
        timings, rows = [], []
        for _ in range(repeat):
            with Session(engine) as session:
                elapsed, rows = _time(lambda s=session: stats.case_figures(s, query))
            timings.append(elapsed)
        return timings, rows

    with Session(engine) as session:
        refresh_s, _ = _time(lambda: stats.refresh_facts(session))
        session.commit()
    print(f"refresh of the stored facts (gis stats refresh): {refresh_s:.3f} s")

    stored_query = stats.StatsQuery(first, end, None, group_by=group_by)
    stored_t, stored_rows = timed_runs(stored_query, args.repeat)
    stored = statistics.median(stored_t)
    print(
        f"SQL, stored facts (default): {len(stored_rows)} rows; median {stored:.3f} s, "
        f"worst {max(stored_t):.3f} s over {len(stored_t)} runs"
    )
    for other in (("grid",), ("category", "week"), ("unit",)):
        other_t, other_rows = timed_runs(stats.StatsQuery(first, end, None, group_by=other), 1)
        name = "×".join(other)
        print(f"SQL, stored facts by {name}: {len(other_rows)} rows in {other_t[0]:.3f} s")
    cpu = serial_cpu_s(engine, stored_query)
    if cpu is not None:
        print(f"SQL, stored facts: {cpu:.2f} s of backend CPU in one serial run")
    exact_query = stats.StatsQuery(first, end, last_at, group_by=group_by)
    exact_t, rows = timed_runs(exact_query, args.exact_repeat)
    exact = statistics.median(exact_t)
    print(
        f"SQL, exact from the events (as_of given): median {exact:.3f} s, "
        f"worst {max(exact_t):.3f} s over {len(exact_t)} runs"
    )

    cpu = serial_cpu_s(engine, exact_query)
    if cpu is not None:
        print(f"SQL, exact: {cpu:.2f} s of backend CPU in one serial run")

    fetches, computes = [], []
    table = pd.DataFrame()
    for _ in range(args.baseline_repeat):
        fetched_s, fetched = _time(lambda: fetch(engine, last_at))
        computed_s, table = _time(lambda f=fetched: pandas_figures(*f, as_of=last_at))
        fetches.append(fetched_s)
        computes.append(computed_s)
        del fetched
    baseline = statistics.median(fetches) + statistics.median(computes)
    print(
        f"pandas baseline: fetch {statistics.median(fetches):.3f} s + compute "
        f"{statistics.median(computes):.3f} s = {baseline:.3f} s; {len(table)} rows"
    )
    print(
        f"ratios: pandas / stored {baseline / stored:.1f}x, pandas / exact {baseline / exact:.1f}x,"
        f" exact / stored {exact / stored:.1f}x (> 1: the first is slower)"
    )
    _agree(pd.DataFrame(stored_rows), table, [c for c in CHECKED if c != "overdue_open"], "stored")

    sql = pd.DataFrame(rows)
    _agree(sql, table, CHECKED, "exact")
    totals = sql[["received", "valid", "closed"]].sum()
    print(
        f"county: 受理 {totals.received:,} 件，办结 {totals.closed:,} 件，"
        f"办结率 {totals.closed / totals.valid * 100:.1f}%"
    )
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    engine.dispose()


if __name__ == "__main__":
    main()
