"""The connector's real app (real broker, real PostgreSQL) against an in-process Xero
sandbox, and a user who walks its pages with plain HTTP (the browser test walks the same
pages in Chromium)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.connector.bootstrap import create_app
from services.connector.config import ConnectorSettings
from services.connector.entrypoints.auth import mint_user_token
from shared.contracts.bank import AccountOpened
from shared.contracts.topics import BANK_ACCOUNTS, TopicSpec
from shared.kafka import client_options, make_broker, topic_partitions
from shared.settings import CommonSettings, KafkaSettings
from tests.conftest import Env
from tests.helpers import eventually
from tests.sandbox.contract import ContractCheck
from xero_sandbox import identity
from xero_sandbox.app import create_app as create_sandbox_app
from xero_sandbox.organisations import OrganisationIn, create_organisation
from xero_sandbox.state import Organisation, Sandbox
from xerosync.devstack.forms import hidden_fields

PUBLIC_URL = "http://connector.test"
SANDBOX_URL = "http://sandbox.test"
SESSION_SECRET = "integration-session-secret-0123456789abcdef"
SERVICE_TOKEN = "integration-service-token-0123456789abcdef"


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class User:
    """A bank user of one entity, with their own cookie jar."""

    entity_id: str
    http: httpx.AsyncClient
    harness: "ConnectorHarness"

    async def page(self, suffix: str = "") -> httpx.Response:
        return await self.http.get(f"/entities/{self.entity_id}/xero{suffix}")

    async def csrf(self) -> str:
        return hidden_fields((await self.page()).text)["csrf_token"]

    async def start_connect(
        self, *, accounts: list[str] | None = None, start_date: str | None = None
    ) -> httpx.Response:
        form: dict[str, Any] = {"csrf_token": await self.csrf()}
        if accounts is not None:
            form["account_id"] = accounts
        if start_date is not None:
            form["start_date"] = start_date
        return await self.http.post(f"/entities/{self.entity_id}/xero/connect", data=form)

    async def connect(
        self,
        organisation: Organisation | None,
        *,
        accounts: list[str],
        decision: str = "allow",
        start_date: str | None = None,
        email: str = "owner@example.com",
    ) -> httpx.Response:
        """Sync → Xero's consent page → allow (or deny) → back to the connector."""
        started = await self.start_connect(accounts=accounts, start_date=start_date)
        assert started.status_code == 303, started.text
        location = started.headers["location"]
        assert location.startswith(SANDBOX_URL), location
        return await self.consent(location, organisation, decision=decision, email=email)

    async def consent(
        self,
        authorize_url: str,
        organisation: Organisation | None,
        *,
        decision: str = "allow",
        email: str = "owner@example.com",
    ) -> httpx.Response:
        callback = await self.authorize(authorize_url, organisation, decision=decision, email=email)
        return await self.callback(callback)

    async def authorize(
        self,
        authorize_url: str,
        organisation: Organisation | None,
        *,
        decision: str = "allow",
        email: str = "owner@example.com",
    ) -> str:
        """Xero's consent page, answered: the URL Xero sends the browser back to."""
        xero = self.harness.xero
        consent_page = await xero.get(path_of(authorize_url))
        assert consent_page.status_code == 200, consent_page.text
        form: dict[str, Any] = {
            "request": hidden_fields(consent_page.text)["request"],
            "decision": decision,
            "email": email,
        }
        if organisation is not None:
            form["tenant_id"] = [organisation.tenant_id]
        back = await xero.post("/identity/connect/authorize", data=form)
        assert back.status_code == 302, back.text
        callback: str = back.headers["location"]
        assert callback.startswith(f"{PUBLIC_URL}/xero/callback"), callback
        return callback

    async def callback(self, url: str) -> httpx.Response:
        """The browser arriving back from Xero at the connector's callback."""
        return await self.http.get(path_of(url))

    async def press(self, action: str, **fields: str) -> httpx.Response:
        form = {"csrf_token": await self.csrf(), **fields}
        return await self.http.post(f"/entities/{self.entity_id}/xero/{action}", data=form)

    async def status(self) -> dict[str, Any]:
        answer = await self.http.get(f"/api/v1/entities/{self.entity_id}/xero")
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


