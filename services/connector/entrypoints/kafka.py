"""Kafka subscribers of the connector. Thin: take the records, hand them to a use case."""

from faststream.kafka import KafkaBroker

from services.connector.config import ACCOUNTS_GROUP, RESULTS_GROUP, ConnectorSettings
from services.connector.service_layer.projections import AccountsDirectory, SyncStatus
from shared.contracts.topics import BANK_ACCOUNTS, XERO_SYNC_RESULTS
from shared.kafka_records import subscribe_batches


def register_consumers(
    broker: KafkaBroker,
    settings: ConnectorSettings,
    directory: AccountsDirectory,
    status: SyncStatus,
) -> None:
    for spec, group, handler in (
        (BANK_ACCOUNTS, ACCOUNTS_GROUP, directory.apply),
        (XERO_SYNC_RESULTS, RESULTS_GROUP, status.apply),
    ):
        subscribe_batches(
            broker,
            settings.kafka,
            topic=settings.topics.name(spec),
            group_id=settings.topics.group(group),
            handler=handler,
            max_records=200,
            batch_timeout_ms=50,
        )
