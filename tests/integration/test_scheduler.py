"""The scheduler's real app on the embedded broker and real PostgreSQL, its time driven by
a `ManualClock`: hours of schedule in milliseconds, no sleeping."""

import uuid
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from services.scheduler.bootstrap import create_app
from services.scheduler.domain.schedule import first_slot_after, phase_of
from shared.contracts.topics import XERO_CONNECTIONS, XERO_SYNC_RESULTS
from shared.contracts.xero import SyncCompleted, SyncFailed
from tests.conftest import Env
from tests.helpers import eventually, read_topic, scrape
from tests.integration.scheduler_harness import (
    COOLDOWN,
    INTERVAL,
    START,
    SchedulerHarness,
    connection_event,
    scheduler_harness,
    scheduler_settings,
)


async def test_a_new_connection_syncs_at_once_then_every_interval_at_its_phase(env: Env) -> None:
    async with scheduler_harness(env) as h, h.running():
        connection = await h.connect()
        [connected] = await h.due.until(1)
        assert connected.reason == "connected"
        assert connected.connection_id == connection
        assert connected.due_at == START
        assert h.due.records[0].key == str(connected.tenant_id).encode()

        first = first_slot_after(START + COOLDOWN, phase_of(connection), INTERVAL)
        row = await h.schedule_where(
            connection, lambda r: r["last_reason"] == "connected", "connected recorded"
        )
        assert row["next_due_at"] == first
        # Three intervals: the clock jumps to each slot, and each slot emits one `schedule`.
        expected = [first + k * INTERVAL for k in range(3)]
        for n, slot in enumerate(expected, start=2):
            h.clock.set(slot - timedelta(microseconds=1))
            h.clock.set(slot)
            events = await h.due.until(n)
        scheduled = [e for e in h.due.of(connection) if e.reason == "schedule"]
        assert [e.due_at for e in scheduled] == expected
        assert len({e.event_id for e in events}) == len(events)
        assert await h.metric("xerosync_sync_due_emitted_total", reason="connected") == 1
        assert await h.metric("xerosync_sync_due_emitted_total", reason="schedule") == len(expected)
        assert await h.metric("xerosync_scheduler_emitter") == 1


async def test_connections_made_in_the_same_minute_spread_over_the_interval(env: Env) -> None:
    async with scheduler_harness(env) as h, h.running():
        connections = [uuid.uuid4() for _ in range(200)]
        await h.publish_connection(*(connection_event(c, version=1) for c in connections))
        await h.due.until(200)
        h.clock.advance(INTERVAL + COOLDOWN)
        events = await h.due.until(400)
        first = {e.connection_id: e.due_at for e in events if e.reason == "schedule"}
        assert set(first) == set(connections)
        # Ten equal parts of the interval: each holds 20 expected; none is empty or crowded.
        parts = [0] * 10
        for due in first.values():
            parts[int((due - START - COOLDOWN) / INTERVAL * 10) % 10] += 1
        assert min(parts) >= 8, parts
        assert max(parts) <= 35, parts
        await _metric_reaches(h, "xerosync_schedules_active", 200)  # refreshed every gauge_refresh


async def test_disconnected_and_needs_user_connections_are_not_scheduled(env: Env) -> None:
    async with scheduler_harness(env) as h, h.running():
        gone, paused, sentinel = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await h.publish_connection(*(connection_event(c, version=1) for c in (gone, paused)))
        await h.due.until(2)
        await h.publish_connection(
            connection_event(gone, version=2, kind="disconnected", status="disconnected"),
            connection_event(paused, version=2, kind="updated", status="needs_user"),
            # A replay of the older event changes nothing.
            connection_event(gone, version=1),
        )
        for connection in (gone, paused):
            await h.schedule_where(
                connection, lambda r: r["next_due_at"] is None, "unscheduled after version 2"
            )
        h.clock.advance(3 * INTERVAL)
        # The sentinel connects after three intervals passed: once its `connected` sync is
        # out, every slot due before it was handled, and none were for the others.
        await h.connect(sentinel)
        events = await h.due.until(3)
        assert [e.connection_id for e in events[2:]] == [sentinel]
        assert h.due.of(gone) == [e for e in events if e.connection_id == gone]
        assert len(h.due.of(gone)) == len(h.due.of(paused)) == 1

        # Re-established: scheduled again, starting with a `connected` sync.
        await h.publish_connection(connection_event(gone, version=3))
        events = await h.due.until(4)
        assert (events[3].connection_id, events[3].reason) == (gone, "connected")
        row = await h.schedule(gone)
        assert row is not None
        assert row["status"] == "active"
        assert row["next_due_at"] > h.clock.now()


