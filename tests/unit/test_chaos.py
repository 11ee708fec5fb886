"""The chaos run's pure parts: the seeded workload, the fault schedule, and the verdict on
what Xero holds (each kind of wrong holding must be caught)."""

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from shared.contracts.topics import BANK_TRANSACTIONS
from xerosync.chaos.schedule import plan
from xerosync.chaos.verify import DlqRecord, Verdict, verify
from xerosync.chaos.workload import Stream, stream, topology

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
RUN = "t0001"
PREFIX = f"ch{RUN}-"


@pytest.fixture(scope="module")
def world_stream() -> tuple[Any, Stream]:
    world = topology(RUN, organisations=3, entities=6)
    return world, stream(RUN, world, transactions=600, seed=5, now=NOW)


# ----------------------------------------------------------------------------- the workload


def test_the_topology_shares_some_organisations_and_feeds_every_one() -> None:
    world = topology(RUN, organisations=10, entities=20)

    homes = [e.organisation for e in world.entities]
    assert set(homes) == set(range(10)), "every organisation is fed"
    assert world.sharing() >= 3
    assert any(homes.count(o) == 1 for o in range(10)), "and some by one entity only"
    accounts = [a for e in world.entities for a in e.accounts]
    assert len(accounts) == 60
    assert {a.currency for a in accounts} == {"HKD", "USD", "CNY"}
    assert len({a.account_id for a in accounts}) == len({a.account_number for a in accounts}) == 60


def test_the_stream_is_seeded_and_has_its_shares(world_stream: tuple[Any, Stream]) -> None:
    world, made = world_stream
    again = stream(RUN, world, transactions=600, seed=5, now=NOW)
    other = stream(RUN, world, transactions=600, seed=6, now=NOW)

    assert [r.value for r in again.records] == [r.value for r in made.records]
    assert [r.value for r in other.records] != [r.value for r in made.records]
    assert made.count("valid") == len(made.expected) == 600
    assert 15 <= made.count("duplicate") <= 50, "about 5%"
    assert made.count("malformed") == 6, "1%"
    assert made.reversals > 0


def test_every_valid_record_keeps_the_contract_and_chains_its_balance(
    world_stream: tuple[Any, Stream],
) -> None:
    _, made = world_stream
    events = {}
    for record in made.records:
        if record.kind != "valid":
            continue
        event = BANK_TRANSACTIONS.adapter.validate_json(record.value)
        assert record.key == event.account_id.encode(), "keyed by account, as the contract says"
        events[event.transaction_id] = event
    for account_id, ledger in made.ledgers.items():
        balance = made.opening[account_id]
        booked = [events[t].booked_at for t in ledger]
        assert booked == sorted(booked), "published in booking order"
        for transaction_id in ledger:
            event = events[transaction_id]
            balance += event.amount if event.direction == "credit" else -event.amount
            assert event.balance_after == balance
            assert event.booked_at < NOW
    reversal = next(e for e in events.values() if e.type == "TransactionReversed")
    original = events[reversal.original_transaction_id]
    assert (reversal.amount, reversal.account_id) == (original.amount, original.account_id)
    assert reversal.direction != original.direction


def test_duplicates_repeat_a_valid_record_after_it(world_stream: tuple[Any, Stream]) -> None:
    _, made = world_stream
    first: dict[bytes, int] = {}
    for position, record in enumerate(made.records):
        if record.kind == "valid":
            first[record.value] = position
        elif record.kind == "duplicate":
            assert first[record.value] < position, "the copy comes after its original"


def test_every_malformed_record_is_refused_by_the_contract(
    world_stream: tuple[Any, Stream],
) -> None:
    _, made = world_stream
    malformed = [r for r in made.records if r.kind == "malformed"]
    assert len({r.value for r in malformed}) == len(malformed)
    for record in malformed:
        with pytest.raises((ValidationError, ValueError)):
            BANK_TRANSACTIONS.adapter.validate_json(record.value)


# ----------------------------------------------------------------------------- the schedule


