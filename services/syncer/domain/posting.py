"""What the syncer sends Xero, and how it reads Xero's answer back.

Pending transactions become one request at a time: a Bank Feeds statement
(`POST /Statements`) or a batch of Accounting bank transactions
(`PUT /BankTransactions?summarizeErrors=false`). Each request is built here as the exact
bytes to send, with an Idempotency-Key derived from those bytes (and the connection's
version), so a retry after a lost answer sends the same request under the same key and Xero
does not post it twice.

Pure: no I/O, no clock, no database. Money never passes through float: amounts are
Decimals, written as exact JSON numbers or as Xero's four-decimal strings.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

STATEMENTS_PATH: Final = "/bankfeeds.xro/1.0/Statements"
BANK_TRANSACTIONS_PATH: Final = "/api.xro/2.0/BankTransactions"

FOUR_PLACES: Final = Decimal("0.0001")
"""Xero's money is decimal(19,4), and so is ours (NUMERIC(19, 4))."""
CENT: Final = Decimal("0.01")
ELLIPSIS: Final = "…"

# Xero's lengths: the Bank Feeds spec's StatementLine `maximum`s; Accounting's contact
# name (255) and a line description (4000).
MAX_STATEMENT_DESCRIPTION: Final = 2000
MAX_PAYEE_NAME: Final = 255
MAX_STATEMENT_REFERENCE: Final = 255
MAX_TRANSACTION_TYPE: Final = 30
MAX_CONTACT_NAME: Final = 255
MAX_LINE_DESCRIPTION: Final = 4000

UNKNOWN_COUNTERPARTY: Final = "Unknown counterparty"
"""Xero needs a contact on every bank transaction; a reversal or an anonymous payment has none."""

IDEMPOTENCY_KEY_VERSION: Final = "xs2"
"""Bump when the derivation changes, so an old key can never name a new request."""

_KINDS: Final = frozenset({"booked", "reversal"})
_DIRECTIONS: Final = frozenset({"credit", "debit"})


@dataclass(frozen=True, slots=True)
class Pending:
    """One transaction waiting to be posted, as the posting sees it."""

    transaction_id: str
    kind: str  # "booked" | "reversal"
    original_transaction_id: str | None  # set for reversals
    account_id: str
    currency: str
    amount: Decimal  # positive
    direction: str  # "credit" (money in) | "debit" (money out)
    balance_after: Decimal  # account balance after this transaction (may be negative)
    booked_at: datetime  # timezone-aware
    value_date: date
    description: str | None
    counterparty_name: str | None
    reference: str | None
    category: str | None

    def __post_init__(self) -> None:
        # Refused here, where the bad row is named, rather than as a wrong amount in Xero.
        if self.kind not in _KINDS:
            raise ValueError(f"{self.transaction_id}: unknown kind {self.kind!r}")
        if self.direction not in _DIRECTIONS:
            raise ValueError(f"{self.transaction_id}: unknown direction {self.direction!r}")
        if self.amount < 0:
            raise ValueError(f"{self.transaction_id}: amount {self.amount} is negative")
        if self.booked_at.utcoffset() is None:
            raise ValueError(f"{self.transaction_id}: booked_at has no time zone")
        if self.kind == "reversal" and not self.original_transaction_id:
            raise ValueError(f"{self.transaction_id}: a reversal names no original")

    @property
    def signed_amount(self) -> Decimal:
        """What the transaction did to the balance."""
        return self.amount if self.direction == "credit" else -self.amount

    @property
    def is_reversal(self) -> bool:
        return self.kind == "reversal"


@dataclass(frozen=True, slots=True)
class Batch:
    """One Xero request ready to send: the exact bytes, the key that makes a retry safe,
    and the transactions it carries, in posting order."""

    account_id: str
    method: str  # "POST" for statements, "PUT" for bank transactions
    path: str  # STATEMENTS_PATH or BANK_TRANSACTIONS_PATH
    params: dict[str, str]  # {} for statements; summarizeErrors=false for bank transactions
    body: bytes
    idempotency_key: str
    transactions: tuple[Pending, ...]
    start_balance: Decimal | None  # statements only
    end_balance: Decimal | None  # statements only


