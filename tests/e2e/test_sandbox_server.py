"""`xerosync sandbox` as a process: real HTTP, a dropped answer over TCP, the consent page
walked in a real browser."""

import base64
import hashlib
import secrets
import signal
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import Page, Route

from tests.e2e.conftest import SandboxServer

REDIRECT = "https://bank.example/xero/callback"


async def admin_setup(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    tenant = await client.post(
        "/admin/organisations",
        json={"name": "Acme Trading HK", "base_currency": "HKD", "multi_currency": True},
    )
    app = await client.post("/admin/apps", json={"name": "Acme Bank", "redirect_uris": [REDIRECT]})
    tenant_id: str = tenant.json()["tenant_id"]
    return tenant_id, app.json()


async def test_a_dropped_answer_breaks_the_connection_and_the_key_replays_it(
    sandbox_server: SandboxServer,
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_server.url, timeout=10) as client:
        tenant_id, app = await admin_setup(client)
        tokens = (
            await client.post(
                "/admin/consents", json={"client_id": app["client_id"], "tenant_ids": [tenant_id]}
            )
        ).json()
        headers = {
            "Authorization": f"Bearer {tokens['access_token']}",
            "Xero-Tenant-Id": tenant_id,
            "Idempotency-Key": "currency-1",
        }
        await client.put(
            "/admin/faults",
            json={"rules": [{"kind": "drop_after_write", "times": 1, "methods": ["PUT"]}]},
        )
        with pytest.raises(httpx.RemoteProtocolError):
            await client.put("/api.xro/2.0/Currencies", headers=headers, json={"Code": "USD"})
        replay = await client.put("/api.xro/2.0/Currencies", headers=headers, json={"Code": "USD"})
        log = (await client.get(f"/admin/requests?tenant_id={tenant_id}")).json()
        assert [(r["fault"], r["replayed"]) for r in log] == [
            ("drop_after_write", False),
            (None, True),
        ]
        assert replay.status_code == log[-1]["status"]
    # SIGTERM stops it gracefully (uvicorn re-raises the signal once it has shut down).
    assert sandbox_server.process.stop() in {0, -signal.SIGTERM}
    assert "Application shutdown complete" in sandbox_server.process.log_tail()


async def test_a_browser_walks_the_consent_page(
    sandbox_server: SandboxServer, browser_page: Page
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_server.url, timeout=10) as client:
        tenant_id, app = await admin_setup(client)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    query = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "openid offline_access bankfeeds accounting.settings",
        "state": "xyz",
        "code_challenge": challenge.decode(),
        "code_challenge_method": "S256",
    }
    callbacks: list[str] = []

    async def bank_callback(route: Route) -> None:
        callbacks.append(route.request.url)
        await route.fulfill(status=200, content_type="text/html", body="<p>connected</p>")

    await browser_page.route(f"{REDIRECT}*", bank_callback)
    await browser_page.goto(f"{sandbox_server.url}/identity/connect/authorize?{urlencode(query)}")
    assert await browser_page.title() == "Allow access | Xero sandbox"

    # Allowing with no organisation chosen is refused on the page itself.
    await browser_page.get_by_role("button", name="Allow access").click()
    await browser_page.get_by_role("alert").wait_for()
    assert (
        "Choose at least one organisation" in await browser_page.get_by_role("alert").inner_text()
    )

    await browser_page.get_by_label("Acme Trading HK").check()
    await browser_page.get_by_role("button", name="Allow access").click()
    await browser_page.get_by_text("connected").wait_for()

    [callback] = callbacks
    answer = parse_qs(urlsplit(callback).query)
    assert answer["state"] == ["xyz"]
    async with httpx.AsyncClient(base_url=sandbox_server.url, timeout=10) as client:
        tokens = await client.post(
            "/connect/token",
            data={
                "grant_type": "authorization_code",
                "code": answer["code"][0],
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
            },
        )
        assert tokens.status_code == 200, tokens.text
        bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        [connection] = (await client.get("/connections", headers=bearer)).json()
        assert connection["tenantId"] == tenant_id
