"""Talking HTTP to Xero: one call with the headers Xero wants, and Xero's refusals translated
into our error hierarchy (shared/errors.py), so callers decide retries from the class alone.

Xero refuses in four shapes (xero_sandbox/errors.py plays them all):
- identity (`/connect/token`, `/connect/revocation`): `{"error", "error_description"}`;
- the API gateway (401, 403, 429): `{"Title", "Detail", ...}`;
- the Accounting API: `{"Type", "Message"}`, a ValidationException naming each refused
  element's `ValidationErrors`; a plain-text 404;
- the Bank Feeds API: problem details `{"type", "title", "detail"}`, or `{"items": [...]}`
  with each refused item's `error` (or `errors`).

Tokens and client secrets travel in headers and form bodies only. An exception carries
Xero's own words, with anything we sent as a credential blanked out, never our request.
"""

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import SecretStr

from shared.errors import PermanentError, TransientError, XerosyncError

Observer = Callable[[str, str, str, float], None]
"""Told of every call: (api, operation, status code as text or "error", seconds)."""

MAX_MESSAGE = 1000
# Form fields of the identity endpoints whose values are credentials.
_SECRET_FIELDS = frozenset({"code", "code_verifier", "refresh_token", "token", "client_secret"})
_REDACTED = "***"


