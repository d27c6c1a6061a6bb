"""Tool-argument schema validation (same names as the original ``proxilion.validation``)."""

from __future__ import annotations

from proxilion.validation.schema import (
    ParameterSchema,
    RiskLevel,
    SchemaValidator,
    ToolSchema,
    ValidationResult,
)

#: Pydantic-based validation of the original is not provided.
HAS_PYDANTIC = False


def create_validator(use_pydantic: bool = False) -> SchemaValidator:
    """A :class:`SchemaValidator` (``use_pydantic`` is accepted and ignored)."""
    return SchemaValidator()


__all__ = [
    "HAS_PYDANTIC",
    "ParameterSchema",
    "RiskLevel",
    "SchemaValidator",
    "ToolSchema",
    "ValidationResult",
    "create_validator",
]
