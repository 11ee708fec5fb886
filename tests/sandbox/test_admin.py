"""The admin API: organisations, apps, consent without a browser, the Xero user, time, reset."""

from typing import Any
from urllib.parse import urlencode

import httpx

from tests.sandbox.conftest import Connect
from xero_sandbox.state import Sandbox, new_id


async def setup(
    client: httpx.AsyncClient, **organisation: Any
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    org = await client.post("/admin/organisations", json={"name": "Acme", **organisation})
    assert org.status_code == 201, org.text
    app = (await client.post("/admin/apps", json={"redirect_uris": ["https://x.test/cb"]})).json()
    tenant_id: str = org.json()["tenant_id"]
    consent = await client.post(
        "/admin/consents", json={"client_id": app["client_id"], "tenant_ids": [tenant_id]}
    )
    assert consent.status_code == 200, consent.text
    return tenant_id, app, consent.json()


def bearer(tokens: dict[str, Any], tenant_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}", "Xero-Tenant-Id": tenant_id}


async def test_organisations_are_created_as_asked(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/admin/organisations",
        json={
            "name": "Acme HK",
            "edition": "PARTNER",
            "status": "ACTIVE",
            "base_currency": "HKD",
            "currencies": ["USD", "CNY"],
            "timezone": "ChinaStandardTime",
        },
    )
    assert answer.status_code == 201
    created = answer.json()
    assert created["currencies"] == ["HKD", "USD", "CNY"]
    assert created["multi_currency"] is True
    assert created["timezone"] == "CHINASTANDARDTIME"
    listed = (await client.get("/admin/organisations")).json()
    assert [o["tenant_id"] for o in listed] == [created["tenant_id"]]


async def test_bad_organisations_are_refused_with_reasons(client: httpx.AsyncClient) -> None:
    bad_zone = await client.post(
        "/admin/organisations", json={"name": "X", "timezone": "Mars/Olympus"}
    )
    assert bad_zone.status_code == 422
    assert "unknown Xero time zone" in bad_zone.text
    single = await client.post(
        "/admin/organisations", json={"name": "X", "multi_currency": False, "currencies": ["EUR"]}
    )
    assert single.status_code == 422
    assert "only its base currency" in single.text


async def test_holdings_list_what_the_organisation_holds(client: httpx.AsyncClient) -> None:
    tenant_id, app, _ = await setup(client)
    holdings = (await client.get(f"/admin/organisations/{tenant_id}")).json()
    assert {a["code"] for a in holdings["accounts"]} >= {"200", "400"}
    assert [c["client_id"] for c in holdings["connections"]] == [app["client_id"]]
    assert holdings["statements"] == holdings["bank_transactions"] == []
    assert (await client.get("/admin/organisations/nope")).status_code == 404


async def test_consent_errors_say_what_is_wrong(client: httpx.AsyncClient) -> None:
    tenant_id, app, _ = await setup(client)
    unknown_app = await client.post(
        "/admin/consents", json={"client_id": "X", "tenant_ids": [tenant_id]}
    )
    assert unknown_app.status_code == 404
    unknown_tenant = await client.post(
        "/admin/consents", json={"client_id": app["client_id"], "tenant_ids": ["nope"]}
    )
    assert (unknown_tenant.status_code, "no such organisation" in unknown_tenant.text) == (
        404,
        True,
    )
    bad_scope = await client.post(
        "/admin/consents",
        json={"client_id": app["client_id"], "tenant_ids": [tenant_id], "scope": "everything"},
    )
    assert bad_scope.status_code == 422


async def test_the_user_removing_the_app_is_noticed_every_way(client: httpx.AsyncClient) -> None:
    tenant_id, app, tokens = await setup(client)
    headers = bearer(tokens, tenant_id)
    assert (await client.get("/connections", headers=headers)).json() != []

    removed = await client.delete(f"/admin/organisations/{tenant_id}/apps/{app['client_id']}")
    assert removed.json() == {"removed_connections": 1}

    # A connection missing from /connections, 401 on API calls, invalid_grant on refresh.
    assert (await client.get("/api.xro/2.0/Organisation", headers=headers)).status_code == 401
    refresh = await client.post(
        "/connect/token",
        content=urlencode(
            {
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
            }
        ),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refresh.json() == {"error": "invalid_grant"}


async def test_removing_the_app_from_one_of_two_organisations_keeps_the_other(
    client: httpx.AsyncClient,
) -> None:
    first = (await client.post("/admin/organisations", json={"name": "First"})).json()["tenant_id"]
    second = (await client.post("/admin/organisations", json={"name": "Second"})).json()[
        "tenant_id"
    ]
    app = (await client.post("/admin/apps", json={"redirect_uris": ["https://x.test/cb"]})).json()
    tokens = (
        await client.post(
            "/admin/consents", json={"client_id": app["client_id"], "tenant_ids": [first, second]}
        )
    ).json()
    await client.delete(f"/admin/organisations/{first}/apps/{app['client_id']}")
    assert (
        await client.get("/api.xro/2.0/TestWork", headers=bearer(tokens, first))
    ).status_code == 403
    listed = (await client.get("/connections", headers=bearer(tokens, second))).json()
    assert [c["tenantId"] for c in listed] == [second]


async def test_account_and_feed_actions(
    client: httpx.AsyncClient, sandbox: Sandbox, connect: Connect
) -> None:
    tenant = await connect()
    account_id = next(iter(tenant.organisation.accounts))
    archived = await client.post(
        f"/admin/organisations/{tenant.tenant_id}/accounts/{account_id}/archive"
    )
    assert archived.json()["status"] == "ARCHIVED"
    account = f"/admin/organisations/{tenant.tenant_id}/accounts/{account_id}"
    restored = await client.post(f"{account}/restore")
    assert restored.json()["status"] == "ACTIVE"
    assert tenant.organisation.accounts[account_id].status == "ACTIVE"
    active = await client.post(f"{account}/restore")
    assert active.status_code == 409
    assert "only an archived account can be restored" in active.json()["detail"]
    deleted = await client.delete(account)
    assert deleted.json()["status"] == "DELETED"
    assert tenant.organisation.accounts[account_id].status == "DELETED"
    gone = await client.post(f"{account}/restore")
    assert gone.status_code == 409
    assert "a deleted account cannot be restored" in gone.json()["detail"]
    assert tenant.organisation.accounts[account_id].status == "DELETED"
    unknown = f"/admin/organisations/{tenant.tenant_id}/accounts/{new_id()}/restore"
    assert (await client.post(unknown)).status_code == 404
    missing = await client.delete(f"/admin/organisations/{tenant.tenant_id}/feed-connections/nope")
    assert missing.status_code == 404


async def test_time_scale_runs_xeros_minute_faster(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    scaled = await client.put("/admin/time", json={"rate_limit_scale": 60})
    assert scaled.json()["minute_window_seconds"] == 1.0
    assert sandbox.clock.window(86_400) == 1440.0
    advanced = await client.post("/admin/time/advance", json={"seconds": 3600})
    assert advanced.status_code == 200
    assert (await client.post("/admin/time/advance", json={"seconds": -1})).status_code == 422


async def test_reset_forgets_everything(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    tenant_id, _, tokens = await setup(client)
    await client.put("/admin/limits", json={"per_minute": 1})
    await client.put("/admin/time", json={"rate_limit_scale": 10})
    assert (await client.post("/admin/reset")).status_code == 204
    assert (await client.get("/admin/organisations")).json() == []
    assert (await client.get("/connections", headers=bearer(tokens, tenant_id))).status_code == 401
    assert (await client.get("/admin/limits")).json()["per_minute"] == 60
    assert (await client.get("/admin/time")).json()["rate_limit_scale"] == 1.0
