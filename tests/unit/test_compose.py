"""docker-compose.yml: valid by the Compose Specification's own schema, and wired the way
xerosync needs (no Docker engine here, so nothing is started)."""

import copy
import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.protocols import Validator
from jsonschema.validators import Draft7Validator, validator_for
from sqlalchemy.engine import make_url

from xerosync.services import SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
INIT_SQL = ROOT / "deploy" / "postgres" / "init-databases.sql"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_SCHEMA: dict[str, Any] = json.loads((ROOT / "tests/data/compose-spec.json").read_text())

LONG_RUNNING_RESTARTS = {"always", "unless-stopped", "on-failure"}
# ${NAME}, ${NAME-default}, ${NAME:-default}: what Compose interpolates, read as the default.
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def _load(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(COMPOSE_FILE.read_text())


def _validator_class() -> type[Validator]:
    """The validator the schema's `$schema` names. The file writes draft 7's id as
    https://json-schema.org/draft-07/schema; the draft's own id is the http:// one, and
    jsonschema only knows that, so an unknown draft fails here instead of falling back
    (with a DeprecationWarning) to the latest one."""
    declared = str(COMPOSE_SCHEMA["$schema"]).replace("https://", "http://", 1)
    with warnings.catch_warnings(action="error", category=DeprecationWarning):
        return validator_for({"$schema": declared})


def _validator() -> Validator:
    cls = _validator_class()
    cls.check_schema(COMPOSE_SCHEMA)
    validator: Validator = cls(COMPOSE_SCHEMA)
    return validator


def _schema_errors(document: dict[str, Any]) -> list[str]:
    return sorted(
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in _validator().iter_errors(document)
    )


def _interpolated(value: str) -> str:
    return _VARIABLE.sub(lambda match: match.group(2) or "", value)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as Compose passes it, whether written as a map or a list."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(k): _interpolated(str(v)) for k, v in raw.items()}


def _published_ports(service: dict[str, Any]) -> set[int]:
    """Host ports a service publishes (short `[ip:]host:container` or long syntax)."""
    published: set[int] = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            if "published" in port:
                published.add(int(port["published"]))
            continue
        parts = str(port).split("/")[0].rsplit(":", 2)
        if len(parts) >= 2:
            first, _, last = parts[-2].partition("-")
            published |= set(range(int(first), int(last or first) + 1))
    return published


def _built_here(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def _databases_created() -> set[str]:
    return set(re.findall(r"CREATE\s+DATABASE\s+(\w+)", INIT_SQL.read_text(), re.IGNORECASE))


# ---------------------------------------------------------------- the schema


def test_the_schema_is_read_as_the_draft_it_declares() -> None:
    assert _validator_class() is Draft7Validator
    assert "draft-07" in COMPOSE_SCHEMA["$schema"]


def test_the_file_is_valid_by_the_compose_schema(compose: dict[str, Any]) -> None:
    assert _schema_errors(compose) == []
    assert "version" not in compose, "the Compose Specification dropped `version:`"


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("unknown top-level key", lambda c: c.update(servers={})),
        ("restart as a list", lambda c: c["services"]["syncer"].update(restart=["no"])),
        ("unknown service key", lambda c: c["services"]["syncer"].update(restarts="always")),
        (
            "unknown depends_on condition",
            lambda c: c["services"]["syncer"]["depends_on"]["migrate"].update(
                condition="service_ready"
            ),
        ),
        (
            "healthcheck test as a number",
            lambda c: c["services"]["kafka"]["healthcheck"].update(test=42),
        ),
    ],
)
def test_the_validation_can_fail(compose: dict[str, Any], where: str, change: Any) -> None:
    broken = copy.deepcopy(compose)
    change(broken)
    assert _schema_errors(broken) != [], where


def test_an_unquoted_restart_no_would_be_refused() -> None:
    """YAML reads a bare `no` as false, which Compose refuses; the file must quote it."""
    text = COMPOSE_FILE.read_text()
    assert 'restart: "no"' in text
    assert _schema_errors(_load(text.replace('restart: "no"', "restart: no"))) != []


# ---------------------------------------------------------------- what the schema can't check


def test_migrate_and_every_service_are_built_from_this_repository(
    compose: dict[str, Any],
) -> None:
    built = _built_here(compose)
    assert {"migrate", "connector", "scheduler", "syncer"} <= set(built)
    # Services without a process yet must not be started.
    assert not {name for name, info in SERVICES.items() if not info.runnable} & set(built)
    for name, service in built.items():
        assert service["build"]["context"] == ".", name
        assert (ROOT / service["build"].get("dockerfile", "Dockerfile")).is_file(), name
        assert service["image"] == built["syncer"]["image"], "one image for every service"
    assert built["migrate"]["command"] == ["migrate"]
    for name in SERVICES:
        assert built[name]["command"] == [name]