@dataclass(frozen=True, slots=True)
class ElementOutcome:
    """What Xero did with one element of a `PUT /BankTransactions` batch."""

    transaction_id: str
    ok: bool
    xero_id: str | None  # BankTransactionID when ok
    messages: tuple[str, ...]  # Xero's ValidationErrors[].Message when not ok
    account_problem: bool  # the bank account itself is refused, not this transaction


# ----------------------------------------------------------------------------- small rules


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    """The day `moment` falls on in the organisation's time zone: Xero dates a statement
    line or a bank transaction by the organisation's calendar, not UTC's."""
    if moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone, so it names no instant")
    return moment.astimezone(zone).date()


def shorten(text: str | None, limit: int) -> str | None:
    """Text that fits Xero's `limit`: too long is cut and ends with "…", so a reader sees it
    was shortened, and Xero never refuses a transaction for its length. Blank is None.

    Xero counts UTF-16 code units (it is .NET on SQL Server), so a character outside the
    Basic Multilingual Plane (most emoji) counts twice; for all other text this is the
    character count.
    """
    if limit < 1:
        raise ValueError(f"a limit of {limit} leaves no room for text")
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    if _utf16_length(text) <= limit:
        return text
    budget = limit - 1  # the ellipsis is one code unit
    kept = 0
    for index, character in enumerate(text):
        width = 2 if ord(character) > 0xFFFF else 1
        if kept + width > budget:
            return text[:index] + ELLIPSIS
        kept += width
    return text  # pragma: no cover - unreachable: the text is longer than the budget


def _utf16_length(text: str) -> int:
    return len(text) + sum(1 for character in text if ord(character) > 0xFFFF)


def idempotency_key(
    tenant_id: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    body: bytes,
    *,
    connection_version: int,
) -> str:
    """A key derived from the request alone, so a retry (even from another process after a
    crash) carries the same key, and any different request a different one. Each part is
    length-prefixed, so no two different requests hash the same bytes. 68 characters:
    within Xero's 128.

    The connection's version counts too. Xero answers a known key with the answer it kept,
    a refusal as well: a request it refused for its account (archived, its feed removed)
    would be refused again for a day after the user restored the account. The connector
    links the account again by publishing the connection, a new version, so the same
    transactions then go under a new key."""
    digest = hashlib.sha256(IDEMPOTENCY_KEY_VERSION.encode())
    parts = [tenant_id.encode(), method.encode(), path.encode(), str(len(params)).encode()]
    for name, value in sorted(params.items()):
        parts += [name.encode(), value.encode()]
    parts += [body, str(connection_version).encode()]
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return f"{IDEMPOTENCY_KEY_VERSION}-{digest.hexdigest()}"


def dumps(document: Any) -> bytes:
    """Compact UTF-8 JSON, the same bytes for the same document (so the same key), with each
    Decimal written as the exact number it is: Decimal("12.50") is 12.50, never a float's
    12.5 or 12.4999…. Floats are refused for the same reason."""
    chunks: list[str] = []
    _write(document, chunks)
    return "".join(chunks).encode()


