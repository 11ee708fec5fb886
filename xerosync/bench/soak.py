"""`xerosync bench soak`: the whole system under a steady ingest and posting load for a
number of minutes; throughput, the memory of the processes over time (which should stay
flat) and the latency from publishing an event to Xero accepting it.

What runs. The embedded broker and PostgreSQL (or those the environment names), the Xero
sandbox at its real rate limits (60 calls a minute per organisation, 180 statements a
minute per app), and the connector, the scheduler and the syncer, each as the process
users run (`Stack`). The scheduler is the real one with its `SYNC_INTERVAL` compressed
(by default 2 s per organisation, at least 5 s), so posting happens on its own, as in
production but more often; the benchmark publishes no `SyncDue` itself.

Setup (not measured): organisations are created in the sandbox and their entities
connected through the connector's pages, as `bench post` does.

The load: for `--minutes`, `TransactionBooked` events at `--rate` per second, round robin
over every account (three per organisation), written every 200 ms. Each is booked a
second before it is written and later than its account's previous one, with its balance
chained, so every account's transactions make valid statements in publishing order. Its
publish time is the moment its batch was handed to the producer. Then publishing stops,
the benchmark waits until the syncer has posted everything, and reads what each
organisation received.

What is measured:
- events_per_s: transactions that reached Xero over the publishing duration (publish_rate:
  those published over it; the two agree when the system keeps up);
- latency: Xero's acceptance (a statement's `received_at`; for the Accounting API, the
  bank transaction's `UpdatedDateUTC`) minus the publish time, p50/p99/max by nearest rank;
- memory: the resident set of each service (the process and its children), sampled every
  few seconds. Its start is the first sample after the warm-up (the first 20% of the
  load, at most its first minute: imports and caches filling are not a leak), its end the
  sample taken as publishing stopped, and its slope a least-squares fit over the samples
  between, in MB a minute. `rss_mb_start`/`rss_mb_end` are the syncer's, which holds the
  state; every process also has its own keys.

Checks: every published transaction is in its organisation exactly once, none failed,
and every process stayed up. Error and warning lines in the services' logs are counted
(the logs are kept when there are any).
"""

import asyncio
import contextlib
import dataclasses
import json
import math
import re
import shutil
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from shared.contracts.topics import BANK_TRANSACTIONS
from xerosync.bench.common import BenchFailed, cpu_seconds
from xerosync.bench.post import (
    CURRENCIES,
    FULL_BATCH,
    OPENING_BALANCE,
    PER_MINUTE,
    STATEMENTS_PER_MINUTE,
    Db,
    PostBench,
    Progress,
    Sink,
    Tenant,
    bench_stack,
    booked,
    drop_databases,
    own_databases,
    syncer_counter,
)
from xerosync.devstack.processes import ProcessFailed
from xerosync.devstack.stack import Stack
from xerosync.producer import EventWriter

DAY_LIMIT = 5_000
"""Xero's calls a day per organisation."""
BUDGET_SHARE = 0.8
"""The load may plan for at most this share of any of Xero's limits."""
DEFAULT_RATE: dict[Sink, float] = {"bankfeeds": 200.0, "accounting": 40.0}
"""Events a second. The Accounting API takes 50 transactions a call, so 60 calls a minute
carry 50 a second per organisation: its default leaves room for four organisations."""
TICK_S = 0.2
BOOKED_BEFORE = timedelta(seconds=1)
"""A transaction is booked this long before it is published (never in the future)."""
WARMUP_SHARE = 0.2
WARMUP_MAX_S = 60.0
SAMPLED = ("syncer", "connector", "scheduler")
"""The processes whose memory is followed."""
_LOG_ERROR = re.compile(r"\[(error|critical)\s*\]|\"level\":\s*\"(error|critical)\"|Traceback")
_LOG_WARNING = re.compile(r"\[warning\s*\]|\"level\":\s*\"warning\"")
_MS_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")

console = Console(stderr=True)


