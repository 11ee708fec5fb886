"""Xero's identity service: apps, consent, codes, token sets, connections.

Rules kept here, as Xero keeps them:
- access tokens are JWTs that live 30 minutes and carry `authentication_event_id`, which an
  app passes to `GET /connections?authEventId=` to learn which organisations a consent added;
- authorization codes are single-use and live 5 minutes; PKCE (S256 only) is checked when the
  authorize request carried a challenge;
- refresh tokens are single-use and rotate on every refresh; a used one is still accepted for
  30 minutes (Xero's grace period, for answers lost on the way) and then answers the family's
  newest refresh token; an unused one expires after 60 days;
- a connection is one user's authorisation of one app on one organisation: consenting again
  updates it (and its `authEventId`); an access token reaches every organisation its user has
  connected to its app.
"""

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from xero_sandbox.errors import token_error, unauthorized
from xero_sandbox.state import (
    AccessToken,
    App,
    AuthorizationCode,
    Connection,
    Grant,
    PendingAuthorization,
    RefreshToken,
    Sandbox,
    User,
    new_id,
)

ACCESS_TOKEN_LIFETIME = timedelta(minutes=30)
REFRESH_TOKEN_LIFETIME = timedelta(days=60)
REFRESH_GRACE = timedelta(minutes=30)
CODE_LIFETIME = timedelta(minutes=5)
PENDING_LIFETIME = timedelta(hours=1)
ISSUER = "https://identity.xero.com"

KNOWN_SCOPES = frozenset(
    {
        "openid",
        "profile",
        "email",
        "offline_access",
        "accounting.transactions",
        "accounting.transactions.read",
        "accounting.settings",
        "accounting.settings.read",
        "accounting.contacts",
        "accounting.contacts.read",
        "accounting.reports.read",
        "accounting.journals.read",
        "accounting.attachments",
        "accounting.attachments.read",
        "accounting.budgets.read",
        "bankfeeds",
    }
)
_PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43,128}$")


class AuthorizeRefused(Exception):
    """An authorize request Xero refuses.

    With `redirect` false, Xero cannot trust the redirect URI and shows an error page;
    otherwise the error goes back to the app as `?error=…&state=…`.
    """

    def __init__(self, error: str, description: str, *, redirect: bool) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect = redirect


# ----------------------------------------------------------------------------- apps


def register_app(sandbox: Sandbox, name: str, redirect_uris: list[str]) -> App:
    app = App(
        client_id=secrets.token_hex(16).upper(),
        client_secret=secrets.token_urlsafe(36),
        name=name,
        redirect_uris=list(redirect_uris),
    )
    sandbox.apps[app.client_id] = app
    return app


def authenticate_client(
    sandbox: Sandbox, authorization: str | None, client_id: str | None, client_secret: str | None
) -> App:
    """The app calling /connect/token or /connect/revocation (HTTP Basic or form fields)."""
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            client_id, _, client_secret = decoded.partition(":")
        except (ValueError, UnicodeDecodeError):
            raise token_error("invalid_client") from None
    app = sandbox.apps.get(client_id or "")
    if (
        app is None
        or not client_secret
        or not hmac.compare_digest(app.client_secret.encode(), client_secret.encode())
    ):
        raise token_error("invalid_client")
    return app


# ----------------------------------------------------------------------------- consent


def start_authorization(
    sandbox: Sandbox,
    *,
    client_id: str | None,
    redirect_uri: str | None,
    response_type: str | None,
    scope: str | None,
    state: str | None,
    code_challenge: str | None,
    code_challenge_method: str | None,
) -> str:
    """Check an authorize request; the id of the pending consent the user will decide on."""
    app = sandbox.apps.get(client_id or "")
    if app is None:
        raise AuthorizeRefused(
            "unauthorized_client", "Unknown client or client not enabled", redirect=False
        )
    if not redirect_uri or redirect_uri not in app.redirect_uris:
        raise AuthorizeRefused("invalid_request", "Invalid redirect_uri", redirect=False)
    if response_type != "code":
        raise AuthorizeRefused(
            "unsupported_response_type", "response_type must be code", redirect=True
        )
    scopes = tuple(dict.fromkeys((scope or "").split()))
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if not scopes or unknown:
        raise AuthorizeRefused(
            "invalid_scope", f"Invalid scope: {' '.join(unknown) or '(none)'}", redirect=True
        )
    if code_challenge is not None:
        if (code_challenge_method or "plain") != "S256":
            raise AuthorizeRefused(
                "invalid_request", "code_challenge_method must be S256", redirect=True
            )
        if not _PKCE_CHALLENGE.match(code_challenge):
            raise AuthorizeRefused("invalid_request", "Invalid code_challenge", redirect=True)
    pending_id = secrets.token_urlsafe(24)
    sandbox.pending[pending_id] = PendingAuthorization(
        client_id=app.client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        code_challenge=code_challenge,
        created_at=sandbox.clock.now(),
    )
    return pending_id


