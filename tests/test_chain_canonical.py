"""Canonical JSON and audit-entry hashing: native == ``json.dumps`` byte for byte."""

from __future__ import annotations

import enum
import hashlib
import json
import math
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from original_audit import GENESIS, dumps, original_data, original_entry
from proxilion import _core, _reference

weird_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [0.0, -0.0, 1.0, 1e-05, 1e-4, 1e16, 1e15, 1e22, 5e-324, 1.7976931348623157e308, 0.1, 1 / 3]
    ),
    st.integers(-(10**20), 10**20).map(float),
)
big_ints = st.one_of(
    st.integers(), st.integers(-(10**60), 10**60), st.just(2**63), st.just(-(2**63) - 1)
)
text = st.text(
    alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=12
)
scalars = st.one_of(st.none(), st.booleans(), big_ints, weird_floats, text)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.dictionaries(text, children, max_size=5),
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_native_canonical_json_equals_json_dumps(value: Any) -> None:
    assert _core.canonical_json(value) == dumps(value)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.one_of(big_ints, weird_floats, st.booleans()), st.integers(), max_size=6))
def test_non_str_keys_sort_and_convert_like_python(d: dict[Any, int]) -> None:
    try:
        want = dumps(d)
    except TypeError as e:
        with pytest.raises(TypeError) as got:
            _core.canonical_json(d)
        assert str(got.value) == str(e)
    else:
        assert _core.canonical_json(d) == want


class Color(enum.IntEnum):
    RED = 3


class Shade(enum.Enum):
    DARK = "dark"


class MyStr(str):
    pass


class MyFloat(float):
    def __repr__(self) -> str:
        return "not used by json"


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": 2, "é": 3, "😀": 4, "\ue000": 5, "\ud800": 6},
        {"set": {1, 2}, "dt": datetime(2025, 1, 31, 12, 0, tzinfo=timezone.utc), "obj": Shade.DARK},
        {"enum": Color.RED, "s": MyStr("x"), "f": MyFloat(2.5), "t": (1, [2, (3,)])},
        {"lone": "\udcff\ud83d", "pair_as_two": "\ud83d\ude00", "ctl": "\x00\x1f\x7f\x80"},
        [float("nan"), float("inf"), -float("inf"), 10**400, -(10**30)],
        {1: "a", 2.5: "b"},
        {True: 1},
        {None: 1},
        "",
        [],
        {},
    ],
)
def test_edge_values(impl: ModuleType, value: Any) -> None:
    assert impl.canonical_json(value) == dumps(value)


def test_errors_match_json(impl: ModuleType) -> None:
    with pytest.raises(TypeError, match="'<' not supported between instances of"):
        impl.canonical_json({"a": 1, 2: 3})
    with pytest.raises(TypeError, match="keys must be str, int, float, bool or None, not tuple"):
        impl.canonical_json({(1,): 1})
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError, match="Circular reference detected"):
        impl.canonical_json(cyclic)
    d: dict[str, Any] = {}
    d["self"] = d
    with pytest.raises(ValueError, match="Circular reference detected"):
        impl.canonical_json(d)


def test_deep_nesting_is_a_recursion_error_not_a_crash() -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(RecursionError):
        _core.canonical_json(deep)
    shallow: Any = 1
    for _ in range(500):
        shallow = [shallow]
    assert _core.canonical_json(shallow) == dumps(shallow)


def test_entry_hash_and_line_match_the_original_format(impl: ModuleType) -> None:
    for i in range(12):
        prev = GENESIS if i == 0 else "sha256:" + "ab" * 32
        want_hash, want_line = original_entry(i, prev, merkle_index=i)
        d = json.loads(want_line)
        h, line = impl.audit_event_line(
            d["event_id"], d["timestamp"], d["sequence_number"], d["data"], prev, i
        )
        assert h == want_hash
        assert line.decode() == want_line
        assert (
            impl.audit_event_hash(
                d["event_id"], d["timestamp"], d["sequence_number"], d["data"], prev
            )
            == want_hash
        )
    # Without merkle_index the key is absent.
    _, line = impl.audit_event_line("id", "ts", 1, {}, GENESIS)
    assert b"merkle_index" not in line
    assert line.endswith(b"}\n")


def test_blake3_entries(impl: ModuleType) -> None:
    blake3 = pytest.importorskip("blake3")
    data = original_data(1)
    c = dumps(
        {
            "data": data,
            "event_id": "e",
            "previous_hash": "p",
            "sequence_number": 9,
            "timestamp": "t",
        }
    )
    want = "blake3:" + blake3.blake3(c.encode()).hexdigest()
    assert impl.audit_event_hash("e", "t", 9, data, "p", "blake3") == want
    sha = "sha256:" + hashlib.sha256(c.encode()).hexdigest()
    assert impl.audit_event_hash("e", "t", 9, data, "p") == sha


def test_bad_arguments(impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="algorithm must be 'sha256' or 'blake3', got 'md5'"):
        impl.audit_event_hash("e", "t", 1, {}, "p", "md5")
    with pytest.raises(TypeError):
        impl.audit_event_hash(1, "t", 1, {}, "p")
    with pytest.raises(TypeError):
        impl.audit_event_line("e", "t", 1, {}, None)


@settings(max_examples=60, deadline=None)
@given(json_values, st.integers(0, 10**30))
def test_native_and_reference_hash_agree(data: Any, seq: int) -> None:
    a = _core.audit_event_line("id", "2025-01-31T00:00:00+00:00", seq, data, GENESIS, 3)
    b = _reference.audit_event_line("id", "2025-01-31T00:00:00+00:00", seq, data, GENESIS, 3)
    assert a == b


def test_float_repr_spot_checks() -> None:
    for f in [1e-05, 1e16, 1.0, 123456789.123, 2.5e-300, math.pi, 1e21, 9.999999999999999e22]:
        assert _core.canonical_json(f) == repr(f)
