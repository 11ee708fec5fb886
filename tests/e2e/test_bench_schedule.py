"""`xerosync bench schedule` keeps working and keeps its output contract (small run)."""

import asyncio
import json
import sys

CONNECTIONS = 3000
INTERVAL_S = 2


async def test_bench_schedule_prints_its_figures_as_json_on_the_last_line() -> None:
    bench = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "xerosync",
        "bench",
        "schedule",
        f"--connections={CONNECTIONS}",
        f"--interval={INTERVAL_S}",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(bench.communicate(), 100)
    assert bench.returncode == 0, stderr.decode()
    figures = json.loads(stdout.decode().strip().splitlines()[-1])

    for key in ("emissions_per_s", "cpu_s_per_1000", "lag_p50_s", "lag_p99_s"):
        assert figures[key] > 0, key
    for key in ("burst_emissions_per_s", "burst_cpu_s_per_1000", "demand_per_s", "headroom"):
        assert figures[key] > 0, key
    assert figures["connections"] == CONNECTIONS
    assert figures["interval_s"] == INTERVAL_S
    assert figures["demand_per_s"] == CONNECTIONS / INTERVAL_S
    # One SyncDue per connection in each phase, none before its slot.
    assert figures["emissions"] == figures["burst_emissions"] == CONNECTIONS
    assert figures["early_emissions"] == 0
    for phase in ("", "burst_"):
        assert figures[f"{phase}lag_p50_s"] <= figures[f"{phase}lag_p99_s"]
        assert figures[f"{phase}lag_p99_s"] <= figures[f"{phase}lag_max_s"]
    # Spread over the interval, the scheduler emits as slots come due: never faster than
    # the demand, and (at 1,500/s, far below its capacity) keeping up with it.
    assert figures["emissions_per_s"] <= figures["demand_per_s"] * 1.01
    assert figures["emissions_per_s"] >= figures["demand_per_s"] * 0.8
    assert figures["lag_max_s"] < INTERVAL_S
    # All due at once, it runs at capacity, which must exceed the spread demand.
    assert figures["burst_emissions_per_s"] > figures["emissions_per_s"]
    headroom = figures["burst_emissions_per_s"] / figures["demand_per_s"]
    assert abs(figures["headroom"] - headroom) < 0.01
    assert "spread" in stderr.decode()
    assert "burst" in stderr.decode()
