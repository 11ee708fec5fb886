"""Every metric the syncer exposes, on the registry its composition root injects."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.contracts.topics import BANK_TRANSACTIONS, XERO_CONNECTIONS, XERO_SYNC_DUE
from shared.metrics import XeroRequestMetrics, consumer_lag_gauge, dlq_counter

INGEST_RESULTS = ("new", "duplicate", "invalid")
SINKS = ("bankfeeds", "accounting")
POST_RESULTS = ("posted", "failed")
RATE_LIMITS = ("minute", "day", "app", "concurrent")
RUN_RESULTS = ("completed", "failed", "skipped")
DUE_RESULTS = ("queued", "duplicate", "coalesced")
# Xero's X-Rate-Limit-Problem values, folded into DESIGN's four label values.
_LIMIT_LABEL = {
    "minute": "minute",
    "day": "day",
    "appminute": "app",
    "app": "app",
    "statements": "app",
    "concurrent": "concurrent",
}


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
        self.consumer_lag = consumer_lag_gauge(registry)
        self.ingest_batch_duration = Histogram(
            "xerosync_ingest_batch_duration_seconds",
            "Time to validate, store and dead-letter one batch of transaction events.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.posted = Counter(
            "xerosync_transactions_posted",
            "Transactions Xero answered for, by sink and result: posted (Xero holds it) or "
            "failed (Xero refused it; its message is kept against the transaction).",
            ["sink", "result"],
            registry=registry,
        )
        self.pending = Gauge(
            "xerosync_transactions_pending",
            "Transactions of linked accounts of active connections not yet in Xero.",
            registry=registry,
        )
        self.oldest_pending_age = Gauge(
            "xerosync_oldest_pending_transaction_age_seconds",
            "Age (since it was ingested) of the oldest pending transaction; 0 when none.",
            registry=registry,
        )
        self.xero = XeroRequestMetrics(registry)
        self.rate_limited = Counter(
            "xerosync_xero_rate_limited",
            "429 answers from Xero, by the limit it named (app covers the app-wide minute "
            "and the Bank Feeds statements limit).",
            ["limit"],
            registry=registry,
        )
        self.budget_remaining = Gauge(
            "xerosync_xero_budget_remaining",
            "Calls left as Xero last reported them (X-MinLimit-Remaining, "
            "X-DayLimit-Remaining, X-AppMinLimit-Remaining), for the last organisation "
            "answered.",
            ["limit"],
            registry=registry,
        )
        self.pacing_wait = Counter(
            "xerosync_xero_pacing_wait_seconds",
            "Time calls waited for the rate-limit budget before being sent.",
            registry=registry,
        )
        self.ingest_first = Counter(
            "xerosync_posting_gave_way_seconds",
            "Time posting held back so that ingest, running behind, could catch up.",
            registry=registry,
        )
        self.retries = Counter(
            "xerosync_xero_retries",
            "Requests sent again, by why: unavailable (5xx, timeout, dropped) or "
            "rate_limited (after waiting out a 429).",
            ["reason"],
            registry=registry,
        )
        self.recovered = Counter(
            "xerosync_posting_recovered",
            "Requests whose outcome was unknown after a crash, settled on resume: resent "
            "(same bytes and Idempotency-Key) or checked (looked up in Xero first).",
            ["how"],
            registry=registry,
        )
        self.sync_due = Counter(
            "xerosync_sync_due_received",
            "SyncDue events consumed, by result: queued (a run), duplicate (same slot "
            "again), coalesced (a run of the connection was already waiting).",
            ["result"],
            registry=registry,
        )
        self.sync_runs = Counter(
            "xerosync_sync_runs",
            "Sync runs finished, by result: completed, failed, skipped (the connection "
            "is not active).",
            ["result"],
            registry=registry,
        )
        self.sync_duration = Histogram(
            "xerosync_sync_duration_seconds",
            "Time from a run's start to its end.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600),
            registry=registry,
        )
        self.active_tenants = Gauge(
            "xerosync_syncer_active_organisations",
            "Organisations this process is posting to now (holding their lock).",
            registry=registry,
        )
        # Series exist from the start, so rate() and alerts see zeros, not gaps.
        for result in INGEST_RESULTS:
            self.ingested.labels(result=result)
        for sink in SINKS:
            for posted in POST_RESULTS:
                self.posted.labels(sink=sink, result=posted)
        for limit in RATE_LIMITS:
            self.rate_limited.labels(limit=limit)
        for run in RUN_RESULTS:
            self.sync_runs.labels(result=run)
        for due in DUE_RESULTS:
            self.sync_due.labels(result=due)
        for reason in ("unavailable", "rate_limited"):
            self.retries.labels(reason=reason)
        for how in ("resent", "checked"):
            self.recovered.labels(how=how)
        for spec in (BANK_TRANSACTIONS, XERO_CONNECTIONS, XERO_SYNC_DUE):
            self.dlq.labels(topic=spec.name)

    def observe_xero(self, api: str, operation: str, status: str, seconds: float) -> None:
        self.xero.observe(api, operation, status, seconds)

    def count_rate_limited(self, problem: str | None) -> None:
        self.rate_limited.labels(limit=_LIMIT_LABEL.get((problem or "").lower(), "minute")).inc()
