"""`xerosync chaos`: the whole system as the processes users run, attacked while it works,
then checked against what Xero (the sandbox) holds.

The sequence:
1. the embedded broker and PostgreSQL (or those the environment names) with fresh topics
   and databases; the Xero sandbox; the connector; two syncers; two schedulers with a
   compressed sync interval, so syncs run all the time;
2. organisations in the sandbox, the entities' accounts opened, each entity connected
   through the connector's pages and Xero's consent page, as a browser would;
3. the workload: the seeded stream (valid transactions and reversals, exact duplicates,
   malformed events) published at a steady pace while Xero fails on the sandbox's seeded
   rules (5xx, latency, timeouts, answers dropped after the write) and the schedule
   strikes: SIGKILLs of syncers, schedulers and the connector, 429 bursts, a full replay
   of `bank.transactions.v1`, one entity disconnected and reconnected, one account
   archived in Xero and restored;
4. the faults cleared, every process running: wait until Xero holds every valid
   transaction, then one more sync interval and a half, for anything late;
5. the verdict (`verify.py`) and the report.
"""

import asyncio
import json
import shutil
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from shared.contracts.bank import AccountOpened
from shared.contracts.topics import BANK_ACCOUNTS, BANK_TRANSACTIONS
from shared.db import asyncpg_params
from xero_sandbox.faults import FaultPlanIn, FaultRule
from xerosync.bench.common import BenchFailed, until
from xerosync.bench.post import Progress, bench_stack, drop_databases, own_databases
from xerosync.chaos import schedule as schedules
from xerosync.chaos.schedule import Action, Plan
from xerosync.chaos.verify import DlqRecord, Verdict, verify
from xerosync.chaos.workload import ZONE, Stream, Topology, stream, topology
from xerosync.dev import connector_env, syncer_env
from xerosync.devstack.bank_user import BankUser, UserFlowFailed
from xerosync.devstack.processes import ManagedProcess, ProcessFailed, free_port
from xerosync.devstack.stack import Stack
from xerosync.producer import EventWriter
from xerosync.replay.kafka import partition_extents, read_ranges, reading

console = Console(stderr=True)


@dataclass(frozen=True)
class ChaosConfig:
    transactions: int
    organisations: int
    entities: int
    duration_s: float
    """How long the stream is published and the schedule strikes."""
    syncer_kills: int
    other_kills: int
    """SIGKILLs of a scheduler, and of the connector, each."""
    bursts: int
    sync_interval_s: float
    check_interval_s: float = 120.0
    """The connector's check of every connection against Xero (7 calls for a connection
    of three accounts, from the organisation's 60 a minute): often enough to see the
    restored account again within the run, seldom enough to leave the syncers the rest."""
    seed: int = 1
    syncers: int = 2
    schedulers: int = 2
    quiesce_timeout_s: float = 900.0


PROFILES: dict[str, ChaosConfig] = {
    # 20,000 transactions over 10 minutes (33 a second), a syncer killed every 25 s.
    "full": ChaosConfig(
        transactions=20_000,
        organisations=10,
        entities=20,
        duration_s=600,
        syncer_kills=24,
        other_kills=2,
        bursts=4,
        sync_interval_s=30,
    ),
    # Every kind of fault, at a smaller scale: a few minutes in all.
    "quick": ChaosConfig(
        transactions=4_000,
        organisations=10,
        entities=20,
        duration_s=120,
        syncer_kills=6,
        other_kills=1,
        bursts=2,
        sync_interval_s=15,
        check_interval_s=60,
    ),
}


RARE: dict[str, FaultRule] = {
    "xero_timeout": FaultRule(kind="timeout", times=1, path="/bankfeeds.xro/", timeout_s=8.0),
    "xero_response_dropped": FaultRule(
        kind="drop_after_write", times=1, path="/bankfeeds.xro/1.0/statements", methods=["POST"]
    ),
}
"""The rarest of Xero's faults, each also scheduled once so that a short run meets it."""

