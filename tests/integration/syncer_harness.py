"""The syncer's real app with the connector's real app, both on the real broker and real
PostgreSQL, against one in-process Xero sandbox. The syncer's Xero calls are checked
against Xero's OpenAPI documents; its token calls reach the connector's internal API."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.types import ASGIApp, Receive, Scope, Send

from services.syncer.bootstrap import create_app
from shared.contracts.base import Event
from shared.contracts.topics import BANK_TRANSACTIONS, XERO_SYNC_DUE, XERO_SYNC_RESULTS, TopicSpec
from shared.contracts.xero import SyncCompleted, SyncDue, SyncFailed
from shared.xero_timezones import XERO_TO_IANA
from tests.conftest import Env
from tests.helpers import eventually, syncer_replica_holds, syncer_run
from tests.integration.conftest import InProcessService, syncer_settings
from tests.integration.connector_harness import (
    PUBLIC_URL,
    SANDBOX_URL,
    SERVICE_TOKEN,
    ConnectorHarness,
    read_all,
    running_connector,
)
from tests.sandbox.contract import ContractCheck, specs_if_present
from xero_sandbox.app import create_app as create_sandbox_app
from xero_sandbox.gateway import DroppedResponse
from xero_sandbox.state import Organisation, Sandbox
from xerosync.producer import EventWriter

_SPECS = specs_if_present()
XERO_API_PATHS = ("/api.xro/", "/bankfeeds.xro/")


@dataclass(frozen=True)
class XeroCall:
    """One of the syncer's calls to Xero, as the syncer saw it (times: time.monotonic())."""

    started: float
    ended: float
    method: str
    path: str
    status: int | None
    """None: no answer (the connection dropped, or the read timed out)."""
    retry_after: float | None
    idempotency_key: str | None


class NetworkLikeTransport(httpx.AsyncBaseTransport):
    """The in-process sandbox reached as over a network, for the syncer's Xero client.

    httpx's ASGITransport ignores timeouts and hands the app's exceptions to the caller; a
    real network does neither. Here the client's read timeout holds (`httpx.ReadTimeout`),
    and an answer the sandbox drops (its `timeout` and `drop_after_write` faults) arrives as
    a broken connection (`httpx.RemoteProtocolError`). Every API call is logged in `calls`.
    """

    def __init__(self, app: Any, calls: list[XeroCall]) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._calls = calls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        started = time.monotonic()
        response: httpx.Response | None = None
        try:
            async with asyncio.timeout(timeouts.get("read")):
                response = await self._inner.handle_async_request(request)
        except TimeoutError as error:
            raise httpx.ReadTimeout("no answer in time", request=request) from error
        except DroppedResponse as error:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from error
        finally:
            self._log(request, started, response)
        return response

    def _log(self, request: httpx.Request, started: float, response: httpx.Response | None) -> None:
        if not request.url.path.lower().startswith(XERO_API_PATHS):
            return
        retry_after = response.headers.get("Retry-After") if response is not None else None
        self._calls.append(
            XeroCall(
                started=started,
                ended=time.monotonic(),
                method=request.method,
                path=request.url.path,
                status=response.status_code if response is not None else None,
                retry_after=float(retry_after) if retry_after else None,
                idempotency_key=request.headers.get("Idempotency-Key"),
            )
        )


@dataclass
class Connected:
    connection_id: uuid.UUID
    tenant_id: uuid.UUID
    organisation: Organisation


