"""Bank transactions, as the Accounting API keeps them (`/BankTransactions`), and the
contacts they name.

- RECEIVE and SPEND only (the sandbox refuses Xero's other types), on an ACTIVE BANK
  account, in that account's currency, with at least one line coded to an active non-bank
  account.
- The contact is found by ContactID, ContactNumber or Name (ignoring case), or created from
  a Name, once even when several elements of a request name it.
- An undated transaction is dated today in the organisation's time zone.
- Totals follow from the lines; the sandbox has no tax rates, so a line's tax is the
  TaxAmount it gives, else zero. Quantity defaults to 1; a LineAmount without a UnitAmount
  gives it; UnitAmount is kept to 4 decimals and shown to 2 unless `unitdp=4`.
- References are never de-duplicated: the same request twice makes two transactions, as on
  Xero; only an Idempotency-Key (kept by the gateway) prevents that.
- An element with a BankTransactionID (POST) updates that transaction with the members it
  gives; `"Status": "DELETED"` deletes it; a deleted one cannot be edited.
- Every element is checked before any is saved, and every problem of an element is listed.

Messages are Xero's own where known: the Contact one (spec example), "Account code or ID must
be specified.", "Account code '…' is not a valid code for this document.", "Account code '…'
has been archived, or has been deleted…", "The specified bank account details do not match a
known bank account" and "The quantity value '…' is invalid…", as Xero has been seen to send
them. Every other message is the sandbox's wording.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from xero_sandbox.accounting_json import (
    canonical,
    ms_date_utc,
    ms_day,
    parse_day,
    read_decimal,
    read_flag,
    read_guid,
    read_text,
    read_upper,
)
from xero_sandbox.state import Account, BankTransaction, Contact, Organisation, new_id
from xero_sandbox.where import Fields, Row

CENT = Decimal("0.01")
QUANTITY_STEP = Decimal("0.0001")
RATE_STEP = Decimal("0.000001")
MAX_REFERENCE = 255
"""Xero's documented limit for invoice references; the spec states none for bank
transactions, so the sandbox applies the same one."""


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


# ----------------------------------------------------------------------------- contacts


def find_contact(
    organisation: Organisation, *, number: str | None = None, name: str | None = None
) -> Contact | None:
    """A contact by ContactNumber, else by Name, ignoring case."""
    for contact in organisation.contacts.values():
        if number and (contact.contact_number or "").casefold() == number.casefold():
            return contact
    for contact in organisation.contacts.values():
        if name and contact.name.casefold() == name.casefold():
            return contact
    return None


# ----------------------------------------------------------------------------- bank transactions

BANK_TRANSACTION_PROPERTIES = (
    "Type", "Contact", "LineItems", "BankAccount", "IsReconciled", "Date", "Reference",
    "CurrencyCode", "CurrencyRate", "Url", "Status", "LineAmountTypes", "SubTotal",
    "TotalTax", "Total", "BankTransactionID", "PrepaymentID", "OverpaymentID",
    "UpdatedDateUTC", "HasAttachments",
)  # fmt: skip
LINE_ITEM_PROPERTIES = (
    "LineItemID", "Description", "Quantity", "UnitAmount", "ItemCode", "AccountCode",
    "AccountID", "TaxType", "TaxAmount", "LineAmount", "Tracking", "DiscountRate",
    "DiscountAmount",
)  # fmt: skip
CONTACT_REFERENCE = ("ContactID", "ContactNumber", "Name")
ACCOUNT_REFERENCE = ("AccountID", "Code", "Name")
SUPPORTED_TYPES = ("RECEIVE", "SPEND")
OTHER_TYPES = (
    "RECEIVE-OVERPAYMENT", "RECEIVE-PREPAYMENT", "SPEND-OVERPAYMENT", "SPEND-PREPAYMENT",
    "RECEIVE-TRANSFER", "SPEND-TRANSFER",
)  # fmt: skip
LINE_AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")
MAX_CONTACT_NAME = 255
BANK_TRANSACTION_FIELDS = Fields(
    "BankTransaction",
    {
        "BankTransactionID": "guid", "Type": "enum", "Contact.ContactID": "guid",
        "Contact.Name": "string", "Contact.ContactNumber": "string",
        "BankAccount.AccountID": "guid", "BankAccount.Code": "string",
        "BankAccount.Name": "string", "IsReconciled": "bool", "Date": "date",
        "Reference": "string", "CurrencyCode": "enum", "CurrencyRate": "number",
        "Url": "string", "Status": "enum", "LineAmountTypes": "enum", "SubTotal": "number",
        "TotalTax": "number", "Total": "number", "UpdatedDateUTC": "datetime",
        "HasAttachments": "bool", "PrepaymentID": "guid", "OverpaymentID": "guid",
    },
)  # fmt: skip


@dataclass(frozen=True)
class Line:
    line_item_id: str
    description: str | None
    quantity: Decimal
    unit_amount: Decimal
    account: Account
    tax_type: str
    tax_amount: Decimal
    line_amount: Decimal


@dataclass(frozen=True)
class ContactChoice:
    """The transaction's contact: an existing one, or one to create from its name."""

    existing: Contact | None
    name: str | None = None
    number: str | None = None


