"""Shared state through a real Redis: rate limits and the kill switch across processes.

Needs ``PROXILION_REDIS_URL`` (``scripts/dev.sh test`` starts a private redis-server on
127.0.0.1 and exports it). Without it these tests skip locally and FAIL under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing as mp
import os
import socket
import time
import uuid
from typing import Any

import pytest

from proxilion._decorators_limits import rate_limited
from proxilion.exceptions import EmergencyHaltError, RateLimitExceeded
from proxilion.security import KillSwitch, TokenBucketRateLimiter
from proxilion.security.rate_limiter import RateLimitBackendError
from proxilion.security.redis_backend import RedisBackend

pytestmark = pytest.mark.redis

WORKERS = 4
DEADLINE = 30.0  # seconds; every multi-process wait is bounded by this


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("PROXILION_REDIS_URL")
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PROXILION_REDIS_URL is unset under CI=true: the redis tests must run")
        pytest.skip("PROXILION_REDIS_URL unset (scripts/dev.sh test starts a redis-server)")
    return url


@pytest.fixture
def prefix() -> str:
    return f"proxilion-test:{uuid.uuid4().hex}:"


@pytest.fixture
def down_url() -> str:
    """A 127.0.0.1 URL where nothing listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"redis://127.0.0.1:{port}/0"


def test_shared_token_bucket_semantics(redis_url: str, prefix: str) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    assert backend.ping() is True
    assert "password" not in repr(backend)
    tb = TokenBucketRateLimiter(5, 0.01, backend=backend, name="api")  # one token per 100 s
    assert tb.get_remaining("alice") == 5
    assert [tb.allow_request("alice") for _ in range(6)] == [True] * 5 + [False]
    assert tb.get_remaining("alice") == 0
    assert 99.0 < tb.get_retry_after("alice") <= 100.0
    assert 199.0 < tb.get_retry_after("alice", 2) <= 200.0
    assert tb.get_retry_after("alice", 6) == math.inf
    assert tb.allow_request("bob", 6) is False
    assert tb.allow_request("bob", 5) is True
    tb.refund("bob", 2)
    assert tb.get_remaining("bob") == 2
    long_key = "k" * 500
    assert tb.allow_request(long_key, 5) and not tb.allow_request(long_key)
    assert len(tb) == 3
    # Another limiter object with the same backend and name shares the buckets.
    twin = TokenBucketRateLimiter(
        5, 0.01, backend=RedisBackend(redis_url, prefix=prefix), name="api"
    )
    assert twin.allow_request("alice") is False
    tb.reset("alice")
    assert twin.allow_request("alice") is True
    tb.reset_all()
    assert len(tb) == 0
    with pytest.raises(ValueError, match="cost must be greater than 0"):
        tb.allow_request("x", 0)
    # Idle buckets expire in Redis by themselves once refilled.
    fast = TokenBucketRateLimiter(1, 1000.0, backend=backend, name="fast")
    assert fast.allow_request("z")
    ttl = backend.client.pttl(f"{prefix}gcra:fast:z")
    assert 0 < ttl <= 1002


def test_seed_decorator_shared_through_redis(redis_url: str, prefix: str) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)

    @rate_limited(
        max_calls=3, window_seconds=60, key_func=lambda user: user.user_id, backend=backend
    )
    async def op(user: Any) -> None:
        pass

    class U:
        user_id = "u1"

    async def run() -> None:
        for _ in range(3):
            await op(user=U())
        with pytest.raises(RateLimitExceeded) as ei:
            await op(user=U())
        assert ei.value.retry_after is not None and 19.0 < ei.value.retry_after <= 20.0

    asyncio.run(run())
    assert op.rate_limiter.engine.name.startswith("fn:")  # type: ignore[attr-defined]


def _limit_worker(url: str, prefix: str, barrier: Any, attempts: int, out: Any, index: int) -> None:
    tb = TokenBucketRateLimiter(50, 0.001, backend=RedisBackend(url, prefix=prefix), name="mp")
    barrier.wait(DEADLINE)
    out[index] = sum(tb.allow_request("shared-key") for _ in range(attempts))


