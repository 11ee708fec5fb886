"""Storage of ingested transactions."""

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.syncer.adapters.orm import BankTransaction

_TABLE = BankTransaction.__table__  # type: ignore[attr-defined]


class TransactionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert_new(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Insert the rows whose transaction_id is not stored yet; return the ids inserted.

        One statement per batch: `ON CONFLICT DO NOTHING` makes concurrent ingesters and
        redelivered records harmless.
        """
        if not rows:
            return set()
        statement = (
            insert(_TABLE)
            .on_conflict_do_nothing(index_elements=[_TABLE.c.transaction_id])
            .returning(_TABLE.c.transaction_id)
        )
        connection = await self._session.connection()
        result = await connection.execute(statement, list(rows))
        return set(result.scalars().all())

    async def content_hashes(self, transaction_ids: Collection[str]) -> dict[str, bytes]:
        if not transaction_ids:
            return {}
        statement = select(_TABLE.c.transaction_id, _TABLE.c.content_hash).where(
            _TABLE.c.transaction_id.in_(list(transaction_ids))
        )
        connection = await self._session.connection()
        result = await connection.execute(statement)
        return {row.transaction_id: row.content_hash for row in result}
