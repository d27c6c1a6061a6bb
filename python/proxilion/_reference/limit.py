"""Pure-Python twin of ``proxilion._core.GcraLimiter`` (rust/core/src/limit).

Same decisions for the same clock readings: both compute in integer nanoseconds with the same
formulas (see the Rust module docs). A bucket is one theoretical arrival time (TAT); an unknown
key has TAT 0, i.e. a full bucket. Thread-safe through one lock (the native engine is lock-free).
"""

from __future__ import annotations

import hashlib
import math
import operator
import threading
import time
from collections.abc import Callable
from typing import Any

from proxilion._limit_errors import KeyTableFullError

__all__ = ["GcraLimiter"]

MAX_NS = 1 << 62
INLINE_KEY_MAX = 64
_MIN_SWEEP = 64
_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1


def _i64(value: Any) -> int:
    v = operator.index(value)
    if not _I64_MIN <= v <= _I64_MAX:
        raise OverflowError("Python int too large to convert to C long")
    return v


def _positive(value: Any, what: str) -> int:
    v = _i64(value)
    if v <= 0:
        raise ValueError(f"{what} must be greater than 0")
    return v


def _real(value: Any) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        return float(value)
    if hasattr(type(value), "__float__"):
        return float(value)
    if hasattr(type(value), "__index__"):
        return float(operator.index(value))
    raise TypeError(f"must be real number, not {type(value).__name__}")


def _key(key: Any) -> bytes:
    if not isinstance(key, str):
        raise TypeError(f"key must be str, not {type(key).__name__}")
    try:
        b = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "key is not valid Unicode text (it contains surrogate code points)"
        ) from None
    if len(b) <= INLINE_KEY_MAX:
        return b
    return b"\xff" + hashlib.sha256(b).digest()


def _seconds_to_ns(now: float) -> int:
    ns = now * 1e9
    if math.isfinite(ns):
        ns = math.floor(ns)
        if 0 <= ns <= MAX_NS:
            return ns
    raise ValueError(
        f"now must be a finite, non-negative number of seconds below 2**62 ns, got {now!r}"
    )


class GcraLimiter:
    """Keyed GCRA token buckets with a bounded key table (twin of the native class)."""

    def __init__(
        self,
        capacity: int,
        interval_ns: int,
        max_keys: int = 1_000_000,
        clock: Callable[[], float] | None = None,
    ) -> None:
        cap = _positive(capacity, "capacity")
        interval = _positive(interval_ns, "interval_ns")
        keys = _positive(max_keys, "max_keys")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be callable, not {type(clock).__name__}")
        tau = cap * interval
        if tau > MAX_NS:
            raise ValueError(
                "capacity * interval_ns must be at most 2**62 ns (about 146 years), got "
                f"capacity={cap}, interval_ns={interval}"
            )
        self._capacity = cap
        self._interval = interval
        self._tau = tau
        self._max_keys = keys
        self._clock = clock
        self._tats: dict[bytes, int] = {}
        self._sweep_at = _MIN_SWEEP
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        """Tokens per bucket."""
        return self._capacity

    @property
    def interval_ns(self) -> int:
        """Nanoseconds to refill one token."""
        return self._interval

    @property
    def max_keys(self) -> int:
        """The key cap."""
        return self._max_keys

    def _now(self, now: Any) -> int:
        if now is not None:
            return _seconds_to_ns(_real(now))
        if self._clock is None:
            return _seconds_to_ns(time.monotonic())
        value = self._clock()
        try:
            t = _real(value)
        except TypeError:
            raise TypeError(
                f"clock must return a number of seconds, not {type(value).__name__}"
            ) from None
        return _seconds_to_ns(t)

    def _sweep(self, now: int) -> int:
        before = len(self._tats)
        self._tats = {k: t for k, t in self._tats.items() if t > now}
        return before - len(self._tats)

    def acquire(self, key: str, cost: int = 1, now: float | None = None) -> bool:
        """Take ``cost`` tokens from ``key``'s bucket if it has them; returns whether it did."""
        k = _key(key)
        c = _positive(cost, "cost")
        n = self._now(now)
        if c > self._capacity:
            return False
        with self._lock:
            tat = self._tats.get(k)
            if tat is None:
                new_tat = n + c * self._interval
                if len(self._tats) >= self._sweep_at:
                    self._sweep(n)
                    self._sweep_at = max(_MIN_SWEEP, 2 * len(self._tats))
                if len(self._tats) >= self._max_keys:
                    self._sweep(n)
                    self._sweep_at = max(_MIN_SWEEP, 2 * len(self._tats))
                    if len(self._tats) >= self._max_keys:
                        earliest = min(self._tats.values())
                        raise KeyTableFullError(self._max_keys, key, (earliest - n) / 1e9)
                self._tats[k] = new_tat
                return True
            new_tat = max(tat, n) + c * self._interval
            if new_tat - n <= self._tau:
                self._tats[k] = new_tat
                return True
            return False

    def remaining(self, key: str, now: float | None = None) -> int:
        """Whole tokens left in ``key``'s bucket (never creates an entry)."""
        k = _key(key)
        n = self._now(now)
        tat = self._tats.get(k, 0)
        return max(0, self._tau - max(0, tat - n)) // self._interval

    def retry_after(self, key: str, cost: int = 1, now: float | None = None) -> float:
        """Seconds until ``cost`` tokens are available: 0.0 if now, ``inf`` if never."""
        k = _key(key)
        c = _positive(cost, "cost")
        n = self._now(now)
        if c > self._capacity:
            return math.inf
        tat = self._tats.get(k, 0)
        wait = max(0, max(tat, n) + c * self._interval - n - self._tau)
        return wait / 1e9

    def refund(self, key: str, cost: int = 1) -> None:
        """Give back ``cost`` tokens taken earlier from ``key``."""
        k = _key(key)
        c = _positive(cost, "cost")
        with self._lock:
            tat = self._tats.get(k)
            if tat is not None:
                self._tats[k] = max(0, tat - min(c, self._capacity) * self._interval)

    def reset(self, key: str) -> bool:
        """Forget ``key`` (its bucket is full again); returns whether it was stored."""
        k = _key(key)
        with self._lock:
            return self._tats.pop(k, None) is not None

    def reset_all(self) -> None:
        """Forget every key."""
        with self._lock:
            self._tats = {}
            self._sweep_at = _MIN_SWEEP

    def evict(self, now: float | None = None) -> int:
        """Remove every bucket that is full (no observable change); returns how many."""
        n = self._now(now)
        with self._lock:
            removed = self._sweep(n)
            self._sweep_at = max(_MIN_SWEEP, 2 * len(self._tats))
            return removed

    def __len__(self) -> int:
        return len(self._tats)

    def __repr__(self) -> str:
        return (
            f"GcraLimiter(capacity={self._capacity}, interval_ns={self._interval}, "
            f"max_keys={self._max_keys}, keys={len(self._tats)})"
        )
