"""Xero's rate limits, kept as a budget so the syncer never has to be told 429.

Xero counts, per organisation (tenant) and app, 5 calls in flight, 60 per minute and 5,000
per day; per app, 10,000 per minute across all tenants and 180 Bank Feeds `POST /Statements`
per minute. Its windows slide: a call leaves the minute window a minute after it arrived.
A 429 costs a round trip, a `Retry-After` wait and noise in the logs, and repeated 429s can
get an app throttled harder, so the syncer keeps its own log of the calls it started and
only starts one when every window it counts against has room (DESIGN.md §4).

The local log is only this process's view. Another process may have spent part of the
budget (the tenant's previous owner, the connector's feed checks), so every answer's
`X-*Limit-Remaining` headers *raise* the local count when Xero counts more than we do; they
never lower it, because a header describes the moment Xero answered and calls we started
since may not have arrived yet.

Everything here is plain asyncio and never does I/O; time comes from an injected clock and
sleep so tests run in virtual time.
"""

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

MINUTE = 60.0
DAY = 86_400.0

_MIN_SLEEP = 0.001
"""Shortest wait: a wait computed as a few ulps (float rounding at a window's edge) must
still move time forward, or a clock that only moves when slept on would spin for ever."""

_TENANT_LIMITS = frozenset({"minute", "day", "concurrent"})
_APP_LIMITS = frozenset({"appminute"})
_STATEMENTS_LIMITS = frozenset({"statements"})

_MINUTE_HEADER = "x-minlimit-remaining"
_DAY_HEADER = "x-daylimit-remaining"
_APP_MINUTE_HEADER = "x-appminlimit-remaining"


@dataclass(frozen=True)
class Limits:
    """Xero's limits, and how cautiously the syncer spends them."""

    concurrent: int = 5
    per_minute: int = 60
    per_day: int = 5_000
    app_per_minute: int = 10_000
    statements_per_minute: int = 180
    scale: float = 1.0
    """The sandbox's `rate_limit_scale`: the minute window lasts 60/scale s, the day
    86400/scale s. Above 1 only in tests and benchmarks against the sandbox."""
    margin: float = 0.005
    """Share of a window added when waiting for its oldest call to leave. Calls count
    from their answer, later than Xero counts them (on arrival), so a small one covers
    clock jitter between two calls."""
    day_reserve: int = 20
    """Calls of the day left to the connector (feed setup, checks): the syncer stops at
    this many remaining rather than leave a user unable to reconnect until tomorrow."""

    def __post_init__(self) -> None:
        counts = (self.concurrent, self.per_minute, self.app_per_minute)
        if min(*counts, self.statements_per_minute, self.per_day) < 1:
            raise ValueError("every limit must allow at least one call")
        if self.scale <= 0:
            raise ValueError("scale must be positive")
        if self.margin < 0:
            raise ValueError("margin must not be negative")
        if not 0 <= self.day_reserve < self.per_day:
            raise ValueError("day_reserve must be between 0 and per_day - 1")

    @property
    def minute(self) -> float:
        """Length of the minute window, in seconds of the injected clock."""
        return MINUTE / self.scale

    @property
    def day(self) -> float:
        """Length of the day window, in seconds of the injected clock."""
        return DAY / self.scale


class DayBudgetSpent(Exception):
    """The tenant's day budget (minus the connector's reserve) is used up: the run must stop.

    Raised instead of waiting, because the wait could be most of a day and the worker is
    better spent on another tenant.
    """

    def __init__(self, tenant_id: str, remaining: int) -> None:
        super().__init__(f"Xero day budget spent for tenant {tenant_id}: {remaining} left")
        self.tenant_id = tenant_id
        self.remaining = remaining


