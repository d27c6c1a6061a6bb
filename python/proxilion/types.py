"""Core data types (API.md section 1): who is calling, which agent, which tool, what was decided.

All timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "AgentContext",
    "AuditEvent",
    "AuthorizationResult",
    "ToolCallRequest",
    "UserContext",
]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class UserContext:
    """The human (or service) on whose behalf a tool call is made.

    Frozen: fields cannot be reassigned (the list/dict inside stay mutable, as in the
    original). Unhashable, because ``roles`` is a list.
    """

    user_id: str
    roles: list[str] = field(default_factory=list)
    session_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_any_role(self, roles: list[str]) -> bool:
        return any(r in self.roles for r in roles)

    def has_all_roles(self, roles: list[str]) -> bool:
        return all(r in self.roles for r in roles)

    def get_attribute(self, key: str, default: Any = None) -> Any:
        return self.attributes.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "roles": list(self.roles),
            "session_id": self.session_id,
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True)
class AgentContext:
    """The agent making a tool call: its capabilities and a trust score in [0, 1]."""

    agent_id: str
    capabilities: list[str] = field(default_factory=list)
    trust_score: float = 1.0

    def __post_init__(self) -> None:
        # `not (0 <= x <= 1)` also rejects NaN.
        if not (0.0 <= self.trust_score <= 1.0):
            raise ValueError(f"trust_score must be between 0 and 1, got {self.trust_score}")

    def has_capability(self, capability: str) -> bool:
        return capability in self.capabilities

    def is_high_trust(self, threshold: float = 0.8) -> bool:
        return self.trust_score >= threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "capabilities": list(self.capabilities),
            "trust_score": self.trust_score,
        }


@dataclass(frozen=True)
class ToolCallRequest:
    """One requested tool call: name, arguments, and when it was requested."""

    tool_name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=_utcnow)

    def get_argument(self, key: str, default: Any = None) -> Any:
        return self.arguments.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool_name": self.tool_name,
            "arguments": self.arguments,
            "timestamp": self.timestamp.isoformat(),
        }


@dataclass(frozen=True)
class AuthorizationResult:
    """The outcome of an authorization check."""

    allowed: bool
    reason: str | None = None
    policies_evaluated: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def allow(
        cls,
        reason: str | None = None,
        policies: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AuthorizationResult:
        return cls(
            allowed=True,
            reason=reason,
            policies_evaluated=list(policies) if policies else [],
            metadata=dict(metadata) if metadata else {},
        )

    @classmethod
    def deny(
        cls,
        reason: str,
        policies: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AuthorizationResult:
        return cls(
            allowed=False,
            reason=reason,
            policies_evaluated=list(policies) if policies else [],
            metadata=dict(metadata) if metadata else {},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "policies_evaluated": list(self.policies_evaluated),
            "metadata": dict(self.metadata),
        }


@dataclass
class AuditEvent:
    """Legacy hash-chained audit event (the audit logger uses ``proxilion.audit`` events)."""

    user_context: UserContext
    tool_call: ToolCallRequest
    authorization_result: AuthorizationResult
    sequence_number: int
    previous_hash: str
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: datetime = field(default_factory=_utcnow)
    agent_context: AgentContext | None = None
    execution_result: dict[str, Any] | None = None
    event_hash: str = ""

    def _canonical(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "timestamp": self.timestamp.isoformat(),
            "sequence_number": self.sequence_number,
            "user_context": self.user_context.to_dict(),
            "agent_context": self.agent_context.to_dict() if self.agent_context else None,
            "tool_call": self.tool_call.to_dict(),
            "authorization_result": self.authorization_result.to_dict(),
            "execution_result": self.execution_result,
            "previous_hash": self.previous_hash,
        }

    def _digest(self) -> str:
        # No default=str: non-JSON argument values raise TypeError, as in the original.
        canonical = json.dumps(self._canonical(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def compute_hash(self) -> str:
        """Compute, store and return ``"sha256:" + hex`` over the canonical JSON."""
        self.event_hash = self._digest()
        return self.event_hash

    def verify_hash(self) -> bool:
        """True when ``event_hash`` matches the event's current contents."""
        if not self.event_hash:
            return False
        import hmac

        return hmac.compare_digest(self.event_hash, self._digest())

    def to_dict(self) -> dict[str, Any]:
        d = self._canonical()
        d["event_hash"] = self.event_hash
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)
