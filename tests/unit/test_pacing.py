"""The syncer's rate-limit budget, in virtual time.

A fake clock stands in for time: its `sleep` either moves time forward at once (auto) or
waits for the test to `advance` it (manual, to look at who waits while time stands still).
"""

import asyncio
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest

from services.syncer.service_layer.pacing import AppBudget, DayBudgetSpent, Limits, TenantBudget

START = 1_000.0


class FakeClock:
    """Virtual time. Auto: `sleep(s)` moves time s forward and yields, so a sleeper always
    resumes at or after its deadline, as with a real clock. Manual: `sleep(s)` returns once
    the test has advanced time past the deadline."""

    def __init__(self, *, auto: bool = True) -> None:
        self.now = START
        self.auto = auto
        self.sleeps: list[float] = []
        self._wakers: list[asyncio.Event] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        deadline = self.now + seconds
        if self.auto:
            self.now = max(self.now, deadline)
            await asyncio.sleep(0)
            return
        while self.now < deadline:
            waker = asyncio.Event()
            self._wakers.append(waker)
            await waker.wait()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        wakers, self._wakers = self._wakers, []
        for waker in wakers:
            waker.set()


async def settle() -> None:
    """Let every runnable task run until it blocks."""
    for _ in range(50):
        await asyncio.sleep(0)


MARGIN = 0.02
"""The tests' margin (2% of a window: 1.2 s of a minute), fixed so their arithmetic holds
whatever the production default."""


def budget(clock: FakeClock, **limits: Any) -> AppBudget:
    return AppBudget(Limits(**{"margin": MARGIN, **limits}), clock=clock, sleep=clock.sleep)


async def calls(tenant: TenantBudget, count: int, *, statements: bool = False) -> None:
    for _ in range(count):
        async with tenant.call(statements=statements):
            pass


async def test_a_minutes_calls_go_through_and_the_next_waits_for_the_first_to_leave() -> None:
    clock = FakeClock()
    tenant = budget(clock).tenant("t1")

    await calls(tenant, 60)
    assert clock.now == START
    assert tenant.waited_seconds == 0

    await calls(tenant, 1)
    assert clock.now == pytest.approx(START + 60 + 0.02 * 60)
    assert tenant.waited_seconds == pytest.approx(61.2)


async def test_the_window_slides() -> None:
    clock = FakeClock()
    tenant = budget(clock).tenant("t1")
    await calls(tenant, 30)
    clock.advance(30)
    await calls(tenant, 30)
    # The first 30 leave at START + 60; the 61st waits only for them.
    await calls(tenant, 1)
    assert clock.now == pytest.approx(START + 61.2)
    # The next 29 fit as well; the 91st waits for the second batch (START + 30 + 61.2).
    await calls(tenant, 29)
    assert clock.now == pytest.approx(START + 61.2)
    await calls(tenant, 1)
    assert clock.now == pytest.approx(START + 91.2)


async def test_scale_makes_the_minute_a_second() -> None:
    clock = FakeClock()
    tenant = budget(clock, scale=60).tenant("t1")
    await calls(tenant, 61)
    assert clock.now == pytest.approx(START + 1.02)


async def test_at_most_five_in_flight_and_a_sixth_waits_for_one_to_finish() -> None:
    clock = FakeClock()
    tenant = budget(clock).tenant("t1")
    inside: list[int] = []
    done = [asyncio.Event() for _ in range(6)]

    async def one(index: int) -> None:
        async with tenant.call():
            inside.append(index)
            await done[index].wait()
            inside.remove(index)

    tasks = [asyncio.create_task(one(index)) for index in range(6)]
    await settle()
    assert inside == [0, 1, 2, 3, 4]

    done[2].set()
    await settle()
    assert sorted(inside) == [0, 1, 3, 4, 5]
    for event in done:
        event.set()
    await asyncio.gather(*tasks)
    assert clock.sleeps == []


async def test_an_exception_in_the_block_gives_back_the_in_flight_place() -> None:
    clock = FakeClock()
    tenant = budget(clock, concurrent=1).tenant("t1")
    with pytest.raises(RuntimeError):
        async with tenant.call():
            raise RuntimeError("Xero timed out")
    await asyncio.wait_for(calls(tenant, 1), timeout=1)


