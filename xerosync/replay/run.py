"""`xerosync replay`: plan a replay, print it, and, with `apply`, carry it out.

Each use case returns the summary `--json` prints; what a person reads goes to `out` line
by line as it is decided. Refusals raise `ReplayRefused` before anything changes.
"""

from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer

from services.connector.config import CONSUMER_GROUP as CONNECTOR_GROUP
from services.scheduler.config import CONSUMER_GROUP as SCHEDULER_GROUP
from services.syncer.config import CONSUMER_GROUP as SYNCER_GROUP
from shared.contracts.topics import Topics, TopicSpec, dlq_of
from shared.errors import BrokerUnavailable
from shared.kafka import topic_partitions
from shared.settings import CommonSettings, KafkaSettings
from xerosync.replay.kafka import (
    Record,
    ReplayRefused,
    Republisher,
    commit_as_sole_member,
    commit_from_outside,
    committed_offsets,
    describe_group,
    offsets_at,
    partition_extents,
    read_ranges,
    reading,
)
from xerosync.replay.plan import (
    DeadLetter,
    DlqFilter,
    GroupState,
    Mode,
    OffsetMove,
    PartitionExtent,
    PartitionRange,
    PlanError,
    RangeOptions,
    describe_moves,
    describe_ranges,
    describe_selection,
    forward_moves,
    group_json,
    members_refusal,
    moves_json,
    plan_moves,
    plan_ranges,
    ranges_json,
    records,
    replay_origin_headers,
    select_dead_letters,
    selection_json,
    target_partition,
    topic_spec,
    utc_iso,
)
from xerosync.replay.plan import describe_group as describe_group_line

SERVICE_GROUPS = {
    "connector": CONNECTOR_GROUP,
    "scheduler": SCHEDULER_GROUP,
    "syncer": SYNCER_GROUP,
}
"""Each service's consumer group, before TOPIC_PREFIX."""

Out = Callable[[str], None]


class Progress(Protocol):
    def begin(self, description: str, total: int) -> None: ...
    def advance(self, count: int) -> None: ...
    def end(self) -> None: ...


