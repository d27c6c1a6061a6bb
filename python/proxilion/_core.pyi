"""Type stub of the native extension ``proxilion._core`` (built from rust/python).

Each area of the binding has its own section below. Every function here has a pure-Python
twin with the same signature in ``proxilion._reference``.
"""

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, final

from typing_extensions import disjoint_base

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
    "MemoryChain",
    "SignedMessage",
    "SigningKeys",
    "py_float_repr",
    "role_injection_rule",
    "sorted_json",
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
    # scan
    "SCAN_DETACH_THRESHOLD",
    "PatternSet",
    "Prepared",
    # guard
    "GuardResult",
    "InputChecker",
    "normalize",
    # stats
    "DriftEngine",
    "Ewma",
    "Welford",
    "drift_metric_names",
    # agent
    "IntentGate",
    "capsule_create",
    "capsule_sign",
    "capsule_verify",
    "intent_category",
    "uuid4_batch",
    # agent_msg
    "AgentCredential",
    "AgentLock",
    "AgentMessages",
    "AgentSignedMessage",
    "AgentVerificationResult",
    "agent_result",
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
        plain_type: type | None = None,
    ) -> list[tuple[str, int, float, str, str]]: ...
    def agent_sign(
        self,
        message_id: object,
        from_agent: object,
        to_agent: object,
        action: object,
        payload: object,
        timestamp: object,
    ) -> str: ...
    def agent_verify(
        self,
        message_id: object,
        from_agent: object,
        to_agent: object,
        action: object,
        payload: object,
        timestamp: object,
        signature: object,
    ) -> int: ...

def py_float_repr(x: float) -> str: ...
def role_injection_rule(text: str) -> int: ...
def sorted_json(obj: object, default_str: bool = False) -> str: ...

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

# --- scan: multi-pattern guard scanning (rust/core/src/scan) ------------------------------

SCAN_DETACH_THRESHOLD: int

def normalize(text: str) -> str: ...

@final
class Prepared:
    def view_bytes(self) -> bytes: ...
    def text_bytes(self) -> bytes: ...

@final
class PatternSet:
    def __new__(cls, specs: Sequence[tuple[str, str | None, bool]]) -> PatternSet: ...
    def __len__(self) -> int: ...
    @property
    def sources(self) -> list[str]: ...
    @property
    def engines(self) -> list[str]: ...
    @property
    def raw(self) -> list[bool]: ...
    def scan(self, text: str) -> list[tuple[int, list[tuple[int, int]]]]: ...
    def which(self, text: str) -> list[int]: ...
    def prepare(self, text: str) -> Prepared: ...
    def spans(
        self, prepared: Prepared, indices: Sequence[int]
    ) -> list[tuple[int, list[tuple[int, int]]]]: ...
    def redact(self, text: str, replacements: Sequence[str | None]) -> str: ...
    def verdict(
        self, text: str, context: Any, threshold: float, fail_action: Any, allow: Any
    ) -> list[tuple[int, list[tuple[int, int]]]] | GuardResult: ...

# --- guard: GuardResult as a native class (rust/python/src/guard.rs) -----------------------

@disjoint_base
class GuardResult:
    passed: Any
    action: Any
    matched_patterns: Any
    risk_score: Any
    sanitized_input: Any
    matches: Any
    context: Any
    def __new__(cls, *args: Any, **kwargs: Any) -> GuardResult: ...
    @classmethod
    def allow(cls) -> GuardResult: ...
    @classmethod
    def block(cls, matched_patterns: Any, risk_score: Any, matches: Any = None) -> GuardResult: ...
    def __reduce__(self) -> tuple[Any, ...]: ...
    # Set by proxilion.guards.input_guard (the twin dataclass's metadata).
    __match_args__: ClassVar[tuple[str, ...]]

@final
class InputChecker:
    def __new__(
        cls,
        pattern_set: PatternSet,
        threshold: float,
        fail_action: Any,
        allow: Any,
        finish: Callable[[Any, Any, list[tuple[int, list[tuple[int, int]]]]], Any],
    ) -> InputChecker: ...
    def configure(self, threshold: float, fail_action: Any) -> None: ...
    @property
    def pattern_set(self) -> PatternSet: ...
    def check(self, input_text: Any, context: Any = None) -> Any: ...

