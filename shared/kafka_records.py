"""Batch subscribers that hand raw records to a use case, which parses each record itself
(into a contract event, or into a DLQ reason)."""

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from shared.kafka import consumer_options
from shared.settings import KafkaSettings

RecordsHandler = Callable[[Sequence[ConsumerRecord[bytes, bytes]]], Awaitable[object]]


def subscribe_batches(
    broker: KafkaBroker,
    kafka: KafkaSettings,
    *,
    topic: str,
    group_id: str,
    handler: RecordsHandler,
    max_records: int,
    batch_timeout_ms: int,
) -> None:
    """Subscribe `handler` to batches of raw records of `topic`, from the earliest offset
    for a new group, committing only after the handler returned."""
    subscribe_topics(
        broker,
        kafka,
        handlers={topic: handler},
        group_id=group_id,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
    )


def subscribe_topics(
    broker: KafkaBroker,
    kafka: KafkaSettings,
    *,
    handlers: Mapping[str, RecordsHandler],
    group_id: str,
    max_records: int,
    batch_timeout_ms: int,
    handling: Callable[[int], AbstractContextManager[None]] | None = None,
) -> None:
    """One consumer (one group join, not one per topic) for several topics: each batch is
    split by topic and handed to that topic's handler, in the order `handlers` lists
    them, so a service can apply, say, connection changes before the requests that need
    them. Offsets are committed after every handler of the batch returned. The handlers
    of a batch run inside `handling(its size)`, if given."""
    membership = consumer_options(kafka)

    @broker.subscriber(
        *handlers,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        # Offsets are committed after the handler returns, i.e. after its database commit
        # and its DLQ acknowledgements. An exception rewinds the batch for redelivery.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        # A new group starts from the beginning: nothing published before the consumer's
        # first start may be skipped.
        auto_offset_reset="earliest",
        parser=tolerant_batch_parser,
        decoder=raw_records,
        include_in_schema=False,
        session_timeout_ms=membership["session_timeout_ms"],
        heartbeat_interval_ms=membership["heartbeat_interval_ms"],
    )
    async def consume(message: KafkaMessage) -> None:
        raw = message.raw_message
        records = raw if isinstance(raw, tuple) else (raw,)
        with handling(len(records)) if handling is not None else nullcontext():
            for topic, handler in handlers.items():
                mine = [record for record in records if record.topic == topic]
                if mine:
                    await handler(mine)


async def tolerant_batch_parser(records: tuple[ConsumerRecord[Any, Any], ...], parse: Any) -> Any:
    """FastStream decodes header values as strict UTF-8; one producer's binary header
    would fail every delivery of its batch forever. Give the parser a lenient view; the
    DLQ still receives the original header bytes."""
    if all(_utf8_headers(record) for record in records):
        return await parse(records)
    message = await parse(tuple(_lenient(record) for record in records))
    message.raw_message = records  # the use case and the DLQ see the original bytes
    return message


async def raw_records(message: Any, _decode: Any) -> Any:
    """The use case parses each record itself (into contract events, or into a DLQ reason);
    FastStream's JSON decoding of the whole batch would be wasted work."""
    return message.raw_message


def _utf8_headers(record: ConsumerRecord[Any, Any]) -> bool:
    try:
        for _, value in record.headers or ():
            value.decode()
    except UnicodeDecodeError:
        return False
    return True


def _lenient(record: ConsumerRecord[Any, Any]) -> ConsumerRecord[Any, Any]:
    if _utf8_headers(record):
        return record
    return dataclasses.replace(
        record,
        headers=[(name, value.decode(errors="replace").encode()) for name, value in record.headers],
    )
