"""Every metric the scheduler exposes, on the registry its composition root injects."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.scheduler.domain.schedule import MANUAL_RESULTS, SYNC_REASONS
from shared.contracts.topics import XERO_CONNECTIONS, XERO_SYNC_REQUESTS, XERO_SYNC_RESULTS
from shared.metrics import consumer_lag_gauge, dlq_counter


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.emitted = Counter(
            "xerosync_sync_due_emitted",
            "SyncDue events published, by reason (schedule, manual, connected, catch_up).",
            ["reason"],
            registry=registry,
        )
        self.lag = Histogram(
            "xerosync_schedule_lag_seconds",
            "How late each SyncDue was published against the slot it is for.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
            registry=registry,
        )
        self.active = Gauge(
            "xerosync_schedules_active",
            "Connections with a schedule (active connections); the same on every replica.",
            registry=registry,
        )
        self.emitter = Gauge(
            "xerosync_scheduler_emitter",
            "1 on the replica that emits SyncDue (holds the emitter lock), 0 on standbys.",
            registry=registry,
        )
        self.recovered = Counter(
            "xerosync_sync_due_recovered",
            "Slots a previous emitter published just before it died, found on the topic "
            "at takeover and recorded without publishing them again.",
            registry=registry,
        )
        self.manual = Counter(
            "xerosync_manual_sync_requests",
            "Sync-now presses, by result: accepted (a manual sync is due), debounced "
            "(within MANUAL_SYNC_COOLDOWN or one already waiting), not_active (no active "
            "connection), stale (older than SCHEDULER_MANUAL_REQUEST_MAX_AGE).",
            ["result"],
            registry=registry,
        )
        self.tick_duration = Histogram(
            "xerosync_schedule_tick_duration_seconds",
            "Time to claim, publish and record one batch of due slots.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.oldest_sync_age = Gauge(
            "xerosync_oldest_connection_sync_age_seconds",
            "Seconds since the active connection synced longest ago last completed a sync "
            "(or became active, if it never has); 0 with none active. The same on every "
            "replica: it comes from the shared database.",
            registry=registry,
        )
        self.sync_interval = Gauge(
            "xerosync_sync_interval_seconds",
            "SYNC_INTERVAL: how often each active connection is due a scheduled sync.",
            registry=registry,
        )
        self.dlq = dlq_counter(registry)
        self.consumer_lag = consumer_lag_gauge(registry)
        # Series exist from the start, so rate() and alerts see zeros, not gaps.
        for reason in SYNC_REASONS:
            self.emitted.labels(reason=reason)
        for result in MANUAL_RESULTS:
            self.manual.labels(result=result)
        for spec in (XERO_CONNECTIONS, XERO_SYNC_REQUESTS, XERO_SYNC_RESULTS):
            self.dlq.labels(topic=spec.name)
