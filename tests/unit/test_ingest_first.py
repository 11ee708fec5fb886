"""Posting gives way to ingest: held while half-full batches are being handled and for a
quiet spell after the last; under a flood that never ends, one batch of the whole process
goes each `max_hold`."""

import pytest

from services.syncer.service_layer.priority import IngestFirst


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def handled(priority: IngestFirst, records: int) -> None:
    with priority.handling(records):
        pass


def flood(clock: Clock, priority: IngestFirst, seconds: float) -> None:
    """Full batches keep being handled, one every 50 ms, while posting waits `seconds`."""
    end = clock.now + seconds
    while clock.now + 0.05 < end:
        clock.now += 0.05
        handled(priority, 500)
    clock.now = end
    handled(priority, 500)


def flooded(clock: Clock, *, max_hold: float) -> IngestFirst:
    """An IngestFirst whose waits pass under a flood."""

    async def sleep(seconds: float) -> None:
        flood(clock, priority, seconds)

    priority = IngestFirst(full_batch=500, quiet=0.3, max_hold=max_hold, clock=clock, sleep=sleep)
    return priority


def test_posting_goes_at_once_while_batches_arrive_short() -> None:
    priority = IngestFirst(full_batch=500, quiet=0.3, max_hold=5.0, clock=Clock())
    handled(priority, 249)
    handled(priority, 12)
    assert priority.hold_for() == 0.0


def test_a_half_full_batch_holds_posting_while_handled_and_a_quiet_spell_after() -> None:
    clock = Clock()
    priority = IngestFirst(full_batch=500, quiet=0.3, max_hold=5.0, clock=clock)
    with priority.handling(250):
        clock.now += 2.0  # storing it takes longer than the quiet spell
        assert priority.hold_for() > 0, "held all the while the batch is handled"
    assert priority.hold_for() == pytest.approx(0.3)
    clock.now += 0.2
    assert priority.hold_for() == pytest.approx(0.1)
    clock.now += 0.1
    assert priority.hold_for() == 0.0


def test_a_batch_that_fails_still_ends_its_hold() -> None:
    clock = Clock()
    priority = IngestFirst(full_batch=500, quiet=0.3, max_hold=5.0, clock=clock)
    with pytest.raises(RuntimeError), priority.handling(500):
        raise RuntimeError("the database went away")
    clock.now += 0.3
    assert priority.hold_for() == 0.0


def test_a_quiet_of_zero_turns_giving_way_off() -> None:
    priority = IngestFirst(full_batch=500, quiet=0, max_hold=5.0, clock=Clock())
    with priority.handling(500):
        assert priority.hold_for() == 0.0


async def test_give_way_waits_out_a_flood_no_longer_than_max_hold() -> None:
    clock = Clock()
    priority = flooded(clock, max_hold=1.0)
    handled(priority, 500)

    waited = await priority.give_way()

    assert waited == pytest.approx(1.0), "held for max_hold, then posting goes"


async def test_under_a_flood_one_batch_of_the_whole_process_goes_each_max_hold() -> None:
    """Twelve accounts waiting together do not each get a batch through every `max_hold`:
    the process does, one at a time."""
    clock = Clock()
    priority = flooded(clock, max_hold=1.0)
    handled(priority, 500)
    went_at: list[float] = []

    for _ in range(3):  # the others wait behind the one let through
        await priority.give_way()
        went_at.append(clock.now)

    assert went_at == pytest.approx([101.0, 102.0, 103.0])


async def test_a_new_flood_waits_a_whole_max_hold_again() -> None:
    clock = Clock()
    priority = flooded(clock, max_hold=1.0)
    handled(priority, 500)
    await priority.give_way()  # let through at 101
    clock.now += 10  # a quiet spell: ingest caught up
    assert priority.hold_for() == 0.0
    handled(priority, 500)  # behind again at 111

    assert await priority.give_way() == pytest.approx(1.0)


async def test_give_way_ends_with_the_quiet_spell() -> None:
    clock = Clock()

    async def sleep(seconds: float) -> None:
        clock.now += seconds  # no full batch meanwhile

    priority = IngestFirst(full_batch=500, quiet=0.3, max_hold=5.0, clock=clock, sleep=sleep)
    handled(priority, 500)
    clock.now += 0.1

    assert await priority.give_way() == pytest.approx(0.2)
    assert await priority.give_way() == 0.0
