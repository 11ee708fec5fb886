"""Posting as users run it, for the scenarios of tests/e2e/test_syncer_faults.py: the sandbox,
the connector and the syncer as processes on the real broker and PostgreSQL, driven only
through what the processes offer (the connector's pages and JSON API, the sandbox's admin
API, the topics, the syncer's metrics and database)."""

import asyncio
import dataclasses
import uuid
import zlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.contracts.bank import AccountOpened, TransactionBooked, TransactionReversed
from shared.contracts.topics import (
    BANK_ACCOUNTS,
    BANK_TRANSACTIONS,
    XERO_SYNC_DUE,
    XERO_SYNC_RESULTS,
)
from shared.contracts.xero import SyncCompleted, SyncDue, SyncFailed
from tests.conftest import Env, Infrastructure, fresh_env
from tests.e2e.conftest import (
    ConnectorServer,
    SandboxServer,
    process_stack,
    short_sessions,
    start_connector,
    start_sandbox,
)
from tests.e2e.flows import connect_through_pages
from tests.helpers import eventually, metric, scrape, syncer_replica_holds, syncer_run
from tests.integration.connector_harness import read_all
from xero_sandbox.faults import FaultPlanIn, FaultRule
from xerosync.dev import syncer_env
from xerosync.devstack.processes import ManagedProcess
from xerosync.devstack.stack import Stack
from xerosync.producer import EventWriter

BankEvent = TransactionBooked | TransactionReversed
POSTING_PATHS = {
    "bankfeeds": "/bankfeeds.xro/1.0/Statements",
    "accounting": "/api.xro/2.0/BankTransactions",
}
ANSWERED = {"bankfeeds": 202, "accounting": 200}


def start_syncer(stack: Stack, sandbox: SandboxServer, settings: dict[str, str]) -> ManagedProcess:
    """`xerosync syncer` pointed at the sandbox and at the stack's connector."""
    env = {**syncer_env(sandbox.url, stack.service_url("connector")), **settings}
    return stack.start_service("syncer", extra_env=env)


@asynccontextmanager
async def posting_stack(
    infrastructure: Infrastructure,
    database_templates: dict[str, str],
    work: Path,
    *,
    sink: str,
    syncer_settings: dict[str, str],
    rate_limit_scale: float | None = None,
    scheduler: bool = False,
) -> AsyncIterator["PostingStack"]:
    """The sandbox, the connector making new connections in `sink`, the syncer (and the
    scheduler, if asked), each a process of its own on fresh topics and databases; stopped
    on exit. `rate_limit_scale` makes Xero's minute last 60/scale seconds."""
    async with fresh_env(short_sessions(infrastructure), database_templates) as env:
        stack = process_stack(env, work)
        db = create_async_engine(env.database_url("syncer"))
        try:
            sandbox = await asyncio.to_thread(start_sandbox, work)
            stack.started["sandbox"] = sandbox.process
            if rate_limit_scale is not None:
                async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as xero:
                    scaled = await xero.put(
                        "/admin/time", json={"rate_limit_scale": rate_limit_scale}
                    )
                    assert scaled.status_code == 200, scaled.text
            # Side by side: each waits about a session for its consumer group.
            starts: list[Any] = [
                asyncio.to_thread(start_connector, stack, sandbox, CONNECTOR_SINK=sink),
                asyncio.to_thread(start_syncer, stack, sandbox, syncer_settings),
            ]
            if scheduler:
                starts.append(asyncio.to_thread(stack.start_service, "scheduler"))
            connector, syncer, *_ = await asyncio.gather(*starts)
            yield PostingStack(
                env=env,
                stack=stack,
                sandbox=sandbox,
                connector=connector,
                sink=sink,
                db=db,
                syncer=syncer,
                syncer_settings=syncer_settings,
            )
        finally:
            await asyncio.to_thread(stack.stop)
            await db.dispose()


@dataclass(frozen=True)
class Connected:
    connection_id: uuid.UUID
    tenant_id: str
    entity_id: str


