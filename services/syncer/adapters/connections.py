"""The connections replica: the latest `xero.connections.v1` state per connection."""

import uuid

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.syncer.adapters.orm import Connection, ConnectionAccount
from services.syncer.domain.connections import AccountLink, ConnectionView
from shared.contracts.xero import ConnectionDisconnected, ConnectionEstablished, ConnectionUpdated

ConnectionEvent = ConnectionEstablished | ConnectionUpdated | ConnectionDisconnected
_CONNECTIONS: Table = Connection.__table__  # type: ignore[attr-defined]
_ACCOUNTS: Table = ConnectionAccount.__table__  # type: ignore[attr-defined]


class ConnectionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def apply(self, event: ConnectionEvent) -> bool:
        """Store the event's state if it is newer than what is held; False when it is not
        (a replay, a reordering), and nothing changes."""
        values = {
            "connection_id": event.connection_id,
            "version": event.version,
            "entity_id": event.entity_id,
            "tenant_id": event.tenant_id,
            "tenant_name": event.tenant_name,
            "org_timezone": event.org_timezone,
            "base_currency": event.base_currency,
            "sink": event.sink,
            "sync_start_date": event.sync_start_date,
            "status": event.status,
        }
        proposed = insert(_CONNECTIONS).values(values)
        statement = proposed.on_conflict_do_update(
            index_elements=[_CONNECTIONS.c.connection_id],
            set_={
                **{k: proposed.excluded[k] for k in values},
                "updated_at": proposed.excluded.updated_at,
            },
            where=_CONNECTIONS.c.version < proposed.excluded.version,
        ).returning(_CONNECTIONS.c.connection_id)
        connection = await self._session.connection()
        stored = (await connection.execute(statement)).first()
        if stored is None:
            return False
        await connection.execute(
            delete(_ACCOUNTS).where(_ACCOUNTS.c.connection_id == event.connection_id)
        )
        if event.accounts:
            await connection.execute(
                insert(_ACCOUNTS),
                [
                    {
                        "connection_id": event.connection_id,
                        "account_id": account.account_id,
                        "currency": account.currency,
                        "status": account.status,
                        "feed_connection_id": account.feed_connection_id,
                        "xero_account_id": account.xero_account_id,
                    }
                    for account in event.accounts
                ],
            )
        return True

    async def load(self, connection_id: uuid.UUID) -> ConnectionView | None:
        connection = await self._session.connection()
        row = (
            await connection.execute(
                select(_CONNECTIONS).where(_CONNECTIONS.c.connection_id == connection_id)
            )
        ).first()
        if row is None:
            return None
        accounts = await connection.execute(
            select(_ACCOUNTS)
            .where(_ACCOUNTS.c.connection_id == connection_id)
            .order_by(_ACCOUNTS.c.account_id)
        )
        return ConnectionView(
            connection_id=row.connection_id,
            version=row.version,
            entity_id=row.entity_id,
            tenant_id=row.tenant_id,
            org_timezone=row.org_timezone,
            sink=row.sink,
            sync_start_date=row.sync_start_date,
            status=row.status,
            accounts=tuple(
                AccountLink(
                    account_id=a.account_id,
                    currency=a.currency,
                    status=a.status,
                    feed_connection_id=a.feed_connection_id,
                    xero_account_id=a.xero_account_id,
                )
                for a in accounts
            ),
        )
