"""Time, injected: the scheduler asks a clock for `now` and waits on it, so tests drive
hours of schedule in milliseconds (`ManualClock`) while production uses the system's."""

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def wait(self, until: datetime, wake: asyncio.Event) -> None:
        """Return at `until`, or earlier when `wake` is set."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait(self, until: datetime, wake: asyncio.Event) -> None:
        delay = (until - self.now()).total_seconds()
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await wake.wait()


class ManualClock:
    """A clock that moves only when told to; waiters wake when it passes their time."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        return self.set(self._now + delta)

    def set(self, moment: datetime) -> datetime:
        if moment < self._now:
            raise ValueError("a clock does not go backwards")
        self._now = moment
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        return moment

    async def wait(self, until: datetime, wake: asyncio.Event) -> None:
        while self._now < until and not wake.is_set():
            moved, woken = self._moved.wait(), wake.wait()
            waiters = {asyncio.ensure_future(moved), asyncio.ensure_future(woken)}
            _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()
