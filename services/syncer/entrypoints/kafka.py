"""Kafka subscribers of the syncer. Thin: take the records, hand them to a use case."""

from faststream.kafka import KafkaBroker

from services.syncer.config import CONSUMER_GROUP, SyncerSettings
from services.syncer.service_layer.ingest import TransactionIngestor
from services.syncer.service_layer.intake import ConnectionReplica, SyncDueIntake
from services.syncer.service_layer.priority import IngestFirst
from shared.contracts.topics import BANK_TRANSACTIONS, XERO_CONNECTIONS, XERO_SYNC_DUE
from shared.kafka_records import subscribe_topics


def register_consumers(
    broker: KafkaBroker,
    settings: SyncerSettings,
    *,
    ingestor: TransactionIngestor,
    connections: ConnectionReplica,
    sync_due: SyncDueIntake,
    ingest_first: IngestFirst | None = None,
) -> None:
    """One consumer for the three topics. Within a batch, connection changes are applied
    first and due runs queued last, so a run sees the connection it is for."""
    topics = settings.topics
    subscribe_topics(
        broker,
        settings.kafka,
        handlers={
            topics.name(XERO_CONNECTIONS): connections.apply,
            topics.name(BANK_TRANSACTIONS): ingestor.ingest,
            topics.name(XERO_SYNC_DUE): sync_due.apply,
        },
        group_id=topics.group(CONSUMER_GROUP),
        max_records=settings.ingest_batch_size,
        batch_timeout_ms=settings.ingest_batch_wait_ms,
        handling=ingest_first.handling if ingest_first is not None else None,
    )
