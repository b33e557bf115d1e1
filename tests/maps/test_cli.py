"""`gis map`: the command-room and village maps written to files, on the demo county."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gis.commands.map import command_room
from gis.services import mapdata
from tests.conftest import SAMPLE_END, Cli

# No Tianditu key from the environment: the tianditu basemap must find it missing.
NO_KEY: dict[str, str | None] = {"GIS_TIANDITU_KEY": None}


def _first(engine: Engine, level: str) -> str:
    with engine.connect() as connection:
        return str(
            connection.execute(
                sa.text("SELECT min(code) FROM regions WHERE level = :level"), {"level": level}
            ).scalar_one()
        )


def test_command_room_map_is_written_for_a_demo_town(
    demo: dict[str, object], engine: Engine, cli: Cli, tmp_path: Path
) -> None:
    town = _first(engine, "town")
    output = tmp_path / "room.html"
    result = cli(
        "map", "command-room", "--town", town, "--until", SAMPLE_END.isoformat(),
        "--metric", "closure", "-o", str(output), env=NO_KEY,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    html = output.read_text(encoding="utf-8")
    assert "综合信息指挥室" in html and "L.heatLayer(" in html and "办结率 Closure rate" in html


def test_village_grid_map_is_written(
    demo: dict[str, object], engine: Engine, cli: Cli, tmp_path: Path
) -> None:
    output = tmp_path / "village.html"
    village = _first(engine, "village")
    result = cli("map", "grids", "--village", village, "-o", str(output), env=NO_KEY)
    assert result.exit_code == 0, result.output
    assert "网格图" in output.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--town", "000000000000"], "no town"),
        (["--town", "x", "--basemap", "google"], "unknown basemap"),
        (["--town", "x", "--basemap", "tianditu"], "GIS_TIANDITU_KEY"),
        (["--town", "x", "--metric", "pretty"], "metric: load, closure, on_time"),
    ],
)
def test_bad_input_exits_2_with_the_reason_and_writes_nothing(
    cli: Cli, tmp_path: Path, arguments: list[str], message: str
) -> None:
    output = tmp_path / "room.html"
    result = cli("map", "command-room", *arguments, "-o", str(output), env=NO_KEY)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not output.exists()


def test_command_room_command_defaults_to_the_services_figures() -> None:
    # The CLI spells its defaults out (it imports the map services only when a command runs).
    options = inspect.signature(command_room).parameters
    assert options["cell_m"].default.default == mapdata.DEFAULT_CELL_M
    assert options["max_markers"].default.default == mapdata.DEFAULT_MAX_MARKERS
