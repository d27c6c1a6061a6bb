"""Behavioral drift detection (API.md section 8.5, seed example 7).

:class:`BehavioralMonitor` learns how an agent normally behaves, freezes that as a baseline,
then compares the agent's recent behaviour against it with z-scores. It covers the four
detection methods the security model names:

* **tool-call rate and mix**: calls per minute (``tool_call_rate``), distinct tools and
  repetitions among the last 100 calls (``unique_tools``, ``tool_repetition``), the
  divergence of the last 100 calls' tool mix from the baseline mix (``tool_mix``), and how
  surprising each tool is under that mix (``tool_surprise``; a tool never called in the
  baseline is very surprising);
* **latency**: ``latency`` (all calls) and ``tool_latency`` (each tool against its own);
* **time of day**: how surprising the hour (UTC) of each call is under the baseline's
  hour-of-day profile (``time_of_day``);
* **argument features**, per tool: argument size against that tool's usual sizes
  (``argument_size``), the set of argument keys (``argument_keys``) and the values of each
  key: numbers, lengths, categories and types (``argument_values``).

The per-tool metrics (``tool_latency`` and the ``argument_*`` ones) keep a baseline and a
current window per tool, and a check reports the tool that deviates most. See
``docs/behavioral_drift.md`` for the definitions, guarantees and measured figures.

The statistics run in Rust (``proxilion._core.DriftEngine``; pure-Python twin in
``proxilion._reference.stats``): recording a call and checking drift are both O(1), however
many calls were recorded, and memory per agent is bounded. :class:`DriftDetector` wires a
monitor to a :class:`KillSwitch` so severe drift halts the agent, once.

Where we deliberately differ from the original SDK (each fixes a weakness):

* ``arguments`` is no longer ignored, and mix, time-of-day, per-tool latency and argument
  drift exist (seven new :class:`DriftMetric` members, after the original ten).
* The baseline mean and standard deviation cover *every* sample recorded before the lock
  (Welford accumulators), not only the last ``baseline_window``; ``baseline_window`` still
  bounds the samples kept for the percentiles and ``sample_count`` is the number learned.
* Metrics that are themselves sliding-window counts (``tool_call_rate``, ``error_rate``,
  ``unique_tools``, ``tool_repetition``, ``tool_mix``) have strongly correlated consecutive
  samples; their z-scores use an autocorrelation-aware deviation
  (:attr:`BaselineStats.effective_std_dev`), the original metrics' deviation is at least the
  spread of the windows seen while learning over 1.5, and every metric has a documented
  floor, so a steady agent does not raise alarms. For independent samples with a
  coefficient of variation of at least 10 % the effective deviation is the standard
  deviation, so z-scores are the original's. The anomaly-score metrics' z-scores are
  one-sided (a window less unusual than the baseline is not drift).
* Once locked, the baselined metrics and the tool-mix and hour profiles are frozen; calling
  :meth:`BehavioralMonitor.lock_baseline` again returns the current baseline (``reset()``
  starts learning anew). A metric that had too few samples at the lock (the original left it out
  for good) keeps learning and joins the frozen baseline once it has
  ``min_baseline_samples``, and so do the per-tool baselines of a tool with too few calls or
  first seen after the lock; samples far outside what such a metric has learned are not
  learned (:class:`BaselineSnapshot` says which metrics are baselined and which still learn).
* A baseline whose samples were all equal (a constant latency, say) no longer turns the
  smallest measurement noise into an absurd z-score: the value metrics' deviation has a
  floor of 10 % of the baseline mean and an absolute floor (1 ms for latency).
* Bad values (NaN or infinite numbers, negative latencies, a non-``str`` tool name) raise
  ``ValueError``/``TypeError`` instead of poisoning the statistics.
* :class:`DriftDetector` activates the kill switch once per drift, not twice.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import ModuleType
from typing import Any, NamedTuple

from proxilion._backend import impl as _default_impl
from proxilion.exceptions import BehavioralDriftError, EmergencyHaltError
from proxilion.security.kill_switch import KillSwitch

__all__ = [
    "BaselineSnapshot",
    "BaselineStats",
    "BehavioralMonitor",
    "DriftDetector",
    "DriftMetric",
    "DriftResult",
    "KillSwitch",
    "MetricDrift",
    "MetricValue",
    "ReplaySummary",
]

logger = logging.getLogger("proxilion.security.behavioral_drift")

_STATE_FORMAT = "proxilion.behavioral_monitor"
_STATE_VERSION = 1


class DriftMetric(Enum):
    """Metrics a :class:`BehavioralMonitor` tracks.

    The first ten are the original SDK's. The last seven are new:

    * ``TOOL_MIX``: chi-square divergence of the last 100 calls' tool counts from the
      baseline tool mix (expected counts floored at 5).
    * ``TOOL_SURPRISE``: surprise (bits, ``-log2 p``) of each called tool under the baseline
      tool mix; a tool never seen in the baseline is very surprising.
    * ``TIME_OF_DAY``: surprise (bits) of each call's hour of day (UTC) under the baseline's
      hour-of-day profile.
    * ``TOOL_LATENCY``: latency standardised against that tool's baseline latencies (log
      scale).
    * ``ARGUMENT_SIZE``: size of each call's arguments, standardised against that tool's
      baseline sizes (log scale).
    * ``ARGUMENT_KEYS``: surprise (bits) of each call's set of argument keys under that tool's
      baseline key sets.
    * ``ARGUMENT_VALUES``: the largest anomaly score of a call's argument values against that
      tool's baseline per key (standardised numbers and lengths; surprise of categorical
      values and of value types, in bits).

    ``TOOL_LATENCY`` and the ``ARGUMENT_*`` metrics are evaluated per tool. ``TOOL_MIX``,
    ``TOOL_SURPRISE``, ``TIME_OF_DAY``, ``ARGUMENT_KEYS`` and ``ARGUMENT_VALUES`` are anomaly
    scores: their z-score in a drift check is one-sided (a window less unusual than the
    baseline scores 0).
    """

    TOOL_CALL_RATE = "tool_call_rate"
    RESPONSE_LENGTH = "response_length"
    ERROR_RATE = "error_rate"
    UNIQUE_TOOLS = "unique_tools"
    LATENCY = "latency"
    TOKEN_USAGE = "token_usage"  # noqa: S105 - a metric name, not a secret
    TOOL_REPETITION = "tool_repetition"
    SCOPE_VIOLATIONS = "scope_violations"
    CONTEXT_SIZE = "context_size"
    CUSTOM = "custom"
    TOOL_MIX = "tool_mix"
    TOOL_SURPRISE = "tool_surprise"
    TIME_OF_DAY = "time_of_day"
    TOOL_LATENCY = "tool_latency"
    ARGUMENT_SIZE = "argument_size"
    ARGUMENT_KEYS = "argument_keys"
    ARGUMENT_VALUES = "argument_values"


#: Metrics by engine index (the engine numbers them in this order).
_METRICS: tuple[DriftMetric, ...] = tuple(DriftMetric)
_INDEX: dict[DriftMetric, int] = {m: i for i, m in enumerate(_METRICS)}
_RECORDABLE = frozenset(
    {
        DriftMetric.RESPONSE_LENGTH,
        DriftMetric.LATENCY,
        DriftMetric.TOKEN_USAGE,
        DriftMetric.SCOPE_VIOLATIONS,
        DriftMetric.CONTEXT_SIZE,
        DriftMetric.CUSTOM,
    }
)


def _check_engine(mod: ModuleType) -> None:
    names = list(mod.drift_metric_names())
    if names != [m.value for m in _METRICS]:
        raise RuntimeError(
            f"drift engine of backend {mod.__name__} numbers its metrics differently: {names}"
        )


_check_engine(_default_impl)


@dataclass
class MetricValue:
    """One recorded value of a metric (kept for API compatibility with the original)."""

    metric: DriftMetric
    value: float
    timestamp: float
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class BaselineStats:
    """Locked baseline of one metric.

    ``mean`` and ``std_dev`` (sample standard deviation, n - 1) cover every sample learned
    before the lock; ``min_value``/``max_value`` likewise; the percentiles use the original's
    rule ``sorted[int((n - 1) * q)]`` over the last ``baseline_window`` samples.

    ``effective_std_dev`` (new) is the deviation z-scores are measured in: the standard
    deviation with a per-metric floor (for the value metrics ``response_length``, ``latency``,
    ``token_usage``, ``scope_violations``, ``context_size`` and ``custom`` also at least 10 %
    of ``|mean|``, so a constant baseline is not infinitely sensitive) and, for the
    sliding-window count metrics, at least ``sqrt(window) * std(window means)`` observed while
    learning. ``std_dev`` stays the plain sample deviation (0.0 for a constant baseline). It
    is ``None`` for baselines built by hand, which then use ``std_dev`` as in the original.
    """

    metric: DriftMetric
    mean: float
    std_dev: float
    min_value: float
    max_value: float
    sample_count: int
    percentile_95: float
    percentile_99: float
    effective_std_dev: float | None = None

    def z_score(self, value: float) -> float:
        """``(value - mean) / deviation``; with a zero deviation, 0.0 when ``value`` equals
        the mean and +inf otherwise (the original's rule)."""
        scale = self.std_dev if self.effective_std_dev is None else self.effective_std_dev
        d = value - self.mean
        if scale == 0:
            return 0.0 if d == 0 else math.inf
        return d / scale

    def is_anomaly(self, value: float, threshold: float = 3.0) -> bool:
        """Whether ``|z_score(value)| > threshold``."""
        return abs(self.z_score(value)) > threshold


_PER_TOOL_METRICS: tuple[DriftMetric, ...] = (
    DriftMetric.TOOL_LATENCY,
    DriftMetric.ARGUMENT_SIZE,
    DriftMetric.ARGUMENT_KEYS,
    DriftMetric.ARGUMENT_VALUES,
)


class BaselineSnapshot(dict[DriftMetric, BaselineStats]):
    """What :meth:`BehavioralMonitor.lock_baseline` and :meth:`~BehavioralMonitor.get_baseline`
    return: ``{metric: BaselineStats}`` for every baselined metric (a ``dict``, as in the
    original), plus where the other metrics stand (new):

    * :attr:`learning`: metrics not baselined yet that keep learning. Before the lock, every
      metric; after it, each metric that had fewer than ``min_baseline_samples`` samples at
      the lock. Such a metric joins the frozen baseline once it has seen
      ``min_baseline_samples`` samples (its own baseline frozen from then on); a sample farther
      than 4 deviations from what it has learned (once it has learned half of them) is seen
      but not learned, so behaviour starting right after the lock cannot widen the baseline
      it is judged against.
    * :attr:`excluded`: no longer produced (always empty; kept for compatibility). Sliding-
      window metrics (``tool_call_rate``, ``error_rate``, ``unique_tools``,
      ``tool_repetition``, ``tool_mix``) learn only samples taken over a full window, so one
      short of samples at the lock keeps learning and joins late like the others.
    * :attr:`tools`: for each profiled tool, the status (``"baselined"`` or ``"learning"``)
      of its own baselines of the per-tool metrics (``tool_latency``, ``argument_size``,
      ``argument_keys``, ``argument_values``). Drift of a per-tool metric is judged per tool,
      so a tool with few calls at the lock, or first seen after it, learns its own until it
      has ``min_baseline_samples`` samples of each. (The keys of this dict hold the per-tool
      metrics pooled over every tool, for their statistics.)
    """

    def __init__(
        self,
        stats: Mapping[DriftMetric, BaselineStats]
        | Iterable[tuple[DriftMetric, BaselineStats]]
        | None = None,
        *,
        learning: Iterable[DriftMetric] = (),
        excluded: Iterable[DriftMetric] = (),
        tools: Mapping[str, Mapping[DriftMetric, str]] | None = None,
    ) -> None:
        super().__init__(stats or {})
        self.learning: frozenset[DriftMetric] = frozenset(learning)
        self.excluded: frozenset[DriftMetric] = frozenset(excluded)
        self.tools: dict[str, dict[DriftMetric, str]] = {
            t: dict(v) for t, v in (tools or {}).items()
        }

    @property
    def learning_tools(self) -> dict[str, frozenset[DriftMetric]]:
        """``{tool: per-tool metrics still learning}`` for every tool with any."""
        out: dict[str, frozenset[DriftMetric]] = {}
        for tool, st in self.tools.items():
            learning = frozenset(m for m, s in st.items() if s == "learning")
            if learning:
                out[tool] = learning
        return out

    def copy(self) -> BaselineSnapshot:
        """A shallow copy (statuses included)."""
        return BaselineSnapshot(
            self, learning=self.learning, excluded=self.excluded, tools=self.tools
        )


class MetricDrift(NamedTuple):
    """One metric's evaluation in a drift check: its baseline, current value and z-score.

    ``baseline_std_dev`` is the deviation the z-score is measured in (the baseline's
    effective standard deviation). For the per-tool metrics (``tool_latency`` and the three
    ``argument_*``) ``tool`` names the tool evaluated (the one deviating most) and the
    baseline is that tool's own; for the others it is None.
    """

    metric: DriftMetric
    baseline_mean: float
    baseline_std_dev: float
    current_value: float
    z_score: float
    severity: float
    is_drifting: bool
    ewma: float
    tool: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "metric": self.metric.value,
            "baseline_mean": self.baseline_mean,
            "baseline_std_dev": self.baseline_std_dev,
            "current_value": self.current_value,
            "z_score": self.z_score,
            "severity": self.severity,
            "is_drifting": self.is_drifting,
            "ewma": self.ewma,
            "tool": self.tool,
        }


