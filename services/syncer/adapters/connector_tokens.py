"""Access tokens from the connector's internal API: the one synchronous call between
services (DESIGN §1). The connector refreshes (serialised per connection); the syncer only
asks, and keeps an answer in memory until shortly before it expires."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import SecretStr

from shared.errors import PermanentError, TransientError

EARLY = timedelta(seconds=60)
"""An access token is asked for again this long before it expires."""


@dataclass(frozen=True)
class AccessToken:
    token: SecretStr
    tenant_id: uuid.UUID
    expires_at: datetime


class TokenUnavailable(TransientError):
    """The connector could not be reached or could not refresh just now."""


class ConnectionNotUsable(PermanentError):
    """The connector refuses: the connection is unknown, disconnected or needs the user.
    `status` is its word for why (unknown, disconnected, needs_user)."""

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.status = status


class ServiceTokenRefused(PermanentError):
    """The connector refused our service token: SYNCER_SERVICE_TOKEN is not one of its
    CONNECTOR_SERVICE_TOKENS."""


class ConnectorTokens:
    def __init__(self, client: httpx.AsyncClient, *, base_url: str, service_token: SecretStr):
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._service_token = service_token
        self._cache: dict[uuid.UUID, AccessToken] = {}

    async def get(self, connection_id: uuid.UUID, *, fresh: bool = False) -> AccessToken:
        """A token valid for at least a minute more; `fresh` skips the cache (after Xero
        answered 401 to the cached one)."""
        cached = self._cache.get(connection_id)
        if cached is not None and not fresh and cached.expires_at - EARLY > datetime.now(UTC):
            return cached
        self._cache.pop(connection_id, None)
        url = f"{self._base_url}/internal/v1/connections/{connection_id}/access-token"
        headers = {"Authorization": f"Bearer {self._service_token.get_secret_value()}"}
        try:
            answer = await self._client.post(url, headers=headers)
        except httpx.HTTPError as error:
            raise TokenUnavailable(
                f"the connector did not answer ({type(error).__name__})"
            ) from error
        if answer.status_code == 200:
            body = answer.json()
            token = AccessToken(
                token=SecretStr(body["access_token"]),
                tenant_id=uuid.UUID(body["tenant_id"]),
                expires_at=datetime.fromisoformat(body["expires_at"]),
            )
            self._cache[connection_id] = token
            return token
        detail = _detail(answer)
        if answer.status_code in (404, 409):
            status = _field(answer, "status") or "unknown"
            raise ConnectionNotUsable(detail, status=status)
        if answer.status_code in (401, 403):
            raise ServiceTokenRefused(
                "the connector refused the syncer's service token: set SYNCER_SERVICE_TOKEN "
                "to one of the connector's CONNECTOR_SERVICE_TOKENS"
            )
        raise TokenUnavailable(f"the connector answered {answer.status_code}: {detail}")

    def forget(self, connection_id: uuid.UUID) -> None:
        self._cache.pop(connection_id, None)


def _field(answer: httpx.Response, name: str) -> str | None:
    try:
        value = answer.json().get(name)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _detail(answer: httpx.Response) -> str:
    return _field(answer, "detail") or f"HTTP {answer.status_code}"
