"""The top-level package exports exactly API.md section 0 (plus backend/build_info)."""

from __future__ import annotations

import proxilion

API_SECTION_0 = [
    "Proxilion",
    "Policy",
    "UserContext",
    "AgentContext",
    "ToolCallRequest",
    "AuthorizationResult",
    "AuditEvent",
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
    "authorize_tool_call",
    "authorize",
    "require_approval",
    "rate_limited",
    "circuit_protected",
    "cost_limited",
    "enforce_scope",
    "sequence_validated",
    "scoped_tool",
    "ApprovalStrategy",
    "AlwaysApproveStrategy",
    "AlwaysDenyStrategy",
    "CallbackApprovalStrategy",
    "QueueApprovalStrategy",
    "get_current_user",
    "get_current_agent",
]


def test_all_matches_api_section_0() -> None:
    assert set(proxilion.__all__) == set(API_SECTION_0) | {"backend", "build_info"}
    for name in proxilion.__all__:
        assert getattr(proxilion, name) is not None, name


def test_authorize_is_the_standalone_factory() -> None:
    from proxilion import decorators

    assert proxilion.authorize is proxilion.authorize_tool_call
    assert proxilion.authorize is decorators.authorize_tool_call
    assert proxilion.authorize is not proxilion.Proxilion.authorize


def test_decorators_module_exports_every_decorator() -> None:
    from proxilion import decorators

    for name in (
        "rate_limited",
        "circuit_protected",
        "cost_limited",
        "enforce_scope",
        "sequence_validated",
        "scoped_tool",
        "authorize_tool_call",
        "require_approval",
    ):
        assert getattr(decorators, name) is getattr(proxilion, name)


def test_top_level_has_no_guard_security_or_audit_classes() -> None:
    for name in ("InputGuard", "OutputGuard", "KillSwitch", "AuditLogger", "IDORProtector"):
        assert not hasattr(proxilion, name), name
