"""proxilion.validation.schema: tool-argument validation."""

from __future__ import annotations

import math

import pytest

from proxilion.exceptions import SchemaValidationError
from proxilion.validation import (
    ParameterSchema,
    SchemaValidator,
    ToolSchema,
    ValidationResult,
    create_validator,
)
from proxilion.validation.schema import has_path_traversal


def file_schema() -> ToolSchema:
    return ToolSchema(
        name="file_read",
        parameters={
            "path": ParameterSchema(name="path", type="str", constraints={"max_length": 50}),
            "encoding": ParameterSchema(name="encoding", default="utf-8", required=False),
            "limit": ParameterSchema(name="limit", type="int", constraints={"min": 1, "max": 10}),
            "mode": ParameterSchema(name="mode", constraints={"enum": ["r", "rb"]}),
            "tags": ParameterSchema(name="tags", type="list", constraints={"max_length": 2}),
            "q": ParameterSchema(name="q", constraints={"allow_sql_keywords": False}),
            "code": ParameterSchema(name="code", constraints={"pattern": r"[A-Z]{3}"}),
        },
        required_parameters=["path", "encoding"],
        risk_level="medium",
    )


def test_valid_call_applies_defaults() -> None:
    v = SchemaValidator()
    v.register_schema("file_read", file_schema())
    r = v.validate("file_read", {"path": "/safe/path.txt", "extra": 1})
    assert r.valid
    assert r.sanitized_arguments == {"path": "/safe/path.txt", "extra": 1, "encoding": "utf-8"}
    assert r.warnings == ["Unknown parameter: 'extra'"]


def test_errors_are_reported_with_messages() -> None:
    v = SchemaValidator(strict_mode=True)
    v.register_schema("file_read", file_schema())
    r = v.validate(
        "file_read",
        {
            "limit": 11,
            "mode": "w",
            "tags": [1, 2, 3],
            "q": "1; DROP TABLE x",
            "code": "abcd",
            "extra": 1,
        },
    )
    assert not r.valid
    assert r.errors == [
        "Missing required parameter: 'path'",
        "Parameter 'limit' value 11 is greater than maximum 10",
        "Parameter 'mode' value 'w' not in allowed values: ['r', 'rb']",
        "Parameter 'tags' has 3 items, maximum is 2",
        "Parameter 'q' contains potential SQL injection",
        "Parameter 'code' does not match pattern '[A-Z]{3}'",
        "Unknown parameter: 'extra'",
    ]
    with pytest.raises(SchemaValidationError) as ei:
        r.raise_if_invalid("file_read")
    assert ei.value.validation_errors == r.errors
    assert v.validate("nope", {}).errors == ["No schema registered for tool 'nope'"]


def test_types() -> None:
    v = SchemaValidator()
    v.register_schema("t", file_schema())
    assert v.validate("t", {"path": "a", "limit": True}).errors == [
        "Parameter 'limit' expected type 'int', got 'bool'"
    ]
    assert v.validate("t", {"path": 5}).errors == [
        "Parameter 'path' expected type 'str', got 'int'"
    ]
    s = ToolSchema(
        name="f", parameters={"x": ParameterSchema("x", "float", constraints={"min": 0})}
    )
    v.register_schema("f", s)
    assert v.validate("f", {"x": 1}).valid
    assert not v.validate("f", {"x": math.nan}).valid
    assert not v.validate("f", ["not", "a", "dict"]).valid


@pytest.mark.parametrize(
    "value",
    [
        "../../etc/passwd",
        "..\\windows\\system32",
        "a/../b",
        "%2e%2e/secret",
        "%252e%252e%252fsecret",
        "..%2fsecret",
        "%c0%ae%c0%ae/secret",
        "\uff0e\uff0e/secret",
        "\u2025/secret",
        "..",
        "file.txt\x00.png",
    ],
)
def test_path_traversal_detected(value: str) -> None:
    assert has_path_traversal(value)
    v = SchemaValidator()
    v.register_schema("t", file_schema())
    assert (
        "Parameter 'path' contains path traversal sequence"
        in v.validate("t", {"path": value}).errors
    )


@pytest.mark.parametrize("value", ["wait...", "v1..v2", "/srv/data/file.txt", "a.b.c", "...."])
def test_benign_dots_pass(value: str) -> None:
    assert not has_path_traversal(value)


def test_allow_path_traversal_and_registry() -> None:
    v = create_validator()
    s = ToolSchema(
        name="t",
        parameters={"p": ParameterSchema("p", constraints={"allow_path_traversal": True})},
    )
    v.register_schema("t", s)
    assert v.validate("t", {"p": "../x"}).valid
    assert v.has_schema("t") and v.list_schemas() == ["t"] and v.get_schema("t") is s
    assert v.unregister_schema("t") and not v.unregister_schema("t")
    assert ValidationResult.failure(["x"]).valid is False


def test_object_ids_and_schema_from_function() -> None:
    v = SchemaValidator()
    assert v.validate_object_id("123e4567-e89b-12d3-a456-426614174000")
    assert not v.validate_object_id("123e4567")
    assert v.validate_object_id("123", "numeric") and not v.validate_object_id("١٢٣", "numeric")
    assert v.validate_object_id("abc1", "alphanumeric")

    def tool(user: object, query: str, limit: int = 10) -> dict[str, object]:
        """Search."""
        return {}

    s = v.create_schema_from_function(tool, risk_level="high")
    assert s.required_parameters == ["query"]
    assert s.parameters["limit"].type == "int" and s.parameters["limit"].default == 10
    assert s.get_sensitive_parameters() == [] and s.risk_level == "high"
