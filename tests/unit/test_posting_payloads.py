"""What the syncer sends Xero: statements and bank transactions built from pending
transactions, their idempotency keys, and how Xero's answer is read back.

Bodies are checked three ways: field by field here, by the sandbox's own readers (what
Xero's stand-in accepts), and against Xero's OpenAPI request schemas."""

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.syncer.domain.posting import (
    BANK_TRANSACTIONS_PATH,
    STATEMENTS_PATH,
    UNKNOWN_COUNTERPARTY,
    Batch,
    Pending,
    bank_transaction_outcomes,
    bank_transactions_batch,
    dumps,
    idempotency_key,
    is_account_problem,
    local_date,
    shorten,
    statement_batch,
)
from tests.xero_openapi import XeroSpecs, xero_specs_or_skip
from xero_sandbox import bankfeeds, exact_json
from xero_sandbox.api.bankfeeds import _statement_in
from xero_sandbox.bank_transactions import BankTransactionPlan, Refused, plan_bank_transaction
from xero_sandbox.state import Account, Organisation

HONG_KONG = ZoneInfo("Asia/Hong_Kong")
TENANT = "3c8f0d1e-5b7a-4c2e-9f10-0a1b2c3d4e5f"
VERSION = 3
"""The connection's version, as the syncer's replica holds it."""
FEED = "6a4b9ff5-3a5f-4321-936b-4796163550f6"
XERO_BANK_ACCOUNT = "ebd06280-af70-4bed-97c6-7451a454ad85"
BASE_TIME = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def transaction(n: int, **fields: Any) -> Pending:
    """A booked transaction; its balance is set by `chain`."""
    values: dict[str, Any] = {
        "transaction_id": f"tx-{n:06d}",
        "kind": "booked",
        "original_transaction_id": None,
        "account_id": "acc-hkd-1",
        "currency": "HKD",
        "amount": Decimal("10.50") + n,
        "direction": "credit" if n % 3 == 0 else "debit",
        "balance_after": Decimal(0),
        "booked_at": BASE_TIME + timedelta(minutes=n),
        "value_date": date(2026, 11, 2),
        "description": f"Payment {n}",
        "counterparty_name": "Kowloon Printing Co",
        "reference": f"INV-{n}",
        "category": "transfer",
    }
    return Pending(**(values | fields))


def chain(items: Sequence[Pending], opening: Decimal = Decimal("1000.00")) -> list[Pending]:
    """The items with the balances a bank would give them, starting from `opening`."""
    balance = opening
    chained = []
    for item in items:
        balance += item.signed_amount
        chained.append(replace(item, balance_after=balance))
    return chained


def transactions(count: int, **fields: Any) -> list[Pending]:
    return chain([transaction(n, **fields) for n in range(count)])


def reversal_of(original: Pending, *, description: str | None = "Returned") -> Pending:
    return replace(
        original,
        transaction_id=f"{original.transaction_id}-rev",
        kind="reversal",
        original_transaction_id=original.transaction_id,
        direction="credit" if original.direction == "debit" else "debit",
        booked_at=original.booked_at + timedelta(seconds=30),
        description=description,
        counterparty_name=None,
        reference=None,
        category=None,
    )


def statement(pending: Sequence[Pending], **options: Any) -> Batch:
    batch = statement_batch(
        pending,
        tenant_id=TENANT,
        connection_version=VERSION,
        feed_connection_id=FEED,
        zone=HONG_KONG,
        **options,
    )
    assert batch is not None
    return batch


def bank_transactions(pending: Sequence[Pending], **options: Any) -> Batch:
    batch = bank_transactions_batch(
        pending,
        tenant_id=TENANT,
        connection_version=VERSION,
        xero_account_id=XERO_BANK_ACCOUNT,
        zone=HONG_KONG,
        receive_account_code="200",
        spend_account_code="400",
        **options,
    )
    assert batch is not None
    return batch


def body_of(batch: Batch) -> Any:
    return json.loads(batch.body, parse_float=Decimal)


def only_statement(batch: Batch) -> dict[str, Any]:
    items = body_of(batch)["items"]
    assert len(items) == 1
    statement: dict[str, Any] = items[0]
    return statement


def signed(balance: dict[str, str]) -> Decimal:
    amount = Decimal(balance["amount"])
    return amount if balance["creditDebitIndicator"] == "CREDIT" else -amount


