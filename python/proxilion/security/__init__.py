"""Security controls (API.md section 7). Names are added here as their modules land."""

from __future__ import annotations

from proxilion.security.agent_trust import AgentCredential, AgentTrustManager, DelegationChain
from proxilion.security.agent_trust import DelegationToken as AgentDelegationToken
from proxilion.security.agent_trust import SignedMessage as AgentSignedMessage
from proxilion.security.agent_trust import TrustLevel as AgentTrustLevel
from proxilion.security.agent_trust import VerificationResult as AgentVerificationResult
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
from proxilion.security.trust_boundaries import (
    DEFAULT_BOUNDARIES,
    AgentIdentity,
    DelegationToken,
    TrustBoundary,
    TrustBoundaryViolation,
    TrustEnforcer,
    TrustLevel,
)

__all__ = ["KillSwitch"]

# agent_trust, idor_protection, intent_capsule, memory_integrity, trust_boundaries,
# intent_validator (the signing/trust area)
__all__ += [
    "DEFAULT_BOUNDARIES",
    "AgentCredential",
    "AgentDelegationToken",
    "AgentIdentity",
    "AgentSignedMessage",
    "AgentTrustLevel",
    "AgentTrustManager",
    "AgentVerificationResult",
    "AnomalyThresholds",
    "ContextWindowGuard",
    "DelegationChain",
    "DelegationToken",
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
    "MemoryIntegrityGuard",
    "MemorySignedMessage",
    "MemoryVerificationResult",
    "RAGDocument",
    "RAGScanResult",
    "ResourceScope",
    "TrustBoundary",
    "TrustBoundaryViolation",
    "TrustEnforcer",
    "TrustLevel",
    "ValidationOutcome",
    "ValidationResult",
    "WorkflowState",
]
