"""The connector's Xero client against the sandbox: OAuth, connections, the organisation,
bank accounts and bank feeds, and every refusal arriving as our own error, without secrets."""

import base64
import hashlib
import re
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from services.connector.adapters import xero as xero_adapter
from services.connector.adapters.xero import TokenSet, XeroClient
from services.connector.config import XERO_SCOPES
from shared.errors import PermanentError, TransientError
from shared.xero_http import (
    InvalidGrant,
    OAuthError,
    XeroError,
    XeroForbidden,
    XeroHttp,
    XeroNotFound,
    XeroRateLimited,
    XeroUnauthorized,
    XeroUnavailable,
    XeroValidation,
)
from xero_sandbox import identity
from xero_sandbox.organisations import OrganisationIn, create_organisation
from xero_sandbox.state import App, Organisation, Sandbox

BASE = "http://sandbox.test"
REDIRECT = "https://bank.example/xero/callback"
Observed = list[tuple[str, str, str, float]]


# ----------------------------------------------------------------------------- helpers


@pytest.fixture
def app(sandbox: Sandbox) -> App:
    return identity.register_app(sandbox, "xerosync connector", [REDIRECT])


@pytest.fixture
def observed() -> Observed:
    return []


def xero_client(http: httpx.AsyncClient, app: App, observed: Observed | None = None) -> XeroClient:
    def observe(api: str, operation: str, status: str, seconds: float) -> None:
        if observed is not None:
            observed.append((api, operation, status, seconds))

    return XeroClient(
        XeroHttp(http, observer=observe),
        login_url=BASE,
        identity_url=BASE + "/",
        api_url=BASE,
        client_id=app.client_id,
        client_secret=SecretStr(app.client_secret),
    )


@pytest.fixture
def xero(client: httpx.AsyncClient, app: App, observed: Observed) -> XeroClient:
    return xero_client(client, app, observed)


def stub_client(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    """A client whose every call `answer` answers, for what the sandbox never does."""
    return httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url=BASE)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_org(sandbox: Sandbox, **spec: Any) -> Organisation:
    spec.setdefault("name", "Acme Trading")
    return create_organisation(sandbox, OrganisationIn(**spec))


