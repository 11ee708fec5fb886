"""`xerosync bench soak` keeps working and keeps its output contract (a 30-second soak)."""

import asyncio
import json
import sys

import pytest

MINUTES = 0.5
RATE = 50
TENANTS = 2
INTERVAL = 4
PROCESSES = ("syncer", "connector", "scheduler")


@pytest.mark.timeout(240)
async def test_bench_soak_prints_its_figures_as_json_on_the_last_line() -> None:
    bench = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "xerosync",
        "bench",
        "soak",
        f"--minutes={MINUTES}",
        f"--rate={RATE}",
        f"--tenants={TENANTS}",
        f"--sync-interval={INTERVAL}",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(bench.communicate(), 220)
    assert bench.returncode == 0, stderr.decode()
    figures = json.loads(stdout.decode().strip().splitlines()[-1])

    # Every transaction published reached Xero, once (the bench checked each one).
    total = round(RATE * MINUTES * 60)
    assert figures["published"] == figures["delivered"] == total
    assert figures["missing"] == figures["duplicates"] == 0
    assert figures["events_per_s"] == pytest.approx(RATE, rel=0.1)
    assert figures["publish_rate"] == pytest.approx(RATE, rel=0.1)
    # Posting ran on the real scheduler's schedule: each transaction waits for its
    # connection's next slot (at most one interval) and then for its statement.
    assert figures["scheduler"] == "xerosync scheduler process"
    assert figures["sync_interval_s"] == INTERVAL
    assert 0 < figures["p50_latency_s"] <= figures["p99_latency_s"]
    assert figures["p99_latency_s"] <= figures["max_latency_s"] < 4 * INTERVAL
    assert figures["rate_limited"] == 0
    assert figures["sync_runs"].get("completed", 0) >= TENANTS
    # Memory: the syncer's is the headline, every process has its own figures.
    assert figures["rss_mb_start"] == figures["syncer_rss_mb_start"] > 0
    assert figures["rss_mb_end"] == figures["syncer_rss_mb_end"] > 0
    assert figures["warmup_s"] == pytest.approx(0.2 * MINUTES * 60)
    samples = figures["rss_samples"]
    for name in PROCESSES:
        assert figures[f"{name}_rss_mb_start"] > 0
        assert figures[f"{name}_rss_mb_end"] > 0
        assert isinstance(figures[f"{name}_rss_slope_mb_per_min"], float)
        assert len(samples[name]) == len(samples["t_s"]) >= 10
        assert figures["log_errors"][name] == 0
    err = stderr.decode()
    assert "soak:" in err
    assert "draining" in err
