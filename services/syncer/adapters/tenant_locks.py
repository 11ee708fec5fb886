"""One process at a time posts to an organisation: the one holding that tenant's
PostgreSQL session-level advisory lock, on this process's dedicated connection. If the
process dies, its connection closes and the server releases all its locks at once, so
another replica resumes the organisation's runs, budget and all, with no lease to expire.

The same connection LISTENs on the wake channel: a run queued by any replica wakes the
workers here."""

import asyncio
import contextlib
import uuid

import asyncpg
from pydantic import SecretStr

from shared.db import connect_dedicated
from shared.errors import DatabaseUnavailable
from shared.logging import get_logger

log = get_logger(__name__)
WAKE_CHANNEL = "xerosync_syncer_wake"
"""NOTIFY channel: a sync run was queued."""
_NAMESPACE = 0x7873_7379  # "xssy": the high half of every tenant lock key


def lock_key(tenant_id: uuid.UUID) -> int:
    """A signed 64-bit key: our namespace in the high 32 bits, the tenant's in the low."""
    low = int.from_bytes(tenant_id.bytes[:4], "big")
    key = (_NAMESPACE << 32) | low
    return key - (1 << 64) if key >= 1 << 63 else key


class TenantLocks:
    def __init__(self, url: SecretStr, wake: asyncio.Event) -> None:
        self._url = url
        self._wake = wake
        self._connection: asyncpg.Connection | None = None
        self._use = asyncio.Lock()  # one asyncpg connection runs one statement at a time
        self.held: set[uuid.UUID] = set()

    async def open(self) -> None:
        connection = await connect_dedicated(self._url, application_name="xerosync-syncer-locks")
        await connection.add_listener(WAKE_CHANNEL, self._on_notify)
        self._connection = connection

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        self.held.clear()
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close(timeout=5)

    async def try_lock(self, tenant_id: uuid.UUID) -> bool:
        """True when this process now holds the tenant (no other process does)."""
        got = await self._fetch("SELECT pg_try_advisory_lock($1)", lock_key(tenant_id))
        if got:
            self.held.add(tenant_id)
        return bool(got)

    async def unlock(self, tenant_id: uuid.UUID) -> None:
        self.held.discard(tenant_id)
        with contextlib.suppress(DatabaseUnavailable):
            await self._fetch("SELECT pg_advisory_unlock($1)", lock_key(tenant_id))

    async def alive(self) -> bool:
        """False when the locks' connection is gone: the server may have handed our
        tenants to another process, so every tenant worker here must stop."""
        try:
            await self._fetch("SELECT 1")
        except DatabaseUnavailable:
            return False
        return True

    async def _fetch(self, query: str, *args: object) -> object:
        async with self._use:
            if self._connection is None or self._connection.is_closed():
                raise DatabaseUnavailable("the tenant locks' connection is closed")
            try:
                return await self._connection.fetchval(query, *args, timeout=10)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("tenant locks' connection failed", error=type(error).__name__)
                with contextlib.suppress(Exception):
                    await self._connection.close(timeout=1)
                self.held.clear()
                raise DatabaseUnavailable("the tenant locks' connection failed") from error

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()