def pending_authorization(sandbox: Sandbox, pending_id: str) -> PendingAuthorization:
    pending = sandbox.pending.get(pending_id)
    if pending is None or sandbox.clock.now() - pending.created_at > PENDING_LIFETIME:
        raise AuthorizeRefused(
            "invalid_request",
            "This sign-in request has expired; start again from the app.",
            redirect=False,
        )
    return pending


def decide(
    sandbox: Sandbox, pending_id: str, *, allow: bool, email: str, tenant_ids: list[str]
) -> str:
    """The user's answer on the consent page; the URL to send the browser back to."""
    pending = pending_authorization(sandbox, pending_id)
    del sandbox.pending[pending_id]
    answer: dict[str, str]
    if not allow:
        answer = {"error": "access_denied", "error_description": "The user denied access"}
    else:
        grant = consent(
            sandbox,
            sandbox.apps[pending.client_id],
            sandbox.user(email),
            tenant_ids,
            pending.scopes,
        )
        code = secrets.token_urlsafe(32)
        sandbox.codes[code] = AuthorizationCode(
            client_id=pending.client_id,
            redirect_uri=pending.redirect_uri,
            code_challenge=pending.code_challenge,
            grant=grant,
            expires_at=sandbox.clock.now() + CODE_LIFETIME,
        )
        answer = {
            "code": code,
            "scope": " ".join(pending.scopes),
            "session_state": grant.session_id,
        }
    if pending.state is not None:
        answer["state"] = pending.state
    separator = "&" if "?" in pending.redirect_uri else "?"
    return f"{pending.redirect_uri}{separator}{urlencode(answer)}"


def consent(
    sandbox: Sandbox, app: App, user: User, tenant_ids: list[str], scopes: tuple[str, ...]
) -> Grant:
    """The user allows `app` on these organisations: connections made or renewed, one grant."""
    tenants = [t.lower() for t in dict.fromkeys(tenant_ids)]
    missing = [t for t in tenants if t not in sandbox.organisations]
    if missing:
        raise ValueError(f"no such organisation: {', '.join(missing)}")
    now = sandbox.clock.now()
    auth_event_id = new_id()
    existing = {c.tenant_id: c for c in sandbox.connections_of(app.client_id, user.user_id)}
    for tenant_id in tenants:
        connection = existing.get(tenant_id)
        if connection is None:
            connection = Connection(
                id=new_id(),
                tenant_id=tenant_id,
                client_id=app.client_id,
                user_id=user.user_id,
                auth_event_id=auth_event_id,
                created_at=now,
                updated_at=now,
            )
            sandbox.connections[connection.id] = connection
        connection.auth_event_id = auth_event_id
        connection.updated_at = now
    grant = Grant(
        grant_id=new_id(),
        client_id=app.client_id,
        user_id=user.user_id,
        scopes=scopes,
        auth_event_id=auth_event_id,
        session_id=secrets.token_hex(16),
    )
    sandbox.grants[grant.grant_id] = grant
    return grant


