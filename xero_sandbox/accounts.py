"""The chart of accounts, as the Accounting API keeps it (`/Accounts`).

- DELETED accounts vanish from the API; an account with transactions cannot be deleted
  (archive it instead).
- Codes and names are unique among the accounts the API shows, ignoring case; a code is at
  most 10 characters, a name at most 150; only bank accounts may go without a code.
- A BANK account needs a bank account number and a currency the organisation holds; its
  currency cannot change, and no account can become a bank account or stop being one.
- An update changes the members it gives and keeps the others.

Messages are Xero's own where known: "Please enter a unique Name." (spec example), "Please
enter a unique Code.", "Please enter a valid Bank Account Number.", "Account Code is too
long…", as Xero has been seen to send them. "The currency code '…' is not subscribed to by
this organisation." is Xero-like but unconfirmed. Every other message is the sandbox's wording.
"""

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from xero_sandbox.accounting import CURRENCY_NAMES, Refusal
from xero_sandbox.accounting_json import (
    canonical,
    ms_date_utc,
    read_flag,
    read_text,
    read_upper,
)
from xero_sandbox.state import Account, Organisation, new_id
from xero_sandbox.where import Fields, Row

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
"""What Xero echoes as the id of an object it refused to create (spec examples)."""
ACCOUNT_PROPERTIES = (
    "Code", "Name", "AccountID", "Type", "BankAccountNumber", "Status", "Description",
    "BankAccountType", "CurrencyCode", "TaxType", "EnablePaymentsToAccount",
    "ShowInExpenseClaims", "Class", "SystemAccount", "ReportingCode", "ReportingCodeName",
    "HasAttachments", "UpdatedDateUTC", "AddToWatchlist",
)  # fmt: skip
ACCOUNT_CLASSES: Mapping[str, str] = MappingProxyType(
    {
        "BANK": "ASSET", "CURRENT": "ASSET", "CURRLIAB": "LIABILITY", "DEPRECIATN": "EXPENSE",
        "DIRECTCOSTS": "EXPENSE", "EQUITY": "EQUITY", "EXPENSE": "EXPENSE", "FIXED": "ASSET",
        "INVENTORY": "ASSET", "LIABILITY": "LIABILITY", "NONCURRENT": "ASSET",
        "OTHERINCOME": "REVENUE", "OVERHEADS": "EXPENSE", "PREPAYMENT": "ASSET",
        "REVENUE": "REVENUE", "SALES": "REVENUE", "TERMLIAB": "LIABILITY", "PAYG": "LIABILITY",
    }
)  # fmt: skip
_REPORTING = {
    "ASSET": ("ASS", "Assets"), "EQUITY": ("EQU", "Equity"), "EXPENSE": ("EXP", "Expense"),
    "LIABILITY": ("LIA", "Liabilities"), "REVENUE": ("REV", "Revenue"),
}  # fmt: skip
BANK_ACCOUNT_TYPES = ("BANK", "CREDITCARD", "PAYPAL")
MAX_ACCOUNT_CODE = 10
MAX_ACCOUNT_NAME = 150
ACCOUNT_FIELDS = Fields(
    "Account",
    {
        "AccountID": "guid", "Code": "string", "Name": "string", "Type": "enum",
        "BankAccountNumber": "string", "Status": "enum", "Description": "string",
        "BankAccountType": "enum", "CurrencyCode": "enum", "TaxType": "string",
        "EnablePaymentsToAccount": "bool", "ShowInExpenseClaims": "bool", "Class": "enum",
        "SystemAccount": "enum", "ReportingCode": "string", "ReportingCodeName": "string",
        "HasAttachments": "bool", "UpdatedDateUTC": "datetime", "AddToWatchlist": "bool",
    },
)  # fmt: skip


