"""Posting when things go wrong, with the real syncer and connector apps, the real broker and
PostgreSQL, against the in-process Xero sandbox, where the test sees each of the syncer's
calls as the syncer made it: a low limit learnt from Xero's headers and kept without 429s,
an outcome still unknown when the retries run out (the run fails; the next one checks Xero
past the key's window), and a run skipped for a connection the syncer does not know.

The scenarios users meet (refused elements, 5xx and timeouts, 429 storms, lost answers, two
entities in one organisation, the app and an account removed in Xero, a full replay) run
against the processes in tests/e2e/test_syncer_faults.py."""

import dataclasses
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.contracts.bank import TransactionBooked
from shared.contracts.topics import XERO_SYNC_DUE
from shared.contracts.xero import SyncCompleted, SyncDue, SyncFailed
from tests.conftest import Env
from tests.helpers import eventually, ledger, syncer_run
from tests.integration.syncer_harness import (
    Connected,
    SyncerHarness,
    XeroCall,
    running_syncer,
    statement_lines,
)
from xero_sandbox.faults import FaultPlanIn, FaultRule
from xero_sandbox.state import Organisation, RequestRecord

TODAY = datetime.now(UTC).date()
START = (TODAY - timedelta(days=20)).isoformat()
FROM = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
SINKS = ("bankfeeds", "accounting")
POSTING_PATHS = {
    "bankfeeds": "/bankfeeds.xro/1.0/Statements",
    "accounting": "/api.xro/2.0/BankTransactions",
}
SMALL_BATCHES = {"statement_max_lines": 10, "accounting_batch_size": 10}
XERO_MINUTE_IN_A_SECOND = 60.0


# ----------------------------------------------------------------------------- helpers


@pytest.fixture
def env(env: Env) -> Env:
    """The test's env, with one-second consumer sessions on the embedded broker: Tansu makes
    a joining member wait out a session, and these tests join often (the connector and the
    syncer at each start, the syncer again at a restart, ops rewinding its group). A real
    Kafka keeps its own minimum."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return env
    kafka = env.kafka.model_copy(update={"session_timeout_ms": 1000})
    infrastructure = dataclasses.replace(env.infrastructure, kafka=kafka)
    return dataclasses.replace(env, infrastructure=infrastructure)


async def connected_with(
    harness: SyncerHarness,
    events: list[TransactionBooked],
    *,
    accounts: tuple[tuple[str, str], ...] = (("acc-hkd", "HKD"),),
    entity: str = "ent-1",
    **organisation: Any,
) -> Connected:
    """The events ingested, then the entity connected to a new organisation."""
    spec = {"name": "Harbour Trading", "base_currency": "HKD"} | organisation
    created = harness.connector.organisation(**spec)
    await harness.ingest(events)
    return await harness.connect(entity, created, accounts, start_date=START)


def landed(organisation: Organisation) -> list[str]:
    """Our transaction ids as Xero holds them (statement lines, bank transactions), sorted,
    each as often as Xero holds it."""
    lines = [line.transaction_id or "" for _, line in statement_lines(organisation)]
    held = [
        str(t.document.get("Reference"))
        for t in organisation.bank_transactions.values()
        if t.status != "DELETED"
    ]
    return sorted(lines + held)


def ids(events: list[TransactionBooked]) -> list[str]:
    return sorted(e.transaction_id for e in events)


def postings_sent(harness: SyncerHarness) -> list[RequestRecord]:
    """The posting calls (statements, bank transactions) as the sandbox saw them."""
    return [
        r
        for r in harness.sandbox.requests
        if r.method in {"POST", "PUT"} and r.path.endswith(("/statements", "/banktransactions"))
    ]


def syncer_posts(harness: SyncerHarness) -> list[XeroCall]:
    """The syncer's posting calls, as it saw them."""
    return [c for c in harness.xero_calls if c.method in {"POST", "PUT"}]


def faults(*rules: FaultRule) -> FaultPlanIn:
    """The sandbox's fault plan, drawn from a fixed seed so a run can be repeated."""
    return FaultPlanIn(rules=list(rules), seed=7)


async def sync_due(harness: SyncerHarness, connected: Connected) -> uuid.UUID:
    """A SyncDue for the connection, without waiting for a result; its event id."""
    due = SyncDue(
        connection_id=connected.connection_id,
        tenant_id=connected.tenant_id,
        reason="manual",
        due_at=datetime.now(UTC),
    )
    await harness.publish(XERO_SYNC_DUE, [due])
    return due.event_id


# ----------------------------------------------------------------------------- pacing


