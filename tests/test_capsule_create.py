"""``IntentCapsule.create`` in one native call (``rust/python/src/agent/capsule.rs``) and its
twin (``proxilion/_reference/agent.py``): the same capsule from both for plain arguments, the
same ``None`` (general path) for every other argument, and the public ``create`` behaving as
before for odd inputs, subclasses and every kind of key."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import hmac
import json
import math
import pickle
import warnings
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion import _core, _reference
from proxilion.exceptions import ConfigurationError
from proxilion.security import intent_capsule
from proxilion.security._keys import KeyRing, WeakSecretKeyWarning
from proxilion.security.intent_capsule import IntentCapsule, IntentCategory

KEY = b"capsule-create-test-key-01234567"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MIN_US = -62_135_596_800_000_000  # datetime.min, UTC
MAX_US = 253_402_300_799_999_999  # datetime.max, UTC
CATS = intent_capsule._CATEGORIES
FIELDS = [f.name for f in dataclasses.fields(IntentCapsule)]
NOW = 1_785_000_000_123_456


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # both backends must fail the same way
        return (type(exc), str(exc))


def _both(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    n = _outcome(
        _core.capsule_create, IntentCapsule, _core.SigningKeys([KEY]), CATS, *args, **kwargs
    )
    r = _outcome(
        _reference.capsule_create,
        IntentCapsule,
        _reference.SigningKeys([KEY]),
        CATS,
        *args,
        **kwargs,
    )
    return n, r


def _args(**over: Any) -> list[Any]:
    """Positional arguments after ``categories``: user_id ... intent_category."""
    base: dict[str, Any] = {
        "user_id": "alice",
        "intent": "Summarize Q3 sales data",
        "allowed_tools": ["database_query", "chart_generator"],
        "allowed_actions": None,
        "constraints": None,
        "ttl_seconds": 3600,
        "metadata": None,
        "intent_category": None,
    }
    base.update(over)
    return list(base.values())


def _hmac(text: str) -> str:
    return hmac.new(KEY, text.encode(), hashlib.sha256).hexdigest()


# -- native == reference ---------------------------------------------------------------------

plain_names = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10
) | st.sampled_from(["it's", 'say "x"', "both ' \"", "a\\b", "t\tn\n"])
odd_names = st.sampled_from(["é", "\x7f", "\ud800", "x\x00"])
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.sampled_from([2**63, -(2**63) - 1, 2**70])
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


class NameSet(set):  # type: ignore[type-arg]
    pass


class JsonDict(dict):  # type: ignore[type-arg]
    pass


def _rarely(draw: st.DrawFn, plain: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
    """Mostly a plain value (the one-call path), sometimes an odd one (the general path)."""
    return draw(odd) if draw(st.integers(0, 11)) == 0 else draw(plain)


@st.composite
def name_args(draw: st.DrawFn) -> Any:
    size = draw(st.integers(0, 4))
    items = [_rarely(draw, plain_names, odd_names | st.integers()) for _ in range(size)]
    kind = draw(st.sampled_from([list, tuple, set, frozenset, None]))
    kind = _rarely(draw, st.just(kind), st.sampled_from([NameSet, "str"]))
    if kind is None:
        return None
    if kind == "str":
        return "tool"
    return kind(items)


@st.composite
def create_args(draw: st.DrawFn) -> tuple[list[Any], dict[str, Any]]:
    user = _rarely(draw, plain_names | st.text(max_size=8), odd_names | st.integers())
    intent = draw(
        st.sampled_from(["Delete it", "SEND mail", "K\u212aeep", "straße", "nothing"])
        | st.text(max_size=12)
    )
    tools = draw(name_args())
    actions = draw(name_args())
    odd_dicts = st.builds(
        JsonDict, st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
    ) | st.sampled_from([{1: 2}, {"o": object()}, [("a", 1)], {"s": {1}}])
    constraints = _rarely(
        draw, st.none() | st.dictionaries(st.text(max_size=4), json_values, max_size=3), odd_dicts
    )
    metadata = _rarely(
        draw,
        st.none() | st.dictionaries(st.text(max_size=4), json_values, max_size=3),
        odd_dicts | st.just({(1, 2): 1}),
    )
    ttl = _rarely(
        draw,
        st.integers(min_value=1, max_value=10**6) | st.sampled_from([1, 3600, 2**31]),
        st.sampled_from([0, -1, 2**62, 2**63, 10**30, True, 1.5, math.nan, math.inf, "60"]),
    )
    category = _rarely(
        draw, st.none() | st.sampled_from(list(IntentCategory)), st.sampled_from(["query", 0, ""])
    )
    now = draw(
        st.integers(min_value=MIN_US, max_value=MAX_US)
        | st.sampled_from([0, -1, MIN_US, MAX_US - 10**6, NOW])
    )
    cid = _rarely(draw, st.uuids().map(str) | st.just("id-1"), st.sampled_from(["\ud800", ""]))
    return (
        [user, intent, tools, actions, constraints, ttl, metadata, category],
        {"capsule_id": cid, "now_us": now},
    )


@settings(max_examples=500, deadline=None)
@given(args=create_args())
def test_native_and_reference_make_the_same_capsule(
    args: tuple[list[Any], dict[str, Any]],
) -> None:
    positional, injected = args
    n, r = _both(*positional, **injected)
    if n is None or r is None or isinstance(n, tuple):
        assert n == r
        return
    assert type(n) is IntentCapsule and type(r) is IntentCapsule
    assert list(vars(n)) == FIELDS == list(vars(r))
    assert vars(n) == vars(r)
    assert n.signature == r.signature and n.seal == r.seal
    created = EPOCH + timedelta(microseconds=injected["now_us"])
    assert n.created_at == created and n.created_at.tzinfo is timezone.utc
    assert n.expires_at == created + timedelta(seconds=positional[5])
    assert n.capsule_id == injected["capsule_id"]
    # The tags are the HMACs of the canonical texts (as the general path computes them).
    assert n.signature == _hmac(n._signed_text())
    assert n.seal == _hmac(n._sealed_text())
    # Each verifies under the other's primitive and under IntentCapsule.verify.
    meta = intent_capsule._meta_json(n.metadata)
    for mod in (_core, _reference):
        for c in (n, r):
            assert mod.capsule_verify(mod.SigningKeys([KEY]), c, meta, False)
    assert n.verify(KEY) and r.verify(KEY)


@settings(max_examples=300, deadline=None)
@given(now=st.integers(min_value=MIN_US, max_value=MAX_US - 3600 * 10**6))
def test_clock_injection_gives_exact_datetimes(now: int) -> None:
    n, r = _both(*_args(), capsule_id="c", now_us=now)
    want = EPOCH + timedelta(microseconds=now)
    assert n.created_at == want == r.created_at
    assert n.created_at.isoformat() == want.isoformat()
    assert n.expires_at.isoformat() == (want + timedelta(hours=1)).isoformat()
    assert n.seal == r.seal


def test_plain_arguments_match_the_general_path() -> None:
    """For the same id and clock, the one-call capsule equals what the general path builds
    (its fields, order and tags)."""
    for impl in (_core, _reference):
        keys = impl.SigningKeys([KEY])
        made = impl.capsule_create(
            IntentCapsule,
            keys,
            CATS,
            *_args(
                allowed_actions={"read", "write"},
                constraints={"max_rows": 10, "tables": ["a", "b"], "f": 0.1},
                metadata={"source": "chat", "n": [1, None, True]},
                intent_category=IntentCategory.QUERY,
                ttl_seconds=90,
            ),
            capsule_id="5b3f1c2e-0000-4000-8000-000000000001",
            now_us=NOW,
        )
        assert made is not None
        general = copy.copy(made)
        general.__dict__ = dict(vars(made))
        meta = intent_capsule._meta_json(general.metadata)
        assert impl.capsule_sign(keys, general, meta) == (made.signature, made.seal)
        assert made.created_at.isoformat() == "2026-07-25T17:20:00.123456+00:00"
        assert made._signed_text() == (
            "5b3f1c2e-0000-4000-8000-000000000001|alice|Summarize Q3 sales data|query|"
            "['chart_generator', 'database_query']|['read', 'write']|"
            '{"f": 0.1, "max_rows": 10, "tables": ["a", "b"]}|2026-07-25T17:20:00.123456+00:00'
        )
        assert made._sealed_text().endswith(
            '|2026-07-25T17:21:30.123456+00:00|100|{"n": [1, null, true], "source": "chat"}'
        )


def test_duplicates_and_quotes_in_names() -> None:
    for impl in (_core, _reference):
        made = impl.capsule_create(
            IntentCapsule,
            impl.SigningKeys([KEY]),
            CATS,
            *_args(allowed_tools=["b", "a", "b", "it's", 'q"', "both ' \""]),
            capsule_id="c",
            now_us=NOW,
        )
        assert made.allowed_tools == {"a", "b", "it's", 'q"', "both ' \""}
        assert str(sorted(made.allowed_tools)) in made._signed_text()
        assert made.signature == _hmac(made._signed_text())


def test_huge_texts_are_signed_the_same() -> None:
    """Texts past 64 KiB are MACed with the GIL released; the tags do not change."""
    intent = "Please summarize " + "the quarterly sales figures " * 4000
    n, r = _both(
        *_args(intent=intent, metadata={"notes": "x" * 70_000}), capsule_id="c", now_us=NOW
    )
    assert len(n._sealed_text()) > 64 * 1024
    assert vars(n) == vars(r) and n.intent_category is IntentCategory.ANALYZE
    assert n.signature == _hmac(n._signed_text()) and n.seal == _hmac(n._sealed_text())
    assert n.verify(KEY)


# -- the general path (None) and errors ------------------------------------------------------


class Text(str):
    pass


DECLINED: list[dict[str, Any]] = [
    {"user_id": 7},
    {"user_id": Text("alice")},
    {"intent": None},
    {"intent": "bad \ud800"},
    {"user_id": "bad \udfff"},
    {"ttl_seconds": 1.5},
    {"ttl_seconds": True},
    {"ttl_seconds": 0},
    {"ttl_seconds": -1},
    {"ttl_seconds": math.nan},
    {"ttl_seconds": math.inf},
    {"ttl_seconds": 2**63},
    {"ttl_seconds": 10**12 * 10**6},
    {"ttl_seconds": 8_000 * 365 * 86_400},  # expiry after 9999
    {"allowed_tools": "tool"},
    {"allowed_tools": iter(["a"])},
    {"allowed_tools": NameSet({"a"})},
    {"allowed_tools": ["a", 1]},
    {"allowed_tools": ["café"]},
    {"allowed_tools": [Text("a")]},
    {"allowed_actions": {"\x07"}},
    {"allowed_actions": {"x": 1}},
    {"constraints": JsonDict(a=1)},
    {"constraints": [("a", 1)]},
    {"constraints": {1: "a"}},
    {"constraints": {"o": object()}},
    {"constraints": {"big": 2**64}},
    {"constraints": {"s": "\ud800"}},
    {"constraints": {"set": {1}}},
    {"metadata": {"o": object()}},
    {"metadata": {(1, 2): 1}},
    {"metadata": {"deep": json.loads("[" * 70 + "]" * 70)}},
    {"intent_category": "query"},
    {"intent_category": ""},
    {"intent_category": 0},
]


@pytest.mark.parametrize("over", DECLINED, ids=[repr(d)[:40] for d in DECLINED])
def test_unusual_arguments_take_the_general_path(over: dict[str, Any]) -> None:
    n, r = _both(*_args(**over), capsule_id="c", now_us=NOW)
    assert n is None and r is None


def test_injected_id_with_surrogates_takes_the_general_path() -> None:
    assert _both(*_args(), capsule_id="\ud800", now_us=NOW) == (None, None)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"capsule_id": 5}, (TypeError, "capsule_id must be str, not int")),
        ({"capsule_id": Text("x")}, (TypeError, "capsule_id must be str, not Text")),
        ({"now_us": 1.0}, (TypeError, "now_us must be int, not float")),
        ({"now_us": True}, (TypeError, "now_us must be int, not bool")),
        ({"now_us": MAX_US + 1}, (ValueError, "now_us is out of datetime's range")),
        ({"now_us": MIN_US - 1}, (ValueError, "now_us is out of datetime's range")),
        ({"now_us": 2**70}, (ValueError, "now_us is out of datetime's range")),
    ],
)
def test_injection_errors(kwargs: dict[str, Any], error: tuple[type, str]) -> None:
    n, r = _both(*_args(), **kwargs)
    assert n == error == r


def test_category_table_errors() -> None:
    for impl in (_core, _reference):
        got = _outcome(
            impl.capsule_create, IntentCapsule, impl.SigningKeys([KEY]), CATS[:3], *_args()
        )
        assert got == (ValueError, "categories must hold 8 members, not 3")


def test_real_clock_and_ids() -> None:
    for impl in (_core, _reference):
        before = datetime.now(timezone.utc)
        made = [
            impl.capsule_create(IntentCapsule, impl.SigningKeys([KEY]), CATS, *_args())
            for _ in range(300)
        ]
        after = datetime.now(timezone.utc)
        assert len({c.capsule_id for c in made}) == 300
        for c in made:
            assert before <= c.created_at <= after
            assert c.created_at.tzinfo is timezone.utc
            assert c.expires_at - c.created_at == timedelta(hours=1)
            assert len(c.capsule_id) == 36 and c.capsule_id[14] == "4"
            assert c.verify(KEY)


# -- the public create ------------------------------------------------------------------------


@pytest.mark.backend
def test_plain_create_is_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain arguments never reach the general path; the capsule is a full dataclass."""

    def general(*args: Any) -> Any:
        raise AssertionError("general path taken")

    monkeypatch.setattr(intent_capsule, "_create", general)
    c = IntentCapsule.create(
        "alice",
        "Delete the logs",
        KEY,
        allowed_tools={"a", "b"},
        allowed_actions=("x",),
        constraints={"rows": 5},
        metadata={"m": [1]},
        ttl_seconds=60,
    )
    assert type(c) is IntentCapsule and list(vars(c)) == FIELDS
    assert c.intent_category is IntentCategory.DELETE and c.verify(KEY)
    assert c.tool_calls == [] and c._max_tool_calls == 100
    assert c.constraints == {"rows": 5} and c.metadata == {"m": [1]}
    # Dataclass behaviour, unchanged.
    assert dataclasses.asdict(c)["allowed_tools"] == {"a", "b"}
    assert dataclasses.replace(c) == c
    assert pickle.loads(pickle.dumps(c)) == c and copy.deepcopy(c) == c
    assert repr(c).startswith(f"IntentCapsule(capsule_id='{c.capsule_id}', user_id='alice'")
    c.record_tool_call("a")
    assert len(c.tool_calls) == 1 and c.verify(KEY)


