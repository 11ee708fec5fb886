"""Ending connections: from our app (the user), and from Xero's side (noticed by us).

From our app: revoke the refresh token (which ends the grant's connections at Xero), delete
our `/connections` entry, mark the connection disconnected, publish. Pressing it twice, or
after Xero already forgot us, ends the same way. Xero being unreachable does not keep the
user connected against their will: the connection ends here and the user is told to remove
the app in Xero if it is still listed there.

From Xero's side: a live connection that `GET /connections` no longer lists (or that Xero
answers with 401/403), or whose linked account or feed is archived, deleted or gone, is
marked as needing the user, published, and explained on the page. An account marked so whose
bank account the user restores in Xero (feed and account live again) is linked again by the
same check, and published: its waiting transactions go at the next sync.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.connector.adapters.crypto import TokenCipher
from services.connector.adapters.orm import Connection, ConnectionAccount
from services.connector.adapters.repository import Repository
from services.connector.adapters.xero import XeroClient
from services.connector.domain import rules
from services.connector.service_layer.events import publish_connection
from services.connector.service_layer.tokens import (
    AccessGrant,
    ConnectionUnavailable,
    TokenService,
    mark_needs_user,
    unseal,
)
from services.connector.service_layer.withdraw import withdraw_unused
from shared.logging import get_logger
from shared.xero_http import XeroError, XeroForbidden, XeroUnauthorized

log = get_logger(__name__)


@dataclass(frozen=True)
class Disconnected:
    org_name: str
    xero_told: bool
    """False when Xero could not be reached to withdraw access."""


class Disconnector:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        xero: XeroClient,
        cipher: TokenCipher,
        tokens: TokenService,
        *,
        on_committed: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._xero = xero
        self._cipher = cipher
        self._tokens = tokens
        self._on_committed = on_committed

    async def disconnect(self, entity_id: str) -> Disconnected | None:
        """Disconnect the entity's live connection; None when it holds none (already done)."""
        async with self._sessions() as session, session.begin():
            repository = Repository(session)
            connection = await repository.live_connection(entity_id, lock=True)
            if connection is None:
                return None
            xero_told = await self._withdraw(repository, connection)
            connection.status, connection.status_reason = "disconnected", rules.DISCONNECTED_BY_USER
            await repository.drop_tokens(connection.id)
            await publish_connection(repository, "disconnected", connection, reason="user")
            org_name = connection.tenant_name
        self._on_committed()
        log.info("disconnected by the user", connection_id=str(connection.id), xero_told=xero_told)
        return Disconnected(org_name=org_name, xero_told=xero_told)

    async def _withdraw(self, repository: Repository, connection: Connection) -> bool:
        stored = await repository.tokens(connection.id)
        if stored is None:
            return True  # nothing left to withdraw: Xero had already ended it
        tokens = unseal(self._cipher, connection.id, stored.sealed)
        try:
            if connection.status != "active" or connection.xero_connection_id is None:
                await self._xero.revoke(tokens.refresh_token)
                return True
            # One event for this disconnect: a refused refresh is not published on its own
            # as `reauth_required`.
            grant = await self._tokens.refresh_locked(repository, connection.id, mark_refusal=False)
            stored = await repository.tokens(connection.id)  # the refresh may rotate it
            if stored is not None:
                tokens = unseal(self._cipher, connection.id, stored.sealed)
            await withdraw_unused(
                self._xero,
                repository,
                access_token=grant.access_token,
                refresh_token=tokens.refresh_token,
                own=[connection.xero_connection_id],
                excluding=connection.id,
            )
        except ConnectionUnavailable:
            return True  # Xero refused the refresh: the grant is gone already
        except (XeroUnauthorized, XeroForbidden):
            return True
        except XeroError as error:
            log.warning("could not withdraw access in Xero", error=type(error).__name__)
            return False
        return True


