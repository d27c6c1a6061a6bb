"""Usage and cost tracking (proxilion.observability.cost_tracker)."""

from __future__ import annotations

import json
import logging
import math
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from proxilion.observability import (
    DEFAULT_PRICING,
    BudgetPolicy,
    CostSummary,
    CostTracker,
    ModelPricing,
    UsageRecord,
    create_cost_tracker,
)

WALL0 = 1_700_000_000.0
SONNET = "claude-sonnet-4-20250514"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL0 + self.now


def tracker(**kwargs: Any) -> tuple[CostTracker, Clock]:
    clock = Clock()
    return CostTracker(clock=clock, wall_clock=clock.wall, **kwargs), clock


class TestPricing:
    def test_calculate_cost(self) -> None:
        p = ModelPricing("test", 0.01, 0.03, 0.001, 0.02)
        assert p.calculate_cost(1000, 1000) == pytest.approx(0.04)
        assert p.calculate_cost(500, 500) == pytest.approx(0.02)
        assert p.calculate_cost(1000, 1000, 500, 200) == pytest.approx(0.0445)
        assert p.calculate_cost(0, 0) == 0.0

    @pytest.mark.parametrize(
        "args",
        [("", 0.01, 0.01), ("m", -0.01, 0.01), ("m", math.nan, 0.01), ("m", 0.01, math.inf)],
    )
    def test_bad_pricing(self, args: tuple[Any, ...]) -> None:
        with pytest.raises((TypeError, ValueError)):
            ModelPricing(*args)

    @pytest.mark.parametrize("bad", [-1, True, 1.5, None])
    def test_bad_token_counts(self, bad: Any) -> None:
        with pytest.raises((TypeError, ValueError)):
            ModelPricing("m", 0.01, 0.01).calculate_cost(bad, 0)

    def test_default_table(self) -> None:
        assert any("claude" in k for k in DEFAULT_PRICING)
        assert any("gpt" in k for k in DEFAULT_PRICING)
        for price in DEFAULT_PRICING.values():
            assert price.input_price_per_1k > 0 and price.output_price_per_1k > 0
        with pytest.raises(TypeError):
            DEFAULT_PRICING["x"] = ModelPricing("x", 1, 1)  # type: ignore[index]

    def test_lookup(self) -> None:
        t, _ = tracker(pricing={"custom": ModelPricing("Custom", 0.05, 0.10)})
        assert t.get_pricing("custom") == ModelPricing("Custom", 0.05, 0.10)
        assert t.get_pricing(SONNET) is DEFAULT_PRICING[SONNET]
        assert t.get_pricing("unknown_model") is None
        t.set_pricing("new", ModelPricing("New", 0.01, 0.02))
        assert t.get_pricing("new") is not None
        with pytest.raises(TypeError):
            t.set_pricing("x", {"input": 1})  # type: ignore[arg-type]

    def test_unknown_models_are_charged_the_highest_known_rate(self) -> None:
        t, _ = tracker()
        record = t.record_usage(model="mystery-model", input_tokens=1000, output_tokens=500)
        assert record.cost_usd == pytest.approx(0.015 + 0.0375)  # Claude Opus 4 rates
        t2, _ = tracker(default_model=SONNET)
        record = t2.record_usage(model="mystery-model", input_tokens=1000, output_tokens=500)
        assert record.cost_usd == pytest.approx(0.003 + 0.0075)

    def test_dated_variants_use_the_longest_prefix(self) -> None:
        t, _ = tracker()
        record = t.record_usage(model="gpt-4o-mini-2024-07-18", input_tokens=1000, output_tokens=0)
        assert record.cost_usd == pytest.approx(0.00015)

    def test_estimate_cost(self) -> None:
        t, _ = tracker()
        assert t.estimate_cost(SONNET, 1000, 500) == pytest.approx(0.0105)
        t2, _ = tracker(default_model=SONNET)
        assert t2.estimate_cost(input_tokens=1000, output_tokens=500) == pytest.approx(0.0105)
        with pytest.raises(ValueError):
            t.estimate_cost(input_tokens=1)


