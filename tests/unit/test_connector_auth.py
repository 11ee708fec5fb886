"""Who is calling: user tokens, the session cookie, CSRF, the service credential."""

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from services.connector.entrypoints.auth import (
    AUDIENCE,
    SESSION_COOKIE,
    CsrfRefused,
    EntityForbidden,
    NotSignedIn,
    ServiceCredentials,
    ServiceRefused,
    UserSession,
    check_csrf,
    clear_session_cookie,
    cookie_is_secure,
    csrf_token,
    mint_user_token,
    require_entity,
    require_service,
    require_user,
    set_session_cookie,
    verify_user_token,
)
from shared.errors import PermanentError

SECRET = "a-session-secret-of-at-least-32-bytes!"
OTHER_SECRET = "another-session-secret-of-32-bytes-or-more"
LONG_SECRET = SECRET * 2  # HS512 wants 64 bytes; the point is the algorithm, not the key
SERVICE_TOKEN = "s" * 40
NEXT_SERVICE_TOKEN = "t" * 48


def _claims(**overrides: object) -> dict[str, object]:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, object] = {
        "sub": "user-1",
        "entity_id": "entity-1",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _signed(claims: dict[str, object], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# ---------------------------------------------------------------- user tokens


def test_a_minted_token_verifies() -> None:
    token = mint_user_token(SECRET, user_id="user-1", entity_id="entity-1", name="Ada")
    session = verify_user_token(SECRET, token)
    assert session.user_id == "user-1"
    assert session.entity_id == "entity-1"
    assert session.name == "Ada"
    assert session.via == "token"
    assert session.expires_at.tzinfo is not None
    expected = datetime.now(UTC) + timedelta(hours=8)
    assert abs(session.expires_at - expected) < timedelta(seconds=5)
    assert session.session_id == verify_user_token(SECRET, token).session_id
    other = mint_user_token(SECRET, user_id="user-1", entity_id="entity-1", ttl=timedelta(1))
    assert verify_user_token(SECRET, other).session_id != session.session_id


def test_the_token_carries_the_agreed_claims() -> None:
    token = mint_user_token(SECRET, user_id="user-1", entity_id="entity-1")
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert header["alg"] == "HS256"
    assert set(claims) == {"sub", "entity_id", "aud", "iat", "exp"}
    assert claims["aud"] == "xerosync-connector"


def test_a_jti_becomes_the_session_id() -> None:
    session = verify_user_token(SECRET, _signed(_claims(jti="session-42")))
    assert session.session_id == "session-42"
    assert session.name is None


def test_an_expired_token_says_how_to_sign_in_again() -> None:
    issued = datetime.now(UTC) - timedelta(hours=9)
    token = mint_user_token(SECRET, user_id="u", entity_id="e", now=issued)
    with pytest.raises(NotSignedIn) as refused:
        verify_user_token(SECRET, token)
    assert refused.value.reason == "expired"
    assert str(refused.value) == (
        "your sign-in has expired; open Xero sync from the bank's app again"
    )
    assert isinstance(refused.value, PermanentError)


def test_leeway_is_thirty_seconds() -> None:
    now = int(datetime.now(UTC).timestamp())
    verify_user_token(SECRET, _signed(_claims(iat=now - 100, exp=now - 20)))
    with pytest.raises(NotSignedIn, match="expired"):
        verify_user_token(SECRET, _signed(_claims(iat=now - 100, exp=now - 40)))
    verify_user_token(SECRET, _signed(_claims(iat=now + 20)))
    with pytest.raises(NotSignedIn, match="could not be verified"):
        verify_user_token(SECRET, _signed(_claims(iat=now + 60)))


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(_signed(_claims(), secret=OTHER_SECRET), id="wrong-secret"),
        pytest.param(_signed(_claims(aud="someone-else")), id="wrong-audience"),
        pytest.param(_signed(_claims(aud=None)), id="no-audience"),
        pytest.param(_signed(_claims(entity_id=None)), id="no-entity"),
        pytest.param(_signed(_claims(entity_id="")), id="empty-entity"),
        pytest.param(_signed(_claims(entity_id=7)), id="numeric-entity"),
        pytest.param(_signed(_claims(entity_id="e" * 65)), id="long-entity"),
        pytest.param(_signed(_claims(sub=None)), id="no-subject"),
        pytest.param(_signed(_claims(exp=None)), id="no-expiry"),
        pytest.param(_signed(_claims(iat=None)), id="no-issued-at"),
        pytest.param(_signed(_claims(name=["not", "a", "name"])), id="bad-name"),
        pytest.param(_signed(_claims(jti="")), id="empty-jti"),
        pytest.param(_signed(_claims(), secret=LONG_SECRET, algorithm="HS512"), id="hs512"),
        pytest.param(_b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims()) + ".", id="none"),
        pytest.param("not.a.token", id="garbage"),
    ],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(NotSignedIn) as refused:
        verify_user_token(SECRET, token)
    assert refused.value.reason == "invalid"
    assert "open Xero sync from the bank's app again" in str(refused.value)
    assert refused.value.__cause__ is None
    assert token not in str(refused.value)


