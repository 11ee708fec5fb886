"""How the syncer recognises the same transaction again (and a reused id)."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from services.syncer.domain.transactions import to_ingestible
from shared.contracts.bank import TransactionBooked, TransactionReversed
from tests.helpers import booked, reversed_


def test_resending_the_same_transaction_is_recognised_whatever_its_envelope() -> None:
    original = booked(1)
    resent = original.model_copy(
        update={
            "event_id": original.event_id.__class__(int=1),
            "occurred_at": original.occurred_at + timedelta(hours=5),
            "amount": Decimal("11.5"),  # 11.50 written without its trailing zero
            "booked_at": original.booked_at.astimezone(timezone(timedelta(hours=8))),
        }
    )
    assert original.amount == Decimal("11.50")
    first = to_ingestible(original, partition=0, offset=1)
    again = to_ingestible(resent, partition=2, offset=99)
    assert first.content_hash == again.content_hash
    assert first.transaction_id == again.transaction_id


def test_different_content_under_the_same_id_is_told_apart() -> None:
    original = to_ingestible(booked(1), partition=0, offset=1)
    for change in (
        {"amount": Decimal("11.51")},
        {"description": "Payment 1 (amended)"},
        {"direction": "credit"},
        {"account_id": "acc-other"},
        {"booked_at": booked(1).booked_at + timedelta(seconds=1)},
    ):
        changed = to_ingestible(booked(1).model_copy(update=change), partition=0, offset=1)
        assert changed.content_hash != original.content_hash, change


def test_rows_are_normalised_for_storage() -> None:
    event = booked(2).model_copy(
        update={"booked_at": booked(2).booked_at.astimezone(timezone(timedelta(hours=8)))}
    )
    row = to_ingestible(event, partition=3, offset=42).row
    assert row["booked_at"].utcoffset() == timedelta(0)
    assert row["amount"] == Decimal("12.5000")
    assert (row["source_partition"], row["source_offset"]) == (3, 42)
    assert row["kind"] == "booked"
    assert row["original_transaction_id"] is None


def test_a_reversal_is_stored_as_such() -> None:
    original = booked(3)
    row = to_ingestible(reversed_(original), partition=0, offset=7).row
    assert row["kind"] == "reversal"
    assert row["original_transaction_id"] == original.transaction_id
    assert row["direction"] != original.direction


def test_the_content_hash_is_pinned_to_what_stored_rows_hold() -> None:
    """Stored rows keep these hashes: a change to the canonical form would turn every
    redelivered event into a conflict. (Known answers from the first implementation.)"""
    hong_kong = timezone(timedelta(hours=8))
    common: dict[str, Any] = {
        "entity_id": "ent-1",
        "account_id": "acc-hkd",
        "currency": "HKD",
        "booked_at": datetime(2026, 11, 2, 9, 30, tzinfo=hong_kong),
        "value_date": date(2026, 11, 2),
    }
    paid = TransactionBooked(
        transaction_id="txn-1",
        amount=Decimal("125.5"),
        direction="debit",
        balance_after=Decimal("-30"),
        description="Kowloon Printing Co",
        counterparty_name=None,
        reference="INV-7",
        category="transfer",
        **common,
    )
    undone = TransactionReversed(
        transaction_id="txn-2",
        original_transaction_id="txn-1",
        amount=Decimal("125.50"),
        direction="credit",
        balance_after=Decimal("95.50"),
        description=None,
        **{**common, "booked_at": datetime(2026, 11, 2, 10, 0, tzinfo=hong_kong)},
    )

    assert to_ingestible(paid, partition=0, offset=0).content_hash.hex() == (
        "744e62259cf6ca46841ba29a0eae1cc433c45788afba7c699962bca0b20e9677"
    )
    assert to_ingestible(undone, partition=0, offset=0).content_hash.hex() == (
        "31e737f71433a19484fa472e4a97cc69edc9b2e27c96b756966c3261265096f4"
    )
