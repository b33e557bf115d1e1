"""notebooks/hotspots.ipynb runs top to bottom against the test database (the demo county)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SAMPLE_END

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "hotspots.ipynb"


def test_hotspots_notebook_runs_and_draws_the_grids(
    database_url: str, demo: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")

    monkeypatch.setenv("GIS_NOTEBOOK_DATABASE_URL", database_url)
    monkeypatch.setenv("GIS_NOTEBOOK_UNTIL", SAMPLE_END.isoformat())
    monkeypatch.delenv("GIS_NOTEBOOK_TOWN", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    assert "hotspot classes:" in printed and "emerging categories:" in printed
    assert "drawn: " in printed and "recurring groups: " in printed