# --- stats: Welford / EWMA accumulators and the drift engine (rust/core/src/stats) -----------

from collections.abc import Iterable, Mapping  # noqa: E402 - kept in this section (merges)
from typing import final  # noqa: E402

_BaselineT = tuple[int, float, float, float, float, int, float, float, float]
_CheckT = tuple[int, float, float, float, float, float, str | None]

def drift_metric_names() -> list[str]: ...

@final
class Welford:
    def __init__(self) -> None: ...
    def push(self, x: float) -> None: ...
    def extend(self, xs: Iterable[float]) -> None: ...
    def merge(self, other: Welford) -> None: ...
    @property
    def count(self) -> int: ...
    @property
    def mean(self) -> float: ...
    @property
    def m2(self) -> float: ...
    @property
    def variance(self) -> float: ...
    @property
    def population_variance(self) -> float: ...
    @property
    def std_dev(self) -> float: ...
    @property
    def min(self) -> float: ...
    @property
    def max(self) -> float: ...
    def z_score(self, x: float) -> float: ...
    def to_state(self) -> tuple[int, float, float, float, float]: ...
    @staticmethod
    def from_state(state: Iterable[Any]) -> Welford: ...

@final
class Ewma:
    def __new__(cls, alpha: float) -> Ewma: ...
    @staticmethod
    def with_span(span: int) -> Ewma: ...
    def push(self, x: float) -> None: ...
    def extend(self, xs: Iterable[float]) -> None: ...
    def merge(self, other: Ewma) -> None: ...
    @property
    def alpha(self) -> float: ...
    @property
    def count(self) -> int: ...
    @property
    def mean(self) -> float: ...
    @property
    def variance(self) -> float: ...
    @property
    def std_dev(self) -> float: ...
    def to_state(self) -> tuple[float, int, float, float]: ...
    @staticmethod
    def from_state(state: Iterable[Any]) -> Ewma: ...

@final
class DriftEngine:
    def __new__(
        cls,
        baseline_window: int | None = None,
        detection_window: int | None = None,
        min_baseline_samples: int | None = None,
    ) -> DriftEngine: ...
    def record_tool_call(
        self,
        tool_name: str,
        latency_ms: float | None = None,
        arguments: Mapping[Any, Any] | None = None,
        now: float | None = None,
        wall: float | None = None,
    ) -> None: ...
    def record(
        self,
        tool_name: str,
        arguments: Mapping[Any, Any] | None = None,
        latency_ms: float | None = None,
    ) -> None: ...
    def record_tool_event(
        self, tool_name: str, now: float | None = None, wall: float | None = None
    ) -> None: ...
    def record_event_time(self, now: float | None = None) -> None: ...
    def record_error(self, now: float | None = None) -> None: ...
    def record_value(self, metric: int, value: float) -> None: ...
    @property
    def locked(self) -> bool: ...
    def config(self) -> tuple[int, int, int]: ...
    def sample_counts(self) -> list[int]: ...
    def lock(self) -> list[_BaselineT]: ...
    def baselines(self) -> list[_BaselineT]: ...
    def baseline_status(self) -> tuple[list[str], dict[str, list[str]]]: ...
    def check(self) -> list[_CheckT]: ...
    def evaluate(
        self, threshold: float
    ) -> tuple[float, list[tuple[int, float, float, str | None]], list[_CheckT]]: ...
    def current_values(self) -> list[tuple[int, float]]: ...
    def metric_state(self, metric: int) -> dict[str, Any]: ...
    def replay(
        self, calls: Iterable[Any], threshold: float | None = None, check_every: int | None = None
    ) -> dict[str, Any]: ...
    def merge(self, other: DriftEngine) -> None: ...
    def to_state(self) -> dict[str, Any]: ...
    @staticmethod
    def from_state(state: Mapping[str, Any]) -> DriftEngine: ...

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

