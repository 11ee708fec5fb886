"""The scheduler's real app (real broker, real PostgreSQL) on a `ManualClock`, so a test
drives hours of schedule in milliseconds; connection events and *Sync now* presses are
published to the real topics, and `SyncDue` is read back from the real topic."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.scheduler.bootstrap import create_app
from services.scheduler.config import SchedulerSettings
from services.scheduler.domain.clock import ManualClock
from shared.contracts.topics import XERO_CONNECTIONS, XERO_SYNC_DUE, XERO_SYNC_REQUESTS
from shared.contracts.xero import (
    AccountMapping,
    ConnectionDisconnected,
    ConnectionEstablished,
    ConnectionUpdated,
    SyncDue,
    SyncRequested,
)
from shared.kafka import client_options, topic_partitions
from tests.conftest import Env
from tests.helpers import eventually, scrape
from xerosync.producer import EventWriter

START = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
INTERVAL = timedelta(hours=3)
COOLDOWN = timedelta(seconds=60)


def scheduler_settings(env: Env, **overrides: Any) -> SchedulerSettings:
    values: dict[str, Any] = {
        "sync_interval": INTERVAL,
        "manual_sync_cooldown": COOLDOWN,
        "takeover_grace": timedelta(0),
        "takeover_poll": timedelta(milliseconds=200),
        "gauge_refresh": timedelta(milliseconds=200),
    } | overrides
    return SchedulerSettings(
        database_url=SecretStr(env.database_url("scheduler")),
        topic_prefix=env.topics.prefix,
        kafka=env.kafka,
        **values,
    )


def connection_event(
    connection_id: uuid.UUID,
    *,
    version: int,
    kind: str = "established",
    status: str = "active",
    tenant_id: uuid.UUID | None = None,
) -> ConnectionEstablished | ConnectionUpdated | ConnectionDisconnected:
    fields: dict[str, Any] = {
        "connection_id": connection_id,
        "version": version,
        "entity_id": f"ent-{str(connection_id)[:8]}",
        "tenant_id": tenant_id or uuid.uuid5(uuid.NAMESPACE_URL, f"tenant/{connection_id}"),
        "tenant_name": "Acme Trading Ltd",
        "org_timezone": "Asia/Hong_Kong",
        "base_currency": "HKD",
        "sink": "bankfeeds",
        "sync_start_date": date(2026, 11, 1),
        "status": status,
        "accounts": [
            AccountMapping(
                account_id=f"acc-{str(connection_id)[:8]}-hkd", currency="HKD", status="linked"
            )
        ],
    }
    if kind == "established":
        return ConnectionEstablished(**fields)
    if kind == "updated":
        return ConnectionUpdated(**fields)
    return ConnectionDisconnected(**fields, reason="user")


@dataclass
class DueReader:
    """Every `SyncDue` on the test's topic, in the order each partition holds them."""

    consumer: AIOKafkaConsumer
    seen: list[SyncDue] = field(default_factory=list)
    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)

    async def _pull(self) -> None:
        batches = await self.consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                self.records.append(record)
                self.seen.append(SyncDue.model_validate_json(record.value or b""))

    async def until(self, count: int, *, within: float = 30.0) -> list[SyncDue]:
        """All events so far once there are at least `count`."""
        await eventually(
            self.pulled, until=lambda n: n >= count, within=within, what=f"{count} SyncDue"
        )
        return list(self.seen)

    async def pulled(self) -> int:
        await self._pull()
        return len(self.seen)

    def of(self, connection_id: uuid.UUID) -> list[SyncDue]:
        return sorted(
            (e for e in self.seen if e.connection_id == connection_id), key=lambda e: e.due_at
        )


@dataclass
class SchedulerHarness:
    env: Env
    clock: ManualClock
    writer: EventWriter
    due: DueReader
    db: AsyncEngine
    app: FastAPI | None = None
    http: httpx.AsyncClient | None = None

    async def publish_connection(self, *events: Any) -> None:
        await self.writer.write(XERO_CONNECTIONS, list(events))

    async def connect(
        self, connection_id: uuid.UUID | None = None, *, version: int = 1, **kw: Any
    ) -> uuid.UUID:
        connection_id = connection_id or uuid.uuid4()
        await self.publish_connection(connection_event(connection_id, version=version, **kw))
        return connection_id

    async def press(
        self, connection_id: uuid.UUID, *, at: datetime | None = None, times: int = 1
    ) -> None:
        requests = [
            SyncRequested(
                connection_id=connection_id,
                entity_id=f"ent-{str(connection_id)[:8]}",
                requested_by="user-1",
                occurred_at=at or self.clock.now(),
            )
            for _ in range(times)
        ]
        await self.writer.write(XERO_SYNC_REQUESTS, requests)

    async def schedule(self, connection_id: uuid.UUID) -> dict[str, Any] | None:
        async with self.db.connect() as connection:
            row = (
                await connection.execute(
                    text("SELECT * FROM schedules WHERE connection_id = :id"),
                    {"id": connection_id},
                )
            ).first()
        return dict(row._mapping) if row else None

    async def schedule_where(
        self, connection_id: uuid.UUID, check: Any, what: str
    ) -> dict[str, Any]:
        result: dict[str, Any] = await eventually(
            lambda: self.schedule(connection_id),
            until=lambda row: row is not None and check(row),
            what=what,
        )
        return result

    async def metric(self, name: str, **labels: str) -> float:
        assert self.http is not None
        samples = scrape((await self.http.get("/metrics")).text)
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    @asynccontextmanager
    async def running(self, **overrides: Any) -> AsyncIterator[FastAPI]:
        """The scheduler app, started on the harness's clock; stopped on exit."""
        app = create_app(scheduler_settings(self.env, **overrides), clock=self.clock)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://scheduler"
            ) as http,
        ):
            self.app, self.http = app, http
            try:
                yield app
            finally:
                self.app = self.http = None


@asynccontextmanager
async def due_reader(env: Env) -> AsyncIterator[DueReader]:
    """Reads the test's `xero.sync-due.v1` from the beginning, as events arrive."""
    topic = env.topics.name(XERO_SYNC_DUE)
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options(env.kafka))
    await consumer.start()
    try:
        consumer.assign(await topic_partitions(consumer, topic))
        await consumer.seek_to_beginning()
        yield DueReader(consumer)
    finally:
        await consumer.stop()


@asynccontextmanager
async def scheduler_harness(
    env: Env, *, start: datetime = START
) -> AsyncIterator[SchedulerHarness]:
    db = create_async_engine(env.database_url("scheduler"))
    try:
        async with due_reader(env) as due, EventWriter(env.kafka, env.topics) as writer:
            yield SchedulerHarness(env, ManualClock(start), writer, due, db)
    finally:
        await db.dispose()
