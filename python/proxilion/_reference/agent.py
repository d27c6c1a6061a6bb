"""Reference twin of ``rust/python/src/agent.rs`` (intent capsules, ids, intent categories).

The f-strings here define the canonical texts: a capsule's signed text is
``f"{id}|{user}|{intent}|{category._value_}|{sorted(tools)!s}|{sorted(actions)!s}|"``
``f"{json.dumps(constraints or {}, sort_keys=True)}|{created_at.isoformat()}"`` (the
original SDK's bytes) and its sealed text
``f"proxilion-capsule-v2|{signed}|{expires_at.isoformat()}|{_max_tool_calls}|{meta}"``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from proxilion._reference.sign import SigningKeys

__all__ = [
    "IntentGate",
    "capsule_create",
    "capsule_sign",
    "capsule_verify",
    "intent_category",
    "uuid4_batch",
]

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


# -- capsule_create (twin of rust/python/src/agent/capsule.rs) -------------------------------

#: ``intent_category`` under another name (``capsule_create`` has a parameter of that name).
_category_index = intent_category
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Microseconds since the epoch of ``datetime.min`` and ``datetime.max`` in UTC.
_MIN_MICROS = -62_135_596_800_000_000
_MAX_MICROS = 253_402_300_799_999_999
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
#: Nesting beyond which the native JSON encoder leaves a value to Python's.
_JSON_MAX_DEPTH = 64
_REPR_SAFE = frozenset(chr(c) for c in range(0x20, 0x7F)) | {"\t", "\n", "\r"}


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _plain_json(obj: object, depth: int) -> bool:
    """Whether the native encoder writes ``json.dumps(obj, sort_keys=True)`` itself."""
    if depth > _JSON_MAX_DEPTH:
        return False
    kind = type(obj)
    if kind is str:
        return _encodable(obj)  # type: ignore[arg-type]
    if kind is int:
        return _I64_MIN <= obj <= _I64_MAX  # type: ignore[operator]
    if kind is float or kind is bool or obj is None:
        return True
    if kind is dict:
        items = obj.items()  # type: ignore[attr-defined]
        if not all(type(k) is str and _encodable(k) for k, _ in items):
            return False
        return all(_plain_json(v, depth + 1) for _, v in items)
    if kind is list or kind is tuple:
        return all(_plain_json(v, depth + 1) for v in obj)  # type: ignore[attr-defined]
    return False


def _plain_dict(value: object) -> bool:
    """``None`` or an exact dict the native encoder writes."""
    if value is None:
        return True
    return type(value) is dict and (not value or _plain_json(value, 0))


def _plain_names(values: object) -> list[str] | None:
    """The items of ``None`` or an exact list/tuple/set/frozenset of exact, printable-ASCII
    ``str``s (whose reprs the native side writes), else ``None``."""
    if values is None:
        return []
    if type(values) not in (list, tuple, set, frozenset):
        return None
    items: list[str] = []
    for item in values:  # type: ignore[attr-defined]
        if type(item) is not str or not _REPR_SAFE.issuperset(item):
            return None
        items.append(item)
    return items


def capsule_create(
    cls: type[Any],
    keys: SigningKeys,
    categories: tuple[Any, ...],
    user_id: object,
    intent: object,
    allowed_tools: object,
    allowed_actions: object,
    constraints: object,
    ttl_seconds: object,
    metadata: object,
    intent_category: object,
    /,
    capsule_id: str | None = None,
    now_us: int | None = None,
) -> Any:
    """A new signed capsule (an instance of ``cls`` made by ``object.__new__``, its
    ``__dict__`` as ``IntentCapsule.__init__`` fills it), or ``None`` when some argument is
    not a plain one: then the caller builds it by its general path. ``categories`` are the
    ``IntentCategory`` members by index of :func:`intent_category`; ``capsule_id`` and
    ``now_us`` (microseconds since the epoch) replace the random id and the clock."""
    if len(categories) != len(CATEGORY_KEYWORDS) + 1:
        raise ValueError(
            f"categories must hold {len(CATEGORY_KEYWORDS) + 1} members, not {len(categories)}"
        )
    if capsule_id is not None and type(capsule_id) is not str:
        raise TypeError(f"capsule_id must be str, not {type(capsule_id).__name__}")
    if now_us is not None:
        if type(now_us) is not int:
            raise TypeError(f"now_us must be int, not {type(now_us).__name__}")
        if not _MIN_MICROS <= now_us <= _MAX_MICROS:
            raise ValueError("now_us is out of datetime's range")
    if type(user_id) is not str or type(intent) is not str:
        return None
    if not _encodable(user_id) or not _encodable(intent):
        return None
    if type(ttl_seconds) is not int or not 0 < ttl_seconds <= _I64_MAX:
        return None
    tools = _plain_names(allowed_tools)
    actions = _plain_names(allowed_actions)
    if tools is None or actions is None:
        return None
    if intent_category is None:
        category = categories[_category_index(intent)]
    else:
        found = [c for c in categories if c is intent_category]
        if not found:
            return None
        category = found[0]
    value = category._value_
    if type(value) is not str or not _encodable(value):
        return None
    if not _plain_dict(constraints) or not _plain_dict(metadata):
        return None
    if now_us is None:
        now_us = (datetime.now(timezone.utc) - _EPOCH) // timedelta(microseconds=1)
        if now_us < 0:
            return None
    expiry = now_us + ttl_seconds * 1_000_000
    if expiry > _MAX_MICROS:
        return None
    if capsule_id is None:
        capsule_id = uuid4_batch(os.urandom(16))[0]
    elif not _encodable(capsule_id):
        return None
    capsule = object.__new__(cls)
    capsule.__dict__ = {
        "capsule_id": capsule_id,
        "user_id": user_id,
        "intent": intent,
        "intent_category": category,
        "allowed_tools": set(tools),
        "allowed_actions": set(actions),
        "constraints": dict(constraints) if constraints else {},  # type: ignore[call-overload]
        "created_at": _EPOCH + timedelta(microseconds=now_us),
        "expires_at": _EPOCH + timedelta(microseconds=expiry),
        "signature": "",
        "metadata": dict(metadata) if metadata else {},  # type: ignore[call-overload]
        "tool_calls": [],
        "_max_tool_calls": 100,
        "seal": "",
    }
    meta = json.dumps(metadata, sort_keys=True) if metadata else "{}"
    capsule.signature, capsule.seal = capsule_sign(keys, capsule, meta)
    return capsule


class IntentGate:
    """``IntentGuard.validate_tool_call`` of one guard: here, always the guard's general path
    ``_validate_tool_call`` (the native gate answers the common call itself). ``validate`` is
    that bound method itself, so the reference guard pays no extra call."""

    def __init__(self, guard: Any, capsule_type: type) -> None:
        self.validate: Callable[..., Any] = guard._validate_tool_call

    def __repr__(self) -> str:
        return "IntentGate()"
