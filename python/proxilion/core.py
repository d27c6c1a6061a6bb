"""The ``Proxilion`` class and the user/agent context helpers (API.md section 3).

Every protected tool call goes through one pipeline (DESIGN.md), each stage a small private
method of :class:`Proxilion` that does nothing while its component is not configured:

1. kill switch gate        ``_stage_kill_switch``      -> EmergencyHaltError
2. input guard             ``_stage_input_guard``      -> InputGuardViolation
3. schema, IDOR, policy    ``_stage_schema``, ``_stage_idor``, ``check``
                                                       -> SchemaValidationError,
                                                          IDORViolationError, AuthorizationError
4. rate limit, breaker     ``_stage_rate_limit``, ``_stage_circuit``
                                                       -> RateLimitExceeded, CircuitOpenError
5. the tool runs
6. output guard            ``_stage_output_guard``     -> OutputGuardViolation
7. behavioral monitor      ``_stage_behavior``
8. audit                   ``_stage_audit`` (in ``finally``: every decision is recorded,
                           allowed or denied, including halts and missing users)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar, cast

from proxilion._controls_mixin import ControlsMixin
from proxilion.audit import (
    AuditEventV2,
    AuditLogger,
    ChainVerificationResult,
    InMemoryAuditLogger,
    LoggerConfig,
)
from proxilion.engines import create_engine
from proxilion.engines.base import BasePolicyEngine
from proxilion.exceptions import (
    AuthorizationError,
    ConfigurationError,
    EmergencyHaltError,
    IDORViolationError,
    InputGuardViolation,
    OutputGuardViolation,
    ProxilionError,
)
from proxilion.guards.input_guard import GuardResult, InputGuard
from proxilion.guards.output_guard import OutputGuard
from proxilion.policies.base import Policy
from proxilion.policies.registry import PolicyRegistry, check_policy_class, check_resource_name
from proxilion.security.behavioral_drift import BehavioralMonitor, DriftDetector
from proxilion.security.circuit_breaker import CircuitBreaker, CircuitBreakerRegistry
from proxilion.security.idor_protection import IDORProtector
from proxilion.security.rate_limiter import RateLimiterMiddleware, TokenBucketRateLimiter
from proxilion.timeouts.manager import TimeoutError as ProxilionTimeoutError
from proxilion.types import AgentContext, AuthorizationResult, UserContext

__all__ = [
    "DEFAULT_CIRCUIT_BREAKER_CONFIG",
    "DEFAULT_RATE_LIMIT_CONFIG",
    "Proxilion",
    "get_current_agent",
    "get_current_user",
]

logger = logging.getLogger("proxilion.core")

F = TypeVar("F", bound=Callable[..., Any])
P = TypeVar("P", bound=type[Policy[Any]])

# -- context helpers (API.md 3.1) ---------------------------------------------------------------

_current_user: ContextVar[UserContext | None] = ContextVar("proxilion_user", default=None)
_current_agent: ContextVar[AgentContext | None] = ContextVar("proxilion_agent", default=None)


def get_current_user() -> UserContext | None:
    """The user set by :meth:`Proxilion.user_context` / :meth:`Proxilion.session` in this
    thread or asyncio task, or None."""
    return _current_user.get()


def get_current_agent() -> AgentContext | None:
    """The agent set by :meth:`Proxilion.agent_context` / :meth:`Proxilion.session` in this
    thread or asyncio task, or None."""
    return _current_agent.get()


def _check_user(user: object, what: str = "user") -> UserContext:
    if not isinstance(user, UserContext):
        raise TypeError(f"{what} must be a UserContext, not {type(user).__name__}")
    return user


def _check_agent(agent: object, what: str = "agent") -> AgentContext:
    if not isinstance(agent, AgentContext):
        raise TypeError(f"{what} must be an AgentContext, not {type(agent).__name__}")
    return agent


def _check_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


def _check_context(context: object) -> dict[str, Any]:
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise TypeError(f"context must be a dict or None, not {type(context).__name__}")
    return context


def _check_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, not {type(value).__name__}")
    return value


def _check_optional_dict(value: object, what: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict or None, not {type(value).__name__}")
    return value


# -- defaults -----------------------------------------------------------------------------------

#: Rate limits used when ``enable_rate_limiting=True`` is given without ``rate_limit_config``
#: (the per-dimension defaults of the original's ``rate_limit_config`` schema).
DEFAULT_RATE_LIMIT_CONFIG: dict[str, Any] = {
    "user": {"capacity": 100, "refill_rate": 10.0},
    "global": {"capacity": 1000, "refill_rate": 100.0},
    "tools": {},
}

#: Circuit breaker settings used when ``circuit_breaker_config`` is None.
DEFAULT_CIRCUIT_BREAKER_CONFIG: dict[str, Any] = {"failure_threshold": 5, "reset_timeout": 30.0}

_LOGGABLE_TYPES = (str, int, float, bool, list, dict, type(None))


class _KillSwitchLike(Protocol):
    """What the kill-switch stage reads (``proxilion.security.KillSwitch`` has it)."""

    @property
    def is_active(self) -> bool: ...

    @property
    def reason(self) -> str | None: ...


_new_object = object.__new__
_set_attribute = object.__setattr__


def _result(allowed: bool, reason: str, policy: str | None = None) -> AuthorizationResult:
    """An :class:`AuthorizationResult` built without the frozen dataclass' ``__init__``
    (which costs about a microsecond per call on the hot path). Same fields, same value."""
    result: AuthorizationResult = _new_object(AuthorizationResult)
    _set_attribute(
        result,
        "__dict__",
        {
            "allowed": allowed,
            "reason": reason,
            "policies_evaluated": [policy] if policy is not None else [],
            "metadata": {},
        },
    )
    return result


def _is_block(action: Any) -> bool:
    return bool(getattr(action, "value", action) == "block")


class _ToolSpec:
    """What one ``@auth.authorize(...)`` decoration fixed: names, switches, parameter map."""

    __slots__ = (
        "action",
        "agent_param",
        "apply_rate_limit",
        "check_circuit_breaker",
        "log_audit",
        "name",
        "positional_names",
        "user_param",
        "validate_schema",
    )

    def __init__(
        self,
        name: str,
        action: str,
        user_param: str,
        agent_param: str,
        validate_schema: bool,
        apply_rate_limit: bool,
        check_circuit_breaker: bool,
        log_audit: bool,
        positional_names: tuple[str, ...],
    ) -> None:
        self.name = name
        self.action = action
        self.user_param = user_param
        self.agent_param = agent_param
        self.validate_schema = validate_schema
        self.apply_rate_limit = apply_rate_limit
        self.check_circuit_breaker = check_circuit_breaker
        self.log_audit = log_audit
        self.positional_names = positional_names


class _Call:
    """State of one protected call, filled in as the pipeline advances (read by the audit)."""

    __slots__ = (
        "agent",
        "auth_result",
        "breaker",
        "breaker_token",
        "context",
        "error",
        "execution_result",
        "started",
        "user",
    )

    def __init__(self) -> None:
        self.breaker: CircuitBreaker | None = None
        self.breaker_token = -1
        self.user: UserContext | None = None
        self.agent: AgentContext | None = None
        self.context: dict[str, Any] | None = None
        self.auth_result: AuthorizationResult | None = None
        self.error: BaseException | None = None
        self.execution_result: dict[str, Any] | None = None
        self.started = 0.0


def _positional_names(func: Callable[..., Any]) -> tuple[str, ...]:
    """Names of the parameters that can be passed positionally (``self``/``cls`` skipped, as
    they are the bound object, not a tool argument)."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return ()
    names: list[str] = []
    for i, p in enumerate(params):
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            break
        names.append("" if i == 0 and p.name in ("self", "cls") else p.name)
    return tuple(names)


