"""One complete, valid example of every event, for the AsyncAPI document and tests.

Fixed ids and times keep the generated document stable from run to run.
"""

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from .bank import (
    AccountClosed,
    AccountOpened,
    AccountUpdated,
    TransactionBooked,
    TransactionReversed,
)
from .base import Event
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

_AT = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
_CONNECTION = uuid.UUID("3f0c8a52-7c1e-4b9e-9a51-2d1f6a0e5b10")
_TENANT = uuid.UUID("b1f2c3d4-0000-4000-8000-00000000a001")
_RUN = uuid.UUID("9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a")


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(int=0x5E1F0000_0000_4000_8000_000000000000 + n)


_ACCOUNT: dict[str, object] = {
    "entity_id": "ent-7d3a",
    "account_id": "acc-hkd-001",
    "currency": "HKD",
    "name": "HKD Current",
    "account_number": "012-345678-001",
}
_MAPPING = AccountMapping(
    account_id="acc-hkd-001",
    currency="HKD",
    status="linked",
    feed_connection_id=uuid.UUID("0d3cf8dd-95dc-4466-8dc0-47e6d1197e28"),
    xero_account_id=uuid.UUID("079a88ea-276d-41fb-a1f1-366ef3e22921"),
)
_CONNECTION_STATE: dict[str, object] = {
    "connection_id": _CONNECTION,
    "version": 1,
    "entity_id": "ent-7d3a",
    "tenant_id": _TENANT,
    "tenant_name": "Harbour Trading Ltd",
    "org_timezone": "Asia/Hong_Kong",
    "base_currency": "HKD",
    "sink": "bankfeeds",
    "sync_start_date": date(2026, 3, 1),
    "status": "active",
    "accounts": [_MAPPING],
}
_OUTCOME: dict[str, object] = {
    "connection_id": _CONNECTION,
    "tenant_id": _TENANT,
    "run_id": _RUN,
    "started_at": _AT,
    "finished_at": datetime(2026, 3, 2, 1, 30, 4, tzinfo=UTC),
}

EXAMPLES: dict[type[Event], Event] = {
    AccountOpened: AccountOpened.model_validate(
        _ACCOUNT | {"event_id": _id(1), "occurred_at": _AT}
    ),
    AccountUpdated: AccountUpdated.model_validate(
        _ACCOUNT | {"event_id": _id(2), "occurred_at": _AT, "name": "HKD Operating"}
    ),
    AccountClosed: AccountClosed.model_validate(
        _ACCOUNT | {"event_id": _id(3), "occurred_at": _AT}
    ),
    TransactionBooked: TransactionBooked(
        event_id=_id(4),
        occurred_at=_AT,
        transaction_id="txn-20260302-000187",
        entity_id="ent-7d3a",
        account_id="acc-hkd-001",
        currency="HKD",
        amount=Decimal("1250.00"),
        direction="debit",
        balance_after=Decimal("48750.00"),
        booked_at=datetime(2026, 3, 2, 1, 29, 58, tzinfo=UTC),
        value_date=date(2026, 3, 2),
        description="FPS transfer to Kowloon Printing Co",
        counterparty_name="Kowloon Printing Co",
        reference="INV-2231",
        category="transfer",
    ),
    TransactionReversed: TransactionReversed(
        event_id=_id(5),
        occurred_at=_AT,
        transaction_id="txn-20260302-000188",
        original_transaction_id="txn-20260302-000187",
        entity_id="ent-7d3a",
        account_id="acc-hkd-001",
        currency="HKD",
        amount=Decimal("1250.00"),
        direction="credit",
        balance_after=Decimal("50000.00"),
        booked_at=datetime(2026, 3, 2, 1, 45, tzinfo=UTC),
        value_date=date(2026, 3, 2),
        description="Returned by beneficiary bank",
    ),
    ConnectionEstablished: ConnectionEstablished.model_validate(
        _CONNECTION_STATE | {"event_id": _id(6), "occurred_at": _AT}
    ),
    ConnectionUpdated: ConnectionUpdated.model_validate(
        _CONNECTION_STATE
        | {
            "event_id": _id(7),
            "occurred_at": _AT,
            "version": 2,
            "accounts": [
                _MAPPING.model_copy(
                    update={
                        "status": "needs_user",
                        "problem": "The HKD account was archived in Xero. Reconnect to link "
                        "it again.",
                    }
                )
            ],
        }
    ),
    ConnectionDisconnected: ConnectionDisconnected.model_validate(
        _CONNECTION_STATE
        | {
            "event_id": _id(8),
            "occurred_at": _AT,
            "version": 3,
            "status": "disconnected",
            "status_reason": "Disconnected in the bank's app.",
            "reason": "user",
        }
    ),
    SyncRequested: SyncRequested(
        event_id=_id(9),
        occurred_at=_AT,
        connection_id=_CONNECTION,
        entity_id="ent-7d3a",
        requested_by="user-4410",
    ),
    SyncDue: SyncDue(
        event_id=_id(10),
        occurred_at=_AT,
        connection_id=_CONNECTION,
        tenant_id=_TENANT,
        reason="schedule",
        due_at=_AT,
    ),
    SyncCompleted: SyncCompleted.model_validate(
        _OUTCOME
        | {
            "event_id": _id(11),
            "occurred_at": _AT,
            "posted": 42,
            "failed": 0,
            "remaining": 0,
            "accounts": [
                AccountSyncResult(
                    account_id="acc-hkd-001",
                    posted=42,
                    failed=0,
                    remaining=0,
                    latest_transaction_date=date(2026, 3, 2),
                )
            ],
        }
    ),
    SyncFailed: SyncFailed.model_validate(
        _OUTCOME
        | {
            "event_id": _id(12),
            "occurred_at": _AT,
            "reason": "token_invalid",
            "message": "Xero no longer accepts this connection. Reconnect to Xero to resume "
            "syncing.",
            "user_action_required": True,
        }
    ),
}
