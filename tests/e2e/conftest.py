import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from tests.conftest import Env
from xerosync.devstack.processes import ManagedProcess, free_port
from xerosync.devstack.stack import Stack, StackConfig
from xerosync.services import SERVICES


@pytest.fixture
def stack(env: Env, tmp_path: Path) -> Iterator[Stack]:
    """Services of this test as real processes, on the session's broker and its databases."""
    config = StackConfig(
        work_dir=tmp_path,
        topic_prefix=env.topics.prefix,
        kafka_bootstrap_servers=env.kafka.bootstrap_servers,
        database_urls={name: env.database_url(name) for name in SERVICES},
        http_ports={name: free_port() for name in SERVICES},
        extra_env={"KAFKA_SESSION_TIMEOUT_MS": str(env.kafka.session_timeout_ms)},
    )
    running = Stack(config)
    try:
        yield running
    finally:
        running.stop()


@dataclass(frozen=True)
class SandboxServer:
    url: str
    process: ManagedProcess


@pytest.fixture
def sandbox_server(tmp_path: Path) -> Iterator[SandboxServer]:
    """`xerosync sandbox` as users run it, on a free port."""
    port = free_port()
    process = ManagedProcess(
        "sandbox",
        [sys.executable, "-m", "xerosync", "sandbox", "--port", str(port)],
        log_path=tmp_path / "sandbox.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http_ok(f"{url}/admin/time", timeout=30)
        yield SandboxServer(url=url, process=process)
    finally:
        process.stop()


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
async def browser_page(chromium: Path) -> AsyncIterator[Page]:
    """A page in Debian's Chromium driven by Playwright; never a downloaded browser."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield await browser.new_page()
        finally:
            await browser.close()
