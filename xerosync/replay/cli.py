"""`xerosync replay topic|dlq`: the commands. A dry run unless `--apply` is given.

Exit status: 0 done (or planned), 1 refused or the broker failed (nothing changed by a
refusal), 2 wrong options.
"""

# The commands import their implementation when run (aiokafka, FastStream through
# shared.dlq), so `xerosync --help` and the services start without it.
# ruff: noqa: PLC0415

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from shared.settings import CommonSettings

replay_app = typer.Typer(
    help="Re-deliver a topic range or a DLQ to the topic's consumers. Every command is a "
    "dry run that prints what it would do, until --apply is given.",
    no_args_is_help=True,
)

TopicArgument = Annotated[
    str,
    typer.Argument(
        help="The topic's name without TOPIC_PREFIX, e.g. bank.transactions.v1 (the prefix "
        "of this environment is added)."
    ),
]
Apply = Annotated[
    bool, typer.Option("--apply", "--execute", help="Do it; without this, a dry run.")
]
JsonOutput = Annotated[
    bool, typer.Option("--json", help="End with one JSON line: the plan and what was done.")
]
PROGRESS_THRESHOLD = 1000
"""Records from which a progress bar is shown on a non-terminal stderr too."""


@replay_app.command(
    "topic",
    epilog="Ranges are half-open: --from-offset 0:100 --to-offset 0:200 replays offsets "
    "100..199 of partition 0. Examples:  xerosync replay topic bank.transactions.v1 "
    "--from-time 2026-11-24T09:00:00+08:00 --republish  |  xerosync replay topic "
    "bank.transactions.v1 --move-offsets --group syncer --from-time 6h --apply",
)
def topic_command(
    topic: TopicArgument,
    *,
    republish: Annotated[
        bool,
        typer.Option(
            "--republish",
            help="Append a copy of each record in the range to the same partition (every "
            "group reading the topic sees it again).",
        ),
    ] = False,
    move_offsets: Annotated[
        bool,
        typer.Option(
            "--move-offsets",
            help="Move one consumer group's committed offsets back to the range's start "
            "(only that group re-reads, to the end). Its consumers must be stopped.",
        ),
    ] = False,
    group: Annotated[
        str | None,
        typer.Option(
            help="With --move-offsets: connector, scheduler or syncer (that service's group, "
            "TOPIC_PREFIX included), or any other group id as it is."
        ),
    ] = None,
    join_group: Annotated[
        bool,
        typer.Option(
            "--join-group",
            help="With --move-offsets, when the group still lists members that have "
            "stopped: join it (expired members are dropped) and commit only as its sole "
            "member. Needed on the embedded broker, which lists stopped members until "
            "another joins.",
        ),
    ] = False,
    partition: Annotated[
        list[int] | None,
        typer.Option(help="Only this partition (repeat for several); default: all."),
    ] = None,
    from_offset: Annotated[
        list[str] | None,
        typer.Option(help="PARTITION:OFFSET to start at (repeatable); default: the start."),
    ] = None,
    from_time: Annotated[
        str | None,
        typer.Option(
            help="Start at the first record stamped at or after this time: ISO 8601 with an "
            "offset, or a duration ago (90m, 6h, 2d). Every partition in scope."
        ),
    ] = None,
    to_offset: Annotated[
        list[str] | None,
        typer.Option(help="PARTITION:OFFSET to stop before (repeatable); --republish only."),
    ] = None,
    to_time: Annotated[
        str | None,
        typer.Option(help="Stop before the first record stamped at or after this time."),
    ] = None,
    apply: Apply = False,
    json_output: JsonOutput = False,
) -> None:
    """Re-deliver a range of TOPIC, by re-publishing it or by moving a group's offsets."""
    from datetime import UTC, datetime

    from xerosync.replay.plan import (
        PlanError,
        RangeOptions,
        choose_mode,
        parse_partition_offsets,
        parse_when,
    )
    from xerosync.replay.run import TopicReplay, replay_topic

    now = datetime.now(UTC)
    try:
        request = TopicReplay(
            topic=topic,
            mode=choose_mode(republish=republish, move_offsets=move_offsets),
            range=RangeOptions(
                partitions=frozenset(partition or ()),
                from_offsets=parse_partition_offsets(from_offset or (), "--from-offset"),
                to_offsets=parse_partition_offsets(to_offset or (), "--to-offset"),
                from_time=parse_when(from_time, now=now) if from_time else None,
                to_time=parse_when(to_time, now=now) if to_time else None,
            ),
            group=group,
            join_group=join_group,
            apply=apply,
        )
    except PlanError as error:
        _fail(str(error), code=2, json_output=json_output)
    _run(
        lambda out, progress: replay_topic(_settings(), request, out=out, progress=progress),
        json_output=json_output,
    )


