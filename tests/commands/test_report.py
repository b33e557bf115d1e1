"""`gis report` from the shell: prints the assignment, replays a key, explains bad input."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.layers.incidents import Incident
from tests.conftest import Cli
from tests.services import intake_fixtures
from tests.services.intake_fixtures import GRID_A

if TYPE_CHECKING:
    from typer.testing import Result


@pytest.fixture
def committed_area(engine: Engine, catalog: int) -> Iterator[None]:
    """The hand-made county committed (the CLI opens its own sessions), removed afterwards."""
    with intake_fixtures.committed_area(engine):
        yield


@pytest.fixture
def report(cli: Cli) -> Callable[..., Result]:
    """Run `gis report …` on the test database, 120 columns wide."""
    return lambda *args: cli("report", *args, env={"COLUMNS": "120"})


def test_report_prints_grid_unit_and_deadline_and_a_key_replays(
    committed_area: None, engine: Engine, report: Callable[..., Result]
) -> None:
    args = ("--category", "public_security_hazard", "--lon", "110.005", "--lat", "30.005")
    first = report(*args, "--key", "cli-1")
    assert first.exit_code == 0, first.output
    assert GRID_A in first.output and "一号镇派出所" in first.output
    assert "assigned" in first.output and "due" in first.output
    again = report(*args, "--key", "cli-1")
    assert again.exit_code == 0 and "already reported with this key" in again.output
    with Session(engine) as check:
        n = check.scalar(sa.select(sa.func.count()).where(Incident.idempotency_key == "cli-1"))
    assert n == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--category", "ufo", "--lon", "110.005", "--lat", "30.005"), "cooking_fume"),
        (("--category", "cooking_fume", "--lon", "30.005", "--lat", "110.005"), "swapped"),
        (("--category", "cooking_fume", "--lon", "nan", "--lat", "30"), "finite"),
        (
            ("--category", "cooking_fume", "--lon", "110", "--lat", "30", "--crs", "x"),
            "coordinate reference system",
        ),
        (
            ("--category", "cooking_fume", "--lon", "110", "--lat", "30", "--reporter-kind", "x"),
            "reporter.kind",
        ),
    ],
)
def test_bad_input_exits_2_with_the_reason(
    committed_area: None, args: tuple[str, ...], message: str, report: Callable[..., Result]
) -> None:
    result = report(*args)
    assert result.exit_code == 2
    assert message in result.output
