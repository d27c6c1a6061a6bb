"""Memory ``SignedMessage`` and ``MemoryChain``: the native classes behave as their twins.

On the native backend ``SignedMessage`` is a native class (``rust/python/src/sign/memory.rs``)
given the twin dataclass's methods and metadata, and a guard's ``sign_message`` /
``verify_message`` are the bound methods of a native ``MemoryChain``. Tests taking ``impl``
run against both backends' classes; the property test compares whole guards.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import itertools
import pickle
import threading
import weakref
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion import _core, _reference
from proxilion.exceptions import ConfigurationError, ContextIntegrityError
from proxilion.security import _keys, memory_integrity
from proxilion.security.memory_integrity import (
    IntegrityViolationType,
    MemoryIntegrityGuard,
    SignedMessage,
)

KEY = "native-memory-key-0123456789abcdef"
FIELDS = ["role", "content", "sequence", "timestamp", "signature", "previous_hash", "metadata"]
T = IntegrityViolationType


class Clock:
    def __init__(self, t: float = 1_700_000_000.0, step: float = 0.0) -> None:
        self.t = t
        self.step = step

    def __call__(self) -> float:
        t = self.t
        self.t += self.step
        return t


def _vals(m: Any) -> tuple[Any, ...]:
    return tuple(getattr(m, f) for f in FIELDS)


def _msg(cls: Any, **kw: Any) -> Any:
    args = {
        "role": "user",
        "content": "hello",
        "sequence": 0,
        "timestamp": 1.5,
        "signature": "ab" * 32,
        "previous_hash": "0" * 64,
    }
    args.update(kw)
    return cls(**args)


@pytest.fixture
def backend(impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """Guards built in the test use ``impl`` (chain, key sets)."""
    for mod in (_keys, memory_integrity):
        monkeypatch.setattr(mod, "impl", impl)
    yield impl


def test_public_class_is_the_active_backends() -> None:
    from proxilion._backend import impl

    assert SignedMessage is impl.SignedMessage
    assert dataclasses.is_dataclass(SignedMessage)
    assert [f.name for f in dataclasses.fields(SignedMessage)] == FIELDS
    assert SignedMessage.__match_args__ == tuple(FIELDS)
    assert "metadata" in (SignedMessage.__doc__ or "")


def test_native_class_has_the_dataclass_behaviour() -> None:
    cls = _core.SignedMessage
    m = _msg(cls, metadata={"k": 1})
    assert _vals(m) == ("user", "hello", 0, 1.5, "ab" * 32, "0" * 64, {"k": 1})
    twin = _msg(_reference.SignedMessage, metadata={"k": 1})
    assert repr(m) == repr(twin)
    assert repr(m).startswith("SignedMessage(role='user', content='hello', sequence=0,")
    assert m.to_dict() == twin.to_dict()
    assert m.content_hash() == twin.content_hash()
    back = cls.from_dict(m.to_dict())
    assert type(back) is cls and back == m
    assert m != twin  # another class never compares equal (as between two dataclasses)
    assert (m == object()) is False
    with pytest.raises(TypeError, match="unhashable"):
        hash(m)
    assert dataclasses.asdict(m) == twin.to_dict()
    assert dataclasses.astuple(m) == _vals(m)
    r = dataclasses.replace(m, content="changed")
    assert type(r) is cls and r.content == "changed" and r.signature == m.signature


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (
            (),
            {},
            "missing 6 required positional arguments: 'role', 'content', 'sequence', "
            "'timestamp', 'signature', and 'previous_hash'",
        ),
        (("u", "c", 0, 1.0, "s"), {}, "missing 1 required positional argument: 'previous_hash'"),
        ((1, 2, 3, 4, 5, 6, 7, 8), {}, "takes from 7 to 8 positional arguments but 9 were given"),
        (("u", "c", 0, 1.0, "s", "p"), {"bogus": 3}, "got an unexpected keyword argument 'bogus'"),
        (("u", "c", 0, 1.0, "s", "p"), {"role": 3}, "got multiple values for argument 'role'"),
    ],
)
def test_argument_errors_match_the_dataclass(
    impl: ModuleType, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError) as exc:
        impl.SignedMessage(*args, **kwargs)
    assert str(exc.value) == f"SignedMessage.__init__() {message}"


def test_fields_are_mutable_deletable_and_extra_attributes_allowed(impl: ModuleType) -> None:
    m = _msg(impl.SignedMessage)
    m.content = "other"
    m.sequence = "not an int"  # any value is accepted, as in the dataclass
    m.note = "extra"
    assert (m.content, m.sequence, m.note) == ("other", "not an int", "extra")
    a, b = _msg(impl.SignedMessage), _msg(impl.SignedMessage)
    assert a.metadata == {} and a.metadata is not b.metadata  # a fresh dict each
    assert a.metadata is a.metadata
    del m.signature
    with pytest.raises(AttributeError, match="signature"):
        _ = m.signature
    with pytest.raises(AttributeError):
        del m.signature
    del m.metadata
    with pytest.raises(AttributeError, match="metadata"):
        _ = m.metadata
    # An instance made by __new__ alone has no fields yet.
    bare = impl.SignedMessage.__new__(impl.SignedMessage)
    with pytest.raises(AttributeError, match="role"):
        _ = bare.role


def test_pickle_and_copy_round_trip(impl: ModuleType) -> None:
    m = _msg(impl.SignedMessage, metadata={"k": [1, 2]})
    m.extra = "x"
    for clone in (
        pickle.loads(pickle.dumps(m)),
        pickle.loads(pickle.dumps(m, protocol=0)),
        copy.copy(m),
        copy.deepcopy(m),
    ):
        assert type(clone) is type(m) and clone == m and clone.extra == "x"
    assert copy.copy(m).metadata is m.metadata
    assert copy.deepcopy(m).metadata is not m.metadata


def test_pickles_of_the_dataclass_load_as_the_active_class() -> None:
    """A message pickled as the twin dataclass (reference backend, earlier versions) loads
    as the public class, extra attributes included."""
    twin = _msg(_reference.SignedMessage, metadata={"k": 1})
    twin.extra = "x"
    data = pickle.dumps(twin, protocol=2).replace(  # protocol 2 names classes as text
        b"proxilion._reference.memory", b"proxilion.security.memory_integrity"
    )
    back = pickle.loads(data)
    assert type(back) is SignedMessage and back.extra == "x"
    assert _vals(back) == _vals(twin)
    native = _core.SignedMessage.__new__(_core.SignedMessage)
    native.__setstate__(dict(twin.__dict__))
    assert _vals(native) == _vals(twin) and native.extra == "x"
    for bad in (5, (1, 2, 3), ({}, None, None), ([], None)):
        with pytest.raises(TypeError, match="state must be a dict or"):
            native.__setstate__(bad)
    with pytest.raises(ValueError, match='has no field "bogus"'):
        native.__setstate__(({"bogus": 1}, None))


class Sub(SignedMessage):  # type: ignore[misc, valid-type]
    """A subclass with its own constructor and a property over a field."""

    def __init__(self, content: str) -> None:
        super().__init__("user", content, 0, 1.0, "s", "p")

    @property  # type: ignore[override]
    def role(self) -> str:
        return self.__dict__["role"].upper()

    @role.setter
    def role(self, value: str) -> None:
        self.__dict__["role"] = value


def test_subclasses_work_as_with_the_dataclass() -> None:
    s = Sub("hi")
    assert (s.role, s.__dict__["role"], s.content) == ("USER", "user", "hi")
    assert pickle.loads(pickle.dumps(s)).role == "USER"
    assert copy.copy(s).content == "hi"


def test_gc_during_construction_copy_and_pickle(impl: ModuleType) -> None:
    """Collect at every allocation while messages are built, copied and released: a
    collection that traverses an instance before its fields are written must be safe."""
    g = MemoryIntegrityGuard(KEY, max_context_size=10**6)
    old = gc.get_threshold()
    gc.set_threshold(1, 1, 1)
    try:
        keep = []
        for i in range(30):
            m = _msg(impl.SignedMessage, content=f"m{i}", metadata={"i": i})
            m.cycle = m  # a reference cycle through the instance dict
            keep.append(weakref.ref(m))
            s = g.sign_message("user", f"signed {i}", {"i": i})
            s.cycle = [s]
            for c in (copy.copy(s), copy.deepcopy(s), pickle.loads(pickle.dumps(s))):
                assert c.content == f"signed {i}" and c.metadata == {"i": i}
            assert g.verify_message(s) == (True, None)
            del m, s
        gc.collect()
        assert all(r() is None for r in keep)
    finally:
        gc.set_threshold(*old)


# -- the guard on either backend --------------------------------------------------------


def test_guard_methods_are_the_chains_unless_overridden(backend: ModuleType) -> None:
    g = MemoryIntegrityGuard(KEY)
    assert g.sign_message.__self__ is g._chain  # type: ignore[attr-defined]
    assert g.verify_message.__self__ is g._chain  # type: ignore[attr-defined]
    m = MemoryIntegrityGuard.sign_message(g, "user", "via the class")
    assert type(m) is backend.SignedMessage and m.sequence == 0

    class Counting(MemoryIntegrityGuard):
        calls = 0

        def sign_message(self, role: str, content: str, metadata: Any = None) -> Any:
            Counting.calls += 1
            return super().sign_message(role, content, metadata)

    c = Counting(KEY)
    assert "sign_message" not in c.__dict__ and "verify_message" in c.__dict__
    assert c.sign_message("user", "x").sequence == 0 and Counting.calls == 1


def test_sign_message_state_and_errors(backend: ModuleType) -> None:
    g = MemoryIntegrityGuard(KEY, max_context_size=2, clock=Clock())
    meta = {"a": 1}
    m = g.sign_message("user", "a", meta)
    assert m.metadata == meta and m.metadata is not meta  # copied
    assert g.sign_message("user", "b", {}).metadata == {}
    with pytest.raises(ContextIntegrityError, match=r"exceeds max_context_size \(2\)"):
        g.sign_message("user", "c")
    g.max_context_size = 3
    assert g.max_context_size == 3 and g.sign_message("user", "c").sequence == 2
    with pytest.raises(ConfigurationError, match="max_context_size must be >= 1"):
        g.max_context_size = 0
    with pytest.raises(ConfigurationError, match="max_context_size must be an int"):
        g.max_context_size = True
    assert repr(g) == "MemoryIntegrityGuard(key_id='k1', sequence=3)"
    g.restore_state({"sequence_counter": 0, "last_hash": "0" * 64})
    with pytest.raises(TypeError, match="object is not iterable"):
        g.sign_message("user", "bad metadata", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="role must be str, not int"):
        g.sign_message(1, "x")  # type: ignore[arg-type]
    assert g.get_state()["sequence_counter"] == 0  # failures consumed nothing
    with pytest.raises(ConfigurationError, match="below 2"):
        g.restore_state({"sequence_counter": 2**64, "last_hash": "x"})
    chain = g._chain
    with pytest.raises(TypeError, match="sequence must be int, not bool"):
        chain.restore(True, "x")
    with pytest.raises(OverflowError, match="sequence out of range"):
        chain.restore(-1, "x")
    with pytest.raises(TypeError, match="last_hash must be str, not int"):
        chain.restore(0, 5)
    # A clock returning an int (or anything float() takes) gives a float timestamp.
    ints = MemoryIntegrityGuard(KEY, clock=lambda: 1_700_000_000)  # type: ignore[arg-type,return-value]
    m = ints.sign_message("user", "x")
    assert type(m.timestamp) is float and ints.verify_context([m]).valid


def test_rotation_through_the_ring_is_seen(backend: ModuleType) -> None:
    clock = Clock()
    g = MemoryIntegrityGuard(KEY, clock=clock)
    a = g.sign_message("user", "a")
    g.key_ring.rotate("second-key-0123456789abcdef", grace_seconds=10)
    b = g.sign_message("user", "b")
    assert b.signature == backend.SigningKeys(["second-key-0123456789abcdef"]).sign(
        f"user|b|1|{b.timestamp}|{a.content_hash()}"
    )
    assert g.verify_message(a) == (True, None) and g.verify_message(b) == (True, None)
    clock.t += 11
    ok, v = g.verify_message(a)  # the old key has expired
    assert not ok and v is not None and v.violation_type is T.SIGNATURE_MISMATCH
    assert g.verify_message(b) == (True, None)


def test_verify_message_fast_and_general_paths_agree(backend: ModuleType) -> None:
    g = MemoryIntegrityGuard(KEY, clock=Clock())
    m0, m1 = g.sign_message("user", "a"), g.sign_message("assistant", "b")
    assert g.verify_message(m1, m0.content_hash()) == (True, None)
    twin = _reference.SignedMessage(**m1.to_dict())  # not the native class: general path
    assert g.verify_message(twin, m0.content_hash()) == (True, None)
    ok, v = g.verify_message(m1, "f" * 64)
    assert not ok and v is not None and v.violation_type is T.HASH_CHAIN_BREAK
    assert (v.expected, v.actual, v.index) == ("f" * 16 + "...", m1.previous_hash[:16] + "...", 1)
    for field, value in [
        ("content", "b!"),
        ("sequence", True),
        ("timestamp", 1),
        ("role", "\ud800"),
        ("signature", m1.signature.upper()),
    ]:
        t = copy.copy(m1)
        setattr(t, field, value)
        ok, v = g.verify_message(t)
        if field == "signature":  # hex of either case is the same tag
            assert (ok, v) == (True, None)
            continue
        assert not ok and v is not None and v.violation_type is T.SIGNATURE_MISMATCH, field
        assert v.message == f"Signature mismatch for message at sequence {t.sequence}"


def test_chain_link_follows_every_field_change(backend: ModuleType) -> None:
    """A signed message keeps its chain hash until a hashed field changes (native: a
    cache cleared by every setter); the next message's link must then break."""
    g = MemoryIntegrityGuard(KEY, clock=Clock())
    a, b = g.sign_message("user", "a"), g.sign_message("user", "b")
    for field, value in [
        ("role", "system"),
        ("content", "x"),
        ("sequence", 5),
        ("timestamp", 1.0),
    ]:
        old = getattr(a, field)
        setattr(a, field, value)
        found = [(v.violation_type, v.index) for v in g.verify_context([a, b]).violations]
        assert (T.HASH_CHAIN_BREAK, 1) in found, field
        setattr(a, field, old)
        assert g.verify_context([a, b]).valid, field
    del a.content
    a.content = "x"
    assert not g.verify_context([a, b]).valid
    a.content = "a"
    a.signature = a.signature  # fields outside the hash keep it
    assert g.verify_context([a, b]).valid


