"""The connector's tables (their own registry, so its migrations see only its tables)."""

import uuid
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db import new_table_registry

connector_registry = new_table_registry()

_NOW = {"server_default": sa.func.now()}


def _now() -> datetime:
    return datetime.now(UTC)


class ConnectorTable(SQLModel, registry=connector_registry):
    """Base of every connector table."""


class BankAccount(ConnectorTable, table=True):
    """The accounts directory, rebuilt from `bank.accounts.v1`."""

    __tablename__ = "bank_accounts"
    __table_args__ = (sa.Index("ix_bank_accounts_entity", "entity_id"),)

    account_id: str = Field(primary_key=True, max_length=50)
    entity_id: str = Field(max_length=64)
    currency: str = Field(max_length=3)
    name: str = Field(max_length=150)
    account_number: str = Field(max_length=40)
    closed: bool = False
    # The newest event applied; an older one arriving later (a replay) changes nothing.
    event_occurred_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = Field(
        default_factory=_now, sa_type=sa.DateTime(timezone=True), sa_column_kwargs=_NOW
    )


class Connection(ConnectorTable, table=True):
    """One entity's connection to one Xero organisation."""

    __tablename__ = "connections"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('active', 'needs_user', 'disconnected')", name="status_known"
        ),
        sa.CheckConstraint("sink IN ('bankfeeds', 'accounting')", name="sink_known"),
        # One entity holds at most one live (not disconnected) connection.
        sa.Index(
            "uq_connections_live_entity",
            "entity_id",
            unique=True,
            postgresql_where=sa.text("status <> 'disconnected'"),
        ),
        sa.Index("ix_connections_tenant", "tenant_id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    entity_id: str = Field(max_length=64)
    tenant_id: uuid.UUID
    tenant_name: str = Field(max_length=255)
    org_timezone: str = Field(max_length=64)
    base_currency: str = Field(max_length=3)
    sink: str = Field(max_length=16)
    sync_start_date: date
    status: str = Field(max_length=16)
    status_reason: str | None = Field(default=None, max_length=1000)
    version: int = 0
    """Bumped with every published change (the events' `version`)."""
    xero_connection_id: uuid.UUID | None = None
    connected_by: str = Field(max_length=64)
    connected_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = Field(
        default_factory=_now, sa_type=sa.DateTime(timezone=True), sa_column_kwargs=_NOW
    )
    last_sync_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    last_sync_result: str | None = Field(default=None, max_length=16)
    last_sync_message: str | None = Field(default=None, max_length=1000)
    last_sync_run_id: uuid.UUID | None = None


class ConnectionAccount(ConnectorTable, table=True):
    """How one bank account is linked into the connection's organisation, and where its
    sync stands (the sync-status projection)."""

    __tablename__ = "connection_accounts"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('linked', 'failed', 'needs_user', 'unlinked')", name="status_known"
        ),
    )

    connection_id: uuid.UUID = Field(
        primary_key=True, foreign_key="connections.id", ondelete="CASCADE"
    )
    account_id: str = Field(primary_key=True, max_length=50)
    currency: str = Field(max_length=3)
    status: str = Field(max_length=16)
    feed_connection_id: uuid.UUID | None = None
    xero_account_id: uuid.UUID | None = None
    xero_account_name: str | None = Field(default=None, max_length=150)
    problem: str | None = Field(default=None, max_length=1000)
    """Why the link failed or stopped working (linking, Xero-side changes)."""
    sync_problem: str | None = Field(default=None, max_length=1000)
    """What the latest sync run reported for this account."""
    last_synced_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    latest_transaction_date: date | None = None


class StoredTokens(ConnectorTable, table=True):
    """A connection's OAuth token set, encrypted (AES-GCM, bound to the connection id)."""

    __tablename__ = "xero_tokens"

    connection_id: uuid.UUID = Field(
        primary_key=True, foreign_key="connections.id", ondelete="CASCADE"
    )
    sealed: bytes = Field(sa_type=sa.LargeBinary)
    access_expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    refreshed_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    refresh_count: int = 0


class OAuthState(ConnectorTable, table=True):
    """An authorization in flight: what the user asked for, and the PKCE verifier.

    The key is a SHA-256 of the `state` value, so the table alone cannot complete a flow.
    """

    __tablename__ = "oauth_states"

    state_hash: bytes = Field(primary_key=True, sa_type=sa.LargeBinary(32))
    entity_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    sealed_verifier: bytes = Field(sa_type=sa.LargeBinary)
    account_ids: list[str] = Field(sa_type=sa.JSON)
    sync_start_date: date
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    consumed_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class OutboxMessage(ConnectorTable, table=True):
    """An event committed with the state change it reports; a relay publishes it to Kafka
    and deletes it. A crash between commit and publish delays the event, never loses it."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True, sa_type=sa.BigInteger)
    topic: str = Field(max_length=200)
    key: str = Field(max_length=200)
    payload: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = Field(
        default_factory=_now, sa_type=sa.DateTime(timezone=True), sa_column_kwargs=_NOW
    )