_CheckT = tuple[int, float, float, float, float, float, "str | None"]


@dataclass
class DriftResult:
    """Outcome of :meth:`BehavioralMonitor.check_drift`.

    The original's fields: ``drifting_metrics`` lists ``(metric, current value, z-score)``
    for each drifting metric; ``severity`` is the largest ``min(1, |z| / (2 * threshold))``
    among them (0.0 when nothing drifts). New: :attr:`details` gives a :class:`MetricDrift`
    (baseline mean and deviation, current value, z-score, severity) for every evaluated
    metric and :attr:`z_scores` their z-scores; both are built on first access. The z-scores
    of the anomaly-score metrics (see :class:`DriftMetric`) are at least 0.
    """

    is_drifting: bool
    severity: float
    drifting_metrics: list[tuple[DriftMetric, float, float]] = field(default_factory=list)
    reason: str = ""
    timestamp: float = field(default_factory=time.time)
    checks: list[_CheckT] = field(default_factory=list, repr=False, compare=False)
    threshold: float = 3.0

    @property
    def details(self) -> list[MetricDrift]:
        """Every evaluated metric: baseline, current value, z-score, severity."""
        thr = self.threshold
        two = 2.0 * thr
        return [
            MetricDrift(
                _METRICS[m], mean, scale, cur, z, min(1.0, abs(z) / two), abs(z) > thr, ew, tool
            )
            for m, cur, z, mean, scale, ew, tool in self.checks
        ]

    @property
    def z_scores(self) -> dict[DriftMetric, float]:
        """``{metric: z-score}`` for every evaluated metric."""
        return {_METRICS[c[0]]: c[2] for c in self.checks}

    def to_dict(self, include_details: bool = False) -> dict[str, Any]:
        """The original's keys (``is_drifting``, ``severity``, ``drifting_metrics`` as
        ``{"metric", "value", "z_score"}`` dicts, ``reason``, ``timestamp``); with
        ``include_details`` also ``z_scores`` and ``details``."""
        d: dict[str, Any] = {
            "is_drifting": self.is_drifting,
            "severity": self.severity,
            "drifting_metrics": [
                {"metric": m.value, "value": v, "z_score": z} for m, v, z in self.drifting_metrics
            ],
            "reason": self.reason,
            "timestamp": self.timestamp,
        }
        if include_details:
            d["z_scores"] = {m.value: z for m, z in self.z_scores.items()}
            d["details"] = [x.to_dict() for x in self.details]
        return d

    def raise_for_drift(self) -> None:
        """Raise :class:`BehavioralDriftError` for the drifting metric with the largest
        ``|z|`` (baseline value = its baseline mean, deviation = its z-score); no-op when
        nothing drifts."""
        if not self.is_drifting or not self.drifting_metrics:
            return
        m, v, z = max(self.drifting_metrics, key=lambda t: abs(t[2]))
        base = next((d.baseline_mean for d in self.details if d.metric is m), math.nan)
        raise BehavioralDriftError(m.value, base, v, z)


