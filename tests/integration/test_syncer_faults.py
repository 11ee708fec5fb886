"""Posting when things go wrong, with the real syncer and connector apps, the real broker and
PostgreSQL, against the Xero sandbox's faults and its user: refused elements, 5xx and
timeouts, 429s, answers lost after the write, unknown outcomes past the key's window, two
entities in one organisation, the app removed and an account archived in Xero, a replay of
the transactions topic, and a run skipped for a connection the syncer does not know."""

import asyncio
import dataclasses
import itertools
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.syncer.config import CONSUMER_GROUP
from shared.contracts.bank import TransactionBooked
from shared.contracts.topics import BANK_TRANSACTIONS, XERO_SYNC_DUE
from shared.contracts.xero import SyncCompleted, SyncDue, SyncFailed
from tests.conftest import Env
from tests.helpers import eventually, ledger, rewind_group
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
OPERATIONS = {
    "bankfeeds": {"api": "bankfeeds", "operation": "create_statements"},
    "accounting": {"api": "accounting", "operation": "create_bank_transactions"},
}
ANSWERED = {"bankfeeds": 202, "accounting": 200}
FAST_RETRIES = {"retry_base_delay": 0.01, "retry_max_delay": 0.05}
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


# ----------------------------------------------------------------------------- 1. refusals


async def test_elements_xero_refuses_are_failed_with_its_message_and_the_rest_of_the_batch_stands(
    env: Env,
) -> None:
    async with running_syncer(env, sink="accounting") as harness:
        events = ledger("acc-hkd", 40, entity="ent-1", start=FROM)
        connected = await connected_with(harness, events)
        organisation = connected.organisation
        # The Xero user archives Other Revenue (260), the account money in is coded to: Xero
        # now refuses every RECEIVE, element by element, and takes every SPEND.
        revenue = next(a for a in organisation.accounts.values() if a.code == "260")
        archived = await harness.connector.xero.post(
            f"/admin/organisations/{organisation.tenant_id}/accounts/{revenue.account_id}/archive"
        )
        assert archived.status_code == 200, archived.text
        credits = {e.transaction_id for e in events if e.direction == "credit"}
        debits = {e.transaction_id for e in events} - credits

        result = await harness.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert (result.posted, result.failed, result.remaining) == (len(debits), len(credits), 0)
        [account] = result.accounts
        assert (account.posted, account.failed, account.problem) == (
            len(debits),
            len(credits),
            None,
        ), "a refused line's account is not the bank account's problem"
        [call] = postings_sent(harness)
        assert call.status == 200, "one call of 40 elements, each judged on its own"
        assert landed(organisation) == sorted(debits)
        rows = await harness.sql("SELECT transaction_id, state, xero_id, message FROM postings")
        by_state = {
            state: {r.transaction_id: r for r in rows if r.state == state}
            for state in ("posted", "failed")
        }
        assert set(by_state["failed"]) == credits
        assert set(by_state["posted"]) == debits
        for row in by_state["failed"].values():
            assert row.message.startswith("Account code '260' has been archived"), row.message
            assert row.xero_id is None
        held = {
            t.document["Reference"]: t.bank_transaction_id
            for t in organisation.bank_transactions.values()
        }
        assert {i: r.xero_id for i, r in by_state["posted"].items()} == held
        assert await harness.syncer.metric(
            "xerosync_transactions_posted_total", sink="accounting", result="failed"
        ) == len(credits)

        again = await harness.sync(connected)

        assert isinstance(again, SyncCompleted), again
        assert (again.posted, again.failed, again.remaining) == (0, 0, 0)
        assert len(postings_sent(harness)) == 1, "refused transactions are not sent again"


# ----------------------------------------------------------------------------- 2. 5xx, timeouts


