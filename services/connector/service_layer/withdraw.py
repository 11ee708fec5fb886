"""Handing back to Xero what we will not use, without ending what others still use.

Xero's revocation ends every connection the Xero user has to our app, and one Xero user
may have connected several entities. So a refresh token is revoked only when none of that
user's connections feeds a live connection here; otherwise only our own connections that
no live connection uses are deleted, and the tokens are simply dropped.
"""

import uuid
from collections.abc import Sequence

from pydantic import SecretStr

from services.connector.adapters.repository import Repository
from services.connector.adapters.xero import XeroClient
from shared.logging import get_logger
from shared.xero_http import XeroError

log = get_logger(__name__)


async def withdraw_unused(
    xero: XeroClient,
    repository: Repository,
    *,
    access_token: SecretStr,
    refresh_token: SecretStr,
    own: Sequence[uuid.UUID],
    excluding: uuid.UUID | None = None,
    revoke: bool = True,
) -> None:
    """Withdraw the Xero connections `own`, and the grant when `revoke` and nothing else
    here relies on it. `excluding` is the connection being ended (it no longer counts as
    live). Raises XeroError when Xero refuses or cannot be reached."""
    in_use = await repository.live_xero_connection_ids(excluding=excluding)
    try:
        listed = [listing.id for listing in await xero.connections(access_token)]
    except XeroError as error:
        # Without the listing, nothing proves the grant is unshared: never revoke then.
        log.warning("could not list Xero connections to withdraw", error=type(error).__name__)
        listed, revoke = list(own), False
    if revoke and not any(connection_id in in_use for connection_id in listed):
        await xero.revoke(refresh_token)
        return
    for connection_id in own:
        if connection_id not in in_use:
            await xero.delete_connection(access_token, connection_id)