def _write(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool):  # before int: True is an int
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        out.append(f"{value:f}")
    elif isinstance(value, dict):
        _write_object(value, out)
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, member in enumerate(value):
            out.append("," if index else "")
            _write(member, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not written as JSON here")


def _write_object(value: dict[Any, Any], out: list[str]) -> None:
    out.append("{")
    for index, (key, member) in enumerate(value.items()):
        if not isinstance(key, str):
            raise TypeError(f"JSON object keys are strings, not {type(key).__name__}")
        out.append("," if index else "")
        out.append(json.dumps(key, ensure_ascii=False))
        out.append(":")
        _write(member, out)
    out.append("}")


def _four_places(amount: Decimal) -> str:
    """Xero's money as a string: "12.5000"."""
    return f"{amount.quantize(FOUR_PLACES):f}"


def _text(value: str | None) -> str | None:
    stripped = value.strip() if value is not None else ""
    return stripped or None


def _reversal_text(item: Pending) -> str:
    """How a reversal reads in Xero: it names the transaction it undoes."""
    description = _text(item.description)
    lead = f"Reversal of {item.original_transaction_id}"
    return f"{lead}: {description}" if description else lead


# ----------------------------------------------------------------------------- statements


def statement_batch(
    pending: Sequence[Pending],
    *,
    tenant_id: str,
    connection_version: int,
    feed_connection_id: str,
    zone: ZoneInfo,
    max_lines: int = 1000,
    max_bytes: int = 2_900_000,
) -> Batch | None:
    """The longest prefix of `pending` (one account, in posting order) that makes one valid
    Bank Feeds statement, as a `POST /Statements` request; None when nothing is pending.

    The statement stops before a line whose balance does not follow from the previous one
    (Xero refuses a statement whose start balance plus its lines is not its end balance),
    before the line over `max_lines` or `max_bytes` (Xero's 1,000 lines and 3,000,000
    bytes, with room to spare), and before a line of another account or currency, or dated
    before its predecessor (every line must fall within the statement's dates). The next
    statement starts there, so every call makes progress.
    """
    if not pending:
        return None
    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, not {max_lines}")
    first = pending[0]
    start_balance = (first.balance_after - first.signed_amount).quantize(FOUR_PLACES)
    lines: list[dict[str, Any]] = []
    lines_size = 0
    previous: Pending | None = None
    for item in pending[:max_lines]:
        if previous is not None and not _continues_statement(previous, item, zone):
            break
        line = _statement_line(item, zone)
        line_size = len(dumps(line))
        envelope = _statement_document(
            feed_connection_id, first, item, start_balance, zone, statement_lines=[]
        )
        separators = len(lines)  # the commas between lines once this one is added
        size = len(dumps(envelope)) + lines_size + line_size + separators
        if size > max_bytes:
            if not lines:
                raise ValueError(
                    f"transaction {item.transaction_id} alone makes a statement of {size} "
                    f"bytes, over max_bytes={max_bytes}"
                )
            break
        lines.append(line)
        lines_size += line_size
        previous = item
    carried = tuple(pending[: len(lines)])
    last = carried[-1]
    document = _statement_document(
        feed_connection_id, first, last, start_balance, zone, statement_lines=lines
    )
    body = dumps(document)
    return Batch(
        account_id=first.account_id,
        method="POST",
        path=STATEMENTS_PATH,
        params={},
        body=body,
        idempotency_key=idempotency_key(
            tenant_id, "POST", STATEMENTS_PATH, {}, body, connection_version=connection_version
        ),
        transactions=carried,
        start_balance=start_balance,
        end_balance=last.balance_after.quantize(FOUR_PLACES),
    )


def _continues_statement(previous: Pending, item: Pending, zone: ZoneInfo) -> bool:
    return (
        item.account_id == previous.account_id
        and item.currency == previous.currency
        and item.balance_after == previous.balance_after + item.signed_amount
        and local_date(item.booked_at, zone) >= local_date(previous.booked_at, zone)
    )


def _statement_document(
    feed_connection_id: str,
    first: Pending,
    last: Pending,
    start_balance: Decimal,
    zone: ZoneInfo,
    *,
    statement_lines: list[dict[str, Any]],
) -> dict[str, Any]:
    statement = {
        "feedConnectionId": feed_connection_id,
        "startDate": local_date(first.booked_at, zone).isoformat(),
        "endDate": local_date(last.booked_at, zone).isoformat(),
        "startBalance": _balance(start_balance),
        "endBalance": _balance(last.balance_after),
        "statementLines": statement_lines,
    }
    return {"items": [statement]}


def _balance(signed: Decimal) -> dict[str, str]:
    """Xero takes a balance unsigned, with CREDIT (in funds) or DEBIT (overdrawn)."""
    rounded = signed.quantize(FOUR_PLACES)
    indicator = "CREDIT" if rounded >= 0 else "DEBIT"
    return {"amount": _four_places(abs(rounded)), "creditDebitIndicator": indicator}


def _statement_line(item: Pending, zone: ZoneInfo) -> dict[str, str]:
    if item.is_reversal:
        # The reference names the original, so the two lines can be matched in Xero.
        description = shorten(_reversal_text(item), MAX_STATEMENT_DESCRIPTION)
        payee = None
        reference = item.original_transaction_id
    else:
        description = shorten(item.description, MAX_STATEMENT_DESCRIPTION)
        payee = shorten(item.counterparty_name, MAX_PAYEE_NAME)
        reference = item.reference
    line = {
        "postedDate": local_date(item.booked_at, zone).isoformat(),
        "amount": _four_places(item.amount),
        "creditDebitIndicator": "CREDIT" if item.direction == "credit" else "DEBIT",
        "transactionId": item.transaction_id,
        "description": description,
        "payeeName": payee,
        "reference": shorten(reference, MAX_STATEMENT_REFERENCE),
        "transactionType": shorten(item.category, MAX_TRANSACTION_TYPE),
    }
    return {key: value for key, value in line.items() if value is not None}


# ----------------------------------------------------------------------------- bank transactions


def bank_transactions_batch(
    pending: Sequence[Pending],
    *,
    tenant_id: str,
    connection_version: int,
    xero_account_id: str,
    zone: ZoneInfo,
    receive_account_code: str,
    spend_account_code: str,
    max_elements: int = 50,
    max_bytes: int = 3_400_000,
) -> Batch | None:
    """The longest prefix of `pending` (one account, in posting order) that fits one
    `PUT /BankTransactions?summarizeErrors=false` (Xero's 50 elements and 3.5 MB, with room
    to spare), one RECEIVE or SPEND each; None when nothing is pending.

    The batch also stops before a transaction of another account or currency: every element
    names the same bank account. `unitdp=4` is asked for when an amount has digits below a
    cent (a three-decimal currency), which Xero would otherwise round to two decimals.
    """
    if not pending:
        return None
    if max_elements < 1:
        raise ValueError(f"max_elements must be at least 1, not {max_elements}")
    first = pending[0]
    elements: list[dict[str, Any]] = []
    elements_size = 0
    envelope_size = len(dumps({"BankTransactions": []}))
    for item in pending[:max_elements]:
        if item.account_id != first.account_id or item.currency != first.currency:
            break
        element = _bank_transaction(
            item, xero_account_id, zone, receive_account_code, spend_account_code
        )
        element_size = len(dumps(element))
        size = envelope_size + elements_size + element_size + len(elements)
        if size > max_bytes:
            if not elements:
                raise ValueError(
                    f"transaction {item.transaction_id} alone makes a request of {size} "
                    f"bytes, over max_bytes={max_bytes}"
                )
            break
        elements.append(element)
        elements_size += element_size
    carried = tuple(pending[: len(elements)])
    body = dumps({"BankTransactions": elements})
    params = {"summarizeErrors": "false"}
    if any(_unit_amount(item.amount) != item.amount.quantize(CENT) for item in carried):
        params["unitdp"] = "4"
    return Batch(
        account_id=first.account_id,
        method="PUT",
        path=BANK_TRANSACTIONS_PATH,
        params=params,
        body=body,
        idempotency_key=idempotency_key(
            tenant_id,
            "PUT",
            BANK_TRANSACTIONS_PATH,
            params,
            body,
            connection_version=connection_version,
        ),
        transactions=carried,
        start_balance=None,
        end_balance=None,
    )


def _bank_transaction(
    item: Pending,
    xero_account_id: str,
    zone: ZoneInfo,
    receive_account_code: str,
    spend_account_code: str,
) -> dict[str, Any]:
    credit = item.direction == "credit"
    line = {
        "Description": _line_description(item),
        "Quantity": 1,
        "UnitAmount": _unit_amount(item.amount),
        "AccountCode": receive_account_code if credit else spend_account_code,
    }
    return {
        "Type": "RECEIVE" if credit else "SPEND",
        "Contact": {
            "Name": shorten(item.counterparty_name, MAX_CONTACT_NAME) or UNKNOWN_COUNTERPARTY
        },
        "Date": local_date(item.booked_at, zone).isoformat(),
        # Our id, so the transaction can be found in Xero and the answer checked against it.
        "Reference": item.transaction_id,
        "LineAmountTypes": "NoTax",
        "LineItems": [line],
        "BankAccount": {"AccountID": xero_account_id},
        "CurrencyCode": item.currency,
    }


def _line_description(item: Pending) -> str:
    """What the line says in Xero. Never empty: Xero wants at least one character."""
    if item.is_reversal:
        text = _reversal_text(item)
    else:
        reference, category = _text(item.reference), _text(item.category)
        parts = [
            _text(item.description),
            f"Ref {reference}" if reference else None,
            category,
        ]
        text = " · ".join(part for part in parts if part) or f"Transaction {item.transaction_id}"
    shortened = shorten(text, MAX_LINE_DESCRIPTION)
    return shortened or f"Transaction {item.transaction_id}"


def _unit_amount(amount: Decimal) -> Decimal:
    """Two decimals as Xero's examples write money (20.00), four when the cents do not
    hold it exactly (then the request asks for unitdp=4)."""
    cents = amount.quantize(CENT)
    return cents if cents == amount else amount.quantize(FOUR_PLACES)


# ----------------------------------------------------------------------------- Xero's answer


def bank_transaction_outcomes(answer: Any, batch: Batch) -> list[ElementOutcome]:
    """Each transaction's outcome from Xero's answer to the batch's
    `PUT /BankTransactions?summarizeErrors=false` (see `element_outcomes`)."""
    if batch.path != BANK_TRANSACTIONS_PATH:
        raise ValueError(f"a {batch.method} {batch.path} batch has no bank transaction outcomes")
    return element_outcomes(answer, batch.transactions)


def element_outcomes(answer: Any, transactions: Sequence[Pending]) -> list[ElementOutcome]:
    """Xero's answer to `PUT /BankTransactions?summarizeErrors=false` for `transactions`:
    elements come back in request order, each OK or ERROR. ValueError when the answer is
    not one to these transactions (another count, or a Reference that is not the
    transaction's), since recording it would mark the wrong transactions posted."""
    elements = answer.get("BankTransactions") if isinstance(answer, Mapping) else None
    if not isinstance(elements, list):
        # ValueError for every way the answer is not one to this batch, as callers catch it.
        raise ValueError("Xero's answer carries no BankTransactions list")  # noqa: TRY004
    if len(elements) != len(transactions):
        raise ValueError(
            f"Xero answered {len(elements)} bank transactions to a batch of {len(transactions)}"
        )
    return [
        _outcome(position, element, item)
        for position, (element, item) in enumerate(zip(elements, transactions, strict=True))
    ]


def _outcome(position: int, element: Any, item: Pending) -> ElementOutcome:
    if not isinstance(element, Mapping):
        raise ValueError(f"Xero's bank transaction {position} is not an object")  # noqa: TRY004
    reference = element.get("Reference")
    if reference is not None and reference != item.transaction_id:
        raise ValueError(
            f"Xero's bank transaction {position} has Reference {reference!r}, but the batch "
            f"sent {item.transaction_id!r} there"
        )
    messages = tuple(_messages(element.get("ValidationErrors")))
    status = element.get("StatusAttributeString")
    xero_id = element.get("BankTransactionID")
    if isinstance(status, str):
        ok = status.strip().upper() == "OK"
    else:  # not summarised per element: saved exactly when it has an id and no errors
        ok = not messages and isinstance(xero_id, str)
    if ok:
        return ElementOutcome(
            transaction_id=item.transaction_id,
            ok=True,
            xero_id=xero_id if isinstance(xero_id, str) and xero_id else None,
            messages=(),
            account_problem=False,
        )
    shown = messages or ("Xero refused the bank transaction without a validation message.",)
    return ElementOutcome(
        transaction_id=item.transaction_id,
        ok=False,
        xero_id=None,
        messages=shown,
        account_problem=any(is_account_problem(message) for message in messages),
    )


def _messages(errors: Any) -> Iterable[str]:
    if not isinstance(errors, list):
        return
    for error in errors:
        message = error.get("Message") if isinstance(error, Mapping) else None
        if isinstance(message, str) and message.strip():
            yield message.strip()


def is_account_problem(message: str) -> bool:
    """Whether Xero's message refuses the bank account itself (archived, deleted, unknown):
    then every transaction for it will fail the same way until the user fixes the account,
    so retrying is pointless. A line's account code being archived is not this."""
    folded = message.casefold()
    if "do not match a known bank account" in folded:
        return True
    return "bank account" in folded and ("archived" in folded or "deleted" in folded)
