"""The syncer's ingest against the real broker and PostgreSQL: exactly once, DLQ for bad input."""

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.syncer.config import CONSUMER_GROUP
from shared.contracts.topics import BANK_TRANSACTIONS
from tests.conftest import Env
from tests.helpers import (
    booked,
    committed_offsets,
    eventually,
    read_topic,
    reversed_,
    rewind_group,
)
from tests.integration.conftest import InProcessService, RunSyncer
from xerosync.producer import EventWriter

INGESTED = "xerosync_transactions_ingested_total"


async def _rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        result = await connection.execute(
            text("SELECT * FROM bank_transactions ORDER BY transaction_id")
        )
        return [dict(row._mapping) for row in result]


async def _counts(syncer: InProcessService) -> dict[str, float]:
    metrics = await syncer.metrics()
    return {
        result: metrics.get((INGESTED, (("result", result),)), 0.0)
        for result in ("new", "duplicate", "invalid")
    }


async def test_the_same_events_twice_are_stored_once(
    env: Env, run_syncer: RunSyncer, syncer_db: AsyncEngine
) -> None:
    originals = [booked(n, account=f"acc-{n % 2}") for n in range(40)]
    reversals = [reversed_(event) for event in originals[:4]]
    # The same transaction re-sent by its producer: new event_id and occurred_at,
    # amount written as "10.5" instead of "10.50", booked_at in another offset.
    resent = originals[0].model_copy(
        update={"booked_at": originals[0].booked_at.astimezone()}
    ).model_dump(mode="json") | {"event_id": "3b7c9e0a-0000-4000-8000-000000000001"}
    resent["amount"] = str(Decimal(resent["amount"]).normalize())

    async with run_syncer() as syncer, EventWriter(env.kafka, env.topics) as writer:
        await writer.write(BANK_TRANSACTIONS, [*originals, *reversals])
        await writer.write(BANK_TRANSACTIONS, [*originals, *reversals])
        await writer.write_raw(
            env.topics.name(BANK_TRANSACTIONS),
            [(b"acc-0", json.dumps(resent).encode())],
        )
        counts = await eventually(
            lambda: _counts(syncer),
            until=lambda c: c["new"] + c["duplicate"] + c["invalid"] >= 89,
            what="all 89 records consumed",
        )

    assert counts == {"new": 44, "duplicate": 45, "invalid": 0}
    rows = await _rows(syncer_db)
    assert len(rows) == 44
    first = next(row for row in rows if row["transaction_id"] == originals[0].transaction_id)
    assert first["amount"] == originals[0].amount
    assert first["booked_at"] == originals[0].booked_at
    assert first["kind"] == "booked"
    reversal = next(row for row in rows if row["transaction_id"] == reversals[0].transaction_id)
    assert reversal["kind"] == "reversal"
    assert reversal["original_transaction_id"] == originals[0].transaction_id


async def test_replaying_the_whole_topic_changes_nothing(
    env: Env, run_syncer: RunSyncer, syncer_db: AsyncEngine
) -> None:
    events = [booked(n, account=f"acc-{n % 3}") for n in range(60)]
    topic = env.topics.name(BANK_TRANSACTIONS)
    group = env.topics.group(CONSUMER_GROUP)
    async with run_syncer() as syncer, EventWriter(env.kafka, env.topics) as writer:
        await writer.write(BANK_TRANSACTIONS, events)
        await eventually(lambda: _counts(syncer), until=lambda c: c["new"] == 60)
    before = await _rows(syncer_db)

    # Rewind the (now idle) group to the start of every partition: a full replay.
    await rewind_group(env.kafka, group, topic)
    assert set((await committed_offsets(env.kafka, group, topic)).values()) == {0}

    async with run_syncer() as syncer:
        counts = await eventually(
            lambda: _counts(syncer), until=lambda c: c["duplicate"] == 60, what="replay consumed"
        )
    assert counts == {"new": 0, "duplicate": 60, "invalid": 0}
    assert await _rows(syncer_db) == before  # not one column of one row changed


