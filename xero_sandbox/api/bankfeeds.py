"""The Bank Feeds API (`/bankfeeds.xro/1.0/…`): feed connections and statements.

These routes read Xero's request shapes and write its answers, as `xero_bankfeeds.yaml`
gives them; `xero_sandbox.bankfeeds` keeps the rules.
- `POST /FeedConnections`: 202 with one item per request item, PENDING or REJECTED with its
  `error`; 400 with the same items when every one was refused (the spec's 400 example).
- `GET /FeedConnections` answers 202, the one success status the spec documents for it;
  `GET /FeedConnections/{id}` 200, or 404 `bank-feed-not-found`.
- `POST /FeedConnections/DeleteRequests`: always 202 with per-item PENDING/REJECTED (the spec's
  example mixes both); only a malformed body is a 400.
- `POST /Statements`: a body over 3,000,000 bytes is refused unread (413); 202 with each
  statement PENDING (Xero delivers asynchronously; the sandbox at once, so a GET shows
  DELIVERED); 409 with the duplicates REJECTED; else one problem document.
- Money may come as a JSON number or a string ("100.0000"), and is read as an exact Decimal.
  Answers carry money as Xero's examples do, a string with four decimals, and
  `statementLineCount` as a string ("1"), though the schema says number and integer.
- Field refusals follow the spec's wording, "For the request field 'X' exceeded the maximum
  length of N."; the other field messages follow its pattern.
"""

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from xero_sandbox import bankfeeds, exact_json
from xero_sandbox.api.deps import CallDep, SandboxDep
from xero_sandbox.api.paging import page_of
from xero_sandbox.bankfeeds import Balance, FeedRequest, StatementIn, invalid_request
from xero_sandbox.errors import XeroError, bankfeeds_items
from xero_sandbox.gateway import CallContext
from xero_sandbox.state import FeedConnection, Sandbox, Statement, StatementLine

router = APIRouter(prefix="/bankfeeds.xro/1.0", tags=["bank feeds"])

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
FOUR_PLACES = Decimal("0.0001")
MONEY_LIMIT = Decimal(10) ** 15
"""Xero's amounts are decimal(19,4): fifteen digits before the point."""
INDICATORS = ("CREDIT", "DEBIT")

