"""`xero.sync-due.v1`, both ways: publishing a batch of slots (acknowledged by every
in-sync replica before the schedule moves on), and reading back what was published last,
which is how a new emitter learns what its dead predecessor already sent."""

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.scheduler.domain.schedule import Emission
from shared.contracts.xero import SyncDue
from shared.errors import BrokerUnavailable
from shared.kafka import client_options, topic_partitions
from shared.logging import get_logger
from shared.settings import KafkaSettings

log = get_logger(__name__)
_HEADERS = [("content-type", b"application/json")]


class SyncDueLog:
    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self._kafka = kafka
        self.topic = topic
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            client_id="xerosync-scheduler",
            acks="all",
            enable_idempotence=self._kafka.idempotent_producer,
            linger_ms=5,
            max_batch_size=256 * 1024,
            **client_options(self._kafka),
        )
        try:
            await producer.start()
        except KafkaError as error:
            await producer.stop()
            raise BrokerUnavailable(f"Kafka did not answer ({type(error).__name__})") from error
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def ping(self) -> None:
        if self._producer is None:
            raise BrokerUnavailable("the SyncDue producer is not running")
        try:
            await asyncio.wait_for(self._producer.partitions_for(self.topic), timeout=2.0)
        except (KafkaError, TimeoutError) as error:
            raise BrokerUnavailable(f"Kafka did not answer ({type(error).__name__})") from error

    async def publish(self, emissions: Sequence[Emission], occurred_at: datetime) -> None:
        """Publish every emission; returns once the broker acknowledged all of them."""
        if self._producer is None:
            raise RuntimeError("start() first")
        acks = []
        for emission in emissions:
            event = SyncDue(
                event_id=emission.event_id,
                occurred_at=occurred_at,
                connection_id=emission.connection_id,
                tenant_id=emission.tenant_id,
                reason=emission.reason,
                due_at=emission.due_at,
            )
            acks.append(
                await self._producer.send(
                    self.topic,
                    event.model_dump_json().encode(),
                    key=str(emission.tenant_id).encode(),
                    headers=_HEADERS,
                )
            )
        await asyncio.gather(*acks)

    async def recent_event_ids(self, depth: int) -> set[uuid.UUID]:
        """The event ids of (at least) the last `depth` records of every partition.

        Reads from `depth` before the reported end up to the high watermark the fetches
        report. The embedded broker reports a partition's end as its last batch's first
        offset + 1, so the start lands earlier than needed (more is read, nothing missed)
        and the reading goes on until a fetch says the partition is exhausted."""
        consumer = AIOKafkaConsumer(
            client_id="xerosync-scheduler-takeover",
            enable_auto_commit=False,
            **client_options(self._kafka),
        )
        await consumer.start()
        try:
            partitions = await topic_partitions(consumer, self.topic)
            ends = await consumer.end_offsets(partitions)
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, max(0, ends[tp] - depth))
            found: set[uuid.UUID] = set()
            unread = set(partitions)
            deadline = asyncio.get_running_loop().time() + 60
            while unread:
                if asyncio.get_running_loop().time() > deadline:
                    raise BrokerUnavailable(f"could not read the end of {self.topic} within 60s")
                batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
                for records in batches.values():
                    found.update(e for e in map(_event_id, (r.value for r in records)) if e)
                for tp in list(unread):
                    highwater = consumer.highwater(tp)
                    if highwater is not None and await consumer.position(tp) >= highwater:
                        unread.discard(tp)
            return found
        finally:
            await consumer.stop()


def _event_id(value: bytes | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(json.loads(value or b"")["event_id"])
    except (ValueError, KeyError, TypeError):
        return None
