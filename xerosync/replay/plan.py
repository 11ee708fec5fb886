"""What a replay would re-deliver, decided from what the broker holds. Pure: no I/O.

The Kafka side (`xerosync.replay.kafka`) measures partitions, reads records and commits;
this module turns those facts and the operator's options into a plan, and a plan into the
lines and the JSON a dry run prints.

Ranges are half-open, per partition: `start <= offset < end`. `--to-offset 0:120` stops
before offset 120, and `--to-time T` before the first record stamped at or after T.
"""

import base64
import binascii
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.contracts.topics import ALL_TOPICS, DLQ_SUFFIX, TopicSpec
from shared.dlq import ATTEMPT_HEADER
from shared.settings import parse_duration

REPLAY_ORIGIN_HEADER = "x-replay-origin"
"""`topic:partition:offset` of the record a replay first re-published. Kept through every
later failure and replay, so the attempts of one record are known to be one record."""
DLQ_HEADER_PREFIX = "x-dlq-"
DLQ_B64_PREFIX = "x-dlq-b64-"
"""The DLQ keeps a header whose value is not UTF-8 as `x-dlq-b64-<name>`: base64 of the
original bytes (shared.dlq)."""
ERROR_CLASSES = ("validation", "conflict", "storage")
REASONS_SHOWN = 5

Mode = Literal["republish", "move-offsets"]


class PlanError(ValueError):
    """The options cannot make a replay; the message says which and why."""


# ------------------------------------------------------------------ options


def choose_mode(*, republish: bool, move_offsets: bool) -> Mode:
    if republish == move_offsets:
        raise PlanError("choose one: --republish, or --move-offsets --group GROUP")
    return "republish" if republish else "move-offsets"


def topic_spec(name: str) -> TopicSpec:
    """The contract topic named `name` (its base name, without TOPIC_PREFIX; a `.dlq`
    suffix is ignored)."""
    base = name.removesuffix(DLQ_SUFFIX)
    for spec in ALL_TOPICS:
        if spec.name == base:
            return spec
    known = ", ".join(spec.name for spec in ALL_TOPICS)
    raise PlanError(f"unknown topic {name!r}; the topics are {known} (without TOPIC_PREFIX)")


def parse_partition_offsets(values: Iterable[str], option: str) -> dict[int, int]:
    """`["0:120", "2:7"]` → `{0: 120, 2: 7}`."""
    offsets: dict[int, int] = {}
    for value in values:
        partition, sep, offset = value.partition(":")
        if not (sep and partition.strip().isdigit() and offset.strip().isdigit()):
            raise PlanError(f"{option} {value!r}: expected PARTITION:OFFSET, e.g. 0:120")
        number = int(partition)
        if number in offsets:
            raise PlanError(f"{option} names partition {number} twice")
        offsets[number] = int(offset)
    return offsets


def parse_when(value: str, *, now: datetime) -> datetime:
    """An ISO 8601 time with a UTC offset (`2026-11-24T09:00:00+08:00`, `…Z`), or a
    duration before `now` (`90m`, `2h`, `1d`)."""
    ago = parse_duration(value)
    if isinstance(ago, timedelta):
        return now - ago
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise PlanError(
            f"{value!r}: expected an ISO 8601 time with an offset "
            "(2026-11-24T09:00:00+08:00) or a duration ago (90m, 2h, 1d)"
        ) from None
    if when.tzinfo is None:
        raise PlanError(f"{value!r}: give the time's UTC offset (e.g. +08:00 or Z)")
    return when


