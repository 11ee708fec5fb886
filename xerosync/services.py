"""What the CLI and the dev stack know about each service: its settings, database,
migrations, port, and whether it has a process to run yet."""

from dataclasses import dataclass
from pathlib import Path

import services
from services.connector.config import ConnectorSettings
from services.scheduler.config import SchedulerSettings
from services.syncer.config import SyncerSettings
from shared.settings import ServiceSettings

_ROOT = Path(services.__file__).resolve().parent


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    settings: type[ServiceSettings]
    runnable: bool

    @property
    def port(self) -> int:
        """The service's default HTTP port, as its settings declare it."""
        default: int = self.settings.model_fields["http_port"].default
        return default

    @property
    def env_prefix(self) -> str:
        return f"{self.name.upper()}_"

    @property
    def database_env(self) -> str:
        return f"{self.env_prefix}DATABASE_URL"

    @property
    def database_name(self) -> str:
        """Database name the embedded stack uses."""
        return f"xerosync_{self.name}"

    @property
    def migrations(self) -> Path:
        return _ROOT / self.name / "migrations"


SERVICES: dict[str, ServiceInfo] = {
    info.name: info
    for info in (
        ServiceInfo("connector", ConnectorSettings, runnable=True),
        ServiceInfo("scheduler", SchedulerSettings, runnable=True),
        ServiceInfo("syncer", SyncerSettings, runnable=True),
    )
}
