"""`xerosync replay` planning: ranges from offsets and times, offset moves, DLQ records and
their headers, filters, and what a dry run prints. Pure: no broker."""

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from prometheus_client import CollectorRegistry
from rich.console import Console

from shared.contracts.topics import Topics
from shared.dlq import DeadLetterPublisher, Refusal
from shared.metrics import dlq_counter
from xerosync.replay.plan import (
    REPLAY_ORIGIN_HEADER,
    DeadLetter,
    DlqFilter,
    GroupMember,
    GroupState,
    PartitionExtent,
    PlanError,
    RangeOptions,
    choose_mode,
    describe_moves,
    describe_ranges,
    describe_selection,
    forward_moves,
    members_refusal,
    parse_partition_offsets,
    parse_when,
    plan_moves,
    plan_ranges,
    replay_origin_headers,
    select_dead_letters,
    selection_json,
    target_partition,
    topic_spec,
)
from xerosync.replay.progress import RichProgress
from xerosync.replay.run import TopicReplay, consumer_groups, dead_letter, resolve_group

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EXTENTS = {
    0: PartitionExtent(0, 0, 120),
    1: PartitionExtent(1, 10, 40),  # offsets before 10 are gone (retention)
    2: PartitionExtent(2, 0, 0),  # empty
}


# ------------------------------------------------------------------ options


def test_partition_offsets_are_read_as_partition_colon_offset() -> None:
    assert parse_partition_offsets(["0:120", "2:7"], "--from-offset") == {0: 120, 2: 7}
    for wrong in (["120"], ["a:1"], ["0:-1"], ["0:1", "0:2"]):
        with pytest.raises(PlanError, match="--from-offset"):
            parse_partition_offsets(wrong, "--from-offset")


def test_times_need_an_offset_or_are_a_duration_ago() -> None:
    assert parse_when("2026-11-24T09:00:00+08:00", now=NOW) == datetime(
        2026, 11, 24, 1, 0, tzinfo=UTC
    )
    assert parse_when("2026-11-24T01:00:00Z", now=NOW) == datetime(2026, 11, 24, 1, tzinfo=UTC)
    assert parse_when("90m", now=NOW) == NOW - timedelta(minutes=90)
    assert parse_when("2d", now=NOW) == NOW - timedelta(days=2)
    with pytest.raises(PlanError, match="UTC offset"):
        parse_when("2026-11-24T09:00:00", now=NOW)
    with pytest.raises(PlanError, match="ISO 8601"):
        parse_when("yesterday", now=NOW)


def test_topics_are_named_without_their_prefix() -> None:
    assert topic_spec("bank.transactions.v1").name == "bank.transactions.v1"
    assert topic_spec("bank.transactions.v1.dlq").name == "bank.transactions.v1"
    with pytest.raises(PlanError, match=r"unknown topic .*bank\.accounts\.v1"):
        topic_spec("staging.bank.transactions.v1")


def test_contradictory_options_are_refused() -> None:
    with pytest.raises(PlanError, match="not both"):
        RangeOptions(from_offsets={0: 1}, from_time=NOW)
    with pytest.raises(PlanError, match="not both"):
        RangeOptions(to_offsets={0: 1}, to_time=NOW)
    with pytest.raises(PlanError, match="later than"):
        RangeOptions(from_time=NOW, to_time=NOW)
    with pytest.raises(PlanError, match="partition 3, which --partition leaves out"):
        RangeOptions(partitions=frozenset({0}), from_offsets={3: 0})
    with pytest.raises(PlanError, match="choose one"):
        choose_mode(republish=True, move_offsets=True)
    with pytest.raises(PlanError, match="needs --group"):
        TopicReplay("bank.transactions.v1", "move-offsets")
    with pytest.raises(PlanError, match="need --republish"):
        TopicReplay(
            "bank.transactions.v1", "move-offsets", RangeOptions(to_time=NOW), group="syncer"
        )
    with pytest.raises(PlanError, match="go with --move-offsets"):
        TopicReplay("bank.transactions.v1", "republish", group="syncer")


# ------------------------------------------------------------------ ranges


def test_by_default_every_partition_is_replayed_from_its_start_to_its_end() -> None:
    ranges = plan_ranges(RangeOptions(), EXTENTS)
    assert [(r.partition, r.start, r.end, r.size) for r in ranges] == [
        (0, 0, 120, 120),
        (1, 10, 40, 30),
        (2, 0, 0, 0),
    ]
    assert describe_ranges(ranges) == [
        "  partition 0: offsets 0..119 (120 records)",
        "  partition 1: offsets 10..39 (30 records)",
        "  partition 2: nothing (at offset 0)",
        "  total: 150 records",
    ]


