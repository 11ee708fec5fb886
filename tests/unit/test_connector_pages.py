"""The connector's pages: the names the browser tests click, accessibility, escaping, times."""

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from itertools import pairwise
from typing import Any

import pytest
from starlette.responses import HTMLResponse

from services.connector.entrypoints.pages import (
    STATIC_DIR,
    BankAccountRow,
    ConnectionView,
    DevEntity,
    LinkedAccountRow,
    Pages,
    RefusalView,
    Viewer,
    XeroPageView,
    format_date,
    format_moment,
    xero_url,
)

CSRF = "csrf-token-123"
ENTITY = "ent-7"
HOSTILE = "<script>alert(1)</script>"

# ----------------------------------------------------------------------------- reading pages

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}  # fmt: skip


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    form: "Element | None" = None
    children: list["Element"] = field(default_factory=list)


class Page(HTMLParser):
    """The parts of a page the tests look at: forms, controls, links, labels, headings."""

    def __init__(self, body: str) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self.forms: list[Element] = []
        self.html_attrs: dict[str, str] = {}
        self._open: list[Element] = []
        self._form: Element | None = None
        self.feed(body)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs}, form=self._form)
        self.elements.append(element)
        if tag == "html":
            self.html_attrs = element.attrs
        if tag == "form":
            self._form = element
            self.forms.append(element)
        elif self._form is not None:
            self._form.children.append(element)
        if tag not in _VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index].tag == tag:
                del self._open[index:]
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data

    # -- queries

    def all(self, tag: str) -> list[Element]:
        return [element for element in self.elements if element.tag == tag]

    def named(self, tag: str, name: str) -> list[Element]:
        """Elements of `tag` whose text (whitespace collapsed) is exactly `name`."""
        return [element for element in self.all(tag) if words(element.text) == name]

    def one(self, tag: str, name: str) -> Element:
        found = self.named(tag, name)
        assert len(found) == 1, f"expected one <{tag}> named {name!r}, found {len(found)}"
        return found[0]

    def by_id(self, element_id: str) -> Element:
        found = [element for element in self.elements if element.attrs.get("id") == element_id]
        assert len(found) == 1, element_id
        return found[0]

    def headings(self) -> list[tuple[int, str]]:
        return [
            (int(element.tag[1]), words(element.text))
            for element in self.elements
            if re.fullmatch(r"h[1-6]", element.tag)
        ]

    def text(self) -> str:
        return words(self.one_tag("body").text)

    def one_tag(self, tag: str) -> Element:
        found = self.all(tag)
        assert len(found) == 1, tag
        return found[0]


def words(text: str) -> str:
    return " ".join(text.split())


def fields(form: Element) -> dict[str, list[Element]]:
    named: dict[str, list[Element]] = {}
    for child in form.children:
        if child.tag in {"input", "select", "textarea"} and "name" in child.attrs:
            named.setdefault(child.attrs["name"], []).append(child)
    return named


def html_of(response: HTMLResponse) -> str:
    return bytes(response.body).decode("utf-8")


def page_of(response: HTMLResponse) -> Page:
    return Page(html_of(response))


# ----------------------------------------------------------------------------- sample views

VIEWER = Viewer(user_name="Mei Chan", entity_id=ENTITY, entity_name="Lotus Trading Ltd",
                csrf_token=CSRF)  # fmt: skip
TODAY = date(2026, 11, 24)
EARLIEST = date(2025, 11, 24)

HKD = BankAccountRow("acc-hkd", "HKD", "HKD Current", "012-345678-001", closed=False)
USD = BankAccountRow("acc-usd", "USD", "USD Savings", "012-345678-002", closed=False)
OLD = BankAccountRow("acc-old", "CNY", "CNY Old", "012-345678-009", closed=True)

# 06:05 UTC is 14:05 in Hong Kong.
SYNCED = datetime(2026, 11, 24, 6, 5, tzinfo=UTC)


