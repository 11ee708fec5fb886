"""The admin API (`/admin/…`, JSON): set up, play the Xero user, bend time, break things.

For tests, demos and benchmarks only; it has no authentication, so the sandbox listens on
127.0.0.1 unless told otherwise. Every route is listed with its body at `/admin/docs`.
"""

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from xero_sandbox import identity
from xero_sandbox.api.deps import SandboxDep
from xero_sandbox.faults import FaultPlanIn, FaultRule
from xero_sandbox.organisations import OrganisationIn, create_organisation
from xero_sandbox.state import Account, AccountStatus, Organisation, Sandbox

router = APIRouter(prefix="/admin", tags=["admin"])


def plain(value: Any) -> Any:
    """Dataclasses as JSON: money as exact decimal strings, dates in ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _organisation(sandbox: Sandbox, tenant_id: str) -> Organisation:
    organisation = sandbox.organisation(tenant_id)
    if organisation is None:
        raise HTTPException(
            404, f"no organisation {tenant_id}; GET /admin/organisations lists them"
        )
    return organisation


def _summary(organisation: Organisation) -> dict[str, Any]:
    return {
        "tenant_id": organisation.tenant_id,
        "name": organisation.name,
        "edition": organisation.edition,
        "status": organisation.status,
        "base_currency": organisation.base_currency,
        "currencies": organisation.currencies,
        "multi_currency": organisation.multi_currency,
        "timezone": organisation.timezone,
        "country_code": organisation.country_code,
    }


# ----------------------------------------------------------------------------- organisations


@router.post("/organisations", status_code=201)
async def add_organisation(spec: OrganisationIn, sandbox: SandboxDep) -> dict[str, Any]:
    """A new organisation (with Xero's starting chart of accounts); answers its `tenant_id`."""
    return _summary(create_organisation(sandbox, spec))


@router.get("/organisations")
async def list_organisations(sandbox: SandboxDep) -> list[dict[str, Any]]:
    return [_summary(o) for o in sandbox.organisations.values()]


@router.get("/organisations/{tenant_id}")
async def organisation_holdings(tenant_id: str, sandbox: SandboxDep) -> dict[str, Any]:
    """Everything the organisation holds and received: accounts, feeds, statements with
    their lines, bank transactions, and the apps connected to it."""
    organisation = _organisation(sandbox, tenant_id)
    return {
        **_summary(organisation),
        "accounts": plain(list(organisation.accounts.values())),
        "contacts": plain(list(organisation.contacts.values())),
        "feed_connections": plain(list(organisation.feed_connections.values())),
        "statements": plain(list(organisation.statements.values())),
        "bank_transactions": [t.document for t in organisation.bank_transactions.values()],
        "connections": plain(
            [c for c in sandbox.connections.values() if c.tenant_id == organisation.tenant_id]
        ),
    }


class OrganisationChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    edition: Literal["BUSINESS", "PARTNER"] | None = None
    status: Literal["ACTIVE", "INACTIVE", "DELETED", "SUSPENDED"] | None = None


@router.patch("/organisations/{tenant_id}")
async def change_organisation(
    tenant_id: str, change: OrganisationChange, sandbox: SandboxDep
) -> dict[str, Any]:
    organisation = _organisation(sandbox, tenant_id)
    for name, value in change.model_dump(exclude_none=True).items():
        setattr(organisation, name, value)
    return _summary(organisation)


# ----------------------------------------------------------------------------- apps, consent


class AppIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="xerosync", min_length=1, max_length=100)
    redirect_uris: list[str] = Field(min_length=1)


@router.post("/apps", status_code=201)
async def add_app(spec: AppIn, sandbox: SandboxDep) -> dict[str, Any]:
    """Registers an app, as Xero's developer portal does; answers its credentials."""
    app = identity.register_app(sandbox, spec.name, spec.redirect_uris)
    return {
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "name": app.name,
        "redirect_uris": app.redirect_uris,
    }


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str
    tenant_ids: list[str] = Field(min_length=1)
    user_email: str = Field(default="xero.user@example.com", min_length=3)
    scope: str = (
        "openid profile email offline_access accounting.transactions accounting.settings bankfeeds"
    )


