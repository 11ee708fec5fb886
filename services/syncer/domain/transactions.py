"""What the syncer keeps of a transaction event, and how it recognises the same one again."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from shared.contracts.bank import TransactionBooked, TransactionReversed

TransactionEvent = TransactionBooked | TransactionReversed
_STORED_PLACES = Decimal("0.0001")  # NUMERIC(19, 4)


@dataclass(frozen=True, slots=True)
class Ingestible:
    """A valid event ready to be stored, with where it came from."""

    transaction_id: str
    content_hash: bytes
    row: dict[str, Any]


def to_ingestible(event: TransactionEvent, *, partition: int, offset: int) -> Ingestible:
    # Runs once per event on the ingest path, so it is written for speed: no intermediate
    # dicts, no isinstance() on pydantic classes (their metaclass makes it slow).
    if event.type == "TransactionReversed":
        kind = "reversal"
        original: str | None = event.original_transaction_id
        counterparty_name = reference = category = None
    else:
        kind, original = "booked", None
        counterparty_name, reference = event.counterparty_name, event.reference
        category = event.category
    amount = event.amount.quantize(_STORED_PLACES)
    balance_after = event.balance_after.quantize(_STORED_PLACES)
    booked_at = event.booked_at.astimezone(UTC)
    digest = content_hash(
        transaction_id=event.transaction_id,
        kind=kind,
        original_transaction_id=original,
        entity_id=event.entity_id,
        account_id=event.account_id,
        currency=event.currency,
        amount=amount,
        direction=event.direction,
        balance_after=balance_after,
        booked_at=booked_at,
        value_date=event.value_date,
        description=event.description,
        counterparty_name=counterparty_name,
        reference=reference,
        category=category,
    )
    row = {
        "transaction_id": event.transaction_id,
        "kind": kind,
        "original_transaction_id": original,
        "entity_id": event.entity_id,
        "account_id": event.account_id,
        "currency": event.currency,
        "amount": amount,
        "direction": event.direction,
        "balance_after": balance_after,
        "booked_at": booked_at,
        "value_date": event.value_date,
        "description": event.description,
        "counterparty_name": counterparty_name,
        "reference": reference,
        "category": category,
        "content_hash": digest,
        "event_id": event.event_id,
        "occurred_at": event.occurred_at,
        "source_partition": partition,
        "source_offset": offset,
    }
    return Ingestible(transaction_id=event.transaction_id, content_hash=digest, row=row)


def content_hash(
    *,
    transaction_id: str,
    kind: str,
    original_transaction_id: str | None,
    entity_id: str,
    account_id: str,
    currency: str,
    amount: Decimal,
    direction: str,
    balance_after: Decimal,
    booked_at: datetime,
    value_date: date,
    description: str | None,
    counterparty_name: str | None,
    reference: str | None,
    category: str | None,
) -> bytes:
    """SHA-256 of the business fields, normalised: "125.5" and "125.50" are the same
    amount, and one instant written with two offsets is the same time. The envelope
    (event_id, occurred_at) is left out, so a re-sent event is still a duplicate.

    Fields are joined in this fixed order with a separator that printable text cannot
    contain (the contracts refuse control characters), and a missing value is written as
    NUL, so distinct contents cannot produce the same string. Stored hashes depend on
    this exact form: changing it would make every redelivered event a conflict.
    """
    canonical = _SEPARATOR.join(
        (
            transaction_id,
            kind,
            _NONE if original_transaction_id is None else original_transaction_id,
            entity_id,
            account_id,
            currency,
            str(amount.quantize(_STORED_PLACES)),
            direction,
            str(balance_after.quantize(_STORED_PLACES)),
            booked_at.astimezone(UTC).isoformat(),
            value_date.isoformat(),
            _NONE if description is None else description,
            _NONE if counterparty_name is None else counterparty_name,
            _NONE if reference is None else reference,
            _NONE if category is None else category,
        )
    )
    return hashlib.sha256(canonical.encode()).digest()


_SEPARATOR = "\x1f"  # ASCII unit separator
_NONE = "\x00"  # distinct from an empty string
