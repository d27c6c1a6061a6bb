"""Standalone decorators and approval strategies (API.md 5.3, 5.4)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from typing import Any

import pytest

import proxilion
from audit_view import audit_events
from proxilion import (
    AlwaysApproveStrategy,
    AlwaysDenyStrategy,
    ApprovalStrategy,
    AuthorizationError,
    CallbackApprovalStrategy,
    Policy,
    Proxilion,
    QueueApprovalStrategy,
    UserContext,
    authorize,
    authorize_tool_call,
    require_approval,
)

ALICE = UserContext("alice", ["analyst"])


# -- authorize_tool_call ----------------------------------------------------------------------


def test_top_level_authorize_is_the_standalone_factory() -> None:
    assert authorize is authorize_tool_call
    assert proxilion.authorize is proxilion.authorize_tool_call
    assert list(inspect.signature(authorize_tool_call).parameters) == [
        "proxilion",
        "action",
        "resource",
        "user_param",
    ]


def test_authorize_tool_call_defaults_to_execute() -> None:
    auth = Proxilion()

    @auth.policy("search")
    class SearchPolicy(Policy[Any]):
        def can_execute(self, context: dict[str, Any]) -> bool:
            return "analyst" in self.user.roles

    @authorize(auth)
    def search(q: str, user: UserContext | None = None) -> str:
        return q

    @authorize_tool_call(auth, action="read", resource="search", user_param="who")
    def peek(who: UserContext) -> str:
        return "peek"

    assert search("x", user=ALICE) == "x"
    with pytest.raises(AuthorizationError, match="DenyAllPolicy denied action 'read'"):
        peek(who=ALICE)
    events = audit_events(auth)
    assert [(e.tool_name, e.allowed) for e in events] == [("search", True), ("search", False)]


def test_authorize_tool_call_needs_a_proxilion() -> None:
    with pytest.raises(
        TypeError, match="needs a Proxilion instance as its first argument, not str"
    ):
        authorize_tool_call("execute")  # type: ignore[arg-type]


# -- require_approval -------------------------------------------------------------------------


def test_require_approval_denies_by_default() -> None:
    @require_approval()
    def wire_money(amount: int, user: UserContext | None = None) -> int:
        raise AssertionError("must not run")

    with pytest.raises(AuthorizationError) as info:
        wire_money(amount=5, user=ALICE)
    e = info.value
    assert (e.user, e.action, e.resource, e.reason) == (
        "alice",
        "execute",
        "wire_money",
        "Approval denied or timed out",
    )


def test_require_approval_needs_a_user_keyword() -> None:
    @require_approval(AlwaysApproveStrategy())
    def tool(user: Any = None) -> str:
        return "ran"

    for call in (lambda: tool(), lambda: tool(ALICE), lambda: tool(user="alice")):
        with pytest.raises(AuthorizationError) as info:
            call()
        assert (info.value.user, info.value.reason) == (
            "unknown",
            "No user context provided for approval",
        )


def test_always_approve_logs(caplog: pytest.LogCaptureFixture) -> None:
    @require_approval(AlwaysApproveStrategy(), reason_param="why")
    def tool(user: UserContext | None = None, why: str = "") -> str:
        return "ran"

    with caplog.at_level(logging.WARNING, logger="proxilion.decorators"):
        assert tool(user=ALICE, why="because") == "ran"
    assert "approved 'execute' on 'tool' for user 'alice' without review" in caplog.text


def test_callback_strategy_receives_the_request() -> None:
    seen: list[tuple[Any, ...]] = []

    def decide(user: UserContext, action: str, resource: str, context: dict[str, Any]) -> bool:
        seen.append((user.user_id, action, resource, context))
        return context["amount"] < 100

    @require_approval(CallbackApprovalStrategy(decide))
    def pay(amount: int, user: UserContext | None = None) -> int:
        return amount

    assert pay(amount=10, user=ALICE) == 10
    with pytest.raises(AuthorizationError):
        pay(amount=1000, user=ALICE)
    assert seen[0] == ("alice", "execute", "pay", {"amount": 10, "user": ALICE})


def test_callback_must_return_a_bool() -> None:
    strategy = CallbackApprovalStrategy(lambda *a: "yes")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="callback must return a bool, not str"):
        strategy.request_approval(ALICE, "execute", "t", {})

    async def sneaky(*args: Any) -> bool:
        return False

    coro_strategy = CallbackApprovalStrategy(sneaky)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="returned an awaitable; pass coroutine functions"):
        coro_strategy.request_approval(ALICE, "execute", "t", {})


def test_callback_strategy_type_checks() -> None:
    with pytest.raises(TypeError, match="callback must be callable, not int"):
        CallbackApprovalStrategy(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="async_callback must be callable or None, not str"):
        CallbackApprovalStrategy(lambda *a: True, "x")  # type: ignore[arg-type]


async def test_callback_strategy_async_paths() -> None:
    async def approve_small(
        user: UserContext, action: str, resource: str, ctx: dict[str, Any]
    ) -> bool:
        await asyncio.sleep(0)
        return bool(ctx["amount"] < 100)

    strategy = CallbackApprovalStrategy(lambda *a: False, async_callback=approve_small)

    @require_approval(strategy)
    async def pay(amount: int, user: UserContext | None = None) -> int:
        return amount

    assert inspect.iscoroutinefunction(pay)
    assert await pay(amount=1, user=ALICE) == 1
    with pytest.raises(AuthorizationError):
        await pay(amount=500, user=ALICE)
    # without async_callback the sync callback is used
    sync_only = CallbackApprovalStrategy(lambda *a: True)
    assert await sync_only.request_approval_async(ALICE, "execute", "t", {}) is True

    async def bad(*args: Any) -> Any:
        return 1

    with pytest.raises(TypeError, match="async_callback must return a bool, not int"):
        await CallbackApprovalStrategy(lambda *a: True, bad).request_approval_async(
            ALICE, "execute", "t", {}
        )


async def test_always_strategies_async() -> None:
    assert await AlwaysApproveStrategy().request_approval_async(ALICE, "a", "r", {}) is True
    assert await AlwaysDenyStrategy().request_approval_async(ALICE, "a", "r", {}) is False


def test_custom_strategy_answer_must_be_bool() -> None:
    class Truthy(ApprovalStrategy):
        def request_approval(self, user: Any, action: str, resource: str, context: Any) -> bool:
            return "approved"  # type: ignore[return-value]

        async def request_approval_async(
            self, user: Any, action: str, resource: str, context: Any
        ) -> bool:
            return 1  # type: ignore[return-value]

    @require_approval(Truthy())
    def tool(user: UserContext | None = None) -> str:
        return "ran"

    with pytest.raises(TypeError, match=r"Truthy\.request_approval must return a bool, not str"):
        tool(user=ALICE)


def test_require_approval_bad_arguments() -> None:
    with pytest.raises(TypeError, match="strategy must be an ApprovalStrategy, not function"):
        require_approval(lambda *a: True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="user_param must be a str, not int"):
        require_approval(user_param=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="decorates a callable, not str"):
        require_approval()("tool")  # type: ignore[type-var]


def test_approval_strategy_is_abstract() -> None:
    with pytest.raises(TypeError):
        ApprovalStrategy()  # type: ignore[abstract]


# -- QueueApprovalStrategy --------------------------------------------------------------------


def test_queue_approve_from_on_request() -> None:
    strategy = QueueApprovalStrategy(timeout=5, on_request=lambda req: strategy.approve(req["id"]))
    assert strategy.request_approval(ALICE, "execute", "t", {"k": 1}) is True
    assert strategy.pending_requests == []


def test_queue_deny_from_on_request() -> None:
    requests: list[dict[str, Any]] = []

    def reviewer(req: dict[str, Any]) -> None:
        requests.append(req)
        assert strategy.pending_requests == [req]
        strategy.deny(req["id"])

    strategy = QueueApprovalStrategy(timeout=5, on_request=reviewer)
    assert strategy.request_approval(ALICE, "execute", "t", {"k": 1}) is False
    assert strategy.request_approval(ALICE, "execute", "t", {}) is False
    assert requests[0] == {
        "id": "req_1",
        "user_id": "alice",
        "action": "execute",
        "resource": "t",
        "context": {"k": 1},
    }
    assert requests[1]["id"] == "req_2"


def test_queue_approve_from_another_thread() -> None:
    queued = threading.Event()
    strategy = QueueApprovalStrategy(timeout=10, on_request=lambda req: queued.set())
    result: list[bool] = []
    t = threading.Thread(
        target=lambda: result.append(strategy.request_approval(ALICE, "execute", "t", {}))
    )
    t.start()
    assert queued.wait(10)
    (req,) = strategy.pending_requests
    assert strategy.approve(req["id"]) is True
    assert strategy.approve(req["id"]) is False  # already decided
    t.join(10)
    assert result == [True]


def test_queue_timeout_denies() -> None:
    strategy = QueueApprovalStrategy(timeout=0.01)
    assert strategy.request_approval(ALICE, "execute", "t", {}) is False
    assert strategy.pending_requests == []
    assert strategy.approve("req_1") is False  # too late


def test_queue_unknown_ids() -> None:
    strategy = QueueApprovalStrategy()
    assert strategy.approve("req_99") is False
    assert strategy.deny("nope") is False


def test_queue_on_request_failure_denies(caplog: pytest.LogCaptureFixture) -> None:
    def broken(req: dict[str, Any]) -> None:
        raise RuntimeError("pager down")

    strategy = QueueApprovalStrategy(timeout=5, on_request=broken)
    with caplog.at_level(logging.ERROR, logger="proxilion.decorators"):
        assert strategy.request_approval(ALICE, "execute", "t", {}) is False
    assert "on_request callback failed; denying req_1" in caplog.text


def test_queue_ids_are_unique_across_threads() -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def record(req: dict[str, Any]) -> None:
        with lock:
            ids.append(req["id"])
        strategy.approve(req["id"])

    strategy = QueueApprovalStrategy(timeout=5, on_request=record)

    def work() -> None:
        for _ in range(50):
            assert strategy.request_approval(ALICE, "execute", "t", {}) is True

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ids) == sorted(f"req_{i}" for i in range(1, 201))


async def test_queue_async_approve_from_another_thread() -> None:
    queued = threading.Event()
    strategy = QueueApprovalStrategy(timeout=10, on_request=lambda req: queued.set())

    def reviewer() -> None:
        assert queued.wait(10)
        strategy.approve(strategy.pending_requests[0]["id"])

    t = threading.Thread(target=reviewer)
    t.start()
    assert await strategy.request_approval_async(ALICE, "execute", "t", {}) is True
    t.join(10)


async def test_queue_async_deny_and_timeout() -> None:
    strategy = QueueApprovalStrategy(timeout=5, on_request=lambda req: strategy.deny(req["id"]))
    assert await strategy.request_approval_async(ALICE, "execute", "t", {}) is False
    slow = QueueApprovalStrategy(timeout=0.01)
    assert await slow.request_approval_async(ALICE, "execute", "t", {}) is False
    assert slow.pending_requests == []


async def test_queue_with_require_approval_async() -> None:
    strategy = QueueApprovalStrategy(timeout=5, on_request=lambda req: strategy.approve(req["id"]))

    @require_approval(strategy)
    async def deploy(env: str, user: UserContext | None = None) -> str:
        return env

    assert await deploy(env="prod", user=ALICE) == "prod"


@pytest.mark.parametrize(
    ("timeout", "exc", "match"),
    [
        (0, ValueError, "timeout must be a positive finite number, got 0"),
        (-5, ValueError, "got -5"),
        (float("nan"), ValueError, "got nan"),
        ("300", TypeError, "timeout must be a number, not str"),
        (None, TypeError, "not NoneType"),
    ],
)
def test_queue_bad_timeout(timeout: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        QueueApprovalStrategy(timeout=timeout)


def test_queue_bad_on_request() -> None:
    with pytest.raises(TypeError, match="on_request must be callable, not int"):
        QueueApprovalStrategy(on_request=3)  # type: ignore[arg-type]
