"""Posting when things go wrong, as users run it: the sandbox, the connector and the syncer as
processes on the real broker and PostgreSQL, in both sink modes. Two entities in one
organisation land exactly (organisation, account, sign, order, balances); then Xero's faults
and its user: 5xx and timeouts, a 429 storm, an answer dropped after the write, an account
and the app removed in Xero, refused elements (accounting), a syncer SIGKILLed with the
outcome unknown past the key's window, and a full replay of `bank.transactions.v1`.

Each sink's processes are started once for its class; every scenario has organisations,
entities and accounts of its own, and leaves Xero's faults and limits as it found them."""

import asyncio
import itertools
import signal
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import httpx
import pytest

from services.syncer.config import CONSUMER_GROUP, DEV_SERVICE_TOKEN
from shared.contracts.topics import BANK_TRANSACTIONS
from shared.contracts.xero import SyncCompleted, SyncFailed
from tests.conftest import Infrastructure
from tests.e2e.posting import (
    ANSWERED,
    POSTING_PATHS,
    BankEvent,
    Connected,
    PostingStack,
    account_number,
    ids,
    landed,
    posting_stack,
)
from tests.helpers import eventually, ledger, reversed_, rewind_group
from xero_sandbox.faults import FaultRule

TODAY = datetime.now(UTC).date()
START = (TODAY - timedelta(days=20)).isoformat()
FROM = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
XERO_MINUTE_IN_A_SECOND = 60
OPERATIONS = {
    "bankfeeds": {"api": "bankfeeds", "operation": "create_statements"},
    "accounting": {"api": "accounting", "operation": "create_bank_transactions"},
}
READS = {
    "bankfeeds": "/bankfeeds.xro/1.0/FeedConnections",
    "accounting": "/api.xro/2.0/Organisation",
}
SYNCER_SETTINGS = {
    "SYNCER_RUN_POLL": "200ms",
    "SYNCER_XERO_TIMEOUT_S": "2",
    "SYNCER_RETRY_ATTEMPTS": "10",
    "SYNCER_RETRY_BASE_DELAY": "0.01",
    "SYNCER_RETRY_MAX_DELAY": "0.05",
    # Small batches, so a few dozen transactions make several calls.
    "SYNCER_STATEMENT_MAX_LINES": "10",
    "SYNCER_ACCOUNTING_BATCH_SIZE": "10",
    # Xero's minute in one second, here and in the sandbox, so a 429 storm passes quickly.
    "SYNCER_RATE_LIMIT_SCALE": str(XERO_MINUTE_IN_A_SECOND),
}