def linked(**changes: Any) -> LinkedAccountRow:
    row = LinkedAccountRow(
        account_id="acc-hkd",
        currency="HKD",
        name="HKD Current",
        number="012-345678-001",
        link_status="linked",
        xero_target="Bank feed → HKD Current (Xero)",
        last_synced_at=SYNCED,
        latest_transaction_date=date(2026, 11, 23),
        problem=None,
    )
    return replace(row, **changes)


def connection(**changes: Any) -> ConnectionView:
    view = ConnectionView(
        connection_id="con-1",
        org_name="Lotus Trading (Xero)",
        status="active",
        status_reason=None,
        sink="bankfeeds",
        sync_start_date=date(2026, 10, 1),
        display_timezone="Asia/Hong_Kong",
        connected_at=datetime(2026, 10, 1, 1, 30, tzinfo=UTC),
        last_sync_at=SYNCED,
        last_sync_message="3 transactions sent",
        accounts=(
            linked(),
            linked(
                account_id="acc-usd",
                currency="USD",
                name="USD Savings",
                number="012-345678-002",
                link_status="failed",
                xero_target=None,
                last_synced_at=None,
                latest_transaction_date=None,
                problem="This Xero organisation can't hold USD. Turn on multi-currency in Xero.",
            ),
        ),
    )
    return replace(view, **changes)


def xero_view(**changes: Any) -> XeroPageView:
    view = XeroPageView(
        viewer=VIEWER,
        accounts=(HKD, USD, OLD),
        connection=None,
        today=TODAY,
        earliest_start=EARLIEST,
    )
    return replace(view, **changes)


@pytest.fixture(scope="module")
def pages() -> Pages:
    return Pages()


# Every page, for the checks that hold on all of them.
ALL_PAGES: dict[str, Callable[[Pages], HTMLResponse]] = {
    "xero-new": lambda pages: pages.xero(xero_view()),
    "xero-no-accounts": lambda pages: pages.xero(xero_view(accounts=(OLD,))),
    "xero-active": lambda pages: pages.xero(
        xero_view(connection=connection(), notice="Sync requested.", problem="Try again.")
    ),
    "xero-needs-user": lambda pages: pages.xero(
        xero_view(connection=connection(status="needs_user", status_reason="Xero said no."))
    ),
    "manage": lambda pages: pages.manage(xero_view(connection=connection())),
    "confirm-disconnect": lambda pages: pages.confirm_disconnect(
        xero_view(connection=connection())
    ),
    "disconnected": lambda pages: pages.disconnected(VIEWER, "Lotus Trading (Xero)"),
    "refusal": lambda pages: pages.refusal(
        RefusalView(
            VIEWER,
            "This Xero organisation can't be connected",
            "It is a Starter edition.",
            "Upgrade it in Xero, then connect again.",
            None,
        ),
        status=409,
    ),
    "refusal-signed-out": lambda pages: pages.refusal(
        RefusalView(None, "Sign-in expired", "It took too long.", "Start again.", None),
        status=400,
    ),
    "sign-in-required": lambda pages: pages.sign_in_required("Your session ended.", True),
    "dev-sign-in": lambda pages: pages.dev_sign_in(
        [DevEntity("ent-7", "Lotus Trading Ltd", "HKD · USD"), DevEntity("ent-8", "Kite", "")]
    ),
    "error": lambda pages: pages.error("Something went wrong", "Please try again.", 500),
}


# ----------------------------------------------------------------------------- format helpers


def test_dates_read_day_month_year() -> None:
    assert format_date(date(2026, 11, 24)) == "24 Nov 2026"
    assert format_date(date(2026, 1, 5)) == "5 Jan 2026"


def test_moments_are_shown_in_the_display_timezone_with_its_abbreviation() -> None:
    assert format_moment(SYNCED, "Asia/Hong_Kong") == "24 Nov 2026, 14:05 HKT"
    assert format_moment(SYNCED, "UTC") == "24 Nov 2026, 06:05 UTC"
    # The local date can differ from the UTC date.
    late = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    assert format_moment(late, "Asia/Hong_Kong") == "25 Nov 2026, 04:00 HKT"


