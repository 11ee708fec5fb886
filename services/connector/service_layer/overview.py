"""What an entity's pages show, and *Sync now*."""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, distinct, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.connector.adapters.orm import BankAccount, Connection, ConnectionAccount
from services.connector.adapters.repository import Repository
from services.connector.domain import rules
from services.connector.service_layer.events import publish_sync_request


@dataclass(frozen=True)
class Overview:
    accounts: list[BankAccount]
    connection: Connection | None
    """The live connection (active or needing the user), if any."""
    links: list[ConnectionAccount]


@dataclass(frozen=True)
class DirectoryEntity:
    entity_id: str
    currencies: list[str]


class EntityQueries:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def overview(self, entity_id: str) -> Overview:
        async with self._sessions() as session:
            repository = Repository(session)
            accounts = await repository.entity_accounts(entity_id)
            connection = await repository.live_connection(entity_id)
            links = await repository.links(connection.id) if connection is not None else []
        return Overview(accounts, connection, links)

    async def last_connection(self, entity_id: str) -> Connection | None:
        async with self._sessions() as session:
            return await Repository(session).latest_connection(entity_id)

    async def entities(self, limit: int = 50) -> list[DirectoryEntity]:
        """Entities in the accounts directory (for the development sign-in page)."""
        async with self._sessions() as session:
            found = await session.exec(
                select(BankAccount.entity_id, func.array_agg(distinct(BankAccount.currency)))
                .where(col(BankAccount.closed).is_(False))
                .group_by(col(BankAccount.entity_id))
                .order_by(col(BankAccount.entity_id))
                .limit(limit)
            )
            return [DirectoryEntity(entity, sorted(currencies)) for entity, currencies in found]


class SyncNow:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, on_committed: Callable[[], None]
    ) -> None:
        self._sessions = sessions
        self._on_committed = on_committed

    async def request(self, entity_id: str, user_id: str) -> Connection:
        async with self._sessions() as session, session.begin():
            repository = Repository(session)
            connection = await repository.live_connection(entity_id)
            if connection is None:
                raise rules.NotConnected("Connect to Xero first.")
            if connection.status != "active":
                raise rules.NotConnected(
                    connection.status_reason or "Reconnect to Xero before syncing."
                )
            publish_sync_request(repository, connection, user_id)
        self._on_committed()
        return connection
