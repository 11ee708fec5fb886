"""The syncer's tables. They live in their own SQLModel registry so the syncer's
migrations never see another service's tables."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from shared.db import new_table_registry

syncer_registry = new_table_registry()


class SyncerTable(SQLModel, registry=syncer_registry):
    """Base of every syncer table."""


class BankTransaction(SyncerTable, table=True):
    """One ingested bank transaction or reversal, kept until (and after) it is posted.

    `content_hash` covers the business fields, so the same `transaction_id` arriving
    again is recognised as a duplicate, and arriving with different content as a conflict.
    """

    __tablename__ = "bank_transactions"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('booked', 'reversal')", name="kind_known"),
        sa.CheckConstraint("direction IN ('credit', 'debit')", name="direction_known"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint(
            "(kind = 'reversal') = (original_transaction_id IS NOT NULL)",
            name="reversal_names_original",
        ),
        # The posting order within an account: booked_at, then transaction_id.
        sa.Index("ix_bank_transactions_account_order", "account_id", "booked_at", "transaction_id"),
    )

    transaction_id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)
    original_transaction_id: str | None = Field(default=None, max_length=64)
    entity_id: str = Field(max_length=64)
    account_id: str = Field(max_length=50)
    currency: str = Field(max_length=3)
    amount: Decimal = Field(sa_type=sa.Numeric(19, 4))
    direction: str = Field(max_length=6)
    balance_after: Decimal = Field(sa_type=sa.Numeric(19, 4))
    booked_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    value_date: date
    description: str | None = Field(default=None, sa_type=sa.Text)
    counterparty_name: str | None = Field(default=None, sa_type=sa.Text)
    reference: str | None = Field(default=None, sa_type=sa.Text)
    category: str | None = Field(default=None, max_length=32)
    content_hash: bytes = Field(sa_type=sa.LargeBinary(32))
    event_id: uuid.UUID
    occurred_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    source_partition: int
    source_offset: int = Field(sa_type=sa.BigInteger)
    ingested_at: datetime = Field(
        sa_type=sa.DateTime(timezone=True),
        sa_column_kwargs={"server_default": sa.func.now()},
    )


class Connection(SyncerTable, table=True):
    """The syncer's replica of a connection, from the latest `xero.connections.v1` event
    per key: what to post, where, and whether posting is allowed at all."""

    __tablename__ = "connections"
    __table_args__ = (
        sa.CheckConstraint("sink IN ('bankfeeds', 'accounting')", name="sink_known"),
        sa.CheckConstraint(
            "status IN ('active', 'needs_user', 'disconnected')", name="status_known"
        ),
        sa.Index("ix_connections_tenant", "tenant_id"),
    )

    connection_id: uuid.UUID = Field(primary_key=True)
    version: int = Field(sa_type=sa.BigInteger)
    entity_id: str = Field(max_length=64)
    tenant_id: uuid.UUID
    tenant_name: str = Field(max_length=255)
    org_timezone: str = Field(max_length=64)
    base_currency: str = Field(max_length=3)
    sink: str = Field(max_length=16)
    sync_start_date: date
    status: str = Field(max_length=16)
    updated_at: datetime = Field(
        sa_type=sa.DateTime(timezone=True), sa_column_kwargs={"server_default": sa.func.now()}
    )


class ConnectionAccount(SyncerTable, table=True):
    """One bank account of a connection and where it goes in Xero."""

    __tablename__ = "connection_accounts"

    connection_id: uuid.UUID = Field(
        primary_key=True,
        sa_column_args=[sa.ForeignKey("connections.connection_id", ondelete="CASCADE")],
    )
    account_id: str = Field(primary_key=True, max_length=50)
    currency: str = Field(max_length=3)
    status: str = Field(max_length=16)
    feed_connection_id: uuid.UUID | None = None
    xero_account_id: uuid.UUID | None = None


class SyncRun(SyncerTable, table=True):
    """One sync of one connection: queued by a SyncDue, run under its organisation's lock,
    its outcome kept with the result event until that is published (an outbox)."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'completed', 'failed', 'skipped')",
            name="state_known",
        ),
        sa.Index(
            "ix_sync_runs_waiting",
            "tenant_id",
            "queued_at",
            postgresql_where=sa.text("state IN ('queued', 'running')"),
        ),
        sa.Index(
            "ix_sync_runs_unpublished",
            "finished_at",
            postgresql_where=sa.text("result_event IS NOT NULL AND published_at IS NULL"),
        ),
    )

    run_id: uuid.UUID = Field(primary_key=True)
    due_event_id: uuid.UUID = Field(unique=True)
    connection_id: uuid.UUID
    tenant_id: uuid.UUID
    reason: str = Field(max_length=16)
    due_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    state: str = Field(max_length=16)
    queued_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    started_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    starts: int = 0
    posted: int = 0
    failed: int = 0
    remaining: int = 0
    outcome: str | None = Field(default=None, max_length=32)
    message: str | None = Field(default=None, sa_type=sa.Text)
    # none_as_null: a run without an event (skipped) stores SQL NULL, not JSON null, so the
    # outbox query (`result_event IS NOT NULL`) never picks it up.
    result_event: dict[str, Any] | None = Field(default=None, sa_type=JSONB(none_as_null=True))
    published_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class PostingBatch(SyncerTable, table=True):
    """One request to Xero, stored before it is sent: after a crash it is sent again with
    the same bytes and key, or (past the key's window) Xero is checked first."""

    __tablename__ = "posting_batches"
    __table_args__ = (
        sa.CheckConstraint("state IN ('sending', 'done', 'failed')", name="state_known"),
        sa.Index(
            "ix_posting_batches_sending",
            "tenant_id",
            postgresql_where=sa.text("state = 'sending'"),
        ),
    )

    batch_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID
    connection_id: uuid.UUID
    account_id: str = Field(max_length=50)
    sink: str = Field(max_length=16)
    method: str = Field(max_length=8)
    path: str = Field(max_length=200)
    params: dict[str, str] = Field(sa_type=JSONB)
    body: bytes = Field(sa_type=sa.LargeBinary)
    idempotency_key: str = Field(max_length=128)
    transaction_ids: list[str] = Field(sa_type=ARRAY(sa.String(64)))
    end_balance: Decimal | None = Field(default=None, sa_type=sa.Numeric(19, 4))
    state: str = Field(max_length=16)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    answered_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    http_status: int | None = None
    message: str | None = Field(default=None, sa_type=sa.Text)


