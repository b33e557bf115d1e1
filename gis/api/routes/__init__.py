"""Routers, one module per concern. Every module here that defines ``router`` is mounted by the
app factory, in module-name order, so adding an endpoint module needs no edit elsewhere."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def discover_routers() -> list[APIRouter]:
    """The ``router`` of every module in this package."""
    routers = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            routers.append(router)
    return routers