def default_interval(tenants: int) -> float:
    """The compressed SYNC_INTERVAL: 2 s per organisation, at least 5 s, so Bank Feeds
    statements stay near half the app's 180 a minute whatever the number of organisations
    (each run posts one statement per account)."""
    return max(5.0, 2.0 * tenants)


@dataclass(frozen=True)
class Plan:
    sink: Sink
    minutes: float
    rate: float
    """Events published per second."""
    tenants: int
    interval_s: float
    """The scheduler's SYNC_INTERVAL."""

    @property
    def load_s(self) -> float:
        return self.minutes * 60

    @property
    def total(self) -> int:
        return round(self.rate * self.load_s)

    @property
    def accounts(self) -> int:
        return self.tenants * len(CURRENCIES)

    @property
    def warmup_s(self) -> float:
        return min(WARMUP_MAX_S, WARMUP_SHARE * self.load_s)

    @property
    def sample_every_s(self) -> float:
        """About 60 samples over the load, 1 to 5 s apart."""
        return min(5.0, max(1.0, self.load_s / 60))

    def org_calls_per_minute(self) -> float:
        """The posting calls one organisation needs a minute: each run posts what its
        accounts gathered over one interval, in full batches and one partial each."""
        per_account_and_run = self.rate / self.accounts * self.interval_s
        calls_per_run = len(CURRENCIES) * math.ceil(per_account_and_run / FULL_BATCH[self.sink])
        return calls_per_run * 60 / self.interval_s

    def problems(self) -> list[str]:
        """Why this load would exceed what Xero allows (the soak measures the system,
        not Xero's refusals); empty when it fits within BUDGET_SHARE of every limit."""
        found = []
        org = self.org_calls_per_minute()
        if org > BUDGET_SHARE * PER_MINUTE:
            found.append(
                f"each organisation would need {org:.0f} calls a minute, over "
                f"{BUDGET_SHARE:.0%} of Xero's {PER_MINUTE}: lower --rate or raise --tenants"
            )
        if self.sink == "bankfeeds" and org * self.tenants > BUDGET_SHARE * STATEMENTS_PER_MINUTE:
            found.append(
                f"the app would send {org * self.tenants:.0f} statements a minute, over "
                f"{BUDGET_SHARE:.0%} of Xero's {STATEMENTS_PER_MINUTE}: lengthen "
                "--sync-interval or lower --tenants"
            )
        if org * self.minutes > BUDGET_SHARE * DAY_LIMIT:
            found.append(
                f"each organisation would make {org * self.minutes:.0f} calls, over "
                f"{BUDGET_SHARE:.0%} of Xero's {DAY_LIMIT:,} a day: shorten --minutes"
            )
        return found


# ----------------------------------------------------------------------------- the load


@dataclass
class _Account:
    tenant: Tenant
    account_id: str
    currency: str
    n: int = 0
    balance: Decimal = OPENING_BALANCE
    last_at: datetime | None = None


class Load:
    """The steady stream's transactions, round robin over every account of `tenants`."""

    def __init__(self, tenants: Sequence[Tenant], run: str) -> None:
        self._run = run
        self._accounts = [_Account(t, a, c) for t in tenants for a, c in t.accounts]
        self._next = 0

    def take(self, count: int, now: datetime) -> list[tuple[str, bytes, bytes]]:
        """The next `count` transactions as (transaction id, key, value), booked
        BOOKED_BEFORE `now`, each a millisecond after its account's previous one at least,
        each account's balance chained in that order."""
        records = []
        for _ in range(count):
            account = self._accounts[self._next]
            self._next = (self._next + 1) % len(self._accounts)
            at = now - BOOKED_BEFORE
            if account.last_at is not None and at <= account.last_at:
                at = account.last_at + timedelta(milliseconds=1)
            event = booked(
                account.tenant,
                account.account_id,
                account.currency,
                account.n,
                before=account.balance,
                at=at,
                run=self._run,
            )
            account.n += 1
            account.balance = event.balance_after
            account.last_at = at
            key = account.account_id.encode()
            records.append((event.transaction_id, key, event.model_dump_json().encode()))
        return records


