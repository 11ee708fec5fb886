"""The Kafka side of a replay: measure partitions, find offsets by time, read ranges,
re-publish, read and move a consumer group's offsets. Small functions over aiokafka, so
the planning stays pure (`xerosync.replay.plan`).

Where the embedded broker (Tansu) differs from Apache Kafka, each function says so and
works on both.
"""

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from shared.errors import BrokerUnavailable, PermanentError
from shared.kafka import admin_client, client_options, consumer_options, topic_partitions
from shared.settings import KafkaSettings
from xerosync.replay.plan import GroupMember, GroupState, PartitionExtent

Record = ConsumerRecord[bytes, bytes]
CLIENT_ID = "xerosync-replay"
READ_BATCH = 500
STALL_SECONDS = 30.0
"""A partition that yields nothing for this long before its range ends is an error."""


class ReplayRefused(PermanentError):
    """The replay would be unsafe, or the broker refused it; nothing was changed."""


def reader(kafka: KafkaSettings) -> AIOKafkaConsumer:
    """A consumer outside any group, for measuring and reading (started by the caller)."""
    return AIOKafkaConsumer(
        client_id=CLIENT_ID,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **client_options(kafka),
    )


@asynccontextmanager
async def reading(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaConsumer]:
    """A started `reader`; aiokafka's errors in the block come out as `BrokerUnavailable`."""
    consumer = reader(kafka)
    try:
        await consumer.start()
        yield consumer
    except KafkaError as error:
        raise BrokerUnavailable(
            f"Kafka at {kafka.bootstrap_servers}: {error or type(error).__name__}"
        ) from error
    finally:
        await _stop(consumer)


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """`consumer.stop()`, also right after `start()`. aiokafka's group-less coordinator
    starts a task in `start()`, and `stop()` cancels and awaits it: cancelled before its
    first step, it raises CancelledError out of `stop()`, leaving the connections open. One
    turn of the event loop lets it take that step."""
    await asyncio.sleep(0)
    await consumer.stop()


async def partition_extents(consumer: AIOKafkaConsumer, topic: str) -> dict[int, PartitionExtent]:
    """Each partition's log start and exact end.

    The end is taken from a fetch's high watermark, not from ListOffsets(latest) alone:
    the embedded broker answers that with the last batch's base offset + 1, short by the
    rest of that batch. The fetch starts at the reported end - 1, which every broker
    holds, so it costs one record per partition.
    """
    partitions = await topic_partitions(consumer, topic)
    starts = await consumer.beginning_offsets(partitions)
    reported = await consumer.end_offsets(partitions)
    nonempty = [tp for tp in partitions if reported[tp] > starts[tp]]
    ends = dict(reported)
    if nonempty:
        consumer.assign(nonempty)
        for tp in nonempty:
            consumer.seek(tp, reported[tp] - 1)
        deadline = time.monotonic() + STALL_SECONDS
        while any(consumer.highwater(tp) is None for tp in nonempty):
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"{topic}: no fetch answered within {STALL_SECONDS:g}s")
            await consumer.getmany(*nonempty, timeout_ms=200, max_records=1)
        for tp in nonempty:
            ends[tp] = max(reported[tp], consumer.highwater(tp) or 0)
        consumer.assign([])
    return {tp.partition: PartitionExtent(tp.partition, starts[tp], ends[tp]) for tp in partitions}


async def offsets_at(
    consumer: AIOKafkaConsumer,
    topic: str,
    extents: Mapping[int, PartitionExtent],
    when: datetime,
    *,
    not_before: Mapping[int, int] | None = None,
) -> tuple[dict[int, int], list[int]]:
    """Per partition, the first offset stamped at or after `when` (the end if none is),
    and the partitions that had to be read to find it.

    Apache Kafka answers ListOffsets by timestamp exactly. The embedded broker does not
    implement it: whatever the time, it answers offset 0, with the current time or -1 as
    its timestamp. So an answer is checked against the records themselves (the one it
    names is stamped at or after `when`, the one before it earlier), and a partition whose
    answer fails the check is read from `not_before` (else its start) instead.
    """
    stamp = int(when.timestamp() * 1000)
    partitions = {p: TopicPartition(topic, p) for p in extents}
    answers = await consumer.offsets_for_times(dict.fromkeys(partitions.values(), stamp))
    found: dict[int, int] = {}
    claimed: dict[int, int] = {}
    for partition, tp in partitions.items():
        answer = answers.get(tp)
        if answer is None:
            found[partition] = extents[partition].end  # nothing stamped at or after `when`
        else:
            claimed[partition] = answer.offset
    found |= await _confirmed(consumer, topic, extents, claimed, stamp)
    floors = not_before or {}
    ranges = [
        (p, max(floors.get(p, extents[p].start), extents[p].start), extents[p].end)
        for p in extents
        if p not in found
    ]
    if ranges:
        found |= await _scan_for_time(consumer, topic, ranges, stamp)
    return found, [p for p, start, end in ranges if end > start]


