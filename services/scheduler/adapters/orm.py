"""The scheduler's tables (their own registry, so its migrations see only its tables)."""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from shared.db import new_table_registry

scheduler_registry = new_table_registry()

_TS = sa.DateTime(timezone=True)


def _now() -> datetime:
    return datetime.now(UTC)


class SchedulerTable(SQLModel, registry=scheduler_registry):
    """Base of every scheduler table."""


class ScheduleRow(SchedulerTable, table=True):
    """One connection's schedule, rebuilt from `xero.connections.v1`: scheduled while the
    connection is active (`next_due_at` set), kept but unscheduled otherwise, so a replayed
    older event is recognised by its version."""

    __tablename__ = "schedules"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('active', 'needs_user', 'disconnected')", name="status_known"
        ),
        sa.CheckConstraint(
            "due_reason IN ('schedule', 'manual', 'connected')", name="due_reason_known"
        ),
        sa.CheckConstraint("phase >= 0 AND phase < 1", name="phase_in_interval"),
        sa.CheckConstraint(
            "(status = 'active') = (next_due_at IS NOT NULL)", name="scheduled_when_active"
        ),
        sa.CheckConstraint("(next_due_at IS NULL) = (due_reason IS NULL)", name="due_has_reason"),
        # The emitter's one query: the earliest due slots.
        sa.Index(
            "ix_schedules_due",
            "next_due_at",
            postgresql_where=sa.text("next_due_at IS NOT NULL"),
        ),
    )

    connection_id: uuid.UUID = Field(primary_key=True)
    tenant_id: uuid.UUID
    entity_id: str = Field(max_length=64)
    version: int = Field(sa_type=sa.BigInteger)
    """The newest connection event applied."""
    status: str = Field(max_length=16)
    phase: float = Field(sa_type=sa.Float)
    """Place in the interval, in [0, 1), from a hash of the connection id."""
    next_due_at: datetime | None = Field(default=None, sa_type=_TS)
    due_reason: str | None = Field(default=None, max_length=16)
    last_manual_at: datetime | None = Field(default=None, sa_type=_TS)
    last_emitted_at: datetime | None = Field(default=None, sa_type=_TS)
    last_due_at: datetime | None = Field(default=None, sa_type=_TS)
    last_reason: str | None = Field(default=None, max_length=16)
    last_result: str | None = Field(default=None, max_length=16)
    """`completed` or `failed`: the latest sync result the syncer published."""
    last_result_at: datetime | None = Field(default=None, sa_type=_TS)
    last_completed_at: datetime | None = Field(default=None, sa_type=_TS)
    """When the newest `completed` sync result finished: the connection's freshness."""
    active_since: datetime | None = Field(default=None, sa_type=_TS)
    """When the connection last became active (NULL while it is not)."""
    updated_at: datetime = Field(
        default_factory=_now, sa_type=_TS, sa_column_kwargs={"server_default": sa.func.now()}
    )