class TestRecords:
    def test_record_and_fields(self) -> None:
        t, _clock = tracker()
        record = t.record_usage(
            model=SONNET,
            input_tokens=1000,
            output_tokens=500,
            tool_name="database_query",
            user_id="user_123",
            request_id="r1",
        )
        assert record.cost_usd == pytest.approx(0.0105)
        assert record.tool_name == "database_query"
        assert record.timestamp == datetime.fromtimestamp(WALL0, timezone.utc)
        assert record.total_tokens == 1500
        d = record.to_dict()
        assert d["user_id"] == "user_123"
        assert d["timestamp"] == record.timestamp.isoformat()
        assert json.loads(record.to_json())["model"] == SONNET
        custom = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
        assert t.record_usage(SONNET, 1, 1, timestamp=custom).timestamp == custom

    def test_bad_input(self) -> None:
        t, _ = tracker()
        with pytest.raises(ValueError):
            t.record_usage(SONNET, -1, 0)
        with pytest.raises(TypeError):
            t.record_usage(SONNET, 1.5, 0)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            t.record_usage("", 1, 0)
        with pytest.raises(ValueError):
            t.record_usage(SONNET, 1, 0, user_id="")
        with pytest.raises(TypeError):
            t.record_usage(SONNET, 1, 0, timestamp="yesterday")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            CostTracker(max_records=0)
        with pytest.raises(TypeError):
            CostTracker(budget_policy={"max_cost_per_request": 1})  # type: ignore[arg-type]

    def test_queries(self) -> None:
        t, _clock = tracker(max_records=5)
        for i in range(7):
            t.record_usage(SONNET, 100, 50, user_id=f"user_{i % 2}", tool_name="tool_a")
        records = t.get_records()
        assert len(records) == 5
        assert [r.user_id for r in records] == ["user_0", "user_1", "user_0", "user_1", "user_0"]
        assert len(t.get_records(limit=3)) == 3
        assert t.get_records(limit=0) == []
        assert [r.user_id for r in t.get_records(user_id="user_1")] == ["user_1", "user_1"]
        with pytest.raises(ValueError):
            t.get_records(limit=-1)
        exported = json.loads(t.export_records(format="json"))
        assert len(exported) == 5
        assert len(t.export_records(format="jsonl").strip().split("\n")) == 5
        with pytest.raises(ValueError):
            t.export_records(format="xml")
        assert t.clear_records() == 5
        assert t.get_records() == []

    def test_summary(self) -> None:
        t, _clock = tracker()
        old = datetime.fromtimestamp(WALL0 - 7200, timezone.utc)
        t.record_usage(SONNET, 1000, 500, user_id="user_a", tool_name="tool_a", timestamp=old)
        t.record_usage(SONNET, 2000, 1000, user_id="user_b")
        summary = t.get_summary()
        assert isinstance(summary, CostSummary)
        assert summary.record_count == 2
        assert summary.total_input_tokens == 3000
        assert summary.total_output_tokens == 1500
        assert summary.total_cost == pytest.approx(0.0315)
        assert summary.by_user == {
            "user_a": pytest.approx(0.0105),
            "user_b": pytest.approx(0.021),
        }
        assert summary.by_tool == {"tool_a": pytest.approx(0.0105)}
        assert set(summary.by_model) == {SONNET}
        recent = t.get_summary(start=datetime.fromtimestamp(WALL0 - 3600, timezone.utc))
        assert recent.total_input_tokens == 2000 and recent.record_count == 1
        assert t.get_summary(user_id="user_a").total_input_tokens == 1000
        assert summary.to_dict()["total_tokens"] == 4500

    def test_user_and_org_spend(self) -> None:
        t, _ = tracker()
        for i in range(3):
            t.record_usage(SONNET, 1000, 500, user_id=f"user_{i}")
        assert t.get_user_spend("user_1", timedelta(days=1)) == pytest.approx(0.0105)
        assert t.get_user_spend("nobody", timedelta(days=1)) == 0.0
        assert t.get_org_spend(timedelta(days=1)) == pytest.approx(0.0315)

    def test_listeners(self, caplog: pytest.LogCaptureFixture) -> None:
        t, _ = tracker()
        seen: list[UsageRecord] = []

        def boom(record: UsageRecord) -> None:
            raise RuntimeError("listener bug")

        t.add_listener(seen.append)
        t.add_listener(boom)
        with caplog.at_level(logging.ERROR):
            record = t.record_usage(SONNET, 10, 10)
        assert seen == [record]
        assert "cost tracker listener failed" in caplog.text
        t.remove_listener(seen.append)
        t.record_usage(SONNET, 10, 10)
        assert len(seen) == 1


