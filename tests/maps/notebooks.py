"""Run a notebook of notebooks/ top to bottom against the test database; what it printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLE_END

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def execute_notebook(name: str, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Execute ``notebooks/<name>`` on the demo county up to SAMPLE_END; the executed notebook."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")

    monkeypatch.setenv("GIS_NOTEBOOK_DATABASE_URL", database_url)
    monkeypatch.setenv("GIS_NOTEBOOK_UNTIL", SAMPLE_END.isoformat())
    monkeypatch.delenv("GIS_NOTEBOOK_TOWN", raising=False)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
    return notebook


def printed(notebook: Any, *, cells: slice = slice(None)) -> str:
    """The text the notebook's code cells (or a slice of them) printed."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"][cells]
    return "".join(output.get("text", "") for cell in code for output in cell.get("outputs", []))


def images(notebook: Any) -> list[str]:
    """The PNG images (base64) the notebook's cells displayed, in order."""
    return [
        output["data"]["image/png"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]


def run_notebook(name: str, database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Execute ``notebooks/<name>`` on the demo county up to SAMPLE_END; its printed text."""
    return printed(execute_notebook(name, database_url, monkeypatch))
