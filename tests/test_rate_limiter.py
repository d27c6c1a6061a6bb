"""proxilion.security.rate_limiter: the original's API and semantics, on the active backend."""

from __future__ import annotations

import math
import threading

import pytest

from proxilion.exceptions import RateLimitExceeded
from proxilion.security import (
    MultiDimensionalRateLimiter,
    RateLimitConfig,
    RateLimiterMiddleware,
    SlidingWindowRateLimiter,
    TokenBucketRateLimiter,
)
from proxilion.security.rate_limiter import KeyTableFullError

pytestmark = pytest.mark.backend


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def test_token_bucket_original_semantics() -> None:
    clock = Clock()
    tb = TokenBucketRateLimiter(capacity=10, refill_rate=2.0, clock=clock)
    assert (tb.capacity, tb.refill_rate, tb.interval_ns) == (10, 2.0, 500_000_000)
    assert tb.get_remaining("u") == 10
    assert all(tb.allow_request("u") for _ in range(10))
    assert tb.allow_request("u") is False
    assert tb.get_remaining("u") == 0
    assert tb.get_retry_after("u") == 0.5
    assert tb.get_retry_after("u", cost=3) == 1.5
    clock.advance(1.0)
    assert tb.get_remaining("u") == 2
    assert tb.allow_request("u", cost=2) is True
    assert tb.allow_request("u", cost=1) is False
    assert tb.get_retry_after("u", cost=11) == math.inf
    tb.reset("u")
    assert tb.get_remaining("u") == 10
    assert tb.allow_request("v", 10) is True
    tb.reset_all()
    assert tb.get_remaining("v") == 10


def test_token_bucket_validation() -> None:
    for cap in (0, -1):
        with pytest.raises(ValueError, match=r"^capacity must be greater than 0$"):
            TokenBucketRateLimiter(cap, 1.0)
    for rate in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=r"^refill_rate must be greater than 0$"):
            TokenBucketRateLimiter(1, rate)
    with pytest.raises(ValueError, match="refill_rate must be finite"):
        TokenBucketRateLimiter(1, float("inf"))
    with pytest.raises(ValueError, match="refill_rate is too small"):
        TokenBucketRateLimiter(1, 1e-300)
    with pytest.raises(TypeError, match="capacity must be an int, not float"):
        TokenBucketRateLimiter(1.5, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="capacity must be an int, not bool"):
        TokenBucketRateLimiter(True, 1.0)
    tb = TokenBucketRateLimiter(1, 1.0)
    with pytest.raises(ValueError, match=r"^cost must be greater than 0$"):
        tb.allow_request("k", 0)
    with pytest.raises(TypeError, match="key must be str, not int"):
        tb.allow_request(5)  # type: ignore[arg-type]


def test_refill_interval_rounds_up_never_over_admits() -> None:
    clock = Clock(0.0)
    tb = TokenBucketRateLimiter(1, 3.0, clock=clock)  # 333,333,333.3 ns -> 333,333,334
    assert tb.interval_ns == 333_333_334
    assert tb.allow_request("k")
    clock.t = 0.333333333
    assert tb.allow_request("k") is False
    clock.t = 0.333333334
    assert tb.allow_request("k") is True


def test_from_window_seed_semantics() -> None:
    clock = Clock(50.0)
    tb = TokenBucketRateLimiter.from_window(100, 60, clock=clock)
    assert (tb.capacity, tb.interval_ns) == (100, 600_000_000)
    assert math.isclose(tb.refill_rate, 100 / 60)
    assert sum(tb.allow_request("u") for _ in range(150)) == 100
    assert tb.get_retry_after("u") == 0.6
    # Over 60 more seconds, exactly 100 more calls (one per 0.6 s).
    admitted = 0
    for i in range(1, 601):
        clock.t = 50.0 + i / 10
        admitted += tb.allow_request("u")
    assert admitted == 100


