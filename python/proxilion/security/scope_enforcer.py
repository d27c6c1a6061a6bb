"""Execution scopes: read-only, read-write and admin sessions for tool calls.

A *scope* bounds what an agent may do during one task: a support bot answering a question
runs ``read_only`` and cannot delete anything even if a prompt injection asks it to. A
:class:`ScopeBinding` lists allowed/denied tool globs and allowed/denied actions; the
:class:`ScopeEnforcer` holds the built-in scopes (:data:`BUILTIN_SCOPES`) and custom ones,
classifies tools by the verbs in their names, and answers "may this tool run in this scope?".
A :class:`ScopeContext` is one entered scope for one user; it records the calls it allowed
and raises :class:`~proxilion.exceptions.ScopeViolationError` for the others.

How a call is decided (:meth:`ScopeEnforcer.validate_in_scope`), first failure wins:

1. the scope's tool lists: a denied glob refuses; a non-empty allow list must match;
2. the scope level: a tool classified ``admin`` cannot run in ``read_only`` or
   ``read_write`` (custom scopes have no level and rely on their lists);
3. the actions: the declared action, and every action implied by the tool's name
   (``delete_user`` implies ``delete``), must be allowed by the scope. The generic default
   action ``"execute"`` stands for "whatever the tool does", so for a tool whose name implies
   actions only those are checked.

Differences from the original SDK (deliberate, for security):

* A tool whose name has no known verb is classified ``admin`` by default (the original:
  ``read_only``), so unknown tools are refused in restricted scopes until classified with
  :meth:`ScopeEnforcer.classify_tool`. Pass ``default_scope=`` to change it.
* Classification looks at every word of the name, so ``get_and_delete_user`` is ``admin``,
  not ``read_only`` because it starts with ``get_``.
* Built-in scopes cannot be removed or redefined, and bindings are immutable.
* The entered scope is also kept in a context variable (:func:`get_current_scope`), so
  ``@scoped_tool`` functions called inside an ``@enforce_scope`` function are checked even
  when the scope context is not passed down explicitly.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType, TracebackType
from typing import Any

from proxilion.exceptions import ScopeViolationError
from proxilion.security._tool_patterns import check_name, compile_pattern, normalize_tool_name
from proxilion.types import UserContext

__all__ = [
    "BUILTIN_SCOPES",
    "DEFAULT_TOOL_CLASSIFICATIONS",
    "ExecutionScope",
    "ScopeBinding",
    "ScopeContext",
    "ScopeEnforcer",
    "ToolClassification",
    "create_scope_enforcer",
    "get_current_scope",
    "scoped_execution",
]

logger = logging.getLogger("proxilion.security.scope_enforcer")

_MAX_CACHED_CLASSIFICATIONS = 8192


class ExecutionScope(Enum):
    """Privilege level of a scope (``CUSTOM``: defined only by its lists)."""

    READ_ONLY = "read_only"
    READ_WRITE = "read_write"
    ADMIN = "admin"
    CUSTOM = "custom"


_LEVEL: dict[ExecutionScope, int] = {
    ExecutionScope.READ_ONLY: 0,
    ExecutionScope.READ_WRITE: 1,
    ExecutionScope.ADMIN: 2,
}


def _action_key(action: str) -> str:
    return normalize_tool_name(action.strip())


def _str_set(values: object, what: str) -> frozenset[str]:
    if values is None:
        return frozenset()
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise TypeError(f"{what} must be a set of strings, not {type(values).__name__}")
    out: set[str] = set()
    for v in values:
        check_name(v, f"{what} entry")
        out.add(v)
    return frozenset(out)


@dataclass(frozen=True)
class ScopeBinding:
    """What a scope allows. Immutable; sets are stored as frozensets.

    Empty allow lists mean "no restriction" on that axis; deny lists always win. Tool
    entries are globs matched case-insensitively (``"get_*"``); actions compare
    case-insensitively, and ``"*"`` in a list means every action or tool.

    Args:
        scope: the privilege level (:class:`ExecutionScope`).
        allowed_tools / denied_tools: tool globs.
        allowed_actions / denied_actions: action names.
        name: the scope's name (defaults to ``scope.value``).
        description: free text.
    """

    scope: ExecutionScope
    allowed_tools: AbstractSet[str] = frozenset()
    denied_tools: AbstractSet[str] = frozenset()
    allowed_actions: AbstractSet[str] = frozenset()
    denied_actions: AbstractSet[str] = frozenset()
    name: str = ""
    description: str = ""
    _allow_rx: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _deny_rx: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _allow_act: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)
    _deny_act: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        scope: Any = self.scope
        if not isinstance(scope, ExecutionScope):
            try:
                scope = ExecutionScope(scope)
            except ValueError:
                raise ValueError(f"Unknown execution scope: {self.scope!r}") from None
            object.__setattr__(self, "scope", scope)
        for attr in ("allowed_tools", "denied_tools", "allowed_actions", "denied_actions"):
            object.__setattr__(self, attr, _str_set(getattr(self, attr), attr))
        name: Any = self.name
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if not name.strip():
            object.__setattr__(self, "name", scope.value)
        if not isinstance(self.description, str):
            raise TypeError("description must be a str")
        if self.allowed_tools:
            object.__setattr__(self, "_allow_rx", compile_pattern("|".join(self.allowed_tools)))
        if self.denied_tools:
            object.__setattr__(self, "_deny_rx", compile_pattern("|".join(self.denied_tools)))
        object.__setattr__(self, "_allow_act", frozenset(map(_action_key, self.allowed_actions)))
        object.__setattr__(self, "_deny_act", frozenset(map(_action_key, self.denied_actions)))

    def allows_action(self, action: str) -> bool:
        """True when ``action`` is not denied and (if an allow list exists) is allowed."""
        key = _action_key(check_name(action, "action"))
        if "*" in self._deny_act or key in self._deny_act:
            return False
        if not self._allow_act:
            return True
        return "*" in self._allow_act or key in self._allow_act

    def tool_denied(self, tool_name: str) -> bool:
        """True when a deny glob matches ``tool_name``."""
        key = normalize_tool_name(check_name(tool_name, "tool_name"))
        return self._deny_rx is not None and self._deny_rx.match(key) is not None

    def allows_tool(self, tool_name: str) -> bool:
        """True when no deny glob matches and (if an allow list exists) an allow glob does."""
        key = normalize_tool_name(check_name(tool_name, "tool_name"))
        if self._deny_rx is not None and self._deny_rx.match(key) is not None:
            return False
        return self._allow_rx is None or self._allow_rx.match(key) is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": self.scope.value,
            "allowed_tools": sorted(self.allowed_tools),
            "denied_tools": sorted(self.denied_tools),
            "allowed_actions": sorted(self.allowed_actions),
            "denied_actions": sorted(self.denied_actions),
            "description": self.description,
        }


@dataclass(frozen=True)
class ToolClassification:
    """The scope a tool needs and the actions its name implies.

    ``action_groups`` holds, per implied action, the names that satisfy it (for example
    ``("write", "create")`` for ``create_user``): a scope must allow one name of every group.
    """

    tool_name: str
    default_scope: ExecutionScope
    actions: frozenset[str] = frozenset()
    explicit: bool = False
    action_groups: tuple[tuple[str, ...], ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool_name": self.tool_name,
            "default_scope": self.default_scope.value,
            "actions": sorted(self.actions),
            "explicit": self.explicit,
        }


# --------------------------------------------------------------------------------------
# Verb tables

_READ = "read"
_WRITE = "write"
_DELETE = "delete"
_EXECUTE = "execute"

_CLASS_SCOPE = {
    _READ: ExecutionScope.READ_ONLY,
    _WRITE: ExecutionScope.READ_WRITE,
    _DELETE: ExecutionScope.ADMIN,
    _EXECUTE: ExecutionScope.ADMIN,
}
_SCOPE_CLASS = {
    ExecutionScope.READ_ONLY: _READ,
    ExecutionScope.READ_WRITE: _WRITE,
    ExecutionScope.ADMIN: _EXECUTE,
}

# the first word of a tool name decides its base class
_FIRST_WORD: dict[str, str] = {}
for _cls, _verbs in (
    (
        _READ,
        "get read list search query fetch find view show describe count lookup check "
        "retrieve inspect load browse download peek stat",
    ),
    (
        _WRITE,
        "create write update modify set add insert put post patch edit upload save rename "
        "move copy append send email publish share import register submit assign enable "
        "disable upsert replace merge tag label comment reply schedule invite mark",
    ),
    (
        _DELETE,
        "delete remove drop destroy purge truncate erase wipe revoke unregister kill "
        "terminate clear",
    ),
    (
        _EXECUTE,
        "execute exec run eval invoke spawn shell sudo deploy shutdown restart reboot grant "
        "admin install migrate",
    ),
):
    for _w in _verbs.split():
        _FIRST_WORD[_w] = _cls
# words that escalate the class wherever they appear in the name
_ANY_WORD: dict[str, str] = {}
for _cls, _verbs in (
    (_WRITE, "create write update modify insert upsert overwrite upload send"),
    (_DELETE, "delete remove drop destroy purge truncate erase wipe"),
    (_EXECUTE, "execute exec eval shell sudo"),
):
    for _w in _verbs.split():
        _ANY_WORD[_w] = _cls

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[\W_]+")


def _words(tool_name: str) -> list[str]:
    spaced = _CAMEL.sub("_", unicodedata.normalize("NFKC", tool_name))
    return [w for w in _SPLIT.split(spaced.casefold()) if w]


def _infer(tool_name: str) -> dict[str, set[str]]:
    """Implied action classes of a tool name: class -> verbs found."""
    words = _words(tool_name)
    found: dict[str, set[str]] = {}
    if words:
        cls = _FIRST_WORD.get(words[0])
        if cls is not None:
            found.setdefault(cls, set()).add(words[0])
        for w in words[1:]:
            cls = _ANY_WORD.get(w)
            if cls is not None:
                found.setdefault(cls, set()).add(w)
    return found


def _scope_of(classes: Iterable[str]) -> ExecutionScope | None:
    best: ExecutionScope | None = None
    for cls in classes:
        s = _CLASS_SCOPE[cls]
        if best is None or _LEVEL[s] > _LEVEL[best]:
            best = s
    return best


#: Regex (matched case-insensitively at the start of a tool name) -> scope, for reference
#: and for :meth:`ScopeEnforcer.add_tool_classification`-style rules. The enforcer itself
#: classifies by words (see the module docstring), which agrees with these on simple names.
DEFAULT_TOOL_CLASSIFICATIONS: MappingProxyType[str, ExecutionScope] = MappingProxyType(
    {
        r"^(get|read|list|search|query|fetch|find|view|show|describe|count|lookup|check|"
        r"retrieve|inspect|load|browse|download)(_|$)": ExecutionScope.READ_ONLY,
        r"^(create|write|update|modify|set|add|insert|put|post|patch|edit|upload|save|rename|"
        r"move|copy|append|send|email|publish|share|import|submit)(_|$)": (
            ExecutionScope.READ_WRITE
        ),
        r"^(delete|remove|drop|destroy|purge|truncate|erase|wipe|revoke|kill|terminate|"
        r"execute|exec|run|eval|invoke|spawn|shell|sudo|deploy|shutdown|grant|admin)(_|$)": (
            ExecutionScope.ADMIN
        ),
    }
)

_READ_ACTIONS = frozenset(
    {
        "read",
        "list",
        "search",
        "query",
        "get",
        "view",
        "fetch",
        "find",
        "show",
        "describe",
        "count",
        "lookup",
        "check",
        "retrieve",
        "inspect",
        "load",
        "browse",
        "download",
    }
)
_WRITE_ACTIONS = frozenset(
    {
        "write",
        "create",
        "update",
        "modify",
        "set",
        "add",
        "insert",
        "put",
        "post",
        "patch",
        "edit",
        "upload",
        "save",
        "rename",
        "move",
        "copy",
        "append",
        "send",
        "email",
        "publish",
        "share",
        "import",
        "submit",
        "upsert",
    }
)
_ADMIN_ONLY_ACTIONS = frozenset(
    {
        "delete",
        "remove",
        "drop",
        "destroy",
        "purge",
        "truncate",
        "erase",
        "wipe",
        "execute",
        "exec",
        "run",
        "eval",
        "admin",
        "grant",
        "revoke",
        "deploy",
        "shutdown",
    }
)


def _globs(words: str) -> frozenset[str]:
    """``"get read"`` -> ``{"get_*", "get", "read_*", "read"}``."""
    names = words.split()
    return frozenset(f"{w}_*" for w in names) | frozenset(names)


#: The three built-in scopes, by name (read-only mapping).
BUILTIN_SCOPES: MappingProxyType[str, ScopeBinding] = MappingProxyType(
    {
        "read_only": ScopeBinding(
            scope=ExecutionScope.READ_ONLY,
            allowed_tools=_globs(
                "get read list search query fetch find view show describe count lookup check "
                "retrieve inspect load browse"
            ),
            allowed_actions=_READ_ACTIONS,
            denied_actions=_WRITE_ACTIONS | _ADMIN_ONLY_ACTIONS,
            name="read_only",
            description="Reads only: no writes, deletes or execution.",
        ),
        "read_write": ScopeBinding(
            scope=ExecutionScope.READ_WRITE,
            allowed_tools=_globs(
                "get read list search query fetch find view show describe count lookup check "
                "retrieve inspect load browse create write update modify set add insert put "
                "post patch edit upload save rename move copy append send email publish share "
                "import submit upsert"
            ),
            allowed_actions=_READ_ACTIONS | _WRITE_ACTIONS,
            denied_actions=_ADMIN_ONLY_ACTIONS,
            name="read_write",
            description="Reads and writes: no deletes or execution.",
        ),
        "admin": ScopeBinding(
            scope=ExecutionScope.ADMIN,
            allowed_tools=frozenset({"*"}),
            allowed_actions=frozenset({"*"}),
            name="admin",
            description="Everything.",
        ),
    }
)
_BUILTIN_BY_ENUM = {b.scope: b for b in BUILTIN_SCOPES.values()}


# --------------------------------------------------------------------------------------
# Enforcer


class ScopeEnforcer:
    """Scopes, tool classification and scope checks. Thread-safe.

    Args:
        default_scope: scope of tools whose name has no known verb (``ADMIN`` by default,
            so unknown tools fail closed in restricted scopes).
        custom_scopes: extra scopes by name (built-in names cannot be redefined).
    """

    def __init__(
        self,
        default_scope: ExecutionScope = ExecutionScope.ADMIN,
        custom_scopes: dict[str, ScopeBinding] | None = None,
    ) -> None:
        self._default_scope = self._check_level(default_scope)
        self._lock = threading.RLock()
        self._custom: dict[str, ScopeBinding] = {}
        self._explicit: dict[str, ToolClassification] = {}
        self._patterns: list[tuple[re.Pattern[str], ExecutionScope]] = []
        self._cache: dict[str, ToolClassification] = {}
        for name, binding in (custom_scopes or {}).items():
            self.add_scope(name, binding)

    def __repr__(self) -> str:
        return (
            f"ScopeEnforcer(default_scope={self._default_scope.value}, "
            f"custom_scopes={sorted(self._custom)})"
        )

    @staticmethod
    def _check_level(scope: object) -> ExecutionScope:
        if not isinstance(scope, ExecutionScope):
            raise TypeError(f"scope must be an ExecutionScope, not {type(scope).__name__}")
        if scope is ExecutionScope.CUSTOM:
            raise ValueError("ExecutionScope.CUSTOM has no privilege level; use a binding")
        return scope

    @property
    def default_scope(self) -> ExecutionScope:
        return self._default_scope

    # ------------------------------------------------------------------ scopes

    def get_scope(self, scope: str | ExecutionScope) -> ScopeBinding:
        """The binding for a scope name or a built-in :class:`ExecutionScope`.

        Raises:
            ValueError: ``Unknown scope: <name>``.
        """
        if isinstance(scope, ExecutionScope):
            return self.create_scope_from_enum(scope)
        if not isinstance(scope, str):
            raise TypeError(f"scope must be a str or ExecutionScope, not {type(scope).__name__}")
        builtin = BUILTIN_SCOPES.get(scope)
        if builtin is not None:
            return builtin
        with self._lock:
            binding = self._custom.get(scope)
        if binding is None:
            raise ValueError(f"Unknown scope: {scope!r}")
        return binding

    def get_scopes(self) -> dict[str, ScopeBinding]:
        """Every scope by name (built-in first)."""
        with self._lock:
            return {**BUILTIN_SCOPES, **self._custom}

    def create_scope_from_enum(self, scope: ExecutionScope) -> ScopeBinding:
        """The built-in binding of ``READ_ONLY``, ``READ_WRITE`` or ``ADMIN``."""
        binding = _BUILTIN_BY_ENUM.get(scope)
        if binding is None:
            raise ValueError(f"Unknown scope: {scope!r} has no built-in binding")
        return binding

    def add_scope(self, name: str, binding: ScopeBinding) -> None:
        """Register (or replace) a custom scope under ``name``.

        Raises:
            ValueError: ``name`` is empty or a built-in scope name.
        """
        check_name(name, "scope name")
        if not isinstance(binding, ScopeBinding):
            raise TypeError(f"binding must be a ScopeBinding, not {type(binding).__name__}")
        if name in BUILTIN_SCOPES:
            raise ValueError(f"Built-in scope {name!r} cannot be redefined")
        with self._lock:
            self._custom[name] = binding

    def create_scope(
        self,
        name: str,
        allowed_tools: set[str] | None = None,
        denied_tools: set[str] | None = None,
        allowed_actions: set[str] | None = None,
        denied_actions: set[str] | None = None,
        description: str = "",
    ) -> ScopeBinding:
        """Build and register a custom scope; returns its binding."""
        check_name(name, "scope name")
        binding = ScopeBinding(
            scope=ExecutionScope.CUSTOM,
            allowed_tools=frozenset(allowed_tools or ()),
            denied_tools=frozenset(denied_tools or ()),
            allowed_actions=frozenset(allowed_actions or ()),
            denied_actions=frozenset(denied_actions or ()),
            name=name,
            description=description,
        )
        self.add_scope(name, binding)
        return binding

    def remove_scope(self, name: str) -> bool:
        """Remove a custom scope; False for built-in or unknown names."""
        with self._lock:
            return self._custom.pop(name, None) is not None

    def _resolve(self, scope: ScopeBinding | str | ExecutionScope) -> ScopeBinding:
        if isinstance(scope, ScopeBinding):
            return scope
        return self.get_scope(scope)

    # ------------------------------------------------------------------ classification

    def classify_tool(
        self,
        tool_name: str,
        scope: ExecutionScope | None = None,
        actions: set[str] | None = None,
    ) -> ToolClassification:
        """Classify a tool (and remember it when ``scope`` is given).

        Without ``scope``: an explicit classification if one was made, else the first
        matching :meth:`add_tool_classification` pattern, else the verbs in the name, else
        ``default_scope``. Results are cached.
        """
        check_name(tool_name, "tool_name")
        key = normalize_tool_name(tool_name)
        if scope is not None:
            if not isinstance(scope, ExecutionScope):
                raise TypeError(f"scope must be an ExecutionScope, not {type(scope).__name__}")
            if actions is not None:
                acts = _str_set(actions, "actions")
                groups: tuple[tuple[str, ...], ...] = tuple((_action_key(a),) for a in sorted(acts))
            else:
                acts, groups = self._implied(tool_name, scope)
            result = ToolClassification(tool_name, scope, acts, True, groups)
            with self._lock:
                self._explicit[key] = result
            return result
        with self._lock:
            found = self._explicit.get(key) or self._cache.get(key)
            patterns = list(self._patterns)
        if found is not None:
            if found.tool_name != tool_name:
                found = replace(found, tool_name=tool_name)
            return found
        chosen: ExecutionScope | None = None
        for rx, pattern_scope in patterns:
            if rx.search(tool_name) is not None:
                chosen = pattern_scope
                break
        if chosen is None:
            inferred = _infer(tool_name)
            chosen = _scope_of(inferred)
            if chosen is None:
                result = ToolClassification(tool_name, self._default_scope, frozenset(), False)
            else:
                acts, groups = self._groups(inferred)
                result = ToolClassification(tool_name, chosen, acts, False, groups)
        else:
            acts, groups = self._implied(tool_name, chosen)
            result = ToolClassification(tool_name, chosen, acts, False, groups)
        with self._lock:
            if len(self._cache) >= _MAX_CACHED_CLASSIFICATIONS:
                self._cache.clear()
            self._cache[key] = result
        return result

    @staticmethod
    def _groups(
        inferred: dict[str, set[str]],
    ) -> tuple[frozenset[str], tuple[tuple[str, ...], ...]]:
        acts: set[str] = set()
        groups: list[tuple[str, ...]] = []
        for cls in sorted(inferred):
            names = (cls, *sorted(inferred[cls] - {cls}))
            acts.update(names)
            groups.append(names)
        return frozenset(acts), tuple(groups)

    def _implied(
        self, tool_name: str, scope: ExecutionScope
    ) -> tuple[frozenset[str], tuple[tuple[str, ...], ...]]:
        inferred = _infer(tool_name)
        if not inferred:
            cls = _SCOPE_CLASS.get(scope)
            if cls is None:
                return frozenset(), ()
            inferred = {cls: {cls}}
        return self._groups(inferred)

    def add_tool_classification(self, pattern: str, scope: ExecutionScope) -> None:
        """Classify tools whose name matches regex ``pattern`` (searched, case-insensitive).

        Earlier patterns win; explicit :meth:`classify_tool` calls win over patterns.
        """
        check_name(pattern, "pattern")
        if not isinstance(scope, ExecutionScope):
            raise TypeError(f"scope must be an ExecutionScope, not {type(scope).__name__}")
        try:
            rx = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"invalid classification pattern {pattern!r}: {exc}") from exc
        with self._lock:
            self._patterns.append((rx, scope))
            self._cache.clear()

    # ------------------------------------------------------------------ checks

    def validate_in_scope(
        self,
        tool_name: str,
        action: str,
        scope: ScopeBinding | str | ExecutionScope,
    ) -> tuple[bool, str | None]:
        """May ``tool_name`` perform ``action`` in ``scope``?

        Returns:
            ``(True, None)`` or ``(False, reason)``; see the module docstring for the order
            of the checks.
        """
        binding = self._resolve(scope)
        check_name(tool_name, "tool_name")
        check_name(action, "action")
        name = binding.name
        if not binding.allows_tool(tool_name):
            if binding.tool_denied(tool_name):
                return False, f"tool is not allowed (matches a denied pattern of '{name}')"
            return False, f"tool is not allowed (not in the tool list of '{name}')"
        cls = self.classify_tool(tool_name)
        level = _LEVEL.get(binding.scope)
        needed = _LEVEL.get(cls.default_scope)
        if level is not None and needed is not None and needed > level:
            return False, (
                f"tool requires scope '{cls.default_scope.value}', not allowed in '{name}'"
            )
        act = _action_key(action)
        declared_checked = act != _EXECUTE or not cls.action_groups
        if declared_checked and not binding.allows_action(action):
            return False, f"action '{action}' is not allowed in '{name}'"
        for group in cls.action_groups:
            if not any(binding.allows_action(a) for a in group):
                return False, (
                    f"action '{group[0]}' (implied by the tool name) is not allowed in '{name}'"
                )
        return True, None

    def get_allowed_tools(self, scope: ScopeBinding | str | ExecutionScope) -> set[str]:
        """The allowed tool globs of a scope (``{"*"}`` when it has no allow list)."""
        binding = self._resolve(scope)
        return set(binding.allowed_tools) if binding.allowed_tools else {"*"}


# --------------------------------------------------------------------------------------
# Scope contexts

_CURRENT_SCOPE: ContextVar[ScopeContext | None] = ContextVar("proxilion_scope", default=None)


def get_current_scope() -> ScopeContext | None:
    """The innermost open scope context entered in this thread/task, if any."""
    ctx = _CURRENT_SCOPE.get()
    while ctx is not None and ctx.is_closed:
        ctx = ctx._parent
    return ctx


class ScopeContext:
    """One entered scope for one user: validates tool calls and records them.

    Use it as a context manager (``with ScopeContext(...) as ctx``) or call
    :meth:`activate` / :meth:`close`; while active it is :func:`get_current_scope`.
    After :meth:`close`, validation raises ``RuntimeError``.
    """

    def __init__(
        self,
        enforcer: ScopeEnforcer,
        scope: ScopeBinding,
        user: UserContext | None = None,
    ) -> None:
        if not isinstance(enforcer, ScopeEnforcer):
            raise TypeError(f"enforcer must be a ScopeEnforcer, not {type(enforcer).__name__}")
        if not isinstance(scope, ScopeBinding):
            raise TypeError(f"scope must be a ScopeBinding, not {type(scope).__name__}")
        self._enforcer = enforcer
        self._scope = scope
        self._user = user
        self._lock = threading.Lock()
        self._calls: list[tuple[str, str]] = []
        self._violations: list[tuple[str, str, str]] = []
        self._closed = False
        self._parent: ScopeContext | None = None
        self._active = False
        #: Action used by :meth:`validate_tool` and :meth:`is_tool_allowed` when none is given.
        self.default_action = "execute"

    def __repr__(self) -> str:
        user = self._user.user_id if self._user is not None else None
        return f"ScopeContext(scope={self._scope.name!r}, user={user!r}, closed={self._closed})"

    @property
    def scope(self) -> ScopeBinding:
        return self._scope

    @property
    def scope_name(self) -> str:
        return self._scope.name

    @property
    def user(self) -> UserContext | None:
        return self._user

    @property
    def enforcer(self) -> ScopeEnforcer:
        return self._enforcer

    @property
    def is_closed(self) -> bool:
        return self._closed

    def activate(self) -> ScopeContext:
        """Make this the current scope of the running thread/task (see get_current_scope)."""
        if self._closed:
            raise RuntimeError("Scope context is closed")
        if not self._active:
            self._parent = _CURRENT_SCOPE.get()
            _CURRENT_SCOPE.set(self)
            self._active = True
        return self

    def is_tool_allowed(self, tool_name: str, action: str | None = None) -> bool:
        """Check without raising or recording."""
        act = action if action is not None else self.default_action
        return self._enforcer.validate_in_scope(tool_name, act, self._scope)[0]

    def validate_tool(self, tool_name: str, action: str | None = None) -> bool:
        """Allow and record the call, or raise :class:`ScopeViolationError`.

        Raises:
            RuntimeError: the context is closed.
        """
        if self._closed:
            raise RuntimeError("Scope context is closed")
        action = action if action is not None else self.default_action
        allowed, reason = self._enforcer.validate_in_scope(tool_name, action, self._scope)
        with self._lock:
            if allowed:
                self._calls.append((tool_name, action))
            else:
                self._violations.append((tool_name, action, reason or ""))
        if not allowed:
            user = self._user.user_id if self._user is not None else None
            logger.warning(
                "scope %r refused tool %r (action %r) for user %r: %s",
                self._scope.name,
                tool_name,
                action,
                user,
                reason,
            )
            raise ScopeViolationError(tool_name, self._scope.name, reason)
        return True

    def get_calls(self) -> list[tuple[str, str]]:
        """``(tool_name, action)`` of every allowed call, in order."""
        with self._lock:
            return list(self._calls)

    def get_tool_names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self._calls]

    def get_violations(self) -> list[tuple[str, str, str]]:
        """``(tool_name, action, reason)`` of every refused call, in order."""
        with self._lock:
            return list(self._violations)

    def close(self) -> None:
        """Close the context; if it is the current scope, its parent becomes current."""
        self._closed = True
        if self._active and _CURRENT_SCOPE.get() is self:
            _CURRENT_SCOPE.set(get_current_scope())

    def __enter__(self) -> ScopeContext:
        return self.activate()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextmanager
def scoped_execution(
    enforcer: ScopeEnforcer,
    scope: str | ExecutionScope | ScopeBinding,
    user: UserContext | None = None,
) -> Iterator[ScopeContext]:
    """``with scoped_execution(enforcer, "read_only", user) as ctx:`` enters and closes."""
    binding = enforcer._resolve(scope)
    ctx = ScopeContext(enforcer, binding, user)
    with ctx:
        yield ctx


def create_scope_enforcer(
    default_scope: ExecutionScope = ExecutionScope.ADMIN,
    custom_scopes: dict[str, ScopeBinding] | None = None,
) -> ScopeEnforcer:
    """Build a :class:`ScopeEnforcer`."""
    return ScopeEnforcer(default_scope=default_scope, custom_scopes=custom_scopes)