def test_summer_time_changes_the_abbreviation() -> None:
    assert format_moment(SYNCED, "Pacific/Auckland") == "24 Nov 2026, 19:05 NZDT"
    assert format_moment(datetime(2026, 6, 1, tzinfo=UTC), "Pacific/Auckland") == (
        "1 Jun 2026, 12:00 NZST"
    )


def test_a_zone_without_letters_reads_as_an_offset() -> None:
    assert format_moment(SYNCED, "Asia/Singapore") == "24 Nov 2026, 14:05 UTC+08"


def test_an_unknown_zone_falls_back_to_utc_and_says_so() -> None:
    assert format_moment(SYNCED, "Mars/Olympus") == "24 Nov 2026, 06:05 UTC"


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_moment(datetime(2026, 11, 24, 6, 5), "UTC")  # noqa: DTZ001


def test_entity_ids_are_quoted_as_one_path_segment() -> None:
    assert xero_url("ent-7") == "/entities/ent-7/xero"
    assert xero_url("a/b c", "sync") == "/entities/a%2Fb%20c/xero/sync"


# ----------------------------------------------------------------------------- every page


@pytest.mark.parametrize("name", sorted(ALL_PAGES))
def test_every_page_is_an_accessible_document(pages: Pages, name: str) -> None:
    response = ALL_PAGES[name](pages)
    page = page_of(response)
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert page.html_attrs.get("lang") == "en"
    assert len(page.all("main")) == 1
    assert page.one_tag("title").text.strip()
    levels = [level for level, _ in page.headings()]
    assert levels.count(1) == 1
    assert levels[0] == 1
    assert all(after - before <= 1 for before, after in pairwise(levels))
    ids = [element.attrs["id"] for element in page.elements if "id" in element.attrs]
    assert len(ids) == len(set(ids))
    for header in page.all("th"):
        assert header.attrs.get("scope") in {"col", "row"}


@pytest.mark.parametrize("name", sorted(ALL_PAGES))
def test_every_input_has_a_bound_label(pages: Pages, name: str) -> None:
    page = page_of(ALL_PAGES[name](pages))
    label_targets = {label.attrs.get("for") for label in page.all("label")}
    controls = [
        element
        for element in page.elements
        if element.tag in {"select", "textarea"}
        or (element.tag == "input" and element.attrs.get("type") != "hidden")
    ]
    for control in controls:
        assert control.attrs.get("id") in label_targets, control.attrs
    for target in label_targets:
        assert target is not None
        page.by_id(target)


@pytest.mark.parametrize("name", sorted(ALL_PAGES))
def test_every_post_form_carries_the_csrf_token(pages: Pages, name: str) -> None:
    page = page_of(ALL_PAGES[name](pages))
    for form in page.forms:
        assert form.attrs["method"] == "post"
        if form.attrs["action"] == "/dev/sign-in":
            continue  # no one is signed in yet, so there is no session to protect
        (token,) = fields(form)["csrf_token"]
        assert token.attrs == {"type": "hidden", "name": "csrf_token", "value": CSRF}


@pytest.mark.parametrize("name", sorted(ALL_PAGES))
def test_the_one_stylesheet_is_local(pages: Pages, name: str) -> None:
    body = html_of(ALL_PAGES[name](pages))
    page = Page(body)
    assert [link.attrs["href"] for link in page.all("link")] == ["/static/app.css"]
    assert "<script" not in body
    assert not re.search(r"""(?:href|src)="(?:https?:)?//""", body)


def test_the_stylesheet_ships_with_the_package() -> None:
    css = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
    assert ".danger" in css
    assert ".primary" in css
    assert ":focus-visible" in css
    assert "@import" not in css
    assert "url(" not in css


# ----------------------------------------------------------------------------- layout


