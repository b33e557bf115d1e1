"""Webhooks for other systems (admin): register a URL and event types, read the deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from gis.api.deps import SessionDep, SettingsDep
from gis.api.schemas.webhooks import DeliveryRead, WebhookCreate, WebhookCreated, WebhookRead
from gis.api.security import allow
from gis.services import webhooks
from gis.services.access import Principal

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
Admin = Annotated[Principal | None, Depends(allow())]
WebhookId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Webhook id")]


@router.post("", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED)
def create_webhook(
    request: Request, body: WebhookCreate, session: SessionDep, settings: SettingsDep, admin: Admin
) -> WebhookCreated:
    """Register a webhook; every matching event is then POSTed to it, signed, with retries."""
    own = [(settings.host, settings.port)]
    if request.url.hostname:
        own.append((request.url.hostname, request.url.port or 80))
    registered = webhooks.register(
        session,
        url=body.url,
        event_types=body.event_types,
        town_codes=body.towns,
        created_by=admin.name if admin else "anonymous",
        own=own,
    )
    session.commit()
    read = WebhookRead.model_validate(registered.webhook)
    return WebhookCreated(**read.model_dump(), secret=registered.secret)


@router.get("", response_model=list[WebhookRead])
def list_webhooks(session: SessionDep, _: Admin) -> list[WebhookRead]:
    """Every webhook."""
    return [WebhookRead.model_validate(w) for w in webhooks.list_webhooks(session)]


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryRead])
def deliveries(
    session: SessionDep,
    _: Admin,
    webhook_id: WebhookId,
    limit: Annotated[int, Query(ge=1, le=1000, description="Newest first, at most")] = 100,
) -> list[DeliveryRead]:
    """The webhook's deliveries, newest first: delivered, pending (with the next attempt) or
    failed (with the last error)."""
    rows = webhooks.list_deliveries(session, webhook_id, limit=limit)
    return [DeliveryRead.model_validate(d) for d in rows]


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(session: SessionDep, _: Admin, webhook_id: WebhookId) -> Response:
    """Remove a webhook and what it was still owed."""
    session.delete(webhooks.get_webhook(session, webhook_id))
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
