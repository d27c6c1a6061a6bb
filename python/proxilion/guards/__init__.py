"""Input and output guards (API.md section 6), on a linear-time multi-pattern engine."""

from __future__ import annotations

from proxilion.guards.input_guard import (
    DEFAULT_INJECTION_PATTERNS,
    GuardAction,
    GuardResult,
    InjectionPattern,
    InputGuard,
    create_input_guard,
)
from proxilion.guards.output_guard import (
    DEFAULT_LEAKAGE_PATTERNS,
    LeakageCategory,
    LeakagePattern,
    OutputFilter,
    OutputGuard,
    create_output_guard,
)

__all__ = [
    "DEFAULT_INJECTION_PATTERNS",
    "DEFAULT_LEAKAGE_PATTERNS",
    "GuardAction",
    "GuardResult",
    "InjectionPattern",
    "InputGuard",
    "LeakageCategory",
    "LeakagePattern",
    "OutputFilter",
    "OutputGuard",
    "create_input_guard",
    "create_output_guard",
]
