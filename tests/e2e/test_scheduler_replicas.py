"""Two `xerosync scheduler` processes on one database, one of them killed with SIGKILL
mid-run: every slot is emitted exactly once, none is lost."""

import asyncio
import os
import signal
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts.topics import XERO_CONNECTIONS
from shared.contracts.xero import SyncDue
from tests.conftest import Env
from tests.helpers import eventually, metric
from tests.integration.scheduler_harness import connection_event, due_reader
from xerosync.devstack.processes import ManagedProcess, free_port
from xerosync.devstack.stack import Stack
from xerosync.producer import EventWriter

INTERVAL = timedelta(seconds=3)
CONNECTIONS = 200
FAST = {
    "SCHEDULER_SYNC_INTERVAL": "3s",
    "SCHEDULER_MANUAL_SYNC_COOLDOWN": "1s",
    "SCHEDULER_TAKEOVER_POLL": "200ms",
    "SCHEDULER_TAKEOVER_GRACE": "300ms",
}


async def _start(stack: Stack, *, port: int, extra: dict[str, str]) -> ManagedProcess:
    return await asyncio.to_thread(
        stack.start_service, "scheduler", extra_env=FAST | extra, port=port
    )


async def _emitter(port: int) -> float:
    return await metric(f"http://127.0.0.1:{port}", "xerosync_scheduler_emitter")


@pytest.mark.parametrize(
    "kill",
    [
        "after_publish",  # the batch is on the topic, the schedule not yet moved on
        "sigkill_mid_run",  # whenever it happens to be, after some slots went out
    ],
)
async def test_a_replica_killed_mid_run_leaves_no_slot_lost_or_doubled(
    env: Env, stack: Stack, kill: str
) -> None:
    doomed_port, standby_port = free_port(), free_port()
    failpoint = {"XEROSYNC_FAILPOINTS": "schedule.after_publish=kill"}
    doomed = await _start(
        stack, port=doomed_port, extra=failpoint if kill == "after_publish" else {}
    )
    await eventually(lambda: _emitter(doomed_port), what="the first replica emitting")
    await _start(stack, port=standby_port, extra={})
    assert await _emitter(standby_port) == 0

    connections = [uuid.uuid4() for _ in range(CONNECTIONS)]
    async with due_reader(env) as due:
        async with EventWriter(env.kafka, env.topics) as writer:
            await writer.write(
                XERO_CONNECTIONS, [connection_event(c, version=1) for c in connections]
            )
        if kill == "after_publish":
            await eventually(
                lambda: asyncio.sleep(0, doomed.poll()),
                until=lambda code: code is not None,
                what="the emitter killing itself after publishing",
            )
        else:
            await due.until(CONNECTIONS + CONNECTIONS // 2)
            assert doomed.pid is not None
            os.kill(doomed.pid, signal.SIGKILL)
            await eventually(
                lambda: asyncio.sleep(0, doomed.poll()), until=lambda c: c is not None, what="death"
            )
        assert doomed.poll() == -signal.SIGKILL
        killed_at = datetime.now(UTC)

        await eventually(lambda: _emitter(standby_port), what="the standby taking over")
        # Run on until every connection had two more slots after the kill.
        horizon = killed_at + 2 * INTERVAL

        def covered(events: list[SyncDue]) -> bool:
            latest: dict[uuid.UUID, datetime] = {}
            for event in events:
                latest[event.connection_id] = max(
                    event.due_at, latest.get(event.connection_id, event.due_at)
                )
            return len(latest) == CONNECTIONS and min(latest.values()) >= horizon

        await eventually(
            due.pulled, until=lambda _: covered(due.seen), within=30, what="slots after the kill"
        )
        seen = list(due.seen)

    ids = [event.event_id for event in seen]
    assert len(ids) == len(set(ids)), "an event was published twice"
    by_connection: dict[uuid.UUID, list[SyncDue]] = defaultdict(list)
    for event in seen:
        by_connection[event.connection_id].append(event)
    assert set(by_connection) == set(connections)
    for connection, mine in by_connection.items():
        mine.sort(key=lambda e: e.due_at)
        assert [e.reason for e in mine[:1]] == ["connected"], connection
        scheduled = [e.due_at for e in mine[1:]]
        assert all(e.reason == "schedule" for e in mine[1:]), [e.reason for e in mine]
        # Every slot from the first to the last, once: no gap, no double.
        assert scheduled == [scheduled[0] + k * INTERVAL for k in range(len(scheduled))]
    if kill == "after_publish":
        recovered = await metric(
            f"http://127.0.0.1:{standby_port}", "xerosync_sync_due_recovered_total"
        )
        assert recovered >= 1, "the standby found what the dead emitter had published"
