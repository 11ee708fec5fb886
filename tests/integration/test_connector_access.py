"""Who may do what: one entity's user cannot see or change another entity's connection,
forms need this session's CSRF token, and a missing or expired sign-in is refused."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.connector.entrypoints.auth import SESSION_COOKIE, mint_user_token
from shared.contracts.topics import XERO_SYNC_REQUESTS
from shared.contracts.xero import SyncRequested
from tests.conftest import Env
from tests.helpers import eventually, read_topic
from tests.integration.connector_harness import (
    PUBLIC_URL,
    SESSION_SECRET,
    ConnectorHarness,
    path_of,
    running_connector,
)
from tests.sandbox.contract import ContractCheck, specs_if_present
from xero_sandbox.state import Organisation, Sandbox
from xerosync.devstack.forms import hidden_fields

_SPECS = specs_if_present()


@pytest.fixture
async def harness(env: Env) -> AsyncIterator[ConnectorHarness]:
    async with running_connector(env, Sandbox(), ContractCheck(_SPECS)) as running:
        yield running


async def connect(harness: ConnectorHarness, entity_id: str, email: str) -> Organisation:
    org = harness.organisation(name=f"Books of {entity_id}")
    account = f"{entity_id}-hkd"
    await harness.open_accounts(entity_id, (account, "HKD"))
    async with harness.user(entity_id) as user:
        await eventually(user.status, until=lambda s: len(s["accounts"]) == 1, what="accounts")
        back = await user.connect(org, accounts=[account], email=email)
        assert back.status_code == 303, back.text
    return org


async def snapshot(harness: ConnectorHarness, org: Organisation) -> tuple[Any, ...]:
    """What a change to ent-B would show: its status, and its organisation in Xero."""
    async with harness.user("ent-b", user_id="user-b") as owner:
        status = await owner.status()
    in_xero = harness.sandbox.organisations[org.tenant_id]
    return (
        status,
        sorted((f.id, f.deleted) for f in in_xero.feed_connections.values()),
        sorted(c.id for c in harness.sandbox.connections.values() if c.tenant_id == org.tenant_id),
    )


async def test_a_user_of_one_entity_cannot_touch_another(
    harness: ConnectorHarness, env: Env
) -> None:
    org_b = await connect(harness, "ent-b", "b@example.com")
    await harness.open_accounts("ent-a", ("ent-a-hkd", "HKD"))
    before = await snapshot(harness, org_b)
    assert before[0]["connection"]["status"] == "active"

    async with harness.user("ent-a", user_id="user-a") as intruder:
        await eventually(intruder.status, until=lambda s: len(s["accounts"]) == 1, what="a")
        csrf = await intruder.csrf()
        http = intruder.http
        base = "/entities/ent-b/xero"
        form = {"csrf_token": csrf}
        attempts = [
            await http.get(base),
            await http.get(f"{base}?notice=connected"),
            await http.get(f"{base}/manage"),
            await http.get(f"{base}/disconnect"),
            await http.post(f"{base}/disconnect", data=form | {"confirm": "yes"}),
            await http.post(f"{base}/connect", data=form | {"account_id": "ent-b-hkd"}),
            await http.post(f"{base}/connect", data=form | {"account_id": "ent-a-hkd"}),
            await http.post(f"{base}/sync", data=form),
            await http.get("/api/v1/entities/ent-b/xero"),
            await http.post("/api/v1/entities/ent-b/xero/sync", headers={"X-CSRF-Token": csrf}),
        ]
        token = mint_user_token(SESSION_SECRET, user_id="user-a", entity_id="ent-a")
        bearer = {"Authorization": f"Bearer {token}"}
        attempts += [
            await harness.http.get("/api/v1/entities/ent-b/xero", headers=bearer),
            await harness.http.post("/api/v1/entities/ent-b/xero/sync", headers=bearer),
        ]
    for attempt in attempts:
        assert attempt.status_code == 403, (attempt.request.method, attempt.request.url)
        assert "Books of ent-b" not in attempt.text
        assert "ent-b-hkd" not in attempt.text
    assert attempts[0].headers["content-type"].startswith("text/html")
    assert attempts[-1].json()["detail"].startswith("you are not signed in for this business")
    assert await snapshot(harness, org_b) == before, "nothing changed for ent-b"

    # ent-b's own sync request is the first one on the topic: none of the above got there.
    async with harness.user("ent-b", user_id="user-b") as owner:
        pressed = await owner.press("sync")
    assert pressed.status_code == 303, pressed.text
    [first] = await read_topic(env.kafka, env.topics.name(XERO_SYNC_REQUESTS), count=1)
    request = XERO_SYNC_REQUESTS.adapter.validate_json(first.value or b"")
    assert isinstance(request, SyncRequested)
    assert (request.entity_id, request.requested_by) == ("ent-b", "user-b")


async def test_a_callback_for_another_entity_is_refused(harness: ConnectorHarness) -> None:
    org = harness.organisation(name="Books of ent-b")
    await harness.open_accounts("ent-b", ("ent-b-hkd", "HKD"))
    await harness.open_accounts("ent-a", ("ent-a-hkd", "HKD"))
    async with harness.user("ent-b", user_id="user-b") as owner:
        await eventually(owner.status, until=lambda s: len(s["accounts"]) == 1, what="b")
        started = await owner.start_connect(accounts=["ent-b-hkd"])
        assert started.status_code == 303, started.text
        consent = await harness.xero.get(path_of(started.headers["location"]))
        back = await harness.xero.post(
            "/identity/connect/authorize",
            data={
                "request": hidden_fields(consent.text)["request"],
                "decision": "allow",
                "email": "b@example.com",
                "tenant_id": [org.tenant_id],
            },
        )
        callback = back.headers["location"]
        assert callback.startswith(f"{PUBLIC_URL}/xero/callback"), callback

        async with harness.user("ent-a", user_id="user-a") as intruder:
            refused = await intruder.http.get(path_of(callback))
            assert refused.status_code == 403, refused.text
            assert "Books of ent-b" not in refused.text
            assert (await intruder.status())["connection"] is None

        assert (await owner.status())["connection"] is None, "nothing was connected"
    feeds = harness.sandbox.organisations[org.tenant_id].feed_connections
    assert not feeds, "no account was linked in Xero"


async def test_forms_need_this_sessions_csrf_token(harness: ConnectorHarness) -> None:
    await connect(harness, "ent-1", "owner@example.com")
    async with (
        harness.user("ent-1", user_id="user-1") as user,
        harness.user("ent-1", user_id="user-2") as colleague,
    ):
        theirs = await colleague.csrf()
        mine = await user.csrf()
        assert theirs != mine
        base = "/entities/ent-1/xero"
        for action, extra in (
            ("sync", {}),
            ("disconnect", {"confirm": "yes"}),
            ("connect", {"account_id": "ent-1-hkd"}),
        ):
            for token in (None, "", theirs, mine[:-1], "é" * 10):
                form: dict[str, Any] = dict(extra)
                if token is not None:
                    form["csrf_token"] = token
                refused = await user.http.post(f"{base}/{action}", data=form)
                assert refused.status_code == 403, (action, token, refused.text)
                assert "This page has expired" in refused.text
        signed_out = await user.http.post("/sign-out", data={"csrf_token": theirs})
        assert signed_out.status_code == 403
        # The JSON API's sync, reached with the cookie, wants the token in a header.
        for headers in ({}, {"X-CSRF-Token": theirs}):
            api = await user.http.post("/api/v1/entities/ent-1/xero/sync", headers=headers)
            assert api.status_code == 403, api.text
            assert api.json()["detail"].startswith("this page has expired")
        status = await user.status()
        assert status["connection"]["status"] == "active", "nothing was disconnected"
        accepted = await user.http.post(
            "/api/v1/entities/ent-1/xero/sync", headers={"X-CSRF-Token": mine}
        )
        assert accepted.status_code == 202, accepted.text
    bearer = mint_user_token(SESSION_SECRET, user_id="user-3", entity_id="ent-1")
    by_app = await harness.http.post(
        "/api/v1/entities/ent-1/xero/sync", headers={"Authorization": f"Bearer {bearer}"}
    )
    assert by_app.status_code == 202, "the bank's app (Bearer) needs no CSRF token"


def _client(harness: ConnectorHarness, cookie: str | None = None) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=harness.app), base_url=PUBLIC_URL)
    if cookie is not None:
        client.cookies.set(SESSION_COOKIE, cookie)
    return client


async def test_no_or_expired_sign_in_is_refused(harness: ConnectorHarness) -> None:
    await connect(harness, "ent-1", "owner@example.com")
    expired = mint_user_token(
        SESSION_SECRET,
        user_id="user-1",
        entity_id="ent-1",
        ttl=timedelta(minutes=5),
        now=datetime.now(UTC) - timedelta(minutes=10),
    )
    forged = mint_user_token(
        "another-secret-0123456789abcdef-0123456789", user_id="u", entity_id="ent-1"
    )
    routes = [
        ("GET", "/entities/ent-1/xero"),
        ("GET", "/entities/ent-1/xero/manage"),
        ("GET", "/entities/ent-1/xero/disconnect"),
        ("POST", "/entities/ent-1/xero/disconnect"),
        ("POST", "/entities/ent-1/xero/sync"),
        ("POST", "/entities/ent-1/xero/connect"),
        ("GET", "/api/v1/entities/ent-1/xero"),
        ("POST", "/api/v1/entities/ent-1/xero/sync"),
    ]
    cases: list[tuple[str | None, dict[str, str], str]] = [
        (None, {}, "not signed in"),
        (expired, {}, "expired"),
        (forged, {}, "could not be verified"),
        (None, {"Authorization": f"Bearer {expired}"}, "expired"),
        (None, {"Authorization": "Bearer not-a-token"}, "could not be verified"),
    ]
    for cookie, headers, words in cases:
        async with _client(harness, cookie) as client:
            for method, url in routes:
                answer = await client.request(method, url, headers=headers, data={"confirm": "yes"})
                assert answer.status_code == 401, (method, url, cookie, headers, answer.text)
                assert words in answer.text
                if url.startswith("/api/"):
                    assert answer.json()["detail"]
                else:
                    assert "Sign in" in answer.text or "sign in" in answer.text
    # The link the bank's app sends, expired, does not sign anyone in.
    async with _client(harness) as client:
        refused = await client.get("/sign-in", params={"token": expired})
        assert refused.status_code == 401
        assert SESSION_COOKIE not in refused.cookies
    async with harness.user("ent-1") as user:
        still = await user.status()
    assert still["connection"]["status"] == "active"
