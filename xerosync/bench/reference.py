"""The benchmark's yardsticks, run as their own processes like the syncer:

- `reference`: the fastest durable ingest a skilled engineer would hand-write without the
  framework: aiokafka `getmany` -> `json.loads` -> one `INSERT ... SELECT FROM unnest(...)
  ON CONFLICT DO NOTHING` per batch into the syncer's own table -> database commit ->
  offset commit. No validation beyond what PostgreSQL's casts and constraints do.
- `bare`: `getmany` -> offset commit; stores nothing. The ceiling, for scale.

Usage: python -m xerosync.bench.reference MODE TOPIC GROUP BATCH [DATABASE_URL]
(Kafka connection from the usual KAFKA_* environment variables.)
"""

import asyncio
import hashlib
import json
import signal
import sys
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer

from shared.kafka import client_options, consumer_options
from shared.settings import KafkaSettings

_INSERT = """
INSERT INTO bank_transactions (
    transaction_id, kind, original_transaction_id, entity_id, account_id, currency, amount,
    direction, balance_after, booked_at, value_date, description, counterparty_name,
    reference, category, content_hash, event_id, occurred_at, source_partition, source_offset
)
SELECT t, 'booked', NULL, e, a, c, am::numeric, d, ba::numeric, bk::timestamptz, vd::date,
       de, cp, rf, ca, h, ev::uuid, oc::timestamptz, p, o
FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bytea[],
    $15::text[], $16::text[], $17::int[], $18::bigint[]
) AS u(t, e, a, c, am, d, ba, bk, vd, de, cp, rf, ca, h, ev, oc, p, o)
ON CONFLICT (transaction_id) DO NOTHING
"""
_FIELDS = (
    "transaction_id",
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


async def run(mode: str, topic: str, group: str, batch: int, database_url: str | None) -> None:
    kafka = KafkaSettings()
    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **client_options(kafka),
        **consumer_options(kafka),
    )
    connection: Any = None
    if mode == "reference":
        if database_url is None:
            raise SystemExit("reference mode needs a database URL")
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await consumer.start()
    try:
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=100, max_records=batch)
            if not fetched:
                continue
            if connection is not None:
                columns: list[list[Any]] = [[] for _ in range(len(_FIELDS) + 5)]
                for partition_records in fetched.values():
                    for record in partition_records:
                        value: bytes = record.value or b""
                        event = json.loads(value)
                        for index, field in enumerate(_FIELDS):
                            columns[index].append(event.get(field))
                        columns[13].append(hashlib.sha256(value).digest())
                        columns[14].append(event["event_id"])
                        columns[15].append(event["occurred_at"])
                        columns[16].append(record.partition)
                        columns[17].append(record.offset)
                # columns 0-12 are the fields, 13 hash, 14 event id, 15 occurred, 16-17 source
                ordered = [*columns[:13], columns[13], columns[14], columns[15], *columns[16:18]]
                async with connection.transaction():
                    await connection.execute(_INSERT, *ordered)
            await consumer.commit()
    finally:
        await consumer.stop()
        if connection is not None:
            await connection.close()


def main() -> None:
    mode, topic, group, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    database_url = sys.argv[5] if len(sys.argv) > 5 else None
    if mode not in {"reference", "bare"}:
        raise SystemExit(f"unknown mode {mode!r}: reference or bare")
    asyncio.run(run(mode, topic, group, batch, database_url))


if __name__ == "__main__":
    main()
