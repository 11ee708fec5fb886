"""The Accounting API: Organisation, Accounts, Currencies and BankTransactions, as Xero keeps them.

The `client` fixture checks every exchange against Xero's OpenAPI documents (see
tests/sandbox/contract.py); `lenient_client` (conftest.py) does not, for the few tests that
send what Xero accepts but its document does not describe.
"""

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.sandbox.conftest import Connect, Tenant
from xero_sandbox.state import Sandbox

API = "/api.xro/2.0"


def decoded(response: httpx.Response) -> Any:
    """The body with numbers as Decimals, so 12.50 is seen as written."""
    return json.loads(response.text, parse_float=Decimal)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return decoded(response)


def refused(response: httpx.Response) -> list[str]:
    """The messages of a 400 ValidationException, every element's."""
    assert response.status_code == 400, response.text
    body = decoded(response)
    assert body["Type"] == "ValidationException"
    assert body["ErrorNumber"] == 10
    return [e["Message"] for element in body["Elements"] for e in element["ValidationErrors"]]


def query_refused(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["Type"] == "QueryParseException"
    assert body["ErrorNumber"] == 16
    return str(body["Message"])


async def new_bank_account(
    client: httpx.AsyncClient, tenant: Tenant, **fields: Any
) -> dict[str, Any]:
    account = {"Name": "Operating", "Type": "BANK", "BankAccountNumber": "012-345-678"} | fields
    body = ok(await client.put(f"{API}/Accounts", headers=tenant.headers, json=account))
    created: dict[str, Any] = body["Accounts"][0]
    return created


def spend(account_id: str, **overrides: Any) -> dict[str, Any]:
    element = {
        "Type": "SPEND",
        "Contact": {"Name": "Coffee Corner"},
        "BankAccount": {"AccountID": account_id},
        "Date": "2024-05-01",
        "Reference": "card 1234",
        "LineItems": [{"Description": "Coffee", "UnitAmount": 12.5, "AccountCode": "429"}],
    }
    return element | overrides


async def put_transactions(
    client: httpx.AsyncClient, tenant: Tenant, *elements: dict[str, Any], **params: str
) -> httpx.Response:
    return await client.put(
        f"{API}/BankTransactions",
        headers=tenant.headers,
        params=params,
        json={"BankTransactions": list(elements)},
    )


@pytest.fixture
async def tenant(connect: Connect) -> Tenant:
    return await connect(name="Acme HK", base_currency="HKD", currencies=["USD"])


@pytest.fixture
async def bank(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    return await new_bank_account(client, tenant)


# ----------------------------------------------------------------------------- organisation


async def test_organisation_describes_the_connected_tenant(
    client: httpx.AsyncClient, connect: Connect
) -> None:
    tenant = await connect(
        name="Kiwi Ltd", base_currency="NZD", country_code="NZ", timezone="NEWZEALANDSTANDARDTIME"
    )
    body = ok(await client.get(f"{API}/Organisation", headers=tenant.headers))
    assert body["Status"] == "OK"
    assert body["ProviderName"] == tenant.app.name
    assert body["DateTimeUTC"].startswith("/Date(")
    (organisation,) = body["Organisations"]
    assert organisation["OrganisationID"] == tenant.tenant_id
    assert organisation["Name"] == "Kiwi Ltd"
    assert organisation["BaseCurrency"] == "NZD"
    assert organisation["Version"] == "NZ"
    assert organisation["Timezone"] == "NEWZEALANDSTANDARDTIME"
    assert organisation["Class"] == "STANDARD"  # one currency: no multi-currency plan
    assert organisation["OrganisationEntityType"] == "COMPANY"
    assert organisation["CreatedDateUTC"].startswith("/Date(")


async def test_a_multi_currency_organisation_elsewhere_is_global_and_premium(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    (organisation,) = ok(await client.get(f"{API}/organisation", headers=tenant.headers))[
        "Organisations"
    ]
    assert organisation["Version"] == "GLOBAL"
    assert organisation["Class"] == "PREMIUM"
    assert organisation["Edition"] == "BUSINESS"


# ----------------------------------------------------------------------------- accounts


async def test_the_chart_shows_xero_fields_and_currency_on_bank_accounts_only(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    body = ok(await client.get(f"{API}/Accounts", headers=tenant.headers))
    accounts = {a["Name"]: a for a in body["Accounts"]}
    assert accounts["Operating"] == bank
    assert bank["CurrencyCode"] == "HKD"  # the base currency when none is given
    assert bank["BankAccountType"] == "BANK"
    assert bank["Class"] == "ASSET"
    assert bank["UpdatedDateUTC"].endswith("+0000)/")
    sales = accounts["Sales"]
    assert sales["Code"] == "200"
    assert sales["ReportingCode"] == "REV"
    assert "CurrencyCode" not in sales
    assert "BankAccountNumber" not in sales


async def test_one_account_by_id_and_404_for_an_unknown_one(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    body = ok(await client.get(f"{API}/Accounts/{bank['AccountID']}", headers=tenant.headers))
    assert body["Accounts"] == [bank]
    missing = await client.get(
        f"{API}/Accounts/00000000-0000-0000-0000-000000000001", headers=tenant.headers
    )
    assert missing.status_code == 404


async def test_deleted_accounts_are_not_returned(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], sandbox: Sandbox
) -> None:
    sandbox.organisations[tenant.tenant_id].accounts[bank["AccountID"]].status = "DELETED"
    body = ok(await client.get(f"{API}/Accounts", headers=tenant.headers))
    assert bank["AccountID"] not in {a["AccountID"] for a in body["Accounts"]}
    by_id = await client.get(f"{API}/Accounts/{bank['AccountID']}", headers=tenant.headers)
    assert by_id.status_code == 404


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ('Type=="BANK"', {"Operating", "Dollars"}),
        ("Type==BANK", {"Operating", "Dollars"}),  # a bare enum value, as the Ruby SDK sends
        ('type=="bank"', {"Operating", "Dollars"}),  # names and text ignore case
        ('Type=="BANK" AND CurrencyCode=="USD"', {"Dollars"}),
        ('Type=="BANK"&&Status=="ACTIVE"', {"Operating", "Dollars"}),
        ('BankAccountNumber=="999-1"', {"Dollars"}),
        ('Code=="404"', {"Bank Fees"}),
        ('Name=="Sales" OR Code=="260"', {"Sales", "Other Revenue"}),
        ('Name=="Sales" || Name=="Advertising"', {"Sales", "Advertising"}),
        ('(Code=="200" OR Code=="260") AND Type=="REVENUE"', {"Sales", "Other Revenue"}),
        ('Status=="ARCHIVED"', set()),
        ('Name.StartsWith("Acc")', {"Accounts Receivable", "Accounts Payable"}),
        ('Class=="REVENUE" AND NOT Name.Contains("other")', {"Sales", "Interest Income"}),
    ],
)
async def test_where_filters_the_chart(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], where: str, expected: set[str]
) -> None:
    await new_bank_account(
        client, tenant, Name="Dollars", BankAccountNumber="999-1", CurrencyCode="USD"
    )
    response = await client.get(f"{API}/Accounts", headers=tenant.headers, params={"where": where})
    assert {a["Name"] for a in ok(response)["Accounts"]} == expected


async def test_ids_are_compared_as_guids(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    where = f'AccountID==Guid("{bank["AccountID"]}")'
    body = ok(await client.get(f"{API}/Accounts", headers=tenant.headers, params={"where": where}))
    assert [a["AccountID"] for a in body["Accounts"]] == [bank["AccountID"]]
    as_text = f'AccountID=="{bank["AccountID"]}"'  # Xero refuses a Guid compared with a string
    response = await client.get(
        f"{API}/Accounts", headers=tenant.headers, params={"where": as_text}
    )
    assert (
        query_refused(response)
        == "Operator '==' incompatible with operand types 'Guid' and 'String'"
    )


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ('Colour=="RED"', "No property or field 'Colour' exists in type 'Account'"),
        ('Type=="BANK" AND', "Expression expected"),
        ('(Type=="BANK"', "')' or operator expected"),
        ('Name=="Sales', "Unterminated string literal"),
        ("Name==Sales", "No property or field 'Sales' exists in type 'Account'"),
        ("EnablePaymentsToAccount > true", "Operator '>' incompatible with operand types"),
        ('Name=="a" Code=="b"', "')' or operator expected"),
        ("Name", "Expression of type 'Boolean' expected"),
    ],
)
async def test_a_where_xero_cannot_parse_is_a_query_parse_exception(
    client: httpx.AsyncClient, tenant: Tenant, where: str, message: str
) -> None:
    response = await client.get(f"{API}/Accounts", headers=tenant.headers, params={"where": where})
    assert query_refused(response).startswith(message)