@pytest.mark.backend
def test_inputs_are_copied() -> None:
    tools, constraints, metadata = ["a"], {"k": 1}, {"m": 1}
    c = IntentCapsule.create(
        "u", "x", KEY, allowed_tools=tools, constraints=constraints, metadata=metadata
    )
    tools.append("b")
    constraints["k"] = 2
    metadata["m"] = 2
    assert c.allowed_tools == {"a"} and c.constraints == {"k": 1} and c.metadata == {"m": 1}
    assert c.constraints is not constraints and c.metadata is not metadata
    assert c.verify(KEY)
    d = IntentCapsule.create("u", "x", KEY)
    e = IntentCapsule.create("u", "x", KEY)
    assert d.constraints is not e.constraints and d.metadata is not e.metadata
    assert d.tool_calls is not e.tool_calls and d.allowed_tools is not e.allowed_tools


@pytest.mark.backend
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"user_id": 5}, TypeError),
        ({"intent": None}, TypeError),
        ({"ttl_seconds": -1}, ConfigurationError),
        ({"ttl_seconds": 0}, ConfigurationError),
        ({"ttl_seconds": math.nan}, ConfigurationError),
        ({"ttl_seconds": math.inf}, ConfigurationError),
        ({"ttl_seconds": True}, ConfigurationError),
        ({"ttl_seconds": "60"}, ConfigurationError),
        ({"ttl_seconds": 10**12}, OverflowError),
        ({"allowed_tools": "tool"}, TypeError),
        ({"allowed_tools": [["unhashable"]]}, TypeError),
        ({"metadata": {(1, 2): 1}}, ConfigurationError),
        ({"constraints": {"o": object()}}, TypeError),
        ({"user_id": "bad \ud800"}, ValueError),
    ],
)
def test_odd_inputs_fail_as_before(kwargs: dict[str, Any], error: type[Exception]) -> None:
    args: dict[str, Any] = {"user_id": "u", "intent": "x", "secret_key": KEY, **kwargs}
    with pytest.raises(error):
        IntentCapsule.create(**args)