@dataclass(frozen=True)
class ReplaySummary:
    """Result of :meth:`BehavioralMonitor.replay`."""

    calls: int
    checks: int
    alarms: int
    first_alarm: int | None
    per_metric: dict[DriftMetric, int]
    max_abs_z: dict[DriftMetric, float]

    @property
    def alarm_rate(self) -> float:
        """Fraction of checks that found drift (0.0 without checks)."""
        return self.alarms / self.checks if self.checks else 0.0


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be greater than 0")
    return value


def _clock_or_none(
    clock: Callable[[], float] | None, default: Callable[[], float], name: str
) -> Callable[[], float] | None:
    if clock is None or clock is default:
        return None
    if not callable(clock):
        raise TypeError(f"{name} must be callable, not {type(clock).__name__}")
    return clock


class BehavioralMonitor:
    """Learns an agent's normal behaviour, locks it as a baseline, and detects drift.

    Args:
        agent_id: the monitored agent.
        baseline_window: samples kept per metric for the baseline percentiles.
        detection_window: samples averaged into each metric's current value.
        drift_threshold: a metric drifts when ``|z| > drift_threshold``.
        min_baseline_samples: samples a metric needs to be part of the baseline.
        clock: monotonic clock in seconds for the call rate (default: the system's).
        wall_clock: wall clock in seconds since the epoch for the time of day (default: the
            system's).

    Every parameter must be greater than 0. Thread-safe: recording goes straight to the
    engine (which has its own lock); baseline and callback state are guarded by an RLock.
    """

    def __init__(
        self,
        agent_id: str,
        baseline_window: int = 100,
        detection_window: int = 10,
        drift_threshold: float = 3.0,
        min_baseline_samples: int = 20,
        *,
        clock: Callable[[], float] | None = None,
        wall_clock: Callable[[], float] | None = None,
        _impl: ModuleType | None = None,
    ) -> None:
        if not isinstance(agent_id, str):
            raise TypeError(f"agent_id must be str, not {type(agent_id).__name__}")
        _positive_int(baseline_window, "baseline_window")
        _positive_int(detection_window, "detection_window")
        if isinstance(drift_threshold, bool) or not isinstance(drift_threshold, (int, float)):
            raise TypeError(
                f"drift_threshold must be a number, not {type(drift_threshold).__name__}"
            )
        if not math.isfinite(drift_threshold):
            raise ValueError(f"drift_threshold must be a finite number, got {drift_threshold!r}")
        if drift_threshold <= 0:
            raise ValueError("drift_threshold must be greater than 0")
        _positive_int(min_baseline_samples, "min_baseline_samples")
        self.agent_id = agent_id
        self.baseline_window = baseline_window
        self.detection_window = detection_window
        self.drift_threshold = float(drift_threshold)
        self.min_baseline_samples = min_baseline_samples
        self._impl = _impl if _impl is not None else _default_impl
        if _impl is not None:
            _check_engine(_impl)
        self._clock = _clock_or_none(clock, time.monotonic, "clock")
        self._wall = _clock_or_none(wall_clock, time.time, "wall_clock")
        self._lock = threading.RLock()
        self._set_engine(self._new_engine())
        self._callbacks: list[Callable[[DriftResult], Any]] = []

    def _new_engine(self) -> Any:
        return self._impl.DriftEngine(
            self.baseline_window, self.detection_window, self.min_baseline_samples
        )

    def _set_engine(self, engine: Any) -> None:
        """Use ``engine``. Without injected clocks (and unless a subclass overrides
        :meth:`record_tool_call`), ``record_tool_call`` is bound straight to the engine's
        ``record`` (same signature, checks and messages), so recording a call is one native
        call with no Python frame in between."""
        self._engine = engine
        fast = (
            self._clock is None
            and self._wall is None
            and type(self).record_tool_call is BehavioralMonitor.record_tool_call
        )
        if fast:
            self.__dict__["record_tool_call"] = engine.record
        else:
            self.__dict__.pop("record_tool_call", None)

    def __repr__(self) -> str:
        return (
            f"BehavioralMonitor(agent_id={self.agent_id!r}, "
            f"drift_threshold={self.drift_threshold!r}, locked={self.is_locked})"
        )

    def _now(self) -> float | None:
        c = self._clock
        return None if c is None else c()

    def _wall_now(self) -> float | None:
        c = self._wall
        return None if c is None else c()

    # -- recording -------------------------------------------------------------------------

    def record_tool_call(
        self,
        tool_name: str,
        arguments: Mapping[str, Any] | None = None,
        latency_ms: float | None = None,
    ) -> None:
        """Record one tool call.

        Updates the call rate, distinct tools and repetitions among the last 100 calls, the
        tool mix, the time of day, ``latency_ms`` when given, and, when ``arguments`` is
        given (unlike the original, which ignored it), the argument size, key set and
        values for that tool.

        Raises:
            TypeError: ``tool_name`` is not a ``str``, ``arguments`` not a mapping,
                ``latency_ms`` not a number.
            ValueError: ``latency_ms`` is negative, NaN or infinite; ``tool_name`` contains
                lone surrogates.
        """
        c = self._clock
        w = self._wall
        self._engine.record_tool_call(
            tool_name,
            latency_ms,
            arguments,
            None if c is None else c(),
            None if w is None else w(),
        )

    def record_response(self, response: Mapping[str, Any]) -> None:
        """Record a response: ``len(response["content"])`` when it is a ``str``, and
        ``response["tokens"]`` (or ``"token_count"``) when truthy."""
        if not isinstance(response, Mapping):
            raise TypeError(f"response must be a mapping, not {type(response).__name__}")
        content = response.get("content")
        if isinstance(content, str):
            self._engine.record_value(_INDEX[DriftMetric.RESPONSE_LENGTH], len(content))
        tokens = response.get("tokens") or response.get("token_count")
        if tokens:
            self._engine.record_value(_INDEX[DriftMetric.TOKEN_USAGE], tokens)

    def record_error(self, error_info: Mapping[str, Any] | None = None) -> None:
        """Record an error: the ``error_rate`` sample is the number of errors in the last
        60 s (at most ``baseline_window``) plus this one. ``error_info`` is not inspected."""
        self._engine.record_error(self._now())

    def record_metric(self, metric: DriftMetric | str, value: float) -> None:
        """Record a value of ``response_length``, ``latency``, ``token_usage``,
        ``scope_violations``, ``context_size`` or ``custom`` directly (new)."""
        m = DriftMetric(metric)
        if m not in _RECORDABLE:
            raise ValueError(f"metric {m.value} cannot be recorded directly")
        self._engine.record_value(_INDEX[m], value)

    def record_event(self, event_type: str, data: Mapping[str, Any] | None = None) -> None:
        """Record a generic event (every event counts toward the call rate).

        ``"tool_call"`` (tool name in ``data["tool"]`` or ``data["tool_name"]``) records the
        rate, distinct tools, tool mix and time of day; ``"response"`` and ``"error"`` act as
        :meth:`record_response` and :meth:`record_error`; ``"latency"``, ``"tokens"`` and
        ``"context_size"`` record ``data["value"]``; ``"scope_violation"`` records 1.0;
        other types only count as an event.
        """
        if data is None:
            data = {}
        elif not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping or None, not {type(data).__name__}")
        if event_type == "tool_call":
            name = data.get("tool") or data.get("tool_name") or "unknown"
            self._engine.record_tool_event(name, self._now(), self._wall_now())
            return
        self._engine.record_event_time(self._now())
        if event_type == "response":
            self.record_response(data)
        elif event_type == "error":
            self.record_error(data)
        elif event_type in ("latency", "tokens", "context_size"):
            value = data.get("value")
            if value is not None:
                metric = {
                    "latency": DriftMetric.LATENCY,
                    "tokens": DriftMetric.TOKEN_USAGE,
                    "context_size": DriftMetric.CONTEXT_SIZE,
                }[event_type]
                self._engine.record_value(_INDEX[metric], value)
        elif event_type == "scope_violation":
            self._engine.record_value(_INDEX[DriftMetric.SCOPE_VIOLATIONS], 1.0)

    # -- baseline and checks ---------------------------------------------------------------

    @property
    def is_locked(self) -> bool:
        """Whether the baseline is locked."""
        return bool(self._engine.locked)

    def _snapshot(self, raw: list[Any]) -> BaselineSnapshot:
        """A snapshot of the baseline tuples ``raw`` (taken first) with the current statuses:
        after the lock metrics only ever go from learning to baselined, so a metric that
        joined after ``raw`` was taken is reported as still learning, consistently."""
        stats = {
            _METRICS[m]: BaselineStats(
                metric=_METRICS[m],
                mean=mean,
                std_dev=std,
                min_value=lo,
                max_value=hi,
                sample_count=n,
                percentile_95=p95,
                percentile_99=p99,
                effective_std_dev=scale,
            )
            for m, mean, std, lo, hi, n, p95, p99, scale in raw
        }
        pooled, tools = self._engine.baseline_status()
        excluded = [_METRICS[m] for m, st in enumerate(pooled) if st == "excluded"]
        learning = [
            metric
            for metric, st in zip(_METRICS, pooled, strict=True)
            if st != "excluded" and metric not in stats
        ]
        return BaselineSnapshot(
            stats,
            learning=learning,
            excluded=excluded,
            tools={
                tool: dict(zip(_PER_TOOL_METRICS, st, strict=True)) for tool, st in tools.items()
            },
        )

    def lock_baseline(self) -> BaselineSnapshot:
        """Freeze the baseline: every metric with at least ``min_baseline_samples`` samples
        gets :class:`BaselineStats` (never an error; the monitor is locked even when the
        result is empty) and is frozen.

        Unlike the original, which left them out for good, the metrics with fewer samples
        keep learning and each joins the frozen baseline once it has that many (see
        :class:`BaselineSnapshot`, whose :attr:`~BaselineSnapshot.learning`,
        :attr:`~BaselineSnapshot.excluded` and :attr:`~BaselineSnapshot.tools` say where every
        metric stands). The tool mix and hour-of-day profile are frozen here: a tool first
        seen after the lock stays surprising. Returns the metrics baselined at this moment;
        called again, the current baseline (the same, plus any metric that joined since).
        """
        with self._lock:
            return self._snapshot(self._engine.lock())

    def check_drift(self) -> DriftResult:
        """Compare each baselined metric's current value (mean of the last
        ``detection_window`` samples) with its baseline.

        Before a lock, auto-locks once any metric has ``min_baseline_samples`` samples, else
        returns ``is_drifting=False, reason="Baseline not yet established"``. A metric drifts
        when ``|z| > drift_threshold``; ``on_drift`` callbacks run when any does (their
        exceptions are logged and swallowed). O(number of metrics), whatever the number of
        calls recorded.
        """
        with self._lock:
            engine = self._engine
            if not engine.locked:
                if max(engine.sample_counts()) < self.min_baseline_samples:
                    return DriftResult(
                        is_drifting=False, severity=0.0, reason="Baseline not yet established"
                    )
                engine.lock()
            callbacks = self._callbacks
        thr = self.drift_threshold
        severity, raw, checks = engine.evaluate(thr)
        if not raw:
            return DriftResult(
                is_drifting=False,
                severity=0.0,
                reason="Behavior within normal parameters",
                checks=checks,
                threshold=thr,
            )
        drifting = [(_METRICS[m], v, z) for m, v, z, _ in raw]
        reason = "Drift detected in: " + ", ".join(
            f"{_METRICS[m].value}{'' if t is None else f'[{t}]'}: {v:.2f} (z={z:.1f})"
            for m, v, z, t in raw
        )
        result = DriftResult(
            is_drifting=True,
            severity=severity,
            drifting_metrics=drifting,
            reason=reason,
            checks=checks,
            threshold=thr,
        )
        for cb in list(callbacks):
            try:
                cb(result)
            except Exception:
                logger.exception("on_drift callback failed for agent %s", self.agent_id)
        return result

    def on_drift(self, callback: Callable[[DriftResult], Any]) -> None:
        """Call ``callback(result)`` whenever :meth:`check_drift` finds drift."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        with self._lock:
            self._callbacks = [*self._callbacks, callback]

    def get_current_metrics(self) -> dict[str, float]:
        """``{metric value: mean of the last detection_window samples}`` for every metric
        with samples."""
        return {_METRICS[m].value: v for m, v in self._engine.current_values()}

    def get_baseline(self) -> BaselineSnapshot:
        """A copy of the baseline: the metrics baselined so far (empty before the lock),
        with the status of the others (see :class:`BaselineSnapshot`)."""
        with self._lock:
            return self._snapshot(self._engine.baselines())

    def reset(self) -> None:
        """Forget everything learned (callbacks are kept)."""
        with self._lock:
            self._set_engine(self._new_engine())

    # -- new: replay, persistence, shards --------------------------------------------------

    def replay(
        self,
        calls: Iterable[tuple[str, float | None, Mapping[str, Any] | None, float, float]],
        check_every: int = 1,
    ) -> ReplaySummary:
        """Record ``(tool_name, latency_ms, arguments, monotonic_s, wall_s)`` calls in one
        native pass and, once the baseline is locked, check drift after every
        ``check_every`` calls at ``drift_threshold``. For tuning thresholds on recorded
        traffic: no callbacks run and nothing is auto-locked."""
        raw = self._engine.replay(calls, self.drift_threshold, check_every)
        return ReplaySummary(
            calls=raw["calls"],
            checks=raw["checks"],
            alarms=raw["alarms"],
            first_alarm=raw["first_alarm"],
            per_metric={DriftMetric(k): v for k, v in raw["per_metric"].items()},
            max_abs_z={DriftMetric(k): v for k, v in raw["max_abs_z"].items()},
        )

    def export_state(self) -> dict[str, Any]:
        """Everything learned (accumulators, profiles, baseline), as JSON-compatible data, to
        persist a baseline and restore it after a restart with :meth:`from_state`. Recent
        event times and tool names are not included. Protect the stored state's integrity
        (for example with an HMAC): whoever can edit it can blind the detector."""
        return {
            "format": _STATE_FORMAT,
            "version": _STATE_VERSION,
            "agent_id": self.agent_id,
            "drift_threshold": self.drift_threshold,
            "engine": self._engine.to_state(),
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        *,
        clock: Callable[[], float] | None = None,
        wall_clock: Callable[[], float] | None = None,
        _impl: ModuleType | None = None,
    ) -> BehavioralMonitor:
        """Rebuild a monitor from :meth:`export_state` (validated; raises ``ValueError``
        starting with ``"invalid drift state"`` on malformed or inconsistent input)."""
        if not isinstance(state, Mapping):
            raise ValueError("invalid drift state: state must be a mapping")
        if state.get("format") != _STATE_FORMAT or state.get("version") != _STATE_VERSION:
            raise ValueError(
                f"invalid drift state: expected format {_STATE_FORMAT!r} version {_STATE_VERSION}"
            )
        mod = _impl if _impl is not None else _default_impl
        engine = mod.DriftEngine.from_state(state.get("engine"))
        bw, dw, mn = engine.config()
        try:
            mon = cls(
                state.get("agent_id"),  # type: ignore[arg-type]
                bw,
                dw,
                state.get("drift_threshold"),  # type: ignore[arg-type]
                mn,
                clock=clock,
                wall_clock=wall_clock,
                _impl=mod,
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid drift state: {exc}") from None
        mon._set_engine(engine)
        return mon

    def merge(self, other: BehavioralMonitor) -> None:
        """Fold what ``other`` (a shard of the same agent with the same windows, neither
        locked) has learned into this monitor: exact for means, deviations and profiles."""
        if not isinstance(other, BehavioralMonitor):
            raise TypeError(f"other must be BehavioralMonitor, not {type(other).__name__}")
        with self._lock:
            self._engine.merge(other._engine)


class DriftDetector:
    """A :class:`BehavioralMonitor` wired to a :class:`KillSwitch`.

    ``check()`` halts the agent when drift severity reaches ``auto_halt_threshold`` (the
    switch is activated once, logged with the drift reason, and ``EmergencyHaltError`` is
    raised) and logs a warning from ``warning_threshold``. A drift found by calling
    ``monitor.check_drift()`` directly halts too (through an ``on_drift`` callback), and a
    following ``check()`` does not activate the switch again. The original activated it
    twice per drift.

    Args:
        agent_id: the monitored agent.
        auto_halt_threshold: severity (0..1) that halts.
        warning_threshold: severity (0..1) that logs a warning.
        monitor_kwargs: keyword arguments of the :class:`BehavioralMonitor`.
        kill_switch: a switch to share (for example the application's); a new one by default.
    """

    def __init__(
        self,
        agent_id: str,
        auto_halt_threshold: float = 0.9,
        warning_threshold: float = 0.5,
        monitor_kwargs: dict[str, Any] | None = None,
        *,
        kill_switch: KillSwitch | None = None,
    ) -> None:
        for name, v in (
            ("auto_halt_threshold", auto_halt_threshold),
            ("warning_threshold", warning_threshold),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{name} must be a number, not {type(v).__name__}")
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {v!r}")
        if kill_switch is not None and not isinstance(kill_switch, KillSwitch):
            raise TypeError(f"kill_switch must be a KillSwitch, not {type(kill_switch).__name__}")
        self.agent_id = agent_id
        self.auto_halt_threshold = float(auto_halt_threshold)
        self.warning_threshold = float(warning_threshold)
        self._monitor = BehavioralMonitor(agent_id, **(monitor_kwargs or {}))
        self._owns_switch = kill_switch is None
        self._kill_switch = kill_switch if kill_switch is not None else KillSwitch()
        self._halt_lock = threading.Lock()
        self._monitor.on_drift(self._on_drift)

    @property
    def monitor(self) -> BehavioralMonitor:
        """The underlying monitor."""
        return self._monitor

    @property
    def kill_switch(self) -> KillSwitch:
        """The kill switch this detector activates."""
        return self._kill_switch

    @property
    def _triggered_by(self) -> str:
        return f"drift_detector:{self.agent_id}"

    def _severe(self, result: DriftResult) -> bool:
        return result.is_drifting and result.severity >= self.auto_halt_threshold

    def _halt(self, result: DriftResult) -> None:
        """Activate the switch for this drift unless it is already active (never twice)."""
        with self._halt_lock:
            if self._kill_switch.is_active:
                return
            logger.error(
                "Drift severity %.2f >= %.2f for agent %s: %s; activating kill switch",
                result.severity,
                self.auto_halt_threshold,
                self.agent_id,
                result.reason,
            )
            self._kill_switch.activate(
                f"Behavioral drift detected for agent {self.agent_id}: {result.reason}",
                triggered_by=self._triggered_by,
                raise_exception=False,
            )

    def _on_drift(self, result: DriftResult) -> None:
        if self._severe(result):
            self._halt(result)

    def record_tool_call(
        self,
        tool_name: str,
        arguments: Mapping[str, Any] | None = None,
        latency_ms: float | None = None,
    ) -> None:
        """Record a call (raises ``EmergencyHaltError`` while the switch is active)."""
        self._kill_switch.check()
        self._monitor.record_tool_call(tool_name, arguments, latency_ms)

    def record_response(self, response: Mapping[str, Any]) -> None:
        """Record a response (raises ``EmergencyHaltError`` while the switch is active)."""
        self._kill_switch.check()
        self._monitor.record_response(response)

    def record_error(self, error_info: Mapping[str, Any] | None = None) -> None:
        """Record an error (works while halted, as in the original)."""
        self._monitor.record_error(error_info)

    def record_event(self, event_type: str, data: Mapping[str, Any] | None = None) -> None:
        """Record an event (raises ``EmergencyHaltError`` while the switch is active)."""
        self._kill_switch.check()
        self._monitor.record_event(event_type, data)

    def check(self) -> DriftResult:
        """Check drift; halt on severe drift, warn on moderate drift.

        Raises:
            EmergencyHaltError: the switch was already active, or this drift's severity
                reached ``auto_halt_threshold`` (the switch is then activated, once).
        """
        self._kill_switch.check()
        result = self._monitor.check_drift()
        if self._severe(result):
            self._halt(result)
            raise EmergencyHaltError(
                self._kill_switch.reason
                or f"Behavioral drift detected for agent {self.agent_id}: {result.reason}",
                self._kill_switch.triggered_by or self._triggered_by,
            )
        if result.is_drifting and result.severity >= self.warning_threshold:
            logger.warning(
                "Behavioral drift warning for agent %s (severity %.2f): %s",
                self.agent_id,
                result.severity,
                result.reason,
            )
        return result

    def lock_baseline(self) -> BaselineSnapshot:
        """Lock the monitor's baseline (see :meth:`BehavioralMonitor.lock_baseline`)."""
        return self._monitor.lock_baseline()

    def reset(self) -> None:
        """Forget the baseline and reset the kill switch (a shared switch passed as
        ``kill_switch=`` is left alone: reset it where it is owned)."""
        self._monitor.reset()
        if self._owns_switch:
            self._kill_switch.reset()

    def get_status(self) -> dict[str, Any]:
        """``{"agent_id", "kill_switch", "current_metrics", "baseline_locked"}``."""
        return {
            "agent_id": self.agent_id,
            "kill_switch": self._kill_switch.get_status(),
            "current_metrics": self._monitor.get_current_metrics(),
            "baseline_locked": self._monitor.is_locked,
        }