async def consent(
    client: httpx.AsyncClient, xero: XeroClient, tenant_ids: list[str], *, state: str = "s1"
) -> TokenSet:
    """The user's browser on Xero's consent page, then the connector's code exchange."""
    verifier, challenge = pkce()
    url = xero.authorize_url(
        redirect_uri=REDIRECT, state=state, code_challenge=challenge, scopes=XERO_SCOPES
    )
    page = await client.get(url)
    assert page.status_code == 200, page.text
    request_id = re.search(r'name="request" value="([^"]+)"', page.text)
    assert request_id is not None
    form = [("request", request_id.group(1)), ("email", "owner@example.com")]
    form += [("decision", "allow"), *(("tenant_id", t) for t in tenant_ids)]
    decided = await client.post(
        "/identity/connect/authorize",
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert decided.status_code == 302
    callback = parse_qs(urlsplit(decided.headers["location"]).query)
    assert callback["state"] == [state]
    return await xero.exchange_code(
        callback["code"][0], code_verifier=verifier, redirect_uri=REDIRECT
    )


async def connected(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox, **spec: Any
) -> tuple[Organisation, TokenSet, str]:
    """A new organisation connected to the app: it, the token set and the access token."""
    org = new_org(sandbox, **spec)
    tokens = await consent(client, xero, [org.tenant_id])
    return org, tokens, tokens.access_token.get_secret_value()


async def advance(client: httpx.AsyncClient, seconds: float) -> None:
    answer = await client.post("/admin/time/advance", json={"seconds": seconds})
    assert answer.status_code == 200


def assert_no_secrets(error: BaseException, *secret_values: str) -> None:
    shown = " ".join(
        [str(error), repr(error), getattr(error, "message", ""), *map(str, error.args)]
    )
    for value in secret_values:
        assert value not in shown


# ----------------------------------------------------------------------------- OAuth


async def test_authorize_url_asks_for_a_code_with_pkce(xero: XeroClient, app: App) -> None:
    url = xero.authorize_url(
        redirect_uri=REDIRECT, state="st/ate", code_challenge="c" * 43, scopes=XERO_SCOPES
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BASE}/identity/connect/authorize"
    assert "%20" in parts.query  # scopes joined by an encoded space, as Xero's docs show
    assert parse_qs(parts.query) == {
        "response_type": ["code"],
        "client_id": [app.client_id],
        "redirect_uri": [REDIRECT],
        "scope": [" ".join(XERO_SCOPES)],
        "state": ["st/ate"],
        "code_challenge": ["c" * 43],
        "code_challenge_method": ["S256"],
    }


async def test_code_exchange_gives_tokens_and_the_consent_s_auth_event(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox, observed: Observed
) -> None:
    org = new_org(sandbox)
    before = datetime.now(UTC)
    tokens = await consent(client, xero, [org.tenant_id])

    assert tokens.access_token.get_secret_value().count(".") == 2  # a JWT
    assert tokens.refresh_token.get_secret_value()
    assert tokens.id_token is not None
    assert (
        before + timedelta(minutes=29)
        < tokens.expires_at
        <= datetime.now(UTC) + timedelta(minutes=30)
    )
    assert tokens.expires_at.tzinfo is not None
    assert set(tokens.scopes) == set(XERO_SCOPES)
    (connection,) = sandbox.connections.values()
    assert tokens.auth_event_id == connection.auth_event_id
    assert tokens.access_token.get_secret_value() not in repr(tokens)
    assert ("identity", "exchange_code", "200") in [o[:3] for o in observed]


async def test_a_used_code_is_an_invalid_grant(
    xero: XeroClient, sandbox: Sandbox, app: App
) -> None:
    org = new_org(sandbox)
    verifier, challenge = pkce()
    pending = identity.start_authorization(
        sandbox,
        client_id=app.client_id,
        redirect_uri=REDIRECT,
        response_type="code",
        scope=" ".join(XERO_SCOPES),
        state="s",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    location = identity.decide(
        sandbox, pending, allow=True, email="owner@example.com", tenant_ids=[org.tenant_id]
    )
    code = parse_qs(urlsplit(location).query)["code"][0]
    await xero.exchange_code(code, code_verifier=verifier, redirect_uri=REDIRECT)
    with pytest.raises(InvalidGrant) as refused:
        await xero.exchange_code(code, code_verifier=verifier, redirect_uri=REDIRECT)
    assert refused.value.status == 400
    assert refused.value.error == "invalid_grant"
    assert isinstance(refused.value, PermanentError)
    assert_no_secrets(refused.value, code, verifier, app.client_secret)


async def test_refresh_rotates_and_a_reused_token_fails_after_the_grace_period(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox, app: App
) -> None:
    _org, first, _access = await connected(client, xero, sandbox)
    old = first.refresh_token.get_secret_value()

    second = await xero.refresh(old)
    assert second.refresh_token.get_secret_value() != old
    assert second.access_token.get_secret_value() != first.access_token.get_secret_value()
    assert second.auth_event_id == first.auth_event_id

    # Within Xero's grace period the spent token answers again, with the newest refresh token.
    again = await xero.refresh(old)
    assert again.refresh_token == second.refresh_token

    await advance(client, 31 * 60)
    with pytest.raises(InvalidGrant) as refused:
        await xero.refresh(old)
    assert refused.value.status == 400
    assert_no_secrets(refused.value, old, app.client_secret)
    # The family's newest token still works.
    assert (await xero.refresh(second.refresh_token.get_secret_value())).refresh_token


async def test_a_wrong_client_secret_is_an_oauth_error_not_an_invalid_grant(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox, app: App
) -> None:
    _org, tokens, _access = await connected(client, xero, sandbox)
    wrong = App(app.client_id, "not-the-secret", app.name, app.redirect_uris)
    with pytest.raises(OAuthError) as refused:
        await xero_client(client, wrong).refresh(tokens.refresh_token.get_secret_value())
    assert not isinstance(refused.value, InvalidGrant)
    assert refused.value.error == "invalid_client"
    assert_no_secrets(refused.value, "not-the-secret", tokens.refresh_token.get_secret_value())


async def test_revoke_ends_the_token_set_and_its_connections(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox
) -> None:
    _org, tokens, access = await connected(client, xero, sandbox)
    refresh = tokens.refresh_token.get_secret_value()
    await xero.revoke(refresh)

    assert sandbox.connections == {}
    with pytest.raises(InvalidGrant):
        await xero.refresh(refresh)
    with pytest.raises(XeroUnauthorized) as refused:
        await xero.connections(access)
    assert_no_secrets(refused.value, access)
    await xero.revoke(refresh)  # revoking twice is fine (RFC 7009)


# ----------------------------------------------------------------------------- connections


async def test_connections_filter_by_the_consent_that_made_them(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox
) -> None:
    first_org = new_org(sandbox, name="First")
    second_org = new_org(sandbox, name="Second")
    first = await consent(client, xero, [first_org.tenant_id])
    second = await consent(client, xero, [second_org.tenant_id])
    access = second.access_token.get_secret_value()

    everything = await xero.connections(access)
    assert {str(c.tenant_id) for c in everything} == {first_org.tenant_id, second_org.tenant_id}
    (mine,) = await xero.connections(access, auth_event_id=second.auth_event_id)
    assert mine.tenant_id == uuid.UUID(second_org.tenant_id)
    assert mine.tenant_name == "Second"
    assert mine.tenant_type == "ORGANISATION"
    assert mine.auth_event_id == second.auth_event_id
    assert mine.created_at is not None
    assert mine.created_at.tzinfo is not None
    assert abs(mine.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    (older,) = await xero.connections(access, auth_event_id=first.auth_event_id)
    assert str(older.tenant_id) == first_org.tenant_id
    assert await xero.connections(access, auth_event_id=str(uuid.uuid4())) == []


async def test_delete_connection_and_deleting_it_again_is_fine(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox
) -> None:
    first_org = new_org(sandbox, name="First")
    second_org = new_org(sandbox, name="Second")
    tokens = await consent(client, xero, [first_org.tenant_id, second_org.tenant_id])
    access = tokens.access_token.get_secret_value()
    connections = await xero.connections(access)
    gone = next(c for c in connections if str(c.tenant_id) == first_org.tenant_id)

    await xero.delete_connection(access, gone.id)
    assert [str(c.tenant_id) for c in await xero.connections(access)] == [second_org.tenant_id]
    await xero.delete_connection(tokens.access_token, str(gone.id))


# ----------------------------------------------------------------------------- organisation


async def test_organisation(client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox) -> None:
    org, tokens, _access = await connected(
        client,
        xero,
        sandbox,
        name="Acme HK",
        base_currency="HKD",
        timezone="CHINASTANDARDTIME",
        country_code="HK",
    )
    # Tokens may come wrapped, and ids parsed, as the connector keeps them.
    found = await xero.organisation(tokens.access_token, uuid.UUID(org.tenant_id))
    assert found.tenant_id == uuid.UUID(org.tenant_id)
    assert found.name == "Acme HK"
    assert (found.edition, found.status) == ("BUSINESS", "ACTIVE")
    assert found.base_currency == "HKD"
    assert (found.xero_timezone, found.timezone_iana) == ("CHINASTANDARDTIME", "Asia/Shanghai")
    assert found.is_demo is False
    assert found.short_code == org.short_code
    assert found.country_code == "HK"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"edition": "PARTNER"}, ("PARTNER", "ACTIVE")),
        ({"status": "INACTIVE"}, ("BUSINESS", "INACTIVE")),
    ],
)
async def test_organisation_shows_partner_and_inactive_organisations(
    client: httpx.AsyncClient,
    xero: XeroClient,
    sandbox: Sandbox,
    change: dict[str, str],
    expected: tuple[str, str],
) -> None:
    org, _tokens, access = await connected(client, xero, sandbox, is_demo=True)
    answer = await client.patch(f"/admin/organisations/{org.tenant_id}", json=change)
    assert answer.status_code == 200
    found = await xero.organisation(access, org.tenant_id)
    assert (found.edition, found.status) == expected
    assert found.is_demo is True


