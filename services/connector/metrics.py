"""The connector's own metrics, on the registry the composition root injects."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.contracts.topics import BANK_ACCOUNTS, XERO_SYNC_RESULTS
from shared.metrics import XeroRequestMetrics, consumer_lag_gauge, dlq_counter

CONNECTION_STATUSES = ("active", "needs_user", "disconnected")


class ConnectorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(
            "xerosync_connections",
            "Connections by status.",
            ["status"],
            registry=registry,
        )
        for status in CONNECTION_STATUSES:
            self.connections.labels(status=status).set(0)
        self.token_refreshes = Counter(
            "xerosync_token_refreshes",
            "Xero token refreshes by result: success, invalid_grant (the user must "
            "reconnect), error (Xero unreachable or refused otherwise).",
            ["result"],
            registry=registry,
        )
        for result in ("success", "invalid_grant", "error"):
            self.token_refreshes.labels(result=result)
        self.xero = XeroRequestMetrics(registry)
        self.http_requests = Counter(
            "xerosync_http_requests",
            "HTTP requests served, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_request_duration = Histogram(
            "xerosync_http_request_duration_seconds",
            "Time to serve an HTTP request, by route template.",
            ["route"],
            registry=registry,
        )
        self.connects = Counter(
            "xerosync_connect_outcomes",
            "Finished authorizations by outcome (connected, refused kinds).",
            ["outcome"],
            registry=registry,
        )
        self.dlq = dlq_counter(registry)
        # Series exist from the start, so rate() and alerts see zeros, not gaps.
        for spec in (BANK_ACCOUNTS, XERO_SYNC_RESULTS):
            self.dlq.labels(topic=spec.name)
        self.consumer_lag = consumer_lag_gauge(registry)

    def observe_xero(self, api: str, operation: str, status: str, seconds: float) -> None:
        self.xero.observe(api, operation, status, seconds)

    def set_connections(self, counts: dict[str, int]) -> None:
        for status in CONNECTION_STATUSES:
            self.connections.labels(status=status).set(counts.get(status, 0))
