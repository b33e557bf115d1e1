"""The command-room map of a real-looking town: the demo county, figures checked against SQL."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.maps import build_command_room_map, feature_counts, render
from gis.maps import command_room as cr
from gis.services.mapdata import command_room_data, towns_with_cases
from tests.conftest import SAMPLE_END

MAX_PAGE_BYTES = 3_000_000


def _scalar(session: Session, sql: str, **params: object) -> int:
    return int(session.execute(sa.text(sql), params).scalar_one())


def test_busiest_demo_town_map_matches_the_database_and_stays_small(
    session: Session, demo: dict[str, object]
) -> None:
    town = session.execute(
        sa.text("SELECT town_code FROM incidents GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
    ).scalar_one()
    assert town in towns_with_cases(session)
    since, until = SAMPLE_END - timedelta(days=90), SAMPLE_END
    data = command_room_data(session, town_code=town, since=since, until=until, now=until)
    period = dict(t=town, s=since, u=until)
    assert data.total_incidents == _scalar(
        session,
        "SELECT count(*) FROM incidents WHERE town_code = :t "
        "AND reported_at >= :s AND reported_at < :u",
        **period,
    )
    assert data.total_incidents > 0
    # Open: not final (a resolved case awaiting verification too); overdue: active and late.
    open_now = (
        "SELECT count(*) FROM incidents WHERE town_code = :t AND reported_at < :u AND status "
        "NOT IN ('closed', 'cancelled', 'duplicate')"
    )
    overdue = open_now + " AND status <> 'resolved' AND due_at < :u"
    assert data.overdue_cases.total == _scalar(session, overdue, **period)
    assert data.open_cases.total + data.overdue_cases.total == _scalar(session, open_now, **period)
    assert sum(g.open_now for g in data.grids) <= _scalar(session, open_now, **period)
    assert sum(g.figures.received for g in data.grids) <= data.total_incidents
    assert sum(g.figures.closed for g in data.grids) == _scalar(
        session,
        "SELECT count(*) FROM incidents i JOIN grids g ON g.code = i.grid_code "
        "AND g.valid_to IS NULL AND g.town_code = :t WHERE i.town_code = :t "
        "AND i.reported_at >= :s AND i.reported_at < :u AND i.closed_at IS NOT NULL",
        **period,
    )
    m = build_command_room_map(data)
    counts = feature_counts(m)
    assert counts[cr.GRIDS_LAYER] == _scalar(
        session, "SELECT count(*) FROM grids WHERE town_code = :t AND valid_to IS NULL", t=town
    )
    assert counts[cr.CAMERAS_LAYER] >= _scalar(
        session, "SELECT count(*) FROM cameras WHERE town_code = :t", t=town
    )
    html = render(m)
    assert len(html.encode()) < MAX_PAGE_BYTES
    assert html == render(build_command_room_map(data))