def test_offsets_choose_the_partitions_and_are_kept_within_what_the_broker_holds() -> None:
    options = RangeOptions(from_offsets={0: 100, 1: 2}, to_offsets={0: 500})
    ranges = plan_ranges(options, EXTENTS)
    assert [(r.partition, r.start, r.end) for r in ranges] == [(0, 100, 120), (1, 10, 40)]
    assert ranges[0].notes == ("the partition ends at 120",)
    assert ranges[1].notes == ("offsets before 10 are no longer held; starts there",)
    assert describe_ranges(ranges)[1] == (
        "  partition 1: offsets 10..39 (30 records); offsets before 10 are no longer held; "
        "starts there"
    )
    # A --partition without an offset of its own starts at its log start.
    both = plan_ranges(RangeOptions(partitions=frozenset({0, 1}), from_offsets={0: 5}), EXTENTS)
    assert [(r.partition, r.start) for r in both] == [(0, 5), (1, 10)]
    with pytest.raises(PlanError, match=r"partition 7 does not exist; .* partitions 0-2"):
        plan_ranges(RangeOptions(partitions=frozenset({7})), EXTENTS)


def test_time_bounds_arrive_as_offsets_per_partition() -> None:
    options = RangeOptions(from_time=NOW - timedelta(hours=1), to_time=NOW)
    ranges = plan_ranges(
        options,
        EXTENTS,
        from_time_offsets={0: 60, 1: 40, 2: 0},
        to_time_offsets={0: 90, 1: 40, 2: 0},
    )
    assert [(r.partition, r.start, r.end, r.size) for r in ranges] == [
        (0, 60, 90, 30),
        (1, 40, 40, 0),
        (2, 0, 0, 0),
    ]
    with pytest.raises(PlanError, match="no offset was found for partition 0"):
        plan_ranges(options, EXTENTS, from_time_offsets={}, to_time_offsets={})


def test_an_end_before_the_start_is_an_empty_range() -> None:
    [scoped] = plan_ranges(RangeOptions(from_offsets={0: 50}, to_offsets={0: 20}), EXTENTS)
    assert (scoped.start, scoped.end, scoped.size) == (50, 50, 0)


# ------------------------------------------------------------------ moving offsets


def test_offsets_only_move_back() -> None:
    ranges = plan_ranges(RangeOptions(from_offsets={0: 100, 1: 30, 2: 0}), EXTENTS)
    moves = plan_moves(ranges, {0: 120, 1: 20, 2: None}, EXTENTS)
    assert [(m.partition, m.kind, m.redelivered) for m in moves] == [
        (0, "rewind", 20),
        (1, "forward", 0),
        (2, "none", 0),
    ]
    assert [m.partition for m in forward_moves(moves)] == [1]
    assert describe_moves(moves) == [
        "  partition 0: at 120 → 100 (20 records re-delivered)",
        "  partition 1: at 20 → 30: REFUSED, moving forward would skip 10 records the group "
        "has not processed",
        "  partition 2: nothing committed; already there, nothing to move",
        "  total: 20 records re-delivered",
    ]


def test_a_group_with_nothing_committed_reads_from_the_log_start() -> None:
    ranges = plan_ranges(RangeOptions(partitions=frozenset({1}), from_offsets={1: 25}), EXTENTS)
    [move] = plan_moves(ranges, {1: None}, EXTENTS)
    assert (move.position, move.kind) == (10, "forward"), "25 would skip offsets 10..24"


def test_the_refusal_names_the_members_and_says_what_to_do() -> None:
    state = GroupState(
        "staging.xerosync-syncer",
        "Stable",
        (GroupMember("aiokafka-1-abc", "xerosync-syncer", "/10.0.0.7"), GroupMember("m-2")),
    )
    message = members_refusal(state, session_timeout_ms=3000)
    assert message.startswith("refused: consumer group staging.xerosync-syncer has 2 members")
    assert "aiokafka-1-abc (client xerosync-syncer, /10.0.0.7)" in message
    assert "  - m-2" in message
    assert "3000 ms" in message
    assert "Tansu" in message
    assert "--join-group" in message


def test_groups_are_named_by_service_with_the_prefix() -> None:
    topics = Topics("staging.")
    spec = topic_spec("xero.connections.v1")
    assert consumer_groups(spec, topics) == [
        "staging.xerosync-scheduler",
        "staging.xerosync-syncer",
    ]
    assert resolve_group("syncer", spec, topics) == "staging.xerosync-syncer"
    assert resolve_group("ops-audit", spec, topics) == "ops-audit", "other ids as they are"
    with pytest.raises(PlanError, match="the connector does not consume"):
        resolve_group("connector", spec, topics)


