"""The scheduler's settings (env prefix `SCHEDULER_`).

`SYNC_INTERVAL` and `MANUAL_SYNC_COOLDOWN` keep the names DESIGN gives them and also answer
to their prefixed forms. Durations are written `3h`, `90m`, `45s`, `250ms`, a number of
seconds, or ISO 8601 (`PT3H`).
"""

from datetime import timedelta

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from shared.contracts.decoding import DEFAULT_MAX_EVENT_BYTES
from shared.settings import Duration, ServiceSettings

CONSUMER_GROUP = "xerosync-scheduler"
"""One group for the three consumed topics: connections, sync requests, sync results."""


class SchedulerSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCHEDULER_", extra="ignore", populate_by_name=True
    )

    http_port: int = Field(default=8001, ge=1, le=65535)
    sync_interval: Duration = Field(
        default=timedelta(hours=3),
        ge=timedelta(seconds=1),
        le=timedelta(days=7),
        validation_alias=AliasChoices("SCHEDULER_SYNC_INTERVAL", "SYNC_INTERVAL", "sync_interval"),
        description="Every active connection is due once per interval, at its own phase.",
    )
    manual_sync_cooldown: Duration = Field(
        default=timedelta(seconds=60),
        ge=timedelta(0),
        le=timedelta(hours=24),
        validation_alias=AliasChoices(
            "SCHEDULER_MANUAL_SYNC_COOLDOWN", "MANUAL_SYNC_COOLDOWN", "manual_sync_cooldown"
        ),
        description="At most one manual sync per connection per cooldown; extra presses "
        "are absorbed and counted.",
    )
    manual_request_max_age: Duration = Field(
        default=timedelta(minutes=15),
        ge=timedelta(seconds=1),
        description="A `SyncRequested` older than this when it is read (a replayed topic, a "
        "long outage) is counted as stale and starts no sync.",
    )
    tick_batch: int = Field(
        default=2000, ge=1, le=50_000, description="Most slots claimed and emitted per tick."
    )
    idle_wait: Duration = Field(
        default=timedelta(seconds=5),
        gt=timedelta(0),
        description="Longest wait between two looks at the schedule when nothing is due "
        "(a change made by any replica wakes the emitter at once through LISTEN/NOTIFY).",
    )
    takeover_poll: Duration = Field(
        default=timedelta(seconds=1),
        gt=timedelta(0),
        description="How often a standby replica tries to become the emitter.",
    )
    gauge_refresh: Duration = Field(
        default=timedelta(seconds=5),
        gt=timedelta(0),
        description="How often the gauges read from the database (active schedules, the "
        "oldest connection's sync age) are refreshed.",
    )
    takeover_grace: Duration = Field(
        default=timedelta(seconds=1),
        ge=timedelta(0),
        description="Wait after becoming the emitter before reading what the previous one "
        "published, so a produce request it sent just before dying has landed.",
    )
    consume_batch_size: int = Field(default=500, ge=1, le=10_000)
    consume_batch_wait_ms: int = Field(default=100, ge=1, le=10_000)
    max_event_bytes: int = Field(default=DEFAULT_MAX_EVENT_BYTES, ge=1024)
