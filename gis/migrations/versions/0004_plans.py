"""boundary plans and the grid change log

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-27 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("scope_level", sa.String(length=10), nullable=False),
        sa.Column("scope_code", sa.String(length=12), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("proposed", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("allow_multipart", sa.Boolean(), nullable=False),
        sa.Column("based_on_version", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("validation", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("balance", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("impact", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_by", sa.String(length=100), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'applied', 'rejected', 'superseded')",
            name=op.f("ck_plans_status_allowed"),
        ),
        sa.CheckConstraint(
            "scope_level IN ('village', 'town')", name=op.f("ck_plans_scope_level_allowed")
        ),
        sa.ForeignKeyConstraint(
            ["scope_code"], ["regions.code"], name=op.f("fk_plans_scope_code_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
    )
    op.create_index("ix_plans_scope_status", "plans", ["scope_code", "status"], unique=False)
    op.create_table(
        "grid_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "change IN ('created', 'retired')", name=op.f("ck_grid_changes_change_allowed")
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["grids.id"],
            name=op.f("fk_grid_changes_grid_id_grids"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_grid_changes_plan_id_plans"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_changes")),
    )
    op.create_index("ix_grid_changes_code_at", "grid_changes", ["code", "at"], unique=False)
    op.create_index(op.f("ix_grid_changes_grid_id"), "grid_changes", ["grid_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_grid_changes_grid_id"), table_name="grid_changes")
    op.drop_index("ix_grid_changes_code_at", table_name="grid_changes")
    op.drop_table("grid_changes")
    op.drop_index("ix_plans_scope_status", table_name="plans")
    op.drop_table("plans")
