"""plans can be submitted for review: status 'submitted', who submitted it and when

Revision ID: 0018_plan_submit
Revises: 0017_console
Create Date: 2026-12-07 02:20:00

A submitted plan is frozen (no edits) until it is withdrawn to a draft again, applied or
rejected (``gis.services.plan_review``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_plan_submit"
down_revision: str | None = "0017_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = "status IN ('draft', 'applied', 'rejected', 'superseded')"
AFTER = "status IN ('draft', 'submitted', 'applied', 'rejected', 'superseded')"


def upgrade() -> None:
    """Allow 'submitted'; add ``submitted_by`` and ``submitted_at``."""
    op.drop_constraint(op.f("ck_plans_status_allowed"), "plans", type_="check")
    op.create_check_constraint(op.f("ck_plans_status_allowed"), "plans", AFTER)
    op.add_column("plans", sa.Column("submitted_by", sa.String(100), nullable=True))
    op.add_column("plans", sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Submitted plans go back to drafts; the columns and the status go."""
    op.execute("UPDATE plans SET status = 'draft' WHERE status = 'submitted'")
    op.drop_column("plans", "submitted_at")
    op.drop_column("plans", "submitted_by")
    op.drop_constraint(op.f("ck_plans_status_allowed"), "plans", type_="check")
    op.create_check_constraint(op.f("ck_plans_status_allowed"), "plans", BEFORE)
