"""Reference twin of ``rust/python/src/sign/memory.rs``: the signed memory message and the
signing state of one ``MemoryIntegrityGuard``.

``SignedMessage`` is the dataclass API.md 8.3 describes. The native backend defines the same
class natively (its fields live in the object, so building and reading one is cheap) and
``proxilion.security.memory_integrity`` gives it this dataclass's methods and metadata, so
both behave as the same dataclass.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxilion.exceptions import ContextIntegrityError

__all__ = ["MemoryChain", "SignedMessage"]


@dataclass
class SignedMessage:
    """A conversation message with its HMAC signature and chain link.

    ``metadata`` is not signed (as in the original).
    """

    role: str
    content: str
    sequence: int
    timestamp: float
    signature: str
    previous_hash: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """All fields as a dict."""
        return {
            "role": self.role,
            "content": self.content,
            "sequence": self.sequence,
            "timestamp": self.timestamp,
            "signature": self.signature,
            "previous_hash": self.previous_hash,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignedMessage:
        """Rebuild a message from :meth:`to_dict` output (``metadata`` optional)."""
        return cls(
            role=data["role"],
            content=data["content"],
            sequence=data["sequence"],
            timestamp=data["timestamp"],
            signature=data["signature"],
            previous_hash=data["previous_hash"],
            metadata=dict(data.get("metadata") or {}),
        )

    def content_hash(self) -> str:
        """SHA-256 hex of ``f"{role}:{content}:{sequence}:{timestamp}"`` (the chain link)."""
        text = f"{self.role}:{self.content}:{self.sequence}:{self.timestamp}"
        return hashlib.sha256(text.encode()).hexdigest()


def _max_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_context_size must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError("max_context_size must be >= 1")
    return value


class MemoryChain:
    """Signing state of one guard (next sequence, last content hash) behind a lock.

    ``MemoryChain(ring, clock, max_context_size, genesis, verify_fallback)``: ``ring`` is the
    guard's ``KeyRing``, ``clock`` its wall clock, ``verify_fallback(ring, message,
    expected)`` its general ``verify_message`` (which, here, decides every case).
    """

    __slots__ = ("_clock", "_fallback", "_genesis", "_last", "_lock", "_max", "_ring", "_seq")

    def __init__(
        self,
        ring: Any,
        clock: Callable[[], float],
        max_context_size: int,
        genesis: str,
        verify_fallback: Callable[[Any, Any, str | None], tuple[bool, Any]],
    ) -> None:
        self._ring = ring
        self._clock = clock
        self._max = _max_size(max_context_size)
        self._genesis = genesis
        self._fallback = verify_fallback
        self._lock = threading.Lock()
        self._seq = 0
        self._last = genesis

    def __repr__(self) -> str:
        return f"MemoryChain(sequence={self._seq})"

    def _keys(self) -> Any:
        single = self._ring._single
        return single if single is not None else self._ring.signing_keys()

    def sign_message(
        self, role: str, content: str, metadata: dict[str, Any] | None = None
    ) -> SignedMessage:
        """Sign the next message (see ``MemoryIntegrityGuard.sign_message``)."""
        meta = dict(metadata or {})
        keys = self._keys()
        with self._lock:
            if self._seq >= self._max:
                raise ContextIntegrityError(f"Message chain exceeds max_context_size ({self._max})")
            seq = self._seq
            ts = float(self._clock())
            prev = self._last
            signature, chash = keys.memory_sign(role, content, seq, ts, prev)
            self._seq = seq + 1
            self._last = chash
        return SignedMessage(role, content, seq, ts, signature, prev, meta)

    def verify_message(
        self, message: Any, expected_previous_hash: str | None = None
    ) -> tuple[bool, Any]:
        """``verify_fallback(ring, message, expected_previous_hash)``."""
        return self._fallback(self._ring, message, expected_previous_hash)

    def state(self) -> tuple[int, str]:
        """``(sequence_counter, last_hash)``."""
        with self._lock:
            return self._seq, self._last

    def restore(self, sequence: int, last_hash: str) -> None:
        """Continue from ``(sequence_counter, last_hash)`` (checked by the caller)."""
        if isinstance(sequence, bool) or not isinstance(sequence, int):
            raise TypeError(f"sequence must be int, not {type(sequence).__name__}")
        if not 0 <= sequence < 2**64:
            raise OverflowError("sequence out of range")
        if not isinstance(last_hash, str):
            raise TypeError(f"last_hash must be str, not {type(last_hash).__name__}")
        with self._lock:
            self._seq = sequence
            self._last = last_hash

    def reset(self) -> None:
        """Start a new chain: sequence 0, genesis hash."""
        with self._lock:
            self._seq = 0
            self._last = self._genesis

    def set_max_context_size(self, value: int) -> None:
        """Change the most messages the chain signs."""
        n = _max_size(value)
        with self._lock:
            self._max = n
