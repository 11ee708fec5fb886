"""The syncer's calls to Xero: a stored request sent byte for byte with its
Idempotency-Key, and the Reference lookup that settles an unknown outcome in the
Accounting API."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from shared.xero_http import XeroHttp, limit_headers, read_json

BANKFEEDS_PREFIX = "/bankfeeds.xro/1.0/"
LOOKUP_PAGE = 25
"""References per lookup call: a `where` of 25 comparisons stays a short URL."""


@dataclass(frozen=True)
class Answer:
    status: int
    document: Any
    limits: dict[str, str]


def api_of(path: str) -> tuple[str, str]:
    """(api, operation) metric labels of a path we post to."""
    if path.lower().startswith(BANKFEEDS_PREFIX):
        return "bankfeeds", "create_statements"
    return "accounting", "create_bank_transactions"


class XeroPoster:
    def __init__(self, http: XeroHttp, *, base_url: str) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")

    async def send(
        self,
        *,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: bytes,
        idempotency_key: str,
        access_token: SecretStr,
        tenant_id: uuid.UUID,
    ) -> Answer:
        """One request; the 2xx answer, or the XeroError its refusal means."""
        api, operation = api_of(path)
        response = await self._http.request(
            method,
            self._base_url + path,
            api=api,
            operation=operation,
            access_token=access_token,
            tenant_id=str(tenant_id),
            params=dict(params) or None,
            content=body,
            headers={"Idempotency-Key": idempotency_key},
        )
        document = read_json(response, api=api, operation=operation)
        return Answer(response.status_code, document, limit_headers(response.headers))

    async def find_references(
        self, references: Sequence[str], *, access_token: SecretStr, tenant_id: uuid.UUID
    ) -> tuple[dict[str, str], list[dict[str, str]]]:
        """BankTransactionID by Reference, for those of `references` Xero holds (not
        deleted); and the rate-limit headers of each answer."""
        found: dict[str, str] = {}
        seen_limits: list[dict[str, str]] = []
        for start in range(0, len(references), LOOKUP_PAGE):
            chunk = references[start : start + LOOKUP_PAGE]
            where = " OR ".join(f'Reference=="{_quoted(reference)}"' for reference in chunk)
            response = await self._http.request(
                "GET",
                f"{self._base_url}/api.xro/2.0/BankTransactions",
                api="accounting",
                operation="get_bank_transactions",
                access_token=access_token,
                tenant_id=str(tenant_id),
                params={"where": where},
            )
            seen_limits.append(limit_headers(response.headers))
            document = read_json(response, api="accounting", operation="get_bank_transactions")
            for element in document.get("BankTransactions") or []:
                reference = element.get("Reference")
                if reference in chunk and element.get("Status") != "DELETED":
                    found[reference] = str(element.get("BankTransactionID"))
        return found, seen_limits


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
