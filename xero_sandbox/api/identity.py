"""Identity routes: the consent page, /connect/token, /connect/revocation, /connections."""

import html
from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from xero_sandbox import identity
from xero_sandbox.api.deps import SandboxDep
from xero_sandbox.errors import token_error
from xero_sandbox.state import Connection, PendingAuthorization, Sandbox

router = APIRouter(tags=["identity"])

SCOPE_WORDS = {
    "openid": "Your Xero user identity",
    "profile": "Your name",
    "email": "Your e-mail address",
    "offline_access": "Stay connected when you are not using the app",
    "accounting.transactions": "View and manage your business transactions",
    "accounting.transactions.read": "View your business transactions",
    "accounting.settings": "View and manage your organisation settings",
    "accounting.settings.read": "View your organisation settings",
    "accounting.contacts": "View and manage your contacts",
    "accounting.contacts.read": "View your contacts",
    "bankfeeds": "Send bank statements to Xero (bank feeds)",
}


async def _form(request: Request) -> dict[str, list[str]]:
    """An application/x-www-form-urlencoded body (no multipart dependency needed)."""
    return parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)


def _one(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


# ----------------------------------------------------------------------------- consent page


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} | Xero sandbox</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;color:#1e3241}}
main{{max-width:34rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;
box-shadow:0 1px 3px #0002}}
h1{{font-size:1.4rem}} fieldset{{border:1px solid #ccd;border-radius:6px;margin:1rem 0}}
label{{display:block;margin:.4rem 0}} .meta{{color:#5a6c7a;font-size:.85rem}}
.actions{{display:flex;gap:1rem;margin-top:1.5rem}}
button{{font-size:1rem;padding:.6rem 1.4rem;border-radius:4px;border:1px solid #13b5ea}}
button.allow{{background:#13b5ea;color:#fff}} button.deny{{background:#fff;color:#13b5ea}}
.error{{color:#b3261e}}
</style></head><body><main>{body}</main></body></html>"""
    return HTMLResponse(document, status_code=status)


def _consent_page(
    sandbox: Sandbox, pending_id: str, pending: PendingAuthorization, *, problem: str = ""
) -> HTMLResponse:
    app = sandbox.apps[pending.client_id]
    scopes = "".join(
        f"<li>{html.escape(SCOPE_WORDS.get(scope, scope))}</li>" for scope in pending.scopes
    )
    organisations = "".join(
        f'<label><input type="checkbox" name="tenant_id" value="{org.tenant_id}"> '
        f"{html.escape(org.name)} "
        f'<span class="meta">{org.edition.title()} edition · {org.status.lower()} · '
        f"{org.base_currency}</span></label>"
        for org in sandbox.organisations.values()
    )
    if not organisations:
        organisations = "<p>This Xero user has no organisations yet.</p>"
    alert = f'<p class="error" role="alert">{html.escape(problem)}</p>' if problem else ""
    body = f"""<h1>{html.escape(app.name)} wants to connect to Xero</h1>
{alert}
<form method="post" action="/identity/connect/authorize">
<input type="hidden" name="request" value="{html.escape(pending_id)}">
<label for="email">Signed in to Xero as</label>
<input id="email" name="email" type="email" required value="xero.user@example.com">
<p>It will be able to:</p><ul>{scopes}</ul>
<fieldset><legend>Organisations to connect</legend>{organisations}</fieldset>
<div class="actions">
<button class="allow" type="submit" name="decision" value="allow">Allow access</button>
<button class="deny" type="submit" name="decision" value="deny">Cancel</button>
</div></form>"""
    return _page("Allow access", body)


def _refusal_page(refused: identity.AuthorizeRefused) -> HTMLResponse:
    body = (
        f"<h1>Sorry, something went wrong</h1><p>Error: {html.escape(refused.error)}</p>"
        f"<p>{html.escape(refused.description)}</p>"
    )
    return _page("Error", body, status=400)


def _back_to_app(
    redirect_uri: str, refused: identity.AuthorizeRefused, state: str | None
) -> Response:
    answer = {"error": refused.error, "error_description": refused.description}
    if state is not None:
        answer["state"] = state
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(answer)}", status_code=302)


@router.get("/identity/connect/authorize", response_class=HTMLResponse)
async def authorize(  # noqa: PLR0917 - the query parameters OAuth defines
    sandbox: SandboxDep,
    client_id: str | None = None,
    redirect_uri: str | None = None,
    response_type: str | None = None,
    scope: str | None = None,
    state: str | None = None,
    code_challenge: str | None = None,
    code_challenge_method: str | None = None,
) -> Response:
    """login.xero.com's authorize endpoint: the page where the user allows or denies."""
    try:
        pending_id = identity.start_authorization(
            sandbox,
            client_id=client_id,
            redirect_uri=redirect_uri,
            response_type=response_type,
            scope=scope,
            state=state,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
        )
    except identity.AuthorizeRefused as refused:
        if refused.redirect and redirect_uri:
            return _back_to_app(redirect_uri, refused, state)
        return _refusal_page(refused)
    return _consent_page(sandbox, pending_id, sandbox.pending[pending_id])


@router.post("/identity/connect/authorize", response_class=HTMLResponse)
async def decide(request: Request, sandbox: SandboxDep) -> Response:
    form = await _form(request)
    pending_id = _one(form, "request") or ""
    try:
        pending = identity.pending_authorization(sandbox, pending_id)
    except identity.AuthorizeRefused as refused:
        return _refusal_page(refused)
    allow = _one(form, "decision") == "allow"
    tenant_ids = [t for t in form.get("tenant_id", []) if t in sandbox.organisations]
    if allow and not tenant_ids:
        return _consent_page(
            sandbox, pending_id, pending, problem="Choose at least one organisation."
        )
    email = (_one(form, "email") or "").strip() or "xero.user@example.com"
    location = identity.decide(sandbox, pending_id, allow=allow, email=email, tenant_ids=tenant_ids)
    return RedirectResponse(location, status_code=302)


# ----------------------------------------------------------------------------- tokens


@router.post("/connect/token")
async def token(
    request: Request,
    sandbox: SandboxDep,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """identity.xero.com's token endpoint: authorization_code and refresh_token grants."""
    form = await _form(request)
    app = identity.authenticate_client(
        sandbox, authorization, _one(form, "client_id"), _one(form, "client_secret")
    )
    grant_type = _one(form, "grant_type")
    if grant_type == "authorization_code":
        answer = identity.exchange_code(
            sandbox,
            app,
            _one(form, "code"),
            _one(form, "redirect_uri"),
            _one(form, "code_verifier"),
        )
    elif grant_type == "refresh_token":
        answer = identity.refresh(sandbox, app, _one(form, "refresh_token"))
    else:
        raise token_error("unsupported_grant_type")
    return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@router.post("/connect/revocation")
async def revocation(
    request: Request,
    sandbox: SandboxDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """Revokes the refresh token's family and removes that user's connections to the app."""
    form = await _form(request)
    app = identity.authenticate_client(
        sandbox, authorization, _one(form, "client_id"), _one(form, "client_secret")
    )
    identity.revoke(sandbox, app, _one(form, "token"))
    return Response(status_code=200)


# ----------------------------------------------------------------------------- connections


def _xero_timestamp(moment: datetime) -> str:
    """Xero's `/connections` timestamps: seven fractional digits, no zone (UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"


def _connection_json(sandbox: Sandbox, connection: Connection) -> dict[str, str]:
    return {
        "id": connection.id,
        "authEventId": connection.auth_event_id,
        "tenantId": connection.tenant_id,
        "tenantType": "ORGANISATION",
        "tenantName": sandbox.organisations[connection.tenant_id].name,
        "createdDateUtc": _xero_timestamp(connection.created_at),
        "updatedDateUtc": _xero_timestamp(connection.updated_at),
    }


@router.get("/connections")
async def connections(
    sandbox: SandboxDep,
    authorization: Annotated[str | None, Header()] = None,
    authEventId: str | None = None,  # noqa: N803 - Xero's query parameter name
) -> JSONResponse:
    who = identity.caller(sandbox, authorization)
    found = sandbox.connections_of(who.app.client_id, who.grant.user_id)
    if authEventId is not None:
        found = [c for c in found if c.auth_event_id == authEventId.strip().lower()]
    return JSONResponse([_connection_json(sandbox, c) for c in found])


@router.delete("/connections/{connection_id}")
async def delete_connection(
    connection_id: str,
    sandbox: SandboxDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    who = identity.caller(sandbox, authorization)
    connection = sandbox.connections.get(connection_id)
    if connection is None or (connection.client_id, connection.user_id) != (
        who.app.client_id,
        who.grant.user_id,
    ):
        return Response(status_code=404)
    del sandbox.connections[connection_id]
    return Response(status_code=204)