async def test_order_sorts_the_chart(client: httpx.AsyncClient, tenant: Tenant) -> None:
    params = {"where": 'Type=="REVENUE"', "order": "Name DESC"}
    body = ok(await client.get(f"{API}/Accounts", headers=tenant.headers, params=params))
    assert [a["Name"] for a in body["Accounts"]] == ["Sales", "Other Revenue", "Interest Income"]
    bad = await client.get(f"{API}/Accounts", headers=tenant.headers, params={"order": "Nope"})
    assert query_refused(bad) == "No property or field 'Nope' exists in type 'Account'"


async def test_if_modified_since_returns_only_later_changes(
    client: httpx.AsyncClient, tenant: Tenant, sandbox: Sandbox
) -> None:
    sandbox.clock.advance(60)  # tokens live 30 minutes
    since = sandbox.clock.now().isoformat()
    await new_bank_account(client, tenant)
    headers = tenant.headers | {"If-Modified-Since": since}
    body = ok(await client.get(f"{API}/Accounts", headers=headers))
    assert [a["Name"] for a in body["Accounts"]] == ["Operating"]


async def test_a_new_bank_account_in_a_held_currency(
    lenient_client: httpx.AsyncClient, tenant: Tenant, sandbox: Sandbox
) -> None:
    # Xero reads member names ignoring case (its own examples send camelCase)
    body = {"name": "USD Wallet", "type": "BANK", "bankAccountNumber": "55", "currencyCode": "USD"}
    created = ok(await lenient_client.put(f"{API}/Accounts", headers=tenant.headers, json=body))
    (account,) = created["Accounts"]
    assert account["CurrencyCode"] == "USD"
    assert account["Status"] == "ACTIVE"
    assert account["AccountID"] in sandbox.organisations[tenant.tenant_id].accounts


