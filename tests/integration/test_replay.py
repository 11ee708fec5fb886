"""`xerosync replay` against the real embedded broker and PostgreSQL: the syncer's and the
connector's real apps with the Xero sandbox in-process (tests/integration/syncer_harness.py).

A replay is safe by construction (DESIGN §3): re-delivered transactions are ingested as
duplicates and nothing already in Xero is posted again. These tests replay for real and
count what reached the sandbox.
"""

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaProducer

from services.syncer.config import CONSUMER_GROUP
from shared.contracts.bank import TransactionBooked
from shared.contracts.topics import BANK_TRANSACTIONS
from shared.contracts.xero import SyncCompleted
from shared.kafka import client_options
from shared.settings import CommonSettings
from tests.conftest import Env
from tests.helpers import booked, eventually, ledger, read_topic
from tests.integration.conftest import InProcessService, RunSyncer
from tests.integration.syncer_harness import Connected, SyncerHarness, running_syncer
from xero_sandbox.state import Organisation
from xerosync.producer import EventWriter
from xerosync.replay.kafka import ReplayRefused, committed_offsets
from xerosync.replay.plan import DlqFilter, RangeOptions
from xerosync.replay.run import DlqReplay, TopicReplay, replay_dlq, replay_topic

INGESTED = "xerosync_transactions_ingested_total"
TODAY = datetime.now(UTC).date()
START = (TODAY - timedelta(days=20)).isoformat()
FROM = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
TRANSACTIONS = BANK_TRANSACTIONS.name
ACCOUNTS = ("acc-0", "acc-1", "acc-5")
"""Keys that hash to partitions 2, 0 and 1 of the tests' three."""


def replay_settings(env: Env) -> CommonSettings:
    """What `xerosync replay` reads from the environment (TOPIC_PREFIX, KAFKA_*)."""
    return CommonSettings(topic_prefix=env.topics.prefix, kafka=env.kafka)


def held_lines(organisation: Organisation) -> list[str]:
    """The transaction id of every statement line the organisation holds, sorted."""
    return sorted(
        line.transaction_id or "(a line without our id)"
        for statement in organisation.statements.values()
        for line in statement.lines
    )


async def counts(syncer: InProcessService) -> dict[str, float]:
    metrics = await syncer.metrics()
    return {
        result: metrics.get((INGESTED, (("result", result),)), 0.0)
        for result in ("new", "duplicate", "invalid")
    }


async def counted(syncer: InProcessService, **wanted: float) -> dict[str, float]:
    """The syncer's ingest counts once they reach `wanted` (exactly, checked after)."""
    found: dict[str, float] = await eventually(
        lambda: counts(syncer),
        until=lambda c: all(c[name] >= value for name, value in wanted.items()),
        what=f"ingest counts {wanted}",
    )
    assert {name: found[name] for name in wanted} == wanted, found
    return found


async def synced(harness: SyncerHarness, connected: Connected) -> SyncCompleted:
    result = await harness.sync(connected)
    assert isinstance(result, SyncCompleted), result
    assert (result.failed, result.remaining) == (0, 0), result
    return result


