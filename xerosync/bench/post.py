"""`xerosync bench post`: how close the syncer gets to Xero's rate limits when it posts a
backlog, measured against the Xero sandbox with its rate-limit windows scaled, in two
phases: one organisation with a large backlog, then many organisations at once.

What runs. The embedded broker and PostgreSQL (or those the environment names), the Xero
sandbox, the connector and the syncer, each as the process users run (`Stack`). The
syncer runs with `SYNCER_RATE_LIMIT_SCALE` equal to the sandbox's `rate_limit_scale`, so
both count the same windows; it is started afresh for each phase, since the scale differs.

How a phase is set up (none of it measured):
1. organisations are created in the sandbox (HKD base, multi-currency, UTC+8);
2. each organisation's entity opens its accounts (`AccountOpened` on `bank.accounts.v1`);
3. its user connects the entity through the connector's pages, as a browser would:
   development sign-in, *Sync* with every account and a start date, the sandbox's consent
   page, back to the callback; the syncer's replica must then hold the connection;
4. the backlog, consistent `TransactionBooked` events (each account's `balance_after`
   chains from its opening balance, in booking order), is published and the benchmark
   waits until the syncer's database holds every transaction;
5. it waits until a whole rate-limit window has passed since the connector's last call,
   so no organisation starts with part of its budget spent.

What is measured. One `SyncDue` per connection is published at once on
`xero.sync-due.v1`, as the scheduler would; the phase ends when every run has finished.
The sandbox's own log of API calls (`GET /admin/requests`: times, tenants, statuses) is
read while it runs and is the only source of the figures:

- window_s: the scaled minute, 60 / scale;
- calls_ratio: the calls the sandbox admitted (not its 429s) in each whole window that
  ended with a backlog left, windows counted from the first posting call, over what the
  limits allowed in it: 60 for each organisation with a backlog throughout the window
  (plus what one that ran out during it made), at most the app's 10,000 and, for Bank
  Feeds, the app's 180 `POST /Statements` (which bind from four organisations on);
- txns_per_call: transactions over the posting calls Xero accepted (1,000 is a full
  statement, 50 a full accounting batch);
- rate_limited: 429 answers to any call of the phase's organisations;
- txns_per_s: end to end, transactions over the time from publishing the SyncDue events
  to the sandbox's answer to the last posting call (which includes each run's start:
  its access token, its first query, the first request's body);
- busy_share: how far into its window the last call of the busiest whole window was
  answered. Well under 1, the limits bound the rate, not this machine.

Then the sandbox's holdings are checked: every transaction of the backlog is in its
organisation, once.
"""

import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from shared.contracts.bank import AccountOpened, TransactionBooked
from shared.contracts.topics import BANK_ACCOUNTS, BANK_TRANSACTIONS, XERO_SYNC_DUE
from shared.contracts.xero import SyncDue
from shared.db import asyncpg_params
from shared.xero_timezones import XERO_TO_IANA
from xerosync.bench.common import BenchFailed, drop_database, fresh_database_url, until
from xerosync.dev import connector_env, syncer_env
from xerosync.devstack.bank_user import BankUser, UserFlowFailed
from xerosync.devstack.processes import ManagedProcess, ProcessFailed, free_port
from xerosync.devstack.stack import Stack, StackConfig
from xerosync.producer import EventWriter

Sink = Literal["bankfeeds", "accounting"]

PER_MINUTE = 60
"""Xero's calls per minute per organisation and app."""
APP_PER_MINUTE = 10_000
STATEMENTS_PER_MINUTE = 180
"""Bank Feeds `POST /Statements` per minute per app."""
FULL_BATCH: dict[Sink, int] = {"bankfeeds": 1000, "accounting": 50}
POSTING: dict[Sink, tuple[str, str]] = {
    "bankfeeds": ("POST", "/bankfeeds.xro/1.0/statements"),
    "accounting": ("PUT", "/api.xro/2.0/banktransactions"),
}
CURRENCIES = ("HKD", "USD", "CNY")
"""Each entity's accounts, one per currency, as the bank's business customers hold them."""
TIMEZONE = "CHINASTANDARDTIME"
ZONE = ZoneInfo(XERO_TO_IANA[TIMEZONE])
HISTORY_DAYS = 30
"""The backlog is booked over the last 30 days; the connection starts syncing from then."""
GOAL_CALLS_RATIO = 0.95
OPENING_BALANCE = Decimal("250000.00")
"""Each account's balance before its first transaction."""


@dataclass(frozen=True)
class Defaults:
    single_transactions: int
    single_scale: float
    per_tenant_transactions: int
    many_scale: float


