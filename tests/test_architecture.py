"""The import table of docs/architecture.md holds: each package imports only what it may."""

from __future__ import annotations

import ast
from pathlib import Path

import gis

ROOT = Path(gis.__file__).parent
# Always allowed: the shared foundations every layer uses.
COMMON = {"errors", "settings", "geo", "gis"}
# package → the other gis packages it may import (docs/architecture.md, "Layers").
ALLOWED = {
    "layers": set(),
    "services": {"layers", "queries", "maps.data"},
    "maps": {"layers", "web"},
    "web": set(),
    "ingest": {"layers", "services"},
    "sample": {"layers", "services", "commands"},
    "db": set(),
    "db_async": {"db", "queries"},
    "replicas": {"db", "db_async", "queries"},
    "queries": set(),
    "api": {
        "layers",
        "services",
        "maps",
        "web",
        "db",
        "db_async",
        "queries",
        "replicas",
        "migrations",
    },
    "commands": {"services", "ingest", "maps", "layers", "sample", "db"},
    "cli": {"commands", "layers", "sample", "migrations", "provision"},
}


def _package(module: str) -> str:
    """``gis.services.x`` → ``services``; ``gis.maps.data`` stays itself (a named exception)."""
    parts = module.split(".")
    if parts[:3] == ["gis", "maps", "data"]:
        return "maps.data"
    return parts[1] if len(parts) > 1 else parts[0]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gis"):
            found.add(node.module)
            # ``from gis import x`` / ``from gis.maps import data`` name modules too.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("gis"))
    return found


def test_each_package_imports_only_what_the_architecture_allows() -> None:
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        owner = relative.parts[0]
        if owner not in ALLOWED:
            continue
        allowed = ALLOWED[owner] | COMMON | {owner}
        for module in _imports(path):
            target = _package(module)
            real_module = (ROOT / Path(*module.split(".")[1:])).with_suffix(".py").exists() or (
                ROOT / Path(*module.split(".")[1:]) / "__init__.py"
            ).exists()
            if real_module and target not in allowed and target.split(".")[0] not in allowed:
                wrong.append(f"{relative}: imports {module}")
    assert wrong == []