class XeroSideWatch:
    """Notices what the user did inside Xero, and marks the connection or the account."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        xero: XeroClient,
        tokens: TokenService,
        *,
        on_committed: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._xero = xero
        self._tokens = tokens
        self._on_committed = on_committed

    async def check_all(self) -> None:
        async with self._sessions() as session:
            ids = await Repository(session).active_connection_ids()
        for connection_id in ids:
            try:
                await self.check(connection_id)
            except XeroError as error:  # Xero down: try again at the next round
                log.warning("connection check failed", error=type(error).__name__)

    async def check(self, connection_id: uuid.UUID) -> str:
        """Verify one connection against Xero; what was found (`ok`, `revoked_in_xero`,
        `needs_user`, `inactive`, or `accounts_changed`: linked accounts gone in Xero, or
        accounts needing the user restored there)."""
        try:
            grant = await self._tokens.access_token(connection_id)
        except ConnectionUnavailable as unavailable:
            return "inactive" if unavailable.status != "needs_user" else "needs_user"
        try:
            tenants = await self._xero.connections(grant.access_token)
            listed = any(t.tenant_id == grant.tenant_id for t in tenants)
        except (XeroUnauthorized, XeroForbidden):
            listed = False
        if not listed:
            await self._mark(connection_id, rules.REVOKED_IN_XERO)
            return "revoked_in_xero"
        return "accounts_changed" if await self._check_accounts(connection_id, grant) else "ok"

    async def _mark(self, connection_id: uuid.UUID, text: str) -> None:
        async with self._sessions() as session, session.begin():
            repository = Repository(session)
            connection = await repository.connection(connection_id, lock=True)
            if connection is None:
                return
            await mark_needs_user(repository, connection, text, reason="revoked_in_xero")
        self._on_committed()
        log.warning("connection removed on Xero's side", connection_id=str(connection_id))

    async def _check_accounts(self, connection_id: uuid.UUID, grant: AccessGrant) -> bool:
        """Mark linked accounts gone in Xero as needing the user, and link again those the
        user restored in Xero; publish the connection once if any changed."""
        async with self._sessions() as session:
            repository = Repository(session)
            connection = await repository.connection(connection_id)
            links = await repository.links(connection_id)
        if connection is None:
            return False
        gone: dict[str, str] = {}
        back: set[str] = set()
        for link in links:
            if link.status == "linked":
                what = await self._missing(connection.sink, grant, link)
                if what is not None:
                    gone[link.account_id] = rules.account_gone(link.currency, what)
            elif _restorable(connection.sink, link) and (
                await self._missing(connection.sink, grant, link) is None
            ):
                back.add(link.account_id)
        if not gone and not back:
            return False
        marked, relinked = await self._change_links(connection_id, gone, back)
        if not marked and not relinked:
            return False
        self._on_committed()
        if marked:
            log.warning(
                "linked accounts gone in Xero", connection_id=str(connection_id), accounts=marked
            )
        if relinked:
            log.info(
                "accounts restored in Xero linked again",
                connection_id=str(connection_id),
                accounts=relinked,
            )
        return True

    async def _change_links(
        self, connection_id: uuid.UUID, gone: dict[str, str], back: set[str]
    ) -> tuple[int, int]:
        """Under the connection's lock: mark `gone` (account → problem) as needing the user,
        link `back` again, publish once; (how many marked, how many linked again)."""
        async with self._sessions() as session, session.begin():
            repository = Repository(session)
            locked = await repository.connection(connection_id, lock=True)
            if locked is None or locked.status != "active":
                return 0, 0
            marked, relinked = 0, 0
            for link in await repository.links(connection_id):
                if link.account_id in gone and link.status == "linked":
                    link.status, link.problem = "needs_user", gone[link.account_id]
                    marked += 1
                elif link.account_id in back and _restorable(locked.sink, link):
                    # What the user was told (ours, and the last sync's) no longer holds.
                    link.status, link.problem, link.sync_problem = "linked", None, None
                    relinked += 1
                else:
                    continue
                session.add(link)
            if marked or relinked:  # else another check got there first
                await publish_connection(repository, "updated", locked)
        return marked, relinked

    async def _missing(self, sink: str, grant: AccessGrant, link: ConnectionAccount) -> str | None:
        """What happened to this link in Xero, in words, or None if it still stands."""
        account_id = link.xero_account_id
        if sink == "bankfeeds" and link.feed_connection_id is not None:
            feed = await self._xero.feed_connection(
                grant.access_token, grant.tenant_id, link.feed_connection_id
            )
            if feed is None:
                return "bank feed was removed"
            if feed.status is not None and feed.status.upper() not in {"ACTIVE", "PENDING"}:
                return f"bank feed is {feed.status.lower()}"
            # A feed is linked from an answer that names no account yet; Xero names it now.
            account_id = account_id or feed.account_id
        if account_id is not None:
            account = await self._xero.account(grant.access_token, grant.tenant_id, account_id)
            if account is None or account.status.upper() == "DELETED":
                return "bank account was deleted"
            if account.status.upper() == "ARCHIVED":
                return rules.ACCOUNT_ARCHIVED
        return None


def _restorable(sink: str, link: ConnectionAccount) -> bool:
    """A link marked as needing the user that still names where its transactions go (its
    feed, or its Xero bank account): linked again once Xero has it live again."""
    destination = link.feed_connection_id if sink == "bankfeeds" else link.xero_account_id
    return link.status == "needs_user" and destination is not None
