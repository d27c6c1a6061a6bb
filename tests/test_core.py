"""``proxilion.core``: Proxilion construction, check(), context helpers, timeouts, guards
(API.md section 3). The decorator pipeline is in test_pipeline.py."""

from __future__ import annotations

import asyncio
import inspect
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from proxilion import (
    AgentContext,
    AuthorizationError,
    ConfigurationError,
    InputGuardViolation,
    OutputGuardViolation,
    Policy,
    Proxilion,
    UserContext,
    get_current_agent,
    get_current_user,
)
from proxilion.core import DEFAULT_CIRCUIT_BREAKER_CONFIG, DEFAULT_RATE_LIMIT_CONFIG
from proxilion.engines import SimplePolicyEngine
from proxilion.engines.base import BasePolicyEngine, EngineNotAvailableError
from proxilion.policies import AllowAllPolicy
from proxilion.security import KillSwitch
from proxilion.timeouts.manager import TimeoutError as ProxilionTimeoutError
from proxilion.types import AuthorizationResult

ALICE = UserContext("alice", ["analyst"], "sess-1", {"permissions": ["docs:read"]})
BOB = UserContext("bob", ["guest"])
AGENT = AgentContext("agent-1", ["search"], 0.7)


@pytest.fixture
def auth() -> Proxilion:
    a = Proxilion()

    @a.policy("docs")
    class DocsPolicy(Policy[Any]):
        def can_read(self, context: dict[str, Any]) -> bool:
            return "analyst" in self.user.roles

        def can_write(self, context: dict[str, Any]) -> Any:
            return context.get("value")

        def can_explode(self, context: dict[str, Any]) -> bool:
            raise RuntimeError("db down")

        def can_echo(self, context: dict[str, Any]) -> bool:
            return self.resource == "docs" and context.get("k") == 1

    return a


# -- construction -----------------------------------------------------------------------------

API_PARAMS = [
    "policy_engine",
    "engine_config",
    "audit_log_path",
    "rate_limit_config",
    "enable_circuit_breaker",
    "circuit_breaker_config",
    "enable_idor_protection",
    "default_deny",
    "input_guard",
    "output_guard",
    "sequence_validator",
    "scope_enforcer",
    "cost_tracker",
    "cost_limiter",
    "session_manager",
    "session_config",
    "timeout_manager",
    "timeout_config",
    "retry_policy",
    "graceful_degradation",
    "enable_degradation",
    "tool_registry",
]


def test_constructor_signature_keeps_the_original_order() -> None:
    params = list(inspect.signature(Proxilion).parameters.values())
    assert [p.name for p in params[: len(API_PARAMS)]] == API_PARAMS
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params[: len(API_PARAMS)])
    extras = {p.name: p for p in params[len(API_PARAMS) :]}
    assert set(extras) == {
        "enable_audit",
        "enable_integrity",
        "enable_rate_limiting",
        "kill_switch",
        "audit_max_events",
        "behavioral_monitor",
    }
    assert all(p.kind is p.KEYWORD_ONLY for p in extras.values())


def test_constructor_defaults() -> None:
    a = Proxilion()
    assert a.policy_engine == "simple"
    assert isinstance(a.engine, SimplePolicyEngine)
    assert a.default_deny is True
    assert a.rate_limit_config is None
    assert a.circuit_breaker_config == DEFAULT_CIRCUIT_BREAKER_CONFIG
    assert a.enable_circuit_breaker and a.enable_idor_protection
    assert a.enable_integrity is False
    assert a.kill_switch is None
    assert a.get_audit_events() == []
    assert a.audit_logger is not None  # in-memory record by default
    assert a.registry is not a.engine.registry  # type: ignore[attr-defined]