def accepted_by_the_sandbox(batch: Batch) -> None:
    """The sandbox's own readers take the statement: fields, lengths, balances."""
    for item in exact_json.loads(batch.body)["items"]:
        read = _statement_in(item)
        bankfeeds._check_end_balance(read)
        assert all(read.start_date <= line.posted_date <= read.end_date for line in read.lines)


# ----------------------------------------------------------------------------- statements


def test_a_statement_carries_xeros_fields() -> None:
    pending = transactions(3)
    batch = statement(pending)
    assert (batch.method, batch.path, batch.params) == ("POST", STATEMENTS_PATH, {})
    assert batch.account_id == "acc-hkd-1"
    assert batch.transactions == tuple(pending)
    document = only_statement(batch)
    assert list(document) == [
        "feedConnectionId",
        "startDate",
        "endDate",
        "startBalance",
        "endBalance",
        "statementLines",
    ]
    assert document["feedConnectionId"] == FEED
    assert document["startDate"] == document["endDate"] == "2026-11-02"
    # An opening 1,000.00, then 10.50 in, 11.50 out and 12.50 out.
    assert document["startBalance"] == {"amount": "1000.0000", "creditDebitIndicator": "CREDIT"}
    assert document["endBalance"] == {"amount": "986.5000", "creditDebitIndicator": "CREDIT"}
    assert (batch.start_balance, batch.end_balance) == (Decimal("1000.00"), Decimal("986.50"))
    assert document["statementLines"][0] == {
        "postedDate": "2026-11-02",
        "amount": "10.5000",
        "creditDebitIndicator": "CREDIT",
        "transactionId": "tx-000000",
        "description": "Payment 0",
        "payeeName": "Kowloon Printing Co",
        "reference": "INV-0",
        "transactionType": "transfer",
    }
    assert document["statementLines"][1]["creditDebitIndicator"] == "DEBIT"
    assert document["statementLines"][1]["amount"] == "11.5000"  # unsigned
    accepted_by_the_sandbox(batch)


def test_nothing_pending_is_no_statement_and_no_request() -> None:
    nothing = statement_batch(
        [], tenant_id=TENANT, connection_version=VERSION, feed_connection_id=FEED, zone=HONG_KONG
    )
    assert nothing is None
    assert (
        bank_transactions_batch(
            [],
            tenant_id=TENANT,
            connection_version=VERSION,
            xero_account_id=XERO_BANK_ACCOUNT,
            zone=HONG_KONG,
            receive_account_code="200",
            spend_account_code="400",
        )
        is None
    )


def test_absent_texts_are_left_out_of_a_line() -> None:
    bare = chain([transaction(0, description=None, counterparty_name=" ", reference=None)])
    line = only_statement(statement(bare))["statementLines"][0]
    assert set(line) == {
        "postedDate",
        "amount",
        "creditDebitIndicator",
        "transactionId",
        "transactionType",
    }


def test_balances_chain_and_a_break_ends_the_statement() -> None:
    pending = transactions(6)
    broken = replace(pending[3], balance_after=pending[3].balance_after + Decimal("0.01"))
    pending[3] = broken
    first = statement(pending)
    assert [t.transaction_id for t in first.transactions] == ["tx-000000", "tx-000001", "tx-000002"]
    document = only_statement(first)
    moved = sum((t.signed_amount for t in first.transactions), Decimal(0))
    assert signed(document["startBalance"]) + moved == signed(document["endBalance"])
    accepted_by_the_sandbox(first)
    # The next statement starts at the break, from the balance that line implies.
    second = statement(pending[3:4])
    assert second.transactions == (broken,)
    assert second.start_balance == broken.balance_after - broken.signed_amount
    accepted_by_the_sandbox(second)


def test_a_statement_stops_at_max_lines() -> None:
    pending = transactions(7)
    batch = statement(pending, max_lines=3)
    assert len(batch.transactions) == 3
    assert len(only_statement(batch)["statementLines"]) == 3
    assert batch.end_balance == pending[2].balance_after
    assert len(statement(transactions(1001)).transactions) == 1000  # Xero's limit, by default