class _Window:
    """The calls counted in one sliding window: those in flight, and the answered ones by
    the time of their answer, oldest first.

    Xero counts a call when it arrives, somewhere between our sending it and its answer.
    Counting it from admission until the answer, and then for a whole window from the
    answer, is never earlier than Xero: a busy event loop or a slow upload cannot make our
    copy of the window free a slot before Xero's does.
    """

    def __init__(self, limit: int, length: float) -> None:
        self.limit = limit
        self.length = length
        self._calls: deque[float] = deque()
        self._in_flight = 0

    def count(self, now: float) -> int:
        calls = self._calls
        while calls and calls[0] + self.length <= now:
            calls.popleft()
        return len(calls) + self._in_flight

    def delay(self, now: float, margin: float) -> float:
        """Seconds until one more call fits (0 when it fits now), `margin` past the edge.
        While the calls that must leave are still in flight, a short poll."""
        excess = self.count(now) - self.limit + 1
        if excess <= 0:
            return 0.0
        if excess > len(self._calls):
            return min(_IN_FLIGHT_POLL, self.length / 100)
        # The call that must leave so that `limit - 1` remain.
        return self._calls[excess - 1] + self.length + margin - now

    def start(self) -> None:
        self._in_flight += 1

    def finish(self, now: float) -> None:
        self._in_flight = max(0, self._in_flight - 1)
        self.add(now)

    def add(self, now: float, calls: int = 1) -> None:
        # `now` comes from a monotonic clock, so appending keeps the log in order.
        self._calls.extend([now] * calls)

    def pad(self, now: float, at_least: int) -> None:
        """Make the window hold at least `at_least` calls, the missing ones started `now`.

        `now` is the latest moment they could have been made, so they stay in the window
        at least as long as the calls Xero counted: the conservative choice.
        """
        missing = min(at_least, self.limit) - self.count(now)
        if missing > 0:
            self.add(now, missing)


_IN_FLIGHT_POLL = 0.05
"""Seconds between looks while a window is full of calls still in flight."""


def _remaining(headers: Mapping[str, str], name: str) -> int | None:
    """A non-negative count from a header, or None when missing or not a number."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = int(value.strip())
    except (ValueError, AttributeError):
        return None
    return max(0, number)


class AppBudget:
    """Shared by every tenant in this process: the app-wide minute budget and the Statements
    budget, and the per-tenant budgets by tenant id."""

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._minute = _Window(limits.app_per_minute, limits.minute)
        self._statements = _Window(limits.statements_per_minute, limits.minute)
        self._not_before = float("-inf")
        self._statements_not_before = float("-inf")
        # asyncio.Lock wakes its waiters in order and lets no newcomer jump the queue, so
        # tenants waiting on an app-wide window are served first come, first served.
        self._gate = asyncio.Lock()
        self._statements_gate = asyncio.Lock()
        self._tenants: dict[str, TenantBudget] = {}

    def tenant(self, tenant_id: str) -> "TenantBudget":
        """The tenant's budget: created on first use, the same object after (until forgotten),
        so every worker call for one tenant counts against one log."""
        budget = self._tenants.get(tenant_id)
        if budget is None:
            budget = self._tenants[tenant_id] = TenantBudget(self, tenant_id)
        return budget

    def forget(self, tenant_id: str) -> None:
        """Drop a tenant's state once its worker released it: another process may own the
        tenant next, and a later owner here learns the spent budget from Xero's headers."""
        self._tenants.pop(tenant_id, None)

    def _delay(self, now: float) -> float:
        margin = self.limits.margin * self.limits.minute
        return max(self._minute.delay(now, margin), self._not_before - now)

    def _statements_delay(self, now: float) -> float:
        margin = self.limits.margin * self.limits.minute
        return max(self._statements.delay(now, margin), self._statements_not_before - now)

    async def _wait(self, delay: Callable[[float], float]) -> None:
        """Sleep until `delay(now)` says 0; re-checked after each sleep because a header or
        a 429 seen meanwhile may have pushed the time further."""
        while (seconds := delay(self._clock())) > 0:
            await self._sleep(max(seconds, _MIN_SLEEP))