async def test_currencies(client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox) -> None:
    org, _tokens, access = await connected(
        client, xero, sandbox, base_currency="HKD", currencies=["USD", "CNY"]
    )
    assert await xero.currencies(access, org.tenant_id) == ["HKD", "USD", "CNY"]


# ----------------------------------------------------------------------------- bank accounts


async def test_bank_accounts_and_creating_one_in_another_currency(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox, observed: Observed
) -> None:
    org, _tokens, access = await connected(
        client, xero, sandbox, base_currency="HKD", currencies=["USD"]
    )
    assert await xero.bank_accounts(access, org.tenant_id) == []  # the chart has none yet

    usd = await xero.create_bank_account(
        access, org.tenant_id, name="USD Current", number="012-345-678", currency="USD"
    )
    hkd = await xero.create_bank_account(
        access, org.tenant_id, name="HKD Savings", number="012-999-000", currency="HKD"
    )
    assert (usd.name, usd.type, usd.status) == ("USD Current", "BANK", "ACTIVE")
    assert (usd.currency, usd.bank_account_number, usd.code) == ("USD", "012-345-678", None)
    assert hkd.currency == "HKD"
    listed = await xero.bank_accounts(access, org.tenant_id)
    assert {a.account_id: a for a in listed} == {usd.account_id: usd, hkd.account_id: hkd}
    assert await xero.account(access, org.tenant_id, usd.account_id) == usd
    assert await xero.account(access, org.tenant_id, str(uuid.uuid4())) is None
    assert ("accounting", "create_account", "200") in [o[:3] for o in observed]
    assert ("accounting", "get_account", "404") in [o[:3] for o in observed]

    # Asking again (a retry after a lost answer) gets the same account, not a second one.
    again = await xero.create_bank_account(
        access, org.tenant_id, name="USD Current", number="012-345-678", currency="USD"
    )
    assert again.account_id == usd.account_id
    assert len(await xero.bank_accounts(access, org.tenant_id)) == 2
    replayed = [r for r in sandbox.requests if r.replayed]
    assert [r.method for r in replayed] == ["PUT"]
    assert replayed[0].idempotency_key is not None


