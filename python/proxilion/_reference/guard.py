"""Reference twin of ``rust/python/src/guard.rs``: ``GuardResult`` as a Python dataclass.

This is the class API.md 6.1 describes. The native backend defines the same class natively
(cheaper to build than a dataclass instance) and ``proxilion.guards.input_guard`` copies
this dataclass's metadata onto it, so both behave as the same dataclass.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proxilion.guards.input_guard import GuardAction

__all__ = ["GuardResult", "Hits", "InputChecker", "verdict_with"]

#: What a scan returns: ``[(pattern_index, [(start, end), ...]), ...]``.
Hits = list[tuple[int, list[tuple[int, int]]]]


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


class InputChecker:
    """``InputGuard.check`` for one compiled pattern set (twin of ``_core.InputChecker``).

    ``InputChecker(pattern_set, threshold, fail_action, allow, finish)``; its method
    ``check(input_text, context=None)`` gives ``GuardResult.allow()`` for a falsy text, a
    ``TypeError`` for a non-``str``, the finished result for a clean text, and
    ``finish(input_text, context, hits)`` when something matched.
    """

    __slots__ = ("_allow", "_config", "_finish", "_lock", "_pset")

    def __init__(
        self,
        pattern_set: Any,
        threshold: float,
        fail_action: Any,
        allow: Any,
        finish: Callable[[Any, Any, Hits], Any],
    ) -> None:
        self._pset = pattern_set
        self._allow = allow
        self._finish = finish
        self._config: tuple[float, Any] = (float(threshold), fail_action)
        self._lock = threading.Lock()

    def configure(self, threshold: float, fail_action: Any) -> None:
        """Set the threshold and the action for failing texts."""
        with self._lock:
            self._config = (float(threshold), fail_action)

    @property
    def pattern_set(self) -> Any:
        """The pattern set this checker scans with."""
        return self._pset

    def check(self, input_text: Any, context: Any = None) -> Any:
        """``InputGuard.check`` (see the class doc)."""
        if not input_text:
            return GuardResult(True, self._allow)
        threshold, fail_action = self._config
        r = self._pset.verdict(input_text, context, threshold, fail_action, self._allow)
        if r.__class__ is list:
            return self._finish(input_text, context, r)
        return r


def verdict_with(
    scan: Callable[[str], Hits],
    result_type: Callable[..., Any],
    text: object,
    context: Any,
    threshold: float,
    fail_action: Any,
    allow: Any,
) -> Any:
    """``PatternSet.verdict`` on top of any ``scan``: the hits, or on a clean text a
    ``result_type`` built as ``_core.PatternSet.verdict`` builds its ``GuardResult``."""
    if not isinstance(text, str):
        raise TypeError(f"input_text must be str, not {type(text).__name__}")
    hits = scan(text)
    if hits:
        return hits
    ctx: dict[str, Any] = {"original_input_length": len(text)}
    if context:
        ctx.update(context)
    passed = threshold > 0.0
    return result_type(passed, allow if passed else fail_action, [], 0.0, None, [], ctx)
