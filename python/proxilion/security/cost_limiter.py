"""Spending limits: per-user (or org, tool, global) budgets over sliding time windows.

An agent that loops, or an attacker who found a way to make it call an expensive API, turns
into a bill. A :class:`CostLimiter` holds :class:`CostLimit` s such as "$1 per minute" and
"$50 per day" per user, and answers before each call whether its estimated cost still fits.

Accounting:

* Amounts are kept as integer nano-dollars (1e-9 USD), so sums are exact: ten spends of
  $0.10 reach a $1.00 limit exactly, never $0.9999999 or $1.0000001.
* Each limit period has its own sliding window per key, stored as time buckets of 1/1000 of
  the period. A spend leaves the window when its bucket's *last* spend is one period old,
  so the window is exact to 0.1 % and errs on the side of counting (never forgets early).
* :meth:`CostLimiter.check_and_record` checks every limit and records the spend in one
  locked step, so concurrent calls cannot all pass a check that only one of them fits
  (the check-then-record race of separate ``check_limit``/``record_spend`` calls). The
  ``@cost_limited`` decorator uses it and refunds the reservation when the call fails.
* Costs must be finite and non-negative: ``NaN`` (which compares false with everything and
  would pass any check) and negative amounts (which would lower the spend) raise
  ``ValueError``.

Pure Python with one lock per limiter: a check costs a few microseconds, far below the LLM
or API call it guards, and exact integer sums plus per-limit windows are simpler to get right
here than in the Rust token buckets of the rate limiter (which count calls, not money).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from proxilion.security._tool_patterns import check_name

if TYPE_CHECKING:
    from proxilion.observability.cost_tracker import CostTracker, UsageRecord

__all__ = [
    "DEFAULT_COST_LIMITS",
    "CostLimit",
    "CostLimitResult",
    "CostLimiter",
    "HybridRateLimiter",
    "LimitScope",
    "create_cost_limiter",
]

logger = logging.getLogger("proxilion.security.cost_limiter")

NANOS_PER_USD = 1_000_000_000
_GLOBAL_KEY = "__global__"
_DEFAULT_ORG = "__default_org__"
_UNKNOWN_TOOL = "__unknown_tool__"
#: Buckets per window (window precision is 1/_BUCKETS of its period).
_BUCKETS = 1000
#: Retention of spend for reporting when no limit is longer.
_BASELINE_PERIOD = 86400.0
_SWEEP_EVERY = 4096


def check_cost(value: object, what: str = "cost") -> float:
    """A finite, non-negative amount in USD, or a named error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}")
    cost = float(value)
    if not math.isfinite(cost):
        raise ValueError(f"{what} must be finite, got {value!r}")
    if cost < 0:
        raise ValueError(f"{what} must be >= 0, got {value!r}")
    return cost


def to_nanos(cost: float) -> int:
    """USD -> integer nano-dollars (rounded to nearest)."""
    return round(cost * NANOS_PER_USD)


def from_nanos(nanos: int) -> float:
    return nanos / NANOS_PER_USD


class LimitScope(Enum):
    """Whose spend a :class:`CostLimit` counts."""

    USER = "user"
    ORG = "org"
    GLOBAL = "global"
    TOOL = "tool"


