"""Disconnect from our app, and reconnecting afterwards, end to end through the connector's
pages and the sandbox, on a real broker and a real database (DESIGN §3, Disconnect from our
app)."""

from collections.abc import AsyncIterator
from html import unescape

import pytest

from shared.contracts.topics import XERO_CONNECTIONS
from shared.contracts.xero import ConnectionDisconnected, ConnectionEstablished
from tests.conftest import Env
from tests.helpers import eventually
from tests.integration.connector_harness import ConnectorHarness, User, running_connector
from tests.sandbox.contract import ContractCheck, specs_if_present
from xero_sandbox.state import Organisation, Sandbox

_SPECS = specs_if_present()


@pytest.fixture
async def harness(env: Env) -> AsyncIterator[ConnectorHarness]:
    async with running_connector(env, Sandbox(), ContractCheck(_SPECS)) as running:
        yield running


async def connected(
    harness: ConnectorHarness, user: User, org: Organisation, *accounts: tuple[str, str]
) -> str:
    """Open the accounts, connect them all; the connection id."""
    ids = await harness.open_accounts(user.entity_id, *accounts)
    await eventually(
        user.status, until=lambda s: len(s["accounts"]) == len(ids), what="accounts directory"
    )
    back = await user.connect(org, accounts=ids)
    assert back.status_code == 303, back.text
    status = await user.status()
    assert status["connection"]["status"] == "active"
    connection_id: str = status["connection"]["connection_id"]
    return connection_id


async def test_disconnect_from_our_app_ends_the_connection_here_and_in_xero(
    harness: ConnectorHarness,
) -> None:
    org = harness.organisation(name="Lotus Trading")
    async with harness.user("ent-1") as user:
        connection_id = await connected(harness, user, org, ("acc-hkd", "HKD"))
        token = await harness.token(connection_id)
        assert token.status_code == 200, token.text
        old_access = token.json()["access_token"]

        manage = await user.page("/manage")
        assert manage.status_code == 200
        assert "Disconnect Xero" in manage.text
        assert 'href="/entities/ent-1/xero/disconnect"' in manage.text
        confirm = await user.page("/disconnect")
        assert confirm.status_code == 200
        assert "YES, DISCONNECT" in confirm.text
        assert "Lotus Trading" in confirm.text

        done = await user.press("disconnect", confirm="yes")
        assert done.status_code == 200, done.text
        assert "Xero disconnected" in done.text
        assert "Lotus Trading" in unescape(done.text)
        assert (await user.status())["connection"] is None
        assert "/xero/connect" in (await user.page()).text, "the connect form again"
        assert (await user.page("/manage")).status_code == 303

    listed = await harness.xero.get(
        "/connections", headers={"Authorization": f"Bearer {old_access}"}
    )
    assert listed.status_code == 401 or listed.json() == [], listed.text
    assert harness.sandbox.connections == {}, "Xero no longer lists the connection"
    assert harness.sandbox.grants
    assert all(grant.revoked for grant in harness.sandbox.grants.values()), "token revoked"
    assert await harness.sql("SELECT * FROM xero_tokens") == [], "no tokens kept"
    [row] = await harness.connections()
    assert row.status == "disconnected"
    assert (await harness.token(connection_id)).status_code == 409

    events = await harness.published(XERO_CONNECTIONS)
    assert [type(e).__name__ for _, e in events] == [
        "ConnectionEstablished",
        "ConnectionDisconnected",
    ]
    key, gone = events[-1]
    assert isinstance(gone, ConnectionDisconnected)
    assert key == connection_id == str(gone.connection_id)
    assert (gone.reason, gone.status) == ("user", "disconnected")


async def test_pressing_disconnect_twice_answers_the_same_page_and_publishes_once(
    harness: ConnectorHarness,
) -> None:
    org = harness.organisation(name="Lotus Trading")
    async with harness.user("ent-1") as user:
        await connected(harness, user, org, ("acc-hkd", "HKD"))
        confirm = await user.page("/disconnect")
        first = await user.press("disconnect", confirm="yes")
        assert first.status_code == 200, first.text
        # The same confirmation page, submitted again (back button, double click).
        again = await user.http.post(
            "/entities/ent-1/xero/disconnect",
            data={"csrf_token": await user.csrf(), "confirm": "yes"},
        )
        assert confirm.status_code == 200
        assert again.status_code == 200, again.text
        assert "Xero disconnected" in again.text
        assert "Lotus Trading" in unescape(again.text)
    events = await harness.published(XERO_CONNECTIONS)
    assert [type(e).__name__ for _, e in events] == [
        "ConnectionEstablished",
        "ConnectionDisconnected",
    ]
    [row] = await harness.connections()
    assert (row.status, row.version) == ("disconnected", 2)