def test_concurrent_signing_keeps_one_chain(backend: ModuleType) -> None:
    g = MemoryIntegrityGuard(KEY, max_context_size=10**6, clock=Clock(step=0.001))
    out: list[Any] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        mine = [g.sign_message("user", f"t{k} m{i}") for i in range(50)]
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.sort(key=lambda m: m.sequence)
    assert [m.sequence for m in out] == list(range(200))
    assert g.verify_context(out).valid


# -- property: native and reference guards agree --------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_tamper = st.sampled_from(["none", "content", "role", "drop", "swap", "signature", "seq"])


def _guard(mod: ModuleType, clock: Clock) -> MemoryIntegrityGuard:
    memory_integrity.impl = mod  # type: ignore[misc]
    _keys.impl = mod  # type: ignore[misc]
    return MemoryIntegrityGuard(KEY, clock=clock, max_context_size=50)


def _violations(res: Any) -> list[tuple[Any, ...]]:
    return [
        (v.violation_type, v.message, v.severity, v.index, v.expected, v.actual)
        for v in res.violations
    ]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["user", "assistant", "system", "tool"]), _text),
        min_size=1,
        max_size=6,
    ),
    st.floats(0.0, 90.0),
    _tamper,
    st.integers(0, 5),
)
def test_native_and_reference_guards_agree(
    msgs: list[tuple[str, str]], step: float, tamper: str, at: int
) -> None:
    saved = (memory_integrity.impl, _keys.impl)
    try:
        results = []
        for mod in (_core, _reference):
            clock = Clock(step=step)
            g = _guard(mod, clock)
            ctx = [g.sign_message(role, content) for role, content in msgs]
            signed = [m.to_dict() for m in ctx]
            i = at % len(ctx)
            if tamper == "content":
                ctx[i].content += "!"
            elif tamper == "role":
                ctx[i].role = "system"
            elif tamper == "drop":
                del ctx[i]
            elif tamper == "swap" and len(ctx) > 1:
                ctx[i], ctx[i - 1] = ctx[i - 1], ctx[i]
            elif tamper == "signature":
                ctx[i].signature = "0" * 64
            elif tamper == "seq":
                ctx[i].sequence += 7
            res = g.verify_context(ctx)
            one = [g.verify_message(m) for m in ctx]
            results.append(
                (
                    signed,
                    _violations(res),
                    (res.valid, res.verified_count, res.total_count),
                    [(ok, v and (v.violation_type, v.message, v.actual)) for ok, v in one],
                    g.get_state(),
                )
            )
        assert results[0] == results[1]
    finally:
        memory_integrity.impl, _keys.impl = saved  # type: ignore[misc]


