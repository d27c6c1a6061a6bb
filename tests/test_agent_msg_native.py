"""Agent ``SignedMessage`` and ``AgentMessages``: the native classes behave as their twins.

On the native backend ``agent_trust.SignedMessage`` is a native class
(``rust/python/src/agent_msg.rs``) given the twin dataclass's methods and metadata, and a
manager's ``create_signed_message`` / ``verify_message`` are the bound methods of a native
``AgentMessages``, which answers the common cases itself and hands the rest to the manager's
general paths. Tests taking ``impl`` run against both backends' classes; the property tests
compare whole managers (native fast paths against the general Python paths).
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import hashlib
import hmac
import math
import os
import pickle
import threading
import uuid
import weakref
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from proxilion import _core, _reference
from proxilion.exceptions import AgentTrustError
from proxilion.security import _keys, agent_trust
from proxilion.security.agent_trust import (
    AgentTrustManager,
    SignedMessage,
    TrustLevel,
    VerificationResult,
)

KEY = "native-agent-msg-key-0123456789abcdef"
FIELDS = [
    "message_id",
    "from_agent",
    "to_agent",
    "action",
    "payload",
    "timestamp",
    "signature",
    "delegation_token",
    "reply_to",
    "metadata",
]


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
    args: dict[str, Any] = {
        "message_id": "id-1",
        "from_agent": "a",
        "to_agent": "b",
        "action": "x:read",
        "payload": {"q": [1, 2.5]},
        "timestamp": 1.5,
        "signature": "ab" * 32,
    }
    args.update(kw)
    return cls(**args)


def _manager(mod: ModuleType, clock: Any = None, **kw: Any) -> AgentTrustManager:
    """A manager built with ``mod``'s hot paths (``AgentMessages``, ``SigningKeys``)."""
    saved = (agent_trust.impl, _keys.impl)
    agent_trust.impl = mod  # type: ignore[misc]
    _keys.impl = mod  # type: ignore[misc]
    try:
        m = AgentTrustManager(KEY, clock=clock or Clock(), **kw)
    finally:
        agent_trust.impl, _keys.impl = saved  # type: ignore[misc]
    m.register_agent("worker", TrustLevel.LIMITED, ["web:search", "db:*"])
    m.register_agent("boss", TrustLevel.FULL, ["*", "delegate"])
    m.register_agent("nobody", TrustLevel.NONE, ["web:search"])
    return m


@pytest.fixture
def backend(impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """Managers built in the test use ``impl``."""
    for mod in (_keys, agent_trust):
        monkeypatch.setattr(mod, "impl", impl)
    yield impl


def _outcome(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        r = fn(*args, **kw)
    except Exception as exc:
        return (type(exc), str(exc))
    if isinstance(r, VerificationResult):
        return (r.valid, r.error, r.warnings)
    return r


# -- the class ---------------------------------------------------------------------------


def test_public_class_is_the_active_backends() -> None:
    from proxilion._backend import impl
    from proxilion.security import AgentSignedMessage

    assert SignedMessage is impl.AgentSignedMessage is AgentSignedMessage
    assert dataclasses.is_dataclass(SignedMessage)
    assert [f.name for f in dataclasses.fields(SignedMessage)] == FIELDS
    assert SignedMessage.__match_args__ == tuple(FIELDS)
    assert SignedMessage.__doc__ == "A signed message between agents."
    assert _core.AgentSignedMessage.__name__ == "SignedMessage"
    assert _core.AgentSignedMessage.__module__ == "proxilion.security.agent_trust"


def test_native_class_has_the_dataclass_behaviour() -> None:
    cls = _core.AgentSignedMessage
    m = _msg(cls, reply_to="r", metadata={"k": 1})
    twin = _msg(_reference.AgentSignedMessage, reply_to="r", metadata={"k": 1})
    assert _vals(m) == _vals(twin)
    assert _vals(m)[7:] == (None, "r", {"k": 1})
    assert repr(m) == repr(twin)
    assert repr(m).startswith("SignedMessage(message_id='id-1', from_agent='a', to_agent='b',")
    assert m.to_dict() == twin.to_dict()
    assert m.signed_text() == twin.signed_text() == 'id-1|a|b|x:read|{"q": [1, 2.5]}|1.5'
    assert m == _msg(cls, reply_to="r", metadata={"k": 1})
    assert m != _msg(cls, reply_to="r", metadata={"k": 2})
    assert m != twin  # another class never compares equal (as between two dataclasses)
    assert (m == object()) is False
    with pytest.raises(TypeError, match="unhashable"):
        hash(m)
    assert dataclasses.asdict(m) == dataclasses.asdict(twin)
    assert dataclasses.astuple(m) == _vals(m)
    r = dataclasses.replace(m, action="changed")
    assert type(r) is cls and r.action == "changed" and r.signature == m.signature
    match m:
        case cls(message_id, from_agent):  # type: ignore[misc]
            assert (message_id, from_agent) == ("id-1", "a")
        case _:  # pragma: no cover - the match above must succeed
            pytest.fail("positional match failed")


SEVEN = ("i", "a", "b", "x", {}, 1.0, "s")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (
            (),
            {},
            "missing 7 required positional arguments: 'message_id', 'from_agent', 'to_agent', "
            "'action', 'payload', 'timestamp', and 'signature'",
        ),
        (("i", "a", "b", "x", {}, 1.0), {}, "missing 1 required positional argument: 'signature'"),
        (tuple(range(11)), {}, "takes from 8 to 11 positional arguments but 12 were given"),
        (SEVEN, {"bogus": 3}, "got an unexpected keyword argument 'bogus'"),
        (SEVEN, {"action": 3}, "got multiple values for argument 'action'"),
    ],
)
def test_argument_errors_match_the_dataclass(
    impl: ModuleType, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError) as exc:
        impl.AgentSignedMessage(*args, **kwargs)
    assert str(exc.value) == f"SignedMessage.__init__() {message}"


