"""A bank customer's user in the connector's pages, over HTTP to the running processes:
the development sign-in, *Sync* (connect) with Xero's consent page, *Disconnect Xero*.

What the benchmarks and `xerosync chaos` drive the connector with, so they go through the
same pages and redirects a browser does.
"""

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import httpx

from xerosync.devstack.forms import hidden_fields


class UserFlowFailed(RuntimeError):
    """A page answered what a user would not have expected; the message says which."""


def expect(answer: httpx.Response, status: int, what: str) -> None:
    if answer.status_code != status:
        raise UserFlowFailed(f"{what} answered {answer.status_code}: {answer.text[:300]}")


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class BankUser:
    """One entity's user, signed in to the connector, with a browser's cookie jar."""

    def __init__(self, connector_url: str, sandbox_url: str, entity_id: str) -> None:
        self.entity_id = entity_id
        self._connector = httpx.AsyncClient(base_url=connector_url, timeout=60)
        self._xero = httpx.AsyncClient(base_url=sandbox_url, timeout=60)

    async def __aenter__(self) -> "BankUser":
        signed_in = await self._connector.post("/dev/sign-in", data={"entity_id": self.entity_id})
        expect(signed_in, 303, "development sign-in")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._connector.aclose()
        await self._xero.aclose()

    @property
    def _page(self) -> str:
        return f"/entities/{self.entity_id}/xero"

    async def status(self) -> dict[str, Any]:
        """What the bank's app shows about the entity's Xero connection (its JSON API)."""
        answer = await self._connector.get(f"/api/v1/entities/{self.entity_id}/xero")
        expect(answer, 200, "the connection's status")
        return dict(answer.json())

    async def lists_accounts(self, count: int) -> bool:
        """Whether the connector's directory lists `count` accounts of the entity yet (its
        accounts arrive on their own topic, a moment after they are opened)."""
        return len((await self.status())["accounts"]) == count

    async def connect(
        self,
        tenant_id: str,
        accounts: Sequence[str],
        *,
        start_date: date,
        email: str = "owner@example.com",
    ) -> tuple[uuid.UUID, str]:
        """*Sync* (or *Reconnect*) with `accounts` from `start_date`, then allow the app
        for `tenant_id` on Xero's consent page. Returns the connection id and the notice
        the connector answered with (`connected` or `reconnected`)."""
        page = await self._connector.get(self._page)
        expect(page, 200, "the Xero page")
        started = await self._connector.post(
            f"{self._page}/connect",
            data={
                "csrf_token": hidden_fields(page.text)["csrf_token"],
                "account_id": list(accounts),
                "start_date": start_date.isoformat(),
            },
        )
        expect(started, 303, "Sync (connect)")
        consent = await self._xero.get(_path(started.headers["location"]))
        expect(consent, 200, "Xero's consent page")
        allowed = await self._xero.post(
            "/identity/connect/authorize",
            data={
                "request": hidden_fields(consent.text)["request"],
                "decision": "allow",
                "email": email,
                "tenant_id": [tenant_id],
            },
        )
        expect(allowed, 302, "allowing the app in Xero")
        back = await self._connector.get(_path(allowed.headers["location"]))
        expect(back, 303, "the connector's callback")
        where = back.headers.get("location", "")
        notice = where.partition("notice=")[2]
        if notice not in {"connected", "reconnected"}:
            raise UserFlowFailed(f"{self.entity_id} was not connected: {where}")
        connection = (await self.status())["connection"]
        return uuid.UUID(connection["connection_id"]), notice

    async def disconnect(self) -> None:
        """Manage Connection → Disconnect Xero → YES, DISCONNECT."""
        page = await self._connector.get(f"{self._page}/disconnect")
        expect(page, 200, "Disconnect Xero?")
        fields = hidden_fields(page.text)
        done = await self._connector.post(
            f"{self._page}/disconnect",
            data={"csrf_token": fields["csrf_token"], "confirm": fields["confirm"]},
        )
        expect(done, 200, "YES, DISCONNECT")
