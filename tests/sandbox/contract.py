"""Every Xero API exchange a sandbox test makes, checked against Xero's OpenAPI documents.

`ContractCheck` is an httpx response hook. For each call to a Xero path it validates:
- the answer, strictly (no property the document doesn't declare), against the schema the
  document declares for its status; an error status the document leaves undocumented
  (Xero's gateway 401/403/429, the accounting API's plain-text 404) cannot be checked and
  is counted as such;
- the request body, when the sandbox accepted it (2xx): what the sandbox takes must be
  what Xero's document describes.
Two documented allowances, both from the documents' own examples: bank-feed amounts may be
decimal strings ("100.0000"), and bank-feed error bodies are `Error` problem details
although some statuses declare `Statements`. Without the documents (a clone with no
`../shared/xero-openapi/`) nothing is checked; the contract tests themselves then skip.
"""

import json
from collections import Counter
from typing import Any

import httpx

from tests.xero_openapi import (
    ContractViolation,
    UndocumentedBody,
    UnknownOperation,
    XeroSpecs,
    find_openapi_dir,
)

XERO_PREFIXES = ("/api.xro/", "/bankfeeds.xro/", "/connections")


def specs_if_present() -> XeroSpecs | None:
    directory = find_openapi_dir()
    return XeroSpecs(directory) if directory is not None else None


class ContractCheck:
    def __init__(self, specs: XeroSpecs | None, *, check_requests: bool = True) -> None:
        self.specs = specs
        self.check_requests = check_requests
        self.checked: Counter[tuple[str, str, int]] = Counter()
        self.requests_checked: Counter[tuple[str, str]] = Counter()
        self.uncheckable: Counter[tuple[str, str, int]] = Counter()

    async def __call__(self, response: httpx.Response) -> None:
        request = response.request
        path = request.url.path
        if self.specs is None or not path.lower().startswith(XERO_PREFIXES):
            return
        await response.aread()
        spec = self.specs.for_path(path)
        try:
            operation = spec.operation(request.method, path)
        except UnknownOperation:
            return  # a route Xero's documents don't describe (a test-only route)
        key = (request.method, operation.template, response.status_code)
        body = _json(response)
        options: dict[str, Any] = {}
        if spec.name == "bankfeeds":
            options["lenient_numbers"] = True
            if isinstance(body, dict) and "type" in body and response.status_code >= 400:
                options["schema"] = "Error"
        if spec.name == "accounting" and response.status_code == 400:
            options["open_schemas"] = frozenset({"Element"})
        try:
            spec.validate_response(request.method, path, response.status_code, body, **options)
        except UndocumentedBody:
            if response.is_success:
                raise
            self.uncheckable[key] += 1
            return
        except ContractViolation as violation:
            raise AssertionError(f"the sandbox broke Xero's contract: {violation}") from None
        self.checked[key] += 1
        if self.check_requests and response.is_success and request.content:
            sent = json.loads(request.content)
            lenient = spec.name == "bankfeeds"
            spec.validate_request_body(request.method, path, sent, lenient_numbers=lenient)
            self.requests_checked[(request.method, operation.template)] += 1


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    if "json" not in response.headers.get("content-type", ""):
        return response.text
    return response.json()
