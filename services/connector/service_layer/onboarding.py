"""Connect: from the user's *Sync* to a linked connection (DESIGN §3, Connect).

`start` records what the user asked for under a fresh `state` and PKCE verifier and sends
them to Xero; `complete` takes Xero's answer back: single-use state, code exchange, the
tenant of this authorization (`GET /connections?authEventId=`), the organisation check,
then one link per chosen account. Xero calls happen outside any database transaction; the
connection, its links, its sealed tokens and its event are committed together at the end.
"""

import base64
import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.connector.adapters.crypto import TokenCipher
from services.connector.adapters.orm import Connection, ConnectionAccount, OAuthState
from services.connector.adapters.repository import Repository
from services.connector.adapters.xero import Organisation, TokenSet, XeroClient, XeroConnection
from services.connector.domain import rules
from services.connector.metrics import ConnectorMetrics
from services.connector.service_layer.events import publish_connection
from services.connector.service_layer.linking import AccountLinker, LinkResult
from services.connector.service_layer.tokens import store
from services.connector.service_layer.withdraw import withdraw_unused
from shared.logging import get_logger
from shared.xero_http import XeroError

log = get_logger(__name__)


@dataclass(frozen=True)
class Connected:
    connection_id: uuid.UUID
    org_name: str
    failed: list[LinkResult] = field(default_factory=list)
    resumed: bool = False


@dataclass(frozen=True)
class Refused:
    refusal: rules.Refusal


def state_hash(state: str) -> bytes:
    return hashlib.sha256(state.encode()).digest()