#: The spec's `CurrencyCode` enum: Xero's list, not today's ISO 4217 one.
XERO_CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GGP GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS IMP INR IQD IRR ISK JEP
    JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK
    MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG
    QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLL SOS SPL SRD STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TVD TWD TZS UAH UGX USD UYU UZS VEF VND VUV WST XAF XCD XDR XOF XPF YER ZAR
    ZMW ZMK ZWD""".split()  # noqa: SIM905 - 163 codes read better as text than as a literal
)

#: The spec's `CountryCode` enum.
XERO_COUNTRIES = frozenset(
    """AD AE AF AG AI AL AM AN AO AQ AR AS AT AU AW AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BR
    BS BT BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC
    EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GG GH GI GL GM GN GQ GR GT GU GW GY HK HN HR
    HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI
    LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MR MS MT MU MV MW MX MY MZ NA NC
    NE NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA
    SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TG TH TJ TK TL TM TN TO TR
    TT TV TW TZ UA UG US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW""".split()  # noqa: SIM905
)

T = TypeVar("T")


# ----------------------------------------------------------------------------- feed connections


@router.post("/feedconnections")
async def create_feed_connections(
    request: Request, call: CallDep, sandbox: SandboxDep
) -> JSONResponse:
    items = _items(await request.body())
    answers = [_connect(sandbox, call, item) for item in items]
    accepted = any(answer["status"] == "PENDING" for answer in answers)
    return JSONResponse({"items": answers}, 202 if accepted else 400)


@router.get("/feedconnections")
async def list_feed_connections(request: Request, call: CallDep) -> JSONResponse:
    feeds = bankfeeds.live_feeds(call.organisation, call.caller.app.client_id)
    page, pagination = _page(request, feeds)
    return JSONResponse({"pagination": pagination, "items": [_feed(f) for f in page]}, 202)


@router.get("/feedconnections/{feed_id}")
async def get_feed_connection(feed_id: str, call: CallDep) -> JSONResponse:
    feed = bankfeeds.find_feed(call.organisation, call.caller.app.client_id, feed_id)
    if feed is None:
        raise bankfeeds.feed_not_found(feed_id)
    return JSONResponse(_feed(feed))


@router.post("/feedconnections/deleterequests")
async def delete_feed_connections(
    request: Request, call: CallDep, sandbox: SandboxDep
) -> JSONResponse:
    items = _items(await request.body())
    return JSONResponse({"items": [_delete(sandbox, call, item) for item in items]}, 202)


def _connect(sandbox: Sandbox, call: CallContext, item: dict[str, Any]) -> dict[str, Any]:
    try:
        feed = bankfeeds.connect_feed(
            sandbox, call.organisation, call.caller.app.client_id, _feed_request(item)
        )
    except XeroError as refused:
        return _rejected(item, "accountToken", refused)
    return {"id": feed.id, "accountToken": feed.account_token, "status": "PENDING"}


def _delete(sandbox: Sandbox, call: CallContext, item: dict[str, Any]) -> dict[str, Any]:
    try:
        feed_id, token = _text(item, "id", "Id"), _text(item, "accountToken", "AccountToken")
        if feed_id is None and token is None:
            _required("Id")
        feed = bankfeeds.delete_feed(
            sandbox, call.organisation, call.caller.app.client_id, feed_id=feed_id, token=token
        )
    except XeroError as refused:
        return _rejected(item, "id" if "id" in item else "accountToken", refused)
    answer = {"id": feed.id, "status": "PENDING"}
    return {**answer, "accountToken": feed.account_token} if "accountToken" in item else answer


def _rejected(item: dict[str, Any], key: str, refused: XeroError) -> dict[str, Any]:
    """A refused item: what named it (when a string), REJECTED, and Xero's problem."""
    named = {key: item[key]} if isinstance(item.get(key), str) else {}
    return {**named, "status": "REJECTED", "error": bankfeeds.problem_of(refused)}


def _feed_request(item: Mapping[str, Any]) -> FeedRequest:
    token = _required_text(item, "accountToken", "AccountToken", 50)
    account_type = _choice(item, "accountType", "AccountType", ("BANK", "CREDITCARD"))
    account_id = _text(item, "accountId", "AccountId")
    # A card feed gives only the number's last four digits (the spec's accountNumber text).
    number = _text(
        item, "accountNumber", "AccountNumber", 4 if account_type == "CREDITCARD" else 40
    )
    if number is None and account_id is None:
        _required("AccountNumber")
    name = _text(item, "accountName", "AccountName", 30)
    currency = _required_text(item, "currency", "Currency")
    if currency not in XERO_CURRENCIES:
        _invalid("Currency", f"'{currency}' is not a currency code")
    country = _text(item, "country", "Country")
    if country is not None and country not in XERO_COUNTRIES:
        raise bankfeeds.refusal(
            "invalid-country-specified",
            f"The country '{country}' is not an ISO-3166 alpha-2 country code.",
        )
    return FeedRequest(token, account_type, currency, number, name, account_id, country)


def _feed(feed: FeedConnection) -> dict[str, Any]:
    document = {
        "id": feed.id,
        "accountToken": feed.account_token,
        "accountType": feed.account_type,
        "accountNumber": feed.account_number,
        "accountName": feed.account_name,
        "accountId": feed.account_id,
        "currency": feed.currency,
        "country": feed.country,
    }
    return {key: value for key, value in document.items() if value is not None}


# ----------------------------------------------------------------------------- statements


