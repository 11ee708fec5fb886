"""The internal token API and the tokens behind it, on a real broker and a real database:
one refresh at a time, `invalid_grant`, Xero's grace period, encryption at rest, the
service credential, and tokens kept out of logs and events."""

import asyncio
import hashlib
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.connector.adapters.crypto import Keyring, TokenCipher, TokenDecryptionFailed
from services.connector.domain import rules
from services.connector.service_layer.onboarding import code_challenge
from services.connector.service_layer.tokens import Tokens, unseal
from shared.contracts.topics import XERO_CONNECTIONS
from shared.contracts.xero import ConnectionDisconnected, ConnectionEstablished
from shared.logging import configure_logging
from shared.settings import CommonSettings, Environment
from tests.conftest import Env
from tests.helpers import eventually, read_topic, scrape
from tests.integration.connector_harness import (
    SERVICE_TOKEN,
    ConnectorHarness,
    running_connector,
)
from tests.sandbox.contract import ContractCheck, specs_if_present
from xero_sandbox import identity
from xero_sandbox.state import Organisation, Sandbox

_SPECS = specs_if_present()
REFRESHES = "xerosync_token_refreshes_total"


class CountingContract(ContractCheck):
    """The contract check, also counting the refresh grants the connector sends to Xero."""

    def __init__(self) -> None:
        super().__init__(_SPECS)
        self.refresh_grants = 0

    async def __call__(self, response: httpx.Response) -> None:
        request = response.request
        form = parse_qs(request.content.decode()) if request.method == "POST" else {}
        if request.url.path == "/connect/token" and form.get("grant_type") == ["refresh_token"]:
            self.refresh_grants += 1
        await super().__call__(response)


@pytest.fixture
async def harness(env: Env) -> AsyncIterator[ConnectorHarness]:
    async with running_connector(env, Sandbox(), CountingContract()) as running:
        yield running


# ----------------------------------------------------------------------------- helpers


async def connector_sql(env: Env, statement: str, **params: Any) -> list[Any]:
    """Run one statement in the connector's database (as an operator would)."""
    engine = create_async_engine(env.database_url("connector"))
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement), params)
            return list(result) if result.returns_rows else []
    finally:
        await engine.dispose()


async def make_due(env: Env, connection_id: uuid.UUID) -> None:
    await connector_sql(
        env,
        "UPDATE xero_tokens SET access_expires_at = now() - interval '1 minute' "
        "WHERE connection_id = :id",
        id=connection_id,
    )


def cipher_of(harness: ConnectorHarness) -> TokenCipher:
    return TokenCipher(Keyring.parse(harness.settings.token_keys.get_secret_value()))


async def stored_tokens(harness: ConnectorHarness, connection_id: uuid.UUID) -> Tokens:
    [(sealed,)] = await connector_sql(
        harness.env, "SELECT sealed FROM xero_tokens WHERE connection_id = :id", id=connection_id
    )
    return unseal(cipher_of(harness), connection_id, bytes(sealed))


async def refreshes(harness: ConnectorHarness, result: str) -> float:
    samples = scrape((await harness.http.get("/metrics")).text)
    return samples.get((REFRESHES, (("result", result),)), 0.0)


async def connect(
    harness: ConnectorHarness, entity_id: str = "ent-1"
) -> tuple[Organisation, uuid.UUID]:
    org = harness.organisation(currencies=["USD"])
    accounts = await harness.open_accounts(
        entity_id, (f"{entity_id}-hkd", "HKD"), (f"{entity_id}-usd", "USD")
    )
    async with harness.user(entity_id) as user:
        await eventually(
            user.status, until=lambda s: len(s["accounts"]) == 2, what="accounts directory"
        )
        back = await user.connect(org, accounts=accounts)
        assert back.status_code == 303, back.text
        status = await user.status()
    assert status["connection"]["status"] == "active"
    return org, uuid.UUID(status["connection"]["connection_id"])


async def works_at_xero(harness: ConnectorHarness, access_token: str) -> bool:
    answer = await harness.xero.get(
        "/connections", headers={"Authorization": f"Bearer {access_token}"}
    )
    return answer.status_code == 200


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Everything logged (structlog and the standard library), as production writes it."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    configure_logging(CommonSettings(environment=Environment.PRODUCTION), service="connector")
    output = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(output)
    root.setLevel(logging.DEBUG)
    try:
        yield output
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


# ----------------------------------------------------------------------------- refresh


