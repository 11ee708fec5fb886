"""Posting gives way to ingest: held while full batches keep arriving, for at most
`max_hold`, and not at all once ingest has had a quiet spell."""

import pytest

from services.syncer.service_layer.priority import IngestFirst


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ingest_first(clock: Clock, *, quiet: float = 0.3, max_hold: float = 5.0) -> IngestFirst:
    return IngestFirst(full_batch=500, quiet=quiet, max_hold=max_hold, clock=clock)


def test_posting_goes_at_once_while_batches_arrive_short() -> None:
    clock = Clock()
    priority = ingest_first(clock)
    priority.took(249)
    priority.took(12)
    assert priority.hold_for() == 0.0


def test_a_half_full_batch_holds_posting_for_the_quiet_spell_from_it() -> None:
    clock = Clock()
    priority = ingest_first(clock)
    priority.took(250)
    assert priority.hold_for() == pytest.approx(0.3)
    clock.now += 0.2
    assert priority.hold_for() == pytest.approx(0.1)
    clock.now += 0.1
    assert priority.hold_for() == 0.0


def test_a_quiet_of_zero_turns_giving_way_off() -> None:
    priority = ingest_first(Clock(), quiet=0)
    priority.took(500)
    assert priority.hold_for() == 0.0


async def test_give_way_waits_out_a_flood_no_longer_than_max_hold() -> None:
    clock = Clock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        # Full batches keep arriving while posting waits: a flood that never ends.
        slept.append(seconds)
        clock.now += seconds
        priority.took(500)

    priority = IngestFirst(full_batch=500, quiet=0.3, max_hold=1.0, clock=clock, sleep=sleep)
    priority.took(500)

    waited = await priority.give_way()

    assert abs(waited - 1.0) < 1e-9, "held for max_hold, then posting goes"
    assert abs(sum(slept) - 1.0) < 1e-9


async def test_give_way_ends_with_the_quiet_spell() -> None:
    clock = Clock()

    async def sleep(seconds: float) -> None:
        clock.now += seconds  # no full batch meanwhile

    priority = IngestFirst(full_batch=500, quiet=0.3, max_hold=5.0, clock=clock, sleep=sleep)
    priority.took(500)
    clock.now += 0.1

    assert abs(await priority.give_way() - 0.2) < 1e-9
    assert await priority.give_way() == 0.0
