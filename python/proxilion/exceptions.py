"""Exception hierarchy of proxilion (API.md section 4).

Every error raised by the library for a security decision is a :class:`ProxilionError`
subclass carrying a human-readable ``message`` and a structured ``details`` dict. ``str(exc)``
is ``message`` followed by ``" | Details: {...}"`` whenever ``details`` is not empty, exactly as
in the original SDK, so log scrapers written for it keep working.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentTrustError",
    "ApprovalRequiredError",
    "AuthorizationError",
    "BehavioralDriftError",
    "BudgetExceededError",
    "CircuitOpenError",
    "ConfigurationError",
    "ContextIntegrityError",
    "EmergencyHaltError",
    "FallbackExhaustedError",
    "GuardViolation",
    "IDORViolationError",
    "InputGuardViolation",
    "IntentHijackError",
    "OutputGuardViolation",
    "PolicyNotFoundError",
    "PolicyViolation",
    "ProxilionError",
    "RateLimitExceeded",
    "SchemaValidationError",
    "ScopeLoaderError",
    "ScopeViolationError",
    "SequenceViolationError",
]


class ProxilionError(Exception):
    """Base class of every proxilion error.

    Attributes:
        message: the human-readable message.
        details: structured context (never contains secret keys).
    """

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        self.message = message
        self.details: dict[str, Any] = details if details is not None else {}
        super().__init__(message)

    def __str__(self) -> str:
        if self.details:
            return f"{self.message} | Details: {self.details}"
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """``{"error_type", "message", "details"}`` for structured logging."""
        return {
            "error_type": type(self).__name__,
            "message": self.message,
            "details": self.details,
        }


class AuthorizationError(ProxilionError):
    """A user or agent may not perform an action on a resource.

    Accepts the original's form ``AuthorizationError(user, action, resource, reason=None,
    suggestions=None)`` and, because the seed's example uses it, a single message:
    ``AuthorizationError("Access denied")``. In the one-argument form the message is the
    reason, and ``user``/``action``/``resource`` are ``"unknown"``.
    """

    def __init__(
        self,
        user: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        reason: str | None = None,
        suggestions: list[str] | None = None,
    ) -> None:
        if user is None and action is None and resource is None and reason is None:
            raise TypeError("AuthorizationError() needs a message, or user, action and resource")
        self.suggestions: list[str] = list(suggestions) if suggestions else []
        if action is None and resource is None and reason is None:
            # Seed form: AuthorizationError("Access denied").
            self.user = "unknown"
            self.action = "unknown"
            self.resource = "unknown"
            self.reason = str(user)
            message = f"Authorization denied: {self.reason}"
        else:
            self.user = "unknown" if user is None else user
            self.action = "unknown" if action is None else action
            self.resource = "unknown" if resource is None else resource
            self.reason = reason if reason is not None else "Authorization denied"
            message = (
                f"Authorization denied: User '{self.user}' cannot perform '{self.action}' "
                f"on resource '{self.resource}'. Reason: {self.reason}"
            )
        if self.suggestions:
            message += " | Suggestions: " + "; ".join(self.suggestions)
        super().__init__(
            message,
            {
                "user": self.user,
                "action": self.action,
                "resource": self.resource,
                "reason": self.reason,
                "suggestions": self.suggestions,
            },
        )


class PolicyViolation(ProxilionError):
    """A policy rule was broken."""

    def __init__(
        self,
        policy_name: str,
        violation_type: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        self.policy_name = policy_name
        self.violation_type = violation_type if violation_type is not None else "policy_check"
        self.context = context
        message = f"Policy violation in '{policy_name}'"
        if violation_type:
            message += f" (type: {violation_type})"
        super().__init__(
            message,
            {
                "policy_name": policy_name,
                "violation_type": self.violation_type,
                "context": context if context is not None else {},
            },
        )


class SchemaValidationError(ProxilionError):
    """Tool arguments do not match the tool's schema."""

    def __init__(
        self,
        tool_name: str,
        field_name: str | None = None,
        expected: str | None = None,
        received: Any = None,
        validation_errors: list[str] | None = None,
    ) -> None:
        self.tool_name = tool_name
        self.field_name = field_name
        self.expected = expected
        self.received = received
        self.validation_errors = validation_errors
        message = f"Schema validation failed for tool '{tool_name}'"
        if field_name:
            message += f": field '{field_name}'"
        if expected:
            message += f" expected {expected}, got {type(received).__name__}"
        super().__init__(
            message,
            {
                "tool_name": tool_name,
                "field_name": field_name,
                "expected": expected,
                "received": str(received) if received is not None else None,
                "validation_errors": validation_errors if validation_errors is not None else [],
            },
        )


