"""Storage of ingested transactions."""

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.sql.dml import Insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.syncer.adapters.orm import BankTransaction

_TABLE: Table = BankTransaction.__table__  # type: ignore[attr-defined]
# Every column we write; ingested_at takes its server default.
INSERT_COLUMNS: tuple[str, ...] = tuple(c.name for c in _TABLE.columns if c.name != "ingested_at")


def _bulk_insert() -> Insert:
    """INSERT ... SELECT FROM unnest(:col1, :col2, ...) ON CONFLICT DO NOTHING RETURNING id.

    One statement, one round trip and one parameter per column whatever the batch size,
    where a multi-row VALUES list would bind rows x columns parameters. Built once; the
    statement cache keeps its compiled form.
    """
    arrays = [bindparam(name, type_=ARRAY(_TABLE.c[name].type)) for name in INSERT_COLUMNS]
    rows = func.unnest(*arrays).table_valued(*INSERT_COLUMNS).render_derived(name="batch")
    return (
        insert(_TABLE)
        .from_select(list(INSERT_COLUMNS), select(*(rows.c[name] for name in INSERT_COLUMNS)))
        .on_conflict_do_nothing(index_elements=[_TABLE.c.transaction_id])
        .returning(_TABLE.c.transaction_id)
    )


_INSERT = _bulk_insert()


class TransactionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert_new(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Insert the rows whose transaction_id is not stored yet; return the ids inserted.

        `ON CONFLICT DO NOTHING` makes concurrent ingesters and redelivered records harmless.
        """
        if not rows:
            return set()
        columns = {name: [row[name] for row in rows] for name in INSERT_COLUMNS}
        connection = await self._session.connection()
        result = await connection.execute(_INSERT, columns)
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