def test_a_statement_stops_before_the_line_that_would_pass_max_bytes() -> None:
    # Three bytes a character in UTF-8: each line is about 6 kB once shortened to 2,000.
    pending = chain([transaction(n, description="€" * 5000) for n in range(10)])
    max_bytes = 20_000
    batch = statement(pending, max_bytes=max_bytes)
    kept = len(batch.transactions)
    assert 1 < kept < 10
    assert len(batch.body) <= max_bytes
    one_more = statement(pending[: kept + 1], max_bytes=10**9)
    assert len(one_more.transactions) == kept + 1
    assert len(one_more.body) > max_bytes
    accepted_by_the_sandbox(batch)
    with pytest.raises(ValueError, match="alone makes a statement"):
        statement(pending, max_bytes=1000)


def test_a_statement_holds_one_account_in_date_order() -> None:
    pending = transactions(4)
    other_account = [*pending[:2], replace(pending[2], account_id="acc-hkd-2"), pending[3]]
    assert len(statement(other_account).transactions) == 2
    other_currency = [*pending[:2], replace(pending[2], currency="USD"), pending[3]]
    assert len(statement(other_currency).transactions) == 2
    a_day_earlier = replace(pending[2], booked_at=pending[2].booked_at - timedelta(days=1))
    assert len(statement([*pending[:2], a_day_earlier]).transactions) == 2


def test_dates_are_the_organisations() -> None:
    late = datetime(2026, 11, 2, 23, 30, tzinfo=UTC)
    assert local_date(late, HONG_KONG) == date(2026, 11, 3)
    assert local_date(late, ZoneInfo("UTC")) == date(2026, 11, 2)
    assert local_date(late, ZoneInfo("America/New_York")) == date(2026, 11, 2)
    with pytest.raises(ValueError, match="no time zone"):
        local_date(datetime(2026, 11, 2, 23, 30), HONG_KONG)  # noqa: DTZ001 - the point

    pending = chain(
        [transaction(0, booked_at=late - timedelta(hours=2)), transaction(1, booked_at=late)]
    )
    document = only_statement(statement(pending))
    # 21:30 UTC is 05:30 the next day in Hong Kong, and so is 23:30.
    assert [line["postedDate"] for line in document["statementLines"]] == [
        "2026-11-03",
        "2026-11-03",
    ]
    assert (document["startDate"], document["endDate"]) == ("2026-11-03", "2026-11-03")
    elements = body_of(bank_transactions(pending))["BankTransactions"]
    assert [element["Date"] for element in elements] == ["2026-11-03", "2026-11-03"]


def test_an_overdrawn_balance_is_a_debit() -> None:
    pending = chain(
        [transaction(1, amount=Decimal("30.00"), direction="debit")], opening=Decimal("20.00")
    )
    batch = statement(pending)
    document = only_statement(batch)
    assert document["startBalance"] == {"amount": "20.0000", "creditDebitIndicator": "CREDIT"}
    assert document["endBalance"] == {"amount": "10.0000", "creditDebitIndicator": "DEBIT"}
    assert batch.end_balance == Decimal("-10.00")
    zero = chain([transaction(3, amount=Decimal("5.00"))], opening=Decimal("-5.00"))
    assert only_statement(statement(zero))["endBalance"]["creditDebitIndicator"] == "CREDIT"
    accepted_by_the_sandbox(batch)


def test_a_reversal_line_references_the_original() -> None:
    original = transaction(1)
    pending = chain([original, reversal_of(original), reversal_of(original, description=None)])
    lines = only_statement(statement(pending))["statementLines"]
    assert lines[1] == {
        "postedDate": "2026-11-02",
        "amount": "11.5000",
        "creditDebitIndicator": "CREDIT",
        "transactionId": "tx-000001-rev",
        "description": "Reversal of tx-000001: Returned",
        "reference": "tx-000001",
    }
    assert lines[2]["description"] == "Reversal of tx-000001"
    assert "payeeName" not in lines[2]
    accepted_by_the_sandbox(statement(pending))


def test_long_texts_are_shortened_visibly_within_xeros_lengths() -> None:
    long = chain(
        [
            transaction(
                0,
                description="d" * 4000,
                counterparty_name="p" * 1000,
                reference="r" * 1000,
                category="c" * 32,
            )
        ]
    )
    line = only_statement(statement(long))["statementLines"][0]
    limits = {"description": 2000, "payeeName": 255, "reference": 255, "transactionType": 30}
    for field, limit in limits.items():
        assert len(line[field]) == limit, field
        assert line[field].endswith("…"), field
    accepted_by_the_sandbox(statement(long))
    element = body_of(bank_transactions(long))["BankTransactions"][0]
    assert len(element["Contact"]["Name"]) == 255
    assert element["Contact"]["Name"].endswith("…")
    description = element["LineItems"][0]["Description"]
    assert len(description) == 4000
    assert description.startswith("d" * 3999)
    assert description.endswith("…")


