"""CLI command modules. Each module here defines ``register(app)``, which adds its commands to
the root ``gis`` app; ``gis.cli`` calls every one of them, in module-name order."""

from __future__ import annotations

import importlib
import pkgutil

import typer


def register_all(app: typer.Typer) -> None:
    """Add every command module's commands to ``app``."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(app)
