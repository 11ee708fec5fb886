"""bank_transactions: every ingested transaction and reversal

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
        "bank_transactions",
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("original_transaction_id", sa.String(64), nullable=True),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(50), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.Numeric(19, 4), nullable=False),
        sa.Column("direction", sa.String(6), nullable=False),
        sa.Column("balance_after", sa.Numeric(19, 4), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("counterparty_name", sa.Text(), nullable=True),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("content_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_bank_transactions")),
        sa.CheckConstraint(
            "kind IN ('booked', 'reversal')", name=op.f("ck_bank_transactions_kind_known")
        ),
        sa.CheckConstraint(
            "direction IN ('credit', 'debit')", name=op.f("ck_bank_transactions_direction_known")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_bank_transactions_amount_positive")),
        sa.CheckConstraint(
            "(kind = 'reversal') = (original_transaction_id IS NOT NULL)",
            name=op.f("ck_bank_transactions_reversal_names_original"),
        ),
    )
    op.create_index(
        "ix_bank_transactions_account_order",
        "bank_transactions",
        ["account_id", "booked_at", "transaction_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_bank_transactions_account_order", table_name="bank_transactions")
    op.drop_table("bank_transactions")
