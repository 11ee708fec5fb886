"""Event contracts: what a producer may send, and what is refused with which reason."""

import json
from typing import Any

import pytest

from shared.contracts import ALL_TOPICS, BANK_TRANSACTIONS, Topics
from shared.contracts.base import Event
from shared.contracts.decoding import InvalidEvent, decode_event
from shared.contracts.examples import EXAMPLES
from shared.contracts.topics import XERO_CONNECTIONS, XERO_SYNC_DUE, validate_prefix

MAX = 64 * 1024


def _wire(event_type: str = "TransactionBooked") -> dict[str, Any]:
    example = next(e for cls, e in EXAMPLES.items() if cls.__name__ == event_type)
    return json.loads(example.model_dump_json())  # type: ignore[no-any-return]


def _reason(payload: dict[str, Any] | bytes, *, max_bytes: int = MAX) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with pytest.raises(InvalidEvent) as refused:
        decode_event(BANK_TRANSACTIONS, raw, max_bytes=max_bytes)
    return refused.value.reason


def test_every_event_has_an_example_that_round_trips_through_its_topic() -> None:
    events = [event for spec in ALL_TOPICS for event in spec.events]
    assert set(EXAMPLES) == set(events)
    for spec in ALL_TOPICS:
        for event in spec.events:
            raw = EXAMPLES[event].model_dump_json().encode()
            assert decode_event(spec, raw, max_bytes=MAX) == EXAMPLES[event]


def test_a_valid_transaction_keeps_its_exact_amounts_and_instant() -> None:
    wire = _wire() | {"amount": "0.01", "balance_after": "-99999999999999.99"}
    event = decode_event(BANK_TRANSACTIONS, json.dumps(wire).encode(), max_bytes=MAX)
    assert str(event.amount) == "0.01"  # type: ignore[attr-defined]
    assert str(event.balance_after) == "-99999999999999.99"  # type: ignore[attr-defined]
    assert json.loads(event.model_dump_json())["amount"] == "0.01"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": 12.5}, 'amount: must be a decimal string such as "125.50", not a JSON number'),
        ({"amount": "-1.00"}, "amount: must be greater than zero"),
        ({"amount": "0.00"}, "amount: must be greater than zero"),
        ({"amount": "1e3"}, "amount: must be a decimal string with at most 15 digits"),
        ({"amount": "1.005"}, "amount 1.005 has 3 decimal places; HKD allows 2"),
        ({"currency": "JPY", "amount": "1.5"}, "amount 1.5 has 1 decimal places; JPY allows 0"),
        ({"balance_after": "1.001"}, "balance_after 1.001 has 3 decimal places"),
        ({"currency": "XYZ"}, "currency: 'XYZ' is not an ISO 4217 currency code"),
        ({"currency": "hkd"}, "currency: 'hkd' is not an ISO 4217 currency code"),
        ({"currency": "HRK"}, "currency: 'HRK' is not an ISO 4217"),  # withdrawn in 2023
        ({"booked_at": "2026-03-02T01:29:58"}, "booked_at: Input should have timezone info"),
        ({"booked_at": 1772414998}, "booked_at: Input should be a valid datetime"),
        ({"value_date": "2026-03-02T00:00:00Z"}, "value_date: Input should be a valid date"),
        ({"transaction_id": ""}, "transaction_id: String should have at least 1 character"),
        ({"transaction_id": "has space"}, "transaction_id: String should match pattern"),
        ({"account_id": "a" * 51}, "account_id: String should have at most 50 characters"),
        ({"entity_id": "e" * 65}, "entity_id: String should have at most 64 characters"),
        ({"description": ""}, "description: String should have at least 1 character"),
        ({"description": "x" * 4001}, "description: String should have at most 4000 characters"),
        ({"counterparty_name": "x" * 1001}, "counterparty_name: String should have at most 1000"),
        ({"description": "a\u0000b"}, "description: contains control character U+0000"),
        ({"direction": "sideways"}, "direction: Input should be 'credit' or 'debit'"),
        ({"category": "Card Payment"}, "category: String should match pattern"),
        ({"schema_version": 2}, "schema_version: Input should be 1"),
        ({"event_id": "not-a-uuid"}, "event_id: Input should be a valid UUID"),
        ({"type": "TransactionDeleted"}, "type: `type` must be one of TransactionBooked"),
        ({"surprise": True}, "surprise: Extra inputs are not permitted"),
    ],
)
def test_a_malformed_transaction_is_refused_with_a_reason_a_producer_can_act_on(
    change: dict[str, Any], reason: str
) -> None:
    assert reason in _reason(_wire() | change)


@pytest.mark.parametrize("field", ["type", "event_id", "occurred_at", "schema_version"])
def test_the_envelope_is_required_on_the_wire(field: str) -> None:
    wire = _wire()
    del wire[field]
    assert field in _reason(wire)


@pytest.mark.parametrize("field", ["transaction_id", "amount", "direction", "balance_after"])
def test_business_fields_are_required(field: str) -> None:
    wire = _wire()
    del wire[field]
    assert f"{field}: Field required" in _reason(wire)


def test_records_that_are_not_events_are_refused() -> None:
    assert _reason(b"") == "empty record: expected a JSON event"
    assert _reason(b"\xff\xfe").startswith("record: not valid JSON")
    assert _reason(b"[1, 2]") == "event: Input should be an object"
    assert _reason(b"x" * 2000, max_bytes=1024) == (
        "record is 2000 bytes; events may be at most 1024 bytes"
    )


def test_reasons_never_echo_the_offending_content() -> None:
    secret_looking = "card 4111 1111 1111 1111 " * 200
    reason = _reason(_wire() | {"description": secret_looking})
    assert "4111" not in reason


def test_a_reversal_needs_its_own_id() -> None:
    wire = _wire("TransactionReversed")
    wire["original_transaction_id"] = wire["transaction_id"]
    assert "a reversal needs its own transaction_id" in _reason(wire)


def test_connection_events_require_an_iana_time_zone() -> None:
    wire = _wire("ConnectionEstablished") | {"org_timezone": "CHINASTANDARDTIME"}
    with pytest.raises(InvalidEvent, match="not an IANA time zone name"):
        decode_event(XERO_CONNECTIONS, json.dumps(wire).encode(), max_bytes=MAX)


def test_python_callers_get_the_envelope_filled_in() -> None:
    example = EXAMPLES[next(cls for cls in EXAMPLES if cls.__name__ == "SyncDue")]
    fresh = type(example).model_validate(
        example.model_dump(exclude={"event_id", "occurred_at", "schema_version"})
    )
    assert fresh.event_id != example.event_id
    assert fresh.occurred_at.tzinfo is not None
    assert fresh.schema_version == 1


def test_topic_names_keys_and_prefixes() -> None:
    topics = Topics("staging.")
    assert topics.name(BANK_TRANSACTIONS) == "staging.bank.transactions.v1"
    assert topics.dlq(BANK_TRANSACTIONS) == "staging.bank.transactions.v1.dlq"
    assert topics.group("xerosync-syncer-ingest") == "staging.xerosync-syncer-ingest"
    sync_due = EXAMPLES[XERO_SYNC_DUE.events[0]]
    assert XERO_SYNC_DUE.key_of(sync_due) == str(sync_due.tenant_id).encode()  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="may only contain"):
        validate_prefix("bad prefix/")


def test_every_event_class_names_itself_in_type() -> None:
    for spec in ALL_TOPICS:
        for event in spec.events:
            assert issubclass(event, Event)
            assert EXAMPLES[event].type == event.__name__
