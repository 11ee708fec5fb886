"""`xerosync bench soak`'s arithmetic: percentiles, memory slopes and the warm-up, what Xero
holds against what was published, the load it generates and the limits it plans for."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.contracts.bank import TransactionBooked
from xerosync.bench.common import BenchFailed
from xerosync.bench.post import OPENING_BALANCE, Tenant
from xerosync.bench.soak import (
    BOOKED_BEFORE,
    Load,
    Plan,
    default_interval,
    deliveries,
    memory_over,
    ms_date,
    percentile,
    reconcile,
    slope_per_minute,
)


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(n) for n in range(100, 0, -1)]  # 1..100, unsorted

    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7.0], 0.99) == 7
    # Two values: the median is the lower, p99 the upper.
    assert percentile([2.0, 1.0], 0.5) == 1
    assert percentile([2.0, 1.0], 0.99) == 2


@pytest.mark.parametrize("q", [0.0, -0.1, 1.5])
def test_percentile_refuses_a_share_outside_0_to_1(q: float) -> None:
    with pytest.raises(ValueError, match="q must be"):
        percentile([1.0], q)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_slope_is_least_squares_in_mb_per_minute() -> None:
    # 0.5 MB every 30 s is 1 MB a minute, noise around the line notwithstanding.
    points = [(30.0 * n, 100 + 0.5 * n + (0.2 if n % 2 else -0.2)) for n in range(21)]

    assert slope_per_minute(points) == pytest.approx(1.0, abs=0.02)
    assert slope_per_minute([(t, 80.0) for t in range(10)]) == 0
    assert slope_per_minute([(t, 80.0 - t) for t in range(10)]) == pytest.approx(-60)


def test_slope_of_fewer_than_two_moments_is_zero() -> None:
    assert slope_per_minute([]) == 0
    assert slope_per_minute([(5.0, 80.0)]) == 0
    assert slope_per_minute([(5.0, 80.0), (5.0, 90.0)]) == 0


def test_memory_starts_after_the_warm_up_and_ends_with_the_load() -> None:
    # Import-time growth in the first 20 s, flat after it, the drain's samples after 100 s.
    points = [(float(t), 50.0 + min(t, 20)) for t in range(0, 101, 5)]
    points += [(105.0, 200.0), (110.0, 210.0)]

    memory = memory_over(points, warmup_s=20, end_s=100)

    assert (memory.start_mb, memory.end_mb, memory.peak_mb) == (70, 70, 70)
    assert memory.growth_mb == 0
    assert memory.slope_mb_per_min == 0


def test_memory_without_a_sample_after_the_warm_up_cannot_be_measured() -> None:
    with pytest.raises(BenchFailed, match="no memory sample"):
        memory_over([(1.0, 50.0), (2.0, 51.0)], warmup_s=5, end_s=10)


def test_reconcile_counts_missing_doubled_and_unknown_transactions() -> None:
    published = {"a": 100.0, "b": 101.0, "c": 102.0}
    delivered = [("a", 104.5), ("b", 103.0), ("b", 110.0), ("x", 103.0)]

    reconciled = reconcile(published, delivered)

    assert sorted(reconciled.latencies) == [2.0, 4.5, 9.0]
    assert (reconciled.missing, reconciled.duplicated, reconciled.unknown) == (1, 1, 1)
    clean = reconcile(published, [("a", 101.0), ("b", 102.0), ("c", 103.0)])
    assert (clean.missing, clean.duplicated, clean.unknown) == (0, 0, 0)


def test_deliveries_read_acceptance_times_from_the_sandbox_holdings() -> None:
    accepted = datetime(2025, 3, 1, 8, 30, 15, 250000, tzinfo=UTC)
    statements = {
        "statements": [
            {
                "status": "DELIVERED",
                "received_at": accepted.isoformat(),
                "lines": [{"transaction_id": "run1-000-HKD-0000000"}, {"transaction_id": None}],
            },
            {
                "status": "REJECTED",
                "received_at": accepted.isoformat(),
                "lines": [{"transaction_id": "run1-000-HKD-0000001"}],
            },
            {
                "status": "DELIVERED",
                "received_at": accepted.isoformat(),
                "lines": [{"transaction_id": "other-000-HKD-0000000"}],
            },
        ]
    }
    assert deliveries(statements, "bankfeeds", "run1-") == [
        ("run1-000-HKD-0000000", accepted.timestamp())
    ]
    accounting = {
        "bank_transactions": [
            {"Reference": "run1-001-USD-0000003", "UpdatedDateUTC": "/Date(1550793549320+0000)/"},
            {"Reference": None, "UpdatedDateUTC": "/Date(1550793549320+0000)/"},
        ]
    }
    assert deliveries(accounting, "accounting", "run1-") == [
        ("run1-001-USD-0000003", 1550793549.32)
    ]


def test_ms_date_refuses_anything_else() -> None:
    assert ms_date("/Date(0+0000)/") == 0
    with pytest.raises(ValueError, match="not a /Date"):
        ms_date("2025-03-01T00:00:00Z")


def _tenants(count: int) -> list[Tenant]:
    return [
        Tenant(
            index=n,
            tenant_id=f"t{n}",
            entity_id=f"ent{n}",
            accounts=tuple((f"ent{n}-{c.lower()}", c) for c in ("HKD", "USD", "CNY")),
            owner=f"owner{n}@example.com",
        )
        for n in range(count)
    ]


def test_the_load_chains_each_accounts_balance_and_books_in_publishing_order() -> None:
    load = Load(_tenants(2), "run1")
    now = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    # Three ticks at the same instant, then one later: every account gets transactions
    # booked at the same nominal time, which must still come out strictly increasing.
    records = load.take(10, now) + load.take(10, now) + load.take(7, now)
    records += load.take(6, now + timedelta(seconds=5))

    assert len({i for i, _, _ in records}) == 33
    by_account: dict[str, list[TransactionBooked]] = {}
    for transaction_id, key, value in records:
        event = TransactionBooked.model_validate_json(value)
        assert event.transaction_id == transaction_id
        assert key == event.account_id.encode()
        assert event.booked_at <= now + timedelta(seconds=5) - BOOKED_BEFORE + timedelta(
            milliseconds=10
        )
        by_account.setdefault(event.account_id, []).append(event)
    # Round robin: six accounts, 33 transactions, so 5 or 6 each.
    assert sorted(len(v) for v in by_account.values()) == [5, 5, 5, 6, 6, 6]
    for events in by_account.values():
        balance = OPENING_BALANCE
        for n, event in enumerate(events):
            assert event.transaction_id.endswith(f"-{n:07d}")
            signed = event.amount if event.direction == "credit" else -event.amount
            assert event.balance_after == balance + signed
            balance = event.balance_after
        times = [e.booked_at for e in events]
        assert times == sorted(times)
        assert len(set(times)) == len(times)
    assert isinstance(balance, Decimal)


def test_the_default_plan_fits_within_xeros_limits() -> None:
    plan = Plan(sink="bankfeeds", minutes=10, rate=200, tenants=4, interval_s=default_interval(4))

    assert plan.interval_s == 8
    # One statement per account and run: 3 * 60/8 calls a minute per organisation.
    assert plan.org_calls_per_minute() == pytest.approx(22.5)
    assert plan.problems() == []
    assert plan.total == 120_000
    assert plan.warmup_s == 60
    assert Plan("bankfeeds", 0.5, 50, 2, 5).warmup_s == 6
    assert default_interval(1) == 5
    assert default_interval(10) == 20


def test_a_plan_over_xeros_limits_is_refused_with_the_reason() -> None:
    # Accounting: 50 a call; 200 a second over four organisations needs 9 calls a run.
    busy = Plan(sink="accounting", minutes=10, rate=200, tenants=4, interval_s=8)
    assert busy.org_calls_per_minute() == pytest.approx(67.5)
    assert any("calls a minute" in p for p in busy.problems())
    # Bank Feeds: 20 organisations every 5 s would send 720 statements a minute.
    many = Plan(sink="bankfeeds", minutes=10, rate=200, tenants=20, interval_s=5)
    assert any("statements a minute" in p for p in many.problems())
    # 22.5 calls a minute for four hours is over 80% of 5,000 a day.
    long = Plan(sink="bankfeeds", minutes=240, rate=200, tenants=4, interval_s=8)
    assert any("a day" in p for p in long.problems())
