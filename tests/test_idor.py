"""IDOR protection and explicit, audited admin overrides (API.md 8.2, seed example 4)."""

from __future__ import annotations

from typing import Any

import pytest

import proxilion.exceptions as errors
from proxilion import IDORViolationError, ScopeLoaderError
from proxilion.exceptions import ConfigurationError
from proxilion.security import IDORProtector


class Clock:
    def __init__(self, t: float = 1_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeAuditLogger:
    """Duck type of proxilion.audit.AuditLogger.log_authorization (API.md 9.3)."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    def log_authorization(
        self,
        user_id: str,
        user_roles: list[str],
        tool_name: str,
        tool_arguments: dict[str, Any],
        allowed: bool,
        reason: str | None = None,
        policies_evaluated: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.fail:
            raise OSError("disk full")
        self.calls.append(
            {
                "user_id": user_id,
                "tool_name": tool_name,
                "args": tool_arguments,
                "allowed": allowed,
                "reason": reason,
                "policies": policies_evaluated,
            }
        )


def test_seed_example_4_verbatim() -> None:
    with pytest.raises(errors.AuthorizationError, match="Access denied"):
        from proxilion import AuthorizationError
        from proxilion.security import IDORProtector

        protector = IDORProtector()
        # Register what each user can access
        protector.register_scope("user_123", "document", {"doc_1", "doc_2"})
        protector.register_scope("admin_456", "document", {"doc_1", "doc_2", "doc_3"})
        # Validate before tool execution
        if not protector.validate_access("user_123", "document", "doc_3"):
            raise AuthorizationError("Access denied")
    assert protector.validate_access("admin_456", "document", "doc_3")
    assert protector.validate_access("user_123", "document", "doc_1")


def test_deny_by_default_and_scope_rules() -> None:
    p = IDORProtector()
    assert not p.validate_access("u", "doc", "1")
    ids = {"a"}
    p.register_scope("u", "doc", ids, allowed_patterns=[r"pub_\d+"])
    ids.add("b")  # the caller's set object is kept, as in the original
    assert p.validate_access("u", "doc", "b")
    assert p.validate_access("u", "doc", "pub_12")
    assert not p.validate_access("u", "doc", "pub_12x")  # whole-id match (original: prefix)
    assert not p.validate_access("u", "doc", "xpub_12")
    assert not p.validate_access("u", "other", "a")
    p.register_scope("u", "doc", {"c"})  # replaces
    assert not p.validate_access("u", "doc", "a") and p.validate_access("u", "doc", "c")
    p.add_to_scope("u", "doc", {"d"})
    p.add_to_scope("v", "doc", {"z"})
    assert p.validate_access("u", "doc", "d") and p.validate_access("v", "doc", "z")
    p.remove_from_scope("u", "doc", {"d"})
    assert not p.validate_access("u", "doc", "d")
    p.clear_scope("u", "doc")
    assert not p.validate_access("u", "doc", "c")
    p.register_scope("v", "img", {"1"})
    p.clear_scope("v")
    assert not p.validate_access("v", "img", "1") and not p.validate_access("v", "doc", "z")


def test_limits() -> None:
    with pytest.raises(ConfigurationError, match="max_objects_per_scope must be >= 1"):
        IDORProtector(0)
    p = IDORProtector(max_objects_per_scope=2)
    with pytest.raises(ConfigurationError, match=r"would exceed max_objects_per_scope \(2\)"):
        p.register_scope("u", "doc", {"1", "2", "3"})
    p.add_to_scope("u", "doc", {"1", "2"})
    p.add_to_scope("u", "doc", {"1"})  # already present: not counted
    with pytest.raises(ConfigurationError, match="Scope for user 'u' resource 'doc'"):
        p.add_to_scope("u", "doc", {"3"})


def test_loaders() -> None:
    p = IDORProtector()
    p.register_scope_loader("doc", lambda user: {f"{user}-1"})
    assert p.validate_access("amy", "doc", "amy-1") and not p.validate_access("amy", "doc", "x")
    p.register_scope("amy", "doc", {"own"})  # a scope exists: the global loader is not used
    assert not p.validate_access("amy", "doc", "amy-1")

    def missing(user: str) -> set[str]:
        raise KeyError(user)

    def broken(user: str) -> set[str]:
        raise RuntimeError("db down")

    p.register_scope("bob", "doc", set(), scope_loader=missing)
    assert not p.validate_access("bob", "doc", "1")
    p.register_scope("bob", "doc", set(), scope_loader=broken)
    with pytest.raises(ScopeLoaderError, match="Scope loader failed for doc"):
        p.validate_access("bob", "doc", "1")


def test_arguments() -> None:
    p = IDORProtector()
    p.register_scope("u", "doc", {"1", "2"})
    p.register_id_pattern("doc_id", "doc")
    p.register_id_pattern("docs", "doc")
    p.register_id_pattern("ref", "doc", extractor=lambda v: [v["x"]])
    assert p.validate_arguments("u", {"doc_id": "1", "docs": ["2", None], "q": "9"}) == []
    got = p.validate_arguments("u", {"doc_id": {"id": 3}, "docs": ["1", 4], "ref": {"x": "5"}})
    assert got == [("doc_id", "doc", "3"), ("docs", "doc", "4"), ("ref", "doc", "5")]
    assert p.validate_arguments("u", {"ref": {}, "doc_id": {"name": "x"}}) == []
    with pytest.raises(IDORViolationError, match="attempted to access doc '3'") as ei:
        p.check_arguments("u", {"doc_id": 3})
    assert ei.value.resource_id == "3"
    p.check_arguments("u", {"doc_id": "1"})
    detected = p.auto_detect_ids(
        {
            "a": "550e8400-e29b-41d4-a716-446655440000",
            "b": "12345",
            "c": "inv_2024_7",
            "d": "plain",
            "query": "123",
            "e": 5,
            "f": "1" * 21,
        }
    )
    assert detected == {"a": "uuid", "b": "numeric", "c": "alphanumeric", "f": "alphanumeric"}


def test_admin_override_is_explicit_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    audit = FakeAuditLogger()
    clock = Clock()
    p = IDORProtector(audit_logger=audit, clock=clock)
    p.register_scope("admin_456", "document", {"doc_1"})
    assert not p.validate_access("admin_456", "document", "doc_9")
    with pytest.raises(ConfigurationError, match="reason must be a non-empty str"):
        p.grant_admin_override("admin_456", "document", reason=" ", granted_by="sec-team")
    with caplog.at_level("WARNING", logger="proxilion.security.idor_protection"):
        o = p.grant_admin_override(
            "admin_456", "document", reason="incident 42", granted_by="sec-team", ttl_seconds=60
        )
        assert o.expires_at == 1_060.0
        assert p.validate_access("admin_456", "document", "doc_1")  # scope: no override used
        assert p.validate_access("admin_456", "document", "doc_9")  # override used
        assert not p.validate_access("admin_456", "invoice", "inv_1")  # other type
        assert not p.validate_access("user_123", "document", "doc_9")  # other user
    assert [c["tool_name"] for c in audit.calls] == [
        "idor:idor_admin_override_granted",
        "idor:idor_admin_override_used",
    ]
    used = audit.calls[1]
    assert used["user_id"] == "admin_456" and used["allowed"] is True
    assert used["args"]["object_id"] == "doc_9" and used["args"]["granted_by"] == "sec-team"
    assert used["reason"] == "Admin override (idor_admin_override_used): incident 42"
    assert used["policies"] == ["idor_admin_override"]
    assert "idor_admin_override_used" in caplog.text and "incident 42" in caplog.text
    clock.t += 61  # expired
    assert not p.validate_access("admin_456", "document", "doc_9")
    assert p.get_admin_overrides() == []
    p.grant_admin_override("admin_456", reason="all types", granted_by="ciso")
    assert p.validate_access("admin_456", "invoice", "inv_1")
    assert p.revoke_admin_override("admin_456", revoked_by="ciso")
    assert not p.revoke_admin_override("admin_456")
    assert not p.validate_access("admin_456", "invoice", "inv_1")
    assert audit.calls[-1]["tool_name"] == "idor:idor_admin_override_revoked"
    assert audit.calls[-1]["args"]["revoked_by"] == "ciso"


def test_override_fails_closed_when_audit_fails() -> None:
    audit = FakeAuditLogger()
    p = IDORProtector(audit_logger=audit)
    p.grant_admin_override("root", reason="r", granted_by="g")
    audit.fail = True
    assert not p.validate_access("root", "doc", "1")
    with pytest.raises(ConfigurationError, match="could not be recorded"):
        p.grant_admin_override("other", reason="r", granted_by="g")
    assert not p.validate_access("other", "doc", "1")


def test_override_with_callable_sink() -> None:
    events: list[dict[str, Any]] = []
    p = IDORProtector(audit_logger=events.append)
    p.grant_admin_override("root", "doc", reason="r", granted_by="g")
    assert p.validate_access("root", "doc", "7")
    assert [e["event"] for e in events] == [
        "idor_admin_override_granted",
        "idor_admin_override_used",
    ]
    assert events[1]["object_id"] == "7"
    bad = IDORProtector(audit_logger=object())
    with pytest.raises(ConfigurationError, match="could not be recorded"):
        bad.grant_admin_override("root", reason="r", granted_by="g")
