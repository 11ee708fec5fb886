"""The outbox relay: publishes committed events to Kafka, in commit order, then deletes them.

One replica relays at a time (a transaction-scoped advisory lock), so events of one key
reach Kafka in the order they were committed. Publishing waits for the broker's ack; a
crash after the ack and before the delete publishes the event again, which consumers
tolerate (connection events carry a version; a repeated sync request is debounced).
"""

import asyncio
import contextlib

from faststream.kafka import KafkaBroker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.connector.adapters.repository import Repository
from shared.contracts.topics import Topics
from shared.logging import get_logger

log = get_logger(__name__)
_RELAY_LOCK = 0x78_73_2D_6F_75_74_62_78  # "xs-outbx"


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        broker: KafkaBroker,
        topics: Topics,
        *,
        batch: int = 100,
        idle_poll_s: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._broker = broker
        self._topics = topics
        self._batch = batch
        self._idle_poll_s = idle_poll_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was committed to the outbox: relay it now rather than at the next poll."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish up to one batch; the number published (0 when another replica holds
        the relay or nothing is waiting)."""
        async with self._sessions() as session, session.begin():
            connection = await session.connection()
            held = await connection.scalar(
                text("SELECT pg_try_advisory_xact_lock(:lock)"), {"lock": _RELAY_LOCK}
            )
            if not held:
                return 0
            repository = Repository(session)
            messages = await repository.outbox_batch(self._batch)
            for message in messages:
                await self._broker.publish(
                    message.payload,
                    topic=self._topics.prefix + message.topic,
                    key=message.key.encode(),
                    headers={"content-type": "application/json"},
                )
            await repository.outbox_done([m.id for m in messages if m.id is not None])
            return len(messages)

    async def run(self) -> None:
        """Relay until cancelled; errors are logged and retried at the next poll."""
        while True:
            try:
                while await self.relay_once() == self._batch:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the relay must outlive any one failure
                log.warning("outbox relay failed; retrying", error=type(error).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._idle_poll_s):
                    await self._wake.wait()
            self._wake.clear()