def test_shorten() -> None:
    assert shorten(None, 10) is None
    assert shorten("", 10) is None
    assert shorten("   ", 10) is None
    assert shorten("  Kowloon  ", 10) == "Kowloon"
    assert shorten("x" * 10, 10) == "x" * 10
    assert shorten("x" * 11, 10) == "x" * 9 + "…"
    assert shorten("ab", 1) == "…"
    with pytest.raises(ValueError, match="no room"):
        shorten("ab", 0)


def test_shorten_counts_as_xero_does_for_emoji() -> None:
    """Xero's limits count UTF-16 code units, where an emoji takes two."""
    emoji = "😀" * 200  # 200 characters, 400 code units
    shortened = shorten(emoji, 255)
    assert shortened is not None
    assert shortened.endswith("…")
    assert len(shortened.encode("utf-16-le")) // 2 <= 255
    assert shortened == "😀" * 127 + "…"
    assert shorten("é" * 255, 255) == "é" * 255  # accents are one unit: untouched


# ----------------------------------------------------------------------------- keys and bytes


def test_the_same_content_gives_the_same_key() -> None:
    pending = transactions(3)
    first, again = statement(pending), statement(list(pending))
    assert first.body == again.body
    assert first.idempotency_key == again.idempotency_key
    assert first.idempotency_key.startswith("xs2-")
    assert len(first.idempotency_key) <= 128
    changed = [*pending[:2], replace(pending[2], description="Payment 2 (amended)")]
    assert statement(changed).idempotency_key != first.idempotency_key
    assert statement(pending[:2]).idempotency_key != first.idempotency_key
    other_tenant = statement_batch(
        pending,
        tenant_id="another-tenant",
        connection_version=VERSION,
        feed_connection_id=FEED,
        zone=HONG_KONG,
    )
    assert other_tenant is not None
    assert other_tenant.body == first.body
    assert other_tenant.idempotency_key != first.idempotency_key
    assert bank_transactions(pending).idempotency_key == bank_transactions(pending).idempotency_key


def test_a_new_version_of_the_connection_sends_the_same_content_under_a_new_key() -> None:
    """Xero keeps its answer for a key, a refusal too: the transactions an archived account
    refused go again, once the connector has linked the account again (a new version of the
    connection), as a new request rather than a repeat Xero would refuse from memory."""
    pending = transactions(3)
    refused = statement(pending)
    relinked = statement_batch(
        pending,
        tenant_id=TENANT,
        connection_version=VERSION + 2,
        feed_connection_id=FEED,
        zone=HONG_KONG,
    )
    assert relinked is not None
    assert relinked.body == refused.body
    assert relinked.idempotency_key != refused.idempotency_key
    accounting = bank_transactions_batch(
        pending,
        tenant_id=TENANT,
        connection_version=VERSION + 2,
        xero_account_id=XERO_BANK_ACCOUNT,
        zone=HONG_KONG,
        receive_account_code="200",
        spend_account_code="400",
    )
    assert accounting is not None
    assert accounting.body == bank_transactions(pending).body
    assert accounting.idempotency_key != bank_transactions(pending).idempotency_key


def key(*request: Any, version: int = 1) -> str:
    return idempotency_key(*request, connection_version=version)


def test_every_part_of_a_request_counts_in_its_key() -> None:
    base = ("t", "PUT", "/p", {"a": "1"}, b"{}")
    same = key(*base)
    assert same == key("t", "PUT", "/p", {"a": "1"}, b"{}")
    variants = [
        ("u", "PUT", "/p", {"a": "1"}, b"{}"),
        ("t", "POST", "/p", {"a": "1"}, b"{}"),
        ("t", "PUT", "/q", {"a": "1"}, b"{}"),
        ("t", "PUT", "/p", {"a": "2"}, b"{}"),
        ("t", "PUT", "/p", {}, b"{}"),
        ("t", "PUT", "/p", {"a": "1"}, b"[]"),
        # Moving bytes across a boundary makes another request, and another key.
        ("tP", "UT", "/p", {"a": "1"}, b"{}"),
        ("t", "PUT", "/p", {"a": "1{}"}, b""),
    ]
    keys = {key(*variant) for variant in variants} | {key(*base, version=2)}
    assert len(keys) == len(variants) + 1
    assert same not in keys
    ordered = key("t", "PUT", "/p", {"a": "1", "b": "2"}, b"")
    assert ordered == key("t", "PUT", "/p", {"b": "2", "a": "1"}, b"")


