"""Output guard: leak detection and redaction on the multi-pattern engine.

Same API as the original ``proxilion.guards.output_guard`` (API.md section 6.2). The
patterns of a guard are compiled once into one linear-time set (see
:mod:`proxilion.guards.input_guard`); :meth:`OutputGuard.redact` does its chained
replacement in one native call. Differences, deliberate: redaction strings are inserted
literally (no ``re`` template expansion, so a ``\\1`` in a redaction cannot leak a
group), and severities must be numbers in [0, 1].
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from proxilion.guards._engine import (
    RE_FLAGS,
    compile_user_pattern,
    validate_severity,
    validate_threshold,
)
from proxilion.guards.input_guard import GuardAction, GuardResult, _GuardBase

__all__ = [
    "DEFAULT_LEAKAGE_PATTERNS",
    "LeakageCategory",
    "LeakagePattern",
    "OutputFilter",
    "OutputGuard",
    "create_output_guard",
]

logger = logging.getLogger(__name__)


class LeakageCategory(Enum):
    """Kinds of sensitive data an output may leak."""

    CREDENTIAL = "credential"
    INTERNAL = "internal"
    SYSTEM_PROMPT = "system_prompt"
    PII = "pii"
    FINANCIAL = "financial"
    INFRASTRUCTURE = "infrastructure"


@dataclass
class LeakagePattern:
    """A named leak pattern (Python ``re`` syntax, compiled IGNORECASE | MULTILINE)."""

    name: str
    pattern: str
    category: LeakageCategory
    severity: float = 0.8
    description: str = ""
    redaction: str = "[REDACTED]"
    _compiled: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._compiled = compile_user_pattern(self.name, self.pattern)
        self.severity = validate_severity(self.name, self.severity)
        if not isinstance(self.category, LeakageCategory):
            raise TypeError(f"category of {self.name!r} must be a LeakageCategory")

    @property
    def compiled(self) -> re.Pattern[str]:
        """The pattern compiled by Python's ``re``."""
        if self._compiled is None:
            self._compiled = re.compile(self.pattern, RE_FLAGS)
        return self._compiled

    def match(self, text: str) -> list[re.Match[str]]:
        """All ``re`` matches of this pattern in ``text`` (no normalisation)."""
        return list(self.compiled.finditer(text))


@dataclass
class OutputFilter:
    """A custom check: ``check_func(text, context)`` returns True when the output is safe."""

    name: str
    check_func: Callable[[str, dict[str, Any] | None], bool]
    action: GuardAction = GuardAction.WARN
    description: str = ""