def account_document(account: Account, organisation: Organisation) -> dict[str, Any]:
    """An account as `GET /Accounts` shows it; bank details and currency on BANK only."""
    document: dict[str, Any] = {"AccountID": account.account_id}
    if account.code:
        document["Code"] = account.code
    document |= {
        "Name": account.name,
        "Status": account.status,
        "Type": account.type,
        "TaxType": account.tax_type,
    }
    if account.description:
        document["Description"] = account.description
    document |= {
        "Class": account.account_class,
        "EnablePaymentsToAccount": account.enable_payments_to_account,
        "ShowInExpenseClaims": account.show_in_expense_claims,
        "BankAccountType": account.bank_account_type or "",
    }
    if account.type == "BANK":
        if account.bank_account_number:
            document["BankAccountNumber"] = account.bank_account_number
        document["CurrencyCode"] = account.currency_code or organisation.base_currency
    if account.account_class in _REPORTING:
        code, name = _REPORTING[account.account_class]
        document |= {"ReportingCode": code, "ReportingCodeName": name}
    return document | {
        "HasAttachments": False,
        "UpdatedDateUTC": ms_date_utc(updated_at(account, organisation)),
        "AddToWatchlist": account.add_to_watchlist,
    }


def account_row(account: Account, organisation: Organisation) -> Row:
    return account_document(account, organisation) | {
        "UpdatedDateUTC": updated_at(account, organisation)
    }


def updated_at(account: Account, organisation: Organisation) -> datetime:
    return account.updated_at or organisation.created_at


def visible_accounts(organisation: Organisation) -> list[Account]:
    """The chart as the API shows it: DELETED accounts are gone."""
    return [a for a in organisation.accounts.values() if a.status != "DELETED"]


def find_account(organisation: Organisation, account_id: str) -> Account | None:
    account = organisation.accounts.get(account_id.lower())
    return account if account is not None and account.status != "DELETED" else None


def create_account(organisation: Organisation, raw: Any, now: datetime) -> Account:
    """`PUT /Accounts`: one new account, or a Refusal naming every problem."""
    fields = canonical(raw, ACCOUNT_PROPERTIES)
    errors = _account_errors(organisation, fields, None)
    if errors:
        raise Refusal(errors, element=fields | {"AccountID": ZERO_GUID})
    type_ = str(read_upper(fields["Type"]))
    account = Account(
        account_id=new_id(),
        name=str(read_text(fields["Name"])),
        type=type_,
        account_class=ACCOUNT_CLASSES[type_],
        code=read_text(fields.get("Code")),
        tax_type=read_text(fields.get("TaxType")) or "NONE",
        updated_at=now,
    )
    if type_ == "BANK":
        account.currency_code = read_upper(fields.get("CurrencyCode")) or organisation.base_currency
        account.bank_account_type = "BANK"
    _apply_account_fields(account, fields)
    organisation.accounts[account.account_id] = account
    return account


def update_account(organisation: Organisation, account: Account, raw: Any, now: datetime) -> None:
    """`POST /Accounts/{AccountID}`: the members given change; the others stay."""
    fields = canonical(raw, ACCOUNT_PROPERTIES)
    errors = _account_errors(organisation, fields, account)
    if errors:
        raise Refusal(errors, element=fields | {"AccountID": account.account_id})
    if "Type" in fields:
        account.type = str(read_upper(fields["Type"]))
        account.account_class = ACCOUNT_CLASSES[account.type]
    for member, attribute in (("Name", "name"), ("Code", "code"), ("TaxType", "tax_type")):
        if member in fields:
            setattr(account, attribute, read_text(fields[member]) or getattr(account, attribute))
    if "Status" in fields:
        account.status = "ARCHIVED" if read_upper(fields["Status"]) == "ARCHIVED" else "ACTIVE"
    _apply_account_fields(account, fields)
    account.updated_at = now


def delete_account(organisation: Organisation, account: Account, now: datetime) -> None:
    """`DELETE /Accounts/{AccountID}`: refused while any transaction uses the account."""
    if account_in_use(organisation, account):
        raise Refusal(
            [
                "This account cannot be deleted as it has transactions against it. "
                "Archive it instead."
            ],
            element=account_document(account, organisation),
        )
    account.status = "DELETED"
    account.updated_at = now


def account_in_use(organisation: Organisation, account: Account) -> bool:
    for transaction in organisation.bank_transactions.values():
        if transaction.bank_account_id == account.account_id:
            return True
        lines = transaction.document.get("LineItems", [])
        if any(line.get("AccountID") == account.account_id for line in lines):
            return True
    return False


