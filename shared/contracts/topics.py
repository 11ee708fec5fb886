"""Topic catalogue: names, keys, the events each topic carries, who writes and reads it.

Names take an optional prefix (`TOPIC_PREFIX`, e.g. `staging.`) so several environments
can share one cluster; consumer group ids take the same prefix.
"""

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import TypeAdapter

from .bank import (
    AccountClosed,
    AccountEvent,
    AccountOpened,
    AccountUpdated,
    TransactionBooked,
    TransactionEvent,
    TransactionReversed,
)
from .base import Event
from .xero import (
    ConnectionDisconnected,
    ConnectionEstablished,
    ConnectionEvent,
    ConnectionUpdated,
    SyncCompleted,
    SyncDue,
    SyncFailed,
    SyncRequested,
    SyncResultEvent,
)

DLQ_SUFFIX = ".dlq"
_TOPIC_CHARS = re.compile(r"^[A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key_field: str
    events: tuple[type[Event], ...]
    union: Any = field(repr=False)
    summary: str
    producers: str
    consumers: str
    compacted: bool = False
    produced_outside: bool = False
    """True for topics the bank's own producers write and xerosync only reads."""

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        """Validates a record's JSON into one of this topic's events."""
        return TypeAdapter(self.union)

    @cached_property
    def consumer_services(self) -> tuple[str, ...]:
        """The services named in `consumers`, e.g. ("scheduler", "syncer")."""
        return tuple(name.strip() for name in self.consumers.split(","))

    def key_of(self, event: Event) -> bytes:
        return str(getattr(event, self.key_field)).encode()


BANK_ACCOUNTS = TopicSpec(
    name="bank.accounts.v1",
    key_field="account_id",
    events=(AccountOpened, AccountUpdated, AccountClosed),
    union=AccountEvent,
    summary="Accounts the bank's entities open, change and close.",
    producers="the bank's internal producers",
    consumers="connector",
    compacted=True,
    produced_outside=True,
)
BANK_TRANSACTIONS = TopicSpec(
    name="bank.transactions.v1",
    key_field="account_id",
    events=(TransactionBooked, TransactionReversed),
    union=TransactionEvent,
    summary="Every booked transaction and reversal on the entities' accounts, in booking "
    "order per account (records keyed by account_id keep that order per partition).",
    producers="the bank's internal producers",
    consumers="syncer",
    produced_outside=True,
)
XERO_CONNECTIONS = TopicSpec(
    name="xero.connections.v1",
    key_field="connection_id",
    events=(ConnectionEstablished, ConnectionUpdated, ConnectionDisconnected),
    union=ConnectionEvent,
    summary="Whole state of each entity's Xero connection after every change; compacted.",
    producers="connector",
    consumers="scheduler, syncer",
    compacted=True,
)
XERO_SYNC_REQUESTS = TopicSpec(
    name="xero.sync-requests.v1",
    key_field="connection_id",
    events=(SyncRequested,),
    union=SyncRequested,
    summary='The user pressed "Sync now".',
    producers="connector",
    consumers="scheduler",
)
XERO_SYNC_DUE = TopicSpec(
    name="xero.sync-due.v1",
    key_field="tenant_id",
    events=(SyncDue,),
    union=SyncDue,
    summary="A connection should sync now; keyed by Xero tenant so one syncer member "
    "handles one organisation at a time and keeps its rate-limit budget.",
    producers="scheduler",
    consumers="syncer",
)
XERO_SYNC_RESULTS = TopicSpec(
    name="xero.sync-results.v1",
    key_field="connection_id",
    events=(SyncCompleted, SyncFailed),
    union=SyncResultEvent,
    summary="How each sync run ended.",
    producers="syncer",
    consumers="connector, scheduler",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    BANK_ACCOUNTS,
    BANK_TRANSACTIONS,
    XERO_CONNECTIONS,
    XERO_SYNC_REQUESTS,
    XERO_SYNC_DUE,
    XERO_SYNC_RESULTS,
)


def validate_prefix(prefix: str) -> str:
    if not _TOPIC_CHARS.fullmatch(prefix) or len(prefix) > 100:
        raise ValueError(
            f"topic prefix {prefix!r} may only contain letters, digits, '.', '_' and '-' "
            "(at most 100 characters)"
        )
    return prefix


@dataclass(frozen=True)
class Topics:
    """Concrete topic names for one environment's prefix."""

    prefix: str = ""

    def __post_init__(self) -> None:
        validate_prefix(self.prefix)

    def name(self, spec: TopicSpec) -> str:
        return f"{self.prefix}{spec.name}"

    def dlq(self, spec: TopicSpec) -> str:
        return dlq_of(self.name(spec))

    def group(self, name: str) -> str:
        """Consumer group id, prefixed like the topics so environments never share one."""
        return f"{self.prefix}{name}"


def dlq_of(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"