async def test_disconnect_without_confirmation_does_nothing(harness: ConnectorHarness) -> None:
    org = harness.organisation()
    async with harness.user("ent-1") as user:
        connection_id = await connected(harness, user, org, ("acc-hkd", "HKD"))
        for fields in ({}, {"confirm": "no"}, {"confirm": "YES "}):
            answer = await user.press("disconnect", **fields)
            assert answer.status_code == 303, answer.text
            assert answer.headers["location"] == "/entities/ent-1/xero/disconnect"
        assert (await user.status())["connection"]["status"] == "active"
    [row] = await harness.connections()
    assert (row.status, row.version) == ("active", 1)
    assert await harness.app.state.watch.check(row.id) == "ok", "Xero still lists it"
    assert (await harness.token(connection_id)).status_code == 200
    events = await harness.published(XERO_CONNECTIONS)
    assert [type(e).__name__ for _, e in events] == ["ConnectionEstablished"]


async def test_reconnecting_after_disconnect_resumes_the_same_connection(
    harness: ConnectorHarness,
) -> None:
    org = harness.organisation(currencies=["USD"])
    async with harness.user("ent-1") as user:
        connection_id = await connected(harness, user, org, ("acc-hkd", "HKD"), ("acc-usd", "USD"))
        feeds = {f.account_token: f.id for f in org.feed_connections.values()}
        assert (await user.press("disconnect", confirm="yes")).status_code == 200
        back = await user.connect(org, accounts=["acc-hkd", "acc-usd"])
        assert back.status_code == 303, back.text
        assert back.headers["location"] == "/entities/ent-1/xero?notice=reconnected"
        assert "Reconnected to Xero" in (await user.page("?notice=reconnected")).text
        status = (await user.status())["connection"]
    assert status["connection_id"] == connection_id
    assert status["status"] == "active"
    assert {a["account_id"]: a["status"] for a in status["accounts"]} == {
        "acc-hkd": "linked",
        "acc-usd": "linked",
    }
    assert {f.account_token: f.id for f in org.feed_connections.values()} == feeds, (
        "the same feed connections, none added"
    )
    [row] = await harness.connections()
    assert str(row.id) == connection_id
    events = await harness.published(XERO_CONNECTIONS)
    assert [(type(e).__name__, e.version) for _, e in events] == [
        ("ConnectionEstablished", 1),
        ("ConnectionDisconnected", 2),
        ("ConnectionEstablished", 3),
    ]
    assert {key for key, _ in events} == {connection_id}
    resumed = events[-1][1]
    assert isinstance(resumed, ConnectionEstablished)
    assert {str(m.feed_connection_id) for m in resumed.accounts} == set(feeds.values())
    token = await harness.token(connection_id)
    assert token.status_code == 200, token.text
    assert await harness.app.state.watch.check(row.id) == "ok"


@pytest.mark.parametrize(
    "second_email",
    [
        pytest.param("owner@example.com", id="same-xero-user"),
        pytest.param("clerk@example.com", id="another-xero-user"),
    ],
)
async def test_disconnecting_one_entity_leaves_another_on_the_same_organisation(
    harness: ConnectorHarness, second_email: str
) -> None:
    org = harness.organisation()
    async with harness.user("ent-1") as one, harness.user("ent-2", "user-2") as two:
        await connected(harness, one, org, ("e1-hkd", "HKD"))
        ids = await harness.open_accounts("ent-2", ("e2-hkd", "HKD"))
        await eventually(two.status, until=lambda s: len(s["accounts"]) == 1, what="directory")
        assert (await two.connect(org, accounts=ids, email=second_email)).status_code == 303
        remaining = (await two.status())["connection"]["connection_id"]
        assert (await one.press("disconnect", confirm="yes")).status_code == 200
        assert (await two.status())["connection"]["status"] == "active"
    [row] = [r for r in await harness.connections() if str(r.id) == remaining]
    assert await harness.app.state.watch.check(row.id) == "ok", "Xero still lists ent-2's"
    token = await harness.token(remaining)
    assert token.status_code == 200, token.text
    assert [f.account_token for f in org.feed_connections.values()] == ["e1-hkd", "e2-hkd"]