async def test_a_bank_account_in_a_currency_the_organisation_does_not_hold_is_refused(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = {"Name": "Yuan", "Type": "BANK", "BankAccountNumber": "1", "CurrencyCode": "CNY"}
    response = await client.put(f"{API}/Accounts", headers=tenant.headers, json=body)
    assert refused(response) == [
        "The currency code 'CNY' is not subscribed to by this organisation."
    ]
    body["CurrencyCode"] = "XYZ"
    response = await client.put(f"{API}/Accounts", headers=tenant.headers, json=body)
    assert refused(response) == ["'XYZ' is not a valid currency code."]


async def test_a_bank_account_needs_a_number_and_other_accounts_a_code(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    no_number = {"Name": "Petty cash", "Type": "BANK"}
    response = await client.put(f"{API}/Accounts", headers=tenant.headers, json=no_number)
    assert refused(response) == ["Please enter a valid Bank Account Number."]
    no_code = {"Name": "Travel", "Type": "EXPENSE"}
    response = await client.put(f"{API}/Accounts", headers=tenant.headers, json=no_code)
    assert refused(response) == ["Please enter a Code."]


async def test_codes_and_names_must_be_unique(
    client: httpx.AsyncClient, tenant: Tenant, sandbox: Sandbox
) -> None:
    before = len(sandbox.organisations[tenant.tenant_id].accounts)
    copy = {"Code": "200", "Name": "sales", "Type": "REVENUE"}
    response = await client.put(f"{API}/Accounts", headers=tenant.headers, json=copy)
    assert refused(response) == ["Please enter a unique Name.", "Please enter a unique Code."]
    element = response.json()["Elements"][0]
    assert element["AccountID"] == "00000000-0000-0000-0000-000000000000"
    assert element["Code"] == "200"
    assert len(sandbox.organisations[tenant.tenant_id].accounts) == before


async def test_an_update_renames_and_archives(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    url = f"{API}/Accounts/{bank['AccountID']}"
    change = {"Accounts": [{"Name": "Operating (old)", "Status": "ARCHIVED"}]}
    (account,) = ok(await client.post(url, headers=tenant.headers, json=change))["Accounts"]
    assert (account["Name"], account["Status"]) == ("Operating (old)", "ARCHIVED")
    assert account["BankAccountNumber"] == bank["BankAccountNumber"]  # untouched members stay
    reactivate = {"Accounts": [{"Status": "ACTIVE"}]}
    again = ok(await client.post(url, headers=tenant.headers, json=reactivate))
    assert again["Accounts"][0]["Status"] == "ACTIVE"
    clash = await client.post(url, headers=tenant.headers, json={"Accounts": [{"Name": "Sales"}]})
    assert refused(clash) == ["Please enter a unique Name."]
    unknown = await client.post(
        f"{API}/Accounts/00000000-0000-0000-0000-000000000001",
        headers=tenant.headers,
        json={"Accounts": [{"Name": "x"}]},
    )
    assert unknown.status_code == 404


async def test_deleting_an_unused_account(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    url = f"{API}/Accounts/{bank['AccountID']}"
    body = ok(await client.delete(url, headers=tenant.headers))
    assert body["Accounts"][0]["Status"] == "DELETED"
    assert (await client.get(url, headers=tenant.headers)).status_code == 404
    assert (await client.delete(url, headers=tenant.headers)).status_code == 404


async def test_an_account_with_transactions_cannot_be_deleted(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], sandbox: Sandbox
) -> None:
    ok(await put_transactions(client, tenant, spend(bank["AccountID"])))
    organisation = sandbox.organisations[tenant.tenant_id]
    fees = next(a for a in organisation.accounts.values() if a.code == "429")
    for account_id in (bank["AccountID"], fees.account_id):
        response = await client.delete(f"{API}/Accounts/{account_id}", headers=tenant.headers)
        assert refused(response) == [
            "This account cannot be deleted as it has transactions against it. Archive it instead."
        ]
        assert organisation.accounts[account_id].status == "ACTIVE"


# ----------------------------------------------------------------------------- currencies


async def test_currencies_are_the_ones_the_organisation_holds(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = ok(await client.get(f"{API}/Currencies", headers=tenant.headers))
    assert body["Currencies"] == [
        {"Code": "HKD", "Description": "Hong Kong Dollar"},
        {"Code": "USD", "Description": "United States Dollar"},
    ]
    params = {"where": 'Code=="USD"'}
    only = ok(await client.get(f"{API}/Currencies", headers=tenant.headers, params=params))
    assert [c["Code"] for c in only["Currencies"]] == ["USD"]


async def test_a_multi_currency_organisation_adds_a_currency_and_can_bank_in_it(
    client: httpx.AsyncClient, tenant: Tenant, sandbox: Sandbox
) -> None:
    body = ok(await client.put(f"{API}/Currencies", headers=tenant.headers, json={"Code": "EUR"}))
    assert body["Currencies"] == [{"Code": "EUR", "Description": "Euro"}]
    assert sandbox.organisations[tenant.tenant_id].currencies == ["HKD", "USD", "EUR"]
    account = await new_bank_account(client, tenant, Name="Euros", CurrencyCode="EUR")
    assert account["CurrencyCode"] == "EUR"


async def test_an_organisation_without_multi_currency_cannot_add_one(
    client: httpx.AsyncClient, connect: Connect, sandbox: Sandbox
) -> None:
    tenant = await connect(base_currency="USD")
    response = await client.put(f"{API}/Currencies", headers=tenant.headers, json={"Code": "EUR"})
    assert response.status_code == 400
    body = response.json()
    assert body["Type"] == "ValidationException"
    assert "multi-currency" in body["Message"]
    assert sandbox.organisations[tenant.tenant_id].currencies == ["USD"]
    unknown = await client.put(f"{API}/Currencies", headers=tenant.headers, json={"Code": "ABC"})
    assert unknown.json()["Message"] == "'ABC' is not a valid currency code."


# ----------------------------------------------------------------------------- bank transactions


async def test_a_spend_money_transaction_as_xero_stores_it(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], sandbox: Sandbox
) -> None:
    body = ok(await put_transactions(client, tenant, spend(bank["AccountID"])))
    (created,) = body["BankTransactions"]
    assert created["Type"] == "SPEND"
    assert created["Status"] == "AUTHORISED"
    assert created["Reference"] == "card 1234"
    assert created["BankAccount"] == {"AccountID": bank["AccountID"], "Name": "Operating"}
    assert created["Date"] == "/Date(1714521600000+0000)/"  # 2024-05-01, midnight UTC
    assert created["CurrencyCode"] == "HKD"
    assert created["CurrencyRate"] == Decimal("1.000000")
    assert created["IsReconciled"] is False
    assert created["HasAttachments"] is False
    assert created["LineAmountTypes"] == "Exclusive"
    (line,) = created["LineItems"]
    assert line["Quantity"] == Decimal("1.0000")
    assert line["UnitAmount"] == Decimal("12.50")
    assert line["LineAmount"] == Decimal("12.50")
    assert line["AccountCode"] == "429"
    assert (created["SubTotal"], created["TotalTax"], created["Total"]) == (
        Decimal("12.50"),
        Decimal("0.00"),
        Decimal("12.50"),
    )
    assert (
        '"Total":12.50' in (await put_transactions(client, tenant, spend(bank["AccountID"]))).text
    )
    organisation = sandbox.organisations[tenant.tenant_id]
    (contact,) = organisation.contacts.values()  # made once from its name, then found by it
    assert created["Contact"] == {"ContactID": contact.contact_id, "Name": "Coffee Corner"}
    url = f"{API}/BankTransactions/{created['BankTransactionID']}"
    assert ok(await client.get(url, headers=tenant.headers))["BankTransactions"] == [created]


async def test_a_single_object_body_with_camel_case_members_is_accepted(
    lenient_client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    element = {
        "type": "RECEIVE",
        "contact": {"name": "Client"},
        "bankAccount": {"accountID": bank["AccountID"]},
        "date": "2024-05-02T13:45:00",
        "lineitems": [{"quantity": 2, "unitAmount": 10, "accountCode": "200"}],
    }
    url = f"{API}/BankTransactions"
    response = await lenient_client.put(url, headers=tenant.headers, json=element)
    (created,) = ok(response)["BankTransactions"]
    assert created["Type"] == "RECEIVE"
    assert created["Total"] == Decimal("20.00")
    assert created["Date"] == "/Date(1714608000000+0000)/"  # the date part, as written


async def test_summarized_errors_refuse_the_whole_request_and_save_nothing(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], sandbox: Sandbox
) -> None:
    good = spend(bank["AccountID"], Reference="good")
    bad = spend(bank["AccountID"], Reference="bad", Contact={}, LineItems=[])
    response = await put_transactions(client, tenant, good, bad)
    assert refused(response) == [
        "The Contact must contain at least 1 of the following elements to identify the "
        "contact: Name, ContactID, ContactNumber",
        "A bank transaction needs at least one line item.",
    ]
    (element,) = response.json()["Elements"]  # only the refused one, echoed
    assert element["Reference"] == "bad"
    organisation = sandbox.organisations[tenant.tenant_id]
    assert organisation.bank_transactions == {}
    assert organisation.contacts == {}  # not even the good element's new contact


async def test_without_summarized_errors_the_good_elements_are_saved(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], sandbox: Sandbox
) -> None:
    good = spend(bank["AccountID"], Reference="good")
    bad = spend(
        bank["AccountID"], Reference="bad", LineItems=[{"UnitAmount": 1, "AccountCode": "9"}]
    )
    response = await put_transactions(client, tenant, good, bad, summarizeErrors="false")
    first, second = ok(response)["BankTransactions"]
    assert first["StatusAttributeString"] == "OK"
    assert first["Reference"] == "good"
    assert second["StatusAttributeString"] == "ERROR"
    assert second["ValidationErrors"] == [
        {"Message": "Account code '9' is not a valid code for this document."}
    ]
    (saved,) = sandbox.organisations[tenant.tenant_id].bank_transactions.values()
    assert saved.reference == "good"
    assert "StatusAttributeString" not in saved.document  # only in the answer


async def test_an_archived_bank_account_takes_no_transactions(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    url = f"{API}/Accounts/{bank['AccountID']}"
    ok(await client.post(url, headers=tenant.headers, json={"Accounts": [{"Status": "ARCHIVED"}]}))
    response = await put_transactions(client, tenant, spend(bank["AccountID"]))
    assert refused(response) == [
        "The bank account 'Operating' is archived: restore it before adding transactions to it."
    ]


async def test_a_bank_account_restored_by_the_user_takes_transactions_again(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    account = f"/admin/organisations/{tenant.tenant_id}/accounts/{bank['AccountID']}"
    assert (await client.post(f"{account}/archive")).status_code == 200
    assert refused(await put_transactions(client, tenant, spend(bank["AccountID"])))
    assert (await client.post(f"{account}/restore")).json()["status"] == "ACTIVE"
    (created,) = ok(await put_transactions(client, tenant, spend(bank["AccountID"])))[
        "BankTransactions"
    ]
    assert created["BankAccount"]["AccountID"] == bank["AccountID"]


async def test_the_currency_must_be_the_bank_accounts(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    mismatch = spend(bank["AccountID"], CurrencyCode="USD")
    assert refused(await put_transactions(client, tenant, mismatch)) == [
        "The CurrencyCode 'USD' does not match the currency of the bank account (HKD)."
    ]
    dollars = await new_bank_account(
        client, tenant, Name="Dollars", BankAccountNumber="2", CurrencyCode="USD"
    )
    foreign = spend(dollars["AccountID"], CurrencyCode="USD", CurrencyRate=7.8)
    (created,) = ok(await put_transactions(client, tenant, foreign))["BankTransactions"]
    assert (created["CurrencyCode"], created["CurrencyRate"]) == ("USD", Decimal("7.800000"))


@pytest.mark.parametrize(
    "bank_account",
    [
        {"Code": "200"},  # not a bank account
        {"AccountID": "00000000-0000-0000-0000-000000000009"},
        {"Code": "NOPE"},
    ],
)
async def test_the_bank_account_must_be_a_known_bank_account(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], bank_account: dict[str, str]
) -> None:
    element = spend(bank["AccountID"], BankAccount=bank_account)
    assert refused(await put_transactions(client, tenant, element)) == [
        "The specified bank account details do not match a known bank account"
    ]


async def test_a_bank_account_can_be_named_by_its_code(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await new_bank_account(client, tenant, Code="090")
    response = await put_transactions(client, tenant, spend("", BankAccount={"Code": "090"}))
    assert ok(response)["BankTransactions"][0]["BankAccount"]["Code"] == "090"


async def test_line_accounts_must_be_active_non_bank_accounts(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], sandbox: Sandbox
) -> None:
    organisation = sandbox.organisations[tenant.tenant_id]
    next(a for a in organisation.accounts.values() if a.code == "400").status = "ARCHIVED"
    await new_bank_account(client, tenant, Name="Savings", Code="091", BankAccountNumber="3")
    lines = [
        {"UnitAmount": 1, "AccountCode": "999"},
        {"UnitAmount": 1, "AccountCode": "091"},
        {"UnitAmount": 1, "AccountCode": "400"},
        {"UnitAmount": 1},
    ]
    element = spend(bank["AccountID"], LineItems=lines)
    assert refused(await put_transactions(client, tenant, element)) == [
        "Account code '999' is not a valid code for this document.",
        "Account code '091' is not a valid code for this document.",
        "Account code '400' has been archived, or has been deleted. Each line item must "
        "reference a valid account.",
        "Account code or ID must be specified.",
    ]


async def test_contacts_are_found_by_id_and_an_unknown_id_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    first = ok(await put_transactions(client, tenant, spend(bank["AccountID"])))
    contact_id = first["BankTransactions"][0]["Contact"]["ContactID"]
    by_id = spend(bank["AccountID"], Contact={"ContactID": contact_id})
    second = ok(await put_transactions(client, tenant, by_id))
    assert second["BankTransactions"][0]["Contact"]["Name"] == "Coffee Corner"
    unknown = spend(
        bank["AccountID"], Contact={"ContactID": "9c2c64de-12c9-4167-b503-e2c0e1aa1f49"}
    )
    assert refused(await put_transactions(client, tenant, unknown)) == [
        "The Contact with ContactID '9c2c64de-12c9-4167-b503-e2c0e1aa1f49' could not be found."
    ]


async def test_one_new_contact_for_several_elements_naming_it(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], sandbox: Sandbox
) -> None:
    elements = [spend(bank["AccountID"], Contact={"Name": "Newcomer"}) for _ in range(3)]
    body = ok(await put_transactions(client, tenant, *elements))
    assert len({t["Contact"]["ContactID"] for t in body["BankTransactions"]}) == 1
    assert len(sandbox.organisations[tenant.tenant_id].contacts) == 1


@pytest.mark.parametrize(
    ("amount_types", "line", "totals"),
    [
        ("Exclusive", {"UnitAmount": 100, "TaxAmount": 15}, ("100.00", "15.00", "115.00")),
        ("Inclusive", {"UnitAmount": 115, "TaxAmount": 15}, ("100.00", "15.00", "115.00")),
        ("NoTax", {"UnitAmount": 100, "TaxAmount": 15}, ("100.00", "0.00", "100.00")),
        # the unit amount is kept to 2 decimals (0.34) unless unitdp=4 asks for 4
        ("Exclusive", {"Quantity": 3, "UnitAmount": 0.335}, ("1.02", "0.00", "1.02")),
        ("Exclusive", {"Quantity": 4, "LineAmount": 10}, ("10.00", "0.00", "10.00")),
    ],
)
async def test_totals_follow_from_the_lines(
    client: httpx.AsyncClient,
    tenant: Tenant,
    bank: dict[str, Any],
    *,
    amount_types: str,
    line: dict[str, Any],
    totals: tuple[str, str, str],
) -> None:
    element = spend(
        bank["AccountID"],
        LineAmountTypes=amount_types,
        LineItems=[line | {"AccountCode": "429"}],
    )
    (created,) = ok(await put_transactions(client, tenant, element))["BankTransactions"]
    assert (created["SubTotal"], created["TotalTax"], created["Total"]) == tuple(
        Decimal(t) for t in totals
    )


async def test_a_line_amount_gives_the_unit_amount_with_four_decimals_on_request(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    element = spend(
        bank["AccountID"], LineItems=[{"Quantity": 3, "LineAmount": 10, "AccountCode": "429"}]
    )
    response = await put_transactions(client, tenant, element, unitdp="4")
    (line,) = ok(response)["BankTransactions"][0]["LineItems"]
    assert line["UnitAmount"] == Decimal("3.3333")
    url = f"{API}/BankTransactions/{ok(response)['BankTransactions'][0]['BankTransactionID']}"
    two = ok(await client.get(url, headers=tenant.headers))["BankTransactions"][0]
    assert two["LineItems"][0]["UnitAmount"] == Decimal("3.33")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"LineItems": [{"Quantity": -1, "UnitAmount": 5, "AccountCode": "429"}]},
            "The quantity value '-1.0000' is invalid. Quantity must not be less than zero.",
        ),
        (
            {"LineItems": [{"UnitAmount": 5, "LineAmount": 6, "AccountCode": "429"}]},
            "The LineAmount 6 does not equal Quantity x UnitAmount (5.00).",
        ),
        (
            {"LineItems": [{"UnitAmount": -5, "AccountCode": "429"}]},
            "The total of a bank transaction must not be negative.",
        ),
        (
            {"LineAmountTypes": "Gross"},
            "'Gross' is not a LineAmountTypes: use Exclusive, Inclusive or NoTax.",
        ),
        ({"Date": "01/05/2024"}, "The Date '01/05/2024' is not a valid date: use YYYY-MM-DD."),
        ({"Reference": "x" * 256}, "Reference is too long. Maximum of 255 characters allowed"),
        (
            {"Type": "SPEND-PREPAYMENT"},
            "The sandbox supports RECEIVE and SPEND bank transactions only, not SPEND-PREPAYMENT.",
        ),
        ({"Type": None}, "A bank transaction's Type must be RECEIVE or SPEND."),
        (
            {"Status": "VOIDED"},
            "The Status 'VOIDED' cannot be set here: bank transactions are AUTHORISED "
            "(POST Status DELETED with a BankTransactionID deletes one).",
        ),
    ],
)
async def test_an_element_with_a_bad_member_is_refused(
    client: httpx.AsyncClient,
    tenant: Tenant,
    bank: dict[str, Any],
    overrides: dict[str, Any],
    message: str,
) -> None:
    response = await put_transactions(client, tenant, spend(bank["AccountID"], **overrides))
    assert refused(response) == [message]


