"""Accounting → Xero walked in Chromium: the connector and the Xero sandbox as the processes
users run, on the test's broker and databases."""

import json
from typing import Any

import httpx
from aiokafka import ConsumerRecord
from playwright.async_api import Page, expect

from shared.contracts.topics import BANK_ACCOUNTS, XERO_CONNECTIONS, XERO_SYNC_REQUESTS
from tests.conftest import Env
from tests.e2e.conftest import ConnectorServer, SandboxServer
from tests.helpers import eventually, read_topic
from xerosync.demo import demo_accounts, opened
from xerosync.producer import EventWriter

ENTITY = "ent-harbour"  # the first demo entity: HKD, CNY and USD accounts
CURRENCIES = ("HKD", "CNY", "USD")
# Page states arrive over real processes; a slow machine may take a few seconds.
STEP_MS = 15_000


def event_of(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    assert record.value is not None
    event: dict[str, Any] = json.loads(record.value)
    return event


async def add_organisation(sandbox: SandboxServer, **spec: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as client:
        answer = await client.post("/admin/organisations", json=spec)
    assert answer.status_code == 201, answer.text
    summary: dict[str, Any] = answer.json()
    return summary


async def holdings(sandbox: SandboxServer, tenant_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as client:
        answer = await client.get(f"/admin/organisations/{tenant_id}")
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def open_demo_accounts(env: Env, connector: ConnectorServer) -> list[str]:
    """Publish AccountOpened for the entity's three accounts, as the bank does, and wait
    until the connector's demo sign-in page offers the entity with all of them."""
    accounts = [a for a in demo_accounts(1, seed=7) if a.entity_id == ENTITY]
    async with EventWriter(env.kafka, env.topics) as writer:
        await writer.write(BANK_ACCOUNTS, [opened(a) for a in accounts])

    async def sign_in_page() -> str:
        async with httpx.AsyncClient(base_url=connector.url, timeout=5) as client:
            return (await client.get("/dev/sign-in")).text

    await eventually(
        sign_in_page,
        until=lambda html: f"Sign in as {ENTITY}" in html and all(c in html for c in CURRENCIES),
        what="the entity and its three accounts on the demo sign-in page",
    )
    return [a.account_id for a in accounts]


async def sign_in_and_open_xero(page: Page, connector: ConnectorServer) -> None:
    """Demo sign-in → Accounting → Xero, which offers the three accounts and Sync."""
    await page.goto(f"{connector.url}/dev/sign-in")
    await page.get_by_role("button", name=f"Sign in as {ENTITY}").click()
    breadcrumb = page.get_by_role("navigation", name="Breadcrumb")
    await expect(breadcrumb).to_contain_text("Accounting", timeout=STEP_MS)
    await breadcrumb.get_by_role("link", name="Xero").click()
    await expect(page.get_by_role("heading", name="Xero", exact=True)).to_be_visible()
    offered = page.get_by_role("group", name="Accounts to send to Xero").get_by_role("checkbox")
    await expect(offered).to_have_count(3)
    for currency in CURRENCIES:
        account = page.get_by_role("checkbox", name=f"Harbour Trading {currency}")
        await expect(account).to_be_checked()


async def consent(page: Page, organisation: str) -> None:
    """Sync → Xero's consent page → tick the organisation → Allow access."""
    await page.get_by_role("button", name="Sync", exact=True).click()
    await expect(page).to_have_title("Allow access | Xero sandbox", timeout=STEP_MS)
    await page.get_by_role("checkbox", name=organisation).check()
    await page.get_by_role("button", name="Allow access").click()


async def test_connect_sync_now_and_disconnect_in_a_browser(
    env: Env,
    sandbox_server: SandboxServer,
    connector_server: ConnectorServer,
    browser_page: Page,
) -> None:
    page = browser_page
    acme = await add_organisation(
        sandbox_server,
        name="Acme Trading Ltd",
        base_currency="HKD",
        currencies=["CNY", "USD"],
        multi_currency=True,
        timezone="CHINASTANDARDTIME",
    )
    await add_organisation(
        sandbox_server, name="Ledger Partners", edition="PARTNER", base_currency="HKD"
    )
    accounts = await open_demo_accounts(env, connector_server)

    await sign_in_and_open_xero(page, connector_server)
    await consent(page, "Acme Trading Ltd")

    # Back on the connector: connected, with every account linked to a bank feed.
    await expect(page.get_by_text("Connected to Acme Trading Ltd")).to_be_visible(timeout=STEP_MS)
    assert page.url.startswith(connector_server.url)
    await expect(page.get_by_role("status")).to_contain_text("Connected to Xero.")
    rows = page.get_by_role("region", name="Accounts").get_by_role("row")
    await expect(rows).to_have_count(4)  # the header and one row per account
    for currency in CURRENCIES:
        row = rows.filter(has=page.get_by_role("rowheader", name=f"Harbour Trading {currency}"))
        await expect(row).to_contain_text("Linked")
        await expect(row).to_contain_text("Bank feed")
    organisation = await holdings(sandbox_server, acme["tenant_id"])
    assert sorted(f["account_token"] for f in organisation["feed_connections"]) == sorted(accounts)
    assert [c["client_id"] for c in organisation["connections"]] == [connector_server.client_id]
    [established] = await read_topic(env.kafka, env.topics.name(XERO_CONNECTIONS), count=1)
    connection = event_of(established)
    assert connection["type"] == "ConnectionEstablished"

    # Sync now: the notice, and a SyncRequested for this connection on its topic.
    await page.get_by_role("button", name="Sync now").click()
    await expect(page.get_by_role("status")).to_contain_text("Sync requested", timeout=STEP_MS)
    [requested] = await read_topic(env.kafka, env.topics.name(XERO_SYNC_REQUESTS), count=1)
    request = event_of(requested)
    assert request["type"] == "SyncRequested"
    assert request["entity_id"] == ENTITY
    assert request["connection_id"] == connection["connection_id"]
    assert requested.key == connection["connection_id"].encode()

    # Manage Connection → Disconnect Xero → YES, DISCONNECT.
    await page.get_by_role("link", name="Manage Connection").click()
    await expect(page.get_by_role("heading", name="Manage Connection")).to_be_visible(
        timeout=STEP_MS
    )
    await expect(page.get_by_role("definition").first).to_have_text("Acme Trading Ltd")
    await page.get_by_role("link", name="Disconnect Xero").click()
    await expect(page.get_by_role("heading", name="Disconnect Xero?")).to_be_visible(
        timeout=STEP_MS
    )
    await page.get_by_role("button", name="YES, DISCONNECT").click()
    await expect(page.get_by_role("heading", name="Xero disconnected")).to_be_visible(
        timeout=STEP_MS
    )
    await expect(page.get_by_role("main")).to_contain_text("Acme Trading Ltd")

    # Xero no longer holds the connection, and the disconnect was published.
    organisation = await holdings(sandbox_server, acme["tenant_id"])
    assert organisation["connections"] == []
    records = await read_topic(env.kafka, env.topics.name(XERO_CONNECTIONS), count=2)
    disconnected = event_of(records[-1])
    assert (disconnected["type"], disconnected["reason"]) == ("ConnectionDisconnected", "user")
    assert disconnected["connection_id"] == connection["connection_id"]

    # The Xero page offers to connect again.
    await page.get_by_role("link", name="Connect again").click()
    await expect(page.get_by_role("button", name="Sync", exact=True)).to_be_visible(timeout=STEP_MS)


async def test_a_partner_edition_organisation_is_refused_in_a_browser(
    env: Env,
    sandbox_server: SandboxServer,
    connector_server: ConnectorServer,
    browser_page: Page,
) -> None:
    page = browser_page
    await add_organisation(
        sandbox_server,
        name="Acme Trading Ltd",
        base_currency="HKD",
        currencies=["CNY", "USD"],
        multi_currency=True,
    )
    partner = await add_organisation(
        sandbox_server, name="Ledger Partners", edition="PARTNER", base_currency="HKD"
    )
    await open_demo_accounts(env, connector_server)

    await sign_in_and_open_xero(page, connector_server)
    await consent(page, "Ledger Partners")

    await expect(
        page.get_by_role("heading", name="This Xero organisation can't be connected")
    ).to_be_visible(timeout=STEP_MS)
    refusal = page.get_by_role("alert")
    await expect(refusal).to_contain_text("Ledger Partners is a Xero Partner Edition organisation")
    await expect(refusal).to_contain_text("Business Edition")
    assert page.url.startswith(f"{connector_server.url}/xero/callback")

    # Nothing stays connected: the token was revoked and no feed was created.
    organisation = await holdings(sandbox_server, partner["tenant_id"])
    assert organisation["connections"] == []
    assert organisation["feed_connections"] == []

    # Going back shows the connect form again, not a connection.
    await page.get_by_role("link", name="Go back").click()
    await expect(page.get_by_role("button", name="Sync", exact=True)).to_be_visible(timeout=STEP_MS)
    await expect(page.get_by_text("Connected to")).to_have_count(0)
