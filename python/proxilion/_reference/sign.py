"""Reference twin of ``rust/core/src/sign`` and ``rust/python/src/sign.rs``.

Python's own formatting is the definition of the canonical text (API.md section 10): the
memory message's signed bytes are ``f"{role}|{content}|{sequence}|{timestamp}|{previous_hash}"``
exactly as written here. The native module must produce the same bytes, findings and errors.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from proxilion._reference._convert import text_or_bytes

__all__ = ["ROLE_RULES", "SigningKeys", "py_float_repr", "role_injection_rule", "sorted_json"]

#: Role-injection rules in priority order: (regex, description). ASCII-only and
#: ASCII-case-insensitive, mirrored byte for byte in ``rust/core/src/sign/roles.rs``.
ROLE_RULES: tuple[tuple[str, str], ...] = (
    (r"^[ \t]*(system|assistant|user|tool)[ \t]*:", "Role prefix injection"),
    (r"[\r\n][ \t]*(system|assistant|user|tool)[ \t]*:", "Inline role injection"),
    (r"<\|[ \t]*(system|assistant|user|tool)[ \t]*\|>", "Delimiter role injection"),
    (r"\[/?INST\]", "Llama instruction delimiters"),
    (r"<\|im_start\|>[ \t\r\n]*(system|assistant|user|tool)", "ChatML injection"),
)
_ROLE_RES = tuple(re.compile(p, re.ASCII | re.IGNORECASE) for p, _ in ROLE_RULES)
_UNDEFINED_HASH = "<unencodable>"
_I64 = (-(2**63), 2**63 - 1)


def _items(obj: object, what: str) -> list[Any]:
    if isinstance(obj, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of messages, not {type(obj).__name__}")
    if not isinstance(obj, Sequence):
        raise TypeError(f"{what} must be a sequence, not {type(obj).__name__}")
    return list(obj)


def _tag(tag: object) -> tuple[str, bytes | None]:
    if isinstance(tag, str):
        try:
            raw = bytes.fromhex(tag)
        except ValueError:
            return "invalid", None
        # bytes.fromhex skips ASCII whitespace; the native decoder does not.
        if len(tag) != 2 * len(raw) or len(raw) != 32:
            return "invalid", None
        return "hex", raw
    return "raw", text_or_bytes(tag, "tag")


def _seq_number(obj: object) -> int | None:
    if isinstance(obj, int) and _I64[0] <= obj <= _I64[1]:
        return int(obj)
    return None


def _ts_number(obj: object) -> float | None:
    if isinstance(obj, (int, float)):
        try:
            t = float(obj)
        except OverflowError:
            return None
        return t if math.isfinite(t) else None
    return None


def _str_arg(obj: object, what: str) -> str:
    if not isinstance(obj, str):
        raise TypeError(f"{what} must be str, not {type(obj).__name__}")
    try:
        obj.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"{what} is not valid Unicode text (it contains surrogate code points)"
        ) from None
    return obj


class SigningKeys:
    """HMAC-SHA256 keys. The first key signs; every key verifies. Keys are never shown."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        items = _items(keys, "keys")
        raw = [text_or_bytes(k, f"keys[{i}]") for i, k in enumerate(items)]
        if not raw:
            raise ValueError("at least one secret key is required")
        for i, k in enumerate(raw):
            if not k:
                raise ValueError(f"secret key {i} must not be empty")
        self._keys: tuple[bytes, ...] = tuple(raw)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"SigningKeys(<{len(self._keys)} keys hidden>)"

    def _mac(self, i: int, message: bytes) -> bytes:
        return _hmac.new(self._keys[i], message, hashlib.sha256).digest()

    def _verify(self, message: bytes, tag: tuple[str, bytes | None]) -> int:
        raw = tag[1]
        if raw is None or len(raw) != 32:
            return -1
        for i in range(len(self._keys)):
            if _hmac.compare_digest(self._mac(i, message), raw):
                return i
        return -1

    def sign(self, message: str | bytes) -> str:
        """Hex HMAC-SHA256 of ``message`` under the signing key."""
        return self._mac(0, text_or_bytes(message, "message")).hex()

    def sign_many(self, messages: Sequence[str | bytes]) -> list[str]:
        """Hex tags of every message, in one call."""
        data = [
            text_or_bytes(m, f"messages[{i}]") for i, m in enumerate(_items(messages, "messages"))
        ]
        return [self._mac(0, d).hex() for d in data]

    def verify(self, message: str | bytes, tag: str | bytes) -> int:
        """Index of the key that authenticates ``message`` under ``tag``, or -1."""
        m = text_or_bytes(message, "message")
        return self._verify(m, _tag(tag))

    def verify_many(
        self, messages: Sequence[str | bytes], tags: Sequence[str | bytes]
    ) -> list[int]:
        """``verify`` over parallel sequences of messages and tags, in one call."""
        ms = _items(messages, "messages")
        ts = _items(tags, "tags")
        if len(ms) != len(ts):
            raise ValueError(f"messages and tags differ in length ({len(ms)} != {len(ts)})")
        pairs = [
            (text_or_bytes(m, f"messages[{i}]"), _tag(t))
            for i, (m, t) in enumerate(zip(ms, ts, strict=True))
        ]
        return [self._verify(m, t) for m, t in pairs]

    def memory_sign(
        self, role: str, content: str, sequence: int, timestamp: float, previous_hash: str
    ) -> tuple[str, str]:
        """``(signature, content_hash)`` of a memory message."""
        role = _str_arg(role, "role")
        content = _str_arg(content, "content")
        previous_hash = _str_arg(previous_hash, "previous_hash")
        if type(sequence) is not int:
            raise TypeError(f"sequence must be int, not {type(sequence).__name__}")
        if type(timestamp) is not float:
            raise TypeError(f"timestamp must be float, not {type(timestamp).__name__}")
        signed = f"{role}|{content}|{sequence}|{timestamp}|{previous_hash}".encode()
        hashed = f"{role}:{content}:{sequence}:{timestamp}".encode()
        return self._mac(0, signed).hex(), hashlib.sha256(hashed).hexdigest()

    def agent_sign(
        self,
        message_id: object,
        from_agent: object,
        to_agent: object,
        action: object,
        payload: object,
        timestamp: object,
    ) -> str:
        """Hex HMAC of an agent message's canonical text (see ``_agent_text``)."""
        text = _agent_text(message_id, from_agent, to_agent, action, payload, timestamp)
        if text is None:
            raise ValueError(
                "message is not valid Unicode text (it contains surrogate code points)"
            )
        return self._mac(0, text).hex()

    def agent_verify(
        self,
        message_id: object,
        from_agent: object,
        to_agent: object,
        action: object,
        payload: object,
        timestamp: object,
        signature: object,
    ) -> int:
        """Index of the key whose tag is the hex ``signature`` of the agent message, or -1."""
        text = _agent_text(message_id, from_agent, to_agent, action, payload, timestamp)
        if text is None or not isinstance(signature, str):
            return -1
        return self._verify(text, _tag(signature))

    def memory_verify_context(
        self,
        messages: Sequence[Any],
        genesis: str,
        strict_sequence: bool,
        check_timestamps: bool,
        max_timestamp_drift: float,
        now: float | None,
        max_clock_skew: float,
        max_age: float | None,
        plain_type: type | None = None,
    ) -> list[tuple[str, int, float, str, str]]:
        """Verify a whole conversation; findings as ``(code, index, value, expected, actual)``.

        ``plain_type`` only lets the native walk read fields of that class's exact instances
        from their ``__dict__``; attribute access gives the same values.
        """
        items = _items(messages, "messages")
        fields = [
            (m.role, m.content, m.sequence, m.timestamp, m.signature, m.previous_hash)
            for m in items
        ]
        out: list[tuple[str, int, float, str, str]] = []
        expected_hash = genesis
        prev_seq: int | None = -1
        prev_ts = 0.0
        for i, (role, content, sequence, timestamp, signature, previous_hash) in enumerate(fields):
            signed = f"{role}|{content}|{sequence}|{timestamp}|{previous_hash}"
            try:
                data: bytes | None = signed.encode()
            except UnicodeEncodeError:
                data = None
            sig_text = f"{signature}"
            prev_text = f"{previous_hash}"
            sig_ok = data is not None and self._verify(data, _tag(sig_text)) >= 0
            if not sig_ok:
                out.append(("signature", i, 0.0, "", ""))
            elif prev_text != expected_hash:
                out.append(("chain", i, 0.0, expected_hash, ""))
            seq = _seq_number(sequence)
            if strict_sequence:
                if seq is None:
                    out.append(("sequence_type", i, 0.0, "", ""))
                elif prev_seq is not None and seq != prev_seq + 1:
                    if seq <= prev_seq:
                        out.append(("reorder", i, 0.0, str(prev_seq + 1), str(seq)))
                    else:
                        out.append(("gap", i, 0.0, str(prev_seq), str(seq)))
            prev_seq = seq
            ts = _ts_number(timestamp)
            if check_timestamps:
                if ts is None:
                    out.append(("timestamp_invalid", i, 0.0, "", ""))
                else:
                    if prev_ts > 0.0:
                        if ts < prev_ts:
                            out.append(("timestamp_backwards", i, 0.0, "", ""))
                        elif ts - prev_ts > max_timestamp_drift:
                            out.append(("timestamp_gap", i, ts - prev_ts, "", ""))
                    if now is not None and ts - now > max_clock_skew:
                        out.append(("timestamp_future", i, ts - now, "", ""))
            if ts is not None:
                prev_ts = ts
            rule = role_injection_rule(f"{content}")
            if rule >= 0:
                out.append(("role", i, 0.0, ROLE_RULES[rule][1], ""))
            hashed = f"{role}:{content}:{sequence}:{timestamp}"
            if data is None:
                expected_hash = _UNDEFINED_HASH
            else:
                expected_hash = hashlib.sha256(hashed.encode()).hexdigest()
        if check_timestamps and now is not None and max_age is not None and fields:
            ts = _ts_number(fields[-1][3])
            if ts is not None and now - ts > max_age:
                out.append(("stale", len(fields) - 1, now - ts, "", ""))
        return out


