"""The syncer's settings (env prefix `SYNCER_`)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.contracts.decoding import DEFAULT_MAX_EVENT_BYTES
from shared.settings import ServiceSettings

INGEST_GROUP = "xerosync-syncer-ingest"


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
