"""The schedule's rules, as pure functions of a connection's schedule and the time.

A connection's *phase* is a fixed fraction of the interval taken from a hash of its id, so
connections spread evenly over the interval whatever minute they connected in. Its slots
are the instants `(k + phase) * interval` after the Unix epoch. A slot emits one
`SyncDue`; what the next slot is depends on why this one was due:

- `schedule`: the next is this one plus the interval (lateness never drifts the rhythm);
  when the scheduler was down for an interval or more, the missed slots coalesce into one
  `catch_up` for the latest of them, and the rhythm resumes after it;
- `manual`: the next is the press plus the interval (DESIGN: "moves the next scheduled
  time to now + interval");
- `connected`: the next is the connection's first phase slot at least `min_gap` later.

Every slot has a stable event id (connection, due time, reason), so an emission can be
recognised after a crash, and a consumer can drop a duplicate.
"""

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from shared.contracts.xero import ConnectionStatus, SyncReason

DueReason = Literal["schedule", "manual", "connected"]
ManualResult = Literal["accepted", "debounced", "not_active", "stale"]
MANUAL_RESULTS: tuple[ManualResult, ...] = ("accepted", "debounced", "not_active", "stale")
SYNC_REASONS: tuple[SyncReason, ...] = ("schedule", "manual", "connected", "catch_up")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_EVENT_NAMESPACE = uuid.UUID("5a3c1f0e-7d2b-4c55-9a8e-2f6b1d0c9e41")


def phase_of(connection_id: uuid.UUID) -> float:
    """The connection's place in the interval, in [0, 1): uniform over connection ids."""
    digest = hashlib.blake2b(connection_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def first_slot_after(moment: datetime, phase: float, interval: timedelta) -> datetime:
    """The earliest slot of this phase strictly after `moment` (exact to the microsecond)."""
    period = interval // _MICRO
    offset = int(phase * period)
    elapsed = (moment - EPOCH) // _MICRO
    k = (elapsed - offset) // period + 1
    return EPOCH + (k * period + offset) * _MICRO


def slot_event_id(connection_id: uuid.UUID, due_at: datetime, reason: DueReason) -> uuid.UUID:
    """The id of the one `SyncDue` a slot emits: the same slot always gets the same id."""
    stamp = due_at.astimezone(UTC).isoformat(timespec="microseconds")
    return uuid.uuid5(_EVENT_NAMESPACE, f"{connection_id}|{stamp}|{reason}")


@dataclass(frozen=True, slots=True)
class Slot:
    """A due schedule row, as the emitter claims it."""

    connection_id: uuid.UUID
    tenant_id: uuid.UUID
    next_due_at: datetime
    due_reason: DueReason
    phase: float

    @property
    def event_id(self) -> uuid.UUID:
        return slot_event_id(self.connection_id, self.next_due_at, self.due_reason)


@dataclass(frozen=True, slots=True)
class Emission:
    connection_id: uuid.UUID
    tenant_id: uuid.UUID
    event_id: uuid.UUID
    reason: SyncReason
    due_at: datetime
    next_due_at: datetime


def plan(slot: Slot, now: datetime, *, interval: timedelta, min_gap: timedelta) -> Emission:
    """What a due slot emits, and when the connection is next due."""
    due_at = slot.next_due_at
    reason: SyncReason
    if slot.due_reason == "manual":
        reason, next_due = "manual", due_at + interval
    elif slot.due_reason == "connected":
        reason, next_due = "connected", first_slot_after(due_at + min_gap, slot.phase, interval)
    else:
        missed = (now - due_at) // interval
        if missed >= 1:  # down for an interval or more: one catch-up for the latest slot
            reason, due_at = "catch_up", due_at + missed * interval
        else:
            reason = "schedule"
        next_due = due_at + interval
    return Emission(slot.connection_id, slot.tenant_id, slot.event_id, reason, due_at, next_due)


def first_gap(interval: timedelta, cooldown: timedelta) -> timedelta:
    """Least time between a `connected` sync and the first scheduled one."""
    return min(cooldown, interval / 2)


@dataclass(frozen=True, slots=True)
class Schedule:
    """One connection's schedule row."""

    connection_id: uuid.UUID
    tenant_id: uuid.UUID
    entity_id: str
    version: int
    status: ConnectionStatus
    phase: float
    next_due_at: datetime | None
    due_reason: DueReason | None
    last_manual_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"


def apply_connection(
    current: Schedule | None,
    *,
    connection_id: uuid.UUID,
    tenant_id: uuid.UUID,
    entity_id: str,
    version: int,
    status: ConnectionStatus,
    now: datetime,
) -> Schedule | None:
    """The schedule after a connection event; None when the event is not newer than what
    is held (a replay, or reordering) and changes nothing.

    Becoming active (established, or re-established after a disconnect or after needing
    the user) makes a sync due now with reason `connected`; leaving active unschedules.
    """
    if current is not None and version <= current.version:
        return None
    was_active = current is not None and current.active
    schedule = Schedule(
        connection_id=connection_id,
        tenant_id=tenant_id,
        entity_id=entity_id,
        version=version,
        status=status,
        phase=current.phase if current is not None else phase_of(connection_id),
        next_due_at=current.next_due_at if current is not None else None,
        due_reason=current.due_reason if current is not None else None,
        last_manual_at=current.last_manual_at if current is not None else None,
    )
    if status != "active":
        return replace(schedule, next_due_at=None, due_reason=None)
    if not was_active:
        return replace(schedule, next_due_at=now, due_reason="connected")
    return schedule


def apply_manual(
    current: Schedule | None,
    *,
    requested_at: datetime,
    now: datetime,
    cooldown: timedelta,
    max_age: timedelta,
) -> tuple[ManualResult, Schedule | None]:
    """A *Sync now* press: accepted (due now, reason `manual`) or absorbed, and why."""
    if current is None or not current.active:
        return "not_active", None
    if now - requested_at > max_age:
        return "stale", None
    if current.last_manual_at is not None and now - current.last_manual_at < cooldown:
        return "debounced", None
    if current.due_reason in ("manual", "connected") and current.next_due_at is not None:
        return "debounced", None  # a sync is already waiting to go out
    return "accepted", replace(current, next_due_at=now, due_reason="manual", last_manual_at=now)