async def test_references_may_be_255_characters_and_undated_transactions_are_today(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], sandbox: Sandbox
) -> None:
    element = spend(bank["AccountID"], Reference="x" * 255)
    del element["Date"]
    ok(await put_transactions(client, tenant, element))
    (saved,) = sandbox.organisations[tenant.tenant_id].bank_transactions.values()
    assert saved.date == sandbox.clock.now().date()  # the organisation's zone is UTC


async def test_the_same_transaction_sent_twice_is_saved_twice(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], sandbox: Sandbox
) -> None:
    """Xero does not de-duplicate by Reference; only an Idempotency-Key prevents doubles."""
    first = ok(await put_transactions(client, tenant, spend(bank["AccountID"])))
    second = ok(await put_transactions(client, tenant, spend(bank["AccountID"])))
    assert (
        first["BankTransactions"][0]["BankTransactionID"]
        != (second["BankTransactions"][0]["BankTransactionID"])
    )
    assert len(sandbox.organisations[tenant.tenant_id].bank_transactions) == 2


async def test_pages_hold_100_transactions(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    elements = [spend(bank["AccountID"], Reference=f"r{i}") for i in range(150)]
    ok(await put_transactions(client, tenant, *elements))
    url = f"{API}/BankTransactions"
    first = ok(await client.get(url, headers=tenant.headers, params={"page": "1"}))
    assert len(first["BankTransactions"]) == 100
    assert first["pagination"] == {"page": 1, "pageSize": 100, "pageCount": 2, "itemCount": 150}
    second = ok(await client.get(url, headers=tenant.headers, params={"page": "2"}))
    assert [t["Reference"] for t in second["BankTransactions"]] == [
        f"r{i}" for i in range(100, 150)
    ]
    everything = ok(await client.get(url, headers=tenant.headers))
    assert len(everything["BankTransactions"]) == 150
    assert "pagination" not in everything


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ('Reference=="invoice 7"', ["invoice 7"]),
        ('Reference=="INVOICE 7"', ["invoice 7"]),
        ('Type=="RECEIVE"', ["deposit"]),
        ("Date >= DateTime(2024, 05, 02) AND Date < DateTime(2024,05,03)", ["invoice 7"]),
        ('Date < DateTime.Parse("2024-05-02")', ["card 1234"]),
        ("Total > 100", ["deposit"]),
        ('Contact.Name=="Landlord"', ["deposit"]),
        ('Status=="AUTHORISED" AND Reference!="deposit"', ["card 1234", "invoice 7"]),
        ("Reference==null", []),
    ],
)
async def test_where_filters_bank_transactions(
    client: httpx.AsyncClient,
    tenant: Tenant,
    bank: dict[str, Any],
    where: str,
    expected: list[str],
) -> None:
    ok(
        await put_transactions(
            client,
            tenant,
            spend(bank["AccountID"]),
            spend(bank["AccountID"], Reference="invoice 7", Date="2024-05-02"),
            spend(
                bank["AccountID"],
                Type="RECEIVE",
                Reference="deposit",
                Date="2024-05-03",
                Contact={"Name": "Landlord"},
                LineItems=[{"UnitAmount": 500, "AccountCode": "200"}],
            ),
        )
    )
    response = await client.get(
        f"{API}/BankTransactions", headers=tenant.headers, params={"where": where}
    )
    assert [t["Reference"] for t in ok(response)["BankTransactions"]] == expected