class RateLimitExceeded(ProxilionError):
    """A rate limit refused the call; ``retry_after`` says when to try again (seconds)."""

    def __init__(
        self,
        limit_type: str,
        limit_key: str,
        limit_value: int | None = None,
        retry_after: float | None = None,
        *,
        user_id: str | None = None,
        limit: int | None = None,
        current_count: int | None = None,
        window_seconds: float | None = None,
        reset_at: float | None = None,
    ) -> None:
        self.limit_type = limit_type
        self.limit_key = limit_key
        self.limit_value = limit_value
        self.retry_after = retry_after
        self.user_id = user_id
        self.limit = limit if limit is not None else limit_value
        self.current_count = current_count
        self.window_seconds = window_seconds
        self.reset_at = reset_at
        message = f"Rate limit exceeded for {limit_type}"
        if limit_value:
            message += f" (limit: {limit_value})"
        if retry_after:
            message += f". Retry after {retry_after:.1f} seconds"
        super().__init__(
            message,
            {
                "limit_type": limit_type,
                "limit_key": limit_key,
                "limit_value": limit_value,
                "retry_after": retry_after,
                "user_id": user_id,
                "current_count": current_count,
                "window_seconds": window_seconds,
                "reset_at": reset_at,
            },
        )


class CircuitOpenError(ProxilionError):
    """A circuit breaker is open and rejects calls."""

    def __init__(
        self,
        circuit_name: str,
        failure_count: int | None = None,
        reset_timeout: float | None = None,
        last_failure: str | None = None,
    ) -> None:
        self.circuit_name = circuit_name
        self.failure_count = failure_count
        self.reset_timeout = reset_timeout
        self.last_failure = last_failure
        message = f"Circuit breaker '{circuit_name}' is open"
        if failure_count:
            message += f" after {failure_count} failures"
        if reset_timeout:
            message += f". Retry in {reset_timeout:.1f} seconds"
        super().__init__(
            message,
            {
                "circuit_name": circuit_name,
                "failure_count": failure_count,
                "reset_timeout": reset_timeout,
                "last_failure": last_failure,
            },
        )


class ConfigurationError(ProxilionError):
    """A configuration value is missing or invalid."""

    def __init__(self, config_key: str, expected: str | None = None, received: Any = None) -> None:
        self.config_key = config_key
        self.expected = expected
        self.received = received
        message = f"Configuration error for '{config_key}'"
        if expected:
            message += f": expected {expected}"
        if received is not None:
            message += f", got {received!r}"
        super().__init__(
            message,
            {
                "config_key": config_key,
                "expected": expected,
                "received": str(received) if received is not None else None,
            },
        )


class PolicyNotFoundError(ProxilionError):
    """No policy is registered for a resource."""

    def __init__(self, resource: str, available_policies: list[str] | None = None) -> None:
        self.resource = resource
        self.available_policies = available_policies
        message = f"No policy found for resource '{resource}'"
        if available_policies:
            message += f". Available policies: {', '.join(available_policies)}"
        super().__init__(
            message,
            {
                "resource": resource,
                "available_policies": available_policies if available_policies else [],
            },
        )


class IDORViolationError(ProxilionError):
    """A user referenced an object outside their scope (insecure direct object reference)."""

    def __init__(self, user_id: str, resource_type: str, object_id: str) -> None:
        self.user_id = user_id
        self.resource_type = resource_type
        self.object_id = object_id
        self.resource_id = object_id
        super().__init__(
            f"IDOR violation: User '{user_id}' attempted to access {resource_type} "
            f"'{object_id}' without authorization",
            {"user_id": user_id, "resource_type": resource_type, "object_id": object_id},
        )


