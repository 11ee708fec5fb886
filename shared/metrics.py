"""Prometheus helpers: one registry per service, injected everywhere it is used.

Label values stay bounded: topics, results, statuses; never an entity, account,
transaction or token.
"""

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)


def new_registry() -> CollectorRegistry:
    """A fresh registry with the process, platform and GC collectors."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


def dlq_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "xerosync_dlq_messages",
        "Records sent to a dead-letter topic, by origin topic (without TOPIC_PREFIX).",
        ["topic"],
        registry=registry,
    )


def consumer_lag_gauge(registry: CollectorRegistry) -> Gauge:
    """Fed by `shared.consumer_lag.ConsumerLag`; the same series in every service."""
    return Gauge(
        "xerosync_consumer_lag_records",
        "Records on the topic (without TOPIC_PREFIX) not yet taken by this process's "
        "consumer of the group: fetched high watermark minus position, summed over the "
        "partitions assigned to it. Sum over instances for the whole group's lag.",
        ["topic", "group"],
        registry=registry,
    )


class XeroRequestMetrics:
    """`xerosync_xero_requests_total` and `xerosync_xero_request_duration_seconds`, fed by
    `shared.xero_http.XeroHttp`'s observer: the same series in every service that calls
    Xero, so one dashboard panel covers them all."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "xerosync_xero_requests",
            "Requests to Xero by API, operation and HTTP status (`error` when no answer).",
            ["api", "operation", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "xerosync_xero_request_duration_seconds",
            "Time to Xero's answer.",
            ["api", "operation"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )

    def observe(self, api: str, operation: str, status: str, seconds: float) -> None:
        self.requests.labels(api=api, operation=operation, status=status).inc()
        self.duration.labels(api=api, operation=operation).observe(seconds)