async def test_where_by_bank_account(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    other = await new_bank_account(client, tenant, Name="Other", BankAccountNumber="7")
    ok(await put_transactions(client, tenant, spend(bank["AccountID"]), spend(other["AccountID"])))
    where = f'BankAccount.AccountID==Guid("{other["AccountID"]}")'
    response = await client.get(
        f"{API}/BankTransactions", headers=tenant.headers, params={"where": where}
    )
    (found,) = ok(response)["BankTransactions"]
    assert found["BankAccount"]["AccountID"] == other["AccountID"]


async def test_an_update_changes_the_given_members_and_keeps_the_rest(
    client: httpx.AsyncClient,
    lenient_client: httpx.AsyncClient,
    tenant: Tenant,
    bank: dict[str, Any],
    sandbox: Sandbox,
) -> None:
    """Xero updates with only the members that change; its document's request schema
    requires Type, LineItems and BankAccount all the same, hence `lenient_client`."""
    (created,) = ok(await put_transactions(client, tenant, spend(bank["AccountID"])))[
        "BankTransactions"
    ]
    transaction_id, line_id = created["BankTransactionID"], created["LineItems"][0]["LineItemID"]
    sandbox.clock.advance(60)
    change = {"BankTransactions": [{"BankTransactionID": transaction_id, "Reference": "changed"}]}
    url = f"{API}/BankTransactions"
    response = await lenient_client.post(url, headers=tenant.headers, json=change)
    (updated,) = ok(response)["BankTransactions"]
    assert updated["BankTransactionID"] == transaction_id
    assert updated["Reference"] == "changed"
    assert updated["LineItems"][0]["LineItemID"] == line_id
    assert updated["Total"] == created["Total"]
    assert updated["UpdatedDateUTC"] != created["UpdatedDateUTC"]
    lines = {"LineItems": [{"LineItemID": line_id, "UnitAmount": 20, "AccountCode": "404"}]}
    response = await lenient_client.post(
        f"{url}/{transaction_id}", headers=tenant.headers, json=lines
    )
    (relined,) = ok(response)["BankTransactions"]
    assert (relined["Reference"], relined["Total"]) == ("changed", Decimal("20.00"))
    assert relined["LineItems"][0]["LineItemID"] == line_id
    assert len(sandbox.organisations[tenant.tenant_id].bank_transactions) == 1


async def test_an_update_keeps_four_decimal_unit_amounts(
    lenient_client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], sandbox: Sandbox
) -> None:
    lines = [{"Quantity": 3, "LineAmount": 10, "AccountCode": "429"}]
    created = await put_transactions(
        lenient_client, tenant, spend(bank["AccountID"], LineItems=lines), unitdp="4"
    )
    transaction_id = ok(created)["BankTransactions"][0]["BankTransactionID"]
    change = {"BankTransactionID": transaction_id, "Reference": "renamed"}
    response = await lenient_client.post(
        f"{API}/BankTransactions", headers=tenant.headers, json=change
    )
    assert ok(response)["BankTransactions"][0]["Total"] == Decimal("10.00")
    stored = sandbox.organisations[tenant.tenant_id].bank_transactions[transaction_id]
    assert stored.document["LineItems"][0]["UnitAmount"] == Decimal("3.3333")