# -- fields held natively until first read (system clock) ---------------------------------


def _fresh(g: MemoryIntegrityGuard, n: int = 3) -> list[Any]:
    return [g.sign_message("user" if i % 2 else "assistant", f"fresh {i}") for i in range(n)]


def _signed_text(m: Any) -> str:
    return f"{m.role}|{m.content}|{m.sequence}|{m.timestamp}|{m.previous_hash}"


def test_messages_signed_on_the_system_clock_read_as_plain_fields(backend: ModuleType) -> None:
    """With the default clock (time.time) the native chain keeps a message's sequence,
    timestamp, signature and previous hash natively until they are read; every way of
    reading them gives the same exact-type values, and signatures cover exactly them."""
    g = MemoryIntegrityGuard(KEY)
    keys = backend.SigningKeys([KEY])
    msgs = _fresh(g, 4)
    # Verified before any field is read: the natively held values.
    assert [g.verify_message(m) for m in msgs] == [(True, None)] * 4
    for prev, m in itertools.pairwise(msgs):
        assert g.verify_message(m, prev.content_hash()) == (True, None)
        ok, v = g.verify_message(m, "e" * 64)
        assert not ok and v is not None and v.violation_type is T.HASH_CHAIN_BREAK
    assert g.verify_context(msgs).valid
    for i, m in enumerate(msgs):
        vals = _vals(m)
        assert [type(x) for x in vals[:6]] == [str, str, int, float, str, str]
        assert m.sequence == i and m.timestamp is m.timestamp  # made once, then kept
        assert m.signature == keys.sign(_signed_text(m))
        assert m.previous_hash == ("0" * 64 if i == 0 else msgs[i - 1].content_hash())
    assert g.get_state() == {"sequence_counter": 4, "last_hash": msgs[-1].content_hash()}
    assert g.verify_context(msgs).valid


