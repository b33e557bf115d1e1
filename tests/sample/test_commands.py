"""`gis sample …`: the boundary files regenerate identically; a load never overwrites data."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gis.sample.boundaries import BOUNDARIES_DIR, LAYER_FILES
from gis.sample.commands import app
from tests.conftest import SAMPLE_SEED, Cli

# The tests that need no database run `gis sample` on a runner of their own (the `cli` fixture
# would make them need the test database).
runner = CliRunner()


def test_boundaries_command_writes_the_committed_files(tmp_path: Path) -> None:
    result = runner.invoke(app, ["boundaries", "--seed", str(SAMPLE_SEED), "--path", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for layer in LAYER_FILES:
        written = (tmp_path / f"{layer}.geojson").read_bytes()
        assert written == (BOUNDARIES_DIR / f"{layer}.geojson").read_bytes()


def test_load_command_refuses_a_database_that_holds_data(demo: dict[str, object], cli: Cli) -> None:
    result = cli("sample", "load", "--seed", str(SAMPLE_SEED), "--no-progress")
    assert result.exit_code == 2
    assert "already holds data" in result.output
    assert "--replace" in result.output


def test_load_command_rejects_a_bad_end_date() -> None:
    result = runner.invoke(app, ["load", "--end", "yesterday", "--no-progress"])
    assert result.exit_code == 2
    assert "ISO date" in result.output


def test_load_if_empty_keeps_a_loaded_county(demo: dict[str, object], cli: Cli) -> None:
    result = cli("sample", "load", "--if-empty", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "keeping it" in result.output
