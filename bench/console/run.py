"""The dispatcher's console in Chromium against the service, on the busiest town of a database.

    python -m bench.console --database-url postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_perf

Starts the service (uvicorn, one worker, ``GIS_AUTH_REQUIRED=false`` so nothing is written: no
user, no token) and headless Chromium, then measures:

- **first paint**: from navigation start to the queue, the counts and the unit board drawn
  (``body[data-ready]``), over ``--loads`` fresh page loads; the queue's and the board's own
  server time (TTFB of their requests, Resource Timing) beside it;
- **responders**: for the first ``--cases`` cases of the queue, from the selection to the
  responders drawn (drive time included), split into the server's part (TTFB of
  ``/incidents/{id}/responders``) and the browser's (the rest: transfer, parsing, drawing the
  list and the routes);
- the **baseline**, in the same run: ``GET /dispatch/nearest?by=drive_time`` for the same places
  over HTTP (the existing endpoint the responders build on), and the responders endpoint over
  plain HTTP; the ratios say what the exclusions, the routes and the browser add.

With ``--compare main`` the same measures are taken, in the same run and on the same data, of
another version checked out into a temporary worktree (its server started from there).

Medians and p90 in milliseconds. Reads only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from contextlib import ExitStack
from typing import Any

import httpx
import sqlalchemy as sa

from bench.server import ROOT, baseline_checkout, serve

DEFAULT_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/gis_bench_perf"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

BUSIEST_TOWN = sa.text(
    """
SELECT town_code FROM incidents
WHERE town_code IS NOT NULL AND status NOT IN ('closed', 'cancelled', 'duplicate', 'resolved')
GROUP BY town_code ORDER BY count(*) DESC, town_code LIMIT 1
"""
)
CASE_PLACE = sa.text(
    """
SELECT i.id, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, c.unit_type, c.platform
FROM incidents AS i JOIN categories AS c ON c.code = i.category_code WHERE i.id = ANY(:ids)
"""
)


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0–1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(name: str, values: list[float], baseline: float | None = None) -> str:
    """One result row: median, p90, n and the ratio to a baseline median."""
    median = statistics.median(values)
    ratio = f"{median / baseline:6.2f}x" if baseline else "       "
    p90 = pct(values, 0.9)
    return f"  {name:<46} median {median:7.1f} ms  p90 {p90:7.1f} ms  n={len(values):<3} {ratio}"


def load() -> str:
    """The 1, 5 and 15-minute load averages of the machine."""
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def http_ms(client: httpx.Client, path: str, params: dict[str, object]) -> float:
    """Milliseconds for one GET (the answer must be 200)."""
    start = time.perf_counter()
    reply = client.get(path, params=params)
    elapsed = (time.perf_counter() - start) * 1000
    reply.raise_for_status()
    return elapsed


TTFB_JS = """
(fragment) => performance.getEntriesByType('resource')
  .filter((e) => e.name.includes(fragment))
  .map((e) => ({server: e.responseStart - e.requestStart, total: e.responseEnd - e.startTime}))
