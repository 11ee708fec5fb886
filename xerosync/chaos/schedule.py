"""When the chaos run strikes, drawn from its seed: process kills, 429 bursts, the replay,
the disconnect and reconnect, the archived and restored account. Xero's steady faults
(5xx, latency, timeouts, answers dropped after the write) are the sandbox's rules for the
whole workload, drawn by the sandbox from the same seed.

Pure: the same seed and sizes give the same schedule.
"""

import random
from dataclasses import dataclass
from typing import Literal

from xero_sandbox.faults import FaultRule

ActionKind = Literal[
    "kill_syncer",
    "kill_scheduler",
    "kill_connector",
    "rate_limit_burst",
    "xero_timeout",
    "xero_response_dropped",
    "replay_transactions",
    "archive_account",
    "restore_account",
    "disconnect_entity",
    "reconnect_entity",
]

RateLimitProblem = Literal["minute", "day", "appminute", "concurrent"]

API_PATHS = ("/api.xro/", "/bankfeeds.xro/")
"""Where Xero's steady faults strike: its APIs, not its identity service (a token refused
for a 5xx is the connector's retry to make, tested on its own)."""


PROBLEMS: tuple[RateLimitProblem, ...] = ("minute", "concurrent", "appminute")


@dataclass(frozen=True)
class Action:
    at: float
    """Seconds into the workload."""
    kind: ActionKind
    replica: int = 0
    """Which replica of the service (kills)."""
    pause: float = 0.0
    """Seconds the killed process stays down before it is started again."""
    calls: int = 0
    """rate_limit_burst: how many calls are refused with 429."""
    problem: RateLimitProblem = "minute"
    """rate_limit_burst: the X-Rate-Limit-Problem Xero names."""


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    archived_entity: int
    """The entity one of whose accounts is archived in Xero, then restored."""
    archived_currency: str
    disconnected_entity: int
    """The entity whose user disconnects, then reconnects."""

    def count(self, kind: ActionKind) -> int:
        return sum(1 for a in self.actions if a.kind == kind)


def plan(
    *,
    seed: int,
    duration_s: float,
    entities: int,
    syncer_kills: int,
    syncers: int,
    schedulers: int,
    other_kills: int,
    bursts: int,
) -> Plan:
    """`syncer_kills` SIGKILLs of a syncer at uniformly drawn moments; `other_kills` of the
    scheduler and of the connector each; `bursts` runs of 429s; one replay of the whole
    transactions topic; one account archived then restored; one entity disconnected then
    reconnected. Kills pause 0.2 to 4 s before the restart."""
    rng = random.Random(seed)  # noqa: S311 - a fault schedule, not cryptography

    def moment(low: float = 0.05, high: float = 0.9) -> float:
        return round(rng.uniform(low, high) * duration_s, 2)

    actions = [
        Action(moment(), "kill_syncer", rng.randrange(syncers), round(rng.uniform(0.2, 4), 2))
        for _ in range(syncer_kills)
    ]
    actions += [
        Action(moment(), "kill_scheduler", rng.randrange(schedulers), round(rng.uniform(0.2, 4), 2))
        for _ in range(other_kills)
    ]
    actions += [
        Action(moment(), "kill_connector", 0, round(rng.uniform(0.2, 4), 2))
        for _ in range(other_kills)
    ]
    actions += [
        Action(
            moment(),
            "rate_limit_burst",
            calls=rng.randrange(10, 60),
            problem=rng.choice(PROBLEMS),
        )
        for _ in range(bursts)
    ]
    # Xero's steady faults strike by chance; one of each of the rarest is also scheduled,
    # so that even a short run meets them.
    actions += [
        Action(moment(), "xero_timeout"),
        Action(moment(), "xero_response_dropped"),
        Action(moment(0.5, 0.7), "replay_transactions"),
        Action(moment(0.1, 0.2), "archive_account"),
        Action(moment(0.45, 0.55), "restore_account"),
        Action(moment(0.2, 0.3), "disconnect_entity"),
        Action(moment(0.35, 0.45), "reconnect_entity"),
    ]
    archived = rng.randrange(entities)
    disconnected = rng.choice([e for e in range(entities) if e != archived] or [archived])
    return Plan(
        actions=tuple(sorted(actions, key=lambda a: a.at)),
        archived_entity=archived,
        archived_currency=rng.choice(["HKD", "USD", "CNY"]),
        disconnected_entity=disconnected,
    )


def steady_rules(*, error_rate: float = 0.10, drop_rate: float = 0.02) -> list[FaultRule]:
    """Xero's faults for the whole workload: 5xx on 10% of API calls, the answer dropped
    after the write on 2% of the posting calls, latency (0.3-1.5 s) on 5% and a call never
    answered on 1%."""
    rules: list[FaultRule] = []
    for path in API_PATHS:
        rules += [
            FaultRule(kind="error", rate=error_rate, path=path, status=503),
            FaultRule(kind="latency", rate=0.03, path=path, latency_ms=300),
            FaultRule(kind="latency", rate=0.02, path=path, latency_ms=1500),
            FaultRule(kind="timeout", rate=0.01, path=path, timeout_s=8.0),
        ]
    rules += [
        FaultRule(
            kind="drop_after_write",
            rate=drop_rate,
            path="/bankfeeds.xro/1.0/statements",
            methods=["POST"],
        ),
        FaultRule(
            kind="drop_after_write",
            rate=drop_rate,
            path="/api.xro/2.0/banktransactions",
            methods=["PUT", "POST"],
        ),
    ]
    return rules