def test_dumps_writes_decimals_exactly() -> None:
    assert dumps(Decimal("0.10")) == b"0.10"
    assert dumps({"a": Decimal("12.50"), "b": [Decimal("-3"), Decimal("1E+3")]}) == (
        b'{"a":12.50,"b":[-3,1000]}'
    )
    document = {"amount": Decimal("0.10"), "big": Decimal("123456789012345.6789")}
    read = json.loads(dumps(document), parse_float=Decimal)
    assert read == document
    assert str(read["amount"]) == "0.10"
    assert str(read["big"]) == "123456789012345.6789"


def test_dumps_is_compact_json_in_insertion_order() -> None:
    tricky = 'quote " backslash \\ newline \n tab \t nul \x00 é 😀 \u2028 </script>'
    document: dict[str, Any] = {
        "z": tricky,
        "a": [1, -2, True, False, None, ("t", 0)],
        "nested": {"ключ": {}},
        tricky: [],
    }
    expected = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    assert dumps(document) == expected
    assert dumps(True) == b"true"  # not 1, though bool is an int


@pytest.mark.parametrize("value", [1.5, {1, 2}, b"bytes", object(), {1: "a"}])
def test_dumps_refuses_what_it_cannot_write_exactly(value: Any) -> None:
    with pytest.raises(TypeError):
        dumps({"value": value})


def test_dumps_refuses_numbers_json_has_not() -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        dumps(Decimal("NaN"))


# ----------------------------------------------------------------------------- bank transactions


def test_a_bank_transaction_element() -> None:
    pending = transactions(2)
    batch = bank_transactions(pending)
    assert (batch.method, batch.path) == ("PUT", BANK_TRANSACTIONS_PATH)
    assert batch.params == {"summarizeErrors": "false"}
    assert (batch.start_balance, batch.end_balance) == (None, None)
    assert batch.transactions == tuple(pending)
    elements = body_of(batch)["BankTransactions"]
    assert elements[0] == {
        "Type": "RECEIVE",
        "Contact": {"Name": "Kowloon Printing Co"},
        "Date": "2026-11-02",
        "Reference": "tx-000000",
        "LineAmountTypes": "NoTax",
        "LineItems": [
            {
                "Description": "Payment 0 · Ref INV-0 · transfer",
                "Quantity": 1,
                "UnitAmount": Decimal("10.50"),
                "AccountCode": "200",
            }
        ],
        "BankAccount": {"AccountID": XERO_BANK_ACCOUNT},
        "CurrencyCode": "HKD",
    }
    assert elements[1]["Type"] == "SPEND"
    assert elements[1]["LineItems"][0]["AccountCode"] == "400"
    assert b'"UnitAmount":10.50,' in batch.body  # a JSON number, exact
    assert b'"UnitAmount":11.50,' in batch.body


def test_line_descriptions_say_what_there_is() -> None:
    plain = transaction(0, reference=None, category=None, counterparty_name=None)
    no_description = transaction(1, description=None, category=None)
    nothing = transaction(2, description=" ", reference=None, category=None)
    original = transaction(3)
    pending = chain([plain, no_description, nothing, original, reversal_of(original)])
    elements = body_of(bank_transactions(pending))["BankTransactions"]
    descriptions = [element["LineItems"][0]["Description"] for element in elements]
    assert descriptions == [
        "Payment 0",
        "Ref INV-1",
        "Transaction tx-000002",  # Xero wants at least one character
        "Payment 3 · Ref INV-3 · transfer",
        "Reversal of tx-000003: Returned",
    ]
    assert elements[0]["Contact"] == {"Name": UNKNOWN_COUNTERPARTY}
    assert elements[4]["Contact"] == {"Name": UNKNOWN_COUNTERPARTY}
    assert elements[4]["Reference"] == "tx-000003-rev"


