"""Kafka broker factory and topic administration.

Every subscriber in the project states its `group_id` and `ack_policy`; FastStream's
Kafka default (`ACK_FIRST`, commit before processing) is never acceptable here.
"""

import asyncio
import logging
import ssl
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)
from prometheus_client import CollectorRegistry

from shared.contracts.topics import ALL_TOPICS, Topics, dlq_of
from shared.errors import BrokerUnavailable
from shared.logging import get_logger
from shared.settings import CommonSettings, KafkaSettings

log = get_logger(__name__)


def make_broker(
    settings: CommonSettings,
    *,
    client_id: str,
    registry: CollectorRegistry | None = None,
    graceful_timeout: float = 30.0,
) -> KafkaBroker:
    """A FastStream broker: acks from all in-sync replicas, idempotence as configured."""
    kafka = settings.kafka
    middlewares: list[Any] = []
    if registry is not None:
        middlewares.append(KafkaPrometheusMiddleware(registry=registry, app_name=client_id))
    return KafkaBroker(
        bootstrap_servers=_servers(kafka),
        client_id=client_id,
        acks="all",
        enable_idempotence=kafka.idempotent_producer,
        linger_ms=5,
        security=_security(kafka),
        middlewares=middlewares,
        graceful_timeout=graceful_timeout,
        # Topics are created by `xerosync migrate` with their partitions and configs;
        # a subscriber must not create one with broker defaults by accident.
        allow_auto_create_topics=False,
        logger=get_logger("faststream"),
        # FastStream logs every consumed message or batch; that is DEBUG detail here.
        log_level=logging.DEBUG,
    )


async def ping_broker(broker: KafkaBroker) -> None:
    """Readiness: raise `BrokerUnavailable` unless Kafka answers within 2 s."""
    if not await broker.ping(timeout=2.0):
        raise BrokerUnavailable("Kafka did not answer")


def _servers(kafka: KafkaSettings) -> list[str]:
    return [server.strip() for server in kafka.bootstrap_servers.split(",") if server.strip()]


def _security(kafka: KafkaSettings) -> BaseSecurity | None:
    use_ssl = kafka.security_protocol in {"SSL", "SASL_SSL"}
    ssl_context = ssl.create_default_context() if use_ssl else None
    if kafka.security_protocol.startswith("SASL"):
        if not (kafka.sasl_username and kafka.sasl_password and kafka.sasl_mechanism):
            raise ValueError("SASL needs KAFKA_SASL_MECHANISM, _USERNAME and _PASSWORD")
        mechanism = {
            "PLAIN": SASLPlaintext,
            "SCRAM-SHA-256": SASLScram256,
            "SCRAM-SHA-512": SASLScram512,
        }[kafka.sasl_mechanism]
        return mechanism(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value(),
            ssl_context=ssl_context,
        )
    if use_ssl:
        return BaseSecurity(ssl_context=ssl_context)
    return None


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection options for plain aiokafka clients (admin, tools), same as the broker's."""
    options: dict[str, Any] = {
        "bootstrap_servers": _servers(kafka),
        "security_protocol": kafka.security_protocol,
    }
    security = _security(kafka)
    if security is not None:
        options["ssl_context"] = security.ssl_context
    if kafka.sasl_mechanism and kafka.sasl_username and kafka.sasl_password:
        options |= {
            "sasl_mechanism": kafka.sasl_mechanism,
            "sasl_plain_username": kafka.sasl_username,
            "sasl_plain_password": kafka.sasl_password.get_secret_value(),
        }
    return options


def consumer_options(kafka: KafkaSettings) -> dict[str, int]:
    """Group membership timing every consumer of the project uses."""
    return {
        "session_timeout_ms": kafka.session_timeout_ms,
        "heartbeat_interval_ms": max(100, kafka.session_timeout_ms // 3),
    }


def admin_client(kafka: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(client_id="xerosync-admin", **client_options(kafka))


def topic_plan(topics: Topics, kafka: KafkaSettings) -> list[NewTopic]:
    """Every topic of the contract and its DLQ, with partitions and configs."""
    plan = []
    for spec in ALL_TOPICS:
        name = topics.name(spec)
        configs = {"cleanup.policy": "compact"} if spec.compacted else {}
        # A DLQ keeps every refused record until ops deal with it: never compacted.
        for topic, topic_configs in ((name, configs), (dlq_of(name), {})):
            plan.append(
                NewTopic(
                    name=topic,
                    num_partitions=kafka.default_partitions,
                    replication_factor=kafka.replication_factor,
                    topic_configs=topic_configs,
                )
            )
    return plan


async def ensure_topics(kafka: KafkaSettings, plan: Iterable[NewTopic]) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = admin_client(kafka)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [topic for topic in plan if topic.name not in existing]
        created = []
        for topic in missing:
            try:
                await admin.create_topics([topic])
            except TopicAlreadyExistsError:
                continue  # another process created it meanwhile
            created.append(topic.name)
    except KafkaError as error:
        raise BrokerUnavailable(f"could not manage topics: {type(error).__name__}") from error
    finally:
        await admin.close()
    return created


async def start_broker(
    broker: KafkaBroker, kafka: KafkaSettings, *, wait_seconds: float = 60.0
) -> None:
    """Start the broker, waiting for Kafka to come up (a service may start first)."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    attempt = 0
    while True:
        try:
            await broker.start()
        except KafkaError as error:
            await broker.stop()
            if asyncio.get_running_loop().time() >= deadline:
                raise BrokerUnavailable(
                    f"Kafka at {kafka.bootstrap_servers} did not answer within "
                    f"{wait_seconds:g}s ({type(error).__name__})"
                ) from error
            attempt += 1
            log.warning("waiting for Kafka", kafka=kafka.bootstrap_servers, attempt=attempt)
            await asyncio.sleep(min(5.0, 0.5 * attempt))
        else:
            return


async def topic_partitions(
    consumer: AIOKafkaConsumer, topic: str, *, attempts: int = 50
) -> list[TopicPartition]:
    """The topic's partitions, refreshing the consumer's metadata until it knows them;
    `BrokerUnavailable` when the topic does not exist."""
    for _ in range(attempts):
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        await consumer.topics()  # refreshes the metadata
        await asyncio.sleep(0.05)
    raise BrokerUnavailable(f"topic {topic} has no partitions; run `xerosync migrate`")
