"""Xero's Bank Feeds rules: which feeds an app may connect, and which statements Xero takes.

The app is a financial institution (FI); a feed connection ties one of its accounts (its
`accountToken`, unique per FI) to one bank account of one Xero organisation. The routes in
`api/bankfeeds.py` read the requests (field formats and lengths); this module decides.

Feed connections, each request item on its own:
- only an ACTIVE organisation takes feeds (`invalid-organisation-bank-feeds`);
- a token with a live feed here: `feed-already-connected-in-current-organisation`; in another
  organisation: `feed-already-connected-in-different-organisation`;
- a currency other than the base currency needs multi-currency
  (`invalid-organisation-multi-currency`);
- `accountId` must name an ACTIVE bank account in the feed's currency without a live feed
  (`account-not-valid`); without it the feed links to the ACTIVE bank account with the same
  number and currency, or else a new bank account is created (name, number, currency);
- a deleted feed is gone: not listed, not found, its token free again.

Statements: every statement of a request is judged before anything is kept, and the first
refusal answers for the whole request:
- the feed must be live, this app's, and its account ACTIVE (`invalid-feed-connection`);
- startDate ≤ endDate (`invalid-start-and-end-date`); startDate at most one year before today
  (`invalid-start-date`); endDate not after today (`invalid-end-date`), where today is the date
  in the organisation's time zone;
- every line posted within the statement's dates (`invalid-request`);
- start balance + lines = end balance, each signed by its indicator (`invalid-end-balance`);
- a line already delivered through the feed (same transactionId; without one, the same date,
  amount, indicator, description, payee and reference) is dropped, and the statement kept
  names it in `duplicate_lines` (for tests and the admin API, not in Xero's answers); a
  statement all of whose lines were delivered before is a `duplicate-statement`, which
  refuses the request (409).
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from xero_sandbox.errors import XeroError, bankfeeds_problem
from xero_sandbox.organisations import local_today
from xero_sandbox.state import (
    Account,
    FeedConnection,
    Organisation,
    Sandbox,
    Statement,
    StatementLine,
    new_id,
)

MAX_BODY_BYTES = 3_000_000
MAX_STATEMENT_LINES = 1_000

# ----------------------------------------------------------------------------- refusals

#: Xero's problem types as the sandbox answers them: (status, title). "spec": status and title
#: come from an example in xero_bankfeeds.yaml; "docs": from an example in Xero's Bank Feeds
#: documentation. The others follow that pattern; Xero does not publish their exact titles.
PROBLEMS: Mapping[str, tuple[int, str]] = {
    "invalid-request": (400, "Invalid Request"),  # spec
    "invalid-feed-connection": (403, "Invalid Feed Connection"),  # status: spec
    "duplicate-statement": (409, "Duplicate Statement Received"),  # spec
    "invalid-end-balance": (422, "Invalid End Balance"),  # spec
    "invalid-start-and-end-date": (422, "Invalid Start and End Date"),  # docs
    "invalid-start-date": (422, "Invalid Start Date"),
    "invalid-end-date": (422, "Invalid End Date"),
    "statement-not-found": (404, "Statement Not Found"),
    "bank-feed-not-found": (404, "Bank Feed Not Found"),
    "feed-connected-in-different-organisation": (
        400,
        "Feed connected in different organisation",  # spec
    ),
    "feed-already-connected-in-current-organisation": (
        400,
        "Feed already connected in current organisation",
    ),
    "feed-already-connected-in-different-organisation": (
        400,
        "Feed already connected in different organisation",
    ),
    "feed-not-found-or-already-deleted": (400, "Feed not found or already deleted"),
    "invalid-organisation-bank-feeds": (400, "Invalid organisation for bank feeds"),
    "invalid-organisation-multi-currency": (400, "Invalid organisation multi-currency"),
    "invalid-country-specified": (400, "Invalid country specified"),
    "account-not-valid": (400, "Account not valid"),
}


def refusal(type_: str, detail: str) -> XeroError:
    status, title = PROBLEMS[type_]
    return bankfeeds_problem(status, type_, title, detail)


def invalid_request(detail: str) -> XeroError:
    return refusal("invalid-request", detail)


def problem_of(error: XeroError) -> dict[str, Any]:
    """The problem document of a refusal, to stand as one item's `error`."""
    if not isinstance(error.body, dict):  # pragma: no cover - bank-feed refusals are documents
        raise TypeError("not a bank-feeds problem")
    return error.body


