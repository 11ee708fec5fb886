"""The whole system on one machine: infrastructure (embedded unless told otherwise),
databases and topics prepared, services started as the processes users run.

Used by `xerosync dev`, the end-to-end tests and the benchmarks, so all three exercise
the same start-up path.
"""

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from shared.contracts.topics import Topics
from shared.kafka import ensure_topics, topic_plan
from shared.migrations import create_database, upgrade
from shared.settings import KafkaSettings, asyncpg_url
from xerosync.devstack.broker import EmbeddedBroker
from xerosync.devstack.postgres import EmbeddedPostgres
from xerosync.devstack.processes import ManagedProcess, require_free
from xerosync.services import SERVICES, ServiceInfo


@dataclass
class StackConfig:
    work_dir: Path
    topic_prefix: str = ""
    broker_port: int = 9092
    durable_postgres: bool = True
    kafka_bootstrap_servers: str | None = None
    """Use this broker instead of starting the embedded one."""
    database_urls: dict[str, str] = field(default_factory=dict)
    """Per service, a database to use instead of the embedded server's."""
    http_ports: dict[str, int] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, work_dir: Path, **overrides: object) -> "StackConfig":
        """Honour KAFKA_BOOTSTRAP_SERVERS and <SERVICE>_DATABASE_URL, as DESIGN §6 says."""
        config = cls(
            work_dir=work_dir,
            kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            database_urls={
                name: url
                for name, info in SERVICES.items()
                if (url := os.environ.get(info.database_env))
            },
            topic_prefix=os.environ.get("TOPIC_PREFIX", ""),
            http_ports={
                name: int(port)
                for name, info in SERVICES.items()
                if (port := os.environ.get(f"{info.env_prefix}HTTP_PORT"))
            },
        )
        for key, value in overrides.items():
            setattr(config, key, value)
        return config


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.broker: EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.started: dict[str, ManagedProcess] = {}
        """Every process this stack started, in start order; kept after stop() so callers
        can verify that each one exited."""
        self.kafka = KafkaSettings(
            bootstrap_servers=config.kafka_bootstrap_servers or f"127.0.0.1:{config.broker_port}",
            # The embedded broker lacks InitProducerId; a real cluster keeps the env's choice.
            idempotent_producer=(
                KafkaSettings().idempotent_producer if config.kafka_bootstrap_servers else False
            ),
            session_timeout_ms=(
                KafkaSettings().session_timeout_ms if config.kafka_bootstrap_servers else 3000
            ),
        )
        self.topics = Topics(config.topic_prefix)

    # ------------------------------------------------------------------ infrastructure
    def start_infrastructure(self) -> None:
        self.config.work_dir.mkdir(parents=True, exist_ok=True)
        if self.config.kafka_bootstrap_servers is None:
            self.broker = EmbeddedBroker(port=self.config.broker_port, log_dir=self.config.work_dir)
            self.started["broker"] = self.broker.process
            self.broker.start()
        if any(name not in self.config.database_urls for name in SERVICES):
            self.postgres = EmbeddedPostgres(
                self.config.work_dir / "pgdata", durable=self.config.durable_postgres
            ).start()
            if self.postgres.process is not None:
                self.started["postgres"] = self.postgres.process

    def database_url(self, service: str) -> str:
        if url := self.config.database_urls.get(service):
            return asyncpg_url(url)
        if self.postgres is None:
            raise RuntimeError("start_infrastructure() first")
        return asyncpg_url(self.postgres.url(SERVICES[service].database_name))

    async def prepare(self, *, services: list[str] | None = None) -> None:
        """Create the databases, migrate them, and create the topics."""
        for name in services or list(SERVICES):
            info = SERVICES[name]
            url = SecretStr(self.database_url(name))
            await create_database(url)
            await upgrade(info.migrations, url)
        await ensure_topics(self.kafka, topic_plan(self.topics, self.kafka))

    # ------------------------------------------------------------------ services
    def http_port(self, service: str) -> int:
        return self.config.http_ports.get(service, SERVICES[service].port)

    def service_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.http_port(service)}"

    def common_env(self) -> dict[str, str]:
        """What every process of this stack needs: the broker and the topic prefix."""
        env = dict(os.environ)
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
                "KAFKA_IDEMPOTENT_PRODUCER": str(self.kafka.idempotent_producer).lower(),
                "KAFKA_SESSION_TIMEOUT_MS": str(self.kafka.session_timeout_ms),
                "TOPIC_PREFIX": self.config.topic_prefix,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.config.extra_env)
        return env

    def service_env(self, service: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A service's environment: the common one plus its database and HTTP address."""
        info: ServiceInfo = SERVICES[service]
        env = self.common_env()
        env.update(
            {
                info.database_env: self.database_url(service),
                f"{info.env_prefix}HTTP_PORT": str(self.http_port(service)),
                f"{info.env_prefix}HTTP_HOST": "127.0.0.1",
            }
        )
        env.update(extra or {})
        return env

    def start_service(
        self,
        service: str,
        *,
        extra_env: Mapping[str, str] | None = None,
        wait: bool = True,
        port: int | None = None,
    ) -> ManagedProcess:
        """Start a service process; `port` starts another replica on its own HTTP port."""
        info = SERVICES[service]
        name = service if port is None else f"{service}@{port}"
        port = port or self.http_port(service)
        require_free("127.0.0.1", port, f"the {service}", f"Set {service.upper()}_HTTP_PORT.")
        replica = {f"{info.env_prefix}HTTP_PORT": str(port)} if name != service else {}
        env = self.service_env(service, {**replica, **(extra_env or {})})
        process = ManagedProcess(
            name,
            [sys.executable, "-m", "xerosync", service],
            log_path=self.config.work_dir / f"{name}.log",
            env=env,
        ).start()
        self.started[name] = process
        if wait:
            process.wait_http_ok(f"http://127.0.0.1:{port}/readyz")
        return process

    def start_tool(self, name: str, argv: list[str]) -> ManagedProcess:
        process = ManagedProcess(
            name,
            [sys.executable, "-m", "xerosync", *argv],
            log_path=self.config.work_dir / f"{name}.log",
            env=self.common_env(),
        ).start()
        self.started[name] = process
        return process

    # ------------------------------------------------------------------ shutdown
    def stop(self) -> None:
        """Stop in reverse start order: tools and services first, then PostgreSQL and the
        broker they depend on."""
        for process in reversed(self.started.values()):
            process.stop()