async def test_a_currency_the_organisation_cannot_hold_is_refused_clearly(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox
) -> None:
    org, _tokens, access = await connected(client, xero, sandbox, base_currency="HKD")
    with pytest.raises(XeroValidation) as refused:
        await xero.create_bank_account(
            access, org.tenant_id, name="EUR Account", number="77-1", currency="EUR"
        )
    error = refused.value
    assert error.status == 400
    assert error.messages == ["The currency code 'EUR' is not subscribed to by this organisation."]
    assert error.message == error.messages[0]
    assert error.problem_type is None
    assert isinstance(error, PermanentError)
    assert "EUR" in str(error)
    assert "create_account" in str(error)
    assert_no_secrets(error, access)


async def test_an_account_archived_in_xero_shows_as_archived(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox
) -> None:
    org, _tokens, access = await connected(client, xero, sandbox)
    account = await xero.create_bank_account(
        access, org.tenant_id, name="Ops", number="1-2-3", currency="USD"
    )
    archive = f"/admin/organisations/{org.tenant_id}/accounts/{account.account_id}/archive"
    assert (await client.post(archive)).status_code == 200
    found = await xero.account(access, org.tenant_id, account.account_id)
    assert found is not None
    assert found.status == "ARCHIVED"
    assert (await client.delete(archive.removesuffix("/archive"))).status_code == 200
    assert await xero.account(access, org.tenant_id, account.account_id) is None


# ----------------------------------------------------------------------------- bank feeds


