"""Intent capsules: a user's declared intent, signed, and a guard that holds tool calls to it.

API.md section 8.4; seed example 6 ("Intent Capsules"). A capsule records who asked for what,
which tools and actions that allows, with what constraints, until when. :class:`IntentGuard`
checks every tool call against it and detects hijack attempts in the agent's stated action.

Differences from the original, on purpose (see ``docs/trust-and-integrity.md``):

* **Everything that matters is signed.** ``signature`` keeps the original's bytes (so the
  original SDK verifies our capsules), but it does not cover ``expires_at`` or ``metadata``.
  A second tag, ``seal``, covers every field including those; :meth:`IntentCapsule.verify`
  requires both, so an extended expiry or altered metadata fails closed. A capsule without a
  seal (made by the original) verifies only with ``allow_legacy=True``.
* :class:`IntentGuard` verifies the capsule (when given the key) and then works from a
  snapshot of the verified fields, so changing the mutable capsule afterwards changes nothing.
  A guard made without a key logs a warning (nothing is verified, as in the original).
* Tool patterns escape regex metacharacters (only ``*`` is a wildcard); ``allowed_paths``
  compares normalised paths by directory, so ``/data/../etc`` is not under ``/data``;
  ``max_tool_calls`` counts every call, not only the last 100.
* Keys: short keys warn instead of failing; keys can be a :class:`~proxilion.security._keys.KeyRing`
  for rotation with a grace period.
"""

from __future__ import annotations

import copy
import logging
import math
import posixpath
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

from proxilion._backend import impl
from proxilion.exceptions import ConfigurationError, IntentHijackError
from proxilion.security._keys import (
    _KEYS_CACHE,
    KeyRing,
    cached_signing_keys,
    random_uuid4,
    signing_keys_for,
    validate_secret_key,
)

__all__ = [
    "HIJACK_PATTERNS",
    "HijackDetection",
    "IntentCapsule",
    "IntentCapsuleManager",
    "IntentCategory",
    "IntentGuard",
    "IntentValidator",
]

logger = logging.getLogger("proxilion.security.intent_capsule")

_SEAL_PREFIX = "proxilion-capsule-v2|"


class IntentCategory(Enum):
    """Broad kind of a user's intent."""

    QUERY = "query"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    EXECUTE = "execute"
    COMMUNICATE = "communicate"
    ANALYZE = "analyze"
    UNKNOWN = "unknown"


_CATEGORY_KEYWORDS: tuple[tuple[IntentCategory, tuple[str, ...]], ...] = (
    (IntentCategory.DELETE, ("delete", "remove", "destroy", "erase", "drop", "clear")),
    (IntentCategory.CREATE, ("create", "make", "generate", "build", "add", "new", "write")),
    (IntentCategory.UPDATE, ("update", "modify", "change", "edit", "fix", "correct")),
    (IntentCategory.EXECUTE, ("run", "execute", "start", "launch", "deploy", "install")),
    (IntentCategory.COMMUNICATE, ("send", "email", "message", "notify", "alert", "share")),
    (IntentCategory.ANALYZE, ("analyze", "process", "calculate", "compute", "summarize")),
    (
        IntentCategory.QUERY,
        (
            "find", "search", "get", "show", "list", "display", "fetch",
            "what", "where", "when", "who", "how", "help", "tell",
        ),
    ),
)  # fmt: skip


def detect_category(text: str) -> IntentCategory:
    """Category of an intent by keyword (substring test of ``text.lower()``, in the
    original's priority order; one native pass over the text)."""
    category: IntentCategory = _CATEGORIES[impl.intent_category(text)]
    return category


def _json(value: dict[str, Any] | None) -> str:
    # json.dumps(value or {}, sort_keys=True), natively (byte for byte; see impl.sorted_json).
    return impl.sorted_json(value) if value else "{}"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


_CATEGORIES: tuple[IntentCategory, ...] = (
    *(c for c, _ in _CATEGORY_KEYWORDS),
    IntentCategory.UNKNOWN,
)
_TTL_CACHE: dict[float, timedelta] = {}
_UTC = timezone.utc
_now = datetime.now


