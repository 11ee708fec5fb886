import asyncio
import dataclasses
import os
import sys
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from tests.conftest import Env, Infrastructure
from xerosync.dev import connector_env
from xerosync.devstack.processes import ManagedProcess, free_port
from xerosync.devstack.stack import Stack, StackConfig
from xerosync.services import SERVICES


def process_stack(env: Env, work_dir: Path) -> Stack:
    """Services as real processes, on `env`'s broker, topics and databases."""
    return Stack(
        StackConfig(
            work_dir=work_dir,
            topic_prefix=env.topics.prefix,
            kafka_bootstrap_servers=env.kafka.bootstrap_servers,
            database_urls={name: env.database_url(name) for name in SERVICES},
            http_ports={name: free_port() for name in SERVICES},
            extra_env={"KAFKA_SESSION_TIMEOUT_MS": str(env.kafka.session_timeout_ms)},
        )
    )


@pytest.fixture
def stack(env: Env, tmp_path: Path) -> Iterator[Stack]:
    """Services of this test as real processes, on the session's broker and its databases."""
    running = process_stack(env, tmp_path)
    try:
        yield running
    finally:
        running.stop()


@dataclass(frozen=True)
class SandboxServer:
    url: str
    process: ManagedProcess


def start_sandbox(work_dir: Path) -> SandboxServer:
    """`xerosync sandbox` as users run it, on a free port (the caller stops it)."""
    port = free_port()
    process = ManagedProcess(
        "sandbox",
        [sys.executable, "-m", "xerosync", "sandbox", "--port", str(port)],
        log_path=work_dir / "sandbox.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http_ok(f"{url}/admin/time", timeout=30)
    except BaseException:
        process.stop()
        raise
    return SandboxServer(url=url, process=process)


@pytest.fixture
def sandbox_server(tmp_path: Path) -> Iterator[SandboxServer]:
    server = start_sandbox(tmp_path)
    try:
        yield server
    finally:
        server.process.stop()


@dataclass(frozen=True)
class ConnectorServer:
    url: str
    process: ManagedProcess
    client_id: str
    """The connector's app in the sandbox."""
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    """What it was started with (its app's credentials too), to start it again so."""


def start_connector(stack: Stack, sandbox: SandboxServer, **extra_env: str) -> ConnectorServer:
    """`xerosync connector` as users run it, registered as an app in the sandbox and pointed
    at it, with the development sign-in page on (as `xerosync dev` starts it)."""
    url = stack.service_url("connector")
    env = {**connector_env(sandbox.url, url), **extra_env}
    process = stack.start_service("connector", extra_env=env)
    return ConnectorServer(
        url=url, process=process, client_id=env["CONNECTOR_XERO_CLIENT_ID"], env=env
    )


@pytest.fixture
async def connector_server(stack: Stack, sandbox_server: SandboxServer) -> ConnectorServer:
    return await asyncio.to_thread(start_connector, stack, sandbox_server)


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(report.failed for report in reports.values())


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, or a skip that says how to get it (a failure under CI=true)."""
    if not CHROMIUM.exists():
        reason = (
            f"no Chromium at {CHROMIUM}: script/test installs Debian's chromium with apt-get "
            "when it runs as root; otherwise `apt-get install -y chromium`"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run under CI=true, but {reason}")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
async def browser_page(
    chromium: Path, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Page]:
    """A page in Debian's Chromium driven by Playwright; never a downloaded browser. When the
    test fails, the page as it was is saved as tmp_path/failure.png."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            page = await browser.new_page()
            yield page
            if _failed(request):
                shot = tmp_path / "failure.png"
                await page.screenshot(path=shot, full_page=True)
                print(f"screenshot of the failed page: {shot} ({page.url})")  # noqa: T201
        finally:
            await browser.close()


def short_sessions(infrastructure: Infrastructure) -> Infrastructure:
    """One-second consumer sessions on the embedded broker: Tansu makes a joining member
    wait out a session, and the syncer rejoins at each restart here. A real Kafka keeps its
    own minimum."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return infrastructure
    kafka = infrastructure.kafka.model_copy(update={"session_timeout_ms": 1000})
    return dataclasses.replace(infrastructure, kafka=kafka)