def _format_period(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class CostLimit:
    """A budget: at most ``max_cost`` USD per ``period`` per key of ``scope``.

    Args:
        max_cost: the budget in USD (finite, >= 0; 0 refuses every non-free call).
        period: the sliding window as a ``timedelta`` (or give ``period_seconds``; with
            neither the period is one day).
        scope: ``USER`` (per user id), ``ORG`` (per org id), ``TOOL`` (per tool name) or
            ``GLOBAL`` (everyone together); the enum or its value.
        name: unique name; defaults to ``"<scope>_<period>"`` such as ``"user_1h"``.
        hard_limit: refuse when exceeded; a soft limit (False) only warns.
        warn_at: fraction of ``max_cost`` from which results carry a warning (None: never).
        period_seconds: the period in seconds (alternative to ``period``).

    Raises:
        ValueError / TypeError: on any invalid field.
    """

    max_cost: float
    period: timedelta | None = None
    scope: LimitScope = LimitScope.USER
    name: str = ""
    hard_limit: bool = True
    warn_at: float | None = 0.8
    period_seconds: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_cost", check_cost(self.max_cost, "max_cost"))
        period: Any = self.period
        seconds: Any = self.period_seconds
        if period is not None:
            if not isinstance(period, timedelta):
                raise TypeError(f"period must be a timedelta, not {type(period).__name__}")
            from_period = period.total_seconds()
            if seconds is not None and float(seconds) != from_period:
                raise ValueError(f"period ({from_period}s) and period_seconds ({seconds}) disagree")
            seconds = from_period
        elif seconds is None:
            seconds = _BASELINE_PERIOD
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"period_seconds must be a number, not {type(seconds).__name__}")
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"the period must be a positive finite duration, got {seconds!r}s")
        object.__setattr__(self, "period_seconds", float(seconds))
        object.__setattr__(self, "period", timedelta(seconds=float(seconds)))
        scope: Any = self.scope
        if not isinstance(scope, LimitScope):
            try:
                scope = LimitScope(scope)
            except ValueError:
                known = ", ".join(s.value for s in LimitScope)
                raise ValueError(f"unknown limit scope {self.scope!r} (known: {known})") from None
            object.__setattr__(self, "scope", scope)
        name: Any = self.name
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if not name.strip():
            object.__setattr__(self, "name", f"{scope.value}_{_format_period(float(seconds))}")
        if not isinstance(self.hard_limit, bool):
            raise TypeError("hard_limit must be a bool")
        warn: Any = self.warn_at
        if warn is not None:
            if isinstance(warn, bool) or not isinstance(warn, (int, float)):
                raise TypeError(f"warn_at must be a number or None, not {type(warn).__name__}")
            if not (0 < warn <= 1):
                raise ValueError(f"warn_at must be in (0, 1], got {warn!r}")

    @property
    def window(self) -> float:
        """The period in seconds."""
        assert self.period_seconds is not None
        return self.period_seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "max_cost": self.max_cost,
            "period_seconds": self.window,
            "scope": self.scope.value,
            "hard_limit": self.hard_limit,
            "warn_at": self.warn_at,
        }


#: Limits used by :func:`create_cost_limiter` and ``CostLimiter(limits=None)``.
DEFAULT_COST_LIMITS: tuple[CostLimit, ...] = (
    CostLimit(max_cost=1.00, period=timedelta(minutes=1), name="user_burst"),
    CostLimit(max_cost=10.00, period=timedelta(hours=1), name="user_hourly"),
    CostLimit(max_cost=50.00, period=timedelta(days=1), name="user_daily"),
)


@dataclass
class CostLimitResult:
    """Answer of a cost check.

    For a refused request, ``limit_name``/``current_spend``/``limit``/``remaining`` describe
    the limit that refused it; for an allowed one, the limit with the least room left.
    ``reset_at`` is when enough of the window's spend expires for the request to fit (UTC).
    """

    allowed: bool
    limit_name: str | None = None
    current_spend: float = 0.0
    limit: float = 0.0
    remaining: float = 0.0
    reset_at: datetime | None = None
    warning: bool = False
    warning_message: str | None = None
    estimated_cost: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "limit_name": self.limit_name,
            "current_spend": self.current_spend,
            "limit": self.limit,
            "remaining": self.remaining,
            "reset_at": self.reset_at.isoformat() if self.reset_at else None,
            "warning": self.warning,
            "warning_message": self.warning_message,
            "estimated_cost": self.estimated_cost,
        }


