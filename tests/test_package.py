"""Top-level package surface (API.md section 0)."""

from __future__ import annotations

import proxilion
from proxilion.core import get_current_agent, get_current_user
from proxilion.decorators import authorize_tool_call
from proxilion.policies.base import Policy

SECTION_0 = [
    "Proxilion",
    "Policy",
    "UserContext",
    "AgentContext",
    "ToolCallRequest",
    "AuthorizationResult",
    "AuditEvent",
    "authorize_tool_call",
    "authorize",
    "require_approval",
    "ApprovalStrategy",
    "AlwaysApproveStrategy",
    "AlwaysDenyStrategy",
    "CallbackApprovalStrategy",
    "QueueApprovalStrategy",
    "get_current_user",
    "get_current_agent",
]


def test_section_0_names_are_exported() -> None:
    for name in SECTION_0:
        assert name in proxilion.__all__, name
        assert getattr(proxilion, name) is not None
    assert len(set(proxilion.__all__)) == len(proxilion.__all__)
    for name in proxilion.__all__:
        assert hasattr(proxilion, name), name


def test_identities() -> None:
    assert proxilion.Policy is Policy
    assert proxilion.authorize is authorize_tool_call
    assert proxilion.get_current_user is get_current_user
    assert proxilion.get_current_agent is get_current_agent


def test_no_guard_security_or_audit_classes_at_top_level() -> None:
    for name in ("InputGuard", "OutputGuard", "KillSwitch", "AuditLogger", "IDORProtector"):
        assert name not in proxilion.__all__


def test_star_import() -> None:
    ns: dict[str, object] = {}
    exec("from proxilion import *", ns)
    assert set(proxilion.__all__) <= set(ns)