def test_fields_are_mutable_deletable_and_extra_attributes_allowed(impl: ModuleType) -> None:
    m = _msg(impl.AgentSignedMessage)
    m.action = "other"
    m.timestamp = "not a float"  # any value is accepted, as in the dataclass
    m.note = "extra"
    assert (m.action, m.timestamp, m.note) == ("other", "not a float", "extra")
    a, b = _msg(impl.AgentSignedMessage), _msg(impl.AgentSignedMessage)
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
    bare = impl.AgentSignedMessage.__new__(impl.AgentSignedMessage)
    with pytest.raises(AttributeError, match="message_id"):
        _ = bare.message_id


def test_pickle_and_copy_round_trip(impl: ModuleType) -> None:
    m = _msg(impl.AgentSignedMessage, metadata={"k": [1, 2]}, reply_to="r")
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
    twin = _msg(_reference.AgentSignedMessage, metadata={"k": 1})
    twin.extra = "x"
    data = pickle.dumps(twin, protocol=2).replace(  # protocol 2 names classes as text
        b"proxilion._reference.agent_msg", b"proxilion.security.agent_trust"
    )
    back = pickle.loads(data)
    assert type(back) is SignedMessage and back.extra == "x"
    assert _vals(back) == _vals(twin)
    native = _core.AgentSignedMessage.__new__(_core.AgentSignedMessage)
    native.__setstate__(dict(twin.__dict__))
    assert _vals(native) == _vals(twin) and native.extra == "x"
    for bad in (5, (1, 2, 3), ({}, None, None), ([], None)):
        with pytest.raises(TypeError, match="state must be a dict or"):
            native.__setstate__(bad)
    with pytest.raises(ValueError, match='has no field "bogus"'):
        native.__setstate__(({"bogus": 1}, None))


class Sub(SignedMessage):  # type: ignore[misc, valid-type]
    """A subclass with its own constructor and a property over a field."""

    def __init__(self, action: str) -> None:
        super().__init__("i", "worker", "boss", action, {}, 1.0, "s")

    @property  # type: ignore[override]
    def action(self) -> str:
        return str(self.__dict__["action"]).upper()

    @action.setter
    def action(self, value: str) -> None:
        self.__dict__["action"] = value


def test_subclasses_work_as_with_the_dataclass() -> None:
    s = Sub("web:search")
    assert (s.action, s.__dict__["action"], s.from_agent) == ("WEB:SEARCH", "web:search", "worker")
    assert pickle.loads(pickle.dumps(s)).action == "WEB:SEARCH"
    assert copy.copy(s).from_agent == "worker"


def test_gc_during_construction_copy_and_pickle(impl: ModuleType) -> None:
    """Collect at every allocation while messages are built, signed, verified, copied and
    released: a collection that traverses an instance before its fields are written, or a
    manager in a cycle with its native message paths, must be safe."""
    old = gc.get_threshold()
    gc.set_threshold(1, 1, 1)
    try:
        keep = []
        for i in range(20):
            mgr = _manager(impl, Clock())
            keep.append(weakref.ref(mgr))
            m = _msg(impl.AgentSignedMessage, payload={"i": i}, metadata={"i": i})
            m.cycle = m
            keep.append(weakref.ref(m))
            s = mgr.create_signed_message("boss", "worker", "x", {"i": i}, metadata={"i": i})
            s.cycle = [s]
            for c in (copy.copy(s), copy.deepcopy(s), pickle.loads(pickle.dumps(s))):
                assert c.payload == {"i": i} and c.metadata == {"i": i}
            assert mgr.verify_message(s).valid
            del m, s, mgr
        gc.collect()
        assert all(r() is None for r in keep)
    finally:
        gc.set_threshold(*old)


# -- the manager's message paths ----------------------------------------------------------


