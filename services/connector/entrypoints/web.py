"""The user's web UI: server-rendered pages and plain forms.

Every entity-scoped route checks that the signed-in user belongs to that entity, and every
state-changing form carries the session's CSRF token. Pages never echo text from the query
string: notices are chosen from a fixed list by code.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.connector.adapters.orm import BankAccount, Connection, ConnectionAccount
from services.connector.domain import rules
from services.connector.entrypoints import auth
from services.connector.entrypoints.pages import (
    BankAccountRow,
    ConnectionView,
    DevEntity,
    LinkedAccountRow,
    Pages,
    RefusalView,
    Viewer,
    XeroPageView,
    xero_url,
)
from services.connector.service_layer.disconnect import Disconnector
from services.connector.service_layer.onboarding import Connected, Onboarding
from services.connector.service_layer.overview import EntityQueries, Overview, SyncNow
from shared.logging import get_logger
from shared.xero_http import XeroError

log = get_logger(__name__)

NOTICES = {
    "connected": "Connected to Xero. Your transactions are on their way.",
    "reconnected": "Reconnected to Xero. Transactions resume where they stopped.",
    "sync_requested": "Sync requested. Xero will show new transactions in a few minutes.",
}


@dataclass(frozen=True)
class WebDeps:
    pages: Pages
    onboarding: Onboarding
    disconnector: Disconnector
    queries: EntityQueries
    sync_now: SyncNow
    session_secret: str
    secure_cookies: bool
    demo_sign_in: bool


def web_router(deps: WebDeps) -> APIRouter:  # noqa: PLR0915 - one closure per route
    router = APIRouter(include_in_schema=False)
    secret = deps.session_secret
    pages = deps.pages
    User = Annotated[auth.UserSession, Depends(auth.require_user(secret))]  # noqa: N806

    def viewer(session: auth.UserSession) -> Viewer:
        return Viewer(
            user_name=session.name or session.user_id,
            entity_id=session.entity_id,
            entity_name=None,
            csrf_token=auth.csrf_token(secret, session),
        )

    async def xero_view(
        session: auth.UserSession, *, notice: str | None = None, problem: str | None = None
    ) -> XeroPageView:
        overview = await deps.queries.overview(session.entity_id)
        today = datetime.now(UTC).date()
        earliest, latest = rules.start_date_bounds(today)
        return XeroPageView(
            viewer=viewer(session),
            accounts=tuple(_account_row(a) for a in overview.accounts if not a.closed),
            connection=_connection_view(overview),
            today=latest,
            earliest_start=earliest,
            notice=notice,
            problem=problem,
        )

    def refusal(session: auth.UserSession, refused: rules.Refusal, status: int) -> Response:
        return pages.refusal(
            RefusalView(
                viewer=viewer(session),
                title=refused.title,
                message=refused.message,
                advice=refused.advice,
                back_url=xero_url(session.entity_id),
            ),
            status,
        )

    def entity_session(session: auth.UserSession, entity_id: str) -> auth.UserSession:
        auth.require_entity(session, entity_id)
        return session

    @router.get("/")
    async def home(request: Request) -> Response:
        try:
            session = auth.session_from_request(request, secret)
        except auth.NotSignedIn as missing:
            return pages.sign_in_required(str(missing), deps.demo_sign_in)
        return RedirectResponse(xero_url(session.entity_id), status_code=303)

    @router.get("/sign-in")
    async def sign_in(token: Annotated[str, Query(max_length=4096)] = "") -> Response:
        """The bank's app sends its user here with a signed token (see README)."""
        try:
            session = auth.verify_user_token(secret, token)
        except auth.NotSignedIn as refused:
            return pages.sign_in_required(str(refused), deps.demo_sign_in)
        response = RedirectResponse(xero_url(session.entity_id), status_code=303)
        auth.set_session_cookie(response, token, session, secure=deps.secure_cookies)
        return response

    @router.post("/sign-out")
    async def sign_out(session: User, csrf_token: Annotated[str | None, Form()] = None) -> Response:
        auth.check_csrf(secret, session, csrf_token)
        response = pages.sign_in_required("You have signed out.", deps.demo_sign_in, status=200)
        auth.clear_session_cookie(response, secure=deps.secure_cookies)
        return response

    @router.get("/entities/{entity_id}/xero")
    async def xero_page(entity_id: str, session: User, notice: str | None = None) -> Response:
        entity_session(session, entity_id)
        return pages.xero(await xero_view(session, notice=NOTICES.get(notice or "")))

    @router.post("/entities/{entity_id}/xero/connect")
    async def connect(
        entity_id: str,
        session: User,
        csrf_token: Annotated[str | None, Form()] = None,
        start_date: Annotated[str | None, Form(max_length=40)] = None,
        account_id: Annotated[list[str] | None, Form()] = None,
    ) -> Response:
        entity_session(session, entity_id)
        auth.check_csrf(secret, session, csrf_token)
        try:
            url = await deps.onboarding.start(
                entity_id=entity_id,
                user_id=session.user_id,
                account_ids=account_id or [],
                start_date=start_date,
            )
        except rules.RequestRefused as refused:
            view = await xero_view(session, problem=str(refused))
            return pages.xero(
                view, status=409 if isinstance(refused, rules.AlreadyConnected) else 400
            )
        return RedirectResponse(url, status_code=303)

    @router.get("/xero/callback")
    async def callback(
        request: Request,
        code: Annotated[str | None, Query(max_length=2048)] = None,
        state: Annotated[str | None, Query(max_length=512)] = None,
        error: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        session = auth.session_from_request(request, secret)
        try:
            pending = await deps.onboarding.take_state(state, entity_id=session.entity_id)
        except rules.NotYours:
            raise auth.EntityForbidden from None
        if pending is None:
            return refusal(session, rules.STATE_EXPIRED, 400)
        try:
            outcome = await deps.onboarding.complete(pending, code=code, error=error)
        except rules.AlreadyConnected as refused:
            return refusal(
                session,
                rules.Refusal("already", "Already connected", str(refused), "Reload the page."),
                409,
            )
        except XeroError as failure:
            log.warning("Xero failed during the callback", error=type(failure).__name__)
            return refusal(
                session,
                rules.Refusal(
                    "xero_unavailable",
                    "Xero didn't answer",
                    "Xero could not complete the connection just now; nothing was connected.",
                    "Wait a minute, then press Sync again.",
                ),
                502,
            )
        if isinstance(outcome, Connected):
            notice = "reconnected" if outcome.resumed else "connected"
            return RedirectResponse(f"{xero_url(session.entity_id)}?notice={notice}", 303)
        status = 403 if outcome.refusal.kind in {"edition", "inactive"} else 200
        return refusal(session, outcome.refusal, status)

    @router.post("/entities/{entity_id}/xero/sync")
    async def sync_now(
        entity_id: str, session: User, csrf_token: Annotated[str | None, Form()] = None
    ) -> Response:
        entity_session(session, entity_id)
        auth.check_csrf(secret, session, csrf_token)
        try:
            await deps.sync_now.request(entity_id, session.user_id)
        except rules.NotConnected as refused:
            return pages.xero(await xero_view(session, problem=str(refused)), status=409)
        return RedirectResponse(f"{xero_url(entity_id)}?notice=sync_requested", status_code=303)

    @router.get("/entities/{entity_id}/xero/manage")
    async def manage(entity_id: str, session: User) -> Response:
        entity_session(session, entity_id)
        view = await xero_view(session)
        if view.connection is None:
            return RedirectResponse(xero_url(entity_id), status_code=303)
        return pages.manage(view)

    @router.get("/entities/{entity_id}/xero/disconnect")
    async def confirm_disconnect(entity_id: str, session: User) -> Response:
        entity_session(session, entity_id)
        view = await xero_view(session)
        if view.connection is None:
            return RedirectResponse(xero_url(entity_id), status_code=303)
        return pages.confirm_disconnect(view)

    @router.post("/entities/{entity_id}/xero/disconnect")
    async def disconnect(
        entity_id: str,
        session: User,
        csrf_token: Annotated[str | None, Form()] = None,
        confirm: Annotated[str | None, Form()] = None,
    ) -> Response:
        entity_session(session, entity_id)
        auth.check_csrf(secret, session, csrf_token)
        if confirm != "yes":
            return RedirectResponse(xero_url(entity_id, "disconnect"), status_code=303)
        done = await deps.disconnector.disconnect(entity_id)
        if done is None:  # pressed twice: show the same outcome
            last = await deps.queries.last_connection(entity_id)
            if last is None:
                return RedirectResponse(xero_url(entity_id), status_code=303)
            return pages.disconnected(viewer(session), last.tenant_name)
        return pages.disconnected(viewer(session), done.org_name)

    @router.get("/dev/sign-in")
    async def dev_sign_in_page() -> Response:
        if not deps.demo_sign_in:
            return pages.error("Not found", "There is no page here.", 404)
        entities = await deps.queries.entities()
        return pages.dev_sign_in(
            [DevEntity(e.entity_id, e.entity_id, " · ".join(e.currencies)) for e in entities]
        )

    @router.post("/dev/sign-in")
    async def dev_sign_in(entity_id: Annotated[str, Form(max_length=64)]) -> Response:
        if not deps.demo_sign_in:
            return pages.error("Not found", "There is no page here.", 404)
        token = auth.mint_user_token(
            secret,
            user_id=f"demo-{entity_id}"[:64],
            entity_id=entity_id,
            ttl=timedelta(hours=8),
            name=f"Demo user of {entity_id}",
        )
        session = auth.verify_user_token(secret, token)
        response = RedirectResponse(xero_url(entity_id), status_code=303)
        auth.set_session_cookie(response, token, session, secure=deps.secure_cookies)
        return response

    return router


def _account_row(account: BankAccount) -> BankAccountRow:
    return BankAccountRow(
        account_id=account.account_id,
        currency=account.currency,
        name=account.name,
        number=account.account_number,
        closed=account.closed,
    )


def _connection_view(overview: Overview) -> ConnectionView | None:
    connection = overview.connection
    if connection is None:
        return None
    accounts = {a.account_id: a for a in overview.accounts}
    return ConnectionView(
        connection_id=str(connection.id),
        org_name=connection.tenant_name,
        status=connection.status,
        status_reason=connection.status_reason,
        sink=connection.sink,
        sync_start_date=connection.sync_start_date,
        display_timezone=connection.org_timezone,
        connected_at=connection.connected_at,
        last_sync_at=connection.last_sync_at,
        last_sync_message=connection.last_sync_message,
        accounts=tuple(
            _link_row(connection, link, accounts.get(link.account_id)) for link in overview.links
        ),
    )


def _link_row(
    connection: Connection, link: ConnectionAccount, account: BankAccount | None
) -> LinkedAccountRow:
    return LinkedAccountRow(
        account_id=link.account_id,
        currency=link.currency,
        name=account.name if account else link.account_id,
        number=account.account_number if account else "",
        link_status=link.status,
        xero_target=_target(connection, link),
        last_synced_at=link.last_synced_at,
        latest_transaction_date=link.latest_transaction_date,
        problem=link.problem or link.sync_problem,
    )


def _target(connection: Connection, link: ConnectionAccount) -> str | None:
    if link.status == "failed":
        return None
    name = link.xero_account_name or f"{link.currency} account"
    if connection.sink == "bankfeeds":
        return f"Bank feed → {name}"
    return f"Xero bank account {name}"