XERO_RULES = frozenset({"rate_limit_burst", "xero_timeout", "xero_response_dropped"})
"""The actions that only arm a fault rule in the sandbox."""


class ChaosFailed(RuntimeError):
    """The run could not be carried out (not a verdict): the message says why."""


@dataclass
class Service:
    """One process of the system the run may kill and start again."""

    service: str
    port: int
    env: dict[str, str]
    process: ManagedProcess | None = None
    down: bool = False
    """Killed on purpose and not started again yet."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Tally:
    """What the schedule did, and what went wrong on the way that is not a verdict."""

    done: Counter[str] = field(default_factory=Counter)
    unplanned_exits: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    late_s: float = 0.0
    """How far behind its schedule the latest action ran."""


class ChaosRun:
    def __init__(self, stack: Stack, config: ChaosConfig, run: str) -> None:
        self.stack = stack
        self.config = config
        self.run = run
        self.prefix = f"ch{run}-"
        self.world: Topology = topology(
            run, organisations=config.organisations, entities=config.entities
        )
        self.stream: Stream = stream(
            run,
            self.world,
            transactions=config.transactions,
            seed=config.seed,
            now=datetime.now(UTC) - timedelta(minutes=5),
        )
        self.plan: Plan = schedules.plan(
            seed=config.seed,
            duration_s=config.duration_s,
            entities=config.entities,
            syncer_kills=config.syncer_kills,
            syncers=config.syncers,
            schedulers=config.schedulers,
            other_kills=config.other_kills,
            bursts=config.bursts,
        )
        self.sandbox_url = ""
        self.tenants: list[str] = []
        self.services: dict[str, Service] = {}
        self.tally = Tally()
        self.published = 0
        self.started_at = 0.0
        self._restarting = asyncio.Lock()
        self._fault_plans = 0

    # ------------------------------------------------------------------ the system
    @property
    def connector(self) -> Service:
        return self.services["connector"]

    def replicas(self, service: str) -> list[Service]:
        return [s for s in self.services.values() if s.service == service]

    def start_sandbox(self) -> None:
        port = free_port()
        sandbox = self.stack.start_tool(
            "sandbox", ["sandbox", f"--port={port}", "--log-level=warning"]
        )
        self.sandbox_url = f"http://127.0.0.1:{port}"
        sandbox.wait_http_ok(f"{self.sandbox_url}/admin/time")

    async def start_services(self) -> None:
        connector_url = self.stack.service_url("connector")
        env = connector_env(self.sandbox_url, connector_url)
        env.update(
            {
                # Notices a restored account within the run, not 15 minutes later.
                "CONNECTOR_CONNECTION_CHECK_INTERVAL_S": f"{self.config.check_interval_s:g}",
                "CONNECTOR_XERO_TIMEOUT_S": "5",
            }
        )
        self.services["connector"] = Service("connector", self.stack.http_port("connector"), env)
        syncing = {
            **syncer_env(self.sandbox_url, connector_url),
            # Xero's faulted calls hang 8 s; the syncer gives up on them at 4.
            "SYNCER_XERO_TIMEOUT_S": "4",
            "SYNCER_RUN_POLL": "500ms",
        }
        for n in range(self.config.syncers):
            self.services[f"syncer-{n}"] = Service("syncer", free_port(), dict(syncing))
        interval = f"{self.config.sync_interval_s:g}s"
        for n in range(self.config.schedulers):
            self.services[f"scheduler-{n}"] = Service(
                "scheduler", free_port(), {"SCHEDULER_SYNC_INTERVAL": interval}
            )
        await asyncio.to_thread(self._start, self.connector)
        # Side by side: each waits about a session for its consumer group.
        others = [s for s in self.services.values() if s.service != "connector"]
        await asyncio.gather(*(asyncio.to_thread(self._start, s) for s in others))

    def _start(self, service: Service) -> None:
        port = None if service.service == "connector" else service.port
        service.process = self.stack.start_service(
            service.service, extra_env=service.env, port=port
        )
        service.down = False

    async def kill(self, service: Service, pause: float) -> None:
        """SIGKILL (the process and anything it started), `pause`, start again."""
        async with self._restarting:
            service.down = True
            if service.process is not None:
                await asyncio.to_thread(service.process.kill)
            await asyncio.sleep(pause)
            await asyncio.to_thread(self._start, service)

    async def supervise(self) -> None:
        """A process that exits unasked is a finding: noted, and started again."""
        while True:
            await asyncio.sleep(1.0)
            async with self._restarting:
                for name, service in self.services.items():
                    process = service.process
                    if service.down or process is None or process.running():
                        continue
                    self.tally.unplanned_exits.append(
                        f"{name} exited with code {process.poll()}: {process.log_tail(5)}"
                    )
                    console.print(f"[yellow]{name} exited unasked; starting it again[/yellow]")
                    await asyncio.to_thread(self._start, service)

    # ------------------------------------------------------------------ Xero (the sandbox)
    async def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.sandbox_url, timeout=60) as xero:
            answer = await xero.request(method, path, **kwargs)
        if not answer.is_success:
            raise ChaosFailed(f"sandbox {method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json() if answer.content else None

    async def xero_faults(self, *rules: FaultRule) -> None:
        """Xero's faults from now on (the sandbox's draws seeded from the run's seed)."""
        self._fault_plans += 1
        plan = FaultPlanIn(rules=list(rules), seed=self.config.seed * 1000 + self._fault_plans)
        await self.admin("PUT", "/admin/faults", json=plan.model_dump())

    async def add_xero_fault(self, rule: FaultRule) -> None:
        """One more rule beside those in force (and what is left of earlier ones)."""
        await self.admin("POST", "/admin/faults", json=rule.model_dump())

    async def holdings(self) -> dict[str, dict[str, Any]]:
        return {t: await self.admin("GET", f"/admin/organisations/{t}") for t in self.tenants}

    async def sandbox_counts(self) -> tuple[dict[str, int], int]:
        """Faults the sandbox injected, by kind, and the 429s of its own rate limiter."""
        async with httpx.AsyncClient(timeout=30) as client:
            text = (await client.get(f"{self.sandbox_url}/metrics")).text
        faults: dict[str, int] = {}
        limited = 0
        for line in text.splitlines():
            if line.startswith("xero_sandbox_faults_injected_total{"):
                kind = line.split('kind="', 1)[1].split('"', 1)[0]
                faults[kind] = faults.get(kind, 0) + int(float(line.rsplit(" ", 1)[1]))
            elif line.startswith("xero_sandbox_requests_total{") and 'status="429"' in line:
                limited += int(float(line.rsplit(" ", 1)[1]))
            elif line.startswith("xero_sandbox_calls_delayed_total "):
                faults["latency"] = int(float(line.rsplit(" ", 1)[1]))
        return faults, limited - faults.get("rate_limit", 0)

    # ------------------------------------------------------------------ setup
    async def organisations(self) -> None:
        for n in range(self.config.organisations):
            made = await self.admin(
                "POST",
                "/admin/organisations",
                json={
                    "name": f"Chaos Trading {n:02d} Ltd",
                    "base_currency": "HKD",
                    "currencies": ["USD", "CNY"],
                    "multi_currency": True,
                    "timezone": "CHINASTANDARDTIME",
                    "country_code": "HK",
                },
            )
            self.tenants.append(str(made["tenant_id"]))

    @property
    def start_date(self) -> date:
        return self.stream.start.astimezone(ZONE).date()

    async def connect_all(self) -> None:
        async with EventWriter(self.stack.kafka, self.stack.topics) as writer:
            await writer.write(
                BANK_ACCOUNTS,
                [
                    AccountOpened(
                        entity_id=entity.entity_id,
                        account_id=account.account_id,
                        currency=account.currency,
                        name=f"{account.currency} Current",
                        account_number=account.account_number,
                    )
                    for entity in self.world.entities
                    for account in entity.accounts
                ],
            )
        gate = asyncio.Semaphore(4)

        async def one(index: int) -> None:
            async with gate:
                await self.connect(index, expect="connected")

        with Progress("connecting") as progress:
            await asyncio.gather(*(one(e.index) for e in self.world.entities))
            progress.update(f"{len(self.world.entities)} entities connected", final=True)
        await until(
            self._syncers_hold_everything,
            within=90,
            what="the syncers' replica holds every connection",
        )

    async def connect(self, index: int, *, expect: str, patience_s: float = 0.0) -> None:
        """The entity's user connects (or reconnects) every account of it; with
        `patience_s`, pressing again every 5 s for that long, as a user would while Xero
        fails or is busy (a 429 burst is spent only by the calls it refuses, and the
        syncers back off from it, so it can outlast a minute)."""
        entity = self.world.entities[index]
        accounts = [a.account_id for a in entity.accounts]
        give_up = time.monotonic() + patience_s
        while True:
            try:
                async with BankUser(self.connector.url, self.sandbox_url, entity.entity_id) as user:
                    await until(
                        partial(user.lists_accounts, len(accounts)),
                        within=60,
                        what=f"{entity.entity_id}'s accounts in the connector",
                    )
                    _, notice = await user.connect(
                        self.tenants[entity.organisation],
                        accounts,
                        start_date=self.start_date,
                        email=f"{entity.entity_id}@chaos.example.com",
                    )
            except (UserFlowFailed, httpx.HTTPError) as error:
                if time.monotonic() >= give_up:
                    raise ChaosFailed(f"{entity.entity_id} could not connect: {error}") from error
                await asyncio.sleep(5.0)
                continue
            if notice != expect:
                self.tally.problems.append(f"{entity.entity_id}: {notice}, not {expect}")
            return

    async def _syncers_hold_everything(self) -> bool:
        accounts = sum(len(e.accounts) for e in self.world.entities)
        rows = await self._syncer_sql(
            "SELECT count(*) FROM connections c JOIN connection_accounts a "
            "USING (connection_id) WHERE c.entity_id LIKE $1 "
            "AND c.status = 'active' AND a.status = 'linked'",
            f"ch{self.run}-%",
        )
        return bool(rows and rows[0][0] == accounts)

    async def _syncer_sql(self, query: str, *args: Any) -> list[Any]:
        url = make_url(self.stack.database_url("syncer"))
        connection = await asyncpg.connect(**asyncpg_params(url))
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()

    # ------------------------------------------------------------------ the workload
    async def publish(self) -> None:
        """The stream, in order, spread evenly over the workload's duration."""
        topic = self.stack.topics.name(BANK_TRANSACTIONS)
        records = self.stream.records
        tick = 0.25
        per_tick = max(1, round(len(records) * tick / self.config.duration_s))
        async with EventWriter(self.stack.kafka, self.stack.topics) as writer:
            for start in range(0, len(records), per_tick):
                chunk = records[start : start + per_tick]
                await writer.write_raw(topic, [(r.key, r.value) for r in chunk])
                self.published += len(chunk)
                due = self.started_at + (start + per_tick) / per_tick * tick
                await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def strike(self) -> None:
        """The schedule's actions, each at its moment, in two lanes: the processes and the
        user's flows one at a time (a kill and its restart, or waiting for the connector to
        notice an archived account, finishes before the next begins), and Xero's fault
        rules, which take no time to arm, on their own so that none is delayed past the
        workload's end."""
        xero = [a for a in self.plan.actions if a.kind in XERO_RULES]
        others = [a for a in self.plan.actions if a.kind not in XERO_RULES]
        await asyncio.gather(self._strike(xero), self._strike(others))
        await self.strike_rare_faults()

    async def _strike(self, actions: list[Action]) -> None:
        for action in actions:
            wait = self.started_at + action.at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                self.tally.late_s = max(self.tally.late_s, -wait)
            await self.act(action)
            self.tally.done[action.kind] += 1

    async def act(self, action: Action) -> None:
        match action.kind:
            case "kill_syncer" | "kill_scheduler" | "kill_connector":
                service = action.kind.removeprefix("kill_")
                await self.kill(self.replicas(service)[action.replica], action.pause)
            case "rate_limit_burst":
                burst = FaultRule(
                    kind="rate_limit",
                    rate=1.0,
                    times=action.calls,
                    path="/",
                    problem=action.problem,
                    retry_after_s=2,
                )
                await self.add_xero_fault(burst)
            case "xero_timeout" | "xero_response_dropped":
                await self.add_xero_fault(RARE[action.kind])
            case "replay_transactions":
                await self.replay()
            case "archive_account":
                await self.admin("POST", f"{await self._archived_path()}/archive")
            case "restore_account":
                await self._await_archive_noticed()
                await self.admin("POST", f"{await self._archived_path()}/restore")
            case "disconnect_entity":
                entity = self.world.entities[self.plan.disconnected_entity]
                async with BankUser(self.connector.url, self.sandbox_url, entity.entity_id) as user:
                    await user.disconnect()
            case "reconnect_entity":
                await self.connect(
                    self.plan.disconnected_entity, expect="reconnected", patience_s=180
                )

    async def strike_rare_faults(self) -> None:
        """Xero's faults stay in force until each rare kind has struck: a one-off rule
        stays armed until a call gets past the other faults (a 503, a 429) and it takes
        effect, and syncs still post what was published last, within a few intervals."""
        patience = 3 * self.config.sync_interval_s + 30
        deadline = time.monotonic() + patience
        for rule in RARE.values():
            while (await self.sandbox_counts())[0].get(rule.kind, 0) == 0:
                if time.monotonic() > deadline:
                    self.tally.problems.append(
                        f"Xero's {rule.kind} fault was armed but no call met it in {patience:g}s"
                    )
                    break
                await asyncio.sleep(1.0)

    async def replay(self) -> None:
        """`xerosync replay topic bank.transactions.v1 --republish --apply`, as ops run it."""
        process = self.stack.start_tool(
            "replay",
            ["replay", "topic", BANK_TRANSACTIONS.name, "--republish", "--apply", "--json"],
        )
        code = await asyncio.to_thread(_wait, process, 600)
        if code != 0:
            raise ChaosFailed(f"the replay exited with {code}: {process.log_tail(10)}")
        try:
            done = json.loads(process.log_tail(1))
            self.tally.done["replayed_records"] += int(done.get("republished", 0) or 0)
        except (json.JSONDecodeError, TypeError, ValueError):
            pass

    def _archived(self) -> tuple[str, str]:
        entity = self.world.entities[self.plan.archived_entity]
        [account] = [a for a in entity.accounts if a.currency == self.plan.archived_currency]
        return self.tenants[entity.organisation], account.account_id

    async def _archived_path(self) -> str:
        tenant_id, account_id = self._archived()
        holdings = await self.admin("GET", f"/admin/organisations/{tenant_id}")
        feeds = [
            f
            for f in holdings["feed_connections"]
            if f["account_token"] == account_id and not f["deleted"]
        ]
        if not feeds:
            raise ChaosFailed(f"no bank feed in Xero for {account_id}")
        return f"/admin/organisations/{tenant_id}/accounts/{feeds[0]['account_id']}"

    async def _await_archive_noticed(self) -> None:
        """Until the bank's app shows the archived account as needing the user (the
        connector's check, or a sync Xero refused, found it)."""
        entity = self.world.entities[self.plan.archived_entity]
        _, account_id = self._archived()

        async def noticed() -> bool:
            async with BankUser(self.connector.url, self.sandbox_url, entity.entity_id) as user:
                connection = (await user.status())["connection"] or {}
            return any(
                a["account_id"] == account_id and a["status"] == "needs_user"
                for a in connection.get("accounts", [])
            )

        try:
            await until(noticed, within=120, what=f"{account_id} shown as archived")
        except BenchFailed as error:
            self.tally.problems.append(str(error))

    # ------------------------------------------------------------------ the end
    async def quiesce(self, progress: Progress) -> Verdict:
        """Until Xero holds every valid transaction, then one and a half sync intervals
        more for anything late; the verdict on what it holds then. Gives up waiting when
        nothing more arrived for three sync intervals and a connection check, or at the
        run's time limit."""
        deadline = time.monotonic() + self.config.quiesce_timeout_s
        patience = 3 * self.config.sync_interval_s + self.config.check_interval_s + 30
        last, moved = -1, time.monotonic()
        while True:
            verdict = await self.verdict()
            progress.update(
                f"{verdict.delivered:,}/{verdict.expected:,} in Xero, {verdict.missing:,} "
                f"missing, {verdict.duplicated} duplicated"
            )
            if verdict.missing == 0:
                break
            if verdict.delivered != last:
                last, moved = verdict.delivered, time.monotonic()
            if time.monotonic() > min(deadline, moved + patience):
                self.tally.problems.append(
                    f"gave up waiting: {verdict.missing} missing, nothing new in Xero for "
                    f"{time.monotonic() - moved:.0f}s"
                )
                await self.diagnose(verdict)
                return verdict
            await asyncio.sleep(3.0)
        await asyncio.sleep(self.config.sync_interval_s * 1.5)
        return await self.verdict()

    async def diagnose(self, verdict: Verdict) -> None:
        """Where the missing transactions are in the syncer's own records, per account."""
        missing = verdict.missing_ids
        rows = await self._syncer_sql(
            "SELECT t.account_id, count(*) AS n, "
            "count(p.transaction_id) AS recorded, "
            "string_agg(DISTINCT coalesce(b.state, '-'), ',') AS batch_states, "
            "string_agg(DISTINCT coalesce(a.status, '-'), ',') AS link "
            "FROM bank_transactions t "
            "LEFT JOIN postings p USING (transaction_id) "
            "LEFT JOIN posting_batches b ON b.batch_id = p.batch_id "
            "LEFT JOIN connection_accounts a ON a.account_id = t.account_id "
            "WHERE t.transaction_id = ANY($1::text[]) GROUP BY t.account_id",
            missing,
        )
        stored = sum(r["n"] for r in rows)
        self.tally.problems.append(
            f"missing: {len(missing) - stored} never stored by the syncer; by account: "
            + "; ".join(
                f"{r['account_id']} {r['n']} (recorded {r['recorded']}, batches "
                f"{r['batch_states']}, link {r['link']})"
                for r in rows
            )
        )

    async def verdict(self) -> Verdict:
        return verify(
            self.stream, self.tenants, await self.holdings(), await self.dlq(), prefix=self.prefix
        )

    async def dlq(self) -> list[DlqRecord]:
        topic = self.stack.topics.name(BANK_TRANSACTIONS) + ".dlq"
        found: list[DlqRecord] = []
        async with reading(self.stack.kafka) as consumer:
            extents = await partition_extents(consumer, topic)
            ranges = [(e.partition, e.start, e.end) for e in extents.values()]
            async for _, records in read_ranges(consumer, topic, ranges):
                found.extend(
                    DlqRecord(
                        r.value or b"",
                        {k: v.decode(errors="replace") for k, v in r.headers or ()},
                    )
                    for r in records
                )
        return found


