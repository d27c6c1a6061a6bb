"""Policy engines. ``"simple"`` (Python policy classes) is built in; ``"casbin"`` and
``"opa"`` are optional engines of the original that this build does not include."""

from __future__ import annotations

from typing import Any

from proxilion.engines.base import (
    BasePolicyEngine,
    EngineNotAvailableError,
    PolicyEngineError,
    PolicyEvaluationError,
    PolicyLoadError,
)
from proxilion.engines.simple import SimplePolicyEngine

__all__ = [
    "OPTIONAL_ENGINES",
    "BasePolicyEngine",
    "EngineNotAvailableError",
    "PolicyEngineError",
    "PolicyEvaluationError",
    "PolicyLoadError",
    "SimplePolicyEngine",
    "create_engine",
]

#: Engines the original supports as optional extras; not installed in this build.
OPTIONAL_ENGINES: tuple[str, ...] = ("casbin", "opa")


def create_engine(engine_type: str, config: dict[str, Any] | None = None) -> BasePolicyEngine:
    """Build the engine named ``engine_type`` (case-insensitive).

    Raises:
        TypeError: ``engine_type`` is not a str.
        EngineNotAvailableError: ``"casbin"``/``"opa"`` (optional engines not installed) or an
            unknown name (message ``"[<engine>] Unknown engine type: ..."``).
    """
    if not isinstance(engine_type, str):
        raise TypeError(f"policy_engine must be a str, not {type(engine_type).__name__}")
    key = engine_type.strip().lower()
    if key == "simple":
        return SimplePolicyEngine(config)
    if key in OPTIONAL_ENGINES:
        raise EngineNotAvailableError(
            f"The optional {key} policy engine isn't installed in this build; "
            "use policy_engine='simple' with Python policy classes",
            engine_name=key,
        )
    raise EngineNotAvailableError(
        f"Unknown engine type: {engine_type!r} (available: 'simple'; optional, not "
        "installed: 'casbin', 'opa')",
        engine_name=engine_type,
    )