async def test_replaying_transactions_by_republishing_or_moving_offsets_posts_nothing_twice(
    env: Env,
) -> None:
    settings = replay_settings(env)
    group = env.topics.group(CONSUMER_GROUP)
    topic = env.topics.name(BANK_TRANSACTIONS)
    async with running_syncer(env) as harness:
        organisation = harness.connector.organisation(
            name="Replay Trading", base_currency="HKD", currencies=["USD"]
        )
        events = ledger("acc-hkd", 30, entity="ent-1", currency="HKD", start=FROM) + ledger(
            "acc-usd", 12, entity="ent-1", currency="USD", start=FROM, opening=Decimal(900)
        )
        total = len(events)
        await harness.ingest(events)
        connected = await harness.connect(
            "ent-1", organisation, [("acc-hkd", "HKD"), ("acc-usd", "USD")], start_date=START
        )
        assert (await synced(harness, connected)).posted == total
        held = held_lines(organisation)
        assert held == sorted(e.transaction_id for e in events)

        # Re-publish the whole topic while the syncer runs: a dry run first, then for real.
        lines: list[str] = []
        request = TopicReplay(TRANSACTIONS, "republish")
        plan = await replay_topic(settings, request, out=lines.append)
        assert (plan["records"], plan["republished"], plan["applied"]) == (total, 0, False)
        assert lines[-1] == "dry run: nothing was published; add --apply to re-publish"
        done = await replay_topic(
            settings, dataclasses.replace(request, apply=True), out=lines.append
        )
        assert done["republished"] == total
        await counted(harness.syncer, new=total, duplicate=total, invalid=0)
        assert (await synced(harness, connected)).posted == 0
        assert held_lines(organisation) == held, "nothing posted twice"

        # Move the syncer's offsets back to the start while it is stopped: it re-reads
        # both copies of every transaction. The embedded broker still lists the stopped
        # syncer as a member, so replay joins the group to see it go (--join-group).
        async with harness.syncer_stopped():
            moved = await replay_topic(
                settings,
                TopicReplay(TRANSACTIONS, "move-offsets", group="syncer", join_group=True),
                out=lines.append,
            )
            assert sum(m["redelivered"] for m in moved["moves"]) == 2 * total
            assert moved["group"]["group"] == group
            applied = await replay_topic(
                settings,
                TopicReplay(
                    TRANSACTIONS, "move-offsets", group="syncer", join_group=True, apply=True
                ),
                out=lines.append,
            )
            assert set(applied["committed"].values()) <= {0, None}
            offsets = await committed_offsets(env.kafka, group, topic, [0, 1, 2])
            assert set(offsets.values()) <= {0, None}
        await counted(harness.syncer, new=0, duplicate=2 * total, invalid=0)
        assert (await synced(harness, connected)).posted == 0
        assert held_lines(organisation) == held, "nothing posted twice"


def oversized(event: TransactionBooked) -> TransactionBooked:
    """Valid by the contract (descriptions take 4,000 characters) and about 3.5 KB."""
    return event.model_copy(update={"description": "Consolidated FPS batch " + "x" * 2900})


async def test_a_dlq_replay_after_fixing_the_cause_recovers_the_record_once(
    env: Env,
) -> None:
    """The cause: SYNCER_MAX_EVENT_BYTES set to 2048, below what the contract allows (a
    4,000-character description makes a valid event of about 4.5 KB). A transaction with a
    long description is refused to the DLQ as `validation` ("record is … bytes; events may
    be at most 2048 bytes") while its neighbours post. Replayed before the fix it fails
    again, as attempt 2. The fix is the operator's: the limit back to its default and the
    syncer restarted. Then the DLQ replay lands it and posts it once; replaying the DLQ
    again posts nothing."""
    settings = replay_settings(env)
    async with running_syncer(env, max_event_bytes=2048) as harness:
        organisation = harness.connector.organisation(name="Dead Letter Trading")
        events = ledger("acc-hkd", 15, entity="ent-1", currency="HKD", start=FROM)
        events[-1] = oversized(events[-1])  # the latest, so balances still chain
        await harness.publish(BANK_TRANSACTIONS, events)
        await counted(harness.syncer, new=len(events) - 1, invalid=1)
        [dead] = await read_topic(env.kafka, env.topics.dlq(BANK_TRANSACTIONS), count=1)
        reason = dict(dead.headers)["x-dlq-error"].decode()
        assert "events may be at most 2048 bytes" in reason
        connected = await harness.connect(
            "ent-1", organisation, [("acc-hkd", "HKD")], start_date=START
        )
        assert (await synced(harness, connected)).posted == len(events) - 1

        # Replayed before the fix: refused again, and dead-lettered as attempt 2.
        lines: list[str] = []
        request = DlqReplay(TRANSACTIONS, DlqFilter(error_class="validation"))
        first = await replay_dlq(
            settings, dataclasses.replace(request, apply=True), out=lines.append
        )
        assert first["republished"] == 1
        await counted(harness.syncer, invalid=2)
        dead_letters = await read_topic(env.kafka, env.topics.dlq(BANK_TRANSACTIONS), count=2)
        assert sorted(dict(d.headers)["x-dlq-attempt"] for d in dead_letters) == [b"1", b"2"]
        assert {d.value for d in dead_letters} == {events[-1].model_dump_json().encode()}

        async with harness.syncer_stopped(max_event_bytes=65536):
            pass  # the fix: the default limit

        plan = await replay_dlq(settings, request, out=lines.append)
        assert (plan["dead_letters"], plan["selected"], plan["superseded"]) == (2, 1, 1)
        assert plan["by_error_class"] == {"validation": 1}
        assert "events may be at most 2048 bytes" in plan["reasons"][0]["reason"]
        assert plan["republished"] == 0
        recovered = await replay_dlq(
            settings, dataclasses.replace(request, apply=True), out=lines.append
        )
        assert recovered["republished"] == 1
        await counted(harness.syncer, new=1, duplicate=0, invalid=0)
        assert (await synced(harness, connected)).posted == 1
        held = held_lines(organisation)
        assert held == sorted(e.transaction_id for e in events), "recovered, once"

        again = await replay_dlq(
            settings, dataclasses.replace(request, apply=True), out=lines.append
        )
        assert again["republished"] == 1
        await counted(harness.syncer, new=1, duplicate=1, invalid=0)
        assert (await synced(harness, connected)).posted == 0
        assert held_lines(organisation) == held, "a second DLQ replay posts nothing"


