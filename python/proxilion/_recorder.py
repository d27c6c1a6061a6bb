"""In-memory record of authorization decisions, used by ``Proxilion`` when no audit file is
configured.

It has the ``log_authorization`` signature of ``proxilion.audit.AuditLogger`` so the
decorator can write to either. Unlike the audit logger it keeps no hash chain: it is a
process-local record for inspection and tests (``Proxilion.get_audit_events()``).
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timezone
from typing import Any, NamedTuple

__all__ = ["DecisionRecord", "InMemoryRecorder"]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DecisionRecord(NamedTuple):
    """One recorded decision (the arguments of ``log_authorization``, plus a sequence number
    starting at 1 per recorder and a UTC timestamp). Immutable; a named tuple because it is
    created on every protected call (about ten times cheaper than a frozen dataclass)."""

    sequence_number: int
    timestamp: datetime
    user_id: str
    user_roles: list[str]
    tool_name: str
    tool_arguments: dict[str, Any]
    allowed: bool
    reason: str | None
    policies_evaluated: list[str]
    session_id: str | None
    user_attributes: dict[str, Any]
    agent_id: str | None
    agent_capabilities: list[str]
    agent_trust_score: float | None
    execution_result: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """All fields, the timestamp in ISO 8601."""
        return {
            "sequence_number": self.sequence_number,
            "timestamp": self.timestamp.isoformat(),
            "user_id": self.user_id,
            "user_roles": list(self.user_roles),
            "tool_name": self.tool_name,
            "tool_arguments": dict(self.tool_arguments),
            "allowed": self.allowed,
            "reason": self.reason,
            "policies_evaluated": list(self.policies_evaluated),
            "session_id": self.session_id,
            "user_attributes": dict(self.user_attributes),
            "agent_id": self.agent_id,
            "agent_capabilities": list(self.agent_capabilities),
            "agent_trust_score": self.agent_trust_score,
            "execution_result": self.execution_result,
        }


class InMemoryRecorder:
    """Thread-safe, append-only list of :class:`DecisionRecord`.

    Args:
        max_events: keep at most this many records (oldest dropped first); None keeps all.
    """

    def __init__(self, max_events: int | None = None) -> None:
        if max_events is not None:
            if isinstance(max_events, bool) or not isinstance(max_events, int):
                raise TypeError(
                    f"max_events must be an int or None, not {type(max_events).__name__}"
                )
            if max_events < 1:
                raise ValueError(f"max_events must be >= 1, got {max_events}")
        self.max_events = max_events
        self._lock = threading.Lock()
        self._events: deque[DecisionRecord] = deque(maxlen=max_events)
        self._sequence = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def __repr__(self) -> str:
        return f"InMemoryRecorder(events={len(self)})"

    @property
    def events(self) -> list[DecisionRecord]:
        """A copy of the records, oldest first."""
        with self._lock:
            return list(self._events)

    def log_authorization(
        self,
        user_id: str,
        user_roles: list[str],
        tool_name: str,
        tool_arguments: dict[str, Any],
        allowed: bool,
        reason: str | None = None,
        policies_evaluated: list[str] | None = None,
        session_id: str | None = None,
        user_attributes: dict[str, Any] | None = None,
        agent_id: str | None = None,
        agent_capabilities: list[str] | None = None,
        agent_trust_score: float | None = None,
        execution_result: dict[str, Any] | None = None,
    ) -> DecisionRecord:
        """Append one decision and return it."""
        with self._lock:
            self._sequence += 1
            record = DecisionRecord(
                self._sequence,
                _utcnow(),
                user_id,
                list(user_roles),
                tool_name,
                dict(tool_arguments),
                bool(allowed),
                reason,
                list(policies_evaluated) if policies_evaluated else [],
                session_id,
                dict(user_attributes) if user_attributes else {},
                agent_id,
                list(agent_capabilities) if agent_capabilities else [],
                agent_trust_score,
                execution_result,
            )
            self._events.append(record)
            return record

    def clear(self) -> None:
        """Drop every record (the sequence keeps counting)."""
        with self._lock:
            self._events.clear()