def test_the_schedule_is_seeded_and_holds_every_kind_of_fault() -> None:
    def made(seed: int) -> Any:
        return plan(
            seed=seed,
            duration_s=600,
            entities=20,
            syncer_kills=24,
            syncers=2,
            schedulers=2,
            other_kills=2,
            bursts=3,
        )

    schedule = made(3)

    assert schedule == made(3)
    assert schedule != made(4)
    assert schedule.count("kill_syncer") == 24
    assert {a.replica for a in schedule.actions if a.kind == "kill_syncer"} == {0, 1}
    assert schedule.count("xero_timeout") == schedule.count("xero_response_dropped") == 1
    for kind in ("kill_scheduler", "kill_connector"):
        assert schedule.count(kind) == 2
    assert schedule.count("rate_limit_burst") == 3
    times = [a.at for a in schedule.actions]
    assert times == sorted(times)
    assert all(0 < t < 600 for t in times)
    at = {a.kind: a.at for a in schedule.actions}
    assert at["archive_account"] < at["restore_account"]
    assert at["disconnect_entity"] < at["reconnect_entity"]
    assert schedule.archived_entity != schedule.disconnected_entity


# ----------------------------------------------------------------------------- the verdict


def holdings_for(world: Any, made: Stream, tenants: list[str]) -> dict[str, dict[str, Any]]:
    """What Xero holds when everything went right: each account's transactions on its own
    feed, in two contiguous statements."""
    held: dict[str, dict[str, Any]] = {
        t: {"feed_connections": [], "statements": []} for t in tenants
    }
    for entity in world.entities:
        tenant = tenants[entity.organisation]
        for account in entity.accounts:
            ledger = made.ledgers.get(account.account_id)
            if not ledger:
                continue
            feed = f"feed-{account.account_id}"
            held[tenant]["feed_connections"].append(
                {"id": feed, "account_token": account.account_id}
            )
            balance = made.opening[account.account_id]
            half = max(1, len(ledger) // 2)
            for day, part in ((22, ledger[:half]), (23, ledger[half:])):
                if not part:
                    continue
                lines = [
                    {
                        "transaction_id": t,
                        "amount": str(made.expected[t].amount),
                        "credit_debit_indicator": made.expected[t].direction.upper(),
                    }
                    for t in part
                ]
                end = made.expected[part[-1]].balance_after
                held[tenant]["statements"].append(
                    {
                        "feed_connection_id": feed,
                        "status": "DELIVERED",
                        "start_date": f"2026-11-{day}",
                        "end_date": f"2026-11-{day + 1}",
                        "start_balance": str(abs(balance)),
                        "start_indicator": "CREDIT" if balance >= 0 else "DEBIT",
                        "end_balance": str(abs(end)),
                        "end_indicator": "CREDIT" if end >= 0 else "DEBIT",
                        "lines": lines,
                        "duplicate_lines": [],
                    }
                )
                balance = end
    return held


def dlq_of(made: Stream) -> list[DlqRecord]:
    return [
        DlqRecord(r.value, {"x-dlq-error": "amount: must be greater than zero"})
        for r in made.records
        if r.kind == "malformed"
    ]


TENANTS = ["org-a", "org-b", "org-c"]


def judge(world_stream: tuple[Any, Stream], change: Any = None, dlq: Any = None) -> Verdict:
    world, made = world_stream
    held = holdings_for(world, made, TENANTS)
    if change is not None:
        change(held)
    return verify(made, TENANTS, held, dlq if dlq is not None else dlq_of(made), prefix=PREFIX)


def first_statement(held: dict[str, Any]) -> dict[str, Any]:
    return next(s for h in held.values() for s in h["statements"])


def test_everything_in_place_passes(world_stream: tuple[Any, Stream]) -> None:
    verdict = judge(world_stream)

    assert verdict.ok, verdict.examples
    assert (verdict.delivered, verdict.expected) == (600, 600)
    assert (verdict.duplicated, verdict.missing, verdict.misrouted) == (0, 0, 0)
    assert verdict.dlq == verdict.malformed == 6


def test_a_line_held_twice_is_duplicated(world_stream: tuple[Any, Stream]) -> None:
    def twice(held: dict[str, Any]) -> None:
        statement = first_statement(held)
        statement["lines"].append(copy.deepcopy(statement["lines"][0]))

    verdict = judge(world_stream, twice)

    assert verdict.duplicated == 1
    assert not verdict.ok
    assert verdict.broken_accounts == 1, "its balance no longer adds up either"


def test_a_line_not_held_is_missing_and_breaks_its_account(
    world_stream: tuple[Any, Stream],
) -> None:
    def lose(held: dict[str, Any]) -> None:
        first_statement(held)["lines"].pop()

    verdict = judge(world_stream, lose)

    assert (verdict.missing, verdict.delivered, verdict.broken_accounts) == (1, 599, 1)
    assert not verdict.ok


def test_a_statement_on_another_feed_is_misrouted(world_stream: tuple[Any, Stream]) -> None:
    def elsewhere(held: dict[str, Any]) -> None:
        statement = first_statement(held)
        feeds = [f["id"] for f in held["org-a"]["feed_connections"]]
        statement["feed_connection_id"] = next(
            f for f in feeds if f != statement["feed_connection_id"]
        )

    verdict = judge(world_stream, elsewhere)

    assert verdict.misrouted > 0
    assert not verdict.ok


def test_a_statement_in_another_organisation_is_misrouted(world_stream: tuple[Any, Stream]) -> None:
    def elsewhere(held: dict[str, Any]) -> None:
        statement = held["org-a"]["statements"].pop(0)
        feed = next(
            f
            for f in held["org-a"]["feed_connections"]
            if f["id"] == statement["feed_connection_id"]
        )
        held["org-b"]["feed_connections"].append(feed)
        held["org-b"]["statements"].append(statement)

    verdict = judge(world_stream, elsewhere)

    assert verdict.misrouted == len(
        [
            1
            for s in holdings_for(*world_stream, TENANTS)["org-a"]["statements"][:1]
            for _ in s["lines"]
        ]
    )
    assert not verdict.ok


def test_a_wrong_sign_is_mismatched(world_stream: tuple[Any, Stream]) -> None:
    def flip(held: dict[str, Any]) -> None:
        line = first_statement(held)["lines"][0]
        line["credit_debit_indicator"] = (
            "DEBIT" if line["credit_debit_indicator"] == "CREDIT" else "CREDIT"
        )

    verdict = judge(world_stream, flip)

    assert verdict.mismatched == 1
    assert not verdict.ok


def test_statements_out_of_order_break_the_account(world_stream: tuple[Any, Stream]) -> None:
    def swap(held: dict[str, Any]) -> None:
        statements = held["org-a"]["statements"]
        statements[0], statements[1] = statements[1], statements[0]

    verdict = judge(world_stream, swap)

    assert verdict.broken_accounts == 1
    assert (verdict.missing, verdict.duplicated, verdict.misrouted) == (0, 0, 0)
    assert not verdict.ok


def test_a_posted_malformed_event_is_unexpected(world_stream: tuple[Any, Stream]) -> None:
    def posted(held: dict[str, Any]) -> None:
        statement = first_statement(held)
        statement["lines"].append(
            {
                "transaction_id": f"{PREFIX}bad-00001",
                "amount": "0",
                "credit_debit_indicator": "CREDIT",
            }
        )

    verdict = judge(world_stream, posted)

    assert verdict.unexpected == 1
    assert not verdict.ok


def test_lines_xero_dropped_as_resent_are_counted_but_not_duplicated(
    world_stream: tuple[Any, Stream],
) -> None:
    def resent(held: dict[str, Any]) -> None:
        statement = first_statement(held)
        statement["duplicate_lines"] = [statement["lines"][0]["transaction_id"]]

    verdict = judge(world_stream, resent)

    assert (verdict.resent, verdict.duplicated) == (1, 0)
    assert verdict.ok


def test_a_malformed_event_missing_from_the_dlq_fails(world_stream: tuple[Any, Stream]) -> None:
    _, made = world_stream
    dlq = [*dlq_of(made)[1:], DlqRecord(dlq_of(made)[0].value, {"x-dlq-error": " "})]

    verdict = judge(world_stream, dlq=dlq)

    assert (verdict.dlq, verdict.malformed, verdict.dlq_missing) == (5, 6, 1)
    assert not verdict.ok
    assert json.dumps(verdict.examples)  # printable


def test_decimal_signs_compare_exactly() -> None:
    assert Decimal("10.5000") == Decimal("10.50")
