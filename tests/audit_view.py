"""Flat views of audit events, for assertions: ``e.allowed`` instead of
``e.data.authorization_allowed`` (the event objects are ``proxilion.audit.AuditEventV2``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def flat(event: Any) -> SimpleNamespace:
    d = event.data
    return SimpleNamespace(
        sequence_number=event.sequence_number,
        timestamp=event.timestamp,
        event_hash=event.event_hash,
        user_id=d.user_id,
        user_roles=d.user_roles,
        tool_name=d.tool_name,
        tool_arguments=d.tool_arguments,
        allowed=d.authorization_allowed,
        reason=d.authorization_reason,
        policies_evaluated=d.policies_evaluated,
        session_id=d.session_id,
        user_attributes=d.user_attributes,
        agent_id=d.agent_id,
        agent_capabilities=d.agent_capabilities,
        agent_trust_score=d.agent_trust_score,
        execution_result=d.execution_result,
    )


def audit_events(auth: Any) -> list[SimpleNamespace]:
    return [flat(e) for e in auth.get_audit_events()]
