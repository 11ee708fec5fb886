"""deploy/prometheus as promtool sees it: the scrape config and the rules load, and the
rules' own tests pass (each alert fires when it should and stays quiet when it should not).
Every alert DESIGN §7 asks for exists, says what happened and what to do, and names only
metrics the services export."""

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from services.connector.metrics import ConnectorMetrics
from services.scheduler.metrics import SchedulerMetrics
from services.syncer.metrics import SyncerMetrics
from shared.contracts.topics import ALL_TOPICS
from tests.helpers import installed

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "prometheus"
ALERTS = {
    "XerosyncServiceDown",  # a service down
    "XerosyncSyncStale",  # a connection not synced for more than two intervals
    "XerosyncDeadLettersGrowing",  # DLQ growing
    "XerosyncXeroRateLimitStorm",  # 429 storm
    "XerosyncTokenRefreshFailing",  # token refresh failures
    "XerosyncPendingBacklogOld",  # pending backlog age
    "XerosyncConsumerLagging",  # consumer lag
}
SEVERITIES = {"critical", "warning"}
# Labels an alert may carry: the scrape's and the metrics' bounded ones.
BOUNDED_LABELS = {"severity", "job", "instance", "service", "topic", "limit", "result", "group"}
_METRIC = re.compile(r"(?<![\w:])xerosync_\w+(?![\w:])")


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / name).read_text())
    return loaded


def _alerts() -> list[dict[str, Any]]:
    return [
        rule
        for group in _load("alerts.yml")["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ("check", "config", "deploy/prometheus/prometheus.yml"),
        ("check", "rules", "deploy/prometheus/alerts.yml"),
        ("test", "rules", "deploy/prometheus/alerts_test.yml"),
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool_accepts(argv: tuple[str, ...]) -> None:
    promtool = installed("promtool")
    done = subprocess.run(  # noqa: S603 - our own argv, no shell
        [promtool, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, (
        f"promtool {' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    )


def test_every_alert_exists_says_what_happened_and_what_to_do() -> None:
    alerts = _alerts()
    names = [alert["alert"] for alert in alerts]
    assert len(names) == len(set(names)), "alert names are unique"
    assert ALERTS - set(names) == set(), "every alert DESIGN §7 and issue 7 ask for"
    for alert in alerts:
        annotations = alert.get("annotations", {})
        assert annotations.get("summary", "").strip(), f"{alert['alert']}: summary"
        assert annotations.get("runbook", "").strip(), f"{alert['alert']}: runbook"
        assert alert.get("labels", {}).get("severity") in SEVERITIES, alert["alert"]


def test_every_alert_has_a_firing_and_a_quiet_case_with_bounded_labels() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    labels: set[str] = set()
    for case in _load("alerts_test.yml")["tests"]:
        for check in case.get("alert_rule_test", []):
            expected = check.get("exp_alerts") or []
            (firing if expected else quiet).add(check["alertname"])
            for alert in expected:
                labels |= set(alert.get("exp_labels", {}))
    names = {alert["alert"] for alert in _alerts()}
    assert names - firing == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown quiet"
    assert labels <= BOUNDED_LABELS, labels - BOUNDED_LABELS


def _exported() -> set[str]:
    """Every series name the three services' own metrics can expose."""
    names: set[str] = set()
    for metrics in (ConnectorMetrics, SchedulerMetrics, SyncerMetrics):
        registry = CollectorRegistry()  # one each: every service has xerosync_dlq_messages
        metrics(registry)
        for family in registry.collect():
            suffixes = {
                "counter": ("_total",),
                "histogram": ("_bucket", "_sum", "_count"),
            }.get(family.type, ("",))
            names |= {family.name + suffix for suffix in suffixes}
    return names


def test_the_rules_use_only_metrics_the_services_export() -> None:
    used = {
        name
        for group in _load("alerts.yml")["groups"]
        for rule in group["rules"]
        for name in _METRIC.findall(rule["expr"])
    }
    assert used, "the rules name xerosync metrics"
    assert used - _exported() == set()


@pytest.mark.parametrize(
    ("service", "metrics"),
    [("connector", ConnectorMetrics), ("scheduler", SchedulerMetrics), ("syncer", SyncerMetrics)],
)
def test_each_service_starts_with_a_dead_letter_series_per_topic_it_consumes(
    service: str, metrics: type[ConnectorMetrics | SchedulerMetrics | SyncerMetrics]
) -> None:
    """XerosyncDeadLettersGrowing takes increase(): a series born at its first dead letter
    would show no increase, and the alert would miss it."""
    registry = CollectorRegistry()
    metrics(registry)
    topics = {
        sample.labels["topic"]
        for family in registry.collect()
        if family.name == "xerosync_dlq_messages"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    consumed = {spec.name for spec in ALL_TOPICS if service in spec.consumer_services}
    assert consumed, service
    assert topics == consumed
