"""Incident list and delete indexes: newest-first paging, the duplicate_of_id foreign key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """GET /incidents without filters sorts 1M+ rows without the first; the second serves the
    foreign-key check that every DELETE of an incident makes on duplicate_of_id."""
    op.create_index("ix_incidents_reported_id", "incidents", ["reported_at", "id"])
    op.create_index(
        "ix_incidents_duplicate_of_id",
        "incidents",
        ["duplicate_of_id"],
        postgresql_where=sa.text("duplicate_of_id IS NOT NULL"),
    )


def downgrade() -> None:
    """Drop the two indexes."""
    op.drop_index("ix_incidents_duplicate_of_id", table_name="incidents")
    op.drop_index("ix_incidents_reported_id", table_name="incidents")
