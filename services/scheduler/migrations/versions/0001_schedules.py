"""schedules: one row per connection, due while it is active

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.Float(), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_reason", sa.String(length=16), nullable=True),
        sa.Column("last_manual_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_emitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_reason", sa.String(length=16), nullable=True),
        sa.Column("last_result", sa.String(length=16), nullable=True),
        sa.Column("last_result_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_schedules")),
        sa.CheckConstraint(
            "status IN ('active', 'needs_user', 'disconnected')",
            name=op.f("ck_schedules_status_known"),
        ),
        sa.CheckConstraint(
            "due_reason IN ('schedule', 'manual', 'connected')",
            name=op.f("ck_schedules_due_reason_known"),
        ),
        sa.CheckConstraint("phase >= 0 AND phase < 1", name=op.f("ck_schedules_phase_in_interval")),
        sa.CheckConstraint(
            "(status = 'active') = (next_due_at IS NOT NULL)",
            name=op.f("ck_schedules_scheduled_when_active"),
        ),
        sa.CheckConstraint(
            "(next_due_at IS NULL) = (due_reason IS NULL)", name=op.f("ck_schedules_due_has_reason")
        ),
    )
    op.create_index(
        "ix_schedules_due",
        "schedules",
        ["next_due_at"],
        unique=False,
        postgresql_where=sa.text("next_due_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_schedules_due", table_name="schedules")
    op.drop_table("schedules")
