"""Routers, one module per concern; ``ROUTERS`` is what the app factory mounts."""

from fastapi import APIRouter

from gis.api.routes import health, layers

ROUTERS: list[APIRouter] = [health.router, layers.router]