@router.post("/statements")
async def create_statements(request: Request, call: CallDep, sandbox: SandboxDep) -> JSONResponse:
    body = await request.body()
    # Measured before parsing: a body over the limit is never read.
    if len(body) > bankfeeds.MAX_BODY_BYTES:
        raise bankfeeds.request_too_large(len(body))
    statements = [_statement_in(item) for item in _items(body)]
    receipt = bankfeeds.receive_statements(
        sandbox, call.organisation, call.caller.app.client_id, statements
    )
    if receipt.duplicates:
        rejected = [{**_receipt(s), "errors": s.errors} for s in receipt.statements]
        raise bankfeeds_items(409, rejected)
    return JSONResponse({"items": [_receipt(s) for s in receipt.statements]}, 202)


@router.get("/statements")
async def list_statements(request: Request, call: CallDep) -> JSONResponse:
    statements = bankfeeds.statements_of(call.organisation, call.caller.app.client_id)
    page, pagination = _page(request, statements)
    return JSONResponse({"pagination": pagination, "items": [_statement(s) for s in page]})


@router.get("/statements/{statement_id}")
async def get_statement(statement_id: str, call: CallDep) -> JSONResponse:
    mine = bankfeeds.statements_of(call.organisation, call.caller.app.client_id)
    statement = next((s for s in mine if s.id == statement_id.lower()), None)
    if statement is None:
        raise bankfeeds.statement_not_found(statement_id)
    return JSONResponse(_statement(statement))


def _statement_in(item: Mapping[str, Any]) -> StatementIn:
    lines = item.get("statementLines") or []
    if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
        _invalid("StatementLines", "the value must be a list of statement lines")
    if len(lines) > bankfeeds.MAX_STATEMENT_LINES:
        _invalid("StatementLines", f"at most {bankfeeds.MAX_STATEMENT_LINES} lines are allowed")
    return StatementIn(
        feed_connection_id=_required_text(item, "feedConnectionId", "FeedConnectionId"),
        start_date=_date(item, "startDate", "StartDate"),
        end_date=_date(item, "endDate", "EndDate"),
        start_balance=_balance_in(item, "startBalance", "StartBalance"),
        end_balance=_balance_in(item, "endBalance", "EndBalance"),
        lines=tuple(_line_in(line) for line in lines),
    )


def _balance_in(item: Mapping[str, Any], key: str, name: str) -> Balance:
    raw = item.get(key)
    if not isinstance(raw, dict):
        _required(name)
    return Balance(
        amount=_money(raw, "amount", f"{name}.Amount"),
        indicator=_choice(raw, "creditDebitIndicator", f"{name}.CreditDebitIndicator", INDICATORS),
    )


def _line_in(raw: Mapping[str, Any]) -> StatementLine:
    # Lengths from the spec's StatementLine schema (its `maximum`s).
    return StatementLine(
        posted_date=_date(raw, "postedDate", "StatementLine.PostedDate"),
        amount=_money(raw, "amount", "StatementLine.Amount"),
        credit_debit_indicator=_choice(
            raw, "creditDebitIndicator", "StatementLine.CreditDebitIndicator", INDICATORS
        ),
        description=_text(raw, "description", "StatementLine.Description", 2000),
        transaction_id=_text(raw, "transactionId", "StatementLine.TransactionId"),
        payee_name=_text(raw, "payeeName", "StatementLine.PayeeName", 255),
        reference=_text(raw, "reference", "StatementLine.Reference", 255),
        cheque_number=_text(raw, "chequeNumber", "StatementLine.ChequeNumber", 20),
        transaction_type=_text(raw, "transactionType", "StatementLine.TransactionType", 30),
    )


def _receipt(statement: Statement) -> dict[str, Any]:
    """A statement as `POST /Statements` answers it: accepted ones are PENDING until Xero has
    delivered them."""
    status = "PENDING" if statement.status == "DELIVERED" else statement.status
    return {"id": statement.id, "feedConnectionId": statement.feed_connection_id, "status": status}


