"""Sequence rules (proxilion.security.sequence_validator)."""

from __future__ import annotations

import fnmatch
import threading
from collections import Counter
from dataclasses import FrozenInstanceError
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion.exceptions import ConfigurationError, SequenceViolationError
from proxilion.security import (
    DEFAULT_SEQUENCE_RULES,
    SequenceAction,
    SequenceRule,
    SequenceValidator,
    SequenceViolation,
    ToolCallRecord,
    create_sequence_validator,
)
from proxilion.security.sequence_validator import InvalidSequenceRuleError


class Clock:
    """Injectable wall clock (epoch seconds)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(*rules: SequenceRule, history_size: int = 100, clock: Clock | None = None) -> Any:
    return SequenceValidator(
        rules=list(rules),
        include_defaults=False,
        history_size=history_size,
        clock=clock or Clock(),
    )


def rule_name(result: tuple[bool, SequenceViolation | None]) -> str | None:
    allowed, violation = result
    assert allowed == (violation is None)
    return None if violation is None else violation.rule_name


REQUIRE = SequenceRule(
    name="need_confirm",
    action=SequenceAction.REQUIRE_BEFORE,
    target_pattern="delete_*",
    required_pattern="confirm_*",
)
FORBID = SequenceRule(
    name="no_exec_after_download",
    action=SequenceAction.FORBID_AFTER,
    target_pattern="execute_*",
    forbidden_pattern="download_*",
    window_seconds=300.0,
)


# ------------------------------------------------------------------ each rule type


class TestRequireBefore:
    def test_denied_without_prior_then_allowed(self) -> None:
        v = make(REQUIRE)
        allowed, violation = v.validate_call("delete_file", "u1")
        assert allowed is False
        assert violation is not None
        assert violation.rule_name == "need_confirm"
        assert violation.violation_type is SequenceAction.REQUIRE_BEFORE
        assert violation.required_prior == "confirm_*"
        assert violation.tool_name == "delete_file"
        assert violation.user_id == "u1"
        assert violation.message == "Tool 'delete_file' requires a prior call matching 'confirm_*'"
        v.record_call("confirm_delete", "u1")
        assert v.validate_call("delete_file", "u1") == (True, None)

    def test_non_target_tool_is_allowed(self) -> None:
        assert make(REQUIRE).validate_call("read_file", "u1") == (True, None)

    def test_window(self) -> None:
        clock = Clock()
        rule = SequenceRule(
            name="fresh_confirm",
            action="require_before",
            target_pattern="delete_*",
            required_pattern="confirm_*",
            window_seconds=60,
        )
        v = make(rule, clock=clock)
        v.record_call("confirm_delete", "u1")
        clock.advance(59.5)
        assert v.validate_call("delete_file", "u1")[0] is True
        clock.advance(1.0)
        allowed, violation = v.validate_call("delete_file", "u1")
        assert allowed is False
        assert violation is not None
        assert violation.message.endswith("within the last 60s")

    def test_prior_evicted_from_history_no_longer_counts(self) -> None:
        v = make(REQUIRE, history_size=3)
        v.record_call("confirm_delete", "u1")
        for _ in range(2):
            v.record_call("list_files", "u1")
        assert v.validate_call("delete_file", "u1")[0] is True
        v.record_call("list_files", "u1")  # confirm leaves the 3-call history
        assert rule_name(v.validate_call("delete_file", "u1")) == "need_confirm"


class TestForbidAfter:
    def test_denied_within_window_allowed_after(self) -> None:
        clock = Clock()
        v = make(FORBID, clock=clock)
        assert v.validate_call("execute_script", "u1") == (True, None)
        v.record_call("download_script", "u1")
        allowed, violation = v.validate_call("execute_script", "u1")
        assert allowed is False
        assert violation is not None
        assert violation.violation_type is SequenceAction.FORBID_AFTER
        assert violation.forbidden_prior == "download_script"
        assert violation.message == (
            "Tool 'execute_script' is forbidden within 300s after 'download_script'"
        )
        clock.advance(299.9)
        assert v.validate_call("execute_script", "u1")[0] is False
        clock.advance(0.2)
        assert v.validate_call("execute_script", "u1") == (True, None)

    def test_no_window_means_for_as_long_as_remembered(self) -> None:
        clock = Clock()
        rule = SequenceRule(
            name="never_after",
            action=SequenceAction.FORBID_AFTER,
            target_pattern="send_*",
            forbidden_pattern="read_secret",
        )
        v = make(rule, clock=clock)
        v.record_call("read_secret", "u1")
        clock.advance(10 * 365 * 86400)
        assert rule_name(v.validate_call("send_mail", "u1")) == "never_after"
        v.clear_history("u1")
        assert v.validate_call("send_mail", "u1") == (True, None)

    def test_flooding_history_does_not_erase_forbidden_prior(self) -> None:
        v = make(FORBID, history_size=5)
        v.record_call("download_script", "u1")
        for i in range(50):
            v.record_call(f"list_{i}", "u1")
        assert [name for name, _ in v.get_history("u1")][-1] == "list_45"
        assert rule_name(v.validate_call("execute_script", "u1")) == "no_exec_after_download"

    def test_most_recent_forbidden_prior_is_reported(self) -> None:
        v = make(FORBID)
        v.record_call("download_a", "u1")
        v.record_call("download_b", "u1")
        violation = v.validate_call("execute_x", "u1")[1]
        assert violation is not None
        assert violation.forbidden_prior == "download_b"


class TestRequireSequence:
    RULE = SequenceRule(
        name="checkout",
        action=SequenceAction.REQUIRE_SEQUENCE,
        target_pattern="checkout_*",
        sequence_patterns=["checkout_cart", "checkout_payment", "checkout_confirm"],
    )

    def test_first_step_allowed_and_skipping_denied(self) -> None:
        v = make(self.RULE)
        assert v.validate_call("checkout_cart", "u1") == (True, None)
        allowed, violation = v.validate_call("checkout_payment", "u1")
        assert allowed is False
        assert violation is not None
        assert violation.required_prior == "checkout_cart"
        assert violation.violation_type is SequenceAction.REQUIRE_SEQUENCE

    def test_in_order_allowed(self) -> None:
        v = make(self.RULE)
        v.record_call("checkout_cart", "u1")
        assert v.validate_call("checkout_payment", "u1")[0] is True
        v.record_call("checkout_payment", "u1")
        assert v.validate_call("checkout_confirm", "u1")[0] is True

    def test_all_earlier_steps_in_order_are_required(self) -> None:
        v = make(self.RULE)
        v.record_call("checkout_payment", "u1")  # cart never happened
        violation = v.validate_call("checkout_confirm", "u1")[1]
        assert violation is not None
        assert violation.required_prior == "checkout_cart"
        v2 = make(self.RULE)
        v2.record_call("checkout_payment", "u1")
        v2.record_call("checkout_cart", "u1")  # wrong order
        violation = v2.validate_call("checkout_confirm", "u1")[1]
        assert violation is not None
        assert violation.required_prior == "checkout_cart"

    def test_target_not_in_steps_is_allowed(self) -> None:
        assert make(self.RULE).validate_call("checkout_other", "u1") == (True, None)


class TestMaxConsecutive:
    def test_limit_and_reset(self) -> None:
        rule = SequenceRule(
            name="max3", action=SequenceAction.MAX_CONSECUTIVE, target_pattern="*", max_count=3
        )
        v = make(rule)
        for _ in range(3):
            assert v.validate_call("poll", "u1")[0] is True
            v.record_call("poll", "u1")
        allowed, violation = v.validate_call("poll", "u1")
        assert allowed is False
        assert violation is not None
        assert violation.consecutive_count == 3
        assert violation.message == "Tool 'poll' called 3 times consecutively (max 3)"
        assert v.validate_call("other", "u1")[0] is True
        v.record_call("other", "u1")
        assert v.validate_call("poll", "u1")[0] is True

    def test_case_variants_are_the_same_tool(self) -> None:
        rule = SequenceRule(
            name="max2", action=SequenceAction.MAX_CONSECUTIVE, target_pattern="*", max_count=2
        )
        v = make(rule)
        v.record_call("poll", "u1")
        v.record_call("POLL", "u1")
        assert rule_name(v.validate_call("Poll", "u1")) == "max2"

    def test_run_longer_than_the_history_still_counts(self) -> None:
        rule = SequenceRule(
            name="max5", action=SequenceAction.MAX_CONSECUTIVE, target_pattern="*", max_count=5
        )
        v = make(rule, history_size=2)
        for _ in range(4):
            v.record_call("poll", "u1")
        assert v.validate_call("poll", "u1")[0] is True
        v.record_call("poll", "u1")
        violation = v.validate_call("poll", "u1")[1]
        assert violation is not None and violation.consecutive_count == 5

    def test_different_tools_matching_the_target_do_not_chain(self) -> None:
        rule = SequenceRule(
            name="api2", action=SequenceAction.MAX_CONSECUTIVE, target_pattern="api_*", max_count=2
        )
        v = make(rule)
        v.record_call("api_read", "u1")
        v.record_call("api_write", "u1")
        assert v.validate_call("api_read", "u1")[0] is True


class TestCooldown:
    def test_cooldown(self) -> None:
        clock = Clock()
        rule = SequenceRule(
            name="slow",
            action=SequenceAction.COOLDOWN,
            target_pattern="expensive_*",
            cooldown_seconds=10,
        )
        v = make(rule, clock=clock)
        assert v.validate_call("expensive_query", "u1")[0] is True
        v.record_call("expensive_query", "u1")
        clock.advance(4)
        allowed, violation = v.validate_call("expensive_query", "u1")
        assert allowed is False
        assert violation is not None
        assert violation.last_call_seconds_ago == pytest.approx(4.0)
        assert violation.cooldown_remaining == pytest.approx(6.0)
        assert violation.message == "Tool 'expensive_query' is in cooldown: 6.0s remaining"
        assert v.validate_call("expensive_report", "u1")[0] is True  # another tool
        clock.advance(6)
        assert v.validate_call("expensive_query", "u1") == (True, None)

    def test_cooldown_survives_history_eviction(self) -> None:
        clock = Clock()
        rule = SequenceRule(
            name="slow", action="cooldown", target_pattern="pay_*", cooldown_seconds=3600
        )
        v = make(rule, history_size=2, clock=clock)
        v.record_call("pay_invoice", "u1")
        for i in range(10):
            v.record_call(f"noop_{i}", "u1")
        assert rule_name(v.validate_call("pay_invoice", "u1")) == "slow"


# ------------------------------------------------------------------ matching


class TestPatterns:
    @pytest.mark.parametrize(
        ("pattern", "tool", "expected"),
        [
            ("delete_file", "delete_file", True),
            ("delete_file", "delete_files", False),
            ("delete_*", "delete_user", True),
            ("delete_*", "undelete_user", False),
            ("*", "anything", True),
            ("*_email", "send_email", True),
            ("get_?", "get_a", True),
            ("get_?", "get_ab", False),
            ("get_[ab]", "get_b", True),
            ("get_[ab]", "get_c", False),
            ("send_*|upload_*", "upload_file", True),
            ("send_*|upload_*", "read_file", False),
            ("delete_*", "DELETE_FILE", True),
            ("DELETE_*", "delete_file", True),
            ("delete_*", "ｄｅｌｅｔｅ_file", True),  # full-width letters, NFKC
            ("straße", "STRASSE", True),  # case folding
        ],
    )
    def test_glob_matching(self, pattern: str, tool: str, expected: bool) -> None:
        rule = SequenceRule(name="r", action="cooldown", target_pattern=pattern)
        assert rule.matches_target(tool) is expected

    def test_matches_pattern_helper(self) -> None:
        rule = SequenceRule(
            name="r", action="require_before", target_pattern="x", required_pattern="confirm_*"
        )
        assert rule.matches_pattern("confirm_delete", "confirm_*") is True
        assert rule.matches_pattern("verify_delete", "confirm_*") is False

    def test_rule_applies_to_case_variants_of_the_target(self) -> None:
        v = make(REQUIRE)
        assert rule_name(v.validate_call("Delete_File", "u1")) == "need_confirm"
        v.record_call("CONFIRM_delete", "u1")
        assert v.validate_call("DELETE_FILE", "u1")[0] is True


# ------------------------------------------------------------------ defaults


class TestDefaults:
    def test_default_rule_set(self) -> None:
        assert isinstance(DEFAULT_SEQUENCE_RULES, tuple)
        names = [r.name for r in DEFAULT_SEQUENCE_RULES]
        assert names == [
            "require_confirm_before_delete",
            "forbid_download_execute",
            "forbid_download_run",
            "forbid_secret_read_then_send",
            "forbid_private_data_then_send",
            "max_consecutive_calls",
        ]
        for rule in DEFAULT_SEQUENCE_RULES:
            assert rule.enabled and rule.description
        assert [r.name for r in SequenceValidator().get_rules()] == names
        with pytest.raises(FrozenInstanceError):
            DEFAULT_SEQUENCE_RULES[0].enabled = False  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("prior", "tool", "rule"),
        [
            ("read_secret", "send_email", "forbid_secret_read_then_send"),
            ("get_credentials", "http_post", "forbid_secret_read_then_send"),
            ("read_env", "upload_file", "forbid_secret_read_then_send"),
            ("get_api_key", "post_message", "forbid_secret_read_then_send"),
            ("vault_read", "webhook_call", "forbid_secret_read_then_send"),
            ("db_get_password", "fetch_url", "forbid_secret_read_then_send"),
            ("get_customer_data", "email_user", "forbid_private_data_then_send"),
            ("read_medical_record", "share_document", "forbid_private_data_then_send"),
            ("query_user_pii", "export_csv", "forbid_private_data_then_send"),
            ("download_installer", "execute_installer", "forbid_download_execute"),
            ("download_binary", "run_process", "forbid_download_run"),
        ],
    )
    def test_exfiltration_and_download_flows_blocked(
        self, prior: str, tool: str, rule: str
    ) -> None:
        v = SequenceValidator(clock=Clock())
        assert v.validate_call(tool, "u1")[0] is True
        v.record_call(prior, "u1")
        assert rule_name(v.validate_call(tool, "u1")) == rule
        assert v.validate_call(tool, "someone_else")[0] is True

    @pytest.mark.parametrize(
        ("prior", "tool"),
        [
            ("read_file", "send_email"),
            ("search_docs", "post_message"),
            ("get_weather", "upload_report"),
            ("send_email", "read_secret"),  # the reverse order is not exfiltration
        ],
    )
    def test_benign_flows_allowed(self, prior: str, tool: str) -> None:
        v = SequenceValidator(clock=Clock())
        v.record_call(prior, "u1")
        assert v.validate_call(tool, "u1") == (True, None)

    def test_exfiltration_window_is_one_hour(self) -> None:
        clock = Clock()
        v = SequenceValidator(clock=clock)
        v.record_call("read_secret", "u1")
        clock.advance(3599)
        assert v.validate_call("send_email", "u1")[0] is False
        clock.advance(2)
        assert v.validate_call("send_email", "u1")[0] is True

    def test_default_delete_and_repeat_rules(self) -> None:
        v = SequenceValidator(clock=Clock())
        assert rule_name(v.validate_call("delete_file", "u1")) == "require_confirm_before_delete"
        v.record_call("confirm_delete", "u1")
        assert v.validate_call("delete_file", "u1")[0] is True
        for _ in range(10):
            v.record_call("repeat_action", "u1")
        assert rule_name(v.validate_call("repeat_action", "u1")) == "max_consecutive_calls"

    def test_custom_rule_replaces_default_of_same_name(self) -> None:
        lenient = SequenceRule(
            name="max_consecutive_calls",
            action=SequenceAction.MAX_CONSECUTIVE,
            target_pattern="*",
            max_count=50,
        )
        v = SequenceValidator(rules=[lenient], clock=Clock())
        assert len(v.get_rules()) == len(DEFAULT_SEQUENCE_RULES)
        for _ in range(20):
            v.record_call("poll", "u1")
        assert v.validate_call("poll", "u1")[0] is True

    def test_factory(self) -> None:
        custom = SequenceRule(name="custom", action="cooldown", target_pattern="*")
        v = create_sequence_validator(include_defaults=False, custom_rules=[custom], history_size=3)
        assert [r.name for r in v.get_rules()] == ["custom"]
        assert v.history_size == 3
        assert len(create_sequence_validator().get_rules()) == len(DEFAULT_SEQUENCE_RULES)


# ------------------------------------------------------------------ bad rules and input


class TestBadRules:
    @pytest.mark.parametrize(
        ("kwargs", "problem"),
        [
            ({"name": ""}, "a non-empty name"),
            ({"name": "   "}, "a non-empty name"),
            ({"name": 7}, "a non-empty name"),
            ({"action": "bogus"}, "a known action"),
            ({"action": None}, "a known action"),
            ({"target_pattern": ""}, "target_pattern as a non-empty glob pattern"),
            ({"target_pattern": "a||b"}, "target_pattern as a valid pattern"),
            ({"target_pattern": None}, "target_pattern as a non-empty glob pattern"),
            ({"window_seconds": float("nan")}, "window_seconds as a positive finite number"),
            ({"window_seconds": -1}, "window_seconds as a positive finite number"),
            ({"window_seconds": 0}, "window_seconds as a positive finite number"),
            ({"window_seconds": float("inf")}, "window_seconds as a positive finite number"),
            ({"window_seconds": "60"}, "window_seconds as a number"),
            ({"max_count": 0}, "max_count >= 1"),
            ({"max_count": True}, "max_count as an int"),
            ({"max_count": 2.5}, "max_count as an int"),
            ({"cooldown_seconds": -5}, "cooldown_seconds as a positive finite number"),
            ({"enabled": "yes"}, "enabled as a bool"),
            ({"sequence_patterns": "a,b"}, "sequence_patterns as a list of patterns"),
        ],
    )
    def test_rejected_with_named_error(self, kwargs: dict[str, Any], problem: str) -> None:
        fields: dict[str, Any] = {"name": "r", "action": "cooldown", "target_pattern": "x_*"}
        fields.update(kwargs)
        with pytest.raises(InvalidSequenceRuleError) as info:
            SequenceRule(**fields)
        err = info.value
        assert isinstance(err, ConfigurationError)
        assert isinstance(err, ValueError)
        assert err.problem.startswith(problem)

    @pytest.mark.parametrize(
        ("action", "problem"),
        [
            ("require_before", "required_pattern for a require_before rule"),
            ("forbid_after", "forbidden_pattern for a forbid_after rule"),
            ("require_sequence", "at least two sequence_patterns for a require_sequence rule"),
        ],
    )
    def test_incomplete_rules_rejected(self, action: str, problem: str) -> None:
        with pytest.raises(InvalidSequenceRuleError) as info:
            SequenceRule(name="r", action=action, target_pattern="x_*", sequence_patterns=["a"])
        assert info.value.problem == problem

    def test_error_message(self) -> None:
        with pytest.raises(InvalidSequenceRuleError) as info:
            SequenceRule(name="r", action="bogus", target_pattern="*")
        assert info.value.message == (
            "Configuration error for 'sequence rule 'r'': expected a known action "
            "(require_before, forbid_after, require_sequence, max_consecutive, cooldown), "
            "got 'bogus'"
        )

    def test_action_given_as_value_string(self) -> None:
        rule = SequenceRule(
            name="r", action="forbid_after", target_pattern="a", forbidden_pattern="b"
        )
        assert rule.action is SequenceAction.FORBID_AFTER

    def test_validator_rejects_non_rules_and_bad_sizes(self) -> None:
        with pytest.raises(TypeError):
            SequenceValidator(rules=[{"name": "x"}])  # type: ignore[list-item]
        with pytest.raises(TypeError):
            make().add_rule("rule")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="history_size must be >= 1, got 0"):
            SequenceValidator(history_size=0)
        with pytest.raises(TypeError):
            SequenceValidator(history_size=True)

    @pytest.mark.parametrize("bad", ["", "  ", None, 3, b"tool"])
    def test_bad_tool_names_and_users(self, bad: Any) -> None:
        v = make(REQUIRE)
        with pytest.raises((TypeError, ValueError)):
            v.validate_call(bad, "u1")
        with pytest.raises((TypeError, ValueError)):
            v.record_call(bad, "u1")
        with pytest.raises((TypeError, ValueError)):
            v.validate_call("delete_x", bad)
        with pytest.raises((TypeError, ValueError)):
            v.get_history(bad)

    def test_bad_timestamp_and_limit(self) -> None:
        v = make()
        with pytest.raises(TypeError):
            v.record_call("t", "u1", timestamp=1234.5)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            v.get_history("u1", limit=-1)
        with pytest.raises(TypeError):
            v.get_history("u1", limit=1.5)  # type: ignore[arg-type]

    def test_huge_names_rejected(self) -> None:
        v = make(REQUIRE)
        with pytest.raises(ValueError, match="tool_name is too long"):
            v.validate_call("x" * 5000, "u1")
        with pytest.raises(ValueError, match="user_id is too long"):
            v.record_call("x", "u" * 5000)
        v.record_call("x" * 4096, "u1")

    def test_surrogates_in_tool_names_are_handled(self) -> None:
        v = make(REQUIRE)
        assert v.validate_call("delete_\ud800", "u1")[0] is False
        v.record_call("tool_\udfff", "u1")
        assert v.get_history("u1")[0][0] == "tool_\udfff"


# ------------------------------------------------------------------ rule management


class TestRuleManagement:
    def test_add_remove_get(self) -> None:
        v = make()
        v.add_rule(REQUIRE)
        assert v.get_rule("need_confirm") is REQUIRE
        rules = v.get_rules()
        rules.append(FORBID)
        assert len(v.get_rules()) == 1
        assert v.remove_rule("need_confirm") is True
        assert v.remove_rule("need_confirm") is False
        assert v.get_rule("need_confirm") is None
        assert v.validate_call("delete_x", "u1")[0] is True

    def test_add_replaces_same_name(self) -> None:
        v = make(REQUIRE)
        stricter = SequenceRule(
            name="need_confirm",
            action="require_before",
            target_pattern="delete_*|drop_*",
            required_pattern="approve_*",
        )
        v.add_rule(stricter)
        assert v.get_rules() == [stricter]
        v.record_call("confirm_x", "u1")
        assert rule_name(v.validate_call("drop_table", "u1")) == "need_confirm"

    def test_enable_disable(self) -> None:
        v = make(REQUIRE)
        assert v.disable_rule("need_confirm") is True
        assert v.get_rule("need_confirm").enabled is False  # type: ignore[union-attr]
        assert v.validate_call("delete_x", "u1")[0] is True
        assert v.enable_rule("need_confirm") is True
        assert v.validate_call("delete_x", "u1")[0] is False
        assert v.enable_rule("missing") is False
        assert v.disable_rule("missing") is False

    def test_rule_added_later_sees_earlier_calls(self) -> None:
        v = make()
        v.record_call("download_tool", "u1")
        v.record_call("confirm_it", "u1")
        v.add_rule(FORBID)
        v.add_rule(REQUIRE)
        assert rule_name(v.validate_call("execute_tool", "u1")) == "no_exec_after_download"
        assert v.validate_call("delete_it", "u1")[0] is True

    def test_first_violated_rule_in_order_wins(self) -> None:
        cooldown = SequenceRule(name="cool", action="cooldown", target_pattern="delete_*")
        v = make(REQUIRE, cooldown)
        assert rule_name(v.validate_call("delete_x", "u1")) == "need_confirm"

    def test_rules_are_immutable_and_serialisable(self) -> None:
        with pytest.raises(FrozenInstanceError):
            REQUIRE.target_pattern = "*"  # type: ignore[misc]
        assert REQUIRE.to_dict()["action"] == "require_before"


# ------------------------------------------------------------------ history


class TestHistory:
    def test_order_limit_timestamps(self) -> None:
        clock = Clock(1_700_000_000.0)
        v = make(clock=clock)
        v.record_call("tool_a", "u1")
        clock.advance(1)
        v.record_call("tool_b", "u1")
        custom = datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)
        v.record_call("tool_c", "u1", timestamp=custom)
        v.record_call("tool_d", "u1", timestamp=datetime(2024, 1, 1, 13, 0))  # naive -> UTC
        history = v.get_history("u1")
        assert [name for name, _ in history] == ["tool_d", "tool_c", "tool_b", "tool_a"]
        assert history[1][1] == custom
        assert history[0][1] == datetime(2024, 1, 1, 13, 0, tzinfo=timezone.utc)
        assert history[2][1] == datetime.fromtimestamp(1_700_000_001.0, timezone.utc)
        assert len(v.get_history("u1", limit=2)) == 2
        assert v.get_history("u1", limit=0) == []
        assert v.get_history("nobody") == []
        records = v.get_records("u1", limit=1)
        assert records == [
            ToolCallRecord("tool_d", "u1", datetime(2024, 1, 1, 13, 0, tzinfo=timezone.utc))
        ]
        assert records[0].to_dict()["timestamp"] == "2024-01-01T13:00:00+00:00"

    def test_history_size_and_configure(self) -> None:
        v = make(history_size=5)
        for i in range(10):
            v.record_call(f"tool_{i}", "u1")
        assert [n for n, _ in v.get_history("u1")] == [f"tool_{i}" for i in range(9, 4, -1)]
        v.configure(history_size=2)
        assert [n for n, _ in v.get_history("u1")] == ["tool_9", "tool_8"]
        v.configure()  # nothing to change
        assert v.history_size == 2

    def test_clear_history(self) -> None:
        v = make()
        v.record_call("t", "u1")
        v.record_call("t", "u2")
        v.clear_history("u1")
        assert v.get_history("u1") == []
        assert len(v.get_history("u2")) == 1
        assert v.get_users() == ["u2"]
        v.clear_history()
        assert v.get_users() == []

    def test_recent_sequence_in_violation(self) -> None:
        v = make(REQUIRE)
        for name in ("a", "b", "c"):
            v.record_call(name, "u1")
        violation = v.validate_call("delete_x", "u1")[1]
        assert violation is not None
        assert violation.tool_sequence == ["a", "b", "c"]


# ------------------------------------------------------------------ in-flight and atomic


class TestOutOfOrderTimestamps:
    def test_latest_forbidden_prior_counts_even_if_recorded_first(self) -> None:
        clock = Clock()
        v = make(FORBID, clock=clock)
        v.record_call("download_x", "u1")
        past = datetime.fromtimestamp(clock.now - 1000, timezone.utc)
        v.record_call("download_y", "u1", timestamp=past)
        violation = v.validate_call("execute_x", "u1")[1]
        assert violation is not None
        assert violation.forbidden_prior == "download_x"

    def test_evicting_the_newest_required_prior_rechecks_the_window(self) -> None:
        clock = Clock()
        rule = SequenceRule(
            name="fresh",
            action="require_before",
            target_pattern="delete_*",
            required_pattern="confirm_*",
            window_seconds=60,
        )
        v = make(rule, history_size=2, clock=clock)
        v.record_call("confirm_new", "u1")
        v.record_call(
            "confirm_old", "u1", timestamp=datetime.fromtimestamp(clock.now - 100, timezone.utc)
        )
        assert v.validate_call("delete_x", "u1")[0] is True
        v.record_call("noop", "u1")  # evicts confirm_new; confirm_old is too old
        assert rule_name(v.validate_call("delete_x", "u1")) == "fresh"


class TestInFlight:
    def test_in_flight_call_forbids_and_failure_is_not_recorded(self) -> None:
        rule = SequenceRule(
            name="exfil",
            action="forbid_after",
            target_pattern="send_*",
            forbidden_pattern="read_secret",
        )
        v = make(rule)
        assert v.begin_call("read_secret", "u1") == (True, None)
        violation = v.validate_call("send_email", "u1")[1]
        assert violation is not None
        assert violation.forbidden_prior == "read_secret"
        v.end_call("read_secret", "u1", success=False)
        assert v.validate_call("send_email", "u1") == (True, None)
        assert v.get_history("u1") == []
        v.begin_call("read_secret", "u1")
        v.end_call("read_secret", "u1")
        assert [n for n, _ in v.get_history("u1")] == ["read_secret"]
        assert v.validate_call("send_email", "u1")[0] is False

    def test_in_flight_counts_for_cooldown_and_repeats(self) -> None:
        cool = SequenceRule(name="cool", action="cooldown", target_pattern="pay_*")
        rep = SequenceRule(name="rep", action="max_consecutive", target_pattern="poll", max_count=2)
        v = make(cool, rep)
        assert v.begin_call("pay_x", "u1")[0] is True
        violation = v.begin_call("pay_x", "u1")[1]
        assert violation is not None and violation.rule_name == "cool"
        assert violation.cooldown_remaining == pytest.approx(60.0)
        v.begin_call("poll", "u1")
        v.begin_call("poll", "u1")
        assert rule_name(v.begin_call("poll", "u1")) == "rep"
        v.end_call("poll", "u1", record=False)
        assert v.begin_call("poll", "u1")[0] is True

    def test_end_call_without_begin_records(self) -> None:
        v = make()
        v.end_call("x", "u1")
        v.end_call("y", "u1", record=False)
        assert [n for n, _ in v.get_history("u1")] == ["x"]

    def test_check_and_record(self) -> None:
        v = make(REQUIRE)
        assert rule_name(v.check_and_record("delete_x", "u1")) == "need_confirm"
        assert v.get_history("u1") == []
        assert v.check_and_record("confirm_x", "u1") == (True, None)
        assert v.check_and_record("delete_x", "u1") == (True, None)
        assert [n for n, _ in v.get_history("u1")] == ["delete_x", "confirm_x"]


class TestThreads:
    def test_per_user_histories_under_concurrency(self) -> None:
        v = make(history_size=1000)

        def work(user: str) -> None:
            for i in range(200):
                v.record_call(f"tool_{i % 7}", user)
                v.validate_call("tool_0", user)

        threads = [threading.Thread(target=work, args=(f"user_{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(8):
            names = [n for n, _ in v.get_history(f"user_{i}")]
            assert names == [f"tool_{j % 7}" for j in range(199, -1, -1)]

    def test_atomic_check_and_record_admits_exactly_the_limit(self) -> None:
        rule = SequenceRule(name="max5", action="max_consecutive", target_pattern="*", max_count=5)
        v = make(rule)
        barrier = threading.Barrier(16)
        results: list[bool] = []
        lock = threading.Lock()

        def work() -> None:
            barrier.wait()
            for _ in range(4):
                allowed, _ = v.check_and_record("poll", "u1")
                with lock:
                    results.append(allowed)

        threads = [threading.Thread(target=work) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results.count(True) == 5
        assert len(results) == 64

    def test_parallel_begin_admits_one_call_under_cooldown(self) -> None:
        rule = SequenceRule(name="cool", action="cooldown", target_pattern="transfer_*")
        v = make(rule)
        barrier = threading.Barrier(12)
        outcomes: list[bool] = []
        lock = threading.Lock()

        def work() -> None:
            barrier.wait()
            allowed, _ = v.begin_call("transfer_funds", "u1")
            with lock:
                outcomes.append(allowed)

        threads = [threading.Thread(target=work) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcomes.count(True) == 1


# ------------------------------------------------------------------ violation -> exception


def test_violation_to_exception() -> None:
    clock = Clock()
    v = make(FORBID, clock=clock)
    v.record_call("download_x", "alice")
    violation = v.validate_call("execute_x", "alice")[1]
    assert violation is not None
    err = violation.to_exception()
    assert isinstance(err, SequenceViolationError)
    assert err.message == (
        "Sequence violation: no_exec_after_download ('execute_x' forbidden after 'download_x')"
    )
    assert err.violation_type == "forbid_after"
    assert err.user_id == "alice"
    assert violation.to_dict()["violation_type"] == "forbid_after"


# ------------------------------------------------------------------ differential property test


MODEL_RULES = [
    SequenceRule(
        name="r_forbid",
        action="forbid_after",
        target_pattern="send_*",
        forbidden_pattern="read_*",
        window_seconds=100,
    ),
    SequenceRule(
        name="r_require",
        action="require_before",
        target_pattern="delete_*",
        required_pattern="confirm_*",
        window_seconds=200,
    ),
    SequenceRule(
        name="r_seq",
        action="require_sequence",
        target_pattern="step_*",
        sequence_patterns=["step_a", "step_b", "step_c"],
    ),
    SequenceRule(name="r_max", action="max_consecutive", target_pattern="*", max_count=3),
    SequenceRule(name="r_cool", action="cooldown", target_pattern="loop", cooldown_seconds=30),
    SequenceRule(
        name="r_forbid_ever",
        action="forbid_after",
        target_pattern="delete_*",
        forbidden_pattern="send_*",
    ),
]
TOOLS = [
    "read_secret",
    "send_email",
    "Send_Email",
    "confirm_x",
    "delete_x",
    "step_a",
    "step_b",
    "step_c",
    "loop",
    "noop",
]
HISTORY = 4


def _m(pattern: str, key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, alt.casefold()) for alt in pattern.split("|"))


class Model:
    """A naive re-statement of the rule semantics over the full call log."""

    def __init__(self) -> None:
        self.log: dict[str, list[tuple[str, float]]] = {}
        self.inflight: dict[str, Counter[str]] = {}

    def check(self, user: str, tool: str, now: float) -> str | None:
        key = tool.casefold()
        log = self.log.get(user, [])
        retained = log[-HISTORY:]
        inflight = self.inflight.get(user, Counter())
        for rule in MODEL_RULES:
            if not _m(rule.target_pattern, key):
                continue
            window = rule.window_seconds
            if rule.action is SequenceAction.FORBID_AFTER:
                assert rule.forbidden_pattern is not None
                if any(_m(rule.forbidden_pattern, k) for k, n in inflight.items() if n):
                    return rule.name
                times = [t for k, t in log if _m(rule.forbidden_pattern, k)]
                if times and (window is None or max(times) >= now - window):
                    return rule.name
            elif rule.action is SequenceAction.REQUIRE_BEFORE:
                assert rule.required_pattern is not None
                if not any(
                    _m(rule.required_pattern, k) and (window is None or t >= now - window)
                    for k, t in retained
                ):
                    return rule.name
            elif rule.action is SequenceAction.MAX_CONSECUTIVE:
                run = 0
                for k, _ in reversed(log):
                    if k != key:
                        break
                    run += 1
                if run + inflight[key] >= rule.max_count:
                    return rule.name
            elif rule.action is SequenceAction.COOLDOWN:
                if inflight[key]:
                    return rule.name
                times = [t for k, t in log if k == key]
                if times and max(now - max(times), 0.0) < rule.cooldown_seconds:
                    return rule.name
            else:
                steps = list(rule.sequence_patterns)
                idx = next((i for i, p in enumerate(steps) if _m(p, key)), -1)
                if idx <= 0:
                    continue
                need = idx - 1
                for k, _ in reversed(retained):
                    if _m(steps[need], k):
                        need -= 1
                        if need < 0:
                            break
                if need >= 0:
                    return rule.name
        return None


ops = st.lists(
    st.one_of(
        st.tuples(st.just("check"), st.sampled_from(["u1", "u2"]), st.sampled_from(TOOLS)),
        st.tuples(st.just("record"), st.sampled_from(["u1", "u2"]), st.sampled_from(TOOLS)),
        st.tuples(
            st.just("record_at"),
            st.sampled_from(["u1", "u2"]),
            st.sampled_from(TOOLS),
            st.integers(0, 300),
        ),
        st.tuples(st.just("begin"), st.sampled_from(["u1", "u2"]), st.sampled_from(TOOLS)),
        st.tuples(st.just("end"), st.sampled_from(["u1", "u2"]), st.booleans()),
        st.tuples(st.just("advance"), st.integers(0, 80)),
        st.tuples(st.just("clear"), st.sampled_from(["u1", "u2"])),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(ops)
def test_matches_naive_model(operations: list[tuple[Any, ...]]) -> None:
    clock = Clock(1000.0)
    v = SequenceValidator(
        rules=MODEL_RULES, include_defaults=False, history_size=HISTORY, clock=clock
    )
    model = Model()
    open_calls: dict[str, list[str]] = {"u1": [], "u2": []}
    for op in operations:
        kind = op[0]
        if kind == "advance":
            clock.advance(op[1])
            continue
        user = op[1]
        if kind == "clear":
            v.clear_history(user)
            model.log.pop(user, None)
            model.inflight.pop(user, None)
            open_calls[user] = []
            continue
        if kind == "end":
            if not open_calls[user]:
                continue
            tool = open_calls[user].pop(0)
            v.end_call(tool, user, success=op[2])
            model.inflight[user][tool.casefold()] -= 1
            if op[2]:
                model.log.setdefault(user, []).append((tool.casefold(), clock.now))
            continue
        tool = op[2]
        if kind == "record":
            v.record_call(tool, user)
            model.log.setdefault(user, []).append((tool.casefold(), clock.now))
        elif kind == "record_at":  # a call stamped in the past (out of time order)
            at = clock.now - op[3]
            v.record_call(tool, user, timestamp=datetime.fromtimestamp(at, timezone.utc))
            model.log.setdefault(user, []).append((tool.casefold(), at))
        elif kind == "check":
            assert rule_name(v.validate_call(tool, user)) == model.check(user, tool, clock.now)
        else:  # begin
            expected = model.check(user, tool, clock.now)
            assert rule_name(v.begin_call(tool, user)) == expected
            if expected is None:
                open_calls[user].append(tool)
                model.inflight.setdefault(user, Counter())[tool.casefold()] += 1
    for user in ("u1", "u2"):
        kept = [k for k, _ in model.log.get(user, [])][-HISTORY:][::-1]
        assert [n.casefold() for n, _ in v.get_history(user)] == kept


def test_timedelta_window_values_are_plain_seconds() -> None:
    rule = SequenceRule(
        name="r",
        action="forbid_after",
        target_pattern="a",
        forbidden_pattern="b",
        window_seconds=timedelta(minutes=1).total_seconds(),
    )
    assert rule.window_seconds == 60.0
