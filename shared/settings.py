"""One settings style for every service: pydantic-settings, an env prefix per service.

Shared infrastructure settings keep the names DESIGN gives them (`KAFKA_BOOTSTRAP_SERVERS`,
`TOPIC_PREFIX`, ...); each service's own settings take its prefix (`SYNCER_`, ...), so
`SYNCER_DATABASE_URL` is the syncer's database.
"""

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from shared.contracts.topics import Topics, validate_prefix

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$", re.IGNORECASE)


def parse_duration(value: Any) -> Any:
    """`3h`, `90m`, `45s`, `250ms`, `1d` or plain seconds; anything else is left to pydantic
    (ISO 8601 `PT3H`, a timedelta)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match[1]) * _UNITS[match[2].lower()])
        try:
            return timedelta(seconds=float(value))
        except ValueError:
            return value
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class KafkaSettings(BaseSettings):
    """Kafka client settings (env prefix `KAFKA_`)."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list."
    )
    idempotent_producer: bool = Field(
        default=False,
        description="Turn on for Apache Kafka. The embedded broker (Tansu) does not "
        "implement InitProducerId, so it stays off there.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        le=300_000,
        description="Consumer group session timeout. The embedded broker ignores LeaveGroup, "
        "so a restarted consumer waits this long to rejoin; the dev stack uses 3000 there. "
        "Apache Kafka refuses less than its group.min.session.timeout.ms (6000 by default).",
    )
    default_partitions: int = Field(
        default=6, ge=1, le=1000, description="Partitions for topics `xerosync migrate` creates."
    )
    replication_factor: int = Field(default=1, ge=1, le=7)


class CommonSettings(BaseSettings):
    """Settings every process shares (no prefix: the names DESIGN gives them)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    environment: Environment = Field(
        default=Environment.DEVELOPMENT,
        validation_alias="XEROSYNC_ENV",
        description="`production` turns on JSON logs and refuses placeholder secrets.",
    )
    topic_prefix: str = Field(default="", validation_alias="TOPIC_PREFIX")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias="LOG_LEVEL"
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        validation_alias="LOG_FORMAT",
        description="`auto`: JSON in production, readable lines in development.",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)

    @field_validator("topic_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        return validate_prefix(value)

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)


class ServiceSettings(CommonSettings):
    """Base for a service's settings; subclasses set `env_prefix` (e.g. `SYNCER_`)."""

    database_url: SecretStr = Field(
        description="SQLAlchemy URL of the service's own database; a plain `postgresql://` "
        "URL is accepted and driven through asyncpg."
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(ge=1, le=65535)

    @field_validator("database_url")
    @classmethod
    def _asyncpg_url(cls, value: SecretStr) -> SecretStr:
        return SecretStr(asyncpg_url(value.get_secret_value()))


def asyncpg_url(url: str) -> str:
    """Normalise any PostgreSQL URL to the asyncpg driver."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError("only PostgreSQL database URLs are supported")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def redacted_url(url: str) -> str:
    """The URL with its password masked, safe for logs and error messages."""
    return make_url(url).render_as_string(hide_password=True)
