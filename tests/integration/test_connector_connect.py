"""Connect, end to end through the connector's pages and the sandbox's consent page, on a
real broker and a real database: the happy path, every refusal, currencies the organisation
cannot hold (both sinks), several entities on one organisation, one live connection per
entity, Sync now, and what the connection events carry."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from shared.contracts.topics import XERO_CONNECTIONS, XERO_SYNC_REQUESTS
from shared.contracts.xero import (
    ConnectionDisconnected,
    ConnectionEstablished,
    SyncRequested,
)
from tests.conftest import Env
from tests.helpers import eventually, read_topic
from tests.integration.connector_harness import (
    ConnectorHarness,
    User,
    running_connector,
)
from tests.sandbox.contract import ContractCheck, specs_if_present
from xero_sandbox import identity
from xero_sandbox.state import Account, Organisation, Sandbox, new_id

_SPECS = specs_if_present()


@pytest.fixture
async def harness(env: Env) -> AsyncIterator[ConnectorHarness]:
    async with running_connector(env, Sandbox(), ContractCheck(_SPECS)) as running:
        yield running


async def directory_holds(user: User, count: int) -> None:
    await eventually(
        user.status, until=lambda s: len(s["accounts"]) == count, what="accounts directory"
    )


def text_of(page: httpx.Response) -> str:
    return unescape(page.text)


async def nothing_connected(harness: ConnectorHarness, user: User) -> None:
    """No connection row, none shown, no connection event, no Xero access left behind."""
    assert await harness.connections() == []
    assert (await user.status())["connection"] is None
    assert await harness.published(XERO_CONNECTIONS) == []
    assert harness.sandbox.connections == {}, "the organisation no longer lists the app"
    assert all(grant.revoked for grant in harness.sandbox.grants.values()), (
        "the token Xero handed over was revoked"
    )


async def test_connect_links_every_account_and_publishes_the_connection(
    harness: ConnectorHarness, env: Env
) -> None:
    org = harness.organisation(currencies=["CNY", "USD"], timezone="CHINASTANDARDTIME")
    accounts = await harness.open_accounts(
        "ent-1", ("acc-hkd", "HKD"), ("acc-cny", "CNY"), ("acc-usd", "USD")
    )
    async with harness.user("ent-1") as user:
        await directory_holds(user, 3)
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
    value = record.value or b""
    assert b'"ConnectionEstablished"' in value
    assert b'"org_timezone":"Asia/Shanghai"' in value
    assert harness.contract.checked, "the connector's Xero calls were contract-checked"


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"edition": "PARTNER"}, ["Partner Edition", "Business Edition"]),
        ({"status": "INACTIVE"}, ["isn't active", "inactive"]),
    ],
    ids=["partner-edition", "inactive"],
)
async def test_an_organisation_xerosync_cannot_feed_is_refused_and_its_token_revoked(
    harness: ConnectorHarness, spec: dict[str, str], words: list[str]
) -> None:
    org = harness.organisation(name="Refused Org Ltd", **spec)
    accounts = await harness.open_accounts("ent-1", ("acc-hkd", "HKD"))
    async with harness.user("ent-1") as user:
        await directory_holds(user, 1)
        page = await user.connect(org, accounts=accounts)
        assert page.status_code == 403, page.text
        for word in [*words, "Refused Org Ltd"]:
            assert word in text_of(page)
        assert 'href="/entities/ent-1/xero"' in page.text, "the page leads back"
        await nothing_connected(harness, user)
        assert harness.sandbox.grants, "Xero did hand over a token (which was then revoked)"
    assert org.feed_connections == {}, "no account was linked into a refused organisation"


async def test_denied_consent_connects_nothing(harness: ConnectorHarness) -> None:
    org = harness.organisation()
    accounts = await harness.open_accounts("ent-1", ("acc-hkd", "HKD"))
    async with harness.user("ent-1") as user:
        await directory_holds(user, 1)
        page = await user.connect(org, accounts=accounts, decision="deny")
        assert page.status_code == 200
        assert "Xero wasn't connected" in text_of(page)
        assert "chose not to allow access" in text_of(page)
        await nothing_connected(harness, user)
        assert harness.sandbox.grants == {}, "denying hands out no token"
        again = await user.page()
        assert again.status_code == 200
        assert "/xero/connect" in again.text, "the connect form is offered again"


async def test_a_replayed_callback_is_refused_as_expired(harness: ConnectorHarness) -> None:
    org = harness.organisation()
    accounts = await harness.open_accounts("ent-1", ("acc-hkd", "HKD"))
    async with harness.user("ent-1") as user:
        await directory_holds(user, 1)
        started = await user.start_connect(accounts=accounts)
        callback = await user.authorize(started.headers["location"], org)
        first = await user.callback(callback)
        assert first.status_code == 303, first.text
        [connection] = await harness.connections()
        second = await user.callback(callback)
        assert second.status_code == 400, second.text
        assert "expired" in text_of(second)
        assert "used already" in text_of(second)
    assert await harness.connections() == [connection], "the replay changed nothing"
    events = await harness.published(XERO_CONNECTIONS)
    assert [type(e).__name__ for _, e in events] == ["ConnectionEstablished"]


async def test_a_forged_state_is_refused(harness: ConnectorHarness) -> None:
    org = harness.organisation()
    accounts = await harness.open_accounts("ent-1", ("acc-hkd", "HKD"))
    async with harness.user("ent-1") as user:
        await directory_holds(user, 1)
        started = await user.start_connect(accounts=accounts)
        callback = await user.authorize(started.headers["location"], org)
        parts = urlsplit(callback)
        query = dict(parse_qsl(parts.query))
        forged = parts._replace(query=urlencode(query | {"state": "forged" + query["state"]}))
        page = await user.callback(urlunsplit(forged))
        assert page.status_code == 400, page.text
        assert "expired" in text_of(page)
        made_up = await user.http.get("/xero/callback", params={"code": "x", "state": "y" * 43})
        assert made_up.status_code == 400
        assert await harness.connections() == []
        assert (await user.status())["connection"] is None
        # The genuine answer still works: a forged one did not use the state up.
        genuine = await user.callback(callback)
        assert genuine.status_code == 303, genuine.text


async def test_an_expired_state_is_refused(harness: ConnectorHarness) -> None:
    org = harness.organisation()
    accounts = await harness.open_accounts("ent-1", ("acc-hkd", "HKD"))
    async with harness.user("ent-1") as user:
        await directory_holds(user, 1)
        started = await user.start_connect(accounts=accounts)
        callback = await user.authorize(started.headers["location"], org)
        # The user came back after the state's life (15 minutes) was over.
        await harness.sql("UPDATE oauth_states SET expires_at = now() - interval '1 second'")
        page = await user.callback(callback)
        assert page.status_code == 400, page.text
        assert "expired" in text_of(page)
        assert await harness.connections() == []
        assert (await user.status())["connection"] is None
    assert org.feed_connections == {}


@pytest.mark.parametrize(
    ("days_back", "words"),
    [(366, "one year back"), (-1, "cannot be in the future")],
    ids=["over-a-year-back", "tomorrow"],
)
async def test_a_start_date_out_of_range_shows_the_form_with_a_message(
    harness: ConnectorHarness, days_back: int, words: str
) -> None:
    await harness.open_accounts("ent-1", ("acc-hkd", "HKD"))
    chosen = datetime.now(UTC).date() - timedelta(days=days_back)
    async with harness.user("ent-1") as user:
        await directory_holds(user, 1)
        page = await user.start_connect(accounts=["acc-hkd"], start_date=chosen.isoformat())
        assert page.status_code == 400, page.text
        assert words in text_of(page)
        assert 'action="/entities/ent-1/xero/connect"' in page.text, "the form, to fix it"
        assert 'name="start_date"' in page.text
        assert await harness.sql("SELECT * FROM oauth_states") == []
        assert await harness.connections() == []
        # The edge of the range is accepted.
        earliest = datetime.now(UTC).date() - timedelta(days=365)
        accepted = await user.start_connect(accounts=["acc-hkd"], start_date=earliest.isoformat())
        assert accepted.status_code == 303, accepted.text


# ----------------------------------------------------------------------------- currencies


async def test_bank_feeds_fail_only_the_currency_the_organisation_cannot_hold(
    harness: ConnectorHarness,
) -> None:
    org = harness.organisation(name="Harbour Ltd", base_currency="HKD", multi_currency=False)
    accounts = await harness.open_accounts("ent-1", ("acc-hkd", "HKD"), ("acc-usd", "USD"))
    async with harness.user("ent-1") as user:
        await directory_holds(user, 2)
        back = await user.connect(org, accounts=accounts)
        assert back.status_code == 303, back.text
        links = {a["account_id"]: a for a in (await user.status())["connection"]["accounts"]}
        page = text_of(await user.page())
    assert links["acc-hkd"]["status"] == "linked"
    assert links["acc-usd"]["status"] == "failed"
    assert "USD" in links["acc-usd"]["problem"]
    assert "multi-currency" in links["acc-usd"]["problem"]
    assert links["acc-usd"]["problem"] in page, "the page says why"
    assert [f.currency for f in org.feed_connections.values()] == ["HKD"]


async def test_accounting_fails_only_the_currency_the_organisation_cannot_hold(
    env: Env,
) -> None:
    async with running_connector(
        env, Sandbox(), ContractCheck(_SPECS), sink="accounting"
    ) as harness:
        org = harness.organisation(name="Harbour Ltd", base_currency="HKD", multi_currency=False)
        accounts = await harness.open_accounts("ent-1", ("acc-hkd", "HKD"), ("acc-usd", "USD"))
        async with harness.user("ent-1") as user:
            await directory_holds(user, 2)
            back = await user.connect(org, accounts=accounts)
            assert back.status_code == 303, back.text
            links = {a["account_id"]: a for a in (await user.status())["connection"]["accounts"]}
            page = text_of(await user.page())
    assert links["acc-hkd"]["status"] == "linked"
    assert links["acc-usd"]["status"] == "failed"
    assert "USD" in links["acc-usd"]["problem"]
    assert links["acc-usd"]["problem"] in page
    banks = [a for a in org.accounts.values() if a.type == "BANK"]
    assert [(a.currency_code or org.base_currency) for a in banks] == ["HKD"]
    assert org.currencies == ["HKD"], "no currency was added behind the user's back"


def bank_accounts(org: Organisation) -> dict[str, list[Account]]:
    found: dict[str, list[Account]] = {}
    for account in org.accounts.values():
        if account.type == "BANK" and account.status == "ACTIVE":
            found.setdefault(account.currency_code or org.base_currency, []).append(account)
    return found


async def test_accounting_finds_or_creates_one_bank_account_per_currency(env: Env) -> None:
    async with running_connector(
        env, Sandbox(), ContractCheck(_SPECS), sink="accounting"
    ) as harness:
        org = harness.organisation(currencies=["USD"])
        accounts = await harness.open_accounts("ent-1", ("acc-hkd", "HKD"), ("acc-usd", "USD"))
        async with harness.user("ent-1") as user:
            await directory_holds(user, 2)
            directory = {a["account_id"]: a for a in (await user.status())["accounts"]}
            # The HKD account is in Xero already, entered by hand by the bookkeeper.
            existing = Account(
                account_id=new_id(),
                name="Bank HKD",
                type="BANK",
                account_class="ASSET",
                bank_account_number=directory["acc-hkd"]["account_number"],
                bank_account_type="BANK",
                currency_code="HKD",
            )
            org.accounts[existing.account_id] = existing
            back = await user.connect(org, accounts=accounts)
            assert back.status_code == 303, back.text
            first = bank_accounts(org)
            assert sorted(first) == ["HKD", "USD"]
            assert [a.account_id for a in first["HKD"]] == [existing.account_id], "found"
            assert len(first["USD"]) == 1, "created"
            [row] = await harness.connections()
            mapped = await harness.sql(
                "SELECT account_id, xero_account_id FROM connection_accounts ORDER BY account_id"
            )
            assert {r[0]: str(r[1]) for r in mapped} == {
                "acc-hkd": existing.account_id,
                "acc-usd": first["USD"][0].account_id,
            }

            done = await user.press("disconnect", confirm="yes")
            assert done.status_code == 200, done.text
            again = await user.connect(org, accounts=accounts)
            assert again.status_code == 303, again.text
            assert again.headers["location"].endswith("notice=reconnected")
        second = bank_accounts(org)
        assert {c: [a.account_id for a in found] for c, found in second.items()} == {
            c: [a.account_id for a in found] for c, found in first.items()
        }, "no duplicate Xero accounts"
        assert [r.id for r in await harness.connections()] == [row.id]
        assert (
            await harness.sql(
                "SELECT account_id, xero_account_id FROM connection_accounts ORDER BY account_id"
            )
            == mapped
        )


# ----------------------------------------------------------------- entities and organisations


@pytest.mark.parametrize(
    "second_email", ["owner@example.com", "clerk@example.com"], ids=["same-xero-user", "another"]
)
async def test_several_entities_feed_one_organisation(
    harness: ConnectorHarness, second_email: str
) -> None:
    org = harness.organisation(currencies=["USD"])
    first = await harness.open_accounts("ent-1", ("e1-hkd", "HKD"), ("e1-usd", "USD"))
    second = await harness.open_accounts("ent-2", ("e2-hkd", "HKD"))
    async with harness.user("ent-1") as one, harness.user("ent-2", "user-2") as two:
        await directory_holds(one, 2)
        await directory_holds(two, 1)
        assert (await one.connect(org, accounts=first)).status_code == 303
        assert (await two.connect(org, accounts=second, email=second_email)).status_code == (303)
        ones, twos = (await one.status())["connection"], (await two.status())["connection"]
    assert ones["status"] == twos["status"] == "active"
    assert ones["connection_id"] != twos["connection_id"]
    assert {a["account_id"] for a in ones["accounts"]} == set(first)
    assert {a["account_id"] for a in twos["accounts"]} == set(second)
    assert sorted(f.account_token for f in org.feed_connections.values()) == sorted(first + second)
    for connection in (ones, twos):
        token = await harness.token(connection["connection_id"])
        assert token.status_code == 200, token.text
        assert token.json()["tenant_id"] == org.tenant_id
        assert (
            await harness.app.state.watch.check(uuid.UUID(connection["connection_id"]))
        ) == "ok", "Xero still lists each entity's connection"


async def test_connect_while_connected_is_refused(harness: ConnectorHarness) -> None:
    org = harness.organisation()
    other = harness.organisation(name="Other Ltd")
    accounts = await harness.open_accounts("ent-1", ("acc-hkd", "HKD"))
    async with harness.user("ent-1") as user:
        await directory_holds(user, 1)
        assert (await user.connect(org, accounts=accounts)).status_code == 303
        page = await user.start_connect(accounts=accounts)
        assert page.status_code == 409, page.text
        assert "already connected to Acme Trading Ltd" in text_of(page)
        assert "Disconnect it first" in text_of(page)
    [connection] = await harness.connections()
    assert connection.status == "active"
    assert other.feed_connections == {}


@pytest.mark.parametrize("same_organisation", [True, False], ids=["same-org", "other-org"])
async def test_a_second_authorization_finishing_later_is_refused(
    harness: ConnectorHarness, same_organisation: bool
) -> None:
    org = harness.organisation()
    other = org if same_organisation else harness.organisation(name="Other Ltd")
    accounts = await harness.open_accounts("ent-1", ("acc-hkd", "HKD"))
    async with harness.user("ent-1") as user:
        await directory_holds(user, 1)
        # Two tabs: both pressed Sync before either came back from Xero.
        first_tab = await user.start_connect(accounts=accounts)
        second_tab = await user.start_connect(accounts=accounts)
        assert first_tab.status_code == second_tab.status_code == 303
        first = await user.consent(first_tab.headers["location"], org)
        assert first.status_code == 303, first.text
        [connection] = await harness.connections()
        second = await user.consent(second_tab.headers["location"], other)
        assert second.status_code == 409, second.text
        assert "Already connected" in text_of(second)
        status = await user.status()
    assert await harness.connections() == [connection], "no second connection, no change"
    assert status["connection"]["connection_id"] == str(connection.id)
    events = await harness.published(XERO_CONNECTIONS)
    assert [type(e).__name__ for _, e in events] == ["ConnectionEstablished"]
    if not same_organisation:
        assert other.feed_connections == {}, "nothing linked into the refused organisation"
    token = await harness.token(str(connection.id))
    assert token.status_code == 200, token.text
    assert await harness.app.state.watch.check(connection.id) == "ok", (
        "the first connection still stands in Xero"
    )


# ----------------------------------------------------------------------------- sync now


async def test_sync_now_publishes_a_request_keyed_by_the_connection(
    harness: ConnectorHarness,
) -> None:
    org = harness.organisation()
    accounts = await harness.open_accounts("ent-1", ("acc-hkd", "HKD"))
    async with harness.user("ent-1", "user-7") as user:
        await directory_holds(user, 1)
        before = await user.press("sync")
        assert before.status_code == 409, "nothing to sync before connecting"
        assert "Connect to Xero first" in text_of(before)
        assert await harness.published(XERO_SYNC_REQUESTS) == []
        assert (await user.connect(org, accounts=accounts)).status_code == 303
        pressed = await user.press("sync")
        assert pressed.status_code == 303, pressed.text
        assert pressed.headers["location"] == "/entities/ent-1/xero?notice=sync_requested"
        assert "Sync requested" in (await user.http.get(pressed.headers["location"])).text
        connection_id = (await user.status())["connection"]["connection_id"]
    [(key, event)] = await harness.published(XERO_SYNC_REQUESTS)
    assert isinstance(event, SyncRequested)
    assert key == connection_id == str(event.connection_id)
    assert (event.entity_id, event.requested_by) == ("ent-1", "user-7")


async def test_sync_now_on_a_connection_needing_the_user_is_refused(
    harness: ConnectorHarness,
) -> None:
    org = harness.organisation()
    accounts = await harness.open_accounts("ent-1", ("acc-hkd", "HKD"))
    async with harness.user("ent-1") as user:
        await directory_holds(user, 1)
        assert (await user.connect(org, accounts=accounts)).status_code == 303
        [connection] = await harness.connections()
        identity.remove_app(harness.sandbox, org.tenant_id, harness.settings.xero_client_id)
        assert await harness.app.state.watch.check(connection.id) == "revoked_in_xero"
        pressed = await user.press("sync")
        assert pressed.status_code == 409, pressed.text
        assert "disconnected in Xero" in text_of(pressed)
        api = await user.http.post(
            "/api/v1/entities/ent-1/xero/sync", headers={"X-CSRF-Token": await user.csrf()}
        )
        assert api.status_code == 409, api.text
        assert "disconnected in Xero" in api.json()["detail"]
    assert await harness.published(XERO_SYNC_REQUESTS) == []


# ----------------------------------------------------------------------------- events


def whole_state(event: Any) -> dict[str, Any]:
    state: dict[str, Any] = event.model_dump(
        mode="json", exclude={"event_id", "occurred_at", "type", "version"}
    )
    return state


async def test_connection_events_carry_the_whole_state_and_count_versions(
    harness: ConnectorHarness,
) -> None:
    org = harness.organisation(
        name="Lotus Trading", base_currency="HKD", currencies=["USD"], timezone="CHINASTANDARDTIME"
    )
    accounts = await harness.open_accounts("ent-1", ("acc-hkd", "HKD"), ("acc-usd", "USD"))
    start = datetime.now(UTC).date() - timedelta(days=30)
    async with harness.user("ent-1") as user:
        await directory_holds(user, 2)
        assert (
            await user.connect(org, accounts=accounts, start_date=start.isoformat())
        ).status_code == 303
        assert (await user.press("disconnect", confirm="yes")).status_code == 200
        again = await user.connect(org, accounts=accounts[:1])
        assert again.status_code == 303, again.text
    events = await harness.published(XERO_CONNECTIONS)
    assert [type(e).__name__ for _, e in events] == [
        "ConnectionEstablished",
        "ConnectionDisconnected",
        "ConnectionEstablished",
    ]
    [connection] = await harness.connections()
    assert {key for key, _ in events} == {str(connection.id)}
    assert [e.version for _, e in events] == [1, 2, 3] == [1, 2, connection.version]
    established = events[0][1]
    assert isinstance(established, ConnectionEstablished)
    assert established.connection_id == connection.id
    assert established.entity_id == "ent-1"
    assert str(established.tenant_id) == org.tenant_id
    assert established.tenant_name == "Lotus Trading"
    assert established.org_timezone == "Asia/Shanghai"
    assert established.base_currency == "HKD"
    assert established.sink == "bankfeeds"
    assert established.sync_start_date == start
    assert established.status == "active"
    feeds = {f.account_token: f for f in org.feed_connections.values()}
    assert {
        (m.account_id, m.currency, m.status, str(m.feed_connection_id))
        for m in established.accounts
    } == {(a, feeds[a].currency, "linked", feeds[a].id) for a in accounts}
    gone = events[1][1]
    assert isinstance(gone, ConnectionDisconnected)
    assert (gone.status, gone.reason) == ("disconnected", "user")
    assert whole_state(gone) | {"status": "active", "status_reason": None} == whole_state(
        established
    ) | {"reason": "user"}
    back = events[2][1]
    assert back.sync_start_date == start, "a resumed connection keeps its earlier start"
    assert {m.account_id: m.status for m in back.accounts} == {
        "acc-hkd": "linked",
        "acc-usd": "unlinked",
    }
