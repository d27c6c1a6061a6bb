"""The keyed GCRA engine (``GcraLimiter``) on both backends, and their agreement."""

from __future__ import annotations

import math
import threading
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion import _core, _reference
from proxilion._limit_errors import KeyTableFullError
from proxilion.exceptions import RateLimitExceeded

S = 1_000_000_000


def test_starts_full_and_refills_exactly(impl: ModuleType) -> None:
    g = impl.GcraLimiter(100, 600_000_000)  # 100 per 60 s
    assert (g.capacity, g.interval_ns, g.max_keys) == (100, 600_000_000, 1_000_000)
    assert g.remaining("alice", now=10.0) == 100
    assert [g.acquire("alice", now=10.0) for _ in range(101)] == [True] * 100 + [False]
    assert g.remaining("alice", now=10.0) == 0
    assert g.retry_after("alice", now=10.0) == 0.6
    assert g.retry_after("alice", 2, now=10.0) == 1.2
    # One nanosecond early is still too early; on time passes exactly one call.
    assert g.acquire("alice", now=10.599999999) is False
    assert g.acquire("alice", now=10.6) is True
    assert g.acquire("alice", now=10.6) is False
    # Other keys are independent.
    assert g.acquire("bob", now=10.0) is True
    assert g.remaining("bob", now=10.0) == 99
    # A full window later the bucket is full again.
    assert g.remaining("alice", now=71.0) == 100


def test_cost_and_capacity(impl: ModuleType) -> None:
    g = impl.GcraLimiter(5, S)
    assert g.acquire("k", 5, now=0.0) is True
    assert g.acquire("k", 1, now=0.0) is False
    assert g.acquire("k", 2, now=2.0) is True
    assert g.remaining("k", now=2.0) == 0
    # More than the capacity can never pass and says so.
    assert g.acquire("fresh", 6, now=0.0) is False
    assert g.retry_after("fresh", 6, now=0.0) == math.inf
    assert len(g) == 1, "a refused unknown key leaves no entry"
    assert g.retry_after("fresh", 5, now=0.0) == 0.0


def test_refund_reset_evict(impl: ModuleType) -> None:
    g = impl.GcraLimiter(3, S)
    assert g.acquire("a", 3, now=5.0)
    g.refund("a", 2)
    assert g.remaining("a", now=5.0) == 2
    g.refund("missing", 1)
    assert g.reset("a") is True
    assert g.reset("a") is False
    assert g.remaining("a", now=5.0) == 3
    assert g.acquire("x", now=5.0) and g.acquire("y", 3, now=5.0)
    assert g.evict(now=5.5) == 0
    assert g.evict(now=6.0) == 1  # x is full again, y is not
    assert len(g) == 1
    g.reset_all()
    assert len(g) == 0


def test_clock_injection_and_default_clock(impl: ModuleType) -> None:
    t = [100.0]
    g = impl.GcraLimiter(1, S, clock=lambda: t[0])
    assert g.acquire("k") is True
    assert g.acquire("k") is False
    assert g.retry_after("k") == 1.0
    t[0] = 101.0
    assert g.acquire("k") is True
    # The engine's own monotonic clock.
    d = impl.GcraLimiter(2, 3600 * S)
    assert [d.acquire("k") for _ in range(3)] == [True, True, False]
    assert 3599.0 < d.retry_after("k") <= 3600.0


def test_long_keys_are_digested_and_distinct(impl: ModuleType) -> None:
    g = impl.GcraLimiter(1, S)
    k1, k2 = "x" * 1000, "x" * 999 + "y"
    assert g.acquire(k1, now=0.0) and not g.acquire(k1, now=0.0)
    assert g.acquire(k2, now=0.0)
    assert g.acquire("x" * 64, now=0.0) and g.acquire("x" * 65, now=0.0)
    assert g.acquire("é" * 40, now=0.0)  # 80 bytes of UTF-8
    assert not g.acquire("é" * 40, now=0.0)
    assert len(g) == 5


def test_key_table_cap_fails_closed(impl: ModuleType) -> None:
    g = impl.GcraLimiter(1, S, max_keys=3)
    for k in "abc":
        assert g.acquire(k, now=0.0)
    with pytest.raises(KeyTableFullError) as ei:
        g.acquire("attacker-1", now=0.25)
    e = ei.value
    assert isinstance(e, RateLimitExceeded)
    assert (e.limit_type, e.limit_key, e.limit_value, e.max_keys) == (
        "key_table_full",
        "attacker-1",
        3,
        3,
    )
    assert e.retry_after == 0.75
    assert str(e).startswith(
        "rate limiter key table is full (3 keys still refilling); new key refused. "
        "Retry after 0.8 seconds | Details: "
    )
    # Known keys keep working and are judged on their own merits.
    assert g.acquire("a", now=0.5) is False
    assert g.acquire("a", now=1.0) is True
    # Refilled buckets are evicted to make room.
    assert g.acquire("new", now=1.0) is True
    assert len(g) <= 3