def test_seed_switches() -> None:
    a = Proxilion(enable_audit=True, enable_integrity=True, enable_rate_limiting=True)
    assert a.rate_limit_config == DEFAULT_RATE_LIMIT_CONFIG
    assert a.rate_limit_config is not DEFAULT_RATE_LIMIT_CONFIG
    assert a.rate_limit_config["user"] is not DEFAULT_RATE_LIMIT_CONFIG["user"]
    assert a.enable_integrity is True
    assert a.audit_logger is not None
    custom = {"user": {"capacity": 5, "refill_rate": 1.0}}
    assert (
        Proxilion(enable_rate_limiting=True, rate_limit_config=custom).rate_limit_config == custom
    )
    assert Proxilion(rate_limit_config=custom).rate_limit_config == custom
    assert Proxilion(rate_limit_config={}).rate_limit_config is None
    assert Proxilion(enable_audit=False).audit_logger is None


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"enable_audit": False, "audit_log_path": "a.jsonl"}, "enable_audit"),
        ({"enable_audit": False, "enable_integrity": True}, "enable_integrity"),
        (
            {"enable_rate_limiting": False, "rate_limit_config": {"user": {}}},
            "enable_rate_limiting",
        ),
    ],
)
def test_contradictory_switches(kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Proxilion(**kwargs)
    assert info.value.config_key == key


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"policy_engine": 1}, "policy_engine must be a str, not int"),
        ({"engine_config": []}, "engine_config must be a dict or None, not list"),
        ({"rate_limit_config": "fast"}, "rate_limit_config must be a dict or None, not str"),
        ({"circuit_breaker_config": 5}, "circuit_breaker_config must be a dict or None"),
        ({"default_deny": "yes"}, "default_deny must be a bool, not str"),
        ({"enable_audit": 1}, "enable_audit must be a bool, not int"),
        ({"enable_rate_limiting": "x"}, "enable_rate_limiting must be a bool"),
        ({"enable_integrity": None}, "enable_integrity must be a bool, not NoneType"),
        ({"audit_log_path": 3}, "audit_log_path must be a str, a pathlib.Path or None, not int"),
        ({"kill_switch": object()}, "kill_switch must have 'is_active' and 'reason'"),
        ({"enable_everything": True}, "unexpected keyword argument"),
    ],
)
def test_constructor_bad_input(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(TypeError, match=match):
        Proxilion(**kwargs)


@pytest.mark.parametrize("engine", ["Simple", "SIMPLE"])
def test_engine_name_case_insensitive(engine: str) -> None:
    assert isinstance(Proxilion(policy_engine=engine).engine, SimplePolicyEngine)


def test_optional_and_unknown_engines() -> None:
    with pytest.raises(EngineNotAvailableError, match=r"^\[casbin\] The optional casbin"):
        Proxilion(policy_engine="casbin")
    with pytest.raises(EngineNotAvailableError, match=r"^\[opa\] The optional opa"):
        Proxilion(policy_engine="opa")
    with pytest.raises(EngineNotAvailableError, match=r"^\[nope\] Unknown engine type: 'nope'"):
        Proxilion(policy_engine="nope")


def test_engine_config_is_passed() -> None:
    a = Proxilion(engine_config={"default_policy": AllowAllPolicy})
    r = a.check(ALICE, "read", "anything")
    assert (r.allowed, r.reason, r.policies_evaluated) == (
        True,
        "Policy AllowAllPolicy allowed action 'read'",
        ["AllowAllPolicy"],
    )


def test_audit_helpers_on_the_in_memory_record() -> None:
    a = Proxilion()
    result = a.verify_audit_chain()
    assert result.valid is True and result.verified_count == 0
    off = Proxilion(enable_audit=False)
    assert off.audit_logger is None
    with pytest.raises(ConfigurationError) as info:
        off.verify_audit_chain()
    assert info.value.config_key == "audit"
    with a as same:
        assert same is a
    a.close()  # nothing to close: no error


def test_audit_max_events_bounds_the_in_memory_record(tmp_path: Any) -> None:
    a = Proxilion(audit_max_events=3)
    a.policy("read_doc")(AllowAllPolicy)

    @a.authorize("read")
    def read_doc(doc_id: str, user: UserContext | None = None) -> str:
        return doc_id

    for i in range(5):
        assert read_doc(doc_id=f"d{i}", user=ALICE) == f"d{i}"
    events = a.get_audit_events()
    assert [e.data.tool_arguments["doc_id"] for e in events] == ["d2", "d3", "d4"]
    assert a.audit_logger is not None and a.audit_logger.max_events == 3  # type: ignore[union-attr]
    assert len(Proxilion().get_audit_events()) == 0
    with pytest.raises(ConfigurationError) as info:
        Proxilion(audit_log_path=tmp_path / "a.jsonl", audit_max_events=3)
    assert info.value.config_key == "audit_max_events"
    with pytest.raises(ConfigurationError):
        Proxilion(enable_audit=False, audit_max_events=3)
    with pytest.raises(ValueError, match="max_events must be a positive int or None, got 0"):
        Proxilion(audit_max_events=0)


# -- policy registration ----------------------------------------------------------------------


def test_policy_decorator_returns_class_unchanged() -> None:
    a = Proxilion()

    class P(Policy[Any]):
        pass

    assert a.policy("x")(P) is P
    assert a.registry.get_policy("x") is P
    assert P._resource_name == "x"


@pytest.mark.parametrize(
    ("name", "cls", "exc", "match"),
    [
        (None, AllowAllPolicy, TypeError, "resource_name must be a str, not NoneType"),
        ("", AllowAllPolicy, ValueError, "resource_name must not be empty"),
        ("x", int, TypeError, "subclass of proxilion.Policy, got <class 'int'>"),
        ("x", lambda: None, TypeError, "subclass of proxilion.Policy, got <function"),
    ],
)
def test_register_policy_bad_input(name: Any, cls: Any, exc: type[Exception], match: str) -> None:
    a = Proxilion()
    with pytest.raises(exc, match=match):
        a.register_policy(name, cls)


def test_policy_decorator_bad_input() -> None:
    a = Proxilion()
    with pytest.raises(TypeError, match="resource_name must be a str, not int"):
        a.policy(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"subclass of proxilion\.Policy, got <function"):

        @a.policy("fn")  # type: ignore[type-var]
        def not_a_class() -> None:
            pass


# -- check ------------------------------------------------------------------------------------


def test_check_policy_allows_and_denies(auth: Proxilion) -> None:
    r = auth.check(ALICE, "read", "docs")
    assert (r.allowed, r.reason, r.policies_evaluated) == (
        True,
        "Policy DocsPolicy.can_read returned True",
        ["DocsPolicy"],
    )
    r = auth.check(BOB, "read", "docs")
    assert (r.allowed, r.reason, r.policies_evaluated) == (
        False,
        "Policy DocsPolicy.can_read returned False",
        ["DocsPolicy"],
    )


def test_check_result_is_bool_of_value_and_reason_shows_value(auth: Proxilion) -> None:
    r = auth.check(ALICE, "write", "docs", {"value": "token"})
    assert (r.allowed, r.reason) == (True, "Policy DocsPolicy.can_write returned token")
    r = auth.check(ALICE, "write", "docs")
    assert (r.allowed, r.reason) == (False, "Policy DocsPolicy.can_write returned None")


def test_check_passes_context_and_resource_name(auth: Proxilion) -> None:
    assert auth.check(ALICE, "echo", "docs", {"k": 1}).allowed is True
    assert auth.check(ALICE, "echo", "docs", {"k": 2}).allowed is False
    assert auth.check(ALICE, "echo", "docs").allowed is False  # context None -> {}


def test_check_policy_error_denies(auth: Proxilion) -> None:
    r = auth.check(ALICE, "explode", "docs")
    assert (r.allowed, r.reason, r.policies_evaluated) == (
        False,
        "Policy evaluation failed: db down",
        ["DocsPolicy"],
    )


def test_check_policy_constructor_error_denies() -> None:
    a = Proxilion()

    @a.policy("r")
    class Broken(Policy[Any]):
        def __init__(self, user: UserContext, resource: Any = None) -> None:
            raise ValueError("bad init")

        def can_read(self, context: dict[str, Any]) -> bool:
            return True

    r = a.check(ALICE, "read", "r")
    assert (r.allowed, r.reason, r.policies_evaluated) == (
        False,
        "Policy evaluation failed: bad init",
        ["Broken"],
    )


def test_check_unknown_resource_and_missing_method_deny(auth: Proxilion) -> None:
    for action, resource in (("read", "unknown"), ("delete", "docs")):
        r = auth.check(ALICE, action, resource)
        assert (r.allowed, r.reason, r.policies_evaluated) == (
            False,
            f"Policy DenyAllPolicy denied action '{action}'",
            ["DenyAllPolicy"],
        )


def test_check_a_non_callable_can_attribute_is_not_an_action() -> None:
    a = Proxilion()

    @a.policy("r")
    class P(Policy[Any]):
        can_read = True

    assert a.check(ALICE, "read", "r").reason == "Policy DenyAllPolicy denied action 'read'"


class _AllowingEngine(BasePolicyEngine):
    name = "test"

    def __init__(self, policies: list[str] | None = None, fail: bool = False) -> None:
        super().__init__()
        self.policies = policies or []
        self.fail = fail

    def evaluate(
        self,
        user: UserContext,
        action: str,
        resource: str,
        context: dict[str, Any] | None = None,
    ) -> AuthorizationResult:
        if self.fail:
            raise RuntimeError("engine offline")
        return AuthorizationResult.allow("engine says yes", self.policies)


def test_default_deny_override() -> None:
    a = Proxilion()
    a.engine = _AllowingEngine()
    r = a.check(ALICE, "read", "nothing")
    assert (r.allowed, r.reason, r.policies_evaluated) == (
        False,
        "No explicit policy found and default_deny is enabled",
        [],
    )
    # an engine allow naming a policy is kept
    a.engine = _AllowingEngine(["EnginePolicy"])
    assert a.check(ALICE, "read", "nothing").allowed is True
    # default_deny=False keeps the engine's allow
    b = Proxilion(default_deny=False)
    b.engine = _AllowingEngine()
    r = b.check(ALICE, "read", "nothing")
    assert (r.allowed, r.reason) == (True, "engine says yes")


def test_default_deny_only_applies_when_no_proxilion_policy_was_found(auth: Proxilion) -> None:
    auth.engine = _AllowingEngine()
    # "docs" is registered but has no can_delete: the engine's allow stands
    assert auth.check(ALICE, "delete", "docs").allowed is True


def test_engine_failure_denies() -> None:
    a = Proxilion()
    a.engine = _AllowingEngine(fail=True)
    r = a.check(ALICE, "read", "x")
    assert (r.allowed, r.reason, r.policies_evaluated) == (
        False,
        "Policy evaluation failed: engine offline",
        [],
    )


def test_check_denies_while_halted(auth: Proxilion) -> None:
    ks = KillSwitch()
    auth.set_kill_switch(ks)
    ks.activate("drift", raise_exception=False)
    r = auth.check(ALICE, "read", "docs")
    assert (r.allowed, r.reason, r.policies_evaluated) == (
        False,
        "Emergency halt active: drift",
        [],
    )
    ks.reset()
    assert auth.check(ALICE, "read", "docs").allowed is True
    auth.set_kill_switch(None)
    assert auth.kill_switch is None


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("alice", "read", "docs"), "user must be a UserContext, not str"),
        ((None, "read", "docs"), "user must be a UserContext, not NoneType"),
        ((ALICE, 1, "docs"), "action must be a str, not int"),
        ((ALICE, "read", None), "resource must be a str, not NoneType"),
        ((ALICE, "read", "docs", ["ctx"]), "context must be a dict or None, not list"),
    ],
)
def test_check_bad_input(auth: Proxilion, args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(TypeError, match=match):
        auth.check(*args)
    with pytest.raises(TypeError, match=match):
        auth.can(*args)
    with pytest.raises(TypeError, match=match):
        auth.authorize_or_raise(*args)


def test_can_and_authorize_or_raise(auth: Proxilion) -> None:
    assert auth.can(ALICE, "read", "docs") is True
    assert auth.can(BOB, "read", "docs") is False
    assert auth.authorize_or_raise(ALICE, "read", "docs").allowed is True
    with pytest.raises(AuthorizationError) as info:
        auth.authorize_or_raise(BOB, "read", "docs")
    e = info.value
    assert (e.user, e.action, e.resource, e.reason) == (
        "bob",
        "read",
        "docs",
        "Policy DocsPolicy.can_read returned False",
    )


def test_check_is_not_audited(auth: Proxilion) -> None:
    auth.check(ALICE, "read", "docs")
    auth.can(BOB, "read", "docs")
    assert auth.get_audit_events() == []


# -- authorize_with_timeout -------------------------------------------------------------------


async def test_authorize_with_timeout_returns_the_check(auth: Proxilion) -> None:
    r = await auth.authorize_with_timeout(ALICE, "read", "docs", timeout=5)
    assert r.reason == "Policy DocsPolicy.can_read returned True"
    r = await auth.authorize_with_timeout(BOB, "read", "docs")
    assert r.allowed is False


async def test_authorize_with_timeout_expires() -> None:
    a = Proxilion()
    release = threading.Event()

    @a.policy("slow")
    class Slow(Policy[Any]):
        def can_read(self, context: dict[str, Any]) -> bool:
            release.wait(10)
            return True

    try:
        with pytest.raises(ProxilionTimeoutError) as info:
            await a.authorize_with_timeout(ALICE, "read", "slow", timeout=0.05)
    finally:
        release.set()
    assert (info.value.operation, info.value.timeout) == ("authorize", 0.05)
    assert str(info.value) == "Authorization of 'read' on 'slow' timed out after 0.05s"


@pytest.mark.parametrize(
    ("timeout", "exc", "match"),
    [
        (0, ValueError, "timeout must be a positive finite number, got 0"),
        (-1.0, ValueError, "got -1.0"),
        (float("nan"), ValueError, "got nan"),
        (float("inf"), ValueError, "got inf"),
        ("1", TypeError, "timeout must be a number or None, not str"),
        (True, TypeError, "not bool"),
    ],
)
async def test_authorize_with_timeout_bad_timeout(
    auth: Proxilion, timeout: Any, exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        await auth.authorize_with_timeout(ALICE, "read", "docs", timeout=timeout)


# -- context helpers --------------------------------------------------------------------------


def test_user_and_agent_context_set_and_reset(auth: Proxilion) -> None:
    assert get_current_user() is None and get_current_agent() is None
    with auth.user_context(ALICE) as u:
        assert u is ALICE and get_current_user() is ALICE
        with auth.user_context(BOB):
            assert get_current_user() is BOB
        assert get_current_user() is ALICE
        with auth.agent_context(AGENT) as ag:
            assert ag is AGENT and get_current_agent() is AGENT
        assert get_current_agent() is None
    assert get_current_user() is None


def test_context_reset_on_exception(auth: Proxilion) -> None:
    with pytest.raises(RuntimeError), auth.user_context(ALICE):
        raise RuntimeError("x")
    assert get_current_user() is None


def test_session(auth: Proxilion) -> None:
    with auth.session(ALICE, AGENT) as pair:
        assert pair == (ALICE, AGENT)
        assert get_current_user() is ALICE and get_current_agent() is AGENT
    with auth.session(BOB) as pair2:
        assert pair2 == (BOB, None) and get_current_agent() is None
    assert get_current_user() is None and get_current_agent() is None


def test_context_manager_bad_input(auth: Proxilion) -> None:
    with pytest.raises(TypeError, match="user must be a UserContext, not str"):
        auth.user_context("alice").__enter__()  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="agent must be an AgentContext, not dict"):
        auth.agent_context({}).__enter__()  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="agent must be an AgentContext, not str"):
        auth.session(ALICE, "agent").__enter__()  # type: ignore[arg-type]
    assert get_current_user() is None


