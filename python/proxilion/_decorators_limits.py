"""``@rate_limited`` and ``@circuit_protected`` (API.md sections 5.1, 5.2; seed examples 9, 10).

Re-exported by ``proxilion.decorators`` and the top-level package. Both decorators accept the
original SDK's parameters *and* the seed's:

* ``rate_limited(capacity=100, refill_rate=10.0, user_param="user", key_func=None)``
  (original) or ``rate_limited(max_calls=100, window_seconds=60, key_func=lambda user: ...)``
  (seed).
* ``circuit_protected(failure_threshold=5, reset_timeout=30.0)`` (original) or
  ``circuit_protected(failure_threshold=5, recovery_timeout=60, half_open_max_calls=1)``
  (seed).

The limiter or breaker is created when the factory is called, so each ``@rate_limited(...)``
expression has its own state, shared by every function that decorator object wraps. Sync and
async functions are both supported (``inspect.iscoroutinefunction``); the check runs before the
function body, and a refused call never runs it.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from proxilion.security.circuit_breaker import CircuitBreaker
from proxilion.security.rate_limiter import (
    DEFAULT_MAX_KEYS,
    TokenBucketRateLimiter,
    _check_count,
    _check_seconds,
    _refusal,
)
from proxilion.types import AgentContext, UserContext

if TYPE_CHECKING:
    from proxilion.security.redis_backend import RedisBackend

__all__ = ["circuit_protected", "rate_limited"]

F = TypeVar("F", bound=Callable[..., Any])

_MISSING: Any = object()
_DICT_PARAM_NAMES = frozenset({"kwargs", "kw", "kws"})


def _key_func_wants_user(key_func: Callable[..., Any], user_param: str, seed_form: bool) -> bool:
    """Whether ``key_func`` takes the user (seed style) rather than the kwargs dict (original).

    Decided once, at decoration time, from the name of its first parameter: ``user`` or
    ``user_param`` -> the user; ``kwargs``/``kw``/``kws`` -> the kwargs dict; any other name ->
    the user with the seed's ``max_calls``/``window_seconds`` form, the kwargs dict with the
    original's ``capacity``/``refill_rate`` form.
    """
    try:
        params = list(inspect.signature(key_func).parameters.values())
    except (TypeError, ValueError):
        return seed_form
    if params and params[0].kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        first = params[0].name
        if first in (user_param, "user"):
            return True
        if first in _DICT_PARAM_NAMES:
            return False
    return seed_form


def _positional_index(func: Callable[..., Any], name: str) -> int | None:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    for i, p in enumerate(params):
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.KEYWORD_ONLY):
            return None
        if p.name == name:
            return i
    return None


def _default_key(user: Any) -> str:
    if isinstance(user, UserContext):
        return user.user_id
    if isinstance(user, AgentContext):
        return user.agent_id
    if isinstance(user, str):
        return user
    return "anonymous"


def rate_limited(
    capacity: int = 100,
    refill_rate: float = 10.0,
    user_param: str = "user",
    key_func: Callable[[Any], Any] | None = None,
    *,
    max_calls: int | None = None,
    window_seconds: float | None = None,
    max_keys: int = DEFAULT_MAX_KEYS,
    clock: Callable[[], float] | None = None,
    backend: RedisBackend | str | None = None,
    name: str | None = None,
) -> Callable[[F], F]:
    """Limit calls per user (or per agent, or globally) with a token bucket.

    Original form: a bucket of ``capacity`` tokens refilled at ``refill_rate`` per second.
    Seed form: ``max_calls`` per ``window_seconds``, i.e. a bucket of ``max_calls`` tokens
    refilled at one token per ``window_seconds / max_calls`` seconds. What holds exactly: the
    first ``max_calls`` calls of a key pass at once, and the next one fails immediately with
    :class:`RateLimitExceeded` carrying ``retry_after`` (``window_seconds / max_calls`` after a
    burst); over any ``d`` seconds a key gets at most ``max_calls + floor(d * max_calls /
    window_seconds)`` calls. For "at most N in *any* window" use
    :class:`~proxilion.security.rate_limiter.SlidingWindowRateLimiter`.

    The key of a call:

    1. ``key_func``, given either the user (seed style, ``lambda user: user.user_id``) or the
       kwargs dict (original style, ``lambda kwargs: ...``); which one is decided from the
       name of its first parameter (see below), else from the form used.
    2. Otherwise the ``user_param`` argument: a ``UserContext`` gives its ``user_id`` (per
       user), an ``AgentContext`` its ``agent_id`` (per agent, ``user_param="agent"``), a
       ``str`` itself.
    3. Otherwise ``"anonymous"``: one bucket shared by all such calls (a global limit).

    ``key_func`` gets the user when its first parameter is named ``user`` or ``user_param``,
    the kwargs dict when it is named ``kwargs``/``kw``/``kws``; any other name follows the
    form (seed: user, original: kwargs dict). Unlike the original, the user argument is found
    when passed positionally too (the original looked only at keyword arguments and so put
    every positional caller into the shared ``"anonymous"`` bucket).

    Keyword-only extras: ``max_keys`` (key cap, fail closed), ``clock`` (tests),
    ``backend``/``name`` (a limit shared by every replica through Redis).
    """
    seed_form = max_calls is not None or window_seconds is not None
    if seed_form:
        if max_calls is None or window_seconds is None:
            raise ValueError("max_calls and window_seconds must be given together")
        if capacity != 100 or refill_rate != 10.0:
            raise ValueError(
                "use either capacity/refill_rate or max_calls/window_seconds, not both"
            )
    if not isinstance(user_param, str):
        raise TypeError(f"user_param must be str, not {type(user_param).__name__}")
    if key_func is not None and not callable(key_func):
        raise TypeError(f"key_func must be callable, not {type(key_func).__name__}")

    def build(limiter_name: str | None) -> TokenBucketRateLimiter:
        if seed_form:
            assert max_calls is not None and window_seconds is not None
            return TokenBucketRateLimiter.from_window(
                max_calls,
                window_seconds,
                max_keys=max_keys,
                clock=clock,
                backend=backend,
                name=limiter_name,
            )
        return TokenBucketRateLimiter(
            capacity,
            refill_rate,
            max_keys=max_keys,
            clock=clock,
            backend=backend,
            name=limiter_name,
        )

    # Invalid values fail here, at decoration time. A Redis limiter without a name is named
    # after the first function it wraps.
    limiter_box: list[TokenBucketRateLimiter] = []
    if backend is None or name is not None:
        limiter_box.append(build(name))
    elif seed_form:  # validate now; Redis is touched only when the function is wrapped
        _check_count(max_calls, "max_calls")
        _check_seconds(window_seconds, "window_seconds")
    else:
        _check_count(capacity, "capacity")
        _check_seconds(refill_rate, "refill_rate")
    wants_user = (
        _key_func_wants_user(key_func, user_param, seed_form) if key_func is not None else True
    )
    window = float(window_seconds) if window_seconds is not None else None

    def decorator(func: F) -> F:
        if not limiter_box:
            limiter_box.append(build(f"fn:{func.__module__}.{func.__qualname__}"))
        limiter = limiter_box[0]
        allow = limiter.allow_request
        pos = _positional_index(func, user_param)

        def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            # Kept flat: this runs on every call.
            if key_func is not None and not wants_user:
                key = key_func(dict(kwargs))
            else:
                user = kwargs.get(user_param, _MISSING)
                if user is _MISSING:
                    user = args[pos] if pos is not None and pos < len(args) else None
                if key_func is not None:
                    key = key_func(user)
                elif type(user) is UserContext:
                    key = user.user_id
                else:
                    key = _default_key(user)
            if type(key) is not str:
                key = str(key)
            if not allow(key):
                raise _refusal("function", limiter, key, 1, key, window)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                check(args, kwargs)
                return await func(*args, **kwargs)

            async_wrapper.rate_limiter = limiter  # type: ignore[attr-defined]
            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check(args, kwargs)
            return func(*args, **kwargs)

        wrapper.rate_limiter = limiter  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorator


def circuit_protected(
    failure_threshold: int = 5,
    reset_timeout: float = 30.0,
    *,
    recovery_timeout: float | None = None,
    half_open_max_calls: int | None = None,
    success_threshold: int = 1,
    excluded_exceptions: tuple[type[BaseException], ...] | None = None,
    exponential_backoff: bool = True,
    max_backoff: float = 300.0,
    clock: Callable[[], float] = time.monotonic,
    breaker: CircuitBreaker | None = None,
) -> Callable[[F], F]:
    """Protect a function with a :class:`CircuitBreaker`.

    ``recovery_timeout`` is the seed's name for ``reset_timeout`` (seconds the circuit stays
    open) and ``half_open_max_calls`` for the breaker's ``half_open_max`` (probe calls allowed
    at a time when half-open; default 1). The other breaker defaults are the original's:
    ``success_threshold=1``, ``exponential_backoff=True`` (the open time doubles after a
    failed probe), ``max_backoff=300``. Pass ``breaker=`` to share one breaker between
    functions. While open, calls raise :class:`CircuitOpenError` without running; the
    function's own exceptions are re-raised and count as failures.
    """
    if recovery_timeout is not None:
        if reset_timeout != 30.0 and reset_timeout != recovery_timeout:
            raise ValueError("reset_timeout and recovery_timeout disagree; give only one")
        reset_timeout = recovery_timeout
    if breaker is None:
        breaker = CircuitBreaker(
            failure_threshold,
            reset_timeout,
            half_open_max=half_open_max_calls if half_open_max_calls is not None else 1,
            success_threshold=success_threshold,
            excluded_exceptions=excluded_exceptions,
            exponential_backoff=exponential_backoff,
            max_backoff=max_backoff,
            clock=clock,
        )
    cb = breaker

    def decorator(func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await cb.call_async(func, *args, **kwargs)

            async_wrapper.circuit_breaker = cb  # type: ignore[attr-defined]
            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return cb.call(func, *args, **kwargs)

        wrapper.circuit_breaker = cb  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorator
