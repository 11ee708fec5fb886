"""The whole path as users run it: sandbox, connector, scheduler and syncer as processes on
the real broker and PostgreSQL. A user connects; the scheduler's `connected` sync posts the
backlog; the syncer is SIGKILLed between Xero's answer and its own commit, restarted, and
every transaction is in Xero exactly once."""

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared.contracts.bank import AccountOpened
from shared.contracts.topics import BANK_ACCOUNTS, BANK_TRANSACTIONS, XERO_SYNC_RESULTS
from tests.conftest import Env
from tests.e2e.conftest import ConnectorServer, SandboxServer
from tests.e2e.flows import connect_through_pages
from tests.helpers import eventually, ledger, metric, read_topic
from xerosync.dev import syncer_env
from xerosync.devstack.stack import Stack
from xerosync.producer import EventWriter

ENTITY = "ent-e2e"


async def admin(sandbox: SandboxServer, method: str, path: str, **kwargs: Any) -> Any:
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as client:
        answer = await client.request(method, path, **kwargs)
    assert answer.is_success, answer.text
    return answer.json() if answer.content else None


async def test_a_connection_posts_its_backlog_once_across_a_syncer_killed_mid_run(
    env: Env, stack: Stack, sandbox_server: SandboxServer, connector_server: ConnectorServer
) -> None:
    organisation = await admin(
        sandbox_server,
        "POST",
        "/admin/organisations",
        json={"name": "Harbour Trading", "base_currency": "HKD", "currencies": ["USD"]},
    )
    tenant_id = organisation["tenant_id"]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)
    hkd = ledger(
        "e2e-hkd", 2300, entity=ENTITY, currency="HKD", start=start, step=timedelta(minutes=3)
    )
    usd = ledger("e2e-usd", 150, entity=ENTITY, currency="USD", start=start)
    async with EventWriter(env.kafka, env.topics) as writer:
        await writer.write(
            BANK_ACCOUNTS,
            [
                AccountOpened(
                    entity_id=ENTITY,
                    account_id=account,
                    currency=currency,
                    name=f"Harbour {currency}",
                    account_number=f"012-000{n}-001",
                    occurred_at=datetime.now(UTC),
                )
                for n, (account, currency) in enumerate((("e2e-hkd", "HKD"), ("e2e-usd", "USD")))
            ],
        )
        await writer.write(BANK_TRANSACTIONS, hkd + usd)

    sandbox_and_connector = syncer_env(sandbox_server.url, connector_server.url)
    doomed = await asyncio.to_thread(
        stack.start_service,
        "syncer",
        extra_env={**sandbox_and_connector, "XEROSYNC_FAILPOINTS": "post.after_send=kill"},
    )
    await asyncio.to_thread(stack.start_service, "scheduler")

    async def directory_ready() -> str:
        async with httpx.AsyncClient(base_url=connector_server.url, timeout=5) as client:
            return (await client.get("/dev/sign-in")).text

    await eventually(directory_ready, until=lambda html: ENTITY in html, what="accounts directory")
    done = await connect_through_pages(
        connector_server.url,
        sandbox_server.url,
        entity_id=ENTITY,
        tenant_id=tenant_id,
        accounts=["e2e-hkd", "e2e-usd"],
        start_date=(start.date() - timedelta(days=1)).isoformat(),
    )
    assert done.status_code in (200, 303), done.text

    # The scheduler's `connected` sync starts a run; the failpoint kills the syncer right
    # after Xero's answer to its first request, before the syncer records it.
    await eventually(
        lambda: asyncio.sleep(0, doomed.poll()),
        until=lambda code: code is not None,
        within=90,
        what="the syncer killing itself after Xero's first answer",
    )
    assert doomed.poll() == -signal.SIGKILL
    held = await admin(sandbox_server, "GET", f"/admin/organisations/{tenant_id}")
    assert sum(len(s["lines"]) for s in held["statements"]) > 0, "Xero took the first statement"

    await asyncio.to_thread(stack.start_service, "syncer", extra_env=sandbox_and_connector)
    [result] = await read_topic(env.kafka, env.topics.name(XERO_SYNC_RESULTS), count=1, within=120)
    event = XERO_SYNC_RESULTS.adapter.validate_json(result.value or b"")
    assert event.type == "SyncCompleted", event
    assert event.remaining == 0

    held = await admin(sandbox_server, "GET", f"/admin/organisations/{tenant_id}")
    feeds = {f["id"]: f["account_token"] for f in held["feed_connections"]}
    delivered = [
        (feeds[s["feed_connection_id"]], line["transaction_id"])
        for s in held["statements"]
        if s["status"] == "DELIVERED"
        for line in s["lines"]
    ]
    expected = [("e2e-hkd", e.transaction_id) for e in hkd] + [
        ("e2e-usd", e.transaction_id) for e in usd
    ]
    assert len(delivered) == len(set(delivered)), "no line delivered twice"
    assert sorted(delivered) == sorted(expected), "every transaction, in the right feed"
    for account, events in (("e2e-hkd", hkd), ("e2e-usd", usd)):
        mine = [tx for feed, tx in delivered if feed == account]
        assert mine == [e.transaction_id for e in events], f"{account} in booking order"
    replays = [r for r in await admin(sandbox_server, "GET", "/admin/requests") if r["replayed"]]
    assert replays, "the request whose answer was lost was sent again with its key"
    recovered = await metric(
        stack.service_url("syncer"), "xerosync_posting_recovered_total", how="resent"
    )
    assert recovered >= 1