# --- sign: memory messages and the signing chain (rust/python/src/sign/memory.rs) ----------

@disjoint_base
class SignedMessage:
    role: Any
    content: Any
    sequence: Any
    timestamp: Any
    signature: Any
    previous_hash: Any
    metadata: Any
    # __init__, to_dict, from_dict, content_hash and the dataclass metadata are the twin
    # dataclass's, set by proxilion.security.memory_integrity (__new__ takes any arguments).
    def __new__(
        cls,
        role: str,
        content: str,
        sequence: int,
        timestamp: float,
        signature: str,
        previous_hash: str,
        metadata: dict[str, Any] = ...,
    ) -> SignedMessage: ...
    def __init__(
        self,
        role: str,
        content: str,
        sequence: int,
        timestamp: float,
        signature: str,
        previous_hash: str,
        metadata: dict[str, Any] = ...,
    ) -> None: ...
    def to_dict(self) -> dict[str, Any]: ...
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignedMessage: ...
    def content_hash(self) -> str: ...
    def __reduce__(self) -> tuple[Any, ...]: ...
    def __getstate__(self) -> tuple[dict[str, Any], dict[str, Any] | None]: ...
    def __setstate__(self, state: Any) -> None: ...
    __match_args__: ClassVar[tuple[str, ...]]

@final
class MemoryChain:
    def __new__(
        cls,
        ring: Any,
        clock: Callable[[], float],
        max_context_size: int,
        genesis: str,
        verify_fallback: Callable[[Any, Any, str | None], tuple[bool, Any]],
    ) -> MemoryChain: ...
    def sign_message(
        self, role: str, content: str, metadata: dict[str, Any] | None = None
    ) -> SignedMessage: ...
    def verify_message(
        self, message: Any, expected_previous_hash: str | None = None
    ) -> tuple[bool, Any]: ...
    def state(self) -> tuple[int, str]: ...
    def restore(self, sequence: int, last_hash: str) -> None: ...
    def reset(self) -> None: ...
    def set_max_context_size(self, value: int) -> None: ...

# --- agent: agent messages and intent capsules (rust/python/src/agent.rs) -----------------

def uuid4_batch(data: bytes) -> list[str]: ...
def capsule_sign(keys: SigningKeys, capsule: Any, meta: object) -> tuple[str, str]: ...
def capsule_verify(keys: SigningKeys, capsule: Any, meta: object, allow_legacy: bool) -> bool: ...
def intent_category(text: str) -> int: ...

# --- agent_msg: agent messages signed and verified in one call (rust/python/src/agent_msg.rs)

@disjoint_base
class AgentCredential:
    agent_id: Any
    trust_level: Any
    capabilities: Any
    public_key: Any
    parent_agent: Any
    created_at: Any
    expires_at: Any
    metadata: Any
    _secret: Any
    algorithm: Any
    # __init__, methods and the dataclass metadata are the twin dataclass's, set by
    # proxilion.security.agent_trust (__new__ takes any arguments).
    def __new__(
        cls,
        agent_id: str,
        trust_level: Any,
        capabilities: set[str],
        public_key: str,
        parent_agent: str | None = None,
        created_at: Any = ...,
        expires_at: Any = None,
        metadata: dict[str, Any] = ...,
        _secret: str = "",
        algorithm: str = "hmac-sha256",
    ) -> AgentCredential: ...
    def __init__(
        self,
        agent_id: str,
        trust_level: Any,
        capabilities: set[str],
        public_key: str,
        parent_agent: str | None = None,
        created_at: Any = ...,
        expires_at: Any = None,
        metadata: dict[str, Any] = ...,
        _secret: str = "",
        algorithm: str = "hmac-sha256",
    ) -> None: ...
    def is_expired(self) -> bool: ...
    def has_capability(self, capability: str) -> bool: ...
    def can_delegate_to(self, other: AgentCredential) -> bool: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __reduce__(self) -> tuple[Any, ...]: ...
    def __getstate__(self) -> tuple[dict[str, Any], dict[str, Any] | None]: ...
    def __setstate__(self, state: Any) -> None: ...
    __match_args__: ClassVar[tuple[str, ...]]