async def test_a_post_without_an_id_creates(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], sandbox: Sandbox
) -> None:
    body = {"BankTransactions": [spend(bank["AccountID"])]}
    ok(await client.post(f"{API}/BankTransactions", headers=tenant.headers, json=body))
    assert len(sandbox.organisations[tenant.tenant_id].bank_transactions) == 1


async def test_deleting_a_transaction_by_status(
    client: httpx.AsyncClient,
    lenient_client: httpx.AsyncClient,
    tenant: Tenant,
    bank: dict[str, Any],
) -> None:
    (created,) = ok(await put_transactions(client, tenant, spend(bank["AccountID"])))[
        "BankTransactions"
    ]
    delete = {"BankTransactionID": created["BankTransactionID"], "Status": "DELETED"}
    url = f"{API}/BankTransactions"
    response = await lenient_client.post(url, headers=tenant.headers, json=delete)
    assert ok(response)["BankTransactions"][0]["Status"] == "DELETED"
    edit = {"BankTransactionID": created["BankTransactionID"], "Reference": "again"}
    response = await client.post(url, headers=tenant.headers, json=edit)
    assert refused(response) == ["A deleted bank transaction cannot be edited."]
    params = {"where": 'Status=="DELETED"'}
    listed = await client.get(url, headers=tenant.headers, params=params)
    assert len(ok(listed)["BankTransactions"]) == 1