async def test_feed_connections_create_list_get_and_refuse_a_duplicate(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox
) -> None:
    org, _tokens, access = await connected(
        client, xero, sandbox, base_currency="HKD", currencies=["USD"]
    )
    token = str(uuid.uuid4())
    created = await xero.create_feed_connection(
        access,
        org.tenant_id,
        account_token=token,
        currency="USD",
        name="Acme Trading USD current account",  # longer than Xero's 30 characters
        number="012-345-678",
    )
    assert (created.account_token, created.currency, created.status) == (token, "USD", "PENDING")

    (listed,) = await xero.feed_connections(access, org.tenant_id)
    assert (listed.id, listed.account_token, listed.currency) == (created.id, token, "USD")
    assert listed.account_id is not None
    account = await xero.account(access, org.tenant_id, listed.account_id)
    assert account is not None
    assert (account.name, account.currency) == ("Acme Trading USD current accou", "USD")
    assert await xero.feed_connection(access, org.tenant_id, created.id) == listed
    assert await xero.feed_connection(access, org.tenant_id, str(uuid.uuid4())) is None

    with pytest.raises(XeroValidation) as refused:
        await xero.create_feed_connection(
            access, org.tenant_id, account_token=token, currency="USD", name="Again", number="9"
        )
    assert refused.value.problem_type == "feed-already-connected-in-current-organisation"
    assert refused.value.status == 400
    assert "already connected" in refused.value.message


async def test_a_feed_in_a_currency_the_organisation_cannot_hold(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox
) -> None:
    org, _tokens, access = await connected(client, xero, sandbox, base_currency="HKD")
    with pytest.raises(XeroValidation) as refused:
        await xero.create_feed_connection(
            access, org.tenant_id, account_token="acc-1", currency="EUR", name="EUR", number="1"
        )
    assert refused.value.problem_type == "invalid-organisation-multi-currency"
    assert "multi-currency" in refused.value.message


async def test_a_feed_refused_inside_a_202_is_refused(app: App) -> None:
    problem = {
        "type": "invalid-organisation-bank-feeds",
        "title": "Invalid organisation for bank feeds",
        "status": 400,
        "detail": "The organisation is INACTIVE and cannot receive bank feeds.",
    }

    def answer(request: httpx.Request) -> httpx.Response:
        item = {"accountToken": "acc-1", "status": "REJECTED", "error": problem}
        return httpx.Response(202, json={"items": [item]})

    async with stub_client(answer) as http:
        with pytest.raises(XeroValidation) as refused:
            await xero_client(http, app).create_feed_connection(
                "access", "tenant", account_token="acc-1", currency="USD", name="A", number="1"
            )
    assert refused.value.problem_type == "invalid-organisation-bank-feeds"
    assert refused.value.status == 400
    assert refused.value.message == problem["detail"]


async def test_feed_connections_reads_every_page(
    client: httpx.AsyncClient,
    xero: XeroClient,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    observed: Observed,
) -> None:
    org, _tokens, access = await connected(client, xero, sandbox)
    tokens = [f"acc-{n}" for n in range(5)]
    for token in tokens:
        await xero.create_feed_connection(
            access, org.tenant_id, account_token=token, currency="USD", name=token, number=token
        )
    monkeypatch.setattr(xero_adapter, "FEED_PAGE_SIZE", 2)
    observed.clear()
    found = await xero.feed_connections(access, org.tenant_id)
    assert [f.account_token for f in found] == tokens
    assert [o[1] for o in observed] == ["get_feed_connections"] * 3


# ----------------------------------------------------------------------------- refusals


async def test_an_unknown_or_expired_access_token_is_unauthorized(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox
) -> None:
    org, _tokens, access = await connected(client, xero, sandbox)
    with pytest.raises(XeroUnauthorized) as refused:
        await xero.organisation("not-a-token", org.tenant_id)
    assert refused.value.status == 401
    assert refused.value.message == "AuthenticationUnsuccessful"

    await advance(client, 31 * 60)
    with pytest.raises(XeroUnauthorized) as expired:
        await xero.bank_accounts(access, org.tenant_id)
    assert "TokenExpired" in expired.value.message
    assert isinstance(expired.value, PermanentError)
    assert_no_secrets(expired.value, access)


async def test_a_tenant_not_connected_is_forbidden(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox
) -> None:
    _org, _tokens, access = await connected(client, xero, sandbox)
    stranger = new_org(sandbox, name="Not connected")
    with pytest.raises(XeroForbidden) as refused:
        await xero.organisation(access, stranger.tenant_id)
    assert refused.value.status == 403