def code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Onboarding:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        xero: XeroClient,
        cipher: TokenCipher,
        metrics: ConnectorMetrics,
        *,
        sink: str,
        redirect_uri: str,
        scopes: Sequence[str],
        state_ttl: timedelta,
        on_committed: Callable[[], None],
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self._sessions = sessions
        self._xero = xero
        self._cipher = cipher
        self._metrics = metrics
        self._sink = sink
        self._redirect_uri = redirect_uri
        self._scopes = tuple(scopes)
        self._state_ttl = state_ttl
        self._on_committed = on_committed
        self._today = today

    async def start(
        self, *, entity_id: str, user_id: str, account_ids: Sequence[str], start_date: str | None
    ) -> str:
        """Validate the request, remember it under a new state; Xero's authorize URL."""
        chosen_date = rules.parse_start_date(start_date, self._today())
        async with self._sessions() as session, session.begin():
            repository = Repository(session)
            live = await repository.live_connection(entity_id)
            if live is not None and live.status == "active":
                raise rules.AlreadyConnected(
                    f"This entity is already connected to {live.tenant_name}. Disconnect it "
                    "first to connect another organisation."
                )
            open_accounts = {
                a.account_id for a in await repository.entity_accounts(entity_id) if not a.closed
            }
            wanted = list(dict.fromkeys(account_ids))
            if not wanted:
                raise rules.RequestRefused("Choose at least one account to send to Xero.")
            if unknown := [a for a in wanted if a not in open_accounts]:
                raise rules.RequestRefused(
                    f"{len(unknown)} of the chosen accounts is not an open account of this "
                    "entity; reload the page and choose again."
                )
            state = secrets.token_urlsafe(32)
            verifier = secrets.token_urlsafe(64)
            now = datetime.now(UTC)
            hashed = state_hash(state)
            session.add(
                OAuthState(
                    state_hash=hashed,
                    entity_id=entity_id,
                    user_id=user_id,
                    sealed_verifier=self._cipher.encrypt(verifier.encode(), associated_data=hashed),
                    account_ids=wanted,
                    sync_start_date=chosen_date,
                    created_at=now,
                    expires_at=now + self._state_ttl,
                )
            )
            await repository.purge_states(now - timedelta(days=1))
        return self._xero.authorize_url(
            redirect_uri=self._redirect_uri,
            state=state,
            code_challenge=code_challenge(verifier),
            scopes=self._scopes,
        )

    async def take_state(self, state: str | None, *, entity_id: str) -> OAuthState | None:
        """The entity's pending authorization this `state` names, consumed; None if there
        is none; `rules.NotYours` if it belongs to another entity."""
        if not state or len(state) > 200:
            return None
        async with self._sessions() as session, session.begin():
            return await Repository(session).take_state(
                state_hash(state), datetime.now(UTC), entity_id=entity_id
            )

    async def complete(
        self, pending: OAuthState, *, code: str | None, error: str | None
    ) -> Connected | Refused:
        """Finish the authorization `pending` describes (its state already consumed)."""
        if error or not code:
            outcome = rules.CONSENT_DENIED if error == "access_denied" or not code else None
            self._metrics.connects.labels(outcome="denied").inc()
            return Refused(outcome or _xero_said_no(error))
        verifier = self._cipher.decrypt(
            pending.sealed_verifier, associated_data=pending.state_hash
        ).decode()
        tokens = await self._xero.exchange_code(
            code, code_verifier=verifier, redirect_uri=self._redirect_uri
        )
        tenants = await self._xero.connections(
            tokens.access_token, auth_event_id=tokens.auth_event_id
        )
        if not tenants:
            await self._give_back(tokens, tenants)
            self._metrics.connects.labels(outcome="no_tenant").inc()
            return Refused(rules.NO_ORGANISATION)
        tenant, extra = tenants[0], tenants[1:]
        if extra:  # one entity feeds one organisation; give back the others
            await self._give_back(tokens, extra, revoke=False)
        organisation = await self._xero.organisation(tokens.access_token, tenant.tenant_id)
        refusal = rules.organisation_refusal(
            organisation.name, organisation.edition, organisation.status
        )
        if refusal is not None:
            await self._give_back(tokens, [tenant])
            self._metrics.connects.labels(outcome=refusal.kind).inc()
            return Refused(refusal)
        linker = AccountLinker(self._xero, tokens.access_token, tenant.tenant_id, organisation)
        async with self._sessions() as session:
            repository = Repository(session)
            live = await repository.live_connection(pending.entity_id)
            accounts = {
                a.account_id: a for a in await repository.entity_accounts(pending.entity_id)
            }
            previous = await repository.resumable_connection(pending.entity_id, tenant.tenant_id)
            previous_links = (
                {link.account_id: link for link in await repository.links(previous.id)}
                if previous is not None
                else {}
            )
        if live is not None and live.status == "active":
            # Another authorization of this entity finished first (two tabs): nothing is
            # linked into this organisation, and the first connection stands.
            await self._give_back(tokens, [tenant])
            raise _already_connected(live)
        results = [
            await linker.link(accounts[account_id], self._sink, previous_links.get(account_id))
            for account_id in pending.account_ids
            if account_id in accounts
        ]
        try:
            connected = await self._commit(pending, tokens, tenant.id, organisation, results)
        except rules.AlreadyConnected:
            await self._give_back(tokens, [tenant])
            raise
        self._metrics.connects.labels(outcome="connected").inc()
        self._on_committed()
        return connected

    async def _commit(
        self,
        pending: OAuthState,
        tokens: TokenSet,
        xero_connection_id: uuid.UUID,
        organisation: Organisation,
        results: list[LinkResult],
    ) -> Connected:
        now = datetime.now(UTC)
        try:
            async with self._sessions() as session, session.begin():
                repository = Repository(session)
                live = await repository.live_connection(pending.entity_id, lock=True)
                if live is not None and live.status == "active":
                    # Only a race gets here (start refuses an active entity): the other
                    # authorization won, to this organisation or another one.
                    raise _already_connected(live)
                if live is not None and live.tenant_id != organisation.tenant_id:
                    # Reconnecting to another organisation ends the one that needed the user.
                    live.status, live.status_reason = "disconnected", rules.DISCONNECTED_BY_USER
                    await repository.drop_tokens(live.id)
                    await publish_connection(repository, "disconnected", live, reason="user")
                connection = await repository.resumable_connection(
                    pending.entity_id, organisation.tenant_id, lock=True
                )
                resumed = connection is not None
                if connection is None:
                    connection = Connection(
                        id=uuid.uuid4(),
                        entity_id=pending.entity_id,
                        tenant_id=organisation.tenant_id,
                        tenant_name=organisation.name,
                        org_timezone=organisation.timezone_iana,
                        base_currency=organisation.base_currency,
                        sink=self._sink,
                        sync_start_date=pending.sync_start_date,
                        status="active",
                        connected_by=pending.user_id,
                        connected_at=now,
                    )
                    session.add(connection)
                    await session.flush()
                else:
                    # A resumed connection keeps its sink: the accounts in Xero were fed that way.
                    connection.tenant_name = organisation.name
                    connection.org_timezone = organisation.timezone_iana
                    connection.base_currency = organisation.base_currency
                    connection.sync_start_date = min(
                        connection.sync_start_date, pending.sync_start_date
                    )
                    connection.connected_by = pending.user_id
                    connection.connected_at = now
                connection.status, connection.status_reason = "active", None
                connection.xero_connection_id = xero_connection_id
                await _save_links(repository, connection.id, results)
                store(
                    repository,
                    self._cipher,
                    connection.id,
                    tokens,
                    await repository.tokens(connection.id),
                )
                await publish_connection(repository, "established", connection)
        except sa_exc.IntegrityError as error:
            # Two authorizations of one entity finished together; the other one won.
            raise rules.AlreadyConnected(
                "This entity was connected to Xero a moment ago; reload the page."
            ) from error
        log.info(
            "connected",
            connection_id=str(connection.id),
            tenant_id=str(organisation.tenant_id),
            linked=sum(r.link.status == "linked" for r in results),
            failed=sum(r.link.status == "failed" for r in results),
            resumed=resumed,
        )
        return Connected(
            connection_id=connection.id,
            org_name=organisation.name,
            failed=[r for r in results if r.link.status == "failed"],
            resumed=resumed,
        )

    async def _give_back(
        self, tokens: TokenSet, tenants: Sequence[XeroConnection], *, revoke: bool = True
    ) -> None:
        """Hand back what this authorization gave us and we will not use."""
        async with self._sessions() as session:
            await self._quietly(
                withdraw_unused(
                    self._xero,
                    Repository(session),
                    access_token=tokens.access_token,
                    refresh_token=tokens.refresh_token,
                    own=[tenant.id for tenant in tenants],
                    revoke=revoke,
                )
            )

    @staticmethod
    async def _quietly(call: Awaitable[object]) -> None:
        try:
            await call
        except XeroError as error:
            log.warning("Xero call failed during onboarding", error=type(error).__name__)


