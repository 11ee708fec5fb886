"""The sandbox's sense of time, which tests and benchmarks may bend.

Two knobs, both set through the admin API:
- `advance(seconds)` moves the sandbox's clock forward, so token lifetimes (30 minutes,
  60 days) and idempotency windows can be crossed without waiting;
- `rate_limit_scale` shortens the rate-limit windows: at 60, Xero's minute lasts one real
  second and its day 24 real minutes.
"""

import time
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0
        self.rate_limit_scale = 1.0

    def monotonic(self) -> float:
        """Seconds on a monotonic scale that includes every `advance`."""
        return time.monotonic() + self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the sandbox's clock only moves forward")
        self._offset += seconds

    def window(self, xero_seconds: float) -> float:
        """The real length of one of Xero's rate-limit windows under the current scale."""
        return xero_seconds / self.rate_limit_scale

    def reset(self) -> None:
        self._offset = 0.0
        self.rate_limit_scale = 1.0
