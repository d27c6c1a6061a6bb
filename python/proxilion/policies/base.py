"""Policy base classes (API.md section 2.1).

A policy is a class whose ``can_<action>(self, context) -> bool`` methods decide whether
``self.user`` may perform ``<action>`` on ``self.resource``. Anything a policy does not say
``can_<action>`` about is denied: there is no implicit allow.
"""

from __future__ import annotations

import re
from abc import ABC
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from proxilion.types import UserContext

__all__ = ["ActionContext", "Policy", "PolicyWithScope", "Scope"]

T = TypeVar("T")

_ACTION_PREFIX = "can_"
# Word boundaries of a CamelCase name: "aB" -> "a_B", "HTTPRequest" -> "HTTP_Request".
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _check_user(user: object) -> UserContext:
    if not isinstance(user, UserContext):
        raise TypeError(f"user must be a UserContext, not {type(user).__name__}")
    return user


class Policy(ABC, Generic[T]):
    """Base class of every policy.

    Subclasses add ``can_<action>(self, context: dict) -> bool`` methods. The class has no
    abstract methods, so it can be instantiated directly (and then denies everything).

    Attributes:
        user: the :class:`~proxilion.types.UserContext` being authorized.
        resource: the resource the action targets. :meth:`proxilion.Proxilion.check` passes
            the resource *name* (a string) here.
    """

    #: Name the policy is registered under; set by :meth:`PolicyRegistry.register`.
    _resource_name: ClassVar[str | None] = None

    def __init__(self, user: UserContext, resource: T | None = None) -> None:
        self.user = _check_user(user)
        self.resource = resource

    def __repr__(self) -> str:
        return f"{type(self).__name__}(user={self.user.user_id!r}, resource={self.resource!r})"

    def authorize(self, action: str, context: dict[str, Any] | None = None) -> bool:
        """Run ``can_<action>(context or {})`` and return its result unchanged.

        A missing ``can_<action>`` method denies (returns ``False``).
        """
        if not isinstance(action, str):
            raise TypeError(f"action must be a str, not {type(action).__name__}")
        method = getattr(self, _ACTION_PREFIX + action, None)
        if method is None or not callable(method):
            return False
        result: bool = method(context or {})
        return result

    def can(self, action: str, context: dict[str, Any] | None = None) -> bool:
        """Alias of :meth:`authorize`."""
        return self.authorize(action, context)

    @classmethod
    def get_resource_name(cls) -> str:
        """The registered name, else the class name minus a trailing ``Policy``, in
        snake_case (``DatabaseQueryPolicy`` -> ``"database_query"``)."""
        if cls._resource_name is not None:
            return cls._resource_name
        name = cls.__name__
        if name.endswith("Policy") and len(name) > len("Policy"):
            name = name[: -len("Policy")]
        return _CAMEL_BOUNDARY.sub("_", name).lower()

    @classmethod
    def get_available_actions(cls) -> list[str]:
        """Sorted names of the actions this policy has a ``can_<action>`` method for."""
        return sorted(
            attr[len(_ACTION_PREFIX) :]
            for attr in dir(cls)
            if attr.startswith(_ACTION_PREFIX)
            and len(attr) > len(_ACTION_PREFIX)
            and callable(getattr(cls, attr, None))
        )


class Scope:
    """The set of objects a user may reach for one policy.

    ``resolve()`` returns the concrete objects; the base implementation returns ``[]``, so
    an unspecialised scope grants nothing. Subclasses override :meth:`resolve`.
    """

    def __init__(self, user: UserContext, scope: list[Any]) -> None:
        self.user = _check_user(user)
        if not isinstance(scope, list):
            raise TypeError(f"scope must be a list, not {type(scope).__name__}")
        self.scope = scope

    def resolve(self) -> list[Any]:
        """The objects this scope covers (none by default)."""
        return []


class PolicyWithScope(Policy[T]):
    """A policy that also describes which objects a user may reach, via its nested
    :class:`Scope` class."""

    class Scope(Scope):
        """Scope of this policy (override :meth:`resolve`)."""


@dataclass(init=False)
class ActionContext:
    """Request metadata passed to policies as their ``context``.

    ``to_dict()`` omits fields that are empty/None (the timestamp in ISO 8601) and merges
    ``metadata`` in.
    """

    request_id: str | None = None
    ip_address: str | None = None
    timestamp: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        request_id: str | None = None,
        ip_address: str | None = None,
        timestamp: datetime | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict or None, not {type(metadata).__name__}")
        self.request_id = request_id
        self.ip_address = ip_address
        self.timestamp = timestamp
        self.metadata = dict(metadata) if metadata else {}

    def to_dict(self) -> dict[str, Any]:
        """The non-empty fields, then the metadata entries."""
        out: dict[str, Any] = {}
        if self.request_id:
            out["request_id"] = self.request_id
        if self.ip_address:
            out["ip_address"] = self.ip_address
        if self.timestamp:
            out["timestamp"] = self.timestamp.isoformat()
        out.update(self.metadata)
        return out

    def with_metadata(self, **kwargs: Any) -> ActionContext:
        """A copy with ``kwargs`` merged into the metadata."""
        return ActionContext(
            request_id=self.request_id,
            ip_address=self.ip_address,
            timestamp=self.timestamp,
            metadata={**self.metadata, **kwargs},
        )
