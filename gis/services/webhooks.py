"""Webhooks: other systems register a URL and the event types they want; every feed event that
matches is owed to them as a row of ``webhook_deliveries`` (the outbox), written by the feed's
trigger in the transaction of the change itself (``gis.layers.live``). Deliveries are signed
(HMAC-SHA256), retried with exponential backoff, and recorded: delivered, or failed for good.

The rules live here; the sender that works through the outbox is ``gis.api.webhooks``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gis.errors import NotFoundError, ValidationError
from gis.layers.base import utcnow
from gis.layers.live import EventType, Webhook, WebhookDelivery
from gis.layers.regions import Region, RegionLevel
from gis.queries import Flow, Query
from gis.services.live import parse_types

SIGNATURE_HEADER = "X-Gis-Signature"
# Attempts before a delivery is recorded as failed, and the backoff between them (2 s, 4 s, …
# capped): about an hour in all.
MAX_ATTEMPTS = 12
BACKOFF_S = 2.0
MAX_BACKOFF_S = 900.0
# A claimed delivery is hidden this long: a sender that dies mid-delivery leaves it to be
# claimed again (at least once, never lost).
LEASE_S = 30.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the HMAC of ``timestamp.body``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def backoff_s(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones."""
    return float(min(MAX_BACKOFF_S, BACKOFF_S * 2 ** max(0, attempts - 1)))


def check_url(url: str, *, own: Sequence[tuple[str, int]]) -> str:
    """``url`` if it is an http(s) URL of another service; 422 if not, or if it points at this
    service (``own``: the host/port pairs it answers on)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ValidationError(f"not a URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("a webhook URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise ValidationError("put no credentials in a webhook URL; deliveries are signed")
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname.lower()
    for own_host, own_port in own:
        if port == own_port and _same_host(host, own_host.lower()):
            raise ValidationError("a webhook may not point at this service itself")
    return url


def _same_host(a: str, b: str) -> bool:
    return a == b or (_loopback(a) and _loopback(b))


def _loopback(host: str) -> bool:
    if host in ("localhost", "0.0.0.0", "::"):  # (any address includes the loopback one)
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Registered:
    """A new webhook and its secret (shown once)."""

    webhook: Webhook
    secret: str


def register(
    session: Session,
    *,
    url: str,
    event_types: Sequence[str],
    town_codes: Sequence[str] | None,
    created_by: str,
    own: Sequence[tuple[str, int]],
) -> Registered:
    """Register a webhook (422 for a bad URL, unknown types or towns); the caller commits."""
    check_url(url, own=own)
    types = parse_types(",".join(event_types)) if event_types else None
    if not types:
        raise ValidationError("give at least one event type: " + ", ".join(EventType))
    if town_codes is not None:
        known = set(
            session.scalars(
                sa.select(Region.code).where(
                    Region.code.in_(list(town_codes)), Region.level == RegionLevel.TOWN.value
                )
            )
        )
        unknown = sorted(set(town_codes) - known)
        if unknown or not town_codes:
            raise ValidationError(f"unknown town code(s): {', '.join(unknown) or '(none given)'}")
    secret = secrets.token_urlsafe(32)
    webhook = Webhook(
        url=url,
        secret=secret,
        event_types=sorted(t.value for t in types),
        town_codes=sorted(set(town_codes)) if town_codes is not None else None,
        active=True,
        created_by=created_by,
        created_at=utcnow(),
    )
    session.add(webhook)
    session.flush()
    return Registered(webhook, secret)


def list_webhooks(session: Session) -> list[Webhook]:
    """Every webhook, oldest first."""
    return list(session.scalars(sa.select(Webhook).order_by(Webhook.id)))


def get_webhook(session: Session, webhook_id: int) -> Webhook:
    """The webhook with this id, or 404."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFoundError(f"no webhook with id {webhook_id}")
    return webhook


def list_deliveries(session: Session, webhook_id: int, *, limit: int) -> list[WebhookDelivery]:
    """The webhook's deliveries, newest first."""
    get_webhook(session, webhook_id)
    return list(
        session.scalars(
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


_CLAIM_SQL = sa.text(
    """
WITH due AS (
    SELECT id FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()
    ORDER BY id
    FOR UPDATE SKIP LOCKED
    LIMIT CAST(:limit AS integer)
), claimed AS (
    UPDATE webhook_deliveries AS d
    SET attempts = d.attempts + 1,
        next_attempt_at = clock_timestamp() + make_interval(secs => CAST(:lease_s AS float8))
    FROM due WHERE d.id = due.id
    RETURNING d.id, d.webhook_id, d.event_id, d.attempts
)
SELECT c.id, c.event_id, c.attempts, w.url, w.secret, e.type,
       (jsonb_build_object('id', e.id, 'type', e.type, 'town', e.town_code, 'at', e.at)
        || e.data)::text AS payload
FROM claimed AS c
JOIN webhooks AS w ON w.id = c.webhook_id
LEFT JOIN live_events AS e ON e.id = c.event_id
ORDER BY c.id
"""
)
_RECORD_SQL = sa.text(
    """
UPDATE webhook_deliveries
SET status = CAST(:status AS text), last_status_code = CAST(:code AS integer),
    last_error = CAST(:error AS text),
    delivered_at = CASE WHEN CAST(:status AS text) = 'delivered' THEN clock_timestamp() END,
    next_attempt_at = clock_timestamp() + make_interval(secs => CAST(:retry_s AS float8))
WHERE id = CAST(:id AS bigint)
RETURNING id
"""
)


@dataclass(frozen=True)
class Due:
    """A claimed delivery: where, what, and which attempt this is."""

    id: int
    event_id: int
    attempts: int
    url: str
    secret: str
    type: str | None
    payload: str | None  # None: the event was pruned before it could be delivered


def claim_flow(limit: int = 50) -> Flow[list[Due]]:
    """Claim up to ``limit`` due deliveries (leased for ``LEASE_S``)."""
    rows = yield Query(_CLAIM_SQL, {"limit": limit, "lease_s": LEASE_S}, many=True)
    return [Due(**row) for row in rows]


def record_flow(due: Due, *, status_code: int | None, error: str | None) -> Flow[str]:
    """Record an attempt: delivered on a 2xx, else retried later or, after the last attempt,
    failed. Returns the delivery's status."""
    ok = status_code is not None and 200 <= status_code < 300
    if ok:
        status = "delivered"
    elif due.attempts >= MAX_ATTEMPTS or due.payload is None:
        status = "failed"
    else:
        status = "pending"
    yield Query(
        _RECORD_SQL,
        {
            "id": due.id,
            "status": status,
            "code": status_code,
            "error": None if ok else (error or f"HTTP {status_code}")[:500],
            "retry_s": backoff_s(due.attempts),
        },
    )
    return status