@replay_app.command(
    "dlq",
    epilog="Examples:  xerosync replay dlq bank.transactions.v1  |  xerosync replay dlq "
    "bank.transactions.v1 --error-class validation --error-contains 'at most' --apply",
)
def dlq_command(
    topic: TopicArgument,
    *,
    error_class: Annotated[
        str | None,
        typer.Option(help="Only records refused with this class: validation, conflict, storage."),
    ] = None,
    error_contains: Annotated[
        str | None,
        typer.Option(help="Only records whose reason (x-dlq-error) contains this text."),
    ] = None,
    consumer: Annotated[
        str | None,
        typer.Option(help="Only records this consumer group refused (x-dlq-consumer)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many records, oldest first.")
    ] = None,
    apply: Apply = False,
    json_output: JsonOutput = False,
) -> None:
    """Re-publish TOPIC's dead letters to TOPIC, once the cause of their failure is fixed.

    Each failed record goes back with its original bytes, key and headers, to the partition
    it failed on; of a record that failed several times, only its latest attempt. The
    DLQ's headers are dropped except the attempt count, so a record that fails again is
    dead-lettered with attempt + 1. Replaying twice is safe: consumers are idempotent.
    """
    from xerosync.replay.plan import DlqFilter, PlanError
    from xerosync.replay.run import DlqReplay, replay_dlq

    try:
        request = DlqReplay(
            topic=topic,
            filter=DlqFilter(
                error_class=error_class,
                error_contains=error_contains,
                consumer=consumer,
                limit=limit,
            ),
            apply=apply,
        )
    except PlanError as error:
        _fail(str(error), code=2, json_output=json_output)
    _run(
        lambda out, progress: replay_dlq(_settings(), request, out=out, progress=progress),
        json_output=json_output,
    )


def _settings() -> "CommonSettings":
    from shared.settings import CommonSettings
    from xerosync.cli import load_settings

    return load_settings(CommonSettings)


def _run(
    replay: Callable[[Callable[[str], None], Any], Coroutine[Any, Any, dict[str, Any]]],
    *,
    json_output: bool,
) -> None:
    from shared.errors import BrokerUnavailable
    from xerosync.replay.kafka import ReplayRefused
    from xerosync.replay.plan import PlanError
    from xerosync.replay.progress import RichProgress

    progress = None if json_output else RichProgress(threshold=PROGRESS_THRESHOLD)
    try:
        summary = asyncio.run(replay(typer.echo, progress))
    except PlanError as error:
        _fail(str(error), code=2, json_output=json_output)
    except ReplayRefused as error:
        _fail(str(error), code=1, json_output=json_output)
    except BrokerUnavailable as error:
        _fail(str(error), code=1, json_output=json_output)
    if json_output:
        sys.stdout.write(json.dumps(summary) + "\n")


def _fail(message: str, *, code: int, json_output: bool) -> NoReturn:
    typer.echo(message if message.startswith("refused") else f"error: {message}", err=True)
    if json_output:
        sys.stdout.write(json.dumps({"error": message, "exit_code": code}) + "\n")
    raise typer.Exit(code)
