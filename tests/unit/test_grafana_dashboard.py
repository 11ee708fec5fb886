"""deploy/grafana: the provisioned data source, the dashboard provider, and a dashboard whose
every query names only metrics the services really expose at /metrics."""

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr

from services.connector.bootstrap import create_app as create_connector
from services.connector.config import ConnectorSettings
from services.scheduler.bootstrap import create_app as create_scheduler
from services.scheduler.config import SchedulerSettings
from services.syncer.bootstrap import create_app as create_syncer
from services.syncer.config import SyncerSettings
from tests.helpers import installed

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "xerosync.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "xerosync.yml"

PROMETHEUS_OWN = {"up"}
"""Series Prometheus records itself for every target; no service exposes them."""
ON_THE_DASHBOARD = {
    # DESIGN §7's contract table (histograms by the series quantiles are computed from)
    "xerosync_transactions_ingested_total",
    "xerosync_transactions_posted_total",
    "xerosync_transactions_pending",
    "xerosync_oldest_pending_transaction_age_seconds",
    "xerosync_xero_requests_total",
    "xerosync_xero_request_duration_seconds_bucket",
    "xerosync_xero_rate_limited_total",
    "xerosync_token_refreshes_total",
    "xerosync_connections",
    "xerosync_sync_due_emitted_total",
    "xerosync_schedule_lag_seconds_bucket",
    "xerosync_sync_runs_total",
    "xerosync_sync_duration_seconds_bucket",
    "xerosync_dlq_messages_total",
    # and what ops watch besides
    "xerosync_xero_budget_remaining",
    "xerosync_consumer_lag_records",
    "faststream_received_processed_messages_exceptions_total",
    "up",
}

# ---------------------------------------------------------------- PromQL metric names


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_AGGREGATIONS = _words(
    """
    sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk
    limit_ratio
    """
)
_FUNCTIONS = _words(
    """
    abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil
    changes clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week
    day_of_year days_in_month deg delta deriv double_exponential_smoothing end exp floor
    histogram_avg histogram_count histogram_fraction histogram_quantile histogram_stddev
    histogram_stdvar histogram_sum holt_winters hour idelta increase info irate
    label_join label_replace last_over_time ln log10 log2 mad_over_time max_over_time
    min_over_time minute month pi predict_linear present_over_time quantile_over_time
    rad rate resets round scalar sgn sin sinh sort sort_by_label sort_by_label_desc
    sort_desc sqrt start stddev_over_time stdvar_over_time sum_over_time tan tanh time
    timestamp vector year
    """
)
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = _LABEL_LISTS | {"bool", "and", "or", "unless", "offset", "atan2", "inf", "nan"}
_TOKEN = re.compile(
    r"""
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<variable>\$(?:\{[^}]*\}|\w+))   # Grafana's: $service, $__rate_interval, ${x}
    | (?P<range>\[[^\]]*\])               # [5m], [$__rate_interval], subquery [1h:5m]
    | (?P<number>\.?\d[\w.]*)             # 0.95, 1e3, 0x1f, and durations after offset
    | (?P<name>[A-Za-z_:][\w:]*)
    | (?P<punctuation>\S)
    """,
    re.VERBOSE,
)


def _closing(tokens: list[tuple[str, str]], start: int) -> int:
    """Index of the bracket closing the one at `start`."""
    pairs = {"(": ")", "{": "}"}
    opening = tokens[start][1]
    depth = 0
    for index in range(start, len(tokens)):
        kind, text = tokens[index]
        if kind != "punctuation":
            continue
        depth += (text == opening) - (text == pairs[opening])
        if depth == 0:
            return index
    raise AssertionError(f"unbalanced {opening!r}")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: not functions or aggregations, not
    keywords, not label names (inside `{...}` or after `by`, `on`, ...), not strings,
    numbers, durations or Grafana variables."""
    tokens = [(str(m.lastgroup), m.group()) for m in _TOKEN.finditer(expr)]
    names = set()
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if text == "{" and kind == "punctuation":
            index = _closing(tokens, index)  # label matchers
        elif kind == "name" and text.lower() in _LABEL_LISTS and following == "(":
            index = _closing(tokens, index + 1)  # label names
        elif kind == "name" and text.lower() in _KEYWORDS | _AGGREGATIONS:
            pass
        elif kind == "name" and following == "(":
            assert text in _FUNCTIONS, f"not a PromQL function: {text} in {expr}"
        elif kind == "name":
            names.add(text)
        index += 1
    return names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.95, sum by (le, api) (rate(x_seconds_bucket{job=~"$job", '
            'le!="+Inf"}[$__rate_interval])))',
            {"x_seconds_bucket"},
        ),
        ("a_total / ignoring (result) group_left sum(b_total) > 0.1", {"a_total", "b_total"}),
        ("sum without (instance) (rate(c_total[5m] offset 1h)) or vector(0)", {"c_total"}),
        ('up{service=~"a|b"} == bool 0 and on(job) d:recorded:rate5m', {"up", "d:recorded:rate5m"}),
        ('count_values("version", build_info{le="1"})', {"build_info"}),
        ("max_over_time(g[1h:5m]) * 1e3 - sum(h_sum) / sum(h_count)", {"g", "h_sum", "h_count"}),
        ('label_replace(i, "dst", "$1", "src", "(.*)")', {"i"}),
    ],
)
def test_metric_names_are_found_and_nothing_else(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_an_unknown_function_is_reported() -> None:
    with pytest.raises(AssertionError, match="not a PromQL function: rates"):
        metric_names("rates(x_total[5m])")


# ---------------------------------------------------------------- what /metrics exposes

_SAMPLE_SUFFIXES = {
    "counter": ("",),  # the text format's TYPE line already names the counter `…_total`
    "gauge": ("",),
    "untyped": ("",),
    "info": ("",),
    "stateset": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count"),
}


def exposable(exposition: str) -> set[str]:
    """Every series name a scrape of this exposition can hold. A labelled metric has no
    sample until its first `labels()` call (FastStream's until the first message), but its
    `# TYPE` line is there from the start, and its type says which names its samples take."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            names |= {name + suffix for suffix in _SAMPLE_SUFFIXES[kind]}
        elif line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


@pytest.fixture(scope="module")
async def exposed() -> dict[str, set[str]]:
    """Per service, what its real /metrics route serves: the app built by the service's own
    composition root, with its registry, its metrics module and FastStream's middleware.
    Nothing is started, so no broker or database is reached (engines connect lazily)."""
    unused = SecretStr("postgresql://xerosync@127.0.0.1:9/never-connected")
    async with httpx.AsyncClient() as xero, httpx.AsyncClient() as connector_api:
        apps = {
            "connector": create_connector(ConnectorSettings(database_url=unused), xero_http=xero),
            "scheduler": create_scheduler(SchedulerSettings(database_url=unused)),
            "syncer": create_syncer(
                SyncerSettings(database_url=unused), xero_http=xero, connector_http=connector_api
            ),
        }
        names = {}
        for service, app in apps.items():
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://{service}"
            ) as http:
                response = await http.get("/metrics")
            assert response.status_code == 200, service
            names[service] = exposable(response.text)
    return names