DEFAULTS: dict[Sink, Defaults] = {
    # Bank Feeds: a statement carries 1,000 lines, so one organisation's window is 60,000
    # transactions, and the app's 180 statements a window (which bind from four
    # organisations on) are 180,000. 198,000 for one organisation (66 statements on each
    # of its 3 accounts) last three whole windows and part of a fourth. 20 times 12,000 are
    # 240 statements: one whole window and part of the next. On the 2-core development
    # machine 60 statements of one organisation take about 6.5 s and 180 of 20
    # organisations about 15 s, so windows of 12 s (scale 5) and 40 s (scale 1.5) leave
    # the machine idle for about half of each: the limits bind, not the machine.
    "bankfeeds": Defaults(198_000, 5.0, 12_000, 1.5),
    # Accounting: 50 a call, so one organisation's window is 3,000 transactions and 20
    # organisations' 60,000 in 1,200 calls (about 13 s on that machine; 60 take 0.8 s).
    "accounting": Defaults(10_500, 10.0, 3_600, 2.0),
}

console = Console(stderr=True)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Call:
    """One API call as the sandbox logged it."""

    at: float
    """Epoch seconds: when the sandbox answered."""
    method: str
    path: str
    status: int
    tenant_id: str


@dataclass(frozen=True)
class Window:
    """One whole rate-limit window of a phase, counted from its first posting call."""

    calls: int
    """Calls the sandbox admitted (429s are not counted; Xero does not count them)."""
    allowed: int
    """What the limits allowed: 60 for each organisation with a backlog throughout the
    window, plus what an organisation that ran out during it made, capped by the app's
    limits."""
    busy_s: float
    """When, after the window's start, its last admitted call was answered."""


@dataclass(frozen=True)
class PhaseResult:
    name: str
    sink: Sink
    tenants: int
    transactions: int
    in_sandbox: int
    """Transactions of the backlog found in the sandbox's organisations afterwards."""
    scale: float
    window_s: float
    allowed_per_window: int
    """For every organisation of the phase with a backlog."""
    binding_limit: str
    windows: list[Window]
    """The whole windows at whose end a backlog remained."""
    posting_calls: int
    """Including those answered 429."""
    batches: int
    """Posting calls Xero accepted."""
    txns_per_call: float
    full_batches: int
    rate_limited: int
    rate_limited_at: list[float]
    """Seconds after the first posting call."""
    rate_limited_by: dict[str, int]
    """The syncer's count of 429s by the limit Xero named."""
    posting_span_s: float
    txns_per_s: float
    """End to end: transactions over the time from publishing the SyncDue events to the
    sandbox's answer to the last posting call."""
    sync_to_done_s: float

    @property
    def calls_ratio(self) -> float | None:
        """None when no whole window ended with a backlog left (too small a backlog)."""
        allowed = sum(w.allowed for w in self.windows)
        return sum(w.calls for w in self.windows) / allowed if allowed else None

    @property
    def busy_share(self) -> float | None:
        """The largest share of a window the machine needed for that window's calls."""
        if not self.windows:
            return None
        return max(w.busy_s for w in self.windows) / self.window_s

    @property
    def goal_met(self) -> bool:
        """At least 95% of the calls allowed, no 429, and every batch full but (at most)
        each account's last."""
        ratio = self.calls_ratio
        partial = self.batches - self.full_batches
        return (
            ratio is not None
            and ratio >= GOAL_CALLS_RATIO
            and self.rate_limited == 0
            and partial <= self.tenants * len(CURRENCIES)
        )

    def figures(self) -> dict[str, Any]:
        ratio, busy = self.calls_ratio, self.busy_share
        return {
            "calls_ratio": None if ratio is None else round(ratio, 4),
            "txns_per_call": round(self.txns_per_call, 2),
            "rate_limited": self.rate_limited,
            "txns_per_s": round(self.txns_per_s, 1),
            "window_s": round(self.window_s, 3),
            "scale": self.scale,
            "tenants": self.tenants,
            "transactions": self.transactions,
            "in_sandbox": self.in_sandbox,
            "posting_calls": self.posting_calls,
            "batches": self.batches,
            "full_batches": self.full_batches,
            "allowed_per_window": self.allowed_per_window,
            "binding_limit": self.binding_limit,
            "calls_per_window": [w.calls for w in self.windows],
            "allowed_in_window": [w.allowed for w in self.windows],
            "busy_share": None if busy is None else round(busy, 3),
            "rate_limited_at_s": [round(t, 3) for t in self.rate_limited_at],
            "rate_limited_by": self.rate_limited_by,
            "posting_span_s": round(self.posting_span_s, 3),
            "sync_to_done_s": round(self.sync_to_done_s, 3),
            "goal_met": self.goal_met,
        }


def app_limits(sink: Sink) -> list[tuple[int, str]]:
    """The app-wide limits on calls in a window, with their names."""
    limits = [(APP_PER_MINUTE, f"app's {APP_PER_MINUTE:,} a minute")]
    if sink == "bankfeeds":
        limits.append((STATEMENTS_PER_MINUTE, f"app's {STATEMENTS_PER_MINUTE} statements"))
    return limits


