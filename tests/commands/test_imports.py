"""`gis import template KIND`: an .xlsx whose headers the import reads back, an example row
and a notes sheet; an unknown kind is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from gis.cli import app
from gis.services.ledger_tables import read_table_file
from gis.services.ledgers import COLUMNS, LedgerKind

runner = CliRunner()


@pytest.mark.parametrize("kind", list(LedgerKind))
def test_template_has_every_column_an_example_and_notes(kind: LedgerKind, tmp_path: Path) -> None:
    path = tmp_path / f"{kind.value}.xlsx"
    result = runner.invoke(app, ["import", "template", kind.value, "--out", str(path)])
    assert result.exit_code == 0, result.output
    assert load_workbook(path).sheetnames == [kind.value, "说明 notes"]
    table = read_table_file(path)
    assert table.errors == []
    assert set(table.headers) == set(COLUMNS[kind])
    assert len(table.rows) == 1


def test_unknown_kind_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", "template", "trees", "--out", str(tmp_path / "t.xlsx")])
    assert result.exit_code == 2 and "unknown ledger kind 'trees'" in result.output