class _Window:
    """Sliding-window sum of spends over ``period`` seconds, in buckets."""

    __slots__ = ("events", "period", "resolution", "total")

    def __init__(self, period: float) -> None:
        self.period = period
        self.resolution = period / _BUCKETS
        # each event: [time of its last spend, nanos, time of its first spend]
        self.events: deque[list[Any]] = deque()
        self.total = 0

    def expire(self, now: float) -> None:
        cutoff = now - self.period
        events = self.events
        while events and events[0][0] <= cutoff:
            self.total -= events.popleft()[1]

    def add(self, now: float, nanos: int) -> None:
        events = self.events
        if events:
            last = events[-1]
            if 0 <= now - last[2] < self.resolution:
                last[1] += nanos
                if now > last[0]:
                    last[0] = now
                self.total += nanos
                return
        events.append([now, nanos, now])
        self.total += nanos

    def add_past(self, now: float, at: float, nanos: int) -> None:
        """Insert a spend made at ``at`` (<= now) keeping time order."""
        if at <= now - self.period:
            return
        if not self.events or at >= self.events[-1][0]:
            self.add(at, nanos)
            return
        events = list(self.events)
        i = len(events)
        while i > 0 and events[i - 1][0] > at:
            i -= 1
        events.insert(i, [at, nanos, at])
        self.events = deque(events)
        self.total += nanos

    def remove(self, nanos: int) -> None:
        """Take back up to ``nanos`` from the newest spends (a refund)."""
        events = self.events
        i = len(events) - 1
        while nanos > 0 and i >= 0:
            take = min(nanos, events[i][1])
            events[i][1] -= take
            self.total -= take
            nanos -= take
            i -= 1
        while events and events[-1][1] == 0:
            events.pop()

    def since(self, now: float, seconds: float) -> int:
        cutoff = now - seconds
        return sum(e[1] for e in self.events if e[0] > cutoff)

    def free_at(self, now: float, need: int) -> float:
        """Earliest time at which at least ``need`` nanos of spend have expired (or, if
        that never happens, when all of it has)."""
        freed = 0
        for event in self.events:
            freed += event[1]
            if freed >= need:
                return float(event[0]) + self.period
        return float(self.events[-1][0]) + self.period if self.events else now


class _KeySpend:
    __slots__ = ("last_used", "windows")

    def __init__(self) -> None:
        self.windows: dict[float, _Window] = {}
        self.last_used = 0.0


