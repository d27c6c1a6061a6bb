"""Type stub of the native extension ``proxilion._core`` (built from rust/python).

Each area of the binding has its own section below. Every function here has a pure-Python
twin with the same signature in ``proxilion._reference``.
"""

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, final

__version__: str
__all__ = [
    "__version__",
    "build_info",
    "version",
    # mac
    "blake3_keyed_hex",
    "constant_time_eq",
    "hmac_sha256",
    "hmac_sha256_hex",
    "hmac_sha256_verify",
    "sha256_hex",
    # limit
    "GcraLimiter",
    # sign
    "SigningKeys",
    "py_float_repr",
    "role_injection_rule",
    # chain
    "AUDIT_GENESIS_HASH",
    "AuditChain",
    "AuditFileWriter",
    "MerkleLog",
    "audit_authorization_hash",
    "audit_event_hash",
    "audit_event_line",
    "audit_merkle_root",
    "audit_verify_files",
    "canonical_json",
    "merkle_leaf_hash",
    "merkle_verify_consistency",
    "merkle_verify_inclusion",
]

def version() -> str: ...
def build_info() -> dict[str, Any]: ...

# --- mac: HMAC-SHA256 / SHA-256 / keyed BLAKE3 (rust/core/src/mac) ------------------------

def hmac_sha256_hex(key: str | bytes, message: str | bytes) -> str: ...
def hmac_sha256(key: str | bytes, message: str | bytes) -> bytes: ...
def hmac_sha256_verify(key: str | bytes, message: str | bytes, tag: str | bytes) -> bool: ...
def constant_time_eq(a: str | bytes, b: str | bytes) -> bool: ...
def sha256_hex(data: str | bytes) -> str: ...
def blake3_keyed_hex(key: str | bytes, message: str | bytes) -> str: ...

# --- limit: keyed GCRA token buckets (rust/core/src/limit) --------------------------------

@final
class GcraLimiter:
    def __new__(
        cls,
        capacity: int,
        interval_ns: int,
        max_keys: int = 1_000_000,
        clock: Callable[[], float] | None = None,
    ) -> GcraLimiter: ...
    @property
    def capacity(self) -> int: ...
    @property
    def interval_ns(self) -> int: ...
    @property
    def max_keys(self) -> int: ...
    def acquire(self, key: str, cost: int = 1, now: float | None = None) -> bool: ...
    def remaining(self, key: str, now: float | None = None) -> int: ...
    def retry_after(self, key: str, cost: int = 1, now: float | None = None) -> float: ...
    def refund(self, key: str, cost: int = 1) -> None: ...
    def reset(self, key: str) -> bool: ...
    def reset_all(self) -> None: ...
    def evict(self, now: float | None = None) -> int: ...
    def __len__(self) -> int: ...

# --- sign: key sets, batch HMAC, memory-context walk (rust/core/src/sign) ------------------

@final
class SigningKeys:
    """HMAC-SHA256 keys; the first signs, all verify (rotation). Keys are never shown."""

    def __new__(cls, keys: Sequence[str | bytes]) -> SigningKeys: ...
    def __len__(self) -> int: ...
    def sign(self, message: str | bytes) -> str: ...
    def sign_many(self, messages: Sequence[str | bytes]) -> list[str]: ...
    def verify(self, message: str | bytes, tag: str | bytes) -> int: ...
    def verify_many(
        self, messages: Sequence[str | bytes], tags: Sequence[str | bytes]
    ) -> list[int]: ...
    def memory_sign(
        self, role: str, content: str, sequence: int, timestamp: float, previous_hash: str
    ) -> tuple[str, str]: ...
    def memory_verify_context(
        self,
        messages: Sequence[Any],
        genesis: str,
        strict_sequence: bool,
        check_timestamps: bool,
        max_timestamp_drift: float,
        now: float | None,
        max_clock_skew: float,
        max_age: float | None,
    ) -> list[tuple[str, int, float, str, str]]: ...

def py_float_repr(x: float) -> str: ...
def role_injection_rule(text: str) -> int: ...

# --- chain: canonical JSON, audit entries, verification, writer, Merkle (rust/core/src/chain) -

