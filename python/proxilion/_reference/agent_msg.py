"""Reference twin of ``rust/python/src/agent_msg.rs``: the signed agent message and the
message paths of one ``AgentTrustManager``.

``SignedMessage`` is the dataclass API.md 8.4 describes (exported as ``AgentSignedMessage``).
The native backend defines the same class natively (its fields live in the object, so
building and reading one is cheap) and ``proxilion.security.agent_trust`` gives it this
dataclass's methods and metadata, so both behave as the same dataclass.

``AgentCredential`` is the registered-agent dataclass of API.md 8.1; natively its fields
live in the object too, and its setters keep current the two facts the message fast paths
read of it (the trust level as an integer, whether the algorithm is HMAC-SHA256).

``AgentMessages(manager, credential_type)`` is the manager's
``create_signed_message`` and ``verify_message``. The native one answers the common cases
itself (a plain HMAC sender; an intact message whose sender holds the action) and hands
everything else to the manager's general paths; this twin hands every call to them, so it is
the oracle the native fast paths are tested against.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any

from proxilion._reference.sign import sorted_json

__all__ = [
    "AgentCredential",
    "AgentLock",
    "AgentMessages",
    "AgentSignedMessage",
    "AgentVerificationResult",
    "SignedMessage",
    "VerificationResult",
    "agent_result",
]


@dataclass
class SignedMessage:
    """A signed message between agents."""

    message_id: str
    from_agent: str
    to_agent: str
    action: str
    payload: dict[str, Any]
    timestamp: float
    signature: str
    delegation_token: Any = None
    reply_to: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def signed_text(self) -> str:
        """The canonical form that is signed (API.md section 10, point 3)."""
        return (
            f"{self.message_id}|{self.from_agent}|{self.to_agent}|{self.action}|"
            f"{sorted_json(self.payload)}|{self.timestamp}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the token nested as its ``to_dict``)."""
        return {
            "message_id": self.message_id,
            "from_agent": self.from_agent,
            "to_agent": self.to_agent,
            "action": self.action,
            "payload": self.payload,
            "timestamp": self.timestamp,
            "signature": self.signature,
            "delegation_token": (
                self.delegation_token.to_dict() if self.delegation_token else None
            ),
            "reply_to": self.reply_to,
            "metadata": self.metadata,
        }


AgentSignedMessage = SignedMessage

#: The manager's reentrant lock (natively a lock the message fast paths take without a
#: Python call).
AgentLock = threading.RLock


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _capability_match(capabilities: set[str] | frozenset[str], capability: str) -> bool:
    if "*" in capabilities or capability in capabilities:
        return True
    return any(c.endswith(":*") and capability.startswith(c[:-1]) for c in capabilities)


@dataclass
class AgentCredential:
    """A registered agent. ``_secret`` (the HMAC key) is never shown or serialised."""

    agent_id: str
    trust_level: Any  # TrustLevel (an IntEnum of proxilion.security.agent_trust)
    capabilities: set[str]
    public_key: str
    parent_agent: str | None = None
    created_at: datetime = field(default_factory=_utcnow)
    expires_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    _secret: str = field(default="", repr=False)
    algorithm: str = "hmac-sha256"

    def is_expired(self) -> bool:
        """True when ``expires_at`` is set and has passed."""
        return self.expires_at is not None and _utcnow() > self.expires_at

    def has_capability(self, capability: str) -> bool:
        """``"*"``, an exact match, or a ``"x:*"`` prefix. Always False at trust ``NONE``."""
        if self.trust_level == 0:  # TrustLevel.NONE
            return False
        return _capability_match(self.capabilities, capability)

    def can_delegate_to(self, other: AgentCredential) -> bool:
        """Strictly higher trust than ``other`` and the ``"delegate"`` capability."""
        return bool(self.trust_level > other.trust_level) and self.has_capability("delegate")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (trust level as int, capabilities as a sorted list, no secret)."""
        return {
            "agent_id": self.agent_id,
            "trust_level": int(self.trust_level),
            "capabilities": sorted(self.capabilities),
            "public_key": self.public_key,
            "parent_agent": self.parent_agent,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "metadata": self.metadata,
            "algorithm": self.algorithm,
        }


@dataclass
class VerificationResult:
    """Outcome of a message or chain verification.

    ``verified_at`` is the time of verification. Results made by
    :meth:`AgentTrustManager.verify_message` record it as epoch seconds and build the
    ``datetime`` on first read (the same instant; the ``datetime`` costs more than the HMAC
    check).
    """

    valid: bool
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    verified_at: datetime = field(default_factory=partial(datetime.now, timezone.utc))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "valid": self.valid,
            "error": self.error,
            "warnings": list(self.warnings),
            "verified_at": self.verified_at.isoformat(),
        }


class _VerifiedAt:
    """``VerificationResult.verified_at``: a stored ``datetime``, or one made on first read
    from the epoch seconds that :func:`agent_result` stored in ``_verified_ts``."""

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        value = d.get("_verified_at")
        if value is None:
            value = datetime.fromtimestamp(d["_verified_ts"], timezone.utc)
            d["_verified_at"] = value
        return value

    def __set__(self, obj: object, value: datetime) -> None:
        obj.__dict__["_verified_at"] = value


setattr(VerificationResult, "verified_at", _VerifiedAt())  # noqa: B010 - after @dataclass
AgentVerificationResult = VerificationResult
_new_object = object.__new__


def agent_result(
    valid: bool, error: str | None = None, warnings: list[str] | None = None
) -> VerificationResult:
    """A :class:`VerificationResult` stamped now, without its ``__init__`` (whose
    ``datetime.now`` costs more than the whole check): ``verified_at`` is made when read;
    ``warnings=None`` gives an empty list."""
    r: VerificationResult = _new_object(VerificationResult)
    r.valid = valid
    r.error = error
    r.warnings = [] if warnings is None else warnings
    r._verified_ts = time.time()  # type: ignore[attr-defined]
    return r


class AgentMessages:
    """``create_signed_message`` (``sign``) and ``verify_message`` (``verify``) of one
    ``AgentTrustManager``: here, its general paths ``_create_signed_message`` and
    ``_verify_message`` (the latter given ``float(manager._clock())``, read first)."""

    def __init__(self, manager: Any, credential_type: type) -> None:
        self._manager = manager
        self._credential_type = credential_type

    def __repr__(self) -> str:
        return f"AgentMessages(agents={len(self._manager._agents)})"

    def sign(
        self,
        from_agent: str,
        to_agent: str,
        action: str,
        payload: dict[str, Any],
        delegation_token: Any = None,
        reply_to: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Any:
        """``AgentTrustManager.create_signed_message``."""
        return self._manager._create_signed_message(
            from_agent, to_agent, action, payload, delegation_token, reply_to, metadata
        )

    def verify(self, message: Any, check_replay: Any = True, max_age_seconds: Any = 300.0) -> Any:
        """``AgentTrustManager.verify_message``."""
        now = float(self._manager._clock())
        return self._manager._verify_message(message, check_replay, max_age_seconds, now)
