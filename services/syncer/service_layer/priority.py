"""Ingest first: posting gives way while transactions arrive faster than one batch holds.

The transactions topic is the bank's record, and storing it durably has to keep up with the
producers whatever Xero is doing; posting is paced by Xero and measured in hours (a sync
every 3 h), so it can wait a moment. Both share one process, one event loop and one
database, and a posting run left alone takes nearly all of them: building, storing and
settling a 1,000-line statement is heavy, and several are in flight per organisation.

So the consumer reports each batch it takes, and a batch at least half full (of as many
records as the consumer may take at once; the client hands over what one fetch brought, so
a backlog does not always fill one) means more are waiting behind it. Before each posting
batch, the runner gives way until a `quiet` spell passes without a full batch, but for at
most `max_hold`, so posting still advances, slowly, under a flood that never ends.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Counter


class IngestFirst:
    def __init__(
        self,
        *,
        full_batch: int,
        quiet: float,
        max_hold: float,
        held: Counter | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._full_batch = full_batch
        self._quiet = quiet
        self._max_hold = max_hold
        self._held = held
        self._clock = clock
        self._sleep = sleep
        self._last_full: float | None = None

    def took(self, records: int) -> None:
        """The consumer took a batch of `records`."""
        if 2 * records >= self._full_batch:
            self._last_full = self._clock()

    def hold_for(self) -> float:
        """How long posting should still wait now (0: go)."""
        if self._last_full is None or self._quiet <= 0:
            return 0.0
        return max(0.0, self._last_full + self._quiet - self._clock())

    async def give_way(self) -> float:
        """Wait while ingest is behind, at most `max_hold`; the seconds waited."""
        started = self._clock()
        while (wait := self.hold_for()) > 0:
            left = self._max_hold - (self._clock() - started)
            if left <= 0:
                break
            await self._sleep(min(wait, left))
        waited = self._clock() - started
        if waited > 0 and self._held is not None:
            self._held.inc(waited)
        return waited
