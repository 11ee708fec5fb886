"""Xero's error answers, in the shapes each of its APIs sends them.

Handlers raise `XeroError`; app.py renders it. Four families:
- identity (`/connect/token`): `{"error": "invalid_grant"}` and friends, status 400;
- API gateway (401, 403, 429 on any API): `{"Type", "Title", "Status", "Detail", "Instance"}`;
- Accounting API: `{"ErrorNumber", "Type", "Message", "Elements"}` (ValidationException);
- Bank Feeds API: problem details (`application/problem+json`):
  `{"type", "title", "status", "detail"}`.
"""

import uuid
from typing import Any

from fastapi.responses import JSONResponse, PlainTextResponse, Response

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
        return JSONResponse(
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
    return XeroError(
        status,
        {
            "ErrorNumber": status,
            "Type": "ServiceUnavailableException" if status == 503 else "UnknownErrorException",
            "Message": "An error occurred in Xero. Please try again.",
        },
    )


# ----------------------------------------------------------------------------- accounting


def validation_exception(
    elements: list[dict[str, Any]] | None = None, *, message: str | None = None
) -> XeroError:
    """Accounting API's 400: the failed elements, or one message when no element applies."""
    body: dict[str, Any] = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": message or "A validation exception occurred",
    }
    if elements is not None:
        body["Elements"] = elements
    return XeroError(400, body)


def accounting_not_found() -> XeroError:
    return XeroError(404, "The resource you're looking for cannot be found")


# ----------------------------------------------------------------------------- bank feeds


def bankfeeds_problem(status: int, type_: str, title: str, detail: str) -> XeroError:
    return XeroError(
        status,
        {"type": type_, "title": title, "status": status, "detail": detail},
        media_type=PROBLEM_JSON,
    )
