"""notebooks/hotspots.ipynb runs top to bottom against the test database (the demo county)."""

from __future__ import annotations

import pytest

from tests.maps.notebooks import run_notebook


def test_hotspots_notebook_runs_and_draws_the_grids(
    database_url: str, demo: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = run_notebook("hotspots.ipynb", database_url, monkeypatch)
    assert "hotspot classes:" in printed and "emerging categories:" in printed
    assert "drawn: " in printed and "recurring groups: " in printed