@router.post("/consents")
async def add_consent(spec: ConsentIn, sandbox: SandboxDep) -> dict[str, object]:
    """The user allows the app on these organisations, without the browser; answers the
    token set exactly as `/connect/token` would after the consent page."""
    app = sandbox.apps.get(spec.client_id)
    if app is None:
        raise HTTPException(404, f"no app {spec.client_id}; POST /admin/apps registers one")
    scopes = tuple(dict.fromkeys(spec.scope.split()))
    unknown = sorted(set(scopes) - identity.KNOWN_SCOPES)
    if unknown:
        raise HTTPException(422, f"unknown scopes: {' '.join(unknown)}")
    try:
        grant = identity.consent(
            sandbox, app, sandbox.user(spec.user_email), spec.tenant_ids, scopes
        )
    except ValueError as error:
        raise HTTPException(404, str(error)) from None
    return identity.issue_tokens(sandbox, grant)


# ----------------------------------------------------------------------------- the Xero user


@router.delete("/organisations/{tenant_id}/apps/{client_id}")
async def remove_app(tenant_id: str, client_id: str, sandbox: SandboxDep) -> dict[str, int]:
    """The Xero user disconnects the app from the organisation (Settings → Connected apps)."""
    organisation = _organisation(sandbox, tenant_id)
    # Paths are lower-cased on the way in; Xero's client ids are upper-case hex.
    app = next((a for a in sandbox.apps.values() if a.client_id.lower() == client_id.lower()), None)
    if app is None:
        raise HTTPException(404, f"no app {client_id}")
    removed = identity.remove_app(sandbox, organisation.tenant_id, app.client_id)
    return {"removed_connections": removed}


@router.post("/organisations/{tenant_id}/accounts/{account_id}/archive")
async def archive_account(tenant_id: str, account_id: str, sandbox: SandboxDep) -> dict[str, Any]:
    """The Xero user archives a bank account (its feeds stop accepting statements)."""
    return _set_status(sandbox, tenant_id, account_id, "ARCHIVED")


@router.post("/organisations/{tenant_id}/accounts/{account_id}/restore")
async def restore_account(tenant_id: str, account_id: str, sandbox: SandboxDep) -> dict[str, Any]:
    """The Xero user restores an archived account: ACTIVE again, its feeds take statements
    and it takes bank transactions again. Only an ARCHIVED account can be restored (409)."""
    account = _account(sandbox, tenant_id, account_id)
    if account.status != "ARCHIVED":
        why = (
            "a deleted account cannot be restored"
            if account.status == "DELETED"
            else "only an archived account can be restored"
        )
        raise HTTPException(409, f"account {account_id} is {account.status}: {why}")
    return _set_status(sandbox, tenant_id, account_id, "ACTIVE")


@router.delete("/organisations/{tenant_id}/accounts/{account_id}")
async def delete_account(tenant_id: str, account_id: str, sandbox: SandboxDep) -> dict[str, Any]:
    """The Xero user deletes a bank account: it disappears from the API."""
    return _set_status(sandbox, tenant_id, account_id, "DELETED")


def _account(sandbox: Sandbox, tenant_id: str, account_id: str) -> Account:
    organisation = _organisation(sandbox, tenant_id)
    account = organisation.accounts.get(account_id.lower())
    if account is None:
        raise HTTPException(404, f"no account {account_id} in {organisation.name}")
    return account


def _set_status(
    sandbox: Sandbox, tenant_id: str, account_id: str, status: AccountStatus
) -> dict[str, Any]:
    account = _account(sandbox, tenant_id, account_id)
    account.status = status
    account.updated_at = sandbox.clock.now()
    return dict(plain(account))