class Posting(SyncerTable, table=True):
    """Where a transaction stands in one Xero organisation. Its key is the dedup scope:
    (tenant, transaction_id), so a reconnect or a second connection never posts it again."""

    __tablename__ = "postings"
    __table_args__ = (
        sa.CheckConstraint("state IN ('sending', 'posted', 'failed')", name="state_known"),
        sa.Index("ix_postings_batch", "batch_id"),
    )

    tenant_id: uuid.UUID = Field(primary_key=True)
    transaction_id: str = Field(primary_key=True, max_length=64)
    connection_id: uuid.UUID
    account_id: str = Field(max_length=50)
    batch_id: uuid.UUID
    state: str = Field(max_length=16)
    xero_id: str | None = Field(default=None, max_length=64)
    message: str | None = Field(default=None, sa_type=sa.Text)
    updated_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class AccountCursor(SyncerTable, table=True):
    """How far one account has reached in one organisation: the last transaction Xero
    holds, the balance its statements end on, and the latest booking date."""

    __tablename__ = "account_cursors"

    tenant_id: uuid.UUID = Field(primary_key=True)
    account_id: str = Field(primary_key=True, max_length=50)
    last_booked_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    last_transaction_id: str = Field(max_length=64)
    end_balance: Decimal | None = Field(default=None, sa_type=sa.Numeric(19, 4))
    latest_date: date
    updated_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