def test_manager_methods_are_the_native_paths_unless_overridden(backend: ModuleType) -> None:
    m = _manager(backend)
    assert m.create_signed_message.__self__ is m._messages  # type: ignore[attr-defined]
    assert m.verify_message.__self__ is m._messages  # type: ignore[attr-defined]
    msg = AgentTrustManager.create_signed_message(m, "worker", "boss", "web:search", {})
    assert type(msg) is SignedMessage
    assert AgentTrustManager.verify_message(m, msg).valid

    class Counting(AgentTrustManager):
        calls = 0

        def verify_message(self, *args: Any, **kw: Any) -> Any:
            Counting.calls += 1
            return super().verify_message(*args, **kw)

    c = Counting(KEY)
    c.register_agent("a", TrustLevel.STANDARD, ["x"])
    c.register_agent("b", TrustLevel.STANDARD, ["x"])
    assert "verify_message" not in c.__dict__ and "create_signed_message" in c.__dict__
    assert c.verify_message(c.create_signed_message("a", "b", "x", {})).valid
    assert Counting.calls == 1


def test_signature_is_the_original_bytes(backend: ModuleType) -> None:
    clock = Clock(1712345678.25)
    m = _manager(backend, clock)
    meta = {"k": 1}
    msg = m.create_signed_message(
        "worker", "boss", "web:search", {"q": [1, 2.5], "a": None}, reply_to="r", metadata=meta
    )
    assert type(msg) is SignedMessage and uuid.UUID(msg.message_id).version == 4
    assert str(uuid.UUID(msg.message_id)) == msg.message_id
    assert msg.metadata == meta and msg.metadata is not meta
    assert (msg.timestamp, msg.reply_to, msg.delegation_token) == (1712345678.25, "r", None)
    secret = hmac.new(KEY.encode(), b"agent:worker", hashlib.sha256).hexdigest()
    text = f'{msg.message_id}|worker|boss|web:search|{{"a": null, "q": [1, 2.5]}}|1712345678.25'
    assert msg.signed_text() == text
    assert msg.signature == hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    assert m.create_signed_message("worker", "boss", "web:search", {}).metadata == {}
    # The clock's reading becomes a float, whatever the clock returns.
    ints = _manager(backend, lambda: 1_700_000_000)
    assert type(ints.create_signed_message("worker", "boss", "x", {}).timestamp) is float


def test_sign_errors_match_the_general_path(backend: ModuleType) -> None:
    m = _manager(backend)
    m.register_agent("brief", TrustLevel.STANDARD, ["x"], ttl_seconds=1)
    m._agents["brief"].expires_at -= timedelta(seconds=5)
    cases: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (("ghost", "boss", "x", {}), {}),
        (("nobody", "boss", "x", {}), {}),
        (("brief", "boss", "x", {}), {}),
        (("worker", "boss", "x", {"s": {1, 2}}), {}),
        (("worker", "boss", "x", {"k": float("nan"), "v": 10**40}), {}),
        (("worker", "boss", "\ud800", {}), {}),
        (("worker", "boss", "x", {}), {"metadata": 5}),
        ((["unhashable"], "boss", "x", {}), {}),
    ]
    for args, kw in cases:
        native = _outcome(m.create_signed_message, *args, **kw)
        general = _outcome(m._create_signed_message, *args, None, None, kw.get("metadata"))
        if isinstance(native, SignedMessage):
            assert (
                isinstance(general, SignedMessage)
                and native.signed_text().split("|", 1)[1] == general.signed_text().split("|", 1)[1]
            )
        else:
            assert native == general, args
    with pytest.raises(AgentTrustError, match="Unknown sender: ghost") as exc:
        m.create_signed_message("ghost", "boss", "x", {})
    assert exc.value.reason == "Unknown sender: ghost"