"""


# A selection is done when its responders are drawn and the place's requests after them
# (village, grids, cameras) are answered: the next selection then starts on an idle server, as
# a person's would. An older page has no ``placeOf``: there, its n-th cameras request answered.
SELECTED_JS = """
([id, n]) => {
  const s = window.gisConsole.state;
  if ('placeOf' in s) return s.placeOf === id;
  const cameras = performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/cameras/seeing')).length;
  return Boolean(s.responders && s.responders.incident_id === id) && cameras >= n;
}
"""


def measure(browser: Any, client: httpx.Client, url: str, town: str, args: Any,
            engine: sa.Engine) -> dict[str, list[float]]:  # fmt: skip
    """Every measure of one served version of the console (see the module's docstring)."""
    # Warm the process: one untimed load that selects a case (every route's first call).
    page = browser.new_page()
    page.goto(url, wait_until="commit")
    page.wait_for_selector("body[data-ready='true']", timeout=120_000)
    page.wait_for_function("window.gisConsole.state.responders !== null", timeout=120_000)
    page.close()

    out: dict[str, list[float]] = {"paint": [], "queue_ttfb": [], "board_ttfb": []}
    for _ in range(args.loads):
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(url, wait_until="commit")
        page.wait_for_selector("body[data-ready='true']", timeout=60_000)
        out["paint"].append(page.evaluate("window.gisConsole.state.timings.firstPaint"))
        out["queue_ttfb"] += [e["server"] for e in page.evaluate(TTFB_JS, "/dispatch/queue")]
        out["board_ttfb"] += [e["server"] for e in page.evaluate(TTFB_JS, "/dispatch/board")]
        ids = page.evaluate("window.gisConsole.state.items.map((i) => i.id)")
        page.close()

    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(url, wait_until="commit")
    page.wait_for_selector("body[data-ready='true']", timeout=60_000)
    page.wait_for_function("window.gisConsole.state.responders !== null", timeout=60_000)
    chosen = ids[: args.cases]
    page.evaluate(
        "performance.clearResourceTimings(); window.gisConsole.state.timings.responders = []"
    )
    for n, case_id in enumerate(chosen, start=1):
        page.evaluate("(id) => window.gisConsole.select(id)", case_id)
        page.wait_for_function(SELECTED_JS, arg=[case_id, n], timeout=60_000)
    out["drawn"] = page.evaluate("window.gisConsole.state.timings.responders")
    entries = page.evaluate(TTFB_JS, "/responders")
    out["server"] = [e["server"] for e in entries]
    out["browser"] = [t - e["total"] for t, e in zip(out["drawn"], entries, strict=False)]
    page.close()

    with engine.connect() as conn:
        places = {r.id: r for r in conn.execute(CASE_PLACE, {"ids": chosen})}
    out["nearest"], out["responders_http"] = [], []
    for case_id in chosen:
        place = places[case_id]
        out["nearest"].append(
            http_ms(
                client,
                "/dispatch/nearest",
                {"lon": place.lon, "lat": place.lat, "unit_type": place.unit_type,
                 "platform": place.platform, "by": "drive_time", "k": 5},
            )
        )  # fmt: skip
        out["responders_http"].append(http_ms(client, f"/incidents/{case_id}/responders", {"k": 5}))
    for name in ("queue", "board"):
        out[f"{name}_http"] = [
            http_ms(client, f"/dispatch/{name}", {"town": town}) for _ in range(args.loads)
        ]
    return out


def report(name: str, out: dict[str, list[float]], loads: int) -> None:
    """Print one version's table; ratios against its own bare /dispatch/nearest."""
    base = statistics.median(out["nearest"])
    print(f"== {name}")
    print(f"first paint (queue, counts, board drawn), {loads} loads, 1920x1080:")
    print(line("first paint (navigation start → ready)", out["paint"]))
    print(line("  server: GET /dispatch/queue (TTFB)", out["queue_ttfb"]))
    print(line("  server: GET /dispatch/board (TTFB)", out["board_ttfb"]))
    print(line("  GET /dispatch/queue over HTTP", out["queue_http"]))
    print(line("  GET /dispatch/board over HTTP", out["board_http"]))
    print(f"responders of a selected case, {len(out['drawn'])} cases (k=5, drive time, routes):")
    print(line("baseline: GET /dispatch/nearest?by=drive_time", out["nearest"]))
    print(line("GET /incidents/{id}/responders over HTTP", out["responders_http"], base))
    print(line("console: select → responders drawn", out["drawn"], base))
    print(line("  server part (TTFB)", out["server"], base))
    print(line("  browser part (transfer, parse, draw)", out["browser"]))


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table(s)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--town", help="Town code (default: the one with most active cases)")
    parser.add_argument("--loads", type=int, default=7, help="Fresh page loads (first paint)")
    parser.add_argument("--cases", type=int, default=25, help="Cases selected (responders)")
    parser.add_argument(
        "--compare", metavar="REF", help="Also measure this git ref (e.g. main), same run"
    )
    args = parser.parse_args(argv)

    engine = sa.create_engine(args.database_url)
    with engine.connect() as conn:
        town = args.town or conn.scalar(BUSIEST_TOWN)
        grids = conn.scalar(sa.text("SELECT count(*) FROM grids WHERE valid_to IS NULL"))
        cases = conn.scalar(sa.text("SELECT count(*) FROM incidents"))
        units = conn.scalar(sa.text("SELECT count(*) FROM responder_units"))
    print(f"database: {grids:,} grids, {cases:,} cases, {units:,} units; town {town}")
    print(f"load average at start: {load()}")

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    env = {"GIS_DATABASE_URL": args.database_url, "GIS_AUTH_REQUIRED": "false"}
    results: list[tuple[str, dict[str, list[float]]]] = []
    with ExitStack() as stack, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            **({"executable_path": chromium} if chromium else {}), args=LAUNCH_ARGS
        )
        roots = [("this checkout", ROOT)]
        if args.compare:
            roots.append((args.compare, stack.enter_context(baseline_checkout(args.compare))))
        for name, root in roots:
            with serve(env, ready_s=180, root=root) as server:
                client = httpx.Client(base_url=server.base, timeout=60)
                url = f"{server.base}/console?town={town}"
                results.append((name, measure(browser, client, url, town, args, engine)))
            print(f"load average after {name}: {load()}")
        browser.close()
    for name, out in results:
        report(name, out, args.loads)
    print(f"cpu count: {os.cpu_count()}")
