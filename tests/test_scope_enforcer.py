"""Execution scopes (proxilion.security.scope_enforcer)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from proxilion.exceptions import ScopeViolationError
from proxilion.security.scope_enforcer import (
    BUILTIN_SCOPES,
    DEFAULT_TOOL_CLASSIFICATIONS,
    ExecutionScope,
    ScopeBinding,
    ScopeContext,
    ScopeEnforcer,
    create_scope_enforcer,
    get_current_scope,
    scoped_execution,
)
from proxilion.types import UserContext

USER = UserContext(user_id="alice", roles=["analyst"])


@pytest.fixture
def enforcer() -> ScopeEnforcer:
    return ScopeEnforcer()


class TestBinding:
    def test_actions(self) -> None:
        b = ScopeBinding(
            scope=ExecutionScope.READ_WRITE,
            allowed_actions={"Read", "WRITE"},
            denied_actions={"delete"},
        )
        assert b.allows_action("read") is True
        assert b.allows_action("write") is True
        assert b.allows_action("DELETE") is False
        assert b.allows_action("execute") is False

    def test_wildcards_and_empty_lists(self) -> None:
        assert ScopeBinding(scope=ExecutionScope.CUSTOM).allows_action("anything") is True
        assert ScopeBinding(scope=ExecutionScope.CUSTOM).allows_tool("anything") is True
        b = ScopeBinding(
            scope=ExecutionScope.CUSTOM,
            allowed_tools={"*"},
            denied_tools={"admin_*"},
            allowed_actions={"*"},
            denied_actions={"destroy"},
        )
        assert b.allows_tool("user_tool") is True
        assert b.allows_tool("ADMIN_tool") is False
        assert b.allows_action("destroy") is False
        assert ScopeBinding(scope="custom", denied_actions={"*"}).allows_action("read") is False

    def test_tool_globs(self) -> None:
        b = ScopeBinding(scope=ExecutionScope.CUSTOM, allowed_tools={"get_*", "list_users"})
        assert b.allows_tool("get_document") is True
        assert b.allows_tool("GET_User") is True
        assert b.allows_tool("list_users") is True
        assert b.allows_tool("list_groups") is False
        assert b.allows_tool("delete_user") is False

    def test_name_defaults_and_immutability(self) -> None:
        b = ScopeBinding(scope=ExecutionScope.ADMIN, allowed_tools={"x"})
        assert b.name == "admin"
        assert isinstance(b.allowed_tools, frozenset)
        with pytest.raises(FrozenInstanceError):
            b.name = "other"  # type: ignore[misc]
        assert b == ScopeBinding(scope=ExecutionScope.ADMIN, allowed_tools=frozenset({"x"}))

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"scope": "superuser"},
            {"scope": ExecutionScope.CUSTOM, "allowed_tools": "get_*"},
            {"scope": ExecutionScope.CUSTOM, "allowed_tools": {""}},
            {"scope": ExecutionScope.CUSTOM, "denied_actions": {3}},
            {"scope": ExecutionScope.CUSTOM, "allowed_tools": {"a||b"}},
            {"scope": ExecutionScope.CUSTOM, "name": 5},
        ],
    )
    def test_bad_bindings(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises((TypeError, ValueError)):
            ScopeBinding(**kwargs)


class TestBuiltins:
    def test_builtin_definitions(self) -> None:
        assert set(BUILTIN_SCOPES) == {"read_only", "read_write", "admin"}
        ro = BUILTIN_SCOPES["read_only"]
        assert {"read", "list", "search"} <= ro.allowed_actions
        assert {"write", "delete", "execute"} <= ro.denied_actions
        rw = BUILTIN_SCOPES["read_write"]
        assert {"read", "write", "create"} <= rw.allowed_actions
        assert {"delete", "execute"} <= rw.denied_actions
        admin = BUILTIN_SCOPES["admin"]
        assert admin.allowed_actions == {"*"} and not admin.denied_actions
        for name, binding in BUILTIN_SCOPES.items():
            assert binding.name == name
        with pytest.raises(TypeError):
            BUILTIN_SCOPES["admin"] = ro  # type: ignore[index]

    def test_builtins_cannot_be_removed_or_redefined(self, enforcer: ScopeEnforcer) -> None:
        assert enforcer.remove_scope("read_only") is False
        with pytest.raises(ValueError, match="cannot be redefined"):
            enforcer.create_scope("admin", allowed_tools={"*"})
        with pytest.raises(ValueError, match="cannot be redefined"):
            ScopeEnforcer(custom_scopes={"read_only": BUILTIN_SCOPES["admin"]})
        assert enforcer.get_scope("read_only") is BUILTIN_SCOPES["read_only"]

    def test_default_classification_table(self) -> None:
        import re

        read_patterns = [
            p for p, s in DEFAULT_TOOL_CLASSIFICATIONS.items() if s is ExecutionScope.READ_ONLY
        ]
        assert read_patterns
        for pattern in read_patterns:
            assert all(re.match(pattern, p, re.IGNORECASE) for p in ("get_", "read_", "list_"))


class TestScopesRegistry:
    def test_get_scope(self, enforcer: ScopeEnforcer) -> None:
        assert enforcer.get_scope("read_only").scope is ExecutionScope.READ_ONLY
        assert enforcer.get_scope(ExecutionScope.READ_WRITE).scope is ExecutionScope.READ_WRITE
        with pytest.raises(ValueError, match="Unknown scope: 'nope'"):
            enforcer.get_scope("nope")
        with pytest.raises(ValueError, match="Unknown scope"):
            enforcer.get_scope(ExecutionScope.CUSTOM)
        with pytest.raises(TypeError):
            enforcer.get_scope(3)  # type: ignore[arg-type]

    def test_create_add_remove(self, enforcer: ScopeEnforcer) -> None:
        scope = enforcer.create_scope(
            name="my_scope",
            allowed_tools={"get_*"},
            denied_tools={"delete_*"},
            allowed_actions={"read"},
            description="mine",
        )
        assert scope.scope is ExecutionScope.CUSTOM
        assert scope.name == "my_scope"
        assert enforcer.get_scope("my_scope") is scope
        assert set(enforcer.get_scopes()) == {"read_only", "read_write", "admin", "my_scope"}
        other = ScopeBinding(scope=ExecutionScope.CUSTOM, name="added")
        enforcer.add_scope("added", other)
        assert enforcer.get_scope("added") == other
        assert enforcer.remove_scope("my_scope") is True
        assert enforcer.remove_scope("my_scope") is False
        with pytest.raises(ValueError):
            enforcer.get_scope("my_scope")
        with pytest.raises(ValueError):
            enforcer.create_scope("")
        with pytest.raises(TypeError):
            enforcer.add_scope("x", {"allowed_tools": {"*"}})  # type: ignore[arg-type]

    def test_factory(self) -> None:
        custom = ScopeBinding(scope=ExecutionScope.CUSTOM, name="mine")
        e = create_scope_enforcer(
            default_scope=ExecutionScope.READ_WRITE, custom_scopes={"mine": custom}
        )
        assert e.get_scope("mine") is custom
        assert e.classify_tool("frobnicate").default_scope is ExecutionScope.READ_WRITE
        with pytest.raises(ValueError):
            ScopeEnforcer(default_scope=ExecutionScope.CUSTOM)
        with pytest.raises(TypeError):
            ScopeEnforcer(default_scope="admin")  # type: ignore[arg-type]


class TestClassification:
    @pytest.mark.parametrize(
        ("tool", "scope", "actions"),
        [
            ("get_user", ExecutionScope.READ_ONLY, {"read", "get"}),
            ("search_docs", ExecutionScope.READ_ONLY, {"read", "search"}),
            ("fetchUserProfile", ExecutionScope.READ_ONLY, {"read", "fetch"}),
            ("create_document", ExecutionScope.READ_WRITE, {"write", "create"}),
            ("update-user", ExecutionScope.READ_WRITE, {"write", "update"}),
            ("send_email", ExecutionScope.READ_WRITE, {"write", "send"}),
            ("delete_record", ExecutionScope.ADMIN, {"delete"}),
            ("drop_table", ExecutionScope.ADMIN, {"delete", "drop"}),
            ("execute_script", ExecutionScope.ADMIN, {"execute"}),
            ("run_job", ExecutionScope.ADMIN, {"execute", "run"}),
            ("get_and_delete_user", ExecutionScope.ADMIN, {"read", "get", "delete"}),
            ("read_then_overwrite", ExecutionScope.READ_WRITE, {"read", "write", "overwrite"}),
            ("GET_USER", ExecutionScope.READ_ONLY, {"read", "get"}),
            ("get_settings", ExecutionScope.READ_ONLY, {"read", "get"}),
        ],
    )
    def test_by_words(self, tool: str, scope: ExecutionScope, actions: set[str]) -> None:
        c = ScopeEnforcer().classify_tool(tool)
        assert c.tool_name == tool
        assert c.default_scope is scope
        assert c.actions == actions
        assert c.explicit is False

    def test_unknown_tools_fail_closed_by_default(self, enforcer: ScopeEnforcer) -> None:
        c = enforcer.classify_tool("process_data")
        assert c.default_scope is ExecutionScope.ADMIN
        assert c.actions == frozenset()
        lenient = ScopeEnforcer(default_scope=ExecutionScope.READ_ONLY)
        assert lenient.classify_tool("process_data").default_scope is ExecutionScope.READ_ONLY

    def test_explicit_and_pattern_classification(self, enforcer: ScopeEnforcer) -> None:
        c = enforcer.classify_tool(
            "custom_tool", scope=ExecutionScope.ADMIN, actions={"execute", "destroy"}
        )
        assert c.explicit is True
        assert c.actions == {"execute", "destroy"}
        assert enforcer.classify_tool("custom_tool") is c
        enforcer.add_tool_classification(r"^safe_", ExecutionScope.READ_ONLY)
        safe = enforcer.classify_tool("safe_operation")
        assert safe.default_scope is ExecutionScope.READ_ONLY
        assert safe.actions == {"read"}
        explicit_ro = enforcer.classify_tool("weather", scope=ExecutionScope.READ_ONLY)
        assert explicit_ro.actions == {"read"}
        with pytest.raises(ValueError):
            enforcer.add_tool_classification("(", ExecutionScope.ADMIN)
        with pytest.raises(TypeError):
            enforcer.classify_tool("x", scope="admin")  # type: ignore[arg-type]

    def test_cache_returns_the_queried_name(self, enforcer: ScopeEnforcer) -> None:
        assert enforcer.classify_tool("get_user").tool_name == "get_user"
        assert enforcer.classify_tool("Get_User").tool_name == "Get_User"


class TestValidateInScope:
    @pytest.mark.parametrize(
        ("scope", "tool", "action", "allowed", "reason"),
        [
            ("read_only", "get_user", "read", True, None),
            ("read_only", "list_documents", "list", True, None),
            ("read_only", "get_user", "execute", True, None),
            (
                "read_only",
                "update_user",
                "write",
                False,
                "tool is not allowed (not in the tool list of 'read_only')",
            ),
            (
                "read_only",
                "delete_user",
                "execute",
                False,
                "tool is not allowed (not in the tool list of 'read_only')",
            ),
            (
                "read_only",
                "get_and_delete_user",
                "read",
                False,
                "tool requires scope 'admin', not allowed in 'read_only'",
            ),
            (
                "read_only",
                "get_user",
                "write",
                False,
                "action 'write' is not allowed in 'read_only'",
            ),
            (
                "read_only",
                "process_data",
                "read",
                False,
                "tool is not allowed (not in the tool list of 'read_only')",
            ),
            ("read_write", "create_user", "create", True, None),
            ("read_write", "update_user", "modify", True, None),
            ("read_write", "send_email", "execute", True, None),
            (
                "read_write",
                "delete_document",
                "delete",
                False,
                "tool is not allowed (not in the tool list of 'read_write')",
            ),
            ("admin", "delete_user", "delete", True, None),
            ("admin", "execute_script", "execute", True, None),
            ("admin", "process_data", "anything", True, None),
        ],
    )
    def test_builtin_scopes(
        self,
        enforcer: ScopeEnforcer,
        scope: str,
        tool: str,
        action: str,
        allowed: bool,
        reason: str | None,
    ) -> None:
        assert enforcer.validate_in_scope(tool, action, enforcer.get_scope(scope)) == (
            allowed,
            reason,
        )
        assert enforcer.validate_in_scope(tool, action, scope) == (allowed, reason)

    def test_custom_scope(self, enforcer: ScopeEnforcer) -> None:
        scope = enforcer.create_scope(
            name="user_viewer",
            allowed_tools={"get_user", "list_users", "search_users", "purge_cache"},
            denied_tools={"*_admin*", "*_config*"},
            allowed_actions={"read", "list", "search"},
        )
        assert enforcer.validate_in_scope("get_user", "read", scope) == (True, None)
        assert enforcer.validate_in_scope("list_users", "list", scope) == (True, None)
        assert enforcer.validate_in_scope("get_admin_config", "read", scope) == (
            False,
            "tool is not allowed (matches a denied pattern of 'user_viewer')",
        )
        # the name implies "delete" even though the caller claims "read"
        assert enforcer.validate_in_scope("purge_cache", "read", scope) == (
            False,
            "action 'delete' (implied by the tool name) is not allowed in 'user_viewer'",
        )

    def test_get_allowed_tools(self, enforcer: ScopeEnforcer) -> None:
        ro = enforcer.get_allowed_tools("read_only")
        assert {"get_*", "read_*"} <= ro
        assert "delete_*" not in ro
        assert enforcer.get_allowed_tools("admin") == {"*"}
        assert enforcer.get_allowed_tools(ScopeBinding(scope="custom")) == {"*"}

    def test_bad_arguments(self, enforcer: ScopeEnforcer) -> None:
        with pytest.raises(ValueError):
            enforcer.validate_in_scope("", "read", "read_only")
        with pytest.raises(ValueError):
            enforcer.validate_in_scope("get_x", " ", "read_only")
        with pytest.raises(ValueError):
            enforcer.validate_in_scope("get_x", "read", "missing")


class TestScopeContext:
    def test_validate_record_close(self, enforcer: ScopeEnforcer) -> None:
        ctx = ScopeContext(enforcer, enforcer.get_scope("read_only"), USER)
        assert ctx.validate_tool("get_user", "read") is True
        assert ctx.is_tool_allowed("delete_user", "delete") is False
        with pytest.raises(ScopeViolationError) as info:
            ctx.validate_tool("delete_user", "delete")
        err = info.value
        assert err.tool_name == "delete_user"
        assert err.scope_name == "read_only"
        assert err.message == (
            "Tool 'delete_user' not allowed in scope 'read_only': tool is not allowed "
            "(not in the tool list of 'read_only')"
        )
        assert ctx.get_calls() == [("get_user", "read")]
        assert ctx.get_tool_names() == ["get_user"]
        assert ctx.get_violations() == [
            ("delete_user", "delete", "tool is not allowed (not in the tool list of 'read_only')")
        ]
        assert ctx.is_closed is False
        ctx.close()
        assert ctx.is_closed is True
        with pytest.raises(RuntimeError, match="closed"):
            ctx.validate_tool("get_user", "read")
        with pytest.raises(RuntimeError, match="closed"):
            ctx.activate()

    def test_default_action(self, enforcer: ScopeEnforcer) -> None:
        ctx = ScopeContext(enforcer, enforcer.get_scope("read_only"), USER)
        ctx.default_action = "write"
        assert ctx.is_tool_allowed("get_user") is False
        ctx.default_action = "read"
        assert ctx.validate_tool("get_user") is True
        assert ctx.get_calls() == [("get_user", "read")]

    def test_bad_construction(self, enforcer: ScopeEnforcer) -> None:
        with pytest.raises(TypeError):
            ScopeContext("enforcer", enforcer.get_scope("admin"))  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            ScopeContext(enforcer, "admin")  # type: ignore[arg-type]

    def test_scoped_execution_and_current_scope(self, enforcer: ScopeEnforcer) -> None:
        assert get_current_scope() is None
        with scoped_execution(enforcer, "admin", USER) as outer:
            assert get_current_scope() is outer
            with scoped_execution(enforcer, ExecutionScope.READ_ONLY, USER) as inner:
                assert inner.scope.scope is ExecutionScope.READ_ONLY
                assert get_current_scope() is inner
            assert inner.is_closed
            assert get_current_scope() is outer
            outer.validate_tool("delete_user", "delete")
        assert outer.is_closed
        assert get_current_scope() is None
        assert outer.get_calls() == [("delete_user", "delete")]

    def test_closed_on_exception(self, enforcer: ScopeEnforcer) -> None:
        opened: list[ScopeContext] = []
        with pytest.raises(ScopeViolationError), scoped_execution(enforcer, "read_only") as ctx:
            opened.append(ctx)
            ctx.validate_tool("drop_table", "execute")
        assert opened[0].is_closed
        assert get_current_scope() is None

    def test_closing_an_outer_scope_first(self, enforcer: ScopeEnforcer) -> None:
        outer = ScopeContext(enforcer, enforcer.get_scope("admin"), USER).activate()
        inner = ScopeContext(enforcer, enforcer.get_scope("read_only"), USER).activate()
        outer.close()
        assert get_current_scope() is inner
        inner.close()
        assert get_current_scope() is None

    def test_current_scope_is_per_thread_and_per_task(self, enforcer: ScopeEnforcer) -> None:
        seen: list[Any] = []
        with scoped_execution(enforcer, "admin", USER):
            t = threading.Thread(target=lambda: seen.append(get_current_scope()))
            t.start()
            t.join()
        assert seen == [None]

        async def task(scope: str) -> str | None:
            with scoped_execution(enforcer, scope, USER):
                await asyncio.sleep(0)
                current = get_current_scope()
                return None if current is None else current.scope_name

        async def main() -> list[str | None]:
            return list(await asyncio.gather(task("admin"), task("read_only")))

        assert asyncio.run(main()) == ["admin", "read_only"]


class TestThreads:
    def test_concurrent_creation_and_classification(self) -> None:
        e = ScopeEnforcer()
        barrier = threading.Barrier(10)
        results: list[Any] = []
        lock = threading.Lock()

        def work(i: int) -> None:
            barrier.wait()
            scope = e.create_scope(name=f"scope_{i}", allowed_tools={f"tool_{i}"})
            c = e.classify_tool(f"get_user_{i}")
            ok = e.validate_in_scope(f"tool_{i}", "read", scope)
            with lock:
                results.append((scope.name, c.default_scope, ok))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r[0] for r in results) == sorted(f"scope_{i}" for i in range(10))
        assert all(r[1] is ExecutionScope.READ_ONLY for r in results)
        # tool_i has no verb: admin-classified, but custom scopes have no level
        assert all(r[2] == (True, None) for r in results)
        assert len(e.get_scopes()) == 13
