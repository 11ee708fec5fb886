"""Ingest first: posting gives way while transactions arrive faster than one batch holds.

The transactions topic is the bank's record, and storing it durably has to keep up with the
producers whatever Xero is doing; posting is paced by Xero and measured in hours (a sync
every 3 h), so it can wait a moment. Both share one process, one event loop and one
database, and a posting run left alone takes nearly all of them: building, storing and
settling a 1,000-line statement is heavy, and several are in flight per organisation.

So the consumer reports each batch it handles, and a batch at least half full (of as many
records as the consumer may take at once; the client hands over what one fetch brought, so
a backlog does not always fill one) means more are waiting behind it. Before each posting
batch, the runner gives way while such a batch is being handled and until a `quiet` spell
has passed since the last one was. (Counting the quiet from when a batch was taken instead
let posting in while the batch was still being stored, which under contention takes longer
than the quiet itself.)

Under a flood that never ends posting must still advance, but slowly: one batch per
`max_hold` for the whole process, not one per waiting account. (A hold per waiter let
twelve accounts of four organisations through every `max_hold` together.)
"""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

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
        self._handling = 0  # half-full batches being handled now
        self._last_full = -math.inf  # when the last one was handled
        # Since when ingest has been behind without a break, and when a batch of posting
        # last went through while it was: one may go each `max_hold` after the later.
        self._behind_since = -math.inf
        self._let_through = -math.inf

    @contextmanager
    def handling(self, records: int) -> Iterator[None]:
        """The consumer handles a batch of `records` inside this block."""
        if 2 * records < self._full_batch or self._quiet <= 0:
            yield
            return
        if self.hold_for() <= 0:
            self._behind_since = self._clock()
        self._handling += 1
        try:
            yield
        finally:
            self._handling -= 1
            self._last_full = self._clock()

    def hold_for(self) -> float:
        """How long posting should still wait now, as far as is known (0: go)."""
        if self._handling:
            return self._quiet
        return max(0.0, self._last_full + self._quiet - self._clock())

    async def give_way(self) -> float:
        """Wait while ingest is behind, letting one waiter of the process through each
        `max_hold`; the seconds waited."""
        started = self._clock()
        while (wait := self.hold_for()) > 0:
            turn = max(self._behind_since, self._let_through) + self._max_hold - self._clock()
            if turn <= 0:
                self._let_through = self._clock()
                break
            await self._sleep(min(wait, turn))
        waited = self._clock() - started
        if waited > 0 and self._held is not None:
            self._held.inc(waited)
        return waited
