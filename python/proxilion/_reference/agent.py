"""Reference twin of ``rust/python/src/agent.rs`` (intent capsules, ids, intent categories).

The f-strings here define the canonical texts: a capsule's signed text is
``f"{id}|{user}|{intent}|{category._value_}|{sorted(tools)!s}|{sorted(actions)!s}|"``
``f"{json.dumps(constraints or {}, sort_keys=True)}|{created_at.isoformat()}"`` (the
original SDK's bytes) and its sealed text
``f"proxilion-capsule-v2|{signed}|{expires_at.isoformat()}|{_max_tool_calls}|{meta}"``.
"""

from __future__ import annotations

import json
from typing import Any

from proxilion._reference.sign import SigningKeys

__all__ = ["capsule_sign", "capsule_verify", "intent_category", "uuid4_batch"]

_SEAL_PREFIX = "proxilion-capsule-v2|"

#: Intent keywords by category in priority order (mirrors ``rust/core/src/agent``).
CATEGORY_KEYWORDS: tuple[tuple[str, ...], ...] = (
    ("delete", "remove", "destroy", "erase", "drop", "clear"),
    ("create", "make", "generate", "build", "add", "new", "write"),
    ("update", "modify", "change", "edit", "fix", "correct"),
    ("run", "execute", "start", "launch", "deploy", "install"),
    ("send", "email", "message", "notify", "alert", "share"),
    ("analyze", "process", "calculate", "compute", "summarize"),
    (
        "find", "search", "get", "show", "list", "display", "fetch",
        "what", "where", "when", "who", "how", "help", "tell",
    ),
)  # fmt: skip


def uuid4_batch(data: bytes) -> list[str]:
    """Version-4 UUID texts, one per 16 bytes of ``data`` (a multiple of 16 bytes)."""
    if not isinstance(data, bytes):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    if len(data) % 16:
        raise ValueError(f"data must hold a multiple of 16 bytes, not {len(data)}")
    out = []
    for i in range(0, len(data), 16):
        b = bytearray(data[i : i + 16])
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        h = b.hex()
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def _texts(capsule: Any, meta: object) -> tuple[bytes, bytes] | None:
    constraints = capsule.constraints
    signed = (
        f"{capsule.capsule_id}|{capsule.user_id}|{capsule.intent}|"
        f"{capsule.intent_category._value_}|"
        f"{sorted(capsule.allowed_tools)!s}|{sorted(capsule.allowed_actions)!s}|"
        f"{json.dumps(constraints, sort_keys=True) if constraints else '{}'}|"
        f"{capsule.created_at.isoformat()}"
    )
    sealed = (
        f"{_SEAL_PREFIX}{signed}|{capsule.expires_at.isoformat()}|{capsule._max_tool_calls}|{meta}"
    )
    try:
        return signed.encode(), sealed.encode()
    except UnicodeEncodeError:
        return None


def capsule_sign(keys: SigningKeys, capsule: Any, meta: object) -> tuple[str, str]:
    """``(signature, seal)``: HMACs of the capsule's signed and sealed texts (``meta`` is the
    metadata's JSON text as the caller made it)."""
    texts = _texts(capsule, meta)
    if texts is None:
        raise ValueError(
            "messages[0] is not valid Unicode text (it contains surrogate code points)"
        )
    return keys.sign(texts[0]), keys.sign(texts[1])


def capsule_verify(keys: SigningKeys, capsule: Any, meta: object, allow_legacy: bool) -> bool:
    """Both tags valid (or, without a seal and with ``allow_legacy``, the signature alone)."""
    seal = capsule.seal
    legacy = not seal
    if legacy and not allow_legacy:
        return False
    signature = capsule.signature
    texts = _texts(capsule, meta)
    if texts is None:
        return False
    sig_ok = _hex_ok(keys, texts[0], signature)
    if legacy:
        return sig_ok
    return _hex_ok(keys, texts[1], seal) and sig_ok


def _hex_ok(keys: SigningKeys, data: bytes, tag: object) -> bool:
    text = f"{tag}"
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return keys.verify(data, text) >= 0


def intent_category(text: str) -> int:
    """Index of the first category (priority order) with a keyword in ``text.lower()``, or 7."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    lowered = text.lower()
    for i, words in enumerate(CATEGORY_KEYWORDS):
        for w in words:
            if w in lowered:
                return i
    return len(CATEGORY_KEYWORDS)
