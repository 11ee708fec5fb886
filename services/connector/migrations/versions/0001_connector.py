"""connector: accounts directory, connections, account links, encrypted tokens, OAuth
states, outbox

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
        "bank_accounts",
        sa.Column("account_id", sa.String(length=50), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("name", sa.String(length=150), nullable=False),
        sa.Column("account_number", sa.String(length=40), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("event_occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_bank_accounts")),
    )
    op.create_index("ix_bank_accounts_entity", "bank_accounts", ["entity_id"], unique=False)
    op.create_table(
        "connections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_name", sa.String(length=255), nullable=False),
        sa.Column("org_timezone", sa.String(length=64), nullable=False),
        sa.Column("base_currency", sa.String(length=3), nullable=False),
        sa.Column("sink", sa.String(length=16), nullable=False),
        sa.Column("sync_start_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=1000), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("xero_connection_id", sa.Uuid(), nullable=True),
        sa.Column("connected_by", sa.String(length=64), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_result", sa.String(length=16), nullable=True),
        sa.Column("last_sync_message", sa.String(length=1000), nullable=True),
        sa.Column("last_sync_run_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "sink IN ('bankfeeds', 'accounting')", name=op.f("ck_connections_sink_known")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'needs_user', 'disconnected')",
            name=op.f("ck_connections_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
    )
    op.create_index("ix_connections_tenant", "connections", ["tenant_id"], unique=False)
    op.create_index(
        "uq_connections_live_entity",
        "connections",
        ["entity_id"],
        unique=True,
        postgresql_where=sa.text("status <> 'disconnected'"),
    )
    op.create_table(
        "oauth_states",
        sa.Column("state_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("sealed_verifier", sa.LargeBinary(), nullable=False),
        sa.Column("account_ids", sa.JSON(), nullable=False),
        sa.Column("sync_start_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oauth_states")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_table(
        "connection_accounts",
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.String(length=50), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("feed_connection_id", sa.Uuid(), nullable=True),
        sa.Column("xero_account_id", sa.Uuid(), nullable=True),
        sa.Column("xero_account_name", sa.String(length=150), nullable=True),
        sa.Column("problem", sa.String(length=1000), nullable=True),
        sa.Column("sync_problem", sa.String(length=1000), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("latest_transaction_date", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "status IN ('linked', 'failed', 'needs_user', 'unlinked')",
            name=op.f("ck_connection_accounts_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_connection_accounts_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "account_id", name=op.f("pk_connection_accounts")),
    )
    op.create_table(
        "xero_tokens",
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refresh_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_xero_tokens_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_xero_tokens")),
    )


def downgrade() -> None:
    for table in (
        "xero_tokens",
        "connection_accounts",
        "outbox",
        "oauth_states",
        "connections",
        "bank_accounts",
    ):
        op.drop_table(table)
