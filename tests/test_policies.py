"""Policies, the registry, built-in policies and the simple engine (API.md 2 and 3.2)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Any, ClassVar

import pytest

from proxilion import Policy, PolicyNotFoundError, UserContext
from proxilion.engines import SimplePolicyEngine, create_engine
from proxilion.engines.base import EngineNotAvailableError, PolicyEngineError
from proxilion.policies import (
    ActionContext,
    AllowAllPolicy,
    AttributeBasedPolicy,
    CompositePolicy,
    DenyAllPolicy,
    OwnershipPolicy,
    PolicyRegistry,
    PolicyWithScope,
    RoleBasedPolicy,
    Scope,
    get_global_registry,
    reset_global_registry,
)
from proxilion.policies.builtin import STANDARD_ACTIONS

ALICE = UserContext("alice", ["analyst"], attributes={"dept": "finance", "level": 3})
BOB = UserContext("bob", ["guest"])


class DocumentPolicy(Policy[Any]):
    def can_read(self, context: dict[str, Any]) -> bool:
        return "analyst" in self.user.roles

    def can_write(self, context: dict[str, Any]) -> Any:
        return context.get("token")  # returned as-is by authorize()

    can_not_callable = 5


# -- Policy base ------------------------------------------------------------------------------


def test_policy_stores_user_and_resource() -> None:
    p = DocumentPolicy(ALICE, "doc-1")
    assert p.user is ALICE and p.resource == "doc-1"
    assert DocumentPolicy(ALICE).resource is None


def test_policy_rejects_a_non_user() -> None:
    with pytest.raises(TypeError, match="user must be a UserContext, not str"):
        DocumentPolicy("alice")  # type: ignore[arg-type]


def test_authorize_and_can() -> None:
    p = DocumentPolicy(ALICE)
    assert p.authorize("read") is True
    assert p.can("read") is True
    assert DocumentPolicy(BOB).authorize("read") is False
    # missing method: deny by default
    assert p.authorize("delete") is False
    # a non-callable can_* attribute is not an action
    assert p.authorize("not_callable") is False
    # the result is returned unchanged, with {} for a missing context
    assert p.authorize("write", {"token": "t-1"}) == "t-1"
    assert p.authorize("write") is None
    with pytest.raises(TypeError, match="action must be a str"):
        p.authorize(3)  # type: ignore[arg-type]


def test_base_policy_is_instantiable_and_denies() -> None:
    p: Policy[Any] = Policy(ALICE)
    assert p.authorize("read") is False
    assert Policy.get_available_actions() == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DatabaseQueryPolicy", "database_query"),
        ("DocumentPolicy", "document"),
        ("HTTPRequestPolicy", "http_request"),
        ("S3BucketPolicy", "s3_bucket"),
        ("Policy", "policy"),
        ("Reports", "reports"),
    ],
)
def test_get_resource_name(name: str, expected: str) -> None:
    cls = type(name, (Policy,), {})
    assert cls.get_resource_name() == expected


def test_registered_name_wins() -> None:
    reg = PolicyRegistry()

    class WeirdPolicy(Policy[Any]):
        pass

    reg.register("custom", WeirdPolicy)
    assert WeirdPolicy.get_resource_name() == "custom"


def test_get_available_actions() -> None:
    assert DocumentPolicy.get_available_actions() == ["read", "write"]
    assert DenyAllPolicy.get_available_actions() == sorted(STANDARD_ACTIONS)


def test_scope_and_policy_with_scope() -> None:
    s = Scope(ALICE, ["a"])
    assert s.resolve() == [] and s.scope == ["a"] and s.user is ALICE
    with pytest.raises(TypeError, match="scope must be a list"):
        Scope(ALICE, ("a",))  # type: ignore[arg-type]

    class Projects(PolicyWithScope[Any]):
        class Scope(PolicyWithScope.Scope):
            def resolve(self) -> list[Any]:
                return ["p1"]

    assert issubclass(PolicyWithScope.Scope, Scope)
    assert Projects.Scope(ALICE, []).resolve() == ["p1"]


def test_action_context() -> None:
    assert ActionContext().to_dict() == {}
    ts = datetime(2025, 1, 1, tzinfo=timezone.utc)
    ac = ActionContext("r1", "10.0.0.1", ts, {"k": "v"})
    assert ac.to_dict() == {
        "request_id": "r1",
        "ip_address": "10.0.0.1",
        "timestamp": "2025-01-01T00:00:00+00:00",
        "k": "v",
    }
    ac2 = ac.with_metadata(extra=1)
    assert ac2.metadata == {"k": "v", "extra": 1}
    assert ac.metadata == {"k": "v"}
    with pytest.raises(TypeError, match="metadata must be a dict"):
        ActionContext(metadata=[1])  # type: ignore[arg-type]


# -- registry ---------------------------------------------------------------------------------


def test_registry_basics() -> None:
    reg = PolicyRegistry()

    @reg.policy("docs")
    class DocsPolicy(Policy[Any]):
        pass

    assert DocsPolicy._resource_name == "docs"
    assert reg.get_policy("docs") is DocsPolicy
    assert reg.has_policy("docs") and "docs" in reg and len(reg) == 1
    assert reg.list_policies() == {"docs": "DocsPolicy"}
    assert isinstance(reg.get_policy_instance("docs", ALICE, "r"), DocsPolicy)
    assert reg.get_policy_instance("docs", ALICE, "r").resource == "r"
    assert reg.lookup("docs") is DocsPolicy and reg.lookup("nope") is None
    assert reg.unregister("docs") is True
    assert reg.unregister("docs") is False
    assert not reg.has_policy("docs")


def test_registry_missing_policy_raises_listing_available() -> None:
    reg = PolicyRegistry()
    reg.register("b", DocumentPolicy)
    reg.register("a", DocumentPolicy)
    with pytest.raises(PolicyNotFoundError) as info:
        reg.get_policy("zzz")
    assert info.value.resource == "zzz"
    assert info.value.available_policies == ["a", "b"]


def test_registry_default_policy() -> None:
    reg = PolicyRegistry(default_policy=DenyAllPolicy)
    assert reg.get_policy("anything") is DenyAllPolicy
    assert reg.default_policy is DenyAllPolicy
    assert not reg.has_policy("anything")
    reg.set_default_policy(None)
    with pytest.raises(PolicyNotFoundError):
        reg.get_policy("anything")
    reg.set_default_policy(AllowAllPolicy)
    assert reg.get_policy("x") is AllowAllPolicy


def test_registry_overwrite_warns_not_raises(caplog: pytest.LogCaptureFixture) -> None:
    reg = PolicyRegistry()

    class One(Policy[Any]):
        pass

    class Two(Policy[Any]):
        pass

    reg.register("r", One)
    with caplog.at_level(logging.WARNING, logger="proxilion.policies.registry"):
        reg.register("r", Two)
    assert reg.get_policy("r") is Two
    assert "Replacing policy One for resource 'r' with Two" in caplog.text


def test_register_by_convention() -> None:
    reg = PolicyRegistry()

    class CustomerRecordPolicy(Policy[Any]):
        pass

    assert reg.register_by_convention(CustomerRecordPolicy) == "customer_record"
    assert reg.get_policy("customer_record") is CustomerRecordPolicy


def test_registry_clear_and_authorization_tracking() -> None:
    reg = PolicyRegistry()
    reg.register("a", DocumentPolicy)
    reg.mark_authorized("a")
    reg.mark_authorized("b")
    assert reg.get_authorized_resources() == {"a", "b"}
    assert reg.verify_all_authorized(["a", "b"]) == (True, [])
    assert reg.verify_all_authorized(["c", "a", "d"]) == (False, ["c", "d"])
    reg.clear_authorized()
    assert reg.get_authorized_resources() == set()
    reg.mark_authorized("a")
    reg.clear()
    assert reg.list_policies() == {} and reg.get_authorized_resources() == set()


@pytest.mark.parametrize(
    ("name", "cls", "exc", "match"),
    [
        (3, DocumentPolicy, TypeError, "resource_name must be a str, not int"),
        ("", DocumentPolicy, ValueError, "resource_name must not be empty"),
        ("x", object, TypeError, "subclass of proxilion.Policy, got <class 'object'>"),
        ("x", DocumentPolicy(ALICE), TypeError, "subclass of proxilion.Policy, got"),
        ("x", "DocumentPolicy", TypeError, "got 'DocumentPolicy'"),
    ],
)
def test_registry_bad_input(name: Any, cls: Any, exc: type[Exception], match: str) -> None:
    reg = PolicyRegistry()
    with pytest.raises(exc, match=match):
        reg.register(name, cls)
    assert reg.list_policies() == {}


def test_registry_bad_default() -> None:
    with pytest.raises(TypeError, match=r"subclass of proxilion\.Policy"):
        PolicyRegistry(default_policy=int)  # type: ignore[arg-type]


def test_registry_is_thread_safe() -> None:
    reg = PolicyRegistry()
    classes = [type(f"P{i}Policy", (Policy,), {}) for i in range(8)]
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        for j in range(200):
            reg.register(f"r{i}-{j}", classes[i])
            reg.mark_authorized(f"r{i}-{j}")
            assert reg.get_policy(f"r{i}-{j}") is classes[i]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reg.list_policies()) == 1600
    assert len(reg.get_authorized_resources()) == 1600


def test_global_registry() -> None:
    reset_global_registry()
    g = get_global_registry()
    assert get_global_registry() is g
    g.register("x", DocumentPolicy)
    reset_global_registry()
    assert get_global_registry() is not g
    assert get_global_registry().list_policies() == {}


# -- built-in policies ------------------------------------------------------------------------


@pytest.mark.parametrize("action", STANDARD_ACTIONS)
def test_deny_all_and_allow_all(action: str) -> None:
    assert DenyAllPolicy(ALICE).authorize(action) is False
    assert AllowAllPolicy(ALICE).authorize(action) is True


def test_allow_all_does_not_cover_unknown_actions() -> None:
    assert AllowAllPolicy(ALICE).authorize("launch_missiles") is False


class ReportPolicy(RoleBasedPolicy):
    role_permissions: ClassVar[dict[str, Any]] = {"read": ["analyst", "admin"], "delete": {"admin"}}

    def can_list(self, context: dict[str, Any]) -> bool:
        return True


def test_role_based_policy() -> None:
    assert ReportPolicy.get_available_actions() == ["delete", "list", "read"]
    assert ReportPolicy(ALICE).authorize("read") is True
    assert ReportPolicy(ALICE).authorize("delete") is False
    assert ReportPolicy(UserContext("root", ["admin"])).authorize("delete") is True
    assert ReportPolicy(BOB).authorize("read") is False
    assert ReportPolicy(BOB).authorize("list") is True  # hand-written method kept
    assert ReportPolicy(ALICE).authorize("write") is False
    assert RoleBasedPolicy(ALICE).authorize("read") is False


def test_role_based_policy_hand_written_method_wins() -> None:
    class Custom(RoleBasedPolicy):
        role_permissions: ClassVar[dict[str, Any]] = {"read": ["analyst"]}

        def can_read(self, context: dict[str, Any]) -> bool:
            return False

    assert Custom(ALICE).authorize("read") is False


@pytest.mark.parametrize(
    ("perms", "exc", "match"),
    [
        ({"read": "admin"}, TypeError, "must be a collection of role names, got str"),
        ({"read": [1]}, TypeError, "holds a non-str role: 1"),
        ({"bad-name": ["a"]}, ValueError, "is not a valid identifier"),
        ({3: ["a"]}, TypeError, "action names must be str, got int"),
        (["read"], TypeError, "role_permissions must be a mapping"),
    ],
)
def test_role_based_policy_bad_declarations(perms: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        type("Bad", (RoleBasedPolicy,), {"role_permissions": perms})


class FinancePolicy(AttributeBasedPolicy):
    attribute_rules: ClassVar[dict[str, Any]] = {
        "read": {"dept": ["finance", "audit"], "level": lambda v: v >= 3},
        "write": {"dept": "finance", "level": lambda v: v >= 5},
    }


def test_attribute_based_policy() -> None:
    assert FinancePolicy.get_available_actions() == ["read", "write"]
    assert FinancePolicy(ALICE).authorize("read") is True
    assert FinancePolicy(ALICE).authorize("write") is False  # level 3 < 5
    assert (
        FinancePolicy(UserContext("c", attributes={"dept": "hr", "level": 9})).can("read") is False
    )
    assert FinancePolicy(UserContext("d", attributes={"dept": "finance"})).can("read") is False
    assert FinancePolicy(BOB).authorize("read") is False  # no attributes at all


def test_attribute_rule_must_return_bool() -> None:
    class Sloppy(AttributeBasedPolicy):
        attribute_rules: ClassVar[dict[str, Any]] = {"read": {"level": lambda v: "yes"}}

    with pytest.raises(TypeError, match="returned str, expected bool"):
        Sloppy(ALICE).authorize("read")


@pytest.mark.parametrize(
    ("rules", "exc", "match"),
    [
        ({"read": {}}, ValueError, r"attribute_rules\['read'\] is empty"),
        ({"read": ["dept"]}, TypeError, "must be a mapping attribute -> requirement"),
        ({"read": {1: 2}}, TypeError, "has a non-str key"),
        ("read", TypeError, "attribute_rules must be a mapping"),
    ],
)
def test_attribute_policy_bad_declarations(rules: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        type("Bad", (AttributeBasedPolicy,), {"attribute_rules": rules})


class Doc:
    def __init__(self, owner_id: str) -> None:
        self.owner_id = owner_id


def test_ownership_policy_owner_sources() -> None:
    assert OwnershipPolicy.get_available_actions() == ["delete", "read", "update", "write"]
    assert OwnershipPolicy(ALICE, Doc("alice")).authorize("read") is True
    assert OwnershipPolicy(ALICE, Doc("bob")).authorize("read") is False
    assert OwnershipPolicy(ALICE, {"owner_id": "alice"}).authorize("delete") is True
    assert OwnershipPolicy(ALICE, "documents").authorize("read", {"owner_id": "alice"}) is True
    assert OwnershipPolicy(ALICE, "documents").authorize("read", {"owner_id": "bob"}) is False
    assert OwnershipPolicy(ALICE, "documents").authorize("read") is False  # unknown owner
    assert OwnershipPolicy(ALICE, Doc("alice")).authorize("execute") is False  # not owned action


def test_ownership_policy_empty_owner_never_matches() -> None:
    nobody = UserContext("")
    assert OwnershipPolicy(nobody, {"owner_id": ""}).authorize("read") is False


def test_ownership_admin_override_is_explicit_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class TicketPolicy(OwnershipPolicy):
        owner_field = "created_by"
        owned_actions = ("read", "close")
        admin_roles = frozenset({"support_lead"})

    lead = UserContext("lead", ["support_lead"])
    assert TicketPolicy.get_available_actions() == ["close", "read"]
    with caplog.at_level(logging.WARNING, logger="proxilion.policies"):
        assert TicketPolicy(lead, {"created_by": "alice"}).authorize("close") is True
    assert "Admin override: user 'lead' (role 'support_lead')" in caplog.text
    assert TicketPolicy(ALICE, {"created_by": "alice"}).authorize("close") is True
    assert TicketPolicy(BOB, {"created_by": "alice"}).authorize("close") is False
    # the base class has no admin roles: nobody overrides
    assert OwnershipPolicy(UserContext("root", ["admin"]), Doc("x")).authorize("read") is False


def test_ownership_bad_declarations() -> None:
    with pytest.raises(TypeError, match="admin_roles must be a collection of roles, not a str"):
        type("Bad", (OwnershipPolicy,), {"admin_roles": "admin"})
    with pytest.raises(TypeError, match="owner_field must be a non-empty str"):
        type("Bad", (OwnershipPolicy,), {"owner_field": ""})
    with pytest.raises(TypeError, match="owned_actions must be a sequence of actions"):
        type("Bad", (OwnershipPolicy,), {"owned_actions": "read"})


class Boom(Policy[Any]):
    def can_read(self, context: dict[str, Any]) -> bool:
        raise RuntimeError("db down")


class ExportAll(CompositePolicy):
    policies = (ReportPolicy, FinancePolicy)


class ExportAny(CompositePolicy):
    policies = (ReportPolicy, FinancePolicy)
    mode = "any"


def test_composite_policy_all_and_any() -> None:
    assert ExportAll.get_available_actions() == ["delete", "list", "read", "write"]
    assert ExportAll(ALICE).authorize("read") is True  # analyst and finance level 3
    assert ExportAll(BOB).authorize("list") is False  # FinancePolicy has no can_list
    assert ExportAny(BOB).authorize("list") is True
    assert ExportAny(BOB).authorize("read") is False
    finance_guest = UserContext("g", ["guest"], attributes={"dept": "audit", "level": 4})
    assert ExportAll(finance_guest).authorize("read") is False
    assert ExportAny(finance_guest).authorize("read") is True


def test_composite_member_error_denies(caplog: pytest.LogCaptureFixture) -> None:
    class WithBoom(CompositePolicy):
        policies = (AllowAllPolicy, Boom)
        mode = "any"

    class WithBoomAll(CompositePolicy):
        policies = (AllowAllPolicy, Boom)

    with caplog.at_level(logging.WARNING, logger="proxilion.policies"):
        assert WithBoomAll(ALICE).authorize("read") is False
    assert "Policy Boom raised in WithBoomAll (counted as deny): db down" in caplog.text
    assert WithBoom(ALICE).authorize("read") is True  # another member allows


def test_empty_composite_denies() -> None:
    class Empty(CompositePolicy):
        pass

    assert Empty(ALICE).authorize("read") is False
    assert CompositePolicy(ALICE).authorize("read") is False


def test_composite_bad_declarations() -> None:
    with pytest.raises(ValueError, match="mode must be 'all' or 'any', got 'most'"):
        type("Bad", (CompositePolicy,), {"mode": "most"})
    with pytest.raises(TypeError, match="holds a non-Policy item: 3"):
        type("Bad", (CompositePolicy,), {"policies": [3]})
    with pytest.raises(TypeError, match="must be a sequence of Policy subclasses"):
        type("Bad", (CompositePolicy,), {"policies": DenyAllPolicy})


# -- engines ----------------------------------------------------------------------------------


def test_simple_engine_denies_unknown_resources() -> None:
    engine = SimplePolicyEngine()
    r = engine.evaluate(ALICE, "read", "nothing")
    assert (r.allowed, r.reason, r.policies_evaluated) == (
        False,
        "Policy DenyAllPolicy denied action 'read'",
        ["DenyAllPolicy"],
    )


def test_simple_engine_own_registry() -> None:
    engine = SimplePolicyEngine()
    engine.register_policy("docs", DocumentPolicy)
    r = engine.evaluate(ALICE, "read", "docs")
    assert (r.allowed, r.reason, r.policies_evaluated) == (
        True,
        "Policy DocumentPolicy allowed action 'read'",
        ["DocumentPolicy"],
    )
    engine.register_policy("boom", Boom)
    r3 = engine.evaluate(ALICE, "read", "boom")
    assert (r3.allowed, r3.reason) == (False, "Policy evaluation failed: db down")


def test_simple_engine_config() -> None:
    allow = SimplePolicyEngine({"default_policy": AllowAllPolicy})
    assert allow.evaluate(ALICE, "read", "x").allowed is True
    none = SimplePolicyEngine({"default_policy": None})
    r = none.evaluate(ALICE, "read", "x")
    assert (r.allowed, r.reason, r.policies_evaluated) == (
        False,
        "No policy found for resource 'x'",
        [],
    )
    strict = SimplePolicyEngine({"default_policy": None, "allow_missing_policies": False})
    with pytest.raises(PolicyNotFoundError):
        strict.evaluate(ALICE, "read", "x")


@pytest.mark.parametrize(
    ("config", "exc", "match"),
    [
        ({"default_polcy": DenyAllPolicy}, ValueError, "unknown engine_config key"),
        ({"allow_missing_policies": "yes"}, TypeError, "must be a bool, not str"),
        ({"default_policy": dict}, TypeError, "subclass of proxilion.Policy"),
        ([("default_policy", None)], TypeError, "engine_config must be a dict or None"),
    ],
)
def test_simple_engine_bad_config(config: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        SimplePolicyEngine(config)


@pytest.mark.parametrize("name", ["simple", "SIMPLE", " Simple "])
def test_create_engine_simple(name: str) -> None:
    assert isinstance(create_engine(name), SimplePolicyEngine)


@pytest.mark.parametrize("name", ["casbin", "OPA"])
def test_optional_engines_not_installed(name: str) -> None:
    with pytest.raises(EngineNotAvailableError) as info:
        create_engine(name)
    key = name.lower()
    assert info.value.engine_name == key
    assert str(info.value).startswith(f"[{key}] The optional {key} policy engine isn't installed")


def test_unknown_engine() -> None:
    with pytest.raises(EngineNotAvailableError) as info:
        create_engine("rego-magic")
    assert str(info.value).startswith("[rego-magic] Unknown engine type: 'rego-magic'")
    assert isinstance(info.value, PolicyEngineError)
    with pytest.raises(TypeError, match="policy_engine must be a str, not NoneType"):
        create_engine(None)  # type: ignore[arg-type]


async def test_engine_evaluate_async() -> None:
    r = await SimplePolicyEngine().evaluate_async(ALICE, "read", "x")
    assert r.allowed is False and SimplePolicyEngine.is_available()


def test_subclass_narrowing_drops_parent_grants() -> None:
    class ReadOnlyReports(ReportPolicy):
        role_permissions: ClassVar[dict[str, Any]] = {"read": ["analyst"]}

    admin = UserContext("root", ["admin", "analyst"])
    assert ReportPolicy(admin).authorize("delete") is True
    assert ReadOnlyReports(admin).authorize("delete") is False
    assert ReadOnlyReports.get_available_actions() == ["list", "read"]  # can_list hand-written

    class ReadOnlyOwnership(OwnershipPolicy):
        owned_actions = ("read",)

    assert ReadOnlyOwnership(ALICE, Doc("alice")).authorize("delete") is False
    assert ReadOnlyOwnership.get_available_actions() == ["read"]

    class NarrowFinance(FinancePolicy):
        attribute_rules: ClassVar[dict[str, Any]] = {"write": {"dept": "finance"}}

    assert NarrowFinance(ALICE).authorize("read") is False
    assert NarrowFinance(ALICE).authorize("write") is True