def _ttl_delta(ttl_seconds: object) -> timedelta:
    """The lifetime as a ``timedelta`` (validated; common int lifetimes are cached)."""
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, (int, float)):
        raise ConfigurationError("ttl_seconds must be a number", received=ttl_seconds)
    if not ttl_seconds > 0 or ttl_seconds == math.inf:
        raise ConfigurationError("ttl_seconds must be a finite number > 0", received=ttl_seconds)
    delta = timedelta(seconds=ttl_seconds)
    if type(ttl_seconds) is int and len(_TTL_CACHE) < 64:
        _TTL_CACHE[ttl_seconds] = delta
    return delta


_new_object = object.__new__


def _meta_json(metadata: dict[str, Any] | None) -> str:
    """``json.dumps(metadata, sort_keys=True, default=str)`` (natively where possible), or
    ``"{}"`` when empty; :class:`ConfigurationError` when it cannot be serialised."""
    if not metadata:
        return "{}"
    try:
        return str(impl.sorted_json(metadata, True))
    except TypeError as exc:
        raise ConfigurationError("capsule metadata must be JSON-serialisable") from exc


def _keys_of(secret_key: str | bytes | KeyRing) -> Any:
    """Signing keys for verification (no key warnings here, as before)."""
    if isinstance(secret_key, KeyRing):
        return secret_key.signing_keys()
    return cached_signing_keys(secret_key) or impl.SigningKeys([secret_key])


def _as_set(values: Any) -> set[str]:
    if values is None:
        return set()
    if isinstance(values, str):
        raise TypeError("expected a set or list of names, not a single str")
    return set(values)


