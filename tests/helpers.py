"""Helpers shared by the test layers: building events, reading topics, awaiting states."""

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from shared.contracts.bank import TransactionBooked, TransactionReversed
from shared.kafka import client_options, topic_partitions
from shared.settings import KafkaSettings
from xerosync.replay.kafka import commit_as_sole_member, reading

BASE_TIME = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def booked(n: int, *, account: str = "acc-hkd-1", **overrides: Any) -> TransactionBooked:
    fields: dict[str, Any] = {
        "transaction_id": f"tx-{account}-{n:06d}",
        "entity_id": "ent-1",
        "account_id": account,
        "currency": "HKD",
        "amount": Decimal("10.50") + n,
        "direction": "debit" if n % 3 else "credit",
        "balance_after": Decimal("100000.00") - n,
        "booked_at": BASE_TIME + timedelta(minutes=n),
        "value_date": date(2026, 11, 2),
        "description": f"Payment {n}",
        "counterparty_name": "Kowloon Printing Co",
        "reference": f"INV-{n}",
        "category": "transfer",
    }
    return TransactionBooked.model_validate(fields | overrides)


def reversed_(original: TransactionBooked) -> TransactionReversed:
    return TransactionReversed(
        transaction_id=f"{original.transaction_id}-rev",
        original_transaction_id=original.transaction_id,
        entity_id=original.entity_id,
        account_id=original.account_id,
        currency=original.currency,
        amount=original.amount,
        direction="credit" if original.direction == "debit" else "debit",
        balance_after=original.balance_after + original.amount,
        booked_at=original.booked_at + timedelta(seconds=30),
        value_date=original.value_date,
        description="Returned",
    )


async def eventually(
    probe: Callable[[], Awaitable[Any]],
    *,
    until: Callable[[Any], bool] = bool,
    within: float = 30.0,
    what: str = "condition",
) -> Any:
    """Poll `probe` until `until(result)` holds; fail with the last result after `within`."""
    deadline = time.monotonic() + within
    result: Any = None
    while time.monotonic() < deadline:
        result = await probe()
        if until(result):
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not reached within {within:g}s; last value: {result!r}")


Sql = Callable[..., Awaitable[list[Any]]]
"""Runs a statement against the syncer's database: `sql(statement, **params)` → rows."""


async def syncer_replica_holds(sql: Sql, connection_id: uuid.UUID) -> None:
    """Until the syncer's replica holds the connection, active."""
    await eventually(
        lambda: sql(
            "SELECT count(*) FROM connections WHERE connection_id = :id AND status = 'active'",
            id=connection_id,
        ),
        until=lambda rows: rows[0][0] == 1,
        what="the syncer's replica holds the connection",
    )


async def syncer_run(
    sql: Sql, due_id: uuid.UUID, *, done: str = "finished_at", within: float = 60
) -> Any:
    """The syncer's run of a SyncDue (run_id, state, outcome) once its `done` column
    (`finished_at`, or `published_at` once its result is out) is set."""
    assert done in {"finished_at", "published_at"}
    [run] = await eventually(
        lambda: sql(
            f"SELECT run_id, state, outcome FROM sync_runs "
            f"WHERE due_event_id = :id AND {done} IS NOT NULL",
            id=due_id,
        ),
        within=within,
        what=f"the run's {done.removesuffix('_at')}",
    )
    return run


async def read_topic(
    kafka: KafkaSettings, topic: str, *, count: int, within: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read the first `count` records of a topic (all partitions), failing after `within`."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options(kafka))
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + within
        while len(records) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{topic}: {len(records)} of {count} records after {within}s")
            batch = await consumer.getmany(timeout_ms=int(min(remaining, 1.0) * 1000))
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


async def committed_offsets(kafka: KafkaSettings, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition (0 where nothing is committed)."""
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **client_options(kafka))
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        return {tp.partition: (await consumer.committed(tp)) or 0 for tp in partitions}
    finally:
        await consumer.stop()


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text → {(sample name, sorted labels): value}."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def metric(base_url: str, name: str, **labels: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{base_url}/metrics")
    return scrape(response.text).get((name, tuple(sorted(labels.items()))), 0.0)


async def rewind_group(kafka: KafkaSettings, group: str, topic: str) -> None:
    """Reset an idle group to the start of every partition, as ops would for a replay:
    what `xerosync replay topic --move-offsets --join-group` does (a member joins and
    commits as the group's sole member; the embedded broker refuses commits from outside)."""
    async with reading(kafka) as consumer:
        count = len(await topic_partitions(consumer, topic))
    await commit_as_sole_member(
        kafka, group, topic, dict.fromkeys(range(count), 0), partitions=count
    )


def ledger(
    account: str,
    count: int,
    *,
    entity: str = "ent-1",
    currency: str = "HKD",
    start: datetime,
    opening: Decimal = Decimal("5000.00"),
    step: timedelta = timedelta(minutes=7),
    first: int = 0,
) -> list[TransactionBooked]:
    """`count` transactions of one account whose `balance_after` chain, as a bank's do:
    each balance is the previous one plus a credit or minus a debit."""
    balance = opening
    events = []
    for n in range(first, first + count):
        amount = Decimal("12.34") + Decimal(n % 17) * Decimal("3.05")
        direction = "credit" if n % 4 == 0 else "debit"
        balance += amount if direction == "credit" else -amount
        events.append(
            booked(
                n,
                account=account,
                entity_id=entity,
                currency=currency,
                amount=amount,
                direction=direction,
                balance_after=balance,
                booked_at=start + step * (n - first),
                value_date=(start + step * (n - first)).date(),
            )
        )
    return events


def installed(tool: str) -> str:
    """The tool's path, or a skip that says how to get it (a failure under CI=true)."""
    path = shutil.which(tool)
    if path is None:
        reason = (
            f"no {tool} on PATH: script/test installs Debian's prometheus package with apt-get "
            "when it runs as root (script/prometheus); otherwise "
            "`apt-get install -y --no-install-recommends prometheus`"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"Prometheus tests must run under CI=true, but {reason}")
        pytest.skip(reason)
    return path