def test_ids_are_unique_across_threads(backend: ModuleType) -> None:
    m = _manager(backend, Clock(step=0.001))
    ids: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [m.create_signed_message("worker", "boss", "x", {}).message_id for _ in range(300)]
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == len(ids) == 1200
    assert all(uuid.UUID(i).version == 4 for i in ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_never_reuses_the_parents_ids(backend: ModuleType) -> None:
    m = _manager(backend)
    m.create_signed_message("worker", "boss", "x", {})  # the pool is now filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            ids = (m.create_signed_message("worker", "boss", "x", {}).message_id for _ in "12345")
            os.write(write, ",".join(ids).encode())
        finally:
            os._exit(0)
    os.close(write)
    parent = {m.create_signed_message("worker", "boss", "x", {}).message_id for _ in range(5)}
    with os.fdopen(read) as f:
        child_ids = set(f.read().split(","))
    os.waitpid(pid, 0)
    assert len(child_ids) == 5 and not (parent & child_ids)


def test_replay_is_rejected_once_across_threads(backend: ModuleType) -> None:
    m = _manager(backend)
    msgs = [m.create_signed_message("worker", "boss", "web:search", {"i": i}) for i in range(50)]
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        mine = [m.verify_message(x).valid for x in msgs]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 50 and len(results) == 200
    assert m.verify_message(msgs[0]).error == "Replay attack detected: message already processed"


def test_replay_cache_eviction_through_the_fast_path(backend: ModuleType) -> None:
    clock = Clock(step=0.5)
    m = _manager(backend, clock, replay_cache_size=4)
    msgs = [m.create_signed_message("worker", "boss", "web:search", {"i": i}) for i in range(9)]
    assert all(m.verify_message(x).valid for x in msgs)
    assert len(m._seen) <= 4 and m._replay_floor >= msgs[1].timestamp
    for x in msgs:  # evicted or not: every one is a replay now
        assert m.verify_message(x).error == "Replay attack detected: message already processed"
    assert m.verify_message(msgs[0], check_replay=False).valid


def test_fast_path_defaults_and_argument_forms(backend: ModuleType) -> None:
    clock = Clock()
    m = _manager(backend, clock)
    msg = m.create_signed_message("worker", "boss", "web:search", {})
    clock.t += 301
    assert m.verify_message(msg).error == "Message too old: 301.0s > 300.0s"
    assert m.verify_message(msg, False, max_age_seconds=400).valid
    clock.t += 100
    assert m.verify_message(msg, False, 300).error == "Message too old: 401.0s > 300s"
    assert m.verify_message(msg, 0, math.inf).valid  # falsy: no replay check
    with pytest.raises(TypeError, match="'>' not supported"):
        m.verify_message(msg, False, None)
    assert m.verify_message(message=msg, check_replay=True, max_age_seconds=1e9).valid
    assert not m.verify_message(msg, 1, 1e9).valid  # truthy: replay check


# -- property: the native fast paths agree with the general paths -----------------------

_tampers = st.sampled_from(
    [
        "none",
        "replay",
        "message_id",
        "from_boss",
        "from_ghost",
        "from_nobody",
        "to_ghost",
        "action_held",
        "action_wildcard",
        "action_missing",
        "payload",
        "timestamp_old",
        "timestamp_future",
        "timestamp_nan",
        "timestamp_int",
        "signature_upper",
        "signature_zero",
        "signature_bytes",
        "surrogate",
        "reference_class",
    ]
)
_payloads = st.dictionaries(
    st.text(max_size=4),
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    max_size=3,
)


def _tamper(m: Any, how: str, clock: Clock) -> Any:
    t = copy.copy(m)
    if how == "message_id":
        t.message_id = "forged-id"
    elif how == "from_boss":
        t.from_agent = "boss"
    elif how == "from_ghost":
        t.from_agent = "ghost"
    elif how == "from_nobody":
        t.from_agent = "nobody"
    elif how == "to_ghost":
        t.to_agent = "ghost"
    elif how in ("action_held", "action_wildcard", "action_missing"):
        t.action = {"action_held": "web:search", "action_wildcard": "db:read"}.get(how, "admin")
    elif how == "payload":
        t.payload = {**t.payload, "extra": 1}
    elif how == "timestamp_old":
        t.timestamp = clock.t - 1000.0
    elif how == "timestamp_future":
        t.timestamp = clock.t + 1000.0
    elif how == "timestamp_nan":
        t.timestamp = math.nan
    elif how == "timestamp_int":
        t.timestamp = int(t.timestamp)
    elif how == "signature_upper":
        t.signature = t.signature.upper()
    elif how == "signature_zero":
        t.signature = "0" * 64
    elif how == "signature_bytes":
        t.signature = t.signature.encode()
    elif how == "surrogate":
        t.to_agent = "\ud800"
    elif how == "reference_class":
        t = _reference.AgentSignedMessage(**{f: getattr(m, f) for f in FIELDS})
    return t


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["worker", "boss"]),
    st.sampled_from(["web:search", "db:write", "admin"]),
    _payloads,
    _tampers,
    st.booleans(),
    st.sampled_from([300.0, 30, 5.0]),
    st.floats(0.0, 20.0),
)
def test_native_and_general_paths_agree(
    sender: str,
    action: str,
    payload: dict[str, Any],
    how: str,
    check_replay: bool,
    max_age: float,
    later: float,
) -> None:
    clock = Clock(1_700_000_000.0)
    native = _manager(_core, clock)
    general = _manager(_reference, clock)
    msg = native.create_signed_message(sender, "boss", action, payload, reply_to="r")
    # Same bytes as the reference primitive over the same id and timestamp.
    ref_keys = general._hmac_keys(sender)
    args = (msg.message_id, sender, "boss", action, payload, msg.timestamp)
    assert msg.signature == ref_keys.agent_sign(*args)
    assert ref_keys.agent_verify(*args, msg.signature) == 0
    clock.t += later
    t = _tamper(msg, how, clock)
    runs = 2 if how == "replay" else 1
    out = []
    for mgr in (native, general):
        out.append([_outcome(mgr.verify_message, t, check_replay, max_age) for _ in range(runs)])
        out[-1].append((dict(mgr._seen), mgr._replay_floor))
    assert out[0] == out[1]
    if how == "none" and later <= max_age and (sender == "boss" or action == "web:search"):
        assert out[0][0][0] is True


