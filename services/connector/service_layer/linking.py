"""Linking one bank account into the organisation, in the connection's sink mode.

Bank feeds: a feed connection whose account token is our account id; when the feed exists
already (a reconnect), it is found and reused. Accounting: the organisation's BANK account
of that currency and number, found or else created. A currency the organisation cannot hold
fails that account with words the user can act on; the other accounts still link.
"""

import uuid
from dataclasses import dataclass

from pydantic import SecretStr

from services.connector.adapters.orm import BankAccount, ConnectionAccount
from services.connector.adapters.xero import Organisation, XeroAccount, XeroClient
from services.connector.domain import rules
from shared.contracts.xero import AccountMapping
from shared.logging import get_logger
from shared.xero_http import XeroValidation

log = get_logger(__name__)
ALREADY_CONNECTED = "feed-already-connected-in-current-organisation"
MULTI_CURRENCY = "invalid-organisation-multi-currency"


@dataclass(frozen=True)
class LinkResult:
    link: AccountMapping
    xero_account_name: str | None = None


class AccountLinker:
    def __init__(
        self,
        xero: XeroClient,
        access_token: SecretStr,
        tenant_id: uuid.UUID,
        organisation: Organisation,
    ) -> None:
        self._xero = xero
        self._token = access_token
        self._tenant = tenant_id
        self._org = organisation
        self._bank_accounts: list[XeroAccount] | None = None

    async def link(
        self, account: BankAccount, sink: str, previous: ConnectionAccount | None
    ) -> LinkResult:
        try:
            if sink == "bankfeeds":
                return await self._feed(account)
            return await self._bank_account(account, previous)
        except XeroValidation as error:
            problem = (
                rules.cannot_hold_currency(
                    self._org.name, account.currency, self._org.base_currency
                )
                if error.problem_type == MULTI_CURRENCY or self._cannot_hold(account, error)
                else rules.link_refused(account.currency, error.message)
            )
            log.info("account not linked", currency=account.currency, problem=error.problem_type)
            return LinkResult(_mapping(account, "failed", problem=problem))

    async def _feed(self, account: BankAccount) -> LinkResult:
        try:
            feed = await self._xero.create_feed_connection(
                self._token,
                self._tenant,
                account_token=account.account_id,
                currency=account.currency,
                name=account.name,
                number=account.account_number,
            )
        except XeroValidation as error:
            if error.problem_type != ALREADY_CONNECTED:
                raise
            feeds = await self._xero.feed_connections(self._token, self._tenant)
            found = next((f for f in feeds if f.account_token == account.account_id), None)
            if found is None:
                raise
            feed = found
        return LinkResult(
            _mapping(
                account,
                "linked",
                feed_connection_id=feed.id,
                xero_account_id=feed.account_id,
            ),
            xero_account_name=account.name,
        )

    async def _bank_account(
        self, account: BankAccount, previous: ConnectionAccount | None
    ) -> LinkResult:
        if self._bank_accounts is None:
            self._bank_accounts = await self._xero.bank_accounts(self._token, self._tenant)
        found = _find(self._bank_accounts, account, self._org.base_currency, previous)
        if found is None:
            found = await self._xero.create_bank_account(
                self._token,
                self._tenant,
                name=_unique_name(self._bank_accounts, account),
                number=account.account_number,
                currency=account.currency,
            )
            self._bank_accounts.append(found)
        return LinkResult(
            _mapping(account, "linked", xero_account_id=found.account_id),
            xero_account_name=found.name,
        )

    def _cannot_hold(self, account: BankAccount, error: XeroValidation) -> bool:
        text = error.message.lower()
        return account.currency != self._org.base_currency and "currenc" in text


def _find(
    accounts: list[XeroAccount],
    account: BankAccount,
    base_currency: str,
    previous: ConnectionAccount | None,
) -> XeroAccount | None:
    """The ACTIVE BANK account this bank account was linked to before, else one of the same
    currency and number."""
    active = [a for a in accounts if a.status == "ACTIVE"]
    if previous is not None and previous.xero_account_id is not None:
        for candidate in active:
            if candidate.account_id == previous.xero_account_id:
                return candidate
    for candidate in active:
        currency = candidate.currency or base_currency
        if currency == account.currency and candidate.bank_account_number == account.account_number:
            return candidate
    return None


def _unique_name(accounts: list[XeroAccount], account: BankAccount) -> str:
    """Xero account names are unique within an organisation."""
    taken = {a.name.casefold() for a in accounts}
    name = account.name[:150]
    if name.casefold() in taken:
        name = f"{account.name[:120]} ({account.account_number[-20:]})"
    return name


def _mapping(
    account: BankAccount,
    status: str,
    *,
    feed_connection_id: uuid.UUID | None = None,
    xero_account_id: uuid.UUID | None = None,
    problem: str | None = None,
) -> AccountMapping:
    return AccountMapping(
        account_id=account.account_id,
        currency=account.currency,
        status=status,  # type: ignore[arg-type]  # one of the four link states
        feed_connection_id=feed_connection_id,
        xero_account_id=xero_account_id,
        problem=problem,
    )
