"""Rate limiters (API.md section 8.6): token bucket, sliding window, multi-dimensional, middleware.

The token bucket runs on the native engine ``proxilion._core.GcraLimiter`` (GCRA: one
``AtomicU64`` per key, updated by compare-and-swap, in a bounded sharded table), or on its
pure-Python twin, or on Redis when a ``backend`` is configured so that every replica of a
server shares one limit. Same names, methods and semantics as the original SDK, with these
deliberate differences (each fixes a weakness of the original):

* **No lock, no contention.** The original serialised every check behind one ``RLock``; four
  threads got less total throughput than one. A check here is one native call.
* **Bounded memory.** A bucket that has refilled carries no state and is evicted; a hard cap
  (``max_keys``, default one million) refuses *new* keys with :class:`KeyTableFullError` (a
  :class:`RateLimitExceeded`) instead of growing without end when an attacker sprays user ids.
  Keys longer than 64 bytes are stored as a digest.
* **Exact arithmetic.** Time is integer nanoseconds; the refill interval is rounded *up*
  (``ceil(1e9 / refill_rate)`` ns per token), so the limiter never admits more than the
  configured rate.
* **Clocks are injectable** (``clock=``), so tests never sleep.
* :class:`RateLimiterMiddleware` gives back tokens taken from earlier dimensions when a later
  one refuses (the original kept them, so refused calls drained the global budget).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from proxilion._backend import impl
from proxilion._limit_errors import KeyTableFullError, RateLimitBackendError
from proxilion.exceptions import RateLimitExceeded

if TYPE_CHECKING:
    from proxilion.security.redis_backend import RedisBackend

__all__ = [
    "DEFAULT_MAX_KEYS",
    "KeyTableFullError",
    "MultiDimensionalRateLimiter",
    "RateLimitBackendError",
    "RateLimitConfig",
    "RateLimiterMiddleware",
    "SlidingWindowRateLimiter",
    "TokenBucketRateLimiter",
]

#: Default cap on the number of keys one limiter stores.
DEFAULT_MAX_KEYS = 1_000_000
_MAX_NS = 1 << 62
# A sliding-window log: deque of (time, cost) and the running total of its costs.
_Log = tuple[deque[tuple[float, int]], list[int]]


class _Engine(Protocol):
    """What a token-bucket engine provides (native, reference or Redis)."""

    def acquire(self, key: str, cost: int = 1, now: float | None = None) -> bool: ...
    def remaining(self, key: str, now: float | None = None) -> int: ...
    def retry_after(self, key: str, cost: int = 1, now: float | None = None) -> float: ...
    def refund(self, key: str, cost: int = 1) -> None: ...
    def reset(self, key: str) -> bool: ...
    def reset_all(self) -> None: ...
    def evict(self, now: float | None = None) -> int: ...
    def __len__(self) -> int: ...


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be greater than 0")
    return value


def _check_seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if math.isnan(value) or value <= 0:
        raise ValueError(f"{name} must be greater than 0")
    if math.isinf(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _interval_ns(seconds_per_token: float, what: str) -> int:
    ns = seconds_per_token * 1e9
    if not math.isfinite(ns) or ns > _MAX_NS:
        raise ValueError(f"{what} is too small: one token would take more than 2**62 ns")
    return max(1, math.ceil(ns))


def _resolve_backend(backend: RedisBackend | str | None) -> RedisBackend | None:
    if backend is None:
        return None
    if isinstance(backend, str):
        if backend in ("memory", "local", "native"):
            return None
        from proxilion.security.redis_backend import RedisBackend

        return RedisBackend(backend)
    return backend


class TokenBucketRateLimiter:
    """One token bucket per key: starts full, refills continuously, capped at ``capacity``.

    Args:
        capacity: tokens per bucket (the burst), an int > 0.
        refill_rate: tokens added per second, > 0.
        key_func: stored for compatibility (the original never used it either).
        max_keys: cap on stored keys (see :class:`KeyTableFullError`).
        clock: monotonic clock in seconds; default: the engine's own monotonic clock.
        backend: ``None`` (in process), a :class:`~proxilion.security.redis_backend.RedisBackend`
            or a ``redis://`` URL: the limit is then shared by every process using the same
            Redis and ``name`` (GCRA in one Lua script on Redis server time; ``clock`` and
            ``max_keys`` do not apply, Redis expires idle keys itself).
        name: identifies a shared limiter in Redis (default: derived from the parameters, so
            replicas configured alike share it).

    ``allow_request(key, cost=1)`` is one native call: it is bound straight to the engine.
    """

    def __init__(
        self,
        capacity: int,
        refill_rate: float,
        key_func: Callable[..., Any] | None = None,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] | None = None,
        backend: RedisBackend | str | None = None,
        name: str | None = None,
    ) -> None:
        capacity = _check_count(capacity, "capacity")
        rate = _check_seconds(refill_rate, "refill_rate")
        self._setup(
            capacity,
            rate,
            _interval_ns(1.0 / rate, "refill_rate"),
            key_func,
            max_keys,
            clock,
            backend,
            name,
        )

    @classmethod
    def from_window(
        cls,
        max_calls: int,
        window_seconds: float,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] | None = None,
        backend: RedisBackend | str | None = None,
        name: str | None = None,
    ) -> TokenBucketRateLimiter:
        """A bucket of ``max_calls`` tokens refilled at ``max_calls`` per ``window_seconds``.

        The first ``max_calls`` calls pass at once; call ``max_calls + 1`` fails immediately
        unless ``window_seconds / max_calls`` seconds have passed; over any interval of ``d``
        seconds at most ``max_calls + floor(d * max_calls / window_seconds)`` calls pass.
        """
        capacity = _check_count(max_calls, "max_calls")
        window = _check_seconds(window_seconds, "window_seconds")
        self = cls.__new__(cls)
        self._setup(
            capacity,
            capacity / window,
            _interval_ns(window / capacity, "window_seconds / max_calls"),
            None,
            max_keys,
            clock,
            backend,
            name,
        )
        return self

    def _setup(
        self,
        capacity: int,
        refill_rate: float,
        interval_ns: int,
        key_func: Callable[..., Any] | None,
        max_keys: int,
        clock: Callable[[], float] | None,
        backend: RedisBackend | str | None,
        name: str | None,
    ) -> None:
        _check_count(max_keys, "max_keys")
        self.capacity = capacity
        self.refill_rate = refill_rate
        self.key_func = key_func
        self.max_keys = max_keys
        self.interval_ns = interval_ns
        redis = _resolve_backend(backend)
        self.backend = redis
        engine: _Engine
        if redis is None:
            engine = impl.GcraLimiter(capacity, interval_ns, max_keys, clock)
        else:
            engine = redis.gcra_limiter(
                name if name is not None else f"tb:{capacity}:{interval_ns}",
                capacity,
                interval_ns,
            )
        self._engine = engine
        if type(self).allow_request is TokenBucketRateLimiter.allow_request:
            # Fast path: calling the limiter's allow_request is one call into the engine.
            self.allow_request = engine.acquire  # type: ignore[method-assign]

    def __repr__(self) -> str:
        where = "redis" if self.backend is not None else "local"
        return (
            f"TokenBucketRateLimiter(capacity={self.capacity}, refill_rate={self.refill_rate!r}, "
            f"backend={where})"
        )

    @property
    def engine(self) -> Any:
        """The engine deciding checks (native ``GcraLimiter``, its twin, or a Redis one)."""
        return self._engine

    def allow_request(self, key: str, cost: int = 1) -> bool:
        """Take ``cost`` tokens from ``key``'s bucket if it holds them; return whether it did.

        ``cost <= 0`` raises ``ValueError("cost must be greater than 0")``; a cost above the
        capacity is always refused. A new key while the key table is full raises
        :class:`KeyTableFullError`.
        """
        return self._engine.acquire(key, cost)

    def get_remaining(self, key: str) -> int:
        """Whole tokens left in ``key``'s bucket (unlike the original, creates no entry)."""
        return self._engine.remaining(key)

    def get_retry_after(self, key: str, cost: int = 1) -> float:
        """Seconds until ``cost`` tokens are available: 0.0 if now, ``inf`` if never
        (``cost > capacity``)."""
        return self._engine.retry_after(key, cost)

    def refund(self, key: str, cost: int = 1) -> None:
        """Give back ``cost`` tokens taken earlier (to roll back a multi-limit check)."""
        self._engine.refund(key, cost)

    def reset(self, key: str) -> None:
        """Refill ``key``'s bucket."""
        self._engine.reset(key)

    def reset_all(self) -> None:
        """Refill every bucket."""
        self._engine.reset_all()

    def cleanup(self, max_age_seconds: float = 3600.0) -> int:
        """Drop buckets that have refilled completely; returns how many.

        A full bucket is indistinguishable from a new one, so dropping it never changes a
        decision (the original dropped 99%-full buckets, handing out the last 1% again).
        ``max_age_seconds`` is accepted for compatibility; eviction also runs automatically.
        """
        _check_seconds(max_age_seconds, "max_age_seconds")
        return self._engine.evict()

    def __len__(self) -> int:
        return len(self._engine)


