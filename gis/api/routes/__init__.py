"""Routers, one module per concern. Every module here that defines ``router`` is mounted by the
app factory, so adding an endpoint module needs no edit elsewhere: the hot paths first (routes
are matched in order, and a report or a locate should not be tried against a hundred others
first), then the rest in module-name order."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

HOT = ("incidents", "locate")


def discover_routers() -> list[APIRouter]:
    """The ``router`` of every module in this package."""
    routers = []
    modules = sorted(pkgutil.iter_modules(__path__), key=lambda m: (m.name not in HOT, m.name))
    for info in modules:
        module = importlib.import_module(f"{__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            routers.append(router)
    return routers