class TenantBudget:
    """One tenant's budget: its minute and day windows, its in-flight places, and the app's."""

    def __init__(self, app: AppBudget, tenant_id: str) -> None:
        limits = app.limits
        self.tenant_id = tenant_id
        self.waited_seconds = 0.0
        """Total time this tenant's calls spent waiting for a slot (for metrics)."""
        self._app = app
        self._limits = limits
        self._minute = _Window(limits.per_minute, limits.minute)
        self._day = _Window(limits.per_day, limits.day)
        self._not_before = float("-inf")
        self._day_known = False
        self._in_flight = asyncio.Semaphore(limits.concurrent)
        # One admission at a time per tenant: the decision (check every window, then record
        # the call) must not interleave with another call of the same tenant.
        self._gate = asyncio.Lock()

    @property
    def day_remaining(self) -> int | None:
        """Calls left today as best known: Xero's last `X-DayLimit-Remaining` less the calls
        started since (the local day log, padded from that header, counts both), never below
        0. None until Xero has told us, since before that the local log knows only our own
        calls."""
        if not self._day_known:
            return None
        return max(0, self._limits.per_day - self._day.count(self._app._clock()))

    @contextlib.asynccontextmanager
    async def call(self, *, statements: bool = False) -> AsyncIterator[None]:
        """Wait for a slot that every limit allows, count the call, and hold one of the
        in-flight places until the block exits.

        Raises DayBudgetSpent (before waiting) when the day is spent. `statements` marks a
        Bank Feeds `POST /Statements`, which also counts against the app's statements window.
        """
        self._check_day()
        clock = self._app._clock
        started = clock()
        async with self._in_flight:
            try:
                async with self._gate:
                    windows = await self._admit(statements=statements)
            finally:
                self.waited_seconds += clock() - started
            try:
                yield
            finally:
                answered = clock()
                for window in windows:
                    window.finish(answered)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Correct the local view from an answer's `X-*Limit-Remaining` headers.

        Header names are compared case-insensitively; missing or garbage values are ignored
        (a proxy may strip them, and a wrong number must not stop the syncer). Counts only
        ever go up: Xero's number is a floor for what its window holds.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        now = self._app._clock()
        limits = self._limits
        minute = _remaining(lowered, _MINUTE_HEADER)
        if minute is not None:
            self._minute.pad(now, limits.per_minute - minute)
        day = _remaining(lowered, _DAY_HEADER)
        if day is not None:
            self._day.pad(now, limits.per_day - day)
            self._day_known = True
        app_minute = _remaining(lowered, _APP_MINUTE_HEADER)
        if app_minute is not None:
            self._app._minute.pad(now, limits.app_per_minute - app_minute)

    def rate_limited(self, limit: str | None, retry_after: float | None) -> None:
        """After a 429: no call of this tenant (minute, day, concurrent, or no/unknown
        problem named) or of the app (appminute) starts before `retry_after` seconds
        (default: one minute window) have passed; for `statements`, no Statements call of
        the app starts before then, since other calls don't count against that limit.

        A `day` 429 also marks the day as spent, so the next call raises DayBudgetSpent
        rather than waiting what may be hours.
        """
        now = self._app._clock()
        wait = self._limits.minute if retry_after is None else max(0.0, retry_after)
        until = now + wait
        problem = (limit or "").strip().lower()
        app = self._app
        if problem in _APP_LIMITS:
            app._not_before = max(app._not_before, until)
        elif problem in _STATEMENTS_LIMITS:
            app._statements_not_before = max(app._statements_not_before, until)
        else:
            self._not_before = max(self._not_before, until)
        if problem == "day":
            self._day.pad(now, self._limits.per_day)
            self._day_known = True

    def _check_day(self) -> None:
        remaining = self._limits.per_day - self._day.count(self._app._clock())
        if remaining <= self._limits.day_reserve:
            raise DayBudgetSpent(self.tenant_id, max(0, remaining))

    def _delay(self, now: float) -> float:
        margin = self._limits.margin * self._limits.minute
        return max(self._minute.delay(now, margin), self._not_before - now)

    async def _admit(self, *, statements: bool) -> list[_Window]:
        """Wait until every window has room, then count the call in all of them at once.

        The tenant's own windows are waited for outside the app's locks, so a tenant at its
        own limit never holds up the others; the Statements window is waited for under its
        own lock, so Statements calls queue without holding up other calls.
        """
        app = self._app
        while True:
            self._check_day()
            await app._wait(self._delay)
            if statements:
                async with app._statements_gate:
                    await app._wait(app._statements_delay)
                    if windows := await self._record(statements=True):
                        return windows
            elif windows := await self._record(statements=False):
                return windows

    async def _record(self, *, statements: bool) -> list["_Window"]:
        """In the app's queue: wait for the app window, then count the call (in flight) in
        every window it belongs to, if the tenant's and Statements windows still allow it;
        the windows, or none when a header or a 429 that arrived while this call queued
        says it must wait again (the caller starts over)."""
        app = self._app
        async with app._gate:
            await app._wait(app._delay)
            now = app._clock()
            if self._delay(now) > 0 or (statements and app._statements_delay(now) > 0):
                return []
            self._check_day()
            windows = [self._minute, self._day, app._minute]
            if statements:
                windows.append(app._statements)
            for window in windows:
                window.start()
            return windows
