"""The dispatcher's console in headless Chromium against the real service (uvicorn, the committed
demo county, the event stream): select the overdue case, see the responders of /dispatch/nearest
by ETA, assign with Enter, see the case leave the queue and the unit turn busy; two dispatchers
on one case (409 naming who assigned it); another town's dispatcher cannot see it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gis.layers.users import Role
from gis.settings import Settings
from tests.api.live_fixtures import Town, committed_users, demo_towns, live_settings, serve
from tests.browser import closed_network

pytestmark = pytest.mark.browser

LONG_AGO = "2020-01-01T08:00:00+08:00"


@pytest.fixture(scope="module")
def towns(demo: object, engine: Engine) -> list[Town]:
    return demo_towns(engine)


@pytest.fixture(scope="module")
def live(settings: Settings, engine: Engine, towns: list[Town]) -> Iterator[dict[str, Any]]:
    """The service; dispatchers of town A (two), of town B, the county; a grid member of A.
    Afterwards the cases reported here are deleted and the units' statuses restored."""
    from gis.api import create_app

    a, b = towns
    specs = {
        "console-a1": (Role.DISPATCHER, [a.code]),
        "console-a2": (Role.DISPATCHER, [a.code]),
        "console-b": (Role.DISPATCHER, [b.code]),
        "console-county": (Role.COUNTY, []),
        "console-planner": (Role.PLANNER, [a.code]),
    }
    with engine.connect() as conn:
        first_case = conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM incidents"))
        statuses = conn.execute(sa.text("SELECT id, status, updated_at FROM responder_units")).all()
    # Two more police stations of town A near its case point, so a case has a choice.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """
INSERT INTO responder_units (code, name, platform, unit_type, jurisdiction_code, status, geom,
                             updated_at)
SELECT :code, :name, 'governance', 'police_station', :town, 'available',
       ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), now()
"""
            ),
            [
                {"code": f"CONSOLE-P{i}", "name": f"测试派出所 {i}", "town": a.code,
                 "lon": a.lon + 0.004 * i, "lat": a.lat + 0.002 * i}
                for i in (1, 2)
            ],
        )  # fmt: skip
    app = create_app(live_settings(settings))
    try:
        with committed_users(engine, specs) as headers, serve(app) as url:
            tokens = {n: h["Authorization"].removeprefix("Bearer ") for n, h in headers.items()}
            yield {"url": url, "headers": headers, "tokens": tokens, "a": a, "b": b}
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM incidents WHERE id > :id"), {"id": first_case})
            conn.execute(sa.text("DELETE FROM responder_units WHERE code LIKE 'CONSOLE-P%'"))
            conn.execute(
                sa.text("UPDATE responder_units SET status = :s, updated_at = :u WHERE id = :id"),
                [{"id": i, "s": s, "u": u} for i, s, u in statuses],
            )


def report_overdue(
    live: dict[str, Any], engine: Engine, *, unassigned: bool, minutes: int = 0
) -> dict[str, Any]:
    """A case in town A reported through the API, then dated long ago so it is overdue and
    heads the queue by deadline; ``unassigned``: as if intake had found no unit."""
    town: Town = live["a"]
    reply = httpx.post(
        live["url"] + "/incidents",
        headers=live["headers"]["console-county"],
        json={
            "category": "public_security_hazard",
            "location": {"lon": town.lon, "lat": town.lat},
            "reporter": {"kind": "citizen"},
        },
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    case_id = int(reply.json()["id"])
    with engine.begin() as conn:
        # The test units are free again (an earlier test sent them out).
        conn.execute(
            sa.text("UPDATE responder_units SET status = 'available' WHERE code LIKE 'CONSOLE-P%'")
        )
        conn.execute(
            sa.text(
                """
UPDATE incidents SET reported_at = CAST(:t AS timestamptz) + make_interval(mins => :m),
       due_at = CAST(:t AS timestamptz) + make_interval(mins => :m) + interval '1 day',
       assigned_at = CASE WHEN :unassigned THEN NULL
                          ELSE CAST(:t AS timestamptz) + make_interval(mins => :m) END,
       unit_id = CASE WHEN :unassigned THEN NULL ELSE unit_id END,
       status = CASE WHEN :unassigned THEN 'reported' ELSE status END
