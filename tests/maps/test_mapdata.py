"""The figures the maps show, computed in PostGIS, against the hand-made town."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import NotFoundError, UnknownCodeError, ValidationError
from gis.layers.base import LOCAL_TZ
from gis.layers.incidents import Incident, IncidentEvent, IncidentStatus
from gis.maps.data import CaseFigures
from gis.services.mapdata import (
    CaseFilter,
    TimeStep,
    choose_step,
    command_room_data,
    get_town_area,
    period_figures,
    resolve_period,
    village_grids_data,
)
from gis.services.stats import StatsQuery, grid_figures
from tests.conftest import count
from tests.maps.town import EXPECTED, NOW, SINCE, TOWN, UNTIL, VILLAGE_1


def _data(session: Session, **kwargs: object):  # type: ignore[no-untyped-def]
    return command_room_data(session, town_code=TOWN, since=SINCE, until=UNTIL, now=NOW, **kwargs)


def test_heat_cells_sum_to_the_cases_of_the_town_in_the_period(
    session: Session, town: dict[str, int]
) -> None:
    data = _data(session)
    assert data.total_incidents == EXPECTED.period_total
    assert sum(cell.count for cell in data.heat) == EXPECTED.period_total
    # Two cases 100 m apart share a 250 m cell; the others are far apart.
    assert len(data.heat) == EXPECTED.period_total - 1
    assert max(cell.count for cell in data.heat) == 2


def test_heat_cell_size_follows_cell_m(session: Session, town: dict[str, int]) -> None:
    coarse = _data(session, cell_m=5_000)
    assert [cell.count for cell in coarse.heat] == [EXPECTED.period_total]


def test_time_frames_cover_every_day_of_the_period_and_hold_every_case(
    session: Session, town: dict[str, int]
) -> None:
    data = _data(session)
    assert data.time_step == "day"
    assert [f.label for f in data.frames][:2] == ["2026-10-01", "2026-10-02"]
    assert len(data.frames) == 31
    assert sum(c.count for f in data.frames for c in f.cells) == EXPECTED.period_total
    by_day = {f.label: sum(c.count for c in f.cells) for f in data.frames}
    assert by_day["2026-10-05"] == 2


def test_weekly_frames_start_on_monday_in_china_time(
    session: Session, town: dict[str, int]
) -> None:
    data = _data(session, step=TimeStep.WEEK)
    assert data.frames[0].label == "2026-09-28"  # the Monday of the week of 1 October
    assert sum(c.count for f in data.frames for c in f.cells) == EXPECTED.period_total


def test_grid_figures_are_the_statistics_and_the_now_counts_are_apart(
    session: Session, town: dict[str, int]
) -> None:
    grids = {g.code: g for g in _data(session).grids}
    assert sorted(grids) == ["G1", "G2", "G3", "G4"]
    g1, g2, g3, g4 = grids["G1"], grids["G2"], grids["G3"], grids["G4"]
    assert g1.figures == CaseFigures(received=3, closed=3, closure_rate=1.0, on_time_rate=0.6667)
    assert g1.per_1000_households == pytest.approx(30.0)
    # The September case is open now: counted as open now, not among the period's cases.
    assert (g1.open_now, g1.overdue_now, g1.figures.overdue_open) == (1, 0, 0)
    assert g2.figures == CaseFigures(received=2, closure_rate=0.0, overdue_open=1)
    assert (g2.open_now, g2.overdue_now) == (2, 1)
    assert g3.per_1000_households is None  # no households on record
    assert (g4.figures.received, g4.members) == (1, [])
    assert g1.members == ["李一"] and g3.members == ["王二"]
    rows = grid_figures(session, StatsQuery(SINCE, UNTIL, NOW, town_codes=(TOWN,)))
    assert {row.pop("grid_code"): CaseFigures(**row) for row in rows} == {
        code: grid.figures for code, grid in grids.items()
    }


def test_a_resolved_case_is_open_now_but_not_overdue(
    session: Session, town: dict[str, int]
) -> None:
    late = session.scalars(
        sa.select(Incident).where(Incident.grid_code == "G3", Incident.town_code == TOWN)
    ).one()
    late.status = IncidentStatus.RESOLVED.value  # awaiting verification: nobody's deadline runs
    resolved = IncidentEvent(
        incident_id=late.id,
        at=SINCE + timedelta(days=9),
        actor="t",
        action="resolve",
        from_status="in_progress",
        to_status="resolved",
    )
    session.add(resolved)
    session.flush()
    data = _data(session)
    g3 = next(g for g in data.grids if g.code == "G3")
    assert (g3.open_now, g3.overdue_now, g3.figures.overdue_open) == (1, 0, 0)
    assert data.overdue_cases.total == EXPECTED.overdue - 1
    assert data.open_cases.total == EXPECTED.open_not_overdue + 1


def test_open_and_overdue_cases_are_split_by_the_deadline_and_match_the_database(
    session: Session, town: dict[str, int]
) -> None:
    data = _data(session)
    assert data.open_cases.total == EXPECTED.open_not_overdue
    assert data.overdue_cases.total == EXPECTED.overdue
    assert all(c.overdue for c in data.overdue_cases.items)
    assert not any(c.overdue for c in data.open_cases.items)
    in_db = count(session, "incidents WHERE town_code = '980100001000' "
                  "AND status NOT IN ('closed', 'cancelled', 'duplicate', 'resolved') "
                  "AND reported_at < '2026-11-01T00:00:00+08:00'")  # fmt: skip
    assert data.open_cases.total + data.overdue_cases.total == in_db
    market = [c for c in data.open_cases.items if c.platform == "market"]
    assert market[0].unit_name == "高家市场监管所"
    assert market[0].category_zh and market[0].category_en


def test_markers_are_capped_most_urgent_first_and_the_total_is_kept(
    session: Session, town: dict[str, int]
) -> None:
    data = _data(session, max_markers=1)
    assert len(data.overdue_cases.items) == 1
    assert data.overdue_cases.total == EXPECTED.overdue and data.overdue_cases.truncated
    # G3's case was due on 10 October, G2's on 27 October: the older deadline comes first.
    assert data.overdue_cases.items[0].grid_code == "G3"


def test_platform_filter_limits_every_layer(session: Session, town: dict[str, int]) -> None:
    data = _data(session, cases=CaseFilter(platform="market"))
    assert data.total_incidents == 2
    assert data.open_cases.total + data.overdue_cases.total == 2
    assert sum(g.figures.received for g in data.grids) == 2


def test_category_filter_limits_the_cases(session: Session, town: dict[str, int]) -> None:
    data = _data(session, cases=CaseFilter(category="noise_nuisance"))
    assert data.total_incidents == 1
    assert data.overdue_cases.total == 1 and data.open_cases.total == 0


def test_units_and_cameras_of_the_town_only(session: Session, town: dict[str, int]) -> None:
    data = _data(session)
    assert [u.code for u in data.units] == ["M-MK-1", "M-PS-1"]
    assert [c.code for c in data.cameras] == ["M-CAM-1", "M-CAM-2"]
    assert data.cameras[0].view.geom_type == "Polygon"


def test_unknown_town_is_not_found(session: Session, town: dict[str, int]) -> None:
    with pytest.raises(NotFoundError, match="no town"):
        command_room_data(session, town_code="000000000000", now=NOW)


def test_a_village_code_is_not_a_town(session: Session, town: dict[str, int]) -> None:
    with pytest.raises(NotFoundError, match="no town"):
        command_room_data(session, town_code=VILLAGE_1, now=NOW)


def test_until_before_since_is_rejected_with_the_reason(session: Session) -> None:
    with pytest.raises(ValidationError, match=r"until .* must be after since"):
        resolve_period(UNTIL, SINCE)


def test_naive_times_are_china_time_and_the_default_period_is_30_days() -> None:
    period = resolve_period(datetime(2026, 10, 1), None, now=NOW)
    assert period.since == datetime(2026, 10, 1, tzinfo=LOCAL_TZ)
    assert period.until == NOW
    assert (
        resolve_period(None, None, now=NOW).until - resolve_period(None, None, now=NOW).since
    ).days == 30


def test_a_year_by_day_is_too_many_frames(session: Session, town: dict[str, int]) -> None:
    with pytest.raises(ValidationError, match="step=week"):
        command_room_data(
            session,
            town_code=TOWN,
            since=datetime(2025, 1, 1),
            until=datetime(2026, 1, 1),
            step=TimeStep.DAY,
            now=NOW,
        )


def test_auto_step_is_weekly_past_two_months() -> None:
    year = resolve_period(datetime(2025, 1, 1), datetime(2026, 1, 1))
    assert choose_step(year, TimeStep.AUTO) is TimeStep.WEEK


def test_unknown_category_and_mismatched_platform_are_rejected(
    session: Session, town: dict[str, int]
) -> None:
    with pytest.raises(UnknownCodeError, match="unknown category"):
        _data(session, cases=CaseFilter(category="no_such_thing"))
    with pytest.raises(ValidationError, match="belongs to platform"):
        _data(session, cases=CaseFilter("market", "noise_nuisance"))
    with pytest.raises(UnknownCodeError, match="unknown platform"):
        _data(session, cases=CaseFilter(platform="weather"))


def test_out_of_range_cell_size_is_rejected(session: Session, town: dict[str, int]) -> None:
    with pytest.raises(ValidationError, match="cell_m"):
        _data(session, cell_m=1)


def test_village_grids_carry_members_households_and_population(
    session: Session, town: dict[str, int]
) -> None:
    data = village_grids_data(session, village_code=VILLAGE_1)
    assert data.town_name == "高家镇"
    assert [(g.code, g.members, g.households, g.population) for g in data.grids] == [
        ("G1", ["李一"], 100, 300),
        ("G2", ["王二"], 200, 600),
    ]


def test_time_view_cells_grow_until_the_frames_fit_the_budget(
    session: Session, town: dict[str, int]
) -> None:
    area = get_town_area(session, TOWN)
    period = resolve_period(SINCE, UNTIL)
    roomy = period_figures(session, area=area, period=period, step=TimeStep.DAY)
    tight = period_figures(session, area=area, period=period, step=TimeStep.DAY, time_budget=1)
    assert sum(len(f.cells) for f in roomy.frames) == 6  # two cases share a cell on 5 October
    # Six days have cases, so a budget of one pair is never met: the cells grow to their limit,
    # where each day's cases fall in a single cell.
    assert all(len(f.cells) <= 1 for f in tight.frames)
    assert sum(c.count for f in tight.frames for c in f.cells) == EXPECTED.period_total
    assert tight.heat == roomy.heat  # the heatmap keeps its cell size


def test_a_cell_too_small_for_the_town_is_refused_with_the_smallest_allowed(
    session: Session, town: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gis.services import mapdata

    monkeypatch.setattr(mapdata, "MAX_HEAT_CELLS", 100)
    with pytest.raises(ValidationError, match=r"use cell_m >= \d+"):
        _data(session, cell_m=100)
    _data(session, cell_m=500)  # 8 x 7 cells: fine
