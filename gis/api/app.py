"""The application factory: settings in, a FastAPI app out; the engine lives in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from gis import __version__
from gis.api.errors import ERROR_RESPONSES, install_error_handlers
from gis.api.middleware import BodySizeLimit
from gis.api.routes import discover_routers
from gis.db import make_engine, make_sessionmaker
from gis.db_async import AsyncDatabase
from gis.settings import Settings, get_settings

DESCRIPTION = """
Grid-management GIS for grassroots-governance command rooms (全科网格 · 四个平台).

Every report is assigned at once to the grid that contains it, to one of the four platforms
(governance 综治工作, market 市场监管, enforcement 综合执法, service 便民服务) and to the nearest
responsible unit, with a deadline. Coordinates are lon/lat (GeoJSON order) in WGS84 unless a `crs`
says otherwise. Errors always have the shape `{"code": …, "detail": …}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        database = AsyncDatabase(settings)
        await database.open()
        app.state.database = database
        try:
            yield
        finally:
            await database.close()
            engine.dispose()

    app = FastAPI(
        title="gis — grid management",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    for router in discover_routers():
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
