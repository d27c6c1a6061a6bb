"""The agent area of the native module (``rust/python/src/agent.rs``) and its twin
(``proxilion/_reference/agent.py``): id formatting, intent categories, whole agent messages
and both capsule tags, each against the other and against Python's own formatting."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion import _core, _reference
from proxilion.security import intent_capsule
from proxilion.security.agent_trust import (
    AgentTrustManager,
    SignedMessage,
    TrustLevel,
    VerificationResult,
    _result,
)
from proxilion.security.intent_capsule import IntentCapsule, IntentCategory

KEY = b"agent-native-test-key-0123456789"


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # both backends must fail the same way
        return (type(exc), str(exc))


# -- ids -----------------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.binary(min_size=0, max_size=96).filter(lambda b: len(b) % 16 == 0))
def test_uuid4_batch_native_equals_reference_and_uuid(data: bytes) -> None:
    ids = _core.uuid4_batch(data)
    assert ids == _reference.uuid4_batch(data)
    assert len(ids) == len(data) // 16
    for i, text in enumerate(ids):
        u = uuid.UUID(text)
        assert u.version == 4 and u.variant == uuid.RFC_4122 and str(u) == text
        # Every bit but the six fixed ones comes from the input.
        assert str(uuid.UUID(bytes=data[16 * i : 16 * i + 16], version=4)) == text


@pytest.mark.parametrize("bad", [b"x" * 15, b"x" * 17, "a" * 32, bytearray(16), None])
def test_uuid4_batch_errors(bad: object) -> None:
    got = _outcome(_core.uuid4_batch, bad)
    assert got == _outcome(_reference.uuid4_batch, bad)
    assert isinstance(got, tuple) and got[0] in (TypeError, ValueError)


# -- intent categories ---------------------------------------------------------------------

_WORDS = [w for words in _reference.agent.CATEGORY_KEYWORDS for w in words]


def test_category_table_mirrors_the_module() -> None:
    table = intent_capsule._CATEGORY_KEYWORDS
    assert tuple(words for _, words in table) == _reference.agent.CATEGORY_KEYWORDS
    assert (*(c for c, _ in table), IntentCategory.UNKNOWN) == intent_capsule._CATEGORIES


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Summarize Q3 sales data", IntentCategory.ANALYZE),
        ("Find and DELETE old rows", IntentCategory.DELETE),
        ("address book", IntentCategory.CREATE),  # "add" inside "address"
        ("\u212aill it", IntentCategory.UNKNOWN),  # KELVIN SIGN lowers to "k": "kill"
        ("\u212anow how", IntentCategory.QUERY),
        ("", IntentCategory.UNKNOWN),
        ("\ud800 send", IntentCategory.COMMUNICATE),
    ],
)
def test_detect_category(impl: ModuleType, text: str, category: IntentCategory) -> None:
    assert intent_capsule._CATEGORIES[impl.intent_category(text)] is category


@settings(max_examples=1000)
@given(
    st.lists(
        st.sampled_from(_WORDS) | st.text(max_size=6) | st.sampled_from(["\u0130", "\u212a"]),
        max_size=6,
    ).map("".join)
)
def test_intent_category_native_equals_reference(text: str) -> None:
    assert _core.intent_category(text) == _reference.intent_category(text)
    assert _core.intent_category(text.upper()) == _reference.intent_category(text.upper())


def test_intent_category_type_error() -> None:
    assert _outcome(_core.intent_category, 3) == _outcome(_reference.intent_category, 3)


# -- agent messages ------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@pytest.mark.backend
def test_signed_message_is_the_dataclass_with_the_original_signature() -> None:
    m = AgentTrustManager(KEY, clock=lambda: 1712345678.25)
    m.register_agent("a", TrustLevel.STANDARD, ["x"])
    m.register_agent("b", TrustLevel.STANDARD, ["x"])
    meta = {"k": 1}
    msg = m.create_signed_message("a", "b", "x", {"q": [1, 2.5]}, reply_to="r", metadata=meta)
    assert dataclasses.is_dataclass(msg) and type(msg) is SignedMessage
    assert list(dataclasses.asdict(msg)) == [f.name for f in dataclasses.fields(SignedMessage)]
    assert msg.metadata == meta and msg.metadata is not meta
    assert msg.timestamp == 1712345678.25 and msg.reply_to == "r"
    secret = hmac.new(KEY, b"agent:a", hashlib.sha256).hexdigest()
    text = f'{msg.message_id}|a|b|x|{{"q": [1, 2.5]}}|1712345678.25'
    assert msg.signature == hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    assert m.verify_message(msg).valid
    assert not m.verify_message(msg).valid  # replayed


def test_lazy_verified_at_is_the_verification_time() -> None:
    before = datetime.now(timezone.utc)
    r = _result(True, None, ["w"])
    after = datetime.now(timezone.utc)
    assert type(r) is VerificationResult
    at = r.verified_at
    assert at.tzinfo is timezone.utc
    assert before - timedelta(milliseconds=1) <= at <= after + timedelta(milliseconds=1)
    assert r.verified_at is at  # made once
    assert r == VerificationResult(True, None, ["w"], at)
    assert dataclasses.asdict(r) == {
        "valid": True,
        "error": None,
        "warnings": ["w"],
        "verified_at": at,
    }
    assert r.to_dict()["verified_at"] == at.isoformat()
    assert repr(r).startswith(
        "VerificationResult(valid=True, error=None, warnings=['w'], verified_at="
    )
    fixed = datetime(2020, 1, 1, tzinfo=timezone.utc)
    r.verified_at = fixed
    assert r.verified_at is fixed
    assert VerificationResult(False, "e", verified_at=fixed).verified_at is fixed
    assert [f.name for f in dataclasses.fields(VerificationResult)][-1] == "verified_at"


# -- capsules --------------------------------------------------------------------------------

names = st.text(max_size=12) | st.sampled_from(
    ["it's", 'say "x"', "both ' \"", "a\\b", "t\tn\n", "é", "\x7f"]
)
aware_times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc)
) | st.datetimes(timezones=st.sampled_from([timezone(timedelta(hours=5, minutes=30)), None]))


@st.composite
def capsules(draw: st.DrawFn) -> IntentCapsule:
    created = draw(aware_times)
    tools_kind = draw(st.sampled_from([set, frozenset, list, tuple]))
    return IntentCapsule(
        capsule_id=draw(st.text(max_size=36)),
        user_id=draw(names),
        intent=draw(names),
        intent_category=draw(st.sampled_from(list(IntentCategory))),
        allowed_tools=tools_kind(draw(st.lists(names, max_size=4, unique=True))),
        allowed_actions=set(draw(st.lists(names, max_size=3))),
        constraints=draw(st.dictionaries(st.text(max_size=5), json_values, max_size=3)),
        created_at=created,
        expires_at=draw(aware_times),
        signature="",
        metadata=draw(st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)),
        _max_tool_calls=draw(st.integers(min_value=0, max_value=10**6)),
    )


@settings(max_examples=400, deadline=None)
@given(capsule=capsules())
def test_capsule_tags_native_equals_reference_and_python_texts(capsule: IntentCapsule) -> None:
    meta = intent_capsule._meta_json(capsule.metadata)
    n = _outcome(_core.capsule_sign, _core.SigningKeys([KEY]), capsule, meta)
    r = _outcome(_reference.capsule_sign, _reference.SigningKeys([KEY]), capsule, meta)
    assert n == r
    try:
        signed = capsule._signed_text().encode()
        sealed = capsule._sealed_text().encode()
    except UnicodeEncodeError:
        assert n == (
            ValueError,
            "messages[0] is not valid Unicode text (it contains surrogate code points)",
        )
        return
    assert n == (
        hmac.new(KEY, signed, hashlib.sha256).hexdigest(),
        hmac.new(KEY, sealed, hashlib.sha256).hexdigest(),
    )
    capsule.signature, capsule.seal = n
    for allow in (False, True):
        assert _core.capsule_verify(_core.SigningKeys([KEY]), capsule, meta, allow)
        assert _reference.capsule_verify(_reference.SigningKeys([KEY]), capsule, meta, allow)
    capsule.expires_at = capsule.expires_at + timedelta(microseconds=1)
    for mod in (_core, _reference):
        assert not mod.capsule_verify(mod.SigningKeys([KEY]), capsule, meta, True)


def test_capsule_sign_fallbacks(impl: ModuleType) -> None:
    """Subclassed values, non-str items and objects with their own formatting take Python's
    path; the bytes are still those of the f-strings."""

    class Tag(str):
        def __format__(self, spec: str) -> str:
            return "TAG"

    c = IntentCapsule.create("u", "read it", KEY, allowed_tools=["a"])
    c.user_id = Tag("u")
    c.allowed_tools = {Tag("b"), "a"}
    c.allowed_actions = [1, 3, 2]  # type: ignore[assignment]
    c.created_at = c.created_at.replace(tzinfo=None)
    meta = "{}"
    sig, seal = impl.capsule_sign(impl.SigningKeys([KEY]), c, meta)
    assert sig == hmac.new(KEY, c._signed_text().encode(), hashlib.sha256).hexdigest()
    assert seal == hmac.new(KEY, c._sealed_text().encode(), hashlib.sha256).hexdigest()
    c.allowed_tools = {"a", 1}  # type: ignore[assignment]
    with pytest.raises(TypeError):
        impl.capsule_sign(impl.SigningKeys([KEY]), c, meta)


def test_capsule_verify_legacy_and_bad_tags(impl: ModuleType) -> None:
    c = IntentCapsule.create("u", "read it", KEY, allowed_tools=["a"])
    keys = impl.SigningKeys([KEY])
    assert impl.capsule_verify(keys, c, "{}", False)
    seal = c.seal
    c.seal = ""
    assert not impl.capsule_verify(keys, c, "{}", False)
    assert impl.capsule_verify(keys, c, "{}", True)
    c.signature = "\ud800"
    assert not impl.capsule_verify(keys, c, "{}", True)
    c.signature, c.seal = seal, seal
    assert not impl.capsule_verify(keys, c, "{}", False)
    with pytest.raises(AttributeError):
        impl.capsule_verify(keys, object(), "{}", True)


def test_capsule_create_matches_dataclass_init() -> None:
    c = IntentCapsule.create("u", "Delete the logs", KEY, allowed_tools=["a"], metadata={"k": 1})
    rebuilt = IntentCapsule(**{f.name: getattr(c, f.name) for f in dataclasses.fields(c)})
    assert rebuilt == c and list(c.__dict__) == list(rebuilt.__dict__)
    assert c.intent_category is IntentCategory.DELETE
    assert c.expires_at - c.created_at == timedelta(seconds=3600)
    assert json.loads(c._sealed_text().rsplit("|", 1)[1]) == {"k": 1}
    assert c.verify(KEY)

    class Sub(IntentCapsule):
        pass

    s = Sub.create("u", "x", KEY, ttl_seconds=5)
    assert type(s) is Sub and s.verify(KEY)
    assert s.expires_at - s.created_at == timedelta(seconds=5)


# -- capsule timestamps rendered once ----------------------------------------------------------


def test_capsule_timestamps_rendered_once_stay_exact(impl: ModuleType) -> None:
    """Exact UTC datetimes are immutable, so their text may be kept (natively, with the
    object); every capsule still verifies exactly its own timestamps, after many others
    have been rendered, and a replaced timestamp (equal value or not) is read anew."""
    keys = impl.SigningKeys([KEY])
    base = datetime(2030, 1, 1, tzinfo=timezone.utc)
    caps = []
    for i in range(40):
        c = IntentCapsule.create("u", f"read {i}", KEY, allowed_tools=["a"])
        c.created_at = base + timedelta(seconds=i, microseconds=i)
        c.expires_at = c.created_at + timedelta(hours=1)
        c.signature, c.seal = impl.capsule_sign(keys, c, "{}")
        caps.append(c)
    for _ in range(2):
        for i, c in enumerate(caps):
            assert (
                c.signature == hmac.new(KEY, c._signed_text().encode(), hashlib.sha256).hexdigest()
            ), i
            assert impl.capsule_verify(keys, c, "{}", False), i
    c = caps[0]
    c.created_at = datetime(2030, 1, 1, tzinfo=timezone.utc)  # equal value, new object
    assert c.created_at is not base and impl.capsule_verify(keys, c, "{}", False)
    c.created_at = c.created_at + timedelta(microseconds=1)
    assert not impl.capsule_verify(keys, c, "{}", False)
    c.created_at = c.created_at.astimezone(timezone(timedelta(hours=1)))  # same instant
    assert not impl.capsule_verify(keys, c, "{}", False)  # another text

    class Stamp(datetime):
        def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
            return "STAMP"

    s = caps[1]
    s.created_at = Stamp(2030, 1, 1, 0, 0, 1, 1, tzinfo=timezone.utc)
    sig, _ = impl.capsule_sign(keys, s, "{}")
    assert sig == hmac.new(KEY, s._signed_text().encode(), hashlib.sha256).hexdigest()
    assert s._signed_text().endswith("|STAMP")
