"""`xerosync bench ingest`: the syncer's durable ingest rate beside a hand-written reference
and a consumer that stores nothing, measured in one run on the same broker, topic shape
and PostgreSQL server.

How it measures. Each contender is its own process reading its own fresh topic (same
partitions, same pre-produced events) into its own fresh database on the same server.
The benchmark watches the contender's committed offsets through the broker every 5 ms:
the rate is the events committed after the first commit, divided by the time from the
first commit to the last. That is durable throughput (an offset is committed only after
the database commit), measured from outside and identically for all three; process
start-up and group joining are left out. Rounds rotate the contenders' order; medians
are reported.
"""

import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from services.syncer.config import CONSUMER_GROUP
from shared.contracts.bank import TransactionBooked
from shared.contracts.topics import BANK_TRANSACTIONS, Topics
from shared.kafka import client_options, ensure_topics
from shared.migrations import create_database, upgrade
from xerosync.bench.common import cpu_seconds, fresh_database_url
from xerosync.devstack.processes import ManagedProcess, free_port
from xerosync.devstack.stack import Stack, StackConfig
from xerosync.producer import EventWriter
from xerosync.services import SERVICES

CONTENDERS = ("bare", "reference", "syncer")
console = Console(stderr=True)


@dataclass
class Measurement:
    events_per_s: float
    cpu_s_per_1000: float


@dataclass
class Results:
    by_contender: dict[str, list[Measurement]] = field(
        default_factory=lambda: {name: [] for name in CONTENDERS}
    )

    def median(self, contender: str) -> Measurement:
        runs = self.by_contender[contender]
        return Measurement(
            statistics.median(m.events_per_s for m in runs),
            statistics.median(m.cpu_s_per_1000 for m in runs),
        )


def make_events(count: int, accounts: int = 200) -> list[tuple[bytes, bytes]]:
    """Valid TransactionBooked records keyed by account, with running balances."""
    rng = random.Random(20261124)
    balances = {f"bench-acc-{n:04d}": Decimal("100000.00") for n in range(accounts)}
    start = datetime(2026, 11, 1, tzinfo=UTC)
    records = []
    for n in range(count):
        account = f"bench-acc-{n % accounts:04d}"
        amount = Decimal(rng.randrange(100, 500_000)) / 100
        credit = n % 3 == 0
        balances[account] += amount if credit else -amount
        event = TransactionBooked(
            transaction_id=f"bench-{n:09d}",
            entity_id=f"bench-ent-{n % accounts // 3:04d}",
            account_id=account,
            currency="HKD",
            amount=amount,
            direction="credit" if credit else "debit",
            balance_after=balances[account],
            booked_at=start + timedelta(seconds=n),
            value_date=date(2026, 11, 1),
            description=f"FPS transfer {n} to Kowloon Printing Co",
            counterparty_name="Kowloon Printing Co",
            reference=f"INV-{n}",
            category="transfer",
        )
        records.append((account.encode(), event.model_dump_json().encode()))
    return records


@dataclass(frozen=True)
class _Run:
    run_id: str
    topics: Topics
    group: str
    database_url: str


class IngestBench:
    def __init__(self, stack: Stack, *, events: int, partitions: int, batch: int) -> None:
        self.stack = stack
        self.events = events
        self.partitions = partitions
        self.batch = batch
        self.records = make_events(events)

    async def measure(self, contender: str) -> Measurement:
        run_id = uuid.uuid4().hex[:8]
        topics = Topics(f"bench{run_id}.")
        topic = topics.name(BANK_TRANSACTIONS)
        group = topics.group(CONSUMER_GROUP if contender == "syncer" else f"bench-{contender}")
        kafka = self.stack.kafka.model_copy(update={"default_partitions": self.partitions})
        await ensure_topics(
            kafka,
            [
                NewTopic(name=name, num_partitions=self.partitions, replication_factor=1)
                for name in (topic, topics.dlq(BANK_TRANSACTIONS))
            ],
        )
        database_url = fresh_database_url(self.stack, "syncer", f"xerosync_bench_{run_id}")
        await create_database(SecretStr(database_url))
        await upgrade(SERVICES["syncer"].migrations, SecretStr(database_url))
        async with EventWriter(kafka, topics) as writer:
            ends = (await writer.write_raw(topic, self.records)).end_offsets()

        process = self._start(contender, _Run(run_id, topics, group, database_url))
        try:
            return await self._watch(process, group, topic, ends)
        finally:
            process.stop()

    def _start(self, contender: str, run: _Run) -> ManagedProcess:
        env = self.stack.service_env("syncer")
        env.update(
            {
                "TOPIC_PREFIX": run.topics.prefix,
                "SYNCER_DATABASE_URL": run.database_url,
                "LOG_LEVEL": "WARNING",
            }
        )
        if contender == "syncer":
            env.update(
                {"SYNCER_HTTP_PORT": str(free_port()), "SYNCER_INGEST_BATCH_SIZE": str(self.batch)}
            )
            argv = [sys.executable, "-m", "xerosync", "syncer"]
        else:
            topic = run.topics.name(BANK_TRANSACTIONS)
            argv = [sys.executable, "-m", "xerosync.bench.reference", contender, topic, run.group]
            argv += [str(self.batch), run.database_url]
        log_path = self.stack.config.work_dir / f"{contender}-{run.run_id}.log"
        return ManagedProcess(f"bench {contender}", argv, log_path=log_path, env=env).start()

    async def _watch(
        self, process: ManagedProcess, group: str, topic: str, ends: dict[int, int]
    ) -> Measurement:
        partitions = [TopicPartition(topic, p) for p in range(self.partitions)]
        watcher = AIOKafkaConsumer(
            group_id=group, enable_auto_commit=False, **client_options(self.stack.kafka)
        )
        await watcher.start()
        pid = process.pid
        if pid is None:
            raise RuntimeError(f"{process.name} is not running")
        first: tuple[float, int, float] | None = None
        deadline = time.monotonic() + 300
        try:
            while time.monotonic() < deadline:
                if not process.running():
                    raise process.failure(f"exited with code {process.poll()}")
                committed = 0
                for tp in partitions:
                    committed += min((await watcher.committed(tp)) or 0, ends.get(tp.partition, 0))
                now = time.perf_counter()
                if committed and first is None:
                    first = (now, committed, cpu_seconds(pid))
                if committed >= self.events and first is not None:
                    elapsed, counted = now - first[0], self.events - first[1]
                    cpu_used = cpu_seconds(pid) - first[2]
                    if elapsed <= 0 or counted <= 0:
                        raise RuntimeError("the first commit covered every event: use more events")
                    return Measurement(counted / elapsed, 1000 * cpu_used / counted)
                await asyncio.sleep(0.005)
        finally:
            await watcher.stop()
        raise RuntimeError(f"{process.name} did not commit every offset within 300s")


