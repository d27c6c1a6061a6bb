"""Insecure-direct-object-reference protection: per-user object scopes, deny by default.

API.md section 8.2; seed example 4 ("IDOR Prevention"). Each user gets, per resource type,
the set of object ids (and id patterns, and loaders) they may touch; anything else is denied.

Differences from the original, on purpose (see ``docs/trust-and-integrity.md``):

* **Explicit, logged admin overrides** (the seed promises them; the original had none):
  :meth:`IDORProtector.grant_admin_override` names who granted access to whom, why, for which
  resource type and until when. Every grant, revocation and every access that only the
  override allowed is recorded through ``audit_logger`` (an object with the audit logger's
  ``log_authorization(...)``, or a plain callable receiving an event dict) and logged at
  WARNING level. If recording fails, the override does not apply (fail closed).
* ``allowed_patterns`` must match the **whole** id (``re.fullmatch``); the original's
  ``re.match`` let ``"doc_1"`` admit ``"doc_10"``.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxilion.exceptions import ConfigurationError, IDORViolationError, ScopeLoaderError

__all__ = ["AdminOverride", "IDORProtector", "IDPattern", "ResourceScope"]

logger = logging.getLogger("proxilion.security.idor_protection")

_SKIPPED_KEYS = frozenset({"query", "content", "message", "text"})
_DICT_ID_KEYS = ("id", "ID", "_id", "object_id")
_LOADER_SOFT_ERRORS = (KeyError, ValueError, AttributeError)


@dataclass
class ResourceScope:
    """What one user may access for one resource type."""

    allowed_ids: set[str] = field(default_factory=set)
    allowed_patterns: list[str] = field(default_factory=list)
    scope_loader: Callable[[str], set[str]] | None = None


@dataclass
class IDPattern:
    """Maps a tool argument name to a resource type (``pattern`` is kept for compatibility)."""

    parameter_name: str
    resource_type: str
    pattern: str = ".*"
    extractor: Callable[[Any], list[str]] | None = None


@dataclass(frozen=True)
class AdminOverride:
    """An explicit grant letting ``user_id`` access every object of ``resource_type``
    (``"*"``: every type), recorded with who granted it and why."""

    user_id: str
    resource_type: str
    reason: str
    granted_by: str
    granted_at: float
    expires_at: float | None = None

    def is_active(self, now: float) -> bool:
        """True until ``expires_at`` (if any)."""
        return self.expires_at is None or now < self.expires_at


AuditSink = Any  # an object with log_authorization(...), or a callable(event: dict)


class IDORProtector:
    """Object-level access control for tool arguments. Deny by default; thread-safe.

    Args:
        max_objects_per_scope: most ids one (user, resource type) scope may hold (>= 1).
        audit_logger: where admin-override events go: an object with
            ``log_authorization(user_id, user_roles, tool_name, tool_arguments, allowed,
            reason=..., policies_evaluated=...)`` (``proxilion.audit.AuditLogger``), or a
            callable taking one event dict. Optional; overrides are always logged too.
        clock: wall clock in seconds for override expiry (injectable for tests).
    """

    UUID_PATTERN = re.compile(
        r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )
    NUMERIC_PATTERN = re.compile(r"^[0-9]+$")
    ALPHANUMERIC_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")

    def __init__(
        self,
        max_objects_per_scope: int = 100000,
        *,
        audit_logger: AuditSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (
            isinstance(max_objects_per_scope, bool)
            or not isinstance(max_objects_per_scope, int)
            or max_objects_per_scope < 1
        ):
            raise ConfigurationError("max_objects_per_scope must be >= 1")
        self.max_objects_per_scope = max_objects_per_scope
        self.audit_logger = audit_logger
        self._clock = clock
        self._lock = threading.RLock()
        self._scopes: dict[tuple[str, str], ResourceScope] = {}
        self._loaders: dict[str, Callable[[str], set[str]]] = {}
        self._id_patterns: dict[str, IDPattern] = {}
        self._overrides: dict[tuple[str, str], AdminOverride] = {}
        self._compiled: dict[str, re.Pattern[str]] = {}

    # -- scopes --------------------------------------------------------------------------

    def _too_many(self, user_id: str, resource_type: str) -> ConfigurationError:
        return ConfigurationError(
            f"Scope for user '{user_id}' resource '{resource_type}' would exceed "
            f"max_objects_per_scope ({self.max_objects_per_scope})"
        )

    def register_scope(
        self,
        user_id: str,
        resource_type: str,
        allowed_ids: set[str] | None = None,
        allowed_patterns: list[str] | None = None,
        scope_loader: Callable[[str], set[str]] | None = None,
    ) -> None:
        """Set (replace) the user's scope for a resource type. The given set is kept as is."""
        ids = allowed_ids if allowed_ids is not None else set()
        if len(ids) > self.max_objects_per_scope:
            raise self._too_many(user_id, resource_type)
        patterns = list(allowed_patterns or [])
        for p in patterns:
            self._pattern(p)  # compile now: a bad regex is the caller's error, not a deny
        with self._lock:
            self._scopes[(user_id, resource_type)] = ResourceScope(ids, patterns, scope_loader)

    def register_scope_loader(self, resource_type: str, loader: Callable[[str], set[str]]) -> None:
        """A loader for users who have no scope of this type."""
        with self._lock:
            self._loaders[resource_type] = loader

    def register_id_pattern(
        self,
        parameter_name: str,
        resource_type: str,
        pattern: str = ".*",
        extractor: Callable[[Any], list[str]] | None = None,
    ) -> None:
        """Declare that argument ``parameter_name`` holds ids of ``resource_type``."""
        with self._lock:
            self._id_patterns[parameter_name] = IDPattern(
                parameter_name, resource_type, pattern, extractor
            )

    def clear_scope(self, user_id: str, resource_type: str | None = None) -> None:
        """Drop one scope of the user, or all of them."""
        with self._lock:
            if resource_type is not None:
                self._scopes.pop((user_id, resource_type), None)
            else:
                for key in [k for k in self._scopes if k[0] == user_id]:
                    del self._scopes[key]

    def add_to_scope(self, user_id: str, resource_type: str, object_ids: set[str]) -> None:
        """Add ids to the user's scope (created if needed), within the size limit."""
        with self._lock:
            scope = self._scopes.get((user_id, resource_type))
            if scope is None:
                scope = ResourceScope()
                self._scopes[(user_id, resource_type)] = scope
            new = set(object_ids) - scope.allowed_ids
            if len(scope.allowed_ids) + len(new) > self.max_objects_per_scope:
                raise self._too_many(user_id, resource_type)
            scope.allowed_ids.update(new)

    def remove_from_scope(self, user_id: str, resource_type: str, object_ids: set[str]) -> None:
        """Remove ids from the user's scope."""
        with self._lock:
            scope = self._scopes.get((user_id, resource_type))
            if scope is not None:
                scope.allowed_ids.difference_update(object_ids)

    def _pattern(self, pattern: str) -> re.Pattern[str]:
        rx = self._compiled.get(pattern)
        if rx is None:
            rx = re.compile(pattern)
            self._compiled[pattern] = rx
        return rx

    # -- decisions -----------------------------------------------------------------------

    @staticmethod
    def _load(
        loader: Callable[[str], set[str]], resource_type: str, user_id: str, object_id: str
    ) -> bool:
        try:
            return object_id in loader(user_id)
        except _LOADER_SOFT_ERRORS:
            return False
        except Exception as exc:
            raise ScopeLoaderError(resource_type, user_id, exc) from exc

    def _scope_allows(self, user_id: str, resource_type: str, object_id: str) -> bool:
        scope = self._scopes.get((user_id, resource_type))
        if scope is None:
            loader = self._loaders.get(resource_type)
            if loader is not None:
                return self._load(loader, resource_type, user_id, object_id)
            return False
        if object_id in scope.allowed_ids:
            return True
        if scope.allowed_patterns and isinstance(object_id, str):
            for p in scope.allowed_patterns:
                if self._pattern(p).fullmatch(object_id):
                    return True
        if scope.scope_loader is not None:
            return self._load(scope.scope_loader, resource_type, user_id, object_id)
        return False

    def validate_access(self, user_id: str, resource_type: str, object_id: str) -> bool:
        """True if ``user_id`` may access ``object_id`` of ``resource_type``.

        Scope (ids, whole-id patterns, loaders) first; if that denies, an active admin
        override allows, and that use is recorded. Otherwise False (deny by default).
        """
        # Fast path without the lock: one dict read and one set lookup are atomic, and a
        # concurrent register_scope swaps the whole scope object, so this sees the old or the
        # new scope, exactly as a locked read racing with it would.
        scope = self._scopes.get((user_id, resource_type))
        if scope is not None and object_id in scope.allowed_ids:
            return True
        with self._lock:
            if self._scope_allows(user_id, resource_type, object_id):
                return True
            if not self._overrides:
                return False
            override = self._overrides.get((user_id, resource_type)) or self._overrides.get(
                (user_id, "*")
            )
            if override is None or not override.is_active(self._clock()):
                return False
        return self._record(
            "idor_admin_override_used",
            override,
            allowed=True,
            extra={"object_id": object_id, "requested_type": resource_type},
        )

    # -- admin overrides -----------------------------------------------------------------

    def grant_admin_override(
        self,
        user_id: str,
        resource_type: str = "*",
        *,
        reason: str,
        granted_by: str,
        ttl_seconds: float | None = None,
    ) -> AdminOverride:
        """Let ``user_id`` access any object of ``resource_type`` (``"*"``: all types).

        ``reason`` and ``granted_by`` are required and recorded; the grant itself is logged
        and sent to ``audit_logger``.

        Raises:
            ConfigurationError: empty reason/grantor, or a bad ``ttl_seconds``.
        """
        for name, value in (("reason", reason), ("granted_by", granted_by), ("user_id", user_id)):
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"admin override {name} must be a non-empty str")
        if ttl_seconds is not None and (
            isinstance(ttl_seconds, bool)
            or not isinstance(ttl_seconds, (int, float))
            or not math.isfinite(ttl_seconds)
            or ttl_seconds <= 0
        ):
            raise ConfigurationError(
                "ttl_seconds must be a finite number > 0", received=ttl_seconds
            )
        now = self._clock()
        override = AdminOverride(
            user_id=user_id,
            resource_type=resource_type,
            reason=reason,
            granted_by=granted_by,
            granted_at=now,
            expires_at=now + ttl_seconds if ttl_seconds is not None else None,
        )
        if not self._record("idor_admin_override_granted", override, allowed=True):
            raise ConfigurationError(
                "admin override could not be recorded in the audit log; not granted"
            )
        with self._lock:
            self._overrides[(user_id, resource_type)] = override
        return override

    def revoke_admin_override(
        self, user_id: str, resource_type: str = "*", *, revoked_by: str = "system"
    ) -> bool:
        """Withdraw an override (recorded); False if there was none."""
        with self._lock:
            override = self._overrides.pop((user_id, resource_type), None)
        if override is None:
            return False
        self._record(
            "idor_admin_override_revoked", override, allowed=False, extra={"revoked_by": revoked_by}
        )
        return True

    def get_admin_overrides(self) -> list[AdminOverride]:
        """The active overrides."""
        now = self._clock()
        with self._lock:
            return [o for o in self._overrides.values() if o.is_active(now)]

    def _record(
        self,
        event: str,
        override: AdminOverride,
        *,
        allowed: bool,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """Log and audit an override event; False (fail closed) if the audit sink failed."""
        details: dict[str, Any] = {
            "event": event,
            "user_id": override.user_id,
            "resource_type": override.resource_type,
            "reason": override.reason,
            "granted_by": override.granted_by,
            "granted_at": override.granted_at,
            "expires_at": override.expires_at,
            **(extra or {}),
        }
        logger.warning(
            "IDOR %s: user=%s resource_type=%s granted_by=%s reason=%r %s",
            event,
            override.user_id,
            override.resource_type,
            override.granted_by,
            override.reason,
            {k: v for k, v in (extra or {}).items()},
        )
        sink = self.audit_logger
        if sink is None:
            return True
        try:
            log_authorization = getattr(sink, "log_authorization", None)
            if log_authorization is not None:
                log_authorization(
                    user_id=override.user_id,
                    user_roles=["admin_override"],
                    tool_name=f"idor:{event}",
                    tool_arguments=details,
                    allowed=allowed,
                    reason=f"Admin override ({event}): {override.reason}",
                    policies_evaluated=["idor_admin_override"],
                )
            elif callable(sink):
                sink(details)
            else:
                raise TypeError("audit_logger must have log_authorization() or be callable")
        except Exception:
            logger.exception("IDOR: recording %s failed; the override is not applied", event)
            return False
        return True

    # -- arguments -----------------------------------------------------------------------

    @staticmethod
    def _extract(value: Any, spec: IDPattern) -> list[str]:
        if spec.extractor is not None:
            try:
                return [str(v) for v in spec.extractor(value)]
            except Exception:
                return []
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [str(v) for v in value if v is not None]
        if isinstance(value, dict):
            for key in _DICT_ID_KEYS:
                if key in value:
                    return [str(value[key])]
            return []
        return [str(value)]

    def validate_arguments(
        self, user_id: str, arguments: dict[str, Any]
    ) -> list[tuple[str, str, str]]:
        """``(parameter, resource_type, object_id)`` for every id the user may not access."""
        with self._lock:
            specs = [(k, self._id_patterns[k]) for k in arguments if k in self._id_patterns]
        violations: list[tuple[str, str, str]] = []
        for name, spec in specs:
            for object_id in self._extract(arguments[name], spec):
                if not self.validate_access(user_id, spec.resource_type, object_id):
                    violations.append((name, spec.resource_type, object_id))
        return violations

    def check_arguments(self, user_id: str, arguments: dict[str, Any]) -> None:
        """Raise :class:`IDORViolationError` for the first inaccessible id."""
        violations = self.validate_arguments(user_id, arguments)
        if violations:
            _, resource_type, object_id = violations[0]
            raise IDORViolationError(user_id, resource_type, object_id)

    def auto_detect_ids(self, arguments: dict[str, Any]) -> dict[str, str]:
        """Guess which string arguments look like ids: ``"uuid"``, ``"numeric"``,
        ``"alphanumeric"`` (free-text keys such as ``query`` are skipped)."""
        found: dict[str, str] = {}
        for key, value in arguments.items():
            if key in _SKIPPED_KEYS or not isinstance(value, str):
                continue
            if self.UUID_PATTERN.match(value):
                found[key] = "uuid"
            elif len(value) <= 20 and self.NUMERIC_PATTERN.match(value):
                found[key] = "numeric"
            elif (
                len(value) <= 50
                and self.ALPHANUMERIC_PATTERN.match(value)
                and any(c.isdigit() for c in value)
            ):
                found[key] = "alphanumeric"
        return found
