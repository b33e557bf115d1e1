"""notebooks/command_room.ipynb runs top to bottom against the test database (the demo county)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SAMPLE_END

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "command_room.ipynb"


def test_command_room_notebook_runs_and_draws_every_layer(
    database_url: str, demo: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    from gis.maps import command_room as cr

    monkeypatch.setenv("GIS_NOTEBOOK_DATABASE_URL", database_url)
    monkeypatch.setenv("GIS_NOTEBOOK_UNTIL", SAMPLE_END.isoformat())
    monkeypatch.delenv("GIS_NOTEBOOK_TOWN", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    for name in cr.LAYERS:
        assert f"{name}: " in printed
    assert "cases from" in printed and "page:" in printed
