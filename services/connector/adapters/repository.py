"""The connector's storage: one repository over one session (one transaction)."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Executable, Table, delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.connector.adapters.orm import (
    BankAccount,
    Connection,
    ConnectionAccount,
    OAuthState,
    OutboxMessage,
    StoredTokens,
)
from services.connector.domain import rules
from shared.contracts.bank import AccountClosed, AccountOpened, AccountUpdated

LIVE = ("active", "needs_user")
_ACCOUNTS: Table = BankAccount.__table__  # type: ignore[attr-defined]


class Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _execute(self, statement: Executable) -> None:
        await (await self.session.connection()).execute(statement)

    # ------------------------------------------------------------------ accounts directory

    async def apply_account_event(
        self, event: AccountOpened | AccountUpdated | AccountClosed
    ) -> None:
        """Upsert the account; an event older than what is stored changes nothing."""
        values = {
            "account_id": event.account_id,
            "entity_id": event.entity_id,
            "currency": event.currency,
            "name": event.name,
            "account_number": event.account_number,
            "closed": isinstance(event, AccountClosed),
            "event_occurred_at": event.occurred_at,
        }
        statement = insert(_ACCOUNTS).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[_ACCOUNTS.c.account_id],
            set_={
                **{name: statement.excluded[name] for name in values if name != "account_id"},
                "updated_at": func.now(),
            },
            where=_ACCOUNTS.c.event_occurred_at <= statement.excluded.event_occurred_at,
        )
        await self._execute(statement)

    async def entity_accounts(self, entity_id: str) -> list[BankAccount]:
        found = await self.session.exec(
            select(BankAccount)
            .where(BankAccount.entity_id == entity_id)
            .order_by(col(BankAccount.currency), col(BankAccount.name))
        )
        return list(found)

    # ------------------------------------------------------------------------- connections

    async def connection(
        self, connection_id: uuid.UUID, *, lock: bool = False
    ) -> Connection | None:
        query = select(Connection).where(Connection.id == connection_id)
        if lock:
            query = query.with_for_update()
        return (await self.session.exec(query)).first()

    async def live_connection(self, entity_id: str, *, lock: bool = False) -> Connection | None:
        """The entity's connection that is active or needs the user (at most one)."""
        query = select(Connection).where(
            Connection.entity_id == entity_id, col(Connection.status).in_(LIVE)
        )
        if lock:
            query = query.with_for_update()
        return (await self.session.exec(query)).first()

    async def latest_connection(self, entity_id: str) -> Connection | None:
        found = await self.session.exec(
            select(Connection)
            .where(Connection.entity_id == entity_id)
            .order_by(col(Connection.updated_at).desc())
            .limit(1)
        )
        return found.first()

    async def resumable_connection(
        self, entity_id: str, tenant_id: uuid.UUID, *, lock: bool = False
    ) -> Connection | None:
        """The entity's most recent connection to this organisation: reconnecting resumes it
        (same connection id, same account links), so nothing is posted twice."""
        query = (
            select(Connection)
            .where(Connection.entity_id == entity_id, Connection.tenant_id == tenant_id)
            .order_by(col(Connection.updated_at).desc())
            .limit(1)
        )
        if lock:
            query = query.with_for_update()
        return (await self.session.exec(query)).first()

    async def active_connection_ids(self) -> list[uuid.UUID]:
        found = await self.session.exec(select(Connection.id).where(Connection.status == "active"))
        return list(found)

    async def live_xero_connection_ids(self, *, excluding: uuid.UUID | None) -> set[uuid.UUID]:
        """Xero `/connections` ids that live connections (other than `excluding`) rely on."""
        query = select(Connection.xero_connection_id).where(col(Connection.status).in_(LIVE))
        if excluding is not None:
            query = query.where(Connection.id != excluding)
        return {value for value in await self.session.exec(query) if value is not None}

    async def count_by_status(self) -> dict[str, int]:
        found = await self.session.exec(
            select(Connection.status, func.count()).group_by(col(Connection.status))
        )
        return {status: int(count) for status, count in found.all()}

    async def links(self, connection_id: uuid.UUID) -> list[ConnectionAccount]:
        found = await self.session.exec(
            select(ConnectionAccount)
            .where(ConnectionAccount.connection_id == connection_id)
            .order_by(col(ConnectionAccount.currency), col(ConnectionAccount.account_id))
        )
        return list(found)

    # ------------------------------------------------------------------------------ tokens

    async def tokens(self, connection_id: uuid.UUID) -> StoredTokens | None:
        return await self.session.get(StoredTokens, connection_id, populate_existing=True)

    async def drop_tokens(self, connection_id: uuid.UUID) -> None:
        await self._execute(
            delete(StoredTokens).where(col(StoredTokens.connection_id) == connection_id)
        )

    # ------------------------------------------------------------------------ OAuth states

    async def take_state(
        self, state_hash: bytes, now: datetime, *, entity_id: str
    ) -> OAuthState | None:
        """Consume an unexpired, unused state of this entity; None when there is none (used,
        expired, forged). The row lock makes it single-use even under concurrent callbacks.
        Another entity's state is refused without being spent, so its owner can finish."""
        query = select(OAuthState).where(OAuthState.state_hash == state_hash).with_for_update()
        row = (await self.session.exec(query)).first()
        if row is None or row.consumed_at is not None or row.expires_at <= now:
            return None
        if row.entity_id != entity_id:
            raise rules.NotYours("This Xero sign-in was started for another business.")
        row.consumed_at = now
        self.session.add(row)
        return row

    async def purge_states(self, before: datetime) -> None:
        await self._execute(delete(OAuthState).where(col(OAuthState.expires_at) < before))

    # ------------------------------------------------------------------------------ outbox

    def enqueue(self, topic: str, key: str, payload: bytes) -> None:
        self.session.add(OutboxMessage(topic=topic, key=key, payload=payload))

    async def outbox_batch(self, limit: int) -> Sequence[OutboxMessage]:
        found = await self.session.exec(
            select(OutboxMessage).order_by(col(OutboxMessage.id)).limit(limit)
        )
        return list(found)

    async def outbox_done(self, ids: Sequence[int]) -> None:
        await self._execute(delete(OutboxMessage).where(col(OutboxMessage.id).in_(ids)))