@settings(max_examples=30, deadline=None)
@given(_payloads, st.sampled_from(["worker", "boss", "nobody", "ghost"]))
def test_messages_signed_either_way_verify_either_way(payload: dict[str, Any], sender: str) -> None:
    clock = Clock(1_700_000_000.0)
    native = _manager(_core, clock)
    general = _manager(_reference, clock)
    a = _outcome(native.create_signed_message, sender, "boss", "web:search", payload)
    b = _outcome(general.create_signed_message, sender, "boss", "web:search", payload)
    if not isinstance(a, SignedMessage):
        assert a == b
        return
    assert isinstance(b, SignedMessage)
    assert a.signed_text().split("|", 1)[1] == b.signed_text().split("|", 1)[1]
    for m in (a, b):
        assert _outcome(native.verify_message, m) == _outcome(general.verify_message, m)
        assert _outcome(native.verify_message, m)[1] == (
            "Replay attack detected: message already processed"
        )


def test_changes_to_agents_manager_and_ring_are_seen(backend: ModuleType) -> None:
    """The fast paths read credentials, the manager's settings and the key ring on every
    call (through their ``__dict__`` where that is what attribute access does)."""
    clock = Clock()
    m = _manager(backend, clock)
    msg = m.create_signed_message("worker", "boss", "web:search", {})
    cred = m._agents["worker"]
    cred.capabilities = {"other"}
    assert m.verify_message(msg, False).error == "Sender lacks capability for action 'web:search'"
    cred.capabilities = frozenset({"*"})
    assert m.verify_message(msg, False).valid
    cred.trust_level = TrustLevel.NONE
    assert m.verify_message(msg, False).error == "Sender has UNTRUSTED trust level"
    with pytest.raises(AgentTrustError, match="NONE trust level"):
        m.create_signed_message("worker", "boss", "web:search", {})
    cred.trust_level = TrustLevel.LIMITED
    cred.expires_at = agent_trust._utcnow() - timedelta(seconds=1)
    assert m.verify_message(msg, False).error == "Sender credential has expired"
    with pytest.raises(AgentTrustError, match="Sender credential has expired"):
        m.create_signed_message("worker", "boss", "web:search", {})
    cred.expires_at = None
    m.unregister_agent("boss")
    assert m.verify_message(msg, False).error == "Unknown receiver: boss"
    m.require_explicit_trust = False
    assert m.verify_message(msg, False).valid
    m.rotate_key("another-master-key-0123456789abc", grace_seconds=0)
    assert m.verify_message(msg, False).error == "Invalid signature"
    fresh = m.create_signed_message("worker", "boss", "web:search", {})
    assert m.verify_message(fresh, False).valid

    class Strict(AgentTrustManager):
        @property
        def require_explicit_trust(self) -> bool:  # type: ignore[override]
            return True

        @require_explicit_trust.setter
        def require_explicit_trust(self, value: bool) -> None:
            pass

    s = Strict(KEY, require_explicit_trust=False)
    s.register_agent("a", TrustLevel.STANDARD, ["x"])
    assert s._messages is not None
    assert s.verify_message(s.create_signed_message("a", "ghost", "x", {})).error == (
        "Unknown receiver: ghost"
    )


def test_subclassed_messages_and_credentials_are_read_by_attribute_access(
    backend: ModuleType,
) -> None:
    """Only exact ``SignedMessage`` / ``AgentCredential`` instances are read directly; a
    subclass (here one whose property hides the stored value) goes through attribute access."""
    clock = Clock()
    m = _manager(backend, clock)
    msg = m.create_signed_message("worker", "boss", "web:search", {"n": 1, "s": "x"})

    class Plain(SignedMessage):  # type: ignore[misc, valid-type]
        pass

    p = Plain(**{f: getattr(msg, f) for f in FIELDS})
    assert m.verify_message(p, False).valid

    class Shouting(SignedMessage):  # type: ignore[misc, valid-type]
        @property  # type: ignore[override]
        def action(self) -> str:
            return str(self.__dict__["action"]).upper()

        @action.setter
        def action(self, value: str) -> None:
            self.__dict__["action"] = value

    loud = Shouting(**{f: getattr(msg, f) for f in FIELDS})
    assert m.verify_message(loud, False).error == "Invalid signature"

    class Untrusted(agent_trust.AgentCredential):
        @property  # type: ignore[override]
        def trust_level(self) -> TrustLevel:
            return TrustLevel.NONE

        @trust_level.setter
        def trust_level(self, value: TrustLevel) -> None:
            self.__dict__["trust_level"] = value

    cred = m._agents["worker"]
    sub = Untrusted(**{f.name: getattr(cred, f.name) for f in dataclasses.fields(cred)})
    assert sub.__dict__["trust_level"] == TrustLevel.LIMITED
    m._agents["worker"] = sub
    assert m.verify_message(msg, False).error == "Sender has UNTRUSTED trust level"
    with pytest.raises(AgentTrustError, match="NONE trust level"):
        m.create_signed_message("worker", "boss", "web:search", {})
    m._agents["worker"] = cred
    assert m.verify_message(msg, False).valid


# -- VerificationResult ---------------------------------------------------------------------

RESULT_FIELDS = ["valid", "error", "warnings", "verified_at"]
AT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)