@pytest.mark.backend
def test_odd_but_valid_inputs_go_the_general_way() -> None:
    c = IntentCapsule.create("u", "x", KEY, ttl_seconds=1.5, allowed_tools=NameSet({"a"}))
    assert c.expires_at - c.created_at == timedelta(seconds=1.5)
    assert type(c.allowed_tools) is set and c.allowed_tools == {"a"}
    assert c.verify(KEY)
    m = IntentCapsule.create("u", "x", KEY, metadata={"o": object()}, allowed_tools=["é"])
    assert m.verify(KEY) and '"o": "<object object at' in m._sealed_text()
    assert m.allowed_tools == {"é"}
    g = IntentCapsule.create("u", "x", KEY, allowed_tools=(t for t in ["a", "b"]))
    assert g.allowed_tools == {"a", "b"} and g.verify(KEY)
    k = IntentCapsule.create("u", "find it", KEY, intent_category="")  # type: ignore[arg-type]
    assert k.intent_category is IntentCategory.QUERY
    big = IntentCapsule.create("u", "x", KEY, ttl_seconds=2**31)
    assert big.expires_at - big.created_at == timedelta(seconds=2**31) and big.verify(KEY)


@pytest.mark.backend
def test_subclasses_use_their_own_init() -> None:
    seen = []

    @dataclasses.dataclass
    class Sub(IntentCapsule):
        def __post_init__(self) -> None:
            seen.append(self.user_id)

    s = Sub.create("u", "Delete x", KEY, allowed_tools=["a"])
    assert type(s) is Sub and seen == ["u"] and s.verify(KEY)
    assert s.intent_category is IntentCategory.DELETE
    assert isinstance(Sub.create("v", "x", KEY), Sub) and seen == ["u", "v"]