class TestBudgets:
    def test_no_policy(self) -> None:
        t, _ = tracker()
        assert t.check_budget("user_123", estimated_cost=1000.0) == (True, None)
        status = t.get_budget_status("user_123")
        assert status["policy_active"] is False
        assert t.get_budget_policy() is None

    def test_per_request(self) -> None:
        t, _ = tracker(budget_policy=BudgetPolicy(max_cost_per_request=0.01))
        assert t.check_budget("u1", estimated_cost=0.005) == (True, None)
        assert t.check_budget("u1", estimated_cost=0.05) == (
            False,
            "Estimated cost $0.0500 exceeds the per-request limit $0.0100",
        )

    def test_tokens(self) -> None:
        t, _ = tracker(budget_policy=BudgetPolicy(max_tokens_per_request=5000))
        assert t.check_budget("u1", estimated_tokens=1000) == (True, None)
        assert t.check_budget("u1", estimated_tokens=10000) == (
            False,
            "Estimated tokens 10000 exceed the per-request token limit 5000",
        )

    def test_hourly_daily_and_org_windows(self) -> None:
        policy = BudgetPolicy(
            max_cost_per_user_per_hour=0.05,
            max_cost_per_user_per_day=0.1,
            max_cost_per_day=0.15,
        )
        t, clock = tracker(budget_policy=policy, pricing={"m": ModelPricing("M", 0.01, 0.0)})
        t.record_usage("m", 4000, 0, user_id="u1")  # $0.04 at t=0
        assert t.check_budget("u1", 0.01) == (True, None)
        assert t.check_budget("u1", 0.02) == (
            False,
            "Hourly budget of user 'u1' exceeded: $0.0400 spent + $0.0200 > $0.0500",
        )
        clock.now = 3600.0
        assert t.check_budget("u1", 0.02) == (True, None)
        t.record_usage("m", 5000, 0, user_id="u1")  # $0.05, day total 0.09
        clock.now = 7200.0
        assert t.check_budget("u1", 0.02) == (
            False,
            "Daily budget of user 'u1' exceeded: $0.0900 spent + $0.0200 > $0.1000",
        )
        t.record_usage("m", 5000, 0, user_id="u2")  # org total 0.14
        assert t.check_budget("u3", 0.02) == (
            False,
            "Daily organisation budget exceeded: $0.1400 spent + $0.0200 > $0.1500",
        )
        clock.now = 86400.0  # the first usage leaves the day windows
        assert t.check_budget("u3", 0.02) == (True, None)
        status = t.get_budget_status("u1")
        assert status["policy_active"] is True
        assert status["hourly"] == {
            "limit": 0.05,
            "spent": 0.0,
            "remaining": 0.05,
            "percent_used": 0.0,
            "alert": False,
        }
        assert status["daily"]["spent"] == pytest.approx(0.05)
        assert status["daily"]["alert"] is False
        assert status["org_daily"]["spent"] == pytest.approx(0.10)

    def test_past_usage_lands_in_the_right_windows(self) -> None:
        policy = BudgetPolicy(max_cost_per_user_per_hour=1.0, max_cost_per_user_per_day=1.0)
        t, clock = tracker(budget_policy=policy, pricing={"m": ModelPricing("M", 1.0, 0.0)})
        clock.now = 10_000.0
        two_hours_ago = datetime.fromtimestamp(WALL0 + 10_000.0 - 7200, timezone.utc)
        t.record_usage("m", 900, 0, user_id="u1", timestamp=two_hours_ago)
        status = t.get_budget_status("u1")
        assert status["hourly_spend"] == 0.0
        assert status["daily_spend"] == pytest.approx(0.9)
        assert t.check_budget("u1", 0.2)[0] is False
        too_old = datetime.fromtimestamp(WALL0 - 200_000, timezone.utc)
        t.record_usage("m", 900, 0, user_id="u2", timestamp=too_old)
        assert t.get_budget_status("u2")["daily_spend"] == 0.0

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_cost_per_request": -1.0},
            {"max_cost_per_user_per_day": math.nan},
            {"max_tokens_per_request": -5},
            {"max_tokens_per_request": 1.5},
            {"alert_threshold": 0.0},
            {"alert_threshold": 2.0},
        ],
    )
    def test_bad_policy(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises((TypeError, ValueError)):
            BudgetPolicy(**kwargs)

    def test_bad_check_arguments(self) -> None:
        t, _ = tracker(budget_policy=BudgetPolicy(max_cost_per_request=1.0))
        with pytest.raises(ValueError):
            t.check_budget("u1", estimated_cost=math.nan)
        with pytest.raises(ValueError):
            t.check_budget("u1", estimated_cost=-1.0)
        with pytest.raises(ValueError):
            t.check_budget("u1", estimated_tokens=-1)
        with pytest.raises(ValueError):
            t.check_budget("", estimated_cost=0.1)

    def test_factory_and_policy_setter(self) -> None:
        t = create_cost_tracker(
            budget_policy=BudgetPolicy(max_cost_per_request=1.0),
            custom_pricing={"mine": ModelPricing("Mine", 0.01, 0.02)},
        )
        assert t.get_budget_policy() == BudgetPolicy(max_cost_per_request=1.0)
        assert t.get_pricing("mine") is not None
        assert t.get_pricing(SONNET) is not None
        t.set_budget_policy(None)
        assert t.check_budget("u1", 5.0) == (True, None)
        with pytest.raises(TypeError):
            t.set_budget_policy("strict")  # type: ignore[arg-type]


def test_concurrent_recording_is_consistent() -> None:
    policy = BudgetPolicy(max_cost_per_user_per_day=1000.0)
    t, _ = tracker(budget_policy=policy, pricing={"m": ModelPricing("M", 0.01, 0.0)})

    def work(user: str) -> None:
        for _ in range(50):
            t.record_usage("m", 1000, 0, user_id=user)
            t.check_budget(user, 0.01)

    threads = [threading.Thread(target=work, args=(f"u{i}",)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(t.get_records()) == 300
    assert t.get_budget_status("u3")["daily_spend"] == pytest.approx(0.5)
    assert t.get_budget_status("u3")["org_daily_spend"] == pytest.approx(3.0)
