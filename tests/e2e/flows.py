"""What a bank user does in the connector's pages, over real HTTP to the processes: sign in
(the development sign-in), choose accounts, consent in Xero (the sandbox's consent page)."""

import httpx

from tests.integration.connector_harness import path_of
from xerosync.devstack.forms import hidden_fields


async def connect_through_pages(
    connector_url: str,
    sandbox_url: str,
    *,
    entity_id: str,
    tenant_id: str,
    accounts: list[str],
    start_date: str,
) -> httpx.Response:
    """Sign in as the entity, press Sync with `accounts`, allow `tenant_id` in Xero; the
    connector's answer to the callback."""
    async with (
        httpx.AsyncClient(base_url=connector_url, timeout=30) as user,
        httpx.AsyncClient(base_url=sandbox_url, timeout=30) as xero,
    ):
        signed_in = await user.post("/dev/sign-in", data={"entity_id": entity_id})
        assert signed_in.status_code == 303, signed_in.text
        page = await user.get(f"/entities/{entity_id}/xero")
        csrf = hidden_fields(page.text)["csrf_token"]
        started = await user.post(
            f"/entities/{entity_id}/xero/connect",
            data={"csrf_token": csrf, "account_id": accounts, "start_date": start_date},
        )
        assert started.status_code == 303, started.text
        consent_page = await xero.get(path_of(started.headers["location"]))
        assert consent_page.status_code == 200, consent_page.text
        back = await xero.post(
            "/identity/connect/authorize",
            data={
                "request": hidden_fields(consent_page.text)["request"],
                "decision": "allow",
                "email": "owner@example.com",
                "tenant_id": [tenant_id],
            },
        )
        assert back.status_code == 302, back.text
        return await user.get(path_of(back.headers["location"]))
