"""The syncer's composition root: builds every dependency once and wires the handlers.
Nothing else in the syncer creates engines, brokers or registries."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.syncer.config import INGEST_GROUP, SyncerSettings
from services.syncer.entrypoints.kafka import register_ingest
from services.syncer.metrics import SyncerMetrics
from services.syncer.service_layer.ingest import TransactionIngestor
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


def create_app(settings: SyncerSettings) -> FastAPI:
    registry = new_registry()
    metrics = SyncerMetrics(registry)
    broker = make_broker(settings, client_id="xerosync-syncer", registry=registry)
    engine = make_engine(settings.database_url, application_name="xerosync-syncer")
    sessions = make_session_factory(engine)
    dead_letters = DeadLetterPublisher(
        broker,
        consumer=settings.topics.group(INGEST_GROUP),
        topic_prefix=settings.topic_prefix,
        counter=metrics.dlq,
    )
    ingestor = TransactionIngestor(
        sessions, dead_letters, metrics, max_event_bytes=settings.max_event_bytes
    )
    register_ingest(broker, settings, ingestor)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        database = redacted_url(settings.database_url.get_secret_value())
        await require_current(MIGRATIONS, settings.database_url, service="syncer")
        await start_broker(broker, settings.kafka)
        log.info(
            "syncer ready",
            kafka=settings.kafka.bootstrap_servers,
            database=database,
            topic_prefix=settings.topic_prefix,
            http=f"http://{settings.http_host}:{settings.http_port}",
        )
        try:
            yield
        finally:
            await broker.stop()  # waits for in-flight batches, then leaves the group
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
