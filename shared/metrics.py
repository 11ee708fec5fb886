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
