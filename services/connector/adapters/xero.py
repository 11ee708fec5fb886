"""What the connector asks of Xero: OAuth tokens, the connections a consent made, the
organisation, its bank accounts and its bank feeds.

Every call goes through `XeroHttp`, so a refusal arrives as one of shared/xero_http.py's
errors (InvalidGrant, XeroUnauthorized, XeroValidation…). Field names are Xero's, from its
OpenAPI documents (identity, accounting, bank feeds); ids stay Xero's strings.
"""

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import jwt
from pydantic import SecretStr

from shared.logging import get_logger
from shared.xero_http import (
    OAuthError,
    XeroHttp,
    XeroNotFound,
    XeroUnavailable,
    XeroValidation,
    read_json,
)
from shared.xero_timezones import XERO_TO_IANA

log = get_logger(__name__)

Token = str | SecretStr
"""An access or refresh token, bare or wrapped: either is unwrapped only for the call."""
XeroId = str | uuid.UUID
"""A tenant, connection, account or feed id: Xero's GUID, as text or parsed."""
IDENTITY, ACCOUNTING, BANKFEEDS = "identity", "accounting", "bankfeeds"
OrganisationStatus = str
"""Xero's `OrganisationStatus`: ACTIVE when the API may use the organisation; INACTIVE,
DELETED, SUSPENDED… otherwise (Xero documents it as free text, so no closed set)."""
MAX_FEED_ACCOUNT_NAME = 30  # Bank Feeds' accountName limit
FEED_PAGE_SIZE = 100  # the most Bank Feeds serves a page
MAX_FEED_PAGES = 1000  # a guard against an answer whose pageCount never ends


@dataclass(frozen=True)
class TokenSet:
    access_token: SecretStr
    refresh_token: SecretStr
    expires_at: datetime
    id_token: SecretStr | None = None
    auth_event_id: str | None = None
    """The consent this token came from; `GET /connections?authEventId=` finds its tenants."""
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class XeroConnection:
    """One organisation (tenant) the user connected to our app."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_type: str
    tenant_name: str | None
    auth_event_id: str | None
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class Organisation:
    tenant_id: uuid.UUID
    name: str
    edition: str
    """BUSINESS or PARTNER."""
    status: OrganisationStatus
    base_currency: str
    xero_timezone: str
    """Xero's own name, e.g. CHINASTANDARDTIME: not a zone Python or our events know."""
    timezone_iana: str
    """The IANA zone (Asia/Shanghai): what `org_timezone` in our events carries."""
    is_demo: bool
    short_code: str | None
    country_code: str | None


@dataclass(frozen=True)
class XeroAccount:
    account_id: uuid.UUID
    name: str
    code: str | None
    type: str
    status: str
    """ACTIVE or ARCHIVED (Xero hides DELETED accounts)."""
    currency: str | None
    """None: the organisation's base currency."""
    bank_account_number: str | None


@dataclass(frozen=True)
class FeedConnection:
    id: uuid.UUID
    account_token: str
    account_id: uuid.UUID | None
    """The Xero bank account the feed posts into; unknown until Xero has linked it."""
    currency: str | None
    status: str | None
    """PENDING right after creation; Xero's listings may leave it out."""