async def _save_links(
    repository: Repository, connection_id: uuid.UUID, results: list[LinkResult]
) -> None:
    existing = {link.account_id: link for link in await repository.links(connection_id)}
    for result in results:
        row = existing.get(result.link.account_id) or ConnectionAccount(
            connection_id=connection_id,
            account_id=result.link.account_id,
            currency=result.link.currency,
            status=result.link.status,
        )
        row.status = result.link.status
        row.currency = result.link.currency
        row.feed_connection_id = result.link.feed_connection_id
        row.xero_account_id = result.link.xero_account_id
        row.xero_account_name = result.xero_account_name
        row.problem = result.link.problem
        repository.session.add(row)
    chosen = {r.link.account_id for r in results}
    for account_id, row in existing.items():
        if account_id not in chosen and row.status != "unlinked":
            row.status, row.problem = "unlinked", None
            repository.session.add(row)


def _already_connected(live: Connection) -> rules.AlreadyConnected:
    return rules.AlreadyConnected(f"This entity is already connected to {live.tenant_name}.")


def _xero_said_no(error: str | None) -> rules.Refusal:
    return rules.Refusal(
        kind="xero_error",
        title="Xero didn't connect",
        message=f"Xero answered: {(error or 'no code')[:100]}.",
        advice="Press Sync to try again. If it keeps happening, contact support.",
    )