async def _confirmed(
    consumer: AIOKafkaConsumer,
    topic: str,
    extents: Mapping[int, PartitionExtent],
    claimed: Mapping[int, int],
    stamp: int,
) -> dict[int, int]:
    """The claimed offsets that the records around them bear out."""
    ranges = [
        (p, max(extents[p].start, offset - 1), min(extents[p].end, offset + 1))
        for p, offset in claimed.items()
        if extents[p].start <= offset < extents[p].end
    ]
    around: dict[int, list[Record]] = {}
    async with aclosing(read_ranges(consumer, topic, ranges)) as chunks:
        async for partition, chunk in chunks:
            around.setdefault(partition, []).extend(chunk)
    confirmed = {}
    for partition, offset in claimed.items():
        named = [r for r in around.get(partition, ()) if r.offset == offset]
        before = [r for r in around.get(partition, ()) if r.offset < offset]
        if (
            named
            and named[0].timestamp >= stamp
            and all(record.timestamp < stamp for record in before)
        ):
            confirmed[partition] = offset
    return confirmed


async def _scan_for_time(
    consumer: AIOKafkaConsumer, topic: str, ranges: Sequence[tuple[int, int, int]], stamp: int
) -> dict[int, int]:
    found = {partition: end for partition, _, end in ranges}
    looking = {partition for partition, start, end in ranges if end > start}
    async with aclosing(read_ranges(consumer, topic, ranges)) as chunks:
        async for partition, records in chunks:
            if partition not in looking:
                continue
            hit = next((r.offset for r in records if r.timestamp >= stamp), None)
            if hit is not None:
                found[partition] = hit
                looking.discard(partition)
            if not looking:
                break
    return found


async def read_ranges(
    consumer: AIOKafkaConsumer,
    topic: str,
    ranges: Sequence[tuple[int, int, int]],
    *,
    batch: int = READ_BATCH,
) -> AsyncGenerator[tuple[int, list[Record]], None]:
    """The records of each `(partition, start, end)` range, in offset order per partition,
    as `(partition, records)` chunks. The ends are fixed by the caller, so records
    appended meanwhile (a replay's own) are not read."""
    pending = {p: (start, end) for p, start, end in ranges if end > start}
    if not pending:
        return
    tps = {p: TopicPartition(topic, p) for p in pending}
    consumer.assign(list(tps.values()))
    for partition, (start, _) in pending.items():
        consumer.seek(tps[partition], start)
    last_progress = time.monotonic()
    try:
        while pending:
            fetched = await consumer.getmany(
                *(tps[p] for p in pending), timeout_ms=500, max_records=batch
            )
            for tp, records in fetched.items():
                if tp.partition not in pending:
                    continue
                end = pending[tp.partition][1]
                inside = [record for record in records if record.offset < end]
                if inside:
                    last_progress = time.monotonic()
                    yield tp.partition, inside
                if await consumer.position(tp) >= end:
                    del pending[tp.partition]
                    consumer.pause(tp)
            if pending and time.monotonic() - last_progress > STALL_SECONDS:
                stuck = ", ".join(str(p) for p in sorted(pending))
                raise BrokerUnavailable(
                    f"{topic}: partition {stuck} yielded nothing for {STALL_SECONDS:g}s "
                    "before the end of its range"
                )
    finally:
        consumer.assign([])


async def committed_offsets(
    kafka: KafkaSettings, group: str, topic: str, partitions: Sequence[int]
) -> dict[int, int | None]:
    """The group's committed offset per partition (None: nothing committed). OffsetFetch,
    from outside the group; the admin client's ListConsumerGroupOffsets would do the same,
    but the embedded broker drops the connection on it."""
    consumer = AIOKafkaConsumer(
        client_id=CLIENT_ID, group_id=group, enable_auto_commit=False, **client_options(kafka)
    )
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
    finally:
        await consumer.stop()


async def describe_group(kafka: KafkaSettings, group: str) -> GroupState:
    """The coordinator's view of the group (DescribeGroups): its state and the members it
    lists. A group that never existed is `Empty` (or `Dead`) with no members."""
    admin = admin_client(kafka)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    for response in responses:
        for found in response.to_object()["groups"]:
            if found["group"] != group:
                continue
            if found["error_code"]:
                raise BrokerUnavailable(
                    f"DescribeGroups for {group} answered error {found['error_code']}"
                )
            return GroupState(
                group=group,
                state=found["state"] or "Unknown",
                members=tuple(
                    GroupMember(
                        str(member["member_id"]),
                        str(member.get("client_id") or ""),
                        str(member.get("client_host") or ""),
                    )
                    for member in found["members"]
                ),
            )
    raise BrokerUnavailable(f"DescribeGroups did not describe {group}")


