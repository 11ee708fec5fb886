"""Posting state: what each organisation holds of each transaction, the requests in
flight, and each account's cursor. The dedup scope is (tenant, transaction_id)."""

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, and_, exists, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.syncer.adapters.orm import (
    AccountCursor,
    BankTransaction,
    Posting,
    PostingBatch,
)
from services.syncer.domain.posting import Pending

_TX: Table = BankTransaction.__table__  # type: ignore[attr-defined]
_POSTINGS: Table = Posting.__table__  # type: ignore[attr-defined]
_BATCHES: Table = PostingBatch.__table__  # type: ignore[attr-defined]
_CURSORS: Table = AccountCursor.__table__  # type: ignore[attr-defined]
_PENDING_COLUMNS = tuple(f.name for f in dataclasses.fields(Pending))


@dataclass(frozen=True)
class Settled:
    """What Xero said of one transaction of a batch."""

    transaction_id: str
    state: str  # posted | failed
    xero_id: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class StoredBatch:
    batch_id: uuid.UUID
    connection_id: uuid.UUID
    account_id: str
    sink: str
    method: str
    path: str
    params: dict[str, str]
    body: bytes
    idempotency_key: str
    transaction_ids: list[str]
    end_balance: Decimal | None
    created_at: datetime


_STORED = tuple(f.name for f in dataclasses.fields(StoredBatch))


@dataclass(frozen=True)
class CursorMove:
    """The last transaction of a batch that Xero now holds."""

    booked_at: datetime
    transaction_id: str
    local_date: date


@dataclass(frozen=True)
class Cursor:
    last_booked_at: datetime
    last_transaction_id: str
    end_balance: Decimal | None
    latest_date: date


def _unposted(tenant_id: uuid.UUID) -> Any:
    return ~exists().where(
        _POSTINGS.c.tenant_id == tenant_id, _POSTINGS.c.transaction_id == _TX.c.transaction_id
    )


class PostingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def pending(
        self,
        *,
        tenant_id: uuid.UUID,
        entity_id: str,
        account_id: str,
        booked_from: datetime,
        booked_until: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Pending]:
        """The account's next unposted transactions in posting order (booked_at, then
        transaction_id), from `after` (exclusive) or from the start of the window."""
        conditions = [
            _TX.c.account_id == account_id,
            _TX.c.entity_id == entity_id,  # one entity's money reaches only its organisation
            _TX.c.booked_at >= booked_from,
            _TX.c.booked_at < booked_until,
            _unposted(tenant_id),
        ]
        if after is not None:
            conditions.append(tuple_(_TX.c.booked_at, _TX.c.transaction_id) > tuple_(*after))
        statement = (
            select(*(_TX.c[name] for name in _PENDING_COLUMNS))
            .where(and_(*conditions))
            .order_by(_TX.c.booked_at, _TX.c.transaction_id)
            .limit(limit)
        )
        connection = await self._session.connection()
        rows = await connection.execute(statement)
        return [Pending(**row._mapping) for row in rows]

    async def count_pending(
        self,
        *,
        tenant_id: uuid.UUID,
        entity_id: str,
        account_id: str,
        booked_from: datetime,
    ) -> int:
        """Every unposted transaction of the account from the window's start, including
        those booked 'tomorrow' in the organisation's time zone."""
        connection = await self._session.connection()
        count = await connection.scalar(
            select(func.count()).where(
                _TX.c.account_id == account_id,
                _TX.c.entity_id == entity_id,
                _TX.c.booked_at >= booked_from,
                _unposted(tenant_id),
            )
        )
        return int(count or 0)

    async def record_batch(self, stored: StoredBatch, *, tenant_id: uuid.UUID) -> None:
        """The request, stored before it is sent, and its transactions marked `sending`
        in this organisation: no other batch may take them (the primary key refuses)."""
        connection = await self._session.connection()
        row = dataclasses.asdict(stored)
        await connection.execute(
            insert(_BATCHES).values(**row, tenant_id=tenant_id, state="sending")
        )
        await connection.execute(
            insert(_POSTINGS),
            [
                {
                    "tenant_id": tenant_id,
                    "transaction_id": transaction_id,
                    "connection_id": stored.connection_id,
                    "account_id": stored.account_id,
                    "batch_id": stored.batch_id,
                    "state": "sending",
                    "updated_at": stored.created_at,
                }
                for transaction_id in stored.transaction_ids
            ],
        )

    async def sending(self, tenant_id: uuid.UUID) -> list[StoredBatch]:
        """Requests of this organisation whose outcome is unknown (sent, no answer kept),
        oldest first."""
        connection = await self._session.connection()
        rows = await connection.execute(
            select(_BATCHES)
            .where(_BATCHES.c.tenant_id == tenant_id, _BATCHES.c.state == "sending")
            .order_by(_BATCHES.c.created_at)
        )
        return [StoredBatch(**{name: row._mapping[name] for name in _STORED}) for row in rows]

    async def settle(
        self,
        batch_id: uuid.UUID,
        *,
        tenant_id: uuid.UUID,
        account_id: str,
        outcomes: Sequence[Settled],
        http_status: int | None,
        message: str | None,
        end_balance: Decimal | None,
        last_posted: "CursorMove | None",
        now: datetime,
    ) -> None:
        """Xero answered: each transaction posted or failed, the batch done (or failed
        when nothing of it stands), and the account's cursor moved to the last posted."""
        connection = await self._session.connection()
        for state in ("posted", "failed"):
            chosen = [o for o in outcomes if o.state == state]
            if not chosen:
                continue
            await connection.execute(
                text(
                    "UPDATE postings AS p SET state = :state, xero_id = o.xero_id, "
                    "message = o.message, updated_at = :now "
                    "FROM unnest(CAST(:ids AS text[]), CAST(:xero_ids AS text[]), "
                    "CAST(:messages AS text[])) AS o(transaction_id, xero_id, message) "
                    "WHERE p.tenant_id = :tenant AND p.transaction_id = o.transaction_id"
                ),
                {
                    "state": state,
                    "now": now,
                    "tenant": tenant_id,
                    "ids": [o.transaction_id for o in chosen],
                    "xero_ids": [o.xero_id for o in chosen],
                    "messages": [o.message for o in chosen],
                },
            )
        posted = [o.transaction_id for o in outcomes if o.state == "posted"]
        await connection.execute(
            update(_BATCHES)
            .where(_BATCHES.c.batch_id == batch_id)
            .values(
                state="done" if posted else "failed",
                answered_at=now,
                http_status=http_status,
                message=message,
            )
        )
        if posted and last_posted is not None:
            await self._advance_cursor(tenant_id, account_id, last_posted, end_balance, now)

    async def release(
        self, batch_id: uuid.UUID, transaction_ids: Sequence[str], now: datetime
    ) -> None:
        """Give transactions of a batch back to the queue (Xero never took them: checked),
        closing the batch."""
        connection = await self._session.connection()
        if transaction_ids:
            await connection.execute(
                _POSTINGS.delete().where(
                    _POSTINGS.c.batch_id == batch_id,
                    _POSTINGS.c.transaction_id.in_(list(transaction_ids)),
                    _POSTINGS.c.state == "sending",
                )
            )
        await connection.execute(
            update(_BATCHES)
            .where(_BATCHES.c.batch_id == batch_id, _BATCHES.c.state == "sending")
            .values(
                state="done", answered_at=now, message="checked in Xero after an unknown outcome"
            )
        )

    async def _advance_cursor(
        self,
        tenant_id: uuid.UUID,
        account_id: str,
        last: CursorMove,
        end_balance: Decimal | None,
        now: datetime,
    ) -> None:
        """Move the cursor forward only: a late straggler posted after later transactions
        does not pull it back."""
        connection = await self._session.connection()
        statement = insert(_CURSORS).values(
            tenant_id=tenant_id,
            account_id=account_id,
            last_booked_at=last.booked_at,
            last_transaction_id=last.transaction_id,
            end_balance=end_balance,
            latest_date=last.local_date,
            updated_at=now,
        )
        newer = tuple_(_CURSORS.c.last_booked_at, _CURSORS.c.last_transaction_id) < tuple_(
            statement.excluded.last_booked_at, statement.excluded.last_transaction_id
        )
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=[_CURSORS.c.tenant_id, _CURSORS.c.account_id],
                set_={
                    name: statement.excluded[name]
                    for name in (
                        "last_booked_at",
                        "last_transaction_id",
                        "end_balance",
                        "latest_date",
                        "updated_at",
                    )
                },
                where=newer,
            )
        )

    async def load(self, transaction_ids: Sequence[str]) -> list[Pending]:
        """Transactions by id, in posting order."""
        connection = await self._session.connection()
        rows = await connection.execute(
            select(*(_TX.c[name] for name in _PENDING_COLUMNS))
            .where(_TX.c.transaction_id.in_(list(transaction_ids)))
            .order_by(_TX.c.booked_at, _TX.c.transaction_id)
        )
        return [Pending(**row._mapping) for row in rows]

    async def cursors(self, tenant_id: uuid.UUID, account_ids: Sequence[str]) -> dict[str, Cursor]:
        connection = await self._session.connection()
        rows = await connection.execute(
            select(_CURSORS).where(
                _CURSORS.c.tenant_id == tenant_id, _CURSORS.c.account_id.in_(list(account_ids))
            )
        )
        return {
            row.account_id: Cursor(
                last_booked_at=row.last_booked_at,
                last_transaction_id=row.last_transaction_id,
                end_balance=row.end_balance,
                latest_date=row.latest_date,
            )
            for row in rows
        }

    async def pending_gauges(self) -> tuple[int, datetime | None]:
        """(how many, oldest ingested_at) of transactions that linked accounts of active
        connections have not posted yet, over every organisation."""
        connection = await self._session.connection()
        row = (
            await connection.execute(
                text(
                    "SELECT count(*) AS pending, min(t.ingested_at) AS oldest "
                    "FROM connections c "
                    "JOIN connection_accounts a ON a.connection_id = c.connection_id "
                    "AND a.status = 'linked' "
                    "JOIN bank_transactions t ON t.account_id = a.account_id "
                    "AND t.entity_id = c.entity_id "
                    "AND t.booked_at >= (c.sync_start_date::timestamp AT TIME ZONE c.org_timezone) "
                    "WHERE c.status = 'active' AND NOT EXISTS (SELECT 1 FROM postings p "
                    "WHERE p.tenant_id = c.tenant_id AND p.transaction_id = t.transaction_id)"
                )
            )
        ).one()
        return int(row.pending), row.oldest
