"""Policy registry (API.md section 2.2): resource name -> policy class, thread-safe."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from proxilion.exceptions import PolicyNotFoundError
from proxilion.policies.base import Policy
from proxilion.types import UserContext

__all__ = ["PolicyRegistry", "get_global_registry", "reset_global_registry"]

logger = logging.getLogger("proxilion.policies.registry")

P = TypeVar("P", bound=type[Policy[Any]])


def check_resource_name(resource_name: object) -> str:
    """Return ``resource_name`` if it is a non-empty str; else raise TypeError/ValueError."""
    if not isinstance(resource_name, str):
        raise TypeError(f"resource_name must be a str, not {type(resource_name).__name__}")
    if not resource_name:
        raise ValueError("resource_name must not be empty")
    return resource_name


def check_policy_class(policy_class: object) -> type[Policy[Any]]:
    """Return ``policy_class`` if it is a :class:`Policy` subclass; else raise TypeError."""
    if not (isinstance(policy_class, type) and issubclass(policy_class, Policy)):
        raise TypeError(
            f"policy class must be a subclass of proxilion.Policy, got {policy_class!r}"
        )
    return policy_class


class PolicyRegistry:
    """Maps resource names to policy classes. Every method is guarded by one ``RLock``.

    Args:
        default_policy: class returned by :meth:`get_policy` for names with no policy of their
            own. ``None`` (the default) means such names raise :class:`PolicyNotFoundError`.

    Registering a name twice replaces the earlier class and logs a warning (it does not
    raise), as in the original.
    """

    def __init__(self, default_policy: type[Policy[Any]] | None = None) -> None:
        self._lock = threading.RLock()
        self._policies: dict[str, type[Policy[Any]]] = {}
        self._default: type[Policy[Any]] | None = (
            None if default_policy is None else check_policy_class(default_policy)
        )
        self._authorized: set[str] = set()

    def __repr__(self) -> str:
        with self._lock:
            names = sorted(self._policies)
        return f"PolicyRegistry(policies={names!r})"

    def __len__(self) -> int:
        with self._lock:
            return len(self._policies)

    def __contains__(self, resource_name: object) -> bool:
        with self._lock:
            return resource_name in self._policies

    def policy(self, resource_name: str) -> Callable[[P], P]:
        """Class decorator: ``@registry.policy("documents")`` registers the class and returns
        it unchanged."""
        name = check_resource_name(resource_name)

        def decorator(cls: P) -> P:
            self.register(name, cls)
            return cls

        return decorator

    def register(self, resource_name: str, policy_class: type[Policy[Any]]) -> None:
        """Register ``policy_class`` for ``resource_name`` and set its ``_resource_name``."""
        name = check_resource_name(resource_name)
        cls = check_policy_class(policy_class)
        with self._lock:
            previous = self._policies.get(name)
            if previous is not None and previous is not cls:
                logger.warning(
                    "Replacing policy %s for resource '%s' with %s",
                    previous.__name__,
                    name,
                    cls.__name__,
                )
            cls._resource_name = name
            self._policies[name] = cls

    def register_by_convention(self, policy_class: type[Policy[Any]]) -> str:
        """Register under ``policy_class.get_resource_name()``; return that name."""
        cls = check_policy_class(policy_class)
        name = cls.get_resource_name()
        self.register(name, cls)
        return name

    def lookup(self, resource_name: str) -> type[Policy[Any]] | None:
        """The class registered for ``resource_name``, or None (the default is not used).

        The hot-path read of :meth:`proxilion.Proxilion.check`: it takes no lock, because a
        single ``dict.get`` is atomic (also on free-threaded CPython, where dicts lock
        themselves) and every writer replaces whole entries under the registry's lock.
        """
        return self._policies.get(resource_name)

    def get_policy(self, resource_name: str) -> type[Policy[Any]]:
        """The class for ``resource_name``, else the default policy, else raise
        :class:`PolicyNotFoundError` listing the registered names."""
        with self._lock:
            cls = self._policies.get(resource_name)
            if cls is not None:
                return cls
            if self._default is not None:
                return self._default
            available = sorted(self._policies)
        raise PolicyNotFoundError(resource_name, available)

    def get_policy_instance(
        self, resource_name: str, user: UserContext, resource: Any = None
    ) -> Policy[Any]:
        """``get_policy(resource_name)(user, resource)``."""
        return self.get_policy(resource_name)(user, resource)

    def has_policy(self, resource_name: str) -> bool:
        """Whether a class is registered for exactly this name (the default does not count)."""
        with self._lock:
            return resource_name in self._policies

    def list_policies(self) -> dict[str, str]:
        """``{resource_name: class name}``."""
        with self._lock:
            return {name: cls.__name__ for name, cls in self._policies.items()}

    def unregister(self, resource_name: str) -> bool:
        """Remove the entry; return whether there was one."""
        with self._lock:
            return self._policies.pop(resource_name, None) is not None

    def clear(self) -> None:
        """Remove every entry and the authorization marks (the default policy stays)."""
        with self._lock:
            self._policies.clear()
            self._authorized.clear()

    @property
    def default_policy(self) -> type[Policy[Any]] | None:
        """The fallback class, or None."""
        with self._lock:
            return self._default

    def set_default_policy(self, policy_class: type[Policy[Any]] | None) -> None:
        """Set (or, with None, remove) the fallback class."""
        cls = None if policy_class is None else check_policy_class(policy_class)
        with self._lock:
            self._default = cls

    # -- authorization tracking: which resources were checked during a request ----------------

    def mark_authorized(self, resource_name: str) -> None:
        """Record that ``resource_name`` went through an authorization check."""
        with self._lock:
            self._authorized.add(resource_name)

    def clear_authorized(self) -> None:
        """Forget every mark."""
        with self._lock:
            self._authorized.clear()

    def verify_all_authorized(self, expected: list[str]) -> tuple[bool, list[str]]:
        """``(True, [])`` when every name in ``expected`` was marked; else ``(False, missing)``
        with the missing names in the order given."""
        with self._lock:
            missing = [name for name in expected if name not in self._authorized]
        return (not missing, missing)

    def get_authorized_resources(self) -> set[str]:
        """A copy of the marked names."""
        with self._lock:
            return set(self._authorized)


_global_lock = threading.Lock()
_global_registry: PolicyRegistry | None = None


def get_global_registry() -> PolicyRegistry:
    """The process-wide registry (created on first use)."""
    global _global_registry
    with _global_lock:
        if _global_registry is None:
            _global_registry = PolicyRegistry()
        return _global_registry


def reset_global_registry() -> None:
    """Replace the process-wide registry with an empty one (for tests)."""
    global _global_registry
    with _global_lock:
        _global_registry = PolicyRegistry()
