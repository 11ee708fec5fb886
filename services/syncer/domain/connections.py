"""What the syncer knows of a connection, and which of its transactions may go to Xero."""

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class AccountLink:
    account_id: str
    currency: str
    status: str
    feed_connection_id: uuid.UUID | None
    xero_account_id: uuid.UUID | None

    def destination(self, sink: str) -> uuid.UUID | None:
        """Where this account's transactions go: its feed (bank feeds) or its Xero bank
        account (accounting). None when it has none: nothing can be posted."""
        return self.feed_connection_id if sink == "bankfeeds" else self.xero_account_id


@dataclass(frozen=True, slots=True)
class ConnectionView:
    connection_id: uuid.UUID
    version: int
    entity_id: str
    tenant_id: uuid.UUID
    org_timezone: str
    sink: str
    sync_start_date: date
    status: str
    accounts: tuple[AccountLink, ...]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.org_timezone)

    @property
    def active(self) -> bool:
        return self.status == "active"

    def postable_accounts(self) -> list[AccountLink]:
        """Linked accounts with somewhere to post to."""
        return [
            link
            for link in self.accounts
            if link.status == "linked" and link.destination(self.sink) is not None
        ]

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """[from, until): transactions booked from the sync start date (midnight in the
        organisation's time zone) up to the end of today there. Xero refuses a statement
        that ends in the future in the organisation's time zone, so a transaction booked
        'tomorrow' there waits for its day."""
        zone = self.zone
        start = datetime.combine(self.sync_start_date, time.min, tzinfo=zone).astimezone(UTC)
        today = now.astimezone(zone).date()
        until = datetime.combine(today + timedelta(days=1), time.min, tzinfo=zone)
        return start, until.astimezone(UTC)
