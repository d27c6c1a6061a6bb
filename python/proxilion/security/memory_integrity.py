"""Signed conversation memory: HMAC-chained messages, context verification, RAG scanning.

API.md section 8.3; seed example 5 ("Integrity Verification"). Each message is signed with
HMAC-SHA256 over ``f"{role}|{content}|{sequence}|{timestamp}|{previous_hash}"`` (bytes
identical to the original SDK, so signatures made by either verify with the other) and linked
to the previous message by a SHA-256 content hash. :meth:`MemoryIntegrityGuard.verify_context`
checks a whole conversation in **one native call** (signatures, chain, sequence, timestamps,
role-injection markers).

Differences from the original, on purpose (see ``docs/trust-and-integrity.md``):

* **Replay protection on the clock.** With ``check_timestamps`` (the default), a message dated
  more than ``max_clock_skew`` seconds in the future is a ``TIMESTAMP_ANOMALY``, and with
  ``max_context_age`` set, a context whose newest message is older than that is one too (a
  replayed or rolled-back conversation). Non-finite or non-numeric timestamps fail closed.
* Signature-mismatch violations do not reveal any part of the correct signature
  (``expected`` is ``None``); the original showed its first 16 hex digits.
* :meth:`ContextWindowGuard.pop` rolls the guard back, so messages added afterwards verify.
* Keys: short keys warn instead of failing, binary keys work, and keys rotate with a grace
  period (:meth:`MemoryIntegrityGuard.rotate_key`); see :mod:`proxilion.security._keys`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

from proxilion._backend import adopt_dataclass, impl
from proxilion._reference.memory import SignedMessage as _DataclassSignedMessage
from proxilion.exceptions import ConfigurationError, ContextIntegrityError
from proxilion.security._keys import KeyRing

__all__ = [
    "RAG_POISON_PATTERNS",
    "ContextWindowGuard",
    "IntegrityViolation",
    "IntegrityViolationType",
    "MemoryIntegrityGuard",
    "RAGDocument",
    "RAGScanResult",
    "SignedMessage",
    "VerificationResult",
]

GENESIS_HASH = "0" * 64


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class IntegrityViolationType(Enum):
    """Kinds of integrity problems."""

    SIGNATURE_MISMATCH = "signature_mismatch"
    SEQUENCE_GAP = "sequence_gap"
    SEQUENCE_REORDER = "sequence_reorder"
    TIMESTAMP_ANOMALY = "timestamp_anomaly"
    ROLE_INJECTION = "role_injection"
    RAG_POISONING = "rag_poisoning"
    CONTEXT_OVERFLOW = "context_overflow"
    HASH_CHAIN_BREAK = "hash_chain_break"


@dataclass
class IntegrityViolation:
    """One integrity problem found in a context or document set."""

    violation_type: IntegrityViolationType
    message: str
    severity: float
    index: int | None = None
    expected: str | None = None
    actual: str | None = None
    timestamp: datetime = field(default_factory=_utcnow)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``type`` is the enum value, ``timestamp`` ISO 8601)."""
        return {
            "type": self.violation_type.value,
            "message": self.message,
            "severity": self.severity,
            "index": self.index,
            "expected": self.expected,
            "actual": self.actual,
            "timestamp": self.timestamp.isoformat(),
        }


#: The twin dataclass's methods the native ``SignedMessage`` takes over as they are.
_DATACLASS_METHODS = (
    "__init__",
    "__repr__",
    "__eq__",
    "__hash__",
    "to_dict",
    "from_dict",
    "content_hash",
)


if TYPE_CHECKING:
    from proxilion._reference.memory import SignedMessage as SignedMessage
else:
    # The dataclass of API.md 8.3. On the native backend it is a native class (its fields
    # live in the object: much cheaper to build and to verify) given this dataclass's
    # methods and metadata, so it behaves as the dataclass; see rust/python/src/sign/memory.rs.
    SignedMessage = impl.SignedMessage
    try:  # complete the native class even when the reference backend is active
        from proxilion import _core as _native

        adopt_dataclass(_native.SignedMessage, _DataclassSignedMessage, _DATACLASS_METHODS)
    except ImportError:  # pragma: no cover - the extension is missing
        pass