def request_too_large(size: int) -> XeroError:
    """Xero's wording, from the spec's 413 example."""
    detail = f"Request size of {size} bytes exceeds the limit of {MAX_BODY_BYTES} bytes."
    return bankfeeds_problem(413, "invalid-request", "Request too large", detail)


def duplicate_statement() -> XeroError:
    """Xero's wording, from the spec's 409 example."""
    return refusal("duplicate-statement", "The received statement was marked as a duplicate.")


def _duplicate() -> dict[str, Any]:
    return problem_of(duplicate_statement())


def feed_not_found(feed_id: str) -> XeroError:
    return refusal("bank-feed-not-found", f"The feed connection '{feed_id}' was not found.")


def statement_not_found(statement_id: str) -> XeroError:
    return refusal("statement-not-found", f"The statement '{statement_id}' was not found.")


# ----------------------------------------------------------------------------- feed connections


@dataclass(frozen=True)
class FeedRequest:
    """One item of `POST /FeedConnections`, its fields read."""

    account_token: str
    account_type: str
    currency: str
    account_number: str | None
    account_name: str | None
    account_id: str | None
    country: str | None


def live_feeds(organisation: Organisation, client_id: str) -> list[FeedConnection]:
    """This app's feed connections in this organisation, oldest first; deleted ones are gone."""
    return [
        feed
        for feed in organisation.feed_connections.values()
        if feed.client_id == client_id and not feed.deleted
    ]


def find_feed(organisation: Organisation, client_id: str, feed_id: str) -> FeedConnection | None:
    feed = organisation.feed_connections.get(feed_id.lower())
    if feed is None or feed.deleted or feed.client_id != client_id:
        return None
    return feed


def connect_feed(
    sandbox: Sandbox, organisation: Organisation, client_id: str, request: FeedRequest
) -> FeedConnection:
    """A new feed connection for this app, linked to an existing or a new bank account."""
    _check_takes_bank_feeds(organisation)
    _check_token_is_free(sandbox, organisation, client_id, request.account_token)
    _check_currency(organisation, request.currency)
    account = _account_for(sandbox, organisation, request)
    if request.currency not in organisation.currencies:
        # A multi-currency organisation gains the currency with its first account in it.
        organisation.currencies.append(request.currency)
    feed = FeedConnection(
        id=new_id(),
        account_token=request.account_token,
        account_id=account.account_id,
        account_type=request.account_type,
        account_number=request.account_number or account.bank_account_number,
        account_name=request.account_name or account.name,
        currency=request.currency,
        country=request.country,
        created_at=sandbox.clock.now(),
        client_id=client_id,
    )
    organisation.feed_connections[feed.id] = feed
    return feed


def delete_feed(
    sandbox: Sandbox,
    organisation: Organisation,
    client_id: str,
    *,
    feed_id: str | None,
    token: str | None,
) -> FeedConnection:
    """One item of `POST /FeedConnections/DeleteRequests`, by `id` or else by `accountToken`."""
    live = live_feeds(organisation, client_id)
    if feed_id is not None:
        feed = next((f for f in live if f.id == feed_id.lower()), None)
    else:
        feed = next((f for f in live if f.account_token == token), None)
    if feed is None:
        if token is not None and _connected_elsewhere(sandbox, organisation, client_id, token):
            raise refusal(  # Xero's wording, from the spec's DeleteRequests example
                "feed-connected-in-different-organisation",
                "The AccountToken is connected to another Xero Bank Account associated with "
                "this bank. This Xero Bank Account belongs to a different Xero Organisation.",
            )
        raise refusal(
            "feed-not-found-or-already-deleted",
            "The feed connection was not found, or it has already been deleted.",
        )
    feed.deleted = True
    return feed


def _check_takes_bank_feeds(organisation: Organisation) -> None:
    if organisation.status != "ACTIVE":
        raise refusal(
            "invalid-organisation-bank-feeds",
            f"The organisation is {organisation.status} and cannot receive bank feeds.",
        )


def _check_token_is_free(
    sandbox: Sandbox, organisation: Organisation, client_id: str, token: str
) -> None:
    if any(feed.account_token == token for feed in live_feeds(organisation, client_id)):
        raise refusal(
            "feed-already-connected-in-current-organisation",
            "The AccountToken is already connected to a Xero Bank Account in this Xero "
            "Organisation.",
        )
    if _connected_elsewhere(sandbox, organisation, client_id, token):
        raise refusal(
            "feed-already-connected-in-different-organisation",
            "The AccountToken is already connected to a Xero Bank Account in a different "
            "Xero Organisation.",
        )


