"""Pure-Python twins of every native hot path in ``proxilion._core``.

Each function here has the same name, signature, results and exceptions as its native
counterpart. The twins are the oracle for differential and property tests, the fallback when
the extension is missing, and the baseline that ``benches/`` divides by.
"""

from __future__ import annotations

from proxilion._reference.agent import (
    IntentGate,
    capsule_create,
    capsule_sign,
    capsule_verify,
    intent_category,
    uuid4_batch,
)
from proxilion._reference.agent_msg import (
    AgentCredential,
    AgentLock,
    AgentMessages,
    AgentSignedMessage,
    AgentVerificationResult,
    agent_result,
)
from proxilion._reference.chain import (
    AUDIT_GENESIS_HASH,
    AuditChain,
    AuditFileWriter,
    MerkleLog,
    audit_authorization_hash,
    audit_event_hash,
    audit_event_line,
    audit_merkle_root,
    audit_verify_files,
    canonical_json,
    merkle_leaf_hash,
    merkle_verify_consistency,
    merkle_verify_inclusion,
)
from proxilion._reference.guard import GuardResult, InputChecker
from proxilion._reference.limit import GcraLimiter
from proxilion._reference.mac import (
    blake3_keyed_hex,
    constant_time_eq,
    hmac_sha256,
    hmac_sha256_hex,
    hmac_sha256_verify,
    sha256_hex,
)
from proxilion._reference.memory import MemoryChain, SignedMessage
from proxilion._reference.scan import (
    SCAN_DETACH_THRESHOLD,
    PatternSet,
    Prepared,
    normalize,
)
from proxilion._reference.sign import (
    SigningKeys,
    py_float_repr,
    role_injection_rule,
    sorted_json,
)
from proxilion._reference.stats import DriftEngine, Ewma, Welford, drift_metric_names

__version__ = "0.1.0"

__all__ = [
    "AUDIT_GENESIS_HASH",
    # scan
    "SCAN_DETACH_THRESHOLD",
    # agent_msg
    "AgentCredential",
    "AgentLock",
    "AgentMessages",
    "AgentSignedMessage",
    "AgentVerificationResult",
    "AuditChain",
    "AuditFileWriter",
    "DriftEngine",
    "Ewma",
    "GcraLimiter",
    "GuardResult",
    "InputChecker",
    "IntentGate",
    "MemoryChain",
    "MerkleLog",
    "PatternSet",
    "Prepared",
    "SignedMessage",
    "SigningKeys",
    "Welford",
    "__version__",
    "agent_result",
    "audit_authorization_hash",
    "audit_event_hash",
    "audit_event_line",
    "audit_merkle_root",
    "audit_verify_files",
    "blake3_keyed_hex",
    "build_info",
    "canonical_json",
    "capsule_create",
    "capsule_sign",
    "capsule_verify",
    "constant_time_eq",
    "drift_metric_names",
    "hmac_sha256",
    "hmac_sha256_hex",
    "hmac_sha256_verify",
    "intent_category",
    "merkle_leaf_hash",
    "merkle_verify_consistency",
    "merkle_verify_inclusion",
    "normalize",
    "py_float_repr",
    "role_injection_rule",
    "sha256_hex",
    "sorted_json",
    "uuid4_batch",
    "version",
]


def version() -> str:
    """Version of the backend (same as the native crate version)."""
    return __version__


def build_info() -> dict[str, object]:
    """Facts about this backend, shaped like ``proxilion._core.build_info()``."""
    return {
        "version": __version__,
        "backend": "reference",
        "profile": "python",
        "features": [
            "agent",
            "agent_msg",
            "chain",
            "guard",
            "limit",
            "mac",
            "scan",
            "sign",
            "stats",
        ],
    }