def test_the_exposition_is_read_with_every_series_a_family_can_have() -> None:
    text = (
        "# HELP a_total A.\n# TYPE a_total counter\n"
        "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
        '# HELP g G.\n# TYPE g gauge\ng{x="1"} 2.0\n'
    )
    assert exposable(text) == {
        "a_total",
        "h_seconds_bucket",
        "h_seconds_sum",
        "h_seconds_count",
        "g",
    }


async def test_every_service_exposes_the_consumer_lag_and_faststream_metrics(
    exposed: dict[str, set[str]],
) -> None:
    for service, names in exposed.items():
        assert "xerosync_consumer_lag_records" in names, service
        assert "xerosync_dlq_messages_total" in names, service
        assert "faststream_received_processed_messages_exceptions_total" in names, service


# ---------------------------------------------------------------- the dashboard


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, the ones inside collapsed rows too."""
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"{panel['title']} {target['refId']}", target["expr"]


def _provisioned_uid() -> str:
    [source] = _load_yaml(DATASOURCES)["datasources"]
    uid: str = source["uid"]
    return uid


def test_the_data_source_is_the_compose_networks_prometheus() -> None:
    [source] = _load_yaml(DATASOURCES)["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["uid"] == "prometheus"
    [provider] = _load_yaml(PROVIDERS)["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_dashboard_is_sound(dashboard: dict[str, Any]) -> None:
    uid = _provisioned_uid()
    assert dashboard["schemaVersion"] == 39
    assert dashboard["uid"] == "xerosync"
    assert dashboard.get("id") is None  # provisioned: Grafana assigns it
    panels = list(_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == uid, variable["name"]

    covered: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])
        }
        assert not cells & covered, f"{panel['title']} overlaps another panel"
        covered |= cells
        if panel["type"] == "row":
            assert "targets" not in panel, panel["title"]
            continue
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), (panel["title"], target["refId"])
            assert target.get("datasource", panel["datasource"]) == panel["datasource"]


def test_every_query_names_metrics_the_services_expose(
    dashboard: dict[str, Any], exposed: dict[str, set[str]]
) -> None:
    everywhere = set().union(*exposed.values()) | PROMETHEUS_OWN
    used: set[str] = set()
    for where, expr in _queries(dashboard):
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr}"
        assert names <= everywhere, f"{where}: not exposed: {sorted(names - everywhere)}"
        used |= names
    assert used >= ON_THE_DASHBOARD, sorted(ON_THE_DASHBOARD - used)


_GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "service": ".*",
}


def _as_prometheus_receives(expr: str) -> str:
    """The query with Grafana's variables replaced as Grafana would before sending it."""

    def value(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        assert name in _GRAFANA_VARIABLES, f"unknown variable ${name} in {expr}"
        return _GRAFANA_VARIABLES[name]

    return re.sub(r"\$(?:\{(\w+)[^}]*\}|(\w+))", value, expr)


def test_every_query_is_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    promtool = installed("promtool")
    rules = [
        {"record": f"dashboard:query_{number}", "expr": _as_prometheus_receives(expr)}
        for number, (_, expr) in enumerate(_queries(dashboard))
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    # Prometheus's own parser, as a recording rule file: the query syntax is the same.
    checked = subprocess.run(  # noqa: S603 - our own file, promtool from PATH
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
