"""Faults the admin API injects into API calls: 5xx, latency, timeouts, lost answers.

Each rule matches API calls by path prefix (case-insensitive) and method, fires on a share of
them (`rate`, drawn from a seeded generator so a run can be repeated), and may be limited to a
number of firings (`times`). Kinds:
- `error`: answer `status` (5xx) without doing the work;
- `latency`: wait `latency_ms` before doing the work;
- `timeout`: never answer (hold the call `timeout_s`, then drop it), without doing the work;
- `drop_after_write`: do the work, store its answer for `Idempotency-Key`, then break the
  connection instead of answering, so the client cannot tell whether it happened.
"""

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["error", "latency", "timeout", "drop_after_write"]


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    rate: float = Field(default=1.0, ge=0.0, le=1.0, description="Share of matching calls hit.")
    times: int | None = Field(default=None, ge=1, description="Fire at most this often.")
    path: str = Field(default="", description="Path prefix, e.g. /bankfeeds.xro/1.0/Statements.")
    methods: list[str] | None = Field(default=None, description="e.g. ['POST']; all if unset.")
    status: int = Field(default=503, ge=500, le=599, description="For kind=error.")
    latency_ms: int = Field(default=0, ge=0, le=600_000, description="For kind=latency.")
    timeout_s: float = Field(default=120.0, gt=0, le=3600, description="For kind=timeout.")

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method.upper() not in {m.upper() for m in self.methods}:
            return False
        return path.lower().startswith(self.path.lower())


class FaultPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[FaultRule] = Field(default_factory=list)
    seed: int | None = Field(default=None, description="Seed for the draws; random if unset.")


class FaultPlan:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self._random = random.Random()  # noqa: S311 - fault draws, not cryptography
        self.fired: dict[str, int] = {}

    def replace(self, plan: FaultPlanIn) -> None:
        self.rules = [rule.model_copy() for rule in plan.rules]
        self._random = random.Random(plan.seed)  # noqa: S311 - fault draws, not cryptography
        self.fired = {}

    def draw(self, method: str, path: str) -> list[FaultRule]:
        """The rules that fire for this call (each used-up rule is retired)."""
        firing = []
        for rule in list(self.rules):
            if not rule.matches(method, path) or self._random.random() >= rule.rate:
                continue
            firing.append(rule)
            self.fired[rule.kind] = self.fired.get(rule.kind, 0) + 1
            if rule.times is not None:
                rule.times -= 1
                if rule.times == 0:
                    self.rules.remove(rule)
        return firing
