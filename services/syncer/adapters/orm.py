"""The syncer's tables. They live in their own SQLModel registry so the syncer's
migrations never see another service's tables."""

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
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