async def test_after_downtime_each_overdue_connection_gets_one_catch_up(env: Env) -> None:
    async with scheduler_harness(env) as h:
        connections = [uuid.uuid4() for _ in range(20)]
        async with h.running():
            await h.publish_connection(*(connection_event(c, version=1) for c in connections))
            await h.due.until(20)
            for c in connections:
                await h.schedule_where(c, lambda r: r["last_reason"] == "connected", "recorded")
        # Down for three and a half intervals.
        h.clock.advance(3 * INTERVAL + INTERVAL / 2)
        async with h.running():
            events = await h.due.until(40)
            catch_ups = [e for e in events[20:] if e.reason == "catch_up"]
            assert sorted(e.connection_id for e in catch_ups) == sorted(connections)
            now = h.clock.now()
            for event in catch_ups:
                # For the latest missed slot, which lies within the last interval.
                assert now - INTERVAL < event.due_at <= now
                first = first_slot_after(START + COOLDOWN, phase_of(event.connection_id), INTERVAL)
                assert (event.due_at - first) % INTERVAL == timedelta(0)
            # Then the rhythm resumes: one `schedule` per connection in the next interval.
            h.clock.advance(INTERVAL)
            events = await h.due.until(60)
            for connection in connections:
                catch_up, scheduled = h.due.of(connection)[1:]
                assert scheduled.reason == "schedule"
                assert scheduled.due_at == catch_up.due_at + INTERVAL
            assert await h.metric("xerosync_sync_due_emitted_total", reason="catch_up") == 20


async def test_sync_now_is_debounced_and_moves_the_next_scheduled_sync(env: Env) -> None:
    async with scheduler_harness(env) as h, h.running():
        connection = await h.connect()
        await h.due.until(1)
        await h.schedule_where(connection, lambda r: r["last_reason"] == "connected", "recorded")
        # Before any scheduled slot: the first follows `connected` by at least the cooldown.
        pressed_at = h.clock.advance(COOLDOWN / 2)

        await h.press(connection, times=6)  # one accepted, five absorbed
        events = await h.due.until(2)
        assert (events[1].reason, events[1].due_at) == ("manual", pressed_at)
        await _metric_reaches(h, "xerosync_manual_sync_requests_total", 5, result="debounced")
        assert await h.metric("xerosync_manual_sync_requests_total", result="accepted") == 1
        row = await h.schedule_where(
            connection, lambda r: r["last_reason"] == "manual", "manual recorded"
        )
        assert row["next_due_at"] == pressed_at + INTERVAL

        # Within the cooldown: absorbed. After it: accepted again.
        h.clock.advance(COOLDOWN / 2)
        await h.press(connection)
        await _metric_reaches(h, "xerosync_manual_sync_requests_total", 6, result="debounced")
        again = h.clock.advance(COOLDOWN)
        await h.press(connection)
        events = await h.due.until(3)
        assert (events[2].reason, events[2].due_at) == ("manual", again)

        # The next scheduled sync follows the last press by one interval, not the phase.
        h.clock.set(again + INTERVAL)
        events = await h.due.until(4)
        assert (events[3].reason, events[3].due_at) == ("schedule", again + INTERVAL)
        assert len(h.due.of(connection)) == 4

        # A press replayed from long ago, and a press for no connection, start nothing.
        await h.press(connection, at=h.clock.now() - timedelta(hours=1))
        await h.press(uuid.uuid4())
        await _metric_reaches(h, "xerosync_manual_sync_requests_total", 1, result="stale")
        await _metric_reaches(h, "xerosync_manual_sync_requests_total", 1, result="not_active")
        assert await h.metric("xerosync_sync_due_emitted_total", reason="manual") == 2


async def test_two_replicas_emit_each_slot_once_and_a_standby_takes_over(env: Env) -> None:
    async with scheduler_harness(env) as h:
        connections = [uuid.uuid4() for _ in range(60)]
        leader = create_app(scheduler_settings(env), clock=h.clock)
        leading = AsyncExitStack()
        await leading.enter_async_context(leader.router.lifespan_context(leader))
        stopped = False
        try:
            await eventually(
                lambda: _gauge(leader, "xerosync_scheduler_emitter"), what="an emitter"
            )
            async with h.running() as standby:
                await h.publish_connection(*(connection_event(c, version=1) for c in connections))
                await h.due.until(60)
                h.clock.advance(INTERVAL + COOLDOWN)
                await h.due.until(120)
                assert await _gauge(standby, "xerosync_scheduler_emitter") == 0
                # Both consumed (one group), only one emitted.
                await leading.aclose()
                stopped = True
                h.clock.advance(INTERVAL)
                events = await h.due.until(180)
                assert await _gauge(standby, "xerosync_scheduler_emitter") == 1
        finally:
            if not stopped:
                await leading.aclose()
        slots = [(e.connection_id, e.due_at) for e in events]
        assert len(slots) == len(set(slots)) == 180
        for connection in connections:
            reasons = [e.reason for e in h.due.of(connection)]
            assert reasons == ["connected", "schedule", "schedule"]


