"""Writing contract events to Kafka from tools (the demo producer, benchmarks), as the
bank's own producers would: plain aiokafka, keyed as the contract says, acks from all."""

import asyncio
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from shared.contracts.base import Event
from shared.contracts.topics import Topics, TopicSpec
from shared.kafka import client_options
from shared.settings import KafkaSettings


class EventWriter:
    def __init__(self, kafka: KafkaSettings, topics: Topics) -> None:
        self._topics = topics
        self._producer = AIOKafkaProducer(
            client_id="xerosync-tools",
            acks="all",
            enable_idempotence=kafka.idempotent_producer,
            linger_ms=5,
            max_batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
            **client_options(kafka),
        )

    async def __aenter__(self) -> Self:
        await self._producer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._producer.stop()

    async def write(self, spec: TopicSpec, events: Iterable[Event]) -> "Written":
        """Send every event and wait until the broker acknowledged all of them."""
        pending = [
            await self._producer.send(
                self._topics.name(spec),
                event.model_dump_json().encode(),
                key=spec.key_of(event),
            )
            for event in events
        ]
        return Written(await asyncio.gather(*pending))

    async def send_record(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> RecordMetadata:
        """Send one record as given (bytes, key, headers) and wait for its acknowledgement."""
        future = await self._producer.send(topic, value, key=key, headers=list(headers) or None)
        metadata: RecordMetadata = await future
        return metadata

    async def write_raw(
        self, topic: str, values: Iterable[tuple[bytes | None, bytes]]
    ) -> "Written":
        """Send pre-encoded (key, value) records, e.g. a benchmark's prepared events."""
        pending = [await self._producer.send(topic, value, key=key) for key, value in values]
        return Written(await asyncio.gather(*pending))


class Written(list[RecordMetadata]):
    """The broker's acknowledgements of a write, in send order."""

    def end_offsets(self) -> dict[int, int]:
        """Offset after the last record written, per partition.

        Taken from the acknowledgements rather than asked of the broker: the embedded
        broker's ListOffsets answers the last batch's base offset + 1, which is short
        whenever that batch held several records.
        """
        ends: dict[int, int] = {}
        for metadata in self:
            ends[metadata.partition] = max(ends.get(metadata.partition, 0), metadata.offset + 1)
        return ends