def _wait(process: ManagedProcess, timeout: float) -> int | None:
    if process.process is None:
        return None
    return process.process.wait(timeout)


# ----------------------------------------------------------------------------- the command


@dataclass(frozen=True)
class Report:
    config: ChaosConfig
    verdict: Verdict
    faults: dict[str, int]
    rate_limited_by_xero: int
    published: int
    wall_s: float
    tally: Tally
    stream: Stream

    def figures(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "published": self.published,
            "delivered": v.delivered,
            "duplicated": v.duplicated,
            "missing": v.missing,
            "misrouted": v.misrouted,
            "dlq": v.dlq,
            "faults": self.faults,
            "wall_s": round(self.wall_s, 1),
            "expected": v.expected,
            "mismatched": v.mismatched,
            "unexpected": v.unexpected,
            "broken_accounts": v.broken_accounts,
            "resent": v.resent,
            "malformed": v.malformed,
            "dlq_records": v.dlq_records,
            "statements": v.statements,
            "published_by_kind": {
                "valid": self.stream.count("valid"),
                "duplicate": self.stream.count("duplicate"),
                "malformed": self.stream.count("malformed"),
                "reversals": self.stream.reversals,
            },
            "rate_limited_by_xero": self.rate_limited_by_xero,
            "unplanned_exits": len(self.tally.unplanned_exits),
            "schedule_late_s": round(self.tally.late_s, 1),
            "problems": self.tally.problems,
            "examples": v.examples,
            "config": asdict(self.config),
            "ok": v.ok,
        }


