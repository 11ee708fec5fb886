"""Xero's error answers, in the shapes each of its APIs sends them.

Handlers raise `XeroError`; app.py renders it. Four families:
- identity (`/connect/token`): `{"error": "invalid_grant"}` and friends, status 400;
- API gateway (401, 403, 429 on any API): `{"Type", "Title", "Status", "Detail", "Instance"}`;
- Accounting API: `{"ErrorNumber", "Type", "Message"}`, with the refused `Elements` for a
  ValidationException (whose amounts are Decimals: bodies are rendered with exact numbers);
- Bank Feeds API: problem details (`application/problem+json`):
  `{"type", "title", "status", "detail"}`.
"""

import uuid
from typing import Any

from fastapi.responses import PlainTextResponse, Response

from xero_sandbox.exact_json import ExactJSONResponse

PROBLEM_JSON = "application/problem+json"


class XeroError(Exception):
    def __init__(
        self,
        status: int,
        body: dict[str, Any] | str,
        *,
        headers: dict[str, str] | None = None,
        media_type: str = "application/json",
    ) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.media_type = media_type

    def response(self) -> Response:
        if isinstance(self.body, str):
            return PlainTextResponse(self.body, self.status, headers=self.headers)
        return ExactJSONResponse(
            self.body, self.status, headers=self.headers, media_type=self.media_type
        )


# ----------------------------------------------------------------------------- identity


def token_error(error: str, status: int = 400) -> XeroError:
    """What identity.xero.com answers on /connect/token: a bare OAuth error code."""
    return XeroError(status, {"error": error})


# ----------------------------------------------------------------------------- gateway


def _gateway_problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }


def unauthorized(detail: str = "AuthenticationUnsuccessful") -> XeroError:
    return XeroError(
        401,
        _gateway_problem(401, "Unauthorized", detail),
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def forbidden(detail: str = "AuthenticationUnsuccessful") -> XeroError:
    return XeroError(403, _gateway_problem(403, "Forbidden", detail))


def too_many_requests(problem: str, retry_after: int, headers: dict[str, str]) -> XeroError:
    return XeroError(
        429,
        _gateway_problem(429, "Too Many Requests", f"Rate limit exceeded: {problem}"),
        headers={**headers, "Retry-After": str(retry_after), "X-Rate-Limit-Problem": problem},
    )


def server_error(status: int, path: str) -> XeroError:
    if path.lower().startswith("/bankfeeds.xro/"):
        return bankfeeds_problem(
            status,
            "internal-error",
            "Intermittent Internal Xero Error",
            "The request should be retried. If the error persists, a Xero support issue "
            "should be raised.",
        )
    type_ = "ServiceUnavailableException" if status == 503 else "UnknownErrorException"
    message = "An error occurred in Xero. Please try again."
    return XeroError(status, _accounting_exception(status, type_, message))


# ----------------------------------------------------------------------------- accounting


def _accounting_exception(number: int, type_: str, message: str) -> dict[str, Any]:
    return {"ErrorNumber": number, "Type": type_, "Message": message}


def validation_exception(
    elements: list[dict[str, Any]] | None = None, *, message: str | None = None
) -> XeroError:
    """Accounting API's 400: the failed elements, or one message when no element applies."""
    body = _accounting_exception(
        10, "ValidationException", message or "A validation exception occurred"
    )
    if elements is not None:
        body["Elements"] = elements
    return XeroError(400, body)


def query_parse_exception(message: str) -> XeroError:
    """A `where` or `order` Xero cannot parse."""
    return XeroError(400, _accounting_exception(16, "QueryParseException", message))


def post_data_invalid(message: str) -> XeroError:
    """A request body Xero cannot read."""
    return XeroError(400, _accounting_exception(14, "PostDataInvalidException", message))


def accounting_not_found() -> XeroError:
    return XeroError(404, "The resource you're looking for cannot be found")


def accounting_body_too_large() -> XeroError:
    """Xero's limit on a request body is 3.5 MB; the text is the sandbox's."""
    return XeroError(413, "The request body is larger than the 3.5 MB Xero accepts.")


# ----------------------------------------------------------------------------- bank feeds


def bankfeeds_problem(status: int, type_: str, title: str, detail: str) -> XeroError:
    return XeroError(
        status,
        {"type": type_, "title": title, "status": status, "detail": detail},
        media_type=PROBLEM_JSON,
    )


def bankfeeds_items(status: int, items: list[dict[str, Any]]) -> XeroError:
    """A Bank Feeds refusal answered item by item, as `POST /Statements` answers its 409."""
    return XeroError(status, {"items": items}, media_type=PROBLEM_JSON)
