"""Built-in policies (API.md section 2.3).

The original names these classes without documenting their behaviour beyond
:class:`DenyAllPolicy`; the behaviour below is this project's design (docs/core.md):

* :class:`DenyAllPolicy` / :class:`AllowAllPolicy`: the seven standard actions
  (execute, read, write, delete, create, update, list) all denied / all allowed. Any other
  action has no ``can_<action>`` method, so it stays denied even under ``AllowAllPolicy``.
* :class:`RoleBasedPolicy`, :class:`AttributeBasedPolicy`, :class:`CompositePolicy`: declared
  with a class attribute; a ``can_<action>`` method is generated for each declared action
  when the subclass is created (a method written by hand in the subclass wins). Malformed
  declarations fail at class creation with TypeError/ValueError, never at request time.
* :class:`OwnershipPolicy`: the user must own the object; admin roles, if declared, override
  explicitly and every override is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar

from proxilion.policies.base import Policy

__all__ = [
    "STANDARD_ACTIONS",
    "AllowAllPolicy",
    "AttributeBasedPolicy",
    "CompositePolicy",
    "DenyAllPolicy",
    "OwnershipPolicy",
    "RoleBasedPolicy",
]

logger = logging.getLogger("proxilion.policies")

#: Actions DenyAllPolicy and AllowAllPolicy define a ``can_<action>`` method for.
STANDARD_ACTIONS: tuple[str, ...] = (
    "execute",
    "read",
    "write",
    "delete",
    "create",
    "update",
    "list",
)

_MISSING = object()


def _check_action_name(owner: str, action: object) -> str:
    if not isinstance(action, str):
        raise TypeError(f"{owner}: action names must be str, got {type(action).__name__}")
    if not action.isidentifier():
        raise ValueError(f"{owner}: action name {action!r} is not a valid identifier")
    return action


_GENERATED = "_proxilion_generated"


def _install(cls: type, action: str, method: Callable[[Any, dict[str, Any]], bool]) -> None:
    """Give ``cls`` a ``can_<action>`` method unless the class body wrote one itself."""
    name = f"can_{action}"
    if name in cls.__dict__:
        return
    method.__name__ = name
    method.__qualname__ = f"{cls.__qualname__}.{name}"
    setattr(method, _GENERATED, True)
    setattr(cls, name, method)


def _drop_inherited(cls: type, declared: Collection[str]) -> None:
    """Hide generated ``can_<action>`` methods inherited from a parent for actions this class
    does not declare: a subclass that narrows its declaration must not keep the parent's
    grants. (``None`` is not callable, so the action is denied and not listed.)"""
    for name in dir(cls):
        if not name.startswith("can_") or name in cls.__dict__:
            continue
        if getattr(getattr(cls, name, None), _GENERATED, False) and name[4:] not in declared:
            setattr(cls, name, None)


class DenyAllPolicy(Policy[Any]):
    """Denies the seven standard actions (and, having no other methods, everything else).

    This is the default policy of the simple engine, so unknown resources are denied.
    """

    def can_execute(self, context: dict[str, Any]) -> bool:
        return False

    def can_read(self, context: dict[str, Any]) -> bool:
        return False

    def can_write(self, context: dict[str, Any]) -> bool:
        return False

    def can_delete(self, context: dict[str, Any]) -> bool:
        return False

    def can_create(self, context: dict[str, Any]) -> bool:
        return False

    def can_update(self, context: dict[str, Any]) -> bool:
        return False

    def can_list(self, context: dict[str, Any]) -> bool:
        return False


class AllowAllPolicy(Policy[Any]):
    """Allows the seven standard actions. For tests and trusted internal tools only.

    Actions outside :data:`STANDARD_ACTIONS` have no method and so remain denied.
    """

    def can_execute(self, context: dict[str, Any]) -> bool:
        return True

    def can_read(self, context: dict[str, Any]) -> bool:
        return True

    def can_write(self, context: dict[str, Any]) -> bool:
        return True

    def can_delete(self, context: dict[str, Any]) -> bool:
        return True

    def can_create(self, context: dict[str, Any]) -> bool:
        return True

    def can_update(self, context: dict[str, Any]) -> bool:
        return True

    def can_list(self, context: dict[str, Any]) -> bool:
        return True


class RoleBasedPolicy(Policy[Any]):
    """Allow an action when the user has at least one of the roles listed for it.

    Example::

        class DocumentPolicy(RoleBasedPolicy):
            role_permissions = {"read": ["viewer", "editor"], "delete": ["admin"]}

    Actions not listed are denied. A role list given as a bare string (``"admin"``) is a
    TypeError at class creation (it would otherwise be read as a set of characters).
    """

    role_permissions: ClassVar[Mapping[str, Collection[str]]] = {}
    _role_table: ClassVar[dict[str, frozenset[str]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        owner = cls.__name__
        perms = cls.role_permissions
        if not isinstance(perms, Mapping):
            raise TypeError(f"{owner}.role_permissions must be a mapping action -> roles")
        table: dict[str, frozenset[str]] = {}
        for action, roles in perms.items():
            _check_action_name(owner, action)
            if isinstance(roles, (str, bytes)) or not isinstance(roles, Collection):
                raise TypeError(
                    f"{owner}.role_permissions[{action!r}] must be a collection of role "
                    f"names, got {type(roles).__name__}"
                )
            for role in roles:
                if not isinstance(role, str):
                    raise TypeError(
                        f"{owner}.role_permissions[{action!r}] holds a non-str role: {role!r}"
                    )
            table[action] = frozenset(roles)
        cls._role_table = table
        _drop_inherited(cls, table)
        for action in table:
            _install(cls, action, _role_method(action))

    def has_permission(self, action: str) -> bool:
        """Whether one of the user's roles is listed for ``action``."""
        allowed = self._role_table.get(action)
        if not allowed:
            return False
        return any(role in allowed for role in self.user.roles)