# ------------------------------------------------------------------ dead letters


class RecordingBroker:
    """Stands in for FastStream's broker inside the DLQ publisher."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    async def publish(self, body: bytes, **options: Any) -> None:
        self.published.append({"body": body, **options})


def _record(
    *,
    topic: str = "staging.bank.transactions.v1",
    partition: int = 2,
    offset: int = 41,
    timestamp: int = 1_700_000_000_000,
    headers: list[tuple[str, bytes]] | None = None,
    value: bytes = b'{"type": "TransactionBooked"}',
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=timestamp,
        timestamp_type=0,
        key=b"acc-1",
        value=value,
        checksum=None,
        serialized_key_size=5,
        serialized_value_size=len(value),
        headers=headers or [],
    )


async def _dead_lettered(
    record: ConsumerRecord[bytes, bytes], reason: str, *, at: tuple[int, int]
) -> DeadLetter:
    """`record` through the project's DLQ publisher, then read back from the DLQ at `at`
    (partition, offset), headers as bytes as Kafka hands them over."""
    broker = RecordingBroker()
    publisher = DeadLetterPublisher(
        broker,  # type: ignore[arg-type]
        consumer="staging.xerosync-syncer",
        topic_prefix="staging.",
        counter=dlq_counter(CollectorRegistry()),
    )
    await publisher.publish([Refusal(record, reason, "validation")])
    (sent,) = broker.published
    return dead_letter(
        _record(
            topic=sent["topic"],
            partition=at[0],
            offset=at[1],
            timestamp=record.timestamp + 1000,
            value=sent["body"],
            headers=[(name, value.encode()) for name, value in sent["headers"].items()],
        )
    )


async def test_a_dead_letter_goes_back_with_its_own_headers_and_its_attempt_count() -> None:
    original = _record(headers=[("trace-id", b"t-1"), ("binary", b"\xff\xfe\x00")])
    letter = await _dead_lettered(original, "record is 3000 bytes; at most 2048", at=(0, 7))
    assert (letter.error_class, letter.attempt, letter.origin_partition) == ("validation", 1, 2)
    assert letter.consumer == "staging.xerosync-syncer"
    assert letter.origin == "staging.bank.transactions.v1:2:41"

    headers = letter.replay_headers()
    assert headers == [
        ("trace-id", b"t-1"),
        ("binary", b"\xff\xfe\x00"),  # restored from the DLQ's base64
        ("x-dlq-attempt", b"1"),
        (REPLAY_ORIGIN_HEADER, b"staging.bank.transactions.v1:2:41"),
    ]
    assert letter.value == original.value
    assert letter.key == original.key

    # Replayed (a new record at offset 90) and refused again: attempt 2, same origin.
    again = await _dead_lettered(
        _record(offset=90, headers=headers, value=letter.value or b""), "still", at=(0, 8)
    )
    assert again.attempt == 2
    assert again.origin == letter.origin, "the replay's origin header carries through"
    assert dict(again.replay_headers())["binary"] == b"\xff\xfe\x00"


def test_a_topic_replay_marks_where_its_records_came_from_once() -> None:
    assert replay_origin_headers([("a", b"1")], "t.bank.transactions.v1", 0, 5) == [
        ("a", b"1"),
        (REPLAY_ORIGIN_HEADER, b"t.bank.transactions.v1:0:5"),
    ]
    already = [(REPLAY_ORIGIN_HEADER, b"t.bank.transactions.v1:0:5")]
    assert replay_origin_headers(already, "t.bank.transactions.v1", 0, 99) == already


def _letter(
    offset: int,
    *,
    error: str = "amount: Field required",
    error_class: str = "validation",
    origin_offset: int | None = None,
    attempt: int = 1,
    consumer: str = "staging.xerosync-syncer",
    origin_partition: int = 1,
) -> DeadLetter:
    return DeadLetter(
        partition=0,
        offset=offset,
        timestamp=1_700_000_000_000 + offset,
        key=b"acc-1",
        value=b"{}",
        headers=(
            ("x-dlq-error", error.encode()),
            ("x-dlq-error-class", error_class.encode()),
            ("x-dlq-consumer", consumer.encode()),
            ("x-dlq-attempt", str(attempt).encode()),
            ("x-dlq-origin-topic", b"staging.bank.transactions.v1"),
            ("x-dlq-origin-partition", str(origin_partition).encode()),
            (
                "x-dlq-origin-offset",
                str(offset if origin_offset is None else origin_offset).encode(),
            ),
        ),
    )


def test_only_the_latest_attempt_of_a_record_is_replayed() -> None:
    first = _letter(1, origin_offset=5)
    retried = DeadLetter(
        0,
        9,
        first.timestamp + 50,
        first.key,
        first.value,
        (
            *_letter(9, error="record is 3000 bytes", attempt=2).headers[:4],
            (REPLAY_ORIGIN_HEADER, b"staging.bank.transactions.v1:1:5"),
            ("x-dlq-origin-topic", b"staging.bank.transactions.v1"),
            ("x-dlq-origin-partition", b"1"),
            ("x-dlq-origin-offset", b"77"),  # where the replayed copy failed
        ),
    )
    other = _letter(3)
    selection = select_dead_letters([first, retried, other], DlqFilter())
    assert [(d.offset, d.attempt) for d in selection.chosen] == [(3, 1), (9, 2)]
    assert (selection.total, selection.superseded) == (3, 1)


def test_dead_letters_are_filtered_by_class_reason_and_consumer_and_limited() -> None:
    letters = [
        _letter(1, error="record is 3000 bytes; events may be at most 2048 bytes"),
        _letter(2, error="transaction_id 'x' was already ingested", error_class="conflict"),
        _letter(3, error="Record IS 9000 bytes; events may be at most 2048 bytes"),
        _letter(4, error="record is 5000 bytes", consumer="staging.xerosync-scheduler"),
        _letter(5, error="database refused", error_class="storage"),
    ]
    by_class = select_dead_letters(letters, DlqFilter(error_class="validation"))
    assert [d.offset for d in by_class.chosen] == [1, 3, 4]
    assert by_class.filtered_out == 2
    by_text = select_dead_letters(letters, DlqFilter(error_contains="RECORD is"))
    assert [d.offset for d in by_text.chosen] == [1, 3, 4], "case-insensitive"
    by_consumer = select_dead_letters(letters, DlqFilter(consumer="staging.xerosync-scheduler"))
    assert [d.offset for d in by_consumer.chosen] == [4]
    limited = select_dead_letters(letters, DlqFilter(error_class="validation", limit=2))
    assert [d.offset for d in limited.chosen] == [1, 3], "oldest first"
    assert limited.limited_out == 1
    with pytest.raises(PlanError, match="one of validation, conflict, storage"):
        DlqFilter(error_class="timeout")


def test_the_dry_run_counts_dead_letters_by_class_and_shows_the_first_reasons() -> None:
    letters = [
        *(_letter(n, error=f"reason {n % 7}") for n in range(20)),
        _letter(30, error="earlier", origin_partition=0),
        _letter(
            31,
            error="clash",
            error_class="conflict",
            origin_offset=30,
            origin_partition=0,
            attempt=2,
        ),
    ]
    selection = select_dead_letters(letters, DlqFilter())
    assert describe_selection(selection) == [
        "  dead letters: 22; to replay: 21 (skipped: 1 earlier attempt of records that "
        "failed again)",
        "  to partition 0: 1 record",
        "  to partition 1: 20 records",
        "  by error class: conflict 1, validation 20",
        "  reasons:",
        "       3  reason 0",
        "       3  reason 1",
        "       3  reason 2",
        "       3  reason 3",
        "       3  reason 4",
        "    … and 3 other reasons",
    ]
    summary = selection_json(selection)
    assert summary["by_error_class"] == {"conflict": 1, "validation": 20}
    assert summary["by_partition"] == {"0": 1, "1": 20}
    assert summary["reasons"][0] == {"reason": "reason 0", "count": 3}


def test_a_dead_letter_returns_to_its_partition_while_the_topic_has_it() -> None:
    letter = _letter(1, origin_partition=4)
    assert target_partition(letter, 6) == 4
    assert target_partition(letter, 3) is None, "its key chooses"


# ------------------------------------------------------------------ progress


def _console(*, terminal: bool) -> tuple[Console, io.StringIO]:
    sink = io.StringIO()
    return Console(file=sink, force_terminal=terminal, width=100), sink


def test_the_progress_bar_shows_on_long_runs_or_on_a_terminal() -> None:
    console, sink = _console(terminal=False)
    quiet = RichProgress(threshold=1000, console=console)
    quiet.begin("re-publishing", 10)
    quiet.advance(10)
    quiet.end()
    assert sink.getvalue() == ""

    console, sink = _console(terminal=False)
    long_run = RichProgress(threshold=1000, console=console)
    long_run.begin("re-publishing", 5000)
    long_run.advance(5000)
    long_run.end()
    assert "re-publishing" in sink.getvalue()
    assert "5000/5000" in sink.getvalue()

    console, sink = _console(terminal=True)
    on_terminal = RichProgress(threshold=1000, console=console)
    on_terminal.begin("reading", 3)
    on_terminal.end()
    assert "reading" in sink.getvalue()
