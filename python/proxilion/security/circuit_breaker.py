"""Circuit breakers (API.md section 8.7, seed example 10).

CLOSED: calls pass; ``failure_threshold`` consecutive failures open the circuit.
OPEN: every call fails at once with :class:`CircuitOpenError` for ``reset_timeout`` seconds
(doubled after each failed probe when ``exponential_backoff``, up to ``max_backoff``).
HALF_OPEN: at most ``half_open_max`` probe calls run at a time, exactly that many even under
concurrent callers; ``success_threshold`` successes close the circuit, any failure re-opens it.

Same names, parameters and semantics as the original SDK, with two deliberate differences:

* A probe's slot is released when it finishes. In the original it was not, so with
  ``success_threshold > half_open_max`` the breaker stayed half-open refusing every call.
* A call cancelled or interrupted (``BaseException`` such as ``asyncio.CancelledError``) frees
  its probe slot without counting as a failure or a success.

The clock is injectable (``clock=``), so tests never sleep. Thread-safe: a ``threading.Lock``
guards the state; the protected function runs outside it.
"""

from __future__ import annotations

import copy
import enum
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from proxilion.exceptions import CircuitOpenError

__all__ = ["CircuitBreaker", "CircuitBreakerRegistry", "CircuitState", "CircuitStats"]

T = TypeVar("T")


