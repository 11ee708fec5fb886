"""The connector's settings (env prefix `CONNECTOR_`)."""

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.connector.adapters.crypto import DEV_TOKEN_KEYS, Keyring, is_placeholder
from services.connector.entrypoints.auth import MIN_SECRET_BYTES, ServiceCredentials
from shared.settings import Environment, ServiceSettings

CONSUMER_GROUP = "xerosync-connector"
"""One group for the consumed topics: bank.accounts.v1 and xero.sync-results.v1."""

# Published so that a development stack works out of the box; refused in production.
DEV_SESSION_SECRET = "development-session-secret-not-for-production"  # noqa: S105
DEV_SERVICE_TOKENS = "development-service-token-not-for-production"
XERO_SCOPES = (
    "openid",
    "profile",
    "email",
    "offline_access",
    "accounting.transactions",
    "accounting.settings",
    "bankfeeds",
)


class ConnectorSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONNECTOR_", extra="ignore", populate_by_name=True
    )

    http_port: int = Field(default=8000, ge=1, le=65535)
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where users reach the connector; the OAuth redirect URI is "
        "`{public_url}/xero/callback` and must be registered with the Xero app.",
    )
    xero_login_url: str = Field(
        default="https://login.xero.com", description="Serves /identity/connect/authorize."
    )
    xero_identity_url: str = Field(
        default="https://identity.xero.com", description="Serves /connect/token, /revocation."
    )
    xero_api_url: str = Field(
        default="https://api.xero.com",
        description="Serves /connections, /api.xro/2.0 and /bankfeeds.xro/1.0.",
    )
    xero_client_id: str = Field(default="", description="The Xero app's client id.")
    xero_client_secret: SecretStr = Field(default=SecretStr(""))
    sink: Literal["bankfeeds", "accounting"] = Field(
        default="bankfeeds",
        description="Where new connections send transactions: Bank Feeds statements, or "
        "Accounting API bank transactions.",
    )
    token_keys: SecretStr = Field(
        default=SecretStr(DEV_TOKEN_KEYS),
        description="Keys that encrypt OAuth tokens at rest: `kid:base64url-32-bytes`, comma "
        "separated, the first encrypts, all decrypt (rotation).",
    )
    session_secret: SecretStr = Field(
        default=SecretStr(DEV_SESSION_SECRET),
        description="HMAC secret shared with the bank's app, which signs user tokens.",
    )
    service_tokens: SecretStr = Field(
        default=SecretStr(DEV_SERVICE_TOKENS),
        description="Credentials the syncer presents to the internal token API (comma "
        "separated so they can rotate).",
    )
    demo_sign_in: bool = Field(default=False, description="Offer /dev/sign-in (development only).")
    state_ttl_s: int = Field(default=900, ge=60, le=3600, description="Life of an OAuth state.")
    connection_check_interval_s: float = Field(
        default=900.0,
        ge=1.0,
        description="How often every live connection is checked against GET /connections.",
    )
    xero_timeout_s: float = Field(default=30.0, gt=0)

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url.rstrip('/')}/xero/callback"

    @model_validator(mode="after")
    def _usable_secrets(self) -> Self:
        # Their ValueErrors name no key material.
        for name, parse, value in (
            ("CONNECTOR_TOKEN_KEYS", Keyring.parse, self.token_keys),
            ("CONNECTOR_SERVICE_TOKENS", ServiceCredentials.parse, self.service_tokens),
        ):
            try:
                parse(value.get_secret_value())
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        if len(self.session_secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"CONNECTOR_SESSION_SECRET needs at least {MIN_SECRET_BYTES} bytes")
        if self.environment is not Environment.PRODUCTION:
            return self
        bad = [
            name
            for name, placeholder in (
                (
                    "CONNECTOR_SESSION_SECRET",
                    self._placeholder(self.session_secret, DEV_SESSION_SECRET),
                ),
                (
                    "CONNECTOR_SERVICE_TOKENS",
                    self._placeholder(self.service_tokens, DEV_SERVICE_TOKENS),
                ),
                ("CONNECTOR_XERO_CLIENT_SECRET", self._placeholder(self.xero_client_secret, "")),
            )
            if placeholder
        ]
        if is_placeholder(self.token_keys.get_secret_value()):
            bad.insert(0, "CONNECTOR_TOKEN_KEYS")
        if bad:
            raise ValueError(
                f"production refuses missing or placeholder secrets: set {', '.join(bad)}"
            )
        if self.demo_sign_in:
            raise ValueError("CONNECTOR_DEMO_SIGN_IN is for development only")
        return self

    @staticmethod
    def _placeholder(value: SecretStr, published: str) -> bool:
        text = value.get_secret_value().strip()
        return not text or (bool(published) and published in text) or "change-me" in text.lower()
