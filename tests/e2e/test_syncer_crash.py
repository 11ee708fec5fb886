"""The syncer as users run it, killed with SIGKILL between consuming and committing."""

import asyncio
import signal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.syncer.config import CONSUMER_GROUP
from shared.contracts.topics import BANK_TRANSACTIONS
from tests.conftest import TEST_PARTITIONS, Env
from tests.helpers import booked, committed_offsets, eventually, metric
from xerosync.devstack.stack import Stack
from xerosync.producer import EventWriter

EVENTS = 300


async def _stored(env: Env) -> dict[str, object]:
    engine = create_async_engine(env.database_url("syncer"))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT transaction_id, ingested_at FROM bank_transactions")
            )
            return {row.transaction_id: row.ingested_at for row in rows}
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "failpoint",
    [
        "ingest.after_store",  # database committed, offsets not yet
        "ingest.before_store",  # consumed, nothing stored yet
    ],
)
async def test_sigkill_between_consume_and_commit_loses_nothing_and_doubles_nothing(
    env: Env, stack: Stack, failpoint: str
) -> None:
    topic = env.topics.name(BANK_TRANSACTIONS)
    group = env.topics.group(CONSUMER_GROUP)
    events = [booked(n, account=f"acc-{n % 5}") for n in range(EVENTS)]

    doomed = await asyncio.to_thread(
        stack.start_service, "syncer", extra_env={"XEROSYNC_FAILPOINTS": f"{failpoint}=kill"}
    )
    async with EventWriter(env.kafka, env.topics) as writer:
        written = await writer.write(BANK_TRANSACTIONS, events)

    await eventually(
        lambda: asyncio.sleep(0, doomed.poll()),
        until=lambda c: c is not None,
        what="the syncer killing itself at the failpoint",
    )
    assert doomed.poll() == -signal.SIGKILL
    before_restart = await _stored(env)
    assert sum((await committed_offsets(env.kafka, group, topic)).values()) == 0
    if failpoint == "ingest.after_store":
        assert before_restart, "the kill came after the database commit"
    else:
        assert not before_restart, "the kill came before anything was stored"

    await asyncio.to_thread(stack.start_service, "syncer")
    ends = {
        partition: written.end_offsets().get(partition, 0) for partition in range(TEST_PARTITIONS)
    }
    await eventually(
        lambda: committed_offsets(env.kafka, group, topic),
        until=lambda committed: committed == ends,
        within=60,
        what="every offset committed after the restart",
    )
    after = await _stored(env)
    assert set(after) == {event.transaction_id for event in events}
    # Rows stored before the kill are untouched: they were recognised, not rewritten.
    assert {tx: after[tx] for tx in before_restart} == before_restart
    base = stack.service_url("syncer")
    assert await metric(base, "xerosync_transactions_ingested_total", result="new") == (
        EVENTS - len(before_restart)
    )
    assert await metric(base, "xerosync_transactions_ingested_total", result="duplicate") == len(
        before_restart
    )
