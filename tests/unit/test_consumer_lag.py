"""The consumer-lag gauge's arithmetic, on a fake consumer that answers like aiokafka's."""

import asyncio
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from prometheus_client import CollectorRegistry

from services.connector.metrics import ConnectorMetrics
from services.scheduler.metrics import SchedulerMetrics
from services.syncer.metrics import SyncerMetrics
from shared.consumer_lag import ConsumerLag, records_behind
from shared.metrics import consumer_lag_gauge

LAG = "xerosync_consumer_lag_records"


@dataclass
class FakeConsumer:
    """`highwater` as the last fetch reported it (None: not fetched yet); `position` as
    aiokafka keeps it (missing: waiting for a reset, which `position()` waits out)."""

    highwaters: dict[TopicPartition, int | None]
    positions: dict[TopicPartition, int]
    unassigned_meanwhile: set[TopicPartition] = field(default_factory=set)

    def assignment(self) -> Set[TopicPartition]:
        return set(self.highwaters)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.highwaters[partition]

    async def position(self, partition: TopicPartition) -> int:
        if partition in self.unassigned_meanwhile:
            raise IllegalStateError(f"Partition {partition} is not assigned")
        if partition not in self.positions:
            await asyncio.Event().wait()  # aiokafka waits for the reset
        return self.positions[partition]


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


async def test_lag_is_highwater_minus_position_summed_per_topic() -> None:
    consumer = FakeConsumer(
        highwaters={tp("a", 0): 10, tp("a", 1): 7, tp("a", 2): 0, tp("b", 0): 5},
        positions={tp("a", 0): 4, tp("a", 1): 7, tp("a", 2): 0, tp("b", 0): 5},
    )

    assert await records_behind(consumer) == {"a": 6, "b": 0}


async def test_partitions_not_known_yet_are_left_out() -> None:
    consumer = FakeConsumer(
        highwaters={
            tp("a", 0): 10,  # fetched
            tp("a", 1): None,  # assigned, not fetched yet
            tp("b", 0): None,
            tp("c", 0): 9,  # fetched, then seeked: waiting for its reset
            tp("d", 0): 3,  # reassigned between the assignment and the position
        },
        positions={tp("a", 0): 8, tp("a", 1): 0, tp("b", 0): 0, tp("d", 0): 0},
        unassigned_meanwhile={tp("d", 0)},
    )

    assert await records_behind(consumer) == {"a": 2}


async def test_a_position_past_the_last_fetched_highwater_is_no_negative_lag() -> None:
    consumer = FakeConsumer(highwaters={tp("a", 0): 3}, positions={tp("a", 0): 5})

    assert await records_behind(consumer) == {"a": 0}


async def test_nothing_assigned_is_no_lag() -> None:
    assert await records_behind(FakeConsumer(highwaters={}, positions={})) == {}


@dataclass
class FakeSubscriber:
    group_id: str | None
    consumer: Any


@dataclass
class FakeBroker:
    subscribers: list[FakeSubscriber]


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["topic"], sample.labels["group"]): sample.value
        for family in registry.collect()
        if family.name == LAG
        for sample in family.samples
    }


async def test_the_gauge_is_labelled_without_the_prefix_and_drops_what_moved_away() -> None:
    registry = CollectorRegistry()
    transactions, due = "stg.bank.transactions.v1", "stg.xero.sync-due.v1"
    consumer = FakeConsumer(
        highwaters={tp(transactions, 0): 30, tp(transactions, 1): 12, tp(due, 0): 4},
        positions={tp(transactions, 0): 5, tp(transactions, 1): 12, tp(due, 0): 4},
    )
    broker = FakeBroker(
        [
            FakeSubscriber("stg.xerosync-syncer", consumer),
            FakeSubscriber("stg.xerosync-syncer", None),  # not started
            FakeSubscriber(None, FakeConsumer({tp("x", 0): 9}, {tp("x", 0): 0})),  # no group
        ]
    )
    lag = ConsumerLag(broker, consumer_lag_gauge(registry), topic_prefix="stg.")  # type: ignore[arg-type]

    await lag.refresh()
    assert _samples(registry) == {
        ("bank.transactions.v1", "xerosync-syncer"): 25,
        ("xero.sync-due.v1", "xerosync-syncer"): 0,
    }

    # A rebalance gave the sync-due partition to another member; the rest was consumed.
    del consumer.highwaters[tp(due, 0)]
    consumer.positions[tp(transactions, 0)] = 30
    await lag.refresh()
    assert _samples(registry) == {("bank.transactions.v1", "xerosync-syncer"): 0}


def test_every_service_registers_the_gauge() -> None:
    for metrics in (ConnectorMetrics, SchedulerMetrics, SyncerMetrics):
        registry = CollectorRegistry()
        metrics(registry)
        assert LAG in {family.name for family in registry.collect()}, metrics
