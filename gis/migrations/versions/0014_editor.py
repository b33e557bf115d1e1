"""the planner's editor: the undo history of a draft plan's gestures

Revision ID: 0014_editor
Revises: 0013_jobs
Create Date: 2026-12-06 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_editor"
down_revision: str | None = "0013_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``plan_edits``."""
    op.create_table(
        "plan_edits",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("gesture", postgresql.JSONB(), nullable=False),
        sa.Column("before", postgresql.JSONB(), nullable=False),
        sa.Column("after", postgresql.JSONB(), nullable=False),
        sa.Column("undone", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_plan_edits_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_edits")),
        sa.UniqueConstraint("plan_id", "seq", name=op.f("uq_plan_edits_plan_id")),
    )


def downgrade() -> None:
    """Drop ``plan_edits``."""
    op.drop_table("plan_edits")
