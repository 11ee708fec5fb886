"""Xero's Accounting API (`/api.xro/2.0/…`): Organisation, Accounts, Currencies and
BankTransactions, over HTTP as Xero serves them. The rules are in `xero_sandbox.accounting`.

The gateway has already checked the token, tenant, scopes, rate limits and Idempotency-Key.
What this layer keeps:
- every 2xx answer is Xero's envelope (`Id`, `Status`, `ProviderName` = the app's name,
  `DateTimeUTC`) around the resource array;
- money goes out as JSON numbers with Xero's decimals (`20.00`), never through float
  (`xero_sandbox.exact_json`), in answers and in refusals alike;
- bodies are read as Xero reads them: malformed JSON is a 400 PostDataInvalidException
  (ErrorNumber 14), a body over 3.5 MB a 413, a refused element a 400 ValidationException
  (ErrorNumber 10) echoing the element with its `ValidationErrors`;
- `where`/`order` Xero cannot parse are a 400 QueryParseException (ErrorNumber 16);
- query parameter names ignore case (`summarizeErrors`, `SummarizeErrors`);
- `summarizeErrors` (default true): any refused element refuses the whole request and
  nothing is saved; with false, the good elements are saved and every element comes back
  with `StatusAttributeString` OK or ERROR, in a 200;
- `GET /BankTransactions` returns everything unless `page` is given: then 100 a page
  (`pageSize` up to 1000) and Xero's `pagination` object.
"""

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response

from xero_sandbox import accounting, accounts, bank_transactions, exact_json, where
from xero_sandbox.accounting import CURRENCY_FIELDS, Refusal
from xero_sandbox.accounting_json import ms_date, parse_timestamp
from xero_sandbox.accounts import ACCOUNT_FIELDS
from xero_sandbox.api.deps import CallDep, SandboxDep
from xero_sandbox.api.paging import page_of
from xero_sandbox.bank_transactions import (
    BANK_TRANSACTION_FIELDS,
    BankTransactionPlan,
    Deletion,
    Refused,
)
from xero_sandbox.errors import (
    XeroError,
    accounting_body_too_large,
    accounting_not_found,
    post_data_invalid,
    query_parse_exception,
    validation_exception,
)
from xero_sandbox.exact_json import ExactJSONResponse
from xero_sandbox.gateway import CallContext
from xero_sandbox.organisations import local_today
from xero_sandbox.state import Account, BankTransaction, Organisation, Sandbox
from xero_sandbox.where import Fields, QueryParseError, Row

T = TypeVar("T")

router = APIRouter(prefix="/api.xro/2.0", tags=["accounting"])

MAX_BODY_BYTES = 3_500_000
"""Xero's limit on a request body (3.5 MB)."""
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


# ----------------------------------------------------------------------------- answers


def _answer(
    call: CallContext,
    sandbox: Sandbox,
    key: str,
    items: list[Any],
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": call.caller.app.name,
        "DateTimeUTC": ms_date(sandbox.clock.now()),
    }
    return ExactJSONResponse(body | (extra or {}) | {key: items})


def _refusal(refusal: Refusal) -> XeroError:
    if refusal.element is None:
        return validation_exception(message=refusal.messages[0])
    return validation_exception([_with_errors(refusal.element, refusal.messages)])


def _with_errors(element: dict[str, Any], messages: Iterable[str]) -> dict[str, Any]:
    """A refused element as Xero echoes it, with its `ValidationErrors`."""
    return element | {"ValidationErrors": [{"Message": message} for message in messages]}


# ----------------------------------------------------------------------------- requests


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise accounting_body_too_large()
    try:
        return exact_json.loads(body)
    except ValueError as error:
        raise post_data_invalid(f"JSON request body could not be read, Error: {error}") from None


def _elements(body: Any, key: str) -> list[Any]:
    """`{"<Key>": [...]}`, or a single object, which Xero also accepts."""
    if isinstance(body, dict):
        for name, value in body.items():
            if name.casefold() == key.casefold():
                if isinstance(value, list):
                    return value
                break
        else:
            return [body]
    raise post_data_invalid(f'JSON request body could not be read: expected {{"{key}": [ ... ]}}.')


def _single(body: Any, key: str) -> Any:
    """The one object of a request that takes one (Accounts: Xero reads only the first)."""
    elements = _elements(body, key)
    return elements[0] if elements else {}


def _query(request: Request, name: str) -> str | None:
    for key, value in request.query_params.items():
        if key.casefold() == name.casefold():
            return value
    return None


