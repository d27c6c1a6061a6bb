"""Tamper-evident audit logging (``proxilion.audit``).

Same names as the original SDK (API.md section 9), plus on-disk verification, RFC 6962
Merkle proofs and signed checkpoints. The explainability and compliance/cloud exporter
modules of the original are not part of this package yet.
"""

from __future__ import annotations

from proxilion.audit.base_exporters import (
    CallbackExporter,
    ConsoleExporter,
    Exporter,
    FileExporter,
    MultiExporter,
    StreamExporter,
    read_jsonl_events,
    verify_jsonl_chain,
)
from proxilion.audit.checkpoint import Checkpoint, sign_checkpoint
from proxilion.audit.events import (
    AuditEventData,
    AuditEventV2,
    EventType,
    RedactionConfig,
    create_authorization_event,
    redact_sensitive_data,
    reset_sequence,
)
from proxilion.audit.hash_chain import (
    GENESIS_HASH,
    BatchedHashChain,
    ChainVerificationResult,
    HashChain,
    MerkleBatch,
    MerkleTree,
)
from proxilion.audit.logger import AuditLogger, InMemoryAuditLogger, LoggerConfig, RotationPolicy
from proxilion.audit.verify import (
    InclusionProof,
    LogVerificationResult,
    prove_inclusion,
    verify_inclusion_proof,
    verify_log,
)

#: The seed's name for an audit event; the logger's events are :class:`AuditEventV2`.
AuditEvent = AuditEventV2

__all__ = [
    "GENESIS_HASH",
    "AuditEvent",
    "AuditEventData",
    "AuditEventV2",
    "AuditLogger",
    "BatchedHashChain",
    "CallbackExporter",
    "ChainVerificationResult",
    "Checkpoint",
    "ConsoleExporter",
    "EventType",
    "Exporter",
    "FileExporter",
    "HashChain",
    "InMemoryAuditLogger",
    "InclusionProof",
    "LogVerificationResult",
    "LoggerConfig",
    "MerkleBatch",
    "MerkleTree",
    "MultiExporter",
    "RedactionConfig",
    "RotationPolicy",
    "StreamExporter",
    "create_authorization_event",
    "prove_inclusion",
    "read_jsonl_events",
    "redact_sensitive_data",
    "reset_sequence",
    "sign_checkpoint",
    "verify_inclusion_proof",
    "verify_jsonl_chain",
    "verify_log",
]
