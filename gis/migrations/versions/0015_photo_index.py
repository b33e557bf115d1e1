"""who may see a workflow action's photos: a partial GIN index on incident_events' data photos

Revision ID: 0015_photos
Revises: 0014_editor
Create Date: 2026-12-06 23:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015_photos"
down_revision: str | None = "0014_editor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Index the photos of actions (a resolve with a picture), only events that have some."""
    op.execute(
        "CREATE INDEX ix_incident_events_photos ON incident_events "
        "USING gin ((data -> 'photos') jsonb_path_ops) WHERE data ? 'photos'"
    )


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_incident_events_photos", table_name="incident_events")