@pytest.mark.parametrize("sink", SINKS)
async def test_5xx_and_timeouts_are_retried_with_the_same_key_and_everything_lands_once(
    env: Env, sink: str
) -> None:
    async with running_syncer(
        env,
        sink=sink,
        xero_timeout_s=1.0,
        retry_attempts=10,
        **FAST_RETRIES,
        **SMALL_BATCHES,
    ) as harness:
        events = ledger("acc-hkd", 60, entity="ent-1", start=FROM)
        connected = await connected_with(harness, events)
        path = POSTING_PATHS[sink]
        harness.sandbox.faults.replace(
            faults(
                FaultRule(kind="timeout", times=1, timeout_s=10, path=path),
                FaultRule(kind="error", status=503, rate=0.4, path=path),
            )
        )

        result = await harness.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert (result.posted, result.failed, result.remaining) == (60, 0, 0)
        assert landed(connected.organisation) == ids(events), "no duplicate, no gap"
        sent = postings_sent(harness)
        refused = [r for r in sent if r.fault is not None]
        answered = [r for r in sent if r.fault is None]
        assert [r.fault for r in refused].count("timeout") == 1
        errors = [r.fault for r in refused].count("error")
        assert errors >= 2, "the seed draws several 503s"
        assert [r.status for r in answered] == [ANSWERED[sink]] * 6, "each batch answered once"
        assert len({r.idempotency_key for r in answered}) == 6
        unanswered = [c for c in syncer_posts(harness) if c.status in {None, 503}]
        assert len(unanswered) == len(refused)
        assert {c.idempotency_key for c in unanswered} <= {r.idempotency_key for r in answered}, (
            "a retry carries the key of the request it repeats"
        )
        metric = harness.syncer.metric
        assert await metric("xerosync_xero_retries_total", reason="unavailable") == len(refused)
        labels = OPERATIONS[sink]
        assert await metric("xerosync_xero_requests_total", **labels, status="503") == errors
        assert await metric("xerosync_xero_requests_total", **labels, status="error") == 1


# ----------------------------------------------------------------------------- 3. 429s


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


async def test_a_429_storm_from_another_caller_is_waited_out_as_retry_after_says(
    env: Env,
) -> None:
    async with running_syncer(
        env,
        sink="accounting",
        rate_limit_scale=XERO_MINUTE_IN_A_SECOND,
        accounting_batch_size=6,
    ) as harness:
        events = ledger("acc-hkd", 30, entity="ent-1", start=FROM)
        connected = await connected_with(harness, events)
        harness.sandbox.clock.rate_limit_scale = XERO_MINUTE_IN_A_SECOND
        harness.sandbox.limits.per_minute = 5

        def refused() -> list[XeroCall]:
            return [c for c in syncer_posts(harness) if c.status == 429]

        # Another caller of the same app (the connector, a support script) spends the
        # organisation's minute as fast as Xero lets it, until the syncer was refused twice.
        storm = asyncio.create_task(
            spend_the_minute(harness, connected, until=lambda: len(refused()) >= 2)
        )
        result = await harness.sync(connected)
        await asyncio.wait_for(storm, 12)  # its own deadline is 10 s

        assert isinstance(result, SyncCompleted), result
        assert result.posted == 30
        assert landed(connected.organisation) == ids(events), "no duplicate, no gap"
        calls = syncer_posts(harness)
        limited = refused()
        assert len(limited) >= 2
        assert [c.status for c in calls if c.status != 429] == [200] * 5
        for call, following in itertools.pairwise(calls):
            if call.status == 429:
                assert call.retry_after is not None
                assert following.started >= call.ended + call.retry_after - 0.01, (
                    "the next call waited Retry-After"
                )
        metric = harness.syncer.metric
        assert await metric("xerosync_xero_rate_limited_total", limit="minute") == len(limited)
        assert await metric("xerosync_xero_retries_total", reason="rate_limited") == len(limited)


async def spend_the_minute(
    harness: SyncerHarness, connected: Connected, *, until: Callable[[], bool]
) -> None:
    """Call the organisation with the connector's token as fast as Xero answers, until
    `until()` (at most 10 s)."""
    answer = await harness.connector.token(str(connected.connection_id))
    assert answer.status_code == 200, answer.text
    headers = {
        "Authorization": f"Bearer {answer.json()['access_token']}",
        "Xero-Tenant-Id": str(connected.tenant_id),
        "Accept": "application/json",
    }
    deadline = time.monotonic() + 10
    while not until() and time.monotonic() < deadline:
        spent = await harness.connector.xero.get("/api.xro/2.0/Organisation", headers=headers)
        if spent.status_code == 429:
            await asyncio.sleep(0.01)
    assert until(), "the storm never reached the syncer"


# ----------------------------------------------------------------------------- 4. lost answers


@pytest.mark.parametrize("sink", SINKS)
async def test_an_answer_lost_after_the_write_is_resent_with_its_key_and_replayed_by_xero(
    env: Env, sink: str
) -> None:
    async with running_syncer(env, sink=sink, **FAST_RETRIES, **SMALL_BATCHES) as harness:
        events = ledger("acc-hkd", 30, entity="ent-1", start=FROM)
        connected = await connected_with(harness, events)
        harness.sandbox.faults.replace(
            faults(FaultRule(kind="drop_after_write", times=1, path=POSTING_PATHS[sink]))
        )

        result = await harness.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert (result.posted, result.failed, result.remaining) == (30, 0, 0)
        dropped, again, *rest = postings_sent(harness)
        assert (dropped.fault, dropped.replayed) == ("drop_after_write", False)
        assert again.idempotency_key == dropped.idempotency_key
        assert (again.fault, again.replayed, again.status) == (None, True, ANSWERED[sink])
        assert [(r.fault, r.replayed) for r in rest] == [(None, False)] * 2
        assert [c.status for c in syncer_posts(harness)][:2] == [None, ANSWERED[sink]]
        assert landed(connected.organisation) == ids(events), "the first batch once"
        assert await harness.syncer.metric("xerosync_xero_retries_total", reason="unavailable") == 1


