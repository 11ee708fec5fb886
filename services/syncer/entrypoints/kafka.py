"""Kafka subscribers of the syncer. Thin: take the records, hand them to a use case."""

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.syncer.config import INGEST_GROUP, SyncerSettings
from services.syncer.service_layer.ingest import TransactionIngestor
from shared.contracts.topics import BANK_TRANSACTIONS
from shared.kafka import consumer_options
from shared.kafka_records import raw_records, tolerant_batch_parser


def register_ingest(
    broker: KafkaBroker, settings: SyncerSettings, ingestor: TransactionIngestor
) -> None:
    topics = settings.topics
    membership = consumer_options(settings.kafka)

    @broker.subscriber(
        topics.name(BANK_TRANSACTIONS),
        group_id=topics.group(INGEST_GROUP),
        batch=True,
        max_records=settings.ingest_batch_size,
        batch_timeout_ms=settings.ingest_batch_wait_ms,
        # Offsets are committed after the handler returns, i.e. after the database
        # commit and the DLQ acknowledgements. An exception rewinds the batch for redelivery.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        # A new group starts from the beginning: no transaction published before the
        # syncer's first start may be skipped.
        auto_offset_reset="earliest",
        parser=tolerant_batch_parser,
        decoder=raw_records,
        include_in_schema=False,
        session_timeout_ms=membership["session_timeout_ms"],
        heartbeat_interval_ms=membership["heartbeat_interval_ms"],
    )
    async def on_transactions(message: KafkaMessage) -> None:
        records = message.raw_message
        await ingestor.ingest(records if isinstance(records, tuple) else (records,))
