"""What the syncer learns from Kafka besides transactions: the connections replica
(`xero.connections.v1`) and the runs to do (`xero.sync-due.v1`).

Both are idempotent: a connection event no newer than the stored version changes nothing,
and a SyncDue whose slot (`event_id`) was seen, or whose connection already has a run
waiting, queues nothing. Records that are not valid events go to the DLQ with the reason.
Queuing a run is all the consumer does: a run can take longer than Kafka lets a consumer
go without polling, so runs are carried out by the workers (service_layer/workers.py).
"""

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeAlias, cast

from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.syncer.adapters.connections import ConnectionEvent, ConnectionRepository
from services.syncer.adapters.runs import RunRepository
from services.syncer.metrics import SyncerMetrics
from shared.contracts.topics import XERO_CONNECTIONS, XERO_SYNC_DUE
from shared.contracts.xero import SyncDue
from shared.db import translated_db_errors
from shared.dlq import DeadLetterPublisher, decode_records
from shared.logging import get_logger
from shared.retry import Backoff, retry_transient

log = get_logger(__name__)
Record: TypeAlias = ConsumerRecord[bytes, bytes]
Sessions: TypeAlias = async_sessionmaker[AsyncSession]


class ConnectionReplica:
    def __init__(
        self, sessions: Sessions, dead_letters: DeadLetterPublisher, *, max_event_bytes: int
    ) -> None:
        self._sessions = sessions
        self._dead_letters = dead_letters
        self._max_bytes = max_event_bytes

    async def apply(self, records: Sequence[Record]) -> None:
        events, refused = decode_records(XERO_CONNECTIONS, records, max_bytes=self._max_bytes)
        ordered = sorted(
            (cast(ConnectionEvent, e) for e in events), key=lambda e: (e.connection_id, e.version)
        )

        async def store() -> None:
            async with translated_db_errors(), self._sessions() as session, session.begin():
                repository = ConnectionRepository(session)
                for event in ordered:
                    await repository.apply(event)

        if ordered:
            await retry_transient(store, policy=Backoff(), what="store connections")
        await self._dead_letters.publish(refused)


class SyncDueIntake:
    def __init__(
        self,
        sessions: Sessions,
        dead_letters: DeadLetterPublisher,
        metrics: SyncerMetrics,
        *,
        max_event_bytes: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._max_bytes = max_event_bytes
        self._now = clock

    async def apply(self, records: Sequence[Record]) -> None:
        events, refused = decode_records(XERO_SYNC_DUE, records, max_bytes=self._max_bytes)
        results: Counter[str] = Counter()

        async def store() -> None:
            results.clear()
            async with translated_db_errors(), self._sessions() as session, session.begin():
                # A connection this replica does not know yet (its event may still be on
                # its way, on another topic) is queued all the same: the run skips it if
                # it is still unknown then.
                runs = RunRepository(session)
                for event in events:
                    results[await runs.queue(cast(SyncDue, event), self._now())] += 1

        if events:
            await retry_transient(store, policy=Backoff(), what="queue sync runs")
        await self._dead_letters.publish(refused)
        for result, count in results.items():
            self._metrics.sync_due.labels(result=result).inc(count)
