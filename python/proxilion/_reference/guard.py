"""Reference twin of ``rust/python/src/guard.rs``: ``GuardResult`` as a Python dataclass.

This is the class API.md 6.1 describes. The native backend defines the same class natively
(cheaper to build than a dataclass instance) and ``proxilion.guards.input_guard`` copies
this dataclass's metadata onto it, so both behave as the same dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proxilion.guards.input_guard import GuardAction

__all__ = ["GuardResult"]


@dataclass
class GuardResult:
    """Outcome of a guard check (mutable, as in the original)."""

    passed: bool
    action: GuardAction
    matched_patterns: list[str] = field(default_factory=list)
    risk_score: float = 0.0
    sanitized_input: str | None = None
    matches: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def allow(cls) -> GuardResult:
        """A passing result with action ALLOW."""
        from proxilion.guards.input_guard import GuardAction

        return cls(passed=True, action=GuardAction.ALLOW)

    @classmethod
    def block(
        cls,
        matched_patterns: list[str],
        risk_score: float,
        matches: list[dict[str, Any]] | None = None,
    ) -> GuardResult:
        """A failing result with action BLOCK."""
        from proxilion.guards.input_guard import GuardAction

        return cls(
            passed=False,
            action=GuardAction.BLOCK,
            matched_patterns=matched_patterns,
            risk_score=risk_score,
            matches=matches or [],
        )
