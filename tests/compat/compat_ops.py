"""Jobs run by ``worker.py`` in a child on the original SDK and in a child on ours.

Every job uses only the public API the two have in common (API.md, with the 0.0.6
differences of its section 12), takes and returns plain JSON values, and rebuilds objects
signed by the other SDK from the fields their ``to_dict`` / dataclass constructors document.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import proxilion

# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Plain JSON form: sets as sorted lists, datetimes iso, enums by value."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value") and type(value).__module__.startswith("proxilion"):
        return value.value
    return value


def _fields(obj: Any) -> dict[str, Any]:
    """Every dataclass field of ``obj`` (private ones included), JSON-ready."""
    return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _rebuild(cls: type, data: dict[str, Any], convert: dict[str, Any]) -> tuple[Any, list[str]]:
    """``cls(**fields)`` from a field dict; returns the object and the keys ``cls`` lacks."""
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key in names:
            kwargs[key] = convert[key](value) if key in convert and value is not None else value
    return cls(**kwargs), sorted(set(data) - names)


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _exc(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "str": str(exc)}


# ------------------------------------------------------------------------------------------
# (a) audit logs
# ------------------------------------------------------------------------------------------


def _logger(path: str, **extra: Any) -> Any:
    from proxilion.audit import AuditLogger, LoggerConfig, RotationPolicy

    return AuditLogger(LoggerConfig(log_path=Path(path), rotation=RotationPolicy.NONE, **extra))


def audit_write(path: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Log each entry with ``AuditLogger.log_authorization(**entry)`` (rotation NONE)."""
    logger = _logger(path)
    events = [logger.log_authorization(**entry) for entry in entries]
    mem = logger.verify()
    logger.close()
    return {
        "hashes": [e.event_hash for e in events],
        "sequence_numbers": [e.sequence_number for e in events],
        "logger_verify": [mem.valid, mem.error_message, mem.verified_count],
    }


def audit_default_config(
    directory: str, entries: list[dict[str, Any]], tz: str | None = None
) -> dict[str, Any]:
    """``LoggerConfig.default`` (DAILY rotation, default redaction) and
    ``Proxilion(audit_log_path=...)``: which files appear, and what they hold. ``tz`` sets
    the process's local time zone (``TZ``) for the duration of the job."""
    old_tz = os.environ.get("TZ")
    if tz is not None:
        os.environ["TZ"] = tz
        time.tzset()
    try:
        return _audit_default_config(Path(directory), entries)
    finally:
        if tz is not None:
            if old_tz is None:
                del os.environ["TZ"]
            else:
                os.environ["TZ"] = old_tz
            time.tzset()


def _audit_default_config(base: Path, entries: list[dict[str, Any]]) -> dict[str, Any]:
    from proxilion import Policy, Proxilion, UserContext
    from proxilion.audit import AuditLogger, LoggerConfig

    logger = AuditLogger(LoggerConfig.default(base / "direct" / "audit.jsonl"))
    for entry in entries:
        logger.log_authorization(**entry)
    logger.close()

    auth = Proxilion(audit_log_path=base / "core" / "audit.jsonl")

    @auth.policy("lookup")
    class LookupPolicy(Policy):  # type: ignore[misc]
        def can_execute(self, context: dict[str, Any]) -> bool:
            return True

    @auth.authorize("execute", resource="lookup")
    def lookup(email: str, password: str = "", user: Any = None) -> str:
        return "ok"

    lookup(email="jane@example.com", password="hunter2", user=UserContext("u1", ["r"]))
    auth.close()
    out: dict[str, Any] = {}
    for sub in ("direct", "core"):
        files = sorted(p.name for p in (base / sub).iterdir())
        out[sub] = {
            "files": files,
            "data": [
                json.loads(line)["data"]
                for name in files
                for line in (base / sub / name).read_text(encoding="utf-8").splitlines()
                if line.strip() and '"_type"' not in line[:12]
            ],
        }
    return out


def audit_verify(path: str) -> list[Any]:
    """``verify_jsonl_chain(path)``."""
    from proxilion.audit import verify_jsonl_chain

    return list(verify_jsonl_chain(path))