def test_cleanup_drops_only_refilled_buckets() -> None:
    clock = Clock()
    tb = TokenBucketRateLimiter(2, 1.0, clock=clock)
    tb.allow_request("a")
    tb.allow_request("b", 2)
    clock.advance(1.0)
    assert tb.cleanup() == 1
    assert len(tb) == 1
    assert tb.get_remaining("b") == 1
    with pytest.raises(ValueError):
        tb.cleanup(-1)


def test_key_cap_refuses_new_keys_with_rate_limit_error() -> None:
    clock = Clock()
    tb = TokenBucketRateLimiter(1, 0.001, max_keys=100, clock=clock)
    for i in range(100):
        assert tb.allow_request(f"user-{i}")
    with pytest.raises(RateLimitExceeded) as ei:
        tb.allow_request("user-spray")
    assert isinstance(ei.value, KeyTableFullError)
    assert ei.value.retry_after == 1000.0
    assert len(tb) == 100


def test_allow_request_is_the_engine_call_unless_overridden() -> None:
    tb = TokenBucketRateLimiter(1, 1.0)
    assert tb.allow_request == tb.engine.acquire

    class Counting(TokenBucketRateLimiter):
        calls = 0

        def allow_request(self, key: str, cost: int = 1) -> bool:
            Counting.calls += 1
            return super().allow_request(key, cost)

    c = Counting(1, 1.0)
    assert c.allow_request("k") and not c.allow_request("k")
    assert Counting.calls == 2


def test_token_bucket_threads_never_over_admit() -> None:
    tb = TokenBucketRateLimiter(300, 0.0001)
    counts = [0] * 6
    barrier = threading.Barrier(6)

    def work(i: int) -> None:
        barrier.wait()
        counts[i] = sum(tb.allow_request("hot") for _ in range(100))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 300


def test_sliding_window_exact() -> None:
    clock = Clock(0.0)
    sw = SlidingWindowRateLimiter(max_requests=3, window_seconds=10.0, clock=clock)
    assert sw.allow_request("k")
    clock.t = 1.0
    assert sw.allow_request("k", 2)
    assert sw.allow_request("k") is False
    assert sw.get_remaining("k") == 0
    assert sw.get_retry_after("k") == 9.0
    clock.t = 5.0
    assert sw.get_retry_after("k") == 5.0
    assert sw.get_retry_after("k", 3) == 6.0
    assert sw.get_retry_after("k", 4) == math.inf
    clock.t = 9.999
    assert sw.allow_request("k") is False
    clock.t = 10.0  # the first request (t=0) leaves the window
    assert sw.get_remaining("k") == 1
    assert sw.allow_request("k") is True
    assert sw.allow_request("k") is False
    clock.t = 11.0
    assert sw.get_remaining("k") == 2
    clock.t = 20.0
    assert sw.get_remaining("k") == 3
    assert sw.cleanup() == 1
    assert len(sw) == 0
    sw.allow_request("a")
    sw.reset("a")
    assert sw.get_remaining("a") == 3
    sw.allow_request("b")
    sw.reset_all()
    assert len(sw) == 0


def test_sliding_window_never_more_than_n_in_any_window() -> None:
    clock = Clock(0.0)
    sw = SlidingWindowRateLimiter(5, 1.0, clock=clock)
    admitted: list[float] = []
    for i in range(400):
        clock.t = i * 0.037
        if sw.allow_request("k"):
            admitted.append(clock.t)
    for j, t in enumerate(admitted):
        in_window = [u for u in admitted[j:] if u < t + 1.0]
        assert len(in_window) <= 5
    assert len(admitted) > 5 * 14


def test_sliding_window_validation_and_cap() -> None:
    with pytest.raises(ValueError, match="max_requests must be greater than 0"):
        SlidingWindowRateLimiter(0, 1.0)
    with pytest.raises(ValueError, match="window_seconds must be greater than 0"):
        SlidingWindowRateLimiter(1, 0)
    clock = Clock(0.0)
    sw = SlidingWindowRateLimiter(1, 10.0, max_keys=2, clock=clock)
    assert sw.allow_request("a") and sw.allow_request("b")
    with pytest.raises(KeyTableFullError) as ei:
        sw.allow_request("c")
    assert ei.value.retry_after == 10.0
    clock.t = 10.0
    assert sw.allow_request("c") is True