# ----------------------------------------------------------------------------- 5. past the window


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


# ----------------------------------------------------------------------------- 6. two entities


async def test_two_entities_in_one_organisation_each_reach_only_their_own_feeds(
    env: Env,
) -> None:
    async with running_syncer(env) as harness:
        organisation = harness.connector.organisation(
            name="Pearl River Holdings", base_currency="HKD", currencies=["USD"]
        )
        mine = ledger("acc-a-hkd", 20, entity="ent-a", start=FROM)
        theirs = ledger("acc-b-hkd", 25, entity="ent-b", start=FROM) + ledger(
            "acc-b-usd", 5, entity="ent-b", currency="USD", start=FROM, opening=Decimal(900)
        )
        await harness.ingest(mine + theirs)
        a = await harness.connect("ent-a", organisation, [("acc-a-hkd", "HKD")], start_date=START)
        b = await harness.connect(
            "ent-b", organisation, [("acc-b-hkd", "HKD"), ("acc-b-usd", "USD")], start_date=START
        )
        assert a.tenant_id == b.tenant_id
        assert a.connection_id != b.connection_id

        first = await harness.sync(a)

        assert isinstance(first, SyncCompleted), first
        assert (first.posted, [x.account_id for x in first.accounts]) == (20, ["acc-a-hkd"])
        assert landed(organisation) == ids(mine), "a SyncDue for ent-a posts none of ent-b's"

        second = await harness.sync(b)

        assert isinstance(second, SyncCompleted), second
        assert second.posted == 30
        assert landed(organisation) == ids(mine + theirs)
        links = await harness.sql(
            "SELECT account_id, connection_id, feed_connection_id FROM connection_accounts"
        )
        account_of = {
            str(link.feed_connection_id): (link.account_id, link.connection_id) for link in links
        }
        assert len(account_of) == 3, "each account its own feed"
        where = {line.transaction_id: feed for feed, line in statement_lines(organisation)}
        connection_of = {"ent-a": a.connection_id, "ent-b": b.connection_id}
        for event in mine + theirs:
            assert account_of[where[event.transaction_id]] == (
                event.account_id,
                connection_of[event.entity_id],
            ), event.transaction_id


# ----------------------------------------------------------------------------- 7. app removed


async def test_the_app_removed_in_xero_fails_the_sync_for_the_user_and_nothing_more_is_posted(
    env: Env,
) -> None:
    async with running_syncer(env) as harness:
        events = ledger("acc-hkd", 20, entity="ent-1", start=FROM)
        connected = await connected_with(harness, events[:10])
        posted = await harness.sync(connected)
        assert isinstance(posted, SyncCompleted), posted
        assert posted.posted == 10
        client_id = harness.connector.settings.xero_client_id
        removed = await harness.connector.xero.delete(
            f"/admin/organisations/{connected.tenant_id}/apps/{client_id}"
        )
        assert removed.status_code == 200, removed.text
        await harness.ingest(events[10:])

        result = await harness.sync(connected)

        assert isinstance(result, SyncFailed), result
        assert result.reason in {"connection_removed", "token_invalid"}
        assert result.user_action_required
        async with harness.connector.user("ent-1") as user:
            status = await eventually(
                user.status,
                until=lambda s: s["connection"]["status"] == "needs_user",
                what="the connector marks the connection as needing the user",
            )
        assert status["connection"]["last_sync_message"] == result.message
        await eventually(
            lambda: harness.sql(
                "SELECT status FROM connections WHERE connection_id = :id",
                id=connected.connection_id,
            ),
            until=lambda rows: rows[0].status == "needs_user",
            what="the syncer's replica learns it",
        )
        calls = len(harness.xero_calls)

        due = await sync_due(harness, connected)

        [run] = await eventually(
            lambda: harness.sql(
                "SELECT state, outcome FROM sync_runs WHERE due_event_id = :id AND "
                "finished_at IS NOT NULL",
                id=due,
            ),
            what="the next run finished",
        )
        assert (run.state, run.outcome) == ("skipped", "not_active")
        assert len(harness.xero_calls) == calls, "not a call more to Xero"
        assert landed(connected.organisation) == ids(events[:10])
        settled = await harness.sql(
            "SELECT count(*) FROM postings WHERE state IN ('posted', 'failed') "
            "AND transaction_id = ANY(:ids)",
            ids=ids(events[10:]),
        )
        assert settled[0][0] == 0, "neither posted nor failed: kept for after a reconnect"