def _whole(request: Request, name: str) -> int | None:
    value = _query(request, name)
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise validation_exception(message=f"{name} must be a whole number.") from None


def _unit_dp(request: Request) -> int:
    return 4 if _whole(request, "unitdp") == 4 else 2


def _modified_since(request: Request) -> datetime | None:
    """`If-Modified-Since`, ISO 8601 (as Xero's SDKs send it) or HTTP-date; unreadable ones
    are ignored, as HTTP says."""
    header = request.headers.get("if-modified-since")
    if not header:
        return None
    moment = parse_timestamp(header)
    if moment is not None:
        return moment
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _select(
    request: Request, items: Iterable[T], row_of: Callable[[T], Row], fields: Fields
) -> list[T]:
    try:
        return where.select(
            items, row_of, fields, where=_query(request, "where"), order=_query(request, "order")
        )
    except QueryParseError as error:
        raise query_parse_exception(str(error)) from None


def _page(request: Request, items: list[T]) -> tuple[list[T], dict[str, Any] | None]:
    """All the items, unless `page` is given: then that page (100 items, or `pageSize` up to
    1000) and Xero's `pagination`, whose `itemCount` counts every item."""
    page = _whole(request, "page")
    if page is None:
        return items, None
    page = max(page, 1)
    size = min(max(_whole(request, "pageSize") or DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE)
    chosen, page_count = page_of(items, page, size)
    pagination = {"page": page, "pageSize": size, "pageCount": page_count, "itemCount": len(items)}
    return chosen, {"pagination": pagination}


# ----------------------------------------------------------------------------- organisation


@router.get("/organisation")
async def get_organisation(call: CallDep, sandbox: SandboxDep) -> Response:
    organisation = accounting.organisation_document(call.organisation)
    return _answer(call, sandbox, "Organisations", [organisation])


# ----------------------------------------------------------------------------- accounts


def _accounts_answer(call: CallContext, sandbox: Sandbox, shown: list[Account]) -> Response:
    documents = [accounts.account_document(a, call.organisation) for a in shown]
    return _answer(call, sandbox, "Accounts", documents)


def _account(call: CallContext, account_id: str) -> Account:
    account = accounts.find_account(call.organisation, account_id)
    if account is None:
        raise accounting_not_found()
    return account


@router.get("/accounts")
async def get_accounts(request: Request, call: CallDep, sandbox: SandboxDep) -> Response:
    organisation = call.organisation
    since = _modified_since(request)
    changed = [
        a
        for a in accounts.visible_accounts(organisation)
        if since is None or accounts.updated_at(a, organisation) >= since
    ]
    chosen = _select(
        request, changed, lambda a: accounts.account_row(a, organisation), ACCOUNT_FIELDS
    )
    return _accounts_answer(call, sandbox, chosen)


@router.put("/accounts")
async def create_account(request: Request, call: CallDep, sandbox: SandboxDep) -> Response:
    raw = _single(await _json_body(request), "Accounts")
    try:
        account = accounts.create_account(call.organisation, raw, sandbox.clock.now())
    except Refusal as refusal:
        raise _refusal(refusal) from None
    return _accounts_answer(call, sandbox, [account])


@router.get("/accounts/{account_id}")
async def get_account(account_id: str, call: CallDep, sandbox: SandboxDep) -> Response:
    return _accounts_answer(call, sandbox, [_account(call, account_id)])


@router.post("/accounts/{account_id}")
async def update_account(
    account_id: str, request: Request, call: CallDep, sandbox: SandboxDep
) -> Response:
    raw = _single(await _json_body(request), "Accounts")
    account = _account(call, account_id)
    try:
        accounts.update_account(call.organisation, account, raw, sandbox.clock.now())
    except Refusal as refusal:
        raise _refusal(refusal) from None
    return _accounts_answer(call, sandbox, [account])


@router.delete("/accounts/{account_id}")
async def delete_account(account_id: str, call: CallDep, sandbox: SandboxDep) -> Response:
    account = _account(call, account_id)
    try:
        accounts.delete_account(call.organisation, account, sandbox.clock.now())
    except Refusal as refusal:
        raise _refusal(refusal) from None
    return _accounts_answer(call, sandbox, [account])


# ----------------------------------------------------------------------------- currencies


@router.get("/currencies")
async def get_currencies(request: Request, call: CallDep, sandbox: SandboxDep) -> Response:
    documents = [accounting.currency_document(code) for code in call.organisation.currencies]
    chosen = _select(request, documents, lambda document: document, CURRENCY_FIELDS)
    return _answer(call, sandbox, "Currencies", chosen)


@router.put("/currencies")
async def add_currency(request: Request, call: CallDep, sandbox: SandboxDep) -> Response:
    raw = _single(await _json_body(request), "Currencies")
    try:
        code = accounting.add_currency(call.organisation, raw)
    except Refusal as refusal:
        raise _refusal(refusal) from None
    return _answer(call, sandbox, "Currencies", [accounting.currency_document(code)])


# ----------------------------------------------------------------------------- bank transactions


@router.get("/banktransactions")
async def get_bank_transactions(request: Request, call: CallDep, sandbox: SandboxDep) -> Response:
    since = _modified_since(request)
    transactions = [
        t
        for t in call.organisation.bank_transactions.values()
        if since is None or t.updated_at >= since
    ]
    chosen = _select(
        request, transactions, bank_transactions.bank_transaction_row, BANK_TRANSACTION_FIELDS
    )
    chosen, extra = _page(request, chosen)
    unit_dp = _unit_dp(request)
    documents = [bank_transactions.bank_transaction_view(t, unit_dp) for t in chosen]
    return _answer(call, sandbox, "BankTransactions", documents, extra)


@router.get("/banktransactions/{bank_transaction_id}")
async def get_bank_transaction(
    bank_transaction_id: str, request: Request, call: CallDep, sandbox: SandboxDep
) -> Response:
    transaction = _bank_transaction(call, bank_transaction_id)
    document = bank_transactions.bank_transaction_view(transaction, _unit_dp(request))
    return _answer(call, sandbox, "BankTransactions", [document])


@router.put("/banktransactions")
async def create_bank_transactions(
    request: Request, call: CallDep, sandbox: SandboxDep
) -> Response:
    elements = _elements(await _json_body(request), "BankTransactions")
    return _save(request, call, sandbox, elements, may_update=False)


@router.post("/banktransactions")
async def create_or_update_bank_transactions(
    request: Request, call: CallDep, sandbox: SandboxDep
) -> Response:
    elements = _elements(await _json_body(request), "BankTransactions")
    return _save(request, call, sandbox, elements, may_update=True)


@router.post("/banktransactions/{bank_transaction_id}")
async def update_bank_transaction(
    bank_transaction_id: str, request: Request, call: CallDep, sandbox: SandboxDep
) -> Response:
    elements = _elements(await _json_body(request), "BankTransactions")
    _bank_transaction(call, bank_transaction_id)
    return _save(
        request, call, sandbox, elements[:1] or [{}], may_update=True, forced_id=bank_transaction_id
    )


def _bank_transaction(call: CallContext, bank_transaction_id: str) -> BankTransaction:
    transaction = call.organisation.bank_transactions.get(bank_transaction_id.lower())
    if transaction is None:
        raise accounting_not_found()
    return transaction


def _save(
    request: Request,
    call: CallContext,
    sandbox: Sandbox,
    elements: list[Any],
    *,
    may_update: bool,
    forced_id: str | None = None,
) -> Response:
    """Plan every element, then save them all, or (summarizeErrors) none if any is refused.
    Synchronous: nothing else runs between the checks and the saving."""
    organisation, now, unit_dp = call.organisation, sandbox.clock.now(), _unit_dp(request)
    summarize = (_query(request, "summarizeErrors") or "true").strip().lower() != "false"
    outcomes = [
        bank_transactions.plan_bank_transaction(
            organisation,
            element,
            may_update=may_update,
            today=local_today(organisation, now),
            unit_dp=unit_dp,
            forced_id=forced_id,
        )
        for element in elements
    ]
    refused = [o for o in outcomes if isinstance(o, Refused)]
    if refused and summarize:
        raise validation_exception([_with_errors(o.element, o.messages) for o in refused])
    answered = [_saved(organisation, o, now, unit_dp, summarize=summarize) for o in outcomes]
    return _answer(call, sandbox, "BankTransactions", answered)


def _saved(
    organisation: Organisation,
    outcome: BankTransactionPlan | Deletion | Refused,
    now: datetime,
    unit_dp: int,
    *,
    summarize: bool,
) -> dict[str, Any]:
    if isinstance(outcome, Refused):
        return _with_errors(outcome.element | {"StatusAttributeString": "ERROR"}, outcome.messages)
    transaction = bank_transactions.save_bank_transaction(organisation, outcome, now)
    document = bank_transactions.bank_transaction_view(transaction, unit_dp)
    return document if summarize else document | {"StatusAttributeString": "OK"}
