"""Workflow and anomaly validation of an agent's tool calls (not the hijack detector).

Exported from ``proxilion.security`` as ``IntentValidator``, ``ValidationOutcome``,
``ValidationResult``, ``AnomalyThresholds`` and ``WorkflowState`` (API.md section 7). The
intent-capsule hijack detector is a different class, exported as ``IntentHijackValidator``.

Per user it keeps a small state: recent call times, the current run of identical tool calls,
recent failures and, when a workflow was started, the step reached. Each call is checked
against the thresholds and the workflow's allowed transitions; the outcome is ``ALLOW``,
``WARN`` (anomalous but below the blocking score) or ``BLOCK``. Thread-safe; the clock is
injectable.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from proxilion.exceptions import ConfigurationError

__all__ = [
    "AnomalyThresholds",
    "IntentValidator",
    "ValidationOutcome",
    "ValidationResult",
    "WorkflowState",
]


class ValidationOutcome(Enum):
    """Decision for one tool call."""

    ALLOW = "allow"
    WARN = "warn"
    BLOCK = "block"


@dataclass
class AnomalyThresholds:
    """Limits per user; exceeding one adds its weight to the anomaly score."""

    max_calls_per_minute: int = 60
    max_consecutive_same_tool: int = 10
    max_unique_tools_per_minute: int = 20
    max_failures_per_minute: int = 5
    max_argument_bytes: int = 100_000
    block_score: float = 1.0

    def __post_init__(self) -> None:
        for name in (
            "max_calls_per_minute",
            "max_consecutive_same_tool",
            "max_unique_tools_per_minute",
            "max_failures_per_minute",
            "max_argument_bytes",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be an int >= 1", received=value)
        if not isinstance(self.block_score, (int, float)) or not math.isfinite(self.block_score):
            raise ConfigurationError(
                "block_score must be a finite number", received=self.block_score
            )


@dataclass
class WorkflowState:
    """A user's progress and recent activity."""

    user_id: str
    workflow: str | None = None
    current_step: str | None = None
    history: list[str] = field(default_factory=list)
    consecutive_tool: str | None = None
    consecutive_count: int = 0
    started_at: float = 0.0


@dataclass
class ValidationResult:
    """Outcome of :meth:`IntentValidator.validate`."""

    outcome: ValidationOutcome
    reasons: list[str] = field(default_factory=list)
    anomaly_score: float = 0.0

    @property
    def allowed(self) -> bool:
        """True unless the outcome is ``BLOCK``."""
        return self.outcome is not ValidationOutcome.BLOCK


