"""What the connector learns from Kafka: the accounts directory (`bank.accounts.v1`) and
the sync status each page shows (`xero.sync-results.v1`).

Both consumers are idempotent: an account event older than the stored one changes nothing,
and a sync result no newer than the last one applied changes nothing, so a replayed topic
leaves the same state. Records that are not valid events go to the DLQ with the reason.
"""

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeAlias, cast

from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.connector.adapters.repository import Repository
from shared.contracts.bank import AccountClosed, AccountOpened, AccountUpdated
from shared.contracts.decoding import DEFAULT_MAX_EVENT_BYTES
from shared.contracts.topics import BANK_ACCOUNTS, XERO_SYNC_RESULTS
from shared.contracts.xero import SyncCompleted, SyncFailed
from shared.db import translated_db_errors
from shared.dlq import DeadLetterPublisher, decode_records
from shared.logging import get_logger
from shared.retry import Backoff, retry_transient

log = get_logger(__name__)
Record: TypeAlias = ConsumerRecord[bytes, bytes]
# SyncFailed reasons that mean Xero may have refused us for good: verify the connection.
VERIFY_ON = frozenset({"token_invalid", "connection_removed", "account_unavailable"})


class AccountsDirectory:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], dead_letters: DeadLetterPublisher
    ) -> None:
        self._sessions = sessions
        self._dead_letters = dead_letters

    async def apply(self, records: Sequence[Record]) -> None:
        events, refused = decode_records(BANK_ACCOUNTS, records, max_bytes=DEFAULT_MAX_EVENT_BYTES)

        async def store() -> None:
            async with translated_db_errors(), self._sessions() as session, session.begin():
                repository = Repository(session)
                for event in events:
                    await repository.apply_account_event(
                        cast(AccountOpened | AccountUpdated | AccountClosed, event)
                    )

        if events:
            await retry_transient(store, policy=Backoff(), what="store accounts")
        await self._dead_letters.publish(refused)


class SyncStatus:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dead_letters: DeadLetterPublisher,
        *,
        verify: Callable[[uuid.UUID], Awaitable[object]],
    ) -> None:
        self._sessions = sessions
        self._dead_letters = dead_letters
        self._verify = verify

    async def apply(self, records: Sequence[Record]) -> None:
        events, refused = decode_records(
            XERO_SYNC_RESULTS, records, max_bytes=DEFAULT_MAX_EVENT_BYTES
        )
        to_verify: set[uuid.UUID] = set()

        async def store() -> None:
            to_verify.clear()
            async with translated_db_errors(), self._sessions() as session, session.begin():
                repository = Repository(session)
                for event in events:
                    if await _apply_result(repository, event) and _needs_verifying(event):
                        to_verify.add(event.connection_id)

        if events:
            await retry_transient(store, policy=Backoff(), what="store sync results")
        await self._dead_letters.publish(refused)
        for connection_id in to_verify:
            try:
                await self._verify(connection_id)
            except Exception as error:  # noqa: BLE001 - the periodic check will catch up
                log.warning(
                    "could not verify connection after a failed sync", error=type(error).__name__
                )


def _needs_verifying(event: SyncCompleted | SyncFailed) -> bool:
    if isinstance(event, SyncFailed):
        return event.reason in VERIFY_ON
    return any(account.problem for account in event.accounts)


async def _apply_result(repository: Repository, event: SyncCompleted | SyncFailed) -> bool:
    """Project one result; False when it is unknown or not newer than what is shown."""
    connection = await repository.connection(event.connection_id, lock=True)
    if connection is None:
        return False
    if connection.last_sync_at is not None and event.finished_at <= connection.last_sync_at:
        return False
    connection.last_sync_at = event.finished_at
    connection.last_sync_run_id = event.run_id
    links = {link.account_id: link for link in await repository.links(connection.id)}
    if isinstance(event, SyncFailed):
        connection.last_sync_result = "failed"
        connection.last_sync_message = event.message
    else:
        connection.last_sync_result = "completed"
        connection.last_sync_message = _summary(event)
        for result in event.accounts:
            link = links.get(result.account_id)
            if link is None:
                continue
            link.last_synced_at = event.finished_at
            if result.latest_transaction_date is not None and (
                link.latest_transaction_date is None
                or result.latest_transaction_date > link.latest_transaction_date
            ):
                link.latest_transaction_date = result.latest_transaction_date
            link.sync_problem = result.problem
            repository.session.add(link)
    repository.session.add(connection)
    return True


def _summary(event: SyncCompleted) -> str | None:
    parts = []
    if event.failed:
        parts.append(f"{event.failed} transaction(s) were refused by Xero")
    if event.remaining:
        parts.append(f"{event.remaining} will be sent in the next sync (Xero's daily limit)")
    return "; ".join(parts) or None