def run_ingest_bench(
    *, events: int, rounds: int, partitions: int, batch: int, json_output: bool
) -> int:
    work_dir = Path(tempfile.mkdtemp(prefix="xerosync-bench-"))
    stack = Stack(StackConfig.from_environment(work_dir, broker_port=free_port()))
    results = Results()
    try:
        with console.status("starting the broker and PostgreSQL…"):
            stack.start_infrastructure()
        console.print(
            f"ingest benchmark: {events:,} events, {partitions} partitions, batches of {batch}, "
            f"{rounds} round(s); broker {stack.kafka.bootstrap_servers}"
            + (" (embedded)" if stack.broker else "")
            + (", PostgreSQL embedded (durable)" if stack.postgres else "")
        )
        bench = IngestBench(stack, events=events, partitions=partitions, batch=batch)
        for round_number in range(rounds):
            order = CONTENDERS[round_number % 3 :] + CONTENDERS[: round_number % 3]
            for contender in order:
                with console.status(f"round {round_number + 1}/{rounds}: {contender}…"):
                    measured = asyncio.run(bench.measure(contender))
                results.by_contender[contender].append(measured)
                console.print(
                    f"  round {round_number + 1}: {contender:<9} {measured.events_per_s:>10,.0f} "
                    f"events/s  {measured.cpu_s_per_1000:.3f} CPU s/1000"
                )
    finally:
        stack.stop()
    _report(
        results,
        events=events,
        rounds=rounds,
        partitions=partitions,
        batch=batch,
        json_output=json_output,
    )
    return 0


def _report(
    results: Results, *, events: int, rounds: int, partitions: int, batch: int, json_output: bool
) -> None:
    medians = {name: results.median(name) for name in CONTENDERS}
    ratio = medians["syncer"].events_per_s / medians["reference"].events_per_s
    table = Table(title=f"durable ingest, median of {rounds} round(s)", title_justify="left")
    table.add_column("contender")
    table.add_column("events/s", justify="right")
    table.add_column("CPU s / 1000 events", justify="right")
    table.add_column("vs reference", justify="right")
    for name in CONTENDERS:
        m = medians[name]
        table.add_row(
            name,
            f"{m.events_per_s:,.0f}",
            f"{m.cpu_s_per_1000:.3f}",
            f"{m.events_per_s / medians['reference'].events_per_s:.2f}x",
        )
    out = Console()
    out.print(table)
    out.print(f"ratio syncer / reference: {ratio:.2f} (goal: at least 0.50)")
    if json_output:
        sys.stdout.write(
            json.dumps(
                {
                    "syncer_events_per_s": round(medians["syncer"].events_per_s, 1),
                    "reference_events_per_s": round(medians["reference"].events_per_s, 1),
                    "bare_events_per_s": round(medians["bare"].events_per_s, 1),
                    "ratio": round(ratio, 3),
                    "cpu_s_per_1000": {
                        name: round(medians[name].cpu_s_per_1000, 4) for name in CONTENDERS
                    },
                    "events": events,
                    "rounds": rounds,
                    "partitions": partitions,
                    "batch": batch,
                }
            )
            + "\n"
        )