def analyse(
    *,
    name: str,
    sink: Sink,
    scale: float,
    transactions: int,
    tenants: Sequence[str],
    calls: Sequence[Call],
    due_at: float,
    in_sandbox: int = 0,
    full_batches: int = 0,
    rate_limited_by: dict[str, int] | None = None,
) -> PhaseResult:
    """The phase's figures from the sandbox's log of its organisations' calls (those
    answered after the SyncDue events were published, in the order answered)."""
    window = 60.0 / scale
    method, path = POSTING[sink]
    posting = [c for c in calls if c.method == method and c.path.rstrip("/") == path]
    succeeded = [c for c in posting if 200 <= c.status < 300]
    if not succeeded:
        raise BenchFailed(f"{name}: the sandbox logged no successful posting call")
    first, last = posting[0].at, posting[-1].at
    # An organisation has a backlog until its last posting call.
    backlog_until = {t: max(c.at for c in posting if c.tenant_id == t) for t in tenants}
    caps = app_limits(sink)
    measured: list[Window] = []
    start = first
    while start + window <= last:
        end = start + window
        inside = [c for c in calls if start <= c.at < end and c.status != 429]
        throughout = sum(1 for until in backlog_until.values() if until >= end)
        ran_out = sum(1 for c in inside if backlog_until[c.tenant_id] < end)
        allowed = min([throughout * PER_MINUTE + ran_out, *(cap for cap, _ in caps)])
        busy = max((c.at for c in inside), default=start) - start
        measured.append(Window(calls=len(inside), allowed=allowed, busy_s=busy))
        start = end
    allowed_all, binding = min(
        [(len(tenants) * PER_MINUTE, f"{PER_MINUTE} an organisation"), *caps]
    )
    limited = [c.at - first for c in calls if c.status == 429]
    return PhaseResult(
        name=name,
        sink=sink,
        tenants=len(tenants),
        transactions=transactions,
        in_sandbox=in_sandbox,
        scale=scale,
        window_s=window,
        allowed_per_window=allowed_all,
        binding_limit=binding,
        windows=measured,
        posting_calls=len(posting),
        batches=len(succeeded),
        txns_per_call=transactions / len(succeeded),
        full_batches=full_batches,
        rate_limited=len(limited),
        rate_limited_at=limited,
        rate_limited_by=rate_limited_by or {},
        posting_span_s=last - first,
        txns_per_s=transactions / (last - due_at),
        sync_to_done_s=last - due_at,
    )


# ----------------------------------------------------------------------------- the backlog


@dataclass(frozen=True)
class Tenant:
    """One organisation and the entity that connects to it."""

    index: int
    tenant_id: str
    entity_id: str
    accounts: tuple[tuple[str, str], ...]
    """(account id, currency)."""
    owner: str
    """The Xero user's e-mail address."""


@dataclass
class Connected:
    tenant: Tenant
    connection_id: uuid.UUID


def backlog(
    tenant: Tenant, count: int, *, start: datetime, end: datetime, run: str
) -> Iterator[tuple[bytes, bytes]]:
    """`count` TransactionBooked records of the tenant's entity, spread over its accounts
    and booked evenly over [start, end), each account's balance_after chaining from its
    opening balance in booking order. Keyed by account, as the contract says."""
    accounts = len(tenant.accounts)
    for position, (account_id, currency) in enumerate(tenant.accounts):
        share = count // accounts + (1 if position < count % accounts else 0)
        if share == 0:
            continue
        step = (end - start) / share
        balance = OPENING_BALANCE
        key = account_id.encode()
        for n in range(share):
            event = booked(
                tenant, account_id, currency, n, before=balance, at=start + step * n, run=run
            )
            balance = event.balance_after
            yield key, event.model_dump_json().encode()


def booked(
    tenant: Tenant,
    account_id: str,
    currency: str,
    n: int,
    *,
    before: Decimal,
    at: datetime,
    run: str,
) -> TransactionBooked:
    """The account's `n`-th transaction (every third a credit), booked `at`, on a balance
    of `before`; its id is `<run>-<tenant index>-<currency>-<n>`."""
    amount = Decimal(1234 + (n * 7919) % 250_000) / 100
    credit = n % 3 == 0
    return TransactionBooked(
        transaction_id=f"{run}-{tenant.index:03d}-{currency}-{n:07d}",
        entity_id=tenant.entity_id,
        account_id=account_id,
        currency=currency,
        amount=amount,
        direction="credit" if credit else "debit",
        balance_after=before + amount if credit else before - amount,
        booked_at=at,
        value_date=at.astimezone(ZONE).date(),
        description=f"FPS payment {n} {'from' if credit else 'to'} Kowloon Printing Co",
        counterparty_name="Kowloon Printing Co",
        reference=f"INV-{tenant.index}-{n}",
        category="transfer",
    )


