"""The built-in policy engine: Python policy classes in its own registry."""

from __future__ import annotations

from typing import Any

from proxilion.engines.base import BasePolicyEngine
from proxilion.exceptions import PolicyNotFoundError
from proxilion.policies.base import Policy
from proxilion.policies.builtin import DenyAllPolicy
from proxilion.policies.registry import PolicyRegistry, check_policy_class
from proxilion.types import AuthorizationResult, UserContext

__all__ = ["SimplePolicyEngine"]

_DEFAULT_POLICY_KEY = "default_policy"
_ALLOW_MISSING_KEY = "allow_missing_policies"
_KNOWN_KEYS = frozenset({_DEFAULT_POLICY_KEY, _ALLOW_MISSING_KEY})


class SimplePolicyEngine(BasePolicyEngine):
    """Evaluates Python :class:`~proxilion.policies.Policy` classes from its **own** registry
    (separate from the one ``Proxilion.policy`` fills, as in the original).

    ``config`` keys:

    * ``"default_policy"``: class used for resources with no policy of their own; defaults
      to :class:`DenyAllPolicy`, so unknown resources are denied. ``None`` removes the
      fallback.
    * ``"allow_missing_policies"`` (default True): with no policy and no default, deny with
      reason ``"No policy found for resource '<r>'"``; when False, raise
      :class:`PolicyNotFoundError` instead.

    Unknown keys are a ValueError (a typo must not silently leave a default in place).

    Results: allowed -> ``"Policy <Cls> allowed action '<a>'"``, denied ->
    ``"Policy <Cls> denied action '<a>'"``, a policy that raises -> denied with
    ``"Policy evaluation failed: <exc>"``; ``policies_evaluated`` is ``[<Cls>]``.
    """

    name = "simple"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        unknown = sorted(k for k in self.config if k not in _KNOWN_KEYS)
        if unknown:
            listed = ", ".join(map(repr, unknown))
            raise ValueError(f"unknown engine_config key(s) for the simple engine: {listed}")
        default = self.config.get(_DEFAULT_POLICY_KEY, DenyAllPolicy)
        allow_missing = self.config.get(_ALLOW_MISSING_KEY, True)
        if not isinstance(allow_missing, bool):
            raise TypeError(
                f"engine_config['allow_missing_policies'] must be a bool, not "
                f"{type(allow_missing).__name__}"
            )
        self.allow_missing_policies = allow_missing
        self.registry = PolicyRegistry(
            default_policy=None if default is None else check_policy_class(default)
        )

    def register_policy(self, resource_name: str, policy_class: type[Policy[Any]]) -> None:
        """Register a policy in the engine's registry."""
        self.registry.register(resource_name, policy_class)

    def evaluate(
        self,
        user: UserContext,
        action: str,
        resource: str,
        context: dict[str, Any] | None = None,
    ) -> AuthorizationResult:
        try:
            cls = self.registry.get_policy(resource)
        except PolicyNotFoundError:
            if not self.allow_missing_policies:
                raise
            return AuthorizationResult.deny(f"No policy found for resource '{resource}'")
        name = cls.__name__
        try:
            allowed = bool(cls(user, resource).authorize(action, context or {}))
        except Exception as exc:
            return AuthorizationResult.deny(f"Policy evaluation failed: {exc}", policies=[name])
        if allowed:
            return AuthorizationResult.allow(
                f"Policy {name} allowed action '{action}'", policies=[name]
            )
        return AuthorizationResult.deny(f"Policy {name} denied action '{action}'", policies=[name])
