"""The Proxilion methods of the sequence, scope and cost controls (ControlsMixin)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from proxilion._controls_mixin import ControlsMixin
from proxilion.exceptions import ConfigurationError, ProxilionError
from proxilion.observability.cost_tracker import BudgetPolicy, CostTracker, ModelPricing
from proxilion.security.cost_limiter import CostLimit, CostLimiter
from proxilion.security.scope_enforcer import (
    ExecutionScope,
    ScopeEnforcer,
    get_current_scope,
)
from proxilion.security.sequence_validator import SequenceAction, SequenceRule, SequenceValidator
from proxilion.types import UserContext

ALICE = UserContext(user_id="alice", roles=["user"])
BOB = UserContext(user_id="bob")


class Host(ControlsMixin):
    """Stands in for Proxilion: sets the four attributes like its constructor does."""

    def __init__(
        self,
        sequence_validator: Any = None,
        scope_enforcer: Any = None,
        cost_tracker: Any = None,
        cost_limiter: Any = None,
    ) -> None:
        self._sequence_validator = sequence_validator
        self._scope_enforcer = scope_enforcer
        self._cost_tracker = cost_tracker
        self._cost_limiter = cost_limiter


class TestSequences:
    def test_without_validator(self) -> None:
        host = Host()
        assert host.validate_sequence("delete_x", ALICE) == (True, None)
        host.record_tool_call("delete_x", ALICE)
        assert host.get_tool_history(ALICE) == []
        assert host.remove_sequence_rule("x") is False
        host.clear_tool_history()
        assert host.get_sequence_validator() is None

    def test_with_validator(self) -> None:
        host = Host(sequence_validator=SequenceValidator())
        allowed, violation = host.validate_sequence("delete_file", ALICE)
        assert allowed is False
        assert violation is not None
        assert violation.rule_name == "require_confirm_before_delete"
        host.record_tool_call("confirm_delete", ALICE)
        assert host.validate_sequence("delete_file", ALICE) == (True, None)
        assert host.validate_sequence("delete_file", BOB)[0] is False
        host.record_tool_call("delete_file", ALICE)
        assert [name for name, _ in host.get_tool_history(ALICE)] == [
            "delete_file",
            "confirm_delete",
        ]
        assert len(host.get_tool_history(ALICE, limit=1)) == 1
        host.record_tool_call("x", BOB)
        host.clear_tool_history(ALICE)
        assert host.get_tool_history(ALICE) == []
        assert len(host.get_tool_history(BOB)) == 1
        host.clear_tool_history()
        assert host.get_tool_history(BOB) == []
        assert host.remove_sequence_rule("require_confirm_before_delete") is True
        assert host.validate_sequence("delete_file", ALICE) == (True, None)

    def test_add_rule_without_validator_creates_one(self) -> None:
        host = Host()
        host.add_sequence_rule(
            SequenceRule(
                name="require_auth",
                action=SequenceAction.REQUIRE_BEFORE,
                target_pattern="access_*",
                required_pattern="authenticate",
            )
        )
        validator = host.get_sequence_validator()
        assert isinstance(validator, SequenceValidator)
        assert [r.name for r in validator.get_rules()] == ["require_auth"]
        assert host.validate_sequence("access_db", ALICE)[0] is False
        assert host.validate_sequence("delete_x", ALICE)[0] is True  # no default rules

    def test_setters_and_bad_users(self) -> None:
        host = Host()
        validator = SequenceValidator()
        host.set_sequence_validator(validator)
        assert host.get_sequence_validator() is validator
        host.set_sequence_validator(None)
        assert host.get_sequence_validator() is None
        with pytest.raises(TypeError):
            host.set_sequence_validator("strict")  # type: ignore[arg-type]
        host.set_sequence_validator(validator)
        with pytest.raises(TypeError):
            host.validate_sequence("x", "alice")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            host.record_tool_call("x", UserContext(user_id=""))


class TestScopes:
    def test_without_enforcer(self) -> None:
        host = Host()
        with pytest.raises(ConfigurationError) as info:
            host.enter_scope("read_only", ALICE)
        assert isinstance(info.value, ProxilionError)
        assert info.value.config_key == "scope_enforcer"
        with pytest.raises(ConfigurationError):
            host.create_scope("x")
        with pytest.raises(ConfigurationError):
            host.classify_tool("x")
        assert host.validate_scope("delete_everything") == (True, None)
        assert host.get_scope_enforcer() is None

    def test_enter_and_validate(self) -> None:
        enforcer = ScopeEnforcer()
        host = Host(scope_enforcer=enforcer)
        ctx = host.enter_scope("read_only", ALICE)
        try:
            assert get_current_scope() is ctx
            assert ctx.user is ALICE
            assert host.validate_scope("get_user", "read") == (True, None)
            assert host.validate_scope("delete_user", "delete") == (
                False,
                "tool is not allowed (not in the tool list of 'read_only')",
            )
            assert ctx.validate_tool("get_user", "read") is True
        finally:
            ctx.close()
        assert get_current_scope() is None
        assert host.validate_scope("delete_user", "delete") == (True, None)
        admin = host.enter_scope(ExecutionScope.ADMIN, ALICE)
        assert admin.scope.name == "admin"
        admin.close()
        custom = host.create_scope("viewer", allowed_tools={"get_*"}, allowed_actions={"read"})
        with host.enter_scope(custom, ALICE) as c:
            assert c.scope is custom
            assert host.validate_scope("get_x", "read") == (True, None)
        with pytest.raises(ValueError):
            host.enter_scope("nope", ALICE)
        with pytest.raises(TypeError):
            host.enter_scope("admin", None)  # type: ignore[arg-type]

    def test_classify_and_setters(self) -> None:
        host = Host()
        enforcer = ScopeEnforcer()
        host.set_scope_enforcer(enforcer)
        assert host.get_scope_enforcer() is enforcer
        c = host.classify_tool("weather", scope=ExecutionScope.READ_ONLY)
        assert c.explicit is True
        assert enforcer.classify_tool("weather").default_scope is ExecutionScope.READ_ONLY
        assert host.classify_tool("delete_x").default_scope is ExecutionScope.ADMIN
        with pytest.raises(TypeError):
            host.set_scope_enforcer(object())  # type: ignore[arg-type]


def _tracker(**kwargs: Any) -> CostTracker:
    return CostTracker(pricing={"m": ModelPricing("M", 1.0, 2.0)}, **kwargs)


class TestCosts:
    def test_without_components(self) -> None:
        host = Host()
        assert host.record_usage("m", 1, 1, user=ALICE) is None
        assert host.check_budget(ALICE, 100.0) == (True, None)
        assert host.check_cost_limit(ALICE, 100.0) is None
        assert host.get_cost_summary() is None
        assert host.get_budget_status(ALICE) == {"cost_tracking_enabled": False}
        assert host.get_cost_tracker() is None and host.get_cost_limiter() is None

    def test_tracker(self) -> None:
        tracker = _tracker(budget_policy=BudgetPolicy(max_cost_per_user_per_day=5.0))
        host = Host(cost_tracker=tracker)
        record = host.record_usage(
            model="m",
            input_tokens=1000,
            output_tokens=1000,
            tool_name="llm",
            user=ALICE,
            request_id="r1",
        )
        assert record is not None
        assert record.cost_usd == 3.0
        assert record.user_id == "alice"
        assert record.request_id == "r1"
        assert host.check_budget(ALICE, estimated_cost=1.0) == (True, None)
        assert host.check_budget(ALICE, estimated_cost=2.5) == (
            False,
            "Daily budget of user 'alice' exceeded: $3.0000 spent + $2.5000 > $5.0000",
        )
        summary = host.get_cost_summary(user=ALICE)
        assert summary is not None and summary.total_cost == 3.0
        all_users = host.get_cost_summary()
        assert all_users is not None and all_users.record_count == 1
        status = host.get_budget_status(ALICE)
        assert status["cost_tracking_enabled"] is True
        assert status["daily"]["spent"] == 3.0
        anonymous = host.record_usage("m", 1000, 0)
        assert anonymous is not None and anonymous.user_id is None

    def test_limiter_and_wiring(self) -> None:
        limiter = CostLimiter([CostLimit(max_cost=4.0, period=timedelta(hours=1), name="h")])
        tracker = _tracker()
        host = Host()
        host._init_controls(cost_tracker=tracker, cost_limiter=limiter)
        assert host.get_cost_limiter() is limiter
        host.record_usage("m", 1000, 1000, user=ALICE)  # $3 flows into the limiter
        result = host.check_cost_limit(ALICE, 1.5)
        assert result is not None and result.allowed is False
        assert result.limit_name == "h"
        assert host.check_budget(ALICE, 1.5) == (
            False,
            "Cost limit 'h' exceeded: $3.0000 spent + $1.5000 > $4.0000",
        )
        assert host.check_budget(ALICE, 1.0) == (True, None)
        status = host.get_budget_status(ALICE)
        assert status["cost_limits"][0]["current_spend"] == 3.0

    def test_setters_wire_in_both_orders(self) -> None:
        limiter = CostLimiter([CostLimit(max_cost=100.0, name="d")])
        tracker = _tracker()
        host = Host()
        host.set_cost_limiter(limiter)
        host.set_cost_tracker(tracker)
        host.record_usage("m", 1000, 0, user=ALICE)
        assert limiter.get_spend_by_period("alice", 86400) == 1.0
        other = CostLimiter([CostLimit(max_cost=100.0, name="d")])
        host.set_cost_limiter(other)
        host.record_usage("m", 1000, 0, user=ALICE)
        assert other.get_spend_by_period("alice", 86400) == 1.0
        host.set_cost_tracker(None)
        assert other.get_cost_tracker() is None
        with pytest.raises(TypeError):
            host.set_cost_limiter({"max": 1})  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            host.set_cost_tracker("tracker")  # type: ignore[arg-type]

    def test_init_controls_type_checks(self) -> None:
        host = Host()
        with pytest.raises(TypeError):
            host._init_controls(sequence_validator="x")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            host._init_controls(scope_enforcer="x")  # type: ignore[arg-type]
        host._init_controls(
            sequence_validator=SequenceValidator(),
            scope_enforcer=ScopeEnforcer(),
            cost_tracker=_tracker(),
            cost_limiter=CostLimiter(),
        )
        assert host.get_sequence_validator() is not None

    def test_class_defaults_make_unset_attributes_safe(self) -> None:
        class Bare(ControlsMixin):
            pass

        bare = Bare()
        assert bare.validate_sequence("x", ALICE) == (True, None)
        assert bare.check_budget(ALICE) == (True, None)


@pytest.mark.backend
def test_controls_work_on_the_active_backend() -> None:
    """End to end on whichever hot-path backend is active (the test command runs this on
    both): the controls are pure Python and must not depend on the native extension."""
    import os

    import proxilion
    from proxilion._decorators_controls import cost_limited, sequence_validated

    wanted = os.environ.get("PROXILION_BACKEND", "auto")
    if wanted in ("native", "reference"):
        assert proxilion.backend() == wanted
    host = Host(
        sequence_validator=SequenceValidator(),
        cost_limiter=CostLimiter([CostLimit(max_cost=0.02, name="tiny")]),
    )
    limiter = host.get_cost_limiter()
    assert limiter is not None

    @sequence_validated(host)
    @cost_limited(limiter, estimate_cost=0.01)
    def read_secret(user: UserContext | None = None) -> str:
        return "s3cr3t"

    @sequence_validated(host)
    def send_email(user: UserContext | None = None) -> str:
        return "sent"

    assert send_email(user=ALICE) == "sent"
    assert read_secret(user=ALICE) == "s3cr3t"
    assert host.validate_sequence("send_email", ALICE)[0] is False
    assert read_secret(user=ALICE) == "s3cr3t"
    from proxilion.exceptions import BudgetExceededError

    with pytest.raises(BudgetExceededError):
        read_secret(user=ALICE)