@disjoint_base
class AgentSignedMessage:
    message_id: Any
    from_agent: Any
    to_agent: Any
    action: Any
    payload: Any
    timestamp: Any
    signature: Any
    delegation_token: Any
    reply_to: Any
    metadata: Any
    # __init__, signed_text, to_dict and the dataclass metadata are the twin dataclass's, set
    # by proxilion.security.agent_trust (__new__ takes any arguments).
    def __new__(
        cls,
        message_id: str,
        from_agent: str,
        to_agent: str,
        action: str,
        payload: dict[str, Any],
        timestamp: float,
        signature: str,
        delegation_token: Any = None,
        reply_to: str | None = None,
        metadata: dict[str, Any] = ...,
    ) -> AgentSignedMessage: ...
    def __init__(
        self,
        message_id: str,
        from_agent: str,
        to_agent: str,
        action: str,
        payload: dict[str, Any],
        timestamp: float,
        signature: str,
        delegation_token: Any = None,
        reply_to: str | None = None,
        metadata: dict[str, Any] = ...,
    ) -> None: ...
    def signed_text(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __reduce__(self) -> tuple[Any, ...]: ...
    def __getstate__(self) -> tuple[dict[str, Any], dict[str, Any] | None]: ...
    def __setstate__(self, state: Any) -> None: ...
    __match_args__: ClassVar[tuple[str, ...]]

@final
class AgentLock:
    def __new__(cls) -> AgentLock: ...
    def acquire(self, blocking: bool = True, timeout: float = ...) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(self, *_exc: object) -> bool: ...
    def _is_owned(self) -> bool: ...

@final
class AgentMessages:
    def __new__(cls, manager: Any, credential_type: type) -> AgentMessages: ...
    def sign(
        self,
        from_agent: str,
        to_agent: str,
        action: str,
        payload: dict[str, Any],
        delegation_token: Any = None,
        reply_to: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Any: ...
    def verify(self, message: Any, check_replay: Any = ..., max_age_seconds: Any = ...) -> Any: ...

@disjoint_base
class AgentVerificationResult:
    valid: Any
    error: Any
    warnings: Any
    verified_at: Any
    # __init__, to_dict and the dataclass metadata are the twin dataclass's, set by
    # proxilion.security.agent_trust (__new__ takes any arguments).
    def __new__(
        cls,
        valid: bool,
        error: str | None = None,
        warnings: list[str] = ...,
        verified_at: Any = ...,
    ) -> AgentVerificationResult: ...
    def __init__(
        self,
        valid: bool,
        error: str | None = None,
        warnings: list[str] = ...,
        verified_at: Any = ...,
    ) -> None: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __reduce__(self) -> tuple[Any, ...]: ...
    def __getstate__(self) -> tuple[dict[str, Any], dict[str, Any] | None]: ...
    def __setstate__(self, state: Any) -> None: ...
    __match_args__: ClassVar[tuple[str, ...]]

def agent_result(
    valid: bool, error: str | None = None, warnings: list[str] | None = None
) -> AgentVerificationResult: ...

# --- agent/capsule: a whole new intent capsule in one call (rust/python/src/agent/capsule.rs)

def capsule_create(
    cls: type[Any],
    keys: SigningKeys,
    categories: tuple[Any, ...],
    user_id: object,
    intent: object,
    allowed_tools: object,
    allowed_actions: object,
    constraints: object,
    ttl_seconds: object,
    metadata: object,
    intent_category: object,
    /,
    capsule_id: str | None = None,
    now_us: int | None = None,
) -> Any: ...

# --- agent/gate: IntentGuard.validate_tool_call in one call (rust/python/src/agent/gate.rs) -

@final
class IntentGate:
    def __new__(cls, guard: Any, capsule_type: type[Any]) -> IntentGate: ...
    def validate(
        self, tool_name: object, arguments: object = None, description: object = None
    ) -> Any: ...