def test_an_empty_token_is_missing() -> None:
    with pytest.raises(NotSignedIn) as refused:
        verify_user_token(SECRET, "")
    assert refused.value.reason == "missing"


def test_short_secrets_and_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        mint_user_token("short", user_id="u", entity_id="e")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        verify_user_token("short", "x.y.z")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        require_user("short")
    with pytest.raises(ValueError, match="1-64 characters"):
        mint_user_token(SECRET, user_id="", entity_id="e")
    with pytest.raises(ValueError, match="ttl"):
        mint_user_token(SECRET, user_id="u", entity_id="e", ttl=timedelta(0))


# ---------------------------------------------------------------- entity


def _session(entity_id: str = "entity-1", session_id: str = "sid-1") -> UserSession:
    return UserSession(
        user_id="user-1",
        entity_id=entity_id,
        name=None,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        session_id=session_id,
    )


def test_require_entity() -> None:
    require_entity(_session(), "entity-1")
    with pytest.raises(EntityForbidden) as refused:
        require_entity(_session(), "entity-2")
    assert "entity-2" not in str(refused.value)
    assert isinstance(refused.value, PermanentError)


# ---------------------------------------------------------------- CSRF


def test_csrf_tokens_are_bound_to_the_session() -> None:
    session = _session()
    token = csrf_token(SECRET, session)
    assert token == csrf_token(SECRET, session)
    check_csrf(SECRET, session, token)
    with pytest.raises(CsrfRefused):
        check_csrf(SECRET, _session(session_id="sid-2"), token)
    with pytest.raises(CsrfRefused):
        check_csrf(OTHER_SECRET, session, token)
    assert csrf_token(SECRET, _session(session_id="sid-2")) != token


@pytest.mark.parametrize("submitted", [None, "", "x", "é" * 43, "A" * 43])
def test_missing_or_wrong_csrf_tokens_are_refused(submitted: str | None) -> None:
    with pytest.raises(CsrfRefused) as refused:
        check_csrf(SECRET, _session(), submitted)
    assert isinstance(refused.value, PermanentError)


# ---------------------------------------------------------------- requests


def _app() -> FastAPI:
    app = FastAPI()
    current_user = require_user(SECRET)
    credentials = ServiceCredentials.parse(f"{SERVICE_TOKEN},{NEXT_SERVICE_TOKEN}")

    @app.exception_handler(NotSignedIn)
    def _not_signed_in(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NotSignedIn)
        return JSONResponse({"reason": exc.reason, "detail": str(exc)}, status_code=401)

    @app.exception_handler(ServiceRefused)
    def _service_refused(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=401)

    @app.get("/me")
    def me(session: Annotated[UserSession, Depends(current_user)]) -> dict[str, str]:
        return {"user": session.user_id, "entity": session.entity_id, "via": session.via}

    @app.get("/sign-in")
    def sign_in(token: str) -> JSONResponse:
        session = verify_user_token(SECRET, token)
        response = JSONResponse({"ok": True})
        set_session_cookie(response, token, session, secure=False)
        return response

    @app.get("/sign-out")
    def sign_out() -> JSONResponse:
        response = JSONResponse({"ok": True})
        clear_session_cookie(response, secure=True)
        return response

    @app.get("/internal", dependencies=[Depends(require_service(credentials))])
    def internal() -> dict[str, bool]:
        return {"ok": True}

    return app


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app()), base_url="http://connector.test"
    )


