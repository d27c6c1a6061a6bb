"""Tool-argument schema validation (``proxilion.validation.schema``).

Same public interface as the original: :class:`ParameterSchema`, :class:`ToolSchema`,
:class:`ValidationResult`, :class:`SchemaValidator` (types, required parameters, defaults,
``min``/``max``/``min_length``/``max_length``/``pattern``/``enum`` constraints, path
traversal and optional SQL-injection checks, strict mode, thread safety).

Deliberate differences (security):

* Path traversal is detected on the *decoded* value: percent-encoding is undone repeatedly
  (``%2e``, ``%252e``, overlong ``%c0%ae``), then NFKC folds full-width and "two-dot
  leader" look-alikes, and ``..`` is flagged as a path *segment* (between separators or at
  the ends) and NUL bytes are flagged too. The original flagged any ``..`` substring
  (so "wait..." in a message failed) but missed ``%2e./`` and ``..%2f`` mixes.
* ``bool`` is not accepted where ``int``/``float`` is expected; ``NaN`` fails numeric
  ``min``/``max`` constraints.
* ``pattern`` constraints are matched with ``re.fullmatch`` as before.
"""

from __future__ import annotations

import inspect
import logging
import math
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from urllib.parse import unquote

from proxilion.exceptions import SchemaValidationError

__all__ = [
    "ParameterSchema",
    "RiskLevel",
    "SchemaValidator",
    "ToolSchema",
    "ValidationResult",
]

logger = logging.getLogger(__name__)

RiskLevel = Literal["low", "medium", "high", "critical"]

_VALID_TYPES = frozenset({"str", "int", "float", "bool", "list", "dict", "any"})


@dataclass
class ParameterSchema:
    """Schema of one tool parameter (``type`` is one of str/int/float/bool/list/dict/any)."""

    name: str
    type: str = "str"
    description: str = ""
    constraints: dict[str, Any] = field(default_factory=dict)
    sensitive: bool = False
    default: Any = None
    required: bool = True

    def __post_init__(self) -> None:
        if self.type not in _VALID_TYPES:
            logger.warning(
                "Unknown type %r for parameter %r. Valid types: %s",
                self.type,
                self.name,
                sorted(_VALID_TYPES),
            )


@dataclass
class ToolSchema:
    """Schema of a tool: its parameters, required names, risk level and tags."""

    name: str
    description: str = ""
    parameters: dict[str, ParameterSchema] = field(default_factory=dict)
    required_parameters: list[str] = field(default_factory=list)
    risk_level: RiskLevel = "low"
    tags: list[str] = field(default_factory=list)
    version: str = "1.0"

    def get_sensitive_parameters(self) -> list[str]:
        """Names of the parameters marked ``sensitive``."""
        return [n for n, p in self.parameters.items() if p.sensitive]

    def get_parameter(self, name: str) -> ParameterSchema | None:
        """The schema of parameter ``name``, if any."""
        return self.parameters.get(name)


@dataclass
class ValidationResult:
    """Outcome of :meth:`SchemaValidator.validate`."""

    valid: bool
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sanitized_arguments: dict[str, Any] | None = None

    @classmethod
    def success(
        cls, sanitized: dict[str, Any] | None = None, warnings: list[str] | None = None
    ) -> ValidationResult:
        """A passing result."""
        return cls(valid=True, sanitized_arguments=sanitized, warnings=warnings or [])

    @classmethod
    def failure(cls, errors: list[str]) -> ValidationResult:
        """A failing result."""
        return cls(valid=False, errors=errors)

    def raise_if_invalid(self, tool_name: str) -> None:
        """Raise :class:`SchemaValidationError` if the validation failed."""
        if not self.valid:
            raise SchemaValidationError(tool_name=tool_name, validation_errors=self.errors)


