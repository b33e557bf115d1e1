"""Request and reply bodies of the webhooks."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gis.layers.live import EventType

_TYPES = ", ".join(t.value for t in EventType)


class WebhookCreate(BaseModel):
    """A URL of another system and what it wants to receive."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., min_length=1, max_length=2000, description="http(s) URL to POST to")
    event_types: list[str] = Field(
        ..., min_length=1, max_length=20, description=f"Event types: {_TYPES}"
    )
    towns: list[str] | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="Only these towns' events (default: every town)",
    )


class WebhookRead(BaseModel):
    """A registered webhook (its secret is shown once, when it is made)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    event_types: list[str]
    towns: list[str] | None = Field(None, validation_alias="town_codes")
    active: bool
    created_at: datetime


class WebhookCreated(WebhookRead):
    """A new webhook and the secret its deliveries are signed with (HMAC-SHA256 of
    ``timestamp.body``, header X-Gis-Signature: sha256=…; timestamp in X-Gis-Timestamp)."""

    secret: str


class DeliveryRead(BaseModel):
    """One event owed to a webhook and how its delivery went."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: int
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
