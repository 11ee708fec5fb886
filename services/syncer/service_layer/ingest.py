"""Ingest: transaction events from Kafka into the syncer's database, exactly once.

A batch is validated, stored in one transaction (`ON CONFLICT DO NOTHING` on
`transaction_id`), and its refused records are dead-lettered; only then does the handler
return and the consumer commit its offsets. A crash anywhere before that commit replays
the batch, and the replay changes nothing that was already stored.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias, cast

from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.syncer.adapters.repository import TransactionRepository
from services.syncer.domain.transactions import Ingestible, TransactionEvent, to_ingestible
from services.syncer.metrics import SyncerMetrics
from shared.contracts.decoding import InvalidEvent, decode_event
from shared.contracts.topics import BANK_TRANSACTIONS
from shared.db import translated_db_errors
from shared.dlq import DeadLetterPublisher, Refusal
from shared.errors import DatabaseRejected
from shared.faults import failpoint
from shared.logging import get_logger
from shared.retry import Backoff, retry_transient

log = get_logger(__name__)
Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass
class IngestReport:
    new: int = 0
    duplicate: int = 0
    refused: list[Refusal] = field(default_factory=list)


@dataclass
class _Candidate:
    ingestible: Ingestible
    record: Record


class TransactionIngestor:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dead_letters: DeadLetterPublisher,
        metrics: SyncerMetrics,
        *,
        max_event_bytes: int,
        backoff: Backoff | None = None,
    ) -> None:
        self._sessions = sessions
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._max_event_bytes = max_event_bytes
        self._backoff = backoff or Backoff()

    async def ingest(self, records: Sequence[Record]) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        candidates: dict[str, _Candidate] = {}
        for record in records:
            try:
                event = decode_event(
                    BANK_TRANSACTIONS, record.value, max_bytes=self._max_event_bytes
                )
            except InvalidEvent as error:
                report.refused.append(Refusal(record, error.reason, "validation"))
                continue
            ingestible = to_ingestible(
                cast(TransactionEvent, event), partition=record.partition, offset=record.offset
            )
            first = candidates.get(ingestible.transaction_id)
            if first is None:
                candidates[ingestible.transaction_id] = _Candidate(ingestible, record)
            elif first.ingestible.content_hash == ingestible.content_hash:
                report.duplicate += 1
            else:
                report.refused.append(_conflict(record, ingestible.transaction_id))

        failpoint("ingest.before_store")
        if candidates:
            await retry_transient(
                lambda: self._store(list(candidates.values()), report),
                policy=self._backoff,
                what="store transactions",
            )
        failpoint("ingest.after_store")
        # The refused records must be safely in the DLQ before offsets are committed.
        await self._dead_letters.publish(report.refused)

        self._metrics.ingested.labels(result="new").inc(report.new)
        self._metrics.ingested.labels(result="duplicate").inc(report.duplicate)
        self._metrics.ingested.labels(result="invalid").inc(len(report.refused))
        self._metrics.ingest_batch_duration.observe(time.perf_counter() - started)
        return report

    async def _store(self, candidates: list[_Candidate], report: IngestReport) -> None:
        """Store one batch in one transaction; on a constraint the validation could not
        foresee, fall back to row by row so one bad row cannot block the partition."""
        new, duplicate, refused = 0, 0, list[Refusal]()
        try:
            async with translated_db_errors(), self._sessions() as session, session.begin():
                new, duplicate, refused = await self._insert(session, candidates)
        except DatabaseRejected as error:
            log.warning("batch refused by the database; storing row by row", error=str(error))
            new, duplicate, refused = await self._store_row_by_row(candidates)
        report.new += new
        report.duplicate += duplicate
        report.refused.extend(refused)

    @staticmethod
    async def _insert(
        session: AsyncSession, candidates: list[_Candidate]
    ) -> tuple[int, int, list[Refusal]]:
        repository = TransactionRepository(session)
        inserted = await repository.insert_new([c.ingestible.row for c in candidates])
        existing = [c for c in candidates if c.ingestible.transaction_id not in inserted]
        stored = await repository.content_hashes([c.ingestible.transaction_id for c in existing])
        refused = [
            _conflict(c.record, c.ingestible.transaction_id)
            for c in existing
            if stored.get(c.ingestible.transaction_id) != c.ingestible.content_hash
        ]
        return len(inserted), len(existing) - len(refused), refused

    async def _store_row_by_row(
        self, candidates: list[_Candidate]
    ) -> tuple[int, int, list[Refusal]]:
        new, duplicate, refused = 0, 0, list[Refusal]()
        async with translated_db_errors(), self._sessions() as session, session.begin():
            for candidate in candidates:
                try:
                    async with translated_db_errors(), session.begin_nested():
                        n, d, r = await self._insert(session, [candidate])
                except DatabaseRejected as error:
                    refused.append(Refusal(candidate.record, str(error), "storage"))
                    continue
                new, duplicate = new + n, duplicate + d
                refused.extend(r)
        return new, duplicate, refused


def _conflict(record: Record, transaction_id: str) -> Refusal:
    return Refusal(
        record,
        f"transaction_id {transaction_id!r} was already ingested with different content; "
        "a transaction id may not be reused",
        "conflict",
    )