def _offsets(topic: str, targets: Mapping[int, int]) -> dict[TopicPartition, OffsetAndMetadata]:
    note = f"xerosync replay {datetime.now(UTC).isoformat(timespec='seconds')}"
    return {TopicPartition(topic, p): OffsetAndMetadata(o, note) for p, o in targets.items()}


async def commit_from_outside(
    kafka: KafkaSettings, group: str, topic: str, targets: Mapping[int, int]
) -> None:
    """Commit `targets` for a group with no members, without joining it (Apache Kafka's
    way: the coordinator accepts such a commit only while the group is empty).

    The embedded broker accepts it only for a group that never had a member; for any
    other it answers UnknownMemberId, raised here as `ReplayRefused`."""
    consumer = AIOKafkaConsumer(
        client_id=CLIENT_ID, group_id=group, enable_auto_commit=False, **client_options(kafka)
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in targets])
        await consumer.commit(_offsets(topic, targets))
    except CommitFailedError as error:
        raise ReplayRefused(
            f"the broker refused to commit {group}'s offsets from outside the group "
            f"({type(error.__cause__ or error).__name__}): a member joined meanwhile, or "
            "the broker (the embedded one does) refuses commits from outside a group that "
            "ever had members. Nothing was committed; --join-group commits as the group's "
            "sole member instead."
        ) from error
    finally:
        await consumer.stop()


async def commit_as_sole_member(
    kafka: KafkaSettings,
    group: str,
    topic: str,
    targets: Mapping[int, int],
    *,
    partitions: int,
    within: float | None = None,
) -> None:
    """Join the group, and commit `targets` only if this consumer is its sole member and
    holds every partition of `topic`; else leave without committing (`ReplayRefused`).

    Joining is what makes a coordinator drop members whose session expired; a live member
    instead rejoins and takes a share of the partitions (one rebalance for it). The embedded
    broker needs this: it drops an expired member only when another member heartbeats or
    joins, so a group whose consumers all stopped lists the last ones indefinitely."""
    options = consumer_options(kafka)
    wait = within if within is not None else max(30.0, 3 * options["session_timeout_ms"] / 1000)
    consumer = AIOKafkaConsumer(
        client_id=CLIENT_ID,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **client_options(kafka),
        **options,
    )
    await consumer.start()
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + wait
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise ReplayRefused(f"could not join consumer group {group} within {wait:g}s")
            await consumer.getmany(timeout_ms=100, max_records=1)
        held = sorted(tp.partition for tp in consumer.assignment())
        state = await describe_group(kafka, group)
        if len(state.members) != 1 or held != list(range(partitions)):
            others = [m.describe() for m in state.members]
            raise ReplayRefused(
                f"refused: consumer group {group} has live members besides replay "
                f"(replay was given partitions {held} of {partitions}; members listed: "
                f"{', '.join(others)}). Stop them and run this again; nothing was committed."
            )
        await consumer.commit(_offsets(topic, targets))
    except CommitFailedError as error:
        raise ReplayRefused(
            f"consumer group {group} rebalanced while replay committed; nothing was "
            "committed. Stop every member and run this again."
        ) from error
    finally:
        await consumer.stop()


class Republisher:
    """Re-publishes records with acks from all replicas, keeping their order per
    partition; at most `window` unacknowledged at a time. Idempotence as configured (the
    embedded broker lacks InitProducerId)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        on_acknowledged: Callable[[int], None] = lambda _count: None,
        window: int = 500,
    ) -> None:
        self._producer = AIOKafkaProducer(
            client_id=CLIENT_ID,
            acks="all",
            enable_idempotence=kafka.idempotent_producer,
            linger_ms=5,
            max_batch_size=256 * 1024,
            max_request_size=8 * 1024 * 1024,
            **client_options(kafka),
        )
        self._pending: list[asyncio.Future[Any]] = []
        self._on_acknowledged = on_acknowledged
        self._window = window
        self.acknowledged = 0

    async def __aenter__(self) -> Self:
        await self._producer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                await self.flush()
        finally:
            await self._producer.stop()

    async def send(
        self,
        topic: str,
        *,
        partition: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> None:
        try:
            future = await self._producer.send(
                topic, value, key=key, partition=partition, headers=list(headers) or None
            )
        except KafkaError as error:
            raise self._failed(error) from error
        self._pending.append(future)
        if len(self._pending) >= self._window:
            await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        try:
            await asyncio.gather(*pending)
        except KafkaError as error:
            raise self._failed(error) from error
        self.acknowledged += len(pending)
        self._on_acknowledged(len(pending))

    def _failed(self, error: KafkaError) -> BrokerUnavailable:
        return BrokerUnavailable(
            f"re-publishing stopped after {self.acknowledged:,} acknowledged records "
            f"({type(error).__name__}); running the replay again is safe"
        )