@dataclass
class IntentCapsule:
    """A signed record of a user's intent and what it allows.

    ``signature`` has the original SDK's bytes; ``seal`` (new) also covers ``expires_at`` and
    ``metadata``. Both are checked by :meth:`verify`.
    """

    capsule_id: str
    user_id: str
    intent: str
    intent_category: IntentCategory
    allowed_tools: set[str]
    allowed_actions: set[str]
    constraints: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    signature: str
    metadata: dict[str, Any] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    _max_tool_calls: int = 100
    seal: str = ""

    @classmethod
    def create(
        cls,
        user_id: str,
        intent: str,
        secret_key: str | bytes | KeyRing,
        allowed_tools: set[str] | list[str] | None = None,
        allowed_actions: set[str] | list[str] | None = None,
        constraints: dict[str, Any] | None = None,
        ttl_seconds: int = 3600,
        metadata: dict[str, Any] | None = None,
        intent_category: IntentCategory | None = None,
    ) -> IntentCapsule:
        """Create and sign a capsule. ``allowed_tools=None`` allows no tool at all."""
        # Validates the key (errors, weak-key warnings) before anything else, as the original
        # (a plain key that validated cleanly before is not validated again).
        # (`cached_signing_keys`, inline: a plain key seen before.)
        hit = _KEYS_CACHE.get(secret_key) if type(secret_key) is str else None
        if hit is not None and hit[0] is impl:
            keys = hit[1]
        else:
            keys = cached_signing_keys(secret_key)
            if keys is None:
                keys = (
                    secret_key.signing_keys()
                    if isinstance(secret_key, KeyRing)
                    else signing_keys_for(secret_key, stacklevel=2)
                )
        if cls is IntentCapsule:
            # Plain arguments: the whole capsule (id, clock, category, both texts and tags, the
            # instance) in one native call. It answers None, having done nothing, for anything
            # else, which the general path below handles (every error as before).
            made: IntentCapsule | None = impl.capsule_create(
                cls,
                keys,
                _CATEGORIES,
                user_id,
                intent,
                allowed_tools,
                allowed_actions,
                constraints,
                ttl_seconds,
                metadata,
                intent_category,
            )
            if made is not None:
                return made
        return _create(
            cls,
            keys,
            user_id,
            intent,
            allowed_tools,
            allowed_actions,
            constraints,
            ttl_seconds,
            metadata,
            intent_category,
        )

    def _signed_text(self) -> str:
        # The original's canonical form (API.md 10, point 4).
        return (
            # `_value_` is what the `value` property returns, without the descriptor call.
            f"{self.capsule_id}|{self.user_id}|{self.intent}|{self.intent_category._value_}|"
            f"{sorted(self.allowed_tools)!s}|{sorted(self.allowed_actions)!s}|"
            f"{_json(self.constraints)}|{self.created_at.isoformat()}"
        )

    def _sealed_text(self, signed: str | None = None) -> str:
        meta = _meta_json(self.metadata)
        if signed is None:
            signed = self._signed_text()
        return f"{_SEAL_PREFIX}{signed}|{self.expires_at.isoformat()}|{self._max_tool_calls}|{meta}"

    def verify(self, secret_key: str | bytes | KeyRing, *, allow_legacy: bool = False) -> bool:
        """True when both ``signature`` and ``seal`` are valid under the key (constant time).

        A capsule without a seal verifies only with ``allow_legacy=True`` (its expiry and
        metadata are then unprotected). Expiry itself is checked by :meth:`is_expired`.
        Malformed capsules verify as False rather than raising.
        """
        try:
            keys = _keys_of(secret_key)
            metadata = self.metadata
            # Both texts built and both tags checked in one native call (which answers a bool).
            verified: bool = impl.capsule_verify(
                keys,
                self,
                _meta_json(metadata) if metadata and self.seal else "{}",
                allow_legacy is True or bool(allow_legacy),
            )
            return verified
        except (TypeError, ValueError, AttributeError, ConfigurationError, UnicodeError):
            return False

    def is_expired(self) -> bool:
        """True once the current time is later than ``expires_at``."""
        return _utcnow() > self.expires_at

    def is_tool_allowed(self, tool_name: str) -> bool:
        """``"*"``, an exact name, or a ``*`` wildcard pattern (other characters literal)."""
        return _tool_allowed(self.allowed_tools, tool_name)

    def is_action_allowed(self, action: str) -> bool:
        """``"*"`` or an exact match."""
        return "*" in self.allowed_actions or action in self.allowed_actions

    def record_tool_call(
        self, tool_name: str, arguments: dict[str, Any] | None = None, result: Any = None
    ) -> None:
        """Append ``{"tool_name", "timestamp"}``, keeping the last ``_max_tool_calls``."""
        self.tool_calls.append({"tool_name": tool_name, "timestamp": time.time()})
        if len(self.tool_calls) > self._max_tool_calls:
            del self.tool_calls[: len(self.tool_calls) - self._max_tool_calls]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: category as its value, sets as sorted lists, ISO datetimes."""
        return {
            "capsule_id": self.capsule_id,
            "user_id": self.user_id,
            "intent": self.intent,
            "intent_category": self.intent_category.value,
            "allowed_tools": sorted(self.allowed_tools),
            "allowed_actions": sorted(self.allowed_actions),
            "constraints": self.constraints,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "signature": self.signature,
            "seal": self.seal,
            "metadata": self.metadata,
            "tool_call_count": len(self.tool_calls),
        }


def _create(
    cls: type[IntentCapsule],
    keys: Any,
    user_id: str,
    intent: str,
    allowed_tools: set[str] | list[str] | None,
    allowed_actions: set[str] | list[str] | None,
    constraints: dict[str, Any] | None,
    ttl_seconds: int,
    metadata: dict[str, Any] | None,
    intent_category: IntentCategory | None,
) -> IntentCapsule:
    """:meth:`IntentCapsule.create` after the key, for any arguments and any subclass."""
    if not isinstance(user_id, str) or not isinstance(intent, str):
        raise TypeError("user_id and intent must be str")
    ttl = _TTL_CACHE.get(ttl_seconds) if type(ttl_seconds) is int else None
    if ttl is None:
        ttl = _ttl_delta(ttl_seconds)
    if allowed_tools is None:
        tools = set()
    elif type(allowed_tools) is list or type(allowed_tools) is set:
        tools = set(allowed_tools)
    else:
        tools = _as_set(allowed_tools)
    actions = set() if allowed_actions is None else _as_set(allowed_actions)
    category = intent_category or _CATEGORIES[impl.intent_category(intent)]
    created = _now(_UTC)
    capsule: IntentCapsule
    if cls is IntentCapsule:
        # What the dataclass's __init__ makes (the same instance dict, fields in order),
        # without its call overhead.
        capsule = _new_object(cls)
        capsule.__dict__ = {
            "capsule_id": random_uuid4(),
            "user_id": user_id,
            "intent": intent,
            "intent_category": category,
            "allowed_tools": tools,
            "allowed_actions": actions,
            "constraints": dict(constraints) if constraints else {},
            "created_at": created,
            "expires_at": created + ttl,
            "signature": "",
            "metadata": dict(metadata) if metadata else {},
            "tool_calls": [],
            "_max_tool_calls": 100,
            "seal": "",
        }
    else:
        capsule = cls(
            capsule_id=random_uuid4(),
            user_id=user_id,
            intent=intent,
            intent_category=category,
            allowed_tools=tools,
            allowed_actions=actions,
            constraints=dict(constraints or {}),
            created_at=created,
            expires_at=created + ttl,
            signature="",
            metadata=dict(metadata or {}),
        )
    # Both texts built and MACed in one native call (same bytes as _signed_text() and
    # _sealed_text()).
    meta = capsule.metadata
    capsule.signature, capsule.seal = impl.capsule_sign(
        keys, capsule, _meta_json(meta) if meta else "{}"
    )
    return capsule


_PATTERN_CACHE: dict[str, re.Pattern[str]] = {}


def _tool_allowed(allowed: set[str] | frozenset[str], tool_name: str) -> bool:
    if "*" in allowed or tool_name in allowed:
        return True
    for pattern in allowed:
        if "*" in pattern:
            rx = _PATTERN_CACHE.get(pattern)
            if rx is None:
                parts = (re.escape(p) for p in pattern.split("*"))
                rx = re.compile("^" + ".*".join(parts) + "$", re.DOTALL)
                if len(_PATTERN_CACHE) < 4096:
                    _PATTERN_CACHE[pattern] = rx
            if rx.match(tool_name):
                return True
    return False


#: Hijack patterns (regex, description, severity), matched case-insensitively. Same
#: descriptions and severities as the original; each also catches what the original's does
#: ("IGNORE PREVIOUS INSTRUCTIONS", "new task: ...") and more phrasings (docs/guards.md).
HIJACK_PATTERNS: list[tuple[str, str, float]] = [
    (
        r"\b(ignore|disregard|forget|override|bypass|discard|dismiss)\b[^.\n]{0,30}"
        r"\b(original|previous|prior|preceding|earlier|above|initial|system|your|user'?s?)\b"
        r"[^.\n]{0,15}\b(intent|request|task|goal|instructions?|prompts?|rules|directions"
        r"|directives?|guidelines|commands?)\b",
        "Intent override attempt",
        0.95,
    ),
    (
        r"\b(new|real|actual|true|updated)\s+(goal|objective|task|mission|instructions?"
        r"|directives?|purpose)\s*(is\b|are\b|:)",
        "Goal replacement attempt",
        0.9,
    ),
    (
        r"\b(forget|abandon|drop|stop)\b[^.\n]{0,20}\b(what you were|the original|your)\b"
        r"[^.\n]{0,15}\b(purpose|doing|task|job)",
        "Purpose erasure attempt",
        0.9,
    ),
    (
        r"\b(the user|user)\s+(actually|really)\s+(wants|asked|meant|needs)\b",
        "False purpose injection",
        0.95,
    ),
    (
        r"\b(more important|higher priority|top priority|first priority|instead)\b"
        r"[^.\n]{0,30}\b(than|is to|you must|you should)\b",
        "Priority override attempt",
        0.85,
    ),
    (
        r"\b(urgent|emergency|immediately|critical)\b[^.\n]{0,30}"
        r"\b(bypass|skip|override|ignore|without (checking|verification|approval))\b",
        "Emergency bypass attempt",
        0.8,
    ),
    (
        r"\b(as|with|using|grant( me)?|become)\s+(an?\s+)?(admin|administrator|root|superuser)"
        r"\b",
        "Admin escalation attempt",
        0.85,
    ),
    (
        r"\b(regardless of|despite|no matter)\b[^.\n]{0,20}\b(what the user|user'?s?)\b"
        r"[^.\n]{0,15}\b(said|asked|wants|intent|request)",
        "Disregard user intent",
        0.9,
    ),
]

_ESCALATIONS: dict[tuple[IntentCategory, IntentCategory], str] = {
    (IntentCategory.QUERY, IntentCategory.DELETE): "Read intent escalated to delete",
    (IntentCategory.QUERY, IntentCategory.EXECUTE): "Read intent escalated to execute",
    (IntentCategory.ANALYZE, IntentCategory.DELETE): "Analyze intent escalated to delete",
    (IntentCategory.ANALYZE, IntentCategory.EXECUTE): "Analyze intent escalated to execute",
}


@dataclass
class HijackDetection:
    """Outcome of :meth:`IntentValidator.detect_hijack`."""

    is_hijack: bool
    confidence: float
    original_intent: str
    detected_action: str
    matched_patterns: list[str] = field(default_factory=list)
    reasoning: str = ""


class IntentValidator:
    """Detects hijack attempts in an agent's stated action (exported as
    ``proxilion.security.IntentHijackValidator``).

    Args:
        custom_patterns: extra ``(regex, description, severity)`` rules (case-insensitive).
        semantic_threshold: confidence at or above which a detection is a hijack.
    """

    def __init__(
        self,
        custom_patterns: list[tuple[str, str, float]] | None = None,
        semantic_threshold: float = 0.5,
    ) -> None:
        self.semantic_threshold = float(semantic_threshold)
        rules = [*HIJACK_PATTERNS, *(custom_patterns or [])]
        self._patterns = [(re.compile(p, re.IGNORECASE), d, float(s)) for p, d, s in rules]

    def detect_hijack(
        self,
        original_intent: str,
        current_action: str,
        tool_name: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> HijackDetection:
        """Search ``current_action`` for hijack patterns and category escalation."""
        matched: list[str] = []
        confidence = 0.0
        for rx, description, severity in self._patterns:
            if rx.search(current_action):
                matched.append(description)
                confidence = max(confidence, severity)
        escalation = _ESCALATIONS.get(
            (detect_category(original_intent), detect_category(current_action))
        )
        if escalation:
            matched.append(escalation)
            confidence = max(confidence, 0.7)
        reasoning = (
            "Detected patterns: " + ", ".join(matched)
            if matched
            else "No hijacking patterns detected"
        )
        return HijackDetection(
            is_hijack=confidence >= self.semantic_threshold,
            confidence=confidence,
            original_intent=original_intent,
            detected_action=current_action,
            matched_patterns=matched,
            reasoning=reasoning,
        )


def _path_under(path: str, root: str) -> bool:
    p = posixpath.normpath(path)
    r = posixpath.normpath(root)
    if r == "/":
        return p.startswith("/")
    if r == ".":
        return not p.startswith(("/", ".."))
    return p == r or p.startswith(r.rstrip("/") + "/")


class IntentGuard:
    """Holds tool calls to a capsule's declared intent.

    Args:
        capsule: the capsule.
        secret_key: if given, the capsule must verify (both tags) or
            :class:`IntentHijackError` is raised. Without it nothing is verified (a warning
            is logged), as in the original.
        validator: hijack detector for call descriptions (default :class:`IntentValidator`).
        strict_mode: raise :class:`IntentHijackError` on a violation instead of returning
            False.
        clock: wall clock in seconds (injectable for tests).

    The guard decides from a snapshot of the capsule taken (and verified) at construction.
    Thread-safe.
    """

    def __init__(
        self,
        capsule: IntentCapsule,
        secret_key: str | bytes | KeyRing | None = None,
        validator: IntentValidator | None = None,
        strict_mode: bool = False,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret_key:
            if not isinstance(secret_key, KeyRing):
                validate_secret_key(secret_key, stacklevel=2)
            if not capsule.verify(secret_key):
                raise IntentHijackError(
                    original_intent=capsule.intent,
                    detected_intent="Capsule signature verification failed",
                    confidence=1.0,
                    allowed_tools=sorted(capsule.allowed_tools),
                    user_id=capsule.user_id,
                )
        else:
            logger.warning(
                "IntentGuard for capsule %s created without secret_key: the capsule's "
                "signature is not verified",
                capsule.capsule_id,
            )
        self._capsule = capsule
        self._validator = validator or IntentValidator()
        self.strict_mode = strict_mode
        self._clock = clock
        # Reentrant; on the native backend an AgentLock, which the gate takes natively.
        self._lock = impl.AgentLock()
        self._intent = capsule.intent
        self._category = capsule.intent_category
        self._user_id = capsule.user_id
        self._tools = frozenset(capsule.allowed_tools)
        self._constraints = copy.deepcopy(capsule.constraints)
        self._expires = capsule.expires_at.timestamp()
        self._calls = len(capsule.tool_calls)
        # validate_tool_call in one call: the common case natively, the rest through
        # _validate_tool_call (the reference gate always takes that path).
        self._gate = impl.IntentGate(self, IntentCapsule)
        if type(self).validate_tool_call is IntentGuard.validate_tool_call:
            # A plain assignment keeps the instance's inline attribute values (writing to
            # self.__dict__ would make every later self._x read of the Python path slower).
            self.validate_tool_call = self._gate.validate  # type: ignore[method-assign]

    @property
    def capsule(self) -> IntentCapsule:
        """The capsule this guard enforces."""
        return self._capsule

    def get_allowed_tools(self) -> set[str]:
        """A copy of the allowed tools."""
        return set(self._tools)

    def get_intent_summary(self) -> dict[str, Any]:
        """``{"intent", "category", "allowed_tools", "tool_calls_made", "expires_in_seconds"}``."""
        with self._lock:
            return {
                "intent": self._intent,
                "category": self._category.value,
                "allowed_tools": sorted(self._tools),
                "tool_calls_made": self._calls,
                "expires_in_seconds": max(0.0, self._expires - self._clock()),
            }

    def _fail(self, tool_name: str, reason: str, confidence: float) -> bool:
        logger.warning(
            "Intent violation for user %s, tool %r: %s", self._user_id, tool_name, reason
        )
        if self.strict_mode:
            raise IntentHijackError(
                self._intent,
                reason,
                confidence,
                tool_name=tool_name,
                allowed_tools=sorted(self._tools),
                user_id=self._user_id,
            )
        return False

    def validate_tool_call(
        self,
        tool_name: str,
        arguments: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> bool:
        """True if the call fits the intent (and records it); otherwise False, or
        :class:`IntentHijackError` in strict mode. Checks expiry (a clock reading that is not
        at or before the expiry, NaN included, is expired), tool, description, then
        constraints (``max_results``, ``allowed_paths``, ``forbidden_args``,
        ``max_tool_calls``)."""
        return self._gate.validate(tool_name, arguments, description)  # type: ignore[no-any-return]

    def _validate_tool_call(
        self,
        tool_name: str,
        arguments: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> bool:
        """The general path of :meth:`validate_tool_call` (every call, every outcome)."""
        args = arguments if arguments is not None else {}
        if not isinstance(args, dict):
            raise TypeError(f"arguments must be a dict, not {type(args).__name__}")
        with self._lock:
            if not self._clock() <= self._expires:  # fails closed on NaN
                return self._fail(tool_name, "Intent capsule has expired", 0.9)
            tools = self._tools
            if not (tool_name in tools or _tool_allowed(tools, tool_name)):
                return self._fail(tool_name, f"Tool '{tool_name}' not allowed by intent", 0.8)
            if description is not None:
                found = self._validator.detect_hijack(self._intent, description, tool_name)
                if found.is_hijack:
                    return self._fail(tool_name, found.reasoning, found.confidence)
            c = self._constraints
            if c:
                reason = self._constraint_violation(c, args)
                if reason is not None:
                    return self._fail(tool_name, reason, 0.7)
            self._calls += 1
            self._capsule.record_tool_call(tool_name, args)
            return True

    def _constraint_violation(self, c: dict[str, Any], args: dict[str, Any]) -> str | None:
        if "max_results" in c:
            limit = args.get("limit") or args.get("max_results")
            if limit is not None:
                try:
                    over = limit > c["max_results"]
                except TypeError:
                    over = True
                if over:
                    return f"Result limit {limit} exceeds max {c['max_results']}"
        if "allowed_paths" in c:
            path = args.get("path") or args.get("file_path")
            if path is not None and not (
                isinstance(path, str)
                and any(_path_under(path, str(root)) for root in c["allowed_paths"])
            ):
                return f"Path '{path}' not in allowed paths"
        for key in c.get("forbidden_args", ()):
            if key in args:
                return f"Argument '{key}' is forbidden"
        if "max_tool_calls" in c and self._calls >= c["max_tool_calls"]:
            return f"Exceeded max tool calls ({c['max_tool_calls']})"
        return None


class IntentCapsuleManager:
    """Creates, stores, verifies and revokes capsules under one key ring. Thread-safe.

    Args:
        secret_key: signing key (or a :class:`~proxilion.security._keys.KeyRing`).
        default_ttl: capsule lifetime in seconds when none is given.
        max_capsules: most capsules kept; expired ones are evicted first, then the oldest.
    """

    def __init__(
        self, secret_key: str | bytes | KeyRing, default_ttl: int = 3600, max_capsules: int = 10000
    ) -> None:
        self._ring = (
            secret_key if isinstance(secret_key, KeyRing) else KeyRing(secret_key, _stacklevel=2)
        )
        if isinstance(max_capsules, bool) or not isinstance(max_capsules, int) or max_capsules < 1:
            raise ConfigurationError("max_capsules must be an int >= 1", received=max_capsules)
        self.default_ttl = default_ttl
        self.max_capsules = max_capsules
        self._capsules: dict[str, IntentCapsule] = {}
        self._lock = threading.RLock()
        self._created = 0
        self._revoked = 0

    def __repr__(self) -> str:
        return f"IntentCapsuleManager(capsules={len(self._capsules)}, keys={self._ring!r})"

    @property
    def key_ring(self) -> KeyRing:
        """The manager's keys (rotate them with ``key_ring.rotate(...)``)."""
        return self._ring

    def create_capsule(
        self,
        user_id: str,
        intent: str,
        allowed_tools: set[str] | list[str] | None = None,
        allowed_actions: set[str] | list[str] | None = None,
        constraints: dict[str, Any] | None = None,
        ttl_seconds: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> IntentCapsule:
        """Create, sign and store a capsule."""
        capsule = IntentCapsule.create(
            user_id,
            intent,
            self._ring,
            allowed_tools=allowed_tools,
            allowed_actions=allowed_actions,
            constraints=constraints,
            ttl_seconds=ttl_seconds or self.default_ttl,
            metadata=metadata,
        )
        with self._lock:
            if len(self._capsules) >= self.max_capsules:
                self._evict()
            self._capsules[capsule.capsule_id] = capsule
            self._created += 1
        return capsule

    def _evict(self) -> None:
        now = _utcnow()
        for cid in [c for c, cap in self._capsules.items() if now > cap.expires_at]:
            del self._capsules[cid]
        while len(self._capsules) >= self.max_capsules:
            del self._capsules[next(iter(self._capsules))]

    def get_capsule(self, capsule_id: str) -> IntentCapsule | None:
        """The capsule, or None (an expired capsule is removed and None returned)."""
        with self._lock:
            capsule = self._capsules.get(capsule_id)
            if capsule is not None and capsule.is_expired():
                del self._capsules[capsule_id]
                return None
            return capsule

    def get_user_capsules(self, user_id: str) -> list[IntentCapsule]:
        """The user's unexpired capsules."""
        with self._lock:
            return [
                c for c in self._capsules.values() if c.user_id == user_id and not c.is_expired()
            ]

    def revoke_capsule(self, capsule_id: str) -> bool:
        """Remove a capsule; False if unknown."""
        with self._lock:
            if self._capsules.pop(capsule_id, None) is None:
                return False
            self._revoked += 1
            return True

    def verify_capsule(self, capsule_id: str) -> bool:
        """True when the stored capsule exists, is unexpired and both its tags verify."""
        capsule = self.get_capsule(capsule_id)
        return capsule is not None and capsule.verify(self._ring)

    def create_guard(self, capsule_id: str, strict_mode: bool = False) -> IntentGuard | None:
        """A verifying :class:`IntentGuard` for a stored capsule, or None if unknown/expired."""
        capsule = self.get_capsule(capsule_id)
        if capsule is None:
            return None
        return IntentGuard(capsule, self._ring, strict_mode=strict_mode)

    def get_stats(self) -> dict[str, Any]:
        """Counts of stored, active and expired capsules, and lifetime totals."""
        with self._lock:
            now = _utcnow()
            expired = sum(1 for c in self._capsules.values() if now > c.expires_at)
            return {
                "total_capsules": len(self._capsules),
                "active_capsules": len(self._capsules) - expired,
                "expired_capsules": expired,
                "max_capsules": self.max_capsules,
                "created_total": self._created,
                "revoked_total": self._revoked,
                "unique_users": len({c.user_id for c in self._capsules.values()}),
            }
