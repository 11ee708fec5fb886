"""Every metric the syncer exposes, on the registry its composition root injects."""

from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.contracts.topics import BANK_TRANSACTIONS
from shared.metrics import dlq_counter

INGEST_RESULTS = ("new", "duplicate", "invalid")


class SyncerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.ingested = Counter(
            "xerosync_transactions_ingested",
            "Transaction events consumed, by result: new (stored), duplicate (already "
            "stored, nothing changed), invalid (sent to the DLQ).",
            ["result"],
            registry=registry,
        )
        self.dlq = dlq_counter(registry)
        self.ingest_batch_duration = Histogram(
            "xerosync_ingest_batch_duration_seconds",
            "Time to validate, store and dead-letter one batch of transaction events.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        # Series exist from the start, so rate() and alerts see zeros, not gaps.
        for result in INGEST_RESULTS:
            self.ingested.labels(result=result)
        self.dlq.labels(topic=BANK_TRANSACTIONS.name)