@dataclass(frozen=True)
class BankTransactionPlan:
    """A valid element, ready to save (nothing is saved until every element is planned)."""

    existing: BankTransaction | None
    type: str
    contact: ContactChoice
    bank_account: Account
    day: date
    reference: str | None
    currency: str
    rate: Decimal
    line_amount_types: str
    lines: tuple[Line, ...]
    is_reconciled: bool
    url: str | None


@dataclass(frozen=True)
class Deletion:
    """`{"BankTransactionID": …, "Status": "DELETED"}`: how Xero deletes a bank transaction."""

    existing: BankTransaction


@dataclass(frozen=True)
class Refused:
    """An element Xero refuses, echoed back with its validation errors."""

    element: dict[str, Any]
    messages: list[str]


Outcome = BankTransactionPlan | Deletion | Refused


def plan_bank_transaction(
    organisation: Organisation,
    raw: Any,
    *,
    may_update: bool,
    today: date,
    unit_dp: int,
    forced_id: str | None = None,
) -> Outcome:
    """Check one element of `PUT`/`POST /BankTransactions` against the books, saving nothing.

    With a BankTransactionID (POST only) the element updates that transaction: the members
    it gives replace the stored ones (LineItems as a whole; an empty list keeps them)."""
    element = canonical(raw, BANK_TRANSACTION_PROPERTIES)
    if forced_id is not None:
        element["BankTransactionID"] = forced_id
    echo = _echo(element)
    existing, problem = _existing(organisation, element, may_update=may_update)
    if problem is not None:
        return Refused(echo, [problem])
    known_lines: set[str] = set()
    if existing is not None:
        if read_upper(element.get("Status")) == "DELETED":
            return Deletion(existing)
        if existing.status == "DELETED":
            return Refused(echo, ["A deleted bank transaction cannot be edited."])
        if not element.get("LineItems"):
            element.pop("LineItems", None)
            unit_dp = 4  # the stored lines, read back exactly as they were kept
        element = as_input(existing.document) | element
        known_lines = {line["LineItemID"] for line in existing.document["LineItems"]}
    reader = _Reader(organisation, element, today=today, unit_dp=unit_dp, known_lines=known_lines)
    plan = reader.plan(existing)
    return plan if plan is not None else Refused(echo, reader.errors)


def save_bank_transaction(
    organisation: Organisation, outcome: BankTransactionPlan | Deletion, now: datetime
) -> BankTransaction:
    """Keep a planned element: the transaction as `GET /BankTransactions/{id}` will show it."""
    if isinstance(outcome, Deletion):
        transaction = outcome.existing
        transaction.status = "DELETED"
        transaction.updated_at = now
        transaction.document = transaction.document | {
            "Status": "DELETED",
            "UpdatedDateUTC": ms_date_utc(now),
        }
        return transaction
    contact = _contact_for(organisation, outcome.contact, now)
    existing = outcome.existing
    transaction_id = existing.bank_transaction_id if existing is not None else new_id()
    transaction = BankTransaction(
        bank_transaction_id=transaction_id,
        bank_account_id=outcome.bank_account.account_id,
        reference=outcome.reference,
        date=outcome.day,
        status="AUTHORISED",
        updated_at=now,
        document=_document(transaction_id, outcome, contact, now),
    )
    organisation.bank_transactions[transaction_id] = transaction
    return transaction


