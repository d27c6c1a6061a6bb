"""Every exception of API.md section 4.2: constructor, attributes, message, details, str()."""

from __future__ import annotations

from typing import Any

import pytest

import proxilion
from proxilion.engines.base import (
    EngineNotAvailableError,
    PolicyEngineError,
    PolicyEvaluationError,
    PolicyLoadError,
)
from proxilion.exceptions import (
    AgentTrustError,
    ApprovalRequiredError,
    AuthorizationError,
    BehavioralDriftError,
    BudgetExceededError,
    CircuitOpenError,
    ConfigurationError,
    ContextIntegrityError,
    EmergencyHaltError,
    FallbackExhaustedError,
    GuardViolation,
    IDORViolationError,
    InputGuardViolation,
    IntentHijackError,
    OutputGuardViolation,
    PolicyNotFoundError,
    PolicyViolation,
    ProxilionError,
    RateLimitExceeded,
    SchemaValidationError,
    ScopeLoaderError,
    ScopeViolationError,
    SequenceViolationError,
)
from proxilion.timeouts.manager import TimeoutError as ProxilionTimeoutError


def check(exc: ProxilionError, message: str, details: dict[str, Any]) -> None:
    """message, details, str() with the ' | Details: ' suffix, to_dict()."""
    assert exc.message == message
    assert exc.details == details
    assert str(exc) == f"{message} | Details: {details}"
    assert exc.to_dict() == {
        "error_type": type(exc).__name__,
        "message": message,
        "details": details,
    }
    assert isinstance(exc, ProxilionError)
    assert isinstance(exc, Exception)


def test_base_error_without_and_with_details() -> None:
    e = ProxilionError("boom")
    assert e.message == "boom"
    assert e.details == {}
    assert str(e) == "boom"
    assert e.to_dict() == {"error_type": "ProxilionError", "message": "boom", "details": {}}
    e2 = ProxilionError("boom", {"k": 1})
    assert str(e2) == "boom | Details: {'k': 1}"


def test_authorization_error_full_form() -> None:
    e = AuthorizationError("alice", "read", "docs", reason="no role")
    assert (e.user, e.action, e.resource, e.reason, e.suggestions) == (
        "alice",
        "read",
        "docs",
        "no role",
        [],
    )
    check(
        e,
        "Authorization denied: User 'alice' cannot perform 'read' on resource 'docs'. "
        "Reason: no role",
        {
            "user": "alice",
            "action": "read",
            "resource": "docs",
            "reason": "no role",
            "suggestions": [],
        },
    )


def test_authorization_error_default_reason_and_suggestions() -> None:
    e = AuthorizationError(user="bob", action="delete", resource="db", suggestions=["a", "b"])
    assert e.reason == "Authorization denied"
    assert e.suggestions == ["a", "b"]
    check(
        e,
        "Authorization denied: User 'bob' cannot perform 'delete' on resource 'db'. "
        "Reason: Authorization denied | Suggestions: a; b",
        {
            "user": "bob",
            "action": "delete",
            "resource": "db",
            "reason": "Authorization denied",
            "suggestions": ["a", "b"],
        },
    )


def test_authorization_error_seed_single_message_form() -> None:
    # Seed example 4: raise AuthorizationError("Access denied")
    e = AuthorizationError("Access denied")
    assert e.reason == "Access denied"
    assert (e.user, e.action, e.resource) == ("unknown", "unknown", "unknown")
    check(
        e,
        "Authorization denied: Access denied",
        {
            "user": "unknown",
            "action": "unknown",
            "resource": "unknown",
            "reason": "Access denied",
            "suggestions": [],
        },
    )
    with pytest.raises(AuthorizationError):
        raise AuthorizationError("Access denied")


def test_authorization_error_needs_something() -> None:
    with pytest.raises(TypeError, match="needs a message"):
        AuthorizationError()


def test_policy_violation() -> None:
    e = PolicyViolation("p")
    assert e.violation_type == "policy_check"
    check(
        e,
        "Policy violation in 'p'",
        {"policy_name": "p", "violation_type": "policy_check", "context": {}},
    )
    e2 = PolicyViolation("p", "time", {"h": 3})
    assert (e2.policy_name, e2.violation_type, e2.context) == ("p", "time", {"h": 3})
    check(
        e2,
        "Policy violation in 'p' (type: time)",
        {"policy_name": "p", "violation_type": "time", "context": {"h": 3}},
    )


def test_schema_validation_error() -> None:
    e = SchemaValidationError("t", "f", "int", "x", ["bad"])
    assert (e.tool_name, e.field_name, e.expected, e.received, e.validation_errors) == (
        "t",
        "f",
        "int",
        "x",
        ["bad"],
    )
    check(
        e,
        "Schema validation failed for tool 't': field 'f' expected int, got str",
        {
            "tool_name": "t",
            "field_name": "f",
            "expected": "int",
            "received": "x",
            "validation_errors": ["bad"],
        },
    )
    e2 = SchemaValidationError("t")
    assert e2.message == "Schema validation failed for tool 't'"
    assert e2.details["received"] is None


