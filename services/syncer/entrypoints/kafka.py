"""Kafka subscribers of the syncer. Thin: take the records, hand them to a use case."""

from faststream.kafka import KafkaBroker

from services.syncer.config import INGEST_GROUP, SyncerSettings
from services.syncer.service_layer.ingest import TransactionIngestor
from shared.contracts.topics import BANK_TRANSACTIONS
from shared.kafka_records import subscribe_batches


def register_ingest(
    broker: KafkaBroker, settings: SyncerSettings, ingestor: TransactionIngestor
) -> None:
    subscribe_batches(
        broker,
        settings.kafka,
        topic=settings.topics.name(BANK_TRANSACTIONS),
        group_id=settings.topics.group(INGEST_GROUP),
        handler=ingestor.ingest,
        max_records=settings.ingest_batch_size,
        batch_timeout_ms=settings.ingest_batch_wait_ms,
    )