class NoProgress:
    def begin(self, description: str, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass(frozen=True)
class TopicReplay:
    topic: str
    """The topic's base name (without TOPIC_PREFIX)."""
    mode: Mode
    range: RangeOptions = field(default_factory=RangeOptions)
    group: str | None = None
    """With move-offsets: a service name (its group) or a group id as it is."""
    join_group: bool = False
    apply: bool = False

    def __post_init__(self) -> None:
        if self.mode == "move-offsets":
            if not self.group:
                raise PlanError("--move-offsets needs --group (a service name or a group id)")
            if self.range.bounded_above:
                raise PlanError(
                    "--move-offsets re-delivers from each partition's start to its end; "
                    "--to-offset and --to-time need --republish"
                )
        elif self.group or self.join_group:
            raise PlanError("--group and --join-group go with --move-offsets")


@dataclass(frozen=True)
class DlqReplay:
    topic: str
    """The origin topic's base name (without TOPIC_PREFIX and `.dlq`)."""
    filter: DlqFilter = field(default_factory=DlqFilter)
    apply: bool = False


def consumer_groups(spec: TopicSpec, topics: Topics) -> list[str]:
    """The project's consumer groups that read `spec`'s topic."""
    return [
        topics.group(SERVICE_GROUPS[name])
        for name in spec.consumer_services
        if name in SERVICE_GROUPS
    ]


def resolve_group(name: str, spec: TopicSpec, topics: Topics) -> str:
    """A service name → its (prefixed) group, refused if it does not read the topic; any
    other name is taken as a group id, as it is."""
    if name not in SERVICE_GROUPS:
        return name
    group = topics.group(SERVICE_GROUPS[name])
    if group not in consumer_groups(spec, topics):
        raise PlanError(
            f"the {name} does not consume {spec.name} (its consumers: {spec.consumers})"
        )
    return group


def dead_letter(record: Record) -> DeadLetter:
    return DeadLetter(
        partition=record.partition,
        offset=record.offset,
        timestamp=record.timestamp,
        key=record.key,
        value=record.value,
        headers=tuple(record.headers or ()),
    )


# ------------------------------------------------------------------ topic ranges


async def replay_topic(
    settings: CommonSettings,
    request: TopicReplay,
    *,
    out: Out,
    progress: Progress | None = None,
) -> dict[str, Any]:
    spec = topic_spec(request.topic)
    topics = settings.topics
    name = topics.name(spec)
    group = resolve_group(request.group, spec, topics) if request.group else None
    if group is None:
        readers = ", ".join(consumer_groups(spec, topics)) or "its consumers"
        out(f"replay {name}: re-publish each record to its partition, for {readers}")
    else:
        out(f"replay {name}: move consumer group {group}'s offsets back; it re-reads from there")
    _describe_bounds(request.range, out)
    async with reading(settings.kafka) as consumer:
        extents = await partition_extents(consumer, name)
        ranges = await _plan(consumer, name, request.range, extents, out)
        summary: dict[str, Any] = {
            "command": "replay topic",
            "topic": spec.name,
            "topic_name": name,
            "mode": request.mode,
            "applied": False,
            "from_time": utc_iso(request.range.from_time),
            "to_time": utc_iso(request.range.to_time),
            "partitions": ranges_json(ranges),
            "records": sum(r.size for r in ranges),
        }
        if group is None:
            republished = await _republish_ranges(
                settings.kafka, consumer, ranges, name=name, request=request, out=out, bar=progress
            )
            return summary | {"applied": request.apply, "republished": republished}
        summary |= await _move_offsets(
            settings.kafka, ranges, extents, name=name, group=group, request=request, out=out
        )
        return summary


async def _plan(
    consumer: AIOKafkaConsumer,
    topic: str,
    options: RangeOptions,
    extents: dict[int, PartitionExtent],
    out: Out,
) -> list[PartitionRange]:
    scoped = {p: extents[p] for p in options.scope(extents)}
    read: list[int] = []
    starts = ends = None
    if options.from_time is not None:
        starts, scanned = await offsets_at(consumer, topic, scoped, options.from_time)
        read += scanned
    if options.to_time is not None:
        ends, scanned = await offsets_at(
            consumer, topic, scoped, options.to_time, not_before=starts
        )
        read += scanned
    if read:
        out(
            "  (the broker's answer to ListOffsets by time did not match the records of "
            f"partition {', '.join(map(str, sorted(set(read))))}: the embedded broker does "
            "not implement it. The time bounds were found by reading those partitions.)"
        )
    return plan_ranges(options, extents, from_time_offsets=starts, to_time_offsets=ends)


async def _republish_ranges(
    kafka: KafkaSettings,
    consumer: AIOKafkaConsumer,
    ranges: list[PartitionRange],
    *,
    name: str,
    request: TopicReplay,
    out: Out,
    bar: Progress | None,
) -> int:
    """Re-publish the ranges (with `apply`); the records acknowledged."""
    for line in describe_ranges(ranges):
        out(line)
    total = sum(r.size for r in ranges)
    if not request.apply:
        out("dry run: nothing was published; add --apply to re-publish")
        return 0
    if not total:
        out("nothing to re-publish")
        return 0
    bar = bar or NoProgress()
    bar.begin(f"re-publishing to {name}", total)
    try:
        async with (
            Republisher(kafka, on_acknowledged=bar.advance) as publisher,
            aclosing(
                read_ranges(consumer, name, [(r.partition, r.start, r.end) for r in ranges])
            ) as chunks,
        ):
            async for partition, chunk in chunks:
                for record in chunk:
                    await publisher.send(
                        name,
                        partition=partition,
                        key=record.key,
                        value=record.value,
                        headers=replay_origin_headers(
                            record.headers or (), name, partition, record.offset
                        ),
                    )
    finally:
        bar.end()
    out(f"re-published {records(publisher.acknowledged)} to {name}")
    return publisher.acknowledged


def _describe_bounds(options: RangeOptions, out: Out) -> None:
    if options.from_time is not None:
        out(f"  from the first record stamped at or after {utc_iso(options.from_time)}")
    if options.to_time is not None:
        out(f"  up to (not including) the first stamped at or after {utc_iso(options.to_time)}")


async def _move_offsets(
    kafka: KafkaSettings,
    ranges: list[PartitionRange],
    extents: dict[int, PartitionExtent],
    *,
    name: str,
    group: str,
    request: TopicReplay,
    out: Out,
) -> dict[str, Any]:
    partitions = [r.partition for r in ranges]
    committed = await committed_offsets(kafka, group, name, partitions)
    moves = plan_moves(ranges, committed, extents)
    state = await describe_group(kafka, group)
    out(describe_group_line(state))
    for line in describe_moves(moves):
        out(line)
    summary = {"group": group_json(state), "moves": moves_json(moves), "committed": None}
    refusal = _refusal(moves, state, request, kafka)
    if not request.apply:
        if refusal:
            first, *rest = refusal.removeprefix("refused: ").splitlines()
            out(f"--apply would refuse: {first}")
            for line in rest:
                out(line if line.startswith("  ") else f"  {line}")
        elif state.members:
            out("--apply will join the group and move the offsets only as its sole member")
        out("dry run: no offset was moved; add --apply to move them")
        return summary
    if refusal:
        raise ReplayRefused(refusal)
    targets = {m.partition: m.target for m in moves if m.kind == "rewind"}
    if not targets:
        out("nothing to move")
        return summary | {"applied": True, "committed": _as_json(committed)}
    if state.members:
        out(f"joining {group} to check that every member listed has stopped …")
        await commit_as_sole_member(kafka, group, name, targets, partitions=len(extents))
    else:
        try:
            await commit_from_outside(kafka, group, name, targets)
        except ReplayRefused:
            if not request.join_group:
                raise
            out(f"the broker refused a commit from outside {group}; joining it instead …")
            await commit_as_sole_member(kafka, group, name, targets, partitions=len(extents))
    after = await committed_offsets(kafka, group, name, partitions)
    if wrong := [p for p, offset in targets.items() if after.get(p) != offset]:
        raise BrokerUnavailable(
            f"{group}: the commit was acknowledged, but partition {wrong[0]} reads "
            f"{after.get(wrong[0])} instead of {targets[wrong[0]]}"
        )
    redelivered = sum(m.redelivered for m in moves)
    out(
        f"moved {group} on {len(targets)} partition{'s' * (len(targets) != 1)}: its "
        f"consumers re-read {records(redelivered)} when they start"
    )
    return summary | {"applied": True, "committed": _as_json(after)}


def _refusal(
    moves: list[OffsetMove], state: GroupState, request: TopicReplay, kafka: KafkaSettings
) -> str | None:
    if forward := forward_moves(moves):
        listed = ", ".join(f"{m.partition} ({m.position} → {m.target})" for m in forward)
        return (
            f"refused: moving {state.group} forward would skip records it has not processed "
            f"(partition {listed}). A replay only moves offsets back; narrow it with "
            "--partition or an earlier --from-offset/--from-time."
        )
    if state.members and not request.join_group:
        return members_refusal(state, session_timeout_ms=kafka.session_timeout_ms)
    return None


def _as_json(offsets: dict[int, int | None]) -> dict[str, int | None]:
    return {str(p): offset for p, offset in sorted(offsets.items())}


# ------------------------------------------------------------------ dead letters


async def replay_dlq(
    settings: CommonSettings,
    request: DlqReplay,
    *,
    out: Out,
    progress: Progress | None = None,
) -> dict[str, Any]:
    spec = topic_spec(request.topic)
    name = settings.topics.name(spec)
    dlq = dlq_of(name)
    bar = progress or NoProgress()
    async with reading(settings.kafka) as consumer:
        extents = await partition_extents(consumer, dlq)
        letters = await _read_dead_letters(consumer, dlq, extents, bar)
        selection = select_dead_letters(letters, request.filter)
        readers = ", ".join(consumer_groups(spec, settings.topics)) or "its consumers"
        out(
            f"replay {dlq} → {name}, for {readers}: the latest attempt of each failed record "
            f"({request.filter.describe()}), with its original bytes, key and headers"
        )
        for line in describe_selection(selection):
            out(line)
        summary: dict[str, Any] = {
            "command": "replay dlq",
            "topic": spec.name,
            "topic_name": name,
            "dlq": dlq,
            "applied": False,
            "republished": 0,
            **selection_json(selection),
        }
        if not request.apply:
            out("dry run: nothing was published; add --apply to re-publish")
            return summary
        summary["applied"] = True
        if not selection.chosen:
            out("nothing to re-publish")
            return summary
        partitions = len(await topic_partitions(consumer, name))
        bar.begin(f"re-publishing to {name}", len(selection.chosen))
        try:
            async with Republisher(settings.kafka, on_acknowledged=bar.advance) as publisher:
                for letter in selection.chosen:
                    await publisher.send(
                        name,
                        partition=target_partition(letter, partitions),
                        key=letter.key,
                        value=letter.value,
                        headers=letter.replay_headers(),
                    )
        finally:
            bar.end()
        out(
            f"re-published {records(publisher.acknowledged)} to {name}; a record that fails "
            f"again returns to {dlq} with its attempt count raised"
        )
        summary["republished"] = publisher.acknowledged
        return summary


async def _read_dead_letters(
    consumer: AIOKafkaConsumer, dlq: str, extents: dict[int, PartitionExtent], bar: Progress
) -> list[DeadLetter]:
    ranges = [(p, e.start, e.end) for p, e in extents.items()]
    letters: list[DeadLetter] = []
    bar.begin(f"reading {dlq}", sum(e.end - e.start for e in extents.values()))
    try:
        async with aclosing(read_ranges(consumer, dlq, ranges)) as chunks:
            async for _, chunk in chunks:
                letters.extend(dead_letter(record) for record in chunk)
                bar.advance(len(chunk))
    finally:
        bar.end()
    return letters
