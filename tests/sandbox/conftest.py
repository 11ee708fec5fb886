"""The sandbox in-process, behind an httpx client, and a way to connect an app to a new org."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.sandbox.contract import ContractCheck, specs_if_present
from xero_sandbox import identity
from xero_sandbox.app import create_app
from xero_sandbox.organisations import OrganisationIn, create_organisation
from xero_sandbox.state import App, Organisation, Sandbox

ALL_SCOPES = (
    "openid profile email offline_access accounting.transactions accounting.settings bankfeeds"
)


@dataclass
class Tenant:
    """An organisation the test app is connected to, and what a call to it needs."""

    organisation: Organisation
    app: App
    tokens: dict[str, Any]

    @property
    def tenant_id(self) -> str:
        return self.organisation.tenant_id

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.tokens['access_token']}",
            "Xero-Tenant-Id": self.tenant_id,
            "Accept": "application/json",
        }


Connect = Callable[..., Awaitable[Tenant]]


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox()


_SPECS = specs_if_present()


@pytest.fixture
def contract() -> ContractCheck:
    """Checks every Xero API exchange of the test against Xero's OpenAPI documents."""
    return ContractCheck(_SPECS)


@asynccontextmanager
async def _checked_client(
    sandbox: Sandbox, check: ContractCheck
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(sandbox))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox.test", event_hooks={"response": [check]}
    ) as client:
        yield client


@pytest.fixture
async def client(sandbox: Sandbox, contract: ContractCheck) -> AsyncIterator[httpx.AsyncClient]:
    async with _checked_client(sandbox, contract) as client:
        yield client


@pytest.fixture
async def lenient_client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    """A client over the same sandbox that checks Xero's answers but not the request bodies.

    Xero accepts requests its OpenAPI documents do not describe: partial POST updates (only
    the members that change, where the documents require Type, LineItems and BankAccount),
    camelCase member names (`bankAccount`, `lineitems`), a single object where the documents
    want `{"BankTransactions": [...]}`. A test of those sends its request through this
    client, which checks Xero's answers but not the request bodies."""
    async with _checked_client(sandbox, ContractCheck(_SPECS, check_requests=False)) as client:
        yield client


@pytest.fixture
def connect(sandbox: Sandbox) -> Connect:
    """`await connect(name=…, base_currency=…, currencies=[…], …)`: a new organisation,
    a new app and a consent with every scope; the Tenant to call it with."""

    async def _connect(scope: str = ALL_SCOPES, **organisation: Any) -> Tenant:
        organisation.setdefault("name", "Test Org")
        org = create_organisation(sandbox, OrganisationIn(**organisation))
        app = identity.register_app(sandbox, "xerosync tests", ["http://app.test/callback"])
        grant = identity.consent(
            sandbox, app, sandbox.user("user@example.com"), [org.tenant_id], tuple(scope.split())
        )
        return Tenant(organisation=org, app=app, tokens=identity.issue_tokens(sandbox, grant))

    return _connect
