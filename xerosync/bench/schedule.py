"""`xerosync bench schedule`: how many `SyncDue` the scheduler emits per second, what it
costs in CPU, and how late each one is against its slot, measured in one run in two
phases side by side on the same broker and PostgreSQL server.

- *spread* (the headline figures): N active connections due once over a compressed
  interval, each at its own phase, so due times are spread uniformly over
  [T0, T0 + interval). The scheduler must keep up with a demand of N / interval per
  second; its schedule lag (how late each event is) says whether it does.
- *burst*: N connections all due at the same instant T0, which is what a catch-up
  after downtime asks (SYNC_INTERVAL is 1h there, so none comes due twice). The rate
  here is the scheduler's capacity; capacity over the spread phase's demand is its
  headroom.

How it measures. Each phase runs `xerosync scheduler` as its own process (the one users
run) on fresh topics and a fresh database on the same server, and waits until that
process holds the emitter lock. The benchmark then writes the N schedule rows in one
COPY, due from T0 (a few seconds ahead) on, and wakes the emitter. While the scheduler
works, the benchmark reads the sync-due topic as it fills, keeping the records raw
(decoding waits until the phase is over), so it takes little CPU from what it measures.

- lag of an event = its Kafka record timestamp minus the `due_at` it carries. The
  timestamp is the producer's create time (ms), taken when the emitter hands the event
  to its producer: the broker's acknowledgement and the schedule's commit follow;
- emissions/s = N / (last event's timestamp - first slot's due time), the same
  definition for both phases (for the burst phase the first due time is T0);
- CPU s / 1000 = the scheduler process's user + system CPU from T0 to the moment the
  benchmark has read N events, per 1000 events read by then. PostgreSQL's and the
  embedded broker's CPU over the same window are shown beside it when they are ours.

Both phases check that exactly N events came out, one per connection, and count any
published before their slot was due.
"""

import asyncio
import json
import math
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from services.scheduler.adapters.repository import WAKE_CHANNEL
from services.scheduler.domain.schedule import first_slot_after, phase_of
from shared.contracts.topics import XERO_SYNC_DUE, Topics
from shared.db import asyncpg_params
from shared.kafka import client_options, ensure_topics, topic_partitions, topic_plan
from shared.migrations import create_database, upgrade
from xerosync.bench.common import BenchFailed, cpu_seconds, drop_database, fresh_database_url
from xerosync.devstack.processes import ManagedProcess, ProcessFailed, free_port
from xerosync.devstack.stack import Stack, StackConfig
from xerosync.services import SERVICES

GOAL_EMISSIONS_PER_S = 5_000.0
GOAL_P99_LAG_S = 1.0
DEFAULT_DEMAND_PER_S = 10_000.0
BURST_INTERVAL = "1h"
"""The burst phase's SYNC_INTERVAL: long, so no connection comes due a second time while
the backlog drains (the next slot only changes arithmetic, not the work per event)."""
CONNECTIONS_PER_TENANT = 3
_TIMESTAMP_GRAIN_S = 0.001
_COLUMNS = (
    "connection_id",
    "tenant_id",
    "entity_id",
    "version",
    "status",
    "phase",
    "next_due_at",
    "due_reason",
    "updated_at",
)
console = Console(stderr=True)


@dataclass(frozen=True)
class PhaseResult:
    name: str
    emissions: int
    emissions_per_s: float
    cpu_s_per_1000: float
    lag_p50_s: float
    lag_p99_s: float
    lag_max_s: float
    early: int
    """Events published before their slot was due (beyond the timestamp's 1 ms grain)."""
    postgres_cpu_s_per_1000: float | None
    broker_cpu_s_per_1000: float | None