# ----------------------------------------------------------------------------- the stack


class Progress:
    """One line of progress on stderr: updated in place on a terminal, otherwise printed
    every few seconds (and once at the end)."""

    def __init__(self, what: str, every: float = 5.0) -> None:
        self._what = what
        self._every = every
        self._printed = 0.0
        self._status = console.status(what) if console.is_terminal else None

    def __enter__(self) -> "Progress":
        if self._status is not None:
            self._status.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def update(self, text: str, *, final: bool = False) -> None:
        line = f"{self._what}: {text}"
        if self._status is not None and not final:
            self._status.update(line)
        elif final or time.monotonic() - self._printed >= self._every:
            self._printed = time.monotonic()
            console.print(line, highlight=False)


class _RequestLog:
    """The calls of one app in the sandbox's log of API calls, read as the log grows (it
    keeps only the latest 10,000, so it is read every second while a phase runs)."""

    def __init__(self, xero: httpx.AsyncClient, client_id: str) -> None:
        self.xero = xero
        self.client_id = client_id
        self.calls: list[Call] = []
        self._last: tuple[Any, ...] | None = None

    async def skip_to_end(self) -> None:
        """From now on: what the log holds already is not read."""
        await self.read(10_000)
        self.calls.clear()

    async def read(self, limit: int = 500) -> None:
        """Take the calls logged since the last read (newest last in the log)."""
        answer = await self.xero.get("/admin/requests", params={"limit": limit})
        answer.raise_for_status()
        records: list[dict[str, Any]] = answer.json()
        keys = [self._key(r) for r in records]
        if self._last is not None:
            try:
                start = len(keys) - keys[::-1].index(self._last)
            except ValueError:
                if limit < 10_000:
                    await self.read(10_000)
                    return
                raise BenchFailed(
                    "the sandbox logged over 10,000 calls between two looks at its log"
                ) from None
        else:
            start = 0
        for record in records[start:]:
            if record["client_id"] == self.client_id and record["tenant_id"]:
                self.calls.append(
                    Call(
                        at=datetime.fromisoformat(record["at"]).timestamp(),
                        method=record["method"],
                        path=record["path"],
                        status=record["status"],
                        tenant_id=record["tenant_id"],
                    )
                )
        if keys:
            self._last = keys[-1]

    @staticmethod
    def _key(record: dict[str, Any]) -> tuple[Any, ...]:
        return (
            record["at"],
            record["method"],
            record["path"],
            record["status"],
            record["tenant_id"],
            record["idempotency_key"],
        )


