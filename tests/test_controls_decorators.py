"""@sequence_validated, @enforce_scope, @scoped_tool, @cost_limited."""

from __future__ import annotations

import asyncio
import math
import threading
from datetime import timedelta
from typing import Any

import pytest

from proxilion._controls_mixin import ControlsMixin
from proxilion._decorators_controls import (
    cost_limited,
    enforce_scope,
    scoped_tool,
    sequence_validated,
)
from proxilion.exceptions import (
    AuthorizationError,
    BudgetExceededError,
    ConfigurationError,
    ScopeViolationError,
    SequenceViolationError,
)
from proxilion.security.cost_limiter import CostLimit, CostLimiter, HybridRateLimiter
from proxilion.security.scope_enforcer import ScopeContext, ScopeEnforcer, get_current_scope
from proxilion.security.sequence_validator import SequenceValidator
from proxilion.types import UserContext

ALICE = UserContext(user_id="alice")


class Host(ControlsMixin):
    def __init__(self, **kwargs: Any) -> None:
        self._init_controls(**kwargs)


def seq_host() -> Host:
    return Host(sequence_validator=SequenceValidator())


# ------------------------------------------------------------------ sequence_validated


class TestSequenceValidated:
    def test_missing_or_bad_user(self) -> None:
        host = seq_host()

        @sequence_validated(host)
        def delete_file(path: str, user: UserContext | None = None) -> str:
            return path

        with pytest.raises(AuthorizationError) as info:
            delete_file("/x")
        assert info.value.user == "unknown"
        assert info.value.resource == "delete_file"
        assert info.value.reason == "No user context provided for sequence validation"
        with pytest.raises(AuthorizationError):
            delete_file("/x", user="alice")  # type: ignore[arg-type]
        with pytest.raises(AuthorizationError):
            delete_file("/x", ALICE)  # positional users are not looked at

    def test_violation_and_recording(self) -> None:
        host = seq_host()
        calls: list[str] = []

        @sequence_validated(host)
        def delete_file(path: str, user: UserContext | None = None) -> str:
            calls.append(path)
            return "deleted"

        @sequence_validated(host, tool_name="confirm_delete")
        def confirm(user: UserContext | None = None) -> bool:
            return True

        with pytest.raises(SequenceViolationError) as info:
            delete_file("/x", user=ALICE)
        err = info.value
        assert err.rule_name == "require_confirm_before_delete"
        assert err.tool_name == "delete_file"
        assert err.required_prior == "confirm_*"
        assert err.violation_type == "require_before"
        assert err.user_id == "alice"
        assert calls == []
        assert confirm(user=ALICE) is True
        assert delete_file("/x", user=ALICE) == "deleted"
        assert [n for n, _ in host.get_tool_history(ALICE)] == ["delete_file", "confirm_delete"]

    def test_failures_and_opt_out_are_not_recorded(self) -> None:
        host = seq_host()

        @sequence_validated(host)
        def confirm_it(user: UserContext | None = None) -> None:
            raise RuntimeError("failed")

        @sequence_validated(host, record_on_success=False)
        def confirm_quietly(user: UserContext | None = None) -> None:
            return None

        with pytest.raises(RuntimeError):
            confirm_it(user=ALICE)
        confirm_quietly(user=ALICE)
        assert host.get_tool_history(ALICE) == []
        assert host.validate_sequence("delete_x", ALICE)[0] is False

    def test_nested_call_sees_the_running_call(self) -> None:
        host = seq_host()

        @sequence_validated(host)
        def send_email(to: str, user: UserContext | None = None) -> str:
            return "sent"

        @sequence_validated(host)
        def read_secret(user: UserContext | None = None) -> str:
            # the agent tries to exfiltrate while the secret read is still running
            return send_email("evil@example.com", user=user)

        with pytest.raises(SequenceViolationError) as info:
            read_secret(user=ALICE)
        assert info.value.rule_name == "forbid_secret_read_then_send"
        assert info.value.forbidden_prior == "read_secret"
        assert host.get_tool_history(ALICE) == []  # the failed read is not recorded
        assert send_email("friend@example.com", user=ALICE) == "sent"

    async def test_parallel_async_tool_calls(self) -> None:
        host = seq_host()
        started = asyncio.Event()
        release = asyncio.Event()

        @sequence_validated(host)
        async def read_secret(user: UserContext | None = None) -> str:
            started.set()
            await release.wait()
            return "s3cr3t"

        @sequence_validated(host)
        async def send_email(user: UserContext | None = None) -> str:
            return "sent"

        reader = asyncio.create_task(read_secret(user=ALICE))
        await started.wait()
        with pytest.raises(SequenceViolationError):
            await send_email(user=ALICE)
        release.set()
        assert await reader == "s3cr3t"
        with pytest.raises(SequenceViolationError):
            await send_email(user=ALICE)
        assert [n for n, _ in host.get_tool_history(ALICE)] == ["read_secret"]

    def test_duck_typed_proxilion(self) -> None:
        class Stub:
            def __init__(self, answer: tuple[bool, Any]) -> None:
                self.answer = answer
                self.recorded: list[tuple[str, str]] = []

            def validate_sequence(self, name: str, user: UserContext) -> tuple[bool, Any]:
                return self.answer

            def record_tool_call(self, name: str, user: UserContext) -> None:
                self.recorded.append((name, user.user_id))

        ok = Stub((True, None))

        @sequence_validated(ok)
        def tool(user: UserContext | None = None) -> int:
            return 1

        assert tool(user=ALICE) == 1
        assert ok.recorded == [("tool", "alice")]

        refuse = Stub((False, None))

        @sequence_validated(refuse)
        def other(user: UserContext | None = None) -> int:
            return 1

        with pytest.raises(SequenceViolationError) as info:
            other(user=ALICE)
        assert info.value.rule_name == "unknown"
        assert refuse.recorded == []

    def test_without_validator_everything_runs(self) -> None:
        host = Host()

        @sequence_validated(host)
        def delete_file(user: UserContext | None = None) -> str:
            return "ok"

        assert delete_file(user=ALICE) == "ok"


