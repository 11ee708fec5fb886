"""The connector's settings (env prefix `CONNECTOR_`)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ConnectorSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONNECTOR_", extra="ignore", populate_by_name=True
    )

    http_port: int = Field(default=8000, ge=1, le=65535)
