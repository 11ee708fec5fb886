"""Which replica emits: the one holding a PostgreSQL session-level advisory lock on a
dedicated connection. If that process dies, its connection closes and the server releases
the lock at once; a standby's next try takes it. The same connection LISTENs for the wake
channel, so a slot made due by any replica wakes the emitter."""

import asyncio
import contextlib

import asyncpg
from pydantic import SecretStr

from services.scheduler.adapters.repository import WAKE_CHANNEL
from shared.db import connect_dedicated
from shared.logging import get_logger

log = get_logger(__name__)
EMITTER_LOCK = 0x78_73_2D_73_63_68_65_64  # "xs-sched"; advisory locks are per database


class EmitterLease:
    def __init__(self, url: SecretStr, wake: asyncio.Event) -> None:
        self._url = url
        self._wake = wake
        self._connection: asyncpg.Connection | None = None

    @property
    def held(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def try_acquire(self) -> bool:
        """Take the lock if no live replica holds it; True when this replica now emits."""
        connection = await connect_dedicated(self._url, application_name="xerosync-scheduler")
        try:
            if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", EMITTER_LOCK):
                await connection.close()
                return False
            await connection.add_listener(WAKE_CHANNEL, self._on_notify)
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.close()
            raise
        self._connection = connection
        return True

    async def still_held(self) -> bool:
        """False when the lock's connection is gone (the server may have handed the lock
        to another replica): stop emitting."""
        if self._connection is None:
            return False
        try:
            await self._connection.fetchval("SELECT 1", timeout=5)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("lost the emitter lock's connection", error=type(error).__name__)
            await self.release()
            return False
        return True

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(Exception):
            await connection.close(timeout=5)  # closing the session releases the lock

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()
