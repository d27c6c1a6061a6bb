"""Tool-name normalisation and glob patterns shared by the sequence and scope controls.

A tool name is compared in a normalised form: Unicode NFKC, then case-folded, so
``"Delete_File"``, ``"DELETE_FILE"`` and the full-width ``"ｄｅｌｅｔｅ_file"`` are the same
tool for every rule. A *pattern* is one or more shell-style globs (``*``, ``?``, ``[seq]``)
separated by ``|``; it matches when any alternative matches the whole normalised name.
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from functools import lru_cache

__all__ = [
    "MAX_NAME_LENGTH",
    "check_name",
    "compile_pattern",
    "normalize_tool_name",
    "pattern_matches",
]


#: Longest accepted tool name, user id, scope or model name (characters).
MAX_NAME_LENGTH = 4096


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a non-empty string of at most :data:`MAX_NAME_LENGTH`
    characters, else raise a named error (``TypeError`` / ``ValueError``)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} is too long ({len(value)} > {MAX_NAME_LENGTH} characters)")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


@lru_cache(maxsize=8192)
def normalize_tool_name(name: str) -> str:
    """NFKC-normalise and case-fold a tool name (the form every rule compares)."""
    return unicodedata.normalize("NFKC", name).casefold()


@lru_cache(maxsize=2048)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a ``|``-separated glob pattern into one anchored regular expression.

    Raises:
        ValueError: the pattern is empty or has an empty alternative (``"a||b"``).
    """
    alternatives = [alt.strip() for alt in pattern.split("|")]
    if not alternatives or any(not alt for alt in alternatives):
        raise ValueError(f"tool pattern has an empty alternative: {pattern!r}")
    parts = [fnmatch.translate(normalize_tool_name(alt)) for alt in alternatives]
    return re.compile("|".join(f"(?:{part})" for part in parts))


def pattern_matches(pattern: str, tool_name: str) -> bool:
    """True when ``tool_name`` matches ``pattern`` (see the module docstring)."""
    return compile_pattern(pattern).match(normalize_tool_name(tool_name)) is not None
