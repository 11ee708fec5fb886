"""Posting through both sinks with the real syncer and connector apps, the real broker and
PostgreSQL, against the Xero sandbox (every call checked against Xero's OpenAPI)."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from shared.contracts.xero import SyncCompleted
from tests.conftest import Env
from tests.helpers import eventually, ledger, reversed_
from tests.integration.syncer_harness import (
    organisation_zone,
    running_syncer,
    signed,
    statement_lines,
)

TODAY = datetime.now(UTC).date()
START = (TODAY - timedelta(days=20)).isoformat()
FROM = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)


async def test_bank_feeds_receive_every_transaction_once_in_order_with_contiguous_balances(
    env: Env,
) -> None:
    async with running_syncer(env) as harness:
        organisation = harness.connector.organisation(
            name="Harbour Trading", base_currency="HKD", currencies=["USD"]
        )
        hkd = ledger("acc-hkd", 1200, entity="ent-1", currency="HKD", start=FROM)
        usd = ledger(
            "acc-usd", 40, entity="ent-1", currency="USD", start=FROM, opening=Decimal(900)
        )
        before_start = ledger(
            "acc-hkd", 1, entity="ent-1", start=FROM - timedelta(days=30), first=99_000
        )
        await harness.ingest(hkd + usd + before_start)
        connected = await harness.connect(
            "ent-1", organisation, [("acc-hkd", "HKD"), ("acc-usd", "USD")], start_date=START
        )

        result = await harness.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert (result.posted, result.failed, result.remaining) == (1240, 0, 0)
        by_account = {a.account_id: a for a in result.accounts}
        zone = ZoneInfo(organisation_zone(organisation))
        assert by_account["acc-hkd"].latest_transaction_date == (
            hkd[-1].booked_at.astimezone(zone).date()
        )
        lines = statement_lines(organisation)
        feeds = {f.id: f.account_token for f in organisation.feed_connections.values()}
        sent = [(feeds[feed], line.transaction_id) for feed, line in lines]
        expected = [("acc-hkd", e.transaction_id) for e in hkd] + [
            ("acc-usd", e.transaction_id) for e in usd
        ]
        assert sorted(sent) == sorted(expected), "exactly the ingested transactions, once"
        for account, events in (("acc-hkd", hkd), ("acc-usd", usd)):
            mine = [line for feed, line in lines if feeds[feed] == account]
            assert [line.transaction_id for line in mine] == [e.transaction_id for e in events]
            assert [signed(line.amount, line.credit_debit_indicator) for line in mine] == [
                e.amount if e.direction == "credit" else -e.amount for e in events
            ]
        statements = [
            s for s in organisation.statements.values() if feeds[s.feed_connection_id] == "acc-hkd"
        ]
        assert len(statements) == 2, "1,200 lines: a statement of 1,000 and one of 200"
        for earlier, later in itertools.pairwise(statements):
            assert signed(earlier.end_balance, earlier.end_indicator) == signed(
                later.start_balance, later.start_indicator
            ), "each statement starts where the previous one ended"
        assert (
            signed(statements[-1].end_balance, statements[-1].end_indicator)
            == hkd[-1].balance_after
        )
        assert harness.contract.requests_checked, "the syncer's requests were checked"

        again = await harness.sync(connected)
        assert isinstance(again, SyncCompleted)
        assert (again.posted, again.remaining) == (0, 0)
        assert len(statement_lines(organisation)) == len(lines), "nothing posted twice"
        async with harness.connector.user("ent-1") as user:
            shown = await eventually(
                user.status,
                until=lambda s: s["connection"]["last_sync_at"] is not None,
                what="the connector shows the sync",
            )
        assert {a["latest_transaction_date"] for a in shown["connection"]["accounts"]} != {None}


async def test_accounting_sink_posts_receive_and_spend_money_with_our_id_as_reference(
    env: Env,
) -> None:
    async with running_syncer(env, sink="accounting") as harness:
        organisation = harness.connector.organisation(name="Lotus Garments", base_currency="HKD")
        events = ledger("acc-hkd", 120, entity="ent-2", currency="HKD", start=FROM)
        reversal = reversed_(events[5])
        reversal = reversal.model_copy(
            update={"booked_at": events[-1].booked_at + timedelta(minutes=1)}
        )
        await harness.ingest([*events, reversal])
        connected = await harness.connect(
            "ent-2", organisation, [("acc-hkd", "HKD")], start_date=START
        )

        result = await harness.sync(connected)

        assert isinstance(result, SyncCompleted), result
        assert (result.posted, result.failed, result.remaining) == (121, 0, 0)
        held = list(organisation.bank_transactions.values())
        references = [t.document["Reference"] for t in held]
        assert sorted(references) == sorted(
            [e.transaction_id for e in events] + [reversal.transaction_id]
        )
        by_reference = {t.document["Reference"]: t.document for t in held}
        for event in events:
            document = by_reference[event.transaction_id]
            assert document["Type"] == ("RECEIVE" if event.direction == "credit" else "SPEND")
            assert Decimal(str(document["Total"])) == event.amount
        offset = by_reference[reversal.transaction_id]
        original = by_reference[events[5].transaction_id]
        assert offset["Type"] != original["Type"], "a reversal goes out as the offsetting type"
        assert events[5].transaction_id in offset["LineItems"][0]["Description"]
        calls = [r for r in harness.sandbox.requests if r.path.endswith("banktransactions")]
        assert len(calls) == 3, "121 transactions in calls of at most 50"
        assert all(r.idempotency_key for r in calls)
        zone = ZoneInfo(organisation_zone(organisation))
        assert (
            result.accounts[0].latest_transaction_date == reversal.booked_at.astimezone(zone).date()
        ), "the latest booking date Xero holds: the reversal, booked last"
