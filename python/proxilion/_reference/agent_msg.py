"""Reference twin of ``rust/python/src/agent_msg.rs``: the signed agent message and the
message paths of one ``AgentTrustManager``.

``SignedMessage`` is the dataclass API.md 8.4 describes (exported as ``AgentSignedMessage``).
The native backend defines the same class natively (its fields live in the object, so
building and reading one is cheap) and ``proxilion.security.agent_trust`` gives it this
dataclass's methods and metadata, so both behave as the same dataclass.

``AgentMessages(manager, result_type, credential_type)`` is the manager's
``create_signed_message`` and ``verify_message``. The native one answers the common cases
itself (a plain HMAC sender; an intact message whose sender holds the action) and hands
everything else to the manager's general paths; this twin hands every call to them, so it is
the oracle the native fast paths are tested against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proxilion._reference.sign import sorted_json

__all__ = ["AgentMessages", "AgentSignedMessage", "SignedMessage"]


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


class AgentMessages:
    """``create_signed_message`` (``sign``) and ``verify_message`` (``verify``) of one
    ``AgentTrustManager``: here, its general paths ``_create_signed_message`` and
    ``_verify_message`` (the latter given ``float(manager._clock())``, read first)."""

    def __init__(self, manager: Any, result_type: type, credential_type: type) -> None:
        self._manager = manager
        self._result_type = result_type
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