class PostBench:
    def __init__(self, stack: Stack, *, sink: Sink, run: str) -> None:
        self.stack = stack
        self.sink = sink
        self.run = run
        self.sandbox_url = ""
        self.client_id = ""
        self.connector_url = stack.service_url("connector")
        self.syncer_url = stack.service_url("syncer")
        self._tenants = 0
        self.backlog_ends: dict[int, int] = {}
        """Per partition of the transactions topic, the offset after the backlog."""

    # ------------------------------------------------------------------ setup

    def start(self) -> None:
        """The sandbox and the connector; the syncer starts with each phase."""
        port = free_port()
        sandbox = self.stack.start_tool(
            "sandbox", ["sandbox", f"--port={port}", "--log-level=warning"]
        )
        self.sandbox_url = f"http://127.0.0.1:{port}"
        sandbox.wait_http_ok(f"{self.sandbox_url}/admin/time")
        env = connector_env(self.sandbox_url, self.connector_url)
        self.client_id = env["CONNECTOR_XERO_CLIENT_ID"]
        env.update({"CONNECTOR_SINK": self.sink, "LOG_LEVEL": "WARNING"})
        self.stack.start_service("connector", extra_env=env)

    def start_syncer(self, scale: float, **extra_env: str) -> ManagedProcess:
        env = syncer_env(self.sandbox_url, self.connector_url)
        env.update(
            {
                "SYNCER_RATE_LIMIT_SCALE": f"{scale:g}",
                "SYNCER_RUN_POLL": "200ms",
                "LOG_LEVEL": "WARNING",
                **extra_env,
            }
        )
        return self.stack.start_service("syncer", extra_env=env)

    def stop_syncer(self) -> None:
        process = self.stack.started.get("syncer")
        if process is not None:
            process.stop()

    # ------------------------------------------------------------------ a phase

    async def phase(self, name: str, *, tenants: int, per_tenant: int, scale: float) -> PhaseResult:
        async with (
            httpx.AsyncClient(base_url=self.sandbox_url, timeout=120) as xero,
            Db(self.stack.database_url("syncer")) as db,
        ):
            answer = await xero.put("/admin/time", json={"rate_limit_scale": scale})
            answer.raise_for_status()
            window = 60.0 / scale
            console.print(
                f"{name}: {tenants} organisation(s), {per_tenant:,} transactions each "
                f"({len(CURRENCIES)} accounts), scale {scale:g} (window {window:g}s)",
                highlight=False,
            )
            await asyncio.to_thread(self.start_syncer, scale)
            try:
                made = await self.organisations(xero, tenants)
                connected = await self.connect(db, made)
                connected_at = time.time()
                total = await self._ingest(db, made, per_tenant)
                # Every call the connector made while connecting leaves the window first,
                # so each organisation starts with its whole budget.
                await asyncio.sleep(max(0.0, connected_at + window * 1.05 - time.time()))
                log = _RequestLog(xero, self.client_id)
                await log.skip_to_end()
                due_at = await self._sync(connected)
                await self._wait_posted(db, log, connected, total)
                await log.read()
                async with httpx.AsyncClient(base_url=self.syncer_url, timeout=10) as syncer:
                    limited = await syncer_counter(syncer, "xerosync_xero_rate_limited", "limit")
            finally:
                await asyncio.to_thread(self.stop_syncer)
            found = await self._check_holdings(xero, made, per_tenant)
            full = await db.fetchval(
                "SELECT count(*) FROM posting_batches WHERE connection_id = ANY($1::uuid[]) "
                "AND cardinality(transaction_ids) = $2",
                [c.connection_id for c in connected],
                FULL_BATCH[self.sink],
            )
        ids = [c.tenant.tenant_id for c in connected]
        return analyse(
            name=name,
            sink=self.sink,
            scale=scale,
            transactions=total,
            tenants=ids,
            calls=[c for c in log.calls if c.tenant_id in set(ids) and c.at >= due_at],
            due_at=due_at,
            in_sandbox=found,
            full_batches=int(full or 0),
            rate_limited_by={k: v for k, v in limited.items() if v},
        )

    async def start_posting(
        self, *, tenants: int, per_tenant: int, scale: float
    ) -> list[Connected]:
        """For `bench ingest --with-posting`: organisations connected, a backlog each in the
        syncer's database, and their runs started (the syncer must be running at `scale`).
        Returns once the SyncDue events are out; the end offsets of the backlog on the
        transactions topic are left in `backlog_ends`."""
        async with (
            httpx.AsyncClient(base_url=self.sandbox_url, timeout=120) as xero,
            Db(self.stack.database_url("syncer")) as db,
        ):
            answer = await xero.put("/admin/time", json={"rate_limit_scale": scale})
            answer.raise_for_status()
            made = await self.organisations(xero, tenants)
            connected = await self.connect(db, made)
            await self._ingest(db, made, per_tenant)
            await self._sync(connected)
        return connected

    async def posting_left(self, connected: list[Connected]) -> int:
        """How many of the connections' runs have not finished yet."""
        async with Db(self.stack.database_url("syncer")) as db:
            left = await db.fetchval(
                "SELECT count(*) FROM sync_runs WHERE connection_id = ANY($1::uuid[]) "
                "AND state IN ('queued', 'running')",
                [c.connection_id for c in connected],
            )
        return int(left or 0)

    async def posted(self) -> int:
        """Transactions the syncer has posted so far."""
        async with httpx.AsyncClient(base_url=self.syncer_url, timeout=10) as syncer:
            return await _posted(syncer)

    async def organisations(self, xero: httpx.AsyncClient, count: int) -> list[Tenant]:
        made = []
        for _ in range(count):
            index = self._tenants
            self._tenants += 1
            answer = await xero.post(
                "/admin/organisations",
                json={
                    "name": f"Bench Trading {index:03d} Ltd",
                    "base_currency": "HKD",
                    "currencies": [c for c in CURRENCIES if c != "HKD"],
                    "multi_currency": True,
                    "timezone": TIMEZONE,
                    "country_code": "HK",
                },
            )
            answer.raise_for_status()
            entity = f"bp{self.run}-ent{index:03d}"
            made.append(
                Tenant(
                    index=index,
                    tenant_id=answer.json()["tenant_id"],
                    entity_id=entity,
                    accounts=tuple((f"{entity}-{c.lower()}", c) for c in CURRENCIES),
                    owner=f"owner{index:03d}@bench.example.com",
                )
            )
        return made

    async def connect(self, db: asyncpg.Connection, tenants: list[Tenant]) -> list[Connected]:
        """Accounts opened, each entity connected through the connector's pages, and the
        syncer's replica holding every connection with its accounts linked."""
        async with EventWriter(self.stack.kafka, self.stack.topics) as writer:
            await writer.write(
                BANK_ACCOUNTS,
                [
                    AccountOpened(
                        entity_id=t.entity_id,
                        account_id=account_id,
                        currency=currency,
                        name=f"{currency} Current",
                        account_number=f"012-{t.index:03d}{n:03d}-{currency}",
                    )
                    for t in tenants
                    for n, (account_id, currency) in enumerate(t.accounts)
                ],
            )
        gate = asyncio.Semaphore(4)

        async def one(tenant: Tenant) -> Connected:
            async with gate:
                return await self._connect_one(tenant)

        with Progress("connecting") as progress:
            connected = await asyncio.gather(*(one(t) for t in tenants))
            progress.update(f"{len(connected)}/{len(tenants)} connected", final=True)
        ids = [c.connection_id for c in connected]
        accounts = sum(len(t.accounts) for t in tenants)

        async def linked() -> bool:
            found = await db.fetchval(
                "SELECT count(*) FROM connections c JOIN connection_accounts a "
                "USING (connection_id) WHERE c.connection_id = ANY($1::uuid[]) "
                "AND c.status = 'active' AND a.status = 'linked'",
                ids,
            )
            return bool(found == accounts)

        await until(linked, within=60, what="the syncer's replica holds every connection")
        return list(connected)

    async def _connect_one(self, tenant: Tenant) -> Connected:
        start_date = (datetime.now(ZONE) - timedelta(days=HISTORY_DAYS)).date()
        try:
            async with BankUser(self.connector_url, self.sandbox_url, tenant.entity_id) as user:
                await until(
                    partial(user.lists_accounts, len(tenant.accounts)),
                    within=60,
                    what=f"{tenant.entity_id}'s accounts in the connector",
                )
                connection_id, notice = await user.connect(
                    tenant.tenant_id,
                    [a for a, _ in tenant.accounts],
                    start_date=start_date,
                    email=tenant.owner,
                )
        except UserFlowFailed as error:
            raise BenchFailed(str(error)) from error
        if notice != "connected":
            raise BenchFailed(f"{tenant.entity_id} was {notice}, not connected afresh")
        return Connected(tenant, connection_id)

    async def _ingest(self, db: asyncpg.Connection, tenants: list[Tenant], per_tenant: int) -> int:
        """Publish the backlog and wait until the syncer's database holds all of it."""
        total = per_tenant * len(tenants)
        entities = [t.entity_id for t in tenants]
        end = datetime.now(UTC) - timedelta(minutes=10)
        start = datetime.combine(
            end.astimezone(ZONE).date() - timedelta(days=HISTORY_DAYS - 1),
            datetime.min.time(),
            tzinfo=ZONE,
        )
        topic = self.stack.topics.name(BANK_TRANSACTIONS)
        published = 0

        async def stored() -> int:
            found = await db.fetchval(
                "SELECT count(*) FROM bank_transactions WHERE entity_id = ANY($1::text[])",
                entities,
            )
            return int(found or 0)

        with Progress("ingesting") as progress:
            async with EventWriter(self.stack.kafka, self.stack.topics) as writer:
                for tenant in tenants:
                    records = list(backlog(tenant, per_tenant, start=start, end=end, run=self.run))
                    for chunk in range(0, len(records), 20_000):
                        written = await writer.write_raw(topic, records[chunk : chunk + 20_000])
                        for partition, after in written.end_offsets().items():
                            previous = self.backlog_ends.get(partition, 0)
                            self.backlog_ends[partition] = max(previous, after)
                        published += len(records[chunk : chunk + 20_000])
                        progress.update(
                            f"published {published:,}/{total:,}, "
                            f"stored {await stored():,}/{total:,}"
                        )
            deadline = time.monotonic() + 120 + total / 2000
            while (count := await stored()) < total:
                if time.monotonic() > deadline:
                    raise BenchFailed(f"the syncer stored {count:,} of {total:,} transactions")
                self.check_alive()
                progress.update(f"{count:,}/{total:,} in the syncer's database")
                await asyncio.sleep(0.5)
            progress.update(f"{total:,}/{total:,} in the syncer's database", final=True)
        return total

    async def _sync(self, connected: list[Connected]) -> float:
        """One SyncDue per connection, all at once; the moment they were published."""
        now = datetime.now(UTC)
        events = [
            SyncDue(
                connection_id=c.connection_id,
                tenant_id=uuid.UUID(c.tenant.tenant_id),
                reason="manual",
                due_at=now,
            )
            for c in connected
        ]
        async with EventWriter(self.stack.kafka, self.stack.topics) as writer:
            due_at = time.time()
            await writer.write(XERO_SYNC_DUE, events)
        return due_at

    async def _wait_posted(
        self, db: asyncpg.Connection, log: _RequestLog, connected: list[Connected], total: int
    ) -> None:
        """Until every run finished (reading the sandbox's log meanwhile); a run that failed
        or left transactions behind fails the benchmark."""
        ids = [c.connection_id for c in connected]
        deadline = time.monotonic() + 600
        async with httpx.AsyncClient(base_url=self.syncer_url, timeout=10) as syncer:
            with Progress("posting") as progress:
                while True:
                    self.check_alive()
                    await log.read()
                    rows = await db.fetch(
                        "SELECT state, outcome, message, result_event FROM sync_runs "
                        "WHERE connection_id = ANY($1::uuid[])",
                        ids,
                    )
                    done = [r for r in rows if r["state"] not in ("queued", "running")]
                    posted = await _posted(syncer)
                    progress.update(
                        f"posted {posted:,}/{total:,}; {len(done)}/{len(ids)} runs finished"
                    )
                    if len(done) == len(ids):
                        progress.update(f"posted {posted:,}/{total:,}", final=True)
                        break
                    if time.monotonic() > deadline:
                        raise BenchFailed(f"only {posted:,} of {total:,} posted within 600s")
                    await asyncio.sleep(1.0)
        for row in done:
            result = json.loads(row["result_event"]) if row["result_event"] else {}
            if row["state"] != "completed" or result.get("remaining", 0) or result.get("failed"):
                raise BenchFailed(
                    f"a sync run ended {row['state']} ({row['outcome']}): {row['message']}; "
                    f"posted {result.get('posted')}, failed {result.get('failed')}, "
                    f"remaining {result.get('remaining')}"
                )

    async def _check_holdings(
        self, xero: httpx.AsyncClient, tenants: list[Tenant], per_tenant: int
    ) -> int:
        """Every transaction of the backlog is in its organisation, once; how many."""
        found = 0
        for tenant in tenants:
            answer = await xero.get(f"/admin/organisations/{tenant.tenant_id}")
            answer.raise_for_status()
            holdings = answer.json()
            if self.sink == "bankfeeds":
                ids = [
                    line["transaction_id"] for s in holdings["statements"] for line in s["lines"]
                ]
            else:
                ids = [t["Reference"] for t in holdings["bank_transactions"]]
            mine = [i for i in ids if i and i.startswith(f"{self.run}-{tenant.index:03d}-")]
            if len(mine) != per_tenant or len(set(mine)) != per_tenant:
                raise BenchFailed(
                    f"{tenant.entity_id}'s organisation holds {len(set(mine)):,} distinct of "
                    f"{per_tenant:,} transactions ({len(mine):,} in all)"
                )
            found += len(mine)
        return found

    def check_alive(self) -> None:
        for name, process in self.stack.started.items():
            if not process.running():
                raise process.failure(f"({name}) exited with code {process.poll()}")


