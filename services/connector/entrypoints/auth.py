"""Who is calling: a bank user (signed token or session cookie) or the syncer (service token).

The bank's app signs a short-lived JWT (HS256, `session_secret`) naming the user and the one
entity they act for, and sends the browser to `GET /sign-in?token=...`; the connector keeps
that same JWT in an HttpOnly cookie, so a session ends when the bank says it does. Forms
posted with the cookie carry a CSRF token derived from the session; bearer callers need none
(a browser never attaches an Authorization header on its own).
"""

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

import jwt
from starlette.requests import HTTPConnection
from starlette.responses import Response

from shared.errors import PermanentError

AUDIENCE = "xerosync-connector"
ALGORITHM = "HS256"
SESSION_COOKIE = "xerosync_session"
CSRF_FIELD = "csrf_token"
LEEWAY = timedelta(seconds=30)
# HS256 keys shorter than the hash are weaker than the signature (RFC 7518 §3.2).
MIN_SECRET_BYTES = 32
MIN_SERVICE_TOKEN_CHARS = 32
# Matches the columns that store them (connections.entity_id, connected_by).
_MAX_ID_CHARS = 64
_MAX_NAME_CHARS = 200

_OPEN_AGAIN = "open Xero sync from the bank's app again"


class NotSignedIn(PermanentError):
    """No valid user session; the message tells the person what to do."""

    def __init__(self, reason: Literal["missing", "expired", "invalid"]) -> None:
        self.reason = reason
        super().__init__(
            {
                "missing": "you are not signed in; open Xero sync from the bank's app",
                "expired": f"your sign-in has expired; {_OPEN_AGAIN}",
                "invalid": f"your sign-in could not be verified; {_OPEN_AGAIN}",
            }[reason]
        )


class EntityForbidden(PermanentError):
    """The session is for another entity (whether the asked-for one exists is not said)."""

    def __init__(self) -> None:
        super().__init__(
            "you are not signed in for this business; open Xero sync for it from the bank's app"
        )


class CsrfRefused(PermanentError):
    """A state-changing form arrived without this session's CSRF token."""

    def __init__(self) -> None:
        super().__init__("this page has expired; reload it and try again")


class ServiceRefused(PermanentError):
    """The internal token API was called without a valid service credential."""

    def __init__(self) -> None:
        super().__init__("a valid service credential is required")


@dataclass(frozen=True, slots=True)
class UserSession:
    user_id: str
    entity_id: str
    name: str | None
    expires_at: datetime
    # The token's `jti`, or a hash of the token: CSRF tokens are bound to it.
    session_id: str
    via: Literal["token", "bearer", "cookie"] = "token"


def _secret_bytes(secret: str) -> bytes:
    key = secret.encode()
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"the session secret must be at least {MIN_SECRET_BYTES} bytes")
    return key


def _valid_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_ID_CHARS


def mint_user_token(
    secret: str,
    *,
    user_id: str,
    entity_id: str,
    ttl: timedelta = timedelta(hours=8),
    name: str | None = None,
    now: datetime | None = None,
) -> str:
    """What the bank's app does (here for tests, demo sign-in and the bank's reference)."""
    if not _valid_id(user_id) or not _valid_id(entity_id):
        raise ValueError(f"user_id and entity_id must be 1-{_MAX_ID_CHARS} characters")
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": user_id,
        "entity_id": entity_id,
        "aud": AUDIENCE,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
    }
    if name is not None:
        claims["name"] = name[:_MAX_NAME_CHARS]
    return jwt.encode(claims, _secret_bytes(secret), algorithm=ALGORITHM)