# ----------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Caller:
    """Who an API call comes from, as its bearer token says."""

    app: App
    grant: Grant


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(sandbox: Sandbox, claims: dict[str, object]) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(sandbox.signing_key, f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{_b64(signature.digest())}"


def issue_tokens(
    sandbox: Sandbox, grant: Grant, *, refresh_token: str | None = None
) -> dict[str, object]:
    """A token set as /connect/token answers it. A new refresh token unless one is given."""
    now = sandbox.clock.now()
    expires = now + ACCESS_TOKEN_LIFETIME
    user = next(u for u in sandbox.users.values() if u.user_id == grant.user_id)
    access = _jwt(
        sandbox,
        {
            "nbf": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "iss": ISSUER,
            "aud": f"{ISSUER}/resources",
            "client_id": grant.client_id,
            "sub": user.user_id.replace("-", ""),
            "auth_time": int(now.timestamp()),
            "xero_userid": user.user_id,
            "global_session_id": grant.session_id,
            "sid": grant.session_id,
            "jti": secrets.token_hex(16),
            "authentication_event_id": grant.auth_event_id,
            "scope": list(grant.scopes),
        },
    )
    sandbox.access_tokens[access] = AccessToken(grant_id=grant.grant_id, expires_at=expires)
    answer: dict[str, object] = {}
    if "openid" in grant.scopes:
        answer["id_token"] = _jwt(
            sandbox,
            {
                "nbf": int(now.timestamp()),
                "exp": int((now + timedelta(minutes=5)).timestamp()),
                "iss": ISSUER,
                "aud": grant.client_id,
                "iat": int(now.timestamp()),
                "sub": user.user_id.replace("-", ""),
                "xero_userid": user.user_id,
                "email": user.email,
                "global_session_id": grant.session_id,
            },
        )
    answer |= {
        "access_token": access,
        "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds()),
        "token_type": "Bearer",
    }
    if "offline_access" in grant.scopes:
        if refresh_token is None:
            refresh_token = secrets.token_hex(32)
            sandbox.refresh_tokens[refresh_token] = RefreshToken(
                grant_id=grant.grant_id, issued_at=now
            )
            grant.current_refresh_token = refresh_token
        answer["refresh_token"] = refresh_token
    answer["scope"] = " ".join(grant.scopes)
    return answer


def exchange_code(
    sandbox: Sandbox,
    app: App,
    code: str | None,
    redirect_uri: str | None,
    code_verifier: str | None,
) -> dict[str, object]:
    issued = sandbox.codes.get(code or "")
    if issued is None or issued.used or issued.client_id != app.client_id:
        raise token_error("invalid_grant")
    if sandbox.clock.now() > issued.expires_at or issued.redirect_uri != redirect_uri:
        raise token_error("invalid_grant")
    if issued.code_challenge is not None:
        expected = _b64(hashlib.sha256((code_verifier or "").encode()).digest())
        if not code_verifier or not hmac.compare_digest(expected, issued.code_challenge):
            raise token_error("invalid_grant")
    issued.used = True
    return issue_tokens(sandbox, issued.grant)


def refresh(sandbox: Sandbox, app: App, refresh_token: str | None) -> dict[str, object]:
    record = sandbox.refresh_tokens.get(refresh_token or "")
    if record is None:
        raise token_error("invalid_grant")
    grant = sandbox.grants[record.grant_id]
    now = sandbox.clock.now()
    if grant.revoked or grant.client_id != app.client_id:
        raise token_error("invalid_grant")
    if record.used_at is None:
        if now - record.issued_at > REFRESH_TOKEN_LIFETIME:
            raise token_error("invalid_grant")
        record.used_at = now
        return issue_tokens(sandbox, grant)
    if now - record.used_at > REFRESH_GRACE or grant.current_refresh_token is None:
        raise token_error("invalid_grant")
    # Within the grace period: the answer that was lost, again (the family's newest refresh
    # token, with a fresh access token), so a retry cannot fork the family.
    return issue_tokens(sandbox, grant, refresh_token=grant.current_refresh_token)


def revoke_grant(sandbox: Sandbox, grant: Grant) -> None:
    grant.revoked = True
    grant.current_refresh_token = None
    for token, access in list(sandbox.access_tokens.items()):
        if access.grant_id == grant.grant_id:
            del sandbox.access_tokens[token]


def revoke(sandbox: Sandbox, app: App, token: str | None) -> None:
    """POST /connect/revocation: the token set is revoked and the user's connections removed."""
    record = sandbox.refresh_tokens.get(token or "")
    if record is None:
        return  # RFC 7009: an unknown token is not an error
    grant = sandbox.grants[record.grant_id]
    if grant.client_id != app.client_id:
        return
    revoke_grant(sandbox, grant)
    for connection in sandbox.connections_of(app.client_id, grant.user_id):
        del sandbox.connections[connection.id]


def caller(sandbox: Sandbox, authorization: str | None) -> Caller:
    """The app and grant behind a bearer token, or Xero's 401."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise unauthorized()
    record = sandbox.access_tokens.get(authorization[7:].strip())
    if record is None:
        raise unauthorized()
    grant = sandbox.grants[record.grant_id]
    if grant.revoked:
        raise unauthorized()
    if sandbox.clock.now() >= record.expires_at:
        stamp = record.expires_at.strftime("%m/%d/%Y %H:%M:%S")
        raise unauthorized(f"TokenExpired: token expired at {stamp}")
    return Caller(app=sandbox.apps[grant.client_id], grant=grant)


def connection_for(sandbox: Sandbox, who: Caller, tenant_id: str) -> Connection | None:
    tenant = tenant_id.strip().lower()
    return next(
        (
            c
            for c in sandbox.connections_of(who.app.client_id, who.grant.user_id)
            if c.tenant_id == tenant
        ),
        None,
    )


# ----------------------------------------------------------------------------- the Xero user


def remove_app(sandbox: Sandbox, tenant_id: str, client_id: str) -> int:
    """The organisation's user disconnects the app in Xero: its connections there go, and a
    token family left with no organisation is revoked (its refresh answers invalid_grant)."""
    removed = [
        c
        for c in sandbox.connections.values()
        if c.tenant_id == tenant_id and c.client_id == client_id
    ]
    for connection in removed:
        del sandbox.connections[connection.id]
    for connection in removed:
        if not sandbox.connections_of(client_id, connection.user_id):
            for grant in sandbox.grants.values():
                if grant.client_id == client_id and grant.user_id == connection.user_id:
                    revoke_grant(sandbox, grant)
    return len(removed)
