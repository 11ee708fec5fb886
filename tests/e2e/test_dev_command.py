"""`xerosync dev` as a user runs it: everything up, events counted, Ctrl-C leaves nothing."""

import asyncio
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
import psutil

from shared.contracts.topics import BANK_TRANSACTIONS, Topics
from shared.settings import KafkaSettings
from tests.helpers import booked, eventually, metric
from xerosync.demo import HONG_KONG, demo_accounts, history
from xerosync.devstack.processes import free_port, port_open
from xerosync.producer import EventWriter

OWN_EVENTS = 25
INGESTED = "xerosync_transactions_ingested_total"


async def _page(url: str) -> str:
    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(url)).text


async def _ready(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(url)).status_code == 200
    except httpx.TransportError:
        return False


async def test_dev_runs_everything_counts_events_and_stops_clean(tmp_path: Path) -> None:
    broker_port, syncer_port, sandbox_port = free_port(), free_port(), free_port()
    connector_port, scheduler_port = free_port(), free_port()
    # A user's shell: no servers configured, so dev embeds its own.
    pointing_elsewhere = {"KAFKA_BOOTSTRAP_SERVERS", "TOPIC_PREFIX"}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("_DATABASE_URL") and key not in pointing_elsewhere
    }
    env["SYNCER_HTTP_PORT"] = str(syncer_port)
    env["CONNECTOR_HTTP_PORT"] = str(connector_port)
    env["SCHEDULER_HTTP_PORT"] = str(scheduler_port)
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        dev = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "xerosync",
            "dev",
            f"--broker-port={broker_port}",
            f"--sandbox-port={sandbox_port}",
            "--demo-interval=0.2",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{syncer_port}"
    children: list[psutil.Process] = []

    async def command_lines() -> str:
        children[:] = psutil.Process(dev.pid).children(recursive=True)
        return " ".join(" ".join(child.cmdline()) for child in children)

    try:
        await eventually(lambda: _ready(f"{base}/readyz"), within=90, what="syncer ready")
        names = await eventually(
            command_lines, until=lambda names: "produce-demo" in names, what="demo producer"
        )
        for part in (
            "tansu",
            "postgres",
            "xerosync syncer",
            "xerosync sandbox",
            "xerosync connector",
            "xerosync scheduler",
        ):
            assert part in names
        scheduler = f"http://127.0.0.1:{scheduler_port}"
        await eventually(lambda: _ready(f"{scheduler}/readyz"), within=60, what="scheduler ready")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sandbox_port}") as sandbox:
            organisations = (await sandbox.get("/admin/organisations")).json()
        assert {o["name"] for o in organisations} >= {"Acme Trading Ltd", "Partner Edition Co"}
        # The web UI: the demo entities' accounts reach the connector's directory, and the
        # development sign-in page offers them.
        ui = f"http://127.0.0.1:{connector_port}"
        await eventually(lambda: _ready(f"{ui}/readyz"), within=60, what="connector ready")
        sign_in = await eventually(
            lambda: _page(f"{ui}/dev/sign-in"),
            until=lambda html: html.count("Sign in as") >= 3,
            what="demo entities offered for sign-in",
        )
        assert "HKD" in sign_in
        assert f"{ui}/dev/sign-in" in log_path.read_text()

        # The demo's history arrives whole and valid.
        expected_history = sum(
            1
            for _ in history(
                demo_accounts(3, 7),
                days=14,
                per_day=6,
                seed=7,
                today=datetime.now(HONG_KONG).date(),
            )
        )
        await eventually(
            lambda: metric(base, INGESTED, result="new"),
            until=lambda new: new >= expected_history,
            within=60,
            what=f"the demo's {expected_history} transactions ingested",
        )
        # Events anyone publishes to the broker are counted too.
        before = await metric(base, INGESTED, result="new")
        kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{broker_port}")
        async with EventWriter(kafka, Topics()) as writer:
            await writer.write(
                BANK_TRANSACTIONS, [booked(n, account="acc-e2e") for n in range(OWN_EVENTS)]
            )
        await eventually(
            lambda: metric(base, INGESTED, result="new"),
            until=lambda new: new >= before + OWN_EVENTS,
            what="our own events ingested",
        )
        assert await metric(base, INGESTED, result="invalid") == 0
    finally:
        dev.send_signal(signal.SIGINT)  # what Ctrl-C sends
        code = await asyncio.wait_for(dev.wait(), 60)
    output = log_path.read_text()
    assert code == 0, output
    assert "every process exited and every port is free" in output
    survivors = [
        child.pid for child in children if child.is_running() and child.status() != "zombie"
    ]
    assert survivors == [], output
    assert not port_open("127.0.0.1", broker_port)
    assert not port_open("127.0.0.1", syncer_port)
    assert not port_open("127.0.0.1", sandbox_port)
    assert not port_open("127.0.0.1", connector_port)
    assert not port_open("127.0.0.1", scheduler_port)
