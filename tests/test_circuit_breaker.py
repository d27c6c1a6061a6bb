"""proxilion.security.circuit_breaker and @circuit_protected (seed example 10)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from proxilion._decorators_limits import circuit_protected
from proxilion.exceptions import CircuitOpenError
from proxilion.security import (
    CircuitBreaker,
    CircuitBreakerRegistry,
    CircuitState,
    CircuitStats,
)


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def boom() -> None:
    raise OSError("backend down")


def ok() -> str:
    return "ok"


def fail_n(cb: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(OSError):
            cb.call(boom)


def test_closed_open_half_open_closed() -> None:
    clock = Clock()
    cb = CircuitBreaker(failure_threshold=3, reset_timeout=10.0, clock=clock)
    assert cb.state is CircuitState.CLOSED and cb.is_available()
    assert cb.call(ok) == "ok"
    fail_n(cb, 2)
    assert cb.state is CircuitState.CLOSED
    fail_n(cb, 1)
    assert cb.state is CircuitState.OPEN and not cb.is_available()
    clock.t += 4.0
    with pytest.raises(CircuitOpenError) as ei:
        cb.call(ok)
    e = ei.value
    assert (e.circuit_name, e.failure_count, e.reset_timeout, e.last_failure) == (
        "ok",
        3,
        6.0,
        "backend down",
    )
    assert str(e).startswith(
        "Circuit breaker 'ok' is open after 3 failures. Retry in 6.0 seconds | Details: "
    )
    clock.t += 6.0
    assert cb.state is CircuitState.HALF_OPEN
    assert cb.call(ok) == "ok"
    assert cb.state is CircuitState.CLOSED
    st = cb.stats
    assert isinstance(st, CircuitStats)
    assert (st.failures, st.successes, st.consecutive_failures) == (3, 2, 0)
    assert st.last_failure_error == "backend down" and st.last_success_time == clock.t


def test_failed_probe_reopens_with_exponential_backoff() -> None:
    clock = Clock()
    cb = CircuitBreaker(failure_threshold=1, reset_timeout=10.0, max_backoff=35.0, clock=clock)
    fail_n(cb, 1)
    waits = []
    for _ in range(4):
        start = clock.t
        while cb.state is CircuitState.OPEN:
            clock.t += 1.0
        waits.append(clock.t - start)
        fail_n(cb, 1)  # the probe fails
        assert cb.state is CircuitState.OPEN
    assert waits == [10.0, 20.0, 35.0, 35.0]
    # A successful probe resets the backoff.
    clock.t += 35.0
    assert cb.call(ok) == "ok"
    fail_n(cb, 1)
    clock.t += 10.0
    assert cb.state is CircuitState.HALF_OPEN


def test_no_backoff_when_disabled() -> None:
    clock = Clock()
    cb = CircuitBreaker(1, 5.0, exponential_backoff=False, clock=clock)
    fail_n(cb, 1)
    clock.t += 5.0
    fail_n(cb, 1)
    clock.t += 5.0
    assert cb.state is CircuitState.HALF_OPEN


@pytest.mark.parametrize("probes", [1, 3])
def test_half_open_admits_exactly_the_configured_probes_under_concurrency(probes: int) -> None:
    clock = Clock()
    cb = CircuitBreaker(1, 1.0, half_open_max=probes, clock=clock)
    fail_n(cb, 1)
    clock.t += 1.0
    release = threading.Event()
    started = threading.Semaphore(0)
    outcomes: list[str] = []
    lock = threading.Lock()

    def probe() -> str:
        started.release()
        release.wait(5)
        return "done"

    def caller() -> None:
        try:
            cb.call(probe)
            r = "ran"
        except CircuitOpenError as e:
            assert e.last_failure == "Half-open limit reached"
            assert e.reset_timeout == 0.0
            r = "refused"
        with lock:
            outcomes.append(r)

    threads = [threading.Thread(target=caller) for _ in range(12)]
    for t in threads:
        t.start()
    for _ in range(probes):
        assert started.acquire(timeout=5)
    # Every other caller is refused while the probes run.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with lock:
            if len(outcomes) == 12 - probes:
                break
        time.sleep(0.001)
    assert outcomes == ["refused"] * (12 - probes)
    release.set()
    for t in threads:
        t.join()
    assert outcomes.count("ran") == probes
    assert outcomes.count("refused") == 12 - probes
    assert cb.state is CircuitState.CLOSED


def test_probe_slot_released_on_success_fixes_stuck_half_open() -> None:
    clock = Clock()
    cb = CircuitBreaker(1, 1.0, half_open_max=1, success_threshold=3, clock=clock)
    fail_n(cb, 1)
    clock.t += 1.0
    assert cb.call(ok) == "ok"
    assert cb.state is CircuitState.HALF_OPEN
    assert cb.call(ok) == "ok"  # the original refused this one forever
    assert cb.call(ok) == "ok"
    assert cb.state is CircuitState.CLOSED


def test_excluded_exceptions_and_cancellation() -> None:
    clock = Clock()
    cb = CircuitBreaker(1, 1.0, excluded_exceptions=(KeyError,), clock=clock)

    def missing() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        cb.call(missing)
    assert cb.state is CircuitState.CLOSED and cb.stats.failures == 0
    fail_n(cb, 1)
    clock.t += 1.0

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cb.call(interrupted)
    # The interrupted probe neither failed nor held its slot.
    assert cb.state is CircuitState.HALF_OPEN
    assert cb.call(ok) == "ok"
    assert cb.state is CircuitState.CLOSED


def test_reset_and_force_open() -> None:
    clock = Clock()
    cb = CircuitBreaker(clock=clock)
    cb.force_open()
    assert cb.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        cb.call(ok)
    cb.reset()
    assert cb.state is CircuitState.CLOSED and cb.stats.failures == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold must be greater than 0"),
        ({"reset_timeout": 0}, "reset_timeout must be greater than 0"),
        ({"reset_timeout": float("nan")}, "reset_timeout must be greater than 0"),
        ({"half_open_max": -1}, "half_open_max must be greater than 0"),
        ({"success_threshold": 0}, "success_threshold must be greater than 0"),
        ({"max_backoff": 0}, "max_backoff must be greater than 0"),
    ],
)
def test_validation(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]


def test_registry() -> None:
    reg = CircuitBreakerRegistry()
    a = reg.get("a")
    assert reg.get("a") is a
    assert (a.failure_threshold, a.reset_timeout) == (5, 30.0)
    with pytest.raises(KeyError, match="Circuit breaker 'zz' not found"):
        reg.get("zz", auto_create=False)
    custom = CircuitBreaker(failure_threshold=1)
    assert reg.register("b", custom) is custom
    with pytest.raises(OSError):
        custom.call(boom)
    assert reg.get_all_stats() == {
        "a": {"state": "closed", "failures": 0, "successes": 0, "consecutive_failures": 0},
        "b": {"state": "open", "failures": 1, "successes": 0, "consecutive_failures": 1},
    }
    reg.reset_all()
    assert custom.state is CircuitState.CLOSED
    r2 = CircuitBreakerRegistry({"failure_threshold": 2, "reset_timeout": 1.0})
    assert r2.register("x").failure_threshold == 2


def test_seed_example_10_runs_as_written() -> None:
    @circuit_protected(
        failure_threshold=5,  # Open after 5 failures
        recovery_timeout=60,  # Stay open 60 seconds
        half_open_max_calls=1,  # Allow 1 test call
    )
    async def external_api_call() -> None:
        pass

    assert asyncio.run(external_api_call()) is None
    cb = external_api_call.circuit_breaker  # type: ignore[attr-defined]
    assert (cb.failure_threshold, cb.reset_timeout, cb.half_open_max) == (5, 60.0, 1)


def test_circuit_protected_sync_and_async() -> None:
    clock = Clock()
    calls = []

    @circuit_protected(failure_threshold=2, reset_timeout=5.0, clock=clock)
    def flaky(x: int) -> int:
        calls.append(x)
        if x < 0:
            raise ValueError("negative")
        return x * 2

    assert flaky(2) == 4
    for _ in range(2):
        with pytest.raises(ValueError):
            flaky(-1)
    with pytest.raises(CircuitOpenError) as ei:
        flaky(3)
    assert ei.value.circuit_name == "flaky" and ei.value.reset_timeout == 5.0
    assert calls == [2, -1, -1], "an open circuit never runs the function"
    assert flaky.__name__ == "flaky"

    @circuit_protected(failure_threshold=1, recovery_timeout=10, clock=clock)
    async def remote() -> str:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        asyncio.run(remote())
    with pytest.raises(CircuitOpenError, match="Circuit breaker 'remote' is open after 1 failures"):
        asyncio.run(remote())
    with pytest.raises(ValueError, match="disagree"):
        circuit_protected(reset_timeout=10, recovery_timeout=20)
    with pytest.raises(ValueError, match="half_open_max must be greater than 0"):
        circuit_protected(half_open_max_calls=0)


def test_async_cancellation_frees_the_probe() -> None:
    clock = Clock()
    cb = CircuitBreaker(1, 1.0, clock=clock)
    fail_n(cb, 1)
    clock.t += 1.0

    async def slow() -> None:
        await asyncio.sleep(3600)

    async def main() -> None:
        task = asyncio.ensure_future(cb.call_async(slow))
        await asyncio.sleep(0)
        with pytest.raises(CircuitOpenError):
            await cb.call_async(slow)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        async def fine() -> int:
            return 7

        assert await cb.call_async(fine) == 7

    asyncio.run(main())
    assert cb.state is CircuitState.CLOSED
