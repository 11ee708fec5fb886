"""Kafka subscriber of the scheduler: one consumer (one group join) for its three topics.
Thin: hand each topic's records to its use case, connection changes first, so a press that
arrives with the connection it is for finds it scheduled."""

from faststream.kafka import KafkaBroker

from services.scheduler.config import CONSUMER_GROUP, SchedulerSettings
from services.scheduler.service_layer.intake import ConnectionChanges, ManualSyncs, SyncResults
from shared.contracts.topics import XERO_CONNECTIONS, XERO_SYNC_REQUESTS, XERO_SYNC_RESULTS
from shared.kafka_records import subscribe_topics


def register_consumers(
    broker: KafkaBroker,
    settings: SchedulerSettings,
    connections: ConnectionChanges,
    requests: ManualSyncs,
    results: SyncResults,
) -> None:
    subscribe_topics(
        broker,
        settings.kafka,
        handlers={
            settings.topics.name(XERO_CONNECTIONS): connections.apply,
            settings.topics.name(XERO_SYNC_REQUESTS): requests.apply,
            settings.topics.name(XERO_SYNC_RESULTS): results.apply,
        },
        group_id=settings.topics.group(CONSUMER_GROUP),
        max_records=settings.consume_batch_size,
        batch_timeout_ms=settings.consume_batch_wait_ms,
    )
