"""Faults the admin API injects into API calls: 5xx, 429s, latency, timeouts, lost answers.

Each rule matches API calls by path prefix (case-insensitive) and method, fires on a share of
them (`rate`, drawn from a seeded generator so a run can be repeated), and may be limited to a
number of firings (`times`), counted only on calls the rule changed (a one-off drop drawn
for a call that a 503, a 429 or a refused token answered first is not used up). Kinds:
- `error`: answer `status` (5xx) without doing the work;
- `rate_limit`: answer 429 without doing the work, exactly as Xero's rate limiter refuses a
  call (`Retry-After: retry_after_s`, `X-Rate-Limit-Problem: problem` and the caller's
  `X-*Limit-Remaining`), for bursts of 429s without exhausting a real budget. Like the real
  limiter it strikes only calls that got past the token and tenant checks (a refused call
  does not use the rule up), and the call does not count against the budget;
- `latency`: wait `latency_ms` before doing the work;
- `timeout`: never answer (hold the call `timeout_s`, then drop it), without doing the work;
- `drop_after_write`: do the work, store its answer for `Idempotency-Key`, then break the
  connection instead of answering, so the client cannot tell whether it happened.
"""

import random
from collections.abc import Collection
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["error", "rate_limit", "latency", "timeout", "drop_after_write"]
RateLimitProblem = Literal["minute", "day", "appminute", "concurrent"]


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    rate: float = Field(default=1.0, ge=0.0, le=1.0, description="Share of matching calls hit.")
    times: int | None = Field(default=None, ge=1, description="Fire at most this often.")
    path: str = Field(default="", description="Path prefix, e.g. /bankfeeds.xro/1.0/Statements.")
    methods: list[str] | None = Field(default=None, description="e.g. ['POST']; all if unset.")
    status: int = Field(default=503, ge=500, le=599, description="For kind=error.")
    retry_after_s: int = Field(
        default=1, ge=1, le=3600, description="For kind=rate_limit: the Retry-After, seconds."
    )
    problem: RateLimitProblem = Field(
        default="minute", description="For kind=rate_limit: the X-Rate-Limit-Problem."
    )
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
        # Firings of `times`-limited rules drawn by calls still in flight, by id(rule).
        self._held: dict[int, int] = {}

    def replace(self, plan: FaultPlanIn) -> None:
        self.rules = [rule.model_copy() for rule in plan.rules]
        self._random = random.Random(plan.seed)  # noqa: S311 - fault draws, not cryptography
        self.fired = {}
        self._held = {}

    def add(self, rule: FaultRule) -> None:
        """One more rule beside those in force, drawn from the same generator."""
        self.rules.append(rule.model_copy())

    def draw(
        self, method: str, path: str, *, kinds: Collection[FaultKind] | None = None
    ) -> list[FaultRule]:
        """The rules of `kinds` (all if unset) drawn for this call. Rules of other kinds are
        not drawn, so they use up no draw. A drawn rule with `times` is held for the call:
        the caller then reports each one as `struck` (it changed the answer) or `unused`
        (another fault, a refusal or the rate limiter answered first), so a one-off rule is
        spent only by the call it takes effect on."""
        firing = []
        for rule in self.rules:
            if kinds is not None and rule.kind not in kinds:
                continue
            held = self._held.get(id(rule), 0)
            if rule.times is not None and held >= rule.times:  # all held by calls in flight
                continue
            if not rule.matches(method, path) or self._random.random() >= rule.rate:
                continue
            if rule.times is not None:
                self._held[id(rule)] = held + 1
            firing.append(rule)
        return firing

    def struck(self, rule: FaultRule) -> None:
        """`rule` took effect: it is counted, and retired once its `times` are spent."""
        self.fired[rule.kind] = self.fired.get(rule.kind, 0) + 1
        if rule.times is None or not self._release(rule):
            return
        rule.times -= 1
        if rule.times == 0:
            self.rules = [r for r in self.rules if r is not rule]

    def unused(self, rules: Collection[FaultRule]) -> None:
        """Drawn rules that did not take effect: their hold is given back."""
        for rule in rules:
            if rule.times is not None:
                self._release(rule)

    def _release(self, rule: FaultRule) -> bool:
        """Lets go of one hold on `rule`; False if the rule is no longer planned (the plan
        was replaced while the call was in flight)."""
        if not any(r is rule for r in self.rules):
            return False
        held = self._held.pop(id(rule), 0) - 1
        if held > 0:
            self._held[id(rule)] = held
        return True
