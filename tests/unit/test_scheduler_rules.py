"""The schedule's rules as pure functions: phases, slots, plans, debounce, settings."""

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr, ValidationError

from services.scheduler.config import SchedulerSettings
from services.scheduler.domain.clock import ManualClock
from services.scheduler.domain.schedule import (
    Schedule,
    Slot,
    apply_connection,
    apply_manual,
    first_gap,
    first_slot_after,
    phase_of,
    plan,
    slot_event_id,
)

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HOURS_3 = timedelta(hours=3)
MINUTE = timedelta(minutes=1)


def _slot(reason: str = "schedule", due: datetime = T0, phase: float = 0.25) -> Slot:
    return Slot(uuid.UUID(int=7), uuid.UUID(int=8), due, reason, phase)  # type: ignore[arg-type]


def test_phases_spread_ten_thousand_connections_evenly_over_the_interval() -> None:
    rng = random.Random(5)  # noqa: S311 - reproducible ids, not secrets
    ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(10_000)]
    minutes = [0] * 180  # the 3-hour interval, minute by minute
    for connection in ids:
        slot = first_slot_after(T0, phase_of(connection), HOURS_3)
        minutes[int((slot - T0) / MINUTE)] += 1
    # 10,000 connections made in the same minute: about 56 per minute, never a crowd.
    assert max(minutes) < 100, max(minutes)
    assert min(minutes) > 20, min(minutes)


def test_phase_is_a_stable_fraction_of_the_interval() -> None:
    connection = uuid.uuid4()
    assert phase_of(connection) == phase_of(connection)
    assert 0 <= phase_of(connection) < 1


def test_slots_are_exact_and_strictly_after_the_moment() -> None:
    slot = first_slot_after(T0, 0.5, HOURS_3)
    assert T0 < slot <= T0 + HOURS_3
    assert first_slot_after(slot, 0.5, HOURS_3) == slot + HOURS_3
    assert first_slot_after(slot - timedelta(microseconds=1), 0.5, HOURS_3) == slot
    # Seconds-long intervals in tests are exact to the microsecond too.
    assert first_slot_after(T0, 0.0, timedelta(seconds=2)) == T0 + timedelta(seconds=2)


def test_a_scheduled_slot_keeps_the_rhythm_however_late_within_one_interval() -> None:
    emission = plan(_slot(), T0 + HOURS_3 - MINUTE, interval=HOURS_3, min_gap=MINUTE)
    assert (emission.reason, emission.due_at, emission.next_due_at) == (
        "schedule",
        T0,
        T0 + HOURS_3,
    )


def test_missed_slots_coalesce_into_one_catch_up_for_the_latest() -> None:
    now = T0 + 3 * HOURS_3 + timedelta(hours=1)  # down for 10 hours
    emission = plan(_slot(), now, interval=HOURS_3, min_gap=MINUTE)
    assert emission.reason == "catch_up"
    assert emission.due_at == T0 + 3 * HOURS_3
    assert emission.next_due_at == T0 + 4 * HOURS_3
    # Exactly one interval late is already a missed slot.
    assert plan(_slot(), T0 + HOURS_3, interval=HOURS_3, min_gap=MINUTE).reason == "catch_up"


def test_manual_moves_the_next_sync_one_interval_after_the_press() -> None:
    emission = plan(_slot("manual"), T0 + MINUTE, interval=HOURS_3, min_gap=MINUTE)
    assert (emission.reason, emission.due_at, emission.next_due_at) == (
        "manual",
        T0,
        T0 + HOURS_3,
    )


def test_connected_is_followed_by_the_first_phase_slot_after_the_gap() -> None:
    emission = plan(_slot("connected", phase=0.0), T0, interval=HOURS_3, min_gap=MINUTE)
    assert emission.reason == "connected"
    assert emission.next_due_at == first_slot_after(T0 + MINUTE, 0.0, HOURS_3)
    assert first_gap(HOURS_3, timedelta(seconds=60)) == timedelta(seconds=60)
    assert first_gap(timedelta(seconds=2), timedelta(seconds=60)) == timedelta(seconds=1)


def test_every_slot_has_one_stable_event_id() -> None:
    connection = uuid.uuid4()
    assert slot_event_id(connection, T0, "schedule") == slot_event_id(connection, T0, "schedule")
    other_zone = T0.astimezone(datetime.now().astimezone().tzinfo)
    assert slot_event_id(connection, other_zone, "schedule") == slot_event_id(
        connection, T0, "schedule"
    )
    assert slot_event_id(connection, T0, "manual") != slot_event_id(connection, T0, "schedule")
    assert slot_event_id(connection, T0 + MINUTE, "schedule") != slot_event_id(
        connection, T0, "schedule"
    )