@dataclass(frozen=True)
class Connections:
    """The benchmark's connections: ids, tenants (one per three connections), phases."""

    ids: list[uuid.UUID]
    tenants: list[uuid.UUID]
    phases: list[float]

    @classmethod
    def make(cls, count: int) -> "Connections":
        ids = [uuid.uuid4() for _ in range(count)]
        tenant_ids = [uuid.uuid4() for _ in range(-(-count // CONNECTIONS_PER_TENANT))]
        tenants = [tenant_ids[n // CONNECTIONS_PER_TENANT] for n in range(count)]
        return cls(ids, tenants, [phase_of(cid) for cid in ids])

    def rows(self, due: list[datetime], now: datetime) -> list[tuple[Any, ...]]:
        rows = zip(self.ids, self.tenants, self.phases, due, strict=True)
        return [
            (cid, tenant, _entity(n), 1, "active", phase, due_at, "schedule", now)
            for n, (cid, tenant, phase, due_at) in enumerate(rows)
        ]


def _entity(n: int) -> str:
    return f"bench-ent-{n // CONNECTIONS_PER_TENANT:06d}"


class CpuMeter:
    """User + system CPU seconds of the processes measured: the scheduler, and when this
    benchmark started them, PostgreSQL (the postmaster and its backends) and the broker."""

    def __init__(self, scheduler: int, postgres: int | None, broker: int | None) -> None:
        self._pids = {"scheduler": scheduler, "postgres": postgres, "broker": broker}

    def sample(self) -> dict[str, float | None]:
        return {name: None if pid is None else cpu_seconds(pid) for name, pid in self._pids.items()}


@dataclass(frozen=True)
class _Emitted:
    connection_id: uuid.UUID
    due_at: float
    """Epoch seconds."""
    published_at: float
    """Epoch seconds: the Kafka record's timestamp."""


class ScheduleBench:
    def __init__(self, stack: Stack, *, connections: int, interval_s: float) -> None:
        self.stack = stack
        self.connections = connections
        self.interval_s = interval_s

    @property
    def demand_per_s(self) -> float:
        return self.connections / self.interval_s

    async def measure(self, phase: str) -> PhaseResult:
        """One phase, `spread` or `burst`, from a fresh database, topics and process."""
        run_id = uuid.uuid4().hex[:8]
        topics = Topics(f"bench{run_id}.")
        await ensure_topics(self.stack.kafka, topic_plan(topics, self.stack.kafka))
        database_url = fresh_database_url(self.stack, "scheduler", f"xerosync_bench_{run_id}")
        await create_database(SecretStr(database_url))
        try:
            await upgrade(SERVICES["scheduler"].migrations, SecretStr(database_url))
            connections = Connections.make(self.connections)
            interval = f"{self.interval_s:g}s" if phase == "spread" else BURST_INTERVAL
            process = self._start(run_id, topics, database_url, interval)
            try:
                return await self._run(phase, process, topics, database_url, connections)
            finally:
                process.stop()
        finally:
            await drop_database(database_url)

    def _start(
        self, run_id: str, topics: Topics, database_url: str, interval: str
    ) -> ManagedProcess:
        port = free_port()
        env = self.stack.service_env("scheduler")
        env.update(
            {
                "TOPIC_PREFIX": topics.prefix,
                "SCHEDULER_DATABASE_URL": database_url,
                "SCHEDULER_HTTP_PORT": str(port),
                "SCHEDULER_SYNC_INTERVAL": interval,
                "SCHEDULER_TAKEOVER_GRACE": "0",
                "LOG_LEVEL": "WARNING",
            }
        )
        log_path = self.stack.config.work_dir / f"scheduler-{run_id}.log"
        argv = [sys.executable, "-m", "xerosync", "scheduler"]
        process = ManagedProcess("the scheduler", argv, log_path=log_path, env=env).start()
        base = f"http://127.0.0.1:{port}"
        try:
            process.wait_http_ok(f"{base}/readyz")
            _wait_emitting(process, f"{base}/metrics")
        except BaseException:
            process.stop()
            raise
        return process

    async def _run(
        self,
        phase: str,
        process: ManagedProcess,
        topics: Topics,
        database_url: str,
        connections: Connections,
    ) -> PhaseResult:
        if process.pid is None:
            raise BenchFailed("the scheduler is not running")
        meter = CpuMeter(
            process.pid,
            _pid(self.stack.postgres.process) if self.stack.postgres else None,
            _pid(self.stack.broker.process) if self.stack.broker else None,
        )
        watcher = _Watcher(self.stack, topics.name(XERO_SYNC_DUE), process)
        await watcher.start()
        try:
            start = await self._load(phase, database_url, connections)
            await asyncio.sleep(max(0.0, start - time.time() - 0.01))
            before = meter.sample()
            deadline = start + self.interval_s + 30 + self.connections / 1000
            on_topic = await watcher.wait_for(self.connections, deadline)
            after = meter.sample()
            # Events of the next interval may already follow (spread); they are not counted.
            window_end = start + (self.interval_s if phase == "spread" else math.inf)
            emitted = await watcher.due_before(window_end, self.connections, deadline)
        finally:
            await watcher.stop()
        _check(emitted, connections)
        first_due = min(e.due_at for e in emitted)
        last_published = max(e.published_at for e in emitted)
        lags = sorted(max(0.0, e.published_at - e.due_at) for e in emitted)

        def per_1000(name: str) -> float | None:
            b, a = before[name], after[name]
            return None if a is None or b is None else 1000 * (a - b) / on_topic

        return PhaseResult(
            name=phase,
            emissions=len(emitted),
            emissions_per_s=len(emitted) / max(last_published - first_due, 0.001),
            cpu_s_per_1000=per_1000("scheduler") or 0.0,
            lag_p50_s=_percentile(lags, 50),
            lag_p99_s=_percentile(lags, 99),
            lag_max_s=lags[-1],
            early=sum(1 for e in emitted if e.published_at < e.due_at - _TIMESTAMP_GRAIN_S),
            postgres_cpu_s_per_1000=per_1000("postgres"),
            broker_cpu_s_per_1000=per_1000("broker"),
        )

    async def _load(self, phase: str, database_url: str, connections: Connections) -> float:
        """Write every schedule row, due from T0 on, and wake the emitter; returns T0
        (epoch seconds). T0 leaves time for the load, which must end before it."""
        lead = 1.0 + self.connections * 25e-6
        start = datetime.now(UTC) + timedelta(seconds=lead)
        if phase == "spread":
            interval = timedelta(seconds=self.interval_s)
            # The earliest slot at or after T0 of each phase: spread over [T0, T0+interval).
            before = start - timedelta(microseconds=1)
            due = [first_slot_after(before, p, interval) for p in connections.phases]
        else:
            due = [start] * self.connections
        connection = await asyncpg.connect(**asyncpg_params(make_url(database_url)))
        try:
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "schedules",
                    records=connections.rows(due, datetime.now(UTC)),
                    columns=_COLUMNS,
                )
                await connection.execute(f"NOTIFY {WAKE_CHANNEL}")
        finally:
            await connection.close()
        loaded = datetime.now(UTC)
        if loaded >= min(due):
            raise BenchFailed(
                f"loading {self.connections:,} schedule rows took until "
                f"{(loaded - start).total_seconds():+.2f}s after the first was due; "
                "the machine is too slow for this many connections"
            )
        return start.timestamp()


class _Watcher:
    """Reads the sync-due topic from its start while the scheduler fills it.

    The topic is consumed rather than its end offsets polled: the embedded broker answers
    ListOffsets(latest) with the last batch's base offset + 1, not the high watermark.
    Records are kept raw and decoded once the phase is over, to take as little CPU as
    possible from the processes measured."""

    def __init__(self, stack: Stack, topic: str, process: ManagedProcess) -> None:
        self._topic = topic
        self._process = process
        self._consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **client_options(stack.kafka),
        )
        self._raw: list[tuple[bytes | None, int]] = []

    async def start(self) -> None:
        await self._consumer.start()
        try:
            partitions = await topic_partitions(self._consumer, self._topic)
            self._consumer.assign(partitions)
            await self._consumer.seek_to_beginning(*partitions)
        except BaseException:
            await self._consumer.stop()
            raise

    async def stop(self) -> None:
        await self._consumer.stop()

    async def wait_for(self, count: int, deadline: float) -> int:
        """Read until the topic has given at least `count` events; how many it gave."""
        while len(self._raw) < count:
            await self._read(deadline, f"{count:,} SyncDue")
        return len(self._raw)

    async def due_before(self, window_end: float, count: int, deadline: float) -> list[_Emitted]:
        """The events due before `window_end`, once `count` of them have been read."""
        found = [e for e in map(_decode, self._raw) if e.due_at < window_end]
        while len(found) < count:
            done = len(self._raw)
            await self._read(deadline, f"{count:,} SyncDue due before the interval's end")
            found += [e for e in map(_decode, self._raw[done:]) if e.due_at < window_end]
        return found

    async def _read(self, deadline: float, what: str) -> None:
        if not self._process.running():
            raise self._process.failure(f"exited with code {self._process.poll()}")
        if time.time() > deadline:
            raise BenchFailed(
                f"the scheduler did not emit {what} in time ({len(self._raw):,} on the topic)"
            )
        batches = await self._consumer.getmany(timeout_ms=100, max_records=50_000)
        for records in batches.values():
            self._raw += [(record.value, record.timestamp) for record in records]


def _decode(raw: tuple[bytes | None, int]) -> _Emitted:
    value, timestamp_ms = raw
    event = json.loads(value or b"{}")
    return _Emitted(
        uuid.UUID(event["connection_id"]),
        datetime.fromisoformat(event["due_at"]).timestamp(),
        timestamp_ms / 1000,
    )


def _check(emitted: list[_Emitted], connections: Connections) -> None:
    """Exactly one event per connection, for the connections written, nothing else."""
    seen = {e.connection_id for e in emitted}
    if len(seen) != len(emitted):
        raise BenchFailed(f"{len(emitted) - len(seen):,} connections got more than one SyncDue")
    if seen != set(connections.ids):
        raise BenchFailed("the SyncDue events name other connections than those scheduled")


def _percentile(ordered: list[float], percent: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def _pid(process: ManagedProcess | None) -> int | None:
    return None if process is None else process.pid


def _wait_emitting(process: ManagedProcess, metrics_url: str, timeout: float = 30.0) -> None:
    """Wait until the scheduler reports that it holds the emitter lock."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not process.running():
                raise process.failure(f"exited with code {process.poll()}")
            for line in client.get(metrics_url).text.splitlines():
                if line.startswith("xerosync_scheduler_emitter ") and float(line.split()[1]) == 1:
                    return
            time.sleep(0.1)
    raise process.failure(f"did not become the emitter within {timeout:g}s")


def run_schedule_bench(*, connections: int, interval_s: float | None, json_output: bool) -> int:
    interval = interval_s or max(1.0, connections / DEFAULT_DEMAND_PER_S)
    work_dir = Path(tempfile.mkdtemp(prefix="xerosync-bench-"))
    stack = Stack(StackConfig.from_environment(work_dir, broker_port=free_port()))
    results: dict[str, PhaseResult] = {}
    try:
        with console.status("starting the broker and PostgreSQL…"):
            stack.start_infrastructure()
        bench = ScheduleBench(stack, connections=connections, interval_s=interval)
        console.print(
            f"schedule benchmark: {connections:,} connections, interval {interval:g}s "
            f"(demand {bench.demand_per_s:,.0f}/s); broker {stack.kafka.bootstrap_servers}"
            + (" (embedded)" if stack.broker else "")
            + (", PostgreSQL embedded (durable)" if stack.postgres else "")
        )
        for phase, what in (("spread", "due over the interval"), ("burst", "all due at once")):
            with console.status(f"{phase}: {connections:,} connections {what}…"):
                measured = asyncio.run(bench.measure(phase))
            results[phase] = measured
            console.print(
                f"  {phase:<6} {measured.emissions_per_s:>10,.0f} emissions/s  "
                f"{measured.cpu_s_per_1000:.3f} CPU s/1000  lag p99 {measured.lag_p99_s:.3f}s"
            )
    except (BenchFailed, ProcessFailed) as error:
        console.print(f"[red]schedule benchmark failed:[/red] {error}", markup=True)
        console.print(f"logs kept in {work_dir}")
        return 1
    finally:
        stack.stop()
    shutil.rmtree(work_dir, ignore_errors=True)
    _report(results["spread"], results["burst"], bench, json_output=json_output)
    return 0


def _report(
    spread: PhaseResult, burst: PhaseResult, bench: ScheduleBench, *, json_output: bool
) -> None:
    demand = bench.demand_per_s
    headroom = burst.emissions_per_s / demand
    met = spread.emissions_per_s >= GOAL_EMISSIONS_PER_S and spread.lag_p99_s < GOAL_P99_LAG_S
    table = Table(
        title=f"SyncDue emission, {bench.connections:,} connections; spread: due over "
        f"{bench.interval_s:g}s (demand {demand:,.0f}/s); burst: all due at once",
        title_justify="left",
    )
    for column in ("phase", "emissions", "emissions/s", "CPU s / 1000", "PostgreSQL CPU s / 1000"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for column in ("broker CPU s / 1000", "lag p50", "lag p99", "lag max"):
        table.add_column(column, justify="right")
    for m in (spread, burst):
        table.add_row(
            m.name,
            f"{m.emissions:,}",
            f"{m.emissions_per_s:,.0f}",
            f"{m.cpu_s_per_1000:.3f}",
            _optional(m.postgres_cpu_s_per_1000),
            _optional(m.broker_cpu_s_per_1000),
            f"{m.lag_p50_s:.3f}s",
            f"{m.lag_p99_s:.3f}s",
            f"{m.lag_max_s:.3f}s",
        )
    # A pipe or file gets the whole table, not an 80-column fold of it.
    out = Console() if sys.stdout.isatty() else Console(width=120)
    out.print(table)
    out.print(
        f"capacity (burst) / demand (spread): {headroom:.2f}x  "
        f"({burst.emissions_per_s:,.0f} / {demand:,.0f} per s)"
    )
    out.print(
        f"CPU per emission, burst / spread: {burst.cpu_s_per_1000 / spread.cpu_s_per_1000:.2f}"
    )
    out.print(
        f"goal: ≥ {GOAL_EMISSIONS_PER_S:,.0f} emissions/s with p99 lag < {GOAL_P99_LAG_S:g}s: "
        + ("met" if met else "not met")
        + f" ({spread.emissions_per_s:,.0f}/s, p99 {spread.lag_p99_s:.3f}s)"
    )
    if spread.early or burst.early:
        out.print(f"[red]{spread.early + burst.early:,} SyncDue were published before due[/red]")
    if json_output:
        figures = {
            "emissions_per_s": round(spread.emissions_per_s, 1),
            "cpu_s_per_1000": round(spread.cpu_s_per_1000, 4),
            "lag_p50_s": round(spread.lag_p50_s, 4),
            "lag_p99_s": round(spread.lag_p99_s, 4),
            "lag_max_s": round(spread.lag_max_s, 4),
            "emissions": spread.emissions,
            "burst_emissions_per_s": round(burst.emissions_per_s, 1),
            "burst_cpu_s_per_1000": round(burst.cpu_s_per_1000, 4),
            "burst_lag_p50_s": round(burst.lag_p50_s, 4),
            "burst_lag_p99_s": round(burst.lag_p99_s, 4),
            "burst_lag_max_s": round(burst.lag_max_s, 4),
            "burst_emissions": burst.emissions,
            "early_emissions": spread.early + burst.early,
            "postgres_cpu_s_per_1000": _rounded(spread.postgres_cpu_s_per_1000),
            "burst_postgres_cpu_s_per_1000": _rounded(burst.postgres_cpu_s_per_1000),
            "broker_cpu_s_per_1000": _rounded(spread.broker_cpu_s_per_1000),
            "burst_broker_cpu_s_per_1000": _rounded(burst.broker_cpu_s_per_1000),
            "demand_per_s": round(demand, 1),
            "interval_s": bench.interval_s,
            "connections": bench.connections,
            "headroom": round(headroom, 3),
            "goal_met": met,
        }
        sys.stdout.write(json.dumps(figures) + "\n")


def _optional(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
