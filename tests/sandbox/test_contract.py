"""Contract: every operation the sandbox serves answers in the shape Xero's documents give.

Every sandbox test already passes its exchanges through `ContractCheck` (see contract.py).
This tour makes the coverage explicit: it calls each documented operation, successes and
the documented refusals, and then asserts that each answer and each accepted request body
was checked strictly against `../shared/xero-openapi/`.
"""

from datetime import timedelta
from typing import Any

import httpx

from tests.sandbox.conftest import Connect
from tests.sandbox.contract import ContractCheck
from tests.xero_openapi import openapi_dir_or_skip
from xero_sandbox.organisations import local_today
from xero_sandbox.state import Sandbox

API = "/api.xro/2.0"
FEEDS = "/bankfeeds.xro/1.0"


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


async def test_every_operation_answers_in_xeros_documented_shape(
    client: httpx.AsyncClient, contract: ContractCheck, connect: Connect, sandbox: Sandbox
) -> None:
    openapi_dir_or_skip()
    tenant = await connect(name="Contract Ltd", base_currency="HKD", currencies=["USD"])
    headers = tenant.headers

    # Identity
    [connection] = ok(await client.get("/Connections", headers=headers))
    ok(await client.get(f"/connections?authEventId={connection['authEventId']}", headers=headers))

    # Accounting: organisation, chart, currencies
    ok(await client.get(f"{API}/Organisation", headers=headers))
    ok(await client.get(f"{API}/Accounts", headers=headers))
    ok(await client.get(f"{API}/Accounts", headers=headers, params={"where": 'Type=="BANK"'}))
    account = {
        "Code": "091",
        "Name": "USD Operating",
        "Type": "BANK",
        "BankAccountNumber": "012-345-678",
        "CurrencyCode": "USD",
    }
    [bank] = ok(await client.put(f"{API}/Accounts", headers=headers, json=account))["Accounts"]
    ok(await client.get(f"{API}/Accounts/{bank['AccountID']}", headers=headers))
    renamed = {"Accounts": [{**account, "Name": "USD Operating Account"}]}
    ok(await client.post(f"{API}/Accounts/{bank['AccountID']}", headers=headers, json=renamed))
    duplicate = await client.put(f"{API}/Accounts", headers=headers, json=account)
    assert duplicate.status_code == 400
    spare = {"Code": "092", "Name": "Spare", "Type": "BANK", "BankAccountNumber": "9"}
    [unused] = ok(await client.put(f"{API}/Accounts", headers=headers, json=spare))["Accounts"]
    ok(await client.delete(f"{API}/Accounts/{unused['AccountID']}", headers=headers))
    ok(await client.get(f"{API}/Currencies", headers=headers))
    ok(await client.put(f"{API}/Currencies", headers=headers, json={"Code": "CNY"}))

    # Accounting: bank transactions
    def transaction(reference: str, account_code: str = "200") -> dict[str, Any]:
        return {
            "Type": "RECEIVE",
            "Contact": {"Name": "Customer Ltd"},
            "LineItems": [
                {"Description": "Invoice", "UnitAmount": 125.5, "AccountCode": account_code}
            ],
            "BankAccount": {"AccountID": bank["AccountID"]},
            "Date": "2026-11-02",
            "Reference": reference,
            "LineAmountTypes": "NoTax",
        }

    batch = {"BankTransactions": [transaction("txn-1"), transaction("txn-2")]}
    created = ok(await client.put(f"{API}/BankTransactions", headers=headers, json=batch))
    first_id = created["BankTransactions"][0]["BankTransactionID"]
    mixed = {"BankTransactions": [transaction("txn-3"), transaction("txn-4", "999")]}
    ok(
        await client.put(
            f"{API}/BankTransactions?summarizeErrors=false", headers=headers, json=mixed
        )
    )
    refused = await client.put(f"{API}/BankTransactions", headers=headers, json=mixed)
    assert refused.status_code == 400
    more = {"BankTransactions": [transaction("txn-5")]}
    ok(await client.post(f"{API}/BankTransactions", headers=headers, json=more))
    ok(await client.get(f"{API}/BankTransactions", headers=headers, params={"page": 1}))
    ok(
        await client.get(
            f"{API}/BankTransactions", headers=headers, params={"where": 'Reference=="txn-1"'}
        )
    )
    ok(await client.get(f"{API}/BankTransactions/{first_id}", headers=headers))

    # Bank feeds
    feed = {
        "accountToken": "acc-hkd-1",
        "accountNumber": "111-222",
        "accountName": "HKD Current",
        "accountType": "BANK",
        "currency": "HKD",
    }
    [created_feed] = ok(
        await client.post(f"{FEEDS}/FeedConnections", headers=headers, json={"items": [feed]}), 202
    )["items"]
    feed_id = created_feed["id"]
    ok(await client.get(f"{FEEDS}/FeedConnections", headers=headers), 202)
    ok(await client.get(f"{FEEDS}/FeedConnections/{feed_id}", headers=headers))
    day = (local_today(tenant.organisation, sandbox.clock.now()) - timedelta(days=1)).isoformat()
    statement = {
        "feedConnectionId": feed_id,
        "startDate": day,
        "endDate": day,
        "startBalance": {"amount": "100.00", "creditDebitIndicator": "CREDIT"},
        "endBalance": {"amount": "150.00", "creditDebitIndicator": "CREDIT"},
        "statementLines": [
            {
                "postedDate": day,
                "description": "Payment received",
                "amount": "50.00",
                "creditDebitIndicator": "CREDIT",
                "transactionId": "txn-1",
                "payeeName": "Customer Ltd",
            }
        ],
    }
    [posted] = ok(
        await client.post(f"{FEEDS}/Statements", headers=headers, json={"items": [statement]}),
        202,
    )["items"]
    ok(await client.get(f"{FEEDS}/Statements", headers=headers))
    ok(await client.get(f"{FEEDS}/Statements/{posted['id']}", headers=headers))
    again = await client.post(f"{FEEDS}/Statements", headers=headers, json={"items": [statement]})
    assert again.status_code == 409
    unbalanced = {**statement, "endBalance": {"amount": "1.00", "creditDebitIndicator": "CREDIT"}}
    unbalanced["statementLines"] = [{**statement["statementLines"][0], "transactionId": "txn-9"}]
    wrong = await client.post(f"{FEEDS}/Statements", headers=headers, json={"items": [unbalanced]})
    assert wrong.status_code == 422
    ok(
        await client.post(
            f"{FEEDS}/FeedConnections/DeleteRequests",
            headers=headers,
            json={"items": [{"id": feed_id}]},
        ),
        202,
    )
    ok(await client.delete(f"/Connections/{connection['id']}", headers=headers), 204)

    answered = {(method, template) for method, template, _ in contract.checked}
    assert answered >= {
        ("GET", "/Connections"),
        ("DELETE", "/Connections/{id}"),
        ("GET", "/Organisation"),
        ("GET", "/Accounts"),
        ("PUT", "/Accounts"),
        ("GET", "/Accounts/{AccountID}"),
        ("POST", "/Accounts/{AccountID}"),
        ("DELETE", "/Accounts/{AccountID}"),
        ("GET", "/Currencies"),
        ("PUT", "/Currencies"),
        ("PUT", "/BankTransactions"),
        ("POST", "/BankTransactions"),
        ("GET", "/BankTransactions"),
        ("GET", "/BankTransactions/{BankTransactionID}"),
        ("POST", "/FeedConnections"),
        ("GET", "/FeedConnections"),
        ("GET", "/FeedConnections/{id}"),
        ("POST", "/FeedConnections/DeleteRequests"),
        ("POST", "/Statements"),
        ("GET", "/Statements"),
        ("GET", "/Statements/{statementId}"),
    }
    # The documented refusals were checked too, not just the successes.
    assert {
        ("PUT", "/Accounts", 400),
        ("PUT", "/BankTransactions", 400),
        ("POST", "/Statements", 409),
        ("POST", "/Statements", 422),
    } <= set(contract.checked)
    assert set(contract.requests_checked) >= {
        ("PUT", "/Accounts"),
        ("POST", "/Accounts/{AccountID}"),
        ("PUT", "/Currencies"),
        ("PUT", "/BankTransactions"),
        ("POST", "/BankTransactions"),
        ("POST", "/FeedConnections"),
        ("POST", "/FeedConnections/DeleteRequests"),
        ("POST", "/Statements"),
    }