def audit_read(path: str) -> list[dict[str, Any]]:
    """``read_jsonl_events``: each event's hash, recomputed-hash check and data."""
    from proxilion.audit import read_jsonl_events

    out = []
    for event in read_jsonl_events(path):
        stored = event.event_hash
        out.append(
            {
                "event_hash": stored,
                "verify_hash": event.verify_hash(),
                "recomputed": event.compute_hash() == stored,
                "sequence_number": event.sequence_number,
                "data": event.data.to_dict(),
            }
        )
    return out


def audit_redact(data: dict[str, Any]) -> dict[str, Any]:
    """``redact_sensitive_data(data, RedactionConfig.default())``."""
    from proxilion.audit import RedactionConfig, redact_sensitive_data

    result: dict[str, Any] = redact_sensitive_data(data, RedactionConfig.default())
    return result


# ------------------------------------------------------------------------------------------
# (b) signatures
# ------------------------------------------------------------------------------------------


def mem_sign(key: str, messages: list[list[Any]]) -> list[dict[str, Any]]:
    """Sign ``[role, content, metadata]`` messages with a fresh ``MemoryIntegrityGuard``."""
    from proxilion.security import MemoryIntegrityGuard

    guard = MemoryIntegrityGuard(key)
    return [guard.sign_message(r, c, m).to_dict() for r, c, m in messages]


