"""What the syncer keeps of a transaction event, and how it recognises the same one again."""

import hashlib
from dataclasses import dataclass
from datetime import UTC
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
    if isinstance(event, TransactionReversed):
        specific: dict[str, Any] = {
            "kind": "reversal",
            "original_transaction_id": event.original_transaction_id,
            "counterparty_name": None,
            "reference": None,
            "category": None,
        }
    else:
        specific = {
            "kind": "booked",
            "original_transaction_id": None,
            "counterparty_name": event.counterparty_name,
            "reference": event.reference,
            "category": event.category,
        }
    business = specific | {
        "transaction_id": event.transaction_id,
        "entity_id": event.entity_id,
        "account_id": event.account_id,
        "currency": event.currency,
        "amount": event.amount.quantize(_STORED_PLACES),
        "direction": event.direction,
        "balance_after": event.balance_after.quantize(_STORED_PLACES),
        "booked_at": event.booked_at.astimezone(UTC),
        "value_date": event.value_date,
        "description": event.description,
    }
    digest = content_hash(business)
    row = business | {
        "content_hash": digest,
        "event_id": event.event_id,
        "occurred_at": event.occurred_at,
        "source_partition": partition,
        "source_offset": offset,
    }
    return Ingestible(transaction_id=event.transaction_id, content_hash=digest, row=row)


def content_hash(business: dict[str, Any]) -> bytes:
    """SHA-256 of the business fields, normalised: "125.5" and "125.50" are the same
    amount, and one instant written with two offsets is the same time. The envelope
    (event_id, occurred_at) is left out, so a re-sent event is still a duplicate.

    Fields are joined in a fixed order with a separator that printable text cannot
    contain (the contracts refuse control characters), so distinct contents cannot
    produce the same string.
    """
    canonical = _SEPARATOR.join(_canonical(business[name]) for name in _HASHED)
    return hashlib.sha256(canonical.encode()).digest()


_SEPARATOR = "\x1f"  # ASCII unit separator
_HASHED = (
    "transaction_id",
    "kind",
    "original_transaction_id",
    "entity_id",
    "account_id",
    "currency",
    "amount",
    "direction",
    "balance_after",
    "booked_at",
    "value_date",
    "description",
    "counterparty_name",
    "reference",
    "category",
)


def _canonical(value: Any) -> str:
    if value is None:
        return "\x00"  # distinct from an empty string
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return str(value.quantize(_STORED_PLACES))
    return str(value.isoformat())