class SlidingWindowRateLimiter:
    """At most ``max_requests`` (summed costs) per key in any ``window_seconds`` window.

    An exact sliding log (the strict "never more than N in any window" guarantee). Unlike the
    original, parameters are validated, memory is bounded (at most ``max_requests`` entries
    per key and ``max_keys`` keys, see :class:`KeyTableFullError`), and the clock is
    injectable. Thread-safe.
    """

    def __init__(
        self,
        max_requests: int,
        window_seconds: float,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_requests = _check_count(max_requests, "max_requests")
        self.window_seconds = _check_seconds(window_seconds, "window_seconds")
        self.max_keys = _check_count(max_keys, "max_keys")
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (deque of [time, cost], total cost in the deque)
        self._logs: dict[str, _Log] = {}

    @property
    def capacity(self) -> int:
        """Alias of ``max_requests`` (what the middleware and headers report)."""
        return self.max_requests

    def _prune(self, log: deque[tuple[float, int]], total: list[int], now: float) -> None:
        horizon = now - self.window_seconds
        while log and log[0][0] <= horizon:
            total[0] -= log.popleft()[1]

    def _log(self, key: str, now: float, create: bool) -> _Log:
        entry = self._logs.get(key)
        if entry is None:
            entry = (deque(), [0])
            if create:
                if len(self._logs) >= self.max_keys:
                    self._cleanup(now)
                    if len(self._logs) >= self.max_keys:
                        oldest = min(log[0][0] for log, _ in self._logs.values())
                        raise KeyTableFullError(
                            self.max_keys, key, oldest + self.window_seconds - now
                        )
                self._logs[key] = entry
        else:
            self._prune(entry[0], entry[1], now)
        return entry

    @staticmethod
    def _cost(cost: Any) -> int:
        if isinstance(cost, bool) or not isinstance(cost, int):
            raise TypeError(f"cost must be an int, not {type(cost).__name__}")
        if cost <= 0:
            raise ValueError("cost must be greater than 0")
        return cost

    @staticmethod
    def _key(key: Any) -> str:
        if not isinstance(key, str):
            raise TypeError(f"key must be str, not {type(key).__name__}")
        return key

    def allow_request(self, key: str, cost: int = 1) -> bool:
        """Record and allow the request if ``count_in_window + cost <= max_requests``."""
        key = self._key(key)
        cost = self._cost(cost)
        if cost > self.max_requests:
            return False
        with self._lock:
            now = self._clock()
            known = self._logs.get(key)
            if known is not None:
                self._prune(known[0], known[1], now)
                if known[1][0] + cost > self.max_requests:
                    return False
            log, total = self._log(key, now, create=True)
            log.append((now, cost))
            total[0] += cost
            return True

    def refund(self, key: str, cost: int = 1) -> None:
        """Undo the most recent ``cost`` of ``key`` (to roll back a multi-limit check)."""
        key = self._key(key)
        cost = self._cost(cost)
        with self._lock:
            entry = self._logs.get(key)
            while entry is not None and cost > 0 and entry[0]:
                t, c = entry[0].pop()
                taken = min(c, cost)
                cost -= taken
                entry[1][0] -= taken
                if c > taken:
                    entry[0].append((t, c - taken))

    def get_remaining(self, key: str) -> int:
        """Requests still allowed in the current window."""
        key = self._key(key)
        with self._lock:
            _, total = self._log(key, self._clock(), create=False)
            return max(0, self.max_requests - total[0])

    def get_retry_after(self, key: str, cost: int = 1) -> float:
        """Seconds until ``cost`` requests fit in the window: 0.0 if now, ``inf`` if never."""
        key = self._key(key)
        cost = self._cost(cost)
        if cost > self.max_requests:
            return math.inf
        with self._lock:
            now = self._clock()
            log, total = self._log(key, now, create=False)
            excess = total[0] + cost - self.max_requests
            if excess <= 0:
                return 0.0
            for t, c in log:
                excess -= c
                if excess <= 0:
                    return max(0.0, t + self.window_seconds - now)
            return 0.0  # unreachable: the log holds total >= excess

    def reset(self, key: str) -> None:
        """Forget ``key``'s requests."""
        with self._lock:
            self._logs.pop(key, None)

    def reset_all(self) -> None:
        """Forget every key."""
        with self._lock:
            self._logs.clear()

    def _cleanup(self, now: float) -> int:
        removed = 0
        for key in list(self._logs):
            log, total = self._logs[key]
            self._prune(log, total, now)
            if not log:
                del self._logs[key]
                removed += 1
        return removed

    def cleanup(self) -> int:
        """Drop keys with no request left in the window; returns how many."""
        with self._lock:
            return self._cleanup(self._clock())

    def __len__(self) -> int:
        return len(self._logs)


@dataclass
class RateLimitConfig:
    """Configuration of one dimension of :class:`MultiDimensionalRateLimiter`."""

    capacity: int
    refill_rate: float
    window_seconds: float | None = None


class MultiDimensionalRateLimiter:
    """Several limits checked together, all or nothing (e.g. per user, per tool, global).

    ``allow_request(keys, costs)`` takes ``costs[dim]`` (default 1) from the bucket
    ``keys[dim]`` of every configured dimension named in ``keys``, or from none of them.
    Dimensions in ``keys`` that are not configured are ignored; configured dimensions absent
    from ``keys`` are not checked.
    """

    def __init__(
        self,
        limits: dict[str, RateLimitConfig],
        use_sliding_window: bool = False,
        *,
        clock: Callable[[], float] | None = None,
        backend: RedisBackend | str | None = None,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self.limits = limits
        self.use_sliding_window = use_sliding_window
        self._lock = threading.Lock()
        self._limiters: dict[str, TokenBucketRateLimiter | SlidingWindowRateLimiter] = {}
        for dim, cfg in limits.items():
            if use_sliding_window and cfg.window_seconds is not None:
                self._limiters[dim] = SlidingWindowRateLimiter(
                    cfg.capacity,
                    cfg.window_seconds,
                    max_keys=max_keys,
                    clock=clock if clock is not None else time.monotonic,
                )
            else:
                self._limiters[dim] = TokenBucketRateLimiter(
                    cfg.capacity,
                    cfg.refill_rate,
                    max_keys=max_keys,
                    clock=clock,
                    backend=backend,
                    name=f"md:{dim}:{cfg.capacity}:{cfg.refill_rate!r}",
                )

    @property
    def limiters(self) -> dict[str, TokenBucketRateLimiter | SlidingWindowRateLimiter]:
        """The limiter of each dimension."""
        return dict(self._limiters)

    def allow_request(self, keys: dict[str, str], costs: dict[str, int] | None = None) -> bool:
        """Consume from every matching dimension, or from none; returns whether it did."""
        costs = costs or {}
        taken: list[tuple[TokenBucketRateLimiter | SlidingWindowRateLimiter, str, int]] = []
        with self._lock:
            for dim, key in keys.items():
                limiter = self._limiters.get(dim)
                if limiter is None:
                    continue
                cost = costs.get(dim, 1)
                try:
                    ok = limiter.allow_request(key, cost)
                except BaseException:
                    for lim, k, c in reversed(taken):
                        lim.refund(k, c)
                    raise
                if not ok:
                    for lim, k, c in reversed(taken):
                        lim.refund(k, c)
                    return False
                taken.append((limiter, key, cost))
            return True

    def get_most_restrictive(self, keys: dict[str, str]) -> tuple[str, int]:
        """The configured dimension in ``keys`` with the fewest remaining tokens.

        Raises ``ValueError`` when no dimension of ``keys`` is configured (the original
        raised an accidental ``OverflowError``).
        """
        best: tuple[str, int] | None = None
        for dim, key in keys.items():
            limiter = self._limiters.get(dim)
            if limiter is None:
                continue
            remaining = limiter.get_remaining(key)
            if best is None or remaining < best[1]:
                best = (dim, remaining)
        if best is None:
            raise ValueError(f"no configured rate-limit dimension among {sorted(keys)!r}")
        return best


class RateLimiterMiddleware:
    """Global, per-user and per-tool limits for tool calls.

    ``check_rate_limit(user_id, tool_name, cost)`` checks the global bucket (key
    ``"global"``), then the user's (key ``user_id``), then the tool's (key
    ``f"{user_id}:{tool_name}"``) and raises :class:`RateLimitExceeded` naming the first that
    refuses. Unlike the original, tokens already taken from earlier buckets are given back
    when a later one refuses, so refused calls do not drain the global budget.
    """

    def __init__(
        self,
        user_limit: TokenBucketRateLimiter | None = None,
        tool_limits: dict[str, TokenBucketRateLimiter] | None = None,
        global_limit: TokenBucketRateLimiter | None = None,
    ) -> None:
        self.user_limit = user_limit
        self.tool_limits = tool_limits or {}
        self.global_limit = global_limit

    def check_rate_limit(self, user_id: str, tool_name: str, cost: int = 1) -> None:
        """Raise :class:`RateLimitExceeded` if any configured limit refuses the call."""
        checks: list[tuple[str, TokenBucketRateLimiter, str]] = []
        if self.global_limit is not None:
            checks.append(("global", self.global_limit, "global"))
        if self.user_limit is not None:
            checks.append(("user", self.user_limit, user_id))
        tool_limit = self.tool_limits.get(tool_name)
        if tool_limit is not None:
            checks.append(("tool", tool_limit, f"{user_id}:{tool_name}"))
        taken: list[tuple[TokenBucketRateLimiter, str]] = []
        for limit_type, limiter, key in checks:
            if limiter.allow_request(key, cost):
                taken.append((limiter, key))
                continue
            for lim, k in reversed(taken):
                if hasattr(lim, "refund"):
                    lim.refund(k, cost)
            raise _refusal(limit_type, limiter, key, cost, user_id)

    def get_headers(self, user_id: str, tool_name: str) -> dict[str, str]:
        """``X-RateLimit-Limit`` and ``X-RateLimit-Remaining`` of the user limit (else ``{}``)."""
        if self.user_limit is None:
            return {}
        return {
            "X-RateLimit-Limit": str(self.user_limit.capacity),
            "X-RateLimit-Remaining": str(self.user_limit.get_remaining(user_id)),
        }


def _refusal(
    limit_type: str,
    limiter: TokenBucketRateLimiter,
    key: str,
    cost: int,
    user_id: str | None,
    window_seconds: float | None = None,
) -> RateLimitExceeded:
    """The exception for a refused check (a backend outage is reported as such)."""
    cause = getattr(limiter.engine, "unavailable", None) if hasattr(limiter, "engine") else None
    if cause:
        return RateLimitBackendError(key, cause)
    retry_after = limiter.get_retry_after(key, cost)
    remaining = limiter.get_remaining(key)
    return RateLimitExceeded(
        limit_type=limit_type,
        limit_key=key,
        limit_value=limiter.capacity,
        retry_after=retry_after,
        user_id=user_id,
        limit=limiter.capacity,
        current_count=limiter.capacity - remaining,
        window_seconds=window_seconds,
        reset_at=time.time() + retry_after if math.isfinite(retry_after) else None,
    )
