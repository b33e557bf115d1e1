"""One number for each figure: the command-room map and /stats agree on every grid and town.

Both pages are asked over HTTP, as a user would, for every town of the demo county and one
period: the map's grid tooltips and title must carry /stats/grids' and /stats/towns' figures
exactly. What the map counts "now" (open now, overdue now, whenever reported) is a different
figure and carries a different label, which this test checks too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gis.maps import command_room as cr
from gis.services.stats import refresh_facts
from gis.settings import Settings
from tests.api.test_maps import _client
from tests.conftest import SAMPLE_END
from tests.maps.town import page_text

SINCE, UNTIL = SAMPLE_END - timedelta(days=30), SAMPLE_END
FIGURES = ("received", "closed", "closure_rate", "on_time_rate", "overdue_open")
NO_CASES = {"received": 0, "closed": 0, "closure_rate": None, "on_time_rate": None}
NO_CASES["overdue_open"] = 0


def _grid_features(html: str) -> list[dict[str, Any]]:
    """The features of the grid layer, decoded from the page's script."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"_add\((\{)", html):
        data, _ = decoder.raw_decode(html, match.start(1))
        features = data.get("features") or []
        if features and "overdue_open" in features[0]["properties"]:
            return list(features)
    raise AssertionError("no grid layer in the page")


def _title_figures(html: str) -> str:
    """The title's text, which carries the period's figures (each marked up in a span)."""
    start = html.index('<div id="gis-title"')
    return page_text(html[start : html.index("</div></div>", start)])


def _stats(client: TestClient, path: str, town: str | None) -> list[dict[str, Any]]:
    params = {"from": SINCE.isoformat(), "to": UNTIL.isoformat()}
    if town is not None:
        params["town"] = town
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["rows"])


@pytest.fixture
def demo_client(
    settings: Settings, session: Session, demo: dict[str, object], request: pytest.FixtureRequest
) -> Iterator[TestClient]:
    """A client on the demo county: figures from fresh stored facts, or exact (``stale``)."""
    stale_after = 0 if getattr(request, "param", "stored") == "exact" else 3_600
    if stale_after:
        refresh_facts(session)
    with _client(settings, session, stats_stale_after_s=stale_after) as client:
        yield client


@pytest.mark.parametrize("demo_client", ["stored"], indirect=True)
def test_map_and_stats_show_the_same_figures_for_every_grid_and_town(
    demo_client: TestClient, session: Session
) -> None:
    towns = [row["town_code"] for row in _stats(demo_client, "/stats/towns", None)]
    assert len(towns) == 5  # the demo county's five towns
    differing: list[str] = []
    for town in towns:
        page = demo_client.get(
            "/maps/command-room",
            params={"town": town, "since": SINCE.isoformat(), "until": UNTIL.isoformat()},
        )
        assert page.status_code == 200, page.text
        html = page.text
        by_grid = {row["grid_code"]: row for row in _stats(demo_client, "/stats/grids", town)}
        features = {f["properties"]["code"]: f["properties"] for f in _grid_features(html)}
        assert set(by_grid) <= set(features), "a grid with cases is missing from the map"
        for code, shown in features.items():
            row = by_grid.get(code, NO_CASES)
            if any(shown[key] != row[key] for key in FIGURES):
                differing.append(f"{code}: map {[shown[k] for k in FIGURES]}, stats {row}")
            assert shown["closure"] == cr._pct(row["closure_rate"])
            assert shown["on_time"] == cr._pct(row["on_time_rate"])
        (figures,) = _stats(demo_client, "/stats/towns", town)
        title = _title_figures(html)
        for key, value in (
            ("received", f"{figures['received']:,}"),
            ("closure_rate", cr._pct(figures["closure_rate"])),
            ("on_time_rate", cr._pct(figures["on_time_rate"])),
            ("overdue_open", f"{figures['overdue_open']:,}"),
        ):
            assert f"{cr.FIGURE_LABELS[key]} {value}" in title, (town, key, title)
    assert not differing, "\n".join(differing)


@pytest.mark.parametrize("demo_client", ["exact"], indirect=True)
def test_dazhou_overdue_in_the_tooltip_is_stats_overdue_open_and_now_is_labelled_apart(
    demo_client: TestClient,
) -> None:
    # The check: 大洲镇, 30 days; the overdue in each tooltip against /stats/grids.
    town = "330803110000"
    html = demo_client.get(
        "/maps/command-room",
        params={"town": town, "since": SINCE.isoformat(), "until": UNTIL.isoformat()},
    ).text
    by_grid = {row["grid_code"]: row for row in _stats(demo_client, "/stats/grids", town)}
    features = [f["properties"] for f in _grid_features(html)]
    assert len(features) > 40
    for shown in features:
        assert shown["overdue_open"] == by_grid.get(shown["code"], {}).get("overdue_open", 0)
    # "Now" counts every case open now, whenever reported: never fewer than the period's, and
    # for some grid more (cases reported before the period are still open), under its own label.
    assert all(f["overdue_now"] >= f["overdue_open"] for f in features)
    assert any(f["open_now"] > 0 for f in features)
    assert cr.FIGURE_LABELS["overdue_now"] != cr.FIGURE_LABELS["overdue_open"]
    title = _title_figures(html)
    assert "现超期 Overdue now" in title and "期内超期 Overdue (period)" in title