async def test_malformed_events_go_to_the_dlq_and_the_valid_ones_around_them_land(
    env: Env, run_syncer: RunSyncer, syncer_db: AsyncEngine
) -> None:
    def encoded(event: Any) -> dict[str, Any]:
        return json.loads(event.model_dump_json())  # type: ignore[no-any-return]

    valid = [booked(n, account="acc-mixed") for n in range(4)]
    good = encoded(booked(10, account="acc-mixed"))
    wrong_types = good | {"transaction_id": "bad-types", "amount": 12.5, "booked_at": 1700000000}
    no_fields = {k: v for k, v in good.items() if k not in {"amount", "currency"}}
    bad = {
        "not JSON": b"{this is not json",
        "wrong types": json.dumps(wrong_types).encode(),
        "unknown currency": json.dumps(
            good | {"transaction_id": "bad-ccy", "currency": "XYZ"}
        ).encode(),
        "negative amount": json.dumps(
            good | {"transaction_id": "bad-neg", "amount": "-5.00"}
        ).encode(),
        "missing fields": json.dumps(no_fields | {"transaction_id": "bad-missing"}).encode(),
        "1 MB description": json.dumps(
            good | {"transaction_id": "bad-big", "description": "x" * 1_000_000}
        ).encode(),
        "reused id": json.dumps(
            encoded(valid[0])
            | {"amount": "999.99", "event_id": "3b7c9e0a-0000-4000-8000-0000000000ff"}
        ).encode(),
    }
    expected_reason = {
        "not JSON": "record: not valid JSON",
        "wrong types": "amount: must be a decimal string",
        "unknown currency": "currency: 'XYZ' is not an ISO 4217",
        "negative amount": "amount: must be greater than zero",
        "missing fields": "amount: Field required",
        "1 MB description": "bytes; events may be at most",
        "reused id": "already ingested with different content",
    }
    # Valid and malformed records interleaved in one partition, in this order:
    key = b"acc-mixed"
    sequence: list[tuple[str, bytes, list[tuple[str, bytes]]]] = [
        ("valid 0", valid[0].model_dump_json().encode(), []),
        *[(name, raw, []) for name, raw in list(bad.items())[:3]],
        ("valid 1", valid[1].model_dump_json().encode(), []),
        *[(name, raw, []) for name, raw in list(bad.items())[3:]],
        # A binary header must not wedge the consumer; the event itself is valid.
        ("valid 2", valid[2].model_dump_json().encode(), [("trace", b"\xff\xfe\x00")]),
        ("valid 3", valid[3].model_dump_json().encode(), []),
    ]
    topic = env.topics.name(BANK_TRANSACTIONS)

    async with run_syncer() as syncer:
        producer = EventWriter(env.kafka.model_copy(), env.topics)
        async with producer:
            offsets = {}
            for name, raw, headers in sequence:
                metadata = await producer.send_record(topic, raw, key=key, headers=headers)
                offsets[name] = metadata.offset
        counts = await eventually(
            lambda: _counts(syncer),
            until=lambda c: c["new"] + c["invalid"] >= len(sequence),
            what="every record consumed",
        )
        dlq_total = await syncer.metric("xerosync_dlq_messages_total", topic=BANK_TRANSACTIONS.name)

    assert counts == {"new": 4, "duplicate": 0, "invalid": len(bad)}
    assert dlq_total == len(bad)
    stored = {row["transaction_id"] for row in await _rows(syncer_db)}
    assert stored == {event.transaction_id for event in valid}

    dead = await read_topic(env.kafka, env.topics.dlq(BANK_TRANSACTIONS), count=len(bad))
    by_offset = {int(dict(r.headers)["x-dlq-origin-offset"].decode()): r for r in dead}
    for name, raw in bad.items():
        record = by_offset[offsets[name]]
        dlq_headers = {k: v.decode() for k, v in record.headers}
        assert record.value == raw, name  # the original bytes, untouched
        assert record.key == key
        assert expected_reason[name] in dlq_headers["x-dlq-error"], (
            name,
            dlq_headers["x-dlq-error"],
        )
        assert dlq_headers["x-dlq-origin-topic"] == topic
        assert dlq_headers["x-dlq-consumer"] == env.topics.group(CONSUMER_GROUP)
        assert dlq_headers["x-dlq-attempt"] == "1"
        assert dlq_headers["x-dlq-error-class"] == (
            "conflict" if name == "reused id" else "validation"
        )
        # The reason names the field, never the offending content.
        assert "x" * 100 not in dlq_headers["x-dlq-error"]
