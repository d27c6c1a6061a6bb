"""Policy engine interface and its errors (API.md sections 3.2 and 4.2).

The engine errors are deliberately **not** :class:`~proxilion.exceptions.ProxilionError`
subclasses, as in the original: they report a misconfigured or broken engine, not a security
decision. ``str(err)`` is ``"[<engine_name>] <message>"`` when an engine name is known.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from proxilion.types import AuthorizationResult, UserContext

__all__ = [
    "BasePolicyEngine",
    "EngineNotAvailableError",
    "PolicyEngineError",
    "PolicyEvaluationError",
    "PolicyLoadError",
]


class PolicyEngineError(Exception):
    """Base class of policy-engine errors.

    Attributes:
        message: the message without the engine prefix.
        engine_name: the engine concerned, or None.
    """

    def __init__(self, message: str, engine_name: str | None = None) -> None:
        self.message = message
        self.engine_name = engine_name
        super().__init__(f"[{engine_name}] {message}" if engine_name else message)


class PolicyLoadError(PolicyEngineError):
    """Policies could not be loaded into an engine."""


class PolicyEvaluationError(PolicyEngineError):
    """An engine failed while evaluating a request."""


class EngineNotAvailableError(PolicyEngineError):
    """The requested engine is unknown or not installed."""


class BasePolicyEngine(ABC):
    """What :class:`proxilion.Proxilion` needs from a policy engine.

    Args:
        config: engine-specific settings (``engine_config`` of ``Proxilion``).
    """

    #: Engine name used in error messages.
    name: str = "base"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        if config is not None and not isinstance(config, dict):
            raise TypeError(f"engine_config must be a dict or None, not {type(config).__name__}")
        self.config: dict[str, Any] = dict(config) if config else {}

    @abstractmethod
    def evaluate(
        self,
        user: UserContext,
        action: str,
        resource: str,
        context: dict[str, Any] | None = None,
    ) -> AuthorizationResult:
        """Decide one request. Must deny (not raise) when it has no answer."""

    async def evaluate_async(
        self,
        user: UserContext,
        action: str,
        resource: str,
        context: dict[str, Any] | None = None,
    ) -> AuthorizationResult:
        """Async form of :meth:`evaluate` (runs it inline; it does not block on I/O)."""
        return self.evaluate(user, action, resource, context)

    @classmethod
    def is_available(cls) -> bool:
        """Whether the engine's dependencies are installed."""
        return True