# ------------------------------------------------------------------ scopes


class TestScopes:
    def make(self) -> tuple[Host, list[str]]:
        host = Host(scope_enforcer=ScopeEnforcer())
        log: list[str] = []
        return host, log

    def test_nested_tools_checked_without_passing_the_context(self) -> None:
        host, log = self.make()

        @scoped_tool(host, action="delete")
        def delete_user(user_id: str, user: UserContext | None = None) -> None:
            log.append(f"deleted {user_id}")

        @scoped_tool(host, action="read")
        def get_user(user_id: str, user: UserContext | None = None) -> str:
            return user_id

        @enforce_scope(host, "read_only")
        def read_only_handler(user: UserContext | None = None) -> str:
            assert get_user("1", user=user) == "1"
            delete_user("123", user=user)
            return "unreachable"

        @enforce_scope(host, "admin")
        def admin_handler(user: UserContext | None = None) -> str:
            delete_user("123", user=user)
            return "done"

        with pytest.raises(ScopeViolationError) as info:
            read_only_handler(user=ALICE)
        assert info.value.tool_name == "delete_user"
        assert info.value.scope_name == "read_only"
        assert log == []
        assert get_current_scope() is None
        assert admin_handler(user=ALICE) == "done"
        assert log == ["deleted 123"]
        delete_user("9")  # outside any scope: unrestricted
        assert log[-1] == "deleted 9"

    def test_context_injected_only_when_accepted(self) -> None:
        host, _ = self.make()
        seen: list[Any] = []

        @enforce_scope(host, "read_only")
        def explicit(user: UserContext | None = None, _scope_context: Any = None) -> None:
            seen.append(_scope_context)

        @enforce_scope(host, "read_only")
        def var_kwargs(user: UserContext | None = None, **kwargs: Any) -> None:
            seen.append(kwargs.get("_scope_context"))

        @enforce_scope(host, "read_only")
        def plain(user: UserContext | None = None) -> str:
            return "ok"

        explicit(user=ALICE)
        var_kwargs(user=ALICE)
        assert plain(user=ALICE) == "ok"
        assert all(isinstance(ctx, ScopeContext) and ctx.is_closed for ctx in seen)
        assert len(seen) == 2

    def test_explicit_context_is_popped_and_used(self) -> None:
        host, _ = self.make()
        received: list[dict[str, Any]] = []

        @scoped_tool(host, tool_name="update_user", action="write")
        def tool(**kwargs: Any) -> None:
            received.append(kwargs)

        ctx = ScopeContext(host.get_scope_enforcer(), ScopeEnforcer().get_scope("read_write"))  # type: ignore[arg-type]
        tool(_scope_context=ctx, x=1)
        assert received == [{"x": 1}]
        assert ctx.get_calls() == [("update_user", "write")]
        ro = ScopeContext(ScopeEnforcer(), ScopeEnforcer().get_scope("read_only"))
        with pytest.raises(ScopeViolationError):
            tool(_scope_context=ro)

    def test_errors(self) -> None:
        host, _ = self.make()

        @enforce_scope(host, "read_only")
        def handler(user: UserContext | None = None) -> None:
            return None

        with pytest.raises(AuthorizationError) as info:
            handler()
        assert info.value.reason == "No user context provided for scope enforcement"
        no_enforcer = Host()

        @enforce_scope(no_enforcer, "read_only")
        def other(user: UserContext | None = None) -> None:
            return None

        with pytest.raises(ConfigurationError):
            other(user=ALICE)

        @enforce_scope(host, "no_such_scope")
        def third(user: UserContext | None = None) -> None:
            return None

        with pytest.raises(ValueError):
            third(user=ALICE)

    def test_default_action(self) -> None:
        host, _ = self.make()

        @enforce_scope(host, "read_only", action="read")
        def handler(user: UserContext | None = None, _scope_context: Any = None) -> bool:
            assert _scope_context is not None
            return bool(_scope_context.is_tool_allowed("get_user"))

        assert handler(user=ALICE) is True

    def test_context_closed_on_error(self) -> None:
        host, _ = self.make()
        captured: list[Any] = []

        @enforce_scope(host, "admin")
        def handler(user: UserContext | None = None, _scope_context: Any = None) -> None:
            captured.append(_scope_context)
            raise KeyError("boom")

        with pytest.raises(KeyError):
            handler(user=ALICE)
        assert captured[0].is_closed
        assert get_current_scope() is None

    async def test_async(self) -> None:
        host, log = self.make()

        @scoped_tool(host, action="delete")
        async def drop_table(user: UserContext | None = None) -> None:
            log.append("dropped")

        @enforce_scope(host, "read_write")
        async def handler(user: UserContext | None = None) -> None:
            await asyncio.sleep(0)
            await drop_table(user=user)

        @enforce_scope(host, "admin")
        async def admin(user: UserContext | None = None) -> None:
            await drop_table(user=user)

        async def both() -> list[Any]:
            return list(
                await asyncio.gather(handler(user=ALICE), admin(user=ALICE), return_exceptions=True)
            )

        first, second = await both()
        assert isinstance(first, ScopeViolationError)
        assert second is None
        assert log == ["dropped"]


