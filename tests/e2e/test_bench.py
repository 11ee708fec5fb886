"""`xerosync bench ingest` keeps working and keeps its output contract (small run)."""

import asyncio
import json
import sys


async def test_bench_ingest_prints_its_figures_as_json_on_the_last_line() -> None:
    bench = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "xerosync",
        "bench",
        "ingest",
        "--events=3000",
        "--rounds=1",
        "--partitions=3",
        "--batch=200",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(bench.communicate(), 240)
    assert bench.returncode == 0, stderr.decode()
    figures = json.loads(stdout.decode().strip().splitlines()[-1])
    for key in ("syncer_events_per_s", "reference_events_per_s", "bare_events_per_s"):
        assert figures[key] > 0, key
    ratio = figures["syncer_events_per_s"] / figures["reference_events_per_s"]
    assert abs(figures["ratio"] - ratio) < 0.01
    assert figures["events"] == 3000
    # Storing nothing must be faster than storing durably, or the measurement is broken.
    assert figures["bare_events_per_s"] > figures["reference_events_per_s"]
    assert "round 1: syncer" in stderr.decode()