@pytest.mark.backend
def test_every_kind_of_key() -> None:
    raw = IntentCapsule.create("u", "x", KEY, allowed_tools=["a"])
    assert raw.verify(KEY) and raw.verify(KEY.decode()) and not raw.verify(b"other-key" * 4)
    text = IntentCapsule.create("u", "x", KEY.decode())
    assert text.verify(KEY)
    ring = KeyRing(KEY)
    r = IntentCapsule.create("u", "x", ring, allowed_tools=["a"])
    assert r.verify(ring) and r.verify(KEY)
    ring.rotate(b"new-capsule-key-0123456789abcdef")
    r2 = IntentCapsule.create("u", "x", ring)
    assert r2.verify(b"new-capsule-key-0123456789abcdef") and not r2.verify(KEY)
    assert r.verify(ring)  # the old key is in its grace period
    with pytest.warns(WeakSecretKeyWarning):
        weak = IntentCapsule.create("u", "x", "short")
    assert weak.verify("short")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        IntentCapsule.create("u", "x", "short")
    assert any(w.category is WeakSecretKeyWarning for w in caught)  # warns every time
    with pytest.raises(ConfigurationError):
        IntentCapsule.create("u", "x", "")
    with pytest.raises(TypeError):
        IntentCapsule.create("u", "x", 12345)  # type: ignore[arg-type]


@pytest.mark.backend
def test_expiry_and_tamper_still_detected() -> None:
    c = IntentCapsule.create("u", "x", KEY, ttl_seconds=30, metadata={"a": 1})
    assert not c.is_expired() and c.verify(KEY)
    c.expires_at += timedelta(seconds=1)
    assert not c.verify(KEY)
    c.expires_at -= timedelta(seconds=1)
    c.metadata["a"] = 2
    assert not c.verify(KEY)