AUDIT_GENESIS_HASH: str

def canonical_json(obj: object) -> str: ...
def audit_event_hash(
    event_id: str,
    timestamp: str,
    sequence_number: object,
    data: object,
    previous_hash: str,
    algorithm: str = "sha256",
) -> str: ...
def audit_event_line(
    event_id: str,
    timestamp: str,
    sequence_number: object,
    data: object,
    previous_hash: str,
    merkle_index: int | None = None,
    algorithm: str = "sha256",
) -> tuple[str, bytes]: ...
def audit_verify_files(
    paths: Sequence[str | os.PathLike[str]],
    checkpoints: Sequence[tuple[int, bytes]] | None = None,
    collect_digests: bool = False,
    allow_genesis_restart: bool = False,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]: ...

@final
class AuditFileWriter:
    def __new__(
        cls,
        path: str | os.PathLike[str],
        fsync: str = "interval",
        fsync_interval: float = 1.0,
        sync_writes: bool = True,
    ) -> AuditFileWriter: ...
    def enqueue(self, data: bytes) -> int: ...
    def commit(self, ticket: int) -> None: ...
    def append(self, data: bytes) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    @property
    def path(self) -> Path: ...
    @property
    def size(self) -> int: ...
    def stats(self) -> dict[str, int]: ...

@final
class MerkleLog:
    def __new__(cls) -> MerkleLog: ...
    def append(self, data: bytes) -> int: ...
    def extend_leaves(self, data: bytes) -> None: ...
    def extend_leaf_hashes(self, hashes: bytes) -> None: ...
    @property
    def size(self) -> int: ...
    def root(self, size: int | None = None) -> bytes: ...
    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]: ...
    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]: ...
    def leaf_hash(self, index: int) -> bytes: ...
    def __len__(self) -> int: ...

def merkle_leaf_hash(data: bytes) -> bytes: ...
def merkle_verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool: ...
def merkle_verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool: ...
def audit_authorization_hash(
    record: tuple[Any, ...],
    event_id: str,
    timestamp: str | None,
    sequence_number: object,
    previous_hash: str,
    algorithm: str = "sha256",
) -> str: ...
def audit_merkle_root(leaves: Sequence[str]) -> str: ...

@final
class AuditChain:
    def __new__(
        cls, event_class: type, algorithm: str = "sha256", max_events: int | None = None
    ) -> AuditChain: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def genesis(self) -> str: ...
    @property
    def head(self) -> str: ...
    @property
    def base(self) -> str: ...
    @property
    def length(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def max_events(self) -> int | None: ...
    @property
    def leaf_count(self) -> int: ...
    def events(self) -> list[Any]: ...
    def event(self, index: int) -> Any: ...
    def push(self, event: Any) -> None: ...
    def add_leaf(self, leaf: str) -> int: ...
    def take_leaves(self) -> list[str]: ...
    def resume(self, head: str, length: int) -> None: ...
    def append_authorization(
        self,
        sequence_number: object,
        user_id: object,
        user_roles: Any,
        tool_name: object,
        tool_arguments: Any,
        allowed: object,
        reason: object = None,
        policies_evaluated: Any = None,
        session_id: object = None,
        user_attributes: Any = None,
        agent_id: object = None,
        agent_capabilities: Any = None,
        agent_trust_score: object = None,
        execution_result: object = None,
        *,
        event_id: str | None = None,
        timestamp_us: int | None = None,
        tool_timestamp_us: int | None = None,
    ) -> Any: ...
    def write_authorization(
        self,
        writer: Any,
        sequence_number: object,
        user_id: object,
        user_roles: Any,
        tool_name: object,
        tool_arguments: Any,
        allowed: object,
        reason: object = None,
        policies_evaluated: Any = None,
        session_id: object = None,
        user_attributes: Any = None,
        agent_id: object = None,
        agent_capabilities: Any = None,
        agent_trust_score: object = None,
        execution_result: object = None,
        *,
        event_id: str | None = None,
        timestamp_us: int | None = None,
        tool_timestamp_us: int | None = None,
    ) -> tuple[Any, Any]: ...