async def syncer_counter(syncer: httpx.AsyncClient, name: str, label: str) -> dict[str, int]:
    """A counter of the syncer's, summed by one of its labels."""
    try:
        text = (await syncer.get("/metrics")).text
    except httpx.HTTPError:
        return {}
    found: dict[str, int] = {}
    pattern = re.compile(rf'^{name}_total{{.*\b{label}="([^"]*)".*}} (\S+)$')
    for line in text.splitlines():
        if match := pattern.match(line):
            value = found.get(match.group(1), 0) + int(float(match.group(2)))
            found[match.group(1)] = value
    return found


async def _posted(syncer: httpx.AsyncClient) -> int:
    """Transactions the syncer has posted, from its metrics."""
    return (await syncer_counter(syncer, "xerosync_transactions_posted", "result")).get("posted", 0)


class Db:
    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        self._connection = await asyncpg.connect(**asyncpg_params(make_url(self._url)))
        return self._connection

    async def __aexit__(self, *_exc: object) -> None:
        if self._connection is not None:
            await self._connection.close()


async def drop_databases(urls: list[str]) -> None:
    for url in urls:
        await drop_database(url)


# ----------------------------------------------------------------------------- the command


def bench_stack(label: str, run: str) -> Stack:
    """The stack of one benchmark run: its own work directory, free ports for the broker
    and the services, and topics of its own (`bench<label><run>.`)."""
    work_dir = Path(tempfile.mkdtemp(prefix="xerosync-bench-"))
    ports = {name: free_port() for name in ("connector", "scheduler", "syncer")}
    return Stack(
        StackConfig.from_environment(
            work_dir,
            broker_port=free_port(),
            http_ports=ports,
            topic_prefix=f"bench{label}{run}.",
        )
    )


