"""The syncer's settings (env prefix `SYNCER_`)."""

from datetime import timedelta
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.contracts.decoding import DEFAULT_MAX_EVENT_BYTES
from shared.settings import Duration, Environment, ServiceSettings

CONSUMER_GROUP = "xerosync-syncer"
"""One group for the consumed topics: bank.transactions.v1, xero.connections.v1 and
xero.sync-due.v1 (one group join: on the embedded broker each join costs seconds)."""

DEV_SERVICE_TOKEN = "development-service-token-not-for-production"  # noqa: S105 - dev default, refused in production
"""The connector's development default for CONNECTOR_SERVICE_TOKENS."""


class SyncerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SYNCER_", extra="ignore", populate_by_name=True)

    http_port: int = Field(default=8002, ge=1, le=65535)
    ingest_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Most records stored per transaction."
    )
    ingest_batch_wait_ms: int = Field(
        default=100, ge=1, le=10_000, description="Longest wait to fill a batch."
    )
    max_event_bytes: int = Field(
        default=DEFAULT_MAX_EVENT_BYTES,
        ge=1024,
        description="Larger records are refused to the DLQ.",
    )

    # --- the connector's token API
    connector_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of the connector, whose internal API hands out access tokens.",
    )
    service_token: SecretStr = Field(
        default=SecretStr(DEV_SERVICE_TOKEN),
        description="Presented to the connector's token API; one of CONNECTOR_SERVICE_TOKENS.",
    )

    # --- Xero
    xero_api_url: str = Field(
        default="https://api.xero.com",
        description="Serves /api.xro/2.0 and /bankfeeds.xro/1.0 (the sandbox in development).",
    )
    xero_timeout_s: float = Field(default=30.0, gt=0, le=600)
    rate_limit_scale: float = Field(
        default=1.0,
        ge=1.0,
        le=86_400.0,
        description="Xero's minute lasts 60/scale seconds and its day 86400/scale: only for "
        "benchmarks against a sandbox whose time is scaled the same way.",
    )
    statements_per_minute: int = Field(
        default=180,
        ge=1,
        description="Xero's app-wide Bank Feeds limit; with N syncer replicas give each 180/N.",
    )
    day_reserve: int = Field(
        default=20,
        ge=0,
        description="Calls of each organisation's daily 5,000 left for the connector; a run "
        "stops (and says how much is left) when only these remain.",
    )
    idempotency_trust: Duration = Field(
        default=timedelta(hours=1),
        gt=timedelta(0),
        description="How long after a request with an unknown outcome we rely on Xero "
        "remembering its Idempotency-Key; after that Xero is checked before posting again.",
    )
    retry_attempts: int = Field(
        default=6, ge=1, le=50, description="Tries of one request on 5xx and timeouts."
    )
    retry_base_delay: float = Field(default=0.5, gt=0)
    retry_max_delay: float = Field(default=30.0, gt=0)
    max_rate_limited: int = Field(
        default=20,
        ge=1,
        description="429s one request may receive (each waited out) before the run gives up.",
    )
    statement_max_lines: int = Field(default=1000, ge=1, le=1000)
    accounting_batch_size: int = Field(default=50, ge=1, le=50)
    receive_account_code: str = Field(
        default="260",
        min_length=1,
        max_length=10,
        description="Accounting sink: the account a RECEIVE (money in) line is coded to.",
    )
    spend_account_code: str = Field(
        default="429",
        min_length=1,
        max_length=10,
        description="Accounting sink: the account a SPEND (money out) line is coded to.",
    )

    # --- running syncs
    max_active_tenants: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Organisations this process posts to at the same time (each has its own "
        "rate-limit budget; one process at a time holds an organisation).",
    )
    run_poll: Duration = Field(
        default=timedelta(seconds=2),
        gt=timedelta(0),
        description="Longest wait between two looks for queued runs (a new SyncDue wakes "
        "the workers at once through LISTEN/NOTIFY).",
    )
    ingest_first_quiet: Duration = Field(
        default=timedelta(milliseconds=300),
        ge=timedelta(0),
        description="Posting gives way to ingest while a half-full batch of records is "
        "being stored (more are waiting) and until this long after; 0 turns giving way off.",
    )
    ingest_first_max_hold: Duration = Field(
        default=timedelta(seconds=5),
        gt=timedelta(0),
        description="Under a flood that never ends, one posting request of the whole "
        "process goes each this long, so posting still advances.",
    )
    gauges_every: Duration = Field(
        default=timedelta(seconds=15),
        gt=timedelta(0),
        description="How often the pending-transaction gauges are recomputed.",
    )

    @model_validator(mode="after")
    def _usable_secrets(self) -> Self:
        if self.environment is Environment.PRODUCTION:
            token = self.service_token.get_secret_value().strip()
            if not token or token == DEV_SERVICE_TOKEN or "change-me" in token.lower():
                raise ValueError(
                    "production refuses missing or placeholder secrets: set SYNCER_SERVICE_TOKEN"
                )
        return self

    @property
    def minute_seconds(self) -> float:
        return 60.0 / self.rate_limit_scale