def test_rate_limit_exceeded() -> None:
    e = RateLimitExceeded("user", "alice", 10, 2.5)
    assert e.limit == 10  # falls back to limit_value
    check(
        e,
        "Rate limit exceeded for user (limit: 10). Retry after 2.5 seconds",
        {
            "limit_type": "user",
            "limit_key": "alice",
            "limit_value": 10,
            "retry_after": 2.5,
            "user_id": None,
            "current_count": None,
            "window_seconds": None,
            "reset_at": None,
        },
    )
    e2 = RateLimitExceeded(
        "tool",
        "k",
        user_id="u",
        limit=5,
        current_count=5,
        window_seconds=60.0,
        reset_at=1.0,
    )
    assert (e2.user_id, e2.limit, e2.current_count, e2.window_seconds, e2.reset_at) == (
        "u",
        5,
        5,
        60.0,
        1.0,
    )
    assert e2.message == "Rate limit exceeded for tool"
    with pytest.raises(TypeError):
        RateLimitExceeded("a", "b", 1, 1.0, "positional-user")  # type: ignore[misc]


def test_circuit_open_error() -> None:
    e = CircuitOpenError("api", 3, 12.34, "timeout")
    check(
        e,
        "Circuit breaker 'api' is open after 3 failures. Retry in 12.3 seconds",
        {
            "circuit_name": "api",
            "failure_count": 3,
            "reset_timeout": 12.34,
            "last_failure": "timeout",
        },
    )
    assert CircuitOpenError("x").message == "Circuit breaker 'x' is open"


def test_configuration_error() -> None:
    e = ConfigurationError("k", "int", 3)
    check(
        e,
        "Configuration error for 'k': expected int, got 3",
        {"config_key": "k", "expected": "int", "received": "3"},
    )
    sentence = "secret_key must be at least 16 characters for HMAC security"
    e2 = ConfigurationError(sentence)
    assert str(e2) == (
        f"Configuration error for '{sentence}' | Details: "
        f"{ {'config_key': sentence, 'expected': None, 'received': None} }"
    )


def test_policy_not_found_error() -> None:
    e = PolicyNotFoundError("r", ["a", "b"])
    check(
        e,
        "No policy found for resource 'r'. Available policies: a, b",
        {"resource": "r", "available_policies": ["a", "b"]},
    )
    assert PolicyNotFoundError("r").message == "No policy found for resource 'r'"


def test_idor_violation_error() -> None:
    e = IDORViolationError("u", "document", "doc_3")
    assert e.resource_id == e.object_id == "doc_3"
    check(
        e,
        "IDOR violation: User 'u' attempted to access document 'doc_3' without authorization",
        {"user_id": "u", "resource_type": "document", "object_id": "doc_3"},
    )


def test_guard_violations() -> None:
    e = GuardViolation("input", ["a"], 0.91234, input_preview="xx")
    check(
        e,
        "Input guard violation: matched ['a'], risk=0.91",
        {
            "guard_type": "input",
            "matched_patterns": ["a"],
            "risk_score": 0.91234,
            "input_preview": "xx",
        },
    )
    i = InputGuardViolation(["p"], 0.5)
    assert i.guard_type == "input" and isinstance(i, GuardViolation)
    assert i.message == "Input guard violation: matched ['p'], risk=0.50"
    o = OutputGuardViolation(["q"], 1.0, input_preview="y")
    assert o.guard_type == "output" and o.input_preview == "y"
    assert o.message == "Output guard violation: matched ['q'], risk=1.00"


@pytest.mark.parametrize(
    ("kwargs", "suffix"),
    [
        ({"required_prior": "a"}, " (requires 'a' before 't')"),
        ({"forbidden_prior": "b"}, " ('t' forbidden after 'b')"),
        ({"consecutive_count": 4}, " ('t' called 4 times consecutively)"),
        ({"cooldown_remaining": 2.25}, " ('t' in cooldown, 2.2s remaining)"),
        ({}, ""),
    ],
)
def test_sequence_violation_error(kwargs: dict[str, Any], suffix: str) -> None:
    e = SequenceViolationError("rule", "t", **kwargs, user_id="u")
    assert e.message == "Sequence violation: rule" + suffix
    assert e.user_id == "u"
    assert set(e.details) == {
        "rule_name",
        "tool_name",
        "required_prior",
        "forbidden_prior",
        "violation_type",
        "consecutive_count",
        "cooldown_remaining",
        "user_id",
    }


def test_scope_violation_error() -> None:
    check(
        ScopeViolationError("t", "read_only", "writes"),
        "Tool 't' not allowed in scope 'read_only': writes",
        {"tool_name": "t", "scope_name": "read_only", "reason": "writes"},
    )


