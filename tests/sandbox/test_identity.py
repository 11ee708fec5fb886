"""Xero's identity service as the sandbox plays it: consent, codes, PKCE, token rotation."""

import base64
import hashlib
import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.sandbox.conftest import Connect
from xero_sandbox.organisations import OrganisationIn, create_organisation
from xero_sandbox.state import Sandbox

REDIRECT = "https://bank.example/xero/callback"
SCOPE = "openid profile email offline_access accounting.settings bankfeeds"
MINUTE = 60.0
DAY = 86_400.0


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


async def register(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.post("/admin/apps", json={"name": "Bank", "redirect_uris": [REDIRECT]})
    assert answer.status_code == 201
    app: dict[str, Any] = answer.json()
    return app


async def organisation(client: httpx.AsyncClient, **spec: Any) -> str:
    answer = await client.post("/admin/organisations", json={"name": "Org", **spec})
    assert answer.status_code == 201, answer.text
    tenant_id: str = answer.json()["tenant_id"]
    return tenant_id


async def consent_in_browser(
    client: httpx.AsyncClient,
    app: dict[str, Any],
    tenant_ids: list[str],
    *,
    challenge: str | None,
    decision: str = "allow",
    state: str = "st4te",
) -> dict[str, list[str]]:
    """What a browser does on the consent page; the query the app's callback receives."""
    query = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": state,
    }
    if challenge is not None:
        query |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    page = await client.get(f"/identity/connect/authorize?{urlencode(query)}")
    assert page.status_code == 200, page.text
    assert "Organisations to connect" in page.text
    request_id = re.search(r'name="request" value="([^"]+)"', page.text)
    assert request_id is not None
    form = [
        ("request", request_id.group(1)),
        ("email", "owner@example.com"),
        ("decision", decision),
    ]
    form += [("tenant_id", t) for t in tenant_ids]
    answer = await client.post(
        "/identity/connect/authorize",
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


async def token(client: httpx.AsyncClient, app: dict[str, Any], **form: str) -> httpx.Response:
    basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    return await client.post(
        "/connect/token",
        content=urlencode(form),
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )


async def connected(
    client: httpx.AsyncClient, tenant_ids: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    app = await register(client)
    verifier, challenge = pkce()
    callback = await consent_in_browser(client, app, tenant_ids, challenge=challenge)
    answer = await token(
        client,
        app,
        grant_type="authorization_code",
        code=callback["code"][0],
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    assert answer.status_code == 200, answer.text
    return app, answer.json()


async def test_consent_page_code_and_pkce_give_a_token_set(client: httpx.AsyncClient) -> None:
    tenant = await organisation(client, name="Acme HK")
    app = await register(client)
    verifier, challenge = pkce()
    callback = await consent_in_browser(client, app, [tenant], challenge=challenge)
    assert callback["state"] == ["st4te"]
    code = callback["code"][0]

    wrong_verifier = await token(
        client,
        app,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=pkce()[0],
    )
    assert (wrong_verifier.status_code, wrong_verifier.json()) == (400, {"error": "invalid_grant"})

    answer = await token(
        client,
        app,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    assert answer.status_code == 200
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 1800
    assert set(tokens) >= {"access_token", "refresh_token", "id_token", "scope"}
    access = claims(tokens["access_token"])
    assert access["client_id"] == app["client_id"]
    assert access["exp"] - access["nbf"] == 1800
    assert claims(tokens["id_token"])["email"] == "owner@example.com"

    # A code is single-use.
    again = await token(
        client,
        app,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})


async def test_code_checks_redirect_uri_lifetime_and_client(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    tenant = await organisation(client)
    app = await register(client)
    other = await register(client)

    async def fresh_code() -> str:
        return (await consent_in_browser(client, app, [tenant], challenge=None))["code"][0]

    code = await fresh_code()
    elsewhere = await token(
        client, app, grant_type="authorization_code", code=code, redirect_uri=REDIRECT + "/x"
    )
    assert elsewhere.json() == {"error": "invalid_grant"}

    code = await fresh_code()
    stolen = await token(
        client, other, grant_type="authorization_code", code=code, redirect_uri=REDIRECT
    )
    assert stolen.json() == {"error": "invalid_grant"}

    bad_secret = await token(
        client,
        {**app, "client_secret": "nope"},
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
    )
    assert (bad_secret.status_code, bad_secret.json()) == (400, {"error": "invalid_client"})

    sandbox.clock.advance(5 * MINUTE + 1)
    late = await token(
        client, app, grant_type="authorization_code", code=code, redirect_uri=REDIRECT
    )
    assert late.json() == {"error": "invalid_grant"}


async def test_denied_consent_returns_access_denied_with_state(client: httpx.AsyncClient) -> None:
    tenant = await organisation(client)
    app = await register(client)
    callback = await consent_in_browser(
        client, app, [tenant], challenge=None, decision="deny", state="s1"
    )
    assert callback["error"] == ["access_denied"]
    assert callback["state"] == ["s1"]
    assert "code" not in callback


@pytest.mark.parametrize(
    ("change", "where", "error"),
    [
        ({"client_id": "UNKNOWN"}, "page", "unauthorized_client"),
        ({"redirect_uri": "https://evil.example/cb"}, "page", "invalid_request"),
        ({"code_challenge_method": "plain"}, "redirect", "invalid_request"),
        ({"scope": "accounting.everything"}, "redirect", "invalid_scope"),
        ({"response_type": "token"}, "redirect", "unsupported_response_type"),
    ],
)
async def test_bad_authorize_requests_are_refused(
    client: httpx.AsyncClient, change: dict[str, str], where: str, error: str
) -> None:
    app = await register(client)
    query = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": "abc",
        "code_challenge": pkce()[1],
        "code_challenge_method": "S256",
    } | change
    answer = await client.get(f"/identity/connect/authorize?{urlencode(query)}")
    if where == "page":
        # The redirect URI cannot be trusted: Xero shows an error page and never redirects.
        assert answer.status_code == 400
        assert error in answer.text
    else:
        assert answer.status_code == 302
        returned = parse_qs(urlsplit(answer.headers["location"]).query)
        assert returned["error"] == [error]
        assert returned["state"] == ["abc"]


async def test_connections_filtered_by_auth_event(client: httpx.AsyncClient) -> None:
    first, second = (
        await organisation(client, name="First"),
        await organisation(client, name="Second"),
    )
    app, tokens = await connected(client, [first])
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    event = claims(tokens["access_token"])["authentication_event_id"]

    # The same user connects a second organisation later: a new auth event.
    callback = await consent_in_browser(client, app, [second], challenge=None)
    later = await token(
        client,
        app,
        grant_type="authorization_code",
        code=callback["code"][0],
        redirect_uri=REDIRECT,
    )
    later_event = claims(later.json()["access_token"])["authentication_event_id"]
    assert later_event != event

    everything = await client.get("/Connections", headers=bearer)
    assert {c["tenantName"] for c in everything.json()} == {"First", "Second"}
    only_first = await client.get(f"/connections?authEventId={event}", headers=bearer)
    assert [c["tenantId"] for c in only_first.json()] == [first]
    assert only_first.json()[0]["tenantType"] == "ORGANISATION"
    only_second = await client.get(f"/connections?authEventId={later_event}", headers=bearer)
    assert [c["tenantId"] for c in only_second.json()] == [second]

    unauthorised = await client.get("/connections")
    assert unauthorised.status_code == 401


async def test_refresh_tokens_rotate_with_a_grace_period(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    app, tokens = await connected(client, [await organisation(client)])
    first = tokens["refresh_token"]

    rotated = (await token(client, app, grant_type="refresh_token", refresh_token=first)).json()
    second = rotated["refresh_token"]
    assert second != first
    assert rotated["access_token"] != tokens["access_token"]

    # The used token still works within 30 minutes, and answers the family's newest token,
    # so a retry after a lost answer cannot fork the family.
    sandbox.clock.advance(29 * MINUTE)
    retried = (await token(client, app, grant_type="refresh_token", refresh_token=first)).json()
    assert retried["refresh_token"] == second

    sandbox.clock.advance(2 * MINUTE)
    expired_grace = await token(client, app, grant_type="refresh_token", refresh_token=first)
    assert (expired_grace.status_code, expired_grace.json()) == (400, {"error": "invalid_grant"})

    third = (await token(client, app, grant_type="refresh_token", refresh_token=second)).json()
    assert third["refresh_token"] not in {first, second}

    other = await register(client)
    wrong_app = await token(
        client, other, grant_type="refresh_token", refresh_token=third["refresh_token"]
    )
    assert wrong_app.json() == {"error": "invalid_grant"}


async def test_unused_refresh_token_expires_after_60_days(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    app, tokens = await connected(client, [await organisation(client)])
    sandbox.clock.advance(59 * DAY)
    kept = await token(
        client, app, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert kept.status_code == 200

    sandbox.clock.advance(60 * DAY + 1)
    lapsed = await token(
        client, app, grant_type="refresh_token", refresh_token=kept.json()["refresh_token"]
    )
    assert (lapsed.status_code, lapsed.json()) == (400, {"error": "invalid_grant"})


async def test_unsupported_grant_type(client: httpx.AsyncClient) -> None:
    app = await register(client)
    answer = await token(client, app, grant_type="client_credentials")
    assert (answer.status_code, answer.json()) == (400, {"error": "unsupported_grant_type"})


async def test_access_tokens_expire_after_30_minutes(
    client: httpx.AsyncClient, sandbox: Sandbox, connect: Connect
) -> None:
    tenant = await connect()
    assert (await client.get("/connections", headers=tenant.headers)).status_code == 200
    sandbox.clock.advance(30 * MINUTE)
    expired = await client.get("/connections", headers=tenant.headers)
    assert expired.status_code == 401
    assert expired.json()["Detail"].startswith("TokenExpired")


async def test_revocation_revokes_tokens_and_removes_connections(client: httpx.AsyncClient) -> None:
    tenant = await organisation(client)
    app, tokens = await connected(client, [tenant])
    basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    answer = await client.post(
        "/connect/revocation",
        content=urlencode({"token": tokens["refresh_token"]}),
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert answer.status_code == 200

    refreshed = await token(
        client, app, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refreshed.json() == {"error": "invalid_grant"}
    listed = await client.get(
        "/connections", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert listed.status_code == 401

    # Consenting again works, and the earlier connection is gone.
    _, again = await connected(client, [tenant])
    bearer = {"Authorization": f"Bearer {again['access_token']}"}
    assert len((await client.get("/connections", headers=bearer)).json()) == 1


async def test_delete_connection_cuts_access_to_that_tenant(
    client: httpx.AsyncClient, sandbox: Sandbox, connect: Connect
) -> None:
    tenant = await connect()
    [connection] = (await client.get("/connections", headers=tenant.headers)).json()
    assert (
        await client.delete(f"/connections/{connection['id']}", headers=tenant.headers)
    ).status_code == 204
    assert (
        await client.delete(f"/connections/{connection['id']}", headers=tenant.headers)
    ).status_code == 404
    assert (await client.get("/connections", headers=tenant.headers)).json() == []
    organisation_call = await client.get("/api.xro/2.0/Organisation", headers=tenant.headers)
    assert organisation_call.status_code == 403


async def test_a_token_reaches_only_its_own_user_and_apps_connections(
    client: httpx.AsyncClient, sandbox: Sandbox, connect: Connect
) -> None:
    mine = await connect(name="Mine")
    theirs = await connect(name="Theirs")
    crossed = {**mine.headers, "Xero-Tenant-Id": theirs.tenant_id}
    answer = await client.get("/api.xro/2.0/Organisation", headers=crossed)
    assert answer.status_code == 403
    assert answer.json()["Title"] == "Forbidden"
    # An organisation nobody connected is refused the same way.
    stranger = create_organisation(sandbox, OrganisationIn(name="Stranger"))
    lost = {**mine.headers, "Xero-Tenant-Id": stranger.tenant_id}
    assert (await client.get("/api.xro/2.0/Organisation", headers=lost)).status_code == 403
