"""Events xerosync's own services publish about Xero connections and syncs."""

import uuid
import zoneinfo
from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    StringConstraints,
)

from .base import PRINTABLE, AccountIdentifier, CurrencyCode, Event, Identifier, PrintableText

Sink = Literal["bankfeeds", "accounting"]
ConnectionStatus = Literal["active", "needs_user", "disconnected"]
AccountLinkStatus = Literal["linked", "failed", "needs_user", "unlinked"]
DisconnectReason = Literal["user", "revoked_in_xero", "reauth_required", "admin"]
SyncReason = Literal["schedule", "manual", "connected", "catch_up"]
SyncFailureReason = Literal[
    "token_invalid",
    "connection_removed",
    "account_unavailable",
    "xero_unavailable",
    "rate_limited",
    "validation_failed",
    "internal_error",
]


def _iana_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"{value!r} is not an IANA time zone name") from error
    return value


TimeZoneName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    PRINTABLE,
    AfterValidator(_iana_zone),
    Field(examples=["Asia/Hong_Kong"]),
]
HumanMessage = Annotated[str, StringConstraints(min_length=1, max_length=1000), PRINTABLE]


class AccountMapping(BaseModel):
    """How one bank account is linked into the Xero organisation."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    account_id: AccountIdentifier = Field(description="The bank's account id.")
    currency: CurrencyCode
    status: AccountLinkStatus = Field(
        description="`linked` posts; `failed` could not be linked (see `problem`); "
        "`needs_user` was linked but Xero refuses it now (archived, deleted); "
        "`unlinked` was left out by the user."
    )
    feed_connection_id: uuid.UUID | None = Field(
        default=None, description="Xero feed connection, in `bankfeeds` mode."
    )
    xero_account_id: uuid.UUID | None = Field(
        default=None, description="Xero BANK account (the feed's account in `bankfeeds` mode)."
    )
    problem: HumanMessage | None = Field(
        default=None, description="What went wrong, in words the user can act on."
    )


class _ConnectionSnapshot(Event):
    """The whole current state of a connection, so the topic can be compacted and a
    consumer rebuilds its view from the latest event per key (`connection_id`)."""

    connection_id: uuid.UUID = Field(description="Our id for the connection; the Kafka key.")
    version: NonNegativeInt = Field(
        description="Increases with every change of this connection; consumers ignore an "
        "event whose version is not newer than what they hold (replays, reordering)."
    )
    entity_id: Identifier
    tenant_id: uuid.UUID = Field(description="Xero organisation (tenant) id.")
    tenant_name: PrintableText = Field(
        min_length=1, max_length=255, description="Xero organisation name."
    )
    org_timezone: TimeZoneName = Field(description="Organisation's time zone (IANA name).")
    base_currency: CurrencyCode = Field(description="Organisation's base currency.")
    sink: Sink = Field(
        description="`bankfeeds`: statements through the Bank Feeds API; `accounting`: "
        "spend/receive-money bank transactions through the Accounting API."
    )
    sync_start_date: date = Field(description="Transactions booked before this are not sent.")
    status: ConnectionStatus
    status_reason: HumanMessage | None = Field(
        default=None, description="Why the connection needs the user, or was disconnected."
    )
    accounts: list[AccountMapping] = Field(max_length=200)


class ConnectionEstablished(_ConnectionSnapshot):
    """An entity connected (or reconnected) to a Xero organisation."""

    type: Literal["ConnectionEstablished"] = "ConnectionEstablished"


class ConnectionUpdated(_ConnectionSnapshot):
    """Something about a live connection changed (an account link, the status)."""

    type: Literal["ConnectionUpdated"] = "ConnectionUpdated"


class ConnectionDisconnected(_ConnectionSnapshot):
    """The connection ended: the user disconnected in our app, or the app was removed in
    Xero. Posting stops; ingestion continues so a reconnect resumes without gaps."""

    type: Literal["ConnectionDisconnected"] = "ConnectionDisconnected"
    reason: DisconnectReason = Field(
        description="`user`: disconnected in our app; `revoked_in_xero`: the app was "
        "removed in Xero (the connection is gone from `GET /connections`, or Xero answers "
        "401/403); `reauth_required`: Xero refused the refresh token (`invalid_grant`), so "
        "only the user can renew consent; `admin`: by an operator. With the last three, "
        "`status` is `needs_user`: reconnecting resumes the same connection id."
    )


class SyncRequested(Event):
    """The user pressed *Sync now*. Key: `connection_id`."""

    type: Literal["SyncRequested"] = "SyncRequested"
    connection_id: uuid.UUID
    entity_id: Identifier
    requested_by: Identifier = Field(description="Opaque id of the bank user who asked.")


class SyncDue(Event):
    """A connection should sync now. Key: `tenant_id`, so one organisation's posting is
    handled by one syncer member at a time.

    The scheduler emits one per slot: every `SYNC_INTERVAL` at the connection's own phase
    (`schedule`), one for all slots missed during downtime (`catch_up`), on *Sync now*
    (`manual`, debounced) and right after connecting (`connected`). `event_id` is derived
    from the slot, so the same slot always carries the same id: a consumer that sees an
    id twice can drop the second."""

    type: Literal["SyncDue"] = "SyncDue"
    connection_id: uuid.UUID
    tenant_id: uuid.UUID
    reason: SyncReason
    due_at: AwareDatetime = Field(
        description="The slot this emission is for: the scheduled time (for `catch_up`, the "
        "latest missed one), the press (`manual`) or the connection (`connected`)."
    )


class AccountSyncResult(BaseModel):
    """Where one account stands in Xero after a sync run."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    account_id: AccountIdentifier
    posted: NonNegativeInt
    failed: NonNegativeInt
    remaining: NonNegativeInt = Field(description="Transactions still waiting to be posted.")
    latest_transaction_date: date | None = Field(
        description="Latest booking date of a transaction Xero holds for this account."
    )
    problem: HumanMessage | None = None


class _SyncOutcome(Event):
    connection_id: uuid.UUID
    tenant_id: uuid.UUID
    run_id: uuid.UUID
    started_at: AwareDatetime
    finished_at: AwareDatetime


class SyncCompleted(_SyncOutcome):
    """A sync run finished; some items may have failed individually (see counts)."""

    type: Literal["SyncCompleted"] = "SyncCompleted"
    posted: NonNegativeInt
    failed: NonNegativeInt
    remaining: NonNegativeInt = Field(
        description="Left for a later run (day's budget spent); 0 when caught up."
    )
    accounts: list[AccountSyncResult] = Field(max_length=200)


class SyncFailed(_SyncOutcome):
    """A sync run could not post."""

    type: Literal["SyncFailed"] = "SyncFailed"
    reason: SyncFailureReason
    message: HumanMessage = Field(description="What happened, in words the user can act on.")
    user_action_required: bool = Field(
        description="True when only the user can fix it (e.g. reconnect to Xero)."
    )


ConnectionEvent = Annotated[
    ConnectionEstablished | ConnectionUpdated | ConnectionDisconnected,
    Field(discriminator="type"),
]
SyncResultEvent = Annotated[SyncCompleted | SyncFailed, Field(discriminator="type")]
