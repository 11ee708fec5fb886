"""The connector's server-rendered pages: Jinja2 templates filled from frozen views.

Routes build a view and call one method of `Pages`; the pages work without JavaScript
(plain forms and links) and every POST form carries the viewer's CSRF token.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Final
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from starlette.responses import HTMLResponse

TEMPLATES_DIR: Final = Path(__file__).parent / "templates"
STATIC_DIR: Final = Path(__file__).parent / "static"
"""Served at /static by the web routes (app.css)."""

# Pages carry a CSRF token and the entity's account names: never kept by a shared cache.
_NO_STORE: Final = {"Cache-Control": "no-store"}

# Words, not colours, carry status; unknown values fall back to themselves (see _words).
CONNECTION_STATUS_WORDS: Final = {
    "active": "Active",
    "needs_user": "Needs your attention",
    "disconnected": "Disconnected",
}
LINK_STATUS_WORDS: Final = {
    "linked": "Linked",
    "failed": "Failed",
    "needs_user": "Needs your attention",
    "unlinked": "Not linked",
}
SINK_WORDS: Final = {"bankfeeds": "Bank feed", "accounting": "Bank transactions"}

# English month names fixed here so a server locale cannot change them.
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip


@dataclass(frozen=True)
class Viewer:
    """Who is signed in (None on the sign-in pages)."""

    user_name: str
    entity_id: str
    entity_name: str | None
    csrf_token: str


@dataclass(frozen=True)
class BankAccountRow:
    """One of the entity's bank accounts, offered for connecting."""

    account_id: str
    currency: str
    name: str
    number: str
    closed: bool


@dataclass(frozen=True)
class LinkedAccountRow:
    """One account of a connection and where it lands in Xero."""

    account_id: str
    currency: str
    name: str
    number: str
    link_status: str  # linked | failed | needs_user | unlinked
    xero_target: str | None
    last_synced_at: datetime | None  # aware
    latest_transaction_date: date | None
    problem: str | None  # words a user can act on


@dataclass(frozen=True)
class ConnectionView:
    """The entity's live connection, as the pages show it."""

    connection_id: str
    org_name: str
    status: str  # active | needs_user | disconnected
    status_reason: str | None
    sink: str  # bankfeeds | accounting
    sync_start_date: date
    display_timezone: str  # IANA; times are shown in it, with its abbreviation
    connected_at: datetime
    last_sync_at: datetime | None
    last_sync_message: str | None
    accounts: tuple[LinkedAccountRow, ...]


@dataclass(frozen=True)
class XeroPageView:
    """Accounting → Xero, Manage Connection and the disconnect confirmation."""

    viewer: Viewer
    accounts: tuple[BankAccountRow, ...]  # the entity's open accounts
    connection: ConnectionView | None  # the live (active or needs_user) connection
    today: date
    earliest_start: date  # start date bounds: earliest_start ..= today
    notice: str | None = None  # green banner ("Sync requested…")
    problem: str | None = None  # red banner (form error)


@dataclass(frozen=True)
class RefusalView:
    """A connect attempt we refused, and what the user can do about it."""

    viewer: Viewer | None
    title: str
    message: str
    advice: str
    back_url: str | None


@dataclass(frozen=True)
class DevEntity:
    """An entity offered on the development-only sign-in page."""

    entity_id: str
    name: str
    accounts: str  # "HKD · CNY · USD"