def own_databases(stack: Stack, services: Sequence[str], label: str, run: str) -> list[str]:
    """A fresh database for each of `services` on the server holding its usual one (after
    `start_infrastructure`); their URLs, to drop afterwards."""
    urls = []
    for service in services:
        url = fresh_database_url(stack, service, f"xerosync_bench{label}_{run}_{service}")
        stack.config.database_urls[service] = url
        urls.append(url)
    return urls


def run_post_bench(
    *,
    sink: Sink,
    single_transactions: int | None,
    tenants: int,
    per_tenant_transactions: int | None,
    single_scale: float | None,
    many_scale: float | None,
    json_output: bool,
) -> int:
    defaults = DEFAULTS[sink]
    single = single_transactions or defaults.single_transactions
    per_tenant = per_tenant_transactions or defaults.per_tenant_transactions
    scales = (single_scale or defaults.single_scale, many_scale or defaults.many_scale)
    run = uuid.uuid4().hex[:8]
    stack = bench_stack("post", run)
    work_dir = stack.config.work_dir
    results: dict[str, PhaseResult] = {}
    databases: list[str] = []
    try:
        with console.status("starting the broker and PostgreSQL…"):
            stack.start_infrastructure()
        databases = own_databases(stack, ["connector", "syncer"], "post", run)
        with console.status("creating databases and topics, starting the sandbox and connector…"):
            asyncio.run(stack.prepare(services=["connector", "syncer"]))
            bench = PostBench(stack, sink=sink, run=run)
            bench.start()
        console.print(
            f"posting benchmark, {sink}: broker {stack.kafka.bootstrap_servers}"
            + (" (embedded)" if stack.broker else "")
            + (", PostgreSQL embedded (durable)" if stack.postgres else ""),
            highlight=False,
        )
        phases = (
            ("single_tenant", 1, single, scales[0]),
            ("many_tenants", tenants, per_tenant, scales[1]),
        )
        for name, count, transactions, scale in phases:
            measured = asyncio.run(
                bench.phase(name, tenants=count, per_tenant=transactions, scale=scale)
            )
            results[name] = measured
            console.print(f"  {_summary(measured)}", highlight=False)
    except (BenchFailed, ProcessFailed) as error:
        console.print(f"[red]posting benchmark failed:[/red] {error}")
        console.print(f"logs kept in {work_dir}")
        return 1
    finally:
        stack.stop()
        if stack.postgres is None:
            asyncio.run(drop_databases(databases))
    shutil.rmtree(work_dir, ignore_errors=True)
    _report(results["single_tenant"], results["many_tenants"], json_output=json_output)
    return 0


