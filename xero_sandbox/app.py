"""The sandbox's ASGI application: one server answers every Xero host's paths.

login.xero.com (`/identity/connect/authorize`), identity.xero.com (`/connect/token`,
`/connect/revocation`), api.xero.com (`/connections`, `/api.xro/2.0/…`,
`/bankfeeds.xro/1.0/…`), and our own `/admin/…` and `/metrics`. Paths are
case-insensitive, as Xero's are.
"""

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from xero_sandbox.api import accounting, admin, bankfeeds, identity
from xero_sandbox.errors import XeroError
from xero_sandbox.gateway import Gateway
from xero_sandbox.metrics import SandboxMetrics
from xero_sandbox.state import Sandbox


class CaseInsensitivePaths:
    """Routes are declared in lower case; Xero answers `/Connections` and `/connections` alike."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = dict(scope, path=scope["path"].lower())
        await self.app(scope, receive, send)


async def _xero_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, XeroError)  # noqa: S101 - registered for XeroError only
    return error.response()


def create_app(sandbox: Sandbox | None = None) -> FastAPI:
    sandbox = sandbox if sandbox is not None else Sandbox()
    app = FastAPI(
        title="xerosync Xero sandbox",
        summary="A stand-in for Xero's identity, accounting and bank-feeds APIs.",
        docs_url="/admin/docs",
        redoc_url=None,
        openapi_url="/admin/openapi.json",
    )
    app.state.sandbox = sandbox
    metrics = SandboxMetrics()
    app.state.metrics = metrics

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(identity.router)
    app.include_router(accounting.router)
    app.include_router(bankfeeds.router)
    app.include_router(admin.router)
    app.add_exception_handler(XeroError, _xero_error)
    app.add_middleware(Gateway, sandbox=sandbox, observe=metrics.observe)
    app.add_middleware(CaseInsensitivePaths)
    return app
