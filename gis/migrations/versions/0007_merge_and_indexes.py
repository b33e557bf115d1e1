"""Merge the feature branches; index cases by member; drop an index another one covers.

Revision ID: 0007
Revises: 0002, 0003, 0004, 0005b, 0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | tuple[str, ...] | None = ("0002", "0003", "0004", "0005b", "0006")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Statistics by grid member need this index; (action, incident_id, at) covers (action)."""
    op.create_index("ix_incidents_member_id", "incidents", ["member_id"])
    op.drop_index("ix_incident_events_action", table_name="incident_events")


def downgrade() -> None:
    """Put the indexes back as they were."""
    op.create_index("ix_incident_events_action", "incident_events", ["action"])
    op.drop_index("ix_incidents_member_id", table_name="incidents")
