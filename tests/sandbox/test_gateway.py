"""What stands before every API call: 401/403, rate limits, Idempotency-Key, injected faults.

A test-only route behind the gateway counts how often the work really ran.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import Request
from fastapi.responses import JSONResponse

from services.syncer.service_layer.pacing import AppBudget, Limits
from shared.errors import TransientError
from shared.xero_http import XeroHttp, XeroRateLimited
from tests.helpers import scrape
from tests.sandbox.conftest import Connect
from xero_sandbox import identity
from xero_sandbox.app import create_app
from xero_sandbox.gateway import DroppedResponse, call_context
from xero_sandbox.organisations import OrganisationIn, create_organisation, local_today
from xero_sandbox.state import Sandbox

WORK = "/api.xro/2.0/TestWork"


@dataclass
class Work:
    runs: int = 0
    hold: asyncio.Event | None = None
    entered: int = 0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)
    expect: int = 0
    bodies: list[bytes] = field(default_factory=list)


@pytest.fixture
def work() -> Work:
    return Work()


@pytest.fixture
async def client(sandbox: Sandbox, work: Work) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(sandbox)

    async def do_work(request: Request) -> JSONResponse:
        context = call_context(request)
        work.entered += 1
        if work.entered == work.expect:
            work.all_in.set()
        if work.hold is not None:
            await work.hold.wait()
        work.runs += 1
        work.bodies.append(await request.body())
        return JSONResponse({"run": work.runs, "tenant": context.organisation.tenant_id})

    app.router.add_api_route(WORK.lower(), do_work, methods=["GET", "PUT", "POST"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
        yield client


async def test_missing_or_unknown_token_is_401_in_xeros_shape(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        answer = await client.get(WORK, headers=headers)
        assert answer.status_code == 401
        body = answer.json()
        assert (body["Title"], body["Status"], body["Detail"]) == (
            "Unauthorized",
            401,
            "AuthenticationUnsuccessful",
        )
        assert "X-MinLimit-Remaining" not in answer.headers


async def test_tenant_header_is_required(client: httpx.AsyncClient, connect: Connect) -> None:
    tenant = await connect()
    headers = {k: v for k, v in tenant.headers.items() if k != "Xero-Tenant-Id"}
    answer = await client.get(WORK, headers=headers)
    assert answer.status_code == 403
    assert (await client.get(WORK, headers=tenant.headers)).status_code == 200


async def test_scopes_are_checked(client: httpx.AsyncClient, connect: Connect) -> None:
    tenant = await connect(scope="offline_access accounting.settings.read")
    assert (await client.get("/api.xro/2.0/TestWork", headers=tenant.headers)).status_code == 200
    answer = await client.put(WORK, headers=tenant.headers, json={})
    assert answer.status_code == 403
    assert answer.json()["Detail"] == "AuthorizationUnsuccessful"
    feeds = await client.get("/bankfeeds.xro/1.0/FeedConnections", headers=tenant.headers)
    assert feeds.status_code == 403


async def test_sixty_calls_a_minute_per_organisation(
    client: httpx.AsyncClient, sandbox: Sandbox, connect: Connect
) -> None:
    tenant, other = await connect(name="Busy"), await connect(name="Quiet")
    remaining = []
    for _ in range(60):
        answer = await client.get(WORK, headers=tenant.headers)
        assert answer.status_code == 200
        remaining.append(int(answer.headers["X-MinLimit-Remaining"]))
    assert remaining == list(range(59, -1, -1))
    assert answer.headers["X-DayLimit-Remaining"] == "4940"
    assert answer.headers["X-AppMinLimit-Remaining"] == "9940"

    refused = await client.get(WORK, headers=tenant.headers)
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "run" not in refused.text
    # Another organisation has its own budget.
    assert (await client.get(WORK, headers=other.headers)).status_code == 200

    sandbox.clock.advance(60)
    assert (await client.get(WORK, headers=tenant.headers)).status_code == 200


async def test_day_and_app_limits(
    client: httpx.AsyncClient, sandbox: Sandbox, connect: Connect
) -> None:
    limits = await client.put("/admin/limits", json={"per_day": 3, "app_per_minute": 1000})
    assert limits.json()["per_day"] == 3
    tenant = await connect()
    for _ in range(3):
        assert (await client.get(WORK, headers=tenant.headers)).status_code == 200
    sandbox.clock.advance(120)  # the minute window is clear; the day is not
    refused = await client.get(WORK, headers=tenant.headers)
    assert (refused.status_code, refused.headers["X-Rate-Limit-Problem"]) == (429, "day")
    assert int(refused.headers["Retry-After"]) > 86_000

    await client.put("/admin/limits", json={"per_day": 5000, "app_per_minute": 2})
    # One app, two organisations: the app's budget is shared between them.
    first = await connect(name="A")
    second = create_organisation(sandbox, OrganisationIn(name="B"))
    user = sandbox.user("user@example.com")
    identity.consent(sandbox, first.app, user, [second.tenant_id], ("accounting.settings",))
    assert (await client.get(WORK, headers=first.headers)).status_code == 200
    to_second = {**first.headers, "Xero-Tenant-Id": second.tenant_id}
    assert (await client.get(WORK, headers=to_second)).status_code == 200
    app_refused = await client.get(WORK, headers=to_second)
    assert app_refused.headers["X-Rate-Limit-Problem"] == "appminute"
    assert app_refused.headers["X-AppMinLimit-Remaining"] == "0"


async def test_five_calls_in_flight_per_organisation(
    client: httpx.AsyncClient, connect: Connect, work: Work
) -> None:
    tenant = await connect()
    work.hold, work.expect = asyncio.Event(), 5
    held = [asyncio.create_task(client.get(WORK, headers=tenant.headers)) for _ in range(5)]
    await work.all_in.wait()
    sixth = await client.get(WORK, headers=tenant.headers)
    assert (sixth.status_code, sixth.headers["X-Rate-Limit-Problem"]) == (429, "concurrent")
    work.hold.set()
    assert [r.status_code for r in await asyncio.gather(*held)] == [200] * 5
    assert (await client.get(WORK, headers=tenant.headers)).status_code == 200


async def test_statements_have_their_own_per_app_limit(
    client: httpx.AsyncClient, connect: Connect
) -> None:
    await client.put("/admin/limits", json={"statements_per_minute": 2})
    tenant = await connect()
    for _ in range(2):
        answer = await client.post("/bankfeeds.xro/1.0/Statements", headers=tenant.headers, json={})
        assert answer.status_code != 429
    refused = await client.post("/bankfeeds.xro/1.0/Statements", headers=tenant.headers, json={})
    assert (refused.status_code, refused.headers["X-Rate-Limit-Problem"]) == (429, "statements")
    # Other calls are not statements.
    assert (await client.get(WORK, headers=tenant.headers)).status_code == 200


# ----------------------------------------------------------------------------- idempotency


async def test_same_key_same_request_is_answered_from_memory(
    client: httpx.AsyncClient, connect: Connect, work: Work
) -> None:
    tenant = await connect()
    headers = {**tenant.headers, "Idempotency-Key": "key-1"}
    first = await client.put(WORK, headers=headers, json={"a": 1})
    second = await client.put(WORK, headers=headers, json={"a": 1})
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json() == second.json() == {"run": 1, "tenant": tenant.tenant_id}
    assert work.runs == 1
    # The replay still counts against the limits and says so.
    assert (
        int(second.headers["X-MinLimit-Remaining"])
        == int(first.headers["X-MinLimit-Remaining"]) - 1
    )
    # Without a key, or with another key, the work runs again.
    assert (await client.put(WORK, headers=tenant.headers, json={"a": 1})).json()["run"] == 2
    other_key = {**tenant.headers, "Idempotency-Key": "key-2"}
    assert (await client.put(WORK, headers=other_key, json={"a": 1})).json()["run"] == 3


async def test_same_key_different_request_is_refused(
    client: httpx.AsyncClient, connect: Connect, work: Work
) -> None:
    tenant = await connect()
    headers = {**tenant.headers, "Idempotency-Key": "key-1"}
    await client.put(WORK, headers=headers, json={"a": 1})
    refused = await client.put(WORK, headers=headers, json={"a": 2})
    assert refused.status_code == 400
    assert refused.json()["Type"] == "ValidationException"
    assert "different request" in refused.json()["Message"]
    feeds = await client.post("/bankfeeds.xro/1.0/TestOther", headers=headers, json={"a": 1})
    assert feeds.status_code == 400  # another path is another request
    assert work.runs == 1


async def test_keys_are_scoped_to_the_organisation_and_bounded(
    client: httpx.AsyncClient, connect: Connect, work: Work
) -> None:
    one, two = await connect(name="One"), await connect(name="Two")
    for tenant in (one, two):
        answer = await client.put(WORK, headers={**tenant.headers, "Idempotency-Key": "k"}, json={})
        assert answer.json()["tenant"] == tenant.tenant_id
    assert work.runs == 2
    too_long = await client.put(
        WORK, headers={**one.headers, "Idempotency-Key": "k" * 129}, json={}
    )
    assert too_long.status_code == 400
    assert "128" in too_long.json()["Message"]
    assert work.runs == 2


async def test_a_repeat_during_the_first_waits_for_its_answer(
    client: httpx.AsyncClient, connect: Connect, work: Work
) -> None:
    tenant = await connect()
    headers = {**tenant.headers, "Idempotency-Key": "slow"}
    work.hold, work.expect = asyncio.Event(), 1
    first = asyncio.create_task(client.put(WORK, headers=headers, json={}))
    await work.all_in.wait()
    second = asyncio.create_task(client.put(WORK, headers=headers, json={}))
    await asyncio.sleep(0)
    work.hold.set()
    answers = await asyncio.gather(first, second)
    assert [a.json()["run"] for a in answers] == [1, 1]
    assert work.runs == 1


async def test_keys_expire_after_the_window(
    client: httpx.AsyncClient, sandbox: Sandbox, connect: Connect, work: Work
) -> None:
    await client.put("/admin/limits", json={"idempotency_window_seconds": 600})
    tenant = await connect()
    headers = {**tenant.headers, "Idempotency-Key": "k"}
    await client.put(WORK, headers=headers, json={})
    sandbox.clock.advance(599)
    await client.put(WORK, headers=headers, json={})
    assert work.runs == 1
    sandbox.clock.advance(2)
    await client.put(WORK, headers=headers, json={})
    assert work.runs == 2


# ----------------------------------------------------------------------------- faults


async def test_injected_errors_do_no_work_and_are_not_remembered(
    client: httpx.AsyncClient, connect: Connect, work: Work
) -> None:
    tenant = await connect()
    plan = {"rules": [{"kind": "error", "status": 503, "times": 1, "path": WORK}]}
    assert (await client.put("/admin/faults", json=plan)).status_code == 200
    headers = {**tenant.headers, "Idempotency-Key": "k"}
    failed = await client.put(WORK, headers=headers, json={})
    assert failed.status_code == 503
    assert work.runs == 0
    retried = await client.put(WORK, headers=headers, json={})
    assert retried.status_code == 200
    assert work.runs == 1
    assert (await client.get("/admin/faults")).json() == {"rules": [], "fired": {"error": 1}}


async def test_bank_feed_errors_are_problem_details(
    client: httpx.AsyncClient, connect: Connect
) -> None:
    tenant = await connect()
    await client.put("/admin/faults", json={"rules": [{"kind": "error", "status": 500}]})
    answer = await client.get("/bankfeeds.xro/1.0/FeedConnections", headers=tenant.headers)
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "internal-error"


async def test_dropped_answer_after_the_write_is_replayed_by_key(
    client: httpx.AsyncClient, sandbox: Sandbox, connect: Connect, work: Work
) -> None:
    tenant = await connect()
    plan = {"rules": [{"kind": "drop_after_write", "times": 1, "methods": ["PUT"]}]}
    await client.put("/admin/faults", json=plan)
    headers = {**tenant.headers, "Idempotency-Key": "k"}
    with pytest.raises(DroppedResponse):
        await client.put(WORK, headers=headers, json={})
    assert work.runs == 1  # the write happened; the client cannot know
    replay = await client.put(WORK, headers=headers, json={})
    assert replay.json()["run"] == 1
    assert work.runs == 1
    log = (await client.get(f"/admin/requests?tenant_id={tenant.tenant_id}")).json()
    assert [(r["fault"], r["replayed"]) for r in log] == [("drop_after_write", False), (None, True)]


async def test_a_one_off_fault_is_spent_only_by_the_call_it_strikes(
    client: httpx.AsyncClient, connect: Connect, work: Work
) -> None:
    """A one-off drop drawn for calls that a 503, a refused token or a 429 answered first
    stays armed until a call gets through and loses its answer."""
    tenant = await connect()
    plan = {
        "rules": [
            {"kind": "error", "status": 503, "times": 1, "methods": ["PUT"]},
            {"kind": "drop_after_write", "times": 1, "methods": ["PUT"]},
        ]
    }
    await client.put("/admin/faults", json=plan)
    headers = {**tenant.headers, "Idempotency-Key": "k"}
    assert (await client.put(WORK, headers=headers, json={})).status_code == 503
    unknown = {"Authorization": "Bearer not-a-token", "Idempotency-Key": "k"}
    assert (await client.put(WORK, headers=unknown, json={})).status_code == 401
    limited = {"kind": "rate_limit", "times": 1, "methods": ["PUT"]}
    await client.post("/admin/faults", json=limited)
    assert (await client.put(WORK, headers=headers, json={})).status_code == 429
    assert work.runs == 0
    faults = (await client.get("/admin/faults")).json()
    assert [(r["kind"], r["times"]) for r in faults["rules"]] == [("drop_after_write", 1)]
    with pytest.raises(DroppedResponse):
        await client.put(WORK, headers=headers, json={})
    assert work.runs == 1
    assert (await client.put(WORK, headers=headers, json={})).json()["run"] == 1
    faults = (await client.get("/admin/faults")).json()
    assert faults == {
        "rules": [],
        "fired": {"error": 1, "rate_limit": 1, "drop_after_write": 1},
    }


async def test_timeouts_never_answer_and_do_no_work(
    client: httpx.AsyncClient, connect: Connect, work: Work
) -> None:
    tenant = await connect()
    await client.put(
        "/admin/faults", json={"rules": [{"kind": "timeout", "timeout_s": 0.05, "times": 1}]}
    )
    with pytest.raises(DroppedResponse):
        await client.put(WORK, headers=tenant.headers, json={})
    assert work.runs == 0


async def test_injected_429s_look_like_the_limiters_do_no_work_and_are_not_remembered(
    client: httpx.AsyncClient, sandbox: Sandbox, connect: Connect, work: Work
) -> None:
    tenant = await connect()
    for _ in range(2):
        assert (await client.get(WORK, headers=tenant.headers)).status_code == 200
    rule = {
        "kind": "rate_limit",
        "times": 2,
        "path": WORK,
        "methods": ["PUT"],
        "retry_after_s": 7,
        "problem": "day",
    }
    assert (await client.put("/admin/faults", json={"rules": [rule]})).status_code == 200
    headers = {**tenant.headers, "Idempotency-Key": "k"}
    limited = [await client.put(WORK, headers=headers, json={}) for _ in range(2)]
    assert work.runs == 2  # the two GETs: the PUTs did nothing
    for answer in limited:
        assert answer.status_code == 429
        assert (answer.headers["Retry-After"], answer.headers["X-Rate-Limit-Problem"]) == (
            "7",
            "day",
        )
        # The caller's budget, which the refused calls did not use.
        assert answer.headers["X-MinLimit-Remaining"] == "58"
        assert answer.headers["X-DayLimit-Remaining"] == "4998"
        assert answer.headers["X-AppMinLimit-Remaining"] == "9998"
        body = answer.json()
        assert (body["Title"], body["Status"], body["Detail"]) == (
            "Too Many Requests",
            429,
            "Rate limit exceeded: day",
        )
    # Nothing was kept for the key: the retry does the work.
    retried = await client.put(WORK, headers=headers, json={})
    assert (retried.status_code, retried.json()["run"]) == (200, 3)
    assert retried.headers["X-MinLimit-Remaining"] == "57"
    log = (await client.get(f"/admin/requests?tenant_id={tenant.tenant_id}")).json()
    assert [(r["status"], r["fault"], r["retry_after"], r["replayed"]) for r in log[2:]] == [
        (429, "rate_limit", 7.0, False),
        (429, "rate_limit", 7.0, False),
        (200, None, None, False),
    ]
    assert (await client.get("/admin/faults")).json() == {"rules": [], "fired": {"rate_limit": 2}}

    # The limiter's own refusal, for comparison: the same shape and headers.
    await client.put("/admin/limits", json={"per_day": 3})
    real = await client.put(WORK, headers={**tenant.headers, "Idempotency-Key": "j"}, json={})
    assert real.status_code == 429
    assert real.json().keys() == limited[0].json().keys()
    assert real.json()["Detail"] == "Rate limit exceeded: day"
    assert real.headers["content-type"] == limited[0].headers["content-type"]
    assert set(real.headers) == set(limited[0].headers)

    samples = scrape((await client.get("/metrics")).text)
    faults = ("xero_sandbox_faults_injected_total", (("kind", "rate_limit"),))
    assert samples[faults] == 2
    statuses = ("api", "accounting"), ("method", "PUT"), ("status", "429")
    assert samples[("xero_sandbox_requests_total", statuses)] == 3


async def test_an_injected_429_strikes_only_calls_past_the_token_and_tenant_checks(
    client: httpx.AsyncClient, connect: Connect
) -> None:
    tenant = await connect()
    await client.put("/admin/faults", json={"rules": [{"kind": "rate_limit", "times": 1}]})
    refused = await client.get(WORK, headers={"Authorization": "Bearer not-a-token"})
    assert refused.status_code == 401
    limited = await client.get(WORK, headers=tenant.headers)
    assert (limited.status_code, limited.headers["X-Rate-Limit-Problem"]) == (429, "minute")
    assert limited.headers["Retry-After"] == "1"
    assert (await client.get(WORK, headers=tenant.headers)).status_code == 200
    assert (await client.get("/admin/faults")).json()["fired"] == {"rate_limit": 1}


async def test_an_injected_429_on_statements_writes_nothing(
    client: httpx.AsyncClient, sandbox: Sandbox, connect: Connect
) -> None:
    """A real route behind the fault: the statement is neither kept nor remembered."""
    tenant = await connect(base_currency="HKD")
    feeds = "/bankfeeds.xro/1.0/FeedConnections"
    item = {"accountToken": "acc-1", "accountType": "BANK", "currency": "HKD"}
    item |= {"accountNumber": "012-1", "accountName": "HKD Current"}
    created = await client.post(feeds, headers=tenant.headers, json={"items": [item]})
    assert created.status_code == 202, created.text
    feed_id = created.json()["items"][0]["id"]
    today = local_today(tenant.organisation, sandbox.clock.now()).isoformat()
    line = {"postedDate": today, "amount": "10.00", "creditDebitIndicator": "CREDIT"}
    statement = {
        "feedConnectionId": feed_id,
        "startDate": today,
        "endDate": today,
        "startBalance": {"amount": "0.00", "creditDebitIndicator": "CREDIT"},
        "endBalance": {"amount": "10.00", "creditDebitIndicator": "CREDIT"},
        "statementLines": [{**line, "transactionId": "t-1"}],
    }
    rule = {"kind": "rate_limit", "times": 1, "path": "/bankfeeds.xro/1.0/Statements"}
    await client.put("/admin/faults", json={"rules": [rule]})
    headers = {**tenant.headers, "Idempotency-Key": "s-1"}
    post = "/bankfeeds.xro/1.0/Statements"

    limited = await client.post(post, headers=headers, json={"items": [statement]})

    assert limited.status_code == 429
    assert limited.headers["X-Rate-Limit-Problem"] == "minute"
    assert tenant.organisation.statements == {}
    [feed] = tenant.organisation.feed_connections.values()
    assert feed.delivered_lines == set()
    again = await client.post(post, headers=headers, json={"items": [statement]})
    assert again.status_code == 202, again.text
    assert len(tenant.organisation.statements) == 1


async def test_the_syncers_http_client_reads_an_injected_429_and_waits_as_it_says(
    client: httpx.AsyncClient, connect: Connect
) -> None:
    """shared/xero_http classifies the answer (limit, Retry-After, budget headers), and the
    syncer's budget holds the tenant's next call back that long."""
    tenant = await connect()
    rule = {"kind": "rate_limit", "times": 1, "retry_after_s": 9, "problem": "minute"}
    await client.put("/admin/faults", json={"rules": [rule]})
    http = XeroHttp(client)

    with pytest.raises(XeroRateLimited) as raised:
        await http.request(
            "GET",
            WORK,
            api="accounting",
            operation="test_work",
            access_token=tenant.tokens["access_token"],
            tenant_id=tenant.tenant_id,
        )

    limited = raised.value
    assert isinstance(limited, TransientError)
    assert (limited.status, limited.limit, limited.retry_after) == (429, "minute", 9.0)
    assert limited.limit_headers["x-minlimit-remaining"] == "60"
    now = [100.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    budget = AppBudget(Limits(), clock=lambda: now[0], sleep=sleep).tenant(tenant.tenant_id)
    budget.observe(limited.limit_headers)
    budget.rate_limited(limited.limit, limited.retry_after)
    async with budget.call():
        assert now[0] == pytest.approx(109.0)


async def test_fault_rates_are_drawn_from_the_seed(
    client: httpx.AsyncClient, connect: Connect
) -> None:
    tenant = await connect()

    async def pattern() -> list[int]:
        await client.put(
            "/admin/faults",
            json={"seed": 7, "rules": [{"kind": "error", "rate": 0.5, "path": WORK}]},
        )
        return [(await client.get(WORK, headers=tenant.headers)).status_code for _ in range(20)]

    first = await pattern()
    assert first == await pattern()
    assert 0 < first.count(503) < 20


async def test_metrics_count_answers_faults_and_replays(
    client: httpx.AsyncClient, connect: Connect, work: Work
) -> None:
    """What Prometheus's `sandbox` job scrapes: bounded labels, faults by kind."""
    tenant = await connect()
    plan = {
        "rules": [
            {"kind": "error", "status": 503, "times": 1, "methods": ["PUT"]},
            {"kind": "drop_after_write", "times": 1, "methods": ["POST"]},
            {"kind": "latency", "latency_ms": 1, "times": 1, "methods": ["GET"]},
        ]
    }
    await client.put("/admin/faults", json=plan)
    headers = {**tenant.headers, "Idempotency-Key": "k"}
    assert (await client.put(WORK, headers=headers, json={})).status_code == 503
    assert (await client.put(WORK, headers=headers, json={})).status_code == 200
    with pytest.raises(DroppedResponse):
        await client.post(WORK, headers={**headers, "Idempotency-Key": "p"}, json={})
    assert (await client.post(WORK, headers={**headers, "Idempotency-Key": "p"}, json={})).json()
    assert (await client.get(WORK, headers=tenant.headers)).status_code == 200
    assert (await client.get(WORK, headers={"Authorization": "Bearer nope"})).status_code == 401
    await client.get("/admin/requests")  # not an API call: not counted

    answer = await client.get("/metrics")
    assert answer.status_code == 200
    samples = scrape(answer.text)

    def count(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    requests = "xero_sandbox_requests_total"
    assert count(requests, api="accounting", method="PUT", status="503") == 1
    assert count(requests, api="accounting", method="PUT", status="200") == 1
    assert count(requests, api="accounting", method="GET", status="401") == 1
    assert sum(v for (name, _), v in samples.items() if name == requests) == 6
    assert count("xero_sandbox_faults_injected_total", kind="error") == 1
    assert count("xero_sandbox_faults_injected_total", kind="drop_after_write") == 1
    assert count("xero_sandbox_faults_injected_total", kind="timeout") == 0
    assert ("xero_sandbox_faults_injected_total", (("kind", "timeout"),)) in samples
    assert count("xero_sandbox_idempotent_replays_total") == 1
    assert count("xero_sandbox_calls_delayed_total") == 1, "the GET held by latency"