def _summary(m: PhaseResult) -> str:
    ratio = "n/a" if m.calls_ratio is None else f"{m.calls_ratio:.1%}"
    windows = " ".join(f"{w.calls}/{w.allowed}" for w in m.windows) or "none whole"
    return (
        f"{m.name}: calls per window {ratio} of those allowed ({windows}), "
        f"{m.txns_per_call:,.1f} txns/call, {m.rate_limited} 429s, {m.txns_per_s:,.0f} txns/s"
    )


def _report(single: PhaseResult, many: PhaseResult, *, json_output: bool) -> None:
    table = Table(
        title=f"posting a backlog to the Xero sandbox ({single.sink}), rate-limit windows scaled",
        title_justify="left",
    )
    table.add_column("phase")
    for column in (
        "orgs",
        "transactions",
        "window",
        "allowed / window",
        "calls in each window",
        "calls ratio",
        "busiest window",
        "txns / call",
        "429s",
        "txns/s",
    ):
        table.add_column(column, justify="right")
    for m in (single, many):
        busy = m.busy_share
        table.add_row(
            m.name,
            f"{m.tenants}",
            f"{m.transactions:,}",
            f"{m.window_s:g}s",
            f"{m.allowed_per_window} ({m.binding_limit})",
            " ".join(str(w.calls) for w in m.windows) or "—",
            "n/a" if m.calls_ratio is None else f"{m.calls_ratio:.1%}",
            "n/a" if busy is None else f"{busy:.0%} of it",
            f"{m.txns_per_call:,.1f}",
            f"{m.rate_limited}",
            f"{m.txns_per_s:,.0f}",
        )
    # A pipe or file gets the whole table, not an 80-column fold of it.
    out = Console() if sys.stdout.isatty() else Console(width=170)
    out.print(table)
    batch = FULL_BATCH[single.sink]
    for m in (single, many):
        limited = ""
        if m.rate_limited:
            at = ", ".join(f"{t:.2f}s" for t in m.rate_limited_at[:10])
            limited = f"; 429s ({m.rate_limited_by or 'limit unknown'}) at {at} after the first"
        out.print(
            f"{m.name}: {m.batches} batches, {m.full_batches} full ({batch}); first to last "
            f"posting call {m.posting_span_s:.1f}s ({m.posting_span_s / m.window_s:.2f} windows), "
            f"SyncDue to last {m.sync_to_done_s:.1f}s{limited}; goal (≥ "
            f"{GOAL_CALLS_RATIO:.0%} of the calls allowed, full batches, no 429): "
            + ("met" if m.goal_met else "not met"),
            highlight=False,
        )
    if json_output:
        figures = {
            "single_tenant": single.figures(),
            "many_tenants": many.figures(),
            "sink": single.sink,
            "goal_calls_ratio": GOAL_CALLS_RATIO,
        }
        sys.stdout.write(json.dumps(figures) + "\n")