def bank_transaction_view(transaction: BankTransaction, unit_dp: int) -> dict[str, Any]:
    """The stored document with unit amounts to 2 decimals, or 4 with `unitdp=4` (Xero)."""
    step = Decimal(1).scaleb(-unit_dp)
    lines = [
        line | {"UnitAmount": line["UnitAmount"].quantize(step, ROUND_HALF_UP)}
        for line in transaction.document["LineItems"]
    ]
    return transaction.document | {"LineItems": lines}


def bank_transaction_row(transaction: BankTransaction) -> Row:
    document = transaction.document
    contact, bank = document["Contact"], document["BankAccount"]
    return document | {
        "Contact.ContactID": contact.get("ContactID"),
        "Contact.Name": contact.get("Name"),
        "Contact.ContactNumber": contact.get("ContactNumber"),
        "BankAccount.AccountID": bank.get("AccountID"),
        "BankAccount.Code": bank.get("Code"),
        "BankAccount.Name": bank.get("Name"),
        "Date": transaction.date,
        "UpdatedDateUTC": transaction.updated_at,
    }


def as_input(document: Mapping[str, Any]) -> dict[str, Any]:
    """A stored transaction as the element that would make it again (the base of an update)."""
    element = {
        key: document[key]
        for key in ("Type", "Reference", "CurrencyCode", "CurrencyRate", "LineAmountTypes",
                    "IsReconciled", "Url")
        if key in document
    }  # fmt: skip
    lines = [
        {key: line[key] for key in LINE_ITEM_PROPERTIES if key in line and key != "AccountCode"}
        for line in document["LineItems"]
    ]
    return element | {
        "Contact": {"ContactID": document["Contact"]["ContactID"]},
        "BankAccount": {"AccountID": document["BankAccount"]["AccountID"]},
        "Date": _day_of(document["Date"]).isoformat(),
        "LineItems": lines,
    }


def _day_of(ms: str) -> date:
    parsed = parse_day(ms)
    if parsed is None:  # pragma: no cover - documents are written by _document
        raise ValueError(f"not a document date: {ms!r}")
    return parsed


def _existing(
    organisation: Organisation, element: Mapping[str, Any], *, may_update: bool
) -> tuple[BankTransaction | None, str | None]:
    wanted = read_guid(element.get("BankTransactionID"))
    if wanted is None:
        return None, None
    if not may_update:
        return None, "PUT creates bank transactions; POST updates one by its BankTransactionID."
    found = organisation.bank_transactions.get(wanted)
    if found is None:
        return (
            None,
            "An existing BankTransaction with the specified BankTransactionID could not be found.",
        )
    return found, None


def _echo(element: Mapping[str, Any]) -> dict[str, Any]:
    """The element as Xero names it back in a refusal: its known members only."""
    echoed = dict(element)
    if isinstance(element.get("Contact"), Mapping):
        echoed["Contact"] = canonical(element["Contact"], CONTACT_REFERENCE)
    if isinstance(element.get("BankAccount"), Mapping):
        echoed["BankAccount"] = canonical(element["BankAccount"], ACCOUNT_REFERENCE)
    if isinstance(element.get("LineItems"), list):
        echoed["LineItems"] = [
            canonical(line, LINE_ITEM_PROPERTIES) for line in element["LineItems"]
        ]
    return echoed


