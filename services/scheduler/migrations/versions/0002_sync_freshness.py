"""schedules: when each connection last synced completely, and since when it is active

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("schedules", sa.Column("active_since", sa.DateTime(timezone=True)))
    op.add_column("schedules", sa.Column("last_completed_at", sa.DateTime(timezone=True)))
    # What the rows already know: the latest result if it was a completed sync, and the
    # last change of an active row as the earliest it can have become active.
    op.execute(
        "UPDATE schedules SET "
        "last_completed_at = CASE WHEN last_result = 'completed' THEN last_result_at END, "
        "active_since = CASE WHEN status = 'active' THEN updated_at END"
    )


def downgrade() -> None:
    op.drop_column("schedules", "last_completed_at")
    op.drop_column("schedules", "active_since")
