"""`xerosync bench post` keeps working and keeps its output contract (tiny run), and its
window arithmetic says what the README says it does."""

import asyncio
import json
import sys

import pytest

from xerosync.bench.post import Call, analyse

SINGLE = 600
TENANTS = 2
PER_TENANT = 300
SCALE = 30
KEYS = ("calls_ratio", "txns_per_call", "rate_limited", "txns_per_s", "window_s")


async def test_bench_post_prints_its_figures_as_json_on_the_last_line() -> None:
    # Accounting: 50 transactions a call, so each organisation makes a handful of calls,
    # far below 60 a window: nothing here may be refused with 429.
    bench = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "xerosync",
        "bench",
        "post",
        "--sink=accounting",
        f"--single-transactions={SINGLE}",
        f"--tenants={TENANTS}",
        f"--per-tenant-transactions={PER_TENANT}",
        f"--single-scale={SCALE}",
        f"--many-scale={SCALE}",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(bench.communicate(), 180)
    assert bench.returncode == 0, stderr.decode()
    figures = json.loads(stdout.decode().strip().splitlines()[-1])

    assert figures["sink"] == "accounting"
    for phase, tenants, total in (
        ("single_tenant", 1, SINGLE),
        ("many_tenants", TENANTS, TENANTS * PER_TENANT),
    ):
        result = figures[phase]
        for key in KEYS:
            assert key in result, (phase, key)
        assert result["tenants"] == tenants
        # Every transaction reached the sandbox, once (the bench checked each one).
        assert result["transactions"] == result["in_sandbox"] == total
        assert result["rate_limited"] == 0
        assert 0 < result["txns_per_call"] <= 50
        assert result["batches"] * 50 >= total
        assert result["txns_per_s"] > 0
        assert result["window_s"] == 60 / SCALE
        assert result["allowed_per_window"] == 60 * tenants
        # Too small a backlog to outlast a window: the ratio is not made up.
        ratio = result["calls_ratio"]
        assert ratio is None or 0 < ratio <= 1.05
    err = stderr.decode()
    assert "ingesting" in err
    assert "posted" in err


ACCOUNTING = ("PUT", "/api.xro/2.0/banktransactions")
STATEMENTS = ("POST", "/bankfeeds.xro/1.0/statements")


def _calls(
    tenant: str, start: float, count: int, kind: tuple[str, str], status: int = 200
) -> list[Call]:
    return [Call(start + n * 0.005, *kind, status, tenant) for n in range(count)]


def test_calls_ratio_counts_whole_windows_with_a_backlog_against_each_organisations_60() -> None:
    # Window 1 s. [0, 1): a and b make 60 each. [1, 2): a makes 60 and is refused once, b
    # makes 30 and runs out. [2, 3) ends after the last call: no backlog, not counted.
    log = sorted(
        _calls("a", 0.0, 60, ACCOUNTING)
        + _calls("b", 0.001, 60, ACCOUNTING)
        + _calls("a", 1.0, 60, ACCOUNTING)
        + _calls("b", 1.001, 30, ACCOUNTING)
        + _calls("a", 1.9, 1, ACCOUNTING, status=429)
        + _calls("a", 2.0, 20, ACCOUNTING),
        key=lambda c: c.at,
    )
    result = analyse(
        name="t",
        sink="accounting",
        scale=60,
        transactions=230 * 50,
        tenants=["a", "b"],
        calls=log,
        due_at=-0.5,
    )

    assert result.window_s == 1.0
    assert result.allowed_per_window == 120
    assert result.binding_limit == "60 an organisation"
    # 60 for each organisation with a backlog throughout a window, plus what one that ran
    # out during it made: every call allowed was made.
    assert [w.calls for w in result.windows] == [120, 90]
    assert [w.allowed for w in result.windows] == [120, 90]
    assert result.calls_ratio == 1.0
    assert result.rate_limited == 1
    assert result.rate_limited_at == [1.9]
    assert result.batches == 230
    assert result.txns_per_call == 50
    # End to end: from the SyncDue events to the last answer.
    assert result.txns_per_s == pytest.approx(230 * 50 / (2.0 + 19 * 0.005 + 0.5))


def test_from_four_organisations_the_apps_180_statements_a_window_bind() -> None:
    # Window 2 s. Four organisations, 45 statements each in [0, 2) and 10 more after it.
    log = sorted(
        [c for t in "abcd" for c in _calls(t, 0.0, 45, STATEMENTS)]
        + [c for t in "abcd" for c in _calls(t, 2.0, 10, STATEMENTS)],
        key=lambda c: c.at,
    )
    result = analyse(
        name="t",
        sink="bankfeeds",
        scale=30,
        transactions=220 * 1000,
        tenants=list("abcd"),
        calls=log,
        due_at=0.0,
    )

    assert result.allowed_per_window == 180
    assert result.binding_limit == "app's 180 statements"
    assert [(w.calls, w.allowed) for w in result.windows] == [(180, 180)]
    assert result.calls_ratio == 1.0
    assert result.busy_share == pytest.approx(44 * 0.005 / 2)