@dataclass
class VerificationResult:
    """Outcome of :meth:`MemoryIntegrityGuard.verify_context`."""

    valid: bool
    violations: list[IntegrityViolation] = field(default_factory=list)
    verified_count: int = 0
    total_count: int = 0

    @property
    def violation_count(self) -> int:
        """Number of violations."""
        return len(self.violations)

    @property
    def max_severity(self) -> float:
        """Highest violation severity, 0.0 when there are none."""
        return max((v.severity for v in self.violations), default=0.0)


@dataclass
class RAGDocument:
    """A retrieved document to be placed in a model's context."""

    content: str
    source: str | None = None
    score: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class RAGScanResult:
    """Outcome of :meth:`MemoryIntegrityGuard.scan_rag_documents`."""

    safe: bool
    documents: list[RAGDocument]
    poisoned_indices: list[int] = field(default_factory=list)
    violations: list[IntegrityViolation] = field(default_factory=list)

    @property
    def safe_documents(self) -> list[RAGDocument]:
        """The documents not flagged as poisoned."""
        bad = set(self.poisoned_indices)
        return [d for i, d in enumerate(self.documents) if i not in bad]


#: Built-in RAG poisoning patterns: (regex, description, severity), each case-insensitive.
RAG_POISON_PATTERNS: list[tuple[str, str, float]] = [
    (
        r"(?i)\b(ignore|disregard|forget|override)\b[^.\n]{0,40}"
        r"\b(previous|prior|above|earlier|all|your)\b[^.\n]{0,20}"
        r"\b(instructions?|prompts?|rules|directions|guidelines)\b",
        "Instruction override attempt",
        0.95,
    ),
    (
        r"(?i)\b(you are now|from now on,? you are|act as|pretend (to be|you are)|"
        r"roleplay as)\b",
        "Role/persona injection",
        0.9,
    ),
    (
        r"(?i)(^|\n)\s*(\[\s*system\s*\]|system\s*(message|prompt|override)\s*:|"
        r"<\s*system\s*>)",
        "Fake system message",
        0.95,
    ),
    (
        r"(?i)(<\|(im_start|im_end|system|user|assistant|endoftext)\|>|\[/?INST\]|"
        r"<</?SYS>>|###\s*(system|instruction)\s*:)",
        "Model delimiter injection",
        0.9,
    ),
    (
        r"(?i)\b(grant|give|escalate|elevate)\b[^.\n]{0,30}"
        r"\b(admin|root|superuser|elevated|full)\b[^.\n]{0,20}"
        r"\b(access|privileges?|permissions?|rights)\b",
        "Privilege escalation attempt",
        0.85,
    ),
    (
        r"(?i)\b(reveal|print|show|output|repeat|leak)\b[^.\n]{0,30}"
        r"\b(system prompt|initial instructions|hidden instructions|your instructions)\b",
        "System prompt extraction",
        0.8,
    ),
    (
        r"(?i)\b(clear|erase|wipe|reset|delete)\b[^.\n]{0,20}"
        r"\b(your )?(memory|memories|context|conversation history)\b"
        r"|\bforget\s+(about\s+)?(everything|all|anything|what(ever)?)\s+(that\s+)?you\s*"
        r"(know|knew|learned|learnt|remember|(('ve|\s+have)\s+)?(been|were)\s+"
        r"(told|taught|trained|given|programmed))\b"
        r"|\bforget\s+(all\s+)?your\s+(training|memories|memory|knowledge|context)\b",
        "Memory wipe attempt",
        0.85,
    ),
    (
        r"(?i)\b(always|never|must)\b[^.\n]{0,30}\b(respond|answer|reply|obey|comply)\b"
        r"[^.\n]{0,30}\b(regardless|no matter|without question|unconditionally)\b"
        r"|\b(from now on|henceforth|from this point (on|forward))\b,?\s+you\s+(are\b|"
        r"(will|must|shall|should)\s+(now\s+|always\s+|only\s+|never\s+)?(act|behave|respond"
        r"|answer|reply|obey|comply|ignore|disregard|be|pretend|follow|say|refuse|not|play"
        r"|speak|output|write)\b)",
        "Behavioral override",
        0.8,
    ),
    (
        r"(?i)\b(bypass|disable|turn off|ignore|circumvent)\b[^.\n]{0,30}"
        r"\b(safety|security|content (filter|policy)|guardrails?|restrictions?|filters?)\b",
        "Safety bypass attempt",
        0.95,
    ),
    (
        r"(?i)(\b(exec|eval|os\.system|subprocess\.\w+|__import__)\s*\(|"
        r"\brm\s+-rf\s+/|\bcurl\s+[^|\n]+\|\s*(ba)?sh\b)",
        "Code execution injection",
        0.9,
    ),
]
_COMPILED_RAG = [(re.compile(p), d, s) for p, d, s in RAG_POISON_PATTERNS]

