"""Token usage and cost tracking with budget policies.

:class:`CostTracker` prices LLM usage (:class:`ModelPricing` per 1,000 tokens), keeps a
bounded list of :class:`UsageRecord` s for reports (:class:`CostSummary`), and answers
:meth:`CostTracker.check_budget` against a :class:`BudgetPolicy` (per request, per user per
hour/day, organisation per day). Budget checks use exact sliding windows (integer
nano-dollars, as in :mod:`proxilion.security.cost_limiter`), not a scan of the records.

Differences from the original SDK (deliberate): usage of a model with no known price is
charged at the most expensive known rate (unless ``default_model`` names one), so an
unknown or misspelled model cannot make usage free; token counts must be non-negative ints
and prices finite non-negative numbers.

:data:`DEFAULT_PRICING` holds public list prices when this was written; set your own with
:meth:`CostTracker.set_pricing`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

from proxilion.security._tool_patterns import check_name
from proxilion.security.cost_limiter import _Window, check_cost, from_nanos, to_nanos

__all__ = [
    "DEFAULT_PRICING",
    "BudgetPolicy",
    "CostSummary",
    "CostTracker",
    "ModelPricing",
    "UsageRecord",
    "create_cost_tracker",
]

logger = logging.getLogger("proxilion.observability.cost_tracker")

_HOUR = 3600.0
_DAY = 86400.0


def _tokens(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return value


@dataclass(frozen=True)
class ModelPricing:
    """Prices of one model in USD per 1,000 tokens."""

    model_name: str
    input_price_per_1k: float
    output_price_per_1k: float
    cache_read_price_per_1k: float = 0.0
    cache_write_price_per_1k: float = 0.0

    def __post_init__(self) -> None:
        check_name(self.model_name, "model_name")
        for attr in (
            "input_price_per_1k",
            "output_price_per_1k",
            "cache_read_price_per_1k",
            "cache_write_price_per_1k",
        ):
            object.__setattr__(self, attr, check_cost(getattr(self, attr), attr))

    def calculate_cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        """Cost in USD of the given token counts."""
        return (
            _tokens(input_tokens, "input_tokens") * self.input_price_per_1k
            + _tokens(output_tokens, "output_tokens") * self.output_price_per_1k
            + _tokens(cache_read_tokens, "cache_read_tokens") * self.cache_read_price_per_1k
            + _tokens(cache_write_tokens, "cache_write_tokens") * self.cache_write_price_per_1k
        ) / 1000.0


def _p(name: str, inp: float, out: float, cread: float = 0.0, cwrite: float = 0.0) -> ModelPricing:
    return ModelPricing(name, inp, out, cread, cwrite)


#: List prices (USD per 1k tokens) of common models, by model id. Read-only.
DEFAULT_PRICING: MappingProxyType[str, ModelPricing] = MappingProxyType(
    {
        "claude-opus-4-20250514": _p("Claude Opus 4", 0.015, 0.075, 0.0015, 0.01875),
        "claude-sonnet-4-20250514": _p("Claude Sonnet 4", 0.003, 0.015, 0.0003, 0.00375),
        "claude-3-7-sonnet-20250219": _p("Claude 3.7 Sonnet", 0.003, 0.015, 0.0003, 0.00375),
        "claude-3-5-sonnet-20241022": _p("Claude 3.5 Sonnet", 0.003, 0.015, 0.0003, 0.00375),
        "claude-3-5-haiku-20241022": _p("Claude 3.5 Haiku", 0.0008, 0.004, 0.00008, 0.001),
        "claude-3-haiku-20240307": _p("Claude 3 Haiku", 0.00025, 0.00125, 0.00003, 0.0003),
        "gpt-4o": _p("GPT-4o", 0.0025, 0.01, 0.00125),
        "gpt-4o-mini": _p("GPT-4o mini", 0.00015, 0.0006, 0.000075),
        "gpt-4.1": _p("GPT-4.1", 0.002, 0.008, 0.0005),
        "gpt-4.1-mini": _p("GPT-4.1 mini", 0.0004, 0.0016, 0.0001),
        "gpt-4-turbo": _p("GPT-4 Turbo", 0.01, 0.03),
        "gemini-1.5-pro": _p("Gemini 1.5 Pro", 0.00125, 0.005),
        "gemini-1.5-flash": _p("Gemini 1.5 Flash", 0.000075, 0.0003),
        "gemini-2.0-flash": _p("Gemini 2.0 Flash", 0.0001, 0.0004),
    }
)


@dataclass
class UsageRecord:
    """One priced usage of a model."""

    timestamp: datetime
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    user_id: str | None = None
    tool_name: str | None = None
    request_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp.isoformat(),
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": self.cost_usd,
            "user_id": self.user_id,
            "tool_name": self.tool_name,
            "request_id": self.request_id,
            "metadata": dict(self.metadata),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)


@dataclass
class CostSummary:
    """Totals over a set of usage records."""

    total_cost: float = 0.0
    total_input_tokens: int = 0
    total_output_tokens: int = 0
    total_cache_read_tokens: int = 0
    total_cache_write_tokens: int = 0
    record_count: int = 0
    by_model: dict[str, float] = field(default_factory=dict)
    by_user: dict[str, float] = field(default_factory=dict)
    by_tool: dict[str, float] = field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None

    @property
    def total_tokens(self) -> int:
        return (
            self.total_input_tokens
            + self.total_output_tokens
            + self.total_cache_read_tokens
            + self.total_cache_write_tokens
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_cost": self.total_cost,
            "total_input_tokens": self.total_input_tokens,
            "total_output_tokens": self.total_output_tokens,
            "total_cache_read_tokens": self.total_cache_read_tokens,
            "total_cache_write_tokens": self.total_cache_write_tokens,
            "total_tokens": self.total_tokens,
            "record_count": self.record_count,
            "by_model": dict(self.by_model),
            "by_user": dict(self.by_user),
            "by_tool": dict(self.by_tool),
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
        }


@dataclass(frozen=True)
class BudgetPolicy:
    """Budget limits checked by :meth:`CostTracker.check_budget` (``None``: no limit)."""

    max_cost_per_request: float | None = None
    max_tokens_per_request: int | None = None
    max_cost_per_user_per_hour: float | None = None
    max_cost_per_user_per_day: float | None = None
    max_cost_per_day: float | None = None
    alert_threshold: float = 0.8

    def __post_init__(self) -> None:
        for attr in (
            "max_cost_per_request",
            "max_cost_per_user_per_hour",
            "max_cost_per_user_per_day",
            "max_cost_per_day",
        ):
            value = getattr(self, attr)
            if value is not None:
                object.__setattr__(self, attr, check_cost(value, attr))
        if self.max_tokens_per_request is not None:
            _tokens(self.max_tokens_per_request, "max_tokens_per_request")
        threshold: Any = self.alert_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise TypeError("alert_threshold must be a number")
        if not (0 < threshold <= 1):
            raise ValueError(f"alert_threshold must be in (0, 1], got {threshold!r}")

    @property
    def is_active(self) -> bool:
        return any(
            v is not None
            for v in (
                self.max_cost_per_request,
                self.max_tokens_per_request,
                self.max_cost_per_user_per_hour,
                self.max_cost_per_user_per_day,
                self.max_cost_per_day,
            )
        )


class CostTracker:
    """Prices and records usage; checks budgets. Thread-safe.

    Args:
        pricing: model id -> :class:`ModelPricing`, merged over :data:`DEFAULT_PRICING`.
        budget_policy: limits for :meth:`check_budget`.
        default_model: model used by :meth:`estimate_cost` without ``model``, and to price
            unknown models (else the most expensive known rate is used).
        max_records: records kept for reports (oldest dropped first); budget windows are
            kept separately and are not affected.
        clock: monotonic seconds; wall_clock: epoch seconds (both injectable for tests).
    """

    def __init__(
        self,
        pricing: dict[str, ModelPricing] | None = None,
        budget_policy: BudgetPolicy | None = None,
        default_model: str | None = None,
        max_records: int = 100_000,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(max_records, bool) or not isinstance(max_records, int):
            raise TypeError("max_records must be an int")
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        if budget_policy is not None and not isinstance(budget_policy, BudgetPolicy):
            raise TypeError("budget_policy must be a BudgetPolicy or None")
        self._lock = threading.RLock()
        self._pricing: dict[str, ModelPricing] = dict(DEFAULT_PRICING)
        for model, price in (pricing or {}).items():
            self.set_pricing(model, price)
        self._policy = budget_policy
        self._default_model = default_model
        self._records: deque[UsageRecord] = deque(maxlen=max_records)
        self._clock = clock
        self._wall_clock = wall_clock
        self._user_windows: dict[str, tuple[_Window, _Window]] = {}
        self._org_window = _Window(_DAY)
        self._listeners: list[Callable[[UsageRecord], Any]] = []

    def __repr__(self) -> str:
        return f"CostTracker(records={len(self._records)}, policy={self._policy is not None})"

    # ------------------------------------------------------------------ pricing

    def set_pricing(self, model: str, pricing: ModelPricing) -> None:
        check_name(model, "model")
        if not isinstance(pricing, ModelPricing):
            raise TypeError(f"pricing must be a ModelPricing, not {type(pricing).__name__}")
        with self._lock:
            self._pricing[model] = pricing

    def get_pricing(self, model: str) -> ModelPricing | None:
        """The pricing registered for exactly ``model``, or None."""
        with self._lock:
            return self._pricing.get(model)

    def _price_for(self, model: str) -> ModelPricing:
        with self._lock:
            exact = self._pricing.get(model)
            if exact is not None:
                return exact
            prefixes = [k for k in self._pricing if model.startswith(k)]
            if prefixes:
                return self._pricing[max(prefixes, key=len)]
            if self._default_model is not None and self._default_model in self._pricing:
                return self._pricing[self._default_model]
            if not self._pricing:
                raise ValueError(f"no pricing known for model {model!r}")
            return max(
                self._pricing.values(),
                key=lambda p: (p.output_price_per_1k, p.input_price_per_1k),
            )

    def estimate_cost(
        self,
        model: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        """Cost in USD of a planned request (``model`` defaults to ``default_model``)."""
        chosen = model or self._default_model
        if chosen is None:
            raise ValueError("estimate_cost() needs a model (or a default_model)")
        return self._price_for(check_name(chosen, "model")).calculate_cost(
            input_tokens, output_tokens, cache_read_tokens, cache_write_tokens
        )

    # ------------------------------------------------------------------ budgets

    def get_budget_policy(self) -> BudgetPolicy | None:
        return self._policy

    def set_budget_policy(self, policy: BudgetPolicy | None) -> None:
        if policy is not None and not isinstance(policy, BudgetPolicy):
            raise TypeError("policy must be a BudgetPolicy or None")
        self._policy = policy

    def _windows(self, user_id: str) -> tuple[_Window, _Window]:
        pair = self._user_windows.get(user_id)
        if pair is None:
            pair = self._user_windows[user_id] = (_Window(_HOUR), _Window(_DAY))
        return pair

    def _spend(self, user_id: str | None) -> tuple[int, int, int]:
        """(user hour, user day, org day) spend in nanos (lock held)."""
        now = self._clock()
        self._org_window.expire(now)
        if user_id is None:
            return 0, 0, self._org_window.total
        pair = self._user_windows.get(user_id)
        if pair is None:
            return 0, 0, self._org_window.total
        hour, day = pair
        hour.expire(now)
        day.expire(now)
        return hour.total, day.total, self._org_window.total

    def check_budget(
        self, user_id: str, estimated_cost: float = 0.0, estimated_tokens: int = 0
    ) -> tuple[bool, str | None]:
        """Would a request of this cost and size stay within the policy?

        Returns:
            ``(True, None)`` or ``(False, reason)``. Without a policy, always allowed.
        """
        check_name(user_id, "user_id")
        est = check_cost(estimated_cost, "estimated_cost")
        tokens = _tokens(estimated_tokens, "estimated_tokens")
        policy = self._policy
        if policy is None:
            return True, None
        if policy.max_cost_per_request is not None and est > policy.max_cost_per_request:
            return False, (
                f"Estimated cost ${est:.4f} exceeds the per-request limit "
                f"${policy.max_cost_per_request:.4f}"
            )
        if policy.max_tokens_per_request is not None and tokens > policy.max_tokens_per_request:
            return False, (
                f"Estimated tokens {tokens} exceed the per-request token limit "
                f"{policy.max_tokens_per_request}"
            )
        nanos = to_nanos(est)
        with self._lock:
            hour, day, org = self._spend(user_id)
        for spent, limit, label in (
            (hour, policy.max_cost_per_user_per_hour, f"Hourly budget of user {user_id!r}"),
            (day, policy.max_cost_per_user_per_day, f"Daily budget of user {user_id!r}"),
            (org, policy.max_cost_per_day, "Daily organisation budget"),
        ):
            if limit is not None and spent + nanos > to_nanos(limit):
                return False, (
                    f"{label} exceeded: ${from_nanos(spent):.4f} spent + ${est:.4f} > ${limit:.4f}"
                )
        return True, None

    def get_budget_status(self, user_id: str) -> dict[str, Any]:
        """Spend against each limit of the policy for one user."""
        check_name(user_id, "user_id")
        with self._lock:
            hour, day, org = self._spend(user_id)
        policy = self._policy
        status: dict[str, Any] = {
            "user_id": user_id,
            "policy_active": policy is not None and policy.is_active,
            "hourly_spend": from_nanos(hour),
            "daily_spend": from_nanos(day),
            "org_daily_spend": from_nanos(org),
        }
        if policy is None:
            return status
        for key, spent, limit in (
            ("hourly", hour, policy.max_cost_per_user_per_hour),
            ("daily", day, policy.max_cost_per_user_per_day),
            ("org_daily", org, policy.max_cost_per_day),
        ):
            if limit is None:
                continue
            used = from_nanos(spent)
            status[key] = {
                "limit": limit,
                "spent": used,
                "remaining": max(limit - used, 0.0),
                "percent_used": (used / limit * 100.0) if limit else 0.0,
                "alert": limit > 0 and used >= policy.alert_threshold * limit,
            }
        return status

    # ------------------------------------------------------------------ recording

    def add_listener(self, callback: Callable[[UsageRecord], Any]) -> None:
        """Call ``callback(record)`` after every :meth:`record_usage` (outside the lock)."""
        with self._lock:
            self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[UsageRecord], Any]) -> None:
        with self._lock:
            self._listeners = [cb for cb in self._listeners if cb != callback]

    def record_usage(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        tool_name: str | None = None,
        user_id: str | None = None,
        request_id: str | None = None,
        timestamp: datetime | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> UsageRecord:
        """Price and record one usage; returns the :class:`UsageRecord`."""
        check_name(model, "model")
        if user_id is not None:
            check_name(user_id, "user_id")
        cost = self._price_for(model).calculate_cost(
            input_tokens, output_tokens, cache_read_tokens, cache_write_tokens
        )
        wall_now = self._wall_clock()
        if timestamp is None:
            ts = datetime.fromtimestamp(wall_now, timezone.utc)
        else:
            if not isinstance(timestamp, datetime):
                raise TypeError("timestamp must be a datetime or None")
            ts = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=timezone.utc)
        record = UsageRecord(
            timestamp=ts,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            cost_usd=cost,
            user_id=user_id,
            tool_name=tool_name,
            request_id=request_id,
            metadata=dict(metadata or {}),
        )
        nanos = to_nanos(cost)
        with self._lock:
            self._records.append(record)
            now = self._clock()
            at = min(now, now - (wall_now - ts.timestamp()))
            windows = [self._org_window]
            if user_id is not None:
                windows.extend(self._windows(user_id))
            for window in windows:
                window.expire(now)
                window.add_past(now, at, nanos)
            listeners = list(self._listeners)
        for callback in listeners:
            try:
                callback(record)
            except Exception:
                logger.exception("cost tracker listener failed")
        return record

    # ------------------------------------------------------------------ reports

    def _select(
        self,
        user_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        model: str | None = None,
        tool_name: str | None = None,
    ) -> list[UsageRecord]:
        with self._lock:
            records = list(self._records)
        return [
            r
            for r in records
            if (user_id is None or r.user_id == user_id)
            and (start is None or r.timestamp >= start)
            and (end is None or r.timestamp <= end)
            and (model is None or r.model == model)
            and (tool_name is None or r.tool_name == tool_name)
        ]

    def get_records(
        self,
        limit: int | None = None,
        user_id: str | None = None,
        model: str | None = None,
        tool_name: str | None = None,
    ) -> list[UsageRecord]:
        """Kept records, oldest first (the newest ``limit`` if given)."""
        records = self._select(user_id=user_id, model=model, tool_name=tool_name)
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ValueError(f"limit must be a non-negative int, got {limit!r}")
            records = records[len(records) - limit :] if limit else []
        return records

    def get_user_spend(self, user_id: str, period: timedelta) -> float:
        """A user's recorded spend over the last ``period`` (from the kept records)."""
        check_name(user_id, "user_id")
        start = datetime.fromtimestamp(self._wall_clock(), timezone.utc) - period
        return math.fsum(r.cost_usd for r in self._select(user_id=user_id, start=start))

    def get_org_spend(self, period: timedelta) -> float:
        """Everyone's recorded spend over the last ``period`` (from the kept records)."""
        start = datetime.fromtimestamp(self._wall_clock(), timezone.utc) - period
        return math.fsum(r.cost_usd for r in self._select(start=start))

    def get_summary(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        user_id: str | None = None,
    ) -> CostSummary:
        """Totals and breakdowns (by model, user, tool) of the kept records."""
        records = self._select(user_id=user_id, start=start, end=end)
        summary = CostSummary(start=start, end=end, record_count=len(records))
        for r in records:
            summary.total_input_tokens += r.input_tokens
            summary.total_output_tokens += r.output_tokens
            summary.total_cache_read_tokens += r.cache_read_tokens
            summary.total_cache_write_tokens += r.cache_write_tokens
            summary.by_model[r.model] = summary.by_model.get(r.model, 0.0) + r.cost_usd
            user = r.user_id or "anonymous"
            summary.by_user[user] = summary.by_user.get(user, 0.0) + r.cost_usd
            if r.tool_name:
                summary.by_tool[r.tool_name] = summary.by_tool.get(r.tool_name, 0.0) + r.cost_usd
        summary.total_cost = math.fsum(r.cost_usd for r in records)
        return summary

    def clear_records(self) -> int:
        """Drop every record and budget window; returns how many records there were."""
        with self._lock:
            count = len(self._records)
            self._records.clear()
            self._user_windows.clear()
            self._org_window = _Window(_DAY)
        return count

    def export_records(self, format: str = "json") -> str:
        """The kept records as a JSON array (``"json"``) or JSON Lines (``"jsonl"``)."""
        rows = [r.to_dict() for r in self._select()]
        if format == "json":
            return json.dumps(rows, sort_keys=True, default=str)
        if format == "jsonl":
            return "".join(json.dumps(row, sort_keys=True, default=str) + "\n" for row in rows)
        raise ValueError(f"unknown export format {format!r} (use 'json' or 'jsonl')")


def create_cost_tracker(
    budget_policy: BudgetPolicy | None = None,
    custom_pricing: dict[str, ModelPricing] | None = None,
    default_model: str | None = None,
    max_records: int = 100_000,
) -> CostTracker:
    """Build a :class:`CostTracker` with :data:`DEFAULT_PRICING` plus ``custom_pricing``."""
    return CostTracker(
        pricing=custom_pricing,
        budget_policy=budget_policy,
        default_model=default_model,
        max_records=max_records,
    )
