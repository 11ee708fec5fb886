"""Xero's official Python SDK (`xero-python`), pointed at the sandbox, works unchanged.

Connections, organisation, accounts and bank transactions, over real HTTP to `xerosync
sandbox` (the SDK has no bank-feeds API). The SDK is strict where it parses: an unknown enum
value or an ISO date where Xero sends "/Date(…)/" loses the whole answer, so this is a
fidelity check of its own.
"""

import asyncio
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from xero_python.accounting import (
    Account,
    AccountingApi,
    AccountType,
    BankTransaction,
    BankTransactions,
    Contact,
    CurrencyCode,
    LineAmountTypes,
    LineItem,
)
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import AccountingBadRequestException
from xero_python.identity import IdentityApi

from tests.e2e.conftest import SandboxServer


def sdk(base_url: str, access_token: str) -> tuple[IdentityApi, AccountingApi]:
    token = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 1800,
        "scope": ["accounting.transactions", "accounting.settings"],
    }
    client = ApiClient(Configuration(oauth2_token=OAuth2Token()), pool_threads=1)

    @client.oauth2_token_getter  # type: ignore[untyped-decorator]
    def get_token() -> dict[str, Any]:
        return token

    @client.oauth2_token_saver  # type: ignore[untyped-decorator]
    def save_token(new: dict[str, Any]) -> None:
        token.update(new)

    return IdentityApi(client, base_url=base_url), AccountingApi(
        client, base_url=f"{base_url}/api.xro/2.0"
    )


async def test_the_official_sdk_works_against_the_sandbox(sandbox_server: SandboxServer) -> None:
    async with httpx.AsyncClient(base_url=sandbox_server.url) as admin:
        tenant_id = (
            await admin.post(
                "/admin/organisations",
                json={"name": "SDK Org", "base_currency": "HKD", "currencies": ["USD"]},
            )
        ).json()["tenant_id"]
        app = (
            await admin.post("/admin/apps", json={"redirect_uris": ["https://x.test/cb"]})
        ).json()
        tokens = (
            await admin.post(
                "/admin/consents", json={"client_id": app["client_id"], "tenant_ids": [tenant_id]}
            )
        ).json()
    identity, accounting = sdk(sandbox_server.url, tokens["access_token"])
    # The SDK is synchronous (urllib3); keep the event loop free while it works.
    await asyncio.to_thread(exercise, identity, accounting, tenant_id)


def exercise(identity: IdentityApi, accounting: AccountingApi, tenant_id: str) -> None:
    [connection] = identity.get_connections()
    assert connection.tenant_id == tenant_id
    assert connection.tenant_type == "ORGANISATION"

    [organisation] = accounting.get_organisations(tenant_id).organisations
    assert organisation.name == "SDK Org"
    assert organisation.base_currency == CurrencyCode.HKD

    created = accounting.create_account(
        tenant_id,
        Account(
            name="USD Operating",
            code="091",
            type=AccountType.BANK,
            bank_account_number="012-345-678",
            currency_code=CurrencyCode.USD,
        ),
        idempotency_key="sdk-account-1",
    )
    [bank] = created.accounts
    assert bank.currency_code == CurrencyCode.USD
    banks = accounting.get_accounts(tenant_id, where='Type=="BANK"').accounts
    assert [a.account_id for a in banks] == [bank.account_id]

    transactions = BankTransactions(
        bank_transactions=[
            BankTransaction(
                type="RECEIVE",
                contact=Contact(name="Customer Ltd"),
                line_items=[
                    LineItem(
                        description="Invoice 7", unit_amount=Decimal("125.50"), account_code="200"
                    )
                ],
                bank_account=Account(account_id=bank.account_id),
                date=date(2026, 11, 2),
                reference="txn-sdk-1",
                line_amount_types=LineAmountTypes.NOTAX,
            ),
            BankTransaction(
                type="SPEND",
                contact=Contact(name="Supplier Ltd"),
                line_items=[
                    LineItem(description="Fees", unit_amount=Decimal("3"), account_code="999")
                ],
                bank_account=Account(account_id=bank.account_id),
                date=date(2026, 11, 2),
                reference="txn-sdk-2",
                line_amount_types=LineAmountTypes.NOTAX,
            ),
        ]
    )
    answer = accounting.create_bank_transactions(
        tenant_id, transactions, summarize_errors=False, idempotency_key="sdk-batch-1"
    )
    good, bad = answer.bank_transactions
    assert good.status_attribute_string == "OK"
    assert good.total == Decimal("125.50")
    assert bad.status_attribute_string == "ERROR"
    assert bad.validation_errors

    found = accounting.get_bank_transactions(tenant_id, where='Reference=="txn-sdk-1"')
    [stored] = found.bank_transactions
    assert stored.bank_transaction_id == good.bank_transaction_id
    assert stored.date == date(2026, 11, 2)
    again = accounting.get_bank_transaction(tenant_id, good.bank_transaction_id)
    assert again.bank_transactions[0].reference == "txn-sdk-1"

    with pytest.raises(AccountingBadRequestException) as refused:
        accounting.create_bank_transactions(tenant_id, transactions)  # summarizeErrors=true
    assert refused.value.error_data["Type"] == "ValidationException"