def test_sub_cent_amounts_ask_for_four_decimals() -> None:
    pending = chain([transaction(0, currency="KWD", amount=Decimal("1.2345"))])
    batch = bank_transactions(pending)
    assert batch.params == {"summarizeErrors": "false", "unitdp": "4"}
    assert b'"UnitAmount":1.2345,' in batch.body


def test_a_batch_stops_at_max_elements_and_at_another_account() -> None:
    pending = transactions(60)
    assert len(bank_transactions(pending).transactions) == 50  # Xero's limit, by default
    assert len(bank_transactions(pending, max_elements=7).transactions) == 7
    mixed = [*pending[:3], replace(pending[3], account_id="acc-hkd-2")]
    assert len(bank_transactions(mixed).transactions) == 3


def test_a_batch_stops_before_the_element_that_would_pass_max_bytes() -> None:
    pending = chain([transaction(n, description="€" * 5000) for n in range(10)])
    max_bytes = 40_000  # each element is about 12 kB: 4,000 three-byte characters
    batch = bank_transactions(pending, max_bytes=max_bytes)
    kept = len(batch.transactions)
    assert 1 < kept < 10
    assert len(batch.body) <= max_bytes
    assert len(bank_transactions(pending[: kept + 1], max_bytes=10**9).body) > max_bytes
    with pytest.raises(ValueError, match="alone makes a request"):
        bank_transactions(pending, max_bytes=1000)


def organisation(*, bank_status: str = "ACTIVE") -> Organisation:
    def account(account_id: str, **fields: Any) -> Account:
        return Account(account_id=account_id, name=account_id, **fields)

    accounts = [
        account(XERO_BANK_ACCOUNT, type="BANK", account_class="ASSET", status=bank_status),
        account("aaaaaaaa-0000-4000-8000-000000000200", type="REVENUE", account_class="REVENUE"),
        account("aaaaaaaa-0000-4000-8000-000000000400", type="EXPENSE", account_class="EXPENSE"),
    ]
    accounts[1].code, accounts[2].code = "200", "400"
    return Organisation(
        tenant_id=TENANT,
        name="Kowloon Trading",
        edition="BUSINESS",
        status="ACTIVE",
        base_currency="HKD",
        currencies=["HKD"],
        multi_currency=False,
        timezone="CHINASTANDARDTIME",
        country_code="HK",
        short_code="!kT9x",
        created_at=BASE_TIME,
        accounts={a.account_id: a for a in accounts},
    )


def test_the_sandbox_takes_every_element() -> None:
    original = transaction(1)
    pending = chain([transaction(0), original, reversal_of(original)])
    books = organisation()
    for element, item in zip(
        exact_json.loads(bank_transactions(pending).body)["BankTransactions"], pending, strict=True
    ):
        plan = plan_bank_transaction(
            books, element, may_update=False, today=date(2026, 11, 3), unit_dp=2
        )
        assert isinstance(plan, BankTransactionPlan), plan
        assert plan.reference == item.transaction_id
        assert plan.type == ("RECEIVE" if item.direction == "credit" else "SPEND")
        assert plan.lines[0].line_amount == item.amount


def test_the_sandboxs_bank_account_refusals_are_account_problems() -> None:
    element = exact_json.loads(bank_transactions(transactions(1)).body)["BankTransactions"][0]
    for books in (organisation(bank_status="ARCHIVED"), organisation(bank_status="DELETED")):
        refused = plan_bank_transaction(
            books, element, may_update=False, today=date(2026, 11, 3), unit_dp=2
        )
        assert isinstance(refused, Refused)
        assert any(is_account_problem(message) for message in refused.messages), refused


def test_request_bodies_follow_xeros_openapi_schemas() -> None:
    specs: XeroSpecs = xero_specs_or_skip()
    original = transaction(1)
    pending = chain(
        [transaction(0), original, reversal_of(original), transaction(2, description="x" * 3000)],
        opening=Decimal("-5.00"),
    )
    feed = statement(pending)
    specs.validate_request_body(feed.method, feed.path, json.loads(feed.body), lenient_numbers=True)
    accounting = bank_transactions(pending)
    specs.validate_request_body(accounting.method, accounting.path, json.loads(accounting.body))


# ----------------------------------------------------------------------------- Xero's answer