async def test_the_cookie_set_at_sign_in_carries_the_session() -> None:
    token = mint_user_token(SECRET, user_id="user-1", entity_id="entity-1")
    async with _client() as client:
        signed_in = await client.get("/sign-in", params={"token": token})
        me = (await client.get("/me")).json()
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}={token};")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie
    max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
    assert 8 * 3600 - 10 < max_age <= 8 * 3600
    assert me == {"user": "user-1", "entity": "entity-1", "via": "cookie"}


async def test_sign_out_clears_the_cookie() -> None:
    async with _client() as client:
        cleared = (await client.get("/sign-out")).headers["set-cookie"]
    assert cleared.startswith(f'{SESSION_COOKIE}="";')
    assert "Max-Age=0" in cleared
    assert "Secure" in cleared


async def test_a_bearer_header_carries_the_session() -> None:
    token = mint_user_token(SECRET, user_id="user-2", entity_id="entity-2")
    async with _client() as client:
        answer = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.json() == {"user": "user-2", "entity": "entity-2", "via": "bearer"}


async def test_an_explicit_bad_bearer_is_not_rescued_by_the_cookie() -> None:
    good = mint_user_token(SECRET, user_id="user-1", entity_id="entity-1")
    async with _client() as client:
        client.cookies.set(SESSION_COOKIE, good)
        assert (await client.get("/me")).status_code == 200
        for header in ("Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer "):
            answer = await client.get("/me", headers={"Authorization": header})
            assert answer.status_code == 401
            assert answer.json()["reason"] == "invalid"


async def test_no_credentials_means_not_signed_in() -> None:
    async with _client() as client:
        answer = await client.get("/me")
    assert answer.status_code == 401
    assert answer.json() == {
        "reason": "missing",
        "detail": "you are not signed in; open Xero sync from the bank's app",
    }


async def test_an_expired_cookie_is_reported_as_expired() -> None:
    old = datetime.now(UTC) - timedelta(hours=9)
    async with _client() as client:
        client.cookies.set(
            SESSION_COOKIE, mint_user_token(SECRET, user_id="u", entity_id="e", now=old)
        )
        answer = await client.get("/me")
    assert answer.status_code == 401
    assert answer.json()["reason"] == "expired"


def test_cookie_is_secure_follows_the_public_url() -> None:
    assert cookie_is_secure("https://xero-sync.bank.example")
    assert cookie_is_secure("HTTPS://xero-sync.bank.example")
    assert not cookie_is_secure("http://127.0.0.1:8000")


# ---------------------------------------------------------------- service credential


def test_service_credentials_accept_each_configured_token() -> None:
    credentials = ServiceCredentials.parse(f" {SERVICE_TOKEN} ,{NEXT_SERVICE_TOKEN}")
    assert credentials.verify(f"Bearer {SERVICE_TOKEN}")
    assert credentials.verify(f"bearer {NEXT_SERVICE_TOKEN}")
    assert SERVICE_TOKEN not in repr(credentials)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        SERVICE_TOKEN,
        f"Basic {SERVICE_TOKEN}",
        "Bearer ",
        f"Bearer {SERVICE_TOKEN[:-1]}",
        f"Bearer {SERVICE_TOKEN}x",
        f"Bearer {SERVICE_TOKEN},{NEXT_SERVICE_TOKEN}",
    ],
)
def test_service_credentials_refuse_anything_else(header: str | None) -> None:
    credentials = ServiceCredentials.parse(f"{SERVICE_TOKEN},{NEXT_SERVICE_TOKEN}")
    assert not credentials.verify(header)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no service tokens"),
        (" , ", "no service tokens"),
        ("short-token", "#1 is shorter than 32"),
        (f"{SERVICE_TOKEN},short-token", "#2 is shorter than 32"),
        (f"{SERVICE_TOKEN},", "#2 is shorter than 32"),
        (f"{'a' * 20} {'b' * 20}", "#1 contains whitespace"),
    ],
)
def test_bad_service_token_specs_say_which_without_showing_it(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        ServiceCredentials.parse(spec)
    assert "short-token" not in str(refused.value)
    assert SERVICE_TOKEN not in str(refused.value)


async def test_the_service_dependency() -> None:
    async with _client() as client:
        accepted = await client.get(
            "/internal", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
        )
        refused = await client.get("/internal", headers={"Authorization": "Bearer wrong"})
        missing = await client.get("/internal")
    assert accepted.json() == {"ok": True}
    assert refused.status_code == 401
    assert "wrong" not in refused.text
    assert missing.status_code == 401