def test_the_layout_shows_the_product_the_viewer_and_sign_out(pages: Pages) -> None:
    page = page_of(pages.xero(xero_view()))
    text = page.text()
    assert "Business Banking" in text
    assert "Mei Chan" in text
    assert "Lotus Trading Ltd" in text
    assert "Accounting → Xero" in text
    assert page.one("a", "Xero").attrs["href"] == f"/entities/{ENTITY}/xero"
    sign_out = page.one("button", "Sign out")
    assert sign_out.form is not None
    assert sign_out.form.attrs["action"] == "/sign-out"
    assert page.one_tag("footer").text.strip()


def test_the_entity_id_stands_in_for_a_missing_entity_name(pages: Pages) -> None:
    viewer = replace(VIEWER, entity_name=None)
    assert ENTITY in page_of(pages.xero(xero_view(viewer=viewer))).text()


def test_signed_out_pages_have_no_sign_out(pages: Pages) -> None:
    page = page_of(pages.sign_in_required("Your session ended.", dev_sign_in=False))
    assert page.named("button", "Sign out") == []
    assert page.all("nav") == []


# ----------------------------------------------------------------------------- Xero, not connected


def test_not_connected_offers_the_open_accounts_and_sync(pages: Pages) -> None:
    page = page_of(pages.xero(xero_view()))
    assert page.headings()[0] == (1, "Xero")
    assert (
        "Send your account transactions to Xero automatically, every 3 hours and whenever you ask."
        in page.text()
    )
    sync = page.one("button", "Sync")
    assert "primary" in sync.attrs["class"].split()
    assert sync.form is not None
    assert sync.form.attrs["action"] == f"/entities/{ENTITY}/xero/connect"
    boxes = fields(sync.form)["account_id"]
    assert [box.attrs["value"] for box in boxes] == ["acc-hkd", "acc-usd"]  # not the closed one
    for box in boxes:
        assert box.attrs["type"] == "checkbox"
        assert "checked" in box.attrs
    hkd_label = page.one("label", "HKD Current · 012-345678-001")
    assert page.by_id(hkd_label.attrs["for"]).attrs["value"] == "acc-hkd"
    assert page.named("button", "Sync now") == []
    assert page.named("a", "Manage Connection") == []


def test_the_start_date_is_bounded_to_one_year_back(pages: Pages) -> None:
    page = page_of(pages.xero(xero_view()))
    label = page.one("label", "Sync transactions from")
    start = page.by_id(label.attrs["for"])
    assert start.attrs["name"] == "start_date"
    assert start.attrs["type"] == "date"
    assert start.attrs["min"] == "2025-11-24"
    assert start.attrs["max"] == "2026-11-24"
    assert start.attrs["value"] == "2026-11-24"
    help_text = page.by_id(start.attrs["aria-describedby"])
    assert words(help_text.text) == "At most one year back."


def test_no_open_accounts_says_so_and_offers_no_button(pages: Pages) -> None:
    page = page_of(pages.xero(xero_view(accounts=(OLD,))))
    assert "no open accounts" in page.text()
    assert "appear here once they are opened" in page.text()
    assert page.all("button") == [page.one("button", "Sign out")]
    assert page.all("input") == [page.one_tag("input")]  # the sign-out CSRF field only


def test_a_form_problem_is_an_alert_and_a_notice_is_a_status(pages: Pages) -> None:
    view = xero_view(problem="Choose at least one account.", notice="Sync requested.")
    page = page_of(pages.xero(view, status=400))
    alerts = [words(e.text) for e in page.elements if e.attrs.get("role") == "alert"]
    notices = [words(e.text) for e in page.elements if e.attrs.get("role") == "status"]
    assert alerts == ["Choose at least one account."]
    assert notices == ["Sync requested."]
    assert pages.xero(view, status=400).status_code == 400


# ----------------------------------------------------------------------------- Xero, connected