async def test_concurrent_callers_share_one_refresh(harness: ConnectorHarness, env: Env) -> None:
    _, connection_id = await connect(harness)
    contract = harness.contract
    assert isinstance(contract, CountingContract)
    before = await stored_tokens(harness, connection_id)
    assert contract.refresh_grants == 0
    await make_due(env, connection_id)

    answers = await asyncio.gather(*(harness.token(str(connection_id)) for _ in range(20)))

    assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers]
    tokens = {a.json()["access_token"] for a in answers}
    assert len(tokens) == 1, "every caller got the same, new access token"
    [access_token] = tokens
    assert access_token != before.access_token.get_secret_value()
    assert contract.refresh_grants == 1, "exactly one refresh_token grant reached Xero"
    spent = [t for t in harness.sandbox.refresh_tokens.values() if t.used_at is not None]
    assert len(spent) == 1
    assert await works_at_xero(harness, access_token)
    after = await stored_tokens(harness, connection_id)
    assert after.access_token.get_secret_value() == access_token
    [grant] = harness.sandbox.grants.values()
    assert after.refresh_token.get_secret_value() == grant.current_refresh_token
    assert await refreshes(harness, "success") == 1
    assert all(a.headers["cache-control"] == "no-store" for a in answers)
    # A token that is still fresh is handed out without asking Xero again.
    again = await harness.token(str(connection_id))
    assert again.json()["access_token"] == access_token
    assert contract.refresh_grants == 1


async def test_invalid_grant_puts_the_connection_in_the_users_hands(
    harness: ConnectorHarness, env: Env
) -> None:
    org, connection_id = await connect(harness)
    identity.remove_app(harness.sandbox, org.tenant_id, harness.settings.xero_client_id)
    await make_due(env, connection_id)

    answer = await harness.token(str(connection_id))

    assert answer.status_code == 409, answer.text
    assert answer.json()["status"] == "needs_user"
    assert await refreshes(harness, "invalid_grant") == 1
    assert await refreshes(harness, "success") == 0
    async with harness.user("ent-1") as user:
        status = await user.status()
        page = unescape((await user.page()).text)
    assert status["connection"]["status"] == "needs_user"
    assert status["connection"]["status_reason"] == rules.REAUTH_REQUIRED
    assert rules.REAUTH_REQUIRED in page
    assert '<button type="submit" class="primary">Reconnect</button>' in page
    assert "Sync now" not in page
    records = await read_topic(env.kafka, env.topics.name(XERO_CONNECTIONS), count=2)
    established, disconnected = (
        XERO_CONNECTIONS.adapter.validate_json(r.value or b"") for r in records
    )
    assert isinstance(established, ConnectionEstablished)
    assert isinstance(disconnected, ConnectionDisconnected)
    assert disconnected.reason == "reauth_required"
    assert disconnected.status == "needs_user"
    assert disconnected.connection_id == connection_id
    assert disconnected.version == established.version + 1
    # Asked again, the connector does not retry a grant Xero refused.
    contract = harness.contract
    assert isinstance(contract, CountingContract)
    grants = contract.refresh_grants
    again = await harness.token(str(connection_id))
    assert again.status_code == 409
    assert contract.refresh_grants == grants
    assert (
        await connector_sql(
            env, "SELECT 1 FROM xero_tokens WHERE connection_id = :id", id=connection_id
        )
        == []
    ), "useless tokens are dropped"


async def test_a_refresh_whose_answer_was_lost_is_recovered_within_the_grace_period(
    harness: ConnectorHarness, env: Env
) -> None:
    _, connection_id = await connect(harness)
    ours = await stored_tokens(harness, connection_id)
    # Xero rotated the token, but the answer never reached our database.
    lost = await harness.xero.post(
        "/connect/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": ours.refresh_token.get_secret_value(),
        },
        auth=(
            harness.settings.xero_client_id,
            harness.settings.xero_client_secret.get_secret_value(),
        ),
    )
    assert lost.status_code == 200, lost.text
    newest = lost.json()["refresh_token"]
    assert newest != ours.refresh_token.get_secret_value()
    await make_due(env, connection_id)

    answer = await harness.token(str(connection_id))

    assert answer.status_code == 200, answer.text
    assert await works_at_xero(harness, answer.json()["access_token"])
    recovered = await stored_tokens(harness, connection_id)
    assert recovered.refresh_token.get_secret_value() == newest, "the family's newest token"
    # The family goes on: the next refresh presents the newest token, not a spent one.
    await make_due(env, connection_id)
    later = await harness.token(str(connection_id))
    assert later.status_code == 200, later.text
    [grant] = harness.sandbox.grants.values()
    final = await stored_tokens(harness, connection_id)
    assert final.refresh_token.get_secret_value() == grant.current_refresh_token != newest
    assert await refreshes(harness, "success") == 2
    assert await refreshes(harness, "invalid_grant") == 0


# ----------------------------------------------------------------------------- at rest