async def test_a_cancelled_waiter_gives_back_its_places() -> None:
    clock = FakeClock(auto=False)
    app = budget(clock, per_minute=1)
    tenant = app.tenant("t1")
    await calls(tenant, 1)
    waiting = asyncio.create_task(calls(tenant, 1))
    await settle()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    clock.advance(61.2)
    await asyncio.wait_for(calls(tenant, 1), timeout=1)
    await asyncio.wait_for(calls(app.tenant("t2"), 1), timeout=1)


async def test_headers_pad_the_local_log_so_the_next_call_waits() -> None:
    clock = FakeClock()
    tenant = budget(clock).tenant("t1")
    await calls(tenant, 10)
    clock.advance(5)
    # Another process spent the rest of this minute.
    tenant.observe({"X-MinLimit-Remaining": "0"})
    await calls(tenant, 1)
    # Our own 10 calls leave first; 9 more fit after them...
    assert clock.now == pytest.approx(START + 61.2)
    await calls(tenant, 9)
    assert clock.now == pytest.approx(START + 61.2)
    # ...then the 50 padded ones count from the observation: START + 5 + 60 + margin.
    await calls(tenant, 1)
    assert clock.now == pytest.approx(START + 5 + 61.2)


async def test_headers_never_lower_the_local_count() -> None:
    clock = FakeClock()
    tenant = budget(clock).tenant("t1")
    await calls(tenant, 60)
    tenant.observe({"x-minlimit-remaining": "59", "x-daylimit-remaining": "4999"})
    await calls(tenant, 1)
    assert clock.now == pytest.approx(START + 61.2)


async def test_header_names_are_case_insensitive_and_garbage_is_ignored() -> None:
    clock = FakeClock()
    tenant = budget(clock).tenant("t1")
    tenant.observe({"x-minlimit-remaining": "many", "X-DAYLIMIT-REMAINING": ""})
    unknown = tenant.day_remaining
    assert unknown is None
    tenant.observe({"x-MinLimit-Remaining": " 58 ", "X-Daylimit-Remaining": "4000"})
    assert tenant.day_remaining == 4000
    await calls(tenant, 58)
    assert clock.now == START
    await calls(tenant, 1)
    assert clock.now > START
    assert tenant.day_remaining == 4000 - 59


async def test_app_minute_header_holds_back_every_tenant() -> None:
    clock = FakeClock()
    app = budget(clock)
    app.tenant("t1").observe({"X-AppMinLimit-Remaining": "1"})
    await calls(app.tenant("t2"), 1)
    assert clock.now == START
    await calls(app.tenant("t3"), 1)
    assert clock.now == pytest.approx(START + 61.2)


async def test_the_app_minute_is_shared_across_tenants() -> None:
    clock = FakeClock()
    app = budget(clock, app_per_minute=10)
    await calls(app.tenant("t1"), 5)
    await calls(app.tenant("t2"), 5)
    assert clock.now == START
    third = app.tenant("t3")
    await calls(third, 1)
    assert clock.now == pytest.approx(START + 61.2)
    assert third.waited_seconds == pytest.approx(61.2)


async def test_statements_are_limited_across_tenants_and_other_calls_are_not() -> None:
    clock = FakeClock(auto=False)
    app = budget(clock)
    for index in range(3):
        await calls(app.tenant(f"t{index}"), 60, statements=True)
    assert clock.now == START

    statement = asyncio.create_task(calls(app.tenant("t3"), 1, statements=True))
    await settle()
    assert not statement.done()
    # An ordinary call of another tenant goes straight past the queued statement.
    await asyncio.wait_for(calls(app.tenant("t4"), 1), timeout=1)
    assert not statement.done()

    clock.advance(61.2)
    await asyncio.wait_for(statement, timeout=1)


async def test_retry_after_holds_back_the_tenant_only() -> None:
    clock = FakeClock()
    app = budget(clock)
    limited, other = app.tenant("t1"), app.tenant("t2")
    limited.rate_limited("minute", 7)
    await calls(other, 1)
    assert clock.now == START
    await calls(limited, 1)
    assert clock.now == pytest.approx(START + 7)


@pytest.mark.parametrize("problem", ["appminute", "AppMinute"])
async def test_retry_after_on_the_app_minute_holds_back_every_tenant(problem: str) -> None:
    clock = FakeClock()
    app = budget(clock)
    app.tenant("t1").rate_limited(problem, 3)
    await calls(app.tenant("t2"), 1)
    assert clock.now == pytest.approx(START + 3)