async def test_an_injected_503_is_xero_unavailable(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox, observed: Observed
) -> None:
    org, _tokens, access = await connected(client, xero, sandbox)
    rule = {"kind": "error", "status": 503, "path": "/api.xro/2.0/Organisation", "times": 1}
    assert (await client.put("/admin/faults", json={"rules": [rule]})).status_code == 200
    with pytest.raises(XeroUnavailable) as failed:
        await xero.organisation(access, org.tenant_id)
    assert failed.value.status == 503
    assert isinstance(failed.value, TransientError)
    assert "try again" in failed.value.message
    assert_no_secrets(failed.value, access)
    api, operation, status, seconds = observed[-1]
    assert (api, operation, status) == ("accounting", "get_organisation", "503")
    assert seconds >= 0
    assert str((await xero.organisation(access, org.tenant_id)).tenant_id) == org.tenant_id


async def test_an_injected_bank_feeds_503_is_xero_unavailable(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox
) -> None:
    org, _tokens, access = await connected(client, xero, sandbox)
    rule = {"kind": "error", "status": 500, "path": "/bankfeeds.xro/1.0/"}
    await client.put("/admin/faults", json={"rules": [rule]})
    with pytest.raises(XeroUnavailable) as failed:
        await xero.feed_connections(access, org.tenant_id)
    assert failed.value.status == 500
    assert "retried" in failed.value.message


async def test_429_is_rate_limited_with_the_limit_and_when_to_retry(
    client: httpx.AsyncClient, xero: XeroClient, sandbox: Sandbox, observed: Observed
) -> None:
    org, _tokens, access = await connected(client, xero, sandbox)
    await client.put("/admin/limits", json={"per_minute": 1})
    await xero.currencies(access, org.tenant_id)
    with pytest.raises(XeroRateLimited) as limited:
        await xero.currencies(access, org.tenant_id)
    error = limited.value
    assert (error.status, error.limit) == (429, "minute")
    assert error.retry_after is not None
    assert 0 < error.retry_after <= 60
    assert isinstance(error, TransientError)
    assert_no_secrets(error, access)
    assert observed[-1][:3] == ("accounting", "get_currencies", "429")


# ----------------------------------------------------------------------------- transport