def test_multi_dimensional_all_or_nothing() -> None:
    clock = Clock()
    md = MultiDimensionalRateLimiter(
        {
            "user": RateLimitConfig(capacity=5, refill_rate=1.0),
            "tool": RateLimitConfig(capacity=2, refill_rate=1.0),
        },
        clock=clock,
    )
    keys = {"user": "alice", "tool": "alice:search"}
    assert md.allow_request(keys) and md.allow_request(keys)
    assert md.allow_request(keys) is False
    # The refused request took nothing from the user dimension.
    assert md.get_most_restrictive(keys) == ("tool", 0)
    assert md.limiters["user"].get_remaining("alice") == 3
    # Unknown dimensions are ignored; missing configured ones are not checked.
    assert md.allow_request({"user": "alice", "nope": "x"}) is True
    assert md.allow_request({"user": "alice"}, costs={"user": 2}) is True
    assert md.allow_request({"user": "alice"}) is False
    with pytest.raises(ValueError, match="no configured rate-limit dimension"):
        md.get_most_restrictive({"nope": "x"})
    assert set(md.limits) == {"user", "tool"}


def test_multi_dimensional_sliding_window() -> None:
    clock = Clock(0.0)
    md = MultiDimensionalRateLimiter(
        {
            "a": RateLimitConfig(capacity=2, refill_rate=1.0, window_seconds=5.0),
            "b": RateLimitConfig(capacity=1, refill_rate=1.0, window_seconds=5.0),
        },
        use_sliding_window=True,
        clock=clock,
    )
    assert isinstance(md.limiters["a"], SlidingWindowRateLimiter)
    assert md.allow_request({"a": "k", "b": "k"}) is True
    assert md.allow_request({"a": "k", "b": "k"}) is False
    assert md.limiters["a"].get_remaining("k") == 1


def test_middleware_order_errors_and_refund() -> None:
    clock = Clock()
    glob = TokenBucketRateLimiter(100, 1.0, clock=clock)
    user = TokenBucketRateLimiter(3, 1.0, clock=clock)
    tool = TokenBucketRateLimiter(1, 1.0, clock=clock)
    mw = RateLimiterMiddleware(user_limit=user, tool_limits={"search": tool}, global_limit=glob)
    mw.check_rate_limit("alice", "search")
    with pytest.raises(RateLimitExceeded) as ei:
        mw.check_rate_limit("alice", "search")
    e = ei.value
    assert (e.limit_type, e.limit_key, e.limit_value, e.user_id, e.limit) == (
        "tool",
        "alice:search",
        1,
        "alice",
        1,
    )
    assert e.retry_after == 1.0 and e.current_count == 1
    # Tokens taken from global and user for the refused call were given back.
    assert glob.get_remaining("global") == 99
    assert user.get_remaining("alice") == 2
    mw.check_rate_limit("alice", "other")
    mw.check_rate_limit("alice", "other")
    with pytest.raises(RateLimitExceeded) as ei:
        mw.check_rate_limit("alice", "other")
    assert ei.value.limit_type == "user"
    assert mw.get_headers("alice", "other") == {
        "X-RateLimit-Limit": "3",
        "X-RateLimit-Remaining": "0",
    }
    assert RateLimiterMiddleware().get_headers("a", "b") == {}
    g1 = RateLimiterMiddleware(global_limit=TokenBucketRateLimiter(1, 1.0, clock=clock))
    g1.check_rate_limit("x", "t")
    with pytest.raises(RateLimitExceeded, match="Rate limit exceeded for global"):
        g1.check_rate_limit("y", "t")
