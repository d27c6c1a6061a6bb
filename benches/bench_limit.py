"""Rate limits, circuit breaker, decorators: native vs reference in one run, and vs the
original's figures (API.md section 14) as ratios.

Groups (compare within a group):
  limit_1key / limit_10k_keys / limit_denied   GcraLimiter.acquire, native vs reference
  limit_clock          native: Rust reads the clock vs `now=time.monotonic()` from Python
  limit_public         TokenBucketRateLimiter.allow_request (active backend) vs a plain
                       Python method call, and vs the original's 1.48 us
  limit_threads        total checks/s of 4 threads on one key vs 1 thread (same total work)
  limit_memory         RSS per key at 1M keys (native) / 200k keys (reference)
  limit_decorators     @rate_limited, @circuit_protected, CircuitBreaker.call vs a bare call
  limit_redis          Redis check latency on loopback (p50/p99), if PROXILION_REDIS_URL is set

Run: .venv/bin/python -m pytest benches/bench_limit.py --benchmark-only -s
"""

from __future__ import annotations

import gc
import os
import statistics
import threading
import time
from types import ModuleType
from typing import Any

import pytest

from proxilion._decorators_limits import circuit_protected, rate_limited
from proxilion.security import CircuitBreaker, TokenBucketRateLimiter

# The original's figures (API.md section 14), in seconds.
ORIGINAL = {
    "1key": 1.48e-6,
    "10k_keys": 1.49e-6,
    "denied": 1.29e-6,
    "rate_limited": 1.75e-6,
    "circuit_protected": 1.66e-6,
    "breaker_call": 1.09e-6,
}
BIG = 10**9  # a bucket that never runs dry during a benchmark (1 ns per token)


def _report(benchmark: Any, key: str) -> None:
    # Medians: this machine is shared, means are skewed by other load.
    mean = benchmark.stats.stats.median
    if key in ORIGINAL:
        benchmark.extra_info["original_s"] = ORIGINAL[key]
        benchmark.extra_info["speedup_vs_original"] = round(ORIGINAL[key] / mean, 1)
        print(
            f"\n[{key}] {mean * 1e9:.0f} ns; original {ORIGINAL[key] * 1e9:.0f} ns "
            f"-> {ORIGINAL[key] / mean:.1f}x"
        )


@pytest.mark.benchmark(group="limit_1key")
def test_acquire_one_key(benchmark: Any, impl: ModuleType) -> None:
    g = impl.GcraLimiter(BIG, 1)
    assert benchmark(g.acquire, "user-1") is True
    if impl.__name__.endswith("_core"):
        _report(benchmark, "1key")


@pytest.mark.benchmark(group="limit_10k_keys")
def test_acquire_10k_keys(benchmark: Any, impl: ModuleType) -> None:
    g = impl.GcraLimiter(BIG, 1)
    keys = [f"user-{i}" for i in range(10_000)]
    acquire = g.acquire

    def run() -> None:
        for k in keys:
            acquire(k)

    benchmark(run)
    per = benchmark.stats.stats.median / len(keys)
    benchmark.extra_info["per_check_s"] = per
    print(
        f"\n[10k_keys {impl.__name__}] {per * 1e9:.0f} ns/check"
        f" (original {ORIGINAL['10k_keys'] * 1e9:.0f} ns)"
    )


@pytest.mark.benchmark(group="limit_denied")
def test_acquire_denied(benchmark: Any, impl: ModuleType) -> None:
    g = impl.GcraLimiter(1, 3600 * 10**9)
    g.acquire("user-1")
    assert benchmark(g.acquire, "user-1") is False
    if impl.__name__.endswith("_core"):
        _report(benchmark, "denied")


@pytest.mark.benchmark(group="limit_clock")
@pytest.mark.parametrize("clock", ["rust", "python_now"])
def test_clock_source(benchmark: Any, clock: str) -> None:
    from proxilion import _core

    g = _core.GcraLimiter(BIG, 1)
    if clock == "rust":
        benchmark(g.acquire, "user-1")
    else:
        mono = time.monotonic
        acquire = g.acquire
        benchmark(lambda: acquire("user-1", 1, mono()))


