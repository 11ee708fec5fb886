"""The emitter: turns due slots into `SyncDue` events, exactly once per slot.

One replica emits at a time (it holds the emitter lease); the others keep consuming and
stand by. A tick claims the earliest due slots (`FOR UPDATE SKIP LOCKED`), publishes one
event per slot and waits for the broker's acknowledgements, then moves each slot to its
next due time and commits. A crash before the commit leaves the slots due; a crash after
the acknowledgements and before the commit would publish them twice, so a new emitter
first reads back the end of the topic (every slot's event id is stable) and records the
slots it finds there as emitted without publishing them again.
"""

import asyncio
import time
import uuid
from collections import Counter
from datetime import timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scheduler.adapters.lease import EmitterLease
from services.scheduler.adapters.repository import ScheduleRepository
from services.scheduler.adapters.sync_due import SyncDueLog
from services.scheduler.domain.clock import Clock
from services.scheduler.domain.schedule import SYNC_REASONS, first_gap, plan
from services.scheduler.metrics import SchedulerMetrics
from shared.db import translated_db_errors
from shared.faults import failpoint
from shared.logging import get_logger

log = get_logger(__name__)
_LEASE_CHECK_S = 1.0
_SPIN_GUARD_S = 0.01


class Emitter:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        lease: EmitterLease,
        sync_due: SyncDueLog,
        *,
        clock: Clock,
        metrics: SchedulerMetrics,
        wake: asyncio.Event,
        interval: timedelta,
        cooldown: timedelta,
        batch: int,
        idle_wait: timedelta,
        takeover_poll: timedelta,
        takeover_grace: timedelta,
    ) -> None:
        self._sessions = sessions
        self._lease = lease
        self._sync_due = sync_due
        self._clock = clock
        self._metrics = metrics
        self._wake = wake
        self._interval = interval
        self._min_gap = first_gap(interval, cooldown)
        self._batch = batch
        self._idle_wait = idle_wait
        self._takeover_poll = takeover_poll.total_seconds()
        self._takeover_grace = takeover_grace.total_seconds()
        self._recovered: set[uuid.UUID] = set()
        self._lease_checked = 0.0
        self._emitted = {reason: metrics.emitted.labels(reason=reason) for reason in SYNC_REASONS}

    async def run(self) -> None:
        """Stand by, emit while holding the lease, until cancelled."""
        try:
            while True:
                try:
                    if not await self._holding_lease():
                        await asyncio.sleep(self._takeover_poll)
                        continue
                    self._wake.clear()
                    handled = await self.tick()
                    if handled < self._batch:
                        await self._rest(handled)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - the emitter outlives any failure
                    log.warning("emitter failed; retrying", error=type(error).__name__)
                    await asyncio.sleep(1.0)
        finally:
            self._metrics.emitter.set(0)
            await self._lease.release()

    async def _holding_lease(self) -> bool:
        if self._lease.held:
            if time.monotonic() - self._lease_checked < _LEASE_CHECK_S:
                return True
            self._lease_checked = time.monotonic()
            if await self._lease.still_held():
                return True
            self._metrics.emitter.set(0)
            return False
        if not await self._lease.try_acquire():
            return False
        try:
            await self._take_over()
        except BaseException:
            await self._lease.release()
            raise
        self._lease_checked = time.monotonic()
        self._metrics.emitter.set(1)
        return True

    async def _take_over(self) -> None:
        """Learn what the previous emitter published and had not yet recorded: at most
        one batch, at the end of the topic's partitions."""
        await asyncio.sleep(self._takeover_grace)  # its last produce request has landed
        self._recovered = await self._sync_due.recent_event_ids(depth=self._batch)
        log.info("this replica now emits SyncDue", events_checked=len(self._recovered))

    async def tick(self) -> int:
        """Emit up to one batch of due slots; the number of slots handled."""
        started = time.perf_counter()
        now = self._clock.now()
        async with translated_db_errors(), self._sessions() as session, session.begin():
            repository = ScheduleRepository(session)
            slots = await repository.claim_due(now, self._batch)
            if not slots:
                return 0
            emissions = [
                plan(slot, now, interval=self._interval, min_gap=self._min_gap) for slot in slots
            ]
            fresh = [e for e in emissions if e.event_id not in self._recovered]
            failpoint("schedule.before_publish")
            await self._sync_due.publish(fresh, occurred_at=now)
            failpoint("schedule.after_publish")
            await repository.advance(emissions, now)
        recovered = len(emissions) - len(fresh)
        if recovered:
            self._recovered.difference_update(e.event_id for e in emissions)
            self._metrics.recovered.inc(recovered)
            log.info("recorded slots the previous emitter had published", slots=recovered)
        published = self._clock.now()
        for reason, count in Counter(e.reason for e in fresh).items():
            self._emitted[reason].inc(count)
        for emission in fresh:
            self._metrics.lag.observe(max(0.0, (published - emission.due_at).total_seconds()))
        self._metrics.tick_duration.observe(time.perf_counter() - started)
        return len(slots)

    async def _rest(self, handled: int) -> None:
        """Wait for the next due slot, a wake-up (a slot made due now), or `idle_wait`."""
        async with self._sessions() as session:
            next_due = await ScheduleRepository(session).next_due()
        now = self._clock.now()
        until = now + self._idle_wait
        if next_due is not None:
            if next_due <= now:
                if not handled:  # due but locked by a writer: look again very soon
                    await asyncio.sleep(_SPIN_GUARD_S)
                return
            until = min(until, next_due)
        await self._clock.wait(until, self._wake)