def test_result_class_has_the_dataclass_behaviour(impl: ModuleType) -> None:
    from proxilion._backend import impl as active

    assert VerificationResult is active.AgentVerificationResult
    assert [f.name for f in dataclasses.fields(VerificationResult)] == RESULT_FIELDS
    cls = impl.AgentVerificationResult
    r = cls(False, "bad", ["w"], AT)
    twin = _reference.AgentVerificationResult(False, "bad", ["w"], AT)
    assert repr(r) == repr(twin) and r.to_dict() == twin.to_dict()
    assert r == cls(False, "bad", ["w"], AT) and r != cls(False, "bad", [], AT)
    assert dataclasses.asdict(r) == dataclasses.asdict(twin)
    assert dataclasses.replace(r, valid=True).valid is True
    with pytest.raises(TypeError, match="unhashable"):
        hash(r)
    fresh = cls(True)
    assert fresh.warnings == [] and fresh.error is None and fresh.verified_at.tzinfo is not None
    with pytest.raises(TypeError, match=r"VerificationResult.__init__\(\) missing 1 required"):
        cls()
    bare = cls.__new__(cls)
    with pytest.raises(AttributeError, match="valid"):
        _ = bare.valid
    r.extra = 1
    for clone in (pickle.loads(pickle.dumps(r)), copy.copy(r), copy.deepcopy(r)):
        assert type(clone) is cls and clone == r and clone.extra == 1


def test_stamped_results_make_their_lazy_fields_once(impl: ModuleType) -> None:
    before = datetime.now(timezone.utc)
    r = impl.agent_result(True, None, None)
    after = datetime.now(timezone.utc)
    assert (r.valid, r.error, r.warnings) == (True, None, [])
    assert r.warnings is r.warnings
    at = r.verified_at
    assert at is r.verified_at and at.tzinfo is timezone.utc
    assert before - timedelta(milliseconds=1) <= at <= after + timedelta(milliseconds=1)
    w = ["x"]
    assert impl.agent_result(False, "e", w).warnings is w
    s = impl.agent_result(True)
    s.verified_at = AT
    assert s.verified_at is AT
    t = impl.agent_result(True)
    del t.warnings
    with pytest.raises(AttributeError, match="warnings"):
        _ = t.warnings
    with pytest.raises(AttributeError, match="warnings"):
        del t.warnings
    clone = pickle.loads(pickle.dumps(impl.agent_result(True, None, ["w"])))
    assert clone.warnings == ["w"] and clone.verified_at.tzinfo is timezone.utc


def test_result_pickles_of_the_dataclass_load_as_the_active_class() -> None:
    for twin in (
        _reference.agent_result(False, "e", ["w"]),  # verified_at kept as _verified_ts
        _reference.AgentVerificationResult(True, None, [], AT),  # ... as _verified_at
    ):
        twin.extra = "x"
        data = pickle.dumps(twin, protocol=2).replace(
            b"proxilion._reference.agent_msg", b"proxilion.security.agent_trust"
        )
        back = pickle.loads(data)
        assert type(back) is VerificationResult and back.extra == "x"
        assert [getattr(back, f) for f in RESULT_FIELDS] == [
            getattr(twin, f) for f in RESULT_FIELDS
        ]
    native = _core.AgentVerificationResult.__new__(_core.AgentVerificationResult)
    for bad in (5, (1, 2, 3), ([], None)):
        with pytest.raises(TypeError, match="state must be a dict or"):
            native.__setstate__(bad)
    with pytest.raises(ValueError, match='has no field "bogus"'):
        native.__setstate__(({"bogus": 1}, None))


# -- AgentCredential -------------------------------------------------------------------------

CRED_FIELDS = [
    "agent_id",
    "trust_level",
    "capabilities",
    "public_key",
    "parent_agent",
    "created_at",
    "expires_at",
    "metadata",
    "_secret",
    "algorithm",
]


def _cred(cls: Any, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "agent_id": "a",
        "trust_level": TrustLevel.STANDARD,
        "capabilities": {"x:read", "delegate"},
        "public_key": "pk",
        "created_at": AT,
        "_secret": "s3cret",
    }
    args.update(kw)
    return cls(**args)


def _cred_vals(c: Any) -> tuple[Any, ...]:
    return tuple(getattr(c, f) for f in CRED_FIELDS)


def test_credential_class_is_the_active_backends_and_a_dataclass() -> None:
    from proxilion._backend import impl
    from proxilion.security import AgentCredential

    assert AgentCredential is agent_trust.AgentCredential is impl.AgentCredential
    assert _core.AgentCredential.__name__ == "AgentCredential"
    assert _core.AgentCredential.__module__ == "proxilion.security.agent_trust"
    for cls in (_core.AgentCredential, _reference.AgentCredential):
        assert dataclasses.is_dataclass(cls)
        assert [f.name for f in dataclasses.fields(cls)] == CRED_FIELDS
        assert cls.__match_args__ == tuple(CRED_FIELDS)


