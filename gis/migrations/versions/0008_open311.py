"""Stored media; Open311 GeoReport v2: the reporter's contacts of a filed request, and client update ids.

Revision ID: 0008_open311
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_open311"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create media, open311_requests and open311_updates."""
    op.create_table(
        "media",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(50), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["uploaded_by"],
            ["users.id"],
            name=op.f("fk_media_uploaded_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media")),
    )
    op.create_index(
        "ix_incidents_media_photos",
        "incidents",
        ["photos"],
        postgresql_using="gin",
        postgresql_ops={"photos": "jsonb_path_ops"},
        postgresql_where=sa.text("CAST(photos AS text) LIKE '%media:%'"),
    )
    op.create_table(
        "open311_requests",
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("jurisdiction_id", sa.String(12), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(200), nullable=True),
        sa.Column("phone", sa.String(50), nullable=True),
        sa.Column("device_id", sa.String(200), nullable=True),
        sa.Column("account_id", sa.String(200), nullable=True),
        sa.Column("first_name", sa.String(100), nullable=True),
        sa.Column("last_name", sa.String(100), nullable=True),
        sa.Column("address_string", sa.String(500), nullable=True),
        sa.Column("attributes", postgresql.JSONB(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_open311_requests_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_open311_requests_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_open311_requests")),
    )
    op.create_table(
        "open311_updates",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("client_update_id", sa.String(100), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(200), nullable=True),
        sa.Column("first_name", sa.String(100), nullable=True),
        sa.Column("last_name", sa.String(100), nullable=True),
        sa.Column("media_url", sa.String(2000), nullable=True),
        sa.Column("client_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_open311_updates_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["incident_events.id"],
            name=op.f("fk_open311_updates_event_id_incident_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_open311_updates_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_updates")),
        sa.UniqueConstraint("client_update_id", name=op.f("uq_open311_updates_client_update_id")),
        sa.UniqueConstraint("event_id", name=op.f("uq_open311_updates_event_id")),
    )
    op.create_index(
        op.f("ix_open311_updates_incident_id"), "open311_updates", ["incident_id"], unique=False
    )


def downgrade() -> None:
    """Drop the Open311 tables."""
    op.drop_index(op.f("ix_open311_updates_incident_id"), table_name="open311_updates")
    op.drop_table("open311_updates")
    op.drop_table("open311_requests")
    op.drop_table("media")
    op.drop_index("ix_incidents_media_photos", table_name="incidents")
