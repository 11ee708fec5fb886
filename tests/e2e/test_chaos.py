"""`xerosync chaos`, shortest: the whole system as processes on the embedded broker and
PostgreSQL, every kind of fault struck at least once while a seeded stream is published,
and what the Xero sandbox holds then checked transaction by transaction.

The command's own verdict is what is asserted: it exits 0 only when every valid
transaction is in Xero exactly once, in its own organisation and account, in order with
contiguous statements, and every malformed event is in the DLQ (tests/unit/test_chaos.py
shows each kind of wrong holding failing that verdict).
"""

import asyncio
import json
import sys

import pytest

FAULTS = (
    "syncer_sigkill",
    "scheduler_sigkill",
    "connector_sigkill",
    "xero_5xx",
    "xero_429",
    "xero_timeout",
    "xero_response_dropped",
    "replay",
    "disconnect_reconnect",
    "archive_restore",
)


@pytest.mark.timeout(480)
async def test_a_short_chaos_run_loses_doubles_and_misroutes_nothing() -> None:
    chaos = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "xerosync",
        "chaos",
        "--seed=7",
        "--transactions=400",
        "--organisations=3",
        "--entities=6",
        "--duration=40",
        "--syncer-kills=3",
        "--sync-interval=10",
        "--check-interval=30",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(chaos.communicate(), 420)
    report = stdout.decode()
    assert chaos.returncode == 0, f"{report}\n{stderr.decode()[-3000:]}"
    figures = json.loads(report.strip().splitlines()[-1])

    assert (figures["duplicated"], figures["missing"], figures["misrouted"]) == (0, 0, 0)
    assert figures["delivered"] == figures["expected"] == 400
    assert figures["published"] == sum(
        figures["published_by_kind"][k] for k in ("valid", "duplicate", "malformed")
    )
    assert figures["published_by_kind"]["duplicate"] > 0
    assert figures["published_by_kind"]["reversals"] > 0
    assert figures["dlq"] == figures["malformed"] == 4
    assert figures["broken_accounts"] == 0
    assert figures["faults"]["syncer_sigkill"] == 3
    struck = {kind: figures["faults"][kind] for kind in FAULTS}
    assert all(struck.values()), f"every kind of fault struck: {struck}"
    assert figures["wall_s"] > 0