# ------------------------------------------------------------------ cost_limited


def cost_limiter(max_cost: float = 1.0) -> CostLimiter:
    return CostLimiter([CostLimit(max_cost=max_cost, period=timedelta(hours=1), name="h")])


class TestCostLimited:
    def test_allowed_recorded_and_denied(self) -> None:
        limiter = cost_limiter(0.1)

        @cost_limited(limiter, estimate_cost=0.05)
        def call_llm(prompt: str, user: UserContext | None = None) -> str:
            return prompt

        assert call_llm("a", user=ALICE) == "a"
        assert call_llm("b", user=ALICE) == "b"
        assert limiter.get_spend_by_period("alice", 3600) == 0.1
        with pytest.raises(BudgetExceededError) as info:
            call_llm("c", user=ALICE)
        err = info.value
        assert err.limit_type == "cost_limit"
        assert err.current_spend == 0.1
        assert err.limit == 0.1
        assert err.budget_limit == 0.1
        assert err.estimated_cost == 0.05
        assert err.user_id == "alice"
        assert err.message == (
            "Budget exceeded: cost_limit ($0.1000 / $0.1000) - request would add $0.0500"
        )
        assert call_llm("d", user=UserContext(user_id="bob")) == "d"

    def test_failures_are_refunded_and_record_actual(self) -> None:
        limiter = cost_limiter(1.0)

        @cost_limited(limiter, estimate_cost=0.4)
        def flaky(user: UserContext | None = None) -> None:
            raise RuntimeError("api down")

        @cost_limited(limiter, estimate_cost=0.4, record_actual=False)
        def unrecorded(user: UserContext | None = None) -> str:
            return "ok"

        for _ in range(5):
            with pytest.raises(RuntimeError):
                flaky(user=ALICE)
        assert unrecorded(user=ALICE) == "ok"
        assert limiter.get_spend_by_period("alice", 3600) == 0.0

    def test_callable_estimate_and_user_fallbacks(self) -> None:
        limiter = cost_limiter(1.0)
        costs = {"big": 0.9, "small": 0.05}

        @cost_limited(limiter, estimate_cost=lambda model, **kw: costs[model])
        def call_model(model: str, user: Any = None) -> str:
            return model

        assert call_model("big") == "big"
        assert limiter.get_spend_by_period("anonymous", 3600) == 0.9
        assert call_model("small", user="svc-account") == "small"
        assert limiter.get_spend_by_period("svc-account", 3600) == 0.05
        with pytest.raises(BudgetExceededError):
            call_model("big")

    @pytest.mark.parametrize("bad", [math.nan, -0.01, math.inf])
    def test_bad_estimates(self, bad: float) -> None:
        limiter = cost_limiter()
        with pytest.raises(ValueError):
            cost_limited(limiter, estimate_cost=bad)
        calls: list[int] = []

        @cost_limited(limiter, estimate_cost=lambda **kw: bad)
        def tool(user: UserContext | None = None) -> None:
            calls.append(1)

        with pytest.raises(ValueError):
            tool(user=ALICE)
        assert calls == []

    def test_concurrent_calls_cannot_overspend(self) -> None:
        limiter = cost_limiter(1.0)
        gate = threading.Event()
        cond = threading.Condition()
        outcome = {"entered": 0, "denied": 0}

        @cost_limited(limiter, estimate_cost=0.1)
        def slow_call(user: UserContext | None = None) -> None:
            with cond:
                outcome["entered"] += 1
                cond.notify_all()
            assert gate.wait(timeout=30)

        def worker() -> None:
            try:
                slow_call(user=ALICE)
            except BudgetExceededError:
                with cond:
                    outcome["denied"] += 1
                    cond.notify_all()

        threads = [threading.Thread(target=worker) for _ in range(20)]
        for t in threads:
            t.start()
        with cond:
            assert cond.wait_for(lambda: outcome["entered"] + outcome["denied"] == 20, timeout=30)
        gate.set()
        for t in threads:
            t.join()
        assert outcome == {"entered": 10, "denied": 10}
        assert limiter.get_spend_by_period("alice", 3600) == 1.0

    def test_hybrid(self) -> None:
        class Rate:
            def __init__(self) -> None:
                self.left = 2

            def allow_request(self, key: str, cost: int = 1) -> bool:
                self.left -= 1
                return self.left >= 0

        limiter = cost_limiter(1.0)
        hybrid = HybridRateLimiter(cost_limiter=limiter, rate_limiter=Rate())

        @cost_limited(hybrid, estimate_cost=0.3)
        def tool(user: UserContext | None = None) -> str:
            return "ok"

        assert tool(user=ALICE) == "ok"
        assert tool(user=ALICE) == "ok"
        with pytest.raises(BudgetExceededError) as info:
            tool(user=ALICE)  # rate-limited: the reservation is refunded
        assert info.value.current_spend == pytest.approx(0.6)
        assert info.value.limit == 1.0
        assert limiter.get_spend_by_period("alice", 3600) == pytest.approx(0.6)

    def test_duck_typed_limiters(self) -> None:
        class CheckOnly:
            def __init__(self, allowed: bool) -> None:
                self.allowed = allowed
                self.spent: list[tuple[str, float, str]] = []

            def check_limit(self, user_id: str, cost: float) -> Any:
                return type("R", (), {"allowed": self.allowed, "current_spend": 2.0})()

            def record_spend(self, user_id: str, cost: float, tool: str) -> None:
                self.spent.append((user_id, cost, tool))

        class AllowRequest:
            def __init__(self) -> None:
                self.usage: list[tuple[str, float, str]] = []

            def allow_request(self, user_id: str, cost: float) -> tuple[bool, str | None]:
                return cost < 1.0, None

            def record_usage(self, user_id: str, cost: float, tool: str) -> None:
                self.usage.append((user_id, cost, tool))

        ok = CheckOnly(True)

        @cost_limited(ok, estimate_cost=0.2)
        def a(user: UserContext | None = None) -> int:
            return 1

        assert a(user=ALICE) == 1
        assert ok.spent == [("alice", 0.2, "a")]
        no = CheckOnly(False)

        @cost_limited(no, estimate_cost=0.2)
        def b(user: UserContext | None = None) -> int:
            return 1

        with pytest.raises(BudgetExceededError) as info:
            b(user=ALICE)
        assert info.value.current_spend == 2.0
        assert info.value.limit == 0.0
        ar = AllowRequest()

        @cost_limited(ar, estimate_cost=lambda cost, **kw: cost)
        def c(cost: float, user: UserContext | None = None) -> float:
            return cost

        assert c(0.5, user=ALICE) == 0.5
        with pytest.raises(BudgetExceededError):
            c(2.0, user=ALICE)
        assert ar.usage == [("alice", 0.5, "c")]

    async def test_async(self) -> None:
        limiter = cost_limiter(0.5)

        @cost_limited(limiter, estimate_cost=0.25)
        async def call(user: UserContext | None = None) -> str:
            await asyncio.sleep(0)
            return "ok"

        @cost_limited(limiter, estimate_cost=0.25)
        async def fails(user: UserContext | None = None) -> str:
            raise ValueError("x")

        with pytest.raises(ValueError):
            await fails(user=ALICE)
        assert await call(user=ALICE) == "ok"
        assert await call(user=ALICE) == "ok"
        with pytest.raises(BudgetExceededError):
            await call(user=ALICE)

    def test_metadata_preserved(self) -> None:
        @cost_limited(cost_limiter(), estimate_cost=0.01)
        def documented(user: UserContext | None = None) -> None:
            """Docs."""

        assert documented.__name__ == "documented"
        assert documented.__doc__ == "Docs."
