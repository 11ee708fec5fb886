"""What stands in front of every Accounting and Bank Feeds API call, as Xero's gateway does.

In order: injected faults (5xx, timeouts); the bearer token (401); `Xero-Tenant-Id`, which
must name an organisation the token's user has connected to the app (403), and the token's
scopes (403); injected 429s, then the rate limits (429 with `Retry-After` and
`X-Rate-Limit-Problem`); `Idempotency-Key`.
Every answer that got past the tenant check carries `X-MinLimit-Remaining`,
`X-DayLimit-Remaining` and `X-AppMinLimit-Remaining`. Handlers behind it find the caller and
organisation with `call_context(request)`.
"""

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

from fastapi import Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xero_sandbox import identity
from xero_sandbox.errors import (
    XeroError,
    bankfeeds_problem,
    forbidden,
    server_error,
    too_many_requests,
    validation_exception,
)
from xero_sandbox.faults import FaultKind, FaultRule
from xero_sandbox.idempotency import (
    MAX_KEY_LENGTH,
    IdempotencyKeyReused,
    StoredResponse,
    fingerprint,
)
from xero_sandbox.limits import Budget, LimitExceeded
from xero_sandbox.state import Connection, Organisation, RequestRecord, Sandbox

ACCOUNTING = "/api.xro/2.0/"
BANKFEEDS = "/bankfeeds.xro/1.0/"
WRITE_METHODS = frozenset({"PUT", "POST", "PATCH"})
STATEMENTS = BANKFEEDS + "statements"
# Injected 429s strike where the real limiter does: after the token and tenant checks.
ADMITTED_FAULTS: frozenset[FaultKind] = frozenset({"rate_limit"})
EARLY_FAULTS: frozenset[FaultKind] = frozenset(get_args(FaultKind)) - ADMITTED_FAULTS


class DroppedResponse(Exception):
    """Raised after the work was done and the answer begun: the connection breaks mid-answer."""


@dataclass(frozen=True)
class CallContext:
    caller: identity.Caller
    organisation: Organisation
    connection: Connection


def call_context(request: Request) -> CallContext:
    """The caller and organisation of an API call (a FastAPI dependency)."""
    context: CallContext = request.scope["state"]["xero"]
    return context


def required_scopes(method: str, path: str) -> frozenset[str]:
    """Any one of these scopes lets the call through."""
    if path.startswith(BANKFEEDS):
        return frozenset({"bankfeeds"})
    resource = path[len(ACCOUNTING) :].split("/", 1)[0]
    family = "accounting.transactions" if resource == "banktransactions" else "accounting.settings"
    if method in {"GET", "HEAD"}:
        return frozenset({family, f"{family}.read"})
    return frozenset({family})


class Gateway:
    def __init__(
        self, app: ASGIApp, sandbox: Sandbox, observe: Callable[[RequestRecord], None]
    ) -> None:
        self.app = app
        self.sandbox = sandbox
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith((ACCOUNTING, BANKFEEDS)):
            await self.app(scope, receive, send)
            return
        call = _Call(self.sandbox, scope)
        try:
            await call.run(self.app, await _read_body(receive), send)
        finally:
            record = call.record()
            self.sandbox.requests.append(record)
            self.observe(record)