# ----------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least a share `q` of the values at or
    below it (q in (0, 1])."""
    if not values:
        raise ValueError("no values")
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], not {q}")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of (seconds, MB) points, in MB a minute; 0 when fewer than
    two distinct times."""
    if len({t for t, _ in points}) < 2:
        return 0.0
    fit = statistics.linear_regression([t for t, _ in points], [mb for _, mb in points])
    return fit.slope * 60


@dataclass(frozen=True)
class Memory:
    """One process's resident set over the load, after the warm-up."""

    start_mb: float
    end_mb: float
    peak_mb: float
    slope_mb_per_min: float

    @property
    def growth_mb(self) -> float:
        return self.end_mb - self.start_mb


def memory_over(points: Sequence[tuple[float, float]], *, warmup_s: float, end_s: float) -> Memory:
    """From (seconds since the load began, MB) samples: the first at or after the warm-up,
    the last at or before `end_s`, the peak and the slope of those between."""
    steady = [(t, mb) for t, mb in points if warmup_s <= t <= end_s]
    if not steady:
        raise BenchFailed(f"no memory sample between {warmup_s:g}s and {end_s:g}s")
    return Memory(
        start_mb=steady[0][1],
        end_mb=steady[-1][1],
        peak_mb=max(mb for _, mb in steady),
        slope_mb_per_min=slope_per_minute(steady),
    )


def ms_date(value: str) -> float:
    """Epoch seconds of the Accounting API's `/Date(1550793549320+0000)/`."""
    match = _MS_DATE.fullmatch(value)
    if match is None:
        raise ValueError(f"not a /Date(…)/ value: {value!r}")
    return int(match.group(1)) / 1000


def deliveries(holdings: Mapping[str, Any], sink: Sink, prefix: str) -> list[tuple[str, float]]:
    """(transaction id, epoch seconds Xero accepted it) of every transaction whose id starts
    with `prefix` in one organisation's holdings (`GET /admin/organisations/{id}`)."""
    if sink == "bankfeeds":
        return [
            (line["transaction_id"], datetime.fromisoformat(s["received_at"]).timestamp())
            for s in holdings["statements"]
            if s["status"] == "DELIVERED"
            for line in s["lines"]
            if (line.get("transaction_id") or "").startswith(prefix)
        ]
    return [
        (t["Reference"], ms_date(t["UpdatedDateUTC"]))
        for t in holdings["bank_transactions"]
        if (t.get("Reference") or "").startswith(prefix)
    ]


@dataclass(frozen=True)
class Reconciled:
    latencies: list[float]
    """Seconds from publishing to Xero's acceptance, one per transaction delivered."""
    missing: int
    """Published, not in Xero."""
    duplicated: int
    """In Xero more than once (counted once each)."""
    unknown: int
    """In Xero, never published."""


def reconcile(
    published_at: Mapping[str, float], delivered: Sequence[tuple[str, float]]
) -> Reconciled:
    """Match what Xero holds against what was published (both keyed by transaction id)."""
    times = Counter(i for i, _ in delivered)
    latencies = [at - published_at[i] for i, at in delivered if i in published_at]
    return Reconciled(
        latencies=latencies,
        missing=sum(1 for i in published_at if i not in times),
        duplicated=sum(1 for n in times.values() if n > 1),
        unknown=sum(1 for i in times if i not in published_at),
    )


# ----------------------------------------------------------------------------- sampling


