"""What the scheduler learns from Kafka, on every replica (each topic's consumer group
shares its partitions among them): connection changes make or end schedules, *Sync now*
presses make a manual sync due (debounced), sync results are noted for ops.

All three are idempotent: a connection event no newer than the stored version, a press
within the cooldown or older than its maximum age, and a result no newer than the last
one change nothing, so a replayed topic leaves the same schedule. Records that are not
valid events go to the DLQ with the reason.
"""

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeAlias

from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scheduler.adapters.repository import ScheduleRepository
from services.scheduler.domain.clock import Clock
from services.scheduler.domain.schedule import (
    ManualResult,
    Schedule,
    apply_connection,
    apply_manual,
)
from services.scheduler.metrics import SchedulerMetrics
from shared.contracts.topics import (
    XERO_CONNECTIONS,
    XERO_SYNC_REQUESTS,
    XERO_SYNC_RESULTS,
)
from shared.contracts.xero import (
    ConnectionDisconnected,
    ConnectionEstablished,
    ConnectionUpdated,
    SyncCompleted,
    SyncFailed,
    SyncRequested,
)
from shared.db import translated_db_errors
from shared.dlq import DeadLetterPublisher, decode_records
from shared.retry import Backoff, retry_transient

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Sessions: TypeAlias = async_sessionmaker[AsyncSession]
ConnectionEvent: TypeAlias = ConnectionEstablished | ConnectionUpdated | ConnectionDisconnected


class ConnectionChanges:
    """`xero.connections.v1` → schedules: active connections are scheduled (with a
    `connected` sync at once when they become active), others are not."""

    def __init__(
        self,
        sessions: Sessions,
        dead_letters: DeadLetterPublisher,
        clock: Clock,
        *,
        max_event_bytes: int,
    ) -> None:
        self._sessions = sessions
        self._dead_letters = dead_letters
        self._clock = clock
        self._max_bytes = max_event_bytes

    async def apply(self, records: Sequence[Record]) -> None:
        events, refused = decode_records(XERO_CONNECTIONS, records, max_bytes=self._max_bytes)
        # Each connection's events in version order: a disconnect and a reconnect in one
        # batch must both be seen, or the reconnect would not look like one.
        ordered: list[ConnectionEvent] = sorted(events, key=lambda e: (e.connection_id, e.version))

        async def store() -> None:
            async with translated_db_errors(), self._sessions() as session, session.begin():
                repository = ScheduleRepository(session)
                held = await repository.load(sorted({e.connection_id for e in ordered}))
                now = self._clock.now()
                changed: dict[Any, Schedule] = {}
                due_now = False
                for event in ordered:
                    before = changed.get(event.connection_id) or held.get(event.connection_id)
                    after = apply_connection(
                        before,
                        connection_id=event.connection_id,
                        tenant_id=event.tenant_id,
                        entity_id=event.entity_id,
                        version=event.version,
                        status=event.status,
                        now=now,
                    )
                    if after is not None:
                        changed[event.connection_id] = after
                        due_now |= after.due_reason == "connected" and after.next_due_at == now
                await repository.save(list(changed.values()), now=now)
                if due_now:
                    await repository.wake_emitter()

        if ordered:
            await retry_transient(store, policy=Backoff(), what="store schedules")
        await self._dead_letters.publish(refused)


class ManualSyncs:
    """`xero.sync-requests.v1` → a `manual` sync due now, at most once per connection per
    cooldown; the next scheduled sync then follows one interval after it."""

    def __init__(
        self,
        sessions: Sessions,
        dead_letters: DeadLetterPublisher,
        clock: Clock,
        metrics: SchedulerMetrics,
        *,
        cooldown: timedelta,
        max_age: timedelta,
        max_event_bytes: int,
    ) -> None:
        self._sessions = sessions
        self._dead_letters = dead_letters
        self._clock = clock
        self._metrics = metrics
        self._cooldown = cooldown
        self._max_age = max_age
        self._max_bytes = max_event_bytes

    async def apply(self, records: Sequence[Record]) -> None:
        events, refused = decode_records(XERO_SYNC_REQUESTS, records, max_bytes=self._max_bytes)
        requests: list[SyncRequested] = events
        results: Counter[ManualResult] = Counter()

        async def store() -> None:
            results.clear()
            async with translated_db_errors(), self._sessions() as session, session.begin():
                repository = ScheduleRepository(session)
                held: dict[Any, Schedule | None] = dict(
                    await repository.load(sorted({r.connection_id for r in requests}))
                )
                now = self._clock.now()
                changed: dict[Any, Schedule] = {}
                for request in requests:
                    result, after = apply_manual(
                        held.get(request.connection_id),
                        requested_at=request.occurred_at,
                        now=now,
                        cooldown=self._cooldown,
                        max_age=self._max_age,
                    )
                    results[result] += 1
                    if after is not None:
                        held[request.connection_id] = changed[request.connection_id] = after
                await repository.save(list(changed.values()), now=now)
                if changed:
                    await repository.wake_emitter()

        if requests:
            await retry_transient(store, policy=Backoff(), what="store sync requests")
            for result, count in results.items():
                self._metrics.manual.labels(result=result).inc(count)
        await self._dead_letters.publish(refused)


class SyncResults:
    """`xero.sync-results.v1` → each schedule notes its connection's latest result."""

    def __init__(
        self, sessions: Sessions, dead_letters: DeadLetterPublisher, *, max_event_bytes: int
    ) -> None:
        self._sessions = sessions
        self._dead_letters = dead_letters
        self._max_bytes = max_event_bytes

    async def apply(self, records: Sequence[Record]) -> None:
        events, refused = decode_records(XERO_SYNC_RESULTS, records, max_bytes=self._max_bytes)
        outcomes: list[SyncCompleted | SyncFailed] = events

        async def store() -> None:
            async with translated_db_errors(), self._sessions() as session, session.begin():
                await ScheduleRepository(session).record_results(
                    [
                        (
                            e.connection_id,
                            "completed" if isinstance(e, SyncCompleted) else "failed",
                            e.finished_at,
                        )
                        for e in outcomes
                    ]
                )

        if outcomes:
            await retry_transient(store, policy=Backoff(), what="store sync results")
        await self._dead_letters.publish(refused)
