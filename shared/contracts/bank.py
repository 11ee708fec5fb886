"""Events the bank's internal producers publish: accounts and transactions."""

from datetime import date
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from .base import (
    PRINTABLE,
    AccountIdentifier,
    CurrencyCode,
    Event,
    Identifier,
    PositiveMoney,
    PrintableText,
    SignedMoney,
    check_minor_units,
)

Direction = Literal["credit", "debit"]
# Optional texts carry their bound on the string itself, so the message and the JSON
# Schema speak of characters, not of "items after validation".
OptionalText1000 = Annotated[str, StringConstraints(max_length=1000), PRINTABLE] | None
OptionalText4000 = Annotated[str, StringConstraints(max_length=4000), PRINTABLE] | None
Category = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="What kind of transaction this is, lower snake case. Known values: "
        "`card`, `transfer`, `fee`, `fx`, `interest`, `cash`, `cheque`, `direct_debit`, "
        "`refund`, `other`; others are accepted and shown as given.",
        examples=["card", "transfer", "fee", "fx"],
    ),
]


class _AccountSnapshot(Event):
    entity_id: Identifier = Field(description="The business (entity) that owns the account.")
    account_id: AccountIdentifier = Field(
        description="Stable id of the account at the bank; Kafka key of `bank.accounts.v1` "
        "and `bank.transactions.v1`."
    )
    currency: CurrencyCode = Field(description="Currency the account is held in.")
    name: PrintableText = Field(
        min_length=1,
        max_length=150,
        description="Account name as the customer sees it, e.g. `HKD Current`.",
    )
    account_number: PrintableText = Field(
        min_length=1,
        max_length=40,
        description="Account number as printed on statements (at most 40 characters, "
        "Xero's limit for a bank account number).",
    )


class AccountOpened(_AccountSnapshot):
    """An entity opened an account. Published once per account, before its transactions."""

    type: Literal["AccountOpened"] = "AccountOpened"


class AccountUpdated(_AccountSnapshot):
    """An account's name or number changed. Carries the whole current state."""

    type: Literal["AccountUpdated"] = "AccountUpdated"


class AccountClosed(_AccountSnapshot):
    """An account was closed; no further transactions will be booked on it."""

    type: Literal["AccountClosed"] = "AccountClosed"


class _Posting(Event):
    """Fields shared by a booked transaction and a reversal."""

    transaction_id: Identifier = Field(
        description="Stable id of this bank transaction, unique across the bank. It is the "
        "deduplication key: the same id sent twice is ingested once."
    )
    entity_id: Identifier = Field(description="The business (entity) that owns the account.")
    account_id: AccountIdentifier = Field(
        description="Account the transaction was booked on; the record's Kafka key."
    )
    currency: CurrencyCode = Field(description="Currency of the account and the amount.")
    amount: PositiveMoney = Field(
        description="Amount moved, always positive; `direction` says which way."
    )
    direction: Direction = Field(description="`credit` = money in, `debit` = money out.")
    balance_after: SignedMoney = Field(
        description="Account balance right after this transaction (may be negative)."
    )
    booked_at: AwareDatetime = Field(
        description="When the bank booked the transaction; RFC 3339 with an offset. "
        "Transactions reach Xero in `booked_at` order, then `transaction_id`."
    )
    value_date: date = Field(description="Value date, ISO 8601 `YYYY-MM-DD`.")

    @model_validator(mode="after")
    def _amounts_fit_currency(self) -> Self:
        check_minor_units(self.currency, "amount", self.amount)
        check_minor_units(self.currency, "balance_after", self.balance_after)
        return self


class TransactionBooked(_Posting):
    """Money moved on an account. Key: `account_id`."""

    type: Literal["TransactionBooked"] = "TransactionBooked"
    description: PrintableText = Field(
        min_length=1,
        max_length=4000,
        description="Statement text. Up to 4,000 characters are accepted; what exceeds "
        "Xero's 2,000 is shortened visibly when posted.",
    )
    counterparty_name: OptionalText1000 = Field(
        default=None,
        description="Payer or payee, if known (Xero shows 255 characters).",
    )
    reference: OptionalText1000 = Field(
        default=None,
        description="Payment reference, if any (Xero shows 255 characters).",
    )
    category: Category


class TransactionReversed(_Posting):
    """A booked transaction was reversed. It reaches Xero as an offsetting line, never as a
    deletion. `transaction_id` is the reversal's own id; `original_transaction_id` names
    the transaction it reverses. Key: `account_id`."""

    type: Literal["TransactionReversed"] = "TransactionReversed"
    original_transaction_id: Identifier = Field(
        description="`transaction_id` of the TransactionBooked being reversed."
    )
    description: OptionalText4000 = Field(
        default=None,
        description="Why it was reversed; when absent Xero shows `Reversal of <original id>`.",
    )

    @model_validator(mode="after")
    def _not_self_reversal(self) -> Self:
        if self.original_transaction_id == self.transaction_id:
            raise ValueError("a reversal needs its own transaction_id, distinct from the original")
        return self


AccountEvent = Annotated[
    AccountOpened | AccountUpdated | AccountClosed, Field(discriminator="type")
]
TransactionEvent = Annotated[TransactionBooked | TransactionReversed, Field(discriminator="type")]