def _statement(statement: Statement) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": statement.id,
        "feedConnectionId": statement.feed_connection_id,
        "status": statement.status,
        "startDate": statement.start_date.isoformat(),
        "endDate": statement.end_date.isoformat(),
        "startBalance": _balance(statement.start_balance, statement.start_indicator),
        "endBalance": _balance(statement.end_balance, statement.end_indicator),
        "statementLineCount": str(len(statement.lines)),
    }
    if statement.errors:
        document["errors"] = statement.errors
    return document


def _balance(amount: Decimal, indicator: str) -> dict[str, str]:
    return {"amount": f"{amount.quantize(FOUR_PLACES):f}", "creditDebitIndicator": indicator}


# ----------------------------------------------------------------------------- reading fields


def _items(body: bytes) -> list[dict[str, Any]]:
    """The `items` of a request body: a non-empty list of objects. JSON numbers are read as
    Decimals, so "0.1" never becomes 0.1000000000000000055."""
    try:
        document = exact_json.loads(body)
    except ValueError:
        raise invalid_request("The request body is not valid JSON.") from None
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list) or not items:
        _required("Items")
    if not all(isinstance(item, dict) for item in items):
        _invalid("Items", "every item must be an object")
    return items


def _required(name: str) -> NoReturn:
    raise invalid_request(f"For the request field '{name}' a value is required.")


def _invalid(name: str, why: str) -> NoReturn:
    raise invalid_request(f"For the request field '{name}' {why}.")


def _text(raw: Mapping[str, Any], key: str, name: str, limit: int | None = None) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        _invalid(name, "the value must be a string")
    if limit is not None and len(value) > limit:
        _invalid(name, f"exceeded the maximum length of {limit}")
    return value


def _required_text(raw: Mapping[str, Any], key: str, name: str, limit: int | None = None) -> str:
    value = _text(raw, key, name, limit)
    if value is None:
        _required(name)
    return value


def _choice(raw: Mapping[str, Any], key: str, name: str, choices: Sequence[str]) -> str:
    value = _required_text(raw, key, name)
    if value not in choices:
        _invalid(name, f"the value must be one of {', '.join(choices)}")
    return value


def _date(raw: Mapping[str, Any], key: str, name: str) -> date:
    value = _required_text(raw, key, name)
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or len(value) != len("YYYY-MM-DD"):
        _invalid(name, "the value must be a date (YYYY-MM-DD)")
    return parsed


def _money(raw: Mapping[str, Any], key: str, name: str) -> Decimal:
    """An unsigned decimal(19,4), sent as a JSON number or a string."""
    value = raw.get(key)
    if value is None or value == "":
        _required(name)
    amount = exact_json.to_decimal(value)
    if amount is None:
        _invalid(name, "the value must be a number")
    if amount < 0:
        _invalid(name, "the value must not be negative: the CreditDebitIndicator gives the sign")
    if amount >= MONEY_LIMIT or amount != amount.quantize(FOUR_PLACES):
        _invalid(name, "the value must be a decimal(19,4): at most 4 decimal places")
    return amount.quantize(FOUR_PLACES)


# ----------------------------------------------------------------------------- paging


def _page(request: Request, items: list[T]) -> tuple[list[T], dict[str, int]]:
    """One page of `items` and the spec's `pagination`. Pages count from 1 (the spec's
    examples); a page or page size that is not a positive number falls back to its default,
    as the spec says; a page size over 100 is cut to 100."""
    query = {key.lower(): value for key, value in request.query_params.items()}
    page = _positive(query.get("page")) or 1
    size = min(_positive(query.get("pagesize")) or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    chunk, page_count = page_of(items, page, size)
    pagination = {
        "page": page,
        "pageSize": size,
        "pageCount": page_count,
        # Items on this page: the spec's example answers 3 of them with 210 pages.
        "itemCount": len(chunk),
    }
    return chunk, pagination


def _positive(value: str | None) -> int | None:
    try:
        number = int(value or "0")
    except ValueError:
        return None
    return number if number > 0 else None