async def test_the_stalest_connection_s_sync_age_follows_its_completed_syncs(env: Env) -> None:
    """What XerosyncSyncStale reads: seconds since the active connection synced longest ago
    last completed a sync (or became active), next to the interval it is measured against."""
    age = "xerosync_oldest_connection_sync_age_seconds"
    async with scheduler_harness(env) as h, h.running():
        assert await h.metric("xerosync_sync_interval_seconds") == INTERVAL.total_seconds()
        stale, fresh = uuid.uuid4(), uuid.uuid4()
        await h.publish_connection(*(connection_event(c, version=1) for c in (stale, fresh)))
        await h.due.until(2)
        row = await h.schedule_where(stale, lambda r: r["active_since"] is not None, "active")
        assert row["active_since"] == START
        assert row["last_completed_at"] is None

        # Never synced: measured from activation.
        h.clock.advance(2 * INTERVAL + timedelta(minutes=1))
        await _metric_reaches(h, age, (2 * INTERVAL + timedelta(minutes=1)).total_seconds())

        # `fresh` completes a sync; `stale` only fails one, which is no sync at all. A
        # completed result that arrives late, older than one already held, changes nothing.
        done = START + 2 * INTERVAL
        await h.writer.write(
            XERO_SYNC_RESULTS,
            [
                _result(fresh, done, completed=True),
                _result(fresh, done - INTERVAL, completed=True),
                _result(stale, done, completed=False),
            ],
        )
        row = await h.schedule_where(fresh, lambda r: r["last_completed_at"] == done, "fresh")
        assert row["last_result"] == "completed"
        await h.schedule_where(stale, lambda r: r["last_result"] == "failed", "stale failed")
        await _metric_reaches(h, age, (2 * INTERVAL + timedelta(minutes=1)).total_seconds())

        # `stale` completes one too: the stalest is now a minute old.
        await h.writer.write(XERO_SYNC_RESULTS, [_result(stale, done, completed=True)])
        await _metric_reaches(h, age, 60.0)

        # Disconnected connections do not count; with none active the age is 0.
        await h.publish_connection(
            *(
                connection_event(c, version=2, kind="disconnected", status="disconnected")
                for c in (stale, fresh)
            )
        )
        await _metric_reaches(h, age, 0.0)
        row = await h.schedule_where(stale, lambda r: r["status"] == "disconnected", "gone")
        assert row["active_since"] is None


def _result(
    connection_id: uuid.UUID, at: datetime, *, completed: bool
) -> SyncCompleted | SyncFailed:
    fields: dict[str, Any] = {
        "connection_id": connection_id,
        "tenant_id": uuid.uuid5(uuid.NAMESPACE_URL, f"tenant/{connection_id}"),
        "run_id": uuid.uuid4(),
        "started_at": at - timedelta(seconds=5),
        "finished_at": at,
    }
    if completed:
        return SyncCompleted(**fields, posted=0, failed=0, remaining=0, accounts=[])
    return SyncFailed(
        **fields,
        reason="xero_unavailable",
        message="Xero did not answer.",
        user_action_required=False,
    )


async def test_malformed_events_go_to_the_dlq_and_the_consumer_carries_on(env: Env) -> None:
    async with scheduler_harness(env) as h, h.running():
        topic = env.topics.name(XERO_CONNECTIONS)
        await h.writer.send_record(topic, b'{"type": "ConnectionEstablished"}', key=b"bad")
        connection = await h.connect()
        [event] = await h.due.until(1)
        assert event.connection_id == connection
        [dead] = await read_topic(env.kafka, env.topics.dlq(XERO_CONNECTIONS), count=1)
        assert dead.value == b'{"type": "ConnectionEstablished"}'
        headers = dict(dead.headers)
        assert b"connection_id" in headers["x-dlq-error"]
        await _metric_reaches(h, "xerosync_dlq_messages_total", 1, topic=XERO_CONNECTIONS.name)


async def _metric_reaches(h: SchedulerHarness, name: str, value: float, **labels: str) -> None:
    await eventually(
        lambda: h.metric(name, **labels), until=lambda v: v == value, what=f"{name}={value}"
    )


async def _gauge(app: FastAPI, name: str) -> float:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://scheduler"
    ) as http:
        return scrape((await http.get("/metrics")).text).get((name, ()), 0.0)
