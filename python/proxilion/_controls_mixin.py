"""The ``Proxilion`` methods of the sequence, scope and cost controls (API.md section 3.2).

:class:`ControlsMixin` is a base class of ``proxilion.Proxilion``. It reads four attributes,
which the ``Proxilion`` constructor sets from its parameters of the same names (call
:meth:`ControlsMixin._init_controls` to validate and wire them):

* ``self._sequence_validator``: :class:`~proxilion.security.sequence_validator.SequenceValidator`
* ``self._scope_enforcer``: :class:`~proxilion.security.scope_enforcer.ScopeEnforcer`
* ``self._cost_tracker``: :class:`~proxilion.observability.cost_tracker.CostTracker`
* ``self._cost_limiter``: :class:`~proxilion.security.cost_limiter.CostLimiter`

Each control is opt-in: without its component, checks allow (as in the original SDK), while
methods that would configure it fail loudly or create it (never silently do nothing).

Differences from the original SDK (deliberate):

* ``add_sequence_rule`` without a validator creates one (with no default rules) and adds the
  rule; the original ignored the rule silently.
* ``validate_scope`` checks against the scope entered in the current thread/task (with
  ``enter_scope`` or ``@enforce_scope``); the original never tracked the current scope and
  always allowed.
* ``check_budget`` consults the cost limiter too when one is configured, not only the cost
  tracker's budget policy.
* ``classify_tool`` returns the classification (the original returned ``None``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from proxilion.exceptions import ConfigurationError
from proxilion.observability.cost_tracker import CostSummary, CostTracker, UsageRecord
from proxilion.security.cost_limiter import CostLimiter, CostLimitResult
from proxilion.security.scope_enforcer import (
    ExecutionScope,
    ScopeBinding,
    ScopeContext,
    ScopeEnforcer,
    ToolClassification,
    get_current_scope,
)
from proxilion.security.sequence_validator import (
    SequenceRule,
    SequenceValidator,
    SequenceViolation,
)
from proxilion.types import UserContext

__all__ = ["ControlsMixin"]


def _user_id(user: object) -> str:
    user_id = getattr(user, "user_id", None)
    if not isinstance(user_id, str) or not user_id:
        raise TypeError(f"user must be a UserContext with a non-empty user_id, got {user!r}")
    return user_id


def _typed(value: object, cls: type, name: str) -> Any:
    if value is not None and not isinstance(value, cls):
        raise TypeError(f"{name} must be a {cls.__name__} or None, not {type(value).__name__}")
    return value


class ControlsMixin:
    """Sequence, scope and cost methods of ``Proxilion``."""

    _sequence_validator: SequenceValidator | None = None
    _scope_enforcer: ScopeEnforcer | None = None
    _cost_tracker: CostTracker | None = None
    _cost_limiter: CostLimiter | None = None

    def _init_controls(
        self,
        sequence_validator: SequenceValidator | None = None,
        scope_enforcer: ScopeEnforcer | None = None,
        cost_tracker: CostTracker | None = None,
        cost_limiter: CostLimiter | None = None,
    ) -> None:
        """Validate and store the four components (for ``Proxilion.__init__``).

        Raises:
            TypeError: a component has the wrong type.
        """
        self._sequence_validator = _typed(
            sequence_validator, SequenceValidator, "sequence_validator"
        )
        self._scope_enforcer = _typed(scope_enforcer, ScopeEnforcer, "scope_enforcer")
        self._cost_tracker = _typed(cost_tracker, CostTracker, "cost_tracker")
        self._cost_limiter = _typed(cost_limiter, CostLimiter, "cost_limiter")
        if self._cost_limiter is not None and self._cost_tracker is not None:
            self._cost_limiter.set_cost_tracker(self._cost_tracker)

    # ==================================================================== sequences

    def validate_sequence(
        self, tool_name: str, user: UserContext
    ) -> tuple[bool, SequenceViolation | None]:
        """May ``user`` call ``tool_name`` now, given their recent calls?

        Returns ``(True, None)`` when no sequence validator is configured.
        """
        if self._sequence_validator is None:
            return True, None
        return self._sequence_validator.validate_call(tool_name, _user_id(user))

    def record_tool_call(self, tool_name: str, user: UserContext) -> None:
        """Record a completed call in the user's history (no-op without a validator)."""
        if self._sequence_validator is not None:
            self._sequence_validator.record_call(tool_name, _user_id(user))

    def add_sequence_rule(self, rule: SequenceRule) -> None:
        """Add (or replace by name) a rule; creates a validator without defaults if needed."""
        if self._sequence_validator is None:
            self._sequence_validator = SequenceValidator(include_defaults=False)
        self._sequence_validator.add_rule(rule)

    def remove_sequence_rule(self, name: str) -> bool:
        if self._sequence_validator is None:
            return False
        return self._sequence_validator.remove_rule(name)

    def get_tool_history(
        self, user: UserContext, limit: int | None = None
    ) -> list[tuple[str, datetime]]:
        """``(tool_name, timestamp)`` pairs, most recent first."""
        if self._sequence_validator is None:
            return []
        return self._sequence_validator.get_history(_user_id(user), limit)

    def clear_tool_history(self, user: UserContext | None = None) -> None:
        """Forget one user's history (or everyone's)."""
        if self._sequence_validator is not None:
            self._sequence_validator.clear_history(None if user is None else _user_id(user))

    def set_sequence_validator(self, validator: SequenceValidator | None) -> None:
        self._sequence_validator = _typed(validator, SequenceValidator, "validator")

    def get_sequence_validator(self) -> SequenceValidator | None:
        return self._sequence_validator

    # ==================================================================== scopes

    def _require_enforcer(self) -> ScopeEnforcer:
        if self._scope_enforcer is None:
            raise ConfigurationError(
                "scope_enforcer",
                "a ScopeEnforcer (pass scope_enforcer= to Proxilion or call set_scope_enforcer)",
            )
        return self._scope_enforcer

    def enter_scope(
        self, scope: ExecutionScope | str | ScopeBinding, user: UserContext
    ) -> ScopeContext:
        """Enter a scope for ``user``; it becomes the current scope until ``ctx.close()``.

        Raises:
            ConfigurationError: no scope enforcer is configured (a ``ProxilionError``).
            ValueError: unknown scope name.
        """
        enforcer = self._require_enforcer()
        _user_id(user)
        if isinstance(scope, ScopeBinding):
            binding = scope
        elif isinstance(scope, ExecutionScope):
            binding = enforcer.create_scope_from_enum(scope)
        else:
            binding = enforcer.get_scope(scope)
        return ScopeContext(enforcer, binding, user).activate()

    def validate_scope(self, tool_name: str, action: str = "execute") -> tuple[bool, str | None]:
        """Check a tool against the scope entered in this thread/task (allowed if none)."""
        ctx = get_current_scope()
        if ctx is None:
            return True, None
        return ctx.enforcer.validate_in_scope(tool_name, action, ctx.scope)

    def set_scope_enforcer(self, enforcer: ScopeEnforcer | None) -> None:
        self._scope_enforcer = _typed(enforcer, ScopeEnforcer, "enforcer")

    def get_scope_enforcer(self) -> ScopeEnforcer | None:
        return self._scope_enforcer

    def create_scope(
        self,
        name: str,
        allowed_tools: set[str] | None = None,
        denied_tools: set[str] | None = None,
        allowed_actions: set[str] | None = None,
        denied_actions: set[str] | None = None,
        description: str = "",
    ) -> ScopeBinding:
        """Create and register a custom scope (see ``ScopeEnforcer.create_scope``)."""
        return self._require_enforcer().create_scope(
            name=name,
            allowed_tools=allowed_tools,
            denied_tools=denied_tools,
            allowed_actions=allowed_actions,
            denied_actions=denied_actions,
            description=description,
        )

    def classify_tool(
        self,
        tool_name: str,
        scope: ExecutionScope | None = None,
        actions: set[str] | None = None,
    ) -> ToolClassification:
        """Classify a tool (explicitly when ``scope`` is given) and return the result."""
        return self._require_enforcer().classify_tool(tool_name, scope, actions)

    # ==================================================================== costs

    def record_usage(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        tool_name: str | None = None,
        user: UserContext | None = None,
        request_id: str | None = None,
    ) -> UsageRecord | None:
        """Price and record token usage (``None`` without a cost tracker).

        With a cost limiter wired to the tracker, the cost also counts against its limits.
        """
        if self._cost_tracker is None:
            return None
        return self._cost_tracker.record_usage(
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            tool_name=tool_name,
            user_id=None if user is None else _user_id(user),
            request_id=request_id,
        )

    def check_budget(
        self, user: UserContext, estimated_cost: float = 0.0, estimated_tokens: int = 0
    ) -> tuple[bool, str | None]:
        """Would a request stay within the tracker's budget policy and the limiter's limits?

        Returns ``(True, None)`` or ``(False, reason)``; allowed when neither is configured.
        """
        user_id = _user_id(user)
        if self._cost_tracker is not None:
            allowed, reason = self._cost_tracker.check_budget(
                user_id=user_id, estimated_cost=estimated_cost, estimated_tokens=estimated_tokens
            )
            if not allowed:
                return False, reason
        if self._cost_limiter is not None:
            result = self._cost_limiter.check_limit(user_id, estimated_cost)
            if not result.allowed:
                return False, (
                    f"Cost limit '{result.limit_name}' exceeded: ${result.current_spend:.4f} "
                    f"spent + ${result.estimated_cost:.4f} > ${result.limit:.4f}"
                )
        return True, None

    def check_cost_limit(self, user: UserContext, estimated_cost: float) -> CostLimitResult | None:
        """The cost limiter's answer (``None`` without a limiter). Records nothing."""
        if self._cost_limiter is None:
            return None
        return self._cost_limiter.check_limit(_user_id(user), estimated_cost)

    def get_cost_summary(
        self,
        user: UserContext | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> CostSummary | None:
        if self._cost_tracker is None:
            return None
        return self._cost_tracker.get_summary(
            start=start, end=end, user_id=None if user is None else _user_id(user)
        )

    def get_budget_status(self, user: UserContext) -> dict[str, Any]:
        """The tracker's budget status for ``user`` plus, if configured, the limiter's."""
        user_id = _user_id(user)
        if self._cost_tracker is None:
            status: dict[str, Any] = {"cost_tracking_enabled": False}
        else:
            status = self._cost_tracker.get_budget_status(user_id)
            status["cost_tracking_enabled"] = True
        if self._cost_limiter is not None:
            status["cost_limits"] = self._cost_limiter.get_status(user_id)["limits"]
        return status

    def set_cost_tracker(self, tracker: CostTracker | None) -> None:
        self._cost_tracker = _typed(tracker, CostTracker, "tracker")
        if self._cost_limiter is not None:
            self._cost_limiter.set_cost_tracker(tracker)

    def get_cost_tracker(self) -> CostTracker | None:
        return self._cost_tracker

    def set_cost_limiter(self, limiter: CostLimiter | None) -> None:
        self._cost_limiter = _typed(limiter, CostLimiter, "limiter")
        if limiter is not None and self._cost_tracker is not None:
            limiter.set_cost_tracker(self._cost_tracker)

    def get_cost_limiter(self) -> CostLimiter | None:
        return self._cost_limiter