class GuardViolation(ProxilionError):
    """An input or output guard blocked text."""

    def __init__(
        self,
        guard_type: str,
        matched_patterns: list[str],
        risk_score: float,
        *,
        input_preview: str | None = None,
    ) -> None:
        self.guard_type = guard_type
        self.matched_patterns = matched_patterns
        self.risk_score = risk_score
        self.input_preview = input_preview
        super().__init__(
            f"{guard_type.title()} guard violation: matched {matched_patterns!r}, "
            f"risk={risk_score:.2f}",
            {
                "guard_type": guard_type,
                "matched_patterns": matched_patterns,
                "risk_score": risk_score,
                "input_preview": input_preview,
            },
        )


class InputGuardViolation(GuardViolation):
    """The input guard blocked a prompt or tool argument."""

    def __init__(
        self, matched_patterns: list[str], risk_score: float, *, input_preview: str | None = None
    ) -> None:
        super().__init__("input", matched_patterns, risk_score, input_preview=input_preview)


class OutputGuardViolation(GuardViolation):
    """The output guard blocked a tool result or model output."""

    def __init__(
        self, matched_patterns: list[str], risk_score: float, *, input_preview: str | None = None
    ) -> None:
        super().__init__("output", matched_patterns, risk_score, input_preview=input_preview)


class SequenceViolationError(ProxilionError):
    """A tool call broke a sequence rule (required prior, forbidden prior, repeats, cooldown)."""

    def __init__(
        self,
        rule_name: str,
        tool_name: str,
        required_prior: str | None = None,
        forbidden_prior: str | None = None,
        violation_type: str | None = None,
        consecutive_count: int | None = None,
        cooldown_remaining: float | None = None,
        *,
        user_id: str | None = None,
    ) -> None:
        self.rule_name = rule_name
        self.tool_name = tool_name
        self.required_prior = required_prior
        self.forbidden_prior = forbidden_prior
        self.violation_type = violation_type
        self.consecutive_count = consecutive_count
        self.cooldown_remaining = cooldown_remaining
        self.user_id = user_id
        message = f"Sequence violation: {rule_name}"
        if required_prior:
            message += f" (requires '{required_prior}' before '{tool_name}')"
        elif forbidden_prior:
            message += f" ('{tool_name}' forbidden after '{forbidden_prior}')"
        elif consecutive_count:
            message += f" ('{tool_name}' called {consecutive_count} times consecutively)"
        elif cooldown_remaining:
            message += f" ('{tool_name}' in cooldown, {cooldown_remaining:.1f}s remaining)"
        super().__init__(
            message,
            {
                "rule_name": rule_name,
                "tool_name": tool_name,
                "required_prior": required_prior,
                "forbidden_prior": forbidden_prior,
                "violation_type": violation_type,
                "consecutive_count": consecutive_count,
                "cooldown_remaining": cooldown_remaining,
                "user_id": user_id,
            },
        )


class ScopeViolationError(ProxilionError):
    """A tool is not allowed in the active scope."""

    def __init__(self, tool_name: str, scope_name: str, reason: str | None = None) -> None:
        self.tool_name = tool_name
        self.scope_name = scope_name
        self.reason = reason
        message = f"Tool '{tool_name}' not allowed in scope '{scope_name}'"
        if reason:
            message += f": {reason}"
        super().__init__(
            message, {"tool_name": tool_name, "scope_name": scope_name, "reason": reason}
        )


class BudgetExceededError(ProxilionError):
    """A spending budget would be exceeded."""

    def __init__(
        self,
        limit_type: str,
        current_spend: float,
        limit: float,
        estimated_cost: float | None = None,
        user_id: str | None = None,
    ) -> None:
        self.limit_type = limit_type
        self.current_spend = current_spend
        self.limit = limit
        self.budget_limit = limit
        self.estimated_cost = estimated_cost
        self.user_id = user_id
        message = f"Budget exceeded: {limit_type} (${current_spend:.4f} / ${limit:.4f})"
        if estimated_cost:
            message += f" - request would add ${estimated_cost:.4f}"
        super().__init__(
            message,
            {
                "limit_type": limit_type,
                "current_spend": current_spend,
                "limit": limit,
                "estimated_cost": estimated_cost,
                "user_id": user_id,
            },
        )


class ContextIntegrityError(ProxilionError):
    """Signed conversation context failed verification (tampering, replay, reordering)."""

    def __init__(self, message: str, violations: list[Any] | None = None) -> None:
        self.violations: list[Any] = list(violations) if violations else []
        super().__init__(
            message,
            {
                "violation_count": len(self.violations),
                "violations": [
                    v.to_dict() if callable(getattr(v, "to_dict", None)) else str(v)
                    for v in self.violations
                ],
            },
        )


