"""Connect, end to end through the connector's pages and the sandbox's consent page, on a
real broker and a real database."""

from collections.abc import AsyncIterator

import pytest

from shared.contracts.topics import XERO_CONNECTIONS
from tests.conftest import Env
from tests.helpers import eventually, read_topic
from tests.integration.connector_harness import ConnectorHarness, running_connector
from tests.sandbox.contract import ContractCheck, specs_if_present
from xero_sandbox.state import Sandbox

_SPECS = specs_if_present()


@pytest.fixture
async def harness(env: Env) -> AsyncIterator[ConnectorHarness]:
    async with running_connector(env, Sandbox(), ContractCheck(_SPECS)) as running:
        yield running


async def test_connect_links_every_account_and_publishes_the_connection(
    harness: ConnectorHarness, env: Env
) -> None:
    org = harness.organisation(currencies=["CNY", "USD"], timezone="CHINASTANDARDTIME")
    accounts = await harness.open_accounts(
        "ent-1", ("acc-hkd", "HKD"), ("acc-cny", "CNY"), ("acc-usd", "USD")
    )
    async with harness.user("ent-1") as user:
        await eventually(
            user.status, until=lambda s: len(s["accounts"]) == 3, what="accounts directory"
        )
        back = await user.connect(org, accounts=accounts)
        assert back.status_code == 303, back.text
        assert back.headers["location"] == "/entities/ent-1/xero?notice=connected"
        page = await user.page("?notice=connected")
        assert "Acme Trading Ltd" in page.text
        status = await user.status()
    connection = status["connection"]
    assert connection["status"] == "active"
    assert {a["status"] for a in connection["accounts"]} == {"linked"}
    feeds = harness.sandbox.organisations[org.tenant_id].feed_connections
    assert sorted(f.account_token for f in feeds.values()) == sorted(accounts)
    [record] = await read_topic(env.kafka, env.topics.name(XERO_CONNECTIONS), count=1)
    assert b'"ConnectionEstablished"' in record.value
    assert b'"org_timezone":"Asia/Shanghai"' in record.value or b"Asia/" in record.value
    assert harness.contract.checked, "the connector's Xero calls were contract-checked"
