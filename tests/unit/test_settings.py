"""Settings: prefixes, URL handling, secrets kept out of sight."""

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from services.syncer.config import SyncerSettings
from shared import faults
from shared.settings import asyncpg_url, redacted_url
from xerosync.cli import app
from xerosync.devstack.stack import Stack, StackConfig


def test_service_settings_take_their_prefix_and_shared_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNCER_DATABASE_URL", "postgresql://u:s3cret@db:5432/xerosync_syncer")
    monkeypatch.setenv("SYNCER_INGEST_BATCH_SIZE", "250")
    monkeypatch.setenv("TOPIC_PREFIX", "staging.")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("KAFKA_IDEMPOTENT_PRODUCER", "true")
    settings = SyncerSettings()
    assert settings.ingest_batch_size == 250
    assert settings.http_port == 8002
    assert settings.topics.prefix == "staging."
    assert settings.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert settings.kafka.idempotent_producer is True
    url = settings.database_url.get_secret_value()
    assert url.startswith("postgresql+asyncpg://u:s3cret@db:5432/")
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.model_dump())


def test_the_embedded_broker_gets_idempotence_off_and_a_short_session() -> None:
    stack = Stack(StackConfig(work_dir=Path("unused")))
    assert stack.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert stack.kafka.idempotent_producer is False
    assert stack.kafka.session_timeout_ms == 3000


def test_urls_are_normalised_and_redacted() -> None:
    assert asyncpg_url("postgresql://a@h/db") == "postgresql+asyncpg://a@h/db"
    assert asyncpg_url("postgresql+psycopg://a@h/db") == "postgresql+asyncpg://a@h/db"
    assert "hunter2" not in redacted_url("postgresql://a:hunter2@h/db")
    with pytest.raises(ValueError, match="only PostgreSQL"):
        asyncpg_url("mysql://a@h/db")


def test_a_bad_prefix_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCER_DATABASE_URL", "postgresql://db/x")
    monkeypatch.setenv("TOPIC_PREFIX", "has spaces")
    with pytest.raises(ValidationError, match="may only contain"):
        SyncerSettings()


def test_missing_configuration_is_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNCER_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["syncer"])
    assert result.exit_code == 2
    assert "SYNCER_DATABASE_URL: Field required" in result.output
    for name in ("CONNECTOR_DATABASE_URL", "SCHEDULER_DATABASE_URL", "SYNCER_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 2
    assert "CONNECTOR_DATABASE_URL" in result.output


def test_failpoints_parse_and_refuse_unknown_actions() -> None:
    assert faults._parse("a=kill, b=kill") == {"a": "kill", "b": "kill"}
    assert faults._parse("") == {}
    with pytest.raises(ValueError, match="unknown action"):
        faults._parse("a=explode")