_C = LeakageCategory
_CONN = r"://[^\s:/@]+:[^\s@/]+@[^\s]+"
_DEFAULT_SPECS: list[tuple[str, str, LeakageCategory, float, str, str]] = [
    ("api_key_generic",
     r"(?a)\b(?:api[_-]?key|apikey|api[_-]?secret|api[_-]?token|access[_-]?token|secret[_-]?key"
     r"|client[_-]?secret)\s*[:=]\s*[\"']?[a-z0-9_\-./+]{20,}",
     _C.CREDENTIAL, 0.95, "Generic API key assignment", "[API_KEY_REDACTED]"),
    ("bearer_token",
     r"(?a)\bbearer\s+[a-z0-9_-]{8,}\.[a-z0-9_-]{8,}\.[a-z0-9_-]{8,}",
     _C.CREDENTIAL, 0.95, "JWT bearer token", "Bearer [TOKEN_REDACTED]"),
    ("openai_key", r"(?a)\bsk-(?:proj-)?[a-z0-9_-]{20,}",
     _C.CREDENTIAL, 0.95, "OpenAI API key", "[OPENAI_KEY_REDACTED]"),
    ("anthropic_key", r"(?a)\bsk-ant-[a-z0-9_-]{20,}",
     _C.CREDENTIAL, 0.95, "Anthropic API key", "[ANTHROPIC_KEY_REDACTED]"),
    ("aws_key", r"(?a)\b(?:AKIA|ABIA|ACCA|ASIA)[A-Z0-9]{16}\b",
     _C.CREDENTIAL, 0.95, "AWS access key id", "[AWS_KEY_REDACTED]"),
    ("aws_secret",
     r"(?a)\baws_?secret(?:_?access_?key)?\s*[:=]\s*[\"']?[a-z0-9/+=]{40}",
     _C.CREDENTIAL, 0.95, "AWS secret access key", "[AWS_SECRET_REDACTED]"),
    ("gcp_key", r"(?a)(?-i:AIza)[0-9a-z_-]{35}",
     _C.CREDENTIAL, 0.95, "Google API key", "[GCP_KEY_REDACTED]"),
    ("azure_key",
     r"(?a)(?:\b(?:azure|az)[a-z_-]{0,30}(?:key|secret|storage|account)[a-z_-]{0,20}\s*[:=]\s*"
     r"[\"']?|\baccountkey=)[a-z0-9+/]{86}==",
     _C.CREDENTIAL, 0.95, "Azure storage/account key", "[AZURE_KEY_REDACTED]"),
    ("github_token", r"(?a)\b(?:(?:ghp|gho|ghu|ghs|ghr)_[a-z0-9]{36,}|github_pat_[a-z0-9_]{22,})",
     _C.CREDENTIAL, 0.95, "GitHub token", "[GITHUB_TOKEN_REDACTED]"),
    ("slack_token", r"(?a)\bxox[baprs]-[a-z0-9-]{10,}",
     _C.CREDENTIAL, 0.9, "Slack token", "[SLACK_TOKEN_REDACTED]"),
    ("private_key",
     r"-----BEGIN[ ](?:RSA[ ]|EC[ ]|DSA[ ]|OPENSSH[ ]|ENCRYPTED[ ]|PGP[ ])?PRIVATE[ ]KEY"
     r"(?:[ ]BLOCK)?-----",
     _C.CREDENTIAL, 0.99, "PEM private key", "[PRIVATE_KEY_REDACTED]"),
    ("connection_string_mongodb", r"(?a)\bmongodb(?:\+srv)?" + _CONN,
     _C.CREDENTIAL, 0.95, "MongoDB URL with credentials", "[MONGODB_CONN_REDACTED]"),
    ("connection_string_postgres", r"(?a)\bpostgres(?:ql)?" + _CONN,
     _C.CREDENTIAL, 0.95, "PostgreSQL URL with credentials", "[POSTGRES_CONN_REDACTED]"),
    ("connection_string_mysql", r"(?a)\bmysql" + _CONN,
     _C.CREDENTIAL, 0.95, "MySQL URL with credentials", "[MYSQL_CONN_REDACTED]"),
    ("connection_string_redis", r"(?a)\brediss?://[^\s:/@]*:[^\s@/]+@[^\s]+",
     _C.CREDENTIAL, 0.95, "Redis URL with a password", "[REDIS_CONN_REDACTED]"),
    ("internal_path_unix", r"(?a)\B/(?:home|Users|var|etc|opt|root|srv)/[^\s\"'<>`]+",
     _C.INTERNAL, 0.6, "Internal Unix path", "[PATH_REDACTED]"),
    ("internal_path_windows",
     r"(?a)\b[a-z]:\\(?:users|documents and settings)\\[^\\\s]+\\[^\s\"'<>]*",
     _C.INTERNAL, 0.6, "Windows user path", "[PATH_REDACTED]"),
    ("system_prompt_leak",
     r"(?a)\b(?:my|the)\s+(?:system\s+prompt|(?:initial|original|hidden|secret)\s+"
     r"(?:instructions|prompt))\s+(?:is|are|says?|reads?|states?)\b"
     r"|\bmy\s+instructions\s+(?:are|say|tell\s+me|state)\b"
     r"|\bi\s+(?:was|have\s+been|am)\s+(?:told|instructed|programmed|configured)\s+(?:to|not\s+to)\b"
     r"|\b(?:here\s+(?:is|are)|below\s+(?:is|are))\s+my\s+(?:system\s+prompt|instructions"
     r"|initial\s+prompt)",
     _C.SYSTEM_PROMPT, 0.85, "Self-disclosure of the system prompt",
     "[SYSTEM_PROMPT_CONTENT_REDACTED]"),
    ("system_prompt_markers", r"(?a)<<SYS>>|<\|system\|>|\[SYSTEM\]|^[ \t]*\#{2,}[ \t]*system\b",
     _C.SYSTEM_PROMPT, 0.9, "System prompt markers", "[SYSTEM_MARKER_REDACTED]"),
    ("email_address", r"(?a)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b",
     _C.PII, 0.5, "Email address", "[EMAIL_REDACTED]"),
    ("phone_number",
     r"(?a)(?:\+1[\s.-]?)?(?:\([2-9][0-9]{2}\)|\b[2-9][0-9]{2})[\s.-]?[0-9]{3}[\s.-][0-9]{4}\b",
     _C.PII, 0.5, "US phone number", "[PHONE_REDACTED]"),
    ("ssn", r"(?a)\b[0-8][0-9]{2}-[0-9]{2}-[0-9]{4}\b",
     _C.PII, 0.9, "US social security number", "[SSN_REDACTED]"),
    ("credit_card",
     r"(?a)\b(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|3[47][0-9]{13}|6(?:011|5[0-9]{2})"
     r"[0-9]{12})\b|\b(?:4[0-9]{3}|5[1-5][0-9]{2}|6011|65[0-9]{2})(?:[\s-][0-9]{4}){3}\b",
     _C.FINANCIAL, 0.95, "Payment card number", "[CARD_REDACTED]"),
    ("internal_ip",
     r"(?a)\b(?:10(?:\.[0-9]{1,3}){3}|172\.(?:1[6-9]|2[0-9]|3[01])(?:\.[0-9]{1,3}){2}"
     r"|192\.168(?:\.[0-9]{1,3}){2})\b",
     _C.INFRASTRUCTURE, 0.6, "Private (RFC 1918) IPv4 address", "[INTERNAL_IP_REDACTED]"),
    ("password_in_text", r"(?a)\b(?:password|passwd|pwd)(?:\s+is)?\s*[:=]\s*\S{4,}",
     _C.CREDENTIAL, 0.9, "Password in text", "[PASSWORD_REDACTED]"),
]  # fmt: skip