def test_budget_exceeded_error() -> None:
    e = BudgetExceededError("daily", 1.5, 1.0, 0.25, "u")
    assert e.budget_limit == e.limit == 1.0
    check(
        e,
        "Budget exceeded: daily ($1.5000 / $1.0000) - request would add $0.2500",
        {
            "limit_type": "daily",
            "current_spend": 1.5,
            "limit": 1.0,
            "estimated_cost": 0.25,
            "user_id": "u",
        },
    )


def test_context_integrity_error() -> None:
    class V:
        def to_dict(self) -> dict[str, str]:
            return {"v": "1"}

    e = ContextIntegrityError("Context tampering detected: [x]", [V(), "plain"])
    check(
        e,
        "Context tampering detected: [x]",
        {"violation_count": 2, "violations": [{"v": "1"}, "plain"]},
    )
    assert ContextIntegrityError("m").violations == []


def test_intent_hijack_error() -> None:
    e = IntentHijackError("summarize", "delete", 0.875, tool_name="t", allowed_tools=["a"])
    check(
        e,
        "Intent hijack detected: Original intent was 'summarize', but agent appears to be "
        "doing 'delete' (confidence: 87.5%)",
        {
            "original_intent": "summarize",
            "detected_intent": "delete",
            "confidence": 0.875,
            "tool_name": "t",
            "allowed_tools": ["a"],
            "user_id": None,
        },
    )


def test_agent_trust_error_requires_all() -> None:
    check(
        AgentTrustError("a", "b", "why"),
        "Agent trust violation: a -> b: why",
        {"source_agent": "a", "target_agent": "b", "reason": "why"},
    )
    with pytest.raises(TypeError):
        AgentTrustError("a", "b")  # type: ignore[call-arg]


def test_behavioral_drift_error() -> None:
    e = BehavioralDriftError("latency", 1.0, 2.5, 3.25)
    assert e.message.endswith("deviation: 3.2\u03c3)")
    check(
        e,
        "Behavioral drift detected: latency deviated from baseline (1.00 -> 2.50, "
        "deviation: 3.2\u03c3)",
        {"metric": "latency", "baseline_value": 1.0, "current_value": 2.5, "deviation": 3.25},
    )


def test_emergency_halt_error() -> None:
    e = EmergencyHaltError("drift")
    assert e.triggered_by == "system"
    check(
        e,
        "EMERGENCY HALT: drift (triggered by: system)",
        {"reason": "drift", "triggered_by": "system"},
    )


def test_approval_required_error() -> None:
    e = ApprovalRequiredError("t", "u")
    check(
        e,
        "Approval required: Tool 't' requires approval. Tool requires approval before execution",
        {"tool_name": "t", "user": "u", "reason": "Tool requires approval before execution"},
    )


def test_fallback_exhausted_error() -> None:
    e = FallbackExhaustedError([("a", ValueError("x")), ("b", KeyError("k"))], attempts=2)
    check(
        e,
        "All 2 fallback attempts failed. Errors: [a: ValueError(x), b: KeyError('k')]",
        {
            "attempts": 2,
            "errors": [
                {"name": "a", "type": "ValueError", "message": "x"},
                {"name": "b", "type": "KeyError", "message": "'k'"},
            ],
        },
    )


def test_scope_loader_error() -> None:
    e = ScopeLoaderError("document", "u", RuntimeError("db down"))
    check(
        e,
        "Scope loader failed for document (user: u): db down",
        {"resource_type": "document", "user_id": "u", "original_error": "db down"},
    )


def test_engine_errors_are_not_proxilion_errors() -> None:
    for cls in (PolicyLoadError, PolicyEvaluationError, EngineNotAvailableError):
        e = cls("broken", engine_name="simple")
        assert isinstance(e, PolicyEngineError)
        assert not isinstance(e, ProxilionError)
        assert str(e) == "[simple] broken"
        assert (e.message, e.engine_name) == ("broken", "simple")
    bare = PolicyEngineError("m")
    assert str(bare) == "m" and bare.engine_name is None


def test_timeout_error_is_not_a_proxilion_error() -> None:
    e = ProxilionTimeoutError("slow", operation="authorize", timeout=1.0)
    assert not isinstance(e, ProxilionError)
    assert (e.message, e.operation, e.timeout, str(e)) == ("slow", "authorize", 1.0, "slow")


def test_every_exception_is_exported_at_top_level() -> None:
    for name in (
        "ProxilionError",
        "AuthorizationError",
        "PolicyViolation",
        "SchemaValidationError",
        "RateLimitExceeded",
        "CircuitOpenError",
        "ConfigurationError",
        "PolicyNotFoundError",
        "IDORViolationError",
        "GuardViolation",
        "InputGuardViolation",
        "OutputGuardViolation",
        "SequenceViolationError",
        "ScopeViolationError",
        "BudgetExceededError",
        "ApprovalRequiredError",
        "ScopeLoaderError",
        "ContextIntegrityError",
        "IntentHijackError",
        "AgentTrustError",
        "BehavioralDriftError",
        "EmergencyHaltError",
        "FallbackExhaustedError",
    ):
        assert name in proxilion.__all__
        assert issubclass(getattr(proxilion, name), ProxilionError)