def test_credential_has_the_dataclass_behaviour(impl: ModuleType) -> None:
    cls = impl.AgentCredential
    c = _cred(cls)
    twin = _cred(_reference.AgentCredential)
    assert repr(c) == repr(twin) and "s3cret" not in repr(c)
    assert c.to_dict() == twin.to_dict() and "s3cret" not in str(c.to_dict())
    assert c == _cred(cls) and c != _cred(cls, agent_id="b")
    with pytest.raises(TypeError, match="unhashable"):
        hash(c)
    assert dataclasses.asdict(c) == dataclasses.asdict(twin)
    assert dataclasses.replace(c, trust_level=TrustLevel.NONE).trust_level == TrustLevel.NONE
    assert c.has_capability("x:read") and not c.has_capability("y")
    assert not dataclasses.replace(c, trust_level=TrustLevel.NONE).has_capability("x:read")
    low = _cred(cls, trust_level=TrustLevel.MINIMAL)
    assert c.can_delegate_to(low) and not low.can_delegate_to(c)
    assert not c.is_expired()
    assert _cred(cls, expires_at=AT).is_expired()
    defaults = cls("d", TrustLevel.LIMITED, set(), "pk")
    assert defaults.algorithm == "hmac-sha256" and defaults.metadata == {}
    assert defaults._secret == "" and defaults.expires_at is None
    assert defaults.created_at.tzinfo is timezone.utc
    for copied in (copy.copy(c), copy.deepcopy(c), pickle.loads(pickle.dumps(c))):
        assert type(copied) is cls and _cred_vals(copied) == _cred_vals(c)
    bare = cls.__new__(cls)
    with pytest.raises(AttributeError, match="trust_level"):
        bare.trust_level  # noqa: B018
    c.extra = 1
    del c.metadata
    with pytest.raises(AttributeError, match="metadata"):
        c.metadata  # noqa: B018
    c.metadata = {"k": 1}
    back = pickle.loads(pickle.dumps(c))
    assert back.extra == 1 and back.metadata == {"k": 1}
    with pytest.raises(TypeError, match="missing"):
        cls("only-id")


def test_credential_pickles_of_the_dataclass_load_natively() -> None:
    twin = _cred(_reference.AgentCredential)
    twin.extra = "x"
    native = _core.AgentCredential.__new__(_core.AgentCredential)
    native.__setstate__(dict(twin.__dict__))
    assert _cred_vals(native) == _cred_vals(twin) and native.extra == "x"
    with pytest.raises(ValueError, match='has no field "bogus"'):
        native.__setstate__(({"bogus": 1}, None))


class _Level(int):
    """An int whose equality is its own: the fast paths never read it as a level."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


_mutations = st.sampled_from(
    [
        ("trust_level", TrustLevel.NONE),
        ("trust_level", 0),
        ("trust_level", 3),
        ("trust_level", TrustLevel.FULL),
        ("trust_level", _Level(4)),
        ("capabilities", set()),
        ("capabilities", {"*"}),
        ("capabilities", frozenset({"web:search"})),
        ("capabilities", {"web:*"}),
        ("expires_at", datetime(2000, 1, 1, tzinfo=timezone.utc)),
        ("expires_at", datetime(2999, 1, 1, tzinfo=timezone.utc)),
        ("expires_at", None),
        ("algorithm", "ed25519"),
        ("algorithm", "HMAC-SHA256"),
        ("algorithm", "hmac-sha256"),
        ("agent_id", "boss"),
        ("agent_id", "worker"),
        ("discard", "web:search"),
        ("add", "web:search"),
        ("unregister", None),
        ("reregister", None),
        ("rotate", None),
        ("explicit", False),
        ("explicit", True),
        ("replace", None),
    ]
)


def _mutate(m: AgentTrustManager, how: str, value: Any) -> None:
    cred = m._agents.get("worker")
    if how == "unregister":
        m.unregister_agent("worker")
    elif how == "reregister":
        if cred is None:
            m.register_agent("worker", TrustLevel.LIMITED, ["web:search"])
    elif how == "rotate":
        m.rotate_key(f"rotated-master-key-{m._ring.generation}-0123456789abcdef", grace_seconds=0)
    elif how == "explicit":
        m.require_explicit_trust = value
    elif cred is None:
        return
    elif how in ("discard", "add"):
        caps = cred.capabilities
        if not isinstance(caps, set):  # a frozenset assigned earlier: replaced, as a user must
            cred.capabilities = caps - {value} if how == "discard" else caps | {value}
        elif how == "discard":  # mutated in place: the fast paths must see it
            caps.discard(value)
        else:
            caps.add(value)
    elif how == "replace":
        m._agents["worker"] = dataclasses.replace(cred)
    else:
        setattr(cred, how, value)


@settings(max_examples=60, deadline=None)
@given(st.lists(_mutations, max_size=4))
@example([("capabilities", frozenset({"web:search"})), ("discard", "web:search")])
@example([("capabilities", frozenset({"web:search"})), ("add", "web:*")])
def test_mutated_state_is_never_read_stale(changes: list[tuple[str, Any]]) -> None:
    """Native managers (fast paths) and reference managers (general paths only) give the
    same outcome after any sequence of changes to the credential, the registry, the keys or
    the manager's settings, for messages signed before and after the changes."""
    clock = Clock()
    managers = [_manager(_core, clock), _manager(_reference, clock)]
    assert type(managers[0]._agents["worker"]) is _core.AgentCredential
    for m in managers:  # the reference manager on the reference credential class
        if type(m._messages) is _reference.AgentMessages:
            for aid, c in list(m._agents.items()):
                m._agents[aid] = _reference.AgentCredential(
                    **{f: getattr(c, f) for f in CRED_FIELDS}
                )
    before = [m.create_signed_message("worker", "boss", "web:search", {"n": 1}) for m in managers]
    for how, value in changes:
        outs = []
        for m, msg in zip(managers, before, strict=True):
            _mutate(m, how, value)
            outs.append(
                (
                    _outcome(m.verify_message, msg, False),
                    _outcome(m.create_signed_message, "worker", "boss", "web:search", {}),
                )
            )
        a, b = outs
        assert a[0] == b[0]
        if isinstance(a[1], SignedMessage):
            assert isinstance(b[1], SignedMessage)
            assert a[1].signed_text().split("|", 1)[1] == b[1].signed_text().split("|", 1)[1]
            assert _outcome(managers[0].verify_message, a[1], False) == _outcome(
                managers[1].verify_message, b[1], False
            )
        else:
            assert a[1] == b[1]