@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout("timed out"), httpx.ConnectError("connection refused")]
)
async def test_timeouts_and_transport_errors_are_xero_unavailable(
    app: App, failure: httpx.TransportError
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    observed: Observed = []
    async with stub_client(fail) as http:
        with pytest.raises(XeroUnavailable) as failed:
            await xero_client(http, app, observed).connections("the-access-token")
    assert failed.value.status is None
    assert type(failure).__name__ in failed.value.message
    assert observed[0][:3] == ("identity", "get_connections", "error")
    assert_no_secrets(failed.value, "the-access-token", app.client_secret)


async def test_requests_carry_the_bearer_token_tenant_and_basic_client_auth(app: App) -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/connect/revocation":
            return httpx.Response(200)
        return httpx.Response(200, json={"Currencies": [{"Code": "HKD"}]})

    async with stub_client(record) as http:
        xero = xero_client(http, app)
        assert await xero.currencies("access-1", "tenant-1") == ["HKD"]
        await xero.revoke("refresh-1")
    api_call, revocation = seen
    assert api_call.headers["Authorization"] == "Bearer access-1"
    assert api_call.headers["Xero-Tenant-Id"] == "tenant-1"
    assert api_call.headers["Accept"] == "application/json"
    basic = base64.b64encode(f"{app.client_id}:{app.client_secret}".encode()).decode()
    assert revocation.headers["Authorization"] == f"Basic {basic}"
    assert parse_qs(revocation.content.decode()) == {"token": ["refresh-1"]}


async def test_credentials_echoed_by_xero_are_blanked_out(app: App) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        return httpx.Response(
            400,
            json={
                "error": "invalid_request",
                "error_description": f"bad token {form['refresh_token'][0]} "
                f"for {app.client_secret}",
            },
        )

    async with stub_client(echo) as http:
        with pytest.raises(OAuthError) as refused:
            await xero_client(http, app).refresh("secret-refresh-token")
    assert refused.value.message == "bad token *** for ***"
    assert_no_secrets(refused.value, "secret-refresh-token", app.client_secret)


class Refusal(NamedTuple):
    status: int
    body: Any
    kind: type[XeroError]
    message: str | None
    """None: the body itself (plain text)."""
    problem_type: str | None


@pytest.mark.parametrize(
    "case",
    [
        Refusal(
            400,
            {
                "ErrorNumber": 10,
                "Type": "ValidationException",
                "Message": "A validation exception occurred",
                "Elements": [
                    {
                        "ValidationErrors": [{"Message": "First"}],
                        "LineItems": [{"ValidationErrors": [{"Message": "Second"}]}],
                    },
                    {"ValidationErrors": [{"Message": "First"}]},
                ],
            },
            XeroValidation,
            "First; Second",
            None,
        ),
        Refusal(
            400,
            {"ErrorNumber": 16, "Type": "QueryParseException", "Message": "No property Foo"},
            XeroValidation,
            "No property Foo",
            None,
        ),
        Refusal(
            409,
            {
                "items": [
                    {
                        "id": "x",
                        "status": "REJECTED",
                        "errors": [
                            {
                                "type": "duplicate-statement",
                                "title": "Duplicate Statement Received",
                                "detail": "The received statement was marked as a duplicate.",
                            }
                        ],
                    }
                ]
            },
            XeroValidation,
            "The received statement was marked as a duplicate.",
            "duplicate-statement",
        ),
        Refusal(
            422,
            {"type": "invalid-end-balance", "title": "Invalid End Balance", "status": 422},
            XeroValidation,
            "Invalid End Balance",
            "invalid-end-balance",
        ),
        Refusal(404, "The resource you're looking for cannot be found", XeroNotFound, None, None),
        Refusal(
            403,
            {"Type": None, "Title": "Forbidden", "Detail": "AuthorizationUnsuccessful"},
            XeroForbidden,
            "AuthorizationUnsuccessful",
            None,
        ),
        Refusal(413, "", XeroValidation, "HTTP 413 without an explanation", None),
        Refusal(502, "<html>Bad gateway</html>", XeroUnavailable, None, None),
    ],
)
async def test_xero_error_bodies_become_our_errors(app: App, case: Refusal) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(case.body, str):
            return httpx.Response(case.status, text=case.body)
        return httpx.Response(case.status, json=case.body)

    async with stub_client(answer) as http:
        with pytest.raises(XeroError) as refused:
            await xero_client(http, app).currencies("access", "tenant")
    error = refused.value
    assert type(error) is case.kind
    assert error.status == case.status
    assert error.message == (case.message if case.message is not None else case.body)
    if isinstance(error, XeroValidation):
        assert error.problem_type == case.problem_type


async def test_an_answer_xero_does_not_document_is_transient(app: App) -> None:
    async with stub_client(lambda _request: httpx.Response(200, text="<html>proxy</html>")) as http:
        with pytest.raises(XeroUnavailable) as odd:
            await xero_client(http, app).currencies("access", "tenant")
    assert odd.value.status == 200
    async with stub_client(lambda _request: httpx.Response(200, json={"Accounts": [{}]})) as http:
        with pytest.raises(XeroUnavailable, match="lacked AccountID"):
            await xero_client(http, app).bank_accounts("access", "tenant")


async def test_a_time_zone_newer_than_our_table_falls_back_to_utc(app: App) -> None:
    organisation = {
        "OrganisationID": str(uuid.uuid4()),
        "Name": "Mars Base",
        "OrganisationStatus": "ACTIVE",
        "BaseCurrency": "USD",
        "Timezone": "OLYMPUSMONSSTANDARDTIME",
    }
    answer = httpx.Response(200, json={"Organisations": [organisation]})
    async with stub_client(lambda _request: answer) as http:
        found = await xero_client(http, app).organisation("access", "tenant")
    assert (found.xero_timezone, found.timezone_iana) == ("OLYMPUSMONSSTANDARDTIME", "UTC")
    assert (found.edition, found.short_code, found.is_demo) == ("BUSINESS", None, False)
