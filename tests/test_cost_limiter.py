"""Spending limits (proxilion.security.cost_limiter)."""

from __future__ import annotations

import math
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion.observability.cost_tracker import CostTracker, ModelPricing
from proxilion.security.cost_limiter import (
    DEFAULT_COST_LIMITS,
    CostLimit,
    CostLimiter,
    CostLimitResult,
    HybridRateLimiter,
    LimitScope,
    create_cost_limiter,
)

WALL0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL0 + self.now


def limiter(*limits: CostLimit, clock: Clock | None = None) -> tuple[CostLimiter, Clock]:
    c = clock or Clock()
    return CostLimiter(list(limits), clock=c, wall_clock=c.wall), c


MINUTE = CostLimit(max_cost=1.0, period=timedelta(minutes=1), name="burst")
HOUR = CostLimit(max_cost=10.0, period=timedelta(hours=1), name="hourly")


class TestCostLimit:
    def test_fields_and_names(self) -> None:
        lim = CostLimit(max_cost=10, period=timedelta(hours=1), scope="user")
        assert lim.max_cost == 10.0
        assert lim.period == timedelta(hours=1)
        assert lim.period_seconds == 3600.0
        assert lim.scope is LimitScope.USER
        assert lim.name == "user_1h"
        assert lim.hard_limit is True
        assert lim.warn_at == 0.8
        assert CostLimit(max_cost=1, period_seconds=86400, scope="global").name == "global_1d"
        assert CostLimit(max_cost=1, period_seconds=5400, scope=LimitScope.ORG).name == "org_90m"
        assert CostLimit(max_cost=1, period_seconds=1.5, scope="tool").name == "tool_1.5s"
        assert CostLimit(max_cost=1).period == timedelta(days=1)
        assert CostLimit(max_cost=1, name="daily_cap").name == "daily_cap"
        assert CostLimit(max_cost=1, period=timedelta(seconds=60), period_seconds=60).window == 60
        assert HOUR.to_dict() == {
            "name": "hourly",
            "max_cost": 10.0,
            "period_seconds": 3600.0,
            "scope": "user",
            "hard_limit": True,
            "warn_at": 0.8,
        }

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_cost": -1},
            {"max_cost": math.nan},
            {"max_cost": math.inf},
            {"max_cost": True},
            {"max_cost": "10"},
            {"max_cost": 1, "period": timedelta(0)},
            {"max_cost": 1, "period": timedelta(seconds=-5)},
            {"max_cost": 1, "period": 60},
            {"max_cost": 1, "period_seconds": math.nan},
            {"max_cost": 1, "period_seconds": 0},
            {"max_cost": 1, "period": timedelta(seconds=60), "period_seconds": 61},
            {"max_cost": 1, "scope": "planet"},
            {"max_cost": 1, "warn_at": 0},
            {"max_cost": 1, "warn_at": 1.5},
            {"max_cost": 1, "hard_limit": "yes"},
            {"max_cost": 1, "name": 3},
        ],
    )
    def test_invalid(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises((TypeError, ValueError)):
            CostLimit(**kwargs)


class TestChecks:
    def test_allowed_and_denied(self) -> None:
        lim, _clock = limiter(HOUR)
        assert lim.check_limit("u1", estimated_cost=1.0).allowed is True
        for _ in range(10):
            lim.record_spend("u1", 1.0)
        result = lim.check_limit("u1", estimated_cost=1.0)
        assert result == CostLimitResult(
            allowed=False,
            limit_name="hourly",
            current_spend=10.0,
            limit=10.0,
            remaining=0.0,
            reset_at=datetime.fromtimestamp(WALL0 + 3600.0, timezone.utc),
            warning=False,
            warning_message=None,
            estimated_cost=1.0,
        )

    def test_sums_are_exact(self) -> None:
        lim, _ = limiter(CostLimit(max_cost=1.0, period=timedelta(hours=1)))
        for _ in range(10):
            lim.record_spend("u1", 0.1)
        assert lim.get_spend_by_period("u1", timedelta(hours=1)) == 1.0
        assert lim.check_limit("u1", 0.0).allowed is True
        assert lim.check_limit("u1", 1e-9).allowed is False

    def test_exact_limit_is_allowed(self) -> None:
        lim, _ = limiter(CostLimit(max_cost=10.0, period=timedelta(hours=1)))
        lim.record_spend("u1", 9.0)
        assert lim.check_limit("u1", 1.0).allowed is True
        lim.record_spend("u1", 1.0)
        assert lim.check_limit("u1", 0.01).allowed is False
        assert lim.check_limit("u1", 0.0).allowed is True

    def test_multi_tier_reports_the_refusing_limit(self) -> None:
        lim, _ = limiter(MINUTE, HOUR)
        lim.record_spend("u1", 0.6)
        lim.record_spend("u1", 0.6)
        result = lim.check_limit("u1", 0.1)
        assert result.allowed is False
        assert result.limit_name == "burst"
        assert result.current_spend == pytest.approx(1.2)
        allowed = lim.check_limit("u2", 0.1)
        assert allowed.allowed is True
        assert allowed.limit_name == "burst"  # the tightest limit
        assert allowed.remaining == 1.0

    def test_warning_and_soft_limit(self) -> None:
        lim, _ = limiter(CostLimit(max_cost=10.0, period=timedelta(hours=1), name="h"))
        lim.record_spend("u1", 8.0)
        result = lim.check_limit("u1", 0.5)
        assert result.allowed is True
        assert result.warning is True
        assert result.warning_message == "Approaching limit 'h': $8.5000 of $10.0000 (85%)"
        soft, _ = limiter(
            CostLimit(max_cost=10.0, period=timedelta(hours=1), name="s", hard_limit=False)
        )
        soft.record_spend("u1", 10.0)
        result = soft.check_limit("u1", 1.0)
        assert result.allowed is True
        assert result.warning_message == "Soft limit 's' exceeded: $11.0000 of $10.0000"
        quiet, _ = limiter(CostLimit(max_cost=10.0, warn_at=None))
        quiet.record_spend("u1", 9.99)
        assert quiet.check_limit("u1", 0.0).warning is False

    def test_zero_budget_refuses_paid_calls(self) -> None:
        lim, _ = limiter(CostLimit(max_cost=0.0, name="frozen"))
        assert lim.check_limit("u1", 0.0).allowed is True
        assert lim.check_limit("u1", 0.0).warning is False
        assert lim.check_limit("u1", 0.000001).allowed is False

    def test_empty_limits_allow_everything(self) -> None:
        lim, _ = limiter()
        result = lim.check_limit("u1", estimated_cost=1000.0)
        assert result.allowed is True
        assert result.limit_name is None

    def test_user_isolation(self) -> None:
        lim, _ = limiter(HOUR)
        lim.record_spend("user_a", 10.0)
        assert lim.check_limit("user_a", 0.5).allowed is False
        assert lim.check_limit("user_b", 5.0).allowed is True

    def test_scopes(self) -> None:
        lim, _ = limiter(
            CostLimit(max_cost=5.0, scope="global", name="all"),
            CostLimit(max_cost=3.0, scope="org", name="org"),
            CostLimit(max_cost=2.0, scope="tool", name="tool"),
        )
        lim.record_spend("u1", 2.0, tool_name="gpt", org_id="acme")
        assert lim.check_limit("u2", 0.5, tool_name="gpt", org_id="other").limit_name == "tool"
        assert lim.check_limit("u2", 0.5, tool_name="gpt").allowed is False
        assert lim.check_limit("u2", 1.5, tool_name="claude", org_id="acme").allowed is False
        assert lim.check_limit("u2", 1.0, tool_name="claude", org_id="acme").allowed is True
        lim.record_spend("u3", 2.9, tool_name="claude", org_id="beta")
        result = lim.check_limit("u4", 0.2, tool_name="llama", org_id="gamma")
        assert result.allowed is False
        assert result.limit_name == "all"

    @pytest.mark.parametrize("bad", [-0.01, math.nan, math.inf, -math.inf, True, "1", None])
    def test_bad_costs(self, bad: Any) -> None:
        lim, _ = limiter(HOUR)
        with pytest.raises((TypeError, ValueError)):
            lim.check_limit("u1", bad)
        with pytest.raises((TypeError, ValueError)):
            lim.record_spend("u1", bad)
        with pytest.raises((TypeError, ValueError)):
            lim.check_and_record("u1", bad)
        assert lim.get_spend_by_period("u1", 3600) == 0.0

    @pytest.mark.parametrize("bad", ["", "  ", None, 5])
    def test_bad_ids(self, bad: Any) -> None:
        lim, _ = limiter(HOUR)
        with pytest.raises((TypeError, ValueError)):
            lim.check_limit(bad, 1.0)
        with pytest.raises((TypeError, ValueError)):
            lim.record_spend("u1", 1.0, tool_name=bad if bad is not None else "")


class TestWindows:
    def test_spend_leaves_each_window_after_its_period(self) -> None:
        lim, clock = limiter(MINUTE, HOUR)
        lim.record_spend("u1", 0.4)  # t = 0
        clock.now = 30.0
        lim.record_spend("u1", 0.6)  # t = 30
        assert lim.check_limit("u1", 0.01).allowed is False
        clock.now = 59.999
        assert lim.get_spend_by_period("u1", 60) == 1.0
        clock.now = 60.0  # the t=0 spend expires from the minute window
        assert lim.get_spend_by_period("u1", 60) == 0.6
        assert lim.check_limit("u1", 0.4).allowed is True
        assert lim.check_limit("u1", 0.41).allowed is False
        clock.now = 90.0
        assert lim.get_spend_by_period("u1", timedelta(minutes=1)) == 0.0
        assert lim.get_spend_by_period("u1", timedelta(hours=1)) == 1.0
        clock.now = 3600.0
        assert lim.get_spend_by_period("u1", timedelta(hours=1)) == 0.6
        clock.now = 3630.0
        assert lim.get_spend_by_period("u1", timedelta(hours=1)) == 0.0

    def test_bucket_expires_with_its_last_spend(self) -> None:
        lim, clock = limiter(MINUTE)
        lim.record_spend("u1", 0.5)  # t = 0
        clock.now = 0.03125  # same 60 ms bucket
        lim.record_spend("u1", 0.5)
        clock.now = 60.0
        assert lim.get_spend_by_period("u1", 60) == 1.0  # conservative: counted until 60.03125
        clock.now = 60.03125
        assert lim.get_spend_by_period("u1", 60) == 0.0

    def test_reset_at_points_to_when_enough_expires(self) -> None:
        lim, clock = limiter(MINUTE)
        lim.record_spend("u1", 0.3)  # t = 0
        clock.now = 10.0
        lim.record_spend("u1", 0.3)  # t = 10
        clock.now = 20.0
        lim.record_spend("u1", 0.3)  # t = 20
        result = lim.check_limit("u1", 0.5)  # needs 0.4 freed: two oldest spends
        assert result.allowed is False
        assert result.reset_at == datetime.fromtimestamp(WALL0 + 70.0, timezone.utc)
        impossible = lim.check_limit("u1", 5.0)
        assert impossible.reset_at == datetime.fromtimestamp(WALL0 + 80.0, timezone.utc)

    def test_unconfigured_period_queries(self) -> None:
        lim, clock = limiter(HOUR)
        lim.record_spend("u1", 1.0)  # t = 0
        clock.now = 100.0
        lim.record_spend("u1", 2.0)
        clock.now = 130.0
        assert lim.get_spend_by_period("u1", 60) == 2.0
        assert lim.get_spend_by_period("u1", 200) == 3.0
        assert lim.get_spend_by_period("u1", 30 * 86400) == 3.0
        assert lim.get_spend_by_period("nobody", 60) == 0.0
        with pytest.raises(ValueError):
            lim.get_spend_by_period("u1", 0)
        with pytest.raises(TypeError):
            lim.get_spend_by_period("u1", "1h")  # type: ignore[arg-type]

    def test_remaining_reset_status(self) -> None:
        lim, _ = limiter(MINUTE, HOUR)
        lim.record_spend("u1", 0.25)
        assert lim.get_remaining_budget("u1") == 0.75
        assert lim.get_remaining_budget("u1", timedelta(hours=1)) == 9.75
        assert lim.get_remaining_budget("u1", timedelta(days=7)) == math.inf
        status = lim.get_status("u1")
        assert status["user_id"] == "u1"
        assert [row["name"] for row in status["limits"]] == ["burst", "hourly"]
        burst = status["limits"][0]
        assert burst["current_spend"] == 0.25
        assert burst["remaining"] == 0.75
        assert burst["percent_used"] == 25.0
        assert burst["exceeded"] is False
        assert (
            burst["oldest_spend_expires_at"]
            == datetime.fromtimestamp(WALL0 + 60.0, timezone.utc).isoformat()
        )
        lim.reset_period("u1", timedelta(minutes=1))
        assert lim.get_spend_by_period("u1", 60) == 0.0
        assert lim.get_spend_by_period("u1", 3600) == 0.25
        lim.reset_period("u1")
        assert lim.get_spend_by_period("u1", 3600) == 0.0
        lim.record_spend("u2", 1.0)
        lim.reset_all()
        assert lim.get_spend_by_period("u2", 3600) == 0.0


class TestLimitManagement:
    def test_add_remove_get(self) -> None:
        lim, _ = limiter()
        lim.add_limit(CostLimit(max_cost=10.0, period=timedelta(hours=1), name="new"))
        assert [x.name for x in lim.get_limits()] == ["new"]
        lim.add_limit(CostLimit(max_cost=5.0, period=timedelta(hours=1), name="new"))
        assert [x.max_cost for x in lim.get_limits()] == [5.0]
        assert lim.remove_limit("new") is True
        assert lim.remove_limit("new") is False
        assert lim.get_limits() == []
        with pytest.raises(TypeError):
            lim.add_limit({"max_cost": 1})  # type: ignore[arg-type]

    def test_new_limit_counts_earlier_spend(self) -> None:
        lim, clock = limiter()
        lim.record_spend("u1", 0.7)  # kept in the 1-day baseline window
        clock.now = 30.0
        lim.record_spend("u1", 0.2)
        clock.now = 50.0
        lim.add_limit(CostLimit(max_cost=1.0, period=timedelta(minutes=1), name="burst"))
        assert lim.get_spend_by_period("u1", 60) == pytest.approx(0.9)
        assert lim.check_limit("u1", 0.2).allowed is False
        # the day window keeps 86.4 s buckets: both spends share one, which leaves the new
        # minute window with its last spend (t = 30), never earlier
        clock.now = 89.9
        assert lim.check_limit("u1", 0.2).allowed is False
        clock.now = 90.0
        assert lim.check_limit("u1", 0.2).allowed is True

    def test_defaults_and_factory(self) -> None:
        assert [x.name for x in CostLimiter().get_limits()] == [x.name for x in DEFAULT_COST_LIMITS]
        assert any("burst" in x.name for x in create_cost_limiter().get_limits())
        assert create_cost_limiter(include_defaults=False).get_limits() == []
        custom = CostLimit(max_cost=100.0, period=timedelta(days=1), name="custom")
        assert create_cost_limiter(limits=[custom], include_defaults=False).get_limits() == [custom]
        replaced = CostLimit(max_cost=3.0, period=timedelta(minutes=1), name="user_burst")
        names = [(x.name, x.max_cost) for x in create_cost_limiter(limits=[replaced]).get_limits()]
        assert names == [("user_burst", 3.0), ("user_hourly", 10.0), ("user_daily", 50.0)]


class TestAtomicity:
    def test_check_and_record_never_overspends(self) -> None:
        lim, _ = limiter(CostLimit(max_cost=1.0, period=timedelta(hours=1)))
        barrier = threading.Barrier(20)
        results: list[bool] = []
        lock = threading.Lock()

        def work() -> None:
            barrier.wait()
            for _ in range(3):
                ok = lim.check_and_record("u1", 0.1).allowed
                with lock:
                    results.append(ok)

        threads = [threading.Thread(target=work) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results.count(True) == 10
        assert lim.get_spend_by_period("u1", 3600) == 1.0

    def test_concurrent_recording_is_exact(self) -> None:
        lim, _ = limiter(CostLimit(max_cost=1000.0, period=timedelta(hours=1)))

        def work() -> None:
            for _ in range(100):
                lim.record_spend("u1", 0.01)

        threads = [threading.Thread(target=work) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert lim.get_spend_by_period("u1", timedelta(hours=1)) == 10.0

    def test_refund(self) -> None:
        lim, _ = limiter(MINUTE)
        assert lim.check_and_record("u1", 0.7).allowed is True
        assert lim.check_and_record("u1", 0.7).allowed is False
        lim.refund("u1", 0.7)
        assert lim.get_spend_by_period("u1", 60) == 0.0
        lim.refund("u1", 5.0)  # more than was spent: floors at zero
        assert lim.get_spend_by_period("u1", 60) == 0.0
        lim.refund("nobody", 1.0)


class FakeRate:
    def __init__(self, allow: bool) -> None:
        self.allow = allow
        self.calls: list[str] = []

    def allow_request(self, key: str, cost: int = 1) -> bool:
        self.calls.append(key)
        return self.allow


class TestHybrid:
    def test_cost_only(self) -> None:
        lim, _ = limiter(CostLimit(max_cost=1.0, period=timedelta(hours=1), name="h"))
        hybrid = HybridRateLimiter(cost_limiter=lim)
        assert hybrid.allow_request("u1", estimated_cost=0.5) == (True, None)
        lim.record_spend("u1", 0.6)
        lim.record_spend("u1", 0.6)
        assert hybrid.allow_request("u1", estimated_cost=0.1) == (
            False,
            "Cost limit exceeded: h ($1.2000 / $1.0000)",
        )
        hybrid.record_usage("u2", 0.25, "tool")
        assert lim.get_spend_by_period("u2", 3600) == 0.25
        status = hybrid.get_status("u1")
        assert status["cost_limiter"]["user_id"] == "u1"
        assert status["rate_limiter"] is None

    def test_rate_limiter_runs_after_the_cost_check(self) -> None:
        lim, _ = limiter(CostLimit(max_cost=1.0, period=timedelta(hours=1)))
        rate = FakeRate(allow=False)
        hybrid = HybridRateLimiter(cost_limiter=lim, rate_limiter=rate)
        assert hybrid.allow_request("u1", 5.0)[0] is False
        assert rate.calls == []  # refused on cost: no rate token taken
        assert hybrid.allow_request("u1", 0.5) == (False, "Rate limit exceeded")
        assert hybrid.check_and_record("u1", 0.5) == (False, "Rate limit exceeded")
        assert lim.get_spend_by_period("u1", 3600) == 0.0  # reservation refunded
        rate.allow = True
        assert hybrid.check_and_record("u1", 0.5) == (True, None)
        assert lim.get_spend_by_period("u1", 3600) == 0.5
        assert HybridRateLimiter(rate_limiter=rate).allow_request("u1") == (True, None)
        with pytest.raises(ValueError):
            HybridRateLimiter()


class TestTrackerIntegration:
    def test_tracker_usage_counts_as_spend(self) -> None:
        tracker = CostTracker(pricing={"m": ModelPricing("M", 1.0, 2.0)})
        lim, _ = limiter(CostLimit(max_cost=5.0, period=timedelta(hours=1)))
        lim.set_cost_tracker(tracker)
        assert lim.get_cost_tracker() is tracker
        tracker.record_usage(model="m", input_tokens=1000, output_tokens=1000, user_id="u1")
        assert lim.get_spend_by_period("u1", 3600) == 3.0
        assert lim.check_limit("u1", 2.5).allowed is False
        lim.set_cost_tracker(None)
        tracker.record_usage(model="m", input_tokens=1000, output_tokens=0, user_id="u1")
        assert lim.get_spend_by_period("u1", 3600) == 3.0

    def test_constructor_argument(self) -> None:
        tracker = CostTracker(pricing={"m": ModelPricing("M", 1.0, 1.0)})
        lim = CostLimiter([CostLimit(max_cost=1.0)], cost_tracker=tracker)
        tracker.record_usage(model="m", input_tokens=500, output_tokens=0)
        assert lim.get_spend_by_period("anonymous", 86400) == 0.5


def test_result_to_dict() -> None:
    reset_at = datetime(2030, 1, 1, tzinfo=timezone.utc)
    result = CostLimitResult(allowed=True, current_spend=5.0, limit=10.0, remaining=5.0)
    result.reset_at = reset_at
    d = result.to_dict()
    assert d["allowed"] is True
    assert d["current_spend"] == 5.0
    assert d["reset_at"] == "2030-01-01T00:00:00+00:00"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 500_000_000)),  # (time step, nanos)
        max_size=60,
    )
)
def test_window_matches_exact_sliding_sum(steps: list[tuple[int, int]]) -> None:
    """Period 1000 s (1 s buckets) with whole-second times: the window sum is exact."""
    clock = Clock()
    lim = CostLimiter(
        [CostLimit(max_cost=1e6, period_seconds=1000.0, name="w")],
        clock=clock,
        wall_clock=clock.wall,
    )
    events: list[tuple[float, int]] = []
    for step, nanos in steps:
        clock.now += step * 40
        lim.record_spend("u1", nanos / 1e9)
        events.append((clock.now, nanos))
        expected = sum(n for t, n in events if t > clock.now - 1000.0)
        assert lim.get_spend_by_period("u1", 1000.0) == expected / 1e9
