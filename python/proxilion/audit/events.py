"""Audit events (``proxilion.audit.events``): event types, redaction, and the hashed
``AuditEventV2`` whose canonical bytes and hash match the original SDK byte for byte.

The canonical encoding and hashing run natively (``impl.audit_event_hash``): one walk of the
event's data per call, exactly ``json.dumps(sort_keys=True, separators=(",", ":"),
default=str)``.

Events that the loggers record through their fast path (``log_authorization``) are built in
one native call (``impl.AuditChain``), which keeps the decision's values (after the same
copies the original makes) in a small record; ``event.data`` and ``event.timestamp`` are made
from it on first access, so recording a decision builds no dataclass and no ``datetime``.
Such an event is an ordinary ``AuditEventV2`` in every other respect: same fields, values,
equality, hashes and serialisation.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

from proxilion._backend import impl

try:  # the regular-expression parser, to find the literals a pattern requires
    from re import _parser as _sre_parse  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre_parse  # type: ignore[no-redef,unused-ignore]

__all__ = [
    "AuditEventData",
    "AuditEventV2",
    "EventType",
    "RedactionConfig",
    "create_authorization_event",
    "redact_sensitive_data",
    "reset_sequence",
]


class EventType(Enum):
    """Kinds of audit events."""

    AUTHORIZATION_REQUEST = "authorization_request"
    AUTHORIZATION_GRANTED = "authorization_granted"
    AUTHORIZATION_DENIED = "authorization_denied"
    TOOL_EXECUTION_START = "tool_execution_start"
    TOOL_EXECUTION_SUCCESS = "tool_execution_success"
    TOOL_EXECUTION_FAILURE = "tool_execution_failure"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    CIRCUIT_BREAKER_OPEN = "circuit_breaker_open"
    IDOR_VIOLATION = "idor_violation"
    SCHEMA_VALIDATION_FAILURE = "schema_validation_failure"


_sequence_lock = threading.Lock()
_sequence = 0


def _next_sequence() -> int:
    """Next value of the process-global sequence counter (the first event gets 1)."""
    global _sequence
    with _sequence_lock:
        _sequence += 1
        return _sequence


def reset_sequence(value: int = 0) -> None:
    """Reset the process-global sequence counter (for tests)."""
    global _sequence
    with _sequence_lock:
        _sequence = value


def _ensure_sequence_at_least(value: int) -> None:
    """Raise the counter to ``value`` if it is below (a resumed log continues its numbers)."""
    global _sequence
    with _sequence_lock:
        _sequence = max(_sequence, value)


# Version nibble (bits 76-79) = 7, RFC 4122 variant (bits 62-63) = 0b10.
_UUID_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID_SET = (0x7 << 76) | (0x2 << 62)


def _generate_uuid_v7() -> str:
    """UUIDv7-style id: 48-bit big-endian Unix milliseconds, then 10 random bytes."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & _UUID_CLEAR | _UUID_SET
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _from_us(us: int) -> datetime:
    """The aware UTC datetime ``us`` microseconds after the Unix epoch (exact)."""
    return _EPOCH + timedelta(microseconds=us)


@dataclass
class RedactionConfig:
    """What to redact from logged arguments and attributes, and how."""

    patterns: list[re.Pattern[str]] = field(default_factory=list)
    field_names: set[str] = field(default_factory=set)
    hash_pii: bool = False
    placeholder: str = "[REDACTED]"

    @classmethod
    def default(cls) -> RedactionConfig:
        """Email, SSN, 16-digit card numbers and ``password=...``-style secrets in text;
        common secret field names; PII replaced by a short SHA-256 (``hash_pii=True``)."""
        return cls(
            patterns=[
                re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
                re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
                re.compile(r"\b\d{16}\b"),
                re.compile(
                    r"(?i)\b(?:password|passwd|pwd|secret|api_key|apikey|token)\s*[:=]\s*\S+"
                ),
            ],
            field_names={
                "password",
                "passwd",
                "secret",
                "api_key",
                "apikey",
                "token",
                "access_token",
                "refresh_token",
                "private_key",
                "credit_card",
                "ssn",
                "social_security",
            },
            hash_pii=True,
        )


def _short_hash(text: str) -> str:
    return f"[HASH:{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}]"


def _hash_match(m: re.Match[str]) -> str:
    return _short_hash(m.group(0))


# id(pattern) -> (pattern, (shortest match length, characters every match contains)).
_REQUIRED: dict[int, tuple[re.Pattern[str], tuple[int, tuple[str, ...]]]] = {}