class XeroError(XerosyncError):
    """Xero refused or failed a call. `message` is Xero's own text, safe to show a person."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        api: str | None = None,
        operation: str | None = None,
        problem_type: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.problem_type = problem_type
        """The Bank Feeds problem `type` (e.g. `invalid-feed-connection`), when Xero gave one."""
        self.limit_headers: dict[str, str] = {}
        """Xero's X-*Limit-Remaining headers of the refusal, for a caller keeping a budget."""
        self.api = api
        self.operation = operation
        where = f"Xero {api} {operation}".strip() if api or operation else "Xero"
        answered = f" answered {status}" if status is not None else ""
        super().__init__(f"{where}{answered}: {message}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"


class XeroUnavailable(XeroError, TransientError):
    """Xero did not answer usefully: a 5xx, a timeout, a dropped connection."""


class XeroRateLimited(XeroError, TransientError):
    """429. `limit` is Xero's X-Rate-Limit-Problem, lower-cased (minute, day, appminute,
    concurrent…); `retry_after` is in seconds when Xero said."""

    def __init__(
        self, message: str, *, limit: str | None, retry_after: float | None, **context: Any
    ) -> None:
        super().__init__(message, **{"status": 429, **context})
        self.limit = limit
        self.retry_after = retry_after


class XeroUnauthorized(XeroError, PermanentError):
    """401: the access token is invalid, expired or revoked."""


class XeroForbidden(XeroError, PermanentError):
    """403: the tenant is not connected to this app, or a scope is missing."""


class XeroNotFound(XeroError, PermanentError):
    """404: no such resource (for this app and tenant)."""


class XeroValidation(XeroError, PermanentError):
    """Xero refused the request for what it contains (400, 409, 422 and other 4xx).

    `messages` lists each of Xero's complaints; `problem_type` is the Bank Feeds problem
    `type` (e.g. `invalid-organisation-multi-currency`), when Xero gave one."""

    def __init__(self, message: str, *, messages: list[str] | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.messages = messages if messages is not None else [message]


class _TokenRefusal(XeroError, PermanentError):
    """The identity service refused a token or revocation request. `error` is the OAuth
    error code (invalid_grant, invalid_client, unsupported_grant_type…)."""

    def __init__(self, message: str, *, error: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.error = error


class InvalidGrant(_TokenRefusal):
    """`invalid_grant`: the code or refresh token is used, expired or revoked. Only the user
    can fix it, by consenting again."""


class OAuthError(_TokenRefusal):
    """Any other refusal of the identity service (invalid_client, unsupported_grant_type…):
    our configuration or request is wrong, not the user's consent."""


class XeroHttp:
    """One `httpx.AsyncClient` (the caller owns it and its timeouts) speaking to Xero."""

    def __init__(self, client: httpx.AsyncClient, *, observer: Observer | None = None) -> None:
        self._client = client
        self._observer = observer

    async def request(
        self,
        method: str,
        url: str,
        *,
        api: str,
        operation: str,
        access_token: str | SecretStr | None = None,
        tenant_id: str | None = None,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one call; the 2xx answer, or the XeroError its refusal means.

        `api` and `operation` name the call for metrics and messages (bounded values such as
        "accounting", "get_accounts"); `auth` is HTTP Basic (client id, client secret);
        `content` is a JSON body already encoded (sent byte for byte, so an
        Idempotency-Key derived from it matches what Xero receives)."""
        sent = {"Accept": "application/json", **(headers or {})}
        if content is not None:
            sent.setdefault("Content-Type", "application/json")
        if isinstance(access_token, SecretStr):
            access_token = access_token.get_secret_value()
        if access_token is not None:
            sent["Authorization"] = f"Bearer {access_token}"
        if tenant_id is not None:
            sent["Xero-Tenant-Id"] = tenant_id
        secrets = _secrets_sent(access_token, auth, data)
        started = time.perf_counter()
        try:
            response = await self._client.request(
                method,
                url,
                headers=sent,
                json=json,
                content=content,
                params=params,
                data=data,
                auth=httpx.BasicAuth(*auth) if auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as error:
            self._observe(api, operation, "error", started)
            raise XeroUnavailable(
                f"no answer in time ({type(error).__name__})", api=api, operation=operation
            ) from error
        except httpx.RequestError as error:  # connection, protocol, undecodable answer
            self._observe(api, operation, "error", started)
            raise XeroUnavailable(
                f"the call failed ({type(error).__name__})", api=api, operation=operation
            ) from error
        self._observe(api, operation, str(response.status_code), started)
        if not response.is_success:
            refused = refusal(response, api=api, operation=operation, secrets=secrets)
            refused.limit_headers = limit_headers(response.headers)
            raise refused
        return response

    def _observe(self, api: str, operation: str, status: str, started: float) -> None:
        if self._observer is not None:
            self._observer(api, operation, status, time.perf_counter() - started)


def limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Xero's rate-limit headers of an answer (`X-MinLimit-Remaining` and its kind)."""
    return {k: v for k, v in headers.items() if k.lower().endswith("limit-remaining")}


def read_json(response: httpx.Response, *, api: str, operation: str) -> Any:
    """The JSON of a 2xx answer. An answer that is not JSON is Xero (or a proxy in front of
    it) misbehaving: transient."""
    try:
        return response.json()
    except ValueError:
        raise XeroUnavailable(
            "the answer was not JSON", status=response.status_code, api=api, operation=operation
        ) from None


_BY_STATUS: Mapping[int, type[XeroError]] = {
    401: XeroUnauthorized,
    403: XeroForbidden,
    404: XeroNotFound,
    408: XeroUnavailable,
}


def refusal(
    response: httpx.Response,
    *,
    api: str,
    operation: str,
    secrets: Iterable[str] = (),
) -> XeroError:
    """The error a non-2xx answer means."""
    status = response.status_code
    body = _body(response)
    messages = [_redact(m, secrets) for m in _messages(body)]
    message = _one_message(messages, status)
    context: dict[str, Any] = {
        "status": status,
        "api": api,
        "operation": operation,
        "problem_type": _problem_type(body),
    }
    oauth_error = body.get("error") if isinstance(body, dict) else None
    if isinstance(oauth_error, str) and 400 <= status < 500:
        kind: type[_TokenRefusal] = InvalidGrant if oauth_error == "invalid_grant" else OAuthError
        return kind(message, error=oauth_error, **context)
    if status == 429:
        problem = response.headers.get("X-Rate-Limit-Problem")
        return XeroRateLimited(
            message,
            limit=problem.strip().lower() if problem else None,
            retry_after=_retry_after(response.headers.get("Retry-After")),
            **context,
        )
    if status in _BY_STATUS:
        return _BY_STATUS[status](message, **context)
    if status >= 500:
        return XeroUnavailable(message, **context)
    if 400 <= status < 500:
        return XeroValidation(message, messages=messages or [message], **context)
    return XeroError(message, **context)  # a 1xx/3xx Xero never sends


# ----------------------------------------------------------------------------- reading bodies


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text.strip()


def _messages(body: Any) -> list[str]:
    """Xero's complaints in the order it gave them, each once."""
    found: list[str] = []
    if isinstance(body, str):
        found.append(body)
    elif isinstance(body, dict):
        found += _validation_errors(body.get("Elements"))
        found += _item_errors(body.get("items"))
        if not found:
            # Accounting, identity, bank-feeds problem, gateway: the most specific first.
            found += _texts(
                body,
                ("Message", "error_description", "detail", "Detail", "title", "Title", "error"),
                stop_after_first=True,
            )
    return list(dict.fromkeys(m for m in found if m))


def _validation_errors(node: Any) -> list[str]:
    """Every `ValidationErrors[].Message` under the refused elements (line items too)."""
    found: list[str] = []
    if isinstance(node, list):
        for child in node:
            found += _validation_errors(child)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "ValidationErrors" and isinstance(value, list):
                found += [e["Message"] for e in value if isinstance(e, dict) and _str(e, "Message")]
            elif isinstance(value, list | dict):
                found += _validation_errors(value)
    return found


def _item_errors(items: Any) -> list[str]:
    """Bank Feeds answers item by item: each refused item's `error` or `errors`."""
    found: list[str] = []
    for problem in _item_problems(items):
        found += _texts(problem, ("detail", "title"), stop_after_first=True)
    return found


def _item_problems(items: Any) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    if not isinstance(items, list):
        return problems
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("error"), dict):
            problems.append(item["error"])
        if isinstance(item.get("errors"), list):
            problems += [e for e in item["errors"] if isinstance(e, dict)]
    return problems


def _problem_type(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    if _str(body, "type"):
        return str(body["type"])
    problems = _item_problems(body.get("items"))
    return next((str(p["type"]) for p in problems if _str(p, "type")), None)


def _texts(body: Mapping[str, Any], keys: Iterable[str], *, stop_after_first: bool) -> list[str]:
    found = [str(body[key]).strip() for key in keys if _str(body, key)]
    return found[:1] if stop_after_first else found


def _str(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key)
    return isinstance(value, str) and bool(value.strip())


def _one_message(messages: list[str], status: int) -> str:
    message = "; ".join(messages) or f"HTTP {status} without an explanation"
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def _retry_after(value: str | None) -> float | None:
    """Seconds from `Retry-After`: a number (as Xero sends it) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


# ----------------------------------------------------------------------------- secrets


def _secrets_sent(
    access_token: str | None, auth: tuple[str, str] | None, data: Mapping[str, str] | None
) -> list[str]:
    secrets = [access_token or "", auth[1] if auth else ""]
    secrets += [value for key, value in (data or {}).items() if key in _SECRET_FIELDS]
    return [s for s in secrets if len(s) >= 4]  # blanking "a" everywhere would ruin the text


def _redact(text: str, secrets: Iterable[str]) -> str:
    """Xero does not echo credentials; should it ever, they still go no further."""
    for secret in secrets:
        text = text.replace(secret, _REDACTED)
    return text
