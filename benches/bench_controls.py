"""Sequence, cost and cache checks (pure Python; see docs/controls.md for why).

There is no native twin to compare with, so each check is timed next to a *naive* version
that re-scans the whole history or spend log on every call, the straightforward way to
write these checks. The ratio shows what the incremental bookkeeping buys at a realistic
history size (100 calls, 1,000 spends); absolute times are the figures to report.

Run: ``.venv/bin/python -m pytest benches/bench_controls.py --benchmark-only``
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from datetime import timedelta

import pytest

from proxilion._decorators_controls import cost_limited, sequence_validated
from proxilion.caching import ToolCache
from proxilion.security.cost_limiter import DEFAULT_COST_LIMITS, CostLimit, CostLimiter
from proxilion.security.sequence_validator import (
    DEFAULT_SEQUENCE_RULES,
    SequenceAction,
    SequenceValidator,
)
from proxilion.types import UserContext

HISTORY = [f"list_files_{i % 5}" for i in range(100)]


class NaiveSequence:
    """Checks each rule by scanning the full history (the obvious implementation)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, float]] = []
        self.now = 0.0

    def validate(self, tool: str) -> str | None:
        key = tool.casefold()

        def m(pattern: str, name: str) -> bool:
            return any(fnmatch.fnmatchcase(name, p.casefold()) for p in pattern.split("|"))

        for rule in DEFAULT_SEQUENCE_RULES:
            if not m(rule.target_pattern, key):
                continue
            window = rule.window_seconds
            if rule.action is SequenceAction.FORBID_AFTER:
                assert rule.forbidden_pattern is not None
                for name, ts in self.log:
                    if m(rule.forbidden_pattern, name) and (
                        window is None or ts >= self.now - window
                    ):
                        return rule.name
            elif rule.action is SequenceAction.REQUIRE_BEFORE:
                assert rule.required_pattern is not None
                if not any(m(rule.required_pattern, name) for name, _ in self.log):
                    return rule.name
            elif rule.action is SequenceAction.MAX_CONSECUTIVE:
                run = 0
                for name, _ in reversed(self.log):
                    if name != key:
                        break
                    run += 1
                if run >= rule.max_count:
                    return rule.name
        return None


def validator_with_history() -> SequenceValidator:
    v = SequenceValidator(clock=lambda: 1000.0)
    for name in HISTORY:
        v.record_call(name, "alice")
    return v


@pytest.mark.parametrize("tool", ["get_weather", "send_email"])
@pytest.mark.parametrize("impl", ["proxilion", "naive_scan"])
def test_sequence_check(benchmark: Callable[..., object], impl: str, tool: str) -> None:
    benchmark.group = f"sequence check, default rules, 100-call history: {tool}"
    if impl == "proxilion":
        v = validator_with_history()
        benchmark(v.validate_call, tool, "alice")
        assert v.validate_call(tool, "alice") == (True, None)
    else:
        naive = NaiveSequence()
        naive.log = [(name.casefold(), 1000.0) for name in HISTORY]
        naive.now = 1000.0
        benchmark(naive.validate, tool)
        assert naive.validate(tool) is None


def test_sequence_decorator_call(benchmark: Callable[..., object]) -> None:
    """One ``@sequence_validated`` call: atomic begin, the call, end + record."""
    from proxilion._controls_mixin import ControlsMixin

    class Host(ControlsMixin):
        pass

    host = Host()
    # the defaults minus the repeat limit, which a benchmark loop would trip
    rules = [r for r in DEFAULT_SEQUENCE_RULES if r.action is not SequenceAction.MAX_CONSECUTIVE]
    host._init_controls(sequence_validator=SequenceValidator(rules, include_defaults=False))
    user = UserContext(user_id="alice")

    @sequence_validated(host)
    def get_weather(city: str, user: UserContext | None = None) -> str:
        return city

    benchmark.group = "decorated call"
    benchmark(lambda: get_weather("paris", user=user))


class NaiveSpend:
    """Per-user list of (time, cost), summed per limit on every check."""

    def __init__(self) -> None:
        self.events: list[tuple[float, float]] = []

    def check(self, now: float, cost: float) -> bool:
        for limit in DEFAULT_COST_LIMITS:
            window = limit.window
            spent = sum(c for t, c in self.events if t > now - window)
            if spent + cost > limit.max_cost:
                return False
        return True


@pytest.mark.parametrize("impl", ["proxilion", "naive_scan"])
def test_cost_check(benchmark: Callable[..., object], impl: str) -> None:
    benchmark.group = "cost check, 3 default limits, 1000 spends in the day"
    clock = [0.0]
    if impl == "proxilion":
        limiter = CostLimiter(clock=lambda: clock[0])
        for i in range(1000):
            clock[0] = i * 80.0  # spread over the day
            limiter.record_spend("alice", 0.00004)
        benchmark(limiter.check_limit, "alice", 0.001)
        assert limiter.check_limit("alice", 0.001).allowed is True
    else:
        naive = NaiveSpend()
        naive.events = [(i * 80.0, 0.00004) for i in range(1000)]
        benchmark(naive.check, 80_000.0, 0.001)
        assert naive.check(80_000.0, 0.001) is True


def test_cost_check_and_record(benchmark: Callable[..., object]) -> None:
    benchmark.group = "cost reserve (check_and_record), 3 default limits"
    limiter = CostLimiter(
        [
            *DEFAULT_COST_LIMITS[:2],
            CostLimit(max_cost=1e9, period=timedelta(days=1)),
        ]
    )
    benchmark(limiter.check_and_record, "alice", 0.0)


def test_cost_decorator_call(benchmark: Callable[..., object]) -> None:
    limiter = CostLimiter([CostLimit(max_cost=1e12, name="huge")])
    user = UserContext(user_id="alice")

    @cost_limited(limiter, estimate_cost=0.0)
    def call(user: UserContext | None = None) -> int:
        return 1

    benchmark.group = "decorated call"
    benchmark(lambda: call(user=user))


def test_cache_hit(benchmark: Callable[..., object]) -> None:
    cache = ToolCache()
    args = {"city": "paris", "units": "metric", "days": 3}
    cache.set("get_weather", args, {"temp": 21}, user_id="alice")
    benchmark.group = "tool cache"
    benchmark(cache.get, "get_weather", args, "alice")