def test_context_is_per_thread(auth: Proxilion) -> None:
    seen: dict[str, Any] = {}
    barrier = threading.Barrier(2)

    def worker(name: str, user: UserContext) -> None:
        with auth.user_context(user):
            barrier.wait()  # both threads are inside their block
            seen[name] = get_current_user()

    def outsider() -> None:
        seen["outsider"] = get_current_user()

    with auth.user_context(ALICE):
        t_out = threading.Thread(target=outsider)
        t_out.start()
        t_out.join()
        threads = [
            threading.Thread(target=worker, args=("a", ALICE)),
            threading.Thread(target=worker, args=("b", BOB)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert get_current_user() is ALICE
    assert seen == {"outsider": None, "a": ALICE, "b": BOB}


async def test_context_is_per_task_and_inherited(auth: Proxilion) -> None:
    started = asyncio.Event()
    go = asyncio.Event()

    async def holder(user: UserContext) -> UserContext | None:
        with auth.user_context(user):
            started.set()
            await go.wait()
            return get_current_user()

    async def inherits() -> UserContext | None:
        return get_current_user()

    task = asyncio.create_task(holder(BOB))
    await started.wait()
    assert get_current_user() is None  # the task's value does not leak out
    with auth.user_context(ALICE):
        inner = asyncio.create_task(inherits())
    go.set()
    assert await task is BOB
    assert await inner is ALICE  # tasks copy the context at creation
    assert get_current_user() is None


# -- guards -----------------------------------------------------------------------------------


@dataclass
class FakeGuardResult:
    passed: bool
    action: str
    matched_patterns: list[str] = field(default_factory=list)
    risk_score: float = 0.0
    sanitized_input: str | None = None


class FakeGuard:
    """Fails (with the configured action) on any text containing 'EVIL'."""

    def __init__(self, action: str = "block") -> None:
        self.action = action
        self.calls: list[tuple[str, Any]] = []

    def check(self, text: str, context: dict[str, Any] | None = None) -> FakeGuardResult:
        self.calls.append((text, context))
        if "EVIL" in text:
            return FakeGuardResult(False, self.action, ["evil"], 0.9)
        return FakeGuardResult(True, "allow")

    def redact(self, text: str) -> str:
        return text.replace("EVIL", "[REDACTED]")


def test_guards_without_a_guard_pass() -> None:
    a = Proxilion()
    r = a.guard_input("ignore previous instructions", raise_on_block=True)
    assert r.passed is True
    assert str(getattr(r.action, "value", r.action)) == "allow"
    assert a.guard_output("sk-123", raise_on_block=True).passed is True
    assert a.redact_output("EVIL") == "EVIL"


def test_guard_input_rules() -> None:
    a = Proxilion(input_guard=FakeGuard())
    assert a.guard_input("fine").passed is True
    assert a.guard_input("EVIL").passed is False  # no raise without raise_on_block
    long_text = "EVIL" + "x" * 300
    with pytest.raises(InputGuardViolation) as info:
        a.guard_input(long_text, {"k": 1}, raise_on_block=True)
    assert info.value.matched_patterns == ["evil"]
    assert info.value.risk_score == 0.9
    assert info.value.input_preview == long_text[:200]
    warn = Proxilion(input_guard=FakeGuard(action="warn"))
    assert warn.guard_input("EVIL", raise_on_block=True).passed is False  # WARN never raises


def test_guard_output_rules() -> None:
    a = Proxilion(output_guard=FakeGuard())
    r = a.guard_output("an EVIL key", auto_redact=True)
    assert r.passed is False and r.sanitized_input == "an [REDACTED] key"
    assert a.guard_output("fine", auto_redact=True).sanitized_input is None
    with pytest.raises(OutputGuardViolation):
        a.guard_output("EVIL", raise_on_block=True)
    assert a.redact_output("EVIL twin") == "[REDACTED] twin"


def test_set_guards() -> None:
    a = Proxilion()
    a.set_input_guard(FakeGuard())
    assert a.guard_input("EVIL").passed is False
    a.set_input_guard(None)
    assert a.guard_input("EVIL").passed is True
    a.set_output_guard(FakeGuard())
    assert a.guard_output("EVIL").passed is False
    with pytest.raises(TypeError, match="input guard must have a check\\(\\) method, not str"):
        a.set_input_guard("guard")
    with pytest.raises(TypeError, match="output guard must have a check\\(\\) method"):
        a.set_output_guard(42)
    with pytest.raises(TypeError, match="input_text must be a str, not bytes"):
        a.guard_input(b"EVIL")  # type: ignore[arg-type]


def test_idor_pass_throughs_are_no_ops_without_protector() -> None:
    a = Proxilion()
    a.register_scope("u", "document", {"d1"})
    a.register_id_pattern("doc_id", "document")

    class FakeIDOR:
        def __init__(self) -> None:
            self.calls: list[tuple[Any, ...]] = []

        def register_scope(self, *args: Any) -> None:
            self.calls.append(("scope", *args))

        def register_id_pattern(self, *args: Any) -> None:
            self.calls.append(("pattern", *args))

    fake = FakeIDOR()
    a._idor = fake
    a.register_scope("u", "document", {"d1"})
    a.register_id_pattern("doc_id", "document")
    assert fake.calls == [("scope", "u", "document", {"d1"}), ("pattern", "doc_id", "document")]


def test_check_results_are_ordinary_authorization_results(auth: Proxilion) -> None:
    import dataclasses

    r = auth.check(ALICE, "read", "docs")
    assert type(r) is AuthorizationResult
    assert r == AuthorizationResult(
        True, "Policy DocsPolicy.can_read returned True", ["DocsPolicy"]
    )
    assert r.to_dict() == {
        "allowed": True,
        "reason": "Policy DocsPolicy.can_read returned True",
        "policies_evaluated": ["DocsPolicy"],
        "metadata": {},
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.allowed = False  # type: ignore[misc]
    assert auth.check(ALICE, "read", "docs").policies_evaluated is not r.policies_evaluated


def test_constructor_guards_are_checked() -> None:
    with pytest.raises(TypeError, match=r"input guard must have a check\(\) method, not str"):
        Proxilion(input_guard="strict")
    with pytest.raises(TypeError, match=r"output guard must have a check\(\) method, not int"):
        Proxilion(output_guard=1)
