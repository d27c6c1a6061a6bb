"""Security controls (API.md section 7).

Name clashes kept from the original: ``TrustLevel``, ``DelegationToken`` and
``IntentValidator`` here are the ``trust_boundaries`` / ``intent_validator`` classes; the
agent-trust and intent-capsule ones are exported as ``AgentTrustLevel``,
``AgentDelegationToken`` and ``IntentHijackValidator``.
"""

from __future__ import annotations

from proxilion.security._keys import WeakSecretKeyWarning
from proxilion.security.agent_trust import AgentCredential, AgentTrustManager, DelegationChain
from proxilion.security.agent_trust import DelegationToken as AgentDelegationToken
from proxilion.security.agent_trust import SignedMessage as AgentSignedMessage
from proxilion.security.agent_trust import TrustLevel as AgentTrustLevel
from proxilion.security.agent_trust import VerificationResult as AgentVerificationResult
from proxilion.security.behavioral_drift import (
    BaselineStats,
    BehavioralMonitor,
    DriftDetector,
    DriftMetric,
    DriftResult,
)
from proxilion.security.circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerRegistry,
    CircuitState,
    CircuitStats,
)
from proxilion.security.idor_protection import IDORProtector, IDPattern, ResourceScope
from proxilion.security.intent_capsule import (
    HijackDetection,
    IntentCapsule,
    IntentCapsuleManager,
    IntentCategory,
    IntentGuard,
)
from proxilion.security.intent_capsule import IntentValidator as IntentHijackValidator
from proxilion.security.intent_validator import (
    AnomalyThresholds,
    IntentValidator,
    ValidationOutcome,
    ValidationResult,
    WorkflowState,
)
from proxilion.security.kill_switch import KillSwitch
from proxilion.security.memory_integrity import (
    ContextWindowGuard,
    IntegrityViolation,
    IntegrityViolationType,
    MemoryIntegrityGuard,
    RAGDocument,
    RAGScanResult,
)
from proxilion.security.memory_integrity import SignedMessage as MemorySignedMessage
from proxilion.security.memory_integrity import VerificationResult as MemoryVerificationResult
from proxilion.security.rate_limiter import (
    MultiDimensionalRateLimiter,
    RateLimitConfig,
    RateLimiterMiddleware,
    SlidingWindowRateLimiter,
    TokenBucketRateLimiter,
)
from proxilion.security.sequence_validator import (
    DEFAULT_SEQUENCE_RULES,
    SequenceAction,
    SequenceRule,
    SequenceValidator,
    SequenceViolation,
    ToolCallRecord,
    create_sequence_validator,
)
from proxilion.security.trust_boundaries import (
    DEFAULT_BOUNDARIES,
    AgentIdentity,
    DelegationToken,
    TrustBoundary,
    TrustBoundaryViolation,
    TrustEnforcer,
    TrustLevel,
)

__all__ = [
    "DEFAULT_BOUNDARIES",
    "DEFAULT_SEQUENCE_RULES",
    "AgentCredential",
    "AgentDelegationToken",
    "AgentIdentity",
    "AgentSignedMessage",
    "AgentTrustLevel",
    "AgentTrustManager",
    "AgentVerificationResult",
    "AnomalyThresholds",
    "BaselineStats",
    "BehavioralMonitor",
    "CircuitBreaker",
    "CircuitBreakerRegistry",
    "CircuitState",
    "CircuitStats",
    "ContextWindowGuard",
    "DelegationChain",
    "DelegationToken",
    "DriftDetector",
    "DriftMetric",
    "DriftResult",
    "HijackDetection",
    "IDORProtector",
    "IDPattern",
    "IntegrityViolation",
    "IntegrityViolationType",
    "IntentCapsule",
    "IntentCapsuleManager",
    "IntentCategory",
    "IntentGuard",
    "IntentHijackValidator",
    "IntentValidator",
    "KillSwitch",
    "MemoryIntegrityGuard",
    "MemorySignedMessage",
    "MemoryVerificationResult",
    "MultiDimensionalRateLimiter",
    "RAGDocument",
    "RAGScanResult",
    "RateLimitConfig",
    "RateLimiterMiddleware",
    "ResourceScope",
    "SequenceAction",
    "SequenceRule",
    "SequenceValidator",
    "SequenceViolation",
    "SlidingWindowRateLimiter",
    "TokenBucketRateLimiter",
    "ToolCallRecord",
    "TrustBoundary",
    "TrustBoundaryViolation",
    "TrustEnforcer",
    "TrustLevel",
    "ValidationOutcome",
    "ValidationResult",
    "WeakSecretKeyWarning",
    "WorkflowState",
    "create_sequence_validator",
]