class XeroClient:
    def __init__(
        self,
        http: XeroHttp,
        *,
        login_url: str,
        identity_url: str,
        api_url: str,
        client_id: str,
        client_secret: SecretStr,
    ) -> None:
        self._http = http
        self._login_url = login_url.rstrip("/")
        self._identity_url = identity_url.rstrip("/")
        self._api_url = api_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret

    def __repr__(self) -> str:
        return f"XeroClient(client_id={self._client_id!r}, api_url={self._api_url!r})"

    # ------------------------------------------------------------------------- OAuth

    def authorize_url(
        self, *, redirect_uri: str, state: str, code_challenge: str, scopes: Sequence[str]
    ) -> str:
        """Where the user's browser goes to consent (authorization code with PKCE, S256)."""
        query = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        return f"{self._login_url}/identity/connect/authorize?{urlencode(query, quote_via=quote)}"

    async def exchange_code(self, code: str, *, code_verifier: str, redirect_uri: str) -> TokenSet:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        return await self._token(form, "exchange_code")

    async def refresh(self, refresh_token: Token) -> TokenSet:
        """A new token set; the old refresh token is spent. InvalidGrant when Xero refuses it
        (used past the grace period, expired, revoked): only the user can consent again."""
        form = {"grant_type": "refresh_token", "refresh_token": _bare(refresh_token)}
        return await self._token(form, "refresh")

    async def revoke(self, refresh_token: Token) -> None:
        """Revokes the token set; Xero removes the user's connections to the app with it."""
        await self._http.request(
            "POST",
            f"{self._identity_url}/connect/revocation",
            api=IDENTITY,
            operation="revoke",
            data={"token": _bare(refresh_token)},
            auth=self._client_auth(),
        )

    async def _token(self, form: dict[str, str], operation: str) -> TokenSet:
        response = await self._http.request(
            "POST",
            f"{self._identity_url}/connect/token",
            api=IDENTITY,
            operation=operation,
            data=form,
            auth=self._client_auth(),
        )
        body = _object(read_json(response, api=IDENTITY, operation=operation), operation)
        return _token_set(body, operation)

    def _client_auth(self) -> tuple[str, str]:
        return self._client_id, self._client_secret.get_secret_value()

    # ------------------------------------------------------------------------- connections

    async def connections(
        self, access_token: Token, *, auth_event_id: str | None = None
    ) -> list[XeroConnection]:
        """The user's connections to our app; with `auth_event_id`, only those one consent
        made or renewed."""
        params = {"authEventId": auth_event_id} if auth_event_id is not None else None
        response = await self._http.request(
            "GET",
            f"{self._api_url}/connections",
            api=IDENTITY,
            operation="get_connections",
            access_token=access_token,
            params=params,
        )
        found = read_json(response, api=IDENTITY, operation="get_connections")
        return [_connection(item) for item in _list(found, "get_connections")]

    async def delete_connection(self, access_token: Token, connection_id: XeroId) -> None:
        """Removes one tenant from the consent. Already gone is fine."""
        try:
            await self._http.request(
                "DELETE",
                f"{self._api_url}/connections/{_path(connection_id)}",
                api=IDENTITY,
                operation="delete_connection",
                access_token=access_token,
            )
        except XeroNotFound:
            return

    # ------------------------------------------------------------------------- accounting

    async def organisation(self, access_token: Token, tenant_id: XeroId) -> Organisation:
        body = await self._accounting(
            access_token, tenant_id, "GET", "Organisation", operation="get_organisation"
        )
        return _organisation(_first(body, "Organisations", "get_organisation"))

    async def currencies(self, access_token: Token, tenant_id: XeroId) -> list[str]:
        """The currency codes the organisation holds (its base currency among them)."""
        body = await self._accounting(
            access_token, tenant_id, "GET", "Currencies", operation="get_currencies"
        )
        return [_text(c, "Code") for c in _list(body.get("Currencies"), "get_currencies")]

    async def bank_accounts(self, access_token: Token, tenant_id: XeroId) -> list[XeroAccount]:
        body = await self._accounting(
            access_token,
            tenant_id,
            "GET",
            "Accounts",
            operation="get_accounts",
            params={"where": 'Type=="BANK"'},
        )
        return [_account(a) for a in _list(body.get("Accounts"), "get_accounts")]

    async def account(
        self, access_token: Token, tenant_id: XeroId, account_id: XeroId
    ) -> XeroAccount | None:
        """The account, or None when Xero does not know it (or it was deleted)."""
        try:
            body = await self._accounting(
                access_token,
                tenant_id,
                "GET",
                f"Accounts/{_path(account_id)}",
                operation="get_account",
            )
        except XeroNotFound:
            return None
        return _account(_first(body, "Accounts", "get_account"))

    async def create_bank_account(
        self,
        access_token: Token,
        tenant_id: XeroId,
        *,
        name: str,
        number: str,
        currency: str,
        idempotency_key: str | None = None,
    ) -> XeroAccount:
        """A new BANK account. XeroValidation when Xero refuses it: a currency the
        organisation does not hold, a name already taken…

        The Idempotency-Key defaults to one derived from the request, so a retry after a
        lost answer gets the account the first attempt made instead of a duplicate."""
        account = {
            "Name": name,
            "Type": "BANK",
            "BankAccountNumber": number,
            "CurrencyCode": currency,
        }
        key = idempotency_key or _derived_key("create-bank-account", str(tenant_id), account)
        body = await self._accounting(
            access_token,
            tenant_id,
            "PUT",
            "Accounts",
            operation="create_account",
            json=account,
            headers={"Idempotency-Key": key},
        )
        return _account(_first(body, "Accounts", "create_account"))

    async def _accounting(
        self,
        access_token: Token,
        tenant_id: XeroId,
        method: str,
        resource: str,
        *,
        operation: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await self._http.request(
            method,
            f"{self._api_url}/api.xro/2.0/{resource}",
            api=ACCOUNTING,
            operation=operation,
            access_token=access_token,
            tenant_id=str(tenant_id),
            params=params,
            json=json,
            headers=headers,
        )
        return _object(read_json(response, api=ACCOUNTING, operation=operation), operation)

    # ------------------------------------------------------------------------- bank feeds

    async def create_feed_connection(
        self,
        access_token: Token,
        tenant_id: XeroId,
        *,
        account_token: str,
        currency: str,
        name: str,
        number: str,
    ) -> FeedConnection:
        """A bank feed for one of our accounts (`account_token`: our account id). Xero links
        it to the BANK account with that number and currency, or creates one.

        XeroValidation with Xero's `problem_type` when refused, e.g.
        `feed-already-connected-in-current-organisation` or
        `invalid-organisation-multi-currency`."""
        operation = "create_feed_connection"
        item = {
            "accountToken": account_token,
            "accountNumber": number,
            # Xero refuses a longer name; the start of ours names the account well enough.
            "accountName": name[:MAX_FEED_ACCOUNT_NAME],
            "accountType": "BANK",
            "currency": currency,
        }
        response = await self._http.request(
            "POST",
            f"{self._api_url}/bankfeeds.xro/1.0/FeedConnections",
            api=BANKFEEDS,
            operation=operation,
            access_token=access_token,
            tenant_id=str(tenant_id),
            json={"items": [item]},
        )
        body = _object(read_json(response, api=BANKFEEDS, operation=operation), operation)
        answer = _first(body, "items", operation)
        error = answer.get("error")
        if isinstance(error, dict) or answer.get("status") == "REJECTED":
            raise _rejected_item(error if isinstance(error, dict) else {})
        return FeedConnection(
            id=_guid(answer, "id"),
            account_token=_optional(answer, "accountToken") or account_token,
            account_id=_optional_guid(answer, "accountId"),
            currency=_optional(answer, "currency") or currency,
            status=_optional(answer, "status"),
        )

    async def feed_connections(
        self, access_token: Token, tenant_id: XeroId
    ) -> list[FeedConnection]:
        """Every live feed connection of our app in the organisation (all pages)."""
        operation = "get_feed_connections"
        found: list[FeedConnection] = []
        for page in range(1, MAX_FEED_PAGES + 1):
            response = await self._http.request(
                "GET",
                f"{self._api_url}/bankfeeds.xro/1.0/FeedConnections",
                api=BANKFEEDS,
                operation=operation,
                access_token=access_token,
                tenant_id=str(tenant_id),
                params={"page": str(page), "pageSize": str(FEED_PAGE_SIZE)},
            )
            body = _object(read_json(response, api=BANKFEEDS, operation=operation), operation)
            items = _list(body.get("items"), operation)
            found += [_feed(item) for item in items]
            pagination = body.get("pagination")
            page_count = pagination.get("pageCount") if isinstance(pagination, dict) else None
            if not items or not isinstance(page_count, int) or page >= page_count:
                break
        return found

    async def feed_connection(
        self, access_token: Token, tenant_id: XeroId, feed_id: XeroId
    ) -> FeedConnection | None:
        """The feed connection, or None when Xero no longer has it (deleted in Xero)."""
        operation = "get_feed_connection"
        try:
            response = await self._http.request(
                "GET",
                f"{self._api_url}/bankfeeds.xro/1.0/FeedConnections/{_path(feed_id)}",
                api=BANKFEEDS,
                operation=operation,
                access_token=access_token,
                tenant_id=str(tenant_id),
            )
        except XeroNotFound:
            return None
        return _feed(_object(read_json(response, api=BANKFEEDS, operation=operation), operation))


# ----------------------------------------------------------------------------- reading answers


def _token_set(body: Mapping[str, Any], operation: str) -> TokenSet:
    access = _text(body, "access_token")
    refresh = _optional(body, "refresh_token")
    if refresh is None:
        raise OAuthError(
            "Xero issued no refresh token: the consent lacks the offline_access scope",
            api=IDENTITY,
            operation=operation,
        )
    expires_in = body.get("expires_in")
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
        raise _unexpected("expires_in")
    id_token = _optional(body, "id_token")
    return TokenSet(
        access_token=SecretStr(access),
        refresh_token=SecretStr(refresh),
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        id_token=SecretStr(id_token) if id_token is not None else None,
        auth_event_id=_auth_event_id(access),
        scopes=tuple((_optional(body, "scope") or "").split()),
    )


def _auth_event_id(access_token: str) -> str | None:
    """The access token's `authentication_event_id` claim. Read without checking the
    signature, as Xero documents: the token came to us straight from Xero over TLS, and
    only Xero itself needs to trust it."""
    try:
        claims = jwt.decode(access_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    value = claims.get("authentication_event_id")
    return value if isinstance(value, str) and value else None


def _connection(item: Any) -> XeroConnection:
    document = _object(item, "get_connections")
    return XeroConnection(
        id=_guid(document, "id"),
        tenant_id=_guid(document, "tenantId"),
        tenant_type=_optional(document, "tenantType") or "ORGANISATION",
        tenant_name=_optional(document, "tenantName"),
        auth_event_id=_optional(document, "authEventId"),
        created_at=_utc(_optional(document, "createdDateUtc")),
        updated_at=_utc(_optional(document, "updatedDateUtc")),
    )


def _organisation(document: Mapping[str, Any]) -> Organisation:
    timezone = (_optional(document, "Timezone") or "UTC").upper()
    iana = XERO_TO_IANA.get(timezone)
    if iana is None:
        # A zone Xero added after our table: UTC keeps the connection working, and the
        # warning says what to add.
        log.warning("unknown Xero time zone; using UTC", xero_timezone=timezone)
        iana = "UTC"
    return Organisation(
        tenant_id=_guid(document, "OrganisationID"),
        name=_text(document, "Name"),
        # Xero sends Edition on every organisation; an answer without it is an ordinary one.
        edition=_optional(document, "Edition") or "BUSINESS",
        status=_text(document, "OrganisationStatus"),
        base_currency=_text(document, "BaseCurrency"),
        xero_timezone=timezone,
        timezone_iana=iana,
        is_demo=document.get("IsDemoCompany") is True,
        short_code=_optional(document, "ShortCode"),
        country_code=_optional(document, "CountryCode"),
    )


def _account(item: Any) -> XeroAccount:
    document = _object(item, "account")
    return XeroAccount(
        account_id=_guid(document, "AccountID"),
        name=_text(document, "Name"),
        code=_optional(document, "Code"),
        type=_text(document, "Type"),
        status=_text(document, "Status"),
        currency=_optional(document, "CurrencyCode"),
        bank_account_number=_optional(document, "BankAccountNumber"),
    )


def _feed(item: Any) -> FeedConnection:
    document = _object(item, "feed_connection")
    return FeedConnection(
        id=_guid(document, "id"),
        account_token=_text(document, "accountToken"),
        account_id=_optional_guid(document, "accountId"),
        currency=_optional(document, "currency"),
        status=_optional(document, "status"),
    )


def _rejected_item(error: Mapping[str, Any]) -> XeroValidation:
    """An item Xero refused inside a 202: the same error a whole refusal would be, with the
    status the item's problem names."""
    message = _optional(error, "detail") or _optional(error, "title") or "Xero refused the feed"
    status = error.get("status")
    return XeroValidation(
        message,
        problem_type=_optional(error, "type"),
        status=status if isinstance(status, int) and not isinstance(status, bool) else None,
        api=BANKFEEDS,
        operation="create_feed_connection",
    )


def _derived_key(kind: str, tenant_id: str, request: Mapping[str, str]) -> str:
    parts = [kind, tenant_id.lower(), *(f"{k}={v}" for k, v in sorted(request.items()))]
    return f"xerosync-{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:48]}"


# ----------------------------------------------------------------------------- JSON shapes


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _unexpected(what)
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _unexpected(what)
    return value


def _first(body: Mapping[str, Any], key: str, what: str) -> dict[str, Any]:
    items = _list(body.get(key), what)
    if not items:
        raise _unexpected(f"{what} ({key} empty)")
    return _object(items[0], what)


def _text(document: Mapping[str, Any], key: str) -> str:
    value = _optional(document, key)
    if value is None:
        raise _unexpected(key)
    return value


def _guid(document: Mapping[str, Any], key: str) -> uuid.UUID:
    value = _optional_guid(document, key)
    if value is None:
        raise _unexpected(key)
    return value


def _optional_guid(document: Mapping[str, Any], key: str) -> uuid.UUID | None:
    value = _optional(document, key)
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _unexpected(f"a GUID in {key}") from None


def _bare(token: Token) -> str:
    return token.get_secret_value() if isinstance(token, SecretStr) else token


def _path(xero_id: XeroId) -> str:
    return quote(str(xero_id), safe="")


def _optional(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    return value if isinstance(value, str) and value else None


def _utc(value: str | None) -> datetime | None:
    """Xero's `/connections` timestamps: ISO 8601 in UTC, often with no zone."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _unexpected(what: str) -> XeroUnavailable:
    """A 2xx answer without what Xero documents: Xero (or something in front of it)
    misbehaving, which a later call may not repeat."""
    return XeroUnavailable(f"Xero's answer lacked {what}")