async def test_moving_offsets_is_refused_while_the_group_has_live_members(
    env: Env, run_syncer: RunSyncer
) -> None:
    settings = replay_settings(env)
    group = env.topics.group(CONSUMER_GROUP)
    topic = env.topics.name(BANK_TRANSACTIONS)
    async with run_syncer() as syncer:
        await _publish(env, [booked(n, account=ACCOUNTS[n % 3]) for n in range(30)])
        await counted(syncer, new=30)
        before = await committed_offsets(env.kafka, group, topic, [0, 1, 2])

        lines: list[str] = []
        move = TopicReplay(TRANSACTIONS, "move-offsets", group="syncer")
        await replay_topic(settings, move, out=lines.append)
        assert any(line.startswith("--apply would refuse: consumer group") for line in lines)
        with pytest.raises(ReplayRefused) as refused:
            await replay_topic(settings, dataclasses.replace(move, apply=True), out=lines.append)
        message = str(refused.value)
        assert message.startswith(f"refused: consumer group {group} has 1 member")
        assert "\n  - " in message, "the member is named"

        # --join-group does not take a live group over either: the syncer rejoins and
        # keeps a share of the partitions, and replay leaves without committing.
        with pytest.raises(ReplayRefused, match="has live members besides replay"):
            await replay_topic(
                settings,
                dataclasses.replace(move, join_group=True, apply=True),
                out=lines.append,
            )
        assert await committed_offsets(env.kafka, group, topic, [0, 1, 2]) == before

        # The syncer got every partition back: new transactions on all of them land.
        await _publish(env, [booked(n, account=ACCOUNTS[n % 3]) for n in range(100, 130)])
        await counted(syncer, new=60, duplicate=0, invalid=0)


async def _publish(env: Env, events: list[TransactionBooked]) -> None:
    async with EventWriter(env.kafka, env.topics) as writer:
        written = await writer.write(BANK_TRANSACTIONS, events)
    assert len(written.end_offsets()) == 3, "the events span every partition"


async def test_time_bounds_become_offsets_per_partition_on_the_broker(env: Env) -> None:
    """Records stamped a minute apart; the range is found from their timestamps, by
    ListOffsets on Apache Kafka, by reading the partitions on the embedded broker."""
    topic = env.topics.name(BANK_TRANSACTIONS)
    start = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    producer = AIOKafkaProducer(acks="all", **client_options(env.kafka))
    await producer.start()
    try:
        for partition in (0, 1):
            for minute in range(6):
                event = booked(minute, account=ACCOUNTS[partition])
                await producer.send_and_wait(
                    topic,
                    event.model_dump_json().encode(),
                    key=event.account_id.encode(),
                    partition=partition,
                    timestamp_ms=int((start + timedelta(minutes=minute)).timestamp() * 1000),
                )
    finally:
        await producer.stop()

    lines: list[str] = []
    plan = await replay_topic(
        replay_settings(env),
        TopicReplay(
            TRANSACTIONS,
            "republish",
            RangeOptions(
                from_time=start + timedelta(minutes=2, seconds=30),
                to_time=start + timedelta(minutes=5),
            ),
        ),
        out=lines.append,
    )
    ranges = {p["partition"]: (p["from"], p["to"]) for p in plan["partitions"]}
    assert ranges == {0: (3, 5), 1: (3, 5), 2: (0, 0)}, lines
    assert "  partition 0: offsets 3..4 (2 records)" in lines
