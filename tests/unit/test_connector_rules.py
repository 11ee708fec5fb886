"""The connector's own decisions: start dates, which organisations it accepts, and the
settings it refuses in production."""

from datetime import date

import pytest
from pydantic import SecretStr, ValidationError

from services.connector.adapters.crypto import Keyring
from services.connector.config import ConnectorSettings
from services.connector.domain import rules

TODAY = date(2026, 11, 24)


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_no_start_date_means_today(raw: str | None) -> None:
    assert rules.parse_start_date(raw, TODAY) == TODAY


def test_a_start_date_one_year_back_is_the_earliest() -> None:
    assert rules.parse_start_date("2025-11-24", TODAY) == date(2025, 11, 24)
    with pytest.raises(rules.RequestRefused, match="one year back"):
        rules.parse_start_date("2025-11-23", TODAY)


def test_a_start_date_in_the_future_is_refused() -> None:
    with pytest.raises(rules.RequestRefused, match="future"):
        rules.parse_start_date("2026-11-25", TODAY)


def test_a_start_date_that_is_not_a_date_says_the_format() -> None:
    with pytest.raises(rules.RequestRefused, match="YYYY-MM-DD"):
        rules.parse_start_date("24/11/2026", TODAY)


def test_business_and_active_is_accepted() -> None:
    assert rules.organisation_refusal("Acme", "BUSINESS", "ACTIVE") is None


def test_partner_edition_is_refused_naming_business_edition() -> None:
    refusal = rules.organisation_refusal("Partner Co", "PARTNER", "ACTIVE")
    assert refusal is not None
    assert refusal.kind == "edition"
    assert "Business Edition" in refusal.message


@pytest.mark.parametrize("status", ["INACTIVE", "DELETED", "SUSPENDED"])
def test_an_organisation_that_is_not_active_is_refused(status: str) -> None:
    refusal = rules.organisation_refusal("Dormant", "BUSINESS", status)
    assert refusal is not None
    assert refusal.kind == "inactive"


def _production(**secrets: str) -> ConnectorSettings:
    good = {
        "token_keys": Keyring.generate_spec("k1"),
        "session_secret": "s" * 40,
        "service_tokens": "t" * 40,
        "xero_client_secret": "x" * 30,
    }
    values = {name: SecretStr(value) for name, value in (good | secrets).items()}
    return ConnectorSettings.model_validate(
        {"database_url": "postgresql://u@h/d", "XEROSYNC_ENV": "production", **values}
    )


def test_production_starts_with_real_secrets() -> None:
    assert _production().environment == "production"


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("token_keys", "", "CONNECTOR_TOKEN_KEYS"),
        ("session_secret", "development-session-secret-not-for-production", "SESSION_SECRET"),
        ("service_tokens", "development-service-token-not-for-production", "SERVICE_TOKENS"),
        ("xero_client_secret", "", "CONNECTOR_XERO_CLIENT_SECRET"),
    ],
)
def test_production_refuses_a_missing_or_placeholder_secret(
    setting: str, value: str, named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        _production(**{setting: value})


def test_production_refuses_the_published_dev_key_even_under_another_kid() -> None:
    dev_key = ConnectorSettings.model_fields["token_keys"].default.get_secret_value()
    renamed = "k9:" + dev_key.partition(":")[2]
    with pytest.raises(ValidationError, match="CONNECTOR_TOKEN_KEYS"):
        _production(token_keys=renamed)


def test_a_malformed_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as refused:
        ConnectorSettings.model_validate(
            {"database_url": "postgresql://u@h/d", "token_keys": SecretStr("k1:tooshort")}
        )
    assert "tooshort" not in str(refused.value).replace("input_value", "")