def format_date(day: date) -> str:
    """`24 Nov 2026`."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def display_zone(name: str) -> ZoneInfo:
    """The named zone, or UTC when the name is unknown (the abbreviation then says UTC)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_moment(moment: datetime, timezone: str) -> str:
    """`24 Nov 2026, 14:05 HKT`: the moment in `timezone` with the zone's abbreviation."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime has no place on a clock; pass an aware one")
    local = moment.astimezone(display_zone(timezone))
    abbreviation = local.tzname() or ""
    # Zones without a letter abbreviation report "+08"; "UTC+08" reads as a zone.
    if abbreviation[:1] in {"+", "-"}:
        abbreviation = f"UTC{abbreviation}"
    return f"{format_date(local.date())}, {local:%H:%M} {abbreviation}".rstrip()


def xero_url(entity_id: str, action: str = "") -> str:
    """`/entities/{entity_id}/xero[/action]`, the entity id quoted as one path segment."""
    path = f"/entities/{quote(entity_id, safe='')}/xero"
    return f"{path}/{action}" if action else path


def _words(table: Mapping[str, str]) -> Callable[[str], str]:
    def words(value: str) -> str:
        return table.get(value, value.replace("_", " ").capitalize())

    return words


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["day"] = format_date
    environment.filters["moment"] = format_moment
    environment.filters["connection_status"] = _words(CONNECTION_STATUS_WORDS)
    environment.filters["link_status"] = _words(LINK_STATUS_WORDS)
    environment.filters["sink"] = _words(SINK_WORDS)
    environment.globals["xero_url"] = xero_url
    return environment


class Pages:
    """Renders every page of the connector; built once by the composition root."""

    def __init__(self) -> None:
        self._environment = _environment()

    def xero(self, view: XeroPageView, status: int = 200) -> HTMLResponse:
        """Accounting → Xero: the connect form, or the live connection's status."""
        open_accounts = tuple(account for account in view.accounts if not account.closed)
        return self._render(
            "xero.html",
            status,
            view=view,
            viewer=view.viewer,
            open_accounts=open_accounts,
            reconnect_start=_reconnect_start(view),
        )

    def manage(self, view: XeroPageView) -> HTMLResponse:
        """Manage Connection: the mapping, the settings and the red Disconnect Xero."""
        return self._render(
            "manage.html", 200, view=view, viewer=view.viewer, connection=_live(view)
        )

    def confirm_disconnect(self, view: XeroPageView) -> HTMLResponse:
        """Disconnect Xero?: what happens, and YES, DISCONNECT."""
        return self._render(
            "confirm_disconnect.html", 200, view=view, viewer=view.viewer, connection=_live(view)
        )

    def disconnected(self, viewer: Viewer, org_name: str) -> HTMLResponse:
        """Xero disconnected."""
        return self._render("disconnected.html", 200, viewer=viewer, org_name=org_name)

    def refusal(self, view: RefusalView, status: int) -> HTMLResponse:
        """A refused connect (organisation edition, status, a denied consent…)."""
        back_url = view.back_url
        if back_url is None and view.viewer is not None:
            back_url = xero_url(view.viewer.entity_id)
        return self._render(
            "refusal.html", status, view=view, viewer=view.viewer, back_url=back_url
        )

    def sign_in_required(self, reason: str, dev_sign_in: bool, status: int = 401) -> HTMLResponse:
        """Please sign in (the bank's app opens this service with a signed-in user)."""
        return self._render(
            "sign_in_required.html", status, viewer=None, reason=reason, dev_sign_in=dev_sign_in
        )

    def dev_sign_in(self, entities: Sequence[DevEntity]) -> HTMLResponse:
        """Demo sign-in: pick an entity (development only)."""
        return self._render("dev_sign_in.html", 200, viewer=None, entities=tuple(entities))

    def error(
        self, title: str, message: str, status: int, viewer: Viewer | None = None
    ) -> HTMLResponse:
        """A plain error page; home is the viewer's Xero page when someone is signed in."""
        home_url = xero_url(viewer.entity_id) if viewer is not None else "/"
        return self._render(
            "error.html", status, viewer=viewer, title=title, message=message, home_url=home_url
        )

    def _render(self, template: str, status: int, **context: object) -> HTMLResponse:
        body = self._environment.get_template(template).render(**context)
        return HTMLResponse(body, status_code=status, headers=_NO_STORE)


def _live(view: XeroPageView) -> ConnectionView:
    if view.connection is None:
        raise ValueError("this page shows a connection; the view has none")
    return view.connection


def _reconnect_start(view: XeroPageView) -> date:
    """Reconnecting offers the start date already chosen, within today's bounds."""
    if view.connection is None:
        return view.today
    return min(max(view.connection.sync_start_date, view.earliest_start), view.today)
