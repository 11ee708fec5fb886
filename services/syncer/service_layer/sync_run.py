"""One sync run of one connection: post its unposted transactions to Xero, exactly once,
in order, within Xero's limits, and say how it went.

Exactly once, step by step, for every request:
1. the request (its exact bytes and an Idempotency-Key derived from them) is stored, and
   its transactions are marked `sending` in the organisation (the (tenant, transaction_id)
   key refuses a second claim), in one transaction;
2. it is sent, and sent again with the same bytes and key on 5xx, timeouts and 429s;
3. only Xero's answer moves the transactions to `posted` or `failed`.
A crash between 1 and 3 leaves the request `sending`. The next run of the connection sends
it again byte for byte (Xero answers a known key with its stored answer) while the key is
young; past `SYNCER_IDEMPOTENCY_TRUST`, Xero is checked first: Bank Feeds drops lines it
holds (a statement all of whose lines it holds is a 409 `duplicate-statement`, which is
success), and the Accounting API is searched by Reference.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from services.syncer.adapters.connections import ConnectionRepository
from services.syncer.adapters.connector_tokens import (
    AccessToken,
    ConnectionNotUsable,
    ConnectorTokens,
    TokenUnavailable,
)
from services.syncer.adapters.postings import (
    CursorMove,
    PostingRepository,
    Settled,
    StoredBatch,
)
from services.syncer.adapters.runs import RunToDo
from services.syncer.adapters.xero_api import Answer, XeroPoster, api_of
from services.syncer.config import SyncerSettings
from services.syncer.domain.connections import AccountLink, ConnectionView
from services.syncer.domain.posting import (
    Batch,
    Pending,
    bank_transactions_batch,
    element_outcomes,
    local_date,
    statement_batch,
)
from services.syncer.metrics import SyncerMetrics
from services.syncer.service_layer.pacing import AppBudget, DayBudgetSpent, TenantBudget
from services.syncer.service_layer.priority import IngestFirst
from shared.contracts.xero import AccountSyncResult, SyncCompleted, SyncFailed
from shared.db import translated_db_errors
from shared.faults import failpoint
from shared.logging import get_logger
from shared.retry import Backoff, retry_transient
from shared.xero_http import (
    XeroError,
    XeroForbidden,
    XeroNotFound,
    XeroRateLimited,
    XeroUnauthorized,
    XeroUnavailable,
)

log = get_logger(__name__)
T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]
MAX_MESSAGE = 1000

FEED_PROBLEM = (
    "Xero no longer accepts statements for this account: its bank account was archived "
    "or deleted in Xero, or its bank feed was removed. Restore an archived account in Xero "
    "and syncing resumes on its own; otherwise reconnect to Xero to link it again."
)
ACCOUNT_PROBLEM = (
    "Xero refused this account's bank account (archived, deleted or unknown in Xero). "
    "Restore it in Xero, or reconnect to link another."
)


class RunStopped(Exception):
    """The whole run must stop: `reason` is a SyncFailed reason code."""

    def __init__(self, reason: str, message: str, *, user_action_required: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message[:MAX_MESSAGE]
        self.user_action_required = user_action_required


class AccountStopped(Exception):
    """This account cannot be posted to now; the others go on."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem[:MAX_MESSAGE]


@dataclass
class AccountTally:
    posted: int = 0
    failed: int = 0
    problem: str | None = None


@dataclass
class RunOutcome:
    """What a run did; `event` is the SyncCompleted/SyncFailed to publish (None: skipped)."""

    state: str  # completed | failed | skipped
    outcome: str
    posted: int = 0
    failed: int = 0
    remaining: int = 0
    message: str | None = None
    event: SyncCompleted | SyncFailed | None = None


@dataclass
class _Run:
    todo: RunToDo
    connection: ConnectionView
    budget: TenantBudget
    token: AccessToken
    tallies: dict[str, AccountTally] = field(default_factory=dict)
    day_spent: bool = False
    refreshed: bool = False


