"""Reference twin of ``rust/core/src/stats``: Welford/EWMA accumulators and the drift engine.

Same classes, methods, results and error messages as the native ones in ``proxilion._core``;
every float is computed by the same sequence of IEEE-754 operations, so both backends give the
same z-scores (the property tests allow a relative difference of 1e-9, for platforms whose
``log2`` differs in the last bit).
"""

from __future__ import annotations

import bisect
import functools
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

__all__ = ["DriftEngine", "Ewma", "Welford", "drift_metric_names"]

# --- metrics (indices match rust/core/src/stats/engine.rs) -----------------------------------

METRIC_NAMES: tuple[str, ...] = (
    "tool_call_rate",
    "response_length",
    "error_rate",
    "unique_tools",
    "latency",
    "token_usage",
    "tool_repetition",
    "scope_violations",
    "context_size",
    "custom",
    "tool_mix",
    "tool_surprise",
    "time_of_day",
    "tool_latency",
    "argument_size",
    "argument_keys",
    "argument_values",
)
N_METRICS = len(METRIC_NAMES)
(
    TOOL_CALL_RATE,
    RESPONSE_LENGTH,
    ERROR_RATE,
    UNIQUE_TOOLS,
    LATENCY,
    TOKEN_USAGE,
    TOOL_REPETITION,
    SCOPE_VIOLATIONS,
    CONTEXT_SIZE,
    CUSTOM,
    TOOL_MIX,
    TOOL_SURPRISE,
    TIME_OF_DAY,
    TOOL_LATENCY,
    ARGUMENT_SIZE,
    ARGUMENT_KEYS,
    ARGUMENT_VALUES,
) = range(N_METRICS)
WINDOWED = (
    *(True, False, True, True, False, False, True, False, False, False),
    *(True, False, False, False, False, False, False),
)
SCALE_FLOORS = (
    *(0.5, 1.0, 0.5, 0.5, 1.0, 1.0, 0.5, 0.5, 1.0, 0.0),
    *(1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 0.5),
)
# floor of the value metrics' scale relative to |baseline mean| (zero-variance baselines)
RELATIVE_FLOOR = 0.1
RELATIVE_FLOORED = (
    *(False, True, False, False, True, True, False, True, True, True),
    *(False,) * 7,
)
# after the lock, a still-learning metric does not learn samples beyond this many deviations
LEARN_GATE = 4.0
STATUS_LEARNING = "learning"
STATUS_BASELINED = "baselined"
STATUS_EXCLUDED = "excluded"
PER_TOOL = (TOOL_LATENCY, ARGUMENT_SIZE, ARGUMENT_KEYS, ARGUMENT_VALUES)
VALUE_METRICS = frozenset(
    {RESPONSE_LENGTH, LATENCY, TOKEN_USAGE, SCOPE_VIOLATIONS, CONTEXT_SIZE, CUSTOM}
)
ENVELOPED = (*(True,) * 11, *(False,) * 6)
# windowed metrics over the last 100 names that learn one sample per 100 names
DECIMATED = tuple(m in (3, 6) for m in range(17))
ENVELOPE_DIVISOR = 1.5
# anomaly-score metrics: a window less unusual than the baseline scores z = 0
ONE_SIDED = (*(False,) * 10, True, True, True, False, False, True, True)
RATE_HORIZON = 60.0
EVENT_CAPACITY = 1000
NAME_CAPACITY = 100
MIX_REFRESH = 100
MIX_MIN_EXPECTED = 5.0
WINDOW_JOIN = 100

# --- profiles (rust/core/src/stats/model.rs) --------------------------------------------------

ALPHA = 0.5
MAX_TOOLS = 64
MAX_KEYSETS = 16
MAX_KEYS = 32
MAX_CATEGORIES = 16
MAX_ARG_KEYS = 32
MAX_KEY_CHARS = 64
MAX_CATEGORY_CHARS = 32
MAX_SIZE_NODES = 256
MAX_SIZE_DEPTH = 8
SCALE_FLOOR = 0.5
OTHER_KEY = "\x00key"
MANY_KEYS = "\x00many"
KIND_NUMBER, KIND_TEXT, KIND_BYTES, KIND_BOOL, KIND_NONE, KIND_CONTAINER, KIND_OTHER = range(7)
N_KINDS = 7
_FLOAT_MAX = sys.float_info.max
STATE_FORMAT = "proxilion.drift_engine"
STATE_VERSION = 1

_BaselineT = tuple[int, float, float, float, float, int, float, float, float]
_CheckT = tuple[int, float, float, float, float, float, "str | None"]


def drift_metric_names() -> list[str]:
    """Names of the engine's metrics, by index."""
    return list(METRIC_NAMES)


_P = ParamSpec("_P")
_R = TypeVar("_R")
_S = TypeVar("_S", bound="_Synchronized")


