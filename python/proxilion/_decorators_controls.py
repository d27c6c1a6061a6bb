"""Decorators of the sequence, scope and cost controls (API.md section 5.5).

``proxilion.decorators`` and the top-level package re-export :func:`sequence_validated`,
:func:`enforce_scope`, :func:`scoped_tool` and :func:`cost_limited`. Every decorator works
on sync and async functions (``inspect.iscoroutinefunction``), keeps the function's metadata
(``functools.wraps``) and reads the user only from the keyword argument named by
``user_param``.

Differences from the original SDK (deliberate, for security):

* ``@sequence_validated`` on a ``Proxilion`` with a validator checks and marks the call in
  flight in one atomic step, so two concurrent calls (parallel tool calls of one agent turn)
  cannot both pass a rule meant to stop the second. A refusal with no violation details
  still refuses (the original let it through).
* ``@enforce_scope`` passes ``_scope_context`` only to functions that accept it (the
  original's injection made functions without that parameter fail with ``TypeError``), and
  makes the scope current, so ``@scoped_tool`` functions called inside are checked without
  threading the context through by hand.
* ``@cost_limited`` with a :class:`CostLimiter` or :class:`HybridRateLimiter` reserves the
  estimated cost atomically before the call and refunds it if the call raises (or always,
  with ``record_actual=False``): concurrent calls cannot overspend a budget between a check
  and a record. ``BudgetExceededError`` carries the real ``current_spend`` and ``limit``
  (the original reported ``0.0`` for both). Estimates must be finite and non-negative.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from proxilion._controls_mixin import ControlsMixin
from proxilion.exceptions import AuthorizationError, BudgetExceededError, SequenceViolationError
from proxilion.security.cost_limiter import CostLimiter, HybridRateLimiter, check_cost
from proxilion.security.scope_enforcer import ScopeContext, get_current_scope

__all__ = ["cost_limited", "enforce_scope", "scoped_tool", "sequence_validated"]

P = ParamSpec("P")
T = TypeVar("T")

_SCOPE_KWARG = "_scope_context"


def _float(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _user_or_raise(kwargs: dict[str, Any], user_param: str, resource: str, what: str) -> Any:
    user = kwargs.get(user_param)
    if user is None:
        raise AuthorizationError(
            user="unknown",
            action="execute",
            resource=resource,
            reason=f"No user context provided for {what}",
        )
    user_id = getattr(user, "user_id", None)
    if not isinstance(user_id, str) or not user_id:
        raise AuthorizationError(
            user="unknown",
            action="execute",
            resource=resource,
            reason=f"The '{user_param}' argument is not a user context (no user_id)",
        )
    return user


def _violation_error(violation: Any, tool_name: str, user_id: str) -> SequenceViolationError:
    if violation is None:
        return SequenceViolationError(
            rule_name="unknown", tool_name=tool_name, violation_type=None, user_id=user_id
        )
    vtype = getattr(violation, "violation_type", None)
    vtype = getattr(vtype, "value", vtype)
    count = getattr(violation, "consecutive_count", None)
    remaining = getattr(violation, "cooldown_remaining", None)
    return SequenceViolationError(
        rule_name=str(getattr(violation, "rule_name", "unknown")),
        tool_name=tool_name,
        required_prior=getattr(violation, "required_prior", None),
        forbidden_prior=getattr(violation, "forbidden_prior", None),
        violation_type=vtype if isinstance(vtype, str) else None,
        consecutive_count=count if isinstance(count, int) and count else None,
        cooldown_remaining=remaining if isinstance(remaining, (int, float)) else None,
        user_id=user_id,
    )


def sequence_validated(
    proxilion: Any,
    tool_name: str | None = None,
    user_param: str = "user",
    record_on_success: bool = True,
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Check the call against ``proxilion``'s sequence rules before running it.

    Raises:
        AuthorizationError: no user in ``kwargs[user_param]``
            (reason ``"No user context provided for sequence validation"``).
        SequenceViolationError: a rule refused the call.

    After a successful call it is recorded (``record_on_success``).
    """

    def decorator(func: Callable[P, T]) -> Callable[P, T]:
        name = tool_name or func.__name__

        def begin(kwargs: dict[str, Any]) -> tuple[Any, Any]:
            """Validate; returns (user, validator used for the in-flight mark or None)."""
            user = _user_or_raise(kwargs, user_param, name, "sequence validation")
            validator = (
                proxilion._sequence_validator if isinstance(proxilion, ControlsMixin) else None
            )
            if validator is not None:
                allowed, violation = validator.begin_call(name, user.user_id)
            else:
                allowed, violation = proxilion.validate_sequence(name, user)
            if not allowed:
                raise _violation_error(violation, name, user.user_id)
            return user, validator

        def finish(user: Any, validator: Any, success: bool) -> None:
            if validator is not None:
                validator.end_call(name, user.user_id, success=success, record=record_on_success)
            elif success and record_on_success:
                proxilion.record_tool_call(name, user)

        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[..., Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                user, validator = begin(kwargs)
                try:
                    result = await async_func(*args, **kwargs)
                except BaseException:
                    finish(user, validator, False)
                    raise
                finish(user, validator, True)
                return result

            return cast(Callable[P, T], async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            user, validator = begin(kwargs)
            try:
                result = func(*args, **kwargs)
            except BaseException:
                finish(user, validator, False)
                raise
            finish(user, validator, True)
            return result

        return wrapper

    return decorator


def _accepts_kwarg(func: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        or (p.name == name and p.kind is not inspect.Parameter.POSITIONAL_ONLY)
        for p in params
    )


def enforce_scope(
    proxilion: Any,
    scope: Any,
    user_param: str = "user",
    action: str = "execute",
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Run the function inside ``scope`` (a name, ``ExecutionScope`` or ``ScopeBinding``).

    ``ctx = proxilion.enter_scope(scope, user)`` is made current for the call, passed as
    ``_scope_context`` when the function accepts that keyword, and closed afterwards.
    ``action`` becomes the context's default action for checks that give none.

    Raises:
        AuthorizationError: no user in ``kwargs[user_param]``.
        ConfigurationError: ``proxilion`` has no scope enforcer (from ``enter_scope``).
    """

    def decorator(func: Callable[P, T]) -> Callable[P, T]:
        inject = _accepts_kwarg(func, _SCOPE_KWARG)

        def enter(kwargs: dict[str, Any]) -> Any:
            user = _user_or_raise(kwargs, user_param, func.__name__, "scope enforcement")
            ctx = proxilion.enter_scope(scope, user)
            if isinstance(ctx, ScopeContext):
                ctx.default_action = action
            if inject:
                kwargs[_SCOPE_KWARG] = ctx
            return ctx

        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[..., Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                ctx = enter(kwargs)
                try:
                    return await async_func(*args, **kwargs)
                finally:
                    ctx.close()

            return cast(Callable[P, T], async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            ctx = enter(kwargs)
            try:
                return func(*args, **kwargs)
            finally:
                ctx.close()

        return wrapper

    return decorator


def scoped_tool(
    proxilion: Any,
    tool_name: str | None = None,
    action: str = "execute",
    user_param: str = "user",
    scope_context_param: str = _SCOPE_KWARG,
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Check the call against the scope it runs in.

    The scope context is taken (and removed) from ``kwargs[scope_context_param]``, else it
    is the current scope (``get_current_scope()``); with neither, the call is not
    restricted. ``ctx.validate_tool(tool_name or func.__name__, action)`` may raise
    :class:`~proxilion.exceptions.ScopeViolationError`.
    """

    def decorator(func: Callable[P, T]) -> Callable[P, T]:
        name = tool_name or func.__name__

        def check(kwargs: dict[str, Any]) -> None:
            ctx = kwargs.pop(scope_context_param, None)
            if ctx is None:
                ctx = get_current_scope()
            if ctx is not None:
                ctx.validate_tool(name, action)

        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[..., Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                check(kwargs)
                return await async_func(*args, **kwargs)

            return cast(Callable[P, T], async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            check(kwargs)
            return func(*args, **kwargs)

        return wrapper

    return decorator


def cost_limited(
    limiter: Any,
    estimate_cost: Callable[..., float] | float = 0.01,
    user_param: str = "user",
    record_actual: bool = True,
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Refuse the call when its estimated cost does not fit the budget.

    Args:
        limiter: a :class:`CostLimiter`, a :class:`HybridRateLimiter`, or any object with
            ``allow_request(user_id, cost) -> (bool, reason)`` or
            ``check_limit(user_id, cost) -> result with .allowed``.
        estimate_cost: a fixed USD amount, or a callable given the call's arguments.
        user_param: keyword holding the user (its ``user_id``; ``"anonymous"`` if absent).
        record_actual: record the cost when the call succeeds.

    Raises:
        BudgetExceededError: ``limit_type="cost_limit"``, with the spend and the limit.
        ValueError / TypeError: the estimate is not a finite non-negative number.
    """
    fixed = None if callable(estimate_cost) else check_cost(estimate_cost, "estimate_cost")

    def decorator(func: Callable[P, T]) -> Callable[P, T]:
        name = func.__name__

        def user_id_of(kwargs: dict[str, Any]) -> str:
            user = kwargs.get(user_param)
            if user is None:
                return "anonymous"
            user_id = getattr(user, "user_id", None)
            return user_id if isinstance(user_id, str) and user_id else str(user)

        def estimate(args: Any, kwargs: Any) -> float:
            if fixed is not None:
                return fixed
            assert callable(estimate_cost)
            return check_cost(estimate_cost(*args, **kwargs), "estimated cost")

        def refused(user_id: str, cost: float, result: Any = None) -> BudgetExceededError:
            hybrid_costs = limiter.cost_limiter if isinstance(limiter, HybridRateLimiter) else None
            if result is None and hybrid_costs is not None:
                result = hybrid_costs.check_limit(user_id, 0.0, name)
            return BudgetExceededError(
                limit_type="cost_limit",
                current_spend=_float(getattr(result, "current_spend", 0.0)),
                limit=_float(getattr(result, "limit", 0.0)),
                estimated_cost=cost,
                user_id=user_id,
            )

        def before(args: Any, kwargs: dict[str, Any]) -> tuple[str, float, bool]:
            """Check (and reserve when possible); returns (user_id, cost, reserved)."""
            user_id = user_id_of(kwargs)
            cost = estimate(args, kwargs)
            if isinstance(limiter, CostLimiter):
                result = limiter.check_and_record(user_id, cost, name)
                if not result.allowed:
                    raise refused(user_id, cost, result)
                return user_id, cost, True
            if isinstance(limiter, HybridRateLimiter):
                allowed, _reason = limiter.check_and_record(user_id, cost, name)
                if not allowed:
                    raise refused(user_id, cost)
                return user_id, cost, True
            if hasattr(limiter, "allow_request"):
                allowed, _reason = limiter.allow_request(user_id, cost)
                if not allowed:
                    raise refused(user_id, cost)
            else:
                result = limiter.check_limit(user_id, cost)
                if not result.allowed:
                    raise refused(user_id, cost, result)
            return user_id, cost, False

        def after(user_id: str, cost: float, reserved: bool, success: bool) -> None:
            if reserved:
                if not (success and record_actual):
                    limiter.refund(user_id, cost, name)
                return
            if success and record_actual:
                if hasattr(limiter, "record_usage"):
                    limiter.record_usage(user_id, cost, name)
                elif hasattr(limiter, "record_spend"):
                    limiter.record_spend(user_id, cost, name)

        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[..., Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                user_id, cost, reserved = before(args, kwargs)
                try:
                    result = await async_func(*args, **kwargs)
                except BaseException:
                    after(user_id, cost, reserved, False)
                    raise
                after(user_id, cost, reserved, True)
                return result

            return cast(Callable[P, T], async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            user_id, cost, reserved = before(args, kwargs)
            try:
                result = func(*args, **kwargs)
            except BaseException:
                after(user_id, cost, reserved, False)
                raise
            after(user_id, cost, reserved, True)
            return result

        return wrapper

    return decorator