class SyncRunner:
    def __init__(
        self,
        settings: SyncerSettings,
        sessions: Sessions,
        *,
        poster: XeroPoster,
        tokens: ConnectorTokens,
        budgets: AppBudget,
        metrics: SyncerMetrics,
        ingest_first: IngestFirst | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._ingest_first = ingest_first
        self._sessions = sessions
        self._poster = poster
        self._tokens = tokens
        self._budgets = budgets
        self._metrics = metrics
        self._now = clock
        self._db_backoff = Backoff()
        self._xero_backoff = Backoff(
            attempts=settings.retry_attempts,
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
        )

    # ------------------------------------------------------------------ the run

    async def execute(self, todo: RunToDo) -> RunOutcome:
        connection = await self._db(lambda s: ConnectionRepository(s).load(todo.connection_id))
        if connection is None or not connection.active:
            why = "unknown connection" if connection is None else f"connection {connection.status}"
            return RunOutcome(state="skipped", outcome="not_active", message=why)
        try:
            token = await self._token(connection)
        except RunStopped as stopped:
            return self._failed(todo, connection, stopped, {})
        except ConnectionNotUsable as refused:
            if refused.status != "needs_user":
                return RunOutcome(state="skipped", outcome="not_active", message=str(refused))
            needs_user = RunStopped("token_invalid", str(refused), user_action_required=True)
            return self._failed(todo, connection, needs_user, {})
        run = _Run(todo, connection, self._budgets.tenant(str(connection.tenant_id)), token)
        try:
            await self._recover(run)
            accounts = connection.postable_accounts()
            results = await asyncio.gather(
                *(self._post_account(run, link) for link in accounts), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        except RunStopped as stopped:
            return self._failed(todo, connection, stopped, run.tallies)
        return await self._completed(run)

    async def _token(self, connection: ConnectionView, *, fresh: bool = False) -> AccessToken:
        try:
            token = await retry_transient(
                lambda: self._tokens.get(connection.connection_id, fresh=fresh),
                policy=Backoff(attempts=4, base_delay=0.5, max_delay=5),
                what="get an access token",
            )
        except TokenUnavailable as error:
            raise RunStopped(
                "xero_unavailable",
                f"Could not get a Xero access token just now ({error}); the next sync "
                "will try again.",
                user_action_required=False,
            ) from error
        if token.tenant_id != connection.tenant_id:
            raise RunStopped(
                "internal_error",
                "The connector's token is for another Xero organisation than this connection.",
                user_action_required=False,
            )
        return token

    # ------------------------------------------------------------------ one account

    async def _post_account(self, run: _Run, link: AccountLink) -> None:
        tally = run.tallies.setdefault(link.account_id, AccountTally())
        connection = run.connection
        booked_from, booked_until = connection.window(self._now())
        after: tuple[datetime, str] | None = None
        limit = (
            self._settings.statement_max_lines
            if connection.sink == "bankfeeds"
            else self._settings.accounting_batch_size
        )
        while not run.day_spent:
            if self._ingest_first is not None:
                await self._ingest_first.give_way()

            async def next_pending(
                session: AsyncSession, after: tuple[datetime, str] | None = after
            ) -> list[Pending]:
                return await PostingRepository(session).pending(
                    tenant_id=connection.tenant_id,
                    entity_id=connection.entity_id,
                    account_id=link.account_id,
                    booked_from=booked_from,
                    booked_until=booked_until,
                    after=after,
                    limit=limit,
                )

            pending = await self._db(next_pending)
            if not pending:
                return
            batch = self._batch(connection, link, pending)
            if batch is None:
                return
            try:
                await self._post(run, batch)
            except AccountStopped as stopped:
                tally.problem = stopped.problem
                return
            except DayBudgetSpent:
                run.day_spent = True
                return
            last = batch.transactions[-1]
            after = (last.booked_at, last.transaction_id)

    def _batch(
        self, connection: ConnectionView, link: AccountLink, pending: list[Pending]
    ) -> Batch | None:
        destination = str(link.destination(connection.sink))
        tenant = str(connection.tenant_id)
        if connection.sink == "bankfeeds":
            return statement_batch(
                pending,
                tenant_id=tenant,
                connection_version=connection.version,
                feed_connection_id=destination,
                zone=connection.zone,
                max_lines=self._settings.statement_max_lines,
            )
        return bank_transactions_batch(
            pending,
            tenant_id=tenant,
            connection_version=connection.version,
            xero_account_id=destination,
            zone=connection.zone,
            receive_account_code=self._settings.receive_account_code,
            spend_account_code=self._settings.spend_account_code,
            max_elements=self._settings.accounting_batch_size,
        )

    async def _post(self, run: _Run, batch: Batch) -> None:
        """Store, send, settle one batch (steps 1-3 of the module's docstring)."""
        connection = run.connection
        stored = StoredBatch(
            batch_id=uuid.uuid4(),
            connection_id=connection.connection_id,
            account_id=batch.account_id,
            sink=connection.sink,
            method=batch.method,
            path=batch.path,
            params=batch.params,
            body=batch.body,
            idempotency_key=batch.idempotency_key,
            transaction_ids=[t.transaction_id for t in batch.transactions],
            end_balance=batch.end_balance,
            created_at=self._now(),
        )
        await self._db(
            lambda s: PostingRepository(s).record_batch(stored, tenant_id=connection.tenant_id)
        )
        failpoint("post.before_send")
        await self._send_and_settle(run, stored, list(batch.transactions))

    async def _send_and_settle(
        self, run: _Run, stored: StoredBatch, transactions: list[Pending]
    ) -> None:
        tally = run.tallies.setdefault(stored.account_id, AccountTally())
        try:
            answer: Answer | XeroError = await self._send(run, stored)
        except XeroError as refused:  # a 4xx: Xero did no work
            answer = refused
        failpoint("post.after_send")
        settled, problem, release = self._judge(stored, transactions, answer)
        status = answer.status
        message = None if isinstance(answer, Answer) else answer.message[:MAX_MESSAGE]
        posted = [s for s in settled if s.state == "posted"]
        last = self._last_posted(run, transactions, posted)

        await self._save(
            run, stored, settled, release, http_status=status, message=message, last=last
        )
        sink = stored.sink
        failed = len(settled) - len(posted)
        self._metrics.posted.labels(sink=sink, result="posted").inc(len(posted))
        self._metrics.posted.labels(sink=sink, result="failed").inc(failed)
        tally.posted += len(posted)
        tally.failed += failed
        if problem is not None:
            raise AccountStopped(problem)

    def _last_posted(
        self, run: _Run, transactions: list[Pending], posted: list[Settled]
    ) -> CursorMove | None:
        ids = {s.transaction_id for s in posted}
        mine = [t for t in transactions if t.transaction_id in ids]
        if not mine:
            return None
        last = max(mine, key=lambda t: (t.booked_at, t.transaction_id))
        return CursorMove(
            last.booked_at, last.transaction_id, local_date(last.booked_at, run.connection.zone)
        )

    def _judge(
        self,
        stored: StoredBatch,
        transactions: list[Pending],
        answer: Answer | XeroError,
    ) -> tuple[list[Settled], str | None, list[str]]:
        """(what each transaction became, an account problem, transactions to give back to
        the queue) for Xero's answer to one batch."""
        ids = [t.transaction_id for t in transactions]
        if isinstance(answer, Answer):
            if stored.sink == "bankfeeds":
                statement = _first_id(answer.document)
                return [Settled(i, "posted", xero_id=statement) for i in ids], None, []
            return self._judge_elements(transactions, answer)
        error = answer
        if stored.sink == "bankfeeds" and error.problem_type == "duplicate-statement":
            # Every line of it is in Xero already: ours, from a send whose answer was lost.
            return [Settled(i, "posted") for i in ids], None, []
        if error.problem_type == "invalid-feed-connection" or isinstance(error, XeroNotFound):
            return [], FEED_PROBLEM if stored.sink == "bankfeeds" else ACCOUNT_PROBLEM, ids
        if error.problem_type == "invalid-end-date":
            # The organisation's day has not begun yet where Xero is: wait for it.
            return [], None, ids
        message = f"Xero refused it: {error.message}"[:MAX_MESSAGE]
        return [Settled(i, "failed", message=message) for i in ids], None, []

    def _judge_elements(
        self, transactions: list[Pending], answer: Answer
    ) -> tuple[list[Settled], str | None, list[str]]:
        try:
            outcomes = element_outcomes(answer.document, transactions)
        except ValueError as error:
            raise RunStopped(
                "internal_error",
                f"Xero's answer did not match the request: {error}",
                user_action_required=False,
            ) from error
        settled: list[Settled] = []
        release: list[str] = []
        problem = None
        for outcome in outcomes:
            if outcome.ok:
                settled.append(Settled(outcome.transaction_id, "posted", xero_id=outcome.xero_id))
            elif outcome.account_problem:
                release.append(outcome.transaction_id)
                problem = f"{ACCOUNT_PROBLEM} Xero said: {'; '.join(outcome.messages)}"
            else:
                message = "; ".join(outcome.messages) or "refused without a message"
                settled.append(Settled(outcome.transaction_id, "failed", message=message))
        return settled, problem, release

    # ------------------------------------------------------------------ sending

    async def _send(self, run: _Run, stored: StoredBatch) -> Answer:
        """Send until Xero answers: 5xx and timeouts with jittered backoff, 429s after
        their Retry-After, a 401 once more with a fresh token. A 4xx refusal is raised."""
        unavailable = 0
        limited = 0
        statements = api_of(stored.path)[0] == "bankfeeds"
        while True:
            if self._ingest_first is not None:
                # Again here: a flood that began while this batch was being stored
                # should not have to share the machine with Xero's answer to it.
                await self._ingest_first.give_way()
            waited = run.budget.waited_seconds
            try:
                async with run.budget.call(statements=statements):
                    answer = await self._poster.send(
                        method=stored.method,
                        path=stored.path,
                        params=stored.params,
                        body=stored.body,
                        idempotency_key=stored.idempotency_key,
                        access_token=run.token.token,
                        tenant_id=run.connection.tenant_id,
                    )
            except XeroRateLimited as error:
                limited += 1
                self._after_rate_limited(run, error, limited)
            except XeroUnavailable as error:
                unavailable += 1
                if unavailable >= self._xero_backoff.attempts:
                    raise RunStopped(
                        "xero_unavailable",
                        f"Xero did not answer ({error.message}); what was sent is checked "
                        "before anything is sent again, and the next sync continues.",
                        user_action_required=False,
                    ) from error
                self._metrics.retries.labels(reason="unavailable").inc()
                await asyncio.sleep(self._xero_backoff.delay(unavailable - 1))
            except XeroUnauthorized as error:
                await self._after_unauthorized(run, error)
            except XeroForbidden as error:
                run.budget.observe(error.limit_headers)
                if error.problem_type is not None:
                    raise  # a Bank Feeds refusal of this feed: judged per account
                raise RunStopped(
                    "connection_removed",
                    "Xero refused access to the organisation: the app was probably removed "
                    "in Xero. Reconnect to Xero to resume syncing.",
                    user_action_required=True,
                ) from error
            except XeroError as error:
                run.budget.observe(error.limit_headers)
                raise
            else:
                run.budget.observe(answer.limits)
                self._observe_budget(answer.limits)
                return answer
            finally:
                self._metrics.pacing_wait.inc(max(0.0, run.budget.waited_seconds - waited))

    def _after_rate_limited(self, run: _Run, error: XeroRateLimited, limited: int) -> None:
        """Honour the 429's Retry-After (the budget holds the next call back)."""
        run.budget.observe(error.limit_headers)
        run.budget.rate_limited(error.limit, error.retry_after)
        self._metrics.count_rate_limited(error.limit)
        if limited > self._settings.max_rate_limited:
            raise RunStopped(
                "rate_limited",
                f"Xero kept refusing with its {error.limit or 'rate'} limit; the next sync "
                "will continue.",
                user_action_required=False,
            ) from error
        self._metrics.retries.labels(reason="rate_limited").inc()

    async def _after_unauthorized(self, run: _Run, error: XeroUnauthorized) -> None:
        """One fresh token from the connector; a second 401 means the grant is gone."""
        run.budget.observe(error.limit_headers)
        if run.refreshed:
            raise RunStopped(
                "token_invalid",
                "Xero no longer accepts this connection's authorisation. Reconnect to Xero "
                "to resume syncing.",
                user_action_required=True,
            ) from error
        run.refreshed = True
        try:
            run.token = await self._token(run.connection, fresh=True)
        except ConnectionNotUsable as refused:
            raise RunStopped("token_invalid", str(refused), user_action_required=True) from refused

    def _observe_budget(self, limits: dict[str, str]) -> None:
        for header, label in (
            ("x-minlimit-remaining", "minute"),
            ("x-daylimit-remaining", "day"),
            ("x-appminlimit-remaining", "app"),
        ):
            value = next((v for k, v in limits.items() if k.lower() == header), None)
            if value is not None and value.strip().isdigit():
                self._metrics.budget_remaining.labels(limit=label).set(int(value))

    # ------------------------------------------------------------------ recovery

    async def _recover(self, run: _Run) -> None:
        """Settle this connection's requests whose outcome a crash (or an outage) left
        unknown, before anything new is sent."""
        stored_batches = await self._db(
            lambda s: PostingRepository(s).sending(run.connection.tenant_id)
        )
        trust = self._settings.idempotency_trust
        for stored in stored_batches:
            if stored.connection_id != run.connection.connection_id:
                continue  # another connection's: its own run settles it
            transactions = await self._load(stored.transaction_ids)
            young = self._now() - stored.created_at < trust
            try:
                if young or stored.sink == "bankfeeds":
                    self._metrics.recovered.labels(how="resent" if young else "checked").inc()
                    await self._send_and_settle(run, stored, transactions)
                else:
                    self._metrics.recovered.labels(how="checked").inc()
                    await self._check_references(run, stored, transactions)
            except AccountStopped as stopped:
                run.tallies.setdefault(stored.account_id, AccountTally()).problem = stopped.problem

    async def _check_references(
        self, run: _Run, stored: StoredBatch, transactions: list[Pending]
    ) -> None:
        """Past the key's window: look the batch's References up in Xero; those found are
        posted, the rest go back to the queue and are sent in a new request."""
        async with run.budget.call():
            found, limits = await self._poster.find_references(
                stored.transaction_ids,
                access_token=run.token.token,
                tenant_id=run.connection.tenant_id,
            )
        for seen in limits:
            run.budget.observe(seen)
        settled = [
            Settled(i, "posted", xero_id=found[i]) for i in stored.transaction_ids if i in found
        ]
        missing = [i for i in stored.transaction_ids if i not in found]
        last = self._last_posted(run, transactions, settled)

        await self._save(
            run,
            stored,
            settled,
            missing,
            http_status=200,
            message="found in Xero by Reference after an unknown outcome",
            last=last,
        )
        self._metrics.posted.labels(sink=stored.sink, result="posted").inc(len(settled))
        run.tallies.setdefault(stored.account_id, AccountTally()).posted += len(settled)

    # ------------------------------------------------------------------ the result

    async def _completed(self, run: _Run) -> RunOutcome:
        connection = run.connection
        booked_from, _ = connection.window(self._now())
        links = connection.postable_accounts()
        ids = [link.account_id for link in links]

        async def read(session: AsyncSession) -> tuple[dict[str, int], dict[str, Any]]:
            repository = PostingRepository(session)
            remaining = {
                link.account_id: await repository.count_pending(
                    tenant_id=connection.tenant_id,
                    entity_id=connection.entity_id,
                    account_id=link.account_id,
                    booked_from=booked_from,
                )
                for link in links
            }
            return remaining, await repository.cursors(connection.tenant_id, ids)

        remaining, cursors = await self._db(read)
        accounts = []
        for link in links:
            tally = run.tallies.get(link.account_id, AccountTally())
            cursor = cursors.get(link.account_id)
            accounts.append(
                AccountSyncResult(
                    account_id=link.account_id,
                    posted=tally.posted,
                    failed=tally.failed,
                    remaining=remaining[link.account_id],
                    latest_transaction_date=cursor.latest_date if cursor else None,
                    problem=tally.problem,
                )
            )
        posted = sum(a.posted for a in accounts)
        failed = sum(a.failed for a in accounts)
        left = sum(a.remaining for a in accounts)
        event = SyncCompleted(
            connection_id=connection.connection_id,
            tenant_id=connection.tenant_id,
            run_id=run.todo.run_id,
            started_at=run.todo.started_at,
            finished_at=self._now(),
            posted=posted,
            failed=failed,
            remaining=left,
            accounts=accounts,
        )
        message = "day's budget spent" if run.day_spent else None
        return RunOutcome("completed", "completed", posted, failed, left, message, event)

    def _failed(
        self,
        todo: RunToDo,
        connection: ConnectionView,
        stopped: RunStopped,
        tallies: dict[str, AccountTally],
    ) -> RunOutcome:
        event = SyncFailed(
            connection_id=connection.connection_id,
            tenant_id=connection.tenant_id,
            run_id=todo.run_id,
            started_at=todo.started_at,
            finished_at=self._now(),
            reason=stopped.reason,  # type: ignore[arg-type]
            message=stopped.message,
            user_action_required=stopped.user_action_required,
        )
        posted = sum(t.posted for t in tallies.values())
        failed = sum(t.failed for t in tallies.values())
        return RunOutcome("failed", stopped.reason, posted, failed, 0, stopped.message, event)

    # ------------------------------------------------------------------ plumbing

    async def _save(
        self,
        run: _Run,
        stored: StoredBatch,
        settled: list[Settled],
        release: list[str],
        *,
        http_status: int | None,
        message: str | None,
        last: CursorMove | None,
    ) -> None:
        """Record Xero's answer in one transaction: transactions it never took go back to
        the queue; the others are posted or failed, and the account's cursor moves."""

        async def save(session: AsyncSession) -> None:
            repository = PostingRepository(session)
            if release:
                await repository.release(stored.batch_id, release, self._now())
            if settled:
                await repository.settle(
                    stored.batch_id,
                    tenant_id=run.connection.tenant_id,
                    account_id=stored.account_id,
                    outcomes=settled,
                    http_status=http_status,
                    message=message,
                    end_balance=stored.end_balance if last is not None else None,
                    last_posted=last,
                    now=self._now(),
                )

        await self._db(save)

    async def _load(self, transaction_ids: list[str]) -> list[Pending]:
        return await self._db(lambda s: PostingRepository(s).load(transaction_ids))

    async def _db(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def attempt() -> T:
            async with translated_db_errors(), self._sessions() as session, session.begin():
                return await work(session)

        return await retry_transient(attempt, policy=self._db_backoff, what="syncer database")


def _first_id(document: Any) -> str | None:
    items = document.get("items") if isinstance(document, dict) else None
    if isinstance(items, list) and items and isinstance(items[0], dict):
        value = items[0].get("id")
        return str(value) if value is not None else None
    return None