class _Synchronized:
    """Base of the public classes: one re-entrant lock per object, as the native ones hold
    a mutex (every public method of theirs is atomic)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.RLock()


def _synchronized(fn: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    @functools.wraps(fn)
    def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return fn(self, *args, **kwargs)

    return wrapper


# --- argument checking shared with the binding -----------------------------------------------


def _number(x: object, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(x).__name__}")
    try:
        f = float(x)
    except OverflowError:
        raise ValueError(f"{name} must be a finite number, got {x!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return f


def _int(x: object, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"{name} must be an int, not {type(x).__name__}")
    return x


def _valid_text(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _tool_name(x: object) -> str:
    if not isinstance(x, str):
        raise TypeError(f"tool_name must be str, not {type(x).__name__}")
    if not _valid_text(x):
        raise ValueError("tool_name is not valid Unicode text (it contains surrogate code points)")
    return x


def _time(x: object, name: str, default: Any) -> float:
    if x is None:
        return float(default())
    return _number(x, name)


# --- accumulators ------------------------------------------------------------------------------


def _z(x: float, mean: float, std: float) -> float:
    d = x - mean
    if std == 0.0:
        return 0.0 if d == 0.0 else math.inf
    return d / std


class Welford(_Synchronized):
    """Streaming count, mean, sample variance, min and max (Welford), mergeable (Chan)."""

    __slots__ = ("_m2", "_max", "_mean", "_min", "_n")

    def __init__(self) -> None:
        super().__init__()
        self._n = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._min = 0.0
        self._max = 0.0

    def _push(self, x: float) -> None:
        self._n += 1
        if self._n == 1:
            self._mean = x
            self._m2 = 0.0
            self._min = x
            self._max = x
            return
        d = x - self._mean
        self._mean += d / self._n
        self._m2 += d * (x - self._mean)
        if x < self._min:
            self._min = x
        if x > self._max:
            self._max = x

    @_synchronized
    def push(self, x: float) -> None:
        """Add one finite sample."""
        self._push(_number(x, "x"))

    @_synchronized
    def extend(self, xs: Iterable[float]) -> None:
        """Add every sample of ``xs`` (all are checked before any is added)."""
        vals = [_number(x, "x") for x in xs]
        for v in vals:
            self._push(v)

    def _merge(self, o: Welford) -> None:
        if o._n == 0:
            return
        if self._n == 0:
            self._n, self._mean, self._m2, self._min, self._max = o._parts()
            return
        n = self._n + o._n
        na = float(self._n)
        nb = float(o._n)
        nf = float(n)
        d = o._mean - self._mean
        self._mean += d * (nb / nf)
        self._m2 += o._m2 + d * d * (na * nb / nf)
        self._n = n
        if o._min < self._min:
            self._min = o._min
        if o._max > self._max:
            self._max = o._max

    def merge(self, other: Welford) -> None:
        """Fold an accumulator over disjoint samples into this one (exact)."""
        if not isinstance(other, Welford):
            raise TypeError(f"other must be Welford, not {type(other).__name__}")
        snapshot = _welford_parts(*other.to_state())  # under other's lock, then ours
        with self._lock:
            self._merge(snapshot)

    @property
    def count(self) -> int:
        """Number of samples."""
        return self._n

    @property
    def mean(self) -> float:
        """Mean (0.0 when empty)."""
        return self._mean

    @property
    def m2(self) -> float:
        """Sum of squared deviations from the mean."""
        return self._m2

    @property
    def variance(self) -> float:
        """Sample variance (n - 1); 0.0 with fewer than two samples."""
        if self._n < 2:
            return 0.0
        return max(self._m2 / (self._n - 1), 0.0)

    @property
    def population_variance(self) -> float:
        """Population variance (n); 0.0 when empty."""
        if self._n == 0:
            return 0.0
        return max(self._m2 / self._n, 0.0)

    @property
    def std_dev(self) -> float:
        """Sample standard deviation, as ``statistics.stdev`` (0.0 below two samples)."""
        return math.sqrt(self.variance)

    @property
    def min(self) -> float:
        """Smallest sample (0.0 when empty)."""
        return self._min

    @property
    def max(self) -> float:
        """Largest sample (0.0 when empty)."""
        return self._max

    @_synchronized
    def z_score(self, x: float) -> float:
        """``(x - mean) / std_dev``; with zero deviation 0.0 at the mean, else +inf."""
        return _z(_number(x, "x"), self._mean, self.std_dev)

    def _parts(self) -> tuple[int, float, float, float, float]:
        return (self._n, self._mean, self._m2, self._min, self._max)

    @_synchronized
    def to_state(self) -> tuple[int, float, float, float, float]:
        """``(count, mean, m2, min, max)``."""
        return self._parts()

    @staticmethod
    def from_state(state: Iterable[Any]) -> Welford:
        """Rebuild from :meth:`to_state`; rejects states no samples could produce."""
        return _welford_from(state, "welford")

    def __repr__(self) -> str:
        return f"Welford(count={self._n}, mean={self._mean!r}, std_dev={self.std_dev!r})"


def _welford_parts(n: int, mean: float, m2: float, lo: float, hi: float) -> Welford:
    for name, v in (("mean", mean), ("m2", m2), ("min", lo), ("max", hi)):
        if not math.isfinite(v):
            raise ValueError(f"invalid drift state: welford {name} must be finite")
    w = Welford()
    if n == 0:
        if mean != 0.0 or m2 != 0.0 or lo != 0.0 or hi != 0.0:
            raise ValueError(
                "invalid drift state: an empty welford accumulator must have zero mean, m2, "
                "min and max"
            )
        return w
    if n < 0:
        raise ValueError(f"invalid drift state: welford count must be >= 0, got {n}")
    if m2 < 0.0:
        raise ValueError("invalid drift state: welford m2 must be >= 0")
    if lo > hi:
        raise ValueError("invalid drift state: welford min must not exceed max")
    w._n, w._mean, w._m2, w._min, w._max = n, mean, m2, lo, hi
    return w


class Ewma(_Synchronized):
    """Exponentially weighted mean and variance; ``alpha`` in (0, 1]."""

    __slots__ = ("_alpha", "_mean", "_n", "_var")

    def __init__(self, alpha: float) -> None:
        super().__init__()
        a = _number(alpha, "alpha") if not isinstance(alpha, float) else alpha
        if not (a > 0.0 and a <= 1.0):
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        self._alpha = a
        self._n = 0
        self._mean = 0.0
        self._var = 0.0

    @staticmethod
    def with_span(span: int) -> Ewma:
        """Smoothing matching a moving window of ``span`` samples: alpha = 2 / (span + 1)."""
        s = _int(span, "span")
        e = Ewma(1.0)
        e._alpha = min(2.0 / (max(s, 1) + 1.0), 1.0)
        return e

    def _push(self, x: float) -> None:
        if self._n == 0:
            self._mean = x
            self._var = 0.0
        else:
            d = x - self._mean
            incr = self._alpha * d
            self._mean += incr
            self._var = (1.0 - self._alpha) * (self._var + d * incr)
        self._n += 1

    @_synchronized
    def push(self, x: float) -> None:
        """Add one finite sample."""
        self._push(_number(x, "x"))

    @_synchronized
    def extend(self, xs: Iterable[float]) -> None:
        """Add every sample of ``xs`` in order."""
        vals = [_number(x, "x") for x in xs]
        for v in vals:
            self._push(v)

    def _merge(self, o: Ewma) -> None:
        if self._alpha != o._alpha:
            raise ValueError(
                f"cannot merge EWMAs with different alpha ({self._alpha!r} and {o._alpha!r})"
            )
        if o._n == 0:
            return
        if self._n == 0:
            self._n, self._mean, self._var = o._n, o._mean, o._var
            return
        n = self._n + o._n
        w = o._n / n
        d = o._mean - self._mean
        self._mean += d * w
        self._var = (1.0 - w) * self._var + w * o._var + w * (1.0 - w) * (d * d)
        self._n = n

    def merge(self, other: Ewma) -> None:
        """Approximate merge of a shard of the same stream (count-weighted mixture)."""
        if not isinstance(other, Ewma):
            raise TypeError(f"other must be Ewma, not {type(other).__name__}")
        snapshot = Ewma.from_state(other.to_state())  # under other's lock, then ours
        with self._lock:
            self._merge(snapshot)

    @property
    def alpha(self) -> float:
        """Smoothing factor."""
        return self._alpha

    @property
    def count(self) -> int:
        """Samples seen."""
        return self._n

    @property
    def mean(self) -> float:
        """Smoothed mean."""
        return self._mean

    @property
    def variance(self) -> float:
        """Smoothed variance."""
        return self._var

    @property
    def std_dev(self) -> float:
        """Smoothed standard deviation."""
        return math.sqrt(self._var)

    @_synchronized
    def to_state(self) -> tuple[float, int, float, float]:
        """``(alpha, count, mean, variance)``."""
        return (self._alpha, self._n, self._mean, self._var)

    @staticmethod
    def from_state(state: Iterable[Any]) -> Ewma:
        """Rebuild from :meth:`to_state`."""
        parts = _seq(state, 4, "ewma")
        alpha = _state_float(parts[0], "ewma alpha")
        e = Ewma(alpha)
        n = _state_int(parts[1], "ewma count")
        mean = _state_float(parts[2], "ewma mean")
        var = _state_float(parts[3], "ewma variance")
        _ewma_check(n, mean, var)
        e._n, e._mean, e._var = n, mean, var
        return e

    def __repr__(self) -> str:
        return f"Ewma(alpha={self._alpha!r}, count={self._n}, mean={self._mean!r})"


def _ewma_check(n: int, mean: float, var: float) -> None:
    if not math.isfinite(mean) or not math.isfinite(var) or var < 0.0:
        raise ValueError("invalid drift state: ewma mean/variance must be finite and variance >= 0")
    if n == 0 and (mean != 0.0 or var != 0.0):
        raise ValueError("invalid drift state: an empty ewma must have zero mean and variance")


# --- windows -----------------------------------------------------------------------------------


class _SampleRing:
    __slots__ = ("buf", "cap", "head", "length", "since_exact", "total", "window")

    def __init__(self, capacity: int, window: int) -> None:
        self.cap = max(capacity, 1)
        self.window = min(max(window, 1), self.cap)
        self.buf: list[float] = []
        self.head = 0
        self.length = 0
        self.total = 0.0
        self.since_exact = 0

    def push(self, x: float) -> None:
        cap = self.cap
        w = self.window
        leaving = self.buf[(self.head + cap - w) % cap] if self.length >= w else None
        if len(self.buf) < cap:
            self.buf.append(x)
        else:
            self.buf[self.head] = x
        self.head = (self.head + 1) % cap
        if self.length < cap:
            self.length += 1
        self.total += x
        if leaving is not None:
            self.total -= leaving
        self.since_exact += 1
        if self.since_exact >= w:
            self.total = self._exact()
            self.since_exact = 0

    def _exact(self) -> float:
        w = min(self.length, self.window)
        cap = self.cap
        s = 0.0
        for i in range(w):
            s += self.buf[(self.head + cap - w + i) % cap]
        return s

    def window_mean(self) -> float | None:
        w = min(self.length, self.window)
        return None if w == 0 else self.total / w

    def window_full(self) -> bool:
        return self.length >= self.window

    def to_list(self) -> list[float]:
        cap = self.cap
        return [self.buf[(self.head + cap - self.length + i) % cap] for i in range(self.length)]

    def percentiles(self, qs: tuple[float, ...]) -> list[float]:
        v = sorted(self.to_list())
        if not v:
            return [0.0] * len(qs)
        n = len(v)
        return [v[int((n - 1) * q)] for q in qs]


class _TimeWindow:
    __slots__ = ("capacity", "horizon", "times")

    def __init__(self, capacity: int, horizon: float) -> None:
        self.times: deque[float] = deque()
        self.capacity = max(capacity, 1)
        self.horizon = horizon

    def count_recent(self, now: float) -> int:
        times = self.times
        while times and now - times[0] > self.horizon:
            times.popleft()
        return len(times)

    def push(self, now: float) -> None:
        if len(self.times) >= self.capacity:
            self.times.popleft()
        self.times.append(now)


def _chi_term(c: float, e: float) -> float:
    d = c - e
    return d * d / max(e, MIX_MIN_EXPECTED)


class _NameWindow:
    __slots__ = ("counts", "pairs", "probs", "ring", "unseen", "x2")

    def __init__(self) -> None:
        self.ring: deque[str] = deque()
        self.counts: dict[str, int] = {}
        self.pairs = 0
        self.probs: dict[str, float] = {}
        self.unseen = 1.0
        self.x2 = 0.0

    def push(self, name: str) -> None:
        ring = self.ring
        counts = self.counts
        full = len(ring) >= NAME_CAPACITY
        n = float(NAME_CAPACITY)
        if full:
            old = ring.popleft()
            before = counts[old]
            if before == 1:
                del counts[old]
            else:
                counts[old] = before - 1
            e = n * self.probs.get(old, self.unseen)
            self.x2 += _chi_term(before - 1.0, e) - _chi_term(float(before), e)
            if ring and ring[0] == old:
                self.pairs -= 1
        if ring and ring[-1] == name:
            self.pairs += 1
        ring.append(name)
        after = counts.get(name, 0) + 1
        counts[name] = after
        if full:
            e = n * self.probs.get(name, self.unseen)
            self.x2 += _chi_term(float(after), e) - _chi_term(after - 1.0, e)
        else:
            self.recompute()

    def recompute(self) -> None:
        n = float(len(self.ring))
        counts = self.counts
        terms = [(n * p, float(counts.get(k, 0))) for k, p in self.probs.items()]
        terms.extend((n * self.unseen, float(c)) for k, c in counts.items() if k not in self.probs)
        terms.sort()
        x2 = 0.0
        for e, c in terms:
            x2 = x2 + _chi_term(c, e)
        self.x2 = x2

    def set_reference(self, probs: dict[str, float], unseen: float) -> None:
        self.probs = probs
        self.unseen = unseen
        self.recompute()


# --- profiles ----------------------------------------------------------------------------------


def _surprise(count: int, den: float) -> float:
    return math.log2(den) - math.log2(count + ALPHA)


class _Categorical:
    __slots__ = ("cap", "counts", "other", "total")

    def __init__(self, cap: int) -> None:
        self.counts: dict[str, int] = {}
        self.other = 0
        self.total = 0
        self.cap = cap

    def surprise(self, key: str) -> float:
        c = self.counts.get(key, self.other)
        return _surprise(c, self.total + ALPHA * (len(self.counts) + 1.0))

    def observe(self, key: str) -> None:
        self.total += 1
        counts = self.counts
        if key in counts:
            counts[key] += 1
        elif len(counts) < self.cap:
            counts[key] = 1
        else:
            self.other += 1

    def entries(self) -> list[tuple[str, int]]:
        return sorted(self.counts.items())

    def merge(self, o: _Categorical) -> None:
        for k, c in o.entries():
            if k in self.counts:
                self.counts[k] += c
            elif len(self.counts) < self.cap:
                self.counts[k] = c
            else:
                self.other += c
        self.other += o.other
        self.total += o.total


# An argument value: (kind, log-number or None, log-magnitude or None, categorical token or None)
_ArgValue = tuple[int, "float | None", "float | None", "str | None"]


def _standardise(w: Welford, x: float) -> float:
    return (x - w._mean) / max(w.std_dev, SCALE_FLOOR)


class _KeyModel:
    __slots__ = ("cats", "kinds", "len", "num")

    def __init__(self) -> None:
        self.kinds = [0] * N_KINDS
        self.num = Welford()
        self.len = Welford()
        self.cats = _Categorical(MAX_CATEGORIES)

    def score(self, v: _ArgValue) -> float:
        kind, num, mag, tok = v
        n = sum(self.kinds)
        s = _surprise(self.kinds[kind], n + ALPHA * N_KINDS)
        if num is not None and self.num._n >= 2:
            s = max(s, abs(_standardise(self.num, num)))
        if mag is not None and self.len._n >= 2:
            s = max(s, abs(_standardise(self.len, mag)))
        if tok is not None and self.cats.other == 0:
            s = max(s, self.cats.surprise(tok))
        return s

    def observe(self, v: _ArgValue) -> None:
        kind, num, mag, tok = v
        self.kinds[kind] += 1
        if num is not None:
            self.num._push(num)
        if mag is not None:
            self.len._push(mag)
        if tok is not None and self.cats.other == 0:
            self.cats.observe(tok)

    def merge(self, o: _KeyModel) -> None:
        self.kinds = [a + b for a, b in zip(self.kinds, o.kinds, strict=True)]
        self.num._merge(o.num)
        self.len._merge(o.len)
        self.cats.merge(o.cats)


class _CallArgs:
    __slots__ = ("entries", "keyset", "log_size")

    def __init__(
        self, log_size: float, keyset: tuple[str, ...], entries: list[tuple[str, _ArgValue]]
    ) -> None:
        self.log_size = log_size
        self.keyset = keyset
        self.entries = entries


class _ToolModel:
    __slots__ = ("calls", "keys", "keyset_other", "keysets", "latency", "metrics", "size")

    def __init__(self, w: int = 1) -> None:
        # the tool's own accumulators of the PER_TOOL metrics (ring = the window)
        self.metrics = [_Metric(w, w) for _ in PER_TOOL]
        self.latency = Welford()
        self.size = Welford()
        self.keysets: dict[tuple[str, ...], int] = {}
        self.keyset_other = 0
        self.calls = 0
        self.keys: dict[str, _KeyModel] = {}

    def score(self, a: _CallArgs) -> tuple[float, float | None, float | None]:
        c = self.keysets.get(a.keyset, self.keyset_other)
        keys = _surprise(c, self.calls + ALPHA * (len(self.keysets) + 1.0))
        size = _standardise(self.size, a.log_size) if self.size._n >= 2 else None
        values: float | None = None
        km = self.keys
        for k, v in a.entries:
            m = km.get(k)
            if m is not None:
                s = m.score(v)
                values = s if values is None or s > values else values
        return keys, size, values

    def observe(self, a: _CallArgs) -> None:
        self.observe_size(a)
        self.observe_keyset(a)
        self.observe_values(a)

    def observe_size(self, a: _CallArgs) -> None:
        self.size._push(a.log_size)

    def observe_keyset(self, a: _CallArgs) -> None:
        self.calls += 1
        if a.keyset in self.keysets:
            self.keysets[a.keyset] += 1
        elif len(self.keysets) < MAX_KEYSETS:
            self.keysets[a.keyset] = 1
        else:
            self.keyset_other += 1

    def observe_values(self, a: _CallArgs) -> None:
        for k, v in a.entries:
            m = self.keys.get(k)
            if m is not None:
                m.observe(v)
            elif len(self.keys) < MAX_KEYS:
                m = _KeyModel()
                m.observe(v)
                self.keys[k] = m

    def latency_score(self, log_latency: float) -> float | None:
        if self.latency._n >= 2:
            return _standardise(self.latency, log_latency)
        return None

    def merge(self, o: _ToolModel) -> None:
        self.latency._merge(o.latency)
        self.calls += o.calls
        self.size._merge(o.size)
        for ks, c in list(o.keysets.items()):
            if ks in self.keysets:
                self.keysets[ks] += c
            elif len(self.keysets) < MAX_KEYSETS:
                self.keysets[ks] = c
            else:
                self.keyset_other += c
        self.keyset_other += o.keyset_other
        for k in sorted(o.keys):
            om = o.keys[k]
            m = self.keys.get(k)
            if m is not None:
                m.merge(om)
            elif len(self.keys) < MAX_KEYS:
                m = _KeyModel()
                m.merge(om)
                self.keys[k] = m


# --- argument features (same walk as rust/python/src/stats.rs) ---------------------------------


def _size(v: object, depth: int, budget: list[int]) -> float:
    if isinstance(v, (str, bytes, bytearray)):
        return float(len(v))
    if v is None or isinstance(v, bool):
        return 1.0
    if isinstance(v, (int, float)):
        return 8.0
    if isinstance(v, dict):
        if depth >= MAX_SIZE_DEPTH:
            return 8.0 * len(v)
        items = list(dict.items(v))
        n = len(items)
        s = 2.0
        for i, (k, x) in enumerate(items):
            if budget[0] <= 0:
                s += 8.0 * (n - i)
                break
            budget[0] -= 1
            s += _size(k, depth + 1, budget) + _size(x, depth + 1, budget)
        return s
    if isinstance(v, (list, tuple)):
        if depth >= MAX_SIZE_DEPTH:
            return 8.0 * len(v)
        seq = list(v)
        n = len(seq)
        s = 2.0
        for i, x in enumerate(seq):
            if budget[0] <= 0:
                s += 8.0 * (n - i)
                break
            budget[0] -= 1
            s += _size(x, depth + 1, budget)
        return s
    return 8.0


def _key_token(k: object) -> str:
    if isinstance(k, str) and len(k) <= MAX_KEY_CHARS and _valid_text(k):
        return k
    return OTHER_KEY


def _value(v: object, size: float) -> _ArgValue:
    if isinstance(v, str):
        n = len(v)
        tok = v if n <= MAX_CATEGORY_CHARS and _valid_text(v) else None
        return (KIND_TEXT, None, math.log2(1.0 + n), tok)
    if isinstance(v, (bytes, bytearray)):
        return (KIND_BYTES, None, math.log2(1.0 + len(v)), None)
    if v is None:
        return (KIND_NONE, None, None, "\x00None")
    if isinstance(v, bool):
        return (KIND_BOOL, None, None, "\x00True" if v else "\x00False")
    if isinstance(v, (int, float)):
        try:
            f = float(v)
        except OverflowError:
            f = _FLOAT_MAX if v > 0 else -_FLOAT_MAX
        if math.isnan(f):
            return (KIND_NUMBER, None, None, "\x00nan")
        if math.isinf(f):
            return (KIND_NUMBER, None, None, "\x00inf" if f > 0 else "\x00-inf")
        return (KIND_NUMBER, math.copysign(math.log2(1.0 + abs(f)), f), None, None)
    if isinstance(v, (dict, list, tuple)):
        return (KIND_CONTAINER, None, math.log2(1.0 + size), None)
    return (KIND_OTHER, None, None, None)


def _extract_args(arguments: object) -> _CallArgs:
    if isinstance(arguments, dict):
        items = list(dict.items(arguments))
    elif isinstance(arguments, Mapping):
        items = list(dict(arguments).items())
    else:
        raise TypeError(f"arguments must be a mapping or None, not {type(arguments).__name__}")
    n = len(items)
    total = 2.0
    budget = [MAX_SIZE_NODES]
    entries: list[tuple[str, _ArgValue]] = []
    for i, (k, v) in enumerate(items):
        if budget[0] <= 0:
            total += 8.0 * (n - i)
            break
        budget[0] -= 1
        sk = _size(k, 1, budget)
        sv = _size(v, 1, budget)
        total += sk + sv
        if i < MAX_ARG_KEYS:
            entries.append((_key_token(k), _value(v, sv)))
    if n > MAX_ARG_KEYS:
        keyset: tuple[str, ...] = (MANY_KEYS,)
    else:
        keyset = tuple(sorted(_key_token(k) for k, _ in items))
    return _CallArgs(math.log2(1.0 + total), keyset, entries)


def _hour_of(wall: float) -> int:
    r = wall % 86400.0
    return min(math.floor(r / 3600.0), 23)


# --- the engine --------------------------------------------------------------------------------


def _gate_min(min_samples: int) -> int:
    return max(2, -(-min_samples // 2))


def _join_min(m: int, min_samples: int) -> int:
    # consecutive samples of a sliding window overlap: a windowed metric is baselined from at
    # least WINDOW_JOIN full-window samples, except the 100-name counts, which learn one
    # sample per 100 names (non-overlapping windows, see DECIMATED)
    if DECIMATED[m]:
        return min_samples
    return max(min_samples, WINDOW_JOIN) if WINDOWED[m] else min_samples


class _Metric:
    __slots__ = ("acc", "baseline", "ewma", "full_run", "rejected", "ring", "wmeans")

    def __init__(self, capacity: int, w: int) -> None:
        self.acc = Welford()
        self.wmeans = Welford()
        self.ewma = Ewma.with_span(w)
        self.ring = _SampleRing(capacity, w)
        self.baseline: _BaselineT | None = None
        # samples seen but not learned while learning after the lock (beyond LEARN_GATE)
        self.rejected = 0
        # consecutive samples taken over a full window (transient): a sliding-window metric
        # is checked only when its whole current window holds such samples
        self.full_run = 0

    def status(self, m: int, locked: bool) -> str:
        # STATUS_EXCLUDED is no longer produced: short windowed metrics keep learning
        if self.baseline is not None:
            return STATUS_BASELINED
        return STATUS_LEARNING

    def learns(
        self, m: int, x: float, w: int, min_samples: int, locked: bool, pooled: bool, full: bool
    ) -> bool:
        if self.baseline is not None:
            return False
        if WINDOWED[m] and not full:
            return False
        if not locked:
            return True
        if self.acc._n < _gate_min(_join_min(m, min_samples)):
            return True
        return abs(x - self.acc._mean) <= LEARN_GATE * self.scale(m, w, pooled)

    def push(
        self,
        m: int,
        x: float,
        w: int,
        min_samples: int,
        locked: bool,
        pooled: bool,
        track_windows: bool,
        full: bool = True,
        sample: bool = True,
    ) -> bool:
        learn = self.learns(m, x, w, min_samples, locked, pooled, full and sample)
        self.full_run = self.full_run + 1 if full else 0
        ring = self.ring
        ring.push(x)
        self.ewma._push(x)
        if learn:
            self.acc._push(x)
        if DECIMATED[m]:
            # every full window (the last `w` of them full) feeds the window means while
            # learning before the lock; after it only the learned samples do
            wm_ok = full and self.baseline is None and (learn or not locked)
        else:
            # a windowed metric's window means start once `w` full-window samples were learned
            wm_ok = learn and (not WINDOWED[m] or self.acc._n >= w)
        if wm_ok and track_windows and ring.length >= ring.window:
            wm = ring.window_mean()
            if wm is not None:
                self.wmeans._push(wm)
        seen = (full and sample) or not WINDOWED[m]
        if not learn and locked and self.baseline is None and seen:
            self.rejected += 1
        if (
            locked
            and self.baseline is None
            and self.acc._n + self.rejected >= _join_min(m, min_samples)
        ):
            self.make_baseline(m, w, pooled)
        return learn

    def scale(self, m: int, w: int, pooled: bool) -> float:
        acc = self.acc
        mean = acc._mean
        scale = max(acc.std_dev, SCALE_FLOORS[m])
        if RELATIVE_FLOORED[m]:
            scale = max(scale, RELATIVE_FLOOR * abs(mean))
        wm = self.wmeans
        if pooled and wm._n >= 2:
            if WINDOWED[m]:
                scale = max(scale, math.sqrt(float(w)) * wm.std_dev)
            if ENVELOPED[m]:
                envelope = max(wm._max - mean, mean - wm._min)
                scale = max(scale, envelope / ENVELOPE_DIVISOR)
        return scale

    def make_baseline(self, m: int, w: int, pooled: bool) -> None:
        acc = self.acc
        p95, p99 = self.ring.percentiles((0.95, 0.99))
        scale = self.scale(m, w, pooled)
        self.baseline = (m, acc._mean, acc.std_dev, acc._min, acc._max, acc._n, p95, p99, scale)

    def compute_baseline(self, m: int, w: int, min_samples: int, pooled: bool) -> None:
        if self.acc._n < _join_min(m, min_samples):
            self.baseline = None
            return
        self.make_baseline(m, w, pooled)

    def check(self, m: int, tool: str | None) -> _CheckT | None:
        b = self.baseline
        if b is None:
            return None
        cur = self.ring.window_mean()
        if cur is None or (WINDOWED[m] and self.full_run < self.ring.window):
            return None
        z = _z(cur, b[1], b[8])
        if ONE_SIDED[m] and z < 0.0:
            z = 0.0
        return (m, cur, z, b[1], b[8], self.ewma._mean, tool)

    def merge(self, o: _Metric) -> None:
        self.acc._merge(o.acc)
        self.wmeans._merge(o.wmeans)
        self.ewma._merge(o.ewma)
        for x in o.ring.to_list():
            self.ring.push(x)

    def to_state(self) -> dict[str, Any]:
        b = self.baseline
        return {
            "acc": list(self.acc._parts()),
            "window_means": list(self.wmeans._parts()),
            "ewma": [self.ewma._n, self.ewma._mean, self.ewma._var],
            "samples": self.ring.to_list(),
            "rejected": self.rejected,
            "baseline": None
            if b is None
            else {
                "mean": b[1],
                "std_dev": b[2],
                "min_value": b[3],
                "max_value": b[4],
                "sample_count": b[5],
                "percentile_95": b[6],
                "percentile_99": b[7],
                "scale": b[8],
            },
        }


class DriftEngine(_Synchronized):
    """Per-agent drift engine: O(1) recording, O(metrics) checks, bounded memory.

    Args are the original monitor's window parameters (each must be greater than 0).
    ``now`` arguments are monotonic seconds, ``wall`` arguments seconds since the epoch;
    ``None`` reads the system clocks.
    """

    def __init__(
        self,
        baseline_window: int | None = None,
        detection_window: int | None = None,
        min_baseline_samples: int | None = None,
    ) -> None:
        # None means the original monitor's default (100, 10, 20)
        baseline_window = 100 if baseline_window is None else baseline_window
        detection_window = 10 if detection_window is None else detection_window
        min_baseline_samples = 20 if min_baseline_samples is None else min_baseline_samples
        for name, v in (
            ("baseline_window", baseline_window),
            ("detection_window", detection_window),
            ("min_baseline_samples", min_baseline_samples),
        ):
            if _int(v, name) <= 0:
                raise ValueError(f"{name} must be greater than 0")
        super().__init__()
        self._bw = baseline_window
        self._dw = detection_window
        self._min = min_baseline_samples
        self._w = min(detection_window, baseline_window)
        self._locked = False
        self._metrics = [_Metric(baseline_window, self._w) for _ in range(N_METRICS)]
        self._events = _TimeWindow(EVENT_CAPACITY, RATE_HORIZON)
        self._errors = _TimeWindow(baseline_window, RATE_HORIZON)
        self._names = _NameWindow()
        self._tools = _Categorical(MAX_TOOLS)
        self._hours = [0] * 24
        self._hours_total = 0
        self._models: dict[str, _ToolModel] = {}
        self._tool_order: list[str] = []
        self._mix_total = 0
        # monotonic time of the first event recorded (transient, like the windows)
        self._first_event: float | None = None
        # tool names recorded (transient): the 100-name counts learn every 100th only
        self._names_seen = 0

    # -- recording --

    def _refresh_mix(self) -> None:
        entries = self._tools.entries()
        den = self._tools.total + ALPHA * (len(entries) + 1.0)
        probs = {name: (c + ALPHA) / den for name, c in entries}
        unseen = (self._tools.other + ALPHA) / den
        self._names.set_reference(probs, unseen)
        self._mix_total = self._tools.total

    def _push(self, m: int, x: float, full: bool = True, sample: bool = True) -> None:
        self._metrics[m].push(
            m, x, self._w, self._min, self._locked, True, WINDOWED[m] or ENVELOPED[m], full, sample
        )

    def _rate_window_full(self, mono: float) -> bool:
        # the 60 s windows are full once RATE_HORIZON seconds passed since the first event
        if self._first_event is None:
            self._first_event = mono
        return mono - self._first_event >= RATE_HORIZON

    def _insert_tool(self, name: str, model: _ToolModel) -> None:
        bisect.insort(self._tool_order, name)
        self._models[name] = model

    def _call(
        self,
        name: str,
        latency: float | None,
        args: _CallArgs | None,
        mono: float,
        wall: float,
        repetition: bool,
    ) -> None:
        rate_full = self._rate_window_full(mono)
        self._events.push(mono)
        rate = float(self._events.count_recent(mono))
        names = self._names
        names.push(name)
        unique = float(len(names.counts))
        reps = float(names.pairs) if len(names.ring) >= 2 else None
        mix = (
            names.x2
            if len(names.ring) >= NAME_CAPACITY and self._mix_total >= NAME_CAPACITY
            else None
        )
        tool_s = self._tools.surprise(name)
        hour = _hour_of(wall)
        hour_s = _surprise(self._hours[hour], self._hours_total + ALPHA * 24.0)
        log_latency = None if latency is None else math.log2(1.0 + latency)
        model = self._models.get(name)
        lat_s = (
            model.latency_score(log_latency)
            if model is not None and log_latency is not None
            else None
        )
        # a tool without a profile gets one while there is room, before or after the lock
        new_profile = model is None and len(self._models) < MAX_TOOLS
        scored: tuple[float, float | None, float | None] | None = None
        if args is not None:
            if model is not None:
                scored = model.score(args)
            elif not self._locked or new_profile:
                scored = _ToolModel().score(args)
        push = self._push
        self._names_seen += 1
        # full: the last `w` samples were all taken over full name windows (names are never
        # forgotten); one sample per NAME_CAPACITY names is learned (the windows learned do
        # not overlap)
        names_full = self._names_seen >= NAME_CAPACITY + self._w - 1
        sample = self._names_seen % NAME_CAPACITY == 0
        push(TOOL_CALL_RATE, rate, rate_full)
        push(UNIQUE_TOOLS, unique, names_full, sample)
        if repetition and reps is not None:
            push(TOOL_REPETITION, reps, names_full, sample)
        if latency is not None:
            push(LATENCY, latency)
        if mix is not None:
            push(TOOL_MIX, mix)
        push(TOOL_SURPRISE, tool_s)
        push(TIME_OF_DAY, hour_s)
        per_tool: list[float | None] = [lat_s, None, None, None]
        if scored is not None:
            per_tool[1] = scored[1]
            per_tool[2] = scored[0]
            per_tool[3] = scored[2]
        for k, x in enumerate(per_tool):
            if x is not None:
                push(PER_TOOL[k], x)
        locked = self._locked
        if not locked:
            self._tools.observe(name)
            self._hours[hour] += 1
            self._hours_total += 1
        if new_profile:
            model = _ToolModel(self._w)
            self._insert_tool(name, model)
        if model is not None:
            # each part of the profile learns while its metric does
            w, mn = self._w, self._min
            learn = [False, False, False, False]
            for k, x in enumerate(per_tool):
                st = model.metrics[k]
                if x is not None:
                    learn[k] = st.push(PER_TOOL[k], x, w, mn, locked, False, False)
                else:
                    learn[k] = st.baseline is None
            if learn[0] and log_latency is not None:
                model.latency._push(log_latency)
            if args is not None and scored is not None:
                if learn[1]:
                    model.observe_size(args)
                if learn[2]:
                    model.observe_keyset(args)
                if learn[3]:
                    model.observe_values(args)
        if not locked and self._tools.total % MIX_REFRESH == 0:
            self._refresh_mix()

    @_synchronized
    def record_tool_call(
        self,
        tool_name: str,
        latency_ms: float | None = None,
        arguments: Mapping[Any, Any] | None = None,
        now: float | None = None,
        wall: float | None = None,
    ) -> None:
        """Record one tool call (rate, mix, latency, time of day, argument features)."""
        name = _tool_name(tool_name)
        lat: float | None = None
        if latency_ms is not None:
            if isinstance(latency_ms, bool) or not isinstance(latency_ms, (int, float)):
                raise TypeError(
                    f"latency_ms must be a number or None, not {type(latency_ms).__name__}"
                )
            try:
                lat = float(latency_ms)
            except OverflowError:
                lat = math.inf
            if not (math.isfinite(lat) and lat >= 0.0):
                raise ValueError(f"latency_ms must be a finite number >= 0, got {latency_ms!r}")
        args = None if arguments is None else _extract_args(arguments)
        mono = _time(now, "now", time.monotonic)
        w = _time(wall, "wall", time.time)
        self._call(name, lat, args, mono, w, True)

    def record(
        self,
        tool_name: str,
        arguments: Mapping[Any, Any] | None = None,
        latency_ms: float | None = None,
    ) -> None:
        """Record one tool call at the system clocks, with
        ``BehavioralMonitor.record_tool_call``'s signature (``BehavioralMonitor`` binds it as
        that method when no clock is injected)."""
        self.record_tool_call(tool_name, latency_ms, arguments)

    @_synchronized
    def record_tool_event(
        self, tool_name: str, now: float | None = None, wall: float | None = None
    ) -> None:
        """Record a ``tool_call`` event: rate, unique tools, mix and time of day only."""
        name = _tool_name(tool_name)
        mono = _time(now, "now", time.monotonic)
        w = _time(wall, "wall", time.time)
        self._call(name, None, None, mono, w, False)

    @_synchronized
    def record_event_time(self, now: float | None = None) -> None:
        """Add an event time (counted by the call rate)."""
        mono = _time(now, "now", time.monotonic)
        self._rate_window_full(mono)
        self._events.push(mono)

    @_synchronized
    def record_error(self, now: float | None = None) -> None:
        """Record an error (errors in the last 60 s, plus this one)."""
        mono = _time(now, "now", time.monotonic)
        full = self._rate_window_full(mono)
        n = self._errors.count_recent(mono)
        self._errors.push(mono)
        self._push(ERROR_RATE, n + 1.0, full)

    @_synchronized
    def record_value(self, metric: int, value: float) -> None:
        """Record a value of response_length, latency, token_usage, scope_violations,
        context_size or custom (by metric index)."""
        m = _int(metric, "metric")
        if not 0 <= m < N_METRICS:
            raise ValueError(f"unknown metric index {m}")
        if m not in VALUE_METRICS:
            raise ValueError(f"metric {METRIC_NAMES[m]} cannot be recorded directly")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{METRIC_NAMES[m]} value must be a number, not {type(value).__name__}")
        try:
            x = float(value)
        except OverflowError:
            x = math.inf
        if not math.isfinite(x) or (m == LATENCY and x < 0.0):
            lim = " >= 0" if m == LATENCY else ""
            raise ValueError(f"{METRIC_NAMES[m]} value must be a finite number{lim}, got {value!r}")
        self._push(m, x)

    # -- baseline and checks --

    @property
    def locked(self) -> bool:
        """Whether the baseline is locked."""
        return self._locked

    def config(self) -> tuple[int, int, int]:
        """``(baseline_window, detection_window, min_baseline_samples)``."""
        return (self._bw, self._dw, self._min)

    @_synchronized
    def sample_counts(self) -> list[int]:
        """Samples learned per metric, by index."""
        return [st.acc._n for st in self._metrics]

    @_synchronized
    def lock(self) -> list[_BaselineT]:
        """Freeze the tool mix and hour profile; baseline every metric with enough samples
        (the others keep learning and join once they have enough). Returns the baselines;
        once locked, the current ones."""
        if not self._locked:
            self._refresh_mix()
            for m, st in enumerate(self._metrics):
                st.compute_baseline(m, self._w, self._min, True)
            for model in self._models.values():
                for k, st in enumerate(model.metrics):
                    st.compute_baseline(PER_TOOL[k], self._w, self._min, False)
            self._locked = True
        return self.baselines()

    @_synchronized
    def baseline_status(self) -> tuple[list[str], dict[str, list[str]]]:
        """``(statuses, tools)``: the status (``"learning"``, ``"baselined"`` or
        ``"excluded"``) of every metric by index, and ``{tool: statuses of its per-tool
        metrics}`` (tool_latency, argument_size, argument_keys, argument_values) per profiled
        tool, sorted by name."""
        locked = self._locked
        pooled = [st.status(m, locked) for m, st in enumerate(self._metrics)]
        tools = {
            name: [
                st.status(PER_TOOL[k], locked) for k, st in enumerate(self._models[name].metrics)
            ]
            for name in self._tool_order
        }
        return pooled, tools

    @_synchronized
    def baselines(self) -> list[_BaselineT]:
        """``(metric, mean, std_dev, min, max, count, p95, p99, scale)`` per baselined metric."""
        return [st.baseline for st in self._metrics if st.baseline is not None]

    @_synchronized
    def check(self) -> list[_CheckT]:
        """``(metric, current, z, baseline_mean, scale, ewma, tool)`` per evaluable metric, in
        metric order; a per-tool metric is reported for the tool whose window has the largest
        ``|z|`` (the first in name order on ties), ``tool`` naming it (else None)."""
        best: list[_CheckT | None] = [None, None, None, None]
        for name in self._tool_order:
            model = self._models[name]
            for k, st in enumerate(model.metrics):
                c = st.check(PER_TOOL[k], name)
                if c is not None:
                    b = best[k]
                    if b is None or abs(c[2]) > abs(b[2]):
                        best[k] = c
        out: list[_CheckT] = []
        for m, st in enumerate(self._metrics):
            if m in PER_TOOL:
                bc = best[PER_TOOL.index(m)]
                if bc is not None:
                    out.append(bc)
            else:
                c = st.check(m, None)
                if c is not None:
                    out.append(c)
        return out

    @_synchronized
    def evaluate(
        self, threshold: float
    ) -> tuple[float, list[tuple[int, float, float, str | None]], list[_CheckT]]:
        """``(severity, drifting, checks)``: ``checks`` as :meth:`check`, ``drifting`` the
        ``(metric, current, z, tool)`` with ``|z| > threshold``, ``severity`` the largest
        ``min(1, |z| / (2 * threshold))`` among them (0.0 when none)."""
        thr = _number(threshold, "threshold")
        checks = self.check()
        severity = 0.0
        drifting: list[tuple[int, float, float, str | None]] = []
        for m, cur, z, _b, _s, _e, tool in checks:
            az = abs(z)
            if az > thr:
                drifting.append((m, cur, z, tool))
                sev = min(az / (2.0 * thr), 1.0)
                if sev > severity:
                    severity = sev
        return severity, drifting, checks

    @_synchronized
    def current_values(self) -> list[tuple[int, float]]:
        """``(metric, window mean)`` per metric that has samples."""
        out: list[tuple[int, float]] = []
        for m, st in enumerate(self._metrics):
            v = st.ring.window_mean()
            if v is not None:
                out.append((m, v))
        return out

    @_synchronized
    def metric_state(self, metric: int) -> dict[str, Any]:
        """Accumulators of one metric (for inspection and tests)."""
        m = _int(metric, "metric")
        if not 0 <= m < N_METRICS:
            raise ValueError(f"unknown metric index {m}")
        st = self._metrics[m]
        return {
            "acc": st.acc._parts(),
            "window_means": st.wmeans._parts(),
            "ewma": (st.ewma._n, st.ewma._mean, st.ewma._var),
            "samples": st.ring.to_list(),
            "rejected": st.rejected,
        }

    @_synchronized
    def replay(
        self,
        calls: Iterable[Any],
        threshold: float | None = None,
        check_every: int | None = None,
    ) -> dict[str, Any]:
        """Record ``(tool_name, latency_ms, arguments, now, wall)`` calls in order and, once
        the baseline is locked, check after every ``check_every`` calls; count the checks
        with a metric over ``threshold`` (no callbacks, no auto-lock)."""
        thr = 3.0 if threshold is None else _number(threshold, "threshold")
        if thr <= 0.0:
            raise ValueError(f"threshold must be greater than 0, got {threshold!r}")
        every = 1 if check_every is None else _int(check_every, "check_every")
        if every <= 0:
            raise ValueError("check_every must be greater than 0")
        n_calls = checks = alarms = 0
        first: int | None = None
        per_metric: dict[str, int] = {}
        max_z: dict[str, float] = {}
        for i, item in enumerate(calls):
            if not isinstance(item, (tuple, list)) or len(item) != 5:
                raise TypeError(
                    f"calls[{i}] must be a (tool_name, latency_ms, arguments, now, wall) tuple"
                )
            self.record_tool_call(item[0], item[1], item[2], item[3], item[4])
            n_calls += 1
            if self._locked and n_calls % every == 0:
                checks += 1
                drifting = False
                for m, _cur, z, _b, _s, _e, _t in self.check():
                    name = METRIC_NAMES[m]
                    az = abs(z)
                    if az > max_z.get(name, -1.0):
                        max_z[name] = az
                    if az > thr:
                        per_metric[name] = per_metric.get(name, 0) + 1
                        drifting = True
                if drifting:
                    alarms += 1
                    if first is None:
                        first = i
        return {
            "calls": n_calls,
            "checks": checks,
            "alarms": alarms,
            "first_alarm": first,
            "per_metric": per_metric,
            "max_abs_z": max_z,
        }

    # -- shards and persistence --

    def merge(self, other: DriftEngine) -> None:
        """Fold a shard (same configuration, neither locked) into this engine."""
        if not isinstance(other, DriftEngine):
            raise TypeError(f"other must be DriftEngine, not {type(other).__name__}")
        if self._locked or other._locked:
            raise ValueError("cannot merge engines once a baseline is locked")
        if self.config() != other.config():
            raise ValueError("cannot merge engines with different configurations")
        # a consistent copy of the shard, taken under its own lock (it may be self)
        other = DriftEngine.from_state(other.to_state())
        with self._lock:
            self._merge(other)

    def _merge(self, other: DriftEngine) -> None:
        for a, b in zip(self._metrics, other._metrics, strict=True):
            a.merge(b)
        self._tools.merge(other._tools)
        self._hours = [a + b for a, b in zip(self._hours, other._hours, strict=True)]
        self._hours_total += other._hours_total
        for name in sorted(other._models):
            om = other._models[name]
            m = self._models.get(name)
            if m is None:
                if len(self._models) >= MAX_TOOLS:
                    continue
                m = _ToolModel(self._w)
                self._insert_tool(name, m)
            m.merge(om)
            for a, b in zip(m.metrics, om.metrics, strict=True):
                a.merge(b)
        self._refresh_mix()

    @_synchronized
    def to_state(self) -> dict[str, Any]:
        """Everything learned, as JSON-compatible data (transient windows excluded)."""
        metrics = {METRIC_NAMES[m]: st.to_state() for m, st in enumerate(self._metrics)}
        profiles: dict[str, Any] = {}
        for tool in sorted(self._models):
            tm = self._models[tool]
            keys: dict[str, Any] = {}
            for k in sorted(tm.keys):
                km = tm.keys[k]
                keys[k] = {
                    "kinds": list(km.kinds),
                    "num": list(km.num._parts()),
                    "len": list(km.len._parts()),
                    "categories": dict(km.cats.entries()),
                    "categories_other": km.cats.other,
                }
            profiles[tool] = {
                "calls": tm.calls,
                "latency": list(tm.latency._parts()),
                "size": list(tm.size._parts()),
                "keysets": [[list(ks), c] for ks, c in sorted(tm.keysets.items())],
                "keyset_other": tm.keyset_other,
                "keys": keys,
                "metrics": {
                    METRIC_NAMES[PER_TOOL[k]]: st.to_state() for k, st in enumerate(tm.metrics)
                },
            }
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "baseline_window": self._bw,
            "detection_window": self._dw,
            "min_baseline_samples": self._min,
            "locked": self._locked,
            "metrics": metrics,
            "tools": {"counts": dict(self._tools.entries()), "other": self._tools.other},
            "hours": list(self._hours),
            "profiles": profiles,
        }

    @staticmethod
    def from_state(state: Mapping[str, Any]) -> DriftEngine:
        """Rebuild an engine from :meth:`to_state` (validated: a saved state is untrusted)."""
        return _engine_from_state(state)


# --- state parsing (messages match the binding) ------------------------------------------------


def _bad(msg: str) -> ValueError:
    return ValueError(f"invalid drift state: {msg}")


def _req(d: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in d:
        raise _bad(f"missing {path}{key}")
    return d[key]


def _state_int(x: object, path: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < 0 or x >= 2**64:
        raise _bad(f"{path} must be a non-negative integer")
    return x


def _state_float(x: object, path: str) -> float:
    try:
        return _number(x, path)
    except TypeError:
        raise _bad(f"{path} must be a number") from None
    except ValueError:
        raise _bad(f"{path} must be finite") from None


def _state_map(x: object, path: str) -> Mapping[str, Any]:
    if not isinstance(x, Mapping):
        raise _bad(f"{path} must be a mapping")
    return x


def _state_str(x: object, path: str) -> str:
    if not isinstance(x, str) or not _valid_text(x):
        raise _bad(f"{path} must be a string")
    return x


def _seq(x: object, n: int | None, path: str) -> list[Any]:
    if not isinstance(x, (list, tuple)):
        raise _bad(f"{path} must be a list")
    if n is not None and len(x) != n:
        raise _bad(f"{path} must have {n} items")
    return list(x)


def _welford_from(x: object, path: str) -> Welford:
    p = _seq(x, 5, path)
    return _welford_parts(
        _state_int(p[0], f"{path}[0]"),
        _state_float(p[1], f"{path}[1]"),
        _state_float(p[2], f"{path}[2]"),
        _state_float(p[3], f"{path}[3]"),
        _state_float(p[4], f"{path}[4]"),
    )


def _categorical_from(counts: object, other: object, cap: int, path: str) -> _Categorical:
    c = _Categorical(cap)
    d = _state_map(counts, path)
    if len(d) > cap:
        raise _bad(f"{path} has more than {cap} entries")
    total = _state_int(other, f"{path} other")
    for k, v in d.items():
        key = _state_str(k, f"{path} key")
        n = _state_int(v, f"{path}[{key!r}]")
        if n == 0:
            raise _bad(f"{path}[{key!r}] must be > 0")
        c.counts[key] = n
        total += n
    c.other = _state_int(other, f"{path} other")
    c.total = total
    return c


def _metric_from(
    raw: object, st: _Metric, m: int, locked: bool, min_samples: int, path: str
) -> None:
    ms = _state_map(raw, path)
    st.acc = _welford_from(_req(ms, "acc", f"{path}."), f"{path}.acc")
    st.wmeans = _welford_from(_req(ms, "window_means", f"{path}."), f"{path}.window_means")
    ew = _seq(_req(ms, "ewma", f"{path}."), 3, f"{path}.ewma")
    n = _state_int(ew[0], f"{path}.ewma[0]")
    mean = _state_float(ew[1], f"{path}.ewma[1]")
    var = _state_float(ew[2], f"{path}.ewma[2]")
    _ewma_check(n, mean, var)
    st.ewma._n, st.ewma._mean, st.ewma._var = n, mean, var
    samples = _seq(_req(ms, "samples", f"{path}."), None, f"{path}.samples")
    if len(samples) > st.ring.cap:
        raise _bad(f"{path}.samples has too many items")
    for x in samples:
        st.ring.push(_state_float(x, f"{path}.samples[]"))
    b = _req(ms, "baseline", f"{path}.")
    if b is not None:
        if not locked:
            raise _bad(f"{path}: baseline present but not locked")
        bm = _state_map(b, f"{path}.baseline")
        vals = [
            _state_float(_req(bm, k, f"{path}.baseline."), f"{path}.baseline.{k}")
            for k in (
                "mean",
                "std_dev",
                "min_value",
                "max_value",
                "percentile_95",
                "percentile_99",
                "scale",
            )
        ]
        count = _state_int(
            _req(bm, "sample_count", f"{path}.baseline."), f"{path}.baseline.sample_count"
        )
        mean, std, lo, hi, p95, p99, scale = vals
        if std < 0.0 or scale < 0.0 or count == 0 or lo > hi:
            raise _bad(f"baseline of {METRIC_NAMES[m]} is inconsistent")
        st.baseline = (m, mean, std, lo, hi, count, p95, p99, scale)
    # optional: states saved before metrics could learn after the lock have no rejections
    rejected = _state_int(ms["rejected"], f"{path}.rejected") if "rejected" in ms else 0
    if rejected > 0 and not locked:
        raise _bad(f"{path}: rejected samples only exist after the lock")
    if rejected > 0 and st.acc._n < _gate_min(_join_min(m, min_samples)):
        raise _bad(f"{path}: rejected samples before the learning gate applies")
    if locked and st.baseline is None and st.acc._n + rejected >= _join_min(m, min_samples):
        raise _bad(f"{path}: enough samples but no baseline")
    st.rejected = rejected


def _engine_from_state(state: Mapping[str, Any]) -> DriftEngine:
    s = _state_map(state, "state")
    if _req(s, "format", "") != STATE_FORMAT:
        raise _bad(f"format must be {STATE_FORMAT!r}")
    version = _req(s, "version", "")
    if isinstance(version, bool) or not isinstance(version, int) or version != STATE_VERSION:
        raise _bad(f"unsupported version {version!r}")
    cfg = [
        _state_int(_req(s, k, ""), k)
        for k in ("baseline_window", "detection_window", "min_baseline_samples")
    ]
    try:
        e = DriftEngine(cfg[0], cfg[1], cfg[2])
    except ValueError as exc:
        raise _bad(str(exc)) from None
    locked = _req(s, "locked", "")
    if not isinstance(locked, bool):
        raise _bad("locked must be a bool")
    e._locked = locked
    metrics = _state_map(_req(s, "metrics", ""), "metrics")
    for m, name in enumerate(METRIC_NAMES):
        _metric_from(
            _req(metrics, name, "metrics."), e._metrics[m], m, locked, e._min, f"metrics.{name}"
        )
    tools = _state_map(_req(s, "tools", ""), "tools")
    e._tools = _categorical_from(
        _req(tools, "counts", "tools."), _req(tools, "other", "tools."), MAX_TOOLS, "tools"
    )
    hours = _seq(_req(s, "hours", ""), 24, "hours")
    e._hours = [_state_int(h, "hours[]") for h in hours]
    e._hours_total = sum(e._hours)
    if e._hours_total >= 2**64:
        raise _bad("hour counts overflow")
    profiles = _state_map(_req(s, "profiles", ""), "profiles")
    if len(profiles) > MAX_TOOLS:
        raise _bad("too many tool profiles")
    for tool, raw in profiles.items():
        tname = _state_str(tool, "profiles key")
        path = f"profiles[{tname!r}]"
        p = _state_map(raw, path)
        tm = _ToolModel(e._w)
        tm.latency = _welford_from(_req(p, "latency", f"{path}."), f"{path}.latency")
        tm.size = _welford_from(_req(p, "size", f"{path}."), f"{path}.size")
        keysets = _seq(_req(p, "keysets", f"{path}."), None, f"{path}.keysets")
        keys = _state_map(_req(p, "keys", f"{path}."), f"{path}.keys")
        if len(keysets) > MAX_KEYSETS or len(keys) > MAX_KEYS:
            raise _bad(f"tool {tname!r}: too many key sets or keys")
        tm.keyset_other = _state_int(_req(p, "keyset_other", f"{path}."), f"{path}.keyset_other")
        total = tm.keyset_other
        for item in keysets:
            pair = _seq(item, 2, f"{path}.keysets[]")
            ks = tuple(_state_str(k, f"{path}.keysets[] key") for k in _seq(pair[0], None, path))
            c = _state_int(pair[1], f"{path}.keysets[] count")
            if list(ks) != sorted(ks) or len(ks) > MAX_ARG_KEYS or c == 0:
                raise _bad(f"tool {tname!r}: malformed key set")
            if ks in tm.keysets:
                raise _bad(f"tool {tname!r}: duplicate key set")
            tm.keysets[ks] = c
            total += c
        tm.calls = _state_int(_req(p, "calls", f"{path}."), f"{path}.calls")
        if total != tm.calls:
            raise _bad(
                f"tool {tname!r}: calls ({tm.calls}) must equal the key-set counts ({total})"
            )
        for k, kraw in keys.items():
            kname = _state_str(k, f"{path}.keys key")
            kp = f"{path}.keys[{kname!r}]"
            kd = _state_map(kraw, kp)
            km = _KeyModel()
            kinds = _seq(_req(kd, "kinds", f"{kp}."), N_KINDS, f"{kp}.kinds")
            km.kinds = [_state_int(x, f"{kp}.kinds[]") for x in kinds]
            km.num = _welford_from(_req(kd, "num", f"{kp}."), f"{kp}.num")
            km.len = _welford_from(_req(kd, "len", f"{kp}."), f"{kp}.len")
            km.cats = _categorical_from(
                _req(kd, "categories", f"{kp}."),
                _req(kd, "categories_other", f"{kp}."),
                MAX_CATEGORIES,
                f"{kp}.categories",
            )
            tm.keys[kname] = km
        tmetrics = _state_map(_req(p, "metrics", f"{path}."), f"{path}.metrics")
        for slot, m in enumerate(PER_TOOL):
            mname = METRIC_NAMES[m]
            _metric_from(
                _req(tmetrics, mname, f"{path}.metrics."),
                tm.metrics[slot],
                m,
                locked,
                e._min,
                f"{path}.metrics.{mname}",
            )
        e._insert_tool(tname, tm)
    e._refresh_mix()
    return e
