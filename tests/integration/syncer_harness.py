"""The syncer's real app with the connector's real app, both on the real broker and real
PostgreSQL, against one in-process Xero sandbox. The syncer's Xero calls are checked
against Xero's OpenAPI documents; its token calls reach the connector's internal API."""

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.syncer.bootstrap import create_app
from shared.contracts.base import Event
from shared.contracts.topics import BANK_TRANSACTIONS, XERO_SYNC_DUE, XERO_SYNC_RESULTS, TopicSpec
from shared.contracts.xero import SyncCompleted, SyncDue, SyncFailed
from shared.xero_timezones import XERO_TO_IANA
from tests.conftest import Env
from tests.helpers import eventually
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
from xero_sandbox.state import Organisation, Sandbox
from xerosync.producer import EventWriter

_SPECS = specs_if_present()


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
        await eventually(
            lambda: self.sql(
                "SELECT count(*) FROM connections WHERE connection_id = :id AND status = 'active'",
                id=connection_id,
            ),
            until=lambda rows: rows[0][0] == 1,
            what="the syncer's replica holds the connection",
        )
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
        """A SyncDue for the connection, as the scheduler emits it; its result."""
        due = SyncDue(
            connection_id=connected.connection_id,
            tenant_id=connected.tenant_id,
            reason=reason,  # type: ignore[arg-type]
            due_at=datetime.now(UTC),
        )
        before = len(await self.results())
        await self.publish(XERO_SYNC_DUE, [due])
        results = await eventually(
            self.results,
            until=lambda found: len(found) > before,
            within=within,
            what="a sync result",
        )
        last: SyncCompleted | SyncFailed = results[-1]
        return last

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
    sandbox = Sandbox()
    contract = ContractCheck(_SPECS)
    async with running_connector(env, sandbox, ContractCheck(_SPECS), sink=sink) as connector:
        sandbox_app = create_sandbox_app(sandbox)
        settings = syncer_settings(
            env,
            xero_api_url=SANDBOX_URL,
            connector_url=PUBLIC_URL,
            service_token=SecretStr(SERVICE_TOKEN),
            run_poll="200ms",
            **syncer_overrides,
        )
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=sandbox_app),
                base_url=SANDBOX_URL,
                event_hooks={"response": [contract]},
            ) as xero_http,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=connector.app), base_url=PUBLIC_URL
            ) as connector_http,
        ):
            app = create_app(settings, xero_http=xero_http, connector_http=connector_http)
            db = create_async_engine(env.database_url("syncer"))
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://syncer"
                ) as client,
            ):
                try:
                    yield SyncerHarness(
                        connector, InProcessService(app, client), sandbox, contract, env, db
                    )
                finally:
                    await db.dispose()
