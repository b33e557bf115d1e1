"""The baseline: a bare ASGI app on asyncpg running the SAME SQL as the service, nothing else.

Serve with ``uvicorn --factory bench.intake.bare:create_app`` and ``BENCH_DATABASE_URL`` set.
The statements are imported from ``gis.services`` and compiled for asyncpg, so the baseline and
the service cannot drift apart: what the ratio measures is everything around the SQL.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import asyncpg

from gis.db_async import asyncpg_dsn
from gis.db_async import compile_for_asyncpg as compiled
from gis.services.assignment import _LOCATE_SQL
from gis.services.intake import _CATEGORY_SQL, _INTAKE_SQL

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def create_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The bare app: POST /incidents and GET /locate, JSON in, JSON out."""
    url = asyncpg_dsn(os.environ["BENCH_DATABASE_URL"])
    intake_sql, intake_names = compiled(_INTAKE_SQL)
    locate_sql, locate_names = compiled(_LOCATE_SQL)
    category_sql, category_names = compiled(_CATEGORY_SQL)
    state: dict[str, Any] = {}

    async def respond(send: Send, status: int, payload: Any) -> None:
        body = json.dumps(payload, default=str).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def read_body(receive: Receive) -> bytes:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

    async def intake(scope: Scope, receive: Receive, send: Send) -> None:
        report = json.loads(await read_body(receive))
        lon, lat = float(report["location"]["lon"]), float(report["location"]["lat"])
        if not (math.isfinite(lon) and math.isfinite(lat)):
            await respond(send, 422, {"code": "invalid_coordinates", "detail": "not finite"})
            return
        key = dict(scope["headers"]).get(b"idempotency-key")
        now = datetime.now(UTC)
        # No explicit transaction: the intake statement is atomic on its own (as in the service).
        async with state["pool"].acquire() as conn:
            category = await conn.fetchrow(category_sql, report["category"])
            params = {
                "lon": lon,
                "lat": lat,
                "at": now,
                "snap_m": 50.0,
                "margin_m": 50_000.0,
                "dup_radius_m": 100.0,
                "dup_window_s": 86_400.0,
                "unit_type": category["unit_type"],
                "category": report["category"],
                "platform": category["platform"],
                "description": report.get("description", ""),
                "reporter_kind": report["reporter"]["kind"],
                "reporter_id": report["reporter"].get("id"),
                "actor": report["reporter"]["kind"],
                "photos": json.dumps(report.get("photos", [])),
                "source_crs": "EPSG:4326",
                "source_lon": lon,
                "source_lat": lat,
                "occurred_at": None,
                "accuracy_m": report["location"].get("accuracy_m"),
                "location_method": report["location"].get("method"),
                "now": now,
                "due_at": now + timedelta(hours=category["time_limit_hours"]),
                "idempotency_key": key.decode() if key else None,
                "request_hash": hashlib.sha256(
                    json.dumps(report, sort_keys=True).encode()
                ).hexdigest(),
            }
            row = await conn.fetchrow(intake_sql, *[params[n] for n in intake_names])
        await respond(send, 201, dict(row) if row else None)

    async def locate(scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope["query_string"].decode())
        lon, lat = float(query["lon"][0]), float(query["lat"][0])
        if not (math.isfinite(lon) and math.isfinite(lat)):
            await respond(send, 422, {"code": "invalid_coordinates", "detail": "not finite"})
            return
        params = {
            "lon": lon,
            "lat": lat,
            "at": datetime.now(UTC),
            "snap_m": 50.0,
            "margin_m": 50_000.0,
        }
        async with state["pool"].acquire() as conn:
            row = await conn.fetchrow(locate_sql, *[params[n] for n in locate_names])
        await respond(send, 200, dict(row))

    async def keep_session(connection: asyncpg.Connection) -> None:
        pass

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    # Released as they are, like the service's pool (gis.db_async): no reset
                    # round trip, so the service gets no edge the baseline lacks.
                    state["pool"] = await asyncpg.create_pool(
                        url, min_size=10, max_size=10, reset=keep_session
                    )
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await state["pool"].close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/incidents" and scope["method"] == "POST":
            await intake(scope, receive, send)
        elif scope["path"] == "/locate":
            await locate(scope, receive, send)
        else:
            await respond(send, 404, {"code": "not_found", "detail": scope["path"]})

    del category_names
    return app
