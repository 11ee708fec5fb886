"""The workers that carry out queued sync runs, one organisation at a time per process.

The loop takes organisations with waiting runs, longest-waiting first, up to
`SYNCER_MAX_ACTIVE_TENANTS` at once. For each one whose lock it gets (no other replica holds
it) a tenant worker runs that organisation's runs one after the other, sharing its rate-limit
budget, then lets the organisation go. Finished runs' result events are published from the
runs table (an outbox): a crash between the commit and the publish only delays them.
"""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.syncer.adapters.postings import PostingRepository
from services.syncer.adapters.runs import RunRepository, RunToDo
from services.syncer.adapters.tenant_locks import TenantLocks
from services.syncer.config import SyncerSettings
from services.syncer.metrics import SyncerMetrics
from services.syncer.service_layer.pacing import AppBudget
from services.syncer.service_layer.sync_run import RunOutcome, RunStopped, SyncRunner
from shared.contracts.topics import XERO_SYNC_RESULTS
from shared.contracts.xero import SyncFailed
from shared.db import translated_db_errors
from shared.errors import TransientError
from shared.logging import get_logger

log = get_logger(__name__)
Sessions = async_sessionmaker[AsyncSession]
MAX_STARTS = 5
"""A run started this often without finishing (the process died each time) is failed, so
one poisonous run cannot hold its organisation forever."""


class PostingWorkers:
    def __init__(
        self,
        settings: SyncerSettings,
        sessions: Sessions,
        *,
        locks: TenantLocks,
        runner: SyncRunner,
        budgets: AppBudget,
        broker: KafkaBroker,
        metrics: SyncerMetrics,
        wake: asyncio.Event,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._locks = locks
        self._runner = runner
        self._budgets = budgets
        self._broker = broker
        self._metrics = metrics
        self._wake = wake
        self._now = clock
        self._results_topic = settings.topics.name(XERO_SYNC_RESULTS)
        self._active: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._publishing = asyncio.Lock()

    async def start(self) -> None:
        await self._locks.open()
        self._tasks = [
            asyncio.create_task(self._loop(), name="syncer-workers"),
            asyncio.create_task(self._gauges(), name="syncer-gauges"),
        ]

    async def stop(self) -> None:
        """Stop at once: a request cut off mid-flight stays `sending` and is settled by
        the organisation's next run, wherever it happens."""
        tasks = [*self._tasks, *self._active.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._active.clear()
        await self._locks.close()

    # ------------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._publish_results()
                await self._claim()
            except TransientError as error:
                log.warning("posting workers: database unavailable", error=str(error))
            except Exception:
                log.exception("posting workers: unexpected error; carrying on")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.run_poll.total_seconds()):
                    await self._wake.wait()

    async def _claim(self) -> None:
        if not await self._locks.alive():
            # Our locks went with the connection: another process may own our tenants now.
            for task in list(self._active.values()):
                task.cancel()
            self._active.clear()
            await self._locks.close()
            await self._locks.open()
        free = self._settings.max_active_tenants - len(self._active)
        if free <= 0:
            return
        async with translated_db_errors(), self._sessions() as session:
            tenants = await RunRepository(session).waiting_tenants(
                exclude=set(self._active), limit=free
            )
        for tenant_id in tenants:
            if await self._locks.try_lock(tenant_id):
                self._active[tenant_id] = asyncio.create_task(
                    self._tenant(tenant_id), name=f"tenant-{tenant_id}"
                )
        self._metrics.active_tenants.set(len(self._active))

    async def _tenant(self, tenant_id: uuid.UUID) -> None:
        try:
            while True:
                async with translated_db_errors(), self._sessions() as session, session.begin():
                    todo = await RunRepository(session).start_next(tenant_id, self._now())
                if todo is None:
                    return
                await self._run(todo)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("tenant worker failed; its runs wait for the next claim")
        finally:
            self._active.pop(tenant_id, None)
            self._budgets.forget(str(tenant_id))
            with contextlib.suppress(Exception):
                await self._locks.unlock(tenant_id)
            self._metrics.active_tenants.set(len(self._active))
            self._wake.set()  # a run queued meanwhile was skipped while we held the tenant

    async def _run(self, todo: RunToDo) -> None:
        started = time.perf_counter()
        log.info("sync run started", run_id=str(todo.run_id), reason=todo.reason)
        if todo.starts > MAX_STARTS:
            outcome = self._internal_error(todo, f"the run was started {todo.starts} times")
        else:
            try:
                outcome = await self._runner.execute(todo)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.exception("sync run failed unexpectedly", run_id=str(todo.run_id))
                outcome = self._internal_error(todo, type(error).__name__)
        event = outcome.event.model_dump(mode="json") if outcome.event is not None else None
        async with translated_db_errors(), self._sessions() as session, session.begin():
            await RunRepository(session).finish(
                todo.run_id,
                state=outcome.state,
                outcome=outcome.outcome,
                finished_at=self._now(),
                posted=outcome.posted,
                failed=outcome.failed,
                remaining=outcome.remaining,
                message=outcome.message,
                result_event=event,
            )
        self._metrics.sync_runs.labels(result=outcome.state).inc()
        self._metrics.sync_duration.observe(time.perf_counter() - started)
        log.info(
            "sync run finished",
            run_id=str(todo.run_id),
            result=outcome.state,
            outcome=outcome.outcome,
            posted=outcome.posted,
            failed=outcome.failed,
            remaining=outcome.remaining,
        )
        await self._publish_results()

    def _internal_error(self, todo: RunToDo, what: str) -> RunOutcome:
        stopped = RunStopped(
            "internal_error",
            f"The sync stopped on an internal error ({what}); operators have been alerted "
            "and the next sync retries.",
            user_action_required=False,
        )
        event = SyncFailed(
            connection_id=todo.connection_id,
            tenant_id=todo.tenant_id,
            run_id=todo.run_id,
            started_at=todo.started_at,
            finished_at=self._now(),
            reason="internal_error",
            message=stopped.message,
            user_action_required=False,
        )
        return RunOutcome("failed", "internal_error", message=stopped.message, event=event)

    # ------------------------------------------------------------------ results, gauges

    async def _publish_results(self) -> None:
        """Publish finished runs' results, oldest first, then mark them published."""
        async with self._publishing:
            while True:
                async with translated_db_errors(), self._sessions() as session:
                    batch = await RunRepository(session).unpublished()
                if not batch:
                    return
                for _run_id, event in batch:
                    if isinstance(event, dict):  # never anything else; never block the outbox
                        await self._publish(event)
                async with translated_db_errors(), self._sessions() as session, session.begin():
                    await RunRepository(session).mark_published(
                        [run_id for run_id, _ in batch], self._now()
                    )

    async def _publish(self, event: dict[str, Any]) -> None:
        await self._broker.publish(
            json.dumps(event).encode(),
            topic=self._results_topic,
            key=str(event["connection_id"]).encode(),
            headers={"content-type": "application/json"},
        )

    async def _gauges(self) -> None:
        while True:
            try:
                async with translated_db_errors(), self._sessions() as session:
                    pending, oldest = await PostingRepository(session).pending_gauges()
                self._metrics.pending.set(pending)
                age = (self._now() - oldest).total_seconds() if oldest is not None else 0.0
                self._metrics.oldest_pending_age.set(max(0.0, age))
            except Exception as error:  # noqa: BLE001 - gauges must not stop the service
                log.warning("could not compute pending gauges", error=type(error).__name__)
            await asyncio.sleep(self._settings.gauges_every.total_seconds())
