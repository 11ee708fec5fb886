"""Xero access tokens for a connection, refreshed one at a time.

Xero refresh tokens are single-use: two concurrent refreshes with the same token leave one
caller holding a token Xero has already replaced. So a refresh happens only while holding
the connection's row lock (`SELECT … FOR UPDATE`), after reloading the tokens and checking
that nobody refreshed them meanwhile, and the new refresh token is stored in the same
transaction. Within one process an asyncio lock per connection keeps waiters off the
database pool. If our commit is lost after Xero rotated the token, the next attempt
presents the old refresh token again: Xero's grace period (30 minutes) answers it with the
newest token set, so nothing is lost.
"""

import asyncio
import json
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.connector.adapters.crypto import TokenCipher
from services.connector.adapters.orm import Connection, StoredTokens
from services.connector.adapters.repository import Repository
from services.connector.adapters.xero import TokenSet, XeroClient
from services.connector.domain import rules
from services.connector.metrics import ConnectorMetrics
from services.connector.service_layer.events import publish_connection
from shared.errors import PermanentError
from shared.logging import get_logger
from shared.xero_http import InvalidGrant

log = get_logger(__name__)
FRESH_FOR = timedelta(minutes=2)
"""A token that expires sooner than this is refreshed before it is handed out."""


class ConnectionUnavailable(PermanentError):
    """The connection has no usable token: unknown, disconnected, or waiting for the user."""

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AccessGrant:
    access_token: SecretStr
    tenant_id: uuid.UUID
    expires_at: datetime


@dataclass(frozen=True)
class Tokens:
    access_token: SecretStr
    refresh_token: SecretStr
    expires_at: datetime


def seal(cipher: TokenCipher, connection_id: uuid.UUID, tokens: TokenSet | Tokens) -> bytes:
    plain = json.dumps(
        {
            "access_token": tokens.access_token.get_secret_value(),
            "refresh_token": tokens.refresh_token.get_secret_value(),
            "expires_at": tokens.expires_at.isoformat(),
        }
    ).encode()
    return cipher.encrypt(plain, associated_data=connection_id.bytes)


def unseal(cipher: TokenCipher, connection_id: uuid.UUID, sealed: bytes) -> Tokens:
    plain = json.loads(cipher.decrypt(sealed, associated_data=connection_id.bytes))
    return Tokens(
        access_token=SecretStr(plain["access_token"]),
        refresh_token=SecretStr(plain["refresh_token"]),
        expires_at=datetime.fromisoformat(plain["expires_at"]),
    )


class TokenService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        xero: XeroClient,
        cipher: TokenCipher,
        metrics: ConnectorMetrics,
        *,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._xero = xero
        self._cipher = cipher
        self._metrics = metrics
        self._on_committed = on_committed
        self._locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def access_token(self, connection_id: uuid.UUID) -> AccessGrant:
        """A valid access token for an active connection, refreshing it if needed."""
        async with self._sessions() as session:
            current = await self._current(Repository(session), connection_id)
        if current is not None:
            return current
        lock = self._locks.get(connection_id)
        if lock is None:
            lock = self._locks[connection_id] = asyncio.Lock()
        async with lock, self._sessions() as session:
            refused: ConnectionUnavailable | None = None
            async with session.begin():
                try:
                    grant = await self.refresh_locked(Repository(session), connection_id)
                except ConnectionUnavailable as unavailable:
                    # Commit what the refusal recorded (`invalid_grant` marks the connection
                    # as needing the user and publishes it); raising here would roll it back.
                    refused = unavailable
            if self._on_committed is not None:
                self._on_committed()
            if refused is not None:
                raise refused
            return grant

    async def _current(
        self, repository: Repository, connection_id: uuid.UUID
    ) -> AccessGrant | None:
        connection = _require_active(await repository.connection(connection_id))
        stored = await repository.tokens(connection_id)
        if stored is None or stored.access_expires_at - datetime.now(UTC) < FRESH_FOR:
            return None
        tokens = unseal(self._cipher, connection_id, stored.sealed)
        return AccessGrant(tokens.access_token, connection.tenant_id, tokens.expires_at)

    async def refresh_locked(
        self, repository: Repository, connection_id: uuid.UUID, *, mark_refusal: bool = True
    ) -> AccessGrant:
        """Inside the caller's transaction: lock the connection, reload, refresh if still
        needed. `invalid_grant` marks the connection as needing the user and publishes it,
        unless the caller is ending the connection anyway (`mark_refusal=False`)."""
        connection = _require_active(await repository.connection(connection_id, lock=True))
        stored = await repository.tokens(connection_id)
        if stored is None:
            raise ConnectionUnavailable("the connection holds no tokens", status="needs_user")
        tokens = unseal(self._cipher, connection_id, stored.sealed)
        if stored.access_expires_at - datetime.now(UTC) >= FRESH_FOR:
            # Refreshed by someone else while this caller waited for the lock.
            return AccessGrant(tokens.access_token, connection.tenant_id, stored.access_expires_at)
        try:
            fresh = await self._xero.refresh(tokens.refresh_token)
        except InvalidGrant:
            self._metrics.token_refreshes.labels(result="invalid_grant").inc()
            if mark_refusal:
                await mark_needs_user(
                    repository, connection, rules.REAUTH_REQUIRED, reason="reauth_required"
                )
            log.warning(
                "refresh refused by Xero; the connection needs the user",
                connection_id=str(connection_id),
            )
            raise ConnectionUnavailable(rules.REAUTH_REQUIRED, status="needs_user") from None
        except Exception:
            self._metrics.token_refreshes.labels(result="error").inc()
            raise
        self._metrics.token_refreshes.labels(result="success").inc()
        store(repository, self._cipher, connection_id, fresh, stored)
        return AccessGrant(fresh.access_token, connection.tenant_id, fresh.expires_at)


def store(
    repository: Repository,
    cipher: TokenCipher,
    connection_id: uuid.UUID,
    tokens: TokenSet | Tokens,
    stored: StoredTokens | None = None,
) -> None:
    now = datetime.now(UTC)
    row = stored or StoredTokens(
        connection_id=connection_id, sealed=b"", access_expires_at=now, refreshed_at=now
    )
    row.sealed = seal(cipher, connection_id, tokens)
    row.access_expires_at = tokens.expires_at
    row.refreshed_at = now
    row.refresh_count += 1 if stored is not None else 0
    repository.session.add(row)


async def mark_needs_user(
    repository: Repository,
    connection: Connection,
    reason_text: str,
    *,
    reason: rules.NeedsUserReason,
) -> None:
    """The connection stops posting until the user reconnects; its tokens are useless now."""
    if connection.status != "active":
        return
    connection.status = "needs_user"
    connection.status_reason = reason_text
    await repository.drop_tokens(connection.id)
    await publish_connection(repository, "disconnected", connection, reason=reason)


def _require_active(connection: Connection | None) -> Connection:
    if connection is None:
        raise ConnectionUnavailable("no such connection", status="unknown")
    if connection.status != "active":
        raise ConnectionUnavailable(
            connection.status_reason or f"the connection is {connection.status}",
            status=connection.status,
        )
    return connection