@dataclass(frozen=True)
class RangeOptions:
    """Which part of a topic to replay, as the operator gave it."""

    partitions: frozenset[int] = frozenset()
    """Empty: the partitions the offsets name, or else all of them."""
    from_offsets: Mapping[int, int] = field(default_factory=dict)
    to_offsets: Mapping[int, int] = field(default_factory=dict)
    from_time: datetime | None = None
    to_time: datetime | None = None

    def __post_init__(self) -> None:
        if self.from_offsets and self.from_time is not None:
            raise PlanError("give --from-offset or --from-time, not both")
        if self.to_offsets and self.to_time is not None:
            raise PlanError("give --to-offset or --to-time, not both")
        if self.from_time and self.to_time and self.to_time <= self.from_time:
            raise PlanError("--to-time must be later than --from-time")
        if self.partitions:
            for option, offsets in (
                ("--from-offset", self.from_offsets),
                ("--to-offset", self.to_offsets),
            ):
                if outside := sorted(set(offsets) - self.partitions):
                    raise PlanError(
                        f"{option} names partition {outside[0]}, which --partition leaves out"
                    )

    @property
    def bounded_above(self) -> bool:
        return bool(self.to_offsets) or self.to_time is not None

    def scope(self, available: Iterable[int]) -> list[int]:
        """The partitions this replay covers, of those the topic has."""
        existing = sorted(available)
        wanted = self.partitions or frozenset(self.from_offsets) | frozenset(self.to_offsets)
        if not wanted:
            return existing
        if missing := sorted(wanted - set(existing)):
            raise PlanError(
                f"partition {missing[0]} does not exist; the topic has partitions "
                f"{_partition_list(existing)}"
            )
        return sorted(wanted)


# ------------------------------------------------------------------ ranges


@dataclass(frozen=True)
class PartitionExtent:
    """What a partition holds: offsets `start <= offset < end`."""

    partition: int
    start: int
    """The log start: the first offset still held."""
    end: int
    """The offset the next record will get (exact; see kafka.partition_extents)."""


@dataclass(frozen=True)
class PartitionRange:
    partition: int
    start: int
    end: int
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Offsets in the range: the records, unless compaction removed some."""
        return max(0, self.end - self.start)


def plan_ranges(
    options: RangeOptions,
    extents: Mapping[int, PartitionExtent],
    *,
    from_time_offsets: Mapping[int, int] | None = None,
    to_time_offsets: Mapping[int, int] | None = None,
) -> list[PartitionRange]:
    """The range to replay on each partition in scope. Time bounds arrive already turned
    into offsets (the first offset stamped at or after the time), per partition."""
    ranges = []
    for partition in options.scope(extents):
        extent = extents[partition]
        notes: list[str] = []
        start = extent.start
        if partition in options.from_offsets:
            start = options.from_offsets[partition]
        elif options.from_time is not None:
            start = _time_offset(from_time_offsets, partition, "--from-time")
        if start < extent.start:
            notes.append(f"offsets before {extent.start} are no longer held; starts there")
            start = extent.start
        end = extent.end
        if partition in options.to_offsets:
            end = options.to_offsets[partition]
        elif options.to_time is not None:
            end = _time_offset(to_time_offsets, partition, "--to-time")
        if end > extent.end:
            notes.append(f"the partition ends at {extent.end}")
            end = extent.end
        end = max(end, start)
        ranges.append(PartitionRange(partition, start, end, tuple(notes)))
    return ranges


def _time_offset(offsets: Mapping[int, int] | None, partition: int, option: str) -> int:
    if offsets is None or partition not in offsets:
        raise PlanError(f"{option}: no offset was found for partition {partition}")
    return offsets[partition]


# ------------------------------------------------------------------ moving offsets


@dataclass(frozen=True)
class OffsetMove:
    partition: int
    committed: int | None
    """The group's committed offset; None: nothing committed (it reads from the start)."""
    position: int
    """Where the group would resume: its committed offset, else the log start."""
    target: int

    @property
    def kind(self) -> Literal["rewind", "none", "forward"]:
        if self.target < self.position:
            return "rewind"
        return "none" if self.target == self.position else "forward"

    @property
    def redelivered(self) -> int:
        return max(0, self.position - self.target)


def plan_moves(
    ranges: Sequence[PartitionRange],
    committed: Mapping[int, int | None],
    extents: Mapping[int, PartitionExtent],
) -> list[OffsetMove]:
    """Each partition's move of the group's offset to its range's start."""
    moves = []
    for scoped in ranges:
        offset = committed.get(scoped.partition)
        position = offset if offset is not None else extents[scoped.partition].start
        moves.append(OffsetMove(scoped.partition, offset, position, scoped.start))
    return moves


def forward_moves(moves: Sequence[OffsetMove]) -> list[OffsetMove]:
    """Moves that would skip records the group has not processed yet: never made."""
    return [move for move in moves if move.kind == "forward"]


