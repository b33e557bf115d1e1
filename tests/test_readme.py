"""The README stays true: every setting documented, the two commands real, CI runs the second."""

from __future__ import annotations

import re
from pathlib import Path

from gis.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme() -> None:
    missing = [
        f"GIS_{name.upper()}"
        for name in Settings.model_fields
        if f"`GIS_{name.upper()}`" not in README
    ]
    assert not missing, f"document these in README.md: {missing}"


def test_the_two_commands_are_make_targets_and_ci_runs_the_test_one() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}:", makefile, re.M), target
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, re.M)


def test_every_linked_doc_exists() -> None:
    for link in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (ROOT / link).is_file(), link
