"""Dead-letter publishing: a refused record keeps its bytes, key and headers, and gains
headers that say why, who refused it, how often, and where it came from."""

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from prometheus_client import Counter

from shared.contracts.decoding import InvalidEvent, decode_event
from shared.contracts.topics import TopicSpec, dlq_of
from shared.logging import get_logger

log = get_logger(__name__)

ErrorClass = Literal["validation", "conflict", "storage"]
ATTEMPT_HEADER = "x-dlq-attempt"
_MAX_REASON = 1000


@dataclass(frozen=True)
class Refusal:
    record: ConsumerRecord[bytes, bytes]
    reason: str
    error_class: ErrorClass


class DeadLetterPublisher:
    def __init__(
        self, broker: KafkaBroker, *, consumer: str, topic_prefix: str, counter: Counter
    ) -> None:
        self._broker = broker
        self._consumer = consumer
        self._prefix = topic_prefix
        self._counter = counter

    async def publish(self, refusals: Sequence[Refusal]) -> None:
        """Publish every refusal and wait for the broker to acknowledge each one."""
        for refusal in refusals:
            record = refusal.record
            await self._broker.publish(
                record.value or b"",
                topic=dlq_of(record.topic),
                key=record.key,
                headers=self._headers(refusal),
            )
            base_topic = record.topic.removeprefix(self._prefix)
            self._counter.labels(topic=base_topic).inc()
            log.warning(
                "dead-lettered",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error_class=refusal.error_class,
                reason=refusal.reason,
            )

    def _headers(self, refusal: Refusal) -> dict[str, str]:
        record = refusal.record
        headers: dict[str, str] = {}
        previous_attempts = 0
        for name, value in record.headers or ():
            try:
                headers[name] = value.decode()
            except UnicodeDecodeError:
                headers[f"x-dlq-b64-{name}"] = base64.b64encode(value).decode()
        if headers.get(ATTEMPT_HEADER, "").isdigit():
            previous_attempts = int(headers[ATTEMPT_HEADER])
        headers.update(
            {
                "x-dlq-error": refusal.reason[:_MAX_REASON],
                "x-dlq-error-class": refusal.error_class,
                "x-dlq-consumer": self._consumer,
                ATTEMPT_HEADER: str(previous_attempts + 1),
                "x-dlq-origin-topic": record.topic,
                "x-dlq-origin-partition": str(record.partition),
                "x-dlq-origin-offset": str(record.offset),
                "x-dlq-origin-timestamp": str(record.timestamp),
                "x-dlq-failed-at": datetime.now(UTC).isoformat(),
            }
        )
        return headers


def decode_records(
    spec: TopicSpec, records: Sequence[ConsumerRecord[bytes, bytes]], *, max_bytes: int
) -> tuple[list[Any], list[Refusal]]:
    """Each record as an event of `spec`, or as a refusal for the DLQ with its reason."""
    events, refused = [], []
    for record in records:
        try:
            events.append(decode_event(spec, record.value, max_bytes=max_bytes))
        except InvalidEvent as error:
            refused.append(Refusal(record, error.reason, "validation"))
    return events, refused