async def test_updates_need_a_known_id_and_put_only_creates(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any]
) -> None:
    element = spend(bank["AccountID"], BankTransactionID="7d457db3-3b0a-47e9-8b79-81252a7bcdcb")
    response = await client.post(f"{API}/BankTransactions", headers=tenant.headers, json=element)
    assert refused(response) == [
        "An existing BankTransaction with the specified BankTransactionID could not be found."
    ]
    response = await put_transactions(client, tenant, element)
    assert refused(response) == [
        "PUT creates bank transactions; POST updates one by its BankTransactionID."
    ]


async def test_an_unknown_bank_transaction_is_404(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    url = f"{API}/BankTransactions/7d457db3-3b0a-47e9-8b79-81252a7bcdcb"
    assert (await client.get(url, headers=tenant.headers)).status_code == 404
    assert (await client.post(url, headers=tenant.headers, json={})).status_code == 404


async def test_bank_transactions_need_the_transactions_scope(
    client: httpx.AsyncClient, connect: Connect
) -> None:
    tenant = await connect(scope="openid offline_access accounting.settings")
    assert (await client.get(f"{API}/Accounts", headers=tenant.headers)).status_code == 200
    response = await client.get(f"{API}/BankTransactions", headers=tenant.headers)
    assert response.status_code == 403


async def test_a_malformed_or_oversized_body_is_refused(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = tenant.headers | {"Content-Type": "application/json"}
    broken = await client.put(f"{API}/BankTransactions", headers=headers, content=b"{nope")
    assert broken.status_code == 400
    assert broken.json()["Type"] == "PostDataInvalidException"
    assert broken.json()["Message"].startswith("JSON request body could not be read")
    not_a_number = b'{"BankTransactions": [{"CurrencyRate": NaN}]}'
    nan = await client.put(f"{API}/BankTransactions", headers=headers, content=not_a_number)
    assert nan.json()["Type"] == "PostDataInvalidException"
    huge = await client.put(f"{API}/BankTransactions", headers=headers, content=b" " * 3_500_001)
    assert huge.status_code == 413


async def test_if_modified_since_on_bank_transactions(
    client: httpx.AsyncClient, tenant: Tenant, bank: dict[str, Any], sandbox: Sandbox
) -> None:
    ok(await put_transactions(client, tenant, spend(bank["AccountID"], Reference="old")))
    sandbox.clock.advance(60)
    since = (sandbox.clock.now() - timedelta(seconds=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    ok(await put_transactions(client, tenant, spend(bank["AccountID"], Reference="new")))
    headers = tenant.headers | {"If-Modified-Since": since}
    body = ok(await client.get(f"{API}/BankTransactions", headers=headers))
    assert [t["Reference"] for t in body["BankTransactions"]] == ["new"]


async def test_a_body_nested_too_deeply_is_refused_not_a_crash(
    lenient_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await lenient_client.put(
        "/api.xro/2.0/BankTransactions", headers=tenant.headers, content=b"[" * 100_000
    )
    assert answer.status_code == 400
    assert answer.json()["Type"] == "PostDataInvalidException"
