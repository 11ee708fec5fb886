"""`xerosync_consumer_lag_records{topic, group}`: how many records wait for this process's
Kafka consumers, per topic, read from what the consumers already know.

A partition's lag is its high watermark as the last fetch response reported it, minus the
consumer's position (the offset of the next record it will hand to a handler). aiokafka
keeps both in memory, so a refresh sends nothing to the broker. The high watermark comes
from fetches rather than ListOffsets because the embedded broker (Tansu) answers
ListOffsets(latest) with a partition's last batch's first offset + 1, which undercounts;
its fetch responses carry the true high watermark.

A batch handed to the handler counts as taken, although its offsets are committed only
after the handler returns; a batch that fails is rewound, its position goes back, and its
records count again.
"""

import asyncio
import contextlib
from collections.abc import Iterator, Set
from typing import Protocol, runtime_checkable

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from faststream.kafka import KafkaBroker
from prometheus_client import Gauge

from shared.logging import get_logger

REFRESH_S = 1.0
"""Reading the lag is a few dictionary lookups per partition; once a second is cheap."""
_POSITION_WAIT_S = 0.1
log = get_logger(__name__)


@runtime_checkable
class LagSource(Protocol):
    """The part of `aiokafka.AIOKafkaConsumer` the lag is read from."""

    def assignment(self) -> Set[TopicPartition]: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...

    async def position(self, partition: TopicPartition) -> int: ...


async def records_behind(consumer: LagSource) -> dict[str, int]:
    """Per topic, the records between the consumer's position and the high watermark,
    summed over the partitions assigned to it. A partition not fetched yet (no high
    watermark) or without a position (being reset) is left out until the next fetch; a
    topic none of whose partitions is known is absent."""
    # Read synchronously with the assignment: `highwater` asserts the partition is assigned.
    highwaters = {
        partition: highwater
        for partition in consumer.assignment()
        if (highwater := consumer.highwater(partition)) is not None
    }
    behind: dict[str, int] = {}
    for partition, highwater in sorted(highwaters.items()):
        try:
            # Immediate when the position is known, which a fetched partition's is.
            # asyncio.timeout, not wait_for: before Python 3.12, wait_for can swallow a
            # cancellation that arrives as the awaited call completes, and this loop, asked
            # to stop at shutdown, would then run on and hold the service's shutdown.
            async with asyncio.timeout(_POSITION_WAIT_S):
                position = await consumer.position(partition)
        except (TimeoutError, IllegalStateError):
            continue  # being reset or reassigned meanwhile
        behind[partition.topic] = behind.get(partition.topic, 0) + max(0, highwater - position)
    return behind


class ConsumerLag:
    """Keeps the gauge equal to what the broker's subscribers' consumers know, refreshed
    every `interval_s`. Labels are the topic and the group without TOPIC_PREFIX, so they are
    the same in every deployment; a (topic, group) this process no longer reads (its
    partitions moved to another member) is removed rather than left at its last value."""

    def __init__(
        self,
        broker: KafkaBroker,
        gauge: Gauge,
        *,
        topic_prefix: str,
        interval_s: float = REFRESH_S,
    ) -> None:
        self._broker = broker
        self._gauge = gauge
        self._prefix = topic_prefix
        self._interval_s = interval_s
        self._shown: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        totals: dict[tuple[str, str], int] = {}
        for group, consumer in self._consumers():
            for topic, records in (await records_behind(consumer)).items():
                key = (topic.removeprefix(self._prefix), group.removeprefix(self._prefix))
                totals[key] = totals.get(key, 0) + records
        for topic, group in self._shown - totals.keys():
            self._gauge.remove(topic, group)
        for (topic, group), records in totals.items():
            self._gauge.labels(topic=topic, group=group).set(records)
        self._shown = set(totals)

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as error:  # noqa: BLE001 - a gauge must not stop the service
                log.warning("could not read consumer lag", error=type(error).__name__)
            await asyncio.sleep(self._interval_s)

    def start(self) -> None:
        """`run()` in the background, until `stop()`."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="consumer-lag-gauge")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _consumers(self) -> Iterator[tuple[str, LagSource]]:
        """Every running group consumer of the broker's subscribers. FastStream keeps a
        subscriber's consumer in `consumer` (None until started, and after it stopped),
        or, for subscribers that run one consumer per worker, in `consumer_subgroup`."""
        for subscriber in self._broker.subscribers:
            group = getattr(subscriber, "group_id", None)
            if not isinstance(group, str) or not group:
                continue
            consumers = getattr(subscriber, "consumer_subgroup", None) or [
                getattr(subscriber, "consumer", None)
            ]
            for consumer in consumers:
                if isinstance(consumer, LagSource):
                    yield group, consumer
