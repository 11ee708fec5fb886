"""Event contracts: the pydantic models every producer and consumer of xerosync shares.

`xerosync asyncapi` renders them as the AsyncAPI document in `docs/asyncapi.yaml`.
"""

from .bank import (
    AccountClosed,
    AccountOpened,
    AccountUpdated,
    TransactionBooked,
    TransactionReversed,
)
from .base import Event
from .topics import (
    ALL_TOPICS,
    BANK_ACCOUNTS,
    BANK_TRANSACTIONS,
    XERO_CONNECTIONS,
    XERO_SYNC_DUE,
    XERO_SYNC_REQUESTS,
    XERO_SYNC_RESULTS,
    Topics,
    TopicSpec,
)
from .xero import (
    AccountMapping,
    AccountSyncResult,
    ConnectionDisconnected,
    ConnectionEstablished,
    ConnectionUpdated,
    SyncCompleted,
    SyncDue,
    SyncFailed,
    SyncRequested,
)

__all__ = [
    "ALL_TOPICS",
    "BANK_ACCOUNTS",
    "BANK_TRANSACTIONS",
    "XERO_CONNECTIONS",
    "XERO_SYNC_DUE",
    "XERO_SYNC_REQUESTS",
    "XERO_SYNC_RESULTS",
    "AccountClosed",
    "AccountMapping",
    "AccountOpened",
    "AccountSyncResult",
    "AccountUpdated",
    "ConnectionDisconnected",
    "ConnectionEstablished",
    "ConnectionUpdated",
    "Event",
    "SyncCompleted",
    "SyncDue",
    "SyncFailed",
    "SyncRequested",
    "TopicSpec",
    "Topics",
    "TransactionBooked",
    "TransactionReversed",
]