async def test_retry_after_on_statements_holds_back_statements_only() -> None:
    clock = FakeClock()
    app = budget(clock)
    app.tenant("t1").rate_limited("statements", 4)
    await calls(app.tenant("t2"), 1)
    assert clock.now == START
    await calls(app.tenant("t2"), 1, statements=True)
    assert clock.now == pytest.approx(START + 4)


@pytest.mark.parametrize("problem", ["minute", "statements"])
async def test_a_429_seen_while_queued_for_the_app_is_honoured(problem: str) -> None:
    clock = FakeClock(auto=False)
    app = budget(clock, app_per_minute=1)
    await calls(app.tenant("t0"), 1)
    tenant = app.tenant("t1")
    queued = asyncio.create_task(calls(tenant, 1, statements=True))
    await settle()
    tenant.rate_limited(problem, 100)
    clock.advance(61.2)
    await settle()
    assert not queued.done()
    clock.advance(40)
    await asyncio.wait_for(queued, timeout=1)


@pytest.mark.parametrize(("scale", "expected"), [(1.0, 60.0), (60.0, 1.0)])
async def test_retry_after_defaults_to_a_minute_window(scale: float, expected: float) -> None:
    clock = FakeClock()
    tenant = budget(clock, scale=scale).tenant("t1")
    tenant.rate_limited(None, None)
    await calls(tenant, 1)
    assert clock.now == pytest.approx(START + expected)


async def test_a_day_429_spends_the_day() -> None:
    clock = FakeClock()
    tenant = budget(clock).tenant("t1")
    tenant.rate_limited("DAY", 3_600)
    assert tenant.day_remaining == 0
    with pytest.raises(DayBudgetSpent):
        await calls(tenant, 1)
    assert clock.sleeps == []


async def test_the_day_stops_at_the_reserve_without_waiting() -> None:
    clock = FakeClock()
    app = budget(clock, per_day=30, day_reserve=20)
    tenant = app.tenant("t1")
    await calls(tenant, 10)
    with pytest.raises(DayBudgetSpent) as spent:
        await calls(tenant, 1)
    assert spent.value.remaining == 20
    assert spent.value.tenant_id == "t1"
    assert clock.now == START
    # The refused call neither counted nor kept an in-flight place.
    await calls(app.tenant("t2"), 1)
    assert clock.now == START


async def test_the_day_header_counts_toward_the_reserve() -> None:
    clock = FakeClock()
    tenant = budget(clock).tenant("t1")
    tenant.observe({"X-DayLimit-Remaining": "22"})
    await calls(tenant, 2)
    assert tenant.day_remaining == 20
    with pytest.raises(DayBudgetSpent):
        await calls(tenant, 1)


async def test_a_day_spent_while_waiting_is_raised_then() -> None:
    clock = FakeClock(auto=False)
    tenant = budget(clock, per_minute=1).tenant("t1")
    await calls(tenant, 1)
    waiting = asyncio.create_task(calls(tenant, 1))
    await settle()
    tenant.observe({"X-DayLimit-Remaining": "5"})
    clock.advance(61.2)
    with pytest.raises(DayBudgetSpent):
        await waiting


async def test_two_tenants_dont_block_each_other_on_their_own_limits() -> None:
    clock = FakeClock(auto=False)
    app = budget(clock)
    full, free = app.tenant("full"), app.tenant("free")
    await calls(full, 60)
    blocked = asyncio.create_task(calls(full, 1))
    await settle()
    assert not blocked.done()

    await asyncio.wait_for(calls(free, 60), timeout=1)
    assert free.waited_seconds == 0
    assert not blocked.done()
    clock.advance(61.2)
    await asyncio.wait_for(blocked, timeout=1)


async def test_waiters_on_the_app_budget_are_served_in_order() -> None:
    clock = FakeClock(auto=False)
    app = budget(clock, app_per_minute=5)
    await calls(app.tenant("first"), 5)
    served: list[str] = []

    async def one(tenant_id: str) -> None:
        async with app.tenant(tenant_id).call():
            served.append(tenant_id)

    tenants = [f"t{index:02}" for index in range(20)]
    tasks = []
    for tenant_id in tenants:
        tasks.append(asyncio.create_task(one(tenant_id)))
        await settle()
    for _ in range(4):
        clock.advance(61.2)
        await settle()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=1)
    assert served == tenants


