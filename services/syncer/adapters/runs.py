"""Sync runs: queued by SyncDue, claimed under the organisation's lock, finished with
their result event kept until it is published (an outbox)."""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.syncer.adapters.orm import SyncRun
from services.syncer.adapters.tenant_locks import WAKE_CHANNEL
from shared.contracts.xero import SyncDue

_RUNS: Table = SyncRun.__table__  # type: ignore[attr-defined]
WAITING = ("queued", "running")


@dataclass(frozen=True)
class RunToDo:
    run_id: uuid.UUID
    connection_id: uuid.UUID
    tenant_id: uuid.UUID
    reason: str
    due_at: datetime
    started_at: datetime
    starts: int


class RunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def queue(self, due: SyncDue, now: datetime) -> str:
        """queued, duplicate (this slot was seen) or coalesced (a run of the connection is
        already waiting: it will post everything this one would)."""
        connection = await self._session.connection()
        seen = await connection.scalar(
            select(func.count()).where(_RUNS.c.due_event_id == due.event_id)
        )
        if seen:
            return "duplicate"
        waiting = await connection.scalar(
            select(func.count()).where(
                _RUNS.c.connection_id == due.connection_id, _RUNS.c.state == "queued"
            )
        )
        if waiting:
            return "coalesced"
        inserted = await connection.execute(
            insert(_RUNS)
            .values(
                run_id=uuid.uuid4(),
                due_event_id=due.event_id,
                connection_id=due.connection_id,
                tenant_id=due.tenant_id,
                reason=due.reason,
                due_at=due.due_at,
                state="queued",
                queued_at=now,
                starts=0,
                posted=0,
                failed=0,
                remaining=0,
            )
            .on_conflict_do_nothing(index_elements=[_RUNS.c.due_event_id])
            .returning(_RUNS.c.run_id)
        )
        if inserted.first() is None:
            return "duplicate"
        await connection.execute(text(f"NOTIFY {WAKE_CHANNEL}"))
        return "queued"

    async def waiting_tenants(
        self, *, exclude: Collection[uuid.UUID], limit: int
    ) -> list[uuid.UUID]:
        """Organisations with a run waiting, the longest-waiting first."""
        connection = await self._session.connection()
        statement = (
            select(_RUNS.c.tenant_id)
            .where(_RUNS.c.state.in_(WAITING))
            .group_by(_RUNS.c.tenant_id)
            .order_by(func.min(_RUNS.c.queued_at))
            .limit(limit + len(exclude))
        )
        rows = await connection.execute(statement)
        return [row.tenant_id for row in rows if row.tenant_id not in exclude][:limit]

    async def start_next(self, tenant_id: uuid.UUID, now: datetime) -> RunToDo | None:
        """The organisation's next run, marked running: one a dead process left running
        first (it is resumed), then the longest queued."""
        connection = await self._session.connection()
        row = (
            await connection.execute(
                select(_RUNS)
                .where(_RUNS.c.tenant_id == tenant_id, _RUNS.c.state.in_(WAITING))
                .order_by((_RUNS.c.state == "running").desc(), _RUNS.c.queued_at)
                .limit(1)
                .with_for_update()
            )
        ).first()
        if row is None:
            return None
        started_at = row.started_at if row.state == "running" and row.started_at else now
        await connection.execute(
            update(_RUNS)
            .where(_RUNS.c.run_id == row.run_id)
            .values(state="running", started_at=started_at, starts=_RUNS.c.starts + 1)
        )
        return RunToDo(
            run_id=row.run_id,
            connection_id=row.connection_id,
            tenant_id=row.tenant_id,
            reason=row.reason,
            due_at=row.due_at,
            started_at=started_at,
            starts=row.starts + 1,
        )

    async def finish(
        self,
        run_id: uuid.UUID,
        *,
        state: str,
        outcome: str,
        finished_at: datetime,
        posted: int,
        failed: int,
        remaining: int,
        message: str | None,
        result_event: dict[str, Any] | None,
    ) -> None:
        connection = await self._session.connection()
        await connection.execute(
            update(_RUNS)
            .where(_RUNS.c.run_id == run_id)
            .values(
                state=state,
                outcome=outcome,
                finished_at=finished_at,
                posted=posted,
                failed=failed,
                remaining=remaining,
                message=message,
                result_event=result_event,
            )
        )

    async def unpublished(self, limit: int = 100) -> list[tuple[uuid.UUID, dict[str, Any]]]:
        connection = await self._session.connection()
        rows = await connection.execute(
            select(_RUNS.c.run_id, _RUNS.c.result_event)
            .where(_RUNS.c.result_event.is_not(None), _RUNS.c.published_at.is_(None))
            .order_by(_RUNS.c.finished_at)
            .limit(limit)
        )
        return [(row.run_id, row.result_event) for row in rows]

    async def mark_published(self, run_ids: Collection[uuid.UUID], now: datetime) -> None:
        connection = await self._session.connection()
        await connection.execute(
            update(_RUNS).where(_RUNS.c.run_id.in_(list(run_ids))).values(published_at=now)
        )
