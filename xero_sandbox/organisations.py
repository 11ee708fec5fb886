"""Creating organisations, as the admin API does: a new Xero organisation with its chart;
and an organisation's date, in its own time zone."""

import secrets
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.xero_timezones import XERO_TO_IANA
from xero_sandbox.state import Account, Organisation, Sandbox, new_id

#: A new organisation's chart, before any bank account: what a BankTransaction's line items
#: can be coded to. (code, name, type, class, tax type)
DEFAULT_CHART = (
    ("200", "Sales", "REVENUE", "REVENUE", "OUTPUT"),
    ("260", "Other Revenue", "REVENUE", "REVENUE", "OUTPUT"),
    ("270", "Interest Income", "REVENUE", "REVENUE", "NONE"),
    ("400", "Advertising", "EXPENSE", "EXPENSE", "INPUT"),
    ("404", "Bank Fees", "EXPENSE", "EXPENSE", "NONE"),
    ("429", "General Expenses", "EXPENSE", "EXPENSE", "INPUT"),
    ("610", "Accounts Receivable", "CURRENT", "ASSET", "NONE"),
    ("800", "Accounts Payable", "CURRLIAB", "LIABILITY", "NONE"),
)


class OrganisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    edition: Literal["BUSINESS", "PARTNER"] = "BUSINESS"
    status: Literal["ACTIVE", "INACTIVE", "DELETED", "SUSPENDED"] = "ACTIVE"
    base_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    currencies: list[str] = Field(
        default_factory=list,
        description="Further currencies the organisation holds; the base currency is implied.",
    )
    multi_currency: bool | None = Field(
        default=None,
        description="Whether its plan has multi-currency (default: it holds more than one).",
    )
    timezone: str = Field(default="UTC", description="Xero's name, e.g. CHINASTANDARDTIME.")
    country_code: str = Field(default="HK", pattern=r"^[A-Z]{2}$")
    is_demo: bool = False

    @field_validator("currencies")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if len(c) != 3 or not c.isalpha() or not c.isupper()]
        if bad:
            raise ValueError(f"not ISO 4217 codes: {bad}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if value.upper() not in XERO_TO_IANA:
            raise ValueError(f"unknown Xero time zone {value!r}; e.g. CHINASTANDARDTIME, UTC")
        return value.upper()

    @model_validator(mode="after")
    def _multi_currency(self) -> "OrganisationIn":
        extra = [c for c in self.currencies if c != self.base_currency]
        if self.multi_currency is False and extra:
            raise ValueError("an organisation without multi-currency holds only its base currency")
        return self


def create_organisation(sandbox: Sandbox, spec: OrganisationIn) -> Organisation:
    now = sandbox.clock.now()
    currencies = list(dict.fromkeys([spec.base_currency, *spec.currencies]))
    organisation = Organisation(
        tenant_id=new_id(),
        name=spec.name,
        edition=spec.edition,
        status=spec.status,
        base_currency=spec.base_currency,
        currencies=currencies,
        multi_currency=spec.multi_currency
        if spec.multi_currency is not None
        else len(currencies) > 1,
        timezone=spec.timezone,
        country_code=spec.country_code,
        short_code="!" + secrets.token_hex(3),
        created_at=now,
        is_demo=spec.is_demo,
    )
    for code, name, type_, class_, tax in DEFAULT_CHART:
        account = Account(
            account_id=new_id(),
            code=code,
            name=name,
            type=type_,
            account_class=class_,
            tax_type=tax,
            updated_at=now,
        )
        organisation.accounts[account.account_id] = account
    sandbox.organisations[organisation.tenant_id] = organisation
    return organisation


def local_today(organisation: Organisation, now: datetime) -> date:
    """The organisation's date now, in its own time zone (validated when it was created):
    the day an undated bank transaction takes, and what "the future" means to statements."""
    return now.astimezone(ZoneInfo(XERO_TO_IANA[organisation.timezone])).date()