async def test_one_budget_per_tenant_until_forgotten() -> None:
    clock = FakeClock()
    app = budget(clock)
    tenant = app.tenant("t1")
    assert app.tenant("t1") is tenant
    await calls(tenant, 60)
    app.forget("t1")
    app.forget("never-seen")
    fresh = app.tenant("t1")
    assert fresh is not tenant
    await calls(fresh, 60)
    assert clock.now == START


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="scale"):
        Limits(scale=0)
    with pytest.raises(ValueError, match="day_reserve"):
        Limits(per_day=10, day_reserve=10)
    with pytest.raises(ValueError, match="at least one"):
        Limits(concurrent=0)


@dataclass
class Sandbox:
    """Counts as Xero does, on the same clock: a call counts in a window while it started
    less than the window's length ago; every start is checked against every limit."""

    limits: Limits
    clock: FakeClock
    starts: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    checked: int = 0

    @staticmethod
    def _within(calls: list[float], now: float, length: float) -> int:
        return sum(1 for started in calls if started > now - length)

    def start(self, tenant_id: str, *, statements: bool) -> dict[str, str]:
        now, limits = self.clock(), self.limits
        self.starts[tenant_id].append(now)
        self.starts["app"].append(now)
        if statements:
            self.starts["statements"].append(now)
        self.in_flight[tenant_id] += 1
        minute = self._within(self.starts[tenant_id], now, limits.minute)
        day = self._within(self.starts[tenant_id], now, limits.day)
        app = self._within(self.starts["app"], now, limits.minute)
        statements_count = self._within(self.starts["statements"], now, limits.minute)
        assert self.in_flight[tenant_id] <= limits.concurrent
        assert minute <= limits.per_minute
        assert day <= limits.per_day - limits.day_reserve
        assert app <= limits.app_per_minute
        assert statements_count <= limits.statements_per_minute
        self.checked += 1
        return {
            "X-MinLimit-Remaining": str(limits.per_minute - minute),
            "X-DayLimit-Remaining": str(limits.per_day - day),
            "X-AppMinLimit-Remaining": str(limits.app_per_minute - app),
        }

    def end(self, tenant_id: str) -> None:
        self.in_flight[tenant_id] -= 1


@pytest.mark.parametrize("seed", range(8))
async def test_no_call_ever_exceeds_a_limit(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - a seeded, reproducible simulation
    clock = FakeClock()
    limits = Limits(
        concurrent=3,
        per_minute=8,
        per_day=150,
        app_per_minute=18,
        statements_per_minute=5,
        scale=60,
        day_reserve=4,
    )
    app = AppBudget(limits, clock=clock, sleep=clock.sleep)
    sandbox = Sandbox(limits, clock)
    spent: set[str] = set()

    async def worker(tenant_id: str, count: int) -> None:
        tenant = app.tenant(tenant_id)
        for _ in range(count):
            statements = rng.random() < 0.3
            try:
                async with tenant.call(statements=statements):
                    headers = sandbox.start(tenant_id, statements=statements)
                    await clock.sleep(rng.uniform(0, 0.2))
                    sandbox.end(tenant_id)
                    if rng.random() < 0.7:
                        tenant.observe(headers)
            except DayBudgetSpent:
                spent.add(tenant_id)
                return
            if rng.random() < 0.02:
                tenant.rate_limited(rng.choice(["minute", "appminute", None]), rng.uniform(0, 1))
            await clock.sleep(rng.uniform(0, 0.05))

    # Four workers per tenant, more than its in-flight places; enough calls to spend the day.
    await asyncio.gather(
        *(worker(f"t{tenant}", 50) for tenant in range(3) for _ in range(4)),
    )
    # Every tenant spent its day down to the reserve, exactly: the day never slid meanwhile.
    assert sandbox.checked == 3 * (limits.per_day - limits.day_reserve)
    assert spent == {"t0", "t1", "t2"}


async def test_a_call_counts_until_its_answer_then_a_whole_window_after_it() -> None:
    """Xero counts a call on arrival, after we sent it: a slow upload or a busy event loop
    must not let our window free the slot before Xero's does."""
    clock = FakeClock()
    tenant = budget(clock, per_minute=1).tenant("t")
    async with tenant.call():
        clock.advance(90)  # a slow answer: longer than the window itself
    answered = clock.now
    async with tenant.call():
        pass
    assert clock.now == pytest.approx(answered + 60 + MARGIN * 60)