@pytest.fixture(scope="class")
async def posting(
    request: pytest.FixtureRequest,
    infrastructure: Infrastructure,
    database_templates: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[PostingStack]:
    """The class's sink: the sandbox (Xero's minute in a second), the connector making new
    connections in that sink, and the syncer, each a process of its own."""
    sink: str = request.cls.sink
    async with posting_stack(
        infrastructure,
        database_templates,
        tmp_path_factory.mktemp(f"posting-{sink}"),
        sink=sink,
        syncer_settings=SYNCER_SETTINGS,
        rate_limit_scale=XERO_MINUTE_IN_A_SECOND,
    ) as stack:
        yield stack


@pytest.fixture(autouse=True)
async def xero_as_found(posting: PostingStack) -> AsyncIterator[None]:
    """Each scenario leaves Xero's faults, limits and key window as it found them."""
    limits = await posting.admin("GET", "/admin/limits")
    yield
    await posting.faults()
    await posting.admin("PUT", "/admin/limits", json=limits)


def signed(amount: Decimal | str, indicator: str) -> Decimal:
    return Decimal(amount) if indicator == "CREDIT" else -Decimal(amount)


def indicator(event: BankEvent) -> str:
    return "CREDIT" if event.direction == "credit" else "DEBIT"


def assert_exact(
    holdings: dict[str, Any], expected: Mapping[str, Sequence[BankEvent]], sink: str
) -> None:
    """What the organisation holds is exactly `expected` (our account → its events in
    booking order): no duplicate, no gap, each in its own account, with its sign, in order;
    statements whose balances chain."""
    if sink == "bankfeeds":
        _exact_statements(holdings, expected)
    else:
        _exact_bank_transactions(holdings, expected)


def _exact_statements(
    holdings: dict[str, Any], expected: Mapping[str, Sequence[BankEvent]]
) -> None:
    feeds = {f["id"]: f["account_token"] for f in holdings["feed_connections"]}
    statements: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for statement in holdings["statements"]:
        if statement["status"] == "DELIVERED":
            statements[feeds[statement["feed_connection_id"]]].append(statement)
    assert set(statements) == set(expected), "each account in its own feed, no other"
    for account, events in expected.items():
        lines = [line for s in statements[account] for line in s["lines"]]
        assert [line["transaction_id"] for line in lines] == [e.transaction_id for e in events], (
            f"{account}: every transaction once, in booking order"
        )
        for line, event in zip(lines, events, strict=True):
            assert (Decimal(line["amount"]), line["credit_debit_indicator"]) == (
                event.amount,
                indicator(event),
            ), event.transaction_id
        first = events[0]
        balance = first.balance_after - signed(first.amount, indicator(first))
        for statement in statements[account]:
            start = signed(statement["start_balance"], statement["start_indicator"])
            assert start == balance, f"{account}: each statement starts where the last ended"
            moved = sum(
                (
                    signed(line["amount"], line["credit_debit_indicator"])
                    for line in statement["lines"]
                ),
                Decimal(0),
            )
            balance = signed(statement["end_balance"], statement["end_indicator"])
            assert balance == start + moved, f"{account}: a statement's lines make its balance"
        assert balance == events[-1].balance_after, f"{account}: ends at the bank's balance"


def _exact_bank_transactions(
    holdings: dict[str, Any], expected: Mapping[str, Sequence[BankEvent]]
) -> None:
    held: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for transaction in holdings["bank_transactions"]:
        if transaction["Status"] != "DELETED":
            held[transaction["BankAccount"]["AccountID"]].append(transaction)
    ours = set()
    for account, events in expected.items():
        [bank] = [
            a
            for a in holdings["accounts"]
            if a["type"] == "BANK" and a["bank_account_number"] == account_number(account)
        ]
        assert (bank["currency_code"] or holdings["base_currency"]) == events[0].currency
        ours.add(bank["account_id"])
        documents = held[bank["account_id"]]
        assert [d["Reference"] for d in documents] == [e.transaction_id for e in events], (
            f"{account}: every transaction once, in booking order, in its own bank account"
        )
        for document, event in zip(documents, events, strict=True):
            kind = "RECEIVE" if event.direction == "credit" else "SPEND"
            assert (
                document["Type"],
                Decimal(str(document["Total"])),
                document["CurrencyCode"],
            ) == (
                kind,
                event.amount,
                event.currency,
            ), event.transaction_id
    assert set(held) <= ours, "no bank transaction in any other account"


def reversal_text(holdings: dict[str, Any], transaction_id: str, sink: str) -> str:
    """How a reversal reads in Xero: the statement line's reference, or the bank
    transaction's line description."""
    if sink == "bankfeeds":
        [line] = [
            line
            for s in holdings["statements"]
            for line in s["lines"]
            if line["transaction_id"] == transaction_id
        ]
        return str(line["reference"])
    [document] = [d for d in holdings["bank_transactions"] if d["Reference"] == transaction_id]
    return str(document["LineItems"][0]["Description"])


def when(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


class Scenarios:
    """Every scenario, for the sink a subclass names."""

    sink: ClassVar[str]

    async def connected(
        self,
        posting: PostingStack,
        tag: str,
        accounts: Mapping[str, Sequence[BankEvent]],
        *currencies: str,
    ) -> Connected:
        """A new organisation; the entity `tag` with `accounts` ingested and connected."""
        tenant_id = await posting.organisation(f"{tag.title()} Trading", *currencies)
        await posting.ingest(tag, accounts)
        return await posting.connect(tag, tenant_id, accounts, start_date=START)

    # ------------------------------------------------------------------ exactly, two entities
    async def test_two_entities_in_one_organisation_land_exactly_each_in_its_own_accounts(
        self, posting: PostingStack
    ) -> None:
        tenant_id = await posting.organisation("Pearl River Holdings", "USD")
        booked = ledger("two-a-hkd", 23, entity="two-a", start=FROM)
        assert booked[-1].direction == "debit"
        a_hkd: list[BankEvent] = [
            *booked,
            reversed_(booked[-1]),
        ]  # the bank undoes the last payment
        b_hkd = ledger("two-b-hkd", 25, entity="two-b", start=FROM)
        b_usd = ledger(
            "two-b-usd", 12, entity="two-b", currency="USD", start=FROM, opening=Decimal(900)
        )
        mine: dict[str, Sequence[BankEvent]] = {"two-a-hkd": a_hkd}
        theirs: dict[str, Sequence[BankEvent]] = {"two-b-hkd": b_hkd, "two-b-usd": b_usd}
        await posting.ingest("two-a", mine)
        await posting.ingest("two-b", theirs)
        a = await posting.connect("two-a", tenant_id, mine, start_date=START)
        b = await posting.connect("two-b", tenant_id, theirs, start_date=START)
        assert a.connection_id != b.connection_id

        first = await posting.sync(a)

        assert isinstance(first, SyncCompleted), first
        assert (first.posted, first.failed, first.remaining) == (24, 0, 0)
        assert [x.account_id for x in first.accounts] == ["two-a-hkd"]
        assert_exact(await posting.holdings(tenant_id), mine, posting.sink)

        second = await posting.sync(b)

        assert isinstance(second, SyncCompleted), second
        assert (second.posted, second.failed, second.remaining) == (37, 0, 0)
        holdings = await posting.holdings(tenant_id)
        assert_exact(holdings, mine | theirs, posting.sink)
        undone = booked[-1].transaction_id
        assert undone in reversal_text(holdings, a_hkd[-1].transaction_id, posting.sink), (
            "the reversal names the transaction it undoes"
        )

    # ------------------------------------------------------------------ 5xx, timeouts
    async def test_5xx_and_timeouts_are_retried_with_the_same_key_and_everything_lands_once(
        self, posting: PostingStack
    ) -> None:
        events = ledger("flaky-hkd", 60, entity="flaky", start=FROM)
        connected = await self.connected(posting, "flaky", {"flaky-hkd": events})
        path = POSTING_PATHS[posting.sink]
        # Xero holds the first call unanswered past the syncer's 2 s, then drops it.
        await posting.faults(
            FaultRule(kind="timeout", times=1, timeout_s=2.5, path=path),
            FaultRule(kind="error", status=503, rate=0.4, path=path),
        )
        labels = OPERATIONS[posting.sink]
        retried = await posting.metric("xerosync_xero_retries_total", reason="unavailable")
        answered_503 = await posting.metric("xerosync_xero_requests_total", **labels, status="503")

        result = await posting.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert (result.posted, result.failed, result.remaining) == (60, 0, 0)
        assert_exact(await posting.holdings(connected.tenant_id), {"flaky-hkd": events}, self.sink)
        # Xero logs the held call when it gives up on it.
        sent = await eventually(
            lambda: posting.postings_sent(connected.tenant_id),
            until=lambda calls: any(r["fault"] == "timeout" for r in calls),
            what="the held call dropped",
        )
        refused = [r for r in sent if r["fault"] is not None]
        answered = [r for r in sent if r["fault"] is None]
        assert [r["fault"] for r in refused].count("timeout") == 1
        errors = [r["fault"] for r in refused].count("error")
        assert errors >= 2, "the seed draws several 503s"
        assert [r["status"] for r in answered] == [ANSWERED[self.sink]] * 6, "each batch once"
        assert len({r["idempotency_key"] for r in answered}) == 6
        assert {r["idempotency_key"] for r in refused} <= {
            r["idempotency_key"] for r in answered
        }, "a retry carries the key of the request it repeats"
        metric = posting.metric
        assert await metric("xerosync_xero_retries_total", reason="unavailable") - retried == len(
            refused
        )
        assert (
            await metric("xerosync_xero_requests_total", **labels, status="503") - answered_503
            == errors
        )

    # ------------------------------------------------------------------ 429s
    async def test_a_429_storm_is_waited_out_as_retry_after_says_and_everything_lands_once(
        self, posting: PostingStack
    ) -> None:
        events = ledger("storm-hkd", 30, entity="storm", start=FROM)
        connected = await self.connected(posting, "storm", {"storm-hkd": events})
        metric, total = posting.metric, posting.metric_sum
        limited_before = await total("xerosync_xero_rate_limited_total")
        retried_before = await metric("xerosync_xero_retries_total", reason="rate_limited")

        async def refused() -> float:
            return await total("xerosync_xero_rate_limited_total") - limited_before

        # Another caller of the same app (a support script with the connection's token)
        # keeps all five of the organisation's concurrent calls busy with slow reads, until
        # Xero has refused the syncer three times.
        storm = asyncio.create_task(hold_every_slot(posting, connected, until_refused=refused))
        result = await posting.sync(connected)
        await asyncio.wait_for(storm, 20)  # its own deadline is 15 s

        assert isinstance(result, SyncCompleted), result
        assert (result.posted, result.failed, result.remaining) == (30, 0, 0)
        assert_exact(await posting.holdings(connected.tenant_id), {"storm-hkd": events}, self.sink)
        sent = await posting.postings_sent(connected.tenant_id)
        limited = [r for r in sent if r["status"] == 429]
        assert len(limited) >= 3
        assert [r["status"] for r in sent if r["status"] != 429] == [ANSWERED[self.sink]] * 3
        for call, following in itertools.pairwise(sent):
            if call["status"] == 429:
                assert call["retry_after"] is not None
                waited = when(following["received_at"]) - when(call["at"])
                assert waited >= call["retry_after"] - 0.05, "the next call waited Retry-After"
        assert await refused() == len(limited)
        retried = await metric("xerosync_xero_retries_total", reason="rate_limited")
        assert retried - retried_before == len(limited)

    # ------------------------------------------------------------------ lost answers
    async def test_an_answer_dropped_after_the_write_is_resent_with_its_key_and_replayed(
        self, posting: PostingStack
    ) -> None:
        events = ledger("lost-hkd", 30, entity="lost", start=FROM)
        connected = await self.connected(posting, "lost", {"lost-hkd": events})
        await posting.faults(
            FaultRule(kind="drop_after_write", times=1, path=POSTING_PATHS[self.sink])
        )
        retried = await posting.metric("xerosync_xero_retries_total", reason="unavailable")

        result = await posting.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert (result.posted, result.failed, result.remaining) == (30, 0, 0)
        dropped, again, *rest = await posting.postings_sent(connected.tenant_id)
        assert (dropped["fault"], dropped["replayed"]) == ("drop_after_write", False)
        assert again["idempotency_key"] == dropped["idempotency_key"]
        assert (again["fault"], again["replayed"], again["status"]) == (
            None,
            True,
            ANSWERED[self.sink],
        ), "Xero answered the repeat from the key: the work was done once"
        assert [(r["fault"], r["replayed"]) for r in rest] == [(None, False)] * 2
        assert_exact(await posting.holdings(connected.tenant_id), {"lost-hkd": events}, self.sink)
        assert await posting.metric("xerosync_xero_retries_total", reason="unavailable") == (
            retried + 1
        )

    # ------------------------------------------------------------------ an account removed
    async def test_a_bank_account_archived_in_xero_stops_that_account_only_and_keeps_it_pending(
        self, posting: PostingStack
    ) -> None:
        hkd = ledger("gone-hkd", 20, entity="gone", start=FROM)
        usd = ledger(
            "gone-usd", 15, entity="gone", currency="USD", start=FROM, opening=Decimal(900)
        )
        connected = await self.connected(posting, "gone", {"gone-hkd": hkd, "gone-usd": usd}, "USD")
        holdings = await posting.holdings(connected.tenant_id)
        [bank] = [
            a for a in holdings["accounts"] if a["type"] == "BANK" and a["currency_code"] == "USD"
        ]
        await posting.admin(
            "POST",
            f"/admin/organisations/{connected.tenant_id}/accounts/{bank['account_id']}/archive",
        )

        result = await posting.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert (result.posted, result.failed, result.remaining) == (20, 0, 15)
        by_account = {a.account_id: a for a in result.accounts}
        assert (by_account["gone-hkd"].posted, by_account["gone-hkd"].problem) == (20, None)
        usd_result = by_account["gone-usd"]
        assert usd_result.problem is not None
        assert "archived" in usd_result.problem, usd_result.problem
        assert (usd_result.posted, usd_result.failed, usd_result.remaining) == (0, 0, 15), (
            "pending, not failed"
        )
        assert_exact(await posting.holdings(connected.tenant_id), {"gone-hkd": hkd}, self.sink)
        recorded = await posting.sql("SELECT state FROM postings WHERE account_id = 'gone-usd'")
        assert recorded == [], "nothing recorded against them: they wait for the user"
        # The connector checks the account the result names and marks it as needing the
        # user; the bank's app shows it, and the syncer's replica learns it.
        status = await eventually(
            lambda: posting.status("gone"),
            until=lambda s: (
                {a["account_id"]: a["status"] for a in s["connection"]["accounts"]}
                == {"gone-hkd": "linked", "gone-usd": "needs_user"}
            ),
            what="the connector marks the account as needing the user",
        )
        assert status["connection"]["status"] == "active", "the other account carries on"
        await eventually(
            lambda: posting.sql(
                "SELECT status FROM connection_accounts WHERE account_id = 'gone-usd'"
            ),
            until=lambda rows: [r.status for r in rows] == ["needs_user"],
            what="the syncer's replica learns it",
        )

        # The Xero user restores the account. The connector's periodic check (every second
        # here) links it again on its own; the next sync sends its 15 waiting transactions,
        # each once.
        await posting.admin(
            "POST",
            f"/admin/organisations/{connected.tenant_id}/accounts/{bank['account_id']}/restore",
        )
        async with posting.connector_with(CONNECTOR_CONNECTION_CHECK_INTERVAL_S="1"):
            status = await eventually(
                lambda: posting.status("gone"),
                until=lambda s: (
                    {a["account_id"]: a["status"] for a in s["connection"]["accounts"]}
                    == {"gone-hkd": "linked", "gone-usd": "linked"}
                ),
                what="the connector links the restored account again",
            )
            assert [a["problem"] for a in status["connection"]["accounts"]] == [None, None]
            await eventually(
                lambda: posting.sql(
                    "SELECT status FROM connection_accounts WHERE account_id = 'gone-usd'"
                ),
                until=lambda rows: [r.status for r in rows] == ["linked"],
                what="the syncer's replica learns it",
            )

        resumed = await posting.sync(connected)

        assert isinstance(resumed, SyncCompleted), resumed
        assert (resumed.posted, resumed.failed, resumed.remaining) == (15, 0, 0)
        by_account = {a.account_id: a for a in resumed.accounts}
        assert (by_account["gone-usd"].posted, by_account["gone-usd"].problem) == (15, None)
        holdings = await posting.holdings(connected.tenant_id)
        assert_exact(holdings, {"gone-hkd": hkd, "gone-usd": usd}, self.sink)
        assert [s["duplicate_lines"] for s in holdings["statements"]] == [[]] * len(
            holdings["statements"]
        ), "no line was ever sent twice"

    # ------------------------------------------------------------------ the app removed
    async def test_the_app_removed_in_xero_fails_the_sync_for_the_user_and_nothing_more_is_sent(
        self, posting: PostingStack
    ) -> None:
        events = ledger("cut-hkd", 20, entity="cut", start=FROM)
        connected = await self.connected(posting, "cut", {"cut-hkd": events[:10]})
        posted = await posting.sync(connected)
        assert isinstance(posted, SyncCompleted), posted
        assert posted.posted == 10
        await posting.admin(
            "DELETE",
            f"/admin/organisations/{connected.tenant_id}/apps/{posting.connector.client_id}",
        )
        await posting.ingest("cut", {"cut-hkd": events[10:]})

        result = await posting.sync(connected)

        assert isinstance(result, SyncFailed), result
        assert result.reason in {"connection_removed", "token_invalid"}
        assert result.user_action_required
        status = await eventually(
            lambda: posting.status("cut"),
            until=lambda s: s["connection"]["status"] == "needs_user",
            what="the connector marks the connection as needing the user",
        )
        assert status["connection"]["last_sync_message"] == result.message
        await eventually(
            lambda: posting.sql(
                "SELECT status FROM connections WHERE connection_id = :id",
                id=connected.connection_id,
            ),
            until=lambda rows: [r.status for r in rows] == ["needs_user"],
            what="the syncer's replica learns it",
        )
        calls = await posting.metric_sum("xerosync_xero_requests_total")

        run = await posting.finished_run(await posting.due(connected))

        assert (run.state, run.outcome) == ("skipped", "not_active")
        assert await posting.metric_sum("xerosync_xero_requests_total") == calls, (
            "not a call more to Xero"
        )
        assert landed(await posting.holdings(connected.tenant_id)) == ids(events[:10])
        settled = await posting.sql(
            "SELECT count(*) FROM postings WHERE state IN ('posted', 'failed') "
            "AND transaction_id = ANY(:ids)",
            ids=ids(events[10:]),
        )
        assert settled[0][0] == 0, "neither posted nor failed: kept for after a reconnect"

    # ------------------------------------------------------------------ killed, past the window
    async def test_a_syncer_killed_after_xeros_answer_checks_xero_past_the_keys_window(
        self, posting: PostingStack
    ) -> None:
        events = ledger("kill-hkd", 30, entity="kill", start=FROM)
        connected = await self.connected(posting, "kill", {"kill-hkd": events})
        await posting.restart_syncer(XEROSYNC_FAILPOINTS="post.after_send=kill")
        doomed = posting.syncer

        due_id = await posting.due(connected)

        await eventually(
            lambda: asyncio.sleep(0, doomed.poll()),
            until=lambda code: code is not None,
            within=60,
            what="the syncer killing itself between Xero's answer and its own commit",
        )
        assert doomed.poll() == -signal.SIGKILL
        assert landed(await posting.holdings(connected.tenant_id)) == ids(events[:10]), (
            "Xero took the first batch; the syncer never learnt it"
        )
        # Xero has forgotten the key, and the syncer trusts its keys only for a millisecond:
        # it must look in Xero before posting that batch again.
        await posting.admin("PUT", "/admin/limits", json={"idempotency_window_seconds": 0.001})
        await asyncio.to_thread(posting.start_syncer, SYNCER_IDEMPOTENCY_TRUST="1ms")

        result = await posting.result_of(due_id)

        assert isinstance(result, SyncCompleted), result
        assert (result.failed, result.remaining) == (0, 0)
        assert_exact(await posting.holdings(connected.tenant_id), {"kill-hkd": events}, self.sink)
        requests = await posting.requests(connected.tenant_id)
        sent = [r for r in requests if r["idempotency_key"] is not None]
        first = sent[0]
        later = requests[requests.index(first) + 1 :]
        if self.sink == "accounting":
            lookups = [
                r for r in later if r["method"] == "GET" and r["path"].endswith("/banktransactions")
            ]
            assert len(lookups) == 1, "the batch's References looked up once"
            assert first["idempotency_key"] not in {r["idempotency_key"] for r in later}
        else:
            again = [r for r in later if r["idempotency_key"] == first["idempotency_key"]]
            assert [(r["status"], r["replayed"]) for r in again] == [(409, False)], (
                "sent again, and refused by Xero as a duplicate statement"
            )
        metric = posting.metric
        assert await metric("xerosync_posting_recovered_total", how="checked") == 1
        assert await metric("xerosync_posting_recovered_total", how="resent") == 0
        states = await posting.sql(
            "SELECT state, count(*) FROM postings WHERE tenant_id = :tenant GROUP BY state",
            tenant=uuid.UUID(connected.tenant_id),
        )
        assert [tuple(r) for r in states] == [("posted", 30)]

    # ------------------------------------------------------------------ replay (runs last)
    async def test_zz_a_full_replay_of_the_transactions_topic_posts_nothing_new(
        self, posting: PostingStack
    ) -> None:
        events = ledger("again-hkd", 40, entity="again", start=FROM)
        connected = await self.connected(posting, "again", {"again-hkd": events})
        first = await posting.sync(connected)
        assert isinstance(first, SyncCompleted), first
        assert first.posted == 40
        settled = list(posting.settled.values())
        assert len(settled) >= 5, "the class's earlier scenarios left settled connections"
        sent = {c.tenant_id: len(await posting.postings_sent(c.tenant_id)) for c in settled}

        # Ops replay the whole topic: the syncer stopped, its group rewound, started again.
        await asyncio.to_thread(posting.syncer.stop)
        env = posting.env
        await rewind_group(
            env.kafka, env.topics.group(CONSUMER_GROUP), env.topics.name(BANK_TRANSACTIONS)
        )
        await asyncio.to_thread(posting.start_syncer)

        await eventually(
            lambda: posting.metric("xerosync_transactions_ingested_total", result="duplicate"),
            until=lambda count: count == len(posting.ingested),
            within=60,
            what="every transaction of the class consumed again",
        )
        assert await posting.metric("xerosync_transactions_ingested_total", result="new") == 0
        for connection in settled:
            again = await posting.sync(connection)
            assert isinstance(again, SyncCompleted), again
            assert (again.posted, again.failed, again.remaining) == (0, 0, 0)
        for connection in settled:
            assert (
                len(await posting.postings_sent(connection.tenant_id)) == sent[connection.tenant_id]
            ), "nothing sent again"
        assert_exact(await posting.holdings(connected.tenant_id), {"again-hkd": events}, self.sink)


async def hold_every_slot(
    posting: PostingStack,
    connected: Connected,
    *,
    until_refused: Callable[[], Awaitable[float]],
) -> None:
    """Keep the organisation's five concurrent calls busy with reads Xero answers slowly,
    using the connection's token, until the syncer was refused three times (at most 15 s)."""
    read = READS[posting.sink]
    await posting.faults(FaultRule(kind="latency", latency_ms=300, path=read, methods=["GET"]))
    async with httpx.AsyncClient(timeout=10) as client:
        token = await client.post(
            f"{posting.connector.url}/internal/v1/connections/{connected.connection_id}/access-token",
            headers={"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"},
        )
        assert token.status_code == 200, token.text
        headers = {
            "Authorization": f"Bearer {token.json()['access_token']}",
            "Xero-Tenant-Id": connected.tenant_id,
            "Accept": "application/json",
        }
        done = asyncio.Event()

        async def reader() -> None:
            while not done.is_set():
                # A read the connection's scopes allow (Bank Feeds connections have no
                # accounting scopes).
                answer = await client.get(f"{posting.sandbox.url}{read}", headers=headers)
                assert answer.status_code in {200, 202, 429}, answer.text

        readers = [asyncio.create_task(reader()) for _ in range(5)]
        try:
            await eventually(
                until_refused,
                until=lambda refusals: refusals >= 3,
                within=15,
                what="Xero refusing the syncer three times",
            )
        finally:
            done.set()
            await asyncio.gather(*readers)


class TestBankFeeds(Scenarios):
    sink = "bankfeeds"


class TestAccounting(Scenarios):
    sink = "accounting"

    async def test_elements_xero_refuses_fail_with_its_message_and_the_rest_of_the_batch_stands(
        self, posting: PostingStack
    ) -> None:
        events = ledger("coded-hkd", 40, entity="coded", start=FROM)
        connected = await self.connected(posting, "coded", {"coded-hkd": events})
        # The Xero user archives Other Revenue (260), the account money in is coded to: Xero
        # now refuses every RECEIVE, element by element, and takes every SPEND.
        holdings = await posting.holdings(connected.tenant_id)
        [revenue] = [a for a in holdings["accounts"] if a["code"] == "260"]
        await posting.admin(
            "POST",
            f"/admin/organisations/{connected.tenant_id}/accounts/{revenue['account_id']}/archive",
        )
        credits = [e for e in events if e.direction == "credit"]
        debits = [e for e in events if e.direction == "debit"]
        failed_before = await posting.metric(
            "xerosync_transactions_posted_total", sink="accounting", result="failed"
        )

        result = await posting.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert (result.posted, result.failed, result.remaining) == (len(debits), len(credits), 0)
        [account] = result.accounts
        assert (account.posted, account.failed, account.problem) == (
            len(debits),
            len(credits),
            None,
        ), "a refused line's account is not the bank account's problem"
        sent = await posting.postings_sent(connected.tenant_id)
        assert [r["status"] for r in sent] == [200] * 4, "four calls, each element judged alone"
        assert_exact(await posting.holdings(connected.tenant_id), {"coded-hkd": debits}, self.sink)
        rows = await posting.sql(
            "SELECT transaction_id, state, message FROM postings WHERE account_id = 'coded-hkd'"
        )
        failed = {r.transaction_id: r.message for r in rows if r.state == "failed"}
        assert sorted(failed) == ids(credits)
        for message in failed.values():
            assert message.startswith("Account code '260' has been archived"), message
        assert await posting.metric(
            "xerosync_transactions_posted_total", sink="accounting", result="failed"
        ) - failed_before == len(credits)

        again = await posting.sync(connected)

        assert isinstance(again, SyncCompleted), again
        assert (again.posted, again.failed, again.remaining) == (0, 0, 0)
        assert len(await posting.postings_sent(connected.tenant_id)) == 4, (
            "refused transactions are not sent again"
        )