def _role_method(action: str) -> Callable[[Any, dict[str, Any]], bool]:
    def method(self: RoleBasedPolicy, context: dict[str, Any]) -> bool:
        return self.has_permission(action)

    return method


class AttributeBasedPolicy(Policy[Any]):
    """Allow an action when every attribute rule declared for it holds for the user.

    ``attribute_rules`` maps an action to ``{attribute_name: requirement}``; a requirement is

    * a callable: called with the user's attribute value, must return ``True`` (a bool);
    * a list, tuple, set or frozenset: the value must be one of its items;
    * anything else: the value must equal it.

    A user without the attribute is denied. Example::

        class ReportPolicy(AttributeBasedPolicy):
            attribute_rules = {"read": {"department": ["finance", "audit"],
                                        "clearance": lambda v: v >= 3}}

    An action with an empty rule set is a ValueError at class creation (it would allow
    everyone).
    """

    attribute_rules: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        owner = cls.__name__
        rules = cls.attribute_rules
        if not isinstance(rules, Mapping):
            raise TypeError(f"{owner}.attribute_rules must be a mapping action -> rules")
        for action, reqs in rules.items():
            _check_action_name(owner, action)
            if not isinstance(reqs, Mapping):
                raise TypeError(
                    f"{owner}.attribute_rules[{action!r}] must be a mapping "
                    f"attribute -> requirement, got {type(reqs).__name__}"
                )
            if not reqs:
                raise ValueError(f"{owner}.attribute_rules[{action!r}] is empty")
            for attr in reqs:
                if not isinstance(attr, str):
                    raise TypeError(f"{owner}.attribute_rules[{action!r}] has a non-str key")
        _drop_inherited(cls, rules)
        for action in rules:
            _install(cls, action, _attribute_method(action))

    def check_attributes(self, action: str) -> bool:
        """Whether every rule declared for ``action`` holds."""
        reqs = self.attribute_rules.get(action)
        if not reqs:
            return False
        for attr, requirement in reqs.items():
            value = self.user.attributes.get(attr, _MISSING)
            if value is _MISSING:
                return False
            if callable(requirement):
                verdict = requirement(value)
                if not isinstance(verdict, bool):
                    raise TypeError(
                        f"attribute rule for {attr!r} returned {type(verdict).__name__}, "
                        "expected bool"
                    )
                if not verdict:
                    return False
            elif isinstance(requirement, (list, tuple, set, frozenset)):
                if value not in requirement:
                    return False
            elif value != requirement:
                return False
        return True


def _attribute_method(action: str) -> Callable[[Any, dict[str, Any]], bool]:
    def method(self: AttributeBasedPolicy, context: dict[str, Any]) -> bool:
        return self.check_attributes(action)

    return method


