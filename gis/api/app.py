"""The application factory: settings in, a FastAPI app out; the engine lives in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.telemetry import TelemetryConfig

from gis import __version__
from gis.api import openapi
from gis.api.errors import ERROR_RESPONSES, install_error_handlers
from gis.api.hot import HotPaths, hot_routes
from gis.api.jobs import JobRunner
from gis.api.live import Hub
from gis.api.middleware import BodySizeLimit
from gis.api.pages import PageCache
from gis.api.reads import ReadRouting
from gis.api.routes import discover_routers
from gis.api.webhooks import WebhookSender
from gis.db import make_engine, make_sessionmaker
from gis.db_async import AsyncDatabase
from gis.replicas import ReadRouter
from gis.services.access import TOKENS_CHANNEL
from gis.services.media import MAX_UPLOADS
from gis.settings import Settings, get_settings

DESCRIPTION = """
Grid-management GIS for grassroots-governance command rooms (全科网格 · 四个平台).

Every report is assigned at once to the grid that contains it, to one of the four platforms
(governance 综治工作, market 市场监管, enforcement 综合执法, service 便民服务) and to the nearest
responsible unit, with a deadline. Coordinates are lon/lat (GeoJSON order) in WGS84 unless a `crs`
says otherwise. Errors always have the shape `{"code": …, "detail": …}`.
"""


# FastAPI asks the OpenTelemetry API on every request whether a provider is configured; with
# telemetry off it does not (its cost: docs/architecture.md).
_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


# Where requests may carry photos or ledgers (multipart uploads).
UPLOAD_PATHS = (
    "/media",
    "/imports/",
    "/open311/v2/requests.",
    "/open311/v2/servicerequestupdates.",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: from the environment).

    The hot paths run their flows on ``app.state.database``, an asyncpg pool opened at startup;
    set it before startup to run them elsewhere (the tests hand in their rolled-back session as
    a ``gis.db_async.SessionDatabase``).
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        # Read replicas (none unless GIS_READ_DATABASE_URLS): an unreachable one is logged and
        # skipped, never fatal.
        reads = app.state.reads = ReadRouter(settings)
        await reads.open()
        # A database handed in before startup (the tests' session) is used as it is.
        pool = None if hasattr(app.state, "database") else AsyncDatabase(settings)
        if pool is not None:
            await pool.open()
            app.state.database = pool
        # The live feed's reader (it polls the feed, gis.api.live); with a database handed in,
        # it runs only while streams do. The webhook sender is woken when it reads new events.
        sender = None if pool is None else WebhookSender(pool, settings)
        hub = app.state.hub = Hub(
            app.state.database,
            settings,
            always=pool is not None,
            on_events=None if sender is None else sender.wake,
        )
        if pool is not None and sender is not None:
            token_cache = app.state.token_cache

            def tokens_changed() -> None:
                token_cache.clear()
                hub.tokens_changed()

            # One LISTEN connection per process: a revoked token is forgotten at once by every
            # worker (gis.services.access).
            pool.listen({TOKENS_CHANNEL: tokens_changed})
            hub.start()
            sender.start()
        # Background jobs (long analyses) run in this process; a dead one's jobs are failed now.
        runner = app.state.jobs = JobRunner(engine, settings)
        runner.start()
        if settings.analytics_warmup:
            from gis.services.hotspots import warm_up_in_background

            warm_up_in_background()
        try:
            yield
        finally:
            await asyncio.to_thread(runner.stop)
            await hub.stop()
            if sender is not None:
                await sender.stop()
            if pool is not None:
                await pool.close()
                del app.state.database
            await reads.close()
            engine.dispose()

    app = FastAPI(
        title="gis — grid management",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        telemetry=None if settings.telemetry else _NO_TELEMETRY,
    )
    app.state.settings = settings
    # Principals of recently checked tokens, by token hash (gis.api.security).
    app.state.token_cache = {}
    # Recent writers' token hashes and until when they read the primary (gis.api.reads).
    app.state.recent_writers = {}
    # Built map pages (gis.api.pages).
    app.state.page_cache = PageCache(settings.page_cache_s)
    app.state.stats_cache = PageCache(settings.stats_cache_s)
    install_error_handlers(app)
    openapi.install(app, settings)
    routers = discover_routers()
    for router in routers:
        app.include_router(router)  # no prefix: a route's path is its router's
    # The last added is the outermost: the body limit applies to the hot paths too.
    app.add_middleware(HotPaths, routes=hot_routes(r for router in routers for r in router.routes))
    app.add_middleware(ReadRouting)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        # Photo uploads: a few photos and the form around them.
        upload_bytes=settings.media_max_bytes * MAX_UPLOADS + 100_000,
        upload_prefixes=UPLOAD_PATHS,
    )

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