class _Reader:
    """Reads one element, collecting every validation error as Xero lists them all."""

    def __init__(
        self,
        organisation: Organisation,
        element: Mapping[str, Any],
        *,
        today: date,
        unit_dp: int,
        known_lines: set[str],
    ) -> None:
        self.organisation = organisation
        self.element = element
        self.today = today
        self.unit_step = Decimal(1).scaleb(-unit_dp)
        self.known_lines = known_lines
        self.errors: list[str] = []

    def plan(self, existing: BankTransaction | None) -> BankTransactionPlan | None:
        type_ = self.type()
        bank = self.bank_account()
        currency = self.currency(bank)
        contact = self.contact()
        day = self.day()
        reference = self.reference()
        amount_types = self.line_amount_types()
        lines = self.lines(amount_types)
        rate = self.rate(currency)
        self.status()
        if lines and totals(amount_types, lines)[2] < 0:
            self.errors.append("The total of a bank transaction must not be negative.")
        if self.errors or type_ is None or bank is None or currency is None:
            return None
        if contact is None or day is None:  # pragma: no cover - each comes with an error
            return None
        return BankTransactionPlan(
            existing=existing,
            type=type_,
            contact=contact,
            bank_account=bank,
            day=day,
            reference=reference,
            currency=currency,
            rate=rate,
            line_amount_types=amount_types,
            lines=lines,
            is_reconciled=read_flag(self.element.get("IsReconciled"), default=False),
            url=read_text(self.element.get("Url")),
        )

    def type(self) -> str | None:
        value = read_upper(self.element.get("Type"))
        if value in SUPPORTED_TYPES:
            return value
        if value in OTHER_TYPES:
            self.errors.append(
                f"The sandbox supports RECEIVE and SPEND bank transactions only, not {value}."
            )
        else:
            self.errors.append("A bank transaction's Type must be RECEIVE or SPEND.")
        return None

    def bank_account(self) -> Account | None:
        given = canonical(self.element.get("BankAccount"), ACCOUNT_REFERENCE)
        account_id, code = read_guid(given.get("AccountID")), read_text(given.get("Code"))
        if account_id is None and code is None:
            self.errors.append("A BankAccount must be given, by its AccountID or Code.")
            return None
        account = (
            self.organisation.accounts.get(account_id)
            if account_id is not None
            else _account_by_code(self.organisation, str(code))
        )
        if account is None or account.status == "DELETED" or account.type != "BANK":
            self.errors.append(
                "The specified bank account details do not match a known bank account"
            )
            return None
        if account.status != "ACTIVE":
            self.errors.append(
                f"The bank account '{account.name}' is archived: restore it before adding "
                "transactions to it."
            )
            return None
        return account

    def currency(self, bank: Account | None) -> str | None:
        if bank is None:
            return None
        held = bank.currency_code or self.organisation.base_currency
        given = read_upper(self.element.get("CurrencyCode"))
        if given is not None and given != held:
            self.errors.append(
                f"The CurrencyCode '{given}' does not match the currency of the bank account "
                f"({held})."
            )
        return held

    def contact(self) -> ContactChoice | None:
        given = canonical(self.element.get("Contact"), CONTACT_REFERENCE)
        contact_id = read_guid(given.get("ContactID"))
        number, name = read_text(given.get("ContactNumber")), read_text(given.get("Name"))
        if contact_id is not None:
            found = self.organisation.contacts.get(contact_id)
            if found is None:
                self.errors.append(f"The Contact with ContactID '{contact_id}' could not be found.")
            return ContactChoice(found) if found is not None else None
        found = find_contact(self.organisation, number=number, name=name)
        if found is not None:
            return ContactChoice(found)
        return self.new_contact(number, name)

    def new_contact(self, number: str | None, name: str | None) -> ContactChoice | None:
        if name is None:
            self.errors.append(
                "The Contact must contain at least 1 of the following elements to identify "
                "the contact: Name, ContactID, ContactNumber"
                if number is None
                else f"No contact has the ContactNumber '{number}': give a Name to create one."
            )
            return None
        if len(name) > MAX_CONTACT_NAME:
            self.errors.append(
                f"The contact Name is too long. Maximum of {MAX_CONTACT_NAME} characters allowed"
            )
            return None
        return ContactChoice(None, name=name, number=number)

    def day(self) -> date | None:
        value = self.element.get("Date")
        if value is None or value == "":
            return self.today  # Xero dates an undated transaction today
        parsed = parse_day(value)
        if parsed is None:
            self.errors.append(f"The Date '{value}' is not a valid date: use YYYY-MM-DD.")
        return parsed

    def reference(self) -> str | None:
        value = self.element.get("Reference")
        if value is None:
            return None
        text = value if isinstance(value, str) else str(value)
        if len(text) > MAX_REFERENCE:
            self.errors.append(
                f"Reference is too long. Maximum of {MAX_REFERENCE} characters allowed"
            )
        return text

    def line_amount_types(self) -> str:
        value = self.element.get("LineAmountTypes")
        if value is None or value == "":
            return "Exclusive"  # Xero's default (spec)
        found = next((t for t in LINE_AMOUNT_TYPES if t.casefold() == str(value).casefold()), None)
        if found is None:
            self.errors.append(
                f"'{value}' is not a LineAmountTypes: use Exclusive, Inclusive or NoTax."
            )
        return found or "Exclusive"

    def lines(self, amount_types: str) -> tuple[Line, ...]:
        given = self.element.get("LineItems")
        if not isinstance(given, list) or not given:
            self.errors.append("A bank transaction needs at least one line item.")
            return ()
        lines = [self.line(canonical(item, LINE_ITEM_PROPERTIES), amount_types) for item in given]
        return tuple(line for line in lines if line is not None)

    def line(self, item: Mapping[str, Any], amount_types: str) -> Line | None:
        account = self.line_account(item)
        amounts = self.line_amounts(item)
        tax_type, tax = self.line_tax(item, account, amount_types)
        if account is None or amounts is None:
            return None
        line_id = read_guid(item.get("LineItemID"))
        description = item.get("Description")
        return Line(
            line_item_id=line_id if line_id in self.known_lines else new_id(),
            description=description if isinstance(description, str) and description else None,
            quantity=amounts[0],
            unit_amount=amounts[1],
            account=account,
            tax_type=tax_type,
            tax_amount=tax,
            line_amount=amounts[2],
        )

    def line_account(self, item: Mapping[str, Any]) -> Account | None:
        account_id, code = read_guid(item.get("AccountID")), read_text(item.get("AccountCode"))
        if account_id is None and code is None:
            self.errors.append("Account code or ID must be specified.")
            return None
        account = (
            self.organisation.accounts.get(account_id)
            if account_id is not None
            else _account_by_code(self.organisation, str(code))
        )
        shown = code or account_id
        if account is None or account.type == "BANK":
            self.errors.append(f"Account code '{shown}' is not a valid code for this document.")
            return None
        if account.status != "ACTIVE":
            self.errors.append(
                f"Account code '{shown}' has been archived, or has been deleted. Each line item "
                "must reference a valid account."
            )
            return None
        return account

    def line_amounts(self, item: Mapping[str, Any]) -> tuple[Decimal, Decimal, Decimal] | None:
        """(Quantity, UnitAmount, LineAmount): Quantity defaults to 1; a LineAmount without
        a UnitAmount gives it (spec); both given must agree."""
        try:
            quantity = _optional(item.get("Quantity"), Decimal(1)).quantize(QUANTITY_STEP)
            unit = _optional(item.get("UnitAmount"), None)
            amount = _optional(item.get("LineAmount"), None)
        except ValueError:
            self.errors.append("Quantity, UnitAmount and LineAmount must be numbers.")
            return None
        if quantity < 0:
            self.errors.append(
                f"The quantity value '{quantity}' is invalid. Quantity must not be less than zero."
            )
            return None
        if unit is not None:
            return self.priced_line(quantity, unit.quantize(self.unit_step, ROUND_HALF_UP), amount)
        if amount is None:
            self.errors.append("A line item needs a UnitAmount or a LineAmount.")
            return None
        if quantity == 0:
            self.errors.append("A line item with a LineAmount needs a Quantity above zero.")
            return None
        amount = money(amount)
        return quantity, (amount / quantity).quantize(self.unit_step, ROUND_HALF_UP), amount

    def priced_line(
        self, quantity: Decimal, unit: Decimal, amount: Decimal | None
    ) -> tuple[Decimal, Decimal, Decimal] | None:
        computed = money(quantity * unit)
        if amount is not None and money(amount) != computed:
            self.errors.append(
                f"The LineAmount {amount} does not equal Quantity x UnitAmount ({computed})."
            )
            return None
        return quantity, unit, computed

    def line_tax(
        self, item: Mapping[str, Any], account: Account | None, amount_types: str
    ) -> tuple[str, Decimal]:
        if amount_types == "NoTax":
            return "NONE", Decimal("0.00")
        tax_type = read_text(item.get("TaxType")) or (account.tax_type if account else "NONE")
        try:
            return tax_type, money(_optional(item.get("TaxAmount"), Decimal(0)))
        except ValueError:
            self.errors.append("TaxAmount must be a number.")
            return tax_type, Decimal("0.00")

    def rate(self, currency: str | None) -> Decimal:
        value = self.element.get("CurrencyRate")
        if currency in {None, self.organisation.base_currency} or value is None:
            return Decimal(1).quantize(RATE_STEP)  # the sandbox has no exchange rates
        try:
            rate = read_decimal(value)
        except ValueError:
            rate = Decimal(0)
        if rate <= 0:
            self.errors.append("CurrencyRate must be a number above zero.")
        return rate.quantize(RATE_STEP)

    def status(self) -> None:
        value = read_upper(self.element.get("Status"))
        if value not in {None, "AUTHORISED"}:
            self.errors.append(
                f"The Status '{value}' cannot be set here: bank transactions are AUTHORISED "
                "(POST Status DELETED with a BankTransactionID deletes one)."
            )


