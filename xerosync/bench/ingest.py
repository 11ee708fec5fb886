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

With `--with-posting` a fourth contender, `syncer+posting`, is the syncer ingesting while
it posts: before it is measured, the Xero sandbox and the connector start beside it (on
its topics and a database of their own), organisations are connected through the
connector's pages, each with a backlog, and their runs begin. Once Xero has taken the
first statements, the benchmark's events are written and measured exactly as for the
others (commits beyond the backlog's). The rate-limit window is scaled so that posting
is bound by this machine, not by Xero: the worst case for ingest. If posting ended before
ingest did, the round fails rather than report a measurement without posting.
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
from xerosync.bench.common import (
    BenchFailed,
    cpu_seconds,
    drop_database,
    fresh_database_url,
    until,
)
from xerosync.bench.post import PostBench
from xerosync.devstack.processes import ManagedProcess, ProcessFailed, free_port
from xerosync.devstack.stack import Stack, StackConfig
from xerosync.producer import EventWriter
from xerosync.services import SERVICES

CONTENDERS = ("bare", "reference", "syncer")
POSTING = "syncer+posting"
POSTING_SCALE = 5.0
"""Xero's minute in 12 s: the app's 180 statements a window are 15 a second, more than this
2-core machine posts, so posting runs as fast as the syncer can go."""
console = Console(stderr=True)


@dataclass
class Measurement:
    events_per_s: float
    cpu_s_per_1000: float
    posted_per_s: float | None = None
    """For syncer+posting: transactions posted to Xero while it ingested, per second."""


@dataclass
class Results:
    by_contender: dict[str, list[Measurement]] = field(default_factory=dict)

    def median(self, contender: str) -> Measurement:
        runs = self.by_contender[contender]
        posted = [m.posted_per_s for m in runs if m.posted_per_s is not None]
        return Measurement(
            statistics.median(m.events_per_s for m in runs),
            statistics.median(m.cpu_s_per_1000 for m in runs),
            statistics.median(posted) if posted else None,
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


@dataclass(frozen=True)
class PostingLoad:
    tenants: int
    per_tenant: int


class IngestBench:
    def __init__(
        self,
        stack: Stack,
        *,
        events: int,
        partitions: int,
        batch: int,
        posting: PostingLoad | None = None,
    ) -> None:
        self.stack = stack
        self.events = events
        self.partitions = partitions
        self.batch = batch
        self.posting = posting
        self.records = make_events(events)

    async def measure(self, contender: str) -> Measurement:
        if contender == POSTING and self.posting is not None:
            return await self._measure_while_posting(self.posting)
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

    async def _measure_while_posting(self, posting: PostingLoad) -> Measurement:
        """The syncer ingesting the benchmark's events while it posts backlogs to Xero."""
        run_id = uuid.uuid4().hex[:8]
        stack = self._posting_stack(run_id)
        urls = list(stack.config.database_urls.values())
        try:
            await stack.prepare(services=["connector", "syncer"])
            bench = PostBench(stack, sink="bankfeeds", run=run_id)
            await asyncio.to_thread(bench.start)
            syncer = await asyncio.to_thread(
                bench.start_syncer,
                POSTING_SCALE,
                SYNCER_INGEST_BATCH_SIZE=str(self.batch),
            )
            connected = await bench.start_posting(
                tenants=posting.tenants,
                per_tenant=posting.per_tenant,
                scale=POSTING_SCALE,
            )
            topic = stack.topics.name(BANK_TRANSACTIONS)
            group = stack.topics.group(CONSUMER_GROUP)
            await self._until_committed(group, topic, bench.backlog_ends)

            async def posting_started() -> bool:
                return await bench.posted() > 0

            await until(posting_started, within=300, what="Xero's first statements")
            posted_before, started = await bench.posted(), time.perf_counter()
            async with EventWriter(stack.kafka, stack.topics) as writer:
                ends = (await writer.write_raw(topic, self.records)).end_offsets()
            written = time.perf_counter()
            measured = await self._watch(syncer, group, topic, ends, bench.backlog_ends)
            posted = await bench.posted() - posted_before
            elapsed = time.perf_counter() - started
            backlog = posting.tenants * posting.per_tenant
            console.print(
                f"  posted {posted:,} of {backlog:,} in the {elapsed:.1f}s it took to write "
                f"({written - started:.1f}s) and ingest the events",
                highlight=False,
            )
            if not await bench.posting_left(connected):
                raise BenchFailed(
                    "posting finished before ingest did, so ingest was not measured against "
                    "it: raise --posting-backlog"
                )
            measured.posted_per_s = posted / elapsed
            return measured
        finally:
            await asyncio.to_thread(stack.stop)
            if self.stack.postgres is None:
                for url in urls:
                    await drop_database(url)

    def _posting_stack(self, run_id: str) -> Stack:
        """A stack on this benchmark's broker and server, with topics, databases and
        ports of its own, for the connector, the sandbox and the syncer that posts."""
        kafka = self.stack.kafka
        config = StackConfig(
            work_dir=self.stack.config.work_dir / f"posting-{run_id}",
            topic_prefix=f"bench{run_id}.",
            kafka_bootstrap_servers=kafka.bootstrap_servers,
            database_urls={
                service: fresh_database_url(
                    self.stack, "syncer", f"xerosync_bench_{run_id}_{service}"
                )
                for service in ("connector", "syncer")
            },
            http_ports={name: free_port() for name in SERVICES},
            extra_env={"LOG_LEVEL": "WARNING"},
        )
        config.work_dir.mkdir(parents=True, exist_ok=True)
        stack = Stack(config)
        # The benchmark's broker settings (the embedded broker has no idempotent producer).
        stack.kafka = kafka.model_copy(update={"default_partitions": self.partitions})
        return stack

    async def _until_committed(self, group: str, topic: str, ends: dict[int, int]) -> None:
        """Until the group committed up to `ends` on every partition."""
        watcher = AIOKafkaConsumer(
            group_id=group, enable_auto_commit=False, **client_options(self.stack.kafka)
        )
        await watcher.start()
        try:

            async def caught_up() -> bool:
                for partition, end in ends.items():
                    done = await watcher.committed(TopicPartition(topic, partition))
                    if (done or 0) < end:
                        return False
                return True

            await until(caught_up, within=300, what="the syncer to commit the backlog")
        finally:
            await watcher.stop()

    async def _watch(
        self,
        process: ManagedProcess,
        group: str,
        topic: str,
        ends: dict[int, int],
        before: dict[int, int] | None = None,
    ) -> Measurement:
        """Watch the group's commits on `topic` up to `ends`, counting from `before`."""
        before = before or {}
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
                    done = min((await watcher.committed(tp)) or 0, ends.get(tp.partition, 0))
                    committed += max(0, done - before.get(tp.partition, 0))
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
    *,
    events: int,
    rounds: int,
    partitions: int,
    batch: int,
    json_output: bool,
    posting: PostingLoad | None = None,
) -> int:
    work_dir = Path(tempfile.mkdtemp(prefix="xerosync-bench-"))
    stack = Stack(StackConfig.from_environment(work_dir, broker_port=free_port()))
    contenders = CONTENDERS + ((POSTING,) if posting else ())
    results = Results({name: [] for name in contenders})
    try:
        with console.status("starting the broker and PostgreSQL…"):
            stack.start_infrastructure()
        console.print(
            f"ingest benchmark: {events:,} events, {partitions} partitions, batches of {batch}, "
            f"{rounds} round(s); broker {stack.kafka.bootstrap_servers}"
            + (" (embedded)" if stack.broker else "")
            + (", PostgreSQL embedded (durable)" if stack.postgres else "")
            + (
                f"; {POSTING} posts {posting.tenants} organisations' backlogs of "
                f"{posting.per_tenant:,} while it ingests"
                if posting
                else ""
            )
        )
        bench = IngestBench(
            stack, events=events, partitions=partitions, batch=batch, posting=posting
        )
        for round_number in range(rounds):
            turn = round_number % len(contenders)
            for contender in contenders[turn:] + contenders[:turn]:
                with console.status(f"round {round_number + 1}/{rounds}: {contender}…"):
                    measured = asyncio.run(bench.measure(contender))
                results.by_contender[contender].append(measured)
                posted = (
                    f"  while posting {measured.posted_per_s:,.0f} transactions/s"
                    if measured.posted_per_s is not None
                    else ""
                )
                console.print(
                    f"  round {round_number + 1}: {contender:<14} "
                    f"{measured.events_per_s:>10,.0f} events/s  "
                    f"{measured.cpu_s_per_1000:.3f} CPU s/1000{posted}"
                )
    except (BenchFailed, ProcessFailed) as error:
        console.print(f"[red]ingest benchmark failed:[/red] {error}")
        console.print(f"logs kept in {work_dir}")
        return 1
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
    medians = {name: results.median(name) for name in results.by_contender}
    reference = medians["reference"].events_per_s
    ratio = medians["syncer"].events_per_s / reference
    table = Table(title=f"durable ingest, median of {rounds} round(s)", title_justify="left")
    table.add_column("contender")
    table.add_column("events/s", justify="right")
    table.add_column("CPU s / 1000 events", justify="right")
    table.add_column("vs reference", justify="right")
    table.add_column("posted/s meanwhile", justify="right")
    for name, m in medians.items():
        table.add_row(
            name,
            f"{m.events_per_s:,.0f}",
            f"{m.cpu_s_per_1000:.3f}",
            f"{m.events_per_s / reference:.2f}x",
            "" if m.posted_per_s is None else f"{m.posted_per_s:,.0f}",
        )
    out = Console()
    out.print(table)
    out.print(f"ratio syncer / reference: {ratio:.2f} (goal: at least 0.50)")
    figures: dict[str, object] = {
        "syncer_events_per_s": round(medians["syncer"].events_per_s, 1),
        "reference_events_per_s": round(reference, 1),
        "bare_events_per_s": round(medians["bare"].events_per_s, 1),
        "ratio": round(ratio, 3),
    }
    if POSTING in medians:
        posting = medians[POSTING]
        posting_ratio = posting.events_per_s / reference
        out.print(f"ratio {POSTING} / reference: {posting_ratio:.2f} (goal: at least 0.50)")
        figures |= {
            "posting_events_per_s": round(posting.events_per_s, 1),
            "posting_ratio": round(posting_ratio, 3),
            "posted_per_s": round(posting.posted_per_s or 0.0, 1),
        }
    if json_output:
        figures |= {
            "cpu_s_per_1000": {name: round(m.cpu_s_per_1000, 4) for name, m in medians.items()},
            "events": events,
            "rounds": rounds,
            "partitions": partitions,
            "batch": batch,
        }
        sys.stdout.write(json.dumps(figures) + "\n")
