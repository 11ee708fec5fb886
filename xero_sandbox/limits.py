"""Xero's rate limits, enforced as Xero enforces them.

Per organisation and app: 5 calls in flight, 60 per minute, 5,000 per day. Per app: 10,000
per minute across every organisation, and 180 bank-feed statement calls per minute. Windows
slide (a call leaves the minute window 60 seconds after it was made); their length follows the
sandbox clock's `rate_limit_scale`, so a benchmark can run Xero's minute in one second.
"""

import math
from collections import defaultdict, deque
from dataclasses import dataclass

from xero_sandbox.clock import Clock

MINUTE = 60.0
DAY = 86_400.0


@dataclass
class Limits:
    concurrent: int = 5
    per_minute: int = 60
    per_day: int = 5_000
    app_per_minute: int = 10_000
    statements_per_minute: int = 180


@dataclass(frozen=True)
class Budget:
    """What a caller has left, as Xero reports it in its `X-*Limit-Remaining` headers."""

    minute_remaining: int
    day_remaining: int
    app_minute_remaining: int

    def headers(self) -> dict[str, str]:
        return {
            "X-MinLimit-Remaining": str(self.minute_remaining),
            "X-DayLimit-Remaining": str(self.day_remaining),
            "X-AppMinLimit-Remaining": str(self.app_minute_remaining),
        }


class LimitExceeded(Exception):
    """A call refused with 429. `problem` is Xero's `X-Rate-Limit-Problem` value."""

    def __init__(self, problem: str, retry_after: int, budget: Budget) -> None:
        super().__init__(f"rate limit exceeded: {problem}")
        self.problem = problem
        self.retry_after = retry_after
        self.budget = budget


class _Window:
    """Times of the calls made within the last `length` seconds."""

    def __init__(self) -> None:
        self._calls: deque[float] = deque()

    def count(self, now: float, length: float) -> int:
        while self._calls and self._calls[0] <= now - length:
            self._calls.popleft()
        return len(self._calls)

    def retry_after(self, now: float, length: float) -> int:
        """Whole seconds until the oldest call leaves the window (at least one)."""
        return max(1, math.ceil(self._calls[0] + length - now)) if self._calls else 1

    def add(self, now: float) -> None:
        self._calls.append(now)


class RateLimiter:
    def __init__(self, clock: Clock, limits: Limits) -> None:
        self._clock = clock
        self.limits = limits
        self._in_flight: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._minute: defaultdict[tuple[str, str], _Window] = defaultdict(_Window)
        self._day: defaultdict[tuple[str, str], _Window] = defaultdict(_Window)
        self._app_minute: defaultdict[str, _Window] = defaultdict(_Window)
        self._statements: defaultdict[str, _Window] = defaultdict(_Window)

    def budget(self, tenant_id: str, client_id: str) -> Budget:
        now, minute, day = (
            self._clock.monotonic(),
            self._clock.window(MINUTE),
            self._clock.window(DAY),
        )
        key = (tenant_id, client_id)
        return Budget(
            minute_remaining=max(0, self.limits.per_minute - self._minute[key].count(now, minute)),
            day_remaining=max(0, self.limits.per_day - self._day[key].count(now, day)),
            app_minute_remaining=max(
                0, self.limits.app_per_minute - self._app_minute[client_id].count(now, minute)
            ),
        )

    def acquire(self, tenant_id: str, client_id: str, *, statements: bool = False) -> Budget:
        """Count one call, or raise LimitExceeded without counting it.

        The caller must `release` once the call has been answered.
        """
        now, minute, day = (
            self._clock.monotonic(),
            self._clock.window(MINUTE),
            self._clock.window(DAY),
        )
        key = (tenant_id, client_id)
        budget = self.budget(tenant_id, client_id)
        checks: list[tuple[str, _Window, float, int]] = [
            ("minute", self._minute[key], minute, budget.minute_remaining),
            ("day", self._day[key], day, budget.day_remaining),
            ("appminute", self._app_minute[client_id], minute, budget.app_minute_remaining),
        ]
        if statements:
            window = self._statements[client_id]
            left = self.limits.statements_per_minute - window.count(now, minute)
            checks.append(("statements", window, minute, left))
        if self._in_flight[key] >= self.limits.concurrent:
            raise LimitExceeded("concurrent", 1, budget)
        for problem, window, length, remaining in checks:
            if remaining <= 0:
                raise LimitExceeded(problem, window.retry_after(now, length), budget)
        for _, window, _, _ in checks:
            window.add(now)
        self._in_flight[key] += 1
        return self.budget(tenant_id, client_id)

    def release(self, tenant_id: str, client_id: str) -> None:
        self._in_flight[(tenant_id, client_id)] -= 1
