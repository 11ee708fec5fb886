"""Dead-letter records: the original bytes and key, and headers that say what happened."""

from typing import Any

from aiokafka import ConsumerRecord
from prometheus_client import CollectorRegistry

from shared.dlq import DeadLetterPublisher, Refusal
from shared.metrics import dlq_counter


class RecordingBroker:
    """Stands in for FastStream's broker: records what would be published."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    async def publish(self, body: bytes, **options: Any) -> None:
        self.published.append({"body": body, **options})


def _record(headers: list[tuple[str, bytes]] | None = None) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="staging.bank.transactions.v1",
        partition=4,
        offset=1234,
        timestamp=1700000000000,
        timestamp_type=0,
        key=b"acc-1",
        value=b"\x00not json",
        checksum=None,
        serialized_key_size=5,
        serialized_value_size=10,
        headers=headers or [],
    )


async def test_a_refusal_keeps_the_record_and_explains_itself() -> None:
    broker = RecordingBroker()
    registry = CollectorRegistry()
    publisher = DeadLetterPublisher(
        broker,  # type: ignore[arg-type]
        consumer="staging.xerosync-syncer-ingest",
        topic_prefix="staging.",
        counter=dlq_counter(registry),
    )
    record = _record([("trace", b"abc"), ("binary", b"\xff\xfe")])
    await publisher.publish([Refusal(record, "amount: must be greater than zero", "validation")])

    (sent,) = broker.published
    assert sent["body"] == b"\x00not json"
    assert sent["topic"] == "staging.bank.transactions.v1.dlq"
    assert sent["key"] == b"acc-1"
    headers = sent["headers"]
    assert headers["trace"] == "abc"
    assert headers["x-dlq-b64-binary"] == "//4="  # not UTF-8, so carried in base64
    assert headers["x-dlq-error"] == "amount: must be greater than zero"
    assert headers["x-dlq-error-class"] == "validation"
    assert headers["x-dlq-consumer"] == "staging.xerosync-syncer-ingest"
    assert headers["x-dlq-attempt"] == "1"
    assert headers["x-dlq-origin-topic"] == "staging.bank.transactions.v1"
    assert headers["x-dlq-origin-partition"] == "4"
    assert headers["x-dlq-origin-offset"] == "1234"
    assert headers["x-dlq-origin-timestamp"] == "1700000000000"
    # Counted under the topic's contract name, whatever the environment's prefix.
    sample = registry.get_sample_value(
        "xerosync_dlq_messages_total", {"topic": "bank.transactions.v1"}
    )
    assert sample == 1.0


async def test_a_replayed_record_that_fails_again_counts_its_attempts() -> None:
    broker = RecordingBroker()
    publisher = DeadLetterPublisher(
        broker,  # type: ignore[arg-type]
        consumer="g",
        topic_prefix="",
        counter=dlq_counter(CollectorRegistry()),
    )
    replayed = _record([("x-dlq-attempt", b"2"), ("x-dlq-error", b"old reason")])
    await publisher.publish([Refusal(replayed, "r" * 5000, "storage")])
    headers = broker.published[0]["headers"]
    assert headers["x-dlq-attempt"] == "3"
    assert headers["x-dlq-error"] == "r" * 1000  # bounded