class IntentValidator:
    """Checks tool calls against rate/repetition anomalies and declared workflows.

    Args:
        thresholds: the limits (default :class:`AnomalyThresholds`).
        workflows: name -> ordered steps (tool names). Within a started workflow a call must
            repeat the current step, take the next one, or go back to an earlier one; any
            other tool is blocked.
        clock: monotonic clock in seconds (injectable for tests).
        max_history: how many recent tools are kept per user.
    """

    def __init__(
        self,
        thresholds: AnomalyThresholds | None = None,
        workflows: dict[str, list[str]] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_history: int = 100,
    ) -> None:
        self.thresholds = thresholds or AnomalyThresholds()
        self._workflows: dict[str, list[str]] = {}
        for name, steps in (workflows or {}).items():
            self.define_workflow(name, steps)
        self._clock = clock
        self._max_history = max_history
        self._lock = threading.RLock()
        self._states: dict[str, WorkflowState] = {}
        self._calls: dict[str, deque[tuple[float, str]]] = {}
        self._failures: dict[str, deque[float]] = {}

    def define_workflow(self, name: str, steps: list[str]) -> None:
        """Declare an ordered workflow of tool names."""
        if not steps or not all(isinstance(s, str) and s for s in steps):
            raise ConfigurationError("a workflow needs at least one non-empty step name")
        self._workflows[name] = list(steps)

    def _state(self, user_id: str) -> WorkflowState:
        state = self._states.get(user_id)
        if state is None:
            state = WorkflowState(user_id=user_id, started_at=self._clock())
            self._states[user_id] = state
        return state

    def start_workflow(self, user_id: str, workflow: str) -> WorkflowState:
        """Put the user at the start of a declared workflow."""
        if workflow not in self._workflows:
            raise ConfigurationError(f"unknown workflow {workflow!r}")
        with self._lock:
            state = self._state(user_id)
            state.workflow = workflow
            state.current_step = None
            state.started_at = self._clock()
            return state

    def end_workflow(self, user_id: str) -> None:
        """Leave the user's workflow (calls are then unconstrained by steps)."""
        with self._lock:
            state = self._states.get(user_id)
            if state is not None:
                state.workflow = None
                state.current_step = None

    def record_failure(self, user_id: str) -> None:
        """Count a failed call (too many failures per minute is an anomaly)."""
        with self._lock:
            self._failures.setdefault(user_id, deque()).append(self._clock())

    def get_state(self, user_id: str) -> WorkflowState | None:
        """The user's state, or None."""
        with self._lock:
            return self._states.get(user_id)

    def reset(self, user_id: str | None = None) -> None:
        """Forget one user, or everyone."""
        with self._lock:
            for store in (self._states, self._calls, self._failures):
                if user_id is None:
                    store.clear()
                else:
                    store.pop(user_id, None)

    def validate(
        self, user_id: str, tool_name: str, arguments: dict[str, Any] | None = None
    ) -> ValidationResult:
        """Check (and, unless blocked, record) one call."""
        t = self.thresholds
        now = self._clock()
        reasons: list[str] = []
        score = 0.0
        with self._lock:
            state = self._state(user_id)
            if state.workflow is not None:
                steps = self._workflows[state.workflow]
                if tool_name not in steps:
                    return ValidationResult(
                        ValidationOutcome.BLOCK,
                        [f"Tool '{tool_name}' is not part of workflow '{state.workflow}'"],
                        1.0,
                    )
                target = steps.index(tool_name)
                current = -1 if state.current_step is None else steps.index(state.current_step)
                if target > current + 1:
                    return ValidationResult(
                        ValidationOutcome.BLOCK,
                        [
                            f"Tool '{tool_name}' skips ahead in workflow '{state.workflow}' "
                            f"(expected '{steps[current + 1]}')"
                        ],
                        1.0,
                    )
            calls = self._calls.setdefault(user_id, deque())
            while calls and now - calls[0][0] > 60.0:
                calls.popleft()
            failures = self._failures.get(user_id)
            while failures and now - failures[0] > 60.0:
                failures.popleft()
            if len(calls) + 1 > t.max_calls_per_minute:
                reasons.append(f"More than {t.max_calls_per_minute} calls per minute")
                score += 1.0
            if len({c[1] for c in calls} | {tool_name}) > t.max_unique_tools_per_minute:
                reasons.append(
                    f"More than {t.max_unique_tools_per_minute} distinct tools per minute"
                )
                score += 0.5
            run = state.consecutive_count + 1 if state.consecutive_tool == tool_name else 1
            if run > t.max_consecutive_same_tool:
                reasons.append(
                    f"Tool '{tool_name}' called {run} times in a row "
                    f"(max {t.max_consecutive_same_tool})"
                )
                score += 0.5
            if failures and len(failures) > t.max_failures_per_minute:
                reasons.append(f"More than {t.max_failures_per_minute} failures per minute")
                score += 0.5
            if arguments:
                size = len(json.dumps(arguments, default=str))
                if size > t.max_argument_bytes:
                    reasons.append(f"Arguments of {size} bytes exceed {t.max_argument_bytes}")
                    score += 1.0
            if score >= t.block_score:
                return ValidationResult(ValidationOutcome.BLOCK, reasons, score)
            calls.append((now, tool_name))
            state.consecutive_tool = tool_name
            state.consecutive_count = run
            state.history.append(tool_name)
            if len(state.history) > self._max_history:
                del state.history[: len(state.history) - self._max_history]
            if state.workflow is not None:
                state.current_step = tool_name
            outcome = ValidationOutcome.WARN if reasons else ValidationOutcome.ALLOW
            return ValidationResult(outcome, reasons, score)
