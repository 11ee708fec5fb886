"""posting: connections replica, sync runs, posting batches, postings, account cursors

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_name", sa.String(255), nullable=False),
        sa.Column("org_timezone", sa.String(64), nullable=False),
        sa.Column("base_currency", sa.String(3), nullable=False),
        sa.Column("sink", sa.String(16), nullable=False),
        sa.Column("sync_start_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", _TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_connections")),
        sa.CheckConstraint(
            "sink IN ('bankfeeds', 'accounting')", name=op.f("ck_connections_sink_known")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'needs_user', 'disconnected')",
            name=op.f("ck_connections_status_known"),
        ),
    )
    op.create_index("ix_connections_tenant", "connections", ["tenant_id"])
    op.create_table(
        "connection_accounts",
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.String(50), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("feed_connection_id", sa.Uuid(), nullable=True),
        sa.Column("xero_account_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.connection_id"],
            name=op.f("fk_connection_accounts_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "account_id", name=op.f("pk_connection_accounts")),
    )
    op.create_table(
        "sync_runs",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("due_event_id", sa.Uuid(), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("queued_at", _TS, nullable=False),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("starts", sa.Integer(), nullable=False),
        sa.Column("posted", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("result_event", postgresql.JSONB(), nullable=True),
        sa.Column("published_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_sync_runs")),
        sa.UniqueConstraint("due_event_id", name=op.f("uq_sync_runs_due_event_id")),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'completed', 'failed', 'skipped')",
            name=op.f("ck_sync_runs_state_known"),
        ),
    )
    op.create_index(
        "ix_sync_runs_waiting",
        "sync_runs",
        ["tenant_id", "queued_at"],
        postgresql_where=sa.text("state IN ('queued', 'running')"),
    )
    op.create_index(
        "ix_sync_runs_unpublished",
        "sync_runs",
        ["finished_at"],
        postgresql_where=sa.text("result_event IS NOT NULL AND published_at IS NULL"),
    )
    op.create_table(
        "posting_batches",
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.String(50), nullable=False),
        sa.Column("sink", sa.String(16), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(200), nullable=False),
        sa.Column("params", postgresql.JSONB(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("transaction_ids", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("end_balance", sa.Numeric(19, 4), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("answered_at", _TS, nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_posting_batches")),
        sa.CheckConstraint(
            "state IN ('sending', 'done', 'failed')", name=op.f("ck_posting_batches_state_known")
        ),
    )
    op.create_index(
        "ix_posting_batches_sending",
        "posting_batches",
        ["tenant_id"],
        postgresql_where=sa.text("state = 'sending'"),
    )
    op.create_table(
        "postings",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.String(50), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("xero_id", sa.String(64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "transaction_id", name=op.f("pk_postings")),
        sa.CheckConstraint(
            "state IN ('sending', 'posted', 'failed')", name=op.f("ck_postings_state_known")
        ),
    )
    op.create_index("ix_postings_batch", "postings", ["batch_id"])
    op.create_table(
        "account_cursors",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.String(50), nullable=False),
        sa.Column("last_booked_at", _TS, nullable=False),
        sa.Column("last_transaction_id", sa.String(64), nullable=False),
        sa.Column("end_balance", sa.Numeric(19, 4), nullable=True),
        sa.Column("latest_date", sa.Date(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "account_id", name=op.f("pk_account_cursors")),
    )


def downgrade() -> None:
    op.drop_table("account_cursors")
    op.drop_index("ix_postings_batch", table_name="postings")
    op.drop_table("postings")
    op.drop_index("ix_posting_batches_sending", table_name="posting_batches")
    op.drop_table("posting_batches")
    op.drop_index("ix_sync_runs_unpublished", table_name="sync_runs")
    op.drop_index("ix_sync_runs_waiting", table_name="sync_runs")
    op.drop_table("sync_runs")
    op.drop_table("connection_accounts")
    op.drop_index("ix_connections_tenant", table_name="connections")
    op.drop_table("connections")