@dataclass
class ConnectorHarness:
    app: FastAPI
    http: httpx.AsyncClient
    """Anonymous client of the connector (no cookies of its own)."""
    sandbox: Sandbox
    xero: httpx.AsyncClient
    """The sandbox, as the user's browser and as an admin reach it."""
    settings: ConnectorSettings
    env: Env
    contract: ContractCheck
    db: AsyncEngine
    """The connector's own database (for what the pages do not show)."""
    users: list[httpx.AsyncClient] = field(default_factory=list)

    def organisation(self, **spec: Any) -> Organisation:
        fields = {"name": "Acme Trading Ltd", "base_currency": "HKD"} | spec
        return create_organisation(self.sandbox, OrganisationIn.model_validate(fields))

    @asynccontextmanager
    async def user(self, entity_id: str, user_id: str = "user-1") -> AsyncIterator[User]:
        token = mint_user_token(SESSION_SECRET, user_id=user_id, entity_id=entity_id, name="Ada")
        async with self._client() as client:
            signed_in = await client.get("/sign-in", params={"token": token})
            assert signed_in.status_code == 303, signed_in.text
            yield User(entity_id, client, self)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=PUBLIC_URL)

    async def open_accounts(self, entity_id: str, *specs: tuple[str, str]) -> list[str]:
        """Publish AccountOpened for (account_id, currency) pairs and wait until the
        connector's directory holds them."""
        broker = make_broker(CommonSettings(kafka=self.env.kafka), client_id="test-producer")
        await broker.connect()
        try:
            for account_id, currency in specs:
                event = AccountOpened(
                    entity_id=entity_id,
                    account_id=account_id,
                    currency=currency,
                    name=f"{currency} Current",
                    account_number=f"012-{abs(hash(account_id)) % 10**6:06d}-{currency}",
                    occurred_at=datetime.now(UTC),
                )
                await broker.publish(
                    event.model_dump_json().encode(),
                    topic=self.env.topics.name(BANK_ACCOUNTS),
                    key=account_id.encode(),
                )
        finally:
            await broker.stop()
        return [account_id for account_id, _ in specs]

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        async with self.db.begin() as connection:
            result = await connection.execute(text(statement), params)
            return list(result.fetchall()) if result.returns_rows else []

    async def connections(self) -> list[Any]:
        """Every connection row, oldest first."""
        return await self.sql(
            "SELECT id, entity_id, tenant_id, status, version, xero_connection_id "
            "FROM connections ORDER BY connected_at"
        )

    async def published(self, spec: TopicSpec) -> list[tuple[str, Any]]:
        """Every (key, event) on the topic once the outbox is empty: what the connector has
        committed so far, all of it published."""
        await eventually(
            lambda: self.sql("SELECT count(*) FROM outbox"),
            until=lambda rows: rows[0][0] == 0,
            what="outbox relayed",
        )
        records = await read_all(self.env.kafka, self.env.topics.name(spec))
        return [
            ((r.key or b"").decode(), spec.adapter.validate_json(r.value or b"")) for r in records
        ]

    async def token(self, connection_id: str) -> httpx.Response:
        return await self.http.post(
            f"/internal/v1/connections/{connection_id}/access-token",
            headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
        )


async def read_all(kafka: KafkaSettings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of a topic up to its end now, in offset order per partition."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options(kafka))
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for part in batch.values():
                records.extend(part)
        return sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))
    finally:
        await consumer.stop()


def connector_settings(env: Env, **overrides: Any) -> ConnectorSettings:
    return ConnectorSettings(
        database_url=SecretStr(env.database_url("connector")),
        topic_prefix=env.topics.prefix,
        kafka=env.kafka,
        public_url=PUBLIC_URL,
        xero_login_url=SANDBOX_URL,
        xero_identity_url=SANDBOX_URL,
        xero_api_url=SANDBOX_URL,
        session_secret=SecretStr(SESSION_SECRET),
        service_tokens=SecretStr(SERVICE_TOKEN),
        **overrides,
    )


@asynccontextmanager
async def running_connector(
    env: Env, sandbox: Sandbox, contract: ContractCheck, **overrides: Any
) -> AsyncIterator[ConnectorHarness]:
    app_in_xero = identity.register_app(sandbox, "xerosync", [f"{PUBLIC_URL}/xero/callback"])
    settings = connector_settings(
        env,
        xero_client_id=app_in_xero.client_id,
        xero_client_secret=SecretStr(app_in_xero.client_secret),
        **overrides,
    )
    sandbox_app = create_sandbox_app(sandbox)
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sandbox_app),
            base_url=SANDBOX_URL,
            event_hooks={"response": [contract]},
        ) as connector_to_xero,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sandbox_app), base_url=SANDBOX_URL
        ) as user_to_xero,
    ):
        app = create_app(settings, xero_http=connector_to_xero)
        db = create_async_engine(env.database_url("connector"))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL
            ) as anonymous,
        ):
            try:
                yield ConnectorHarness(
                    app, anonymous, sandbox, user_to_xero, settings, env, contract, db
                )
            finally:
                await db.dispose()