@pytest.mark.parametrize(
    ("call", "exc", "message"),
    [
        (lambda m: m.GcraLimiter(0, 1), ValueError, "capacity must be greater than 0"),
        (lambda m: m.GcraLimiter(-5, 1), ValueError, "capacity must be greater than 0"),
        (lambda m: m.GcraLimiter(1, 0), ValueError, "interval_ns must be greater than 0"),
        (lambda m: m.GcraLimiter(1, 1, 0), ValueError, "max_keys must be greater than 0"),
        (
            lambda m: m.GcraLimiter(10**10, 10**10),
            ValueError,
            "capacity * interval_ns must be at most 2**62 ns (about 146 years), got "
            "capacity=10000000000, interval_ns=10000000000",
        ),
        (
            lambda m: m.GcraLimiter(1.5, 1),
            TypeError,
            "'float' object cannot be interpreted as an integer",
        ),
        (lambda m: m.GcraLimiter(2**64, 1), OverflowError, "Python int too large"),
        (lambda m: m.GcraLimiter(1, 1, clock=3), TypeError, "clock must be callable, not int"),
        (
            lambda m: m.GcraLimiter(1, 1, clock=lambda: "x").acquire("k"),
            TypeError,
            "clock must return a number of seconds, not str",
        ),
        (lambda m: m.GcraLimiter(1, 1).acquire(1), TypeError, "key must be str, not int"),
        (lambda m: m.GcraLimiter(1, 1).acquire(b"k"), TypeError, "key must be str, not bytes"),
        (
            lambda m: m.GcraLimiter(1, 1).acquire("\ud800"),
            ValueError,
            "key is not valid Unicode text (it contains surrogate code points)",
        ),
        (lambda m: m.GcraLimiter(1, 1).acquire("k", 0), ValueError, "cost must be greater than 0"),
        (
            lambda m: m.GcraLimiter(1, 1).retry_after("k", -1),
            ValueError,
            "cost must be greater than 0",
        ),
        (lambda m: m.GcraLimiter(1, 1).refund("k", 0), ValueError, "cost must be greater than 0"),
        (
            lambda m: m.GcraLimiter(1, 1).acquire("k", 1.0),
            TypeError,
            "'float' object cannot be interpreted as an integer",
        ),
        (
            lambda m: m.GcraLimiter(1, 1).acquire("k", now=float("nan")),
            ValueError,
            "now must be a finite, non-negative number of seconds below 2**62 ns, got nan",
        ),
        (
            lambda m: m.GcraLimiter(1, 1).acquire("k", now=-1),
            ValueError,
            "now must be a finite, non-negative number of seconds below 2**62 ns, got -1.0",
        ),
        (
            lambda m: m.GcraLimiter(1, 1).remaining("k", now=1e10),
            ValueError,
            "now must be a finite, non-negative number of seconds below 2**62 ns, got "
            "10000000000.0",
        ),
        (
            lambda m: m.GcraLimiter(1, 1).acquire("k", now="1"),
            TypeError,
            "must be real number, not str",
        ),
    ],
)
def test_bad_input_named_errors_same_on_both(
    impl: ModuleType, call: object, exc: type[Exception], message: str
) -> None:
    with pytest.raises(exc) as ei:
        call(impl)  # type: ignore[operator]
    assert str(ei.value).startswith(message)


def test_no_over_admission_under_python_threads(impl: ModuleType) -> None:
    g = impl.GcraLimiter(500, 3600 * S)
    admitted = [0] * 8
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        n = 0
        for _ in range(200):
            if g.acquire("shared", now=1.0):
                n += 1
        admitted[i] = n

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(admitted) == 500


# -- differential: native == reference ---------------------------------------------------

_keys = st.sampled_from(["a", "b", "c", "é", "x" * 70, "x" * 69 + "y", ""])
_ops = st.lists(
    st.tuples(
        st.sampled_from(["acquire", "remaining", "retry_after", "refund", "reset"]),
        _keys,
        st.integers(min_value=1, max_value=6),
        st.integers(min_value=0, max_value=3 * S),  # time step in ns
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=5),
    interval=st.integers(min_value=1, max_value=S),
    max_keys=st.integers(min_value=1, max_value=4),
    ops=_ops,
)
def test_native_matches_reference(
    capacity: int, interval: int, max_keys: int, ops: list[tuple[str, str, int, int]]
) -> None:
    n = _core.GcraLimiter(capacity, interval, max_keys)
    r = _reference.GcraLimiter(capacity, interval, max_keys)
    t_ns = 0
    for op, key, cost, step in ops:
        t_ns += step
        now = t_ns / 1e9
        results = []
        for eng in (n, r):
            try:
                if op == "acquire":
                    results.append(eng.acquire(key, cost, now))
                elif op == "remaining":
                    results.append(eng.remaining(key, now))
                elif op == "retry_after":
                    results.append(eng.retry_after(key, cost, now))
                elif op == "refund":
                    results.append(eng.refund(key, cost))
                else:
                    eng.reset(key)
                    results.append(None)
            except KeyTableFullError as e:
                results.append(("full", e.retry_after))
        assert results[0] == results[1], (op, key, cost, now)