async def test_a_low_limit_learnt_from_xeros_headers_is_kept_without_429s(env: Env) -> None:
    async with running_syncer(
        env, rate_limit_scale=XERO_MINUTE_IN_A_SECOND, statement_max_lines=5
    ) as harness:
        events = ledger("acc-hkd", 40, entity="ent-1", start=FROM)
        connected = await connected_with(harness, events)
        sandbox = harness.sandbox
        sandbox.clock.rate_limit_scale = XERO_MINUTE_IN_A_SECOND
        sandbox.limits.per_minute = 5  # the syncer believes Xero's 60 until Xero says less
        client_id = harness.connector.settings.xero_client_id

        async def minute_left() -> int:
            return sandbox.rate_limiter.budget(str(connected.tenant_id), client_id).minute_remaining

        await eventually(
            minute_left,
            until=lambda left: left == 5,
            what="the connector's calls out of the window",
        )

        result = await harness.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert result.posted == 40
        assert landed(connected.organisation) == ids(events)
        calls = syncer_posts(harness)
        limited = [c for c in calls if c.status == 429]
        assert [c.status for c in calls if c.status != 429] == [202] * 8
        assert calls[5].started - calls[0].started >= 0.95, (
            "the sixth statement waited for the window instead of being refused"
        )
        assert len(limited) <= 1, "a 429 at most, when jitter beats the 2% margin"
        assert await harness.syncer.metric(
            "xerosync_xero_rate_limited_total", limit="minute"
        ) == len(limited)


# ----------------------------------------------------------------------------- past the window


@pytest.mark.parametrize("sink", SINKS)
async def test_an_unknown_outcome_past_the_keys_window_is_checked_in_xero_before_posting_again(
    env: Env, sink: str
) -> None:
    # One try per request, so the lost answer ends the run with the batch's outcome unknown;
    # and the key trusted only briefly, so the next run checks Xero instead of resending.
    async with running_syncer(
        env,
        sink=sink,
        retry_attempts=1,
        idempotency_trust=timedelta(milliseconds=1),
        **SMALL_BATCHES,
    ) as harness:
        events = ledger("acc-hkd", 30, entity="ent-1", start=FROM)
        connected = await connected_with(harness, events)
        harness.sandbox.faults.replace(
            faults(FaultRule(kind="drop_after_write", times=1, path=POSTING_PATHS[sink]))
        )

        failed = await harness.sync(connected)

        assert isinstance(failed, SyncFailed), failed
        assert (failed.reason, failed.user_action_required) == ("xero_unavailable", False)
        first = ids(events[:10])
        assert landed(connected.organisation) == first, "Xero did the work; we cannot know"
        sending = await harness.sql("SELECT transaction_id FROM postings WHERE state = 'sending'")
        assert sorted(r.transaction_id for r in sending) == first
        harness.sandbox.idempotency.window_seconds = 0.001  # Xero has forgotten the key

        result = await harness.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert (result.posted, result.failed, result.remaining) == (30, 0, 0)
        assert landed(connected.organisation) == ids(events), "the first batch once"
        [dropped] = [r for r in postings_sent(harness) if r.fault == "drop_after_write"]
        requests = list(harness.sandbox.requests)
        later = requests[requests.index(dropped) + 1 :]
        if sink == "accounting":
            lookups = [
                r for r in later if r.method == "GET" and r.path.endswith("/banktransactions")
            ]
            assert len(lookups) == 1, "the batch's References looked up once"
            assert dropped.idempotency_key not in {r.idempotency_key for r in later}
        else:
            resent = [r for r in later if r.idempotency_key == dropped.idempotency_key]
            assert [(r.status, r.replayed) for r in resent] == [(409, False)], (
                "sent again, and refused as a duplicate statement by Xero"
            )
        metric = harness.syncer.metric
        assert await metric("xerosync_posting_recovered_total", how="checked") == 1
        assert await metric("xerosync_posting_recovered_total", how="resent") == 0
        states = await harness.sql("SELECT state, count(*) FROM postings GROUP BY state")
        assert [tuple(r) for r in states] == [("posted", 30)]


# ----------------------------------------------------------------------------- skipped runs


async def test_a_run_skipped_for_an_unknown_connection_holds_up_no_later_result(
    env: Env,
) -> None:
    async with running_syncer(env) as harness:
        events = ledger("acc-hkd", 5, entity="ent-1", start=FROM)
        connected = await connected_with(harness, events)
        # A SyncDue may come before its connection's event (another topic), or name one
        # the syncer never heard of: the run is skipped, and says nothing.
        stray = Connected(uuid.uuid4(), uuid.uuid4(), connected.organisation)
        due = await sync_due(harness, stray)
        run = await syncer_run(harness.sql, due)
        assert (run.state, run.outcome) == ("skipped", "not_active")

        result = await harness.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert result.posted == 5
        assert len(await harness.results()) == 1, "the skipped run published nothing"
