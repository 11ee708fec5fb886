"""Kafka subscriber of the connector: one consumer (one group join) for the accounts
directory and the sync results. Thin: hand each topic's records to its use case."""

from faststream.kafka import KafkaBroker

from services.connector.config import CONSUMER_GROUP, ConnectorSettings
from services.connector.service_layer.projections import AccountsDirectory, SyncStatus
from shared.contracts.topics import BANK_ACCOUNTS, XERO_SYNC_RESULTS
from shared.kafka_records import subscribe_topics


def register_consumers(
    broker: KafkaBroker,
    settings: ConnectorSettings,
    directory: AccountsDirectory,
    status: SyncStatus,
) -> None:
    subscribe_topics(
        broker,
        settings.kafka,
        handlers={
            settings.topics.name(BANK_ACCOUNTS): directory.apply,
            settings.topics.name(XERO_SYNC_RESULTS): status.apply,
        },
        group_id=settings.topics.group(CONSUMER_GROUP),
        max_records=200,
        batch_timeout_ms=50,
    )
