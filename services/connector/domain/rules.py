"""What the connector decides on its own: which organisations it accepts, which sync start
dates, and how each problem is put to the user. Pure: no I/O."""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from shared.errors import PermanentError

MAX_LOOKBACK = timedelta(days=365)
ACCEPTED_EDITION = "BUSINESS"
ACCEPTED_STATUS = "ACTIVE"
NeedsUserReason = Literal["revoked_in_xero", "reauth_required", "admin"]


class RequestRefused(PermanentError):
    """The user's request cannot be carried out as asked; the message says how to fix it."""


class AlreadyConnected(RequestRefused):
    """The entity already holds a live connection."""


class NotYours(RequestRefused):
    """The request names another entity's authorization."""


class NotConnected(RequestRefused):
    """The entity has no live connection to act on."""


@dataclass(frozen=True)
class Refusal:
    """Why an authorization ends without a connection, in the user's words."""

    kind: str
    title: str
    message: str
    advice: str


def start_date_bounds(today: date) -> tuple[date, date]:
    """The earliest and latest sync start date a user may choose."""
    return today - MAX_LOOKBACK, today


def parse_start_date(raw: str | None, today: date) -> date:
    """The chosen sync start date: today when empty, at most one year back, never ahead."""
    if raw is None or not raw.strip():
        return today
    try:
        chosen = date.fromisoformat(raw.strip())
    except ValueError:
        raise RequestRefused(
            f"'{raw[:20]}' is not a date; choose one as YYYY-MM-DD, e.g. {today.isoformat()}."
        ) from None
    earliest, latest = start_date_bounds(today)
    if chosen < earliest:
        raise RequestRefused(
            f"Transactions can be sent from {earliest:%d %b %Y} at the earliest (one year "
            "back); choose a later start date."
        )
    if chosen > latest:
        raise RequestRefused("The start date cannot be in the future; choose today or earlier.")
    return chosen


def organisation_refusal(name: str, edition: str, status: str) -> Refusal | None:
    """Xero organisations xerosync cannot feed: Partner Edition (and other non-business
    editions) and organisations that are not active."""
    if edition.upper() != ACCEPTED_EDITION:
        return Refusal(
            kind="edition",
            title="This Xero organisation can't be connected",
            message=f"{name} is a Xero {edition.title()} Edition organisation. Bank "
            "transactions can only be sent to a Business Edition organisation.",
            advice="Choose a Business Edition organisation when Xero asks, or ask your "
            "adviser to upgrade this one, then connect again.",
        )
    if status.upper() != ACCEPTED_STATUS:
        return Refusal(
            kind="inactive",
            title="This Xero organisation isn't active",
            message=f"Xero reports {name} as {status.lower()}, so it cannot receive transactions.",
            advice="Reactivate the organisation in Xero, or choose another one, then connect "
            "again.",
        )
    return None


CONSENT_DENIED = Refusal(
    kind="denied",
    title="Xero wasn't connected",
    message="You chose not to allow access in Xero, so nothing was connected.",
    advice="To send your transactions to Xero, press Sync again and choose Allow access.",
)
STATE_EXPIRED = Refusal(
    kind="state",
    title="That Xero sign-in has expired",
    message="The link back from Xero is no longer valid: it was used already, or more than "
    "15 minutes passed.",
    advice="Start again from Accounting → Xero and press Sync.",
)
NO_ORGANISATION = Refusal(
    kind="no_tenant",
    title="No Xero organisation was chosen",
    message="Xero did not give access to any organisation.",
    advice="Press Sync again and tick the organisation to connect on Xero's page.",
)
ALL_ACCOUNTS_FAILED_TITLE = "None of your accounts could be linked"


def cannot_hold_currency(org_name: str, currency: str, base_currency: str) -> str:
    return (
        f"{org_name} cannot hold {currency} accounts: its base currency is {base_currency} "
        f"and multi-currency is not on. Turn on multi-currency in Xero (or add {currency}), "
        "then reconnect."
    )


def link_refused(currency: str, xero_message: str) -> str:
    return f"Xero refused to link the {currency} account: {xero_message}"


ACCOUNT_ARCHIVED = "bank account was archived"


def account_gone(currency: str, what: str) -> str:
    """What the page says of a linked account whose feed or bank account Xero no longer
    takes (`what`: e.g. "bank account was archived")."""
    if what == ACCOUNT_ARCHIVED:
        return (
            f"The {currency} account's {what} in Xero, so its transactions are waiting. "
            "Restore it in Xero and syncing resumes on its own (we check regularly); "
            "nothing is lost."
        )
    return (
        f"The {currency} account's {what} in Xero, so its transactions are waiting. "
        "Reconnect to Xero to link it again."
    )


REVOKED_IN_XERO = (
    "xerosync was disconnected in Xero, so transactions are no longer sent. Reconnect to "
    "Xero to resume; nothing is lost."
)
REAUTH_REQUIRED = (
    "Xero asked us to sign in again (the connection's permission expired or was "
    "withdrawn). Reconnect to Xero to resume; nothing is lost."
)
DISCONNECTED_BY_USER = "Disconnected in the bank's app."
