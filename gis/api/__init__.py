"""The HTTP API: ``create_app(settings)`` builds it; nothing happens at import time."""

from gis.api.app import create_app

__all__ = ["create_app"]