def _apply_account_fields(account: Account, fields: Mapping[str, Any]) -> None:
    """Members a create and an update treat alike."""
    if account.type == "BANK":
        account.bank_account_number = read_text(fields.get("BankAccountNumber")) or (
            account.bank_account_number
        )
        account.bank_account_type = read_upper(fields.get("BankAccountType")) or (
            account.bank_account_type
        )
    elif "Description" in fields:  # bank accounts have none (spec)
        account.description = read_text(fields["Description"])
    for member, attribute in (
        ("EnablePaymentsToAccount", "enable_payments_to_account"),
        ("ShowInExpenseClaims", "show_in_expense_claims"),
        ("AddToWatchlist", "add_to_watchlist"),
    ):
        setattr(account, attribute, read_flag(fields.get(member), getattr(account, attribute)))


def _account_errors(
    organisation: Organisation, fields: Mapping[str, Any], current: Account | None
) -> list[str]:
    if "Type" in fields or current is None:
        type_ = read_upper(fields.get("Type"))
        if type_ not in ACCOUNT_CLASSES:
            return [
                "A valid account Type must be given: one of " + ", ".join(ACCOUNT_CLASSES) + "."
            ]
    else:
        type_ = current.type
    errors = _name_errors(organisation, fields, current)
    errors += _code_errors(organisation, fields, current, bank=type_ == "BANK")
    if current is not None:
        errors += _change_errors(current, fields, type_)
    if type_ == "BANK":
        errors += _bank_errors(organisation, fields, current)
    return errors


def _name_errors(
    organisation: Organisation, fields: Mapping[str, Any], current: Account | None
) -> list[str]:
    if current is not None and "Name" not in fields:
        return []
    name = read_text(fields.get("Name"))
    if name is None:
        return ["Please enter a Name."]
    if len(name) > MAX_ACCOUNT_NAME:
        return [f"Account Name is too long. Maximum of {MAX_ACCOUNT_NAME} characters allowed"]
    if _taken(organisation, "name", name, current):
        return ["Please enter a unique Name."]
    return []


def _code_errors(
    organisation: Organisation, fields: Mapping[str, Any], current: Account | None, *, bank: bool
) -> list[str]:
    if current is not None and "Code" not in fields:
        return []
    code = read_text(fields.get("Code"))
    if code is None:
        return [] if bank else ["Please enter a Code."]  # bank accounts may go without
    if len(code) > MAX_ACCOUNT_CODE:
        return [f"Account Code is too long. Maximum of {MAX_ACCOUNT_CODE} characters allowed"]
    if _taken(organisation, "code", code, current):
        return ["Please enter a unique Code."]
    return []


def _taken(organisation: Organisation, attribute: str, value: str, current: Account | None) -> bool:
    wanted = value.casefold()
    return any(
        account is not current and (getattr(account, attribute) or "").casefold() == wanted
        for account in visible_accounts(organisation)
    )


def _change_errors(current: Account, fields: Mapping[str, Any], type_: str | None) -> list[str]:
    errors = []
    if type_ != current.type and "BANK" in {type_, current.type}:
        errors.append("A bank account's Type cannot be changed, nor can an account become one.")
    status = read_upper(fields.get("Status"))
    if "Status" in fields and status not in {"ACTIVE", "ARCHIVED"}:
        errors.append(
            f"The Status '{status}' cannot be set on an account: use ACTIVE or ARCHIVED "
            "(DELETE /Accounts/{AccountID} deletes one)."
        )
    return errors


def _bank_errors(
    organisation: Organisation, fields: Mapping[str, Any], current: Account | None
) -> list[str]:
    errors = []
    number = read_text(fields.get("BankAccountNumber"))
    if number is None and (current is None or "BankAccountNumber" in fields):
        errors.append("Please enter a valid Bank Account Number.")
    kind = read_upper(fields.get("BankAccountType"))
    if kind is not None and kind not in BANK_ACCOUNT_TYPES:
        errors.append(f"'{kind}' is not a BankAccountType: use BANK, CREDITCARD or PAYPAL.")
    code = read_upper(fields.get("CurrencyCode"))
    if code is None:
        return errors
    if code not in CURRENCY_NAMES:
        errors.append(f"'{code}' is not a valid currency code.")
    elif current is not None and code != (current.currency_code or organisation.base_currency):
        errors.append("The currency of a bank account cannot be changed.")
    elif code not in organisation.currencies:
        errors.append(f"The currency code '{code}' is not subscribed to by this organisation.")
    return errors