def totals(amount_types: str, lines: Iterable[Line]) -> tuple[Decimal, Decimal, Decimal]:
    """(SubTotal, TotalTax, Total): Inclusive lines hold their tax, Exclusive ones add it."""
    lines = list(lines)
    line_sum = sum((line.line_amount for line in lines), Decimal("0.00"))
    tax = sum((line.tax_amount for line in lines), Decimal("0.00"))
    if amount_types == "Inclusive":
        return line_sum - tax, tax, line_sum
    return line_sum, tax, line_sum + tax


def _optional(value: Any, default: Decimal | None) -> Any:
    return default if value is None else read_decimal(value)


def _account_by_code(organisation: Organisation, code: str) -> Account | None:
    """An account by its code, ignoring case; a live one before a deleted one."""
    matches = [
        account
        for account in organisation.accounts.values()
        if (account.code or "").casefold() == code.casefold()
    ]
    matches.sort(key=lambda account: account.status == "DELETED")
    return matches[0] if matches else None


def _contact_for(organisation: Organisation, choice: ContactChoice, now: datetime) -> Contact:
    """The chosen contact; a new one is made once, even when several elements name it."""
    if choice.existing is not None:
        return choice.existing
    found = find_contact(organisation, number=choice.number, name=choice.name)
    if found is not None:
        return found
    contact = Contact(
        contact_id=new_id(), name=str(choice.name), updated_at=now, contact_number=choice.number
    )
    organisation.contacts[contact.contact_id] = contact
    return contact


