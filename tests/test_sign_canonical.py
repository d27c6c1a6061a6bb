"""Native canonical forms of signed messages: ``sorted_json`` (Python's
``json.dumps(obj, sort_keys=True)``, optionally with ``default=str``) and the agent-message text
signed by ``SigningKeys.agent_sign``/``agent_verify``. The bytes must equal Python's on every
input: what the native encoder cannot reproduce it hands to Python's encoder."""

from __future__ import annotations

import decimal
import enum
import hashlib
import hmac
import json
import math
from collections import OrderedDict
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion import _core, _reference

KEY = b"canonical-test-key-0123456789abcd"

# Text with the characters Python escapes specially: quotes, backslashes, control characters,
# DEL, non-ASCII, astral characters (surrogate pairs in JSON) and lone surrogates.
_chars = st.characters(codec=None, exclude_categories=())
_texts = st.text(_chars, max_size=12) | st.sampled_from(
    ["", '"', "\\", "\x00\x1f\x7f", "\b\f\n\r\t", "é€", "😀", "\ud800", "a\udfffb", "/"]
)
_floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1e16, 1e-5, 0.1, 1712345678.1234567, 1723995744893766.2]
)
_ints = st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from(
    [2**63 - 1, -(2**63), 2**63, -(2**63) - 1]
)
_scalars = st.none() | st.booleans() | _ints | _floats | _texts
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_texts, inner, max_size=4)
    ),
    max_leaves=12,
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def _python(obj: Any, default_str: bool = False) -> str:
    if default_str:
        return json.dumps(obj, sort_keys=True, default=str)
    return json.dumps(obj, sort_keys=True)


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:  # the exact exception type and text must agree too
        return type(exc).__name__, str(exc)


@settings(max_examples=500, deadline=None)
@given(_values)
def test_sorted_json_equals_json_dumps(obj: Any) -> None:
    want = _outcome(_python, obj)
    assert _outcome(_core.sorted_json, obj) == want
    assert _outcome(_reference.sorted_json, obj) == want


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_texts, _values, max_size=6))
def test_sorted_json_default_str_equals_json_dumps(obj: dict[str, Any]) -> None:
    want = _outcome(_python, obj, True)
    assert _outcome(_core.sorted_json, obj, True) == want
    assert _outcome(_reference.sorted_json, obj, True) == want


class Color(enum.IntEnum):
    RED = 1


class MyStr(str):
    pass


class MyFloat(float):
    def __repr__(self) -> str:
        return "not-a-number"


class MyDict(dict):  # type: ignore[type-arg]
    pass


@pytest.mark.parametrize(
    "obj",
    [
        # key ordering: code point order, astral keys after BMP ones, case, prefixes
        {"b": 1, "a": 2, "B": 3, "": 4, "aa": 5, "a\x00": 6},
        {"\uffff": 1, "😀": 2, "\ue000": 3, "z": 4},
        {"é": 1, "e": 2, "f": 3},
        # non-str keys: Python converts them (native hands these over)
        {1: "a", "2": "b"},
        {True: 1, None: 2, 1.5: 3},
        # mixed key types that cannot be sorted: TypeError, as Python
        {1: "a", "b": 2},
        # subclasses and special types
        {"e": Color.RED},
        {"s": MyStr("x")},
        {"f": MyFloat(1.5)},
        MyDict(b=1, a=2),
        OrderedDict([("b", 1), ("a", 2)]),
        {"big": 2**64, "neg": -(2**64)},
        {"nan": float("nan"), "inf": float("inf"), "ninf": -float("inf")},
        {"lone": "\ud83d", "pair": "\ud83d\ude00"},
        {"\udc00": 1},
        # unserialisable without default=str: TypeError, as Python
        {"when": datetime(2024, 1, 2, tzinfo=timezone.utc)},
        {"d": decimal.Decimal("1.10")},
        {"set": {1}},
        {"bytes": b"x"},
        # deep nesting: the native encoder stops at its depth limit and Python takes over
        {"deep": _nested(70)},
        _nested(64),
        _nested(65),
        [],
        {},
        (),
        [(), {}, [[]]],
        "top-level str",
        3.5,
        None,
    ],
)
@pytest.mark.parametrize("default_str", [False, True])
def test_sorted_json_edge_cases(obj: Any, default_str: bool) -> None:
    want = _outcome(_python, obj, default_str)
    assert _outcome(_core.sorted_json, obj, default_str) == want
    assert _outcome(_reference.sorted_json, obj, default_str) == want


