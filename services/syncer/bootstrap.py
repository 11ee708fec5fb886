"""The syncer's composition root: builds every dependency once and wires the handlers.
Nothing else in the syncer creates engines, brokers, clients or registries."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.syncer.adapters.connector_tokens import ConnectorTokens
from services.syncer.adapters.tenant_locks import TenantLocks
from services.syncer.adapters.xero_api import XeroPoster
from services.syncer.config import CONSUMER_GROUP, SyncerSettings
from services.syncer.entrypoints.kafka import register_consumers
from services.syncer.metrics import SyncerMetrics
from services.syncer.service_layer.ingest import TransactionIngestor
from services.syncer.service_layer.intake import ConnectionReplica, SyncDueIntake
from services.syncer.service_layer.pacing import AppBudget, Limits
from services.syncer.service_layer.priority import IngestFirst
from services.syncer.service_layer.sync_run import SyncRunner
from services.syncer.service_layer.workers import PostingWorkers
from shared.consumer_lag import ConsumerLag
from shared.db import make_engine, make_session_factory, ping
from shared.dlq import DeadLetterPublisher
from shared.http import ops_router
from shared.kafka import make_broker, ping_broker, start_broker
from shared.logging import configure_logging, get_logger
from shared.metrics import new_registry
from shared.migrations import require_current
from shared.service import serve
from shared.settings import redacted_url
from shared.xero_http import XeroHttp

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


def create_app(
    settings: SyncerSettings,
    *,
    xero_http: httpx.AsyncClient | None = None,
    connector_http: httpx.AsyncClient | None = None,
) -> FastAPI:
    """`xero_http` and `connector_http` replace the HTTP clients (tests route them to an
    in-process sandbox and connector); the app closes only the clients it made."""
    registry = new_registry()
    metrics = SyncerMetrics(registry)
    broker = make_broker(settings, client_id="xerosync-syncer", registry=registry)
    engine = make_engine(settings.database_url, application_name="xerosync-syncer", pool_size=10)
    sessions = make_session_factory(engine)
    dead_letters = DeadLetterPublisher(
        broker,
        consumer=settings.topics.group(CONSUMER_GROUP),
        topic_prefix=settings.topic_prefix,
        counter=metrics.dlq,
    )
    ingestor = TransactionIngestor(
        sessions, dead_letters, metrics, max_event_bytes=settings.max_event_bytes
    )
    connections = ConnectionReplica(
        sessions, dead_letters, max_event_bytes=settings.max_event_bytes
    )
    sync_due = SyncDueIntake(
        sessions, dead_letters, metrics, max_event_bytes=settings.max_event_bytes
    )
    ingest_first = IngestFirst(
        full_batch=settings.ingest_batch_size,
        quiet=settings.ingest_first_quiet.total_seconds(),
        max_hold=settings.ingest_first_max_hold.total_seconds(),
        held=metrics.ingest_first,
    )
    register_consumers(
        broker,
        settings,
        ingestor=ingestor,
        connections=connections,
        sync_due=sync_due,
        ingest_first=ingest_first,
    )
    lag = ConsumerLag(broker, metrics.consumer_lag, topic_prefix=settings.topic_prefix)

    owned: list[httpx.AsyncClient] = []
    if xero_http is None:
        xero_http = httpx.AsyncClient(timeout=settings.xero_timeout_s, follow_redirects=False)
        owned.append(xero_http)
    if connector_http is None:
        connector_http = httpx.AsyncClient(timeout=30.0, follow_redirects=False)
        owned.append(connector_http)
    poster = XeroPoster(
        XeroHttp(xero_http, observer=metrics.observe_xero), base_url=settings.xero_api_url
    )
    tokens = ConnectorTokens(
        connector_http, base_url=settings.connector_url, service_token=settings.service_token
    )
    budgets = AppBudget(
        Limits(
            statements_per_minute=settings.statements_per_minute,
            scale=settings.rate_limit_scale,
            day_reserve=settings.day_reserve,
        )
    )
    runner = SyncRunner(
        settings,
        sessions,
        poster=poster,
        tokens=tokens,
        budgets=budgets,
        metrics=metrics,
        ingest_first=ingest_first,
    )
    wake = asyncio.Event()
    workers = PostingWorkers(
        settings,
        sessions,
        locks=TenantLocks(settings.database_url, wake),
        runner=runner,
        budgets=budgets,
        broker=broker,
        metrics=metrics,
        wake=wake,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        database = redacted_url(settings.database_url.get_secret_value())
        await require_current(MIGRATIONS, settings.database_url, service="syncer")
        await start_broker(broker, settings.kafka)
        await workers.start()
        lag.start()
        log.info(
            "syncer ready",
            kafka=settings.kafka.bootstrap_servers,
            database=database,
            topic_prefix=settings.topic_prefix,
            xero=settings.xero_api_url,
            connector=settings.connector_url,
            http=f"http://{settings.http_host}:{settings.http_port}",
        )
        try:
            yield
        finally:
            await lag.stop()
            await workers.stop()
            await broker.stop()  # waits for in-flight batches, then leaves the group
            for client in owned:
                await client.aclose()
            await engine.dispose()
            log.info("syncer stopped")

    async def broker_ready() -> None:
        await ping_broker(broker)

    async def database_ready() -> None:
        await ping(engine)

    app = FastAPI(title="xerosync syncer", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(ops_router(registry, {"broker": broker_ready, "database": database_ready}))
    return app


def main() -> None:
    settings = SyncerSettings()
    configure_logging(settings, service="syncer")
    serve(create_app(settings), settings)
