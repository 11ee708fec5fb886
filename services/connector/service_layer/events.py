"""Events the connector publishes, written to the outbox in the transaction that makes the
change they report (the relay publishes them afterwards)."""

from datetime import UTC, datetime
from typing import Literal

from services.connector.adapters.orm import Connection, ConnectionAccount
from services.connector.adapters.repository import Repository
from shared.contracts.base import Event
from shared.contracts.topics import XERO_CONNECTIONS, XERO_SYNC_REQUESTS, TopicSpec
from shared.contracts.xero import (
    AccountMapping,
    ConnectionDisconnected,
    ConnectionEstablished,
    ConnectionUpdated,
    DisconnectReason,
    SyncRequested,
)

SnapshotKind = Literal["established", "updated", "disconnected"]


def mapping(link: ConnectionAccount) -> AccountMapping:
    return AccountMapping(
        account_id=link.account_id,
        currency=link.currency,
        status=link.status,  # type: ignore[arg-type]  # checked by the table's constraint
        feed_connection_id=link.feed_connection_id,
        xero_account_id=link.xero_account_id,
        problem=link.problem,
    )


def snapshot(
    kind: SnapshotKind,
    connection: Connection,
    links: list[ConnectionAccount],
    *,
    reason: DisconnectReason | None = None,
) -> ConnectionEstablished | ConnectionUpdated | ConnectionDisconnected:
    fields = {
        "connection_id": connection.id,
        "version": connection.version,
        "entity_id": connection.entity_id,
        "tenant_id": connection.tenant_id,
        "tenant_name": connection.tenant_name,
        "org_timezone": connection.org_timezone,
        "base_currency": connection.base_currency,
        "sink": connection.sink,
        "sync_start_date": connection.sync_start_date,
        "status": connection.status,
        "status_reason": connection.status_reason,
        "accounts": [mapping(link) for link in links],
    }
    if kind == "established":
        return ConnectionEstablished.model_validate(fields)
    if kind == "updated":
        return ConnectionUpdated.model_validate(fields)
    return ConnectionDisconnected.model_validate(fields | {"reason": reason or "admin"})


def _enqueue(repository: Repository, spec: TopicSpec, event: Event) -> None:
    repository.enqueue(spec.name, spec.key_of(event).decode(), event.model_dump_json().encode())


async def publish_connection(
    repository: Repository,
    kind: SnapshotKind,
    connection: Connection,
    *,
    reason: DisconnectReason | None = None,
) -> None:
    """Bump the connection's version and enqueue its whole state: every change of a
    connection goes through here, so versions grow by one per published change."""
    connection.version += 1
    connection.updated_at = datetime.now(UTC)
    repository.session.add(connection)
    await repository.session.flush()
    links = await repository.links(connection.id)
    _enqueue(repository, XERO_CONNECTIONS, snapshot(kind, connection, links, reason=reason))


def publish_sync_request(repository: Repository, connection: Connection, user_id: str) -> None:
    event = SyncRequested(
        connection_id=connection.id, entity_id=connection.entity_id, requested_by=user_id
    )
    _enqueue(repository, XERO_SYNC_REQUESTS, event)