WHERE id = :id
"""
            ),
            {"t": LONG_AGO, "m": minutes, "id": case_id, "unassigned": unassigned},
        )
        row = conn.execute(
            sa.text(
                "SELECT unit_id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM incidents WHERE id = :id"
            ),
            {"id": case_id},
        ).one()
    return {"id": case_id, "unit_id": row.unit_id, "lon": row.lon, "lat": row.lat}


def open_console(
    browser: Any, live: dict[str, Any], user: str, *, width: int = 1440, height: int = 900
) -> tuple[Any, list[str]]:
    """The console of town A as ``user``, loaded; returns the page and its script errors."""
    url = live["url"]
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_cookies([{"name": "gis_token", "value": live["tokens"][user], "url": url}])
    page = context.new_page()
    errors = closed_network(page, url)
    response = page.goto(f"{url}/console?town={live['a'].code}", wait_until="load")
    assert response is not None and response.status == 200
    page.wait_for_selector("body[data-ready='true']", timeout=20_000)
    return page, errors


def queue_ids(page: Any) -> list[int]:
    return [int(i) for i in page.locator("#queue li[data-id]").evaluate_all(
        "items => items.map(li => li.dataset.id)"
    )]  # fmt: skip


def select_case(page: Any, case_id: int) -> list[int]:
    """Select a case in the queue; returns the offered unit ids once the responders are shown."""
    page.click(f"#queue li[data-id='{case_id}']")
    page.wait_for_selector(f"#queue li[data-id='{case_id}'][aria-selected='true']")
    page.wait_for_function(
        "id => window.gisConsole.state.responders && "
        "window.gisConsole.state.responders.incident_id === id",
        arg=case_id,
        timeout=20_000,
    )
    page.wait_for_selector("#responders li[data-unit-id]", timeout=20_000)
    return [
        int(i)
        for i in page.locator("#responders li[data-unit-id]").evaluate_all(
            "items => items.map(li => li.dataset.unitId)"
        )
    ]


def test_select_the_overdue_case_and_assign_the_fastest_unit_with_enter(
    browser: Any, live: dict[str, Any], engine: Engine, tmp_path: Path
) -> None:
    case = report_overdue(live, engine, unassigned=False)
    page, errors = open_console(browser, live, "console-a1")
    assert case["id"] in queue_ids(page)
    overdue = page.locator(f"#queue li[data-id='{case['id']}'] .tag[data-bucket='overdue']")
    assert overdue.count() == 1
    offered = select_case(page, case["id"])
    # The map (Leaflet arrives beside the first paint) draws the case and the offered routes.
    page.wait_for_function(
        "() => window.gisConsole.map.map !== null && "
        "window.gisConsole.map.routes.getLayers().length > 0 && "
        "window.gisConsole.map.marker.getLayers().length === 1",
        timeout=20_000,
    )
    page.screenshot(path=str(tmp_path / "console-wide.png"), full_page=True)
    # The same units, in the same order, as /dispatch/nearest by drive time for the case's
    # unit type, platform and jurisdiction; their ETAs never decrease.
    nearest = httpx.get(
        live["url"] + "/dispatch/nearest",
        headers=live["headers"]["console-a1"],
        params={
            "lon": case["lon"], "lat": case["lat"], "unit_type": "police_station",
            "platform": "governance", "by": "drive_time", "k": 5, "jurisdiction": live["a"].code,
        },
        timeout=20,
    )  # fmt: skip
    assert nearest.status_code == 200, nearest.text
    expected = [u["id"] for u in nearest.json()["units"]]
    assert offered == expected and len(offered) >= 2
    etas = [u["eta_s"] for u in nearest.json()["units"] if u["reachable"]]
    assert etas == sorted(etas)
    shown = page.evaluate("window.gisConsole.state.responders.units.map(u => u.eta_s)")
    assert shown == [u["eta_s"] for u in nearest.json()["units"]]
    # Enter assigns the first suggestion that is not the case's current unit.
    target = next(u for u in offered if u != case["unit_id"])
    page.locator("body").press("Enter")
    page.wait_for_function(
        "id => !document.querySelector(`#queue li[data-id='${id}']`)",
        arg=case["id"],
        timeout=20_000,
    )
    assert "已派遣 Assigned" in page.inner_text("#console-message")
    page.wait_for_selector(
        f"#board tr[data-unit-id='{target}'][data-status='busy']", timeout=20_000
    )
    unit = httpx.get(
        f"{live['url']}/units/{target}", headers=live["headers"]["console-a1"], timeout=10
    ).json()
    assert unit["status"] == "busy"
    log = httpx.get(
        f"{live['url']}/incidents/{case['id']}/events",
        headers=live["headers"]["console-a1"],
        timeout=10,
    ).json()
    assert log["incident"]["unit_id"] == target and log["events"][-1]["actor"] == "console-a1"
    page.screenshot(path=str(tmp_path / "console-assigned.png"), full_page=True)
    # j / k move the selection (the demo town's queue holds many more than two cases), and the
    # responders follow it.
    first = queue_ids(page)[:2]
    assert len(first) == 2
    page.click(f"#queue li[data-id='{first[0]}']")
    page.locator("body").press("j")
    page.wait_for_selector(f"#queue li[data-id='{first[1]}'][aria-selected='true']")
    page.wait_for_function(
        "id => window.gisConsole.state.responders?.incident_id === id", arg=first[1]
    )
    page.locator("body").press("k")
    page.wait_for_selector(f"#queue li[data-id='{first[0]}'][aria-selected='true']")
    page.wait_for_function(
        "id => window.gisConsole.state.responders?.incident_id === id", arg=first[0]
    )
    # Keys typed into the note are text, not shortcuts.
    page.fill("#assign-note", "j")
    page.locator("#assign-note").press("j")
    assert page.locator(f"#queue li[data-id='{first[0]}'][aria-selected='true']").count() == 1
    assert errors == []
    page.context.close()


def test_the_board_names_unit_types_and_changes_a_units_status(
    browser: Any, live: dict[str, Any], engine: Engine, tmp_path: Path
) -> None:
    with engine.connect() as conn:
        unit_id = conn.scalar(sa.text("SELECT id FROM responder_units WHERE code = 'CONSOLE-P1'"))
    page, errors = open_console(browser, live, "console-a1")
    row = page.locator(f"#board tr[data-unit-id='{unit_id}']")
    # The type by its name, Chinese first, not the raw enum value.
    assert row.locator("td").nth(1).inner_text() == "派出所 police station"
    assert "police_station" not in page.inner_text("#board")
    row.locator("select").select_option("off_duty")
    page.wait_for_selector(
        f"#board tr[data-unit-id='{unit_id}'][data-status='off_duty']", timeout=20_000
    )
    assert "休 off duty" in page.inner_text("#console-message")
    reply = httpx.get(
        f"{live['url']}/units/{unit_id}", headers=live["headers"]["console-a1"], timeout=10
    )
    assert reply.json()["status"] == "off_duty"
    page.screenshot(path=str(tmp_path / "console-board.png"), full_page=True)
    page.locator(f"#board tr[data-unit-id='{unit_id}'] select").select_option("available")
    page.wait_for_selector(
        f"#board tr[data-unit-id='{unit_id}'][data-status='available']", timeout=20_000
    )
    assert errors == []
    page.context.close()


def test_filters_and_sort_narrow_the_queue_as_the_api_does(
    browser: Any, live: dict[str, Any], engine: Engine
) -> None:
    report_overdue(live, engine, unassigned=True, minutes=4)
    page, errors = open_console(browser, live, "console-a1")
    # The category list is filled beside the first paint.
    page.wait_for_selector(
        "#filter-category option[value='public_security_hazard']", state="attached"
    )
    params = {"town": live["a"].code, "platform": "governance",
              "category": "public_security_hazard", "sort": "age"}  # fmt: skip
    expected = httpx.get(
        f"{live['url']}/dispatch/queue",
        headers=live["headers"]["console-a1"],
        params=params,
        timeout=20,
    ).json()
    assert expected["items"], "the overdue case reported above matches the filters"
    page.select_option("#filter-platform", "governance")
    page.select_option("#filter-category", "public_security_hazard")
    page.select_option("#sort", "age")
    page.wait_for_function(
        "ids => JSON.stringify(window.gisConsole.state.items.map(i => i.id)) === ids",
        arg=str([i["id"] for i in expected["items"]]).replace(" ", ""),
        timeout=20_000,
    )
    assert queue_ids(page) == [i["id"] for i in expected["items"]]
    assert page.inner_text("#queue-total") == str(expected["total"])
    assert errors == []
    page.context.close()


def test_two_dispatchers_on_one_case_one_wins_the_other_gets_409_with_who(
    browser: Any, live: dict[str, Any], engine: Engine, tmp_path: Path
) -> None:
    case = report_overdue(live, engine, unassigned=True, minutes=1)
    first, first_errors = open_console(browser, live, "console-a1")
    # The second dispatcher's live feed lags (its stream is cut): its view goes stale.
    second, second_errors = open_console(browser, live, "console-a2", width=360, height=780)
    select_case(first, case["id"])
    select_case(second, case["id"])
    second.screenshot(path=str(tmp_path / "console-phone.png"), full_page=True)
    # At 360 px the panels are stacked: nothing sticks out sideways.
    assert second.evaluate("document.documentElement.scrollWidth") <= 360
    second.route("**/events/stream*", lambda route: route.abort())
    second.evaluate("window.gisConsoleStream && window.gisConsoleStream.close()")
    first.locator("body").press("Enter")
    first.wait_for_function(
        "id => !document.querySelector(`#queue li[data-id='${id}']`)",
        arg=case["id"],
        timeout=20_000,
    )
    second.locator("body").press("Enter")
    second.wait_for_selector("#console-message.error", timeout=20_000)
    message = second.inner_text("#console-message")
    assert "console-a1" in message and "未派遣 Not assigned" in message
    # ... and its queue is refreshed: the case, now assigned, has left it.
    second.wait_for_function(
        "id => !document.querySelector(`#queue li[data-id='${id}']`)",
        arg=case["id"],
        timeout=20_000,
    )
    second.screenshot(path=str(tmp_path / "console-conflict.png"), full_page=True)
    assert first_errors == []
    # The page reports the 409 it was answered (a failed load); nothing else went wrong.
    assert [e for e in second_errors if "409" not in e] == []
    first.context.close()
    second.context.close()


def test_simultaneous_assignments_one_wins_and_the_loser_learns_who(
    live: dict[str, Any], engine: Engine
) -> None:
    case = report_overdue(live, engine, unassigned=True, minutes=2)
    responders = httpx.get(
        f"{live['url']}/incidents/{case['id']}/responders",
        headers=live["headers"]["console-a1"],
        timeout=20,
    ).json()["units"]
    assert len(responders) >= 2
    replies: dict[str, httpx.Response] = {}
    barrier = threading.Barrier(2)

    def post(user: str, unit_id: int) -> None:
        barrier.wait()
        replies[user] = httpx.post(
            f"{live['url']}/incidents/{case['id']}/actions",
            headers=live["headers"][user],
            json={"action": "assign", "unit_id": unit_id, "expected_unit_id": 0},
            timeout=20,
        )

    threads = [
        threading.Thread(target=post, args=("console-a1", responders[0]["id"])),
        threading.Thread(target=post, args=("console-a2", responders[1]["id"])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in replies.values())
    assert statuses == [200, 409], {u: r.text for u, r in replies.items()}
    winner = next(u for u, r in replies.items() if r.status_code == 200)
    loser = replies[next(u for u, r in replies.items() if r.status_code == 409)].json()
    assert loser["code"] == "assigned_elsewhere" and loser["assigned_by"] == winner


def test_another_towns_dispatcher_cannot_see_the_case_and_others_are_refused(
    browser: Any, live: dict[str, Any], engine: Engine
) -> None:
    case = report_overdue(live, engine, unassigned=True, minutes=3)
    other = live["headers"]["console-b"]
    url = live["url"]
    assert httpx.get(f"{url}/incidents/{case['id']}/responders", headers=other).status_code == 404
    assert (
        httpx.get(f"{url}/console", params={"town": live["a"].code}, headers=other).status_code
        == 404
    )
    taken = httpx.post(
        f"{url}/incidents/{case['id']}/actions",
        headers=other,
        json={"action": "assign", "unit_id": 1, "expected_unit_id": 0},
    )
    assert taken.status_code == 404
    # Nor change a unit of A (the board's status menu): 404, as for the case.
    with engine.connect() as conn:
        unit_id = conn.scalar(sa.text("SELECT id FROM responder_units WHERE code = 'CONSOLE-P2'"))
    status = httpx.patch(f"{url}/units/{unit_id}", headers=other, json={"status": "off_duty"})
    assert status.status_code == 404
    own = httpx.get(f"{url}/dispatch/queue", params={"town": live["b"].code}, headers=other)
    assert own.status_code == 200 and case["id"] not in [i["id"] for i in own.json()["items"]]
    planner = live["headers"]["console-planner"]
    assert (
        httpx.get(f"{url}/console", params={"town": live["a"].code}, headers=planner).status_code
        == 403
    )
    assert httpx.get(f"{url}/console", params={"town": live["a"].code}).status_code == 401
    # In the browser: B's console of its own town loads, without A's case.
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_cookies([{"name": "gis_token", "value": live["tokens"]["console-b"], "url": url}])
    page = context.new_page()
    errors = closed_network(page, url)
    page.goto(f"{url}/console?town={live['b'].code}", wait_until="load")
    page.wait_for_selector("body[data-ready='true']", timeout=20_000)
    assert page.locator(f"#queue li[data-id='{case['id']}']").count() == 0
    assert errors == []
    context.close()