def rss_mb(pid: int) -> float:
    """The resident set of a process and its live descendants, in MB (0 once gone)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


@dataclass(frozen=True)
class Sample:
    t_s: float
    """Seconds since the load began."""
    rss_mb: dict[str, float]
    published: int
    posted: int


@dataclass
class Sampler:
    """Every process's memory and the syncer's posted count, every few seconds."""

    stack: Stack
    syncer_url: str
    started: float = 0.0
    """time.monotonic() when the load began."""
    published: int = 0
    """Kept current by the publisher."""
    samples: list[Sample] = field(default_factory=list)

    async def take(self, syncer: httpx.AsyncClient) -> Sample:
        counts = await syncer_counter(syncer, "xerosync_transactions_posted", "result")
        sample = Sample(
            t_s=time.monotonic() - self.started,
            rss_mb={name: rss_mb(_pid(self.stack, name)) for name in SAMPLED},
            published=self.published,
            posted=counts.get("posted", 0),
        )
        self.samples.append(sample)
        return sample

    async def run(self, every: float) -> None:
        async with httpx.AsyncClient(base_url=self.syncer_url, timeout=10) as syncer:
            while True:
                await self.take(syncer)
                await asyncio.sleep(every - (time.monotonic() - self.started) % every)

    def points(self, name: str) -> list[tuple[float, float]]:
        return [(s.t_s, s.rss_mb[name]) for s in self.samples]


# ----------------------------------------------------------------------------- the soak


@dataclass(frozen=True)
class SoakResult:
    plan: Plan
    published: int
    delivered: int
    publish_s: float
    drain_s: float
    """From the end of publishing until the syncer had posted everything."""
    reconciled: Reconciled
    memory: dict[str, Memory]
    cpu_share: dict[str, float]
    """CPU seconds of each process over the publishing duration, per second."""
    samples: list[Sample]
    """Every sample, the drain's too."""
    load_end_s: float
    """When publishing stopped (and the end sample was taken), since the load began."""
    rate_limited: int
    sync_runs: dict[str, int]
    log_errors: dict[str, int] = field(default_factory=dict)
    log_warnings: dict[str, int] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.delivered / self.publish_s

    @property
    def over_interval_share(self) -> float:
        """Transactions that took longer than a SYNC_INTERVAL to reach Xero (each waits
        for its connection's next slot, at most an interval, then for its run)."""
        latencies = self.reconciled.latencies
        return sum(1 for s in latencies if s > self.plan.interval_s) / len(latencies)

    def figures(self) -> dict[str, Any]:
        plan, latencies = self.plan, self.reconciled.latencies
        syncer = self.memory["syncer"]
        figures: dict[str, Any] = {
            "events_per_s": round(self.events_per_s, 2),
            "rss_mb_start": round(syncer.start_mb, 1),
            "rss_mb_end": round(syncer.end_mb, 1),
            "rss_growth_mb": round(syncer.growth_mb, 1),
            "p99_latency_s": round(percentile(latencies, 0.99), 3),
            "p50_latency_s": round(percentile(latencies, 0.50), 3),
            "max_latency_s": round(max(latencies), 3),
            "mean_latency_s": round(statistics.fmean(latencies), 3),
            "over_interval_share": round(self.over_interval_share, 5),
            "published": self.published,
            "delivered": self.delivered,
            "missing": self.reconciled.missing,
            "duplicates": self.reconciled.duplicated,
            "publish_rate": round(self.published / self.publish_s, 2),
            "target_rate": plan.rate,
            "minutes": plan.minutes,
            "publish_s": round(self.publish_s, 2),
            "drain_s": round(self.drain_s, 2),
            "sink": plan.sink,
            "tenants": plan.tenants,
            "accounts": plan.accounts,
            "scheduler": "xerosync scheduler process",
            "sync_interval_s": plan.interval_s,
            "warmup_s": round(plan.warmup_s, 2),
            "warmup": f"first {WARMUP_SHARE:.0%} of the load, at most {WARMUP_MAX_S:g}s",
            "sample_every_s": plan.sample_every_s,
            "load_end_s": round(self.load_end_s, 2),
            "rate_limited": self.rate_limited,
            "sync_runs": self.sync_runs,
            "log_errors": self.log_errors,
            "log_warnings": self.log_warnings,
        }
        for name, memory in self.memory.items():
            figures |= {
                f"{name}_rss_mb_start": round(memory.start_mb, 1),
                f"{name}_rss_mb_end": round(memory.end_mb, 1),
                f"{name}_rss_mb_peak": round(memory.peak_mb, 1),
                f"{name}_rss_growth_mb": round(memory.growth_mb, 1),
                f"{name}_rss_slope_mb_per_min": round(memory.slope_mb_per_min, 3),
                f"{name}_cpu_share": round(self.cpu_share[name], 3),
            }
        figures["rss_samples"] = {
            "t_s": [round(s.t_s, 1) for s in self.samples],
            **{name: [round(s.rss_mb[name], 1) for s in self.samples] for name in SAMPLED},
        }
        return figures


