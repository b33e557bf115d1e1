"""notebooks/command_room.ipynb runs top to bottom against the test database (the demo county)."""

from __future__ import annotations

import pytest

from tests.maps.notebooks import run_notebook


def test_command_room_notebook_runs_and_draws_every_layer(
    database_url: str, demo: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gis.maps import command_room as cr

    printed = run_notebook("command_room.ipynb", database_url, monkeypatch)
    for name in cr.LAYERS:
        assert f"{name}: " in printed
    assert "cases from" in printed and "page:" in printed