def mem_verify(key: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """``verify_context`` and ``verify_message`` of messages given as ``to_dict`` forms."""
    from proxilion.security import MemoryIntegrityGuard, MemorySignedMessage

    guard = MemoryIntegrityGuard(key)
    msgs = [MemorySignedMessage.from_dict(d) for d in messages]
    result = guard.verify_context(msgs)
    return {
        "valid": result.valid,
        "verified_count": result.verified_count,
        "total_count": result.total_count,
        "violations": [
            [v.violation_type.value, v.message, v.severity, v.index] for v in result.violations
        ],
        "each": [guard.verify_message(m)[0] for m in msgs],
        "content_hashes": [m.content_hash() for m in msgs],
    }


def rag_scan(key: str, documents: list[Any]) -> dict[str, Any]:
    """``MemoryIntegrityGuard.scan_rag_documents`` with the built-in patterns."""
    from proxilion.security import MemoryIntegrityGuard

    r = MemoryIntegrityGuard(key).scan_rag_documents(documents)
    return {
        "safe": r.safe,
        "poisoned_indices": r.poisoned_indices,
        "violations": [[v.index, v.message, v.severity] for v in r.violations],
    }


def _trust_manager(key: str, agents: list[list[Any]]) -> Any:
    from proxilion.security import AgentTrustLevel, AgentTrustManager

    manager = AgentTrustManager(key)
    for agent_id, level, caps in agents:
        manager.register_agent(agent_id, AgentTrustLevel[level], caps)
    return manager


def _token_from(data: dict[str, Any]) -> tuple[Any, list[str]]:
    from proxilion.security import AgentDelegationToken

    return _rebuild(
        AgentDelegationToken,
        data,
        {"granted_capabilities": set, "issued_at": _iso, "expires_at": _iso},
    )


def _message_dict(message: Any) -> dict[str, Any]:
    d = _fields(message)
    if message.delegation_token is not None:
        d["delegation_token"] = _fields(message.delegation_token)
    return d


def agent_sign(
    key: str, agents: list[list[Any]], messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``create_signed_message(**spec)`` for each spec; ``spec["delegation_token"]`` may be a
    token field dict (rebuilt here)."""
    manager = _trust_manager(key, agents)
    out = []
    for spec in messages:
        spec = dict(spec)
        if spec.get("delegation_token"):
            spec["delegation_token"] = _token_from(spec["delegation_token"])[0]
        out.append(_message_dict(manager.create_signed_message(**spec)))
    return out


def agent_verify(
    key: str, agents: list[list[Any]], messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Rebuild each message from its fields and ``verify_message`` it (replay check on)."""
    from proxilion.security import AgentSignedMessage

    manager = _trust_manager(key, agents)
    out = []
    for data in messages:
        data = dict(data)
        dropped: list[str] = []
        if data.get("delegation_token"):
            data["delegation_token"], dropped = _token_from(data["delegation_token"])
        message, extra = _rebuild(AgentSignedMessage, data, {})
        result = manager.verify_message(message)
        out.append({"valid": result.valid, "error": result.error, "dropped": extra + dropped})
    return out


def agent_delegate(
    key: str, agents: list[list[Any]], grants: list[list[Any]]
) -> list[dict[str, Any]]:
    """``create_delegation(from, to, caps)`` for each grant; returns the token fields."""
    manager = _trust_manager(key, agents)
    return [_fields(manager.create_delegation(a, b, caps)) for a, b, caps in grants]


def agent_verify_tokens(
    key: str, agents: list[list[Any]], tokens: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``verify_delegation_chain`` of a one-token chain, for each token."""
    from proxilion.security import DelegationChain

    manager = _trust_manager(key, agents)
    out = []
    for data in tokens:
        token, dropped = _token_from(data)
        chain = DelegationChain()
        chain.add(token)
        result = manager.verify_delegation_chain(chain)
        out.append({"valid": result.valid, "error": result.error, "dropped": dropped})
    return out


def capsule_create(key: str, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``IntentCapsule.create(secret_key=key, **spec)``; returns every dataclass field."""
    from proxilion.security import IntentCapsule

    return [_fields(IntentCapsule.create(secret_key=key, **spec)) for spec in specs]


def capsule_check(
    key: str, capsules: list[dict[str, Any]], calls: list[list[Any]]
) -> list[dict[str, Any]]:
    """Rebuild each capsule, ``verify`` it and run ``calls`` through ``IntentGuard(c, key)``."""
    from proxilion.exceptions import IntentHijackError
    from proxilion.security import IntentCapsule, IntentCategory, IntentGuard

    legacy = "allow_legacy" in inspect.signature(IntentCapsule.verify).parameters
    out = []
    for data in capsules:
        capsule, dropped = _rebuild(
            IntentCapsule,
            data,
            {
                "intent_category": IntentCategory,
                "allowed_tools": set,
                "allowed_actions": set,
                "created_at": _iso,
                "expires_at": _iso,
            },
        )
        entry: dict[str, Any] = {
            "dropped": dropped,
            "verify": capsule.verify(key),
            "verify_legacy": capsule.verify(key, allow_legacy=True) if legacy else None,
        }
        try:
            guard = IntentGuard(capsule, key)
        except IntentHijackError as exc:
            entry["guard"] = _exc(exc)
        else:
            entry["guard"] = "ok"
            entry["calls"] = [guard.validate_tool_call(*call) for call in calls]
        out.append(entry)
    return out


# ------------------------------------------------------------------------------------------
# (c) decisions
# ------------------------------------------------------------------------------------------


def _user(d: dict[str, Any]) -> Any:
    from proxilion import UserContext

    return UserContext(**d)


def _policy_app(**kwargs: Any) -> Any:
    from proxilion import Policy, Proxilion

    auth = Proxilion(**kwargs)

    @auth.policy("documents")
    class DocumentsPolicy(Policy):  # type: ignore[misc]
        def can_read(self, context: dict[str, Any]) -> bool:
            return "analyst" in self.user.roles or self.user.get_attribute("clearance", 0) >= 3

        def can_write(self, context: dict[str, Any]) -> bool:
            return context.get("owner") == self.user.user_id

        def can_delete(self, context: dict[str, Any]) -> bool:
            raise RuntimeError("storage offline: é")

        def can_share(self, context: dict[str, Any]) -> Any:
            return context.get("count")

    @auth.policy("sensitive_data")
    class SensitiveDataPolicy(Policy):  # type: ignore[misc]
        def can_read(self, context: dict[str, Any]) -> bool:
            return self.user.attributes.get("clearance") == "high" and "analyst" in self.user.roles

    @auth.policy("default")
    class DefaultPolicy(Policy):  # type: ignore[misc]
        def can_read(self, context: dict[str, Any]) -> bool:
            return False

    return auth


def policy_checks(cases: list[list[Any]], options: dict[str, Any] | None = None) -> list[Any]:
    """``Proxilion.check`` / ``can`` / ``authorize_or_raise`` for ``[user, action, resource,
    context]`` cases."""
    from proxilion.exceptions import AuthorizationError

    auth = _policy_app(**(options or {}))
    out = []
    for user_d, action, resource, context in cases:
        user = _user(user_d)
        r = auth.check(user, action, resource, context)
        try:
            auth.authorize_or_raise(user, action, resource, context)
            raised = None
        except AuthorizationError as exc:
            raised = _exc(exc)
        out.append(
            {
                "allowed": r.allowed,
                "reason": r.reason,
                "policies_evaluated": r.policies_evaluated,
                "can": auth.can(user, action, resource, context),
                "raised": raised,
            }
        )
    return out


def decorated_calls(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Calls through ``@auth.authorize`` (audit in memory); outcomes and the audit data."""
    from proxilion import AgentContext, Policy, Proxilion, UserContext

    auth = Proxilion()

    @auth.policy("database_query")
    class DatabaseQueryPolicy(Policy):  # type: ignore[misc]
        def can_execute(self, context: dict[str, Any]) -> bool:
            return "analyst" in self.user.roles and "DROP" not in context.get("query", "")

    @auth.authorize("execute", resource="database_query")
    def database_query(query: str, limit: int = 10, user: Any = None, agent: Any = None) -> Any:
        if query == "fail":
            raise ValueError("backend down")
        return {"rows": [query, limit]}

    outcomes = []
    for call in calls:
        kwargs = dict(call.get("kwargs", {}))
        if "user" in call:
            kwargs["user"] = UserContext(**call["user"])
        if "agent" in call:
            kwargs["agent"] = AgentContext(**call["agent"])
        try:
            outcomes.append({"ok": database_query(*call.get("args", []), **kwargs)})
        except Exception as exc:
            outcomes.append(_exc(exc))
    events = auth.get_audit_events()
    chain = auth.verify_audit_chain()
    return {
        "outcomes": outcomes,
        "events": [
            {"event_type": e.data.event_type.value, "data": e.data.to_dict()} for e in events
        ],
        "chain_valid": chain.valid,
    }


def _exceptions() -> Any:
    import proxilion.exceptions as exc_module

    return exc_module


def exception_strs(specs: list[list[Any]]) -> list[dict[str, Any]]:
    """Construct ``[class, args, kwargs]`` and report ``str``, ``message``, ``details``."""
    mod = _exceptions()
    out = []
    for name, args, kwargs in specs:
        if name == "FallbackExhaustedError":
            args = [[(n, ValueError(m)) for n, m in args[0]], *args[1:]]
        elif name == "ScopeLoaderError" and len(args) > 2:
            args = [*args[:2], KeyError(args[2])]
        exc = getattr(mod, name)(*args, **kwargs)
        out.append(
            {
                "str": str(exc),
                "message": exc.message,
                "details": json.loads(json.dumps(exc.details, default=repr)),
                "mro": [c.__name__ for c in type(exc).__mro__],
            }
        )
    return out


def guard_checks(inputs: list[str], outputs: list[str]) -> dict[str, Any]:
    """Default ``InputGuard`` / ``OutputGuard`` verdicts; ``{"missing": ...}`` without guards."""
    try:
        from proxilion.guards import InputGuard, OutputGuard
    except ImportError as exc:
        return {"missing": str(exc)}
    ig, og = InputGuard(), OutputGuard()

    def verdict(r: Any) -> dict[str, Any]:
        return {
            "passed": r.passed,
            "action": r.action.value,
            "matched_patterns": sorted(r.matched_patterns),
            "risk_score": round(r.risk_score, 9),
        }

    return {
        "input": [verdict(ig.check(t)) for t in inputs],
        "output": [verdict(og.check(t)) for t in outputs],
        "redact": [og.redact(t) for t in outputs],
    }


def hijack_checks(cases: list[list[Any]]) -> list[dict[str, Any]]:
    """``detect_hijack(intent, action, tool)`` of the capsule module's validator."""
    from proxilion.security import IntentHijackValidator

    validator = IntentHijackValidator()
    out = []
    for intent, action, tool in cases:
        r = validator.detect_hijack(intent, action, tool)
        out.append(
            {
                "is_hijack": r.is_hijack,
                "confidence": r.confidence,
                "matched_patterns": r.matched_patterns,
                "reasoning": r.reasoning,
            }
        )
    return out


def drift_scenario(
    baseline: list[list[Any]], live: list[list[Any]], errors: int = 0
) -> dict[str, Any]:
    """``BehavioralMonitor``: record ``[tool, latency_ms]`` calls, lock the baseline, record
    the live calls (and ``errors`` errors), then ``check_drift``; ``{"missing"}`` without it."""
    try:
        from proxilion.security.behavioral_drift import BehavioralMonitor
    except ImportError as exc:
        return {"missing": str(exc)}
    monitor = BehavioralMonitor("agent-1")
    before = monitor.check_drift()
    for tool, latency in baseline:
        monitor.record_tool_call(tool, {"q": 1}, latency_ms=latency)
    stats = monitor.lock_baseline()
    for tool, latency in live:
        monitor.record_tool_call(tool, latency_ms=latency)
    for _ in range(errors):
        monitor.record_error({"error": "boom"})
    result = monitor.check_drift()
    return {
        "before": [before.is_drifting, before.severity, before.reason],
        "baseline": {
            m.value: [
                s.mean,
                s.std_dev,
                s.min_value,
                s.max_value,
                s.sample_count,
                s.percentile_95,
                s.percentile_99,
            ]
            for m, s in sorted(stats.items(), key=lambda kv: kv[0].value)
        },
        "result": [result.is_drifting, result.severity, result.reason],
        "drifting": sorted([m.value, v, z] for m, v, z in result.drifting_metrics),
        "current": monitor.get_current_metrics(),
    }


def idor_checks(scopes: list[list[Any]], checks: list[list[str]]) -> list[bool]:
    """``IDORProtector.validate_access`` after ``register_scope(user, type, set(ids))``."""
    from proxilion.security import IDORProtector

    p = IDORProtector()
    for user, rtype, ids in scopes:
        p.register_scope(user, rtype, set(ids))
    return [p.validate_access(u, t, o) for u, t, o in checks]


def limiter_sequence(capacity: int, calls: int) -> dict[str, Any]:
    """A token bucket and ``@rate_limited`` / ``@circuit_protected`` driven to refusal."""
    from proxilion import circuit_protected, rate_limited
    from proxilion.security import TokenBucketRateLimiter

    bucket = TokenBucketRateLimiter(capacity=capacity, refill_rate=0.001)
    allowed = [bucket.allow_request("k") for _ in range(calls)]

    @rate_limited(capacity=capacity, refill_rate=0.001)
    def limited() -> int:
        return 1

    limited_out = []
    for _ in range(calls):
        try:
            limited_out.append(limited())
        except Exception as exc:
            limited_out.append({**_exc(exc), "prefix": str(exc).split(". Retry", 1)[0]})

    @circuit_protected(failure_threshold=2, reset_timeout=30.0)
    def flaky() -> int:
        raise ConnectionError("upstream 503")

    breaker_out = []
    for _ in range(3):
        try:
            flaky()
        except Exception as exc:
            breaker_out.append({"type": type(exc).__name__, "prefix": str(exc).split(". ")[0]})
    return {"bucket": allowed, "rate_limited": limited_out, "circuit": breaker_out}


def sdk_info() -> dict[str, Any]:
    """Which ``proxilion`` answers, and what it contains."""
    import importlib.util

    backend = None
    if importlib.util.find_spec("proxilion._backend") is not None:
        from proxilion import _backend

        backend = _backend.BACKEND
    return {
        "file": proxilion.__file__,
        "version": getattr(proxilion, "__version__", None),
        "backend": backend,
        "guards": importlib.util.find_spec("proxilion.guards") is not None,
        "behavioral_drift": importlib.util.find_spec("proxilion.security.behavioral_drift")
        is not None,
    }


OPS = {
    name: fn
    for name, fn in globals().items()
    if callable(fn) and not name.startswith("_") and getattr(fn, "__module__", "") == __name__
}