def test_each_credential_change_is_seen_by_the_fast_paths(backend: ModuleType) -> None:
    m = _manager(backend)
    msg = m.create_signed_message("worker", "boss", "web:search", {})
    cred = m._agents["worker"]
    assert m.verify_message(msg, False).valid
    cred.trust_level = 0
    assert m.verify_message(msg, False).error == "Sender has UNTRUSTED trust level"
    cred.trust_level = _Level(3)  # compares equal to 0: the general path refuses it
    assert m.verify_message(msg, False).error == "Sender has UNTRUSTED trust level"
    cred.trust_level = TrustLevel.LIMITED
    cred.capabilities.discard("web:search")
    assert m.verify_message(msg, False).error == ("Sender lacks capability for action 'web:search'")
    cred.capabilities.add("web:search")
    assert m.verify_message(msg, False).valid
    cred.algorithm = "ed25519"
    assert m.verify_message(msg, False).error == "Invalid signature"
    with pytest.raises(AgentTrustError, match="verify-only Ed25519 agent"):
        m.create_signed_message("worker", "boss", "web:search", {})
    cred.algorithm = "hmac-sha256"
    assert m.verify_message(msg, False).valid
    cred.agent_id = "boss"  # keys are derived for the credential's own id
    assert m.verify_message(msg, False).error == "Invalid signature"
    cred.agent_id = "worker"
    del cred.trust_level
    with pytest.raises(AttributeError, match="trust_level"):
        m.verify_message(msg, False)
    cred.trust_level = TrustLevel.LIMITED
    assert m.verify_message(msg, False).valid


# -- AgentLock -------------------------------------------------------------------------------


def test_agent_lock_is_reentrant_and_exclusive(impl: ModuleType) -> None:
    lock = impl.AgentLock()
    assert lock.acquire() and lock.acquire(blocking=False) and lock.acquire(timeout=0.5)
    seen: list[bool] = []
    t = threading.Thread(target=lambda: seen.append(lock.acquire(blocking=False)))
    t.start()
    t.join()
    t = threading.Thread(target=lambda: seen.append(lock.acquire(timeout=0)))
    t.start()
    t.join()
    assert seen == [False, False]
    for _ in range(3):
        lock.release()
    with pytest.raises(RuntimeError, match="un-acquired lock"):
        lock.release()
    with lock, lock:
        assert lock._is_owned()
    assert not lock._is_owned()
    with pytest.raises(ValueError, match="timeout"):
        lock.acquire(False, 1.0)
    with pytest.raises(ValueError, match="timeout value must be"):
        lock.acquire(True, -5.0)
    t = threading.Thread(target=lambda: seen.append(lock.acquire(blocking=False)))
    t.start()
    t.join()
    assert seen[-1] is True
    with pytest.raises(RuntimeError, match="un-acquired lock"):
        lock.release()  # held by the (finished) other thread, not this one


def test_manager_lock_serialises_python_and_native_paths(backend: ModuleType) -> None:
    """While another thread holds the manager's lock (as its Python paths do), verify_message
    waits for it, on the fast path too."""
    m = _manager(backend)
    msg = m.create_signed_message("worker", "boss", "web:search", {})
    holding, done = threading.Event(), threading.Event()
    release = threading.Event()
    out: list[Any] = []

    def holder() -> None:
        with m._lock:
            holding.set()
            release.wait()

    def verifier() -> None:
        out.append(m.verify_message(msg).valid)
        done.set()

    h = threading.Thread(target=holder)
    h.start()
    holding.wait()
    v = threading.Thread(target=verifier)
    v.start()
    assert not done.wait(0.05) and out == []
    assert msg.message_id not in m._seen
    release.set()
    h.join()
    v.join()
    assert out == [True] and msg.message_id in m._seen