def _schedule(**overrides: object) -> Schedule:
    fields: dict[str, object] = {
        "connection_id": uuid.UUID(int=1),
        "tenant_id": uuid.UUID(int=2),
        "entity_id": "ent-1",
        "version": 3,
        "status": "active",
        "phase": 0.5,
        "next_due_at": T0 + HOURS_3,
        "due_reason": "schedule",
    }
    return Schedule(**(fields | overrides))  # type: ignore[arg-type]


def _connection(current: Schedule | None, version: int, status: str) -> Schedule | None:
    return apply_connection(
        current,
        connection_id=uuid.UUID(int=1),
        tenant_id=uuid.UUID(int=2),
        entity_id="ent-1",
        version=version,
        status=status,  # type: ignore[arg-type]
        now=T0,
    )


def test_connection_events_schedule_unschedule_and_reschedule() -> None:
    new = _connection(None, 1, "active")
    assert new is not None
    assert (new.next_due_at, new.due_reason, new.phase) == (
        T0,
        "connected",
        phase_of(new.connection_id),
    )
    gone = _connection(new, 2, "disconnected")
    assert gone is not None
    assert (gone.next_due_at, gone.due_reason, gone.active) == (None, None, False)
    assert _connection(gone, 2, "active") is None, "not newer: a replay changes nothing"
    assert _connection(gone, 1, "active") is None
    back = _connection(gone, 3, "active")
    assert back is not None
    assert back.due_reason == "connected"
    # An update of a connection that stays active keeps its rhythm.
    kept = _connection(_schedule(version=3), 4, "active")
    assert kept is not None
    assert (kept.next_due_at, kept.due_reason) == (T0 + HOURS_3, "schedule")
    paused = _connection(_schedule(version=3), 4, "needs_user")
    assert paused is not None
    assert paused.next_due_at is None


def _manual(current: Schedule | None, *, requested: datetime = T0, now: datetime = T0) -> str:
    result, _ = apply_manual(
        current, requested_at=requested, now=now, cooldown=MINUTE, max_age=timedelta(minutes=15)
    )
    return result


def test_manual_presses_are_accepted_once_per_cooldown() -> None:
    result, after = apply_manual(
        _schedule(),
        requested_at=T0,
        now=T0,
        cooldown=MINUTE,
        max_age=timedelta(minutes=15),
    )
    assert result == "accepted"
    assert after is not None
    assert (after.next_due_at, after.due_reason, after.last_manual_at) == (T0, "manual", T0)
    assert _manual(after) == "debounced"  # waiting to go out
    emitted = _schedule(last_manual_at=T0)
    assert _manual(emitted, now=T0 + MINUTE / 2) == "debounced"
    assert _manual(emitted, now=T0 + MINUTE, requested=T0 + MINUTE) == "accepted"
    assert _manual(_schedule(), now=T0 + timedelta(minutes=16)) == "stale"
    assert _manual(None) == "not_active"
    assert _manual(_schedule(status="disconnected", next_due_at=None, due_reason=None)) == (
        "not_active"
    )


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("3h", timedelta(hours=3)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("1500ms", timedelta(seconds=1.5)),
        ("2.5s", timedelta(seconds=2.5)),
        ("10800", timedelta(hours=3)),
        ("PT3H", timedelta(hours=3)),
        ("1d", timedelta(days=1)),
    ],
)
def test_sync_interval_is_read_in_the_forms_people_write(
    monkeypatch: pytest.MonkeyPatch, written: str, expected: timedelta
) -> None:
    monkeypatch.setenv("SYNC_INTERVAL", written)
    settings = SchedulerSettings(database_url=SecretStr("postgresql://localhost/s"))
    assert settings.sync_interval == expected


def test_prefixed_names_win_and_nonsense_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_MANUAL_SYNC_COOLDOWN", "5s")
    settings = SchedulerSettings(database_url=SecretStr("postgresql://localhost/s"))
    assert settings.manual_sync_cooldown == timedelta(seconds=5)
    assert settings.sync_interval == HOURS_3
    assert settings.http_port == 8001
    for bad in ("soon", "0s", "8d"):
        monkeypatch.setenv("SYNC_INTERVAL", bad)
        with pytest.raises(ValidationError, match=r"sync_interval|SYNC_INTERVAL"):
            SchedulerSettings(database_url=SecretStr("postgresql://localhost/s"))


async def test_manual_clock_wakes_waiters_when_it_passes_their_time() -> None:
    clock = ManualClock(T0)
    wake = asyncio.Event()
    waiter = asyncio.create_task(clock.wait(T0 + HOURS_3, wake))
    await asyncio.sleep(0)
    clock.advance(HOURS_3 / 2)
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.advance(HOURS_3 / 2)
    await asyncio.wait_for(waiter, 1)
    other = asyncio.create_task(clock.wait(T0 + 2 * HOURS_3, wake))
    wake.set()
    await asyncio.wait_for(other, 1)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(T0)