def _connected_elsewhere(
    sandbox: Sandbox, organisation: Organisation, client_id: str, token: str
) -> bool:
    """Whether this app's token has a live feed in another organisation: a token is unique
    per financial institution, not per organisation."""
    return any(
        feed.account_token == token
        for other in sandbox.organisations.values()
        if other is not organisation
        for feed in live_feeds(other, client_id)
    )


def _check_currency(organisation: Organisation, currency: str) -> None:
    if currency != organisation.base_currency and not organisation.multi_currency:
        raise refusal(
            "invalid-organisation-multi-currency",
            f"The organisation's base currency is {organisation.base_currency} and its plan "
            f"has no multi-currency, so it cannot hold a {currency} bank account.",
        )


def _account_for(sandbox: Sandbox, organisation: Organisation, request: FeedRequest) -> Account:
    # A bank account carries one feed at a time.
    fed = {feed.account_id for feed in organisation.feed_connections.values() if not feed.deleted}
    if request.account_id is not None:
        account = organisation.accounts.get(request.account_id.lower())
        if (
            account is None
            or account.account_id in fed
            or not _holds(organisation, account, request)
        ):
            raise refusal(
                "account-not-valid",
                f"The AccountId '{request.account_id}' is not an active {request.currency} "
                "bank account of this organisation without a bank feed.",
            )
        return account
    for account in organisation.accounts.values():
        if (
            account.account_id not in fed
            and account.bank_account_number == request.account_number
            and _holds(organisation, account, request)
        ):
            return account
    return _new_bank_account(sandbox, organisation, request)


def _holds(organisation: Organisation, account: Account, request: FeedRequest) -> bool:
    """Whether the account is an ACTIVE bank account in the feed's currency."""
    held = account.currency_code or organisation.base_currency
    return account.type == "BANK" and account.status == "ACTIVE" and held == request.currency


def _new_bank_account(
    sandbox: Sandbox, organisation: Organisation, request: FeedRequest
) -> Account:
    if request.account_name is None:
        raise invalid_request("For the request field 'AccountName' a value is required.")
    account = Account(
        account_id=new_id(),
        name=request.account_name,
        type="BANK",
        account_class="ASSET",
        code=None,
        currency_code=request.currency,
        bank_account_number=request.account_number,
        # Xero's BankAccountType tells card accounts apart (BANK, CREDITCARD, PAYPAL).
        bank_account_type=request.account_type,
        updated_at=sandbox.clock.now(),
    )
    organisation.accounts[account.account_id] = account
    return account


# ----------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Balance:
    amount: Decimal
    """Unsigned, as Xero takes it; `indicator` gives the sign."""
    indicator: str

    @property
    def signed(self) -> Decimal:
        return self.amount if self.indicator == "CREDIT" else -self.amount


@dataclass(frozen=True)
class StatementIn:
    """One item of `POST /Statements`, its fields read."""

    feed_connection_id: str
    start_date: date
    end_date: date
    start_balance: Balance
    end_balance: Balance
    lines: tuple[StatementLine, ...]


@dataclass(frozen=True)
class Receipt:
    """What became of a `POST /Statements`: the statements kept, and whether they are the
    duplicates that refuse the request (409) or the delivered ones (202)."""

    statements: list[Statement]
    duplicates: bool


def one_year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def receive_statements(
    sandbox: Sandbox, organisation: Organisation, client_id: str, statements: list[StatementIn]
) -> Receipt:
    """Judge the request's statements, then keep them: all delivered, or the duplicates."""
    now = sandbox.clock.now()
    today = local_today(organisation, now)
    feeds = [check_statement(organisation, client_id, today, s) for s in statements]
    sorted_lines = _sort_lines(statements, feeds)
    rejected = [
        _stored(s, feed, now, status="REJECTED", lines=list(s.lines), errors=[_duplicate()])
        for s, feed, (new, _) in zip(statements, feeds, sorted_lines, strict=True)
        if s.lines and not new
    ]
    # Nothing else of a refused request is kept; its duplicates stay listed, REJECTED.
    kept = rejected or [
        _stored(s, feed, now, status="DELIVERED", lines=new, errors=[], duplicates=dropped)
        for s, feed, (new, dropped) in zip(statements, feeds, sorted_lines, strict=True)
    ]
    for statement in kept:
        organisation.statements[statement.id] = statement
    if not rejected:
        for feed, (new, _) in zip(feeds, sorted_lines, strict=True):
            feed.delivered_lines.update(line_key(line) for line in new)
    return Receipt(kept, duplicates=bool(rejected))


