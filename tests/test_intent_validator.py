"""Workflow / anomaly validator (proxilion.security.intent_validator)."""

from __future__ import annotations

import pytest

from proxilion.exceptions import ConfigurationError
from proxilion.security import (
    AnomalyThresholds,
    IntentValidator,
    ValidationOutcome,
    ValidationResult,
    WorkflowState,
)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_workflow_steps() -> None:
    v = IntentValidator(workflows={"refund": ["lookup", "verify", "refund"]}, clock=Clock())
    v.start_workflow("u", "refund")
    assert v.validate("u", "verify").outcome is ValidationOutcome.BLOCK
    assert v.validate("u", "verify").reasons == [
        "Tool 'verify' skips ahead in workflow 'refund' (expected 'lookup')"
    ]
    assert v.validate("u", "lookup").outcome is ValidationOutcome.ALLOW
    assert v.validate("u", "lookup").allowed  # repeating a step is fine
    assert v.validate("u", "verify").allowed
    assert v.validate("u", "delete_all").reasons == [
        "Tool 'delete_all' is not part of workflow 'refund'"
    ]
    assert v.validate("u", "refund").allowed
    state = v.get_state("u")
    assert isinstance(state, WorkflowState) and state.current_step == "refund"
    assert state.history == ["lookup", "lookup", "verify", "refund"]
    v.end_workflow("u")
    assert v.validate("u", "delete_all").allowed
    with pytest.raises(ConfigurationError, match="unknown workflow"):
        v.start_workflow("u", "nope")
    with pytest.raises(ConfigurationError, match="at least one non-empty step"):
        v.define_workflow("empty", [])


def test_rate_and_repetition() -> None:
    clock = Clock()
    v = IntentValidator(
        AnomalyThresholds(max_calls_per_minute=3, max_consecutive_same_tool=2), clock=clock
    )
    assert v.validate("u", "a").outcome is ValidationOutcome.ALLOW
    assert v.validate("u", "a").outcome is ValidationOutcome.ALLOW
    third = v.validate("u", "a")
    assert third.outcome is ValidationOutcome.WARN and third.anomaly_score == 0.5
    assert third.reasons == ["Tool 'a' called 3 times in a row (max 2)"]
    fourth = v.validate("u", "b")
    assert fourth.outcome is ValidationOutcome.BLOCK
    assert fourth.reasons == ["More than 3 calls per minute"]
    clock.t += 61
    assert v.validate("u", "b").outcome is ValidationOutcome.ALLOW
    assert v.validate("other", "b").outcome is ValidationOutcome.ALLOW


def test_failures_and_argument_size() -> None:
    clock = Clock()
    v = IntentValidator(
        AnomalyThresholds(max_failures_per_minute=1, max_argument_bytes=20), clock=clock
    )
    v.record_failure("u")
    v.record_failure("u")
    r = v.validate("u", "a")
    assert r.outcome is ValidationOutcome.WARN and r.reasons == ["More than 1 failures per minute"]
    big = v.validate("u", "b", {"blob": "x" * 100})
    assert big.outcome is ValidationOutcome.BLOCK
    assert big.reasons[-1].startswith("Arguments of 112 bytes exceed 20")
    v.reset("u")
    assert v.get_state("u") is None
    v.validate("x", "a")
    v.reset()
    assert v.get_state("x") is None
    assert ValidationResult(ValidationOutcome.WARN).allowed
    with pytest.raises(ConfigurationError, match="max_calls_per_minute must be an int >= 1"):
        AnomalyThresholds(max_calls_per_minute=0)
