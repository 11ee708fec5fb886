"""The Bank Feeds API: feed connections, statements, their refusals and duplicate detection."""

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.sandbox.conftest import ALL_SCOPES, Connect, Tenant
from tests.xero_openapi import xero_specs_or_skip
from xero_sandbox import identity
from xero_sandbox.bankfeeds import line_key, one_year_before
from xero_sandbox.organisations import OrganisationIn, create_organisation, local_today
from xero_sandbox.state import Account, Organisation, Sandbox, StatementLine, new_id

BASE = "/bankfeeds.xro/1.0"
FEEDS = f"{BASE}/FeedConnections"
STATEMENTS = f"{BASE}/Statements"


def advance_to_hour(sandbox: Sandbox, hour: int) -> None:
    """Move the sandbox clock forward to the next `hour`:00 UTC, so that no test straddles
    midnight. Call it before connecting: tokens live 30 minutes on the sandbox clock."""
    now = sandbox.clock.now()
    target = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    sandbox.clock.advance((target - now).total_seconds())


@pytest.fixture(autouse=True)
def noon(sandbox: Sandbox) -> None:
    advance_to_hour(sandbox, 12)


@pytest.fixture
async def tenant(connect: Connect) -> Tenant:
    return await connect(name="Feeds Ltd", base_currency="USD")


def feed_item(
    account_token: str = "tok-1",  # noqa: S107 - the bank's account identifier, not a secret
    **fields: Any,
) -> dict[str, Any]:
    return {
        "accountToken": account_token,
        "accountNumber": "12-3456-7890",
        "accountName": "Operating",
        "accountType": "BANK",
        "currency": "USD",
        **fields,
    }


async def post_feeds(
    client: httpx.AsyncClient, tenant: Tenant, *items: dict[str, Any]
) -> httpx.Response:
    return await client.post(FEEDS, headers=tenant.headers, json={"items": list(items)})