def test_sorted_json_circular_reference_is_a_value_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    for obj in (loop, cyclic):
        want = _outcome(_python, obj)
        assert want[0] == "ValueError"
        assert _outcome(_core.sorted_json, obj) == want
        assert _outcome(_reference.sorted_json, obj) == want


def test_sorted_json_native_path_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain JSON values are encoded natively; anything else goes to Python's ``json.dumps``
    (made to fail here to show which path ran)."""

    def boom(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("python encoder used")

    monkeypatch.setattr(json, "dumps", boom)
    plain = {"q": "rust", "n": 10, "x": [1.5, None, True, ("t",)], "é": {"\n": -0.0}}
    assert _core.sorted_json(plain) == (
        '{"n": 10, "q": "rust", "x": [1.5, null, true, ["t"]], "\\u00e9": {"\\n": -0.0}}'
    )
    for other in ({1: "a"}, {"a": 2**64}, {"a": "\ud800"}, [MyStr("s")], _nested(65)):
        with pytest.raises(RuntimeError, match="python encoder used"):
            _core.sorted_json(other)


# -- agent messages ------------------------------------------------------------------------


def _agent_text(mid: Any, frm: Any, to: Any, action: Any, payload: Any, ts: Any) -> str:
    return f"{mid}|{frm}|{to}|{action}|{json.dumps(payload, sort_keys=True)}|{ts}"


def _expected_sign(mid: Any, frm: Any, to: Any, action: Any, payload: Any, ts: Any) -> str:
    data = _agent_text(mid, frm, to, action, payload, ts).encode()
    return hmac.new(KEY, data, hashlib.sha256).hexdigest()


_fields = _texts | _ints | _floats | st.none()


@settings(max_examples=300, deadline=None)
@given(_fields, _texts, _texts, _texts, _values, _floats | _ints)
def test_agent_sign_equals_python_recomputation(
    mid: Any, frm: str, to: str, action: str, payload: Any, ts: Any
) -> None:
    want = _outcome(_expected_sign, mid, frm, to, action, payload, ts)
    if want[0] == "UnicodeEncodeError":
        want = (
            "ValueError",
            "message is not valid Unicode text (it contains surrogate code points)",
        )
    for mod in (_core, _reference):
        keys = mod.SigningKeys([KEY])
        got = _outcome(keys.agent_sign, mid, frm, to, action, payload, ts)
        assert got == want
        if got[0] == "ok":
            assert keys.agent_verify(mid, frm, to, action, payload, ts, got[1]) == 0
            assert keys.agent_verify(mid, frm, to, action, payload, ts, got[1].upper()) == 0
            assert keys.agent_verify(mid, frm + "x", to, action, payload, ts, got[1]) == -1


@pytest.mark.parametrize("mod", [_core, _reference], ids=["native", "reference"])
def test_agent_verify_rejects_bad_signatures_and_text(mod: ModuleType) -> None:
    keys = mod.SigningKeys([KEY, b"older-key-0123456789"])
    args = ("id-1", "a", "b", "act", {"k": [1, 2.5]}, 1712345678.25)
    tag = keys.agent_sign(*args)
    assert tag == _expected_sign(*args)
    assert keys.agent_verify(*args, tag) == 0
    old = mod.SigningKeys([b"older-key-0123456789"]).agent_sign(*args)
    assert keys.agent_verify(*args, old) == 1
    for bad in (None, 1, b"x" * 32, bytes.fromhex(tag), tag[:-1], tag + "0", "zz" * 32, "\ud800"):
        assert keys.agent_verify(*args, bad) == -1
    assert keys.agent_verify("\ud800", *args[1:], tag) == -1
    with pytest.raises(TypeError, match="not JSON serializable"):
        keys.agent_verify(*args[:4], {"x": object()}, args[5], tag)
    with pytest.raises(ValueError, match="surrogate"):
        keys.agent_sign("\ud800", *args[1:])
    # other field types are formatted as the f-string does
    assert keys.agent_sign(7, "a", "b", "act", {}, 1) == _expected_sign(7, "a", "b", "act", {}, 1)
    assert keys.agent_sign(Color.RED, "a", None, "act", [], math.pi) == _expected_sign(
        Color.RED, "a", None, "act", [], math.pi
    )


# -- fast paths of the canonical text (exact types first, stack-sorted small dicts) ---------


class MyInt(int):
    def __format__(self, spec: str) -> str:
        return f"myint-{int(self)}"


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_texts, _values, min_size=7, max_size=20))
def test_sorted_json_dicts_around_the_stack_limit(obj: dict[str, Any]) -> None:
    """Dicts of up to 8 items are sorted on the stack, larger ones in a vector."""
    want = _outcome(_python, obj)
    assert _outcome(_core.sorted_json, obj) == want
    assert _outcome(_reference.sorted_json, obj) == want


def _keys(n: int) -> dict[Any, Any]:
    return {f"k{(i * 7) % n:02d}": i for i in range(n)}


@pytest.mark.parametrize(
    "obj",
    [
        _keys(8),
        _keys(9),
        _keys(17),
        {**_keys(8), 1: "int key last"},
        {**_keys(12), "\udc00": "surrogate key"},
        {**_keys(12), "s": MyStr("sub")},
        {**_keys(3), "i": MyInt(4), "b": True, "f": MyFloat(2.5)},
        {"outer": _keys(10), "list": [_keys(9), {"é": "\ud83d\ude00", "z": -(2**63)}]},
        {"n": float("nan"), "i": float("inf"), "m": -float("inf"), "h": 2**63, "l": -(2**63)},
        [True, False, None, 0, -1, 2**63 - 1, -(2**63), 1e16, 1e-5, -0.0],
        {"big": 10**30, **_keys(9)},
    ],
)
def test_sorted_json_fast_path_edge_cases(obj: Any) -> None:
    want = _outcome(_python, obj)
    assert _outcome(_core.sorted_json, obj) == want
    assert _outcome(_reference.sorted_json, obj) == want


_field_values = [
    "plain",
    "",
    "é|€😀",
    "\ud800",
    MyStr("sub"),
    0,
    -7,
    2**63 - 1,
    -(2**63),
    2**64,
    -(10**30),
    True,
    False,
    Color.RED,
    MyInt(3),
    0.0,
    -0.0,
    1712345678.0,
    1712345678.1234567,
    1723995744893766.2,
    1e15,
    2.0**50,
    1e16,
    1e-4,
    5e-324,
    float("nan"),
    float("inf"),
    -float("inf"),
    MyFloat(1.5),
    None,
]


@pytest.mark.parametrize("value", _field_values, ids=repr)
@pytest.mark.parametrize("mod", [_core, _reference], ids=["native", "reference"])
def test_agent_sign_field_types(mod: ModuleType, value: Any) -> None:
    """Every field is formatted as the f-string does: exact str/int/float natively, bools,
    subclasses and huge ints through their own ``__format__``."""
    keys = mod.SigningKeys([KEY])
    for args in (
        (value, "a", "b", "act", {"v": 1}, 1712345678.25),
        ("id", value, value, value, {"v": 1}, value),
    ):
        want = _outcome(_expected_sign, *args)
        if want[0] == "UnicodeEncodeError":
            want = (
                "ValueError",
                "message is not valid Unicode text (it contains surrogate code points)",
            )
        got = _outcome(keys.agent_sign, *args)
        assert got == want
        if got[0] == "ok":
            assert keys.agent_verify(*args, got[1]) == 0
        else:
            assert keys.agent_verify(*args, "0" * 64) == -1


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=-(2**53), max_value=2**53).map(float)
    | st.integers(min_value=1, max_value=10**6).map(lambda n: n / 1024)
    | st.floats(min_value=1e-4, max_value=1e16)
)
def test_agent_sign_timestamps_with_few_digits(ts: float) -> None:
    """Integral and short binary fractions: the values near the float-repr tie test."""
    args = ("id", "a", "b", "act", {}, ts)
    assert _core.SigningKeys([KEY]).agent_sign(*args) == _expected_sign(*args)
