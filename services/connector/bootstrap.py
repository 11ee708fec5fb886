"""The connector's composition root: builds every dependency once and wires the routes,
the Kafka handlers and the background loops. Nothing else creates engines or clients."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.connector.adapters.crypto import Keyring, TokenCipher
from services.connector.adapters.outbox import OutboxRelay
from services.connector.adapters.repository import Repository
from services.connector.adapters.xero import XeroClient
from services.connector.config import CONSUMER_GROUP, XERO_SCOPES, ConnectorSettings
from services.connector.entrypoints import auth
from services.connector.entrypoints.api import ApiDeps, api_router
from services.connector.entrypoints.kafka import register_consumers
from services.connector.entrypoints.pages import Pages
from services.connector.entrypoints.web import WebDeps, web_router
from services.connector.metrics import ConnectorMetrics
from services.connector.service_layer.disconnect import Disconnector, XeroSideWatch
from services.connector.service_layer.onboarding import Onboarding
from services.connector.service_layer.overview import EntityQueries, SyncNow
from services.connector.service_layer.projections import AccountsDirectory, SyncStatus
from services.connector.service_layer.tokens import TokenService
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
STATIC = Path(__file__).parent / "entrypoints" / "static"
log = get_logger(__name__)


def create_app(  # noqa: PLR0915 - the wiring, in one place
    settings: ConnectorSettings, *, xero_http: httpx.AsyncClient | None = None
) -> FastAPI:
    """The connector app. `xero_http` lets tests reach an in-process Xero sandbox; the
    caller then owns that client."""
    registry = new_registry()
    metrics = ConnectorMetrics(registry)
    broker = make_broker(settings, client_id="xerosync-connector", registry=registry)
    engine = make_engine(settings.database_url, application_name="xerosync-connector")
    sessions = make_session_factory(engine)
    cipher = TokenCipher(Keyring.parse(settings.token_keys.get_secret_value()))
    session_secret = settings.session_secret.get_secret_value()
    credentials = auth.ServiceCredentials.parse(settings.service_tokens.get_secret_value())
    http = xero_http or httpx.AsyncClient(timeout=settings.xero_timeout_s, follow_redirects=False)
    xero = XeroClient(
        XeroHttp(http, observer=metrics.observe_xero),
        login_url=settings.xero_login_url,
        identity_url=settings.xero_identity_url,
        api_url=settings.xero_api_url,
        client_id=settings.xero_client_id,
        client_secret=settings.xero_client_secret,
    )
    relay = OutboxRelay(sessions, broker, settings.topics)

    def committed() -> None:
        relay.wake()
        gauge.wake()

    gauge = _ConnectionGauge(sessions, metrics)
    tokens = TokenService(sessions, xero, cipher, metrics, on_committed=committed)
    onboarding = Onboarding(
        sessions,
        xero,
        cipher,
        metrics,
        sink=settings.sink,
        redirect_uri=settings.redirect_uri,
        scopes=XERO_SCOPES,
        state_ttl=timedelta(seconds=settings.state_ttl_s),
        on_committed=committed,
    )
    disconnector = Disconnector(sessions, xero, cipher, tokens, on_committed=committed)
    watch = XeroSideWatch(sessions, xero, tokens, on_committed=committed)
    queries = EntityQueries(sessions)
    sync_now = SyncNow(sessions, on_committed=committed)

    dead_letters = DeadLetterPublisher(
        broker,
        consumer=settings.topics.group(CONSUMER_GROUP),
        topic_prefix=settings.topic_prefix,
        counter=metrics.dlq,
    )

    register_consumers(
        broker,
        settings,
        AccountsDirectory(sessions, dead_letters),
        SyncStatus(sessions, dead_letters, verify=watch.check),
    )
    lag = ConsumerLag(broker, metrics.consumer_lag, topic_prefix=settings.topic_prefix)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await require_current(MIGRATIONS, settings.database_url, service="connector")
        await start_broker(broker, settings.kafka)
        loops = [
            asyncio.create_task(relay.run(), name="outbox-relay"),
            asyncio.create_task(gauge.run(), name="connections-gauge"),
            asyncio.create_task(lag.run(), name="consumer-lag-gauge"),
            asyncio.create_task(
                _every(settings.connection_check_interval_s, watch.check_all),
                name="xero-side-watch",
            ),
        ]
        log.info(
            "connector ready",
            kafka=settings.kafka.bootstrap_servers,
            database=redacted_url(settings.database_url.get_secret_value()),
            topic_prefix=settings.topic_prefix,
            sink=settings.sink,
            xero=settings.xero_api_url,
            http=settings.public_url,
        )
        try:
            yield
        finally:
            for loop in loops:
                loop.cancel()
            for loop in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
            with contextlib.suppress(Exception):
                await relay.relay_once()  # what the last requests committed
            await broker.stop()
            if xero_http is None:
                await http.aclose()
            await engine.dispose()
            log.info("connector stopped")

    async def broker_ready() -> None:
        await ping_broker(broker)

    async def database_ready() -> None:
        await ping(engine)

    app = FastAPI(
        title="xerosync connector", lifespan=lifespan, docs_url="/api/docs", redoc_url=None
    )
    pages = Pages()
    _install_error_pages(app, pages, demo_sign_in=settings.demo_sign_in)
    _install_http_metrics(app, metrics)
    app.include_router(ops_router(registry, {"broker": broker_ready, "database": database_ready}))
    app.include_router(api_router(ApiDeps(queries, sync_now, tokens, session_secret, credentials)))
    app.include_router(
        web_router(
            WebDeps(
                pages=pages,
                onboarding=onboarding,
                disconnector=disconnector,
                queries=queries,
                sync_now=sync_now,
                session_secret=session_secret,
                secure_cookies=auth.cookie_is_secure(settings.public_url),
                demo_sign_in=settings.demo_sign_in,
            )
        )
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.broker = broker
    app.state.watch = watch
    app.state.relay = relay
    return app


class _ConnectionGauge:
    """Keeps `xerosync_connections{status}` equal to the table, after every change and
    every minute (another replica's changes)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], metrics: ConnectorMetrics
    ) -> None:
        self._sessions = sessions
        self._metrics = metrics
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def refresh(self) -> None:
        async with self._sessions() as session:
            self._metrics.set_connections(await Repository(session).count_by_status())

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as error:  # noqa: BLE001 - a gauge must not stop the service
                log.warning("could not count connections", error=type(error).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(60):
                    await self._wake.wait()
            self._wake.clear()


async def _every(interval_s: float, job: Callable[[], Awaitable[None]]) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await job()
        except Exception as error:  # noqa: BLE001 - the next round tries again
            log.warning("periodic job failed", job=job.__qualname__, error=type(error).__name__)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/internal/"))


def _install_error_pages(app: FastAPI, pages: Pages, *, demo_sign_in: bool) -> None:
    @app.exception_handler(auth.NotSignedIn)
    async def not_signed_in(request: Request, error: auth.NotSignedIn) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": str(error)}, status_code=401)
        return pages.sign_in_required(str(error), demo_sign_in)

    @app.exception_handler(auth.EntityForbidden)
    async def forbidden(request: Request, error: auth.EntityForbidden) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": str(error)}, status_code=403)
        return pages.error("Not your business", str(error).capitalize() + ".", 403)

    @app.exception_handler(auth.CsrfRefused)
    async def csrf(request: Request, error: auth.CsrfRefused) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": str(error)}, status_code=403)
        return pages.error("This page has expired", str(error).capitalize() + ".", 403)

    @app.exception_handler(auth.ServiceRefused)
    async def service(_request: Request, error: auth.ServiceRefused) -> Response:
        return JSONResponse(
            {"detail": str(error)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )


def _install_http_metrics(app: FastAPI, metrics: ConnectorMetrics) -> None:
    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            metrics.http_requests.labels(
                route=template, method=request.method, status=str(status)
            ).inc()
            metrics.http_request_duration.labels(route=template).observe(
                time.perf_counter() - started
            )


def main() -> None:
    settings = ConnectorSettings()
    configure_logging(settings, service="connector")
    serve(create_app(settings), settings)