def test_connected_shows_the_organisation_status_and_accounts(pages: Pages) -> None:
    page = page_of(pages.xero(xero_view(connection=connection())))
    text = page.text()
    assert "Connected to Lotus Trading (Xero)" in text
    assert page.named("strong", "Lotus Trading (Xero)")
    assert "Status: Active" in text
    headers = [words(th.text) for th in page.all("th") if th.attrs["scope"] == "col"]
    assert headers == [
        "Account",
        "In Xero",
        "Status",
        "Last synced",
        "Latest transaction date in Xero",
    ]
    rows = [words(tr.text) for tr in page.all("tr")[1:]]
    assert rows[0] == (
        "HKD Current · 012-345678-001 HKD Bank feed → HKD Current (Xero) Linked "
        "24 Nov 2026, 14:05 HKT 23 Nov 2026"
    )
    assert rows[1] == (
        "USD Savings · 012-345678-002 USD Not in Xero Failed Problem: This Xero organisation "
        "can't hold USD. Turn on multi-currency in Xero. Not yet None yet"
    )
    assert "Last sync: 24 Nov 2026, 14:05 HKT — 3 transactions sent" in text
    assert page.named("button", "Sync") == []


def test_sync_now_and_manage_connection(pages: Pages) -> None:
    page = page_of(pages.xero(xero_view(connection=connection())))
    sync_now = page.one("button", "Sync now")
    assert sync_now.form is not None
    assert sync_now.form.attrs["action"] == f"/entities/{ENTITY}/xero/sync"
    assert sync_now.form.attrs["method"] == "post"
    manage = page.one("a", "Manage Connection")
    assert manage.attrs["href"] == f"/entities/{ENTITY}/xero/manage"


def test_a_connection_that_needs_the_user_offers_reconnect(pages: Pages) -> None:
    view = xero_view(
        connection=connection(
            status="needs_user",
            status_reason="Xero no longer lets us in: the app was removed in Xero.",
            sync_start_date=date(2025, 1, 1),  # earlier than a reconnect may go back
        )
    )
    page = page_of(pages.xero(view))
    text = page.text()
    assert "Status: Needs your attention" in text
    assert "the app was removed in Xero." in text
    assert "Reconnect to Xero to fix this." in text
    reconnect = page.one("button", "Reconnect")
    assert reconnect.form is not None
    assert reconnect.form.attrs["action"] == f"/entities/{ENTITY}/xero/connect"
    (start,) = fields(reconnect.form)["start_date"]
    assert start.attrs["value"] == "2025-11-24"  # the chosen start, clamped into bounds
    assert len(fields(reconnect.form)["account_id"]) == 2
    # A sync cannot run until the user reconnects, so it is not offered.
    assert page.named("button", "Sync now") == []
    page.one("a", "Manage Connection")


def test_reconnect_keeps_a_start_date_within_bounds(pages: Pages) -> None:
    view = xero_view(connection=connection(status="needs_user", sync_start_date=date(2026, 3, 1)))
    page = page_of(pages.xero(view))
    assert page.by_id("start_date").attrs["value"] == "2026-03-01"


# ----------------------------------------------------------------------------- manage


def test_manage_shows_the_mapping_and_a_red_disconnect(pages: Pages) -> None:
    page = page_of(pages.manage(xero_view(connection=connection())))
    assert page.headings()[0] == (1, "Manage Connection")
    disconnect = page.one("a", "Disconnect Xero")
    assert disconnect.attrs["href"] == f"/entities/{ENTITY}/xero/disconnect"
    assert {"button", "danger"} <= set(disconnect.attrs["class"].split())
    # Top right of the page header: in the header row, right after the heading.
    (header,) = [div for div in page.all("div") if div.attrs.get("class") == "page-header"]
    assert "Manage Connection" in header.text
    assert "Disconnect Xero" in header.text
    text = page.text()
    assert "Organisation Lotus Trading (Xero)" in text
    assert "Sends transactions as Bank feed" in text
    assert "Sync transactions from 1 Oct 2026" in text
    assert "Connected since 1 Oct 2026, 09:30 HKT" in text
    assert "Bank feed → HKD Current (Xero) Linked" in text
    assert "Not in Xero Failed Problem: This Xero organisation can't hold USD." in text
    assert page.one("a", "Back to Xero").attrs["href"] == f"/entities/{ENTITY}/xero"


