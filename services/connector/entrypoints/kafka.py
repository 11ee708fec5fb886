"""Kafka subscribers of the connector. Thin: take the records, hand them to a use case."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.connector.config import ACCOUNTS_GROUP, RESULTS_GROUP, ConnectorSettings
from services.connector.service_layer.projections import AccountsDirectory, SyncStatus
from shared.contracts.topics import BANK_ACCOUNTS, XERO_SYNC_RESULTS, TopicSpec
from shared.kafka import consumer_options
from shared.kafka_records import raw_records, tolerant_batch_parser

Handler = Callable[[Sequence[Any]], Awaitable[None]]


def register_consumers(
    broker: KafkaBroker,
    settings: ConnectorSettings,
    directory: AccountsDirectory,
    status: SyncStatus,
) -> None:
    _subscribe(broker, settings, BANK_ACCOUNTS, ACCOUNTS_GROUP, directory.apply)
    _subscribe(broker, settings, XERO_SYNC_RESULTS, RESULTS_GROUP, status.apply)


def _subscribe(
    broker: KafkaBroker,
    settings: ConnectorSettings,
    spec: TopicSpec,
    group: str,
    handler: Handler,
) -> None:
    membership = consumer_options(settings.kafka)

    @broker.subscriber(
        settings.topics.name(spec),
        group_id=settings.topics.group(group),
        batch=True,
        max_records=200,
        batch_timeout_ms=50,
        # Offsets are committed after the handler stored the batch (and dead-lettered what
        # it refused); an exception rewinds the batch for redelivery.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        # The directory and the status view are rebuilt from the whole topic.
        auto_offset_reset="earliest",
        parser=tolerant_batch_parser,
        decoder=raw_records,
        include_in_schema=False,
        session_timeout_ms=membership["session_timeout_ms"],
        heartbeat_interval_ms=membership["heartbeat_interval_ms"],
    )
    async def consume(message: KafkaMessage) -> None:
        records = message.raw_message
        await handler(records if isinstance(records, tuple) else (records,))