def run_chaos(config: ChaosConfig, *, json_output: bool, keep: bool = False) -> int:
    run = uuid.uuid4().hex[:6]
    stack = bench_stack("chaos", run)
    work_dir = stack.config.work_dir
    databases: list[str] = []
    began = time.monotonic()
    try:
        with console.status("starting the broker and PostgreSQL…"):
            stack.start_infrastructure()
        databases = own_databases(stack, ("connector", "scheduler", "syncer"), "chaos", run)
        report = asyncio.run(_run(stack, config, run))
    except (ChaosFailed, BenchFailed, ProcessFailed, UserFlowFailed) as error:
        console.print(f"[red]the chaos run could not finish:[/red] {error}")
        console.print(f"logs kept in {work_dir}")
        return 2
    finally:
        stack.stop()
        if stack.postgres is None:
            asyncio.run(drop_databases(databases))
    report = replace(report, wall_s=time.monotonic() - began)
    _print(report, json_output=json_output)
    if report.verdict.ok and not keep:
        shutil.rmtree(work_dir, ignore_errors=True)
    else:
        console.print(f"logs kept in {work_dir}")
    return 0 if report.verdict.ok else 1


async def _run(stack: Stack, config: ChaosConfig, run: str) -> Report:
    chaos = ChaosRun(stack, config, run)
    s = chaos.stream
    console.print(
        f"chaos run {run}, seed {config.seed}: {config.organisations} organisations "
        f"({chaos.world.sharing()} fed by several entities), {config.entities} entities, "
        f"{len(s.expected):,} transactions ({s.reversals} reversals) + "
        f"{s.count('duplicate'):,} duplicates + {s.count('malformed')} malformed over "
        f"{config.duration_s:g}s; {len(chaos.plan.actions)} scheduled faults",
        highlight=False,
    )
    with console.status("creating databases and topics, starting the sandbox and services…"):
        await stack.prepare()
        await asyncio.to_thread(chaos.start_sandbox)
        await chaos.start_services()
        await chaos.organisations()
    await chaos.connect_all()
    await chaos.xero_faults(*schedules.steady_rules())
    supervisor = asyncio.create_task(chaos.supervise())
    chaos.started_at = time.monotonic()
    try:
        with Progress("workload") as progress:
            work = asyncio.gather(chaos.publish(), chaos.strike())
            while not work.done():
                await asyncio.wait([work], timeout=5.0)
                progress.update(
                    f"{time.monotonic() - chaos.started_at:.0f}s: published "
                    f"{chaos.published:,}/{len(s.records):,}; "
                    + ", ".join(f"{k} {v}" for k, v in sorted(chaos.tally.done.items()))
                )
            await work
        await chaos.xero_faults()
        with Progress("settling") as progress:
            verdict = await chaos.quiesce(progress)
            progress.update(f"{verdict.delivered:,}/{verdict.expected:,} in Xero", final=True)
    finally:
        supervisor.cancel()
    injected, limited = await chaos.sandbox_counts()
    faults = {
        "syncer_sigkill": chaos.tally.done["kill_syncer"],
        "scheduler_sigkill": chaos.tally.done["kill_scheduler"],
        "connector_sigkill": chaos.tally.done["kill_connector"],
        "xero_5xx": injected.get("error", 0),
        "xero_429": injected.get("rate_limit", 0),
        "xero_latency": injected.get("latency", 0),
        "xero_timeout": injected.get("timeout", 0),
        "xero_response_dropped": injected.get("drop_after_write", 0),
        "replay": chaos.tally.done["replay_transactions"],
        "disconnect_reconnect": min(
            chaos.tally.done["disconnect_entity"], chaos.tally.done["reconnect_entity"]
        ),
        "archive_restore": min(
            chaos.tally.done["archive_account"], chaos.tally.done["restore_account"]
        ),
    }
    return Report(
        config=config,
        verdict=verdict,
        faults=faults,
        rate_limited_by_xero=limited,
        published=chaos.published,
        wall_s=0.0,
        tally=chaos.tally,
        stream=s,
    )