async def test_tokens_and_verifiers_are_encrypted_at_rest(
    harness: ConnectorHarness, env: Env
) -> None:
    _, connection_id = await connect(harness)
    tokens = await stored_tokens(harness, connection_id)
    [(sealed,)] = await connector_sql(
        env, "SELECT sealed FROM xero_tokens WHERE connection_id = :id", id=connection_id
    )
    sealed = bytes(sealed)
    access = tokens.access_token.get_secret_value()
    refresh = tokens.refresh_token.get_secret_value()
    assert access in harness.sandbox.access_tokens, "the stored token is the one Xero issued"
    assert refresh in harness.sandbox.refresh_tokens
    for secret in (access, refresh, access.split(".")[1]):
        assert secret.encode() not in sealed
    # Bound to its row: the same blob does not open as another connection's tokens.
    with pytest.raises(TokenDecryptionFailed):
        unseal(cipher_of(harness), uuid.uuid4(), sealed)

    # An authorization in flight: neither the state nor the PKCE verifier in clear.
    await harness.open_accounts("ent-2", ("ent-2-hkd", "HKD"))
    async with harness.user("ent-2") as user:
        await eventually(user.status, until=lambda s: len(s["accounts"]) == 1, what="accounts")
        started = await user.start_connect(accounts=["ent-2-hkd"])
    assert started.status_code == 303, started.text
    query = parse_qs(urlsplit(started.headers["location"]).query)
    [state], [challenge] = query["state"], query["code_challenge"]
    rows = await connector_sql(
        env,
        "SELECT state_hash, sealed_verifier, row_to_json(s)::text FROM oauth_states s "
        "WHERE entity_id = 'ent-2'",
    )
    [(state_hash, sealed_verifier, row_text)] = rows
    assert bytes(state_hash) == hashlib.sha256(state.encode()).digest()
    verifier = cipher_of(harness).decrypt(bytes(sealed_verifier), associated_data=bytes(state_hash))
    assert code_challenge(verifier.decode()) == challenge, "it is the flow's real verifier"
    assert verifier not in bytes(sealed_verifier)
    assert verifier.decode() not in row_text
    assert state not in row_text


# ----------------------------------------------------------------------------- the API


async def test_the_token_api_wants_the_service_credential(harness: ConnectorHarness) -> None:
    _, connection_id = await connect(harness)
    url = f"/internal/v1/connections/{connection_id}/access-token"
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-wrong-token-wrong-token-0123"},
        {"Authorization": f"Basic {SERVICE_TOKEN}"},
        {"Authorization": f"Bearer {SERVICE_TOKEN}x"},
        {"Authorization": "Bearer "},
    ):
        refused = await harness.http.post(url, headers=headers)
        assert refused.status_code == 401, (headers, refused.text)
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "access_token" not in refused.json()
    # A user's session is not a service credential either.
    async with harness.user("ent-1") as user:
        as_user = await user.http.post(url)
    assert as_user.status_code == 401
    unknown = await harness.token(str(uuid.uuid4()))
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["status"] == "unknown"
    malformed = await harness.token("not-a-uuid")
    assert malformed.status_code == 422
    assert (await harness.token(str(connection_id))).status_code == 200


async def test_tokens_never_reach_logs_or_events(harness: ConnectorHarness, env: Env) -> None:
    issued: set[str] = set()
    with captured_logs() as output:
        org, connection_id = await connect(harness)
        issued |= set(harness.sandbox.access_tokens)
        await make_due(env, connection_id)
        handed = await harness.token(str(connection_id))
        assert handed.status_code == 200
        issued |= set(harness.sandbox.access_tokens)
        async with harness.user("ent-1") as user:
            done = await user.press("disconnect", confirm="yes")
        assert done.status_code == 200, done.text
        # A second connection that ends in invalid_grant: its refusal is logged too.
        org_2, connection_2 = await connect(harness, "ent-2")
        issued |= set(harness.sandbox.access_tokens)
        identity.remove_app(harness.sandbox, org_2.tenant_id, harness.settings.xero_client_id)
        await make_due(env, connection_2)
        assert (await harness.token(str(connection_2))).status_code == 409
        records = await read_topic(env.kafka, env.topics.name(XERO_CONNECTIONS), count=4)
    issued |= set(harness.sandbox.refresh_tokens)
    issued |= {handed.json()["access_token"]}
    assert len(issued) >= 6
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    ours = [line for line in lines if str(line.get("logger", "")).startswith("services.")]
    events = {line["event"] for line in ours}
    assert {"connected", "disconnected by the user"} <= events, events
    assert "refresh refused by Xero; the connection needs the user" in events
    text_out = output.getvalue()
    published = b"\n".join(r.value or b"" for r in records)
    for secret in issued:
        assert secret not in text_out, "a token reached the logs"
        assert secret.encode() not in published, "a token reached an event"
    assert str(org.tenant_id) in published.decode()