def test_processes_together_never_exceed_the_limit(redis_url: str, prefix: str) -> None:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    out = ctx.Array("i", [-1] * WORKERS)
    procs = [
        ctx.Process(target=_limit_worker, args=(redis_url, prefix, barrier, 40, out, i))
        for i in range(WORKERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(DEADLINE)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    # 4 x 40 attempts on a bucket of 50: exactly 50 admitted in total, however interleaved.
    assert sum(out) == 50, list(out)
    assert all(0 <= n <= 40 for n in out)


def _halt_worker(url: str, prefix: str, ready: Any, results: Any) -> None:
    ks = KillSwitch(backend=RedisBackend(url, prefix=prefix, kill_switch_poll=60.0), name="fleet")
    assert ks._link is not None
    ks._link.wait_subscribed(DEADLINE)
    assert ks.is_active is False
    ready.put(os.getpid())
    halted = ks.wait(DEADLINE)
    try:
        ks.check()
        raised = ""
    except EmergencyHaltError as e:
        raised = e.reason
    results.put(("halted", halted, raised, ks.triggered_by))
    # Then the manual override from the other process.
    deadline = time.monotonic() + DEADLINE
    while ks.is_active and time.monotonic() < deadline:
        time.sleep(0.005)
    results.put(("reset", ks.is_active))
    ks.close()


def test_kill_switch_in_one_process_halts_the_others(redis_url: str, prefix: str) -> None:
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    procs = [
        ctx.Process(target=_halt_worker, args=(redis_url, prefix, ready, results)) for _ in range(3)
    ]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=DEADLINE)
        main = KillSwitch(backend=RedisBackend(redis_url, prefix=prefix), name="fleet")
        with pytest.raises(EmergencyHaltError):
            main.activate("runaway agent fleet-wide", triggered_by="ops")
        halted = [results.get(timeout=DEADLINE) for _ in procs]
        assert main.reset() is True
        after = [results.get(timeout=DEADLINE) for _ in procs]
    finally:
        for p in procs:
            p.join(DEADLINE)
            if p.is_alive():
                p.kill()
    assert halted == [("halted", True, "runaway agent fleet-wide", "ops")] * 3
    assert after == [("reset", False)] * 3
    assert all(p.exitcode == 0 for p in procs)
    main.close()


def test_late_replica_starts_halted_and_halt_outlives_outage(redis_url: str, prefix: str) -> None:
    a = KillSwitch(backend=RedisBackend(redis_url, prefix=prefix), name="late")
    a.activate("halted before b started", raise_exception=False)
    halts: list[str] = []
    b = KillSwitch(backend=RedisBackend(redis_url, prefix=prefix), name="late")
    b.on_halt(halts.append)
    assert b.is_active is True
    assert b.reason == "halted before b started"
    with pytest.raises(EmergencyHaltError):
        b.check()
    # A different name is a different switch.
    c = KillSwitch(backend=RedisBackend(redis_url, prefix=prefix), name="other")
    assert c.is_active is False
    # Reset from b is the manual override for all of them.
    assert b.reset() is True
    assert _wait_until(lambda: not a.is_active)
    for ks in (a, b, c):
        ks.close()
    assert halts == ["halted before b started"]


def _wait_until(pred: Any) -> bool:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.005)
    return False


def test_limiter_fails_closed_when_redis_is_down(
    down_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RedisBackend(down_url, timeout=0.2)
    assert backend.ping() is False
    tb = TokenBucketRateLimiter(100, 10.0, backend=backend, name="x")
    with caplog.at_level(logging.ERROR, logger="proxilion.security.redis_backend"):
        assert tb.allow_request("alice") is False
    assert any("failing closed" in r.getMessage() for r in caplog.records)
    assert tb.get_remaining("alice") == 0

    @rate_limited(capacity=100, refill_rate=10.0, backend=backend, name="y")
    def f() -> None:
        pass

    with pytest.raises(RateLimitBackendError) as ei:
        f()
    assert isinstance(ei.value, RateLimitExceeded)
    assert ei.value.limit_type == "backend_unavailable"
    assert "failing closed" in str(ei.value)


def test_limiter_fail_open_is_configurable(down_url: str, caplog: pytest.LogCaptureFixture) -> None:
    tb = TokenBucketRateLimiter(
        1, 1.0, backend=RedisBackend(down_url, timeout=0.2, fail_open=True), name="x"
    )
    with caplog.at_level(logging.WARNING, logger="proxilion.security.redis_backend"):
        assert tb.allow_request("alice") is True
        assert tb.allow_request("alice") is True
    assert any("failing OPEN" in r.getMessage() for r in caplog.records)


def test_kill_switch_fails_closed_when_redis_is_down(down_url: str) -> None:
    ks = KillSwitch(backend=RedisBackend(down_url, timeout=0.2), name="x")
    assert ks.is_active is True
    with pytest.raises(EmergencyHaltError, match="kill switch state unknown, failing closed"):
        ks.check()
    ks.close()
    ks_open = KillSwitch(backend=RedisBackend(down_url, timeout=0.2, fail_open=True), name="x")
    assert ks_open.is_active is False
    # A local activation still halts this replica while Redis is down.
    ks_open.activate("local halt", raise_exception=False)
    assert ks_open.is_active is True
    ks_open.close()


def test_url_string_backend_and_validation(redis_url: str, prefix: str) -> None:
    ks = KillSwitch(backend=redis_url, name=f"{prefix}str")
    assert ks.is_active is False
    ks.close()
    with pytest.raises(ValueError, match="non-empty"):
        KillSwitch(backend=RedisBackend(redis_url, prefix=prefix), name="")
    tb = TokenBucketRateLimiter(1, 1.0, backend="memory")
    assert tb.backend is None