class IntentHijackError(ProxilionError):
    """A tool call does not fit the signed intent the session started with."""

    def __init__(
        self,
        original_intent: str,
        detected_intent: str,
        confidence: float = 0.0,
        *,
        tool_name: str | None = None,
        allowed_tools: list[str] | None = None,
        user_id: str | None = None,
    ) -> None:
        self.original_intent = original_intent
        self.detected_intent = detected_intent
        self.confidence = confidence
        self.tool_name = tool_name
        self.allowed_tools = allowed_tools
        self.user_id = user_id
        super().__init__(
            f"Intent hijack detected: Original intent was '{original_intent}', but agent "
            f"appears to be doing '{detected_intent}' (confidence: {confidence:.1%})",
            {
                "original_intent": original_intent,
                "detected_intent": detected_intent,
                "confidence": confidence,
                "tool_name": tool_name,
                "allowed_tools": allowed_tools,
                "user_id": user_id,
            },
        )


class AgentTrustError(ProxilionError):
    """An agent-to-agent interaction broke the trust rules."""

    def __init__(self, source_agent: str, target_agent: str, reason: str) -> None:
        self.source_agent = source_agent
        self.target_agent = target_agent
        self.reason = reason
        super().__init__(
            f"Agent trust violation: {source_agent} -> {target_agent}: {reason}",
            {"source_agent": source_agent, "target_agent": target_agent, "reason": reason},
        )


class BehavioralDriftError(ProxilionError):
    """An agent's behaviour drifted from its baseline."""

    def __init__(
        self, metric: str, baseline_value: float, current_value: float, deviation: float
    ) -> None:
        self.metric = metric
        self.baseline_value = baseline_value
        self.current_value = current_value
        self.deviation = deviation
        super().__init__(
            f"Behavioral drift detected: {metric} deviated from baseline "
            f"({baseline_value:.2f} -> {current_value:.2f}, deviation: {deviation:.1f}\u03c3)",
            {
                "metric": metric,
                "baseline_value": baseline_value,
                "current_value": current_value,
                "deviation": deviation,
            },
        )


class EmergencyHaltError(ProxilionError):
    """The kill switch is active: every protected operation is halted."""

    def __init__(self, reason: str, triggered_by: str = "system") -> None:
        self.reason = reason
        self.triggered_by = triggered_by
        super().__init__(
            f"EMERGENCY HALT: {reason} (triggered by: {triggered_by})",
            {"reason": reason, "triggered_by": triggered_by},
        )


class ApprovalRequiredError(ProxilionError):
    """A tool needs human approval before it may run."""

    def __init__(self, tool_name: str, user: str, reason: str | None = None) -> None:
        self.tool_name = tool_name
        self.user = user
        self.reason = reason if reason is not None else "Tool requires approval before execution"
        super().__init__(
            f"Approval required: Tool '{tool_name}' requires approval. {self.reason}",
            {"tool_name": tool_name, "user": user, "reason": self.reason},
        )


class FallbackExhaustedError(ProxilionError):
    """Every fallback of a call failed."""

    def __init__(self, errors: list[tuple[str, Exception]], attempts: int = 0) -> None:
        self.errors = errors
        self.attempts = attempts
        listed = ", ".join(f"{name}: {type(err).__name__}({err})" for name, err in errors)
        super().__init__(
            f"All {len(errors)} fallback attempts failed. Errors: [{listed}]",
            {
                "attempts": attempts,
                "errors": [
                    {"name": name, "type": type(err).__name__, "message": str(err)}
                    for name, err in errors
                ],
            },
        )


class ScopeLoaderError(ProxilionError):
    """A scope loader (which lists the objects a user may access) failed."""

    def __init__(
        self, resource_type: str, user_id: str, original_error: Exception | None = None
    ) -> None:
        self.resource_type = resource_type
        self.user_id = user_id
        self.original_error = original_error
        message = f"Scope loader failed for {resource_type} (user: {user_id})"
        if original_error is not None:
            message += f": {original_error}"
        super().__init__(
            message,
            {
                "resource_type": resource_type,
                "user_id": user_id,
                "original_error": str(original_error) if original_error is not None else None,
            },
        )