@dataclass(frozen=True)
class GroupMember:
    member_id: str
    client_id: str = ""
    client_host: str = ""

    def describe(self) -> str:
        found = [f"client {self.client_id}" if self.client_id else "", self.client_host]
        details = ", ".join(part for part in found if part)
        return f"{self.member_id} ({details})" if details else self.member_id


@dataclass(frozen=True)
class GroupState:
    group: str
    state: str
    """The coordinator's word: Empty, Stable, PreparingRebalance, Dead, …"""
    members: tuple[GroupMember, ...] = ()


def members_refusal(state: GroupState, *, session_timeout_ms: int) -> str:
    """Why offsets are not moved while the group lists members, and what to do."""
    listed = "\n".join(f"  - {member.describe()}" for member in state.members)
    count = len(state.members)
    return (
        f"refused: consumer group {state.group} has {count} member{'s' * (count != 1)} "
        f"({state.state}):\n{listed}\n"
        "Moving its offsets now would race them. Stop every consumer of the group, then "
        "run this again.\n"
        "A consumer that stopped stays listed until its session expires "
        f"(KAFKA_SESSION_TIMEOUT_MS, {session_timeout_ms} ms here). The embedded broker "
        "(Tansu) ignores LeaveGroup and drops an expired member only when another member "
        "heartbeats or joins, so once every consumer stopped, the last ones stay listed. "
        "If every member listed is stopped, add --join-group: replay then joins the group, "
        "which drops the expired members, and moves the offsets only if it is the group's "
        "sole member (a live member would be rebalanced once, and nothing is committed)."
    )


# ------------------------------------------------------------------ dead letters


