"""The scheduler's SQL: schedule rows in, due slots out. Set-based, so one tick of
thousands of slots is three statements."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scheduler.domain.schedule import DueReason, Emission, Schedule, Slot
from shared.contracts.xero import ConnectionStatus

WAKE_CHANNEL = "xerosync_scheduler_wake"
"""NOTIFY channel: a slot became due now (connected, manual); the emitter wakes."""

_COLUMNS = (
    "connection_id, tenant_id, entity_id, version, status, phase, next_due_at, due_reason, "
    "last_manual_at"
)


class ScheduleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _execute(self, sql: str, params: Any = None) -> Any:
        connection = await self.session.connection()
        return await connection.execute(text(sql), params)

    async def load(self, connection_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Schedule]:
        """The schedules of these connections, locked until the transaction ends."""
        if not connection_ids:
            return {}
        result = await self._execute(
            f"SELECT {_COLUMNS} FROM schedules WHERE connection_id = ANY(:ids) "
            "ORDER BY connection_id FOR UPDATE",
            {"ids": list(connection_ids)},
        )
        return {row.connection_id: _schedule(row) for row in result}

    async def save(self, schedules: Sequence[Schedule], *, now: datetime) -> None:
        """Insert or update each schedule; `now` is when one that turns active became so."""
        if not schedules:
            return
        await self._execute(
            f"INSERT INTO schedules ({_COLUMNS}, active_since) VALUES (:connection_id, "
            ":tenant_id, :entity_id, :version, :status, :phase, :next_due_at, :due_reason, "
            ":last_manual_at, CASE WHEN :active THEN CAST(:now AS timestamptz) END) "
            "ON CONFLICT (connection_id) DO UPDATE SET tenant_id = excluded.tenant_id, "
            "entity_id = excluded.entity_id, version = excluded.version, "
            "status = excluded.status, next_due_at = excluded.next_due_at, "
            "due_reason = excluded.due_reason, last_manual_at = excluded.last_manual_at, "
            "active_since = CASE WHEN excluded.status <> 'active' THEN NULL "
            "WHEN schedules.status = 'active' AND schedules.active_since IS NOT NULL "
            "THEN schedules.active_since ELSE excluded.active_since END, "
            "updated_at = now()",
            [
                {
                    "connection_id": s.connection_id,
                    "tenant_id": s.tenant_id,
                    "entity_id": s.entity_id,
                    "version": s.version,
                    "status": s.status,
                    "phase": s.phase,
                    "next_due_at": s.next_due_at,
                    "due_reason": s.due_reason,
                    "last_manual_at": s.last_manual_at,
                    "active": s.status == "active",
                    "now": now,
                }
                for s in schedules
            ],
        )

    async def claim_due(self, now: datetime, limit: int) -> list[Slot]:
        """The earliest slots due by `now`, locked; rows another transaction holds are
        skipped rather than waited for."""
        result = await self._execute(
            "SELECT connection_id, tenant_id, next_due_at, due_reason, phase FROM schedules "
            "WHERE next_due_at IS NOT NULL AND next_due_at <= :now "
            "ORDER BY next_due_at LIMIT :limit FOR UPDATE SKIP LOCKED",
            {"now": now, "limit": limit},
        )
        return [
            Slot(
                connection_id=row.connection_id,
                tenant_id=row.tenant_id,
                next_due_at=row.next_due_at,
                due_reason=cast(DueReason, row.due_reason),
                phase=row.phase,
            )
            for row in result
        ]

    async def advance(self, emissions: Sequence[Emission], emitted_at: datetime) -> None:
        """Record the emitted slots and move each connection to its next one."""
        if not emissions:
            return
        await self._execute(
            "UPDATE schedules AS s SET next_due_at = e.next_due_at, due_reason = 'schedule', "
            "last_emitted_at = :emitted_at, last_due_at = e.due_at, last_reason = e.reason, "
            "updated_at = now() "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:next AS timestamptz[]), "
            "CAST(:due AS timestamptz[]), CAST(:reasons AS text[])) "
            "AS e(connection_id, next_due_at, due_at, reason) "
            "WHERE s.connection_id = e.connection_id",
            {
                "ids": [e.connection_id for e in emissions],
                "next": [e.next_due_at for e in emissions],
                "due": [e.due_at for e in emissions],
                "reasons": [e.reason for e in emissions],
                "emitted_at": emitted_at,
            },
        )

    async def next_due(self) -> datetime | None:
        result = await self._execute(
            "SELECT min(next_due_at) FROM schedules WHERE next_due_at IS NOT NULL"
        )
        return cast(datetime | None, result.scalar())

    async def oldest_sync_age(self, now: datetime) -> float:
        """Seconds since the active connection synced longest ago last completed a sync
        (or became active, if it never has); 0 with none active."""
        result = await self._execute(
            "SELECT extract(epoch FROM CAST(:now AS timestamptz) "
            "- min(coalesce(last_completed_at, active_since))) "
            "FROM schedules WHERE status = 'active'",
            {"now": now},
        )
        return max(0.0, float(result.scalar() or 0))

    async def count_active(self) -> int:
        result = await self._execute("SELECT count(*) FROM schedules WHERE status = 'active'")
        return int(result.scalar() or 0)

    async def record_results(self, results: Sequence[tuple[uuid.UUID, str, datetime]]) -> None:
        """The latest sync result per connection, and the latest completed one (an older
        result changes neither)."""
        if not results:
            return
        await self._execute(
            "UPDATE schedules SET "
            "last_result = CASE WHEN last_result_at IS NULL OR last_result_at < :finished_at "
            "THEN :result ELSE last_result END, "
            "last_result_at = greatest(last_result_at, :finished_at), "
            "last_completed_at = CASE WHEN :completed "
            "THEN greatest(last_completed_at, :finished_at) ELSE last_completed_at END "
            "WHERE connection_id = :connection_id",
            [
                {
                    "connection_id": cid,
                    "result": result,
                    "completed": result == "completed",
                    "finished_at": finished_at,
                }
                for cid, result, finished_at in results
            ],
        )

    async def wake_emitter(self) -> None:
        """Tell the emitter, whichever replica runs it, that a slot is due now (delivered
        when this transaction commits)."""
        await self._execute(f"NOTIFY {WAKE_CHANNEL}")


def _schedule(row: Any) -> Schedule:
    return Schedule(
        connection_id=row.connection_id,
        tenant_id=row.tenant_id,
        entity_id=row.entity_id,
        version=row.version,
        status=cast(ConnectionStatus, row.status),
        phase=row.phase,
        next_due_at=row.next_due_at,
        due_reason=cast(DueReason | None, row.due_reason),
        last_manual_at=row.last_manual_at,
    )