class SoakBench:
    def __init__(self, bench: PostBench, plan: Plan) -> None:
        self.bench = bench
        self.stack = bench.stack
        self.plan = plan

    async def run(self) -> SoakResult:
        bench, plan = self.bench, self.plan
        async with (
            httpx.AsyncClient(base_url=bench.sandbox_url, timeout=120) as xero,
            Db(self.stack.database_url("syncer")) as db,
        ):
            tenants = await bench.organisations(xero, plan.tenants)
            await bench.connect(db, tenants)
        sampler = Sampler(self.stack, bench.syncer_url)
        pids = {name: _pid(self.stack, name) for name in SAMPLED}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        sampler.started = time.monotonic()
        sampling = asyncio.create_task(sampler.run(plan.sample_every_s))
        try:
            published_at = await self._publish(Load(tenants, bench.run), sampler)
            publish_s = time.monotonic() - sampler.started
            cpu = {n: (cpu_seconds(p) - cpu_before[n]) / publish_s for n, p in pids.items()}
            async with httpx.AsyncClient(base_url=bench.syncer_url, timeout=10) as syncer:
                end_s = (await sampler.take(syncer)).t_s
                drain_s = await self._drain(syncer, len(published_at))
                limited = await syncer_counter(syncer, "xerosync_xero_rate_limited", "limit")
                runs = await syncer_counter(syncer, "xerosync_sync_runs", "result")
        finally:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
        async with httpx.AsyncClient(base_url=bench.sandbox_url, timeout=300) as xero:
            delivered: list[tuple[str, float]] = []
            for tenant in tenants:
                answer = await xero.get(f"/admin/organisations/{tenant.tenant_id}")
                answer.raise_for_status()
                delivered += deliveries(answer.json(), plan.sink, f"{bench.run}-")
        reconciled = reconcile(published_at, delivered)
        if reconciled.missing or reconciled.duplicated or reconciled.unknown:
            raise BenchFailed(
                f"Xero's organisations hold {len(delivered):,} of the {len(published_at):,} "
                f"transactions published: {reconciled.missing:,} missing, "
                f"{reconciled.duplicated:,} more than once, {reconciled.unknown:,} unknown"
            )
        return SoakResult(
            plan=plan,
            published=len(published_at),
            delivered=len(reconciled.latencies),
            publish_s=publish_s,
            drain_s=drain_s,
            reconciled=reconciled,
            memory={
                name: memory_over(sampler.points(name), warmup_s=plan.warmup_s, end_s=end_s)
                for name in SAMPLED
            },
            cpu_share=cpu,
            samples=list(sampler.samples),
            load_end_s=end_s,
            rate_limited=sum(limited.values()),
            sync_runs={k: v for k, v in runs.items() if v},
        )

    async def _publish(self, load: Load, sampler: Sampler) -> dict[str, float]:
        """Publish the plan's events at its rate; the publish time of each, by id."""
        plan = self.plan
        topic = self.stack.topics.name(BANK_TRANSACTIONS)
        published_at: dict[str, float] = {}
        async with EventWriter(self.stack.kafka, self.stack.topics) as writer:
            with Progress("soak") as progress:
                tick = sampler.started
                while len(published_at) < plan.total:
                    elapsed = time.monotonic() - sampler.started
                    due = min(plan.total, math.floor(plan.rate * elapsed)) - len(published_at)
                    if due > 0:
                        records = load.take(due, datetime.now(UTC))
                        at = time.time()
                        await writer.write_raw(topic, [(key, value) for _, key, value in records])
                        published_at.update((i, at) for i, _, _ in records)
                        sampler.published = len(published_at)
                    self.bench.check_alive()
                    if sampler.samples:
                        progress.update(_line(sampler.samples[-1], plan))
                    tick += TICK_S
                    await asyncio.sleep(max(0.0, tick - time.monotonic()))
        return published_at

    async def _drain(self, syncer: httpx.AsyncClient, total: int) -> float:
        """Until the syncer has posted every transaction; how long that took."""
        started = time.monotonic()
        within = max(120.0, 6 * self.plan.interval_s)
        with Progress("draining") as progress:
            while True:
                self.bench.check_alive()
                counts = await syncer_counter(syncer, "xerosync_transactions_posted", "result")
                posted, failed = counts.get("posted", 0), counts.get("failed", 0)
                if failed:
                    raise BenchFailed(f"Xero refused {failed:,} transactions")
                waited = time.monotonic() - started
                if posted >= total:
                    progress.update(f"{posted:,}/{total:,} posted in {waited:.1f}s", final=True)
                    return waited
                if waited > within:
                    raise BenchFailed(f"{posted:,} of {total:,} posted {within:g}s after the load")
                progress.update(f"{posted:,}/{total:,} posted")
                await asyncio.sleep(0.25)