@dataclass(frozen=True)
class DeadLetter:
    """One record of a DLQ, with what its headers say about its failure."""

    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None

    @property
    def error(self) -> str:
        return self.header("x-dlq-error") or "(no reason recorded)"

    @property
    def error_class(self) -> str:
        return self.header("x-dlq-error-class") or "unknown"

    @property
    def consumer(self) -> str:
        return self.header("x-dlq-consumer") or ""

    @property
    def attempt(self) -> int:
        value = self.header(ATTEMPT_HEADER) or ""
        return int(value) if value.isdigit() else 1

    @property
    def origin_partition(self) -> int | None:
        value = self.header("x-dlq-origin-partition") or ""
        return int(value) if value.isdigit() else None

    @property
    def origin(self) -> str:
        """Identity of the record that failed: where a replay first took it from, else
        where it failed; a record without either is only itself."""
        if first := self.header(REPLAY_ORIGIN_HEADER):
            return first
        topic = self.header("x-dlq-origin-topic")
        partition = self.header("x-dlq-origin-partition")
        offset = self.header("x-dlq-origin-offset")
        if topic and partition is not None and offset is not None:
            return f"{topic}:{partition}:{offset}"
        return f"dlq:{self.partition}:{self.offset}"

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The original headers (binary ones restored), without the DLQ's, except the
        attempt count: a record that fails again is dead-lettered with attempt + 1."""
        headers: list[tuple[str, bytes]] = []
        for name, value in self.headers:
            if name.startswith(DLQ_B64_PREFIX):
                headers.append((name.removeprefix(DLQ_B64_PREFIX), _unbase64(value)))
            elif name == ATTEMPT_HEADER or not (
                name.startswith(DLQ_HEADER_PREFIX) or name == REPLAY_ORIGIN_HEADER
            ):
                headers.append((name, value))
        headers.append((REPLAY_ORIGIN_HEADER, self.origin.encode()))
        return headers


def _unbase64(value: bytes) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value  # not ours after all: pass it on as it is


def replay_origin_headers(
    headers: Iterable[tuple[str, bytes]], topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """A topic record's headers for its re-publication: unchanged, plus where it was first
    taken from (kept if the record is itself a replay)."""
    kept = list(headers)
    if not any(name == REPLAY_ORIGIN_HEADER for name, _ in kept):
        kept.append((REPLAY_ORIGIN_HEADER, f"{topic}:{partition}:{offset}".encode()))
    return kept


@dataclass(frozen=True)
class DlqFilter:
    error_class: str | None = None
    error_contains: str | None = None
    """Case-insensitive substring of the reason (`x-dlq-error`)."""
    consumer: str | None = None
    """The consumer group that refused it (`x-dlq-consumer`)."""
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.error_class is not None and self.error_class not in ERROR_CLASSES:
            raise PlanError(
                f"--error-class {self.error_class!r}: one of {', '.join(ERROR_CLASSES)}"
            )
        if self.limit is not None and self.limit < 1:
            raise PlanError("--limit must be at least 1")

    def matches(self, letter: DeadLetter) -> bool:
        if self.error_class is not None and letter.error_class != self.error_class:
            return False
        if self.consumer is not None and letter.consumer != self.consumer:
            return False
        return not (
            self.error_contains is not None
            and self.error_contains.casefold() not in letter.error.casefold()
        )

    def describe(self) -> str:
        parts = [
            f"error class {self.error_class}" if self.error_class else "",
            f"reason containing {self.error_contains!r}" if self.error_contains else "",
            f"refused by {self.consumer}" if self.consumer else "",
            f"at most {self.limit}" if self.limit else "",
        ]
        return ", ".join(part for part in parts if part) or "all"


@dataclass(frozen=True)
class DlqSelection:
    chosen: list[DeadLetter]
    """Oldest first; each the latest attempt of its record."""
    total: int
    superseded: int
    """Earlier attempts of a record that failed again later: replaying the latest is enough."""
    filtered_out: int
    limited_out: int


def select_dead_letters(letters: Iterable[DeadLetter], wanted: DlqFilter) -> DlqSelection:
    """The latest attempt of each failed record, those the filter takes, oldest first."""
    every = list(letters)
    latest: dict[str, DeadLetter] = {}
    for letter in every:
        kept = latest.get(letter.origin)
        if kept is None or _recency(letter) > _recency(kept):
            latest[letter.origin] = letter
    candidates = sorted(latest.values(), key=lambda d: (d.timestamp, d.partition, d.offset))
    matching = [letter for letter in candidates if wanted.matches(letter)]
    chosen = matching[: wanted.limit] if wanted.limit is not None else matching
    return DlqSelection(
        chosen=chosen,
        total=len(every),
        superseded=len(every) - len(candidates),
        filtered_out=len(candidates) - len(matching),
        limited_out=len(matching) - len(chosen),
    )


def _recency(letter: DeadLetter) -> tuple[int, int, int, int]:
    return (letter.attempt, letter.timestamp, letter.partition, letter.offset)


def target_partition(letter: DeadLetter, partitions: int) -> int | None:
    """The partition the record failed on, if the topic still has it; None lets its key
    choose (the producer's default partitioner)."""
    origin = letter.origin_partition
    return origin if origin is not None and origin < partitions else None


# ------------------------------------------------------------------ describing a plan


def describe_ranges(ranges: Sequence[PartitionRange]) -> list[str]:
    lines = []
    for scoped in ranges:
        what = (
            f"offsets {scoped.start}..{scoped.end - 1} ({records(scoped.size)})"
            if scoped.size
            else f"nothing (at offset {scoped.start})"
        )
        lines.append(_with_notes(f"  partition {scoped.partition}: {what}", scoped.notes))
    lines.append(f"  total: {records(sum(r.size for r in ranges))}")
    return lines


def describe_moves(moves: Sequence[OffsetMove]) -> list[str]:
    lines = []
    for move in moves:
        committed = "nothing committed" if move.committed is None else f"at {move.committed}"
        if move.kind == "rewind":
            what = f"{committed} → {move.target} ({records(move.redelivered)} re-delivered)"
        elif move.kind == "none":
            what = f"{committed}; already there, nothing to move"
        else:
            what = (
                f"{committed} → {move.target}: REFUSED, moving forward would skip "
                f"{records(move.target - move.position)} the group has not processed"
            )
        lines.append(f"  partition {move.partition}: {what}")
    lines.append(f"  total: {records(sum(m.redelivered for m in moves))} re-delivered")
    return lines


def describe_group(state: GroupState) -> str:
    if not state.members:
        return f"  group {state.group}: {state.state}, no members"
    members = ", ".join(member.describe() for member in state.members)
    return f"  group {state.group}: {state.state}, {len(state.members)} listed: {members}"


def describe_selection(selection: DlqSelection, *, shown: int = REASONS_SHOWN) -> list[str]:
    chosen = selection.chosen
    lines = [
        f"  dead letters: {selection.total}; to replay: {len(chosen)}" + _skipped(selection),
    ]
    by_partition = Counter(letter.origin_partition for letter in chosen)
    for partition in sorted(by_partition, key=lambda p: -1 if p is None else p):
        where = "by key" if partition is None else f"to partition {partition}"
        lines.append(f"  {where}: {records(by_partition[partition])}")
    classes = Counter(letter.error_class for letter in chosen)
    if classes:
        counted = ", ".join(f"{name} {count}" for name, count in sorted(classes.items()))
        lines.append(f"  by error class: {counted}")
    reasons = first_reasons(chosen, shown)
    if reasons:
        lines.append("  reasons:")
        lines.extend(f"    {count:>4}  {reason}" for reason, count in reasons)
        if (more := len({letter.error for letter in chosen}) - len(reasons)) > 0:
            lines.append(f"    … and {more} other reason{'s' * (more != 1)}")
    return lines


def first_reasons(letters: Sequence[DeadLetter], shown: int) -> list[tuple[str, int]]:
    """The first `shown` distinct reasons, in the order they first failed, with counts."""
    counts = Counter(letter.error for letter in letters)
    return [(reason, counts[reason]) for reason in list(counts)[:shown]]


def _skipped(selection: DlqSelection) -> str:
    parts = [
        f"{selection.superseded} earlier attempt{'s' * (selection.superseded != 1)} of "
        "records that failed again"
        if selection.superseded
        else "",
        f"{selection.filtered_out} not matching the filter" if selection.filtered_out else "",
        f"{selection.limited_out} beyond --limit" if selection.limited_out else "",
    ]
    skipped = "; ".join(part for part in parts if part)
    return f" (skipped: {skipped})" if skipped else ""


def records(count: int) -> str:
    return f"{count:,} record{'s' * (count != 1)}"


def _with_notes(line: str, notes: Sequence[str]) -> str:
    return f"{line}; {'; '.join(notes)}" if notes else line


def _partition_list(partitions: Sequence[int]) -> str:
    if partitions and list(partitions) == list(range(partitions[0], partitions[-1] + 1)):
        return f"{partitions[0]}-{partitions[-1]}" if len(partitions) > 1 else str(partitions[0])
    return ", ".join(map(str, partitions))


# ------------------------------------------------------------------ JSON


def ranges_json(ranges: Sequence[PartitionRange]) -> list[dict[str, Any]]:
    return [
        {
            "partition": r.partition,
            "from": r.start,
            "to": r.end,
            "records": r.size,
            "notes": list(r.notes),
        }
        for r in ranges
    ]


def moves_json(moves: Sequence[OffsetMove]) -> list[dict[str, Any]]:
    return [
        {
            "partition": m.partition,
            "committed": m.committed,
            "target": m.target,
            "kind": m.kind,
            "redelivered": m.redelivered,
        }
        for m in moves
    ]


def group_json(state: GroupState) -> dict[str, Any]:
    return {
        "group": state.group,
        "state": state.state,
        "members": [
            {"member_id": m.member_id, "client_id": m.client_id, "client_host": m.client_host}
            for m in state.members
        ],
    }


def selection_json(selection: DlqSelection) -> dict[str, Any]:
    chosen = selection.chosen
    by_partition = Counter(letter.origin_partition for letter in chosen)
    return {
        "dead_letters": selection.total,
        "selected": len(chosen),
        "superseded": selection.superseded,
        "filtered_out": selection.filtered_out,
        "limited_out": selection.limited_out,
        "by_error_class": dict(sorted(Counter(d.error_class for d in chosen).items())),
        "by_partition": {
            ("key" if p is None else str(p)): by_partition[p]
            for p in sorted(by_partition, key=lambda p: -1 if p is None else p)
        },
        "reasons": [
            {"reason": reason, "count": count}
            for reason, count in first_reasons(chosen, REASONS_SHOWN)
        ],
    }


def utc_iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat() if when is not None else None
