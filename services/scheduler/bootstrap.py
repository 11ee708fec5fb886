"""The scheduler's composition root: builds every dependency once and wires the consumers
and the emitter. Nothing else in the scheduler creates engines, brokers or registries."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.scheduler.adapters.lease import EmitterLease
from services.scheduler.adapters.repository import ScheduleRepository
from services.scheduler.adapters.sync_due import SyncDueLog
from services.scheduler.config import CONSUMER_GROUP, SchedulerSettings
from services.scheduler.domain.clock import Clock, SystemClock
from services.scheduler.entrypoints.kafka import register_consumers
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.service_layer.emitter import Emitter
from services.scheduler.service_layer.intake import ConnectionChanges, ManualSyncs, SyncResults
from shared.consumer_lag import ConsumerLag
from shared.contracts.topics import XERO_SYNC_DUE
from shared.db import make_engine, make_session_factory, ping
from shared.dlq import DeadLetterPublisher
from shared.http import ops_router
from shared.kafka import make_broker, ping_broker, start_broker
from shared.logging import configure_logging, get_logger
from shared.metrics import new_registry
from shared.migrations import require_current
from shared.service import serve
from shared.settings import redacted_url

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


def create_app(settings: SchedulerSettings, *, clock: Clock | None = None) -> FastAPI:
    """The scheduler app. `clock` lets tests drive the schedule's time."""
    clock = clock or SystemClock()
    registry = new_registry()
    metrics = SchedulerMetrics(registry)
    metrics.sync_interval.set(settings.sync_interval.total_seconds())
    broker = make_broker(settings, client_id="xerosync-scheduler", registry=registry)
    engine = make_engine(settings.database_url, application_name="xerosync-scheduler")
    sessions = make_session_factory(engine)
    sync_due = SyncDueLog(settings.kafka, settings.topics.name(XERO_SYNC_DUE))
    wake = asyncio.Event()
    emitter = Emitter(
        sessions,
        EmitterLease(settings.database_url, wake),
        sync_due,
        clock=clock,
        metrics=metrics,
        wake=wake,
        interval=settings.sync_interval,
        cooldown=settings.manual_sync_cooldown,
        batch=settings.tick_batch,
        idle_wait=settings.idle_wait,
        takeover_poll=settings.takeover_poll,
        takeover_grace=settings.takeover_grace,
    )

    dead_letters = DeadLetterPublisher(
        broker,
        consumer=settings.topics.group(CONSUMER_GROUP),
        topic_prefix=settings.topic_prefix,
        counter=metrics.dlq,
    )

    register_consumers(
        broker,
        settings,
        ConnectionChanges(
            sessions,
            dead_letters,
            clock,
            max_event_bytes=settings.max_event_bytes,
        ),
        ManualSyncs(
            sessions,
            dead_letters,
            clock,
            metrics,
            cooldown=settings.manual_sync_cooldown,
            max_age=settings.manual_request_max_age,
            max_event_bytes=settings.max_event_bytes,
        ),
        SyncResults(sessions, dead_letters, max_event_bytes=settings.max_event_bytes),
    )
    lag = ConsumerLag(broker, metrics.consumer_lag, topic_prefix=settings.topic_prefix)

    async def count_schedules() -> None:
        while True:
            try:
                async with sessions() as session:
                    repository = ScheduleRepository(session)
                    metrics.active.set(await repository.count_active())
                    metrics.oldest_sync_age.set(await repository.oldest_sync_age(clock.now()))
            except Exception as error:  # noqa: BLE001 - a gauge must not stop the service
                log.warning("could not count schedules", error=type(error).__name__)
            await asyncio.sleep(settings.gauge_refresh.total_seconds())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await require_current(MIGRATIONS, settings.database_url, service="scheduler")
        await start_broker(broker, settings.kafka)
        await sync_due.start()
        loops = [
            asyncio.create_task(emitter.run(), name="sync-due-emitter"),
            asyncio.create_task(count_schedules(), name="schedules-gauge"),
            asyncio.create_task(lag.run(), name="consumer-lag-gauge"),
        ]
        log.info(
            "scheduler ready",
            kafka=settings.kafka.bootstrap_servers,
            database=redacted_url(settings.database_url.get_secret_value()),
            topic_prefix=settings.topic_prefix,
            interval=str(settings.sync_interval),
            manual_cooldown=str(settings.manual_sync_cooldown),
            http=f"http://{settings.http_host}:{settings.http_port}",
        )
        try:
            yield
        finally:
            for loop in loops:
                loop.cancel()
            for loop in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
            await broker.stop()
            await sync_due.stop()
            await engine.dispose()
            log.info("scheduler stopped")

    async def broker_ready() -> None:
        await ping_broker(broker)
        await sync_due.ping()

    async def database_ready() -> None:
        await ping(engine)

    app = FastAPI(title="xerosync scheduler", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(ops_router(registry, {"broker": broker_ready, "database": database_ready}))
    return app


def main() -> None:
    settings = SchedulerSettings()
    configure_logging(settings, service="scheduler")
    serve(create_app(settings), settings)