def answer(*elements: dict[str, Any]) -> dict[str, Any]:
    envelope = {"Id": "7c2b6f1e-1a2b-4c3d-8e9f-0a1b2c3d4e5f", "Status": "OK"}
    return envelope | {"BankTransactions": list(elements)}


def saved(reference: str, xero_id: str) -> dict[str, Any]:
    return {"BankTransactionID": xero_id, "Reference": reference, "StatusAttributeString": "OK"}


def refused(reference: str | None, *messages: str) -> dict[str, Any]:
    element: dict[str, Any] = {
        "StatusAttributeString": "ERROR",
        "ValidationErrors": [{"Message": message} for message in messages],
    }
    return element | ({"Reference": reference} if reference is not None else {})


def test_a_mixed_answer_is_read_per_transaction() -> None:
    batch = bank_transactions(transactions(3))
    outcomes = bank_transaction_outcomes(
        answer(
            saved("tx-000000", "11111111-1111-4111-8111-111111111111"),
            refused("tx-000001", "Account code '400' is not a valid code for this document."),
            saved("tx-000002", "22222222-2222-4222-8222-222222222222"),
        ),
        batch,
    )
    assert [(o.transaction_id, o.ok, o.xero_id) for o in outcomes] == [
        ("tx-000000", True, "11111111-1111-4111-8111-111111111111"),
        ("tx-000001", False, None),
        ("tx-000002", True, "22222222-2222-4222-8222-222222222222"),
    ]
    assert outcomes[1].messages == ("Account code '400' is not a valid code for this document.",)
    assert not any(o.account_problem for o in outcomes)
    assert outcomes[0].messages == ()


def test_a_refused_bank_account_is_an_account_problem() -> None:
    batch = bank_transactions(transactions(3))
    outcomes = bank_transaction_outcomes(
        answer(
            refused(
                "tx-000000", "The specified bank account details do not match a known bank account"
            ),
            refused(None, "The bank account 'HKD Current' is archived: restore it first."),
            refused(
                "tx-000002",
                "Account code '400' has been archived, or has been deleted. Each line item must "
                "reference a valid account.",
            ),
        ),
        batch,
    )
    assert [o.account_problem for o in outcomes] == [True, True, False]
    assert is_account_problem(
        "THE SPECIFIED BANK ACCOUNT DETAILS DO NOT MATCH A KNOWN BANK ACCOUNT"
    )


def test_a_refusal_without_a_message_still_says_so() -> None:
    batch = bank_transactions(transactions(1))
    (outcome,) = bank_transaction_outcomes(answer(refused("tx-000000")), batch)
    assert not outcome.ok
    assert outcome.messages
    assert not outcome.account_problem


@pytest.mark.parametrize(
    "wrong",
    [
        answer(saved("tx-000000", "11111111-1111-4111-8111-111111111111")),
        answer(
            saved("tx-000001", "11111111-1111-4111-8111-111111111111"),
            saved("tx-000000", "22222222-2222-4222-8222-222222222222"),
        ),
        {"Elements": []},
        [],
    ],
    ids=["too-few", "another-order", "no-list", "not-an-object"],
)
def test_an_answer_to_another_request_is_refused(wrong: Any) -> None:
    batch = bank_transactions(transactions(2))
    with pytest.raises(ValueError, match=r"bank transaction|BankTransactions"):
        bank_transaction_outcomes(wrong, batch)


def test_a_statement_has_no_bank_transaction_outcomes() -> None:
    with pytest.raises(ValueError, match="no bank transaction outcomes"):
        bank_transaction_outcomes(answer(), statement(transactions(1)))


# ----------------------------------------------------------------------------- pending


def test_signed_amount_follows_the_direction() -> None:
    assert transaction(0, direction="credit").signed_amount == Decimal("10.50")
    assert transaction(0, direction="debit").signed_amount == Decimal("-10.50")


@pytest.mark.parametrize(
    "fields",
    [
        {"direction": "in"},
        {"kind": "refund"},
        {"amount": Decimal("-1")},
        {"booked_at": datetime(2026, 11, 2, 1, 0)},  # noqa: DTZ001 - the point
        {"kind": "reversal", "original_transaction_id": None},
    ],
)
def test_a_transaction_that_cannot_be_posted_is_refused_at_once(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="tx-000000"):
        transaction(0, **fields)
