"""workflow bookkeeping on incidents; errand runners (services, errands, errand_events)

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-27 06:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTERS = ("escalation_level", "extension_count", "reassign_count", "return_count")


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("incidents", sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("incidents", sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
    for column in _COUNTERS:
        op.add_column(
            "incidents",
            sa.Column(column, sa.SmallInteger(), server_default="0", nullable=False),
        )
    # Statistics read the log by action (close, extend…) and per case in time order.
    op.create_index(
        "ix_incident_events_action_incident_at",
        "incident_events",
        ["action", "incident_id", "at"],
    )

    op.create_table(
        "services",
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("approving_level", sa.String(length=10), nullable=False),
        sa.Column("approver", sa.String(length=200), nullable=False),
        sa.Column("proxy_allowed", sa.Boolean(), nullable=False),
        sa.Column("proxy_note", sa.Text(), nullable=True),
        sa.Column("time_limit_days", sa.SmallInteger(), nullable=False),
        sa.Column("materials", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "approving_level IN ('village', 'town', 'county')",
            name=op.f("ck_services_approving_level_allowed"),
        ),
        sa.CheckConstraint("time_limit_days > 0", name=op.f("ck_services_positive_time_limit")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_services")),
    )
    op.create_table(
        "errands",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("service_code", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("applicant_name", sa.String(length=100), nullable=False),
        sa.Column("applicant_phone", sa.String(length=32), nullable=False),
        sa.Column(
            "geom",
            Geometry(geometry_type="POINT", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column("source_crs", sa.String(length=16), nullable=False),
        sa.Column("source_lon", sa.Float(), nullable=False),
        sa.Column("source_lat", sa.Float(), nullable=False),
        sa.Column("location_quality", sa.String(length=10), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("grid_code", sa.String(length=20), nullable=True),
        sa.Column("village_code", sa.String(length=12), nullable=True),
        sa.Column("town_code", sa.String(length=12), nullable=True),
        sa.Column("county_code", sa.String(length=12), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applicant_trips", sa.SmallInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('requested', 'collecting', 'submitted', 'approved', 'rejected', "
            "'delivered', 'cancelled')",
            name=op.f("ck_errands_status_allowed"),
        ),
        sa.CheckConstraint(
            "location_quality IN ('inside', 'on_edge', 'snapped', 'outside')",
            name=op.f("ck_errands_location_quality_allowed"),
        ),
        sa.CheckConstraint("applicant_trips >= 0", name=op.f("ck_errands_trips_not_negative")),
        sa.ForeignKeyConstraint(
            ["service_code"], ["services.code"], name=op.f("fk_errands_service_code_services")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_errands_grid_id_grids")),
        sa.ForeignKeyConstraint(
            ["village_code"], ["regions.code"], name=op.f("fk_errands_village_code_regions")
        ),
        sa.ForeignKeyConstraint(
            ["town_code"], ["regions.code"], name=op.f("fk_errands_town_code_regions")
        ),
        sa.ForeignKeyConstraint(
            ["county_code"], ["regions.code"], name=op.f("fk_errands_county_code_regions")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["grid_members.id"], name=op.f("fk_errands_member_id_grid_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_errands")),
    )
    op.create_index("idx_errands_geom", "errands", ["geom"], postgresql_using="gist")
    op.create_index(op.f("ix_errands_service_code"), "errands", ["service_code"])
    op.create_index(op.f("ix_errands_status"), "errands", ["status"])
    op.create_index(op.f("ix_errands_grid_code"), "errands", ["grid_code"])
    op.create_index(op.f("ix_errands_member_id"), "errands", ["member_id"])
    op.create_index("ix_errands_town_requested", "errands", ["town_code", "requested_at"])
    op.create_table(
        "errand_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("errand_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["errand_id"],
            ["errands.id"],
            name=op.f("fk_errand_events_errand_id_errands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_errand_events")),
    )
    op.create_index("ix_errand_events_errand_at", "errand_events", ["errand_id", "at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("errand_events")
    op.drop_table("errands")
    op.drop_table("services")
    op.drop_index("ix_incident_events_action_incident_at", table_name="incident_events")
    for column in (*_COUNTERS, "escalated_at", "overdue_at"):
        op.drop_column("incidents", column)
