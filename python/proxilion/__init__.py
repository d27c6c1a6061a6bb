"""proxilion: runtime security for LLM agent tool calls, with Rust hot paths.

Same public API as the original pure-Python ``proxilion`` SDK (see API.md), backed by the
native extension ``proxilion._core`` where it matters for speed.
"""

from __future__ import annotations

from typing import Any

from proxilion._backend import backend
from proxilion.core import Proxilion, get_current_agent, get_current_user
from proxilion.decorators import (
    AlwaysApproveStrategy,
    AlwaysDenyStrategy,
    ApprovalStrategy,
    CallbackApprovalStrategy,
    QueueApprovalStrategy,
    authorize_tool_call,
    circuit_protected,
    cost_limited,
    enforce_scope,
    rate_limited,
    require_approval,
    scoped_tool,
    sequence_validated,
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
from proxilion.policies.base import Policy
from proxilion.types import (
    AgentContext,
    AuditEvent,
    AuthorizationResult,
    ToolCallRequest,
    UserContext,
)

#: The top-level ``authorize`` is the standalone decorator factory (same object as
#: ``authorize_tool_call``), not the ``Proxilion.authorize`` method.
authorize = authorize_tool_call

__version__ = "0.1.0"
#: Version of the original SDK whose public API this package keeps.
__compat_version__ = "0.0.8"


def build_info() -> dict[str, Any]:
    """Facts about the active backend build (version, backend, profile, features)."""
    from proxilion._backend import impl

    info: dict[str, Any] = dict(impl.build_info())
    return info


__all__ = [
    "AgentContext",
    "AgentTrustError",
    "AlwaysApproveStrategy",
    "AlwaysDenyStrategy",
    "ApprovalRequiredError",
    "ApprovalStrategy",
    "AuditEvent",
    "AuthorizationError",
    "AuthorizationResult",
    "BehavioralDriftError",
    "BudgetExceededError",
    "CallbackApprovalStrategy",
    "CircuitOpenError",
    "ConfigurationError",
    "ContextIntegrityError",
    "EmergencyHaltError",
    "FallbackExhaustedError",
    "GuardViolation",
    "IDORViolationError",
    "InputGuardViolation",
    "IntentHijackError",
    "OutputGuardViolation",
    "Policy",
    "PolicyNotFoundError",
    "PolicyViolation",
    "Proxilion",
    "ProxilionError",
    "QueueApprovalStrategy",
    "RateLimitExceeded",
    "SchemaValidationError",
    "ScopeLoaderError",
    "ScopeViolationError",
    "SequenceViolationError",
    "ToolCallRequest",
    "UserContext",
    "authorize",
    "authorize_tool_call",
    "backend",
    "build_info",
    "circuit_protected",
    "cost_limited",
    "enforce_scope",
    "get_current_agent",
    "get_current_user",
    "rate_limited",
    "require_approval",
    "scoped_tool",
    "sequence_validated",
]
