"""What the user does inside Xero, noticed by the connector on its own: the app removed,
a linked account archived or deleted, a feed removed; what the syncer reports back; and
bad records on the accounts topic."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any

import pytest

from services.connector.domain import rules
from services.connector.entrypoints.pages import format_date, format_moment
from shared.contracts.base import Event
from shared.contracts.topics import BANK_ACCOUNTS, XERO_CONNECTIONS, XERO_SYNC_RESULTS, TopicSpec
from shared.contracts.xero import (
    AccountSyncResult,
    ConnectionDisconnected,
    ConnectionEstablished,
    ConnectionUpdated,
    SyncCompleted,
    SyncFailed,
)
from shared.kafka import make_broker
from shared.settings import CommonSettings
from tests.conftest import Env
from tests.helpers import eventually, read_topic, scrape
from tests.integration.connector_harness import ConnectorHarness, running_connector
from tests.sandbox.contract import ContractCheck, specs_if_present
from xero_sandbox.state import Organisation, Sandbox

_SPECS = specs_if_present()
ACCOUNTS = (("acc-hkd", "HKD"), ("acc-usd", "USD"), ("acc-cny", "CNY"))


@pytest.fixture
async def harness(env: Env, request: pytest.FixtureRequest) -> AsyncIterator[ConnectorHarness]:
    """The connector; its sink is `bankfeeds` unless a test parametrizes it."""
    sink = getattr(request, "param", "bankfeeds")
    async with running_connector(env, Sandbox(), ContractCheck(_SPECS), sink=sink) as running:
        yield running


async def connect(harness: ConnectorHarness) -> tuple[Organisation, uuid.UUID]:
    org = harness.organisation(currencies=["USD", "CNY"], timezone="CHINASTANDARDTIME")
    accounts = await harness.open_accounts("ent-1", *ACCOUNTS)
    async with harness.user("ent-1") as user:
        await eventually(
            user.status, until=lambda s: len(s["accounts"]) == 3, what="accounts directory"
        )
        back = await user.connect(org, accounts=accounts)
        assert back.status_code == 303, back.text
        status = await user.status()
    assert {a["status"] for a in status["connection"]["accounts"]} == {"linked"}
    return org, uuid.UUID(status["connection"]["connection_id"])


async def status_of(harness: ConnectorHarness) -> dict[str, Any]:
    async with harness.user("ent-1") as user:
        return await user.status()


async def page_of(harness: ConnectorHarness) -> str:
    async with harness.user("ent-1") as user:
        return unescape((await user.page()).text)


async def connection_events(env: Env, count: int) -> list[Any]:
    records = await read_topic(env.kafka, env.topics.name(XERO_CONNECTIONS), count=count)
    return [XERO_CONNECTIONS.adapter.validate_json(r.value or b"") for r in records]


async def publish(env: Env, spec: TopicSpec, *events: Event | tuple[bytes, bytes]) -> None:
    """Publish events (or raw `(key, value)` records) as another service would."""
    broker = make_broker(CommonSettings(kafka=env.kafka), client_id="test-producer")
    await broker.connect()
    try:
        for event in events:
            key, value = (
                event
                if isinstance(event, tuple)
                else (spec.key_of(event), event.model_dump_json().encode())
            )
            await broker.publish(value, topic=env.topics.name(spec), key=key)
    finally:
        await broker.stop()


def links_by_account(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["account_id"]: a for a in status["connection"]["accounts"]}


# ----------------------------------------------------------------------------- the app


async def test_app_removed_in_xero_is_noticed_and_reconnecting_resumes(
    harness: ConnectorHarness, env: Env
) -> None:
    org, connection_id = await connect(harness)
    feeds_before = dict(harness.sandbox.organisations[org.tenant_id].feed_connections)
    assert await harness.app.state.watch.check(connection_id) == "ok"
    removed = await harness.xero.delete(
        f"/admin/organisations/{org.tenant_id}/apps/{harness.settings.xero_client_id}"
    )
    assert removed.status_code == 200, removed.text

    assert await harness.app.state.watch.check(connection_id) == "revoked_in_xero"

    status = await status_of(harness)
    assert status["connection"]["status"] == "needs_user"
    assert status["connection"]["status_reason"] == rules.REVOKED_IN_XERO
    page = await page_of(harness)
    assert rules.REVOKED_IN_XERO in page
    assert '<button type="submit" class="primary">Reconnect</button>' in page
    _, disconnected = await connection_events(env, 2)
    assert isinstance(disconnected, ConnectionDisconnected)
    assert (disconnected.reason, disconnected.status) == ("revoked_in_xero", "needs_user")
    # Checking again changes nothing and publishes nothing more.
    assert await harness.app.state.watch.check(connection_id) == "needs_user"

    async with harness.user("ent-1") as user:
        back = await user.connect(org, accounts=[a for a, _ in ACCOUNTS])
        assert back.status_code == 303, back.text
        assert back.headers["location"].endswith("?notice=reconnected")
        resumed = await user.status()
    assert resumed["connection"]["connection_id"] == str(connection_id), "same connection id"
    assert resumed["connection"]["status"] == "active"
    assert {a["status"] for a in resumed["connection"]["accounts"]} == {"linked"}
    feeds_after = harness.sandbox.organisations[org.tenant_id].feed_connections
    assert sorted(feeds_after) == sorted(feeds_before), "no duplicate feeds"
    assert sorted(f.account_token for f in feeds_after.values()) == sorted(a for a, _ in ACCOUNTS)
    events = await connection_events(env, 3)
    assert isinstance(events[2], ConnectionEstablished)
    assert events[2].connection_id == connection_id
    assert [e.version for e in events] == [1, 2, 3]
    assert await harness.app.state.watch.check(connection_id) == "ok"


# ----------------------------------------------------------------------------- one account


@pytest.mark.parametrize(
    ("harness", "what"),
    [
        ("bankfeeds", "feed deleted"),
        ("accounting", "account archived"),
        ("accounting", "account deleted"),
    ],
    indirect=["harness"],
)
async def test_one_account_gone_in_xero_needs_the_user_and_the_others_stay(
    harness: ConnectorHarness, env: Env, what: str
) -> None:
    running = harness
    org, connection_id = await connect(running)
    link = links_by_account(await status_of(running))["acc-usd"]
    assert link["status"] == "linked"
    in_xero = running.sandbox.organisations[org.tenant_id]
    if what == "feed deleted":
        [feed_id] = [
            f.id for f in in_xero.feed_connections.values() if f.account_token == "acc-usd"
        ]
        path = f"/admin/organisations/{org.tenant_id}/feed-connections/{feed_id}"
        changed = await running.xero.delete(path)
        expected = rules.account_gone("USD", "bank feed was removed")
    else:
        [xero_account] = [
            a for a in in_xero.accounts.values() if a.type == "BANK" and a.currency_code == "USD"
        ]
        path = f"/admin/organisations/{org.tenant_id}/accounts/{xero_account.account_id}"
        if what == "account archived":
            changed = await running.xero.post(f"{path}/archive")
            expected = rules.account_gone("USD", "bank account was archived")
        else:
            changed = await running.xero.delete(path)
            expected = rules.account_gone("USD", "bank account was deleted")
    assert changed.status_code == 200, changed.text

    assert await running.app.state.watch.check(connection_id) == "accounts_changed"

    status = await status_of(running)
    links = links_by_account(status)
    assert status["connection"]["status"] == "active"
    assert links["acc-usd"]["status"] == "needs_user"
    assert links["acc-usd"]["problem"] == expected
    assert {links["acc-hkd"]["status"], links["acc-cny"]["status"]} == {"linked"}
    assert links["acc-hkd"]["problem"] is None
    assert expected in await page_of(running)
    _, updated = await connection_events(env, 2)
    assert isinstance(updated, ConnectionUpdated)
    mapped = {m.account_id: m for m in updated.accounts}
    assert (mapped["acc-usd"].status, mapped["acc-usd"].problem) == ("needs_user", expected)
    assert mapped["acc-hkd"].status == mapped["acc-cny"].status == "linked"
    # Noticed once: the next check finds nothing new.
    assert await running.app.state.watch.check(connection_id) == "ok"


@pytest.mark.parametrize("harness", ["bankfeeds", "accounting"], indirect=True)
async def test_an_archived_account_restored_in_xero_is_linked_again_on_its_own(
    harness: ConnectorHarness, env: Env
) -> None:
    org, connection_id = await connect(harness)
    in_xero = harness.sandbox.organisations[org.tenant_id]
    [xero_account] = [
        a for a in in_xero.accounts.values() if a.type == "BANK" and a.currency_code == "USD"
    ]
    path = f"/admin/organisations/{org.tenant_id}/accounts/{xero_account.account_id}"
    assert (await harness.xero.post(f"{path}/archive")).status_code == 200
    # The syncer finds it refused and says so; the connector checks and marks it.
    now = datetime.now(UTC).replace(microsecond=0)
    refused = SyncCompleted(
        connection_id=connection_id,
        tenant_id=uuid.UUID(org.tenant_id),
        run_id=uuid.uuid4(),
        started_at=now - timedelta(seconds=5),
        finished_at=now,
        posted=0,
        failed=0,
        remaining=4,
        accounts=[
            AccountSyncResult(
                account_id="acc-usd",
                posted=0,
                failed=0,
                remaining=4,
                latest_transaction_date=None,
                problem="Xero refused it.",
            )
        ],
    )
    await publish(env, XERO_SYNC_RESULTS, refused)
    archived = rules.account_gone("USD", "bank account was archived")
    status = await eventually(
        lambda: status_of(harness),
        until=lambda s: links_by_account(s)["acc-usd"]["status"] == "needs_user",
        what="the account marked after the sync's result",
    )
    assert links_by_account(status)["acc-usd"]["problem"] == archived
    assert "Restore it in Xero" in archived
    assert archived in await page_of(harness)
    # Still archived: checking again changes nothing.
    assert await harness.app.state.watch.check(connection_id) == "ok"

    restored = await harness.xero.post(f"{path}/restore")
    assert restored.status_code == 200, restored.text

    assert await harness.app.state.watch.check(connection_id) == "accounts_changed"

    status = await status_of(harness)
    assert status["connection"]["status"] == "active"
    links = links_by_account(status)
    assert {a: (x["status"], x["problem"]) for a, x in links.items()} == {
        account: ("linked", None) for account, _ in ACCOUNTS
    }, "linked again, and neither our words nor the last sync's problem shown any more"
    page = await page_of(harness)
    assert archived not in page
    assert "Xero refused it." not in page
    established, marked, relinked = await connection_events(env, 3)
    assert isinstance(established, ConnectionEstablished)
    assert isinstance(marked, ConnectionUpdated)
    assert isinstance(relinked, ConnectionUpdated)
    assert [e.version for e in (established, marked, relinked)] == [1, 2, 3]
    mapped = {m.account_id: m for m in relinked.accounts}
    assert (mapped["acc-usd"].status, mapped["acc-usd"].problem) == ("linked", None)
    before = {m.account_id: m for m in established.accounts}
    assert (mapped["acc-usd"].feed_connection_id, mapped["acc-usd"].xero_account_id) == (
        before["acc-usd"].feed_connection_id,
        before["acc-usd"].xero_account_id,
    ), "the same feed and bank account as before"
    # Noticed once: the next check finds nothing new (and publishes nothing).
    assert await harness.app.state.watch.check(connection_id) == "ok"


# ----------------------------------------------------------------------------- sync results


def failed(connection_id: uuid.UUID, tenant_id: str, reason: str, at: datetime) -> SyncFailed:
    return SyncFailed.model_validate(
        {
            "connection_id": connection_id,
            "tenant_id": uuid.UUID(tenant_id),
            "run_id": uuid.uuid4(),
            "started_at": at - timedelta(seconds=5),
            "finished_at": at,
            "reason": reason,
            "message": f"The sync failed ({reason}).",
            "user_action_required": reason != "xero_unavailable",
        }
    )


def completed(
    connection_id: uuid.UUID, tenant_id: str, at: datetime, latest: date, problem: str | None
) -> SyncCompleted:
    return SyncCompleted(
        connection_id=connection_id,
        tenant_id=uuid.UUID(tenant_id),
        run_id=uuid.uuid4(),
        started_at=at - timedelta(seconds=5),
        finished_at=at,
        posted=3,
        failed=0,
        remaining=0,
        accounts=[
            AccountSyncResult(
                account_id="acc-hkd",
                posted=3,
                failed=0,
                remaining=0,
                latest_transaction_date=latest,
                problem=problem,
            )
        ],
    )


async def test_a_failed_sync_saying_the_connection_is_gone_makes_the_connector_check(
    harness: ConnectorHarness, env: Env
) -> None:
    org, connection_id = await connect(harness)
    removed = await harness.xero.delete(
        f"/admin/organisations/{org.tenant_id}/apps/{harness.settings.xero_client_id}"
    )
    assert removed.status_code == 200

    await publish(
        env,
        XERO_SYNC_RESULTS,
        failed(connection_id, org.tenant_id, "connection_removed", datetime.now(UTC)),
    )

    status = await eventually(
        lambda: status_of(harness),
        until=lambda s: s["connection"]["status"] == "needs_user",
        what="the connection verified after the failed sync",
    )
    assert status["connection"]["status_reason"] == rules.REVOKED_IN_XERO
    assert status["connection"]["last_sync_message"] == "The sync failed (connection_removed)."
    _, disconnected = await connection_events(env, 2)
    assert isinstance(disconnected, ConnectionDisconnected)
    assert disconnected.reason == "revoked_in_xero"


async def test_sync_results_show_on_the_page_and_older_ones_change_nothing(
    harness: ConnectorHarness, env: Env
) -> None:
    org, connection_id = await connect(harness)
    assert "Not yet" in await page_of(harness)
    now = datetime.now(UTC).replace(microsecond=0)
    first = completed(connection_id, org.tenant_id, now, date(2026, 11, 20), None)

    await publish(env, XERO_SYNC_RESULTS, first)

    status = await eventually(
        lambda: status_of(harness),
        until=lambda s: links_by_account(s)["acc-hkd"]["latest_transaction_date"] is not None,
        what="the sync result applied",
    )
    hkd = links_by_account(status)["acc-hkd"]
    assert hkd["latest_transaction_date"] == "2026-11-20"
    assert datetime.fromisoformat(hkd["last_synced_at"]) == now
    page = await page_of(harness)
    assert format_date(date(2026, 11, 20)) in page
    assert format_moment(now, "Asia/Shanghai") in page
    assert "Last synced" in page
    assert "Latest transaction date in Xero" in page

    # A replay of the same result, and an older one with other values, then a newer
    # failure whose message marks that everything before it was consumed.
    older = completed(
        connection_id, org.tenant_id, now - timedelta(hours=1), date(2026, 11, 23), "stale"
    )
    marker = failed(connection_id, org.tenant_id, "xero_unavailable", now + timedelta(minutes=1))
    await publish(env, XERO_SYNC_RESULTS, first, older, marker)

    status = await eventually(
        lambda: status_of(harness),
        until=lambda s: s["connection"]["last_sync_message"] == marker.message,
        what="the marker applied",
    )
    after = links_by_account(status)["acc-hkd"]
    assert after == hkd, "the replayed and the older result changed nothing"
    assert status["connection"]["status"] == "active"
    page = await page_of(harness)
    assert format_date(date(2026, 11, 23)) not in page
    assert "stale" not in page


# ----------------------------------------------------------------------------- bad input


async def test_a_malformed_account_record_goes_to_the_dlq_and_the_next_is_applied(
    harness: ConnectorHarness, env: Env
) -> None:
    await publish(env, BANK_ACCOUNTS, (b"acc-bad", b'{"type": "AccountOpened", "entity_id": 1'))
    await harness.open_accounts("ent-1", ("acc-good", "HKD"))

    status = await eventually(
        lambda: status_of(harness),
        until=lambda s: [a["account_id"] for a in s["accounts"]] == ["acc-good"],
        what="the valid account applied",
    )
    assert status["accounts"][0]["currency"] == "HKD"
    [dead] = await read_topic(env.kafka, env.topics.dlq(BANK_ACCOUNTS), count=1)
    assert dead.key == b"acc-bad"
    assert dead.value == b'{"type": "AccountOpened", "entity_id": 1'
    headers = {name: value.decode() for name, value in dead.headers}
    assert headers["x-dlq-error"], headers
    assert headers["x-dlq-error-class"] == "validation"
    assert headers["x-dlq-origin-topic"] == env.topics.name(BANK_ACCOUNTS)
    samples = scrape((await harness.http.get("/metrics")).text)
    assert samples[("xerosync_dlq_messages_total", (("topic", "bank.accounts.v1"),))] == 1