# ----------------------------------------------------------------------------- 8. account archived


@pytest.mark.parametrize("sink", SINKS)
async def test_a_bank_account_archived_in_xero_stops_that_account_only_and_keeps_it_pending(
    env: Env, sink: str
) -> None:
    async with running_syncer(env, sink=sink) as harness:
        hkd = ledger("acc-hkd", 20, entity="ent-1", start=FROM)
        usd = ledger(
            "acc-usd", 15, entity="ent-1", currency="USD", start=FROM, opening=Decimal(900)
        )
        connected = await connected_with(
            harness,
            hkd + usd,
            accounts=(("acc-hkd", "HKD"), ("acc-usd", "USD")),
            currencies=["USD"],
        )
        organisation = connected.organisation
        [bank] = [
            a
            for a in organisation.accounts.values()
            if a.type == "BANK" and a.currency_code == "USD"
        ]
        archived = await harness.connector.xero.post(
            f"/admin/organisations/{organisation.tenant_id}/accounts/{bank.account_id}/archive"
        )
        assert archived.status_code == 200, archived.text

        result = await harness.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert (result.posted, result.failed, result.remaining) == (20, 0, 15)
        by_account = {a.account_id: a for a in result.accounts}
        assert by_account["acc-hkd"].problem is None
        assert by_account["acc-hkd"].posted == 20
        problem = by_account["acc-usd"].problem
        assert problem is not None
        assert "archived" in problem, problem
        assert (by_account["acc-usd"].posted, by_account["acc-usd"].failed) == (0, 0)
        assert by_account["acc-usd"].remaining == 15, "pending, not failed"
        assert landed(organisation) == ids(hkd)
        usd_rows = await harness.sql("SELECT state FROM postings WHERE account_id = 'acc-usd'")
        assert usd_rows == [], "nothing recorded against them: they wait for the user"
        # The connector verifies the account the result names and marks it as needing the
        # user; the syncer's replica learns it.
        await eventually(
            lambda: harness.sql(
                "SELECT status FROM connection_accounts WHERE account_id = 'acc-usd'"
            ),
            until=lambda rows: rows[0].status == "needs_user",
            what="the connector checked the account and the syncer's replica learnt it",
        )
        async with harness.connector.user("ent-1") as user:
            status = await user.status()
        links = {a["account_id"]: a for a in status["connection"]["accounts"]}
        assert links["acc-usd"]["status"] == "needs_user"
        assert links["acc-hkd"]["status"] == "linked"


# ----------------------------------------------------------------------------- 9. replay


async def test_a_full_replay_of_the_transactions_topic_posts_nothing_again(env: Env) -> None:
    async with running_syncer(env) as harness:
        events = ledger("acc-hkd", 40, entity="ent-1", start=FROM)
        connected = await connected_with(harness, events)
        first = await harness.sync(connected)
        assert isinstance(first, SyncCompleted), first
        assert first.posted == 40
        before = len(postings_sent(harness))

        async with harness.syncer_stopped():
            await rewind_group(
                env.kafka, env.topics.group(CONSUMER_GROUP), env.topics.name(BANK_TRANSACTIONS)
            )

        metric = harness.syncer.metric
        await eventually(
            lambda: metric("xerosync_transactions_ingested_total", result="duplicate"),
            until=lambda count: count == 40,
            what="every transaction consumed again",
        )
        assert await metric("xerosync_transactions_ingested_total", result="new") == 0
        again = await harness.sync(connected)

        assert isinstance(again, SyncCompleted), again
        assert (again.posted, again.failed, again.remaining) == (0, 0, 0)
        assert len(postings_sent(harness)) == before, "nothing sent again"
        assert landed(connected.organisation) == ids(events)


# ----------------------------------------------------------------------------- 10. skipped runs


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
        [run] = await eventually(
            lambda: harness.sql(
                "SELECT state, outcome FROM sync_runs WHERE due_event_id = :id AND "
                "finished_at IS NOT NULL",
                id=due,
            ),
            what="the stray run finished",
        )
        assert (run.state, run.outcome) == ("skipped", "not_active")

        result = await harness.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert result.posted == 5
        assert len(await harness.results()) == 1, "the skipped run published nothing"