def sorted_json(obj: object, default_str: bool = False) -> str:
    """``json.dumps(obj, sort_keys=True)``, with ``default=str`` when ``default_str``."""
    if default_str:
        return json.dumps(obj, sort_keys=True, default=str)
    return json.dumps(obj, sort_keys=True)


def _agent_text(
    message_id: object,
    from_agent: object,
    to_agent: object,
    action: object,
    payload: object,
    timestamp: object,
) -> bytes | None:
    """UTF-8 of ``f"{id}|{from}|{to}|{action}|{json.dumps(payload, sort_keys=True)}|{ts}"``,
    or None when some part holds lone surrogates."""
    text = (
        f"{message_id}|{from_agent}|{to_agent}|{action}|"
        f"{json.dumps(payload, sort_keys=True)}|{timestamp}"
    )
    try:
        return text.encode()
    except UnicodeEncodeError:
        return None


def py_float_repr(x: float) -> str:
    """``repr(x)`` of a Python float (also ``str(x)`` and ``f"{x}"``)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"x must be float, not {type(x).__name__}")
    return repr(float(x))


def role_injection_rule(text: str) -> int:
    """Index of the first role-injection rule matching ``text``, or -1."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    for i, rx in enumerate(_ROLE_RES):
        if rx.search(text):
            return i
    return -1