_SEVERITY = {
    "signature": 1.0,
    "chain": 1.0,
    "reorder": 0.9,
    "gap": 0.8,
    "sequence_type": 0.8,
    "timestamp_backwards": 0.7,
    "timestamp_gap": 0.5,
    "timestamp_invalid": 0.7,
    "timestamp_future": 0.8,
    "stale": 0.8,
    "role": 0.85,
}


def _short(text: str) -> str:
    return text[:16] + "..."


def _number(value: object, what: str, *, allow_none: bool = False, positive: bool = True) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigurationError(f"{what} must be a number", received=value)
    if positive and value < 0:
        raise ConfigurationError(f"{what} must be >= 0", received=value)
    return float(value)


class MemoryIntegrityGuard:
    """Signs conversation messages and verifies whole contexts.

    Args:
        secret_key: HMAC key (``str`` or ``bytes``); empty keys are rejected, weak ones warn.
        max_timestamp_drift: largest allowed gap between consecutive messages (seconds).
        max_context_size: most messages one guard signs, and the largest verified context
            without a ``CONTEXT_OVERFLOW`` violation.
        enable_rag_scan: stored for compatibility; :meth:`scan_rag_documents` always scans.
        custom_rag_patterns: extra ``(regex, description, severity)`` RAG rules (compiled
            without flags, as in the original).
        max_clock_skew: how far in the future a timestamp may lie (new; ``None`` = no limit).
        max_context_age: if set, a context whose newest message is older than this many
            seconds is stale (new; replay/rollback protection). Default: no limit.
        clock: wall clock in seconds (injectable for tests).
        key_id: identifier of the first key (for rotation).

    Thread-safe.
    """

    GENESIS_HASH = GENESIS_HASH

    def __init__(
        self,
        secret_key: str | bytes,
        max_timestamp_drift: float = 60.0,
        max_context_size: int = 1000,
        enable_rag_scan: bool = True,
        custom_rag_patterns: list[tuple[str, str, float]] | None = None,
        *,
        max_clock_skew: float | None = 60.0,
        max_context_age: float | None = None,
        clock: Callable[[], float] = time.time,
        key_id: str | None = None,
    ) -> None:
        self._ring = KeyRing(secret_key, key_id=key_id, clock=clock, _stacklevel=2)
        self.max_timestamp_drift = _number(max_timestamp_drift, "max_timestamp_drift")
        _check_max_context_size(max_context_size)
        self._max_context_size = max_context_size
        self.enable_rag_scan = enable_rag_scan
        self.max_clock_skew = _number(max_clock_skew, "max_clock_skew", allow_none=True)
        self.max_context_age = _number(max_context_age, "max_context_age", allow_none=True)
        self._clock = clock
        self._rag = list(_COMPILED_RAG)
        for pattern, description, severity in custom_rag_patterns or []:
            self._rag.append((re.compile(pattern), description, float(severity)))
        # The chain state (sequence, last hash) and the per-message operations, natively.
        # Unless a subclass overrides them, the instance's ``sign_message`` and
        # ``verify_message`` are the chain's own methods: one native call per message.
        self._chain = impl.MemoryChain(
            self._ring, clock, max_context_size, GENESIS_HASH, _verify_message
        )
        cls = type(self)
        if cls.sign_message is MemoryIntegrityGuard.sign_message:
            self.__dict__["sign_message"] = self._chain.sign_message
        if cls.verify_message is MemoryIntegrityGuard.verify_message:
            self.__dict__["verify_message"] = self._chain.verify_message

    def __repr__(self) -> str:
        sequence = self._chain.state()[0]
        return f"MemoryIntegrityGuard(key_id={self._ring.current_key_id!r}, sequence={sequence})"

    @property
    def max_context_size(self) -> int:
        """Most messages this guard signs, and the largest context verified without a
        ``CONTEXT_OVERFLOW`` violation (settable; ``ConfigurationError`` unless an int >= 1)."""
        return self._max_context_size

    @max_context_size.setter
    def max_context_size(self, value: int) -> None:
        _check_max_context_size(value)
        self._chain.set_max_context_size(value)
        self._max_context_size = value

    @property
    def key_ring(self) -> KeyRing:
        """The guard's keys (ids only are shown)."""
        return self._ring

    def rotate_key(
        self, new_key: str | bytes, *, key_id: str | None = None, grace_seconds: float = 3600.0
    ) -> str:
        """Sign with ``new_key`` from now on; older signatures verify for ``grace_seconds``."""
        return self._ring.rotate(new_key, key_id=key_id, grace_seconds=grace_seconds)

    # -- signing -------------------------------------------------------------------------

    def sign_message(
        self, role: str, content: str, metadata: dict[str, Any] | None = None
    ) -> SignedMessage:
        """Sign the next message of this guard's chain.

        Raises:
            ContextIntegrityError: ``max_context_size`` messages were already signed.
            TypeError / ValueError: ``role``/``content`` are not text, or not encodable.
        """
        return self._chain.sign_message(role, content, metadata)  # type: ignore[no-any-return]

    # -- verification --------------------------------------------------------------------

    def verify_message(
        self, message: SignedMessage, expected_previous_hash: str | None = None
    ) -> tuple[bool, IntegrityViolation | None]:
        """Check one message's signature (any active key) and, if given, its chain link."""
        return self._chain.verify_message(message, expected_previous_hash)  # type: ignore[no-any-return]

    def verify_context(
        self,
        context: list[SignedMessage],
        strict_sequence: bool = True,
        check_timestamps: bool = True,
    ) -> VerificationResult:
        """Verify a whole conversation, from sequence 0, in one native call.

        ``valid`` is true only when there is no violation at all. Checked per message, in
        order: signature (or chain link), sequence, timestamps (order, gaps, future), role
        markers; then the staleness of the newest message (``max_context_age``).
        """
        violations: list[IntegrityViolation] = []
        n = len(context)
        if n > self.max_context_size:
            violations.append(
                IntegrityViolation(
                    IntegrityViolationType.CONTEXT_OVERFLOW,
                    f"Context size {n} exceeds max {self.max_context_size}",
                    0.7,
                )
            )
        if n == 0:
            return VerificationResult(valid=not violations, violations=violations)
        now = float(self._clock()) if check_timestamps else None
        skew = self.max_clock_skew if self.max_clock_skew is not None else float("inf")
        findings = self._ring.signing_keys().memory_verify_context(
            context,
            GENESIS_HASH,
            bool(strict_sequence),
            bool(check_timestamps),
            self.max_timestamp_drift,
            now,
            skew,
            self.max_context_age,
            _DataclassSignedMessage,
        )
        unverified = 0
        for code, i, value, expected, actual in findings:
            violations.append(self._violation(context, code, i, value, expected, actual))
            if code in ("signature", "chain"):
                unverified += 1
        return VerificationResult(
            valid=not violations,
            violations=violations,
            verified_count=n - unverified,
            total_count=n,
        )

    @staticmethod
    def _violation(
        context: list[SignedMessage], code: str, i: int, value: float, expected: str, actual: str
    ) -> IntegrityViolation:
        T = IntegrityViolationType
        sev = _SEVERITY[code]
        if code in ("signature", "chain"):
            msg = context[i]
            seq = msg.sequence
            index = seq if isinstance(seq, int) else None
            if code == "signature":
                return IntegrityViolation(
                    T.SIGNATURE_MISMATCH,
                    f"Signature mismatch for message at sequence {seq}",
                    sev,
                    index=index,
                    actual=_short(f"{msg.signature}"),
                )
            return IntegrityViolation(
                T.HASH_CHAIN_BREAK,
                f"Hash chain break at sequence {seq}",
                sev,
                index=index,
                expected=_short(expected),
                actual=_short(f"{msg.previous_hash}"),
            )
        if code == "reorder":
            return IntegrityViolation(
                T.SEQUENCE_REORDER,
                f"Message {i} sequence {actual}, expected {expected}",
                sev,
                index=i,
                expected=expected,
                actual=actual,
            )
        if code == "gap":
            return IntegrityViolation(
                T.SEQUENCE_GAP, f"Gap in sequence: {expected} -> {actual}", sev, index=i
            )
        if code == "sequence_type":
            return IntegrityViolation(
                T.SEQUENCE_GAP, f"Message {i} sequence is not an integer", sev, index=i
            )
        if code == "timestamp_backwards":
            return IntegrityViolation(
                T.TIMESTAMP_ANOMALY, f"Timestamp goes backwards at message {i}", sev, index=i
            )
        if code == "timestamp_gap":
            return IntegrityViolation(
                T.TIMESTAMP_ANOMALY,
                f"Large timestamp gap at message {i}: {value:.1f}s",
                sev,
                index=i,
            )
        if code == "timestamp_invalid":
            return IntegrityViolation(
                T.TIMESTAMP_ANOMALY,
                f"Timestamp is not a finite number at message {i}",
                sev,
                index=i,
            )
        if code == "timestamp_future":
            return IntegrityViolation(
                T.TIMESTAMP_ANOMALY,
                f"Timestamp in the future at message {i}: {value:.1f}s ahead",
                sev,
                index=i,
            )
        if code == "stale":
            return IntegrityViolation(
                T.TIMESTAMP_ANOMALY,
                f"Context is stale: newest message (index {i}) is {value:.1f}s old",
                sev,
                index=i,
            )
        return IntegrityViolation(
            T.ROLE_INJECTION, f"Role injection detected in message {i}: {expected}", sev, index=i
        )

    # -- RAG -----------------------------------------------------------------------------

    def scan_rag_documents(
        self, documents: list[RAGDocument | str | dict[str, Any]]
    ) -> RAGScanResult:
        """Scan retrieved documents for poisoning (instruction overrides, fake system
        messages, delimiter injection, ...). Every matching pattern adds a violation."""
        docs: list[RAGDocument] = []
        for d in documents:
            if isinstance(d, RAGDocument):
                docs.append(d)
            elif isinstance(d, dict):
                content = d.get("content")
                if content is None:
                    content = d.get("text")
                if content is None:
                    content = str(d)
                docs.append(
                    RAGDocument(
                        content=str(content),
                        source=d.get("source"),
                        score=float(d.get("score", 0.0) or 0.0),
                        metadata=dict(d.get("metadata") or {}),
                    )
                )
            else:
                docs.append(RAGDocument(content=str(d)))
        violations: list[IntegrityViolation] = []
        poisoned: list[int] = []
        for i, doc in enumerate(docs):
            hit = False
            text = doc.content if isinstance(doc.content, str) else str(doc.content)
            for rx, description, severity in self._rag:
                if rx.search(text):
                    hit = True
                    violations.append(
                        IntegrityViolation(
                            IntegrityViolationType.RAG_POISONING,
                            f"RAG poisoning detected in document {i}: {description}",
                            severity,
                            index=i,
                        )
                    )
            if hit:
                poisoned.append(i)
        return RAGScanResult(
            safe=not poisoned, documents=docs, poisoned_indices=poisoned, violations=violations
        )

    # -- state ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Start a new chain (sequence 0, genesis hash)."""
        self._chain.reset()

    def get_state(self) -> dict[str, Any]:
        """``{"sequence_counter", "last_hash"}`` (no key material)."""
        seq, last = self._chain.state()
        return {"sequence_counter": seq, "last_hash": last}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Continue a chain saved with :meth:`get_state`."""
        seq = state["sequence_counter"]
        last = state["last_hash"]
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ConfigurationError("sequence_counter must be an int >= 0", received=seq)
        if seq >= 2**64:
            raise ConfigurationError("sequence_counter must be below 2**64", received=seq)
        if not isinstance(last, str):
            raise ConfigurationError("last_hash must be a str", received=last)
        self._chain.restore(seq, last)


def _check_max_context_size(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError("max_context_size must be an int", received=value)
    if value < 1:
        raise ConfigurationError("max_context_size must be >= 1", received=value)


def _verify_message(
    ring: KeyRing, message: SignedMessage, expected_previous_hash: str | None = None
) -> tuple[bool, IntegrityViolation | None]:
    """:meth:`MemoryIntegrityGuard.verify_message` for any message object (the native chain
    answers intact exact ``SignedMessage`` instances itself and calls this for the rest)."""
    seq = message.sequence
    index = seq if isinstance(seq, int) else None
    signed = f"{message.role}|{message.content}|{seq}|{message.timestamp}|{message.previous_hash}"
    try:
        data: bytes | None = signed.encode()
    except UnicodeEncodeError:
        data = None
    keys = ring.signing_keys()
    if data is None or keys.verify(data, f"{message.signature}") < 0:
        return False, IntegrityViolation(
            IntegrityViolationType.SIGNATURE_MISMATCH,
            f"Signature mismatch for message at sequence {seq}",
            1.0,
            index=index,
            expected=None,
            actual=_short(f"{message.signature}"),
        )
    if expected_previous_hash is not None and message.previous_hash != expected_previous_hash:
        return False, IntegrityViolation(
            IntegrityViolationType.HASH_CHAIN_BREAK,
            f"Hash chain break at sequence {seq}",
            1.0,
            index=index,
            expected=_short(expected_previous_hash),
            actual=_short(f"{message.previous_hash}"),
        )
    return True, None


class ContextWindowGuard:
    """A conversation whose every message is signed as it is added.

    Args:
        secret_key: HMAC key.
        **kwargs: passed to :class:`MemoryIntegrityGuard`.

    Unlike the original, :meth:`pop` rolls the chain back, so messages added after a pop
    still verify. Thread-safe.
    """

    def __init__(self, secret_key: str | bytes, **kwargs: Any) -> None:
        self._guard = MemoryIntegrityGuard(secret_key, **kwargs)
        self._messages: list[SignedMessage] = []
        self._lock = threading.RLock()

    @property
    def guard(self) -> MemoryIntegrityGuard:
        """The underlying :class:`MemoryIntegrityGuard`."""
        return self._guard

    def _add(self, role: str, content: str, metadata: dict[str, Any]) -> SignedMessage:
        with self._lock:
            msg = self._guard.sign_message(role, content, metadata)
            self._messages.append(msg)
            return msg

    def add_system(self, content: str, **metadata: Any) -> SignedMessage:
        """Sign and append a system message."""
        return self._add("system", content, metadata)

    def add_user(self, content: str, **metadata: Any) -> SignedMessage:
        """Sign and append a user message."""
        return self._add("user", content, metadata)

    def add_assistant(self, content: str, **metadata: Any) -> SignedMessage:
        """Sign and append an assistant message."""
        return self._add("assistant", content, metadata)

    def add_tool(self, content: str, tool_name: str = "", **metadata: Any) -> SignedMessage:
        """Sign and append a tool result (``metadata["tool_name"]`` is set)."""
        metadata["tool_name"] = tool_name
        return self._add("tool", content, metadata)

    def verify(self) -> VerificationResult:
        """Verify the whole conversation."""
        with self._lock:
            return self._guard.verify_context(list(self._messages))

    def get_messages(self) -> list[SignedMessage]:
        """A copy of the signed messages."""
        with self._lock:
            return list(self._messages)

    def get_verified_messages(self) -> list[dict[str, str]]:
        """``[{"role", "content"}]`` after verification.

        Raises:
            ContextIntegrityError: the conversation fails verification.
        """
        with self._lock:
            result = self._guard.verify_context(list(self._messages))
            if not result.valid:
                first = result.violations[0]
                raise ContextIntegrityError(
                    f"Context integrity violated: {first.message}", violations=result.violations
                )
            return [{"role": m.role, "content": m.content} for m in self._messages]

    def get_messages_for_api(self) -> list[dict[str, str]]:
        """``[{"role", "content"}]`` without verification."""
        with self._lock:
            return [{"role": m.role, "content": m.content} for m in self._messages]

    def clear(self) -> None:
        """Drop every message and start a new chain."""
        with self._lock:
            self._messages.clear()
            self._guard.reset()

    def pop(self) -> SignedMessage | None:
        """Remove the last message and roll the chain back to before it."""
        with self._lock:
            if not self._messages:
                return None
            msg = self._messages.pop()
            self._guard.restore_state(
                {"sequence_counter": msg.sequence, "last_hash": msg.previous_hash}
            )
            return msg

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)