@dataclass
class PostingStack:
    """One sink's stack, shared by a class of scenarios; each scenario has organisations and
    entities of its own, so they do not see each other's transactions."""

    env: Env
    stack: Stack
    sandbox: SandboxServer
    connector: ConnectorServer
    sink: str
    db: AsyncEngine
    syncer: ManagedProcess
    syncer_settings: dict[str, str]
    """The syncer's settings for the whole class (a restart may add to them)."""
    ingested: set[str] = field(default_factory=set)
    """Every transaction id written to the transactions topic."""
    settled: dict[uuid.UUID, Connected] = field(default_factory=dict)
    """Connections whose latest sync posted their whole backlog."""

    # ------------------------------------------------------------------ the syncer process
    def start_syncer(self, **extra_env: str) -> ManagedProcess:
        """Start the syncer with the class's settings and `extra_env` (blocks until ready)."""
        env = {**self.syncer_settings, **extra_env}
        self.syncer = start_syncer(self.stack, self.sandbox, env)
        return self.syncer

    async def restart_syncer(self, **extra_env: str) -> None:
        """Stop the syncer (SIGTERM) and start it with `extra_env`."""
        await asyncio.to_thread(self.syncer.stop)
        await asyncio.to_thread(self.start_syncer, **extra_env)

    @asynccontextmanager
    async def connector_with(self, **extra_env: str) -> AsyncIterator[None]:
        """The connector restarted with `extra_env` (the same app, sink and the rest) for
        the block, then restarted as it was, so later scenarios see it unchanged."""
        await asyncio.to_thread(self._restart_connector, extra_env)
        try:
            yield
        finally:
            await asyncio.to_thread(self._restart_connector, {})

    def _restart_connector(self, extra_env: Mapping[str, str]) -> None:
        self.connector.process.stop()
        env = {**self.connector.env, **extra_env}
        process = self.stack.start_service("connector", extra_env=env)
        self.connector = dataclasses.replace(self.connector, process=process)

    @property
    def syncer_url(self) -> str:
        return self.stack.service_url("syncer")

    async def metric(self, name: str, **labels: str) -> float:
        return await metric(self.syncer_url, name, **labels)

    async def metric_sum(self, name: str) -> float:
        """A metric summed over all its labels."""
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.get(f"{self.syncer_url}/metrics")
        return sum(value for (sample, _), value in scrape(answer.text).items() if sample == name)

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        async with self.db.begin() as connection:
            result = await connection.execute(text(statement), params)
            return list(result.fetchall()) if result.returns_rows else []

    # ------------------------------------------------------------------ Xero (the sandbox)
    async def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.sandbox.url, timeout=10) as client:
            answer = await client.request(method, path, **kwargs)
        assert answer.is_success, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None

    async def organisation(self, name: str, *currencies: str) -> str:
        """A new organisation (HKD based) holding `currencies`; its tenant id."""
        created = await self.admin(
            "POST",
            "/admin/organisations",
            json={"name": name, "base_currency": "HKD", "currencies": list(currencies)},
        )
        return str(created["tenant_id"])

    async def holdings(self, tenant_id: str) -> dict[str, Any]:
        return dict(await self.admin("GET", f"/admin/organisations/{tenant_id}"))

    async def faults(self, *rules: FaultRule) -> None:
        """Xero's faults from now on (a fixed seed, so a run can be repeated)."""
        plan = FaultPlanIn(rules=list(rules), seed=7)
        await self.admin("PUT", "/admin/faults", json=plan.model_dump())

    async def requests(self, tenant_id: str) -> list[dict[str, Any]]:
        """The organisation's API calls as Xero saw them, oldest first."""
        calls = await self.admin("GET", "/admin/requests", params={"tenant_id": tenant_id})
        return list(calls)

    async def postings_sent(self, tenant_id: str) -> list[dict[str, Any]]:
        """The posting calls (statements, bank transactions) Xero received."""
        path = POSTING_PATHS[self.sink].lower()
        return [
            r
            for r in await self.requests(tenant_id)
            if r["method"] in {"POST", "PUT"} and r["path"].lower() == path
        ]

    # ------------------------------------------------------------------ the bank
    async def ingest(self, entity_id: str, accounts: Mapping[str, Sequence[BankEvent]]) -> None:
        """Open the entity's accounts (id → its events; the currency from the first event),
        then write their transactions; both topics as the bank's producers write them."""
        async with EventWriter(self.env.kafka, self.env.topics) as writer:
            await writer.write(
                BANK_ACCOUNTS,
                [
                    AccountOpened(
                        entity_id=entity_id,
                        account_id=account,
                        currency=events[0].currency,
                        name=f"{events[0].currency} Current",
                        account_number=account_number(account),
                        occurred_at=datetime.now(UTC),
                    )
                    for account, events in accounts.items()
                ],
            )
            everything = [e for events in accounts.values() for e in events]
            await writer.write(BANK_TRANSACTIONS, everything)
        self.ingested.update(e.transaction_id for e in everything)
        await eventually(
            lambda: self.sql(
                "SELECT count(*) FROM bank_transactions WHERE transaction_id = ANY(:ids)",
                ids=[e.transaction_id for e in everything],
            ),
            until=lambda rows: rows[0][0] == len(everything),
            what="the syncer stored the transactions",
        )

    @asynccontextmanager
    async def user(self, entity_id: str) -> AsyncIterator[httpx.AsyncClient]:
        """The entity's user, signed in to the connector (development sign-in)."""
        async with httpx.AsyncClient(base_url=self.connector.url, timeout=10) as client:
            signed_in = await client.post("/dev/sign-in", data={"entity_id": entity_id})
            assert signed_in.status_code == 303, signed_in.text
            yield client

    async def status(self, entity_id: str) -> dict[str, Any]:
        """What the bank's app shows the entity's user about its Xero connection."""
        async with self.user(entity_id) as user:
            answer = await user.get(f"/api/v1/entities/{entity_id}/xero")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def connect(
        self, entity_id: str, tenant_id: str, accounts: Iterable[str], *, start_date: str
    ) -> Connected:
        """The entity's user connects `accounts` to the organisation through the connector's
        pages and Xero's consent page; the syncer's replica then holds the connection."""
        wanted = set(accounts)
        await eventually(
            lambda: self.status(entity_id),
            until=lambda s: wanted <= {a["account_id"] for a in s["accounts"]},
            what="the connector's accounts directory",
        )
        done = await connect_through_pages(
            self.connector.url,
            self.sandbox.url,
            entity_id=entity_id,
            tenant_id=tenant_id,
            accounts=sorted(wanted),
            start_date=start_date,
        )
        assert done.status_code in (200, 303), done.text
        status = await self.status(entity_id)
        connection_id = uuid.UUID(status["connection"]["connection_id"])
        await syncer_replica_holds(self.sql, connection_id)
        return Connected(connection_id, tenant_id, entity_id)

    async def due(self, connected: Connected) -> uuid.UUID:
        """A SyncDue for the connection, as the scheduler emits it; its event id."""
        event = SyncDue(
            connection_id=connected.connection_id,
            tenant_id=uuid.UUID(connected.tenant_id),
            reason="manual",
            due_at=datetime.now(UTC),
        )
        async with EventWriter(self.env.kafka, self.env.topics) as writer:
            await writer.write(XERO_SYNC_DUE, [event])
        return event.event_id

    async def finished_run(self, due_id: uuid.UUID, *, within: float = 60) -> Any:
        """The run a SyncDue started, once finished: run_id, state, outcome."""
        return await syncer_run(self.sql, due_id, within=within)

    async def result_of(
        self, due_id: uuid.UUID, *, within: float = 60
    ) -> SyncCompleted | SyncFailed:
        """The result the SyncDue's run published."""
        run = await syncer_run(self.sql, due_id, done="published_at", within=within)
        [result] = [r for r in await self.results() if r.run_id == run.run_id]
        return result

    async def sync(self, connected: Connected, *, within: float = 60) -> SyncCompleted | SyncFailed:
        """A SyncDue for the connection; the result its run published."""
        result = await self.result_of(await self.due(connected), within=within)
        if isinstance(result, SyncCompleted) and result.remaining == 0 and not result.failed:
            self.settled[connected.connection_id] = connected
        else:
            self.settled.pop(connected.connection_id, None)
        return result

    async def results(self) -> list[SyncCompleted | SyncFailed]:
        records = await read_all(self.env.kafka, self.env.topics.name(XERO_SYNC_RESULTS))
        return [XERO_SYNC_RESULTS.adapter.validate_json(r.value or b"") for r in records]


def account_number(account: str) -> str:
    """A stable bank account number for one of our accounts (Xero matches bank accounts by
    currency and number, so each of ours has its own)."""
    return f"012-{zlib.crc32(account.encode()) % 10**6:06d}-001"


def landed(holdings: dict[str, Any]) -> list[str]:
    """Our transaction ids as the organisation holds them (delivered statement lines, bank
    transactions not deleted), sorted, each as often as Xero holds it."""
    lines = [
        line["transaction_id"]
        for s in holdings["statements"]
        if s["status"] == "DELIVERED"
        for line in s["lines"]
    ]
    held = [t["Reference"] for t in holdings["bank_transactions"] if t["Status"] != "DELETED"]
    return sorted(lines + held)


def ids(events: Iterable[BankEvent]) -> list[str]:
    return sorted(e.transaction_id for e in events)