@router.delete("/organisations/{tenant_id}/feed-connections/{feed_connection_id}")
async def delete_feed_connection(
    tenant_id: str, feed_connection_id: str, sandbox: SandboxDep
) -> dict[str, Any]:
    """The Xero user removes a bank feed from an account."""
    organisation = _organisation(sandbox, tenant_id)
    feed = organisation.feed_connections.get(feed_connection_id.lower())
    if feed is None:
        raise HTTPException(404, f"no feed connection {feed_connection_id}")
    feed.deleted = True
    return dict(plain(feed))


# ----------------------------------------------------------------------------- faults, time


@router.get("/faults")
async def get_faults(sandbox: SandboxDep) -> dict[str, Any]:
    return {
        "rules": [r.model_dump() for r in sandbox.faults.rules],
        "fired": sandbox.faults.fired,
    }


@router.put("/faults")
async def set_faults(plan: FaultPlanIn, sandbox: SandboxDep) -> dict[str, Any]:
    """Replaces the fault rules (an empty list clears them)."""
    sandbox.faults.replace(plan)
    return await get_faults(sandbox)


@router.post("/faults")
async def add_fault(rule: FaultRule, sandbox: SandboxDep) -> dict[str, Any]:
    """Adds one rule beside those in force, keeping their draws and what they have fired."""
    sandbox.faults.add(rule)
    return await get_faults(sandbox)


class TimeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate_limit_scale: float = Field(
        ge=1.0, le=86_400.0, description="60 runs Xero's minute in one real second."
    )


def _time(sandbox: Sandbox) -> dict[str, Any]:
    return {
        "now": sandbox.clock.now().isoformat(),
        "rate_limit_scale": sandbox.clock.rate_limit_scale,
        "minute_window_seconds": sandbox.clock.window(60.0),
    }


@router.get("/time")
async def get_time(sandbox: SandboxDep) -> dict[str, Any]:
    return _time(sandbox)


@router.put("/time")
async def set_time(spec: TimeIn, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.clock.rate_limit_scale = spec.rate_limit_scale
    return _time(sandbox)


class AdvanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(gt=0, le=400 * 86_400)


@router.post("/time/advance")
async def advance_time(spec: AdvanceIn, sandbox: SandboxDep) -> dict[str, Any]:
    """Moves the sandbox's clock forward: tokens, codes and idempotency keys age."""
    sandbox.clock.advance(spec.seconds)
    return _time(sandbox)


class LimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    concurrent: int | None = Field(default=None, ge=1)
    per_minute: int | None = Field(default=None, ge=1)
    per_day: int | None = Field(default=None, ge=1)
    app_per_minute: int | None = Field(default=None, ge=1)
    statements_per_minute: int | None = Field(default=None, ge=1)
    idempotency_window_seconds: float | None = Field(default=None, gt=0)


def _limits(sandbox: Sandbox) -> dict[str, Any]:
    return {
        **dataclasses.asdict(sandbox.limits),
        "idempotency_window_seconds": sandbox.idempotency.window_seconds,
    }


@router.get("/limits")
async def get_limits(sandbox: SandboxDep) -> dict[str, Any]:
    return _limits(sandbox)


@router.put("/limits")
async def set_limits(spec: LimitsIn, sandbox: SandboxDep) -> dict[str, Any]:
    """Xero's numbers by default; tests may lower them to reach a limit quickly."""
    change = spec.model_dump(exclude_none=True)
    window = change.pop("idempotency_window_seconds", None)
    if window is not None:
        sandbox.idempotency.window_seconds = window
    for name, value in change.items():
        setattr(sandbox.limits, name, value)
    return _limits(sandbox)


@router.get("/requests")
async def recent_requests(
    sandbox: SandboxDep,
    tenant_id: str | None = None,
    limit: int = Query(default=1000, ge=1, le=10_000),
) -> list[dict[str, Any]]:
    """The latest API calls (newest last): method, path, status, key, replayed, fault."""
    records = [r for r in sandbox.requests if tenant_id is None or r.tenant_id == tenant_id.lower()]
    return [plain(r) for r in records[-limit:]]


@router.post("/reset", status_code=204)
async def reset(sandbox: SandboxDep) -> None:
    """Forgets everything: organisations, apps, tokens, faults, limits and time."""
    sandbox.reset()
