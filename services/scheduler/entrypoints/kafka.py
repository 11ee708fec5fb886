"""Kafka subscriber of the scheduler: one consumer (one group join) for its three topics.
Thin: split each batch by topic and hand the records to the use cases, connection changes
first, so a press that arrives with the connection it is for finds it scheduled."""

from collections.abc import Awaitable, Callable, Sequence

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from services.scheduler.config import CONSUMER_GROUP, SchedulerSettings
from services.scheduler.service_layer.intake import ConnectionChanges, ManualSyncs, SyncResults
from shared.contracts.topics import XERO_CONNECTIONS, XERO_SYNC_REQUESTS, XERO_SYNC_RESULTS
from shared.kafka_records import subscribe_batches

Records = Sequence[ConsumerRecord[bytes, bytes]]


def register_consumers(
    broker: KafkaBroker,
    settings: SchedulerSettings,
    connections: ConnectionChanges,
    requests: ManualSyncs,
    results: SyncResults,
) -> None:
    handlers: list[tuple[str, Callable[[Records], Awaitable[None]]]] = [
        (settings.topics.name(XERO_CONNECTIONS), connections.apply),
        (settings.topics.name(XERO_SYNC_REQUESTS), requests.apply),
        (settings.topics.name(XERO_SYNC_RESULTS), results.apply),
    ]

    async def dispatch(records: Records) -> None:
        for topic, handler in handlers:
            mine = [record for record in records if record.topic == topic]
            if mine:
                await handler(mine)

    subscribe_batches(
        broker,
        settings.kafka,
        topic=[topic for topic, _ in handlers],
        group_id=settings.topics.group(CONSUMER_GROUP),
        handler=dispatch,
        max_records=settings.consume_batch_size,
        batch_timeout_ms=settings.consume_batch_wait_ms,
    )