class Proxilion(ControlsMixin):
    """Authorization and protection for LLM agent tool calls.

    The constructor takes the original's parameters, in its order, plus five keyword-only
    switches. ``enable_audit``, ``enable_integrity`` and ``enable_rate_limiting`` appear in
    the seed's recommended configuration (the original rejects them with TypeError):

    * ``enable_audit``: None (default) or True records every decision; with no
      ``audit_log_path`` the record is kept in memory (:meth:`get_audit_events`). False turns
      recording off; False together with ``audit_log_path`` is a ConfigurationError.
    * ``audit_max_events`` (ours): keep only the last N events of the in-memory record
      (``InMemoryAuditLogger(max_events=N)``), so a long-running server's memory stays
      bounded; None (default) keeps every event, as the original. Not combinable with
      ``audit_log_path`` (the file log rotates instead) or ``enable_audit=False``.
    * ``enable_rate_limiting``: True with no ``rate_limit_config`` uses
      :data:`DEFAULT_RATE_LIMIT_CONFIG`; False together with a ``rate_limit_config`` is a
      ConfigurationError; None (default) behaves as the original (a config enables it).
    * ``enable_integrity``: declares that decisions must be tamper-evident. Audit entries of
      the file logger are always hash-chained, and conversation-context integrity is provided
      by ``proxilion.security.MemoryIntegrityGuard``; the flag is stored, and combining it with
      ``enable_audit=False`` is a ConfigurationError (integrity without a record is not
      possible).
    * ``kill_switch``: a ``proxilion.security.KillSwitch``; while it is active every decorated
      call fails with :class:`EmergencyHaltError` before any other work (and the halt is
      recorded), and :meth:`check` denies.

    Raises:
        EngineNotAvailableError: ``policy_engine`` is unknown or an optional engine that is not
            installed (``"casbin"``, ``"opa"``).
        TypeError / ConfigurationError: malformed arguments (named in the message).
    """

    def __init__(
        self,
        policy_engine: str = "simple",
        engine_config: dict[str, Any] | None = None,
        audit_log_path: Path | str | None = None,
        rate_limit_config: dict[str, Any] | None = None,
        enable_circuit_breaker: bool = True,
        circuit_breaker_config: dict[str, Any] | None = None,
        enable_idor_protection: bool = True,
        default_deny: bool = True,
        input_guard: InputGuard | None = None,
        output_guard: OutputGuard | None = None,
        sequence_validator: Any = None,
        scope_enforcer: Any = None,
        cost_tracker: Any = None,
        cost_limiter: Any = None,
        session_manager: Any = None,
        session_config: Any = None,
        timeout_manager: Any = None,
        timeout_config: Any = None,
        retry_policy: Any = None,
        graceful_degradation: Any = None,
        enable_degradation: bool = False,
        tool_registry: Any = None,
        *,
        enable_audit: bool | None = None,
        enable_integrity: bool = False,
        enable_rate_limiting: bool | None = None,
        kill_switch: _KillSwitchLike | None = None,
        behavioral_monitor: BehavioralMonitor | DriftDetector | None = None,
        audit_max_events: int | None = None,
    ) -> None:
        # -- validation (fail at construction, never at request time) --------------------------
        _check_str(policy_engine, "policy_engine")
        engine_config = _check_optional_dict(engine_config, "engine_config")
        rate_limit_config = _check_optional_dict(rate_limit_config, "rate_limit_config")
        circuit_breaker_config = _check_optional_dict(
            circuit_breaker_config, "circuit_breaker_config"
        )
        for flag_name, flag in (
            ("enable_circuit_breaker", enable_circuit_breaker),
            ("enable_idor_protection", enable_idor_protection),
            ("default_deny", default_deny),
            ("enable_degradation", enable_degradation),
            ("enable_integrity", enable_integrity),
        ):
            _check_bool(flag, flag_name)
        if enable_audit is not None:
            _check_bool(enable_audit, "enable_audit")
        if enable_rate_limiting is not None:
            _check_bool(enable_rate_limiting, "enable_rate_limiting")
        if audit_log_path is not None and not isinstance(audit_log_path, (str, Path)):
            raise TypeError(
                "audit_log_path must be a str, a pathlib.Path or None, not "
                f"{type(audit_log_path).__name__}"
            )
        if enable_audit is False and audit_log_path is not None:
            raise ConfigurationError(
                "enable_audit", expected="True or None when audit_log_path is given", received=False
            )
        if audit_max_events is not None and (audit_log_path is not None or enable_audit is False):
            raise ConfigurationError(
                "audit_max_events",
                expected="None unless the audit record is kept in memory (no audit_log_path, "
                "enable_audit not False)",
                received=audit_max_events,
            )
        if enable_integrity and enable_audit is False:
            raise ConfigurationError(
                "enable_integrity",
                expected="False when enable_audit=False (integrity needs a record)",
                received=True,
            )
        if enable_rate_limiting is False and rate_limit_config:
            raise ConfigurationError(
                "enable_rate_limiting",
                expected="True or None when rate_limit_config is given",
                received=False,
            )

        # -- engine and registry ---------------------------------------------------------------
        self.policy_engine = policy_engine
        self.engine: BasePolicyEngine = create_engine(policy_engine, engine_config)
        #: Proxilion's own registry (``policy``/``register_policy``), separate from the
        #: engine's, as in the original.
        self.registry = PolicyRegistry()
        self.default_deny = default_deny

        # -- settings (components are built from these) ----------------------------------------
        self.enable_integrity = enable_integrity
        if enable_rate_limiting and not rate_limit_config:
            rate_limit_config = {
                k: dict(v) if isinstance(v, dict) else v
                for k, v in DEFAULT_RATE_LIMIT_CONFIG.items()
            }
        self.rate_limit_config: dict[str, Any] | None = rate_limit_config or None
        self.enable_circuit_breaker = enable_circuit_breaker
        self.circuit_breaker_config: dict[str, Any] = dict(
            circuit_breaker_config
            if circuit_breaker_config is not None
            else DEFAULT_CIRCUIT_BREAKER_CONFIG
        )
        self.enable_idor_protection = enable_idor_protection
        self.enable_degradation = enable_degradation
        self.audit_log_path: Path | None = (
            Path(audit_log_path) if audit_log_path is not None else None
        )
        # Other features' collaborators, kept for the methods that use them.
        self._init_controls(
            sequence_validator=sequence_validator,
            scope_enforcer=scope_enforcer,
            cost_tracker=cost_tracker,
            cost_limiter=cost_limiter,
        )
        self.session_manager = session_manager
        self.session_config = session_config
        self.timeout_manager = timeout_manager
        self.timeout_config = timeout_config
        self.retry_policy = retry_policy
        self.graceful_degradation = graceful_degradation
        self.tool_registry = tool_registry

        # -- pipeline components: each stage is a no-op while its component is None -----------
        self._kill_switch: _KillSwitchLike | None = None
        self.set_kill_switch(kill_switch)
        self._input_guard: InputGuard | None = None
        self._output_guard: OutputGuard | None = None
        self.set_input_guard(input_guard)
        self.set_output_guard(output_guard)
        self._schema_validator: Any = None  # .validate(tool_name, arguments) -> raises
        self._idor: IDORProtector | None = None  # built below, once the audit sink exists
        self._rate_limiter: RateLimiterMiddleware | None = (
            _build_rate_limiter(self.rate_limit_config) if self.rate_limit_config else None
        )
        self._circuit_registry: CircuitBreakerRegistry | None = (
            CircuitBreakerRegistry(self.circuit_breaker_config) if enable_circuit_breaker else None
        )
        self._behavioral_monitor: BehavioralMonitor | DriftDetector | None = None
        self.set_behavioral_monitor(behavioral_monitor)
        self._audit_logger: AuditLogger | InMemoryAuditLogger | None = None
        if enable_audit is not False:
            self._audit_logger = (
                AuditLogger(LoggerConfig.default(self.audit_log_path))
                if self.audit_log_path is not None
                else InMemoryAuditLogger(max_events=audit_max_events)
            )
        if enable_idor_protection:
            # Admin overrides granted on this protector are recorded in this audit log.
            self._idor = IDORProtector(audit_logger=self._audit_logger)

    def __repr__(self) -> str:
        return (
            f"Proxilion(policy_engine={self.policy_engine!r}, "
            f"policies={sorted(self.registry.list_policies())!r}, "
            f"default_deny={self.default_deny})"
        )

    # -- policy registration -------------------------------------------------------------------

    def policy(self, resource_name: str) -> Callable[[P], P]:
        """Class decorator registering a policy for ``resource_name`` (returned unchanged)."""
        name = check_resource_name(resource_name)

        def decorator(policy_class: P) -> P:
            self.register_policy(name, policy_class)
            return policy_class

        return decorator

    def register_policy(self, resource_name: str, policy_class: type[Policy[Any]]) -> None:
        """Register ``policy_class`` for ``resource_name``.

        Raises:
            TypeError: ``resource_name`` is not a str, or ``policy_class`` is not a
                :class:`~proxilion.Policy` subclass.
            ValueError: ``resource_name`` is empty.
        """
        self.registry.register(check_resource_name(resource_name), check_policy_class(policy_class))

    # -- authorization checks --------------------------------------------------------------------

    def check(
        self,
        user: UserContext,
        action: str,
        resource: str,
        context: dict[str, Any] | None = None,
    ) -> AuthorizationResult:
        """Decide whether ``user`` may perform ``action`` on ``resource`` (API.md 3.2).

        1. A registered policy with ``can_<action>`` decides:
           ``"Policy <Cls>.can_<action> returned <v>"``; if it raises:
           ``"Policy evaluation failed: <exc>"`` (denied).
        2. Otherwise the engine decides (the simple engine denies through ``DenyAllPolicy``:
           ``"Policy DenyAllPolicy denied action '<action>'"``).
        3. An engine allow with no policy evaluated is turned into a deny when
           ``default_deny`` is set: ``"No explicit policy found and default_deny is enabled"``.

        While the kill switch is active the answer is a deny (``"Emergency halt active: ..."``).
        Nothing here raises for a policy or engine failure: failures deny. Direct calls are
        not audited (only decorated calls are), as in the original.
        """
        _check_user(user)
        _check_str(action, "action")
        _check_str(resource, "resource")
        return self._decide(user, action, resource, _check_context(context))

    def _decide(
        self, user: UserContext, action: str, resource: str, ctx: dict[str, Any]
    ) -> AuthorizationResult:
        """:meth:`check` on arguments already validated."""
        switch = self._kill_switch
        if switch is not None and switch.is_active:
            return _result(False, f"Emergency halt active: {switch.reason or 'kill switch active'}")
        cls = self.registry.lookup(resource)
        method_name = "can_" + action
        if cls is not None and callable(getattr(cls, method_name, None)):
            cls_name = cls.__name__
            try:
                value = getattr(cls(user, resource), method_name)(ctx)
                return _result(
                    bool(value), f"Policy {cls_name}.{method_name} returned {value}", cls_name
                )
            except Exception as exc:
                return _result(False, f"Policy evaluation failed: {exc}", cls_name)
        try:
            result: object = self.engine.evaluate(user, action, resource, ctx)
        except Exception as exc:
            return _result(False, f"Policy evaluation failed: {exc}")
        if not isinstance(result, AuthorizationResult):
            return _result(
                False, f"Policy evaluation failed: engine returned {type(result).__name__}"
            )
        if result.allowed and self.default_deny and cls is None and not result.policies_evaluated:
            return _result(False, "No explicit policy found and default_deny is enabled")
        return result

    def can(
        self,
        user: UserContext,
        action: str,
        resource: str,
        context: dict[str, Any] | None = None,
    ) -> bool:
        """``check(...).allowed``."""
        return self.check(user, action, resource, context).allowed

    def authorize_or_raise(
        self,
        user: UserContext,
        action: str,
        resource: str,
        context: dict[str, Any] | None = None,
    ) -> AuthorizationResult:
        """``check(...)``, raising :class:`AuthorizationError` on a deny."""
        result = self.check(user, action, resource, context)
        if not result.allowed:
            raise AuthorizationError(
                user=user.user_id, action=action, resource=resource, reason=result.reason
            )
        return result

    async def authorize_with_timeout(
        self,
        user: UserContext,
        action: str,
        resource: str,
        timeout: float | None = None,
        context: dict[str, Any] | None = None,
    ) -> AuthorizationResult:
        """Run :meth:`check` in a worker thread, waiting at most ``timeout`` seconds.

        ``timeout=None`` waits without limit. Raises
        :class:`proxilion.timeouts.manager.TimeoutError` (not a ProxilionError) on expiry, and
        ValueError for a timeout that is not a positive finite number.
        """
        _check_user(user)
        _check_str(action, "action")
        _check_str(resource, "resource")
        _check_context(context)
        if timeout is None:
            return await asyncio.to_thread(self.check, user, action, resource, context)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__}")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a positive finite number, got {timeout!r}")
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self.check, user, action, resource, context), timeout
            )
        except asyncio.TimeoutError:
            raise ProxilionTimeoutError(
                f"Authorization of '{action}' on '{resource}' timed out after {timeout}s",
                operation="authorize",
                timeout=float(timeout),
            ) from None

    # -- context managers ------------------------------------------------------------------------

    @contextmanager
    def user_context(self, user: UserContext) -> Iterator[UserContext]:
        """Make ``user`` the current user inside the block (this thread/task and the tasks it
        creates)."""
        token = _current_user.set(_check_user(user))
        try:
            yield user
        finally:
            _current_user.reset(token)

    @contextmanager
    def agent_context(self, agent: AgentContext) -> Iterator[AgentContext]:
        """Make ``agent`` the current agent inside the block."""
        token = _current_agent.set(_check_agent(agent))
        try:
            yield agent
        finally:
            _current_agent.reset(token)

    @contextmanager
    def session(
        self, user: UserContext, agent: AgentContext | None = None
    ) -> Iterator[tuple[UserContext, AgentContext | None]]:
        """Set the current user and (optionally) agent inside the block."""
        _check_user(user)
        if agent is not None:
            _check_agent(agent)
        user_token = _current_user.set(user)
        agent_token = _current_agent.set(agent)
        try:
            yield user, agent
        finally:
            _current_agent.reset(agent_token)
            _current_user.reset(user_token)

    # -- kill switch -----------------------------------------------------------------------------

    @property
    def kill_switch(self) -> _KillSwitchLike | None:
        """The kill switch consulted before every decorated call, or None."""
        return self._kill_switch

    def set_kill_switch(self, kill_switch: _KillSwitchLike | None) -> None:
        """Attach (or with None, detach) a kill switch (anything with ``is_active`` and
        ``reason``, such as ``proxilion.security.KillSwitch``)."""
        if kill_switch is not None and not (
            hasattr(kill_switch, "is_active") and hasattr(kill_switch, "reason")
        ):
            raise TypeError(
                "kill_switch must have 'is_active' and 'reason' (a KillSwitch), not "
                f"{type(kill_switch).__name__}"
            )
        self._kill_switch = kill_switch

    # -- guards ----------------------------------------------------------------------------------

    @property
    def behavioral_monitor(self) -> BehavioralMonitor | DriftDetector | None:
        """The monitor of stage 7 (None when not configured)."""
        return self._behavioral_monitor

    def set_behavioral_monitor(self, monitor: BehavioralMonitor | DriftDetector | None) -> None:
        """Set or (None) remove the behavioral monitor of stage 7.

        Every decorated call that ran is recorded (tool name, loggable arguments, latency).
        With a :class:`~proxilion.security.behavioral_drift.DriftDetector`, drift is checked
        after each call once its baseline is locked (call ``detector.lock_baseline()`` after a
        representative warm-up: at least a minute and a hundred calls); severe drift then
        activates the detector's kill switch, which halts every later call at stage 1. So the
        detector's switch must be this Proxilion's: with
        no ``kill_switch`` configured, the detector's is adopted; a different one is a
        :class:`ConfigurationError` (a halt that does not stop calls would fail open).
        """
        if monitor is not None and not isinstance(monitor, (BehavioralMonitor, DriftDetector)):
            raise TypeError(
                "behavioral_monitor must be a BehavioralMonitor or DriftDetector, not "
                f"{type(monitor).__name__}"
            )
        if isinstance(monitor, DriftDetector):
            if self._kill_switch is None:
                self.set_kill_switch(monitor.kill_switch)
            elif self._kill_switch is not monitor.kill_switch:
                raise ConfigurationError(
                    "behavioral_monitor",
                    expected="a DriftDetector sharing this Proxilion's kill_switch "
                    "(DriftDetector(..., kill_switch=switch))",
                    received=monitor,
                )
        self._behavioral_monitor = monitor

    def set_input_guard(self, guard: InputGuard | None) -> None:
        """Set or (None) remove the input guard (stage 2: every string argument of a decorated
        call is checked; a failed check whose action is BLOCK raises InputGuardViolation).
        Duck-typed guards with ``check(text, context)`` are accepted."""
        if guard is not None and not callable(getattr(guard, "check", None)):
            raise TypeError(f"input guard must have a check() method, not {type(guard).__name__}")
        self._input_guard = guard

    def set_output_guard(self, guard: OutputGuard | None) -> None:
        """Set or (None) remove the output guard (stage 6: a string result is checked; a
        failed check whose action is BLOCK raises OutputGuardViolation). Duck-typed guards
        with ``check(text, context)`` and ``redact(text)`` are accepted."""
        if guard is not None and not callable(getattr(guard, "check", None)):
            raise TypeError(f"output guard must have a check() method, not {type(guard).__name__}")
        self._output_guard = guard

    def guard_input(
        self,
        input_text: str,
        context: dict[str, Any] | None = None,
        raise_on_block: bool = False,
    ) -> GuardResult:
        """Check ``input_text`` with the input guard and return its ``GuardResult``.

        With no guard configured the result is passed with action ALLOW. Raises
        :class:`InputGuardViolation` only when ``raise_on_block`` is set, the check failed and
        the guard's action is BLOCK.
        """
        _check_str(input_text, "input_text")
        guard = self._input_guard
        if guard is None:
            return GuardResult.allow()
        result = guard.check(input_text, context)
        if raise_on_block and not result.passed and _is_block(result.action):
            raise InputGuardViolation(
                list(result.matched_patterns), result.risk_score, input_preview=input_text[:200]
            )
        return result

    def guard_output(
        self,
        output_text: str,
        context: dict[str, Any] | None = None,
        raise_on_block: bool = False,
        auto_redact: bool = False,
    ) -> GuardResult:
        """Check ``output_text`` with the output guard (same rules as :meth:`guard_input`).
        With ``auto_redact`` and a failed check, the redacted text is put in
        ``result.sanitized_input``."""
        _check_str(output_text, "output_text")
        guard = self._output_guard
        if guard is None:
            return GuardResult.allow()
        result = guard.check(output_text, context)
        if not result.passed and auto_redact:
            result.sanitized_input = guard.redact(output_text)
        if raise_on_block and not result.passed and _is_block(result.action):
            raise OutputGuardViolation(
                list(result.matched_patterns), result.risk_score, input_preview=output_text[:200]
            )
        return result

    def redact_output(self, text: str) -> str:
        """``text`` with the output guard's redactions applied (unchanged with no guard)."""
        _check_str(text, "text")
        guard = self._output_guard
        if guard is None:
            return text
        redacted: str = guard.redact(text)
        return redacted

    # -- IDOR pass-throughs (no-ops while no IDORProtector is configured) ------------------------

    def register_scope(self, user_id: str, resource_type: str, allowed_ids: set[str]) -> None:
        """Declare which ``resource_type`` ids ``user_id`` may reach."""
        if self._idor is not None:
            self._idor.register_scope(user_id, resource_type, allowed_ids)

    @property
    def idor_protector(self) -> IDORProtector | None:
        """The :class:`~proxilion.security.IDORProtector` of stage 3 (None when
        ``enable_idor_protection=False``); admin overrides granted on it are audited here."""
        return self._idor

    def register_id_pattern(self, parameter_name: str, resource_type: str) -> None:
        """Declare that tool argument ``parameter_name`` holds ``resource_type`` ids."""
        if self._idor is not None:
            self._idor.register_id_pattern(parameter_name, resource_type)

    # -- audit -----------------------------------------------------------------------------------

    @property
    def audit_logger(self) -> AuditLogger | InMemoryAuditLogger | None:
        """The audit logger of stage 8 (None with ``enable_audit=False``)."""
        return self._audit_logger

    def get_audit_events(self) -> list[AuditEventV2]:
        """The hash-chained events of the in-memory logger, oldest first (a copy). As in the
        original, ``[]`` for a file logger (read the file, or :meth:`verify_audit_chain`) and
        with audit off."""
        if isinstance(self._audit_logger, InMemoryAuditLogger):
            return self._audit_logger.events
        return []

    def verify_audit_chain(self) -> ChainVerificationResult:
        """Verify the audit hash chain: the file logger re-reads and verifies every file of
        its log on disk; the in-memory logger verifies its chain.

        Raises:
            ConfigurationError: audit is off (``enable_audit=False``).
        """
        if self._audit_logger is None:
            raise ConfigurationError("audit", expected="an audit logger (enable_audit is False)")
        return self._audit_logger.verify()

    def close(self) -> None:
        """Flush and close the audit file, if any."""
        close = getattr(self._audit_logger, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Proxilion:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the decorator ---------------------------------------------------------------------------

    def authorize(
        self,
        action: str,
        resource: str | None = None,
        user_param: str = "user",
        agent_param: str = "agent",
        validate_schema: bool = True,
        apply_rate_limit: bool = True,
        check_circuit_breaker: bool = True,
        log_audit: bool = True,
    ) -> Callable[[F], F]:
        """Protect a tool: every call runs the pipeline described in the module docstring.

        The user is the ``user_param`` argument, else the current user
        (:meth:`user_context`); with neither the call raises
        ``AuthorizationError(user="unknown", ..., reason="No user context provided")``.
        ``resource`` defaults to the function's ``__name__``.

        Deliberate differences from the original (security fixes):

        * each decorated function gets its own resource name (the original rebinds the
          default on the first decoration, so a reused decorator names every tool after the
          first one);
        * an argument passed positionally counts as if passed by keyword: the user is found
          there, and policies, IDOR checks and the audit see it under its parameter name (the
          original looks at keyword arguments only, so positional ids escaped IDOR checks);
        * the kill switch is consulted first, and every decision is recorded, including halts
          and calls with no user (the original records neither);
        * a ``user``/``agent`` argument of the wrong type raises TypeError (recorded too).
        """
        _check_str(action, "action")
        if not action:
            raise ValueError("action must not be empty")
        if resource is not None:
            check_resource_name(resource)
        _check_str(user_param, "user_param")
        _check_str(agent_param, "agent_param")
        for flag_name, flag in (
            ("validate_schema", validate_schema),
            ("apply_rate_limit", apply_rate_limit),
            ("check_circuit_breaker", check_circuit_breaker),
            ("log_audit", log_audit),
        ):
            _check_bool(flag, flag_name)

        def decorator(func: F) -> F:
            if not callable(func):
                raise TypeError(f"authorize() decorates a callable, not {type(func).__name__}")
            name = resource if resource is not None else getattr(func, "__name__", None)
            if not isinstance(name, str) or not name:
                raise TypeError(f"cannot derive a resource name from {func!r}; pass resource=")
            spec = _ToolSpec(
                name=name,
                action=action,
                user_param=user_param,
                agent_param=agent_param,
                validate_schema=validate_schema,
                apply_rate_limit=apply_rate_limit,
                check_circuit_breaker=check_circuit_breaker,
                log_audit=log_audit,
                positional_names=_positional_names(func),
            )
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    call = _Call()
                    try:
                        self._before(spec, call, args, kwargs)
                        try:
                            result = await func(*args, **kwargs)
                        except BaseException as exc:
                            self._after_failure(spec, call, exc)
                            raise
                        return self._after_success(spec, call, result)
                    except BaseException as exc:
                        if call.error is None:
                            call.error = exc
                        raise
                    finally:
                        if spec.log_audit:
                            self._stage_audit(spec, call, args, kwargs)

                return cast(F, async_wrapper)

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                call = _Call()
                try:
                    self._before(spec, call, args, kwargs)
                    try:
                        result = func(*args, **kwargs)
                    except BaseException as exc:
                        self._after_failure(spec, call, exc)
                        raise
                    return self._after_success(spec, call, result)
                except BaseException as exc:
                    if call.error is None:
                        call.error = exc
                    raise
                finally:
                    if spec.log_audit:
                        self._stage_audit(spec, call, args, kwargs)

            return cast(F, wrapper)

        return decorator

    # -- pipeline --------------------------------------------------------------------------------

    @staticmethod
    def _build_context(
        spec: _ToolSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """Keyword arguments, positional ones under their parameter names, and ``_args``."""
        if args and spec.positional_names:
            # zip stops at the shorter: extra *args stay only in "_args".
            context = {n: v for n, v in zip(spec.positional_names, args, strict=False) if n}
            context.update(kwargs)
        else:
            context = dict(kwargs)
        context["_args"] = args
        return context

    def _before(
        self, spec: _ToolSpec, call: _Call, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Stages 1 to 4; each raises to stop the call. (Each optional stage is tested for
        None here rather than in the stage, to keep the unconfigured hot path short.)"""
        if self._kill_switch is not None:
            self._stage_kill_switch()
        context = self._build_context(spec, args, kwargs)
        call.context = context
        user = context.get(spec.user_param)
        if user is None:
            user = _current_user.get()
            if user is None:
                raise AuthorizationError(
                    user="unknown",
                    action=spec.action,
                    resource=spec.name,
                    reason="No user context provided",
                )
        call.user = _check_user(user, f"argument '{spec.user_param}'")
        agent = context.get(spec.agent_param)
        if agent is None:
            agent = _current_agent.get()
        if agent is not None:
            call.agent = _check_agent(agent, f"argument '{spec.agent_param}'")
        if self._input_guard is not None:
            self._stage_input_guard(spec, context)
        if spec.validate_schema and self._schema_validator is not None:
            self._stage_schema(spec, context)
        if self._idor is not None:
            self._stage_idor(call.user, context)
        result = self._decide(call.user, spec.action, spec.name, context)
        call.auth_result = result
        if not result.allowed:
            raise AuthorizationError(
                user=call.user.user_id, action=spec.action, resource=spec.name, reason=result.reason
            )
        if spec.apply_rate_limit and self._rate_limiter is not None:
            self._stage_rate_limit(spec, call.user)
        if spec.check_circuit_breaker and self._circuit_registry is not None:
            self._stage_circuit(spec, call)
        if self._behavioral_monitor is not None:
            call.started = time.perf_counter()

    def _after_success(self, spec: _ToolSpec, call: _Call, result: Any) -> Any:
        """Stages 6 and 7, after the tool returned ``result``."""
        call.execution_result = {"success": True, "result_type": type(result).__name__}
        if call.breaker is not None:
            self._stage_circuit_outcome(call, None)
        if self._output_guard is not None:
            result = self._stage_output_guard(spec, result)
        if self._behavioral_monitor is not None:
            self._stage_behavior(spec, call, None)
        return result

    def _after_failure(self, spec: _ToolSpec, call: _Call, exc: BaseException) -> None:
        """The tool raised ``exc``: record it (type only; messages may hold secrets)."""
        call.error = exc
        call.execution_result = {"success": False, "error_type": type(exc).__name__}
        if call.breaker is not None:
            self._stage_circuit_outcome(call, exc)
        self._stage_behavior(spec, call, exc)

    def _stage_kill_switch(self) -> None:
        """1. Halted? Then nothing else runs."""
        switch = self._kill_switch
        if switch is not None and switch.is_active:
            triggered_by = getattr(switch, "triggered_by", None)
            raise EmergencyHaltError(
                switch.reason or "kill switch active",
                triggered_by if isinstance(triggered_by, str) else "kill_switch",
            )

    def _stage_input_guard(self, spec: _ToolSpec, context: dict[str, Any]) -> None:
        """2. Scan every string argument; a failed check whose action is BLOCK raises."""
        guard = self._input_guard
        if guard is None:
            return
        extra = context["_args"][len(spec.positional_names) :]
        start = len(spec.positional_names)
        items = [*context.items(), *((f"_args[{start + i}]", v) for i, v in enumerate(extra))]
        for key, value in items:
            if isinstance(value, str):
                result = guard.check(value, {"tool": spec.name, "argument": key})
                if not result.passed and _is_block(result.action):
                    raise InputGuardViolation(
                        list(result.matched_patterns), result.risk_score, input_preview=value[:200]
                    )

    def _stage_schema(self, spec: _ToolSpec, context: dict[str, Any]) -> None:
        """3a. Validate the arguments against the tool's registered schema."""
        validator = self._schema_validator
        if validator is not None:
            validator.validate(spec.name, context)

    def _stage_idor(self, user: UserContext, context: dict[str, Any]) -> None:
        """3b. Every registered id argument must be in the user's scope."""
        idor = self._idor
        if idor is None:
            return
        violations = idor.validate_arguments(user.user_id, context)
        if violations:
            _param, resource_type, object_id = violations[0]
            raise IDORViolationError(user.user_id, resource_type, object_id)

    def _stage_rate_limit(self, spec: _ToolSpec, user: UserContext) -> None:
        """4a. After authorization, so denied calls consume no tokens."""
        limiter = self._rate_limiter
        if limiter is not None:
            limiter.check_rate_limit(user.user_id, spec.name)

    def _stage_circuit(self, spec: _ToolSpec, call: _Call) -> None:
        """4b. Refuse while the tool's breaker is open, or half-open with every probe slot
        taken (the original did not enforce the probe limit on this path)."""
        registry = self._circuit_registry
        if registry is None:
            return
        breaker = registry.get(spec.name)
        call.breaker_token = breaker.admit(spec.name)
        call.breaker = breaker

    @staticmethod
    def _stage_circuit_outcome(call: _Call, exc: BaseException | None) -> None:
        """5. Tell the breaker how the call went; Proxilion's own errors (and non-Exception
        exits such as cancellation) are not failures of the tool."""
        breaker = call.breaker
        if breaker is None:
            return
        call.breaker = None
        if exc is None:
            breaker.record_success(call.breaker_token)
        elif isinstance(exc, ProxilionError) or not isinstance(exc, Exception):
            breaker.release(call.breaker_token)
        else:
            breaker.record_failure(exc, call.breaker_token)

    def _stage_output_guard(self, spec: _ToolSpec, result: Any) -> Any:
        """6. Scan a string result; a failed check whose action is BLOCK raises."""
        guard = self._output_guard
        if guard is None or not isinstance(result, str):
            return result
        check = guard.check(result, {"tool": spec.name})
        if not check.passed and _is_block(check.action):
            raise OutputGuardViolation(
                list(check.matched_patterns), check.risk_score, input_preview=result[:200]
            )
        return result

    def _stage_behavior(self, spec: _ToolSpec, call: _Call, exc: BaseException | None) -> None:
        """7. Feed the behavioral monitor; a DriftDetector may trip the kill switch (later
        calls then halt at stage 1). Never raises into the tool's result: a monitor failure
        is logged."""
        monitor = self._behavioral_monitor
        if monitor is None:
            return
        latency_ms = (time.perf_counter() - call.started) * 1000.0
        arguments = _loggable_arguments(call.context) if call.context is not None else None
        try:
            monitor.record_tool_call(spec.name, arguments, latency_ms)
            # Drift is checked once the baseline was locked on purpose (lock_baseline() after
            # a representative warm-up). Checking before would auto-lock it at the 20th call,
            # while the 60 s and 100-call windows are still filling, and a steady agent would
            # later look like drift and be halted.
            if isinstance(monitor, DriftDetector) and monitor.monitor.is_locked:
                monitor.check()
        except EmergencyHaltError as halt:
            logger.critical("behavioral drift halted the agent after '%s': %s", spec.name, halt)
        except Exception:
            logger.exception("behavioral monitor failed for tool '%s'", spec.name)

    def _stage_audit(
        self, spec: _ToolSpec, call: _Call, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """8. One record per decision. Never raises: a logging failure is logged."""
        sink = self._audit_logger
        if sink is None:
            return
        try:
            context = call.context
            if context is None:
                context = self._build_context(spec, args, kwargs)
            user = call.user
            if user is None:
                candidate = context.get(spec.user_param)
                if candidate is None:
                    candidate = _current_user.get()
                user = candidate if isinstance(candidate, UserContext) else None
            agent = call.agent
            auth = call.auth_result
            if auth is not None:
                allowed = auth.allowed
                reason = auth.reason
                policies = auth.policies_evaluated
            else:
                allowed = False
                reason = str(call.error) if call.error is not None else "pre-authorization failure"
                policies = []
            # The logger copies the lists and dicts it keeps (as the original does).
            sink.log_authorization(
                user_id=user.user_id if user is not None else "unknown",
                user_roles=user.roles if user is not None else [],
                tool_name=spec.name,
                tool_arguments=_loggable_arguments(context),
                allowed=allowed,
                reason=reason,
                policies_evaluated=policies,
                session_id=user.session_id if user is not None else None,
                user_attributes=user.attributes if user is not None else {},
                agent_id=agent.agent_id if agent is not None else None,
                agent_capabilities=agent.capabilities if agent is not None else None,
                agent_trust_score=agent.trust_score if agent is not None else None,
                execution_result=call.execution_result,
            )
        except Exception:
            logger.exception("audit logging failed for tool '%s'", spec.name)


def _limit_settings(
    config: dict[str, Any], key: str, default: dict[str, Any], label: str = "rate_limit_config"
) -> TokenBucketRateLimiter:
    section = config.get(key)
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigurationError(
            f"{label}[{key!r}]",
            expected="a dict with capacity/refill_rate",
            received=section,
        )
    unknown = set(section) - {"capacity", "refill_rate"}
    if unknown:
        raise ConfigurationError(
            f"{label}[{key!r}]",
            expected="only the keys 'capacity' and 'refill_rate'",
            received=sorted(unknown),
        )
    return TokenBucketRateLimiter(
        capacity=section.get("capacity", default["capacity"]),
        refill_rate=section.get("refill_rate", default["refill_rate"]),
    )


def _build_rate_limiter(config: dict[str, Any]) -> RateLimiterMiddleware:
    """The :class:`RateLimiterMiddleware` of a ``rate_limit_config`` (API.md 3.2 schema:
    ``user``, ``global`` and ``tools`` sections; a missing sub-key takes its default). Unknown
    keys are a :class:`ConfigurationError`, never silently ignored."""
    unknown = set(config) - {"user", "global", "tools"}
    if unknown:
        raise ConfigurationError(
            "rate_limit_config",
            expected="only the keys 'user', 'global', 'tools'",
            received=sorted(unknown),
        )
    tools = config.get("tools") or {}
    if not isinstance(tools, dict):
        raise ConfigurationError(
            "rate_limit_config['tools']", expected="a dict of tool name -> limits", received=tools
        )
    tool_default = {"capacity": 50, "refill_rate": 5.0}
    return RateLimiterMiddleware(
        user_limit=_limit_settings(config, "user", {"capacity": 100, "refill_rate": 10.0}),
        global_limit=_limit_settings(config, "global", {"capacity": 1000, "refill_rate": 100.0}),
        tool_limits={
            name: _limit_settings(tools, name, tool_default, "rate_limit_config['tools']")
            for name in tools
        },
    )


def _loggable_arguments(context: dict[str, Any]) -> dict[str, Any]:
    """Arguments as recorded: ``_``-prefixed keys dropped, values of other types than
    str/int/float/bool/list/dict/None replaced by ``"<TypeName>"``."""
    return {
        k: (v if isinstance(v, _LOGGABLE_TYPES) else f"<{type(v).__name__}>")
        for k, v in context.items()
        if not k.startswith("_")
    }
