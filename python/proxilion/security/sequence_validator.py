"""Tool-call sequence rules: what a user's agent may call given what it called before.

Data exfiltration by an agent is a *sequence*: something reads secrets or private data, then
something sends data out. Single-call authorization cannot see it; a
:class:`SequenceValidator` can. It keeps a short per-user history of tool calls and checks
each new call against :class:`SequenceRule` s:

* ``REQUIRE_BEFORE``: the tool needs an earlier call matching ``required_pattern``
  (``delete_*`` needs ``confirm_*``).
* ``FORBID_AFTER``: the tool is refused after a call matching ``forbidden_pattern``
  (``send_*`` after ``*secret*``), optionally only within ``window_seconds``.
* ``REQUIRE_SEQUENCE``: the steps of ``sequence_patterns`` must happen in order.
* ``MAX_CONSECUTIVE``: at most ``max_count`` consecutive calls of the same tool.
* ``COOLDOWN``: the same tool again only after ``cooldown_seconds``.

Patterns are globs matched case-insensitively on NFKC-normalised names; ``|`` separates
alternatives (``"send_*|upload_*|http_*"``). :data:`DEFAULT_SEQUENCE_RULES` block the common
exfiltration flows out of the box.

Differences from the original SDK (deliberate, for security):

* Invalid rules (empty name, unknown action, a ``REQUIRE_BEFORE`` rule without a required
  pattern, a negative window...) raise :class:`InvalidSequenceRuleError` when the rule is
  built, instead of being accepted and silently never matching.
* ``FORBID_AFTER``, ``COOLDOWN`` and ``MAX_CONSECUTIVE`` remember what they need outside the
  bounded history, so flooding the history with harmless calls cannot erase a forbidden
  prior, and a run longer than the history still counts.
  ``REQUIRE_*`` rules only count calls still in the history (eviction makes them stricter).
* Calls that have started but not finished (:meth:`SequenceValidator.begin_call`) count for
  ``FORBID_AFTER``, ``MAX_CONSECUTIVE`` and ``COOLDOWN``, so parallel tool calls cannot race
  past a rule; the ``@sequence_validated`` decorator uses this.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from proxilion.exceptions import ConfigurationError, SequenceViolationError
from proxilion.security._tool_patterns import (
    check_name,
    compile_pattern,
    normalize_tool_name,
    pattern_matches,
)

__all__ = [
    "DEFAULT_SEQUENCE_RULES",
    "InvalidSequenceRuleError",
    "SequenceAction",
    "SequenceRule",
    "SequenceValidator",
    "SequenceViolation",
    "ToolCallRecord",
    "create_sequence_validator",
]

logger = logging.getLogger("proxilion.security.sequence_validator")

#: Per-user number of distinct tools whose last call time is kept for ``COOLDOWN`` rules.
_MAX_COOLDOWN_KEYS = 1024
#: Size above which the per-tool match cache is dropped and rebuilt on demand.
_MAX_CACHED_TOOLS = 16384


class InvalidSequenceRuleError(ConfigurationError, ValueError):
    """A :class:`SequenceRule` is malformed (also a :class:`ValueError`).

    The message reads ``Configuration error for 'sequence rule <name>': expected <what>,
    got <value>``.

    Attributes:
        rule_name: the rule's name as given (may be the bad value itself).
        problem: what was expected, in words.
    """

    def __init__(self, rule_name: object, problem: str, received: Any = None) -> None:
        self.rule_name = rule_name
        self.problem = problem
        super().__init__(f"sequence rule {rule_name!r}", problem, received)


class SequenceAction(Enum):
    """What a :class:`SequenceRule` checks."""

    REQUIRE_BEFORE = "require_before"
    FORBID_AFTER = "forbid_after"
    REQUIRE_SEQUENCE = "require_sequence"
    MAX_CONSECUTIVE = "max_consecutive"
    COOLDOWN = "cooldown"


def _positive_finite(value: object, what: str, rule: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidSequenceRuleError(rule, f"{what} as a number", value)
    if not math.isfinite(value) or value <= 0:
        raise InvalidSequenceRuleError(rule, f"{what} as a positive finite number", value)
    return float(value)


def _valid_pattern(value: object, what: str, rule: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidSequenceRuleError(rule, f"{what} as a non-empty glob pattern", value)
    try:
        compile_pattern(value)
    except ValueError as exc:
        raise InvalidSequenceRuleError(rule, f"{what} as a valid pattern ({exc})", value) from exc
    return value


@dataclass(frozen=True)
class SequenceRule:
    """One rule over a user's recent tool calls. Validated when built; immutable after.

    Args:
        name: unique, non-empty rule name (reported in violations).
        action: a :class:`SequenceAction` or its value (``"forbid_after"``).
        target_pattern: the tools the rule applies to (glob, ``|`` for alternatives).
        required_pattern: for ``REQUIRE_BEFORE``, the prior call that must exist.
        forbidden_pattern: for ``FORBID_AFTER``, the prior call that forbids the target.
        sequence_patterns: for ``REQUIRE_SEQUENCE``, at least two ordered steps.
        window_seconds: for ``REQUIRE_BEFORE``/``FORBID_AFTER``/``REQUIRE_SEQUENCE``, only
            prior calls this recent count; ``None`` means any remembered call.
        max_count: for ``MAX_CONSECUTIVE``, the largest allowed run of the same tool.
        cooldown_seconds: for ``COOLDOWN``, the minimum time between two calls of one tool.
        enabled: disabled rules are kept but not checked.
        description: free text for people.

    Raises:
        InvalidSequenceRuleError: on any malformed field.
    """

    name: str
    action: SequenceAction
    target_pattern: str
    required_pattern: str | None = None
    forbidden_pattern: str | None = None
    sequence_patterns: Sequence[str] = ()
    window_seconds: float | None = None
    max_count: int = 10
    cooldown_seconds: float = 60.0
    enabled: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        name: Any = self.name
        if not isinstance(name, str) or not name.strip():
            raise InvalidSequenceRuleError(name, "a non-empty name", name)
        action: Any = self.action
        if not isinstance(action, SequenceAction):
            try:
                action = SequenceAction(action)
            except ValueError:
                known = ", ".join(a.value for a in SequenceAction)
                raise InvalidSequenceRuleError(
                    name, f"a known action ({known})", self.action
                ) from None
            object.__setattr__(self, "action", action)
        _valid_pattern(self.target_pattern, "target_pattern", name)
        if self.required_pattern is not None:
            _valid_pattern(self.required_pattern, "required_pattern", name)
        if self.forbidden_pattern is not None:
            _valid_pattern(self.forbidden_pattern, "forbidden_pattern", name)
        steps = self.sequence_patterns
        if isinstance(steps, str) or not isinstance(steps, Iterable):
            raise InvalidSequenceRuleError(name, "sequence_patterns as a list of patterns", steps)
        steps = tuple(steps)
        for step in steps:
            _valid_pattern(step, "sequence_patterns entry", name)
        object.__setattr__(self, "sequence_patterns", steps)
        if self.window_seconds is not None:
            object.__setattr__(
                self,
                "window_seconds",
                _positive_finite(self.window_seconds, "window_seconds", name),
            )
        if isinstance(self.max_count, bool) or not isinstance(self.max_count, int):
            raise InvalidSequenceRuleError(name, "max_count as an int", self.max_count)
        if self.max_count < 1:
            raise InvalidSequenceRuleError(name, "max_count >= 1", self.max_count)
        object.__setattr__(
            self,
            "cooldown_seconds",
            _positive_finite(self.cooldown_seconds, "cooldown_seconds", name),
        )
        if not isinstance(self.enabled, bool):
            raise InvalidSequenceRuleError(name, "enabled as a bool", self.enabled)
        if not isinstance(self.description, str):
            raise InvalidSequenceRuleError(name, "description as a str", self.description)
        if action is SequenceAction.REQUIRE_BEFORE and self.required_pattern is None:
            raise InvalidSequenceRuleError(name, "required_pattern for a require_before rule")
        if action is SequenceAction.FORBID_AFTER and self.forbidden_pattern is None:
            raise InvalidSequenceRuleError(name, "forbidden_pattern for a forbid_after rule")
        if action is SequenceAction.REQUIRE_SEQUENCE and len(steps) < 2:
            raise InvalidSequenceRuleError(
                name, "at least two sequence_patterns for a require_sequence rule", list(steps)
            )

    def matches_target(self, tool_name: str) -> bool:
        """True when the rule applies to ``tool_name``."""
        return pattern_matches(self.target_pattern, tool_name)

    def matches_pattern(self, tool_name: str, pattern: str) -> bool:
        """True when ``tool_name`` matches ``pattern`` (same matching as the rule uses)."""
        return pattern_matches(pattern, tool_name)

    def patterns(self) -> tuple[str, ...]:
        """Every pattern the rule uses (target first)."""
        out = [self.target_pattern]
        if self.action is SequenceAction.REQUIRE_BEFORE and self.required_pattern:
            out.append(self.required_pattern)
        if self.action is SequenceAction.FORBID_AFTER and self.forbidden_pattern:
            out.append(self.forbidden_pattern)
        if self.action is SequenceAction.REQUIRE_SEQUENCE:
            out.extend(self.sequence_patterns)
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action.value,
            "target_pattern": self.target_pattern,
            "required_pattern": self.required_pattern,
            "forbidden_pattern": self.forbidden_pattern,
            "sequence_patterns": list(self.sequence_patterns),
            "window_seconds": self.window_seconds,
            "max_count": self.max_count,
            "cooldown_seconds": self.cooldown_seconds,
            "enabled": self.enabled,
            "description": self.description,
        }


@dataclass
class SequenceViolation:
    """Why a tool call was refused by a sequence rule."""

    rule_name: str
    violation_type: SequenceAction
    tool_name: str
    message: str = ""
    required_prior: str | None = None
    forbidden_prior: str | None = None
    consecutive_count: int | None = None
    last_call_seconds_ago: float | None = None
    cooldown_remaining: float | None = None
    tool_sequence: list[str] = field(default_factory=list)
    user_id: str | None = None

    def to_exception(self) -> SequenceViolationError:
        """The :class:`SequenceViolationError` that reports this violation."""
        return SequenceViolationError(
            rule_name=self.rule_name,
            tool_name=self.tool_name,
            required_prior=self.required_prior,
            forbidden_prior=self.forbidden_prior,
            violation_type=self.violation_type.value,
            consecutive_count=self.consecutive_count,
            cooldown_remaining=self.cooldown_remaining,
            user_id=self.user_id,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_name": self.rule_name,
            "violation_type": self.violation_type.value,
            "tool_name": self.tool_name,
            "message": self.message,
            "required_prior": self.required_prior,
            "forbidden_prior": self.forbidden_prior,
            "consecutive_count": self.consecutive_count,
            "last_call_seconds_ago": self.last_call_seconds_ago,
            "cooldown_remaining": self.cooldown_remaining,
            "tool_sequence": list(self.tool_sequence),
            "user_id": self.user_id,
        }


@dataclass(frozen=True)
class ToolCallRecord:
    """One recorded tool call (UTC timestamp)."""

    tool_name: str
    user_id: str
    timestamp: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool_name": self.tool_name,
            "user_id": self.user_id,
            "timestamp": self.timestamp.isoformat(),
        }


# --------------------------------------------------------------------------------------
# Default rules


_EGRESS = (
    "send*|*_send|*_send_*|email_*|mail_*|post_*|upload*|*_upload|publish*|share_*|export*"
    "|transfer*|forward*|notify*|sms_*|tweet*|*webhook*|http_*|fetch_url*|open_url*"
    "|browse*|curl*|wget*|request_url*|exfil*"
)
_SECRETS = (
    "*secret*|*credential*|*password*|*passwd*|*api_key*|*apikey*|*access_token*"
    "|*auth_token*|*private_key*|*ssh_key*|read_env*|get_env*|*keychain*|*vault*"
)
_PRIVATE_DATA = (
    "*private*|*pii*|*_ssn*|*medical*|*health_record*|*salary*|*payroll*|read_customer*"
    "|get_customer*|*customer_data*|*user_data*|*personal*|*financial*|*bank_account*"
    "|*credit_card*"
)

#: Rules every :class:`SequenceValidator` starts with unless ``include_defaults=False``.
DEFAULT_SEQUENCE_RULES: tuple[SequenceRule, ...] = (
    SequenceRule(
        name="require_confirm_before_delete",
        action=SequenceAction.REQUIRE_BEFORE,
        target_pattern="delete_*",
        required_pattern="confirm_*",
        description="Destructive delete_* tools need an explicit confirm_* call first.",
    ),
    SequenceRule(
        name="forbid_download_execute",
        action=SequenceAction.FORBID_AFTER,
        target_pattern="execute_*",
        forbidden_pattern="download_*",
        window_seconds=300.0,
        description="Do not execute within 5 minutes of downloading (download-and-run).",
    ),
    SequenceRule(
        name="forbid_download_run",
        action=SequenceAction.FORBID_AFTER,
        target_pattern="run_*",
        forbidden_pattern="download_*",
        window_seconds=300.0,
        description="Do not run within 5 minutes of downloading (download-and-run).",
    ),
    SequenceRule(
        name="forbid_secret_read_then_send",
        action=SequenceAction.FORBID_AFTER,
        target_pattern=_EGRESS,
        forbidden_pattern=_SECRETS,
        window_seconds=3600.0,
        description=(
            "Exfiltration: no outbound tool (send, email, upload, post, http, webhook...) "
            "within an hour of reading secrets or credentials."
        ),
    ),
    SequenceRule(
        name="forbid_private_data_then_send",
        action=SequenceAction.FORBID_AFTER,
        target_pattern=_EGRESS,
        forbidden_pattern=_PRIVATE_DATA,
        window_seconds=3600.0,
        description=(
            "Exfiltration: no outbound tool within an hour of reading private or personal "
            "data (PII, customer, medical, financial records)."
        ),
    ),
    SequenceRule(
        name="max_consecutive_calls",
        action=SequenceAction.MAX_CONSECUTIVE,
        target_pattern="*",
        max_count=10,
        description="At most 10 consecutive calls of the same tool (runaway loops).",
    ),
)


# --------------------------------------------------------------------------------------
# Internal state


class _Rec:
    __slots__ = ("bits", "dt", "key", "mask", "name", "ts")

    def __init__(
        self, name: str, key: str, ts: float, dt: datetime | None, mask: int, bits: tuple[int, ...]
    ) -> None:
        self.name = name
        self.key = key
        self.ts = ts
        self.dt = dt
        self.mask = mask
        self.bits = bits


class _UserState:
    __slots__ = (
        "inflight",
        "inflight_bits",
        "key_last",
        "last_seen",
        "records",
        "retained_count",
        "retained_maxts",
        "streak_key",
        "streak_len",
    )

    def __init__(self) -> None:
        self.records: deque[_Rec] = deque()
        self.retained_count: dict[int, int] = {}
        self.retained_maxts: dict[int, float] = {}
        # bit -> (latest timestamp, tool name); never shrinks on history eviction
        self.last_seen: dict[int, tuple[float, str]] = {}
        self.key_last: OrderedDict[str, float] = OrderedDict()
        self.streak_key: str | None = None
        self.streak_len = 0
        # in-flight calls: key -> [display name, count, mask]
        self.inflight: dict[str, list[Any]] = {}
        self.inflight_bits: dict[int, int] = {}


_EMPTY = _UserState()


class _CRule:
    """A rule with its pattern bits resolved."""

    __slots__ = ("aux_bit", "rule", "step_bits", "target_bit")

    def __init__(self, rule: SequenceRule, index: dict[str, int]) -> None:
        self.rule = rule
        self.target_bit = 1 << index[rule.target_pattern]
        aux = rule.required_pattern or rule.forbidden_pattern
        self.aux_bit = index[aux] if aux is not None and aux in index else -1
        self.step_bits = tuple(index[p] for p in rule.sequence_patterns)


def _validate_user_id(user_id: object) -> str:
    return check_name(user_id, "user_id")


def _to_utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


class SequenceValidator:
    """Per-user tool-call history checked against sequence rules. Thread-safe.

    Args:
        rules: extra rules (added after the defaults).
        history_size: calls kept per user (``get_history`` and ``REQUIRE_*`` rules).
        include_defaults: start with :data:`DEFAULT_SEQUENCE_RULES`.
        clock: wall clock in epoch seconds (injectable for tests); recorded timestamps and
            rule windows use it.

    A rule in ``rules`` replaces a default rule of the same name.

    Raises:
        ValueError: ``history_size`` is not a positive int.
        TypeError: a rule is not a :class:`SequenceRule`.
    """

    def __init__(
        self,
        rules: Iterable[SequenceRule] | None = None,
        history_size: int = 100,
        include_defaults: bool = True,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._history_size = self._check_history_size(history_size)
        self._clock = clock
        self._lock = threading.RLock()
        self._rules: list[SequenceRule] = []
        self._users: dict[str, _UserState] = {}
        self._patterns: list[str] = []
        self._index: dict[str, int] = {}
        self._compiled: list[re.Pattern[str]] = []
        self._crules: tuple[_CRule, ...] = ()
        self._tool_cache: dict[str, tuple[int, tuple[int, ...], tuple[_CRule, ...]]] = {}
        initial: list[SequenceRule] = list(DEFAULT_SEQUENCE_RULES) if include_defaults else []
        if rules is not None:
            initial.extend(rules)
        by_name: dict[str, SequenceRule] = {}
        for rule in initial:
            # a later rule replaces an earlier one of the same name (as add_rule does)
            by_name[self._check_rule(rule).name] = rule
        self._rules = list(by_name.values())
        self._rebuild()

    def __repr__(self) -> str:
        return (
            f"SequenceValidator(rules={len(self._rules)}, users={len(self._users)}, "
            f"history_size={self._history_size})"
        )

    # ---------------------------------------------------------------- configuration

    @staticmethod
    def _check_history_size(history_size: object) -> int:
        if isinstance(history_size, bool) or not isinstance(history_size, int):
            raise TypeError(f"history_size must be an int, not {type(history_size).__name__}")
        if history_size < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size}")
        return history_size

    @staticmethod
    def _check_rule(rule: object) -> SequenceRule:
        if not isinstance(rule, SequenceRule):
            raise TypeError(f"rule must be a SequenceRule, not {type(rule).__name__}")
        return rule

    @property
    def history_size(self) -> int:
        """Calls kept per user."""
        return self._history_size

    def configure(self, history_size: int | None = None) -> None:
        """Change settings; shrinking the history evicts the oldest calls now."""
        if history_size is None:
            return
        size = self._check_history_size(history_size)
        with self._lock:
            self._history_size = size
            for st in self._users.values():
                self._evict(st)

    def add_rule(self, rule: SequenceRule) -> None:
        """Add a rule, or replace the rule with the same name."""
        self._check_rule(rule)
        with self._lock:
            for i, existing in enumerate(self._rules):
                if existing.name == rule.name:
                    self._rules[i] = rule
                    logger.info("sequence rule %r replaced", rule.name)
                    break
            else:
                self._rules.append(rule)
            self._rebuild()

    def remove_rule(self, name: str) -> bool:
        """Remove the named rule; False if there is none."""
        with self._lock:
            for i, existing in enumerate(self._rules):
                if existing.name == name:
                    del self._rules[i]
                    self._rebuild()
                    return True
        return False

    def get_rule(self, name: str) -> SequenceRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.name == name:
                    return rule
        return None

    def get_rules(self) -> list[SequenceRule]:
        """A copy of the rule list, in evaluation order."""
        with self._lock:
            return list(self._rules)

    def _set_enabled(self, name: str, enabled: bool) -> bool:
        with self._lock:
            for i, existing in enumerate(self._rules):
                if existing.name == name:
                    if existing.enabled != enabled:
                        self._rules[i] = replace(existing, enabled=enabled)
                        self._rebuild()
                    return True
        return False

    def enable_rule(self, name: str) -> bool:
        """Enable the named rule; False if there is none."""
        return self._set_enabled(name, True)

    def disable_rule(self, name: str) -> bool:
        """Disable the named rule (it stays listed); False if there is none."""
        return self._set_enabled(name, False)

    def _rebuild(self) -> None:
        """Recompute pattern bits, compiled rules and every user's aggregates (lock held)."""
        patterns: list[str] = []
        index: dict[str, int] = {}
        for rule in self._rules:
            for p in rule.patterns():
                if p not in index:
                    index[p] = len(patterns)
                    patterns.append(p)
        old_patterns = self._patterns
        self._patterns = patterns
        self._index = index
        self._compiled = [compile_pattern(p) for p in patterns]
        self._crules = tuple(_CRule(r, index) for r in self._rules if r.enabled)
        self._tool_cache = {}
        if patterns == old_patterns:
            return
        for st in self._users.values():
            carried = {
                index[p]: st.last_seen[i]
                for i, p in enumerate(old_patterns)
                if p in index and i in st.last_seen
            }
            st.retained_count = {}
            st.retained_maxts = {}
            for rec in st.records:
                mask, bits, _ = self._tool_info(rec.key)
                rec.mask = mask
                rec.bits = bits
                for b in bits:
                    st.retained_count[b] = st.retained_count.get(b, 0) + 1
                    if rec.ts > st.retained_maxts.get(b, -math.inf):
                        st.retained_maxts[b] = rec.ts
                    if b not in carried or rec.ts > carried[b][0]:
                        carried[b] = (rec.ts, rec.name)
            st.last_seen = carried
            inflight_bits: dict[int, int] = {}
            for key, entry in st.inflight.items():
                mask, bits, _ = self._tool_info(key)
                entry[2] = mask
                for b in bits:
                    inflight_bits[b] = inflight_bits.get(b, 0) + entry[1]
            st.inflight_bits = inflight_bits

    def _tool_info(self, key: str) -> tuple[int, tuple[int, ...], tuple[_CRule, ...]]:
        """(mask, bit indices, applicable enabled rules) of a normalised tool name."""
        info = self._tool_cache.get(key)
        if info is None:
            bits = tuple(i for i, rx in enumerate(self._compiled) if rx.match(key) is not None)
            mask = 0
            for b in bits:
                mask |= 1 << b
            rules = tuple(cr for cr in self._crules if mask & cr.target_bit)
            info = (mask, bits, rules)
            if len(self._tool_cache) >= _MAX_CACHED_TOOLS:
                self._tool_cache.clear()
            self._tool_cache[key] = info
        return info

    # ---------------------------------------------------------------- checking

    def _check(self, st: _UserState, name: str, key: str, user_id: str) -> SequenceViolation | None:
        """First violated rule for calling ``name`` now (lock held)."""
        mask, _, rules = self._tool_info(key)
        if not rules:
            return None
        now = self._clock()
        for cr in rules:
            rule = cr.rule
            action = rule.action
            window = rule.window_seconds
            if action is SequenceAction.FORBID_AFTER:
                bit = cr.aux_bit
                hit: str | None = None
                if st.inflight_bits.get(bit):
                    for entry in st.inflight.values():
                        if entry[2] >> bit & 1:
                            hit = entry[0]
                            break
                else:
                    seen = st.last_seen.get(bit)
                    if seen is not None and (window is None or seen[0] >= now - window):
                        hit = seen[1]
                if hit is not None:
                    within = f" within {window:g}s" if window is not None else ""
                    return self._violation(
                        st,
                        rule,
                        name,
                        user_id,
                        f"Tool '{name}' is forbidden{within} after '{hit}'",
                        forbidden_prior=hit,
                    )
            elif action is SequenceAction.REQUIRE_BEFORE:
                bit = cr.aux_bit
                ok = st.retained_count.get(bit, 0) > 0
                if ok and window is not None:
                    ok = st.retained_maxts[bit] >= now - window
                if not ok:
                    within = f" within the last {window:g}s" if window is not None else ""
                    return self._violation(
                        st,
                        rule,
                        name,
                        user_id,
                        f"Tool '{name}' requires a prior call matching "
                        f"'{rule.required_pattern}'{within}",
                        required_prior=rule.required_pattern,
                    )
            elif action is SequenceAction.MAX_CONSECUTIVE:
                run = st.streak_len if st.streak_key == key else 0
                pending = st.inflight.get(key)
                if pending is not None:
                    run += pending[1]
                if run >= rule.max_count:
                    return self._violation(
                        st,
                        rule,
                        name,
                        user_id,
                        f"Tool '{name}' called {run} times consecutively (max {rule.max_count})",
                        consecutive_count=run,
                    )
            elif action is SequenceAction.COOLDOWN:
                elapsed: float | None = None
                if key in st.inflight:
                    elapsed = 0.0
                else:
                    last = st.key_last.get(key)
                    if last is not None:
                        elapsed = max(now - last, 0.0)
                if elapsed is not None and elapsed < rule.cooldown_seconds:
                    remaining = rule.cooldown_seconds - elapsed
                    return self._violation(
                        st,
                        rule,
                        name,
                        user_id,
                        f"Tool '{name}' is in cooldown: {remaining:.1f}s remaining",
                        last_call_seconds_ago=elapsed,
                        cooldown_remaining=remaining,
                    )
            else:  # REQUIRE_SEQUENCE
                step = -1
                for i, b in enumerate(cr.step_bits):
                    if mask >> b & 1:
                        step = i
                        break
                if step <= 0:
                    continue
                need = step - 1
                cutoff = now - window if window is not None else -math.inf
                for rec in reversed(st.records):
                    if rec.ts >= cutoff and rec.mask >> cr.step_bits[need] & 1:
                        need -= 1
                        if need < 0:
                            break
                if need >= 0:
                    missing = rule.sequence_patterns[need]
                    return self._violation(
                        st,
                        rule,
                        name,
                        user_id,
                        f"Tool '{name}' requires the earlier step '{missing}' of the sequence "
                        f"{list(rule.sequence_patterns)}",
                        required_prior=missing,
                    )
        return None

    @staticmethod
    def _violation(
        st: _UserState,
        rule: SequenceRule,
        name: str,
        user_id: str,
        message: str,
        **fields: Any,
    ) -> SequenceViolation:
        recent = [rec.name for rec in list(st.records)[-10:]]
        logger.warning(
            "sequence rule %r denied tool %r for user %r: %s", rule.name, name, user_id, message
        )
        return SequenceViolation(
            rule_name=rule.name,
            violation_type=rule.action,
            tool_name=name,
            message=message,
            tool_sequence=recent,
            user_id=user_id,
            **fields,
        )

    def validate_call(self, tool_name: str, user_id: str) -> tuple[bool, SequenceViolation | None]:
        """Would calling ``tool_name`` now break a rule for ``user_id``?

        Returns:
            ``(True, None)`` when allowed, else ``(False, violation)``. Nothing is recorded.
        """
        name = check_name(tool_name, "tool_name")
        user = _validate_user_id(user_id)
        key = normalize_tool_name(name)
        with self._lock:
            violation = self._check(self._users.get(user, _EMPTY), name, key, user)
        return (violation is None, violation)

    def begin_call(self, tool_name: str, user_id: str) -> tuple[bool, SequenceViolation | None]:
        """Atomically validate a call and, if allowed, mark it in flight.

        While in flight the call counts as a prior call for ``FORBID_AFTER``,
        ``MAX_CONSECUTIVE`` and ``COOLDOWN`` rules (not for ``REQUIRE_*``), so concurrent
        calls cannot all pass a check that only one of them should. Finish every allowed
        call with :meth:`end_call`.
        """
        name = check_name(tool_name, "tool_name")
        user = _validate_user_id(user_id)
        key = normalize_tool_name(name)
        with self._lock:
            violation = self._check(self._users.get(user, _EMPTY), name, key, user)
            if violation is not None:
                return (False, violation)
            st = self._users.get(user)
            if st is None:
                st = self._users[user] = _UserState()
            mask, bits, _ = self._tool_info(key)
            entry = st.inflight.get(key)
            if entry is None:
                st.inflight[key] = [name, 1, mask]
            else:
                entry[1] += 1
            for b in bits:
                st.inflight_bits[b] = st.inflight_bits.get(b, 0) + 1
        return (True, None)

    def end_call(
        self, tool_name: str, user_id: str, *, success: bool = True, record: bool = True
    ) -> None:
        """Finish a call started with :meth:`begin_call`; record it if it succeeded."""
        name = check_name(tool_name, "tool_name")
        user = _validate_user_id(user_id)
        key = normalize_tool_name(name)
        with self._lock:
            st = self._users.get(user)
            if st is not None:
                entry = st.inflight.get(key)
                if entry is not None:
                    entry[1] -= 1
                    if entry[1] <= 0:
                        del st.inflight[key]
                    for b in self._tool_info(key)[1]:
                        left = st.inflight_bits.get(b, 0) - 1
                        if left > 0:
                            st.inflight_bits[b] = left
                        else:
                            st.inflight_bits.pop(b, None)
            if success and record:
                self._record(user, name, key, self._clock(), None)

    def check_and_record(
        self, tool_name: str, user_id: str
    ) -> tuple[bool, SequenceViolation | None]:
        """Atomically validate a call and record it when allowed."""
        name = check_name(tool_name, "tool_name")
        user = _validate_user_id(user_id)
        key = normalize_tool_name(name)
        with self._lock:
            violation = self._check(self._users.get(user, _EMPTY), name, key, user)
            if violation is None:
                self._record(user, name, key, self._clock(), None)
        return (violation is None, violation)

    # ---------------------------------------------------------------- history

    def record_call(self, tool_name: str, user_id: str, timestamp: datetime | None = None) -> None:
        """Record that ``user_id`` called ``tool_name`` (now, or at ``timestamp``).

        A naive ``timestamp`` is taken as UTC.
        """
        name = check_name(tool_name, "tool_name")
        user = _validate_user_id(user_id)
        if timestamp is None:
            ts = self._clock()
            dt = None
        else:
            if not isinstance(timestamp, datetime):
                raise TypeError(
                    f"timestamp must be a datetime or None, not {type(timestamp).__name__}"
                )
            dt = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=timezone.utc)
            ts = dt.timestamp()
        with self._lock:
            self._record(user, name, normalize_tool_name(name), ts, dt)

    def _record(self, user: str, name: str, key: str, ts: float, dt: datetime | None) -> None:
        st = self._users.get(user)
        if st is None:
            st = self._users[user] = _UserState()
        mask, bits, _ = self._tool_info(key)
        rec = _Rec(name, key, ts, dt, mask, bits)
        st.records.append(rec)
        for b in bits:
            st.retained_count[b] = st.retained_count.get(b, 0) + 1
            if ts > st.retained_maxts.get(b, -math.inf):
                st.retained_maxts[b] = ts
            seen = st.last_seen.get(b)
            if seen is None or ts >= seen[0]:
                st.last_seen[b] = (ts, name)
        last = st.key_last.get(key)
        st.key_last[key] = ts if last is None or ts > last else last
        st.key_last.move_to_end(key)
        if len(st.key_last) > _MAX_COOLDOWN_KEYS:
            st.key_last.popitem(last=False)
        if st.streak_key == key:
            st.streak_len += 1
        else:
            st.streak_key = key
            st.streak_len = 1
        self._evict(st)

    def _evict(self, st: _UserState) -> None:
        while len(st.records) > self._history_size:
            old = st.records.popleft()
            for b in old.bits:
                left = st.retained_count[b] - 1
                if left == 0:
                    del st.retained_count[b]
                    del st.retained_maxts[b]
                    continue
                st.retained_count[b] = left
                if old.ts >= st.retained_maxts[b]:
                    st.retained_maxts[b] = max(r.ts for r in st.records if r.mask >> b & 1)

    @staticmethod
    def _limit(limit: int | None) -> int | None:
        if limit is None:
            return None
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"limit must be an int or None, not {type(limit).__name__}")
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        return limit

    def get_history(self, user_id: str, limit: int | None = None) -> list[tuple[str, datetime]]:
        """``(tool_name, timestamp)`` pairs for a user, most recent first."""
        return [(r.tool_name, r.timestamp) for r in self.get_records(user_id, limit)]

    def get_records(self, user_id: str, limit: int | None = None) -> list[ToolCallRecord]:
        """:class:`ToolCallRecord` s for a user, most recent first."""
        user = _validate_user_id(user_id)
        n = self._limit(limit)
        with self._lock:
            st = self._users.get(user)
            if st is None:
                return []
            recs = list(st.records)
        recs.reverse()
        if n is not None:
            recs = recs[:n]
        return [
            ToolCallRecord(r.name, user, r.dt if r.dt is not None else _to_utc(r.ts)) for r in recs
        ]

    def clear_history(self, user_id: str | None = None) -> None:
        """Forget one user's calls (or everyone's), including remembered forbidden priors."""
        with self._lock:
            if user_id is None:
                self._users.clear()
            else:
                self._users.pop(user_id, None)

    def get_users(self) -> list[str]:
        """Users with remembered state."""
        with self._lock:
            return list(self._users)


def create_sequence_validator(
    include_defaults: bool = True,
    custom_rules: Iterable[SequenceRule] | None = None,
    history_size: int = 100,
    *,
    clock: Callable[[], float] = time.time,
) -> SequenceValidator:
    """Build a :class:`SequenceValidator` (defaults first, then ``custom_rules``)."""
    return SequenceValidator(
        rules=custom_rules,
        history_size=history_size,
        include_defaults=include_defaults,
        clock=clock,
    )