def test_manage_names_the_accounting_sink(pages: Pages) -> None:
    page = page_of(pages.manage(xero_view(connection=connection(sink="accounting"))))
    assert "Sends transactions as Bank transactions" in page.text()


def test_manage_needs_a_connection(pages: Pages) -> None:
    with pytest.raises(ValueError, match="connection"):
        pages.manage(xero_view())


# ----------------------------------------------------------------------------- disconnect


def test_confirm_disconnect_explains_and_asks(pages: Pages) -> None:
    page = page_of(pages.confirm_disconnect(xero_view(connection=connection())))
    assert page.headings()[0] == (1, "Disconnect Xero?")
    text = page.text()
    assert "Xero will stop receiving transactions for Lotus Trading (Xero)." in text
    assert "Everything already in Xero stays there." in text
    assert "If you reconnect to the same organisation" in text
    yes = page.one("button", "YES, DISCONNECT")
    assert "danger" in yes.attrs["class"].split()
    assert yes.form is not None
    assert yes.form.attrs["action"] == f"/entities/{ENTITY}/xero/disconnect"
    assert [f.attrs["value"] for f in fields(yes.form)["confirm"]] == ["yes"]
    assert fields(yes.form)["confirm"][0].attrs["type"] == "hidden"
    assert page.one("a", "Cancel").attrs["href"] == f"/entities/{ENTITY}/xero/manage"


def test_disconnected_offers_to_connect_again(pages: Pages) -> None:
    page = page_of(pages.disconnected(VIEWER, "Lotus Trading (Xero)"))
    assert page.headings()[0] == (1, "Xero disconnected")
    assert "Lotus Trading (Xero) no longer receives" in page.text()
    assert page.one("a", "Connect again").attrs["href"] == f"/entities/{ENTITY}/xero"


# ----------------------------------------------------------------------------- other pages


def test_refusal_says_what_happened_and_what_to_do(pages: Pages) -> None:
    view = RefusalView(
        viewer=VIEWER,
        title="This Xero organisation can't be connected",
        message="Lotus Trading is on Xero's Starter edition.",
        advice="Upgrade the organisation in Xero, then connect again.",
        back_url="/entities/ent-7/xero",
    )
    response = pages.refusal(view, status=409)
    page = page_of(response)
    assert response.status_code == 409
    assert page.headings()[0] == (1, "This Xero organisation can't be connected")
    assert "Lotus Trading is on Xero's Starter edition." in page.text()
    assert "Upgrade the organisation in Xero, then connect again." in page.text()
    assert page.one("a", "Go back").attrs["href"] == "/entities/ent-7/xero"


def test_a_refusal_without_a_back_url_leads_back_to_the_viewers_page(pages: Pages) -> None:
    view = RefusalView(VIEWER, "Refused", "No.", "Try again.", back_url=None)
    page = page_of(pages.refusal(view, status=400))
    assert page.one("a", "Go back").attrs["href"] == f"/entities/{ENTITY}/xero"
    signed_out = page_of(pages.refusal(replace(view, viewer=None), status=400))
    assert signed_out.named("a", "Go back") == []


def test_sign_in_required(pages: Pages) -> None:
    response = pages.sign_in_required("Your session ended.", dev_sign_in=True)
    page = page_of(response)
    assert response.status_code == 401
    assert page.headings()[0] == (1, "Please sign in")
    assert "Your session ended." in page.text()
    assert "Open Xero sync from the bank's app." in page.text()
    assert page.one("a", "Sign in as a demo entity").attrs["href"] == "/dev/sign-in"
    production = page_of(pages.sign_in_required("Your session ended.", dev_sign_in=False))
    assert production.named("a", "Sign in as a demo entity") == []
    assert pages.sign_in_required("x", dev_sign_in=False, status=403).status_code == 403


