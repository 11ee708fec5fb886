"""Everything the sandbox knows, in memory: apps, users, tokens, organisations and their books.

The sandbox is one asyncio process, so its state needs no locks: every handler runs to
completion between awaits, and handlers don't await while they change state. A restart (or
`POST /admin/reset`) starts from nothing, as stripe-mock does.
"""

import secrets
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from xero_sandbox.clock import Clock
from xero_sandbox.faults import FaultPlan
from xero_sandbox.idempotency import IdempotencyStore
from xero_sandbox.limits import Limits, RateLimiter

Edition = Literal["BUSINESS", "PARTNER"]
OrganisationStatus = Literal["ACTIVE", "INACTIVE", "DELETED", "SUSPENDED"]
AccountStatus = Literal["ACTIVE", "ARCHIVED", "DELETED"]


def new_id() -> str:
    """Xero's identifiers are lower-case GUIDs."""
    return str(uuid.uuid4())


# ----------------------------------------------------------------------------- identity


@dataclass
class App:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: list[str]


@dataclass
class User:
    user_id: str
    email: str


@dataclass
class Connection:
    """One user's authorisation of one app on one organisation (Xero's `/connections`)."""

    id: str
    tenant_id: str
    client_id: str
    user_id: str
    auth_event_id: str
    created_at: datetime
    updated_at: datetime


@dataclass
class Grant:
    """One token family: what a consent (or the code it produced) handed to an app."""

    grant_id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    auth_event_id: str
    session_id: str
    current_refresh_token: str | None = None
    revoked: bool = False


@dataclass
class AccessToken:
    grant_id: str
    expires_at: datetime


@dataclass
class RefreshToken:
    grant_id: str
    issued_at: datetime
    used_at: datetime | None = None


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    grant: Grant
    expires_at: datetime
    used: bool = False


@dataclass
class PendingAuthorization:
    """An authorize request that passed its checks and waits for the user's decision."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    created_at: datetime


# ----------------------------------------------------------------------------- books


@dataclass
class Account:
    account_id: str
    name: str
    type: str
    account_class: str
    code: str | None = None
    status: AccountStatus = "ACTIVE"
    currency_code: str | None = None
    bank_account_number: str | None = None
    bank_account_type: str | None = None
    tax_type: str = "NONE"
    description: str | None = None
    enable_payments_to_account: bool = False
    show_in_expense_claims: bool = False
    updated_at: datetime | None = None
    add_to_watchlist: bool = False


@dataclass
class Contact:
    contact_id: str
    name: str
    updated_at: datetime
    contact_number: str | None = None


@dataclass
class BankTransaction:
    bank_transaction_id: str
    bank_account_id: str
    reference: str | None
    date: date
    status: str
    updated_at: datetime
    document: dict[str, Any]
    """The transaction as `GET /BankTransactions/{id}` returns it."""


@dataclass
class FeedConnection:
    id: str
    account_token: str
    account_id: str
    account_type: str
    account_number: str | None
    account_name: str | None
    currency: str
    country: str | None
    created_at: datetime
    client_id: str
    """The financial institution's app: an accountToken is unique per institution."""
    deleted: bool = False
    delivered_lines: set[str] = field(default_factory=set)
    """Duplicate-detection keys of every statement line delivered through this feed."""


@dataclass
class StatementLine:
    posted_date: date
    amount: Decimal
    credit_debit_indicator: str
    description: str | None = None
    transaction_id: str | None = None
    payee_name: str | None = None
    reference: str | None = None
    cheque_number: str | None = None
    transaction_type: str | None = None


@dataclass
class Statement:
    id: str
    feed_connection_id: str
    status: str
    start_date: date
    end_date: date
    start_balance: Decimal
    start_indicator: str
    end_balance: Decimal
    end_indicator: str
    lines: list[StatementLine]
    received_at: datetime
    errors: list[dict[str, Any]] = field(default_factory=list)
    duplicate_lines: list[str] = field(default_factory=list)
    """Of a DELIVERED statement: the lines Xero dropped as delivered before through the feed
    (its duplicate detection), by transactionId, or by their duplicate-detection key
    (`line_key`) when they have none; not in `lines`. A REJECTED statement keeps all its
    lines in `lines`, every one a duplicate. Only the admin API shows it: Xero does not."""


@dataclass
class Organisation:
    tenant_id: str
    name: str
    edition: Edition
    status: OrganisationStatus
    base_currency: str
    currencies: list[str]
    """Every currency the organisation holds, its base currency first."""
    multi_currency: bool
    timezone: str
    """Xero's time-zone name, e.g. CHINASTANDARDTIME (see timezones.py)."""
    country_code: str
    short_code: str
    created_at: datetime
    is_demo: bool = False
    accounts: dict[str, Account] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    bank_transactions: dict[str, BankTransaction] = field(default_factory=dict)
    feed_connections: dict[str, FeedConnection] = field(default_factory=dict)
    statements: dict[str, Statement] = field(default_factory=dict)


# ----------------------------------------------------------------------------- the root


@dataclass(frozen=True)
class RequestRecord:
    """One API call as the sandbox saw it, for tests and the admin API."""

    at: datetime
    """When it was answered (or dropped)."""
    method: str
    path: str
    status: int
    tenant_id: str | None
    client_id: str | None
    idempotency_key: str | None
    replayed: bool
    fault: str | None
    received_at: datetime | None = None
    """When it arrived."""
    retry_after: float | None = None
    """The `Retry-After` of a 429, in seconds."""
    delayed_ms: int = 0
    """Latency an injected `latency` fault added before the work was done."""


@dataclass
class Sandbox:
    clock: Clock = field(default_factory=Clock)
    apps: dict[str, App] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    """By e-mail address."""
    organisations: dict[str, Organisation] = field(default_factory=dict)
    connections: dict[str, Connection] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    pending: dict[str, PendingAuthorization] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    rate_limiter: RateLimiter = field(init=False)
    idempotency: IdempotencyStore = field(init=False)
    faults: FaultPlan = field(default_factory=FaultPlan)
    requests: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=10_000))
    signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def __post_init__(self) -> None:
        self.rate_limiter = RateLimiter(self.clock, self.limits)
        self.idempotency = IdempotencyStore(self.clock)

    def reset(self) -> None:
        """Forget everything, as a fresh process would."""
        fresh = Sandbox()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def organisation(self, tenant_id: str) -> Organisation | None:
        return self.organisations.get(tenant_id.lower())

    def user(self, email: str) -> User:
        """The Xero user with this e-mail address, created on first sight."""
        key = email.strip().lower()
        if key not in self.users:
            self.users[key] = User(user_id=new_id(), email=key)
        return self.users[key]

    def connections_of(self, client_id: str, user_id: str) -> list[Connection]:
        return [
            c
            for c in self.connections.values()
            if c.client_id == client_id and c.user_id == user_id
        ]