#: The 25 default leakage patterns (PII ones are used only with ``enable_pii=True``).
DEFAULT_LEAKAGE_PATTERNS: list[LeakagePattern] = [
    LeakagePattern(name=n, pattern=p, category=c, severity=s, description=d, redaction=r)
    for n, p, c, s, d, r in _DEFAULT_SPECS
]


def _truncate(s: str) -> str:
    if len(s) <= 8:
        return "[...]"
    if len(s) <= 20:
        return f"{s[:4]}...{s[-4:]}"
    return f"{s[:8]}...{s[-4:]}"


class OutputGuard(_GuardBase):
    """Scans tool or model output for leaked secrets, internals and (optionally) PII.

    ``engine`` (keyword-only, an addition) picks the scanning engine as for
    :class:`~proxilion.guards.input_guard.InputGuard`.
    """

    def __init__(
        self,
        patterns: list[LeakagePattern] | None = None,
        filters: list[OutputFilter] | None = None,
        action: GuardAction = GuardAction.WARN,
        threshold: float = 0.5,
        enable_pii: bool = False,
        *,
        engine: str = "auto",
    ) -> None:
        self.threshold = validate_threshold(threshold)
        if not isinstance(action, GuardAction):
            raise TypeError(f"action must be a GuardAction, not {type(action).__name__}")
        self.action = action
        self.enable_pii = enable_pii
        if patterns is None:
            patterns = [
                p
                for p in DEFAULT_LEAKAGE_PATTERNS
                if enable_pii or p.category is not LeakageCategory.PII
            ]
        self.filters: list[OutputFilter] = list(filters or [])
        self._init_patterns(list(patterns), engine)

    def add_pattern(self, pattern: LeakagePattern) -> None:
        """Append a pattern (the name index points at the newest)."""
        if not isinstance(pattern, LeakagePattern):
            raise TypeError(f"pattern must be a LeakagePattern, not {type(pattern).__name__}")
        self._patterns.append(pattern)
        self._index[pattern.name] = pattern

    def add_filter(self, output_filter: OutputFilter) -> None:
        """Append a custom filter."""
        self.filters.append(output_filter)

    def get_patterns(self) -> list[LeakagePattern]:
        """A copy of the pattern list."""
        return list(self._patterns)

    def configure(self, action: GuardAction | None = None, threshold: float | None = None) -> None:
        """Change the action and/or threshold."""
        if threshold is not None:
            self.threshold = validate_threshold(threshold)
        if action is not None:
            self.action = action

    def check(self, output_text: str, context: dict[str, Any] | None = None) -> GuardResult:
        """Scan ``output_text`` for leaks, then run the filters (fail-closed on errors)."""
        if not output_text:
            return GuardResult.allow()
        if not isinstance(output_text, str):
            raise TypeError(f"output_text must be str, not {type(output_text).__name__}")
        compiled = self._current()
        hits = compiled.scan(output_text)
        snapshot = self._snapshot
        names: list[str] = []
        severities: list[float] = []
        matches: list[dict[str, Any]] = []
        for i, spans in hits:
            p = snapshot[i]
            names.append(p.name)
            severities.append(p.severity)
            for s, e in spans:
                matches.append(
                    {
                        "pattern": p.name,
                        "category": p.category.value,
                        "severity": p.severity,
                        "matched_text": _truncate(output_text[s:e]),
                        "start": s,
                        "end": e,
                        "redaction": p.redaction,
                    }
                )
        for f in self.filters:
            try:
                safe = f.check_func(output_text, context)
            except Exception:  # a failing filter fails closed
                logger.exception("Output filter %r raised; treating output as unsafe", f.name)
                names.append(f.name)
                severities.append(1.0)
                continue
            if not safe:
                names.append(f.name)
                severities.append(1.0 if f.action == GuardAction.BLOCK else 0.7)
        risk = min(1.0, max(severities) + 0.1 * (len(severities) - 1)) if severities else 0.0
        passed = risk < self.threshold
        action = GuardAction.ALLOW if passed else self.action
        ctx: dict[str, Any] = {"output_length": len(output_text)}
        if context:
            ctx.update(context)
        if not passed:
            if action == GuardAction.WARN:
                logger.warning("Output guard: matched %s, risk=%.2f", names, risk)
            elif action == GuardAction.BLOCK:
                logger.info("Output guard blocked output: matched %s, risk=%.2f", names, risk)
        return GuardResult(passed, action, names, risk, None, matches, ctx)

    def redact(self, output_text: str, categories: list[LeakageCategory] | None = None) -> str:
        """Replace every match with its pattern's redaction text, pattern by pattern in
        list order (each pattern sees the text left by the previous ones)."""
        if not isinstance(output_text, str):
            raise TypeError(f"output_text must be str, not {type(output_text).__name__}")
        if not output_text:
            return output_text
        compiled = self._current()
        snapshot = self._snapshot
        wanted = None if categories is None else set(categories)
        reps = [p.redaction if wanted is None or p.category in wanted else None for p in snapshot]
        if all(r is None for r in reps):
            return output_text
        return compiled.redact(output_text, reps)

    async def check_async(
        self, output_text: str, context: dict[str, Any] | None = None
    ) -> GuardResult:
        """Same as :meth:`check`."""
        return self.check(output_text, context)


def create_output_guard(
    include_defaults: bool = True,
    custom_patterns: list[LeakagePattern] | None = None,
    enable_pii: bool = False,
    action: GuardAction = GuardAction.WARN,
    threshold: float = 0.5,
    *,
    engine: str = "auto",
) -> OutputGuard:
    """An :class:`OutputGuard` with the defaults (optional) plus ``custom_patterns``."""
    patterns: list[LeakagePattern] = []
    if include_defaults:
        patterns = [
            p
            for p in DEFAULT_LEAKAGE_PATTERNS
            if enable_pii or p.category is not LeakageCategory.PII
        ]
    if custom_patterns:
        patterns.extend(custom_patterns)
    return OutputGuard(
        patterns=patterns, action=action, threshold=threshold, enable_pii=enable_pii, engine=engine
    )