def _pid(stack: Stack, name: str) -> int:
    pid = stack.started[name].pid
    if pid is None:
        raise BenchFailed(f"the {name} has no process")
    return pid


def _line(sample: Sample, plan: Plan) -> str:
    memory = ", ".join(f"{name} {sample.rss_mb[name]:.0f} MB" for name in SAMPLED)
    return (
        f"{sample.t_s:.0f}/{plan.load_s:.0f}s: published {sample.published:,}, "
        f"posted {sample.posted:,}; {memory}"
    )


def log_lines(work_dir: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Error and warning lines (tracebacks count as errors) in each service's log."""
    errors: dict[str, int] = {}
    warnings: dict[str, int] = {}
    for name in (*SAMPLED, "sandbox"):
        path = work_dir / f"{name}.log"
        if not path.exists():
            continue
        lines = path.read_text(errors="replace").splitlines()
        errors[name] = sum(1 for line in lines if _LOG_ERROR.search(line))
        warnings[name] = sum(1 for line in lines if _LOG_WARNING.search(line))
    return errors, warnings


# ----------------------------------------------------------------------------- the command


def run_soak_bench(
    *,
    minutes: float,
    rate: float | None,
    tenants: int,
    sink: Sink,
    sync_interval: float | None,
    json_output: bool,
) -> int:
    plan = Plan(
        sink=sink,
        minutes=minutes,
        rate=rate or DEFAULT_RATE[sink],
        tenants=tenants,
        interval_s=sync_interval or default_interval(tenants),
    )
    if problems := plan.problems():
        console.print(f"[red]soak not started:[/red] {'; '.join(problems)}")
        return 2
    run = uuid.uuid4().hex[:8]
    stack = bench_stack("soak", run)
    work_dir = stack.config.work_dir
    databases: list[str] = []
    try:
        with console.status("starting the broker and PostgreSQL…"):
            stack.start_infrastructure()
        databases = own_databases(stack, ["connector", "scheduler", "syncer"], "soak", run)
        with console.status("creating databases and topics, starting the services…"):
            asyncio.run(stack.prepare(services=["connector", "scheduler", "syncer"]))
            bench = PostBench(stack, sink=sink, run=run)
            bench.start()
            bench.start_syncer(1.0)
            stack.start_service(
                "scheduler",
                extra_env={
                    "SCHEDULER_SYNC_INTERVAL": f"{plan.interval_s:g}s",
                    "LOG_LEVEL": "WARNING",
                },
            )
        console.print(
            f"soak, {sink}: {plan.minutes:g} min at {plan.rate:g} events/s over "
            f"{plan.tenants} organisations ({plan.accounts} accounts), the scheduler's "
            f"SYNC_INTERVAL {plan.interval_s:g}s, broker {stack.kafka.bootstrap_servers}"
            + (" (embedded)" if stack.broker else ""),
            highlight=False,
        )
        result = asyncio.run(SoakBench(bench, plan).run())
    except (BenchFailed, ProcessFailed) as error:
        console.print(f"[red]soak failed:[/red] {error}")
        console.print(f"logs kept in {work_dir}")
        return 1
    finally:
        stack.stop()
        if stack.postgres is None:
            asyncio.run(drop_databases(databases))
    errors, warnings = log_lines(work_dir)
    result = dataclasses.replace(result, log_errors=errors, log_warnings=warnings)
    if any(errors.values()) or any(warnings.values()):
        console.print(f"the services logged errors or warnings; logs kept in {work_dir}")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    _report(result, json_output=json_output)
    return 0


def _report(result: SoakResult, *, json_output: bool) -> None:
    plan = result.plan
    table = Table(
        title=f"soak: {plan.minutes:g} min, {plan.rate:g} events/s, {plan.sink}; "
        "resident memory (MB) over time",
        title_justify="left",
    )
    table.add_column("t", justify="right")
    table.add_column("", justify="left")
    for name in SAMPLED:
        table.add_column(name, justify="right")
    table.add_column("published", justify="right")
    table.add_column("posted", justify="right")
    for sample in _rows(result.samples, result.load_end_s):
        phase = "warm-up" if sample.t_s < plan.warmup_s else "load"
        if sample.t_s > result.load_end_s:
            phase = "drain"
        table.add_row(
            f"{sample.t_s:.0f}s",
            phase,
            *(f"{sample.rss_mb[name]:.1f}" for name in SAMPLED),
            f"{sample.published:,}",
            f"{sample.posted:,}",
        )
    out = Console() if sys.stdout.isatty() else Console(width=150)
    out.print(table)
    for name, memory in result.memory.items():
        out.print(
            f"{name}: {memory.start_mb:.1f} → {memory.end_mb:.1f} MB after the warm-up "
            f"({memory.growth_mb:+.1f} MB, slope {memory.slope_mb_per_min:+.2f} MB/min, peak "
            f"{memory.peak_mb:.1f}), CPU {result.cpu_share[name]:.0%} of a core",
            highlight=False,
        )
    latencies = result.reconciled.latencies
    out.print(
        f"{result.delivered:,} of {result.published:,} transactions in Xero, each once; "
        f"{result.events_per_s:,.1f} events/s (published at "
        f"{result.published / result.publish_s:,.1f}/s); publish → Xero p50 "
        f"{percentile(latencies, 0.5):.2f}s, p99 {percentile(latencies, 0.99):.2f}s, max "
        f"{max(latencies):.2f}s, {result.over_interval_share:.2%} over the SYNC_INTERVAL of "
        f"{plan.interval_s:g}s (the real scheduler's); "
        f"{result.rate_limited} 429s; drained {result.drain_s:.1f}s after the load; "
        f"warm-up the first {plan.warmup_s:g}s",
        highlight=False,
    )
    if json_output:
        sys.stdout.write(json.dumps(result.figures()) + "\n")


def _rows(samples: Sequence[Sample], load_s: float, count: int = 12) -> list[Sample]:
    """About `count` samples evenly spread over the load, and the drain's last."""
    if not samples:
        return []
    wanted = [load_s * k / (count - 1) for k in range(count)]
    chosen = {min(range(len(samples)), key=lambda i: abs(samples[i].t_s - w)) for w in wanted}
    chosen.add(len(samples) - 1)
    return [samples[i] for i in sorted(chosen)]