def test_dev_sign_in_offers_one_form_per_entity(pages: Pages) -> None:
    page = page_of(
        pages.dev_sign_in(
            [
                DevEntity("ent-7", "Lotus Trading Ltd", "HKD · USD"),
                DevEntity("ent-8", "Kite Ltd", "CNY"),
            ]
        )
    )
    assert page.headings()[0] == (1, "Demo sign-in")
    assert "only in development" in page.text()
    assert "HKD · USD" in page.text()
    for entity_id, name in (("ent-7", "Lotus Trading Ltd"), ("ent-8", "Kite Ltd")):
        button = page.one("button", f"Sign in as {name}")
        assert button.form is not None
        assert button.form.attrs["action"] == "/dev/sign-in"
        (hidden,) = fields(button.form)["entity_id"]
        assert hidden.attrs == {"type": "hidden", "name": "entity_id", "value": entity_id}


def test_dev_sign_in_with_no_entities(pages: Pages) -> None:
    page = page_of(pages.dev_sign_in([]))
    assert "no entities yet" in page.text()
    assert page.forms == []


def test_error_page(pages: Pages) -> None:
    response = pages.error("Page not found", "There is nothing at this address.", 404)
    page = page_of(response)
    assert response.status_code == 404
    assert page.headings()[0] == (1, "Page not found")
    assert "There is nothing at this address." in page.text()
    assert page.one("a", "Go to the start page").attrs["href"] == "/"
    signed_in = page_of(pages.error("Oops", "Try again.", 500, viewer=VIEWER))
    assert signed_in.one("a", "Go to the start page").attrs["href"] == f"/entities/{ENTITY}/xero"


# ----------------------------------------------------------------------------- escaping


def test_names_from_outside_are_escaped(pages: Pages) -> None:
    hostile_account = BankAccountRow('acc-"x', "HKD", HOSTILE, "1", closed=False)
    hostile_viewer = Viewer(HOSTILE, ENTITY, HOSTILE, csrf_token='"><b>')
    bodies = [
        html_of(pages.xero(xero_view(viewer=hostile_viewer, accounts=(hostile_account,)))),
        html_of(
            pages.xero(
                xero_view(
                    connection=connection(
                        org_name=HOSTILE,
                        status="needs_user",
                        status_reason=HOSTILE,
                        last_sync_message=HOSTILE,
                        accounts=(linked(name=HOSTILE, xero_target=HOSTILE, problem=HOSTILE),),
                    ),
                    notice=HOSTILE,
                    problem=HOSTILE,
                )
            )
        ),
        html_of(pages.manage(xero_view(connection=connection(org_name=HOSTILE)))),
        html_of(pages.confirm_disconnect(xero_view(connection=connection(org_name=HOSTILE)))),
        html_of(pages.disconnected(VIEWER, HOSTILE)),
        html_of(pages.refusal(RefusalView(None, HOSTILE, HOSTILE, HOSTILE, None), 400)),
        html_of(pages.sign_in_required(HOSTILE, dev_sign_in=False)),
        html_of(pages.dev_sign_in([DevEntity('"x', HOSTILE, HOSTILE)])),
        html_of(pages.error(HOSTILE, HOSTILE, 500)),
    ]
    for body in bodies:
        assert "<script>" not in body
        assert "&lt;script&gt;" in body
    assert 'value="&#34;&gt;&lt;b&gt;"' in bodies[0]
    assert 'value="acc-&#34;x"' in bodies[0]
    page = Page(bodies[0])
    assert page.by_id("account-1").attrs["value"] == 'acc-"x'


def test_unknown_status_words_fall_back_to_readable_text(pages: Pages) -> None:
    view = xero_view(connection=connection(accounts=(linked(link_status="paused_by_bank"),)))
    assert "Paused by bank" in page_of(pages.xero(view)).text()