def check_statement(
    organisation: Organisation, client_id: str, today: date, statement: StatementIn
) -> FeedConnection:
    """The statement's feed, or the refusal Xero gives the statement."""
    feed = _feed_for_statement(organisation, client_id, statement.feed_connection_id)
    start, end = statement.start_date, statement.end_date
    if start > end:
        raise refusal(  # Xero's wording, from its documentation's GET /Statements example
            "invalid-start-and-end-date",
            f"The end date {end} must be later than the start date {start}.",
        )
    if start < one_year_before(today):
        raise refusal(
            "invalid-start-date",
            f"The start date {start} is more than one year before today ({today}).",
        )
    if end > today:
        raise refusal(
            "invalid-end-date",
            f"The end date {end} is in the future: today is {today} in the organisation's "
            "time zone.",
        )
    for line in statement.lines:
        if not start <= line.posted_date <= end:
            raise invalid_request(
                f"For the request field 'StatementLine.PostedDate' the date {line.posted_date} "
                f"is outside the statement's dates {start} to {end}."
            )
    _check_end_balance(statement)
    return feed


def _feed_for_statement(organisation: Organisation, client_id: str, feed_id: str) -> FeedConnection:
    feed = find_feed(organisation, client_id, feed_id)
    account = organisation.accounts.get(feed.account_id) if feed is not None else None
    if feed is None or account is None or account.status != "ACTIVE":
        raise refusal(
            "invalid-feed-connection",
            f"The feed connection '{feed_id}' is not valid for this organisation: it is "
            "unknown or deleted, or its bank account is archived or deleted.",
        )
    return feed


def _check_end_balance(statement: StatementIn) -> None:
    moved = sum(
        (line.amount if line.credit_debit_indicator == "CREDIT" else -line.amount)
        for line in statement.lines
    )
    if statement.start_balance.signed + moved != statement.end_balance.signed:
        raise refusal(  # Xero's wording, from the spec's 422 example
            "invalid-end-balance",
            "End balance does not match start balance +/- statement line amounts.",
        )


def line_key(line: StatementLine) -> str:
    """What makes two lines of one feed the same line to Xero's duplicate detection."""
    if line.transaction_id is not None:
        return "transactionId:" + line.transaction_id
    content = [
        line.posted_date.isoformat(),
        f"{line.amount:f}",
        line.credit_debit_indicator,
        line.description or "",
        line.payee_name or "",
        line.reference or "",
    ]
    return "content:" + json.dumps(content)


def _sort_lines(
    statements: Sequence[StatementIn], feeds: Sequence[FeedConnection]
) -> list[tuple[list[StatementLine], list[str]]]:
    """Each statement's lines that were not delivered before, and the ones dropped as
    duplicates (by transactionId, or by key when they have none). A transactionId also
    counts once within the request; identical lines without one are distinct (two
    coffees)."""
    sent_ids: dict[str, set[str]] = {}
    sorted_lines = []
    for statement, feed in zip(statements, feeds, strict=True):
        in_request = sent_ids.setdefault(feed.id, set())
        new: list[StatementLine] = []
        dropped: list[str] = []
        for line in statement.lines:
            key = line_key(line)
            if key in feed.delivered_lines or key in in_request:
                dropped.append(line.transaction_id if line.transaction_id is not None else key)
                continue
            if line.transaction_id is not None:
                in_request.add(key)
            new.append(line)
        sorted_lines.append((new, dropped))
    return sorted_lines


def _stored(
    statement: StatementIn,
    feed: FeedConnection,
    now: datetime,
    *,
    status: str,
    lines: list[StatementLine],
    errors: list[dict[str, Any]],
    duplicates: list[str] | None = None,
) -> Statement:
    return Statement(
        id=new_id(),
        feed_connection_id=feed.id,
        status=status,
        start_date=statement.start_date,
        end_date=statement.end_date,
        start_balance=statement.start_balance.amount,
        start_indicator=statement.start_balance.indicator,
        end_balance=statement.end_balance.amount,
        end_indicator=statement.end_balance.indicator,
        lines=lines,
        received_at=now,
        errors=errors,
        duplicate_lines=list(duplicates or []),
    )


def statements_of(organisation: Organisation, client_id: str) -> list[Statement]:
    """The statements this app sent to this organisation, oldest first."""
    mine = {f.id for f in organisation.feed_connections.values() if f.client_id == client_id}
    return [s for s in organisation.statements.values() if s.feed_connection_id in mine]
