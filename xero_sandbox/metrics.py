"""The sandbox's own `/metrics`, so Prometheus's `sandbox` job sees what the stand-in for
Xero answered: calls by API and status, faults injected, replays of an `Idempotency-Key`.
Labels are bounded: two APIs, five methods (or `other`), a status code, four fault kinds."""

from prometheus_client import CollectorRegistry, Counter

from xero_sandbox.faults import FaultKind
from xero_sandbox.state import RequestRecord

APIS = ("accounting", "bankfeeds")
METHODS = frozenset({"GET", "PUT", "POST", "PATCH", "DELETE"})
# The faults that replace or break the answer; `latency` only delays it.
FAULT_KINDS: tuple[FaultKind, ...] = ("error", "rate_limit", "timeout", "drop_after_write")


class SandboxMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "xero_sandbox_requests",
            "Accounting and Bank Feeds API calls the sandbox answered, by API, method and "
            "status (0: the connection was dropped without an answer).",
            ["api", "method", "status"],
            registry=self.registry,
        )
        self.faults = Counter(
            "xero_sandbox_faults_injected",
            "API calls whose answer an injected fault (POST /admin/faults) replaced or "
            "broke, by kind: error, rate_limit, timeout, drop_after_write.",
            ["kind"],
            registry=self.registry,
        )
        self.delayed = Counter(
            "xero_sandbox_calls_delayed",
            "API calls an injected latency fault held before answering.",
            registry=self.registry,
        )
        self.replayed = Counter(
            "xero_sandbox_idempotent_replays",
            "Writes answered from the stored answer of an earlier call with the same "
            "Idempotency-Key.",
            registry=self.registry,
        )
        for kind in FAULT_KINDS:
            self.faults.labels(kind=kind)

    def observe(self, record: RequestRecord) -> None:
        api = "bankfeeds" if record.path.startswith("/bankfeeds.xro/") else "accounting"
        method = record.method if record.method in METHODS else "other"
        self.requests.labels(api=api, method=method, status=str(record.status)).inc()
        if record.fault is not None:
            self.faults.labels(kind=record.fault).inc()
        if record.replayed:
            self.replayed.inc()
        if record.delayed_ms:
            self.delayed.inc()