class CostLimiter:
    """Per-key spend over sliding windows, checked against :class:`CostLimit` s.

    Args:
        limits: the limits; ``None`` means :data:`DEFAULT_COST_LIMITS`, ``[]`` none.
        cost_tracker: a :class:`~proxilion.observability.cost_tracker.CostTracker` whose
            recorded usage also counts as spend here (see :meth:`set_cost_tracker`).
        clock: monotonic seconds (injectable for tests).
        wall_clock: epoch seconds, only to express ``reset_at`` as a datetime.

    Thread-safe: one lock guards all accounting.
    """

    def __init__(
        self,
        limits: Iterable[CostLimit] | None = None,
        cost_tracker: CostTracker | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.RLock()
        self._limits: list[CostLimit] = []
        self._keys: dict[tuple[str, str], _KeySpend] = {}
        self._periods: tuple[float, ...] = (_BASELINE_PERIOD,)
        # (limit, cap in nanos, scope value, period), and the scope values to account
        self._caps: tuple[tuple[CostLimit, int, str, float], ...] = ()
        self._scopes: tuple[str, ...] = (LimitScope.USER.value,)
        self._ops = 0
        self._tracker: CostTracker | None = None
        for limit in DEFAULT_COST_LIMITS if limits is None else limits:
            self._put_limit(limit)
        self._refresh_periods()
        if cost_tracker is not None:
            self.set_cost_tracker(cost_tracker)

    def __repr__(self) -> str:
        return f"CostLimiter(limits={[lim.name for lim in self._limits]}, keys={len(self._keys)})"

    # ------------------------------------------------------------------ limits

    @staticmethod
    def _check_limit_obj(limit: object) -> CostLimit:
        if not isinstance(limit, CostLimit):
            raise TypeError(f"limit must be a CostLimit, not {type(limit).__name__}")
        return limit

    def _put_limit(self, limit: CostLimit) -> None:
        self._check_limit_obj(limit)
        for i, existing in enumerate(self._limits):
            if existing.name == limit.name:
                self._limits[i] = limit
                return
        self._limits.append(limit)

    def _refresh_periods(self) -> None:
        self._caps = tuple(
            (lim, to_nanos(lim.max_cost), lim.scope.value, lim.window) for lim in self._limits
        )
        used = {lim.scope for lim in self._limits} | {LimitScope.USER}
        self._scopes = tuple(scope.value for scope in LimitScope if scope in used)
        periods = sorted({_BASELINE_PERIOD, *(lim.window for lim in self._limits)})
        new = tuple(periods)
        if new == self._periods:
            return
        added = set(new) - set(self._periods)
        self._periods = new
        now = self._clock()
        for state in self._keys.values():
            for period in added:
                state.windows[period] = self._seed(state, period, now)

    @staticmethod
    def _seed(state: _KeySpend, period: float, now: float) -> _Window:
        """A new window for ``period``, filled from the best existing window."""
        window = _Window(period)
        longer = [p for p in state.windows if p >= period]
        source_period = min(longer) if longer else max(state.windows, default=None)
        if source_period is not None:
            for event in state.windows[source_period].events:
                if event[0] > now - period:
                    window.add(event[0], event[1])
        return window

    def add_limit(self, limit: CostLimit) -> None:
        """Add a limit (or replace the one with the same name).

        Spend already recorded counts toward the new limit (taken from the existing window
        that covers its period best).
        """
        with self._lock:
            self._put_limit(limit)
            self._refresh_periods()

    def remove_limit(self, name: str) -> bool:
        with self._lock:
            for i, existing in enumerate(self._limits):
                if existing.name == name:
                    del self._limits[i]
                    self._refresh_periods()
                    return True
        return False

    def get_limits(self) -> list[CostLimit]:
        with self._lock:
            return list(self._limits)

    # ------------------------------------------------------------------ tracker

    def set_cost_tracker(self, tracker: CostTracker | None) -> None:
        """Count usage recorded by ``tracker`` as spend of its user (and tool)."""
        with self._lock:
            if self._tracker is not None:
                self._tracker.remove_listener(self._on_usage)
            self._tracker = tracker
            if tracker is not None:
                tracker.add_listener(self._on_usage)

    def get_cost_tracker(self) -> CostTracker | None:
        return self._tracker

    def _on_usage(self, record: UsageRecord) -> None:
        if record.cost_usd > 0:
            self.record_spend(record.user_id or "anonymous", record.cost_usd, record.tool_name)

    # ------------------------------------------------------------------ accounting

    @staticmethod
    def _scope_keys(user_id: str, tool_name: str | None, org_id: str | None) -> dict[str, str]:
        """Scope value -> the key a spend is counted under in that scope."""
        return {
            "user": user_id,
            "global": _GLOBAL_KEY,
            "org": org_id or _DEFAULT_ORG,
            "tool": tool_name or _UNKNOWN_TOOL,
        }

    def _state(self, scope: str, key: str, now: float) -> _KeySpend:
        state = self._keys.get((scope, key))
        if state is None:
            state = _KeySpend()
            for period in self._periods:
                state.windows[period] = _Window(period)
            self._keys[(scope, key)] = state
        state.last_used = now
        return state

    def _window(self, scope: str, key: str, period: float, now: float) -> _Window:
        window = self._state(scope, key, now).windows[period]
        window.expire(now)
        return window

    def _add(self, user_id: str, nanos: int, tool_name: str | None, org_id: str | None) -> None:
        now = self._clock()
        keys = self._scope_keys(user_id, tool_name, org_id)
        for scope in self._scopes:
            for window in self._state(scope, keys[scope], now).windows.values():
                window.expire(now)
                window.add(now, nanos)
        self._maybe_sweep(now)

    def _maybe_sweep(self, now: float) -> None:
        self._ops += 1
        if self._ops % _SWEEP_EVERY:
            return
        longest = max(self._periods)
        stale = [
            k
            for k, st in self._keys.items()
            if now - st.last_used > longest and all(not w.events for w in st.windows.values())
        ]
        for k in stale:
            del self._keys[k]

    def _evaluate(
        self,
        user_id: str,
        nanos: int,
        tool_name: str | None,
        org_id: str | None,
    ) -> CostLimitResult:
        now = self._clock()
        est = from_nanos(nanos)
        denied: CostLimitResult | None = None
        tightest: tuple[int, CostLimit, int] | None = None
        warnings: list[str] = []
        keys = self._scope_keys(user_id, tool_name, org_id)
        for limit, cap, scope, period in self._caps:
            window = self._window(scope, keys[scope], period, now)
            current = window.total
            after = current + nanos
            if after > cap:
                if limit.hard_limit:
                    if denied is None:
                        need = after - cap
                        free = window.free_at(now, need)
                        denied = CostLimitResult(
                            allowed=False,
                            limit_name=limit.name,
                            current_spend=from_nanos(current),
                            limit=limit.max_cost,
                            remaining=from_nanos(max(cap - current, 0)),
                            reset_at=self._to_wall(now, free),
                            estimated_cost=est,
                        )
                    continue
                warnings.append(
                    f"Soft limit '{limit.name}' exceeded: ${from_nanos(after):.4f} of "
                    f"${limit.max_cost:.4f}"
                )
            elif limit.warn_at is not None and cap > 0 and after >= limit.warn_at * cap:
                warnings.append(
                    f"Approaching limit '{limit.name}': ${from_nanos(after):.4f} of "
                    f"${limit.max_cost:.4f} ({after / cap:.0%})"
                )
            room = cap - current
            if tightest is None or room < tightest[0]:
                tightest = (room, limit, current)
        if denied is not None:
            denied.warning = bool(warnings)
            denied.warning_message = "; ".join(warnings) or None
            logger.warning(
                "cost limit %r refused $%.6f for user %r (spent $%.6f of $%.4f)",
                denied.limit_name,
                est,
                user_id,
                denied.current_spend,
                denied.limit,
            )
            return denied
        result = CostLimitResult(allowed=True, estimated_cost=est)
        if tightest is not None:
            room, limit, current = tightest
            result.limit_name = limit.name
            result.current_spend = from_nanos(current)
            result.limit = limit.max_cost
            result.remaining = from_nanos(max(room, 0))
        if warnings:
            result.warning = True
            result.warning_message = "; ".join(warnings)
        return result

    def _to_wall(self, now: float, at: float) -> datetime:
        return datetime.fromtimestamp(self._wall_clock() + (at - now), timezone.utc)

    @staticmethod
    def _ids(user_id: object, tool_name: object, org_id: object) -> None:
        check_name(user_id, "user_id")
        if tool_name is not None:
            check_name(tool_name, "tool_name")
        if org_id is not None:
            check_name(org_id, "org_id")

    def check_limit(
        self,
        user_id: str,
        estimated_cost: float = 0.0,
        tool_name: str | None = None,
        org_id: str | None = None,
    ) -> CostLimitResult:
        """Would spending ``estimated_cost`` now stay within every hard limit?

        Nothing is recorded; see :meth:`check_and_record` for the atomic form.
        """
        self._ids(user_id, tool_name, org_id)
        nanos = to_nanos(check_cost(estimated_cost, "estimated_cost"))
        with self._lock:
            return self._evaluate(user_id, nanos, tool_name, org_id)

    def check_and_record(
        self,
        user_id: str,
        cost: float,
        tool_name: str | None = None,
        org_id: str | None = None,
    ) -> CostLimitResult:
        """Check and, when allowed, record ``cost`` in one atomic step."""
        self._ids(user_id, tool_name, org_id)
        nanos = to_nanos(check_cost(cost))
        with self._lock:
            result = self._evaluate(user_id, nanos, tool_name, org_id)
            if result.allowed:
                self._add(user_id, nanos, tool_name, org_id)
        return result

    def record_spend(
        self,
        user_id: str,
        cost: float,
        tool_name: str | None = None,
        org_id: str | None = None,
    ) -> None:
        """Record money spent (always recorded, even beyond a limit)."""
        self._ids(user_id, tool_name, org_id)
        nanos = to_nanos(check_cost(cost))
        with self._lock:
            self._add(user_id, nanos, tool_name, org_id)

    def refund(
        self,
        user_id: str,
        cost: float,
        tool_name: str | None = None,
        org_id: str | None = None,
    ) -> None:
        """Take back a recent spend (for example a reservation whose call failed)."""
        self._ids(user_id, tool_name, org_id)
        nanos = to_nanos(check_cost(cost))
        with self._lock:
            now = self._clock()
            for scope, key in self._scope_keys(user_id, tool_name, org_id).items():
                state = self._keys.get((scope, key))
                if state is None:
                    continue
                for window in state.windows.values():
                    window.expire(now)
                    window.remove(nanos)

    # ------------------------------------------------------------------ queries

    @staticmethod
    def _seconds(period: timedelta | float) -> float:
        seconds = period.total_seconds() if isinstance(period, timedelta) else period
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"period must be a timedelta or seconds, not {type(period).__name__}")
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"period must be positive and finite, got {period!r}")
        return float(seconds)

    def get_spend_by_period(self, user_id: str, period: timedelta | float) -> float:
        """The user's spend over the last ``period`` (exact for a configured limit period)."""
        check_name(user_id, "user_id")
        seconds = self._seconds(period)
        with self._lock:
            now = self._clock()
            state = self._keys.get(("user", user_id))
            if state is None:
                return 0.0
            window = state.windows.get(seconds)
            if window is not None:
                window.expire(now)
                return from_nanos(window.total)
            longer = [p for p in state.windows if p >= seconds]
            source = state.windows[min(longer) if longer else max(state.windows)]
            source.expire(now)
            return from_nanos(source.since(now, seconds))

    def get_remaining_budget(self, user_id: str, period: timedelta | float | None = None) -> float:
        """Smallest room left among the user's limits (of ``period`` if given).

        ``math.inf`` when no user limit has that period.
        """
        check_name(user_id, "user_id")
        seconds = None if period is None else self._seconds(period)
        with self._lock:
            now = self._clock()
            best = math.inf
            for limit in self._limits:
                if limit.scope is not LimitScope.USER:
                    continue
                if seconds is not None and limit.window != seconds:
                    continue
                window = self._window("user", user_id, limit.window, now)
                best = min(best, from_nanos(max(to_nanos(limit.max_cost) - window.total, 0)))
            return best

    def reset_period(self, user_id: str, period: timedelta | float | None = None) -> None:
        """Forget a user's spend (in the windows of ``period``, or all)."""
        check_name(user_id, "user_id")
        seconds = None if period is None else self._seconds(period)
        with self._lock:
            state = self._keys.get(("user", user_id))
            if state is None:
                return
            for p in list(state.windows):
                if seconds is None or p == seconds:
                    state.windows[p] = _Window(p)

    def reset_all(self) -> None:
        """Forget every key's spend."""
        with self._lock:
            self._keys.clear()

    def get_status(
        self, user_id: str, tool_name: str | None = None, org_id: str | None = None
    ) -> dict[str, Any]:
        """Spend, limit and room of every limit as it applies to this user."""
        self._ids(user_id, tool_name, org_id)
        with self._lock:
            now = self._clock()
            rows = []
            keys = self._scope_keys(user_id, tool_name, org_id)
            for limit, cap, scope, period in self._caps:
                window = self._window(scope, keys[scope], period, now)
                oldest = window.events[0][0] if window.events else None
                rows.append(
                    {
                        **limit.to_dict(),
                        "current_spend": from_nanos(window.total),
                        "remaining": from_nanos(max(cap - window.total, 0)),
                        "percent_used": (window.total / cap * 100.0) if cap else 0.0,
                        "exceeded": window.total > cap,
                        "oldest_spend_expires_at": (
                            self._to_wall(now, oldest + limit.window).isoformat()
                            if oldest is not None
                            else None
                        ),
                    }
                )
        return {"user_id": user_id, "limits": rows}


