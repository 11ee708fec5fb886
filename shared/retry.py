"""Retrying transient failures, decided in one place: only `TransientError` is retried,
with exponential backoff and full jitter so recovering dependencies are not stampeded."""

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from shared.errors import TransientError
from shared.logging import get_logger

T = TypeVar("T")
log = get_logger(__name__)


@dataclass(frozen=True)
class Backoff:
    attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 10.0

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**attempt)]."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))  # noqa: S311


async def retry_transient(
    operation: Callable[[], Awaitable[T]], *, policy: Backoff, what: str
) -> T:
    """Run `operation`, retrying `TransientError`s; the last one propagates."""
    for attempt in range(policy.attempts):
        try:
            return await operation()
        except TransientError as error:
            if attempt + 1 == policy.attempts:
                raise
            delay = policy.delay(attempt)
            log.warning(
                "transient failure, retrying",
                what=what,
                error=str(error),
                attempt=attempt + 1,
                retry_in_s=round(delay, 3),
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")
