"""Server-Sent Events of what happens to cases, units and cameras (docs/live.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from gis.api.deps import PlatformDep, database_of
from gis.api.errors import ERROR_RESPONSES, domain_errors
from gis.api.live import Hub, Stream, Subscription
from gis.api.security import READ_CASES, WATCH, allow, check_town, principal_of, token_of
from gis.errors import UnknownCodeError
from gis.layers.live import EventType
from gis.services.access import Principal
from gis.services.live import check_town_flow, parse_last_event_id, parse_types

router = APIRouter(tags=["live"])
Subscriber = Annotated[Principal | None, Depends(allow(*READ_CASES, *WATCH))]

_TYPES = ", ".join(t.value for t in EventType)
STREAM_RESPONSES = {
    **ERROR_RESPONSES,
    **domain_errors(
        (UnknownCodeError, "a town, platform or event type filter names nothing known"),
    ),
    200: {
        "description": "An endless stream of events (`id`, `event` = type, `data` = JSON); "
        "`reload` means: fetch the page again, events were missed.",
        # One schema per event, as SSE clients (and schemathesis) read a stream.
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "pattern": "^[0-9]+$"},
                        "event": {"type": "string", "description": f"{_TYPES} or reload"},
                        "data": {"type": "string", "description": "The event as JSON"},
                    },
                }
            }
        },
    },
}


@router.get("/events/stream", response_class=StreamingResponse, responses=STREAM_RESPONSES)
async def event_stream(
    request: Request,
    principal: Subscriber,
    town: Annotated[
        str | None,
        Query(max_length=12, pattern=r"^[0-9]+$", description="Only this town's events"),
    ] = None,
    platform: PlatformDep = None,
    types: Annotated[
        str | None,
        Query(max_length=200, description=f"Comma-separated event types: {_TYPES}"),
    ] = None,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=10**18,
            description="Resume after this event id (a page passes the id its data is as of; "
            "Last-Event-ID, when sent, wins)",
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=40,
            # Documented as a number; anything else is the stream's own 400 (not a 422), which
            # is why the pattern is in the schema only.
            json_schema_extra={"pattern": r"^[0-9]{1,18}$"},
            description="Resume after this event id (browsers send it when they reconnect)",
        ),
    ] = None,
) -> StreamingResponse:
    """Live events of the caller's towns, scoped by role as the rest of the API: case.created,
    case.assigned, case.status, case.overdue, unit.moved, unit.status, camera.status."""
    wanted = parse_types(types)
    resume = parse_last_event_id(last_event_id)
    if resume is None:
        resume = after
    if town is not None:
        await database_of(request).run(check_town_flow(town))
        check_town(principal, town, f"town with code {town!r}")
    hub: Hub = request.app.state.hub

    async def check_token() -> object:
        # Through the token cache: a revocation clears it at once (NOTIFY), and it forgets
        # a token after GIS_TOKEN_CACHE_S in any case; 200 streams of one token cost one query.
        return await principal_of(request)

    stream = Stream(
        hub,
        Subscription(principal, town, platform.value if platform else None, wanted),
        resume,
        check_token if principal is not None and token_of(request) is not None else None,
    )
    return StreamingResponse(
        stream.events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