class _RateLimiterLike(Protocol):
    def allow_request(self, key: str, cost: int = 1) -> bool: ...


class HybridRateLimiter:
    """A cost limiter combined with a call-rate limiter (any object with
    ``allow_request(key) -> bool``, such as ``TokenBucketRateLimiter``).

    The cost check runs first and consumes nothing; only then is a rate token taken.
    """

    def __init__(
        self,
        cost_limiter: CostLimiter | None = None,
        rate_limiter: _RateLimiterLike | None = None,
    ) -> None:
        if cost_limiter is None and rate_limiter is None:
            raise ValueError("HybridRateLimiter needs a cost_limiter, a rate_limiter or both")
        self.cost_limiter = cost_limiter
        self.rate_limiter = rate_limiter

    def __repr__(self) -> str:
        return f"HybridRateLimiter(cost_limiter={self.cost_limiter!r}, rate={self.rate_limiter!r})"

    @staticmethod
    def _cost_reason(result: CostLimitResult) -> str:
        return (
            f"Cost limit exceeded: {result.limit_name} "
            f"(${result.current_spend:.4f} / ${result.limit:.4f})"
        )

    def allow_request(
        self, user_id: str, estimated_cost: float = 0.0, tool_name: str | None = None
    ) -> tuple[bool, str | None]:
        """``(True, None)`` or ``(False, reason)``; nothing is recorded on the cost side."""
        if self.cost_limiter is not None:
            result = self.cost_limiter.check_limit(user_id, estimated_cost, tool_name)
            if not result.allowed:
                return False, self._cost_reason(result)
        if self.rate_limiter is not None and not self.rate_limiter.allow_request(user_id):
            return False, "Rate limit exceeded"
        return True, None

    def check_and_record(
        self, user_id: str, cost: float, tool_name: str | None = None
    ) -> tuple[bool, str | None]:
        """Reserve ``cost`` atomically, then take a rate token (refunding if refused)."""
        if self.cost_limiter is not None:
            result = self.cost_limiter.check_and_record(user_id, cost, tool_name)
            if not result.allowed:
                return False, self._cost_reason(result)
        if self.rate_limiter is not None and not self.rate_limiter.allow_request(user_id):
            if self.cost_limiter is not None:
                self.cost_limiter.refund(user_id, cost, tool_name)
            return False, "Rate limit exceeded"
        return True, None

    def refund(self, user_id: str, cost: float, tool_name: str | None = None) -> None:
        if self.cost_limiter is not None:
            self.cost_limiter.refund(user_id, cost, tool_name)

    def record_usage(self, user_id: str, cost: float, tool_name: str | None = None) -> None:
        """Record a spend on the cost side."""
        if self.cost_limiter is not None:
            self.cost_limiter.record_spend(user_id, cost, tool_name)

    def get_status(self, user_id: str) -> dict[str, Any]:
        status: dict[str, Any] = {"user_id": user_id}
        status["cost_limiter"] = (
            self.cost_limiter.get_status(user_id) if self.cost_limiter is not None else None
        )
        status["rate_limiter"] = (
            type(self.rate_limiter).__name__ if self.rate_limiter is not None else None
        )
        return status


def create_cost_limiter(
    limits: Iterable[CostLimit] | None = None,
    include_defaults: bool = True,
    cost_tracker: CostTracker | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> CostLimiter:
    """Build a :class:`CostLimiter`: :data:`DEFAULT_COST_LIMITS` (unless
    ``include_defaults=False``) followed by ``limits``; a limit in ``limits`` replaces a
    default of the same name."""
    chosen: list[CostLimit] = list(DEFAULT_COST_LIMITS) if include_defaults else []
    chosen.extend(limits or ())
    return CostLimiter(chosen, cost_tracker, clock=clock, wall_clock=wall_clock)