class _Plain:
    def allow_request(self, key: str, cost: int = 1) -> bool:
        return True


@pytest.mark.benchmark(group="limit_public")
@pytest.mark.parametrize("what", ["TokenBucketRateLimiter", "plain_python_method"])
def test_public_allow_request(benchmark: Any, what: str) -> None:
    obj: Any = TokenBucketRateLimiter(BIG, 1e9) if what != "plain_python_method" else _Plain()
    assert benchmark(obj.allow_request, "user-1") is True
    if what == "TokenBucketRateLimiter":
        _report(benchmark, "1key")


@pytest.mark.benchmark(group="limit_threads")
@pytest.mark.parametrize("threads", [1, 4])
def test_threads_one_key(benchmark: Any, impl: ModuleType, threads: int) -> None:
    total = 40_000
    per = total // threads

    def run() -> int:
        g = impl.GcraLimiter(total // 2, 3600 * 10**9)  # half the checks pass, half refused
        counts = [0] * threads
        barrier = threading.Barrier(threads)

        def work(i: int) -> None:
            barrier.wait()
            acquire = g.acquire
            counts[i] = sum(1 for _ in range(per) if acquire("hot"))

        ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return sum(counts)

    admitted = benchmark.pedantic(run, rounds=5, iterations=1)
    assert admitted == total // 2, "never over-admits under any thread count"
    rate = total / benchmark.stats.stats.median
    benchmark.extra_info["checks_per_s"] = round(rate)
    print(f"\n[threads={threads} {impl.__name__}] {rate / 1e6:.2f} M checks/s total")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.benchmark(group="limit_memory")
def test_memory_per_key(benchmark: Any, impl: ModuleType) -> None:
    n = 1_000_000 if impl.__name__.endswith("_core") else 200_000
    keys = [f"user-{i:08d}" for i in range(n)]
    result: dict[str, float] = {}

    def run() -> None:
        gc.collect()
        before = _rss()
        g = impl.GcraLimiter(10, 3600 * 10**9, max_keys=2 * n)
        acquire = g.acquire
        for k in keys:
            acquire(k, 1, 1.0)
        assert len(g) == n
        result["per_key"] = (_rss() - before) / n
        del g

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["bytes_per_key"] = round(result["per_key"], 1)
    print(f"\n[memory {impl.__name__}] {result['per_key']:.0f} bytes/key at {n} keys")


def _bare(user: Any = None) -> int:
    return 1


@pytest.mark.benchmark(group="limit_decorators")
@pytest.mark.parametrize("what", ["bare", "rate_limited", "circuit_protected", "breaker_call"])
def test_decorator_overhead(benchmark: Any, what: str) -> None:
    if what == "bare":
        fn: Any = _bare
    elif what == "rate_limited":
        fn = rate_limited(capacity=BIG, refill_rate=1e9)(_bare)
    elif what == "circuit_protected":
        fn = circuit_protected()(_bare)
    else:
        cb = CircuitBreaker()
        fn = lambda: cb.call(_bare)  # noqa: E731
    assert benchmark(fn) == 1
    _report(benchmark, what)


@pytest.mark.benchmark(group="limit_redis")
def test_redis_check_latency(benchmark: Any) -> None:
    url = os.environ.get("PROXILION_REDIS_URL")
    if not url:
        pytest.skip("PROXILION_REDIS_URL unset")
    from proxilion.security.redis_backend import RedisBackend

    backend = RedisBackend(url, prefix=f"proxilion-bench:{os.getpid()}:")
    tb = TokenBucketRateLimiter(BIG, 1e9, backend=backend, name="bench")
    allow = tb.allow_request
    for _ in range(200):
        allow("user-1")
    samples = []
    for _ in range(3000):
        t0 = time.perf_counter()
        allow("user-1")
        samples.append(time.perf_counter() - t0)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99)]
    benchmark.extra_info.update({"p50_s": p50, "p99_s": p99})
    print(f"\n[redis] p50 {p50 * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us per check (loopback)")
    assert benchmark(allow, "user-1") is True
    tb.reset_all()