class OwnershipPolicy(Policy[Any]):
    """Allow the actions in ``owned_actions`` only on objects the user owns.

    The owner is found by :meth:`get_owner`: the ``owner_field`` attribute (or key) of
    ``self.resource`` when the resource is an object or mapping, else ``context[owner_field]``.
    The context of a decorated tool is its keyword arguments, so when the owner comes from
    there it must come from a trusted source (your code), not from the model; override
    :meth:`get_owner` to look the owner up yourself.

    Users holding one of ``admin_roles`` (empty by default) are allowed on any object; such an
    override is explicit and logged at WARNING level (the original documents admin overrides
    but has none).
    """

    owner_field: ClassVar[str] = "owner_id"
    owned_actions: ClassVar[Sequence[str]] = ("read", "update", "delete", "write")
    admin_roles: ClassVar[Collection[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        owner = cls.__name__
        if not isinstance(cls.owner_field, str) or not cls.owner_field:
            raise TypeError(f"{owner}.owner_field must be a non-empty str")
        if isinstance(cls.admin_roles, (str, bytes)):
            raise TypeError(f"{owner}.admin_roles must be a collection of roles, not a str")
        if isinstance(cls.owned_actions, (str, bytes)):
            raise TypeError(f"{owner}.owned_actions must be a sequence of actions, not a str")
        for action in cls.owned_actions:
            _check_action_name(owner, action)
        _drop_inherited(cls, cls.owned_actions)
        for action in cls.owned_actions:
            _install(cls, action, _ownership_method())

    def get_owner(self, context: dict[str, Any]) -> Any:
        """The owner id of the object, or None when it cannot be found."""
        resource = self.resource
        if isinstance(resource, Mapping):
            return resource.get(self.owner_field)
        if resource is not None and not isinstance(resource, str):
            return getattr(resource, self.owner_field, None)
        return context.get(self.owner_field)

    def is_owner(self, context: dict[str, Any]) -> bool:
        """Owner check, with the logged admin override."""
        owner = self.get_owner(context)
        if isinstance(owner, str) and owner and owner == self.user.user_id:
            return True
        admin = next((r for r in self.user.roles if r in self.admin_roles), None)
        if admin is not None:
            logger.warning(
                "Admin override: user '%s' (role '%s') allowed on an object owned by %r "
                "(policy %s)",
                self.user.user_id,
                admin,
                owner,
                type(self).__name__,
            )
            return True
        return False


def _ownership_method() -> Callable[[Any, dict[str, Any]], bool]:
    def method(self: OwnershipPolicy, context: dict[str, Any]) -> bool:
        return self.is_owner(context)

    return method


# OwnershipPolicy itself gets its methods too (it is usable directly).
for _action in OwnershipPolicy.owned_actions:
    _install(OwnershipPolicy, _action, _ownership_method())


class CompositePolicy(Policy[Any]):
    """Combine policies: ``mode = "all"`` (default) allows only when every member allows;
    ``mode = "any"`` when at least one does.

    Example::

        class ExportPolicy(CompositePolicy):
            policies = [AnalystRolePolicy, FinanceDepartmentPolicy]
            mode = "all"

    A ``can_<action>`` method is generated for every action some member defines. A member
    that raises counts as a denial (logged), so a broken member never grants access. A
    composite with no members denies.
    """

    policies: ClassVar[Sequence[type[Policy[Any]]]] = ()
    mode: ClassVar[str] = "all"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        owner = cls.__name__
        if cls.mode not in ("all", "any"):
            raise ValueError(f"{owner}.mode must be 'all' or 'any', got {cls.mode!r}")
        members: object = cls.policies
        if isinstance(members, (str, bytes)) or not isinstance(members, Sequence):
            raise TypeError(f"{owner}.policies must be a sequence of Policy subclasses")
        actions: set[str] = set()
        for member in members:
            if not (isinstance(member, type) and issubclass(member, Policy)):
                raise TypeError(f"{owner}.policies holds a non-Policy item: {member!r}")
            actions.update(member.get_available_actions())
        _drop_inherited(cls, actions)
        for action in sorted(actions):
            _install(cls, action, _composite_method(action))

    def evaluate_members(self, action: str, context: dict[str, Any]) -> list[bool]:
        """Each member's decision for ``action`` (False for a member that raised)."""
        out: list[bool] = []
        for member in self.policies:
            try:
                out.append(bool(member(self.user, self.resource).authorize(action, context)))
            except Exception as exc:
                logger.warning(
                    "Policy %s raised in %s (counted as deny): %s",
                    member.__name__,
                    type(self).__name__,
                    exc,
                )
                out.append(False)
        return out

    def combine(self, action: str, context: dict[str, Any]) -> bool:
        """The combined decision for ``action``."""
        decisions = self.evaluate_members(action, context)
        if not decisions:
            return False
        return all(decisions) if self.mode == "all" else any(decisions)


def _composite_method(action: str) -> Callable[[Any, dict[str, Any]], bool]:
    def method(self: CompositePolicy, context: dict[str, Any]) -> bool:
        return self.combine(action, context)

    return method