def verify_user_token(
    secret: str, token: str, *, via: Literal["token", "bearer", "cookie"] = "token"
) -> UserSession:
    """The session a token stands for, or NotSignedIn. Only HS256 is accepted, so neither
    `alg: none` nor a public-key algorithm fed the secret as a key gets through."""
    key = _secret_bytes(secret)
    if not token:
        raise NotSignedIn("missing")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            leeway=LEEWAY,
            options={"require": ["sub", "entity_id", "iat", "exp", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise NotSignedIn("expired") from None
    except jwt.PyJWTError:
        # Why exactly (signature, audience, claims) is for us, not for the person.
        raise NotSignedIn("invalid") from None
    name = claims.get("name")
    jti = claims.get("jti")
    if (
        not _valid_id(claims["sub"])
        or not _valid_id(claims["entity_id"])
        or not (name is None or isinstance(name, str))
        or not (jti is None or (isinstance(jti, str) and jti))
    ):
        raise NotSignedIn("invalid")
    return UserSession(
        user_id=claims["sub"],
        entity_id=claims["entity_id"],
        name=name[:_MAX_NAME_CHARS] if name else None,
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        session_id=jti or hashlib.sha256(token.encode()).hexdigest(),
        via=via,
    )


def session_from_request(request: HTTPConnection, secret: str) -> UserSession:
    """The caller's session: an `Authorization: Bearer` header if present (an explicit,
    invalid credential is refused rather than falling back), else the session cookie."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotSignedIn("invalid")
        return verify_user_token(secret, token.strip(), via="bearer")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise NotSignedIn("missing")
    return verify_user_token(secret, cookie, via="cookie")


def require_user(secret: str) -> Callable[[HTTPConnection], UserSession]:
    """A FastAPI dependency yielding the caller's session; NotSignedIn goes to the app's
    exception handler, which answers a page or JSON as the caller expects."""
    _secret_bytes(secret)  # a short secret fails at startup, not on the first request

    def current_user(request: HTTPConnection) -> UserSession:
        return session_from_request(request, secret)

    return current_user


def require_entity(session: UserSession, entity_id: str) -> None:
    if session.entity_id != entity_id:
        raise EntityForbidden


def set_session_cookie(
    response: Response, token: str, session: UserSession, *, secure: bool
) -> None:
    """Keep the bank's token as the session; it lasts exactly as long as the token."""
    max_age = int((session.expires_at - datetime.now(UTC)).total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(max_age, 0),
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")


def cookie_is_secure(public_url: str) -> bool:
    return public_url.lower().startswith("https://")


def csrf_token(secret: str, session: UserSession) -> str:
    """HMAC of the session id: valid for this session only, nothing to store."""
    mac = hmac.new(_secret_bytes(secret), b"csrf|" + session.session_id.encode(), "sha256")
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def check_csrf(secret: str, session: UserSession, submitted: str | None) -> None:
    expected = csrf_token(secret, session)
    if not submitted or not submitted.isascii():
        raise CsrfRefused
    if not hmac.compare_digest(expected.encode(), submitted.encode()):
        raise CsrfRefused


class ServiceCredentials:
    """The tokens the syncer may present (several, so they can rotate without downtime)."""

    __slots__ = ("_digests",)

    def __init__(self, tokens: list[str]) -> None:
        # Compared as SHA-256 digests: equal length, so the time taken says nothing about
        # the presented token's length either.
        self._digests = tuple(hashlib.sha256(token.encode()).digest() for token in tokens)

    @classmethod
    def parse(cls, spec: str) -> Self:
        tokens = [token.strip() for token in spec.split(",")]
        if not any(tokens):
            raise ValueError("no service tokens given: expected a comma-separated list")
        for position, token in enumerate(tokens, start=1):
            if len(token) < MIN_SERVICE_TOKEN_CHARS:
                raise ValueError(
                    f"service token #{position} is shorter than {MIN_SERVICE_TOKEN_CHARS} "
                    "characters"
                )
            if any(char.isspace() for char in token):
                raise ValueError(f"service token #{position} contains whitespace")
        return cls(tokens)

    def verify(self, authorization_header: str | None) -> bool:
        """Whether `Authorization: Bearer <token>` holds one of the tokens. Every token is
        compared, so the time taken does not tell which one matched."""
        if not authorization_header:
            return False
        scheme, _, token = authorization_header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        presented = hashlib.sha256(token.strip().encode()).digest()
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(presented, digest)
        return matched

    def __repr__(self) -> str:
        return f"ServiceCredentials({len(self._digests)} tokens)"


def require_service(credentials: ServiceCredentials) -> Callable[[HTTPConnection], None]:
    """A FastAPI dependency for the internal token API; ServiceRefused maps to 401."""

    def service_caller(request: HTTPConnection) -> None:
        if not credentials.verify(request.headers.get("authorization")):
            raise ServiceRefused

    return service_caller