def test_every_service_built_here_runs_for_production_on_apache_kafka(
    compose: dict[str, Any],
) -> None:
    advertised = _environment(compose["services"]["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    for name, service in _built_here(compose).items():
        env = _environment(service)
        assert env.get("KAFKA_IDEMPOTENT_PRODUCER") == "true", name
        assert env.get("XEROSYNC_ENV") == "production", name
        for server in env["KAFKA_BOOTSTRAP_SERVERS"].split(","):
            assert f"://{server}" in advertised, (name, server)


def test_the_broker_does_not_create_topics_on_its_own(compose: dict[str, Any]) -> None:
    env = _environment(compose["services"]["kafka"])
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_starts_after_a_successful_migration(
    compose: dict[str, Any], service: str
) -> None:
    depends = compose["services"][service]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    migrate = compose["services"]["migrate"]
    assert migrate["restart"] == "no"
    for dependency in ("kafka", "postgres"):
        assert migrate["depends_on"][dependency]["condition"] == "service_healthy"


def test_every_long_running_service_has_a_healthcheck_and_a_restart_policy(
    compose: dict[str, Any],
) -> None:
    long_running = {n: s for n, s in compose["services"].items() if s.get("restart") != "no"}
    assert set(long_running) >= {"kafka", "postgres", *SERVICES}
    for name, service in long_running.items():
        assert service.get("restart") in LONG_RUNNING_RESTARTS, name
        healthcheck = service.get("healthcheck", {})
        assert not healthcheck.get("disable", False), name
        assert healthcheck.get("test"), name


def test_every_service_waited_on_as_healthy_has_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            if how["condition"] == "service_healthy":
                assert services[dependency].get("healthcheck", {}).get("test"), dependency


def test_no_service_publishes_the_postgres_port(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert 5432 not in _published_ports(service), name
    assert _published_ports(compose["services"]["postgres"]) == set()


def test_the_port_reader_sees_every_syntax() -> None:
    service = {"ports": ["5432:5432", "127.0.0.1:5432:5432/tcp", {"target": 1, "published": 7}]}
    assert _published_ports(service) == {5432, 7}
    assert _published_ports({"ports": ["5432"]}) == set()  # container port only
    assert _published_ports({"ports": ["127.0.0.1:8002-8004:8002"]}) == {8002, 8003, 8004}


def test_the_syncer_serves_on_its_published_port(compose: dict[str, Any]) -> None:
    syncer = compose["services"]["syncer"]
    env = _environment(syncer)
    # A range, so that replicas started with --scale each get a port; the first gets 8002.
    assert syncer["ports"] == ["127.0.0.1:8002-8009:8002"]
    assert min(_published_ports(syncer)) == 8002
    others = {
        p
        for name, svc in compose["services"].items()
        if name != "syncer"
        for p in _published_ports(svc)
    }
    assert _published_ports(syncer).isdisjoint(others)
    assert env["SYNCER_HTTP_HOST"] == "0.0.0.0"  # noqa: S104 - inside its container
    assert int(env.get("SYNCER_HTTP_PORT", SERVICES["syncer"].port)) == 8002
    assert "http://127.0.0.1:8002/readyz" in " ".join(syncer["healthcheck"]["test"])


def test_every_database_url_names_a_database_the_init_script_creates(
    compose: dict[str, Any],
) -> None:
    created = _databases_created()
    assert created == {info.database_name for info in SERVICES.values()}
    migrate_env = _environment(compose["services"]["migrate"])
    assert {info.database_env for info in SERVICES.values()} <= set(migrate_env)
    seen = 0
    for name, service in compose["services"].items():
        for key, value in _environment(service).items():
            if key.endswith("_DATABASE_URL"):
                url = make_url(value)
                assert url.database in created, (name, key, url.database)
                assert (url.host, url.port) == ("postgres", 5432), (name, key)
                assert url.get_backend_name() == "postgresql", (name, key)
                seen += 1
    assert seen >= 2 * len(SERVICES)  # migrate and syncer each carry all three


def test_the_init_script_is_mounted_read_only_into_postgres(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    mounts = [str(volume).split(":") for volume in postgres["volumes"]]
    init = [m for m in mounts if m[1].startswith("/docker-entrypoint-initdb.d/")]
    assert len(init) == 1
    source, _, mode = init[0]
    assert (ROOT / source).resolve() == INIT_SQL
    assert mode == "ro"
    env = _environment(postgres)
    user = make_url(_environment(compose["services"]["syncer"])["SYNCER_DATABASE_URL"])
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == (user.username, user.password)


def test_third_party_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            continue
        _, _, tag = service["image"].partition(":")
        assert re.fullmatch(r"v?\d+\.\d+\.\d+|\d+\.\d+", tag), (name, service["image"])
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert compose["services"]["postgres"]["image"].startswith("postgres:16.")


def test_the_dockerfile_runs_xerosync_as_a_user_from_what_it_copies() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    final_stage = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    users = [line.split()[1] for line in final_stage if line.startswith("USER ")]
    assert users, "the runtime stage must not run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert 'ENTRYPOINT ["xerosync"]' in final_stage
    assert not any(line.startswith("HEALTHCHECK") for line in lines)
    for line in lines:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                if not any(c in source for c in "*?["):  # globs may match nothing
                    assert (ROOT / source).exists(), source


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Container path -> (host path, mode) for the short volume syntax."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        mounts[target] = (source, mode[0] if mode else "rw")
    return mounts


def test_prometheus_and_grafana_are_provisioned_read_only_from_deploy(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, target in (
        ("prometheus", "/etc/prometheus"),
        ("grafana", "/etc/grafana/provisioning"),
        ("grafana", "/var/lib/grafana/dashboards"),
    ):
        source, mode = _mounts(services[name])[target]
        assert source.startswith("./deploy/"), (name, source)
        assert (ROOT / source).is_dir(), source
        assert mode == "ro", (name, target)
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]


def test_prometheus_scrapes_every_service_on_the_port_it_serves(compose: dict[str, Any]) -> None:
    config = _load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    scraped = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    } | {
        f"{name}:{dns['port']}"
        for job in config["scrape_configs"]
        for dns in job.get("dns_sd_configs", [])
        for name in dns["names"]
    }
    for name in ("connector", "scheduler", "syncer", "sandbox"):
        service = compose["services"][name]
        ports = {published.rpartition(":")[2] for published in service["ports"]}
        assert any(f"{name}:{port}" in scraped for port in ports), (name, scraped)
    # Every replica of a service that can be scaled out is found by name, not pinned.
    for name in ("connector", "scheduler", "syncer"):
        [job] = [job for job in config["scrape_configs"] if job["job_name"] == name]
        assert [dns["names"] for dns in job["dns_sd_configs"]] == [[name]], job
    for job in config["scrape_configs"]:
        service_labels = [r for r in job["relabel_configs"] if r["target_label"] == "service"]
        assert [r["replacement"] for r in service_labels] == [job["job_name"]], job
    for rule_file in config["rule_files"]:
        assert (ROOT / "deploy/prometheus" / rule_file).is_file(), rule_file


def test_grafana_loads_its_dashboards_from_where_they_are_mounted(
    compose: dict[str, Any],
) -> None:
    providers = ROOT / "deploy/grafana/provisioning/dashboards"
    paths = {
        provider["options"]["path"]
        for file in providers.glob("*.yml")
        for provider in _load(file.read_text())["providers"]
    }
    assert paths == {"/var/lib/grafana/dashboards"}
    assert "/var/lib/grafana/dashboards" in _mounts(compose["services"]["grafana"])
    home = _environment(compose["services"]["grafana"])["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "deploy/grafana/dashboards" / home.rpartition("/")[2]).is_file()


def test_the_env_example_names_only_what_the_compose_file_reads() -> None:
    """`.env.example` is what the README tells ops to copy and fill in: a misspelt name in it
    would be silently ignored by compose."""
    text = (ROOT / "docker-compose.yml").read_text()
    read = set(re.findall(r"\$\{(\w+)(?::?-[^}]*)?\}", text))
    example = ROOT / ".env.example"
    named = {
        line.lstrip("# ").split("=", 1)[0]
        for line in example.read_text().splitlines()
        if re.match(r"#? ?[A-Z][A-Z0-9_]*=", line)
    }
    assert named, example
    assert named - read == set()
    # Every secret the connector refuses to start without in production is there.
    assert {
        "POSTGRES_PASSWORD",
        "CONNECTOR_XERO_CLIENT_ID",
        "CONNECTOR_XERO_CLIENT_SECRET",
        "CONNECTOR_TOKEN_KEYS",
        "CONNECTOR_SESSION_SECRET",
        "CONNECTOR_SERVICE_TOKENS",
        "SYNCER_SERVICE_TOKEN",
    } <= named