_SEGMENT_SEP = re.compile(r"[/\\]")
_SQL_PATTERNS = [
    re.compile(r"(?i)\b(?:SELECT|INSERT|UPDATE|DELETE|DROP|UNION|ALTER)\b"),
    re.compile(r"(?i)\b(?:EXEC|EXECUTE|INTO|FROM|WHERE)\b.*[;'\"]"),
    re.compile(r"--"),
    re.compile(r"/\*"),
    re.compile(r"(?i);\s*(?:SELECT|INSERT|UPDATE|DELETE|DROP)"),
]
_OVERLONG_DOT = re.compile(r"%c0%ae|%e0%80%ae|%c0%2e", re.IGNORECASE)
_OVERLONG_SLASH = re.compile(r"%c0%af|%e0%80%af|%c1%9c", re.IGNORECASE)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def has_path_traversal(value: str) -> bool:
    """True if ``value`` contains a ``..`` path segment or NUL, after decoding.

    Decoding: percent-encoding undone up to 4 times (double/triple encoding), overlong
    UTF-8 dots and slashes, then NFKC (full-width ``．．／``, U+2025 ``‥``).
    """
    v = value
    for _ in range(4):
        v = _OVERLONG_DOT.sub(".", v)
        v = _OVERLONG_SLASH.sub("/", v)
        decoded = unquote(v, errors="replace")
        if decoded == v:
            break
        v = decoded
    v = unicodedata.normalize("NFKC", v)
    if "\x00" in v:
        return True
    return any(seg.strip() == ".." for seg in _SEGMENT_SEP.split(v))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class SchemaValidator:
    """Validates tool-call arguments against registered :class:`ToolSchema` objects.

    ``strict_mode`` rejects unknown parameters and tools without a schema. Thread-safe.
    """

    SQL_INJECTION_PATTERNS: ClassVar[list[str]] = [p.pattern for p in _SQL_PATTERNS]

    def __init__(self, strict_mode: bool = False) -> None:
        self._schemas: dict[str, ToolSchema] = {}
        self._lock = threading.RLock()
        self.strict_mode = strict_mode
        self._sql_patterns = list(_SQL_PATTERNS)

    def register_schema(self, tool_name: str, schema: ToolSchema) -> None:
        """Register (or replace, with a warning) the schema of ``tool_name``."""
        with self._lock:
            if tool_name in self._schemas:
                logger.warning("Overwriting schema for tool %r", tool_name)
            self._schemas[tool_name] = schema

    def unregister_schema(self, tool_name: str) -> bool:
        """Remove a schema; True if one was registered."""
        with self._lock:
            return self._schemas.pop(tool_name, None) is not None

    def get_schema(self, tool_name: str) -> ToolSchema | None:
        with self._lock:
            return self._schemas.get(tool_name)

    def has_schema(self, tool_name: str) -> bool:
        with self._lock:
            return tool_name in self._schemas

    def list_schemas(self) -> list[str]:
        with self._lock:
            return list(self._schemas)

    def validate(self, tool_name: str, arguments: Any) -> ValidationResult:
        """Check ``arguments`` against the schema of ``tool_name``."""
        if not isinstance(arguments, dict):
            return ValidationResult.failure(
                [f"Arguments must be a dict, got '{type(arguments).__name__}'"]
            )
        with self._lock:
            schema = self._schemas.get(tool_name)
        if schema is None:
            msg = f"No schema registered for tool '{tool_name}'"
            if self.strict_mode:
                return ValidationResult.failure([msg])
            logger.warning("No schema for tool %r, skipping validation", tool_name)
            return ValidationResult.success(sanitized=dict(arguments), warnings=[msg])
        errors: list[str] = []
        warnings: list[str] = []
        sanitized = dict(arguments)
        for name in schema.required_parameters:
            if name not in arguments:
                p = schema.get_parameter(name)
                if p is not None and p.default is not None:
                    sanitized[name] = p.default
                else:
                    errors.append(f"Missing required parameter: '{name}'")
        for name, value in arguments.items():
            p = schema.get_parameter(name)
            if p is None:
                msg = f"Unknown parameter: '{name}'"
                (errors if self.strict_mode else warnings).append(msg)
                continue
            errors.extend(self._validate_parameter(p, value, name))
        if errors:
            return ValidationResult.failure(errors)
        return ValidationResult.success(sanitized=sanitized, warnings=warnings)

    def _validate_parameter(self, schema: ParameterSchema, value: Any, name: str) -> list[str]:
        type_error = self._validate_type(schema.type, value, name)
        if type_error:
            return [type_error]
        return self._validate_constraints(schema.constraints, value, name, schema.type)

    def _validate_type(self, expected: str, value: Any, name: str) -> str | None:
        ok: bool
        if expected == "any" or expected not in _VALID_TYPES:
            return None
        if expected == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif expected == "float":
            ok = _is_number(value)
        else:
            ok = isinstance(value, {"str": str, "bool": bool, "list": list, "dict": dict}[expected])
        if ok:
            return None
        return f"Parameter '{name}' expected type '{expected}', got '{type(value).__name__}'"

    def _validate_constraints(
        self, constraints: dict[str, Any], value: Any, name: str, value_type: str
    ) -> list[str]:
        errors: list[str] = []
        if value_type in ("int", "float") and _is_number(value):
            if isinstance(value, float) and math.isnan(value):
                if "min" in constraints or "max" in constraints:
                    errors.append(f"Parameter '{name}' value nan is not a number")
            else:
                if "min" in constraints and value < constraints["min"]:
                    errors.append(
                        f"Parameter '{name}' value {value} is less than minimum "
                        f"{constraints['min']}"
                    )
                if "max" in constraints and value > constraints["max"]:
                    errors.append(
                        f"Parameter '{name}' value {value} is greater than maximum "
                        f"{constraints['max']}"
                    )
        if value_type == "str" and isinstance(value, str):
            if "min_length" in constraints and len(value) < constraints["min_length"]:
                errors.append(
                    f"Parameter '{name}' length {len(value)} is less than minimum "
                    f"{constraints['min_length']}"
                )
            if "max_length" in constraints and len(value) > constraints["max_length"]:
                errors.append(
                    f"Parameter '{name}' length {len(value)} exceeds maximum "
                    f"{constraints['max_length']}"
                )
            if "pattern" in constraints:
                pattern = constraints["pattern"]
                if not re.fullmatch(pattern, value):
                    errors.append(f"Parameter '{name}' does not match pattern '{pattern}'")
            if not constraints.get("allow_path_traversal", False) and has_path_traversal(value):
                errors.append(f"Parameter '{name}' contains path traversal sequence")
            if not constraints.get("allow_sql_keywords", True) and self._check_sql_injection(value):
                errors.append(f"Parameter '{name}' contains potential SQL injection")
        if "enum" in constraints and value not in constraints["enum"]:
            errors.append(
                f"Parameter '{name}' value '{value}' not in allowed values: {constraints['enum']}"
            )
        if value_type == "list" and isinstance(value, list):
            if "min_length" in constraints and len(value) < constraints["min_length"]:
                errors.append(
                    f"Parameter '{name}' has {len(value)} items, minimum is "
                    f"{constraints['min_length']}"
                )
            if "max_length" in constraints and len(value) > constraints["max_length"]:
                errors.append(
                    f"Parameter '{name}' has {len(value)} items, maximum is "
                    f"{constraints['max_length']}"
                )
        return errors

    def _check_path_traversal(self, value: str) -> bool:
        return has_path_traversal(value)

    def _check_sql_injection(self, value: str) -> bool:
        return any(p.search(value) for p in self._sql_patterns)

    def validate_object_id(self, value: Any, id_type: str = "uuid") -> bool:
        """Check an object id's format: ``uuid``, ``numeric`` or ``alphanumeric``."""
        if not isinstance(value, str):
            return False
        if id_type == "uuid":
            return _UUID.fullmatch(value) is not None
        if id_type == "numeric":
            return value.isascii() and value.isdigit()
        if id_type == "alphanumeric":
            return value.isascii() and value.isalnum()
        return True

    def create_schema_from_function(
        self, func: Callable[..., Any], risk_level: RiskLevel = "low"
    ) -> ToolSchema:
        """Derive a :class:`ToolSchema` from ``func``'s signature and annotations."""
        sig = inspect.signature(func)
        hints = getattr(func, "__annotations__", {})
        parameters: dict[str, ParameterSchema] = {}
        required: list[str] = []
        for pname, param in sig.parameters.items():
            if pname in ("self", "cls", "user", "context"):
                continue
            has_default = param.default is not inspect.Parameter.empty
            if not has_default:
                required.append(pname)
            parameters[pname] = ParameterSchema(
                name=pname,
                type=self._python_type_to_schema_type(hints.get(pname, Any)),
                default=param.default if has_default else None,
                required=not has_default,
            )
        return ToolSchema(
            name=getattr(func, "__name__", "tool"),
            description=func.__doc__ or "",
            parameters=parameters,
            required_parameters=required,
            risk_level=risk_level,
        )

    def _python_type_to_schema_type(self, hint: Any) -> str:
        names = {str: "str", int: "int", float: "float", bool: "bool", list: "list", dict: "dict"}
        if isinstance(hint, str):
            return hint if hint in _VALID_TYPES else "any"
        return names.get(hint, "any")