def _required(pattern: re.Pattern[str]) -> tuple[int, tuple[str, ...]]:
    """What every match of ``pattern`` needs: its shortest length, and the literal
    characters at its top level (case-sensitive patterns only). A text shorter than that or
    lacking one of those characters cannot match, so substituting in it is skipped.
    ``(0, ())`` when unknown (bytes patterns, or a pattern the parser does not take)."""
    entry = _REQUIRED.get(id(pattern))
    if entry is not None and entry[0] is pattern:
        return entry[1]
    need: tuple[int, tuple[str, ...]] = (0, ())
    try:
        if isinstance(pattern.pattern, str):
            parsed = _sre_parse.parse(pattern.pattern, pattern.flags)
            chars: tuple[str, ...] = ()
            if not pattern.flags & re.IGNORECASE:
                literal = _sre_parse.LITERAL
                chars = tuple(dict.fromkeys(chr(av) for op, av in parsed if op is literal))
            need = (int(parsed.getwidth()[0]), chars)
    except Exception:  # no shortcut then; the substitution still runs
        need = (0, ())
    if len(_REQUIRED) >= 256:
        _REQUIRED.clear()
    _REQUIRED[id(pattern)] = (pattern, need)
    return need


_Plan = tuple[list[tuple[re.Pattern[str], int, tuple[str, ...]]], Any]


def _plan(config: RedactionConfig) -> _Plan:
    """The patterns of ``config`` with what their matches need, and the replacement."""
    placeholder = config.placeholder
    repl = _hash_match if config.hash_pii else (lambda _m: placeholder)
    return [(p, *_required(p)) for p in config.patterns], repl


def _redact_text(text: str, plan: _Plan) -> str:
    patterns, repl = plan
    for pattern, width, chars in patterns:
        if len(text) < width:
            continue  # cannot match: the substitution would leave the text as it is
        for ch in chars:
            if ch not in text:
                break  # idem
        else:
            text = pattern.sub(repl, text)
    return text


def _redact_list(items: list[Any], config: RedactionConfig, plan: _Plan) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            out.append(_redact_dict(item, config, plan))
        elif isinstance(item, str):
            out.append(_redact_text(item, plan))
        else:
            out.append(item)
    return out


def _redact_dict(data: dict[str, Any], config: RedactionConfig, plan: _Plan) -> dict[str, Any]:
    result: dict[str, Any] = {}
    names = config.field_names
    for key, value in data.items():
        if isinstance(key, str) and key.lower() in names:
            if config.hash_pii and isinstance(value, str):
                result[key] = _short_hash(value)
            else:
                result[key] = config.placeholder
        elif isinstance(value, dict):
            result[key] = _redact_dict(value, config, plan)
        elif isinstance(value, list):
            result[key] = _redact_list(value, config, plan)
        elif isinstance(value, str):
            result[key] = _redact_text(value, plan)
        else:
            result[key] = value
    return result


def redact_sensitive_data(data: dict[str, Any], config: RedactionConfig) -> dict[str, Any]:
    """A redacted copy of ``data`` (recursively): sensitive field names are replaced (by a
    short hash of a string value when ``hash_pii``, else the placeholder), and pattern
    matches in strings are replaced the same way (lists: dict items recursed, strings
    redacted). A pattern is not run on a text that lacks one of the literal characters
    every match of it contains (same result, less work)."""
    return _redact_dict(data, config, _plan(config))


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


