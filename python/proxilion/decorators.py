"""Standalone decorators (API.md section 5) and human-approval strategies.

``authorize_tool_call`` (also exported as ``proxilion.authorize``) wraps
:meth:`proxilion.Proxilion.authorize`. ``require_approval`` asks an :class:`ApprovalStrategy`
before every call; by default every call is denied.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import itertools
import logging
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from proxilion.exceptions import AuthorizationError
from proxilion.types import UserContext

if TYPE_CHECKING:
    from proxilion.core import Proxilion

__all__ = [
    "AlwaysApproveStrategy",
    "AlwaysDenyStrategy",
    "ApprovalStrategy",
    "CallbackApprovalStrategy",
    "QueueApprovalStrategy",
    "authorize_tool_call",
    "circuit_protected",
    "cost_limited",
    "enforce_scope",
    "rate_limited",
    "require_approval",
    "scoped_tool",
    "sequence_validated",
]

logger = logging.getLogger("proxilion.decorators")

F = TypeVar("F", bound=Callable[..., Any])

ApprovalCallback = Callable[[UserContext, str, str, dict[str, Any]], bool]
AsyncApprovalCallback = Callable[[UserContext, str, str, dict[str, Any]], Awaitable[bool]]


def authorize_tool_call(
    proxilion: Proxilion,
    action: str = "execute",
    resource: str | None = None,
    user_param: str = "user",
) -> Callable[[F], F]:
    """``proxilion.authorize(action=action, resource=resource, user_param=user_param)``: every
    other option keeps its default. The top-level ``proxilion.authorize`` is this function.

    Raises:
        TypeError: ``proxilion`` is not a :class:`~proxilion.Proxilion`.
    """
    from proxilion.core import Proxilion

    if not isinstance(proxilion, Proxilion):
        raise TypeError(
            "authorize_tool_call() needs a Proxilion instance as its first argument, not "
            f"{type(proxilion).__name__}"
        )
    return proxilion.authorize(action=action, resource=resource, user_param=user_param)


# -- approval strategies ---------------------------------------------------------------------


def _check_decision(decision: object, source: str) -> bool:
    """An approval must be an actual bool: a truthy object (a string, a forgotten coroutine)
    must never approve by accident."""
    if not isinstance(decision, bool):
        if inspect.isawaitable(decision):
            close = getattr(decision, "close", None)
            if close is not None:
                close()
            raise TypeError(
                f"{source} returned an awaitable; pass coroutine functions as async_callback"
            )
        raise TypeError(f"{source} must return a bool, not {type(decision).__name__}")
    return decision


class ApprovalStrategy(ABC):
    """Decides whether a call may proceed (a human in the loop, a ticket system, ...)."""

    @abstractmethod
    def request_approval(
        self, user: UserContext, action: str, resource: str, context: dict[str, Any]
    ) -> bool:
        """Block until the request is decided; True approves."""

    @abstractmethod
    async def request_approval_async(
        self, user: UserContext, action: str, resource: str, context: dict[str, Any]
    ) -> bool:
        """Async form of :meth:`request_approval`."""


class AlwaysApproveStrategy(ApprovalStrategy):
    """Approves everything (logs a warning each time). For tests and development only."""

    def request_approval(
        self, user: UserContext, action: str, resource: str, context: dict[str, Any]
    ) -> bool:
        logger.warning(
            "AlwaysApproveStrategy approved '%s' on '%s' for user '%s' without review",
            action,
            resource,
            user.user_id,
        )
        return True

    async def request_approval_async(
        self, user: UserContext, action: str, resource: str, context: dict[str, Any]
    ) -> bool:
        return self.request_approval(user, action, resource, context)


class AlwaysDenyStrategy(ApprovalStrategy):
    """Denies everything (the default of :func:`require_approval`)."""

    def request_approval(
        self, user: UserContext, action: str, resource: str, context: dict[str, Any]
    ) -> bool:
        return False

    async def request_approval_async(
        self, user: UserContext, action: str, resource: str, context: dict[str, Any]
    ) -> bool:
        return False


class CallbackApprovalStrategy(ApprovalStrategy):
    """Asks ``callback(user, action, resource, context) -> bool``; the async path awaits
    ``async_callback`` when given, else calls ``callback``.

    Unlike the original, a decision that is not a bool (for example the coroutine an async
    function returns when passed as ``callback``) raises TypeError instead of approving.
    """

    def __init__(
        self,
        callback: ApprovalCallback,
        async_callback: AsyncApprovalCallback | None = None,
    ) -> None:
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        if async_callback is not None and not callable(async_callback):
            raise TypeError(
                f"async_callback must be callable or None, not {type(async_callback).__name__}"
            )
        self.callback = callback
        self.async_callback = async_callback

    def request_approval(
        self, user: UserContext, action: str, resource: str, context: dict[str, Any]
    ) -> bool:
        return _check_decision(self.callback(user, action, resource, context), "callback")

    async def request_approval_async(
        self, user: UserContext, action: str, resource: str, context: dict[str, Any]
    ) -> bool:
        if self.async_callback is not None:
            decision = await self.async_callback(user, action, resource, context)
            return _check_decision(decision, "async_callback")
        return self.request_approval(user, action, resource, context)


@dataclass
class _Pending:
    request: dict[str, Any]
    decision: bool | None = None
    event: threading.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    async_event: asyncio.Event | None = None
    done: bool = field(default=False)


class QueueApprovalStrategy(ApprovalStrategy):
    """Queue requests for a reviewer, who calls :meth:`approve` or :meth:`deny` (from any
    thread); a request not decided within ``timeout`` seconds is denied.

    Args:
        timeout: seconds to wait for a decision (positive, finite).
        on_request: optional ``callback(request_dict)`` run when a request is queued, to
            notify a reviewer (an addition to the original). An exception in it denies the
            request.

    ``pending_requests`` lists ``{"id", "user_id", "action", "resource", "context"}`` dicts;
    ids are ``"req_1"``, ``"req_2"``, ... Unlike the original, the counter and tables are
    guarded by a lock, so concurrent requests never share an id.
    """

    def __init__(
        self,
        timeout: float = 300.0,
        on_request: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number, not {type(timeout).__name__}")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a positive finite number, got {timeout!r}")
        if on_request is not None and not callable(on_request):
            raise TypeError(f"on_request must be callable, not {type(on_request).__name__}")
        self.timeout = float(timeout)
        self.on_request = on_request
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}

    @property
    def pending_requests(self) -> list[dict[str, Any]]:
        """Copies of the undecided requests, oldest first."""
        with self._lock:
            return [dict(p.request) for p in self._pending.values()]

    def _enqueue(
        self,
        user: UserContext,
        action: str,
        resource: str,
        context: dict[str, Any],
        pending_factory: Callable[[dict[str, Any]], _Pending],
    ) -> tuple[str, _Pending]:
        with self._lock:
            request_id = f"req_{next(self._ids)}"
            request = {
                "id": request_id,
                "user_id": user.user_id,
                "action": action,
                "resource": resource,
                "context": context,
            }
            pending = pending_factory(request)
            self._pending[request_id] = pending
        return request_id, pending

    def _notify(self, request_id: str, pending: _Pending) -> None:
        if self.on_request is None:
            return
        try:
            self.on_request(dict(pending.request))
        except Exception:
            logger.exception("on_request callback failed; denying %s", request_id)
            self.deny(request_id)

    def _finish(self, request_id: str, pending: _Pending) -> bool:
        with self._lock:
            self._pending.pop(request_id, None)
            pending.done = True
            decision = pending.decision
        if decision is None:
            logger.warning(
                "Approval request %s timed out after %.3fs; denied", request_id, self.timeout
            )
            return False
        return decision

    def request_approval(
        self, user: UserContext, action: str, resource: str, context: dict[str, Any]
    ) -> bool:
        request_id, pending = self._enqueue(
            user, action, resource, context, lambda r: _Pending(r, event=threading.Event())
        )
        self._notify(request_id, pending)
        assert pending.event is not None
        pending.event.wait(self.timeout)
        return self._finish(request_id, pending)

    async def request_approval_async(
        self, user: UserContext, action: str, resource: str, context: dict[str, Any]
    ) -> bool:
        loop = asyncio.get_running_loop()
        request_id, pending = self._enqueue(
            user,
            action,
            resource,
            context,
            lambda r: _Pending(r, loop=loop, async_event=asyncio.Event()),
        )
        self._notify(request_id, pending)
        assert pending.async_event is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(pending.async_event.wait(), self.timeout)
        return self._finish(request_id, pending)

    def _decide(self, request_id: str, decision: bool) -> bool:
        with self._lock:
            pending = self._pending.get(request_id)
            if pending is None or pending.done or pending.decision is not None:
                return False
            pending.decision = decision
        if pending.event is not None:
            pending.event.set()
        if pending.loop is not None and pending.async_event is not None:
            try:
                pending.loop.call_soon_threadsafe(pending.async_event.set)
            except RuntimeError:  # the loop has closed: the waiter is gone
                return False
        return True

    def approve(self, request_id: str) -> bool:
        """Approve a pending request; False if there is no such undecided request."""
        return self._decide(request_id, True)

    def deny(self, request_id: str) -> bool:
        """Deny a pending request; False if there is no such undecided request."""
        return self._decide(request_id, False)


def require_approval(
    strategy: ApprovalStrategy | None = None,
    reason_param: str = "approval_reason",
    user_param: str = "user",
) -> Callable[[F], F]:
    """Ask ``strategy`` before every call of the decorated tool (action ``"execute"``,
    resource ``func.__name__``).

    With no strategy every call is denied (:class:`AlwaysDenyStrategy`). The user is the
    ``user_param`` keyword argument; when it is not a :class:`UserContext` the call raises
    ``AuthorizationError(user="unknown", ..., reason="No user context provided for
    approval")``; a refusal raises ``AuthorizationError(user_id, "execute", name,
    reason="Approval denied or timed out")``. A strategy answer that is not a bool raises
    TypeError (never approves). ``reason_param`` is accepted, as in the original, and not
    used.
    """
    if strategy is None:
        strategy = AlwaysDenyStrategy()
    if not isinstance(strategy, ApprovalStrategy):
        raise TypeError(f"strategy must be an ApprovalStrategy, not {type(strategy).__name__}")
    if not isinstance(user_param, str):
        raise TypeError(f"user_param must be a str, not {type(user_param).__name__}")
    if not isinstance(reason_param, str):
        raise TypeError(f"reason_param must be a str, not {type(reason_param).__name__}")
    chosen = strategy
    source_sync = f"{type(chosen).__name__}.request_approval"
    source_async = f"{type(chosen).__name__}.request_approval_async"

    def decorator(func: F) -> F:
        if not callable(func):
            raise TypeError(f"require_approval() decorates a callable, not {type(func).__name__}")
        name: str = getattr(func, "__name__", "unknown")

        def user_of(kwargs: dict[str, Any]) -> UserContext:
            user = kwargs.get(user_param)
            if not isinstance(user, UserContext):
                raise AuthorizationError(
                    user="unknown",
                    action="execute",
                    resource=name,
                    reason="No user context provided for approval",
                )
            return user

        def refused(user: UserContext) -> AuthorizationError:
            return AuthorizationError(
                user=user.user_id,
                action="execute",
                resource=name,
                reason="Approval denied or timed out",
            )

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                user = user_of(kwargs)
                decision = await chosen.request_approval_async(user, "execute", name, dict(kwargs))
                if not _check_decision(decision, source_async):
                    raise refused(user)
                return await func(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = user_of(kwargs)
            decision = chosen.request_approval(user, "execute", name, dict(kwargs))
            if not _check_decision(decision, source_sync):
                raise refused(user)
            return func(*args, **kwargs)

        return cast(F, wrapper)

    return decorator


# The decorators of the other controls live beside their engines; they are part of this
# module's public surface, as in the original (imported last: they import nothing from here).
from proxilion._decorators_controls import (  # noqa: E402
    cost_limited,
    enforce_scope,
    scoped_tool,
    sequence_validated,
)
from proxilion._decorators_limits import circuit_protected, rate_limited  # noqa: E402
