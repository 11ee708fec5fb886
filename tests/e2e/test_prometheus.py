"""Prometheus watching xerosync as users run it: Debian's prometheus scrapes the connector,
the scheduler and the syncer (processes on the test's broker and databases, posting to the
sandbox, which is scraped too) with deploy/prometheus/prometheus.yml's jobs, and evaluates
deploy/prometheus/alerts.yml as committed. Every target is up, the contract's series arrive
with their bounded labels, a healthy stack raises nothing, and a record refused to the DLQ
raises XerosyncDeadLettersGrowing (no `for:`, so the committed rule needs no shortening)."""

import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.contracts.topics import BANK_TRANSACTIONS
from tests.conftest import Infrastructure
from tests.e2e.posting import PostingStack, posting_stack
from tests.helpers import eventually, installed, ledger
from xerosync.devstack.processes import ManagedProcess, free_port
from xerosync.devstack.stack import Stack
from xerosync.producer import EventWriter
from xerosync.services import SERVICES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
SYNCER_SETTINGS = {"SYNCER_RUN_POLL": "200ms"}
ENTITY, ACCOUNT = "ent-prom", "acc-prom-hkd"
DLQ_ALERT = "XerosyncDeadLettersGrowing"


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    process: ManagedProcess

    async def api(self, endpoint: str, **params: Any) -> Any:
        """`data` of a /api/v1 answer, which must be a success."""
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            answer = await client.get(f"/api/v1/{endpoint}", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "success", body
        return body["data"]

    async def series(self, selector: str) -> list[dict[str, str]]:
        """Every series Prometheus holds that `selector` matches, as label sets."""
        found: list[dict[str, str]] = await self.api("series", **{"match[]": selector})
        return found

    async def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing)."""
        return list((await self.api("alerts"))["alerts"])


def scrape_config(stack: Stack, sandbox_url: str) -> dict[str, Any]:
    """The committed config aimed at this test's processes: each service's job and the
    sandbox's, with their labels, scrape their process every second; rules are evaluated
    every second."""
    committed: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = []
    for job in committed["scrape_configs"]:
        name = job["job_name"]
        if name == "sandbox":
            target = sandbox_url.removeprefix("http://")
        else:
            target = f"127.0.0.1:{stack.http_port(name)}"
        # No compose DNS here: the same job, its discovery replaced by this process.
        found = {key: value for key, value in job.items() if not key.endswith("_sd_configs")}
        jobs.append(found | {"static_configs": [{"targets": [target]}]})
    assert {job["job_name"] for job in jobs} == {*SERVICES, "sandbox"}
    second = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    return committed | {
        "global": committed["global"] | second,
        "rule_files": [str(DEPLOY / "alerts.yml")],
        "scrape_configs": jobs,
    }


def committed_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def start_prometheus(binary: str, config: dict[str, Any], work_dir: Path) -> PrometheusServer:
    """Debian's prometheus on a free port, its storage under `work_dir` (the caller stops it)."""
    config_file = work_dir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    process = ManagedProcess(
        "prometheus",
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={work_dir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        log_path=work_dir / "prometheus.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http_ok(f"{url}/-/ready", timeout=30)
    except BaseException:
        process.kill()
        raise
    return PrometheusServer(url=url, process=process)


@pytest.fixture
def prometheus_binary() -> str:
    return installed("prometheus")


@pytest.fixture
async def posting(
    prometheus_binary: str,
    infrastructure: Infrastructure,
    database_templates: dict[str, str],
    tmp_path: Path,
) -> AsyncIterator[PostingStack]:
    """The sandbox, the connector, the scheduler and the syncer, each a process."""
    async with posting_stack(
        infrastructure,
        database_templates,
        tmp_path,
        sink="bankfeeds",
        syncer_settings=SYNCER_SETTINGS,
        scheduler=True,
    ) as stack:
        yield stack


@pytest.fixture
def prometheus(
    prometheus_binary: str, posting: PostingStack, tmp_path: Path
) -> Iterator[PrometheusServer]:
    config = scrape_config(posting.stack, posting.sandbox.url)
    server = start_prometheus(prometheus_binary, config, tmp_path)
    try:
        yield server
    finally:
        server.process.kill()


def _instant(stamp: str) -> float:
    """Prometheus's RFC 3339 timestamps carry nanoseconds; Python reads microseconds."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", stamp)).timestamp()


async def test_prometheus_scrapes_every_service_and_raises_the_dlq_alert(
    posting: PostingStack, prometheus: PrometheusServer
) -> None:
    # Every service's target and the sandbox's are up, each labelled with its service.
    targets = await eventually(
        lambda: prometheus.api("targets", state="active"),
        until=lambda t: (
            {x["labels"]["job"] for x in t["activeTargets"] if x["health"] == "up"}
            == {*SERVICES, "sandbox"}
        ),
        what="every target up",
    )
    for target in targets["activeTargets"]:
        assert target["labels"]["service"] == target["labels"]["job"], target["labels"]

    # A connection posts its transactions: the scheduler's `connected` SyncDue runs at once.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    events = ledger(ACCOUNT, 5, entity=ENTITY, start=start)
    tenant_id = await posting.organisation("Prometheus Trading")
    await posting.ingest(ENTITY, {ACCOUNT: events})
    connected = await posting.connect(
        ENTITY, tenant_id, [ACCOUNT], start_date=(start - timedelta(days=10)).date().isoformat()
    )
    # Both call Xero (the connector while connecting); each is scraped on its own beat.
    posted = await eventually(
        lambda: prometheus.series("xerosync_xero_requests_total"),
        until=lambda found: (
            {s["service"] for s in found} == {"connector", "syncer"}
            and any(s.get("operation") == "create_statements" for s in found)
        ),
        what="the connector's calls and the syncer's posting calls scraped",
    )

    # The sandbox answered them, and says so.
    answered = await eventually(
        lambda: prometheus.series("xero_sandbox_requests_total"),
        until=lambda found: any(s.get("api") == "bankfeeds" for s in found),
        what="the sandbox's answers scraped",
    )
    assert {s["service"] for s in answered} == {"sandbox"}

    # The contract's series, with the labels DESIGN §7 gives them.
    assert {(s["service"], s["api"], s["operation"], s["status"]) for s in posted} >= {
        ("syncer", "bankfeeds", "create_statements", "202")
    }
    ingested = await prometheus.series("xerosync_transactions_ingested_total")
    assert {(s["service"], s["result"]) for s in ingested} == {
        ("syncer", result) for result in ("new", "duplicate", "invalid")
    }
    dead_letters = await prometheus.series("xerosync_dlq_messages_total")
    assert ("syncer", BANK_TRANSACTIONS.name) in {(s["service"], s["topic"]) for s in dead_letters}
    lag = await eventually(
        lambda: prometheus.series("xerosync_consumer_lag_records"),
        until=lambda found: {s["service"] for s in found} == set(SERVICES),
        what="every service's consumer lag",
    )
    assert all(s["topic"] and s["group"] for s in lag), lag
    # What XerosyncSyncStale compares: the scheduler's freshness and its interval.
    for name in ("xerosync_oldest_connection_sync_age_seconds", "xerosync_sync_interval_seconds"):
        assert {s["service"] for s in await prometheus.series(name)} == {"scheduler"}, name
    # Bounded: no entity, account, organisation, connection, transaction or topic prefix.
    unbounded = {
        ENTITY,
        ACCOUNT,
        tenant_id,
        str(connected.connection_id),
        posting.env.topics.prefix,
        *(e.transaction_id for e in events),
    }
    everything = await prometheus.series('{__name__=~"xerosync_.+"}')
    leaks = [s for s in everything for value in s.values() if any(u in value for u in unbounded)]
    assert leaks == []

    # Every rule evaluates cleanly against the real series, and a healthy stack raises nothing.
    mark = time.time()
    rules = await eventually(
        lambda: prometheus.api("rules"),
        until=lambda r: all(_instant(g["lastEvaluation"]) > mark for g in r["groups"]),
        what="every rule group evaluated again",
    )
    assert sum(len(group["rules"]) for group in rules["groups"]) == len(committed_rules())
    assert [
        (rule["name"], rule.get("lastError"))
        for group in rules["groups"]
        for rule in group["rules"]
        if rule["health"] != "ok"
    ] == []
    assert await prometheus.alerts() == []

    # One malformed record reaches the DLQ, and the alert fires for its service and topic.
    async with EventWriter(posting.env.kafka, posting.env.topics) as writer:
        await writer.send_record(
            posting.env.topics.name(BANK_TRANSACTIONS), b"{not json", key=ACCOUNT.encode()
        )
    alerts = await eventually(
        prometheus.alerts,
        until=lambda active: any(
            a["labels"]["alertname"] == DLQ_ALERT and a["state"] == "firing" for a in active
        ),
        what=f"{DLQ_ALERT} firing",
    )
    [alert] = [a for a in alerts if a["labels"]["alertname"] == DLQ_ALERT]
    assert alert["labels"] == {
        "alertname": DLQ_ALERT,
        "severity": "warning",
        "service": "syncer",
        "topic": BANK_TRANSACTIONS.name,
    }
    assert alert["annotations"]["summary"].startswith(
        f"The syncer dead-lettered records from {BANK_TRANSACTIONS.name}: "
    )
    assert f"xerosync replay dlq {BANK_TRANSACTIONS.name}" in alert["annotations"]["runbook"]
    assert [a["labels"]["alertname"] for a in alerts] == [DLQ_ALERT], "nothing else fires"