@dataclass
class SyncerHarness:
    connector: ConnectorHarness
    syncer: InProcessService
    sandbox: Sandbox
    contract: ContractCheck
    """Checks the syncer's own Xero calls."""
    env: Env
    db: AsyncEngine
    xero_calls: list[XeroCall] = field(default_factory=list)
    """The syncer's Xero API calls, across restarts, in the order they ended."""
    start_syncer: Callable[..., AbstractAsyncContextManager[InProcessService]] | None = None
    _running: AsyncExitStack = field(default_factory=AsyncExitStack)

    @asynccontextmanager
    async def syncer_stopped(self, **overrides: Any) -> AsyncIterator[None]:
        """The syncer app stopped for the block (requests in flight cut off, its consumers
        gone from the group), then a new one started on the same database, broker,
        connector and sandbox, with `overrides` applied to the first one's settings."""
        assert self.start_syncer is not None, "made by running_syncer"
        await self._running.aclose()
        yield
        self.syncer = await self._running.enter_async_context(self.start_syncer(**overrides))

    async def connect(
        self,
        entity_id: str,
        organisation: Organisation,
        accounts: Iterable[tuple[str, str]],
        *,
        start_date: str,
    ) -> Connected:
        """The entity's accounts opened, its user connected to `organisation` through the
        connector's pages, and the syncer's replica holding the connection."""
        specs = list(accounts)
        ids = await self.connector.open_accounts(entity_id, *specs)
        async with self.connector.user(entity_id) as user:
            await eventually(
                user.status,
                until=lambda s: len(s["accounts"]) == len(ids),
                what="accounts directory",
            )
            done = await user.connect(organisation, accounts=ids, start_date=start_date)
            assert done.status_code == 303, done.text
            status = await user.status()
        connection_id = uuid.UUID(status["connection"]["connection_id"])
        await syncer_replica_holds(self.sql, connection_id)
        return Connected(connection_id, uuid.UUID(organisation.tenant_id), organisation)

    async def publish(self, spec: TopicSpec, events: Iterable[Event]) -> None:
        async with EventWriter(self.env.kafka, self.env.topics) as writer:
            await writer.write(spec, events)

    async def ingest(self, events: list[Any]) -> None:
        await self.publish(BANK_TRANSACTIONS, events)
        wanted = {e.transaction_id for e in events}
        await eventually(
            lambda: self.sql(
                "SELECT count(*) FROM bank_transactions WHERE transaction_id = ANY(:ids)",
                ids=list(wanted),
            ),
            until=lambda rows: rows[0][0] == len(wanted),
            what="transactions ingested",
        )

    async def sync(
        self, connected: Connected, *, reason: str = "manual", within: float = 60
    ) -> SyncCompleted | SyncFailed:
        """A SyncDue for the connection, as the scheduler emits it; the result of its run.

        The run is awaited in the syncer's database (its result published), and the result
        then read once: reading a topic with nothing in it costs half a second here."""
        due = SyncDue(
            connection_id=connected.connection_id,
            tenant_id=connected.tenant_id,
            reason=reason,  # type: ignore[arg-type]
            due_at=datetime.now(UTC),
        )
        await self.publish(XERO_SYNC_DUE, [due])
        run = await syncer_run(self.sql, due.event_id, done="published_at", within=within)
        [result] = [r for r in await self.results() if r.run_id == run.run_id]
        return result

    async def results(self) -> list[SyncCompleted | SyncFailed]:
        records = await read_all(self.env.kafka, self.env.topics.name(XERO_SYNC_RESULTS))
        return [XERO_SYNC_RESULTS.adapter.validate_json(r.value or b"") for r in records]

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        async with self.db.begin() as connection:
            result = await connection.execute(text(statement), params)
            return list(result.fetchall()) if result.returns_rows else []


def statement_lines(organisation: Organisation) -> list[tuple[str, Any]]:
    """Every delivered statement line as (feed connection id, line), in delivery order."""
    return [
        (statement.feed_connection_id, line)
        for statement in organisation.statements.values()
        if statement.status == "DELIVERED"
        for line in statement.lines
    ]


def organisation_zone(organisation: Organisation) -> str:
    """The organisation's IANA time zone, as the connector publishes it."""
    return XERO_TO_IANA.get(organisation.timezone, "UTC")


def signed(amount: Decimal, indicator: str) -> Decimal:
    return amount if indicator == "CREDIT" else -amount


@asynccontextmanager
async def running_syncer(
    env: Env, *, sink: str = "bankfeeds", **syncer_overrides: Any
) -> AsyncIterator[SyncerHarness]:
    """The harness. The connector and the syncer start side by side: each waits seconds for
    its consumer group on the embedded broker, and the syncer needs the connector only once
    it syncs."""
    sandbox = Sandbox()
    contract = ContractCheck(_SPECS)
    calls: list[XeroCall] = []
    sandbox_app = create_sandbox_app(sandbox)
    connector_apps: list[ASGIApp] = []

    async def connector_api(scope: Scope, receive: Receive, send: Send) -> None:
        await connector_apps[0](scope, receive, send)

    @asynccontextmanager
    async def start_syncer(**overrides: Any) -> AsyncIterator[InProcessService]:
        settings = syncer_settings(
            env,
            **{
                "xero_api_url": SANDBOX_URL,
                "connector_url": PUBLIC_URL,
                "service_token": SecretStr(SERVICE_TOKEN),
                "run_poll": "200ms",
                **syncer_overrides,
                **overrides,
            },
        )
        async with (
            httpx.AsyncClient(
                transport=NetworkLikeTransport(sandbox_app, calls),
                base_url=SANDBOX_URL,
                timeout=settings.xero_timeout_s,
                event_hooks={"response": [contract]},
            ) as xero_http,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=connector_api), base_url=PUBLIC_URL
            ) as connector_http,
        ):
            app = create_app(settings, xero_http=xero_http, connector_http=connector_http)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://syncer"
                ) as client,
            ):
                yield InProcessService(app, client)

    starting_connector = running_connector(env, sandbox, ContractCheck(_SPECS), sink=sink)
    starting_syncer = start_syncer()
    connector, syncer = await asyncio.gather(
        starting_connector.__aenter__(), starting_syncer.__aenter__(), return_exceptions=True
    )
    async with AsyncExitStack() as stack:
        if not isinstance(connector, BaseException):
            stack.push_async_exit(starting_connector)
        running = AsyncExitStack()
        if not isinstance(syncer, BaseException):
            running.push_async_exit(starting_syncer)
        stack.push_async_callback(running.aclose)
        if isinstance(connector, BaseException):
            raise connector
        if isinstance(syncer, BaseException):
            raise syncer
        connector_apps.append(connector.app)
        db = create_async_engine(env.database_url("syncer"))
        stack.push_async_callback(db.dispose)
        yield SyncerHarness(
            connector, syncer, sandbox, contract, env, db, calls, start_syncer, running
        )
