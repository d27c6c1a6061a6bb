"""Security controls (API.md section 7). Names are added here as their modules land."""

from __future__ import annotations

from proxilion.security.kill_switch import KillSwitch
from proxilion.security.sequence_validator import (
    DEFAULT_SEQUENCE_RULES,
    SequenceAction,
    SequenceRule,
    SequenceValidator,
    SequenceViolation,
    ToolCallRecord,
    create_sequence_validator,
)

__all__ = [
    "DEFAULT_SEQUENCE_RULES",
    "KillSwitch",
    "SequenceAction",
    "SequenceRule",
    "SequenceValidator",
    "SequenceViolation",
    "ToolCallRecord",
    "create_sequence_validator",
]
