"""@rate_limited: the original's parameters and the seed's (example 9)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from proxilion._decorators_limits import rate_limited
from proxilion.exceptions import RateLimitExceeded
from proxilion.types import AgentContext, UserContext

pytestmark = pytest.mark.backend


class Clock:
    def __init__(self, t: float = 500.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_seed_example_9_101st_call_fails_at_once() -> None:
    clock = Clock()

    # Per-user rate limit (as in the seed, plus an injected clock so the test never sleeps)
    @rate_limited(
        max_calls=100,
        window_seconds=60,
        key_func=lambda user: user.user_id,  # Per-user tracking
        clock=clock,
    )
    async def expensive_operation(user: UserContext) -> str:
        return user.user_id

    alice, bob = UserContext(user_id="alice"), UserContext(user_id="bob")

    async def run() -> None:
        for _ in range(100):
            assert await expensive_operation(user=alice) == "alice"
        with pytest.raises(RateLimitExceeded) as ei:
            await expensive_operation(user=alice)
        e = ei.value
        assert e.retry_after == 0.6
        assert (e.limit_type, e.limit_key, e.user_id, e.limit, e.current_count) == (
            "function",
            "alice",
            "alice",
            100,
            100,
        )
        assert e.window_seconds == 60.0
        assert str(e).startswith(
            "Rate limit exceeded for function (limit: 100). Retry after 0.6 seconds"
        )
        # Positional callers are tracked per user too.
        with pytest.raises(RateLimitExceeded):
            await expensive_operation(alice)
        assert await expensive_operation(bob) == "bob"
        clock.t += 0.6
        assert await expensive_operation(alice) == "alice"
        with pytest.raises(RateLimitExceeded):
            await expensive_operation(alice)

    asyncio.run(run())


def test_seed_example_9_as_written_without_clock() -> None:
    @rate_limited(max_calls=100, window_seconds=60, key_func=lambda user: user.user_id)
    async def expensive_operation(user: UserContext) -> None:
        pass

    user = UserContext(user_id="u1")

    async def run() -> int:
        ok = 0
        for _ in range(101):
            try:
                await expensive_operation(user=user)
                ok += 1
            except RateLimitExceeded as e:
                assert e.retry_after is not None and 0 < e.retry_after <= 0.6
        return ok

    # 100 calls take far less than the 0.6 s one more token needs.
    assert asyncio.run(run()) == 100


def test_original_form_defaults_and_kwargs_key_func() -> None:
    clock = Clock()

    @rate_limited(capacity=2, refill_rate=1.0, clock=clock)
    def tool(user: Any = None, q: str = "") -> str:
        return q

    u = UserContext("carol")
    assert tool(user=u, q="a") == "a" and tool(user=u) == ""
    with pytest.raises(RateLimitExceeded) as ei:
        tool(user=u)
    assert ei.value.limit_value == 2 and ei.value.retry_after == 1.0
    assert ei.value.window_seconds is None
    # No user: one shared "anonymous" bucket (a global limit).
    assert tool() == "" and tool(q="x") == "x"
    with pytest.raises(RateLimitExceeded) as ei:
        tool()
    assert ei.value.limit_key == "anonymous"
    assert tool.rate_limiter.capacity == 2  # type: ignore[attr-defined]

    seen: list[dict[str, Any]] = []

    def by_tenant(kwargs: dict[str, Any]) -> str:
        seen.append(kwargs)
        return str(kwargs["tenant"])

    @rate_limited(capacity=1, refill_rate=1.0, key_func=by_tenant, clock=clock)
    def t2(tenant: str, extra: int = 0) -> None:
        pass

    t2(tenant="acme", extra=1)
    assert seen == [{"tenant": "acme", "extra": 1}]
    t2(tenant="other")
    with pytest.raises(RateLimitExceeded) as ei:
        t2(tenant="acme")
    assert ei.value.limit_key == "acme"


def test_key_func_convention_by_parameter_name() -> None:
    clock = Clock()
    got: list[Any] = []

    # Original form, but the lambda names its parameter `user`: it receives the user.
    @rate_limited(capacity=5, refill_rate=1.0, key_func=lambda user: got.append(user) or "k")
    def f(user: UserContext) -> None:
        pass

    u = UserContext("dave")
    f(user=u)
    assert got == [u]

    # Seed form, but the function is named for a kwargs dict: it receives the dict.
    got.clear()

    @rate_limited(max_calls=5, window_seconds=1, key_func=lambda kwargs: got.append(kwargs) or "k")
    def g(user: UserContext) -> None:
        pass

    g(user=u)
    assert got == [{"user": u}]

    # Seed form, other name: the user.
    got.clear()

    @rate_limited(max_calls=5, window_seconds=1, key_func=lambda who: got.append(who) or "k")
    def h(user: UserContext) -> None:
        pass

    h(u)
    assert got == [u]

    # Non-str keys are stringified.
    @rate_limited(max_calls=1, window_seconds=1, key_func=lambda user: 42, clock=clock)
    def i(user: Any = None) -> None:
        pass

    i()
    with pytest.raises(RateLimitExceeded) as ei:
        i()
    assert ei.value.limit_key == "42"


def test_per_agent_and_custom_user_param() -> None:
    clock = Clock()

    @rate_limited(capacity=1, refill_rate=0.5, user_param="agent", clock=clock)
    def act(agent: AgentContext, payload: str = "") -> str:
        return agent.agent_id

    a1, a2 = AgentContext("bot-1"), AgentContext("bot-2")
    assert act(a1) == "bot-1" and act(agent=a2) == "bot-2"
    with pytest.raises(RateLimitExceeded) as ei:
        act(a1)
    assert ei.value.limit_key == "bot-1" and ei.value.retry_after == 2.0

    @rate_limited(capacity=1, refill_rate=1.0, clock=clock)
    def by_name(user: str) -> None:
        pass

    by_name("x")
    by_name(user="y")
    with pytest.raises(RateLimitExceeded):
        by_name("x")


def test_each_decorator_expression_has_its_own_state() -> None:
    clock = Clock()
    shared = rate_limited(capacity=1, refill_rate=1.0, clock=clock)

    @shared
    def a() -> None:
        pass

    @shared
    def b() -> None:
        pass

    @rate_limited(capacity=1, refill_rate=1.0, clock=clock)
    def c() -> None:
        pass

    a()
    with pytest.raises(RateLimitExceeded):
        b()
    c()


def test_refused_call_never_runs_the_function() -> None:
    clock = Clock()
    ran: list[int] = []

    @rate_limited(max_calls=1, window_seconds=10, clock=clock)
    def f(n: int) -> None:
        ran.append(n)

    @rate_limited(max_calls=1, window_seconds=10, clock=clock)
    async def g(n: int) -> None:
        ran.append(n)

    f(1)
    with pytest.raises(RateLimitExceeded):
        f(2)
    asyncio.run(g(3))
    with pytest.raises(RateLimitExceeded):
        asyncio.run(g(4))
    assert ran == [1, 3]
    assert f.__name__ == "f" and g.__name__ == "g"


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"capacity": 0}, ValueError, "capacity must be greater than 0"),
        ({"refill_rate": -1.0}, ValueError, "refill_rate must be greater than 0"),
        ({"max_calls": 10}, ValueError, "max_calls and window_seconds must be given together"),
        ({"window_seconds": 10}, ValueError, "must be given together"),
        (
            {"max_calls": 10, "window_seconds": 1, "capacity": 5},
            ValueError,
            "use either capacity/refill_rate or max_calls/window_seconds, not both",
        ),
        ({"max_calls": 0, "window_seconds": 1}, ValueError, "max_calls must be greater than 0"),
        (
            {"max_calls": 1, "window_seconds": float("nan")},
            ValueError,
            "window_seconds must be greater than 0",
        ),
        ({"key_func": "user_id"}, TypeError, "key_func must be callable, not str"),
        ({"user_param": 3}, TypeError, "user_param must be str, not int"),
    ],
)
def test_invalid_configuration_fails_at_decoration(
    kwargs: dict[str, Any], exc: type[Exception], message: str
) -> None:
    with pytest.raises(exc, match=message):
        rate_limited(**kwargs)


def test_key_func_errors_deny_the_call() -> None:
    ran = []

    @rate_limited(max_calls=5, window_seconds=1, key_func=lambda user: user.user_id)
    def f(user: Any = None) -> None:
        ran.append(1)

    with pytest.raises(AttributeError):
        f()
    assert ran == []