async def new_feed(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> str:
    answer = await post_feeds(client, tenant, feed_item(**fields))
    assert answer.status_code == 202, answer.text
    item = answer.json()["items"][0]
    assert item["status"] == "PENDING", item
    feed_id: str = item["id"]
    return feed_id


def today(sandbox: Sandbox, tenant: Tenant) -> date:
    return local_today(tenant.organisation, sandbox.clock.now())


def line(amount: str, indicator: str = "CREDIT", *, posted: date, **fields: Any) -> dict[str, Any]:
    return {
        "postedDate": posted.isoformat(),
        "amount": amount,
        "creditDebitIndicator": indicator,
        "description": "Card payment",
        **fields,
    }


def statement(
    feed_id: str,
    lines: list[dict[str, Any]],
    *,
    start: date,
    end: date | None = None,
    opening: str = "100.0000",
    closing: str | None = None,
) -> dict[str, Any]:
    """A statement whose end balance adds up, unless `closing` says otherwise."""
    moved = sum(
        Decimal(str(x["amount"])) * (1 if x["creditDebitIndicator"] == "CREDIT" else -1)
        for x in lines
    )
    total = Decimal(opening) + moved
    end_balance = {"amount": closing or str(abs(total)), "creditDebitIndicator": "CREDIT"}
    if closing is None and total < 0:
        end_balance["creditDebitIndicator"] = "DEBIT"
    return {
        "feedConnectionId": feed_id,
        "startDate": start.isoformat(),
        "endDate": (end or start).isoformat(),
        "startBalance": {"amount": opening, "creditDebitIndicator": "CREDIT"},
        "endBalance": end_balance,
        "statementLines": lines,
    }


async def post_statements(
    client: httpx.AsyncClient, tenant: Tenant, *statements: dict[str, Any]
) -> httpx.Response:
    return await client.post(STATEMENTS, headers=tenant.headers, json={"items": list(statements)})


def problem(answer: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["type"] == type_
    assert body["status"] == status
    return body


def rejection(answer: httpx.Response, type_: str, *, status: int = 400) -> dict[str, Any]:
    """The one REJECTED item of a feed-connection answer, its error of this type."""
    assert answer.status_code == status, answer.text
    [item] = answer.json()["items"]
    assert item["status"] == "REJECTED"
    assert item["error"]["type"] == type_, item
    error: dict[str, Any] = item["error"]
    return error


def same_app(sandbox: Sandbox, *organisations: Organisation) -> list[Tenant]:
    """One more app (financial institution), connected to each of these organisations."""
    app = identity.register_app(sandbox, "Another FI", ["http://fi.test/callback"])
    user = sandbox.user("user@example.com")
    tenant_ids = [o.tenant_id for o in organisations]
    grant = identity.consent(sandbox, app, user, tenant_ids, tuple(ALL_SCOPES.split()))
    tokens = identity.issue_tokens(sandbox, grant)
    return [Tenant(organisation=o, app=app, tokens=tokens) for o in organisations]


def bank_account(organisation: Organisation, number: str, currency: str | None) -> Account:
    account = Account(
        account_id=new_id(),
        name=f"Existing {number}",
        type="BANK",
        account_class="ASSET",
        currency_code=currency,
        bank_account_number=number,
        bank_account_type="BANK",
    )
    organisation.accounts[account.account_id] = account
    return account


# ----------------------------------------------------------------------------- feed connections


async def test_a_new_feed_creates_its_bank_account(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await post_feeds(client, tenant, feed_item("tok-9", country="US"))
    assert answer.status_code == 202
    [item] = answer.json()["items"]
    assert item == {"id": item["id"], "accountToken": "tok-9", "status": "PENDING"}

    got = await client.get(f"{FEEDS}/{item['id']}", headers=tenant.headers)
    assert got.status_code == 200
    feed = got.json()
    account = tenant.organisation.accounts[feed["accountId"]]
    assert (account.type, account.bank_account_type, account.status) == ("BANK", "BANK", "ACTIVE")
    assert (account.name, account.bank_account_number) == ("Operating", "12-3456-7890")
    assert account.currency_code == "USD"
    assert feed == {
        "id": item["id"],
        "accountToken": "tok-9",
        "accountType": "BANK",
        "accountNumber": "12-3456-7890",
        "accountName": "Operating",
        "accountId": account.account_id,
        "currency": "USD",
        "country": "US",
    }


async def test_a_card_feed_creates_a_credit_card_account(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant, accountType="CREDITCARD", accountNumber="4821")
    feed = (await client.get(f"{FEEDS}/{feed_id}", headers=tenant.headers)).json()
    assert tenant.organisation.accounts[feed["accountId"]].bank_account_type == "CREDITCARD"
    too_long = await post_feeds(
        client, tenant, feed_item("tok-2", accountType="CREDITCARD", accountNumber="48210")
    )
    error = rejection(too_long, "invalid-request")
    assert "'AccountNumber' exceeded the maximum length of 4." in error["detail"]


async def test_a_feed_links_the_bank_account_with_its_number_and_currency(
    client: httpx.AsyncClient, connect: Connect
) -> None:
    tenant = await connect(base_currency="USD", currencies=["EUR"])
    usd = bank_account(tenant.organisation, "12-3456-7890", None)  # base currency implied
    accounts = len(tenant.organisation.accounts)

    feed_id = await new_feed(client, tenant)
    feed = (await client.get(f"{FEEDS}/{feed_id}", headers=tenant.headers)).json()
    assert feed["accountId"] == usd.account_id
    assert len(tenant.organisation.accounts) == accounts

    # Same number in another currency is another account.
    eur_id = await new_feed(client, tenant, account_token="tok-eur", currency="EUR")
    eur = (await client.get(f"{FEEDS}/{eur_id}", headers=tenant.headers)).json()
    assert eur["accountId"] != usd.account_id
    assert tenant.organisation.accounts[eur["accountId"]].currency_code == "EUR"


async def test_a_bank_account_carries_one_feed(client: httpx.AsyncClient, tenant: Tenant) -> None:
    first = await new_feed(client, tenant, account_token="first")
    second = await new_feed(client, tenant, account_token="second")
    feeds = tenant.organisation.feed_connections
    assert feeds[first].account_id != feeds[second].account_id


async def test_a_feed_links_the_account_it_names(client: httpx.AsyncClient, tenant: Tenant) -> None:
    named = bank_account(tenant.organisation, "99-0000", "USD")
    item = {k: v for k, v in feed_item().items() if k not in {"accountNumber", "accountName"}}
    answer = await post_feeds(client, tenant, {**item, "accountId": named.account_id})
    assert answer.status_code == 202, answer.text
    feed_id = answer.json()["items"][0]["id"]
    feed = (await client.get(f"{FEEDS}/{feed_id}", headers=tenant.headers)).json()
    assert (feed["accountId"], feed["accountNumber"]) == (named.account_id, "99-0000")


@pytest.mark.parametrize(
    "trouble", ["unknown", "not a bank account", "archived", "currency", "fed"]
)
async def test_a_named_account_must_be_an_active_bank_account_in_the_currency(
    client: httpx.AsyncClient, tenant: Tenant, trouble: str
) -> None:
    organisation = tenant.organisation
    account = bank_account(organisation, "55-5555", "USD")
    if trouble == "unknown":
        account_id = new_id()
    elif trouble == "not a bank account":
        account_id = next(a.account_id for a in organisation.accounts.values() if a.code == "200")
    else:
        account_id = account.account_id
    if trouble == "archived":
        account.status = "ARCHIVED"
    if trouble == "currency":
        account.currency_code = "EUR"
    if trouble == "fed":
        await new_feed(client, tenant, account_token="first", accountNumber="55-5555")
    answer = await post_feeds(client, tenant, feed_item(accountId=account_id))
    rejection(answer, "account-not-valid")


async def test_a_token_connects_once_in_an_organisation(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await new_feed(client, tenant)
    again = await post_feeds(client, tenant, feed_item(accountNumber="other"))
    error = rejection(again, "feed-already-connected-in-current-organisation")
    assert error["status"] == 400

    # Per-item answers: the new one is connected, the repeated one refused, in one 202.
    mixed = await post_feeds(client, tenant, feed_item("tok-new"), feed_item())
    assert mixed.status_code == 202
    fresh, repeated = mixed.json()["items"]
    assert fresh["status"] == "PENDING"
    assert repeated["accountToken"] == "tok-1"
    assert repeated["error"]["type"] == "feed-already-connected-in-current-organisation"
    listed = (await client.get(FEEDS, headers=tenant.headers)).json()["items"]
    assert sorted(f["accountToken"] for f in listed) == ["tok-1", "tok-new"]


async def test_a_token_connects_in_one_organisation_of_its_institution(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    first = create_organisation(sandbox, OrganisationIn(name="First"))
    second = create_organisation(sandbox, OrganisationIn(name="Second"))
    here, there = same_app(sandbox, first, second)
    await new_feed(client, here, currency="USD")
    answer = await post_feeds(client, there, feed_item())
    rejection(answer, "feed-already-connected-in-different-organisation")
    # Tokens are the institution's own: another app may use the same one.
    [elsewhere] = same_app(sandbox, second)
    await new_feed(client, elsewhere)


async def test_a_foreign_currency_needs_multi_currency(
    client: httpx.AsyncClient, connect: Connect
) -> None:
    single = await connect(base_currency="USD", multi_currency=False)
    answer = await post_feeds(client, single, feed_item(currency="EUR"))
    rejection(answer, "invalid-organisation-multi-currency")
    assert not single.organisation.feed_connections

    multi = await connect(base_currency="USD", multi_currency=True)
    await new_feed(client, multi, currency="EUR")
    assert "EUR" in multi.organisation.currencies


async def test_only_an_active_organisation_takes_feeds(
    client: httpx.AsyncClient, connect: Connect
) -> None:
    suspended = await connect(status="SUSPENDED")
    rejection(await post_feeds(client, suspended, feed_item()), "invalid-organisation-bank-feeds")


@pytest.mark.parametrize(
    ("fields", "type_", "detail"),
    [
        (
            {"accountNumber": "1" * 41},
            "invalid-request",
            "For the request field 'AccountNumber' exceeded the maximum length of 40.",
        ),
        (
            {"accountToken": "t" * 51},
            "invalid-request",
            "For the request field 'AccountToken' exceeded the maximum length of 50.",
        ),
        (
            {"accountName": "n" * 31},
            "invalid-request",
            "For the request field 'AccountName' exceeded the maximum length of 30.",
        ),
        (
            {"accountToken": None},
            "invalid-request",
            "For the request field 'AccountToken' a value is required.",
        ),
        ({"accountType": "SAVINGS"}, "invalid-request", "'AccountType'"),
        ({"currency": "XXX"}, "invalid-request", "'Currency'"),
        ({"country": "ZZ"}, "invalid-country-specified", "'ZZ'"),
    ],
)
async def test_feed_fields_are_checked(
    client: httpx.AsyncClient,
    tenant: Tenant,
    fields: dict[str, Any],
    type_: str,
    detail: str,
) -> None:
    answer = await post_feeds(client, tenant, feed_item(**fields))
    assert detail in rejection(answer, type_)["detail"]
    assert not tenant.organisation.feed_connections


@pytest.mark.parametrize("body", [b"{not json", b'{"items": []}', b'{"items": [1]}', b"[]"])
async def test_a_malformed_body_is_an_invalid_request(
    client: httpx.AsyncClient, tenant: Tenant, body: bytes
) -> None:
    for path in (FEEDS, f"{FEEDS}/DeleteRequests", STATEMENTS):
        answer = await client.post(path, headers=tenant.headers, content=body)
        problem(answer, 400, "invalid-request")


async def test_feed_connections_come_in_pages(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    answer = await post_feeds(client, tenant, *(feed_item(f"tok-{n:02}") for n in range(12)))
    assert answer.status_code == 202
    [outsider] = same_app(sandbox, tenant.organisation)
    await new_feed(client, outsider, account_token="not-mine")

    first = await client.get(FEEDS, headers=tenant.headers)
    assert first.status_code == 202  # as the spec documents it
    assert first.json()["pagination"] == {
        "page": 1,
        "pageSize": 10,
        "pageCount": 2,
        "itemCount": 10,
    }
    tokens = [f["accountToken"] for f in first.json()["items"]]
    assert tokens == [f"tok-{n:02}" for n in range(10)]

    second = await client.get(FEEDS, headers=tenant.headers, params={"page": 2})
    assert [f["accountToken"] for f in second.json()["items"]] == ["tok-10", "tok-11"]
    third = await client.get(FEEDS, headers=tenant.headers, params={"pageSize": 5, "page": 3})
    assert third.json()["pagination"] == {"page": 3, "pageSize": 5, "pageCount": 3, "itemCount": 2}
    bogus = await client.get(FEEDS, headers=tenant.headers, params={"page": "x", "pageSize": -1})
    assert bogus.json()["pagination"]["page"] == 1
    assert bogus.json()["pagination"]["pageSize"] == 10


async def test_an_unknown_feed_connection_is_not_found(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    problem(
        await client.get(f"{FEEDS}/{new_id()}", headers=tenant.headers), 404, "bank-feed-not-found"
    )
    [outsider] = same_app(sandbox, tenant.organisation)
    theirs = await new_feed(client, outsider)
    answer = await client.get(f"{FEEDS}/{theirs}", headers=tenant.headers)
    problem(answer, 404, "bank-feed-not-found")


async def test_deleted_feed_connections_are_gone(client: httpx.AsyncClient, tenant: Tenant) -> None:
    by_id = await new_feed(client, tenant, account_token="a", accountNumber="1")
    by_token = await new_feed(client, tenant, account_token="b", accountNumber="2")
    kept = await new_feed(client, tenant, account_token="c", accountNumber="3")
    account_of_a = tenant.organisation.feed_connections[by_id].account_id

    answer = await client.post(
        f"{FEEDS}/DeleteRequests",
        headers=tenant.headers,
        json={"items": [{"id": by_id}, {"accountToken": "b"}, {"id": new_id()}]},
    )
    assert answer.status_code == 202
    deleted_a, deleted_b, unknown = answer.json()["items"]
    assert deleted_a == {"id": by_id, "status": "PENDING"}
    assert deleted_b == {"id": by_token, "accountToken": "b", "status": "PENDING"}
    assert unknown["status"] == "REJECTED"
    assert unknown["error"]["type"] == "feed-not-found-or-already-deleted"

    listed = (await client.get(FEEDS, headers=tenant.headers)).json()["items"]
    assert [f["id"] for f in listed] == [kept]
    problem(
        await client.get(f"{FEEDS}/{by_id}", headers=tenant.headers), 404, "bank-feed-not-found"
    )
    again = await client.post(
        f"{FEEDS}/DeleteRequests", headers=tenant.headers, json={"items": [{"id": by_id}]}
    )
    assert again.json()["items"][0]["error"]["type"] == "feed-not-found-or-already-deleted"

    # The token is free again, and the bank account is still there to link to.
    relinked = await new_feed(client, tenant, account_token="a", accountNumber="1")
    assert tenant.organisation.feed_connections[relinked].account_id == account_of_a


async def test_deleting_a_token_connected_elsewhere_says_so(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    first = create_organisation(sandbox, OrganisationIn(name="First"))
    second = create_organisation(sandbox, OrganisationIn(name="Second"))
    here, there = same_app(sandbox, first, second)
    await new_feed(client, there)
    answer = await client.post(
        f"{FEEDS}/DeleteRequests", headers=here.headers, json={"items": [{"accountToken": "tok-1"}]}
    )
    assert answer.status_code == 202
    [item] = answer.json()["items"]
    assert item["accountToken"] == "tok-1"
    assert item["error"]["type"] == "feed-connected-in-different-organisation"
    assert not any(f.deleted for f in second.feed_connections.values())


# ----------------------------------------------------------------------------- statements


async def test_a_statement_is_accepted_pending_and_then_delivered(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    lines = [
        line("50.00", posted=day, transactionId="t1", payeeName="Acme", reference="INV-1"),
        line("20.5", "DEBIT", posted=day, transactionId="t2", chequeNumber="021"),
    ]
    answer = await post_statements(client, tenant, statement(feed_id, lines, start=day))
    assert answer.status_code == 202, answer.text
    [item] = answer.json()["items"]
    assert item == {"id": item["id"], "feedConnectionId": feed_id, "status": "PENDING"}

    got = await client.get(f"{STATEMENTS}/{item['id']}", headers=tenant.headers)
    assert got.status_code == 200
    assert got.json() == {
        "id": item["id"],
        "feedConnectionId": feed_id,
        "status": "DELIVERED",
        "startDate": day.isoformat(),
        "endDate": day.isoformat(),
        "startBalance": {"amount": "100.0000", "creditDebitIndicator": "CREDIT"},
        "endBalance": {"amount": "129.5000", "creditDebitIndicator": "CREDIT"},
        "statementLineCount": "2",
    }
    stored = tenant.organisation.statements[item["id"]]
    assert [(x.transaction_id, x.amount) for x in stored.lines] == [
        ("t1", Decimal("50.0000")),
        ("t2", Decimal("20.5000")),
    ]
    assert stored.lines[0].payee_name == "Acme"


async def test_amounts_are_exact_decimals_whether_numbers_or_strings(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    lines = [line("0.1", posted=day, transactionId="a"), line("0.2", posted=day, transactionId="b")]
    sent = statement(feed_id, lines, start=day, opening="0", closing="0.3")
    # 0.1 + 0.2 is 0.30000000000000004 in floating point: only exact decimals balance this.
    # JSON numbers for 0.1, 0 and 0.3; the string "0.2" stays a string.
    body = json.dumps({"items": [sent]})
    for amount in ("0.1", "0", "0.3"):
        body = body.replace(f'"amount": "{amount}"', f'"amount": {amount}')
    assert '"amount": 0.1,' in body
    answer = await client.post(STATEMENTS, headers=tenant.headers, content=body)
    assert answer.status_code == 202, answer.text
    statement_id = answer.json()["items"][0]["id"]
    assert tenant.organisation.statements[statement_id].end_balance == Decimal("0.3")


async def test_balances_must_add_up_with_their_signs(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    lines = [line("20.00", "CREDIT", posted=day, transactionId="t1")]
    wrong = statement(feed_id, lines, start=day, closing="120.0001")
    body = problem(await post_statements(client, tenant, wrong), 422, "invalid-end-balance")
    assert body == {
        "type": "invalid-end-balance",
        "title": "Invalid End Balance",
        "status": 422,
        "detail": "End balance does not match start balance +/- statement line amounts.",
    }
    assert not tenant.organisation.statements

    # An overdrawn account: DEBIT 50 plus a credit of 20 ends DEBIT 30.
    overdrawn = statement(feed_id, lines, start=day)
    overdrawn["startBalance"] = {"amount": "50", "creditDebitIndicator": "DEBIT"}
    overdrawn["endBalance"] = {"amount": "30", "creditDebitIndicator": "DEBIT"}
    assert (await post_statements(client, tenant, overdrawn)).status_code == 202


async def test_a_body_over_three_million_bytes_is_refused_unread(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    padding = "x" * 2000  # the longest description Xero takes
    lines = [line("1", posted=day, transactionId=f"t{n}", description=padding) for n in range(1000)]
    body = json.dumps({"items": [statement(feed_id, lines, start=day)]}).encode()
    headers = {**tenant.headers, "Content-Type": "application/json"}

    limit = 3_000_000
    over = body + b" " * (limit + 1 - len(body))  # JSON whitespace: still the same statement
    answer = await client.post(STATEMENTS, headers=headers, content=over)
    assert problem(answer, 413, "invalid-request") == {
        "type": "invalid-request",
        "title": "Request too large",
        "status": 413,
        "detail": "Request size of 3000001 bytes exceeds the limit of 3000000 bytes.",
    }
    assert not tenant.organisation.statements

    at_limit = body + b" " * (limit - len(body))
    assert (await client.post(STATEMENTS, headers=headers, content=at_limit)).status_code == 202


async def test_a_statement_holds_at_most_a_thousand_lines(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    lines = [line("1", posted=day, transactionId=f"t{n}") for n in range(1001)]
    answer = await post_statements(client, tenant, statement(feed_id, lines, start=day))
    assert "StatementLines" in problem(answer, 400, "invalid-request")["detail"]


async def test_the_end_date_may_not_be_after_today_in_the_organisations_time_zone(
    client: httpx.AsyncClient, sandbox: Sandbox, connect: Connect
) -> None:
    # At 11:00 UTC it is already tomorrow at UTC+14 and still yesterday at UTC-12, so a
    # check against the UTC date fails one of the two halves below.
    advance_to_hour(sandbox, 11)
    utc_today = sandbox.clock.now().date()
    east = await connect(name="Kiritimati", timezone="LINEISLANDSSTANDARDTIME")
    west = await connect(name="Baker Island", timezone="DATELINESTANDARDTIME")
    east_feed, west_feed = await new_feed(client, east), await new_feed(client, west)

    tomorrow = utc_today + timedelta(days=1)
    lines = [line("5", posted=tomorrow, transactionId="e1")]
    accepted = await post_statements(client, east, statement(east_feed, lines, start=tomorrow))
    assert accepted.status_code == 202, accepted.text

    lines = [line("5", posted=utc_today, transactionId="w1")]
    refused = await post_statements(client, west, statement(west_feed, lines, start=utc_today))
    problem(refused, 422, "invalid-end-date")
    yesterday = utc_today - timedelta(days=1)
    lines = [line("5", posted=yesterday, transactionId="w1")]
    taken = await post_statements(client, west, statement(west_feed, lines, start=yesterday))
    assert taken.status_code == 202, taken.text


async def test_the_start_date_may_be_at_most_a_year_old(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    oldest = one_year_before(day)
    lines = [line("1", posted=oldest, transactionId="old")]
    too_old = statement(feed_id, lines, start=oldest - timedelta(days=1), end=day)
    problem(await post_statements(client, tenant, too_old), 422, "invalid-start-date")
    just = statement(feed_id, lines, start=oldest, end=day)
    assert (await post_statements(client, tenant, just)).status_code == 202


async def test_the_start_date_may_not_follow_the_end_date(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    backwards = statement(feed_id, [], start=day, end=day - timedelta(days=1))
    body = problem(
        await post_statements(client, tenant, backwards), 422, "invalid-start-and-end-date"
    )
    assert body["title"] == "Invalid Start and End Date"


async def test_lines_are_posted_within_the_statements_dates(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    early = [line("1", posted=day - timedelta(days=3), transactionId="x")]
    answer = await post_statements(
        client, tenant, statement(feed_id, early, start=day - timedelta(days=2), end=day)
    )
    assert "PostedDate" in problem(answer, 400, "invalid-request")["detail"]


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        ("-1.00", "negative"),
        ("0.00001", "4 decimal places"),
        ("1000000000000000", "decimal(19,4)"),
        ("NaN", "number"),
        ("ten", "number"),
        (True, "number"),
        (None, "required"),
    ],
)
async def test_line_amounts_are_unsigned_decimals_of_four_places(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant, amount: object, why: str
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    good = statement(feed_id, [line("1", posted=day, transactionId="a")], start=day)
    good["statementLines"][0]["amount"] = amount
    answer = await post_statements(client, tenant, good)
    detail = problem(answer, 400, "invalid-request")["detail"]
    assert "'StatementLine.Amount'" in detail
    assert why in detail


async def test_line_fields_are_checked(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    cheque = statement(feed_id, [line("1", posted=day, chequeNumber="1" * 21)], start=day)
    body = problem(await post_statements(client, tenant, cheque), 400, "invalid-request")
    # The spec's own example of this refusal.
    assert body["detail"] == (
        "For the request field 'StatementLine.ChequeNumber' exceeded the maximum length of 20."
    )
    no_sign = statement(feed_id, [line("1", posted=day)], start=day)
    del no_sign["statementLines"][0]["creditDebitIndicator"]
    no_sign["endBalance"]["amount"] = "100"
    answer = await post_statements(client, tenant, no_sign)
    assert "CreditDebitIndicator" in problem(answer, 400, "invalid-request")["detail"]


async def test_a_statement_seen_before_is_a_duplicate(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    sent = statement(feed_id, [line("10", posted=day, transactionId="t1")], start=day)
    first = await post_statements(client, tenant, sent)
    assert first.status_code == 202

    again = await post_statements(client, tenant, sent)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    [item] = again.json()["items"]
    assert item == {
        "id": item["id"],
        "feedConnectionId": feed_id,
        "status": "REJECTED",
        "errors": [
            {
                "type": "duplicate-statement",
                "title": "Duplicate Statement Received",
                "status": 409,
                "detail": "The received statement was marked as a duplicate.",
            }
        ],
    }
    listed = (await client.get(STATEMENTS, headers=tenant.headers)).json()["items"]
    assert [(s["status"], "errors" in s) for s in listed] == [
        ("DELIVERED", False),
        ("REJECTED", True),
    ]
    assert listed[1]["errors"] == item["errors"]
    assert listed[1]["statementLineCount"] == "1"


async def test_lines_seen_before_are_dropped_from_a_new_statement(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    one, two = line("10", posted=day, transactionId="t1"), line("5", posted=day, transactionId="t2")
    await post_statements(client, tenant, statement(feed_id, [one, two], start=day))

    three = line("7", "DEBIT", posted=day, transactionId="t3")
    answer = await post_statements(
        client, tenant, statement(feed_id, [two, three], start=day, opening="115")
    )
    assert answer.status_code == 202, answer.text
    statement_id = answer.json()["items"][0]["id"]
    got = (await client.get(f"{STATEMENTS}/{statement_id}", headers=tenant.headers)).json()
    assert got["statementLineCount"] == "1"
    # The balances stay as sent, though the kept lines no longer add up to them.
    assert got["startBalance"]["amount"] == "115.0000"
    assert got["endBalance"]["amount"] == "113.0000"
    kept = tenant.organisation.statements[statement_id].lines
    assert [x.transaction_id for x in kept] == ["t3"]

    # A transactionId counts once within a request too.
    twice = [line("1", posted=day, transactionId="t4"), line("1", posted=day, transactionId="t4")]
    answer = await post_statements(
        client, tenant, statement(feed_id, twice, start=day, opening="113")
    )
    assert answer.status_code == 202, answer.text
    assert len(tenant.organisation.statements[answer.json()["items"][0]["id"]].lines) == 1


async def test_lines_dropped_as_duplicates_are_named_to_the_admin_api_only(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    """What the chaos harness reads to tell whether a line was ever sent twice."""
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    one, two = line("10", posted=day, transactionId="t1"), line("5", posted=day, transactionId="t2")
    coffee = line("4.50", "DEBIT", posted=day, payeeName="Cafe", reference="r1")
    first = await post_statements(client, tenant, statement(feed_id, [one, two, coffee], start=day))
    assert first.status_code == 202, first.text

    three = line("7", "DEBIT", posted=day, transactionId="t3")
    sent = statement(feed_id, [two, three, coffee, three], start=day, opening="110.5")
    answer = await post_statements(client, tenant, sent)

    assert answer.status_code == 202, answer.text
    statement_id = answer.json()["items"][0]["id"]
    held = tenant.organisation.statements
    coffee_key = line_key(
        StatementLine(
            posted_date=day,
            amount=Decimal("4.5000"),
            credit_debit_indicator="DEBIT",
            description="Card payment",
            payee_name="Cafe",
            reference="r1",
        )
    )
    assert held[statement_id].duplicate_lines == ["t2", coffee_key, "t3"]
    assert [x.transaction_id for x in held[statement_id].lines] == ["t3"]
    assert held[first.json()["items"][0]["id"]].duplicate_lines == []
    # A statement of duplicates only is REJECTED with all its lines, and names none.
    again = await post_statements(client, tenant, statement(feed_id, [one], start=day))
    assert again.status_code == 409
    rejected = held[again.json()["items"][0]["id"]]
    assert (rejected.status, len(rejected.lines), rejected.duplicate_lines) == ("REJECTED", 1, [])

    holdings = (await client.get(f"/admin/organisations/{tenant.tenant_id}")).json()
    shown = {s["id"]: s["duplicate_lines"] for s in holdings["statements"]}
    assert shown[statement_id] == ["t2", coffee_key, "t3"]
    # Xero's own answers do not have it (and still match its OpenAPI document).
    got = (await client.get(f"{STATEMENTS}/{statement_id}", headers=tenant.headers)).json()
    listed = (await client.get(STATEMENTS, headers=tenant.headers)).json()["items"]
    for document in (got, *listed):
        assert not {k for k in document if "duplicate" in k.lower()}, document


async def test_lines_without_transaction_ids_are_compared_by_content(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    coffee = line("4.50", "DEBIT", posted=day, payeeName="Cafe", reference="r1")
    # Two identical coffees in one statement are two coffees.
    first = await post_statements(client, tenant, statement(feed_id, [coffee, coffee], start=day))
    assert first.status_code == 202
    assert tenant.organisation.statements[first.json()["items"][0]["id"]].lines[1:]

    same = await post_statements(
        client, tenant, statement(feed_id, [{**coffee, "amount": "4.5000"}], start=day)
    )
    assert same.status_code == 409
    other = await post_statements(
        client, tenant, statement(feed_id, [{**coffee, "reference": "r2"}], start=day)
    )
    assert other.status_code == 202


async def test_a_request_is_taken_whole_or_not_at_all(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    first = await new_feed(client, tenant, account_token="a", accountNumber="1")
    second = await new_feed(client, tenant, account_token="b", accountNumber="2")
    day = today(sandbox, tenant)
    good = statement(first, [line("1", posted=day, transactionId="g")], start=day)
    bad = statement(second, [line("1", posted=day, transactionId="b")], start=day, closing="1")
    problem(await post_statements(client, tenant, good, bad), 422, "invalid-end-balance")
    assert not tenant.organisation.statements

    assert (await post_statements(client, tenant, good)).status_code == 202
    fresh = statement(second, [line("1", posted=day, transactionId="f")], start=day)
    answer = await post_statements(client, tenant, good, fresh)
    assert answer.status_code == 409
    assert [i["feedConnectionId"] for i in answer.json()["items"]] == [first]
    statuses = [(s.feed_connection_id, s.status) for s in tenant.organisation.statements.values()]
    assert statuses == [(first, "DELIVERED"), (first, "REJECTED")]


@pytest.mark.parametrize("trouble", ["unknown", "deleted", "another app", "another organisation"])
async def test_statements_go_to_this_apps_live_feeds_only(
    client: httpx.AsyncClient, sandbox: Sandbox, connect: Connect, tenant: Tenant, trouble: str
) -> None:
    feed_id = await new_feed(client, tenant)
    if trouble == "unknown":
        feed_id = new_id()
    elif trouble == "deleted":
        deleted = await client.post(
            f"{FEEDS}/DeleteRequests", headers=tenant.headers, json={"items": [{"id": feed_id}]}
        )
        assert deleted.json()["items"][0]["status"] == "PENDING"
    elif trouble == "another app":
        [outsider] = same_app(sandbox, tenant.organisation)
        feed_id = await new_feed(client, outsider, account_token="theirs")
    else:
        feed_id = await new_feed(client, await connect(name="Elsewhere"), account_token="theirs")
    day = today(sandbox, tenant)
    sent = statement(feed_id, [line("1", posted=day, transactionId="t")], start=day)
    problem(await post_statements(client, tenant, sent), 403, "invalid-feed-connection")


@pytest.mark.parametrize("trouble", ["ARCHIVED", "DELETED", "gone"])
async def test_a_feed_whose_account_is_archived_or_deleted_takes_no_statements(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant, trouble: str
) -> None:
    feed_id = await new_feed(client, tenant)
    account_id = tenant.organisation.feed_connections[feed_id].account_id
    if trouble == "gone":
        del tenant.organisation.accounts[account_id]
    else:
        tenant.organisation.accounts[account_id].status = trouble  # type: ignore[assignment]
    day = today(sandbox, tenant)
    sent = statement(feed_id, [line("1", posted=day, transactionId="t")], start=day)
    problem(await post_statements(client, tenant, sent), 403, "invalid-feed-connection")


async def test_a_feed_whose_account_is_restored_takes_statements_again(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    """The Xero user archives the feed's bank account, then restores it (admin API)."""
    feed_id = await new_feed(client, tenant)
    account_id = tenant.organisation.feed_connections[feed_id].account_id
    account = f"/admin/organisations/{tenant.tenant_id}/accounts/{account_id}"
    assert (await client.post(f"{account}/archive")).json()["status"] == "ARCHIVED"
    day = today(sandbox, tenant)
    sent = statement(feed_id, [line("1", posted=day, transactionId="t")], start=day)
    problem(await post_statements(client, tenant, sent), 403, "invalid-feed-connection")
    assert tenant.organisation.statements == {}

    restored = await client.post(f"{account}/restore")

    assert (restored.status_code, restored.json()["status"]) == (200, "ACTIVE")
    answer = await post_statements(client, tenant, sent)
    assert answer.status_code == 202, answer.text
    [kept] = tenant.organisation.statements.values()
    assert (kept.status, [x.transaction_id for x in kept.lines]) == ("DELIVERED", ["t"])


async def test_statements_come_in_pages(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    feed_id = await new_feed(client, tenant)
    day = today(sandbox, tenant)
    sent = [
        statement(feed_id, [line("1", posted=day, transactionId=f"t{n}")], start=day)
        for n in range(12)
    ]
    answer = await post_statements(client, tenant, *sent)
    ids = [item["id"] for item in answer.json()["items"]]
    [outsider] = same_app(sandbox, tenant.organisation)
    theirs = await new_feed(client, outsider, account_token="theirs")
    await post_statements(client, outsider, statement(theirs, [], start=day))

    first = await client.get(STATEMENTS, headers=tenant.headers)
    assert first.status_code == 200
    assert first.json()["pagination"] == {
        "page": 1,
        "pageSize": 10,
        "pageCount": 2,
        "itemCount": 10,
    }
    assert [s["id"] for s in first.json()["items"]] == ids[:10]
    last = await client.get(STATEMENTS, headers=tenant.headers, params={"pagesize": 5, "page": 3})
    assert last.json()["pagination"] == {"page": 3, "pageSize": 5, "pageCount": 3, "itemCount": 2}
    assert [s["id"] for s in last.json()["items"]] == ids[10:]
    capped = await client.get(STATEMENTS, headers=tenant.headers, params={"pageSize": 1000})
    assert capped.json()["pagination"]["pageSize"] == 100


async def test_an_unknown_statement_is_not_found(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    answer = await client.get(f"{STATEMENTS}/{new_id()}", headers=tenant.headers)
    problem(answer, 404, "statement-not-found")
    [outsider] = same_app(sandbox, tenant.organisation)
    theirs = await new_feed(client, outsider)
    day = today(sandbox, tenant)
    sent = await post_statements(client, outsider, statement(theirs, [], start=day))
    statement_id = sent.json()["items"][0]["id"]
    answer = await client.get(f"{STATEMENTS}/{statement_id}", headers=tenant.headers)
    problem(answer, 404, "statement-not-found")


# ----------------------------------------------------------------------------- the contract


async def test_answers_follow_xeros_bank_feeds_document(
    client: httpx.AsyncClient, sandbox: Sandbox, tenant: Tenant
) -> None:
    """Every success and item-shaped answer against xero_bankfeeds.yaml, strictly. Money and
    statementLineCount are strings, as the document's examples show them, hence
    `lenient_numbers`."""
    specs = xero_specs_or_skip()
    seen: list[tuple[str, str, httpx.Response, Any]] = []

    async def call(method: str, path: str, body: Any = None) -> httpx.Response:
        if body is not None:
            specs.validate_request_body(method, path, body, lenient_numbers=True)
        answer = await client.request(method, path, headers=tenant.headers, json=body)
        seen.append((method, path, answer, body))
        return answer

    created = await call("POST", FEEDS, {"items": [feed_item(country="US")]})
    feed_id = created.json()["items"][0]["id"]
    await call("POST", FEEDS, {"items": [feed_item()]})  # 400, items REJECTED
    await call("GET", FEEDS)
    await call("GET", f"{FEEDS}/{feed_id}")
    day = today(sandbox, tenant)
    sent = {"items": [statement(feed_id, [line("1", posted=day, transactionId="t")], start=day)]}
    posted = await call("POST", STATEMENTS, sent)
    await call("POST", STATEMENTS, sent)  # 409
    await call("GET", STATEMENTS)
    await call("GET", f"{STATEMENTS}/{posted.json()['items'][0]['id']}")
    await call("POST", f"{FEEDS}/DeleteRequests", {"items": [{"id": feed_id}, {"id": new_id()}]})
    await call("POST", STATEMENTS, sent)  # 403, the feed is gone

    statuses = [answer.status_code for _, _, answer, _ in seen]
    assert statuses == [202, 400, 202, 200, 202, 409, 200, 200, 202, 403]
    for method, path, answer, _ in seen:
        specs.validate_response(
            method, path, answer.status_code, answer.json(), lenient_numbers=True
        )
