"""notebooks/redistricting.ipynb runs against the test database (the demo county): its balance
figures are the service's, it draws both sets of grids, and it keeps no draft plan."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session

from gis.layers.plans import PlanScope
from gis.services import redistricting
from gis.settings import Settings
from tests.conftest import SAMPLE_END, count
from tests.maps.notebooks import execute_notebook, images, printed


def test_redistricting_notebook_shows_the_services_balance_and_draws_both_grids(
    database_url: str,
    demo: dict[str, object],
    session: Session,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GIS_NOTEBOOK_VILLAGE", raising=False)
    monkeypatch.delenv("GIS_NOTEBOOK_GRIDS", raising=False)
    plans = count(session, "plans")
    notebook = execute_notebook("redistricting.ipynb", database_url, monkeypatch)
    text = printed(notebook)
    village = re.search(r"village (\d+): (\d+) grids now, (\d+) proposed", text)
    assert village is not None, text
    assert count(session, "plans") == plans  # the draft plan was rolled back

    query = redistricting.RedistrictQuery(PlanScope.VILLAGE, village[1], seed=1)
    direct = redistricting.suggest(session, query, actor="test", settings=settings, now=SAMPLE_END)
    (result,) = direct.villages
    assert result.after["cv"] < result.before["cv"]
    assert int(village[3]) == len(result.grids) == int(village[2])
    last = printed(notebook, cells=slice(-1, None))
    assert last == (
        f"balance cv: before {result.before['cv']} after {result.after['cv']}\n"
        f"max deviation: before {result.before['max_deviation']} "
        f"after {result.after['max_deviation']}\n"
        f"proposed grids: {', '.join(g.code for g in result.grids)}\n"
    )
    assert f"drawn: {village[2]} current and {len(result.grids)} proposed grids" in text
    (figure,) = images(notebook)
    assert len(figure) > 10_000  # a real PNG of two panels, not an empty canvas
