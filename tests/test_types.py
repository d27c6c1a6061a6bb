"""Core types (API.md section 1)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from datetime import datetime, timezone

import pytest

from proxilion.types import (
    AgentContext,
    AuditEvent,
    AuthorizationResult,
    ToolCallRequest,
    UserContext,
)


def test_user_context_fields_and_methods() -> None:
    u = UserContext("alice", ["a", "b"], "s1", {"dept": "x"})
    assert u.has_role("a") and not u.has_role("c")
    assert u.has_any_role(["c", "b"]) and not u.has_any_role(["c"])
    assert u.has_all_roles(["a", "b"]) and not u.has_all_roles(["a", "c"])
    assert u.get_attribute("dept") == "x"
    assert u.get_attribute("missing", 7) == 7
    assert u.to_dict() == {
        "user_id": "alice",
        "roles": ["a", "b"],
        "session_id": "s1",
        "attributes": {"dept": "x"},
    }
    assert UserContext("bob") == UserContext("bob", [], None, {})


def test_user_context_is_frozen_and_unhashable() -> None:
    u = UserContext("alice")
    with pytest.raises(dataclasses.FrozenInstanceError):
        u.user_id = "mallory"  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(u)
    u.roles.append("still-mutable")
    assert u.roles == ["still-mutable"]


def test_defaults_are_not_shared() -> None:
    a, b = UserContext("a"), UserContext("b")
    a.roles.append("x")
    assert b.roles == []


@pytest.mark.parametrize("score", [-0.01, 1.01, math.nan, math.inf])
def test_agent_trust_score_range(score: float) -> None:
    with pytest.raises(ValueError, match="trust_score must be between 0 and 1, got"):
        AgentContext("a", trust_score=score)


def test_agent_context() -> None:
    a = AgentContext("bot", ["web:search"], 0.8)
    assert a.has_capability("web:search") and not a.has_capability("db")
    assert a.is_high_trust() and not a.is_high_trust(0.81)
    assert a.to_dict() == {"agent_id": "bot", "capabilities": ["web:search"], "trust_score": 0.8}
    assert AgentContext("x").trust_score == 1.0
    AgentContext("edge", trust_score=0.0)


def test_tool_call_request() -> None:
    t = ToolCallRequest("search", {"q": "x"})
    assert t.get_argument("q") == "x" and t.get_argument("n", 1) == 1
    assert t.timestamp.tzinfo is timezone.utc
    d = t.to_dict()
    assert d["tool_name"] == "search" and d["arguments"] == {"q": "x"}
    assert d["timestamp"] == t.timestamp.isoformat()


def test_authorization_result_factories() -> None:
    a = AuthorizationResult.allow()
    assert (a.allowed, a.reason, a.policies_evaluated, a.metadata) == (True, None, [], {})
    d = AuthorizationResult.deny("no", policies=["P"], metadata={"k": 1})
    assert (d.allowed, d.reason, d.policies_evaluated, d.metadata) == (False, "no", ["P"], {"k": 1})
    assert d.to_dict() == {
        "allowed": False,
        "reason": "no",
        "policies_evaluated": ["P"],
        "metadata": {"k": 1},
    }
    with pytest.raises(TypeError):
        AuthorizationResult.deny()  # type: ignore[call-arg]


def _event() -> AuditEvent:
    return AuditEvent(
        user_context=UserContext("alice", ["r"]),
        tool_call=ToolCallRequest(
            "t", {"a": 1}, timestamp=datetime(2025, 1, 31, 12, 0, tzinfo=timezone.utc)
        ),
        authorization_result=AuthorizationResult.allow("ok", ["P"]),
        sequence_number=1,
        previous_hash="sha256:" + "0" * 64,
        event_id="e1",
        timestamp=datetime(2025, 1, 31, 12, 0, 1, 5, tzinfo=timezone.utc),
    )


def test_audit_event_hash_is_sha256_of_canonical_json() -> None:
    e = _event()
    canonical = {
        "event_id": "e1",
        "timestamp": "2025-01-31T12:00:01.000005+00:00",
        "sequence_number": 1,
        "user_context": {"user_id": "alice", "roles": ["r"], "session_id": None, "attributes": {}},
        "agent_context": None,
        "tool_call": {
            "tool_name": "t",
            "arguments": {"a": 1},
            "timestamp": "2025-01-31T12:00:00+00:00",
        },
        "authorization_result": {
            "allowed": True,
            "reason": "ok",
            "policies_evaluated": ["P"],
            "metadata": {},
        },
        "execution_result": None,
        "previous_hash": "sha256:" + "0" * 64,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    expected = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert not e.verify_hash()  # empty hash
    assert e.compute_hash() == expected == e.event_hash
    assert e.verify_hash()
    e.sequence_number = 2
    assert not e.verify_hash()
    assert json.loads(e.to_json())["event_hash"] == expected


def test_audit_event_rejects_non_json_arguments() -> None:
    e = _event()
    e.tool_call.arguments["obj"] = object()
    with pytest.raises(TypeError):
        e.compute_hash()