def test_natively_held_fields_copy_pickle_compare_and_delete(backend: ModuleType) -> None:
    g = MemoryIntegrityGuard(KEY)
    a, b = _fresh(g, 2)
    for clone in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert clone == a and _vals(clone) == _vals(a)
        assert g.verify_message(clone) == (True, None)
    c = copy.copy(b)  # the copy reads every field of b
    assert repr(c) == repr(b) and dataclasses.astuple(c) == dataclasses.astuple(b)
    if backend is _core:
        fields, extra = g.sign_message("user", "state").__getstate__()
        assert sorted(fields) == sorted(FIELDS) and extra is None
        assert [type(fields[f]) for f in FIELDS[2:6]] == [int, float, str, str]
    fresh = g.sign_message("user", "to delete")
    for field in ("sequence", "timestamp", "signature", "previous_hash"):
        d = g.sign_message("user", field)
        delattr(d, field)
        with pytest.raises(AttributeError, match=field):
            getattr(d, field)
        with pytest.raises(AttributeError, match=field):
            g.verify_message(d)  # the general path reads the missing field
        with pytest.raises(AttributeError):
            delattr(d, field)
        setattr(d, field, getattr(fresh, field))
        assert getattr(d, field) == getattr(fresh, field)
    assert g.verify_message(fresh) == (True, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [("sequence", 99), ("timestamp", 1.0), ("signature", "0" * 64), ("previous_hash", "f" * 64)],
)
def test_setting_a_natively_held_field_replaces_it(
    backend: ModuleType, field: str, value: Any
) -> None:
    g = MemoryIntegrityGuard(KEY)
    m, nxt = _fresh(g, 2)
    setattr(m, field, value)
    assert getattr(m, field) == value
    ok, v = g.verify_message(m)
    assert not ok and v is not None and v.violation_type is T.SIGNATURE_MISMATCH
    found = [x.violation_type for x in g.verify_context([m, nxt]).violations]
    assert T.SIGNATURE_MISMATCH in found or T.HASH_CHAIN_BREAK in found


def test_natively_held_fields_under_gc_and_threads(backend: ModuleType) -> None:
    g = MemoryIntegrityGuard(KEY, max_context_size=10**6)
    old = gc.get_threshold()
    gc.set_threshold(1, 1, 1)
    try:
        msgs = _fresh(g, 20)
        for m in msgs[::2]:
            m.cycle = m
        assert g.verify_context(msgs).valid
    finally:
        gc.set_threshold(*old)
    shared = g.sign_message("user", "read by many threads")
    seen: list[tuple[Any, ...]] = []
    lock = threading.Lock()

    def read() -> None:
        for _ in range(50):
            v = (shared.sequence, shared.timestamp, shared.signature, shared.previous_hash)
            with lock:
                seen.append(v)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1 and g.verify_message(shared) == (True, None)