class _Call:
    """One API call on its way through the gateway."""

    def __init__(self, sandbox: Sandbox, scope: Scope) -> None:
        self.sandbox = sandbox
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers = Headers(scope=scope)
        self.received_at = sandbox.clock.now()
        self.status = 0
        self.retry_after: float | None = None
        # The organisation the call names, also on calls refused before it was checked.
        self.tenant_id: str | None = self.headers.get("xero-tenant-id", "").strip().lower() or None
        self.client_id: str | None = None
        # The key as sent, also on calls refused before any work (a 5xx, a 429).
        self.key: str | None = (
            self.headers.get("idempotency-key") if self.method in WRITE_METHODS else None
        )
        self.replayed = False
        self.fault: str | None = None
        self.delayed_ms = 0
        # The early fault rules drawn for this call that have not taken effect (yet).
        self._drawn: list[FaultRule] = []

    def record(self) -> RequestRecord:
        return RequestRecord(
            at=self.sandbox.clock.now(),
            method=self.method,
            path=self.path,
            status=self.status,
            tenant_id=self.tenant_id,
            client_id=self.client_id,
            idempotency_key=self.key,
            replayed=self.replayed,
            fault=self.fault,
            received_at=self.received_at,
            retry_after=self.retry_after,
            delayed_ms=self.delayed_ms,
        )

    async def run(self, app: ASGIApp, body: bytes, send: Send) -> None:
        plan = self.sandbox.faults
        self._drawn = plan.draw(self.method, self.path, kinds=EARLY_FAULTS)
        try:
            await self._run(app, body, send)
        finally:
            plan.unused(self._drawn)  # what another answer pre-empted is not used up

    def _struck(self, rule: FaultRule) -> None:
        self._drawn = [r for r in self._drawn if r is not rule]
        self.sandbox.faults.struck(rule)

    async def _run(self, app: ASGIApp, body: bytes, send: Send) -> None:
        try:
            injected = await self._before(list(self._drawn))
            if injected is not None:
                raise injected
            context = self._admit()
        except XeroError as refusal:
            await self._answer(send, refusal)
            return
        limiter = self.sandbox.rate_limiter
        tenant, client = context.organisation.tenant_id, context.caller.app.client_id
        limited = self._rate_limit_fault(limiter.budget(tenant, client))
        if limited is not None:
            await self._answer(send, limited)
            return
        statements = self.method == "POST" and self.path.rstrip("/") == STATEMENTS
        try:
            budget = limiter.acquire(tenant, client, statements=statements)
        except LimitExceeded as exceeded:
            limited = too_many_requests(
                exceeded.problem, exceeded.retry_after, exceeded.budget.headers()
            )
            await self._answer(send, limited)
            return
        try:
            # Latency holds the call's slot, as a slow Xero does (it counts as in flight).
            for rule in list(self._drawn):
                if rule.kind == "latency":
                    self._struck(rule)
                    self.delayed_ms += rule.latency_ms
                    await asyncio.sleep(rule.latency_ms / 1000)
            response = await self._respond(app, context, body)
            drop = next((r for r in self._drawn if r.kind == "drop_after_write"), None)
            if drop is not None:
                self._struck(drop)
                self.fault = "drop_after_write"
                start = {"type": "http.response.start", "status": response.status}
                await send({**start, "headers": response.headers})
                raise DroppedResponse(self.path)
            await self._send(send, response, budget.headers())
        finally:
            limiter.release(tenant, client)

    async def _before(self, faults: list[FaultRule]) -> XeroError | None:
        """The faults that strike before any work: an injected 5xx, or a call never answered."""
        for rule in faults:
            if rule.kind == "error":
                self._struck(rule)
                self.fault = "error"
                return server_error(rule.status, self.path)
            if rule.kind == "timeout":
                self._struck(rule)
                self.fault = "timeout"
                await asyncio.sleep(rule.timeout_s)
                raise DroppedResponse(self.path)
        return None

    def _rate_limit_fault(self, budget: Budget) -> XeroError | None:
        """An injected 429, as the rate limiter answers it: no work, nothing counted, and
        nothing stored for the call's `Idempotency-Key`."""
        plan = self.sandbox.faults
        rules = plan.draw(self.method, self.path, kinds=ADMITTED_FAULTS)
        if not rules:
            return None
        rule, *rest = rules
        plan.unused(rest)
        plan.struck(rule)
        self.fault = "rate_limit"
        return too_many_requests(rule.problem, rule.retry_after_s, budget.headers())

    def _admit(self) -> CallContext:
        who = identity.caller(self.sandbox, self.headers.get("authorization"))
        self.client_id = who.app.client_id
        tenant = self.headers.get("xero-tenant-id", "").strip().lower()
        organisation = self.sandbox.organisation(tenant) if tenant else None
        connection = identity.connection_for(self.sandbox, who, tenant) if tenant else None
        if organisation is None or connection is None:
            raise forbidden()
        self.tenant_id = organisation.tenant_id
        if not required_scopes(self.method, self.path) & set(who.grant.scopes):
            raise forbidden("AuthorizationUnsuccessful")
        return CallContext(caller=who, organisation=organisation, connection=connection)

    async def _respond(self, app: ASGIApp, context: CallContext, body: bytes) -> StoredResponse:
        """The handler's answer, or the stored one for a repeated `Idempotency-Key`."""
        key = self.key
        if key is None:
            return await self._handle(app, context, body)
        if not key or len(key) > MAX_KEY_LENGTH:
            return _stored(
                self._idempotency_refusal(
                    f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters long."
                )
            )
        store = self.sandbox.idempotency
        scope_key = (context.caller.app.client_id, context.organisation.tenant_id, key)
        request = fingerprint(self.method, self.path, self.scope.get("query_string", b""), body)
        try:
            stored = await store.begin(scope_key, request)
        except IdempotencyKeyReused:
            return _stored(
                self._idempotency_refusal(
                    "The Idempotency-Key has already been used with a different request. "
                    "Use a new key for a new request."
                )
            )
        if stored is not None:
            self.replayed = True
            return stored
        response: StoredResponse | None = None
        try:
            response = await self._handle(app, context, body)
        finally:
            keep = response is not None and response.status < 500 and response.status != 429
            store.finish(scope_key, response if keep else None)
        return response

    def _idempotency_refusal(self, message: str) -> XeroError:
        if self.path.startswith(BANKFEEDS):
            return bankfeeds_problem(400, "invalid-request", "Invalid Request", message)
        return validation_exception(message=message)

    async def _handle(self, app: ASGIApp, context: CallContext, body: bytes) -> StoredResponse:
        scope = dict(self.scope)
        scope["state"] = {**scope.get("state", {}), "xero": context}
        return await _capture(app, scope, body)

    async def _answer(self, send: Send, error: XeroError) -> None:
        await self._send(send, _stored(error), {})

    async def _send(self, send: Send, response: StoredResponse, extra: dict[str, str]) -> None:
        self.status = response.status
        if response.status == 429:
            retry_after = [v for k, v in response.headers if k.lower() == b"retry-after"]
            self.retry_after = float(retry_after[0]) if retry_after else None
        headers = [
            (k, v)
            for k, v in response.headers
            if k.decode().lower() not in {h.lower() for h in extra}
        ]
        headers += [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})


def _stored(error: XeroError) -> StoredResponse:
    body = error.body.encode() if isinstance(error.body, str) else json.dumps(error.body).encode()
    media = "text/plain; charset=utf-8" if isinstance(error.body, str) else error.media_type
    headers = [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in error.headers.items()]
    return StoredResponse(status=error.status, headers=headers, body=body)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _capture(app: ASGIApp, scope: Scope, body: bytes) -> StoredResponse:
    delivered = False
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Future()  # a handler that reads twice waits, as for a client still connected
        return {"type": "http.disconnect"}  # pragma: no cover

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return StoredResponse(status=status, headers=headers, body=b"".join(chunks))