@dataclass
class AuditEventData:
    """The payload of an audit event: who called which tool, and the decision."""

    event_type: EventType
    user_id: str
    user_roles: list[str]
    session_id: str | None
    user_attributes: dict[str, Any]
    agent_id: str | None
    agent_capabilities: list[str]
    agent_trust_score: float | None
    tool_name: str
    tool_arguments: dict[str, Any]
    tool_timestamp: datetime
    authorization_allowed: bool
    authorization_reason: str | None
    policies_evaluated: list[str]
    authorization_metadata: dict[str, Any]
    execution_result: dict[str, Any] | None = None
    error_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The nested form that is hashed and written (API.md 9.1)."""
        return {
            "event_type": self.event_type.value,
            "user": {
                "user_id": self.user_id,
                "roles": self.user_roles,
                "session_id": self.session_id,
                "attributes": self.user_attributes,
            },
            "agent": {
                "agent_id": self.agent_id,
                "capabilities": self.agent_capabilities,
                "trust_score": self.agent_trust_score,
            }
            if self.agent_id
            else None,
            "tool_call": {
                "tool_name": self.tool_name,
                "arguments": self.tool_arguments,
                "timestamp": self.tool_timestamp.isoformat(),
            },
            "authorization": {
                "allowed": self.authorization_allowed,
                "reason": self.authorization_reason,
                "policies_evaluated": self.policies_evaluated,
                "metadata": self.authorization_metadata,
            },
            "execution_result": self.execution_result,
            "error_message": self.error_message,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditEventData:
        """Rebuild from :meth:`to_dict` output."""
        user = d.get("user") or {}
        agent = d.get("agent") or {}
        tool = d.get("tool_call") or {}
        auth = d.get("authorization") or {}
        return cls(
            event_type=EventType(d["event_type"]),
            user_id=user.get("user_id", ""),
            user_roles=list(user.get("roles") or []),
            session_id=user.get("session_id"),
            user_attributes=dict(user.get("attributes") or {}),
            agent_id=agent.get("agent_id"),
            agent_capabilities=list(agent.get("capabilities") or []),
            agent_trust_score=agent.get("trust_score"),
            tool_name=tool.get("tool_name", ""),
            tool_arguments=dict(tool.get("arguments") or {}),
            tool_timestamp=_parse_time(tool["timestamp"]),
            authorization_allowed=bool(auth.get("allowed", False)),
            authorization_reason=auth.get("reason"),
            policies_evaluated=list(auth.get("policies_evaluated") or []),
            authorization_metadata=dict(auth.get("metadata") or {}),
            execution_result=d.get("execution_result"),
            error_message=d.get("error_message"),
        )


def _data_from_record(rec: tuple[Any, ...]) -> AuditEventData:
    """The ``AuditEventData`` of an authorization record kept by ``impl.AuditChain``:
    ``(timestamp_us, tool_timestamp_us, user_id, roles, session_id, attributes, agent_id,
    capabilities, trust_score, tool_name, arguments, allowed, reason, policies,
    execution_result)``, the containers already the original's copies (lists as tuples),
    an empty one kept as None (a new list or dict is made here)."""
    (_, tool_us, user_id, roles, session_id, attributes, agent_id, caps, trust) = rec[:9]
    (tool_name, arguments, allowed, reason, policies, execution_result) = rec[9:]
    return AuditEventData(
        event_type=EventType.AUTHORIZATION_GRANTED if allowed else EventType.AUTHORIZATION_DENIED,
        user_id=user_id,
        user_roles=[] if roles is None else list(roles),
        session_id=session_id,
        user_attributes={} if attributes is None else attributes,
        agent_id=agent_id,
        agent_capabilities=[] if caps is None else list(caps),
        agent_trust_score=trust,
        tool_name=tool_name,
        tool_arguments={} if arguments is None else arguments,
        tool_timestamp=_from_us(tool_us),
        authorization_allowed=allowed,
        authorization_reason=reason,
        policies_evaluated=[] if policies is None else list(policies),
        authorization_metadata={},
        execution_result=execution_result,
        error_message=None,
    )


def _algorithm_of(h: str) -> str:
    return "blake3" if h.startswith("blake3:") else "sha256"


@dataclass
class AuditEventV2:
    """A hash-chained audit event. ``event_hash`` covers everything but itself and
    ``merkle_index``; see API.md 9.1 for the exact bytes."""

    data: AuditEventData
    previous_hash: str
    event_id: str = field(default_factory=_generate_uuid_v7)
    timestamp: datetime = field(default_factory=_utcnow)
    sequence_number: int = field(default_factory=_next_sequence)
    event_hash: str = ""
    merkle_index: int | None = None

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # Reached only for attributes missing from the instance: ``data`` and
            # ``timestamp`` of an event recorded by a logger's fast path, made once from its
            # record (``setdefault``: racing threads all get the same object).
            rec = self.__dict__.get("_lazy")
            if rec is not None:
                if name == "data":
                    return self.__dict__.setdefault("data", _data_from_record(rec))
                if name == "timestamp":
                    return self.__dict__.setdefault("timestamp", _from_us(rec[0]))
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _data_dict(self) -> dict[str, Any]:
        """The ``data`` member as written and hashed: the encryption envelope when the entry
        was encrypted at rest (see :mod:`proxilion.audit.encryption`), else the plain dict."""
        wire: dict[str, Any] | None = self.__dict__.get("_wire_data")
        return wire if wire is not None else self.data.to_dict()

    def _hash(self, algorithm: str) -> str:
        d = self.__dict__
        rec = d.get("_lazy")
        if rec is not None and "data" not in d and "_wire_data" not in d:
            # Data never materialised: hash straight from the record (same bytes).
            ts = d.get("timestamp")
            lazy: str = impl.audit_authorization_hash(
                rec,
                self.event_id,
                None if ts is None else ts.isoformat(),
                self.sequence_number,
                self.previous_hash,
                algorithm,
            )
            return lazy
        h: str = impl.audit_event_hash(
            self.event_id,
            self.timestamp.isoformat(),
            self.sequence_number,
            self._data_dict(),
            self.previous_hash,
            algorithm,
        )
        return h

    def compute_hash(self, algorithm: str = "sha256") -> str:
        """Compute, store and return ``event_hash`` (``"sha256:<hex>"`` by default)."""
        self.event_hash = self._hash(algorithm)
        return self.event_hash

    def verify_hash(self) -> bool:
        """Whether ``event_hash`` matches the content (False when it is empty)."""
        if not self.event_hash:
            return False
        return self._hash(_algorithm_of(self.event_hash)) == self.event_hash

    def _encode_line(self, algorithm: str = "sha256") -> bytes:
        """Hash the event (setting ``event_hash``) and return its JSONL line, in one native
        call: the data is walked and encoded once."""
        h, line = impl.audit_event_line(
            self.event_id,
            self.timestamp.isoformat(),
            self.sequence_number,
            self._data_dict(),
            self.previous_hash,
            self.merkle_index,
            algorithm,
        )
        self.event_hash = h
        out: bytes = line
        return out

    def to_dict(self, include_hash: bool = True) -> dict[str, Any]:
        """Canonical dict, plus ``event_hash`` (and ``merkle_index`` when set)."""
        d: dict[str, Any] = {
            "event_id": self.event_id,
            "timestamp": self.timestamp.isoformat(),
            "sequence_number": self.sequence_number,
            "data": self._data_dict(),
            "previous_hash": self.previous_hash,
        }
        if include_hash:
            d["event_hash"] = self.event_hash
            if self.merkle_index is not None:
                d["merkle_index"] = self.merkle_index
        return d

    def to_json(self, pretty: bool = False) -> str:
        """The JSONL form (compact, sorted keys) or an indented form."""
        if pretty:
            return json.dumps(self.to_dict(), sort_keys=True, indent=2, default=str)
        text: str = impl.canonical_json(self.to_dict())
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditEventV2:
        """Rebuild an event from :meth:`to_dict` output (or a parsed JSONL line)."""
        return cls(
            data=AuditEventData.from_dict(d["data"]),
            previous_hash=d["previous_hash"],
            event_id=d["event_id"],
            timestamp=_parse_time(d["timestamp"]),
            sequence_number=d["sequence_number"],
            event_hash=d.get("event_hash", ""),
            merkle_index=d.get("merkle_index"),
        )


def create_authorization_event(
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
    previous_hash: str = "GENESIS",
    redaction_config: RedactionConfig | None = None,
) -> AuditEventV2:
    """An authorization event (GRANTED or DENIED). The default ``previous_hash`` is the
    literal ``"GENESIS"``, as in the original: chains and loggers overwrite it."""
    arguments = dict(tool_arguments)
    attributes = dict(user_attributes or {})
    if redaction_config is not None:
        arguments = redact_sensitive_data(arguments, redaction_config)
        attributes = redact_sensitive_data(attributes, redaction_config)
    data = _authorization_data(
        user_id,
        user_roles,
        tool_name,
        arguments,
        allowed,
        reason,
        policies_evaluated,
        session_id,
        attributes,
        agent_id,
        agent_capabilities,
        agent_trust_score,
        None,
    )
    return AuditEventV2(data=data, previous_hash=previous_hash)


def _authorization_data(
    user_id: str,
    user_roles: list[str],
    tool_name: str,
    tool_arguments: dict[str, Any],
    allowed: bool,
    reason: str | None,
    policies_evaluated: list[str] | None,
    session_id: str | None,
    user_attributes: dict[str, Any] | None,
    agent_id: str | None,
    agent_capabilities: list[str] | None,
    agent_trust_score: float | None,
    execution_result: dict[str, Any] | None,
) -> AuditEventData:
    """The data of an authorization decision (the tool-call time is now)."""
    return AuditEventData(
        event_type=EventType.AUTHORIZATION_GRANTED if allowed else EventType.AUTHORIZATION_DENIED,
        user_id=user_id,
        user_roles=list(user_roles),
        session_id=session_id,
        user_attributes=dict(user_attributes or {}),
        agent_id=agent_id,
        agent_capabilities=list(agent_capabilities or []),
        agent_trust_score=agent_trust_score,
        tool_name=tool_name,
        tool_arguments=dict(tool_arguments),
        tool_timestamp=_utcnow(),
        authorization_allowed=allowed,
        authorization_reason=reason,
        policies_evaluated=list(policies_evaluated or []),
        authorization_metadata={},
        execution_result=execution_result,
        error_message=None,
    )
