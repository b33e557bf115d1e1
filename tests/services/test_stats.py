"""Statistics on a hand-made event history, checked against figures computed by hand.

The history (T0 = Monday 2 March 2026 01:00 UTC; hours after the report; due 72 h unless said):

    grid G1 (town 甲镇, governance, police)
      A  resolve 10, close 12                          closed on time, 12 h
      B  resolve 80, close 90                          closed late, 90 h
      C  extend at 48 to 120 h, resolve 100, close 110 closed on time (extended), 110 h
      D  resolve 5, return 6, start 7, resolve 20, close 24   closed on time, reworked, 24 h
      E  resolve 8, close 10, reopen 30               open again (returned), reworked, overdue
      G  mark_duplicate of A at 2                      not valid
      H  cancel at 1                                   not valid
      L  reported 20 February                          outside the March window
    grid G2 (甲镇)
      F  reassigned at 1 to the market office, resolve 30, close 40   market, on time, 40 h
      I  reported 28 March, due in 30 days, accepted   open, not overdue
      J  resolve 70 (due 72), never verified           awaiting verification, not overdue
    grid G3 (乙镇, enforcement)
      K  resolve 5, close 6                            closed on time, 6 h
      M  reported 30 March, accepted; started, resolved and closed after as_of (1 April)

as_of = 1 April 2026 00:00 UTC; window = March 2026 (UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gis.errors import ValidationError
from gis.layers.base import utcnow
from gis.layers.incidents import Incident
from gis.services.stats import (
    METRICS,
    StatsQuery,
    case_figures,
    default_start,
    grid_figures,
    last_refresh,
    parse_group_by,
    refresh_facts,
    to_csv,
    town_summaries,
)
from gis.services.workflow import apply_action
from tests.services.workflow_fixtures import (
    G1,
    G2,
    G3,
    TOWN_1,
    TOWN_2,
    add_case,
    build_county,
    build_history,
    closed_flow,
    hours_after,
    inject_event,
    run_steps,
)

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)
# The demo county may be loaded in the same database: count only the hand-made towns.
OURS = (TOWN_1, TOWN_2)


@pytest.fixture
def history(session: Session, catalog: int) -> dict[str, int]:
    return build_history(session)


def _figures(session: Session, *group_by: str, **kw: Any) -> list[dict[str, Any]]:
    kw.setdefault("town_codes", OURS)
    return case_figures(session, StatsQuery(MARCH, APRIL, APRIL, group_by=group_by, **kw))


def test_county_totals_match_the_hand_computed_figures(
    session: Session, history: dict[str, int]
) -> None:
    [total] = _figures(session)
    expected = {
        "received": 12,
        "cancelled": 1,
        "duplicate": 1,
        "valid": 10,
        "closed": 6,  # A B C D F K
        "closure_rate": 0.6,
        "closed_on_time": 5,  # all but B
        "on_time_rate": 0.8333,
        "resolved_ever": 8,  # A B C D E F J K
        "reworked": 2,  # D (returned) and E (reopened)
        "rework_rate": 0.25,
        "extended": 1,
        "extension_rate": 0.1,
        "reassigned": 1,
        "escalated": 0,
        "overdue_open": 1,  # E; J waits for verification, I and M are not due yet
        "median_hours_to_close": 32.0,  # 6 12 24 | 40 90 110
        "p90_hours_to_close": 100.0,  # 90 + 0.5 × (110 − 90)
    }
    assert {key: total[key] for key in expected} == expected


def test_figures_by_platform_follow_the_reassigned_case(
    session: Session, history: dict[str, int]
) -> None:
    rows = {row["platform"]: row for row in _figures(session, "platform")}
    assert set(rows) == {"enforcement", "governance", "market"}
    governance = rows["governance"]
    assert (governance["received"], governance["valid"], governance["closed"]) == (9, 7, 4)
    assert governance["closure_rate"] == 0.5714
    assert (governance["closed_on_time"], governance["on_time_rate"]) == (3, 0.75)
    assert (governance["reworked"], governance["resolved_ever"]) == (2, 6)
    assert governance["rework_rate"] == 0.3333
    assert governance["median_hours_to_close"] == 57.0  # 12 24 | 90 110
    assert governance["p90_hours_to_close"] == 104.0  # 90 + 0.7 × 20
    market = rows["market"]
    assert (market["received"], market["closed"], market["reassigned"]) == (1, 1, 1)
    assert market["median_hours_to_close"] == 40.0
    enforcement = rows["enforcement"]
    # M closes after as_of: received, not closed, not overdue (due 2 April).
    assert (enforcement["received"], enforcement["closed"], enforcement["overdue_open"]) == (
        2,
        1,
        0,
    )
    assert enforcement["closure_rate"] == 0.5


def test_events_after_as_of_do_not_count(session: Session, history: dict[str, int]) -> None:
    later = datetime(2026, 4, 10, tzinfo=UTC)
    [total] = case_figures(session, StatsQuery(MARCH, APRIL, later, town_codes=OURS))
    assert total["closed"] == 7  # M too
    # Before E was reopened (at +30 h) it counted as closed; D was between its resolutions.
    early = hours_after(26)
    [before] = case_figures(session, StatsQuery(MARCH, APRIL, early, town_codes=OURS))
    assert before["received"] == 10  # I and M not yet reported
    closed_then = {"A", "D", "E", "K"}  # closes at 12, 24, 10, 6 h
    assert before["closed"] == len(closed_then)
    assert before["reworked"] == 1  # only D's return


def test_window_selects_the_cohort_by_report_time(
    session: Session, history: dict[str, int]
) -> None:
    [february] = case_figures(
        session, StatsQuery(datetime(2026, 2, 1, tzinfo=UTC), MARCH, APRIL, town_codes=OURS)
    )
    assert (february["received"], february["closed"], february["median_hours_to_close"]) == (
        1,
        1,
        4.0,
    )


def test_grid_rows_for_the_choropleth(session: Session, history: dict[str, int]) -> None:
    rows = grid_figures(session, StatsQuery(MARCH, APRIL, APRIL, town_codes=OURS))
    assert rows == [
        {
            "grid_code": G1,
            "received": 7,
            "closed": 4,
            "closure_rate": 0.8,
            "on_time_rate": 0.75,
            "overdue_open": 1,
        },
        {
            "grid_code": G2,
            "received": 3,
            "closed": 1,
            "closure_rate": 0.3333,
            "on_time_rate": 1.0,
            "overdue_open": 0,
        },
        {
            "grid_code": G3,
            "received": 2,
            "closed": 1,
            "closure_rate": 0.5,
            "on_time_rate": 1.0,
            "overdue_open": 0,
        },
    ]


def test_town_summary_reads_like_the_towns_report(
    session: Session, history: dict[str, int]
) -> None:
    rows = {
        row["town_code"]: row
        for row in town_summaries(session, StatsQuery(MARCH, APRIL, APRIL, town_codes=OURS))
    }
    assert rows[TOWN_1]["summary"] == "甲镇：受理 10 件，办结 5 件，办结率 62.5%，按期办结率 80.0%"
    assert rows[TOWN_2]["summary"] == "乙镇：受理 2 件，办结 1 件，办结率 50.0%，按期办结率 100.0%"


def test_with_total_adds_the_ungrouped_row_in_the_same_pass(
    session: Session, history: dict[str, int]
) -> None:
    rows = _figures(session, "grid", town_codes=(TOWN_1,), with_total=True)
    (total,) = [row for row in rows if row["is_total"]]
    grids = [row for row in rows if not row["is_total"]]
    assert total["grid_code"] is None
    (town,) = _figures(session, "town", town_codes=(TOWN_1,))
    for key in METRICS:
        assert total[key] == town[key], key
    assert [{**g, "is_total": None} for g in grids] == [
        {**g, "is_total": None} for g in _figures(session, "grid", town_codes=(TOWN_1,))
    ]


def test_town_filter_keeps_only_those_towns(session: Session, history: dict[str, int]) -> None:
    rows = _figures(session, "town", town_codes=(TOWN_2,))
    assert [row["town_code"] for row in rows] == [TOWN_2]


def test_grouping_by_several_dimensions(session: Session, history: dict[str, int]) -> None:
    rows = _figures(session, "town", "month", "platform")
    keys = [(row["town_code"], row["month"].isoformat(), row["platform"]) for row in rows]
    assert keys == [
        (TOWN_1, "2026-03-01", "governance"),
        (TOWN_1, "2026-03-01", "market"),
        (TOWN_2, "2026-03-01", "enforcement"),
    ]
    assert sum(row["received"] for row in rows) == 12


def test_empty_window_gives_zeros_and_no_rates(session: Session, history: dict[str, int]) -> None:
    [total] = case_figures(
        session,
        StatsQuery(
            datetime(2025, 1, 1, tzinfo=UTC),
            datetime(2025, 2, 1, tzinfo=UTC),
            APRIL,
            town_codes=OURS,
        ),
    )
    assert (total["received"], total["closure_rate"], total["median_hours_to_close"]) == (
        0,
        None,
        None,
    )


@pytest.mark.parametrize("text", ["town,colour", "town,town", "grid;month"])
def test_unknown_or_repeated_grouping_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_group_by(text)


def test_bad_windows_are_refused(session: Session) -> None:
    with pytest.raises(ValidationError, match="empty"):
        case_figures(session, StatsQuery(APRIL, MARCH, APRIL))
    with pytest.raises(ValidationError, match="time zone"):
        case_figures(session, StatsQuery(datetime(2026, 3, 1), APRIL, APRIL))
    with pytest.raises(ValidationError, match="platform"):
        case_figures(session, StatsQuery(MARCH, APRIL, APRIL, platform="weather"))


def test_csv_has_a_header_and_empty_cells_for_missing_values() -> None:
    text = to_csv([{"town_code": "1", "closure_rate": None}], ["town_code", "closure_rate"])
    assert text.splitlines() == ["town_code,closure_rate", "1,"]


def test_on_time_uses_the_deadline_in_force_at_the_close(session: Session, catalog: int) -> None:
    # Closed late (80 h, due 72 h); reopened and extended to 200 h only afterwards. As of 90 h the
    # closure was late, although the case's current deadline (200 h) is later than that close.
    county = build_county(session)
    may = datetime(2026, 5, 4, 1, 0, tzinfo=UTC)
    case = add_case(session, county, grid=G1, reported_at=may, due_at=hours_after(72, may))
    steps = [
        *closed_flow(70, 80),
        (100, "reopen", {"reason": "came back"}),
        (101, "extend", {"reason": "needs a contractor", "due_at": hours_after(200, may)}),
    ]
    run_steps(session, case.id, steps, start=may)
    window = (datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
    [then] = case_figures(session, StatsQuery(*window, hours_after(90, may), town_codes=OURS))
    assert (then["closed"], then["closed_on_time"], then["extended"]) == (1, 0, 0)
    run_steps(
        session, case.id, [(102, "start", {}), (150, "resolve", {}), (160, "close", {})], start=may
    )
    [now] = case_figures(session, StatsQuery(*window, hours_after(300, may), town_codes=OURS))
    assert (now["closed"], now["closed_on_time"], now["extended"], now["reworked"]) == (1, 1, 1, 1)


@pytest.mark.parametrize(
    ("group_by", "full"),
    [((), False), (("platform",), True), (("town", "month"), False), (("grid", "unit"), False)],
)
def test_stored_facts_give_the_exact_figures_as_of_their_refresh(
    session: Session, history: dict[str, int], group_by: tuple[str, ...], full: bool
) -> None:
    refreshed_at = refresh_facts(session, full=full).refreshed_at
    assert last_refresh(session) == refreshed_at
    stored = case_figures(
        session, StatsQuery(MARCH, APRIL, None, group_by=group_by, town_codes=OURS)
    )
    exact = case_figures(
        session, StatsQuery(MARCH, APRIL, refreshed_at, group_by=group_by, town_codes=OURS)
    )
    assert stored == exact
    assert sum(row["received"] for row in stored) == 12


def test_stored_facts_equal_the_exact_ones_with_odd_events_in_the_log(
    session: Session, history: dict[str, int]
) -> None:
    # Future-dated events (what a sweep with a client's clock wrote before the guard): a close
    # of the open case I, an escalation of the overdue E, a later extension of I. Back-dated
    # ones, logged after events they claim to precede: a close of E before its reopen, an
    # escalation of J before its resolve.
    ahead = utcnow() + timedelta(days=3)
    inject_event(session, history["I"], "close", ahead, status="closed")
    inject_event(session, history["E"], "escalate", ahead, status="escalated")
    due_i = session.get_one(Incident, history["I"]).due_at
    assert due_i is not None
    inject_event(
        session,
        history["I"],
        "extend",
        ahead + timedelta(minutes=1),
        status="accepted",
        data={
            "due_at": (ahead + timedelta(days=9)).isoformat(),
            "previous_due_at": due_i.isoformat(),
        },
    )
    inject_event(session, history["E"], "close", hours_after(29), status="closed")
    inject_event(session, history["J"], "escalate", hours_after(1), status="escalated")
    for group_by in ((), ("grid", "unit")):
        refreshed_at = refresh_facts(session).refreshed_at
        stored = case_figures(
            session, StatsQuery(MARCH, APRIL, None, group_by=group_by, town_codes=OURS)
        )
        exact = case_figures(
            session, StatsQuery(MARCH, APRIL, refreshed_at, group_by=group_by, town_codes=OURS)
        )
        assert stored == exact
    [total] = case_figures(session, StatsQuery(MARCH, APRIL, None, town_codes=OURS))
    # As of now: A B C D F K, and M closed in April. The future close of I and escalation of E
    # do not count; E is still reopened after its last close; the back-dated escalation of J
    # counts.
    assert (total["closed"], total["escalated"]) == (7, 1)


def test_stored_facts_lag_until_the_next_refresh(session: Session, history: dict[str, int]) -> None:
    refresh_facts(session)
    before = case_figures(session, StatsQuery(MARCH, APRIL, None, town_codes=OURS))[0]
    apply_action(session, history["J"], "close", actor="command")  # J was awaiting verification
    assert case_figures(session, StatsQuery(MARCH, APRIL, None, town_codes=OURS))[0] == before
    refresh_facts(session)
    assert (
        case_figures(session, StatsQuery(MARCH, APRIL, None, town_codes=OURS))[0]["closed"]
        == before["closed"] + 1
    )


def test_demo_county_reads_like_the_towns_reports(session: Session, demo: object) -> None:
    # The generated year (intake, workflow and the demo generator share the action names):
    # thousands of cases per town, closure rates above 99 %, on time mostly, a little rework.
    start, end = datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    rows = town_summaries(session, StatsQuery(start, end, end))
    assert len(rows) == 5
    for row in rows:
        assert row["received"] > 1_000
        assert 0.99 <= row["closure_rate"] < 1.0
        assert 0.9 <= row["on_time_rate"] < 1.0
        assert row["summary"].startswith(f"{row['town_name']}：受理 {row['received']:,} 件")
    [total] = case_figures(session, StatsQuery(start, end, end))
    assert 0.005 < total["rework_rate"] < 0.05
    assert 0.0 < total["extension_rate"] < 0.03


def test_both_ways_of_reading_the_events_agree(
    session: Session, history: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small cohorts probe the events case by case, large ones scan each deciding action.
    from gis.services import stats

    query = StatsQuery(MARCH, APRIL, APRIL, group_by=("town", "platform"), town_codes=OURS)
    monkeypatch.setattr(stats, "SMALL_COHORT", 10**9)
    probed = case_figures(session, query)
    monkeypatch.setattr(stats, "SMALL_COHORT", 0)
    scanned = case_figures(session, query)
    assert probed == scanned
    assert sum(row["closed"] for row in scanned) == 6


def test_window_without_start_begins_on_1_january_china_time() -> None:
    # 2025-12-31 17:00 UTC is already 2026-01-01 01:00 in China: the window starts that day.
    shanghai_new_year = datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert default_start(datetime(2025, 12, 31, 17, tzinfo=UTC)) == shanghai_new_year
    assert default_start(datetime(2025, 12, 31, 15, tzinfo=UTC)) == datetime(
        2024, 12, 31, 16, tzinfo=UTC
    )
    # Ending at the new year itself: the day before, never an empty window.
    assert default_start(shanghai_new_year) == shanghai_new_year - timedelta(days=1)