class CircuitState(enum.Enum):
    """State of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitStats:
    """Counters of one breaker (times are readings of the breaker's monotonic clock)."""

    failures: int = 0
    successes: int = 0
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_failure_time: float | None = None
    last_success_time: float | None = None
    last_failure_error: str | None = None
    state_change_time: float = field(default_factory=time.monotonic)


def _positive(value: Any, name: str, *, integer: bool) -> Any:
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    if not value > 0:  # type: ignore[operator]  # also rejects NaN
        raise ValueError(f"{name} must be greater than 0")
    if not integer and value == float("inf"):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


class CircuitBreaker:
    """Stops calling a failing dependency, then probes it before trusting it again.

    Args:
        failure_threshold: consecutive failures that open the circuit.
        reset_timeout: seconds the circuit stays open before allowing probes.
        half_open_max: probe calls allowed at a time in HALF_OPEN.
        success_threshold: probe successes needed to close the circuit.
        excluded_exceptions: exceptions that pass through without counting as failures.
        exponential_backoff: double the open time after each failed probe.
        max_backoff: upper bound, in seconds, of the open time.
        clock: monotonic clock in seconds (injectable for tests).
        name: optional name (for logs and the registry).
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        half_open_max: int = 1,
        success_threshold: int = 1,
        excluded_exceptions: tuple[type[BaseException], ...] | None = None,
        exponential_backoff: bool = True,
        max_backoff: float = 300.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str | None = None,
    ) -> None:
        self.failure_threshold: int = _positive(
            failure_threshold, "failure_threshold", integer=True
        )
        self.reset_timeout = float(_positive(reset_timeout, "reset_timeout", integer=False))
        self.half_open_max: int = _positive(half_open_max, "half_open_max", integer=True)
        self.success_threshold: int = _positive(
            success_threshold, "success_threshold", integer=True
        )
        self.max_backoff = float(_positive(max_backoff, "max_backoff", integer=False))
        self.excluded_exceptions: tuple[type[BaseException], ...] = tuple(excluded_exceptions or ())
        self.exponential_backoff = bool(exponential_backoff)
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._stats = CircuitStats(state_change_time=clock())
        self._multiplier = 1.0
        self._in_flight = 0  # probes running in the current half-open episode
        self._episode = 0  # increments on every state change

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(name={self.name!r}, state={self.state.value}, "
            f"failure_threshold={self.failure_threshold}, reset_timeout={self.reset_timeout})"
        )

    # -- state ------------------------------------------------------------------------------

    def _set_state(self, state: CircuitState, now: float) -> None:
        self._state = state
        self._stats.state_change_time = now
        self._in_flight = 0
        self._episode += 1

    def _open_for(self) -> float:
        return self.reset_timeout * self._multiplier

    def _current(self, now: float) -> CircuitState:
        if (
            self._state is CircuitState.OPEN
            and now - self._stats.state_change_time >= self._open_for()
        ):
            self._set_state(CircuitState.HALF_OPEN, now)
        return self._state

    @property
    def state(self) -> CircuitState:
        """Current state (OPEN turns into HALF_OPEN when read after the timeout)."""
        with self._lock:
            return self._current(self._clock())

    @property
    def stats(self) -> CircuitStats:
        """A copy of the counters."""
        with self._lock:
            return copy.copy(self._stats)

    def is_available(self) -> bool:
        """Whether a call would not be refused for an OPEN circuit."""
        return self.state is not CircuitState.OPEN

    def reset(self) -> None:
        """Close the circuit and clear the counters."""
        with self._lock:
            now = self._clock()
            self._stats = CircuitStats(state_change_time=now)
            self._multiplier = 1.0
            self._set_state(CircuitState.CLOSED, now)

    def force_open(self) -> None:
        """Open the circuit now (for ``reset_timeout`` times the current backoff)."""
        with self._lock:
            self._set_state(CircuitState.OPEN, self._clock())

    # -- calls ------------------------------------------------------------------------------

    def _admit(self, circuit_name: str) -> int:
        """Admit a call or raise; returns the half-open episode of a probe, else -1."""
        with self._lock:
            now = self._clock()
            state = self._current(now)
            if state is CircuitState.CLOSED:
                return -1
            if state is CircuitState.OPEN:
                remaining = max(0.0, self._open_for() - (now - self._stats.state_change_time))
                raise CircuitOpenError(
                    circuit_name,
                    self._stats.consecutive_failures,
                    remaining,
                    self._stats.last_failure_error,
                )
            if self._in_flight >= self.half_open_max:
                raise CircuitOpenError(
                    circuit_name,
                    self._stats.consecutive_failures,
                    0.0,
                    "Half-open limit reached",
                )
            self._in_flight += 1
            return self._episode

    def _release(self, episode: int) -> None:
        if episode >= 0 and episode == self._episode and self._in_flight > 0:
            self._in_flight -= 1

    def _on_success(self, episode: int) -> None:
        """A probe succeeded (its counters are already updated): maybe close the circuit."""
        with self._lock:
            now = self._clock()
            st = self._stats
            self._release(episode)
            if (
                self._state is CircuitState.HALF_OPEN
                and episode == self._episode
                and st.consecutive_successes >= self.success_threshold
            ):
                st.consecutive_successes = 0
                self._multiplier = 1.0
                self._set_state(CircuitState.CLOSED, now)

    def _on_failure(self, exc: BaseException, episode: int) -> None:
        with self._lock:
            now = self._clock()
            st = self._stats
            st.failures += 1
            st.consecutive_failures += 1
            st.consecutive_successes = 0
            st.last_failure_time = now
            st.last_failure_error = str(exc)
            self._release(episode)
            state = self._current(now)
            if state is CircuitState.HALF_OPEN:
                if self.exponential_backoff:
                    self._multiplier = min(
                        self._multiplier * 2, self.max_backoff / self.reset_timeout
                    )
                self._set_state(CircuitState.OPEN, now)
            elif state is CircuitState.CLOSED and st.consecutive_failures >= self.failure_threshold:
                self._set_state(CircuitState.OPEN, now)

    def _on_other(self, episode: int) -> None:
        with self._lock:
            self._release(episode)

    def _succeeded(self, episode: int) -> None:
        # Inlined fast path: a success in CLOSED touches only the counters.
        now = self._clock()
        with self._lock:
            st = self._stats
            st.successes += 1
            st.consecutive_failures = 0
            st.consecutive_successes += 1
            st.last_success_time = now
            if episode < 0:
                return
        self._on_success(episode)

    # -- explicit admission, for pipelines that run the function themselves ------------------

    def admit(self, circuit_name: str | None = None) -> int:
        """Admit one call or raise :class:`CircuitOpenError`; returns a token for
        :meth:`record_success` / :meth:`record_failure` / :meth:`release`.

        Used by ``Proxilion``'s decorated-call pipeline, which (unlike the original) thus
        enforces the half-open probe limit too. Every admitted call must be settled with
        exactly one of the three methods.
        """
        if self._state is CircuitState.CLOSED:
            return -1
        return self._admit(circuit_name or self.name or "unknown")

    def record_success(self, token: int = -1) -> None:
        """Settle an admitted call that succeeded."""
        self._succeeded(token)

    def record_failure(self, exc: BaseException, token: int = -1) -> None:
        """Settle an admitted call that failed with ``exc`` (counts towards opening)."""
        self._on_failure(exc, token)

    def release(self, token: int = -1) -> None:
        """Settle an admitted call that neither succeeded nor failed (e.g. refused later)."""
        self._on_other(token)

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``func(*args, **kwargs)`` through the breaker.

        Raises :class:`CircuitOpenError` without calling ``func`` while the circuit is open
        (or half-open with every probe slot taken); re-raises ``func``'s own exceptions.
        """
        # Reading the state is atomic; a call that races with the transition to OPEN is
        # simply admitted just before it. Only non-closed states need the lock.
        if self._state is CircuitState.CLOSED:
            episode = -1
        else:
            episode = self._admit(getattr(func, "__name__", None) or "unknown")
        try:
            result = func(*args, **kwargs)
        except self.excluded_exceptions:
            self._on_other(episode)
            raise
        except Exception as exc:
            self._on_failure(exc, episode)
            raise
        except BaseException:
            self._on_other(episode)
            raise
        self._succeeded(episode)
        return result

    async def call_async(self, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await ``func(*args, **kwargs)`` through the breaker (see :meth:`call`)."""
        # Reading the state is atomic; a call that races with the transition to OPEN is
        # simply admitted just before it. Only non-closed states need the lock.
        if self._state is CircuitState.CLOSED:
            episode = -1
        else:
            episode = self._admit(getattr(func, "__name__", None) or "unknown")
        try:
            result = await func(*args, **kwargs)
        except self.excluded_exceptions:
            self._on_other(episode)
            raise
        except Exception as exc:
            self._on_failure(exc, episode)
            raise
        except BaseException:
            self._on_other(episode)
            raise
        self._succeeded(episode)
        return result


class CircuitBreakerRegistry:
    """Named breakers, created on demand with a default configuration. Thread-safe."""

    def __init__(self, default_config: dict[str, Any] | None = None) -> None:
        self.default_config: dict[str, Any] = (
            dict(default_config)
            if default_config is not None
            else {"failure_threshold": 5, "reset_timeout": 30.0}
        )
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def register(self, name: str, breaker: CircuitBreaker | None = None) -> CircuitBreaker:
        """Store ``breaker`` (or a new one from the default config) under ``name``."""
        if breaker is None:
            breaker = CircuitBreaker(**self.default_config)
        with self._lock:
            self._breakers[name] = breaker
        return breaker

    def get(self, name: str, auto_create: bool = True) -> CircuitBreaker:
        """The breaker named ``name``; created if missing unless ``auto_create`` is False
        (then ``KeyError("Circuit breaker 'name' not found")``)."""
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                if not auto_create:
                    raise KeyError(f"Circuit breaker '{name}' not found")
                breaker = CircuitBreaker(**self.default_config)
                self._breakers[name] = breaker
            return breaker

    def get_all_stats(self) -> dict[str, dict[str, Any]]:
        """``{name: {"state", "failures", "successes", "consecutive_failures"}}``."""
        with self._lock:
            items = list(self._breakers.items())
        out: dict[str, dict[str, Any]] = {}
        for name, b in items:
            st = b.stats
            out[name] = {
                "state": b.state.value,
                "failures": st.failures,
                "successes": st.successes,
                "consecutive_failures": st.consecutive_failures,
            }
        return out

    def reset_all(self) -> None:
        """Close every breaker."""
        with self._lock:
            items = list(self._breakers.values())
        for b in items:
            b.reset()
