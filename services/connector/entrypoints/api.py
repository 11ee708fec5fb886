"""JSON endpoints: the bank app's view of an entity's connection (user token as Bearer),
and the internal token API the syncer calls (service credential)."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from services.connector.domain import rules
from services.connector.entrypoints import auth
from services.connector.service_layer.overview import EntityQueries, SyncNow
from services.connector.service_layer.tokens import ConnectionUnavailable, TokenService
from shared.logging import get_logger
from shared.xero_http import XeroError

log = get_logger(__name__)
CSRF_HEADER = "X-CSRF-Token"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True)
class ApiDeps:
    queries: EntityQueries
    sync_now: SyncNow
    tokens: TokenService
    session_secret: str
    service_credentials: auth.ServiceCredentials


def api_router(deps: ApiDeps) -> APIRouter:
    router = APIRouter()
    User = Annotated[auth.UserSession, Depends(auth.require_user(deps.session_secret))]  # noqa: N806

    @router.get(
        "/api/v1/entities/{entity_id}/xero",
        summary="The entity's Xero connection and where each account stands",
        tags=["user"],
    )
    async def status(entity_id: str, session: User) -> dict[str, Any]:
        auth.require_entity(session, entity_id)
        overview = await deps.queries.overview(entity_id)
        connection = overview.connection
        accounts = {a.account_id: a for a in overview.accounts}
        return {
            "entity_id": entity_id,
            "accounts": [
                {
                    "account_id": a.account_id,
                    "currency": a.currency,
                    "name": a.name,
                    "account_number": a.account_number,
                }
                for a in overview.accounts
                if not a.closed
            ],
            "connection": None
            if connection is None
            else {
                "connection_id": str(connection.id),
                "organisation": connection.tenant_name,
                "status": connection.status,
                "status_reason": connection.status_reason,
                "sink": connection.sink,
                "sync_start_date": connection.sync_start_date.isoformat(),
                "last_sync_at": _iso(connection.last_sync_at),
                "last_sync_message": connection.last_sync_message,
                "accounts": [
                    {
                        "account_id": link.account_id,
                        "currency": link.currency,
                        "name": accounts[link.account_id].name
                        if link.account_id in accounts
                        else None,
                        "status": link.status,
                        "problem": link.problem or link.sync_problem,
                        "last_synced_at": _iso(link.last_synced_at),
                        "latest_transaction_date": _iso(link.latest_transaction_date),
                    }
                    for link in overview.links
                ],
            },
        }

    @router.post(
        "/api/v1/entities/{entity_id}/xero/sync",
        status_code=202,
        summary="Sync now",
        tags=["user"],
    )
    async def sync(entity_id: str, session: User, request: Request) -> JSONResponse:
        auth.require_entity(session, entity_id)
        if session.via == "cookie":
            # A browser attaches the cookie on its own, so a cookie caller proves it read a
            # page of ours (the session's CSRF token, in a header); Bearer callers need not.
            auth.check_csrf(deps.session_secret, session, request.headers.get(CSRF_HEADER))
        try:
            connection = await deps.sync_now.request(entity_id, session.user_id)
        except rules.NotConnected as refused:
            return JSONResponse({"detail": str(refused)}, status_code=409)
        return JSONResponse({"connection_id": str(connection.id), "status": "requested"}, 202)

    @router.post(
        "/internal/v1/connections/{connection_id}/access-token",
        summary="A valid Xero access token for the connection (syncer only)",
        tags=["internal"],
        dependencies=[Depends(auth.require_service(deps.service_credentials))],
    )
    async def access_token(
        connection_id: Annotated[uuid.UUID, Path()],
    ) -> JSONResponse:
        try:
            grant = await deps.tokens.access_token(connection_id)
        except ConnectionUnavailable as unavailable:
            status = 404 if unavailable.status == "unknown" else 409
            return JSONResponse(
                {"detail": str(unavailable), "status": unavailable.status},
                status_code=status,
                headers=NO_STORE,
            )
        except XeroError as failure:
            log.warning("token refresh failed", error=type(failure).__name__)
            return JSONResponse(
                {"detail": "Xero could not refresh the token just now; retry shortly"},
                status_code=503,
                headers=NO_STORE | {"Retry-After": "5"},
            )
        return JSONResponse(
            {
                "access_token": grant.access_token.get_secret_value(),
                "tenant_id": str(grant.tenant_id),
                "expires_at": grant.expires_at.isoformat(),
            },
            headers=NO_STORE,
        )

    return router


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()