def _print(report: Report, *, json_output: bool) -> None:
    v = report.verdict
    out = Console() if sys.stdout.isatty() else Console(width=150)
    table = Table(
        title="chaos run: what Xero holds against what was published", title_justify="left"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in (
        ("events published", f"{report.published:,}"),
        ("  valid transactions (reversals)", f"{v.expected:,} ({report.stream.reversals})"),
        ("  exact duplicates", f"{report.stream.count('duplicate'):,}"),
        ("  malformed", f"{v.malformed}"),
        ("delivered exactly once", f"{v.delivered:,}"),
        ("duplicated", f"{v.duplicated}"),
        ("missing", f"{v.missing}"),
        ("misrouted", f"{v.misrouted}"),
        ("wrong amount or sign", f"{v.mismatched}"),
        ("not ours to post", f"{v.unexpected}"),
        ("accounts with broken statements", f"{v.broken_accounts} of {len(report.stream.ledgers)}"),
        ("statements", f"{v.statements:,}"),
        ("lines Xero dropped as resent", f"{v.resent}"),
        ("malformed in the DLQ with a reason", f"{v.dlq}/{v.malformed}"),
        ("DLQ records", f"{v.dlq_records}"),
        ("429s of Xero's own limiter", f"{report.rate_limited_by_xero}"),
        ("wall time", f"{report.wall_s:,.0f}s"),
    ):
        table.add_row(name, value)
    out.print(table)
    faults = Table(title="faults injected", title_justify="left")
    faults.add_column("kind")
    faults.add_column("count", justify="right")
    for kind, count in report.faults.items():
        faults.add_row(kind, str(count))
    out.print(faults)
    for kind, examples in v.examples.items():
        out.print(f"{kind}: " + "; ".join(examples), highlight=False)
    for line in report.tally.unplanned_exits + report.tally.problems:
        out.print(f"[yellow]note:[/yellow] {line}", highlight=False)
    out.print(
        "verdict: "
        + ("[green]PASS[/green]" if v.ok else "[red]FAIL[/red]")
        + " (0 duplicated, 0 missing, 0 misrouted, contiguous statements, every malformed "
        "event in the DLQ)"
    )
    if json_output:
        sys.stdout.write(json.dumps(report.figures(), default=str) + "\n")