def _document(
    transaction_id: str, plan: BankTransactionPlan, contact: Contact, now: datetime
) -> dict[str, Any]:
    bank = plan.bank_account
    bank_reference = {"AccountID": bank.account_id, "Name": bank.name}
    if bank.code:
        bank_reference["Code"] = bank.code
    contact_reference = {"ContactID": contact.contact_id, "Name": contact.name}
    if contact.contact_number:
        contact_reference["ContactNumber"] = contact.contact_number
    sub_total, total_tax, total = totals(plan.line_amount_types, plan.lines)
    document: dict[str, Any] = {
        "BankTransactionID": transaction_id,
        "BankAccount": bank_reference,
        "Type": plan.type,
        "IsReconciled": plan.is_reconciled,
        "CurrencyRate": plan.rate,
        "Contact": contact_reference,
        "Date": ms_day(plan.day),
        "Status": "AUTHORISED",
        "LineAmountTypes": plan.line_amount_types,
        "LineItems": [_line_document(line) for line in plan.lines],
        "SubTotal": sub_total,
        "TotalTax": total_tax,
        "Total": total,
        "UpdatedDateUTC": ms_date_utc(now),
        "CurrencyCode": plan.currency,
        "HasAttachments": False,
    }
    if plan.reference is not None:
        document["Reference"] = plan.reference
    if plan.url is not None:
        document["Url"] = plan.url
    return document


def _line_document(line: Line) -> dict[str, Any]:
    document: dict[str, Any] = {"LineItemID": line.line_item_id}
    if line.description is not None:
        document["Description"] = line.description
    document |= {"Quantity": line.quantity, "UnitAmount": line.unit_amount}
    if line.account.code:
        document["AccountCode"] = line.account.code
    return document | {
        "AccountID": line.account.account_id,
        "TaxType": line.tax_type,
        "TaxAmount": line.tax_amount,
        "LineAmount": line.line_amount,
        "Tracking": [],
    }
