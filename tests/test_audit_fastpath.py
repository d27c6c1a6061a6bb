"""The loggers' fast path: one native call per authorization entry (``AuditChain``), events
whose ``data``/``timestamp`` are materialised on first access. Everything must be identical
to the original's way of building, hashing and writing the event (API.md 9-10)."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import pickle
import re
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import proxilion.audit.logger as logger_mod
from original_audit import GENESIS, dumps
from proxilion import _core, _reference
from proxilion.audit import (
    AuditEventData,
    AuditEventV2,
    AuditLogger,
    EventType,
    InMemoryAuditLogger,
    LoggerConfig,
    MerkleTree,
    RedactionConfig,
    RotationPolicy,
    create_authorization_event,
    redact_sensitive_data,
    reset_sequence,
)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MIN_US = -62_135_596_800_000_000
MAX_US = 253_402_300_799_999_999
ID = "0190a1b2-c3d4-7e5f-8a9b-00000000002a"

text = st.text(
    alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=8
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e-05, 1e16])
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30), floats, text)
values = st.recursive(
    scalars,
    lambda c: st.one_of(
        st.lists(c, max_size=3), st.tuples(c), st.dictionaries(text, c, max_size=3)
    ),
    max_leaves=8,
)
auth_inputs = st.fixed_dictionaries(
    {
        "user_id": st.one_of(text, st.integers(), st.none()),
        "user_roles": st.one_of(st.lists(text, max_size=3), st.tuples(text)),
        "tool_name": st.one_of(text, st.integers()),
        "tool_arguments": st.dictionaries(text, values, max_size=4),
        "allowed": st.one_of(st.booleans(), st.integers(0, 2)),
        "reason": st.one_of(st.none(), text),
        "policies_evaluated": st.one_of(st.none(), st.lists(text, max_size=2), st.just(())),
        "session_id": st.one_of(st.none(), text),
        "user_attributes": st.one_of(st.none(), st.dictionaries(text, values, max_size=3)),
        "agent_id": st.one_of(st.none(), st.just(""), text),
        "agent_capabilities": st.one_of(st.none(), st.lists(text, max_size=2)),
        "agent_trust_score": st.one_of(st.none(), floats),
        "execution_result": st.one_of(st.none(), st.dictionaries(text, values, max_size=2)),
    }
)
# Positional order of AuditChain.append_authorization after the sequence number.
ORDER = [
    "user_id",
    "user_roles",
    "tool_name",
    "tool_arguments",
    "allowed",
    "reason",
    "policies_evaluated",
    "session_id",
    "user_attributes",
    "agent_id",
    "agent_capabilities",
    "agent_trust_score",
    "execution_result",
]


def iso(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).isoformat()


def original_data(inp: dict[str, Any], tool_us: int) -> AuditEventData:
    """``_authorization_data`` exactly as the original SDK builds it."""
    return AuditEventData(
        event_type=EventType.AUTHORIZATION_GRANTED
        if inp["allowed"]
        else EventType.AUTHORIZATION_DENIED,
        user_id=inp["user_id"],
        user_roles=list(inp["user_roles"]),
        session_id=inp["session_id"],
        user_attributes=dict(inp["user_attributes"] or {}),
        agent_id=inp["agent_id"],
        agent_capabilities=list(inp["agent_capabilities"] or []),
        agent_trust_score=inp["agent_trust_score"],
        tool_name=inp["tool_name"],
        tool_arguments=dict(inp["tool_arguments"]),
        tool_timestamp=EPOCH + timedelta(microseconds=tool_us),
        authorization_allowed=inp["allowed"],
        authorization_reason=inp["reason"],
        policies_evaluated=list(inp["policies_evaluated"] or []),
        authorization_metadata={},
        execution_result=inp["execution_result"],
        error_message=None,
    )


def original_hash_and_line(
    inp: dict[str, Any], seq: int, ts_us: int, tool_us: int, prev: str, index: int
) -> tuple[str, str]:
    """The original's hash and JSONL line, straight from ``json.dumps`` and ``hashlib``."""
    canonical = {
        "event_id": ID,
        "timestamp": iso(ts_us),
        "sequence_number": seq,
        "data": original_data(inp, tool_us).to_dict(),
        "previous_hash": prev,
    }
    h = "sha256:" + hashlib.sha256(dumps(canonical).encode("utf-8")).hexdigest()
    return h, dumps(dict(canonical, event_hash=h, merkle_index=index)) + "\n"


class Sink:
    """A writer that is not the native class: any object with ``enqueue(bytes) -> int``."""

    def __init__(self, fail: bool = False) -> None:
        self.lines: list[bytes] = []
        self.fail = fail

    def enqueue(self, data: bytes) -> int:
        if self.fail:
            raise OSError("disk full")
        self.lines.append(bytes(data))
        return len(self.lines)


def args_of(inp: dict[str, Any]) -> list[Any]:
    return [inp[k] for k in ORDER]


@settings(max_examples=120, deadline=None)
@given(
    auth_inputs,
    st.integers(0, 10**25),
    st.integers(MIN_US, MAX_US),
    st.integers(MIN_US, MAX_US),
    st.booleans(),
)
def test_fast_path_is_byte_identical_to_the_original(
    inp: dict[str, Any], seq: int, ts_us: int, tool_us: int, second: bool
) -> None:
    for mod in (_core, _reference):
        chain = mod.AuditChain(AuditEventV2)
        prev = GENESIS
        if second:  # link to a previous entry, Merkle index 1
            first = chain.append_authorization(1, "u", [], "t", {}, True)
            prev = first.event_hash
        sink = Sink()
        event, ticket = chain.write_authorization(
            sink, seq, *args_of(inp), event_id=ID, timestamp_us=ts_us, tool_timestamp_us=tool_us
        )
        want_hash, want_line = original_hash_and_line(inp, seq, ts_us, tool_us, prev, int(second))
        assert (event.event_hash, event.previous_hash, event.merkle_index) == (
            want_hash,
            prev,
            int(second),
        )
        assert sink.lines == [want_line.encode()] and ticket == 1
        assert chain.head == want_hash and chain.length == 1 + second
        # The lazy hash (record) and the materialised one (objects) agree with it.
        assert event.verify_hash()
        assert "data" not in event.__dict__
        assert dumps(event.to_dict()) == want_line[:-1]
        assert event.verify_hash() and event.compute_hash() == want_hash
        # The same event built the original way.
        old = AuditEventV2(
            data=original_data(inp, tool_us),
            previous_hash=prev,
            event_id=ID,
            timestamp=EPOCH + timedelta(microseconds=ts_us),
            sequence_number=seq,
        )
        assert old.compute_hash() == want_hash
        assert dumps(dataclasses.asdict(old.data)) == dumps(dataclasses.asdict(event.data))


@settings(max_examples=60, deadline=None)
@given(auth_inputs, st.integers(0, 10**6), st.integers(0, 2**52))
def test_native_and_reference_chains_agree(inp: dict[str, Any], seq: int, ts_us: int) -> None:
    out = []
    for mod in (_core, _reference):
        chain = mod.AuditChain(AuditEventV2, "sha256", 2)
        events = [
            chain.append_authorization(
                seq + i, *args_of(inp), event_id=f"id-{i}", timestamp_us=ts_us + i
            )
            for i in range(3)
        ]
        out.append(
            (
                [
                    (e.event_hash, e.previous_hash, e.merkle_index, dumps(e.to_dict()))
                    for e in events
                ],
                chain.head,
                chain.base,
                chain.length,
                chain.dropped,
                [e.event_id for e in chain.events()],
                chain.take_leaves(),
            )
        )
    assert out[0] == out[1]
    assert out[0][2] == out[0][0][0][0]  # the dropped event's hash is the base


def test_lazy_event_behaves_like_a_built_one(impl: ModuleType) -> None:
    chain = impl.AuditChain(AuditEventV2)
    args = {"q": [1, 2], "n": 3}
    roles = ["analyst"]
    event = chain.append_authorization(
        7,
        "u",
        roles,
        "db",
        args,
        True,
        "ok",
        ["P"],
        "s",
        {"dept": "x"},
        "agent",
        ["read"],
        0.5,
        {"success": True},
        event_id=ID,
        timestamp_us=1_738_324_800_000_000,
        tool_timestamp_us=1_738_324_800_000_001,
    )
    assert type(event) is AuditEventV2
    # Top-level containers are the original's copies: later changes by the caller do not
    # reach the event; nested values are shared, as in the original.
    args["n"] = 99
    roles.append("admin")
    assert event.verify_hash()
    assert event.timestamp == datetime(2025, 1, 31, 12, 0, tzinfo=timezone.utc)
    assert event.to_dict()["timestamp"] == "2025-01-31T12:00:00+00:00"
    data = event.data
    assert data is event.data
    assert data.tool_timestamp.isoformat() == "2025-01-31T12:00:00.000001+00:00"
    assert (data.event_type, data.user_roles, data.tool_arguments) == (
        EventType.AUTHORIZATION_GRANTED,
        ["analyst"],
        {"q": [1, 2], "n": 3},
    )
    assert (data.agent_capabilities, data.policies_evaluated, data.authorization_metadata) == (
        ["read"],
        ["P"],
        {},
    )
    again = AuditEventV2.from_dict(json.loads(event.to_json()))
    assert again == event and again.verify_hash()
    assert dataclasses.replace(event) == event
    for clone in (copy.copy(event), copy.deepcopy(event), pickle.loads(pickle.dumps(event))):
        assert clone == event and clone.verify_hash()
    with pytest.raises(AttributeError, match="'AuditEventV2' object has no attribute 'nope'"):
        event.nope  # noqa: B018
    assert not hasattr(event, "nope")
    # Tampering with the materialised data is detected, as with a built event.
    data.tool_arguments["n"] = 4
    assert not event.verify_hash()
    # A shared nested value changed by the caller: detected too (the original shares it).
    other = chain.append_authorization(8, "u", [], "t", args, True)
    args["q"].append(3)
    assert not other.verify_hash()
    assert "data" not in other.__dict__


def test_chain_state_api(impl: ModuleType) -> None:
    chain = impl.AuditChain(AuditEventV2, "sha256", 2)
    assert (chain.algorithm, chain.head, chain.base, chain.length, chain.leaf_count) == (
        "sha256",
        GENESIS,
        GENESIS,
        0,
        0,
    )
    a = chain.append_authorization(1, "u", [], "t", {}, True)
    b = create_authorization_event("u", [], "t", {}, False, previous_hash=a.event_hash)
    b.compute_hash()
    chain.push(b)  # generic path: no Merkle leaf
    assert chain.head == b.event_hash and chain.leaf_count == 1
    c = chain.append_authorization(3, "u", [], "t", {}, True)
    assert c.merkle_index == 1 and c.previous_hash == b.event_hash
    assert chain.events() == [b, c] and chain.dropped == 1 and chain.base == a.event_hash
    assert chain.event(0) is None and chain.event(1) is b and chain.event(2) is c
    assert chain.event(3) is None and chain.event(-1) is None
    assert chain.add_leaf("x") == 2
    assert chain.take_leaves() == [a.event_hash, c.event_hash, "x"] and chain.leaf_count == 0
    chain.resume("sha256:" + "1" * 64, 10)
    assert (chain.head, chain.base, chain.length, chain.dropped, chain.events()) == (
        "sha256:" + "1" * 64,
        "sha256:" + "1" * 64,
        10,
        10,
        [],
    )
    assert repr(chain) == "AuditChain(algorithm='sha256', length=10, retained=0)"
    blake = impl.AuditChain(AuditEventV2, "blake3")
    assert blake.genesis == "blake3:" + "0" * 64


def test_bad_input_is_a_named_error_and_leaves_the_chain_unchanged(impl: ModuleType) -> None:
    chain = impl.AuditChain(AuditEventV2)
    with pytest.raises(ValueError, match="algorithm must be 'sha256' or 'blake3', got 'md5'"):
        impl.AuditChain(AuditEventV2, "md5")
    with pytest.raises(ValueError, match="max_events must be a positive int or None, got 0"):
        impl.AuditChain(AuditEventV2, "sha256", 0)
    with pytest.raises(OverflowError):
        impl.AuditChain(AuditEventV2, "sha256", -1)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError, match="Circular reference detected"):
        chain.append_authorization(1, "u", [], "t", {"c": cyclic}, True)
    with pytest.raises(TypeError):
        chain.append_authorization(1, "u", [], "t", {"k": {1: 1, "a": 2}}, True)
    with pytest.raises(TypeError):
        chain.append_authorization(1, "u", 5, "t", {}, True)  # list(5)
    with pytest.raises(TypeError):
        chain.append_authorization(1, "u", [], "t", {}, True, event_id=5)  # type: ignore[arg-type]
    for bad in (MAX_US + 1, MIN_US - 1):
        with pytest.raises(ValueError, match="outside the years 1-9999"):
            chain.append_authorization(1, "u", [], "t", {}, True, timestamp_us=bad)
    with pytest.raises(OSError, match="disk full"):
        chain.write_authorization(Sink(fail=True), 1, "u", [], "t", {}, True)
    assert (chain.head, chain.length, chain.leaf_count, chain.events()) == (GENESIS, 0, 0, [])
    with pytest.raises(ValueError, match="an authorization record has 15 items, got 2"):
        impl.audit_authorization_hash((1, 2), "e", None, 1, GENESIS)
    with pytest.raises(ValueError, match="Cannot compute root of empty tree"):
        impl.audit_merkle_root([])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(text, st.sampled_from(["sha256:", "sha256:sha256:ab", "x"])), max_size=9))
def test_merkle_root_matches_the_original_tree(leaves: list[str]) -> None:
    def pair(a: str, b: str) -> str:
        t = a.replace("sha256:", "") + b.replace("sha256:", "")
        return "sha256:" + hashlib.sha256(t.encode("utf-8", "surrogatepass")).hexdigest()

    def root(level: list[str]) -> str:
        while len(level) > 1:
            if len(level) % 2:
                level = [*level, level[-1]]
            level = [pair(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        return level[0]

    encodable = all(not any(0xD800 <= ord(c) <= 0xDFFF for c in x) for x in leaves)
    if not leaves or (len(leaves) > 1 and not encodable):
        for mod in (_core, _reference):
            with pytest.raises((ValueError, UnicodeEncodeError)):
                mod.audit_merkle_root(leaves)
        return
    want = root(list(leaves))
    assert _core.audit_merkle_root(leaves) == _reference.audit_merkle_root(leaves) == want
    tree = MerkleTree()
    for leaf in leaves:
        tree.add_leaf(leaf)
    assert tree.compute_root() == want == tree.root


@pytest.mark.backend
def test_in_memory_logger_batches_sequence_and_verify() -> None:
    reset_sequence(41)
    logger = InMemoryAuditLogger(batch_size=3)
    other = InMemoryAuditLogger()
    events = [
        logger.log_authorization(f"u{i}", ["r"], "t", {"i": i}, i % 2 == 0, agent_id="a")
        for i in range(7)
    ]
    assert [e.sequence_number for e in events] == list(range(42, 49))
    assert other.log_authorization("x", [], "t", {}, True).sequence_number == 49  # global
    assert [e.merkle_index for e in events] == [0, 1, 2, 0, 1, 2, 0]
    assert events[0].previous_hash == GENESIS
    assert all(events[i].previous_hash == events[i - 1].event_hash for i in range(1, 7))
    b1, b2 = logger.chain.batches
    tree = MerkleTree()
    for e in events[:3]:
        tree.add_event(e)
    assert b1.merkle_root == tree.compute_root() and b2.previous_batch_root == b1.merkle_root
    assert logger.events == events and list(logger.chain.chain) == events
    assert logger.verify().valid and logger.verify().verified_count == 7
    events[4].data.authorization_reason = "edited"
    r = logger.verify()
    assert (r.valid, r.error_message, r.error_index, r.verified_count) == (
        False,
        "Invalid hash at index 4: event tampered",
        4,
        4,
    )
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        logger.log_authorization("u", [], "t", {}, True, bogus=1)  # type: ignore[call-arg]


@pytest.mark.backend
def test_in_memory_logger_memory_bound() -> None:
    assert InMemoryAuditLogger().max_events is None
    logger = InMemoryAuditLogger(batch_size=4, max_events=5)
    events = [logger.log_authorization("u", [], "t", {"i": i}, True) for i in range(12)]
    assert logger.events == events[-5:] and list(logger.chain.chain) == events[-5:]
    assert logger.chain.chain.length == 12
    r = logger.verify()
    assert r.valid and r.verified_count == 5
    logger.clear()
    assert logger.events == [] and logger.verify().verified_count == 0
    logger.log_authorization("u", [], "t", {}, True)
    assert logger.events[0].previous_hash == GENESIS
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="max_events must be a positive int or None"):
            InMemoryAuditLogger(max_events=bad)  # type: ignore[arg-type]


@pytest.mark.backend
def test_in_memory_logger_threads() -> None:
    logger = InMemoryAuditLogger(batch_size=7)

    def work(t: int) -> None:
        for i in range(50):
            logger.log_authorization(f"u{t}", [], "t", {"i": i}, True)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = logger.events
    seqs = [e.sequence_number for e in events]
    assert len(events) == 200 and seqs == sorted(seqs) and len(set(seqs)) == 200
    assert logger.verify().valid
    assert sum(b.event_count for b in logger.chain.batches) == 196  # 28 full batches


@pytest.mark.backend
def test_redaction_matches_the_built_event_path(tmp_path: Path) -> None:
    config = RedactionConfig.default()
    inp = {
        "tool_arguments": {"to": "alice@example.com", "password": "pw", "n": ["ssn 123-45-6789"]},
        "user_attributes": {"api_key": "k-1"},
        "execution_result": {"token": "abc", "out": 1},
    }
    mem = InMemoryAuditLogger(redaction_config=config).log_authorization(
        "u",
        [],
        "t",
        inp["tool_arguments"],
        True,
        user_attributes=inp["user_attributes"],
        execution_result=inp["execution_result"],
    )
    cfg = LoggerConfig(tmp_path / "a.jsonl", RotationPolicy.NONE, redaction_config=config)
    with AuditLogger(cfg) as lg:
        filed = lg.log_authorization(
            "u",
            [],
            "t",
            inp["tool_arguments"],
            True,
            user_attributes=inp["user_attributes"],
            execution_result=inp["execution_result"],
        )
    line = (tmp_path / "a.jsonl").read_text().splitlines()[0]
    assert line == filed.to_json()
    for event in (mem, filed):
        d = event.data
        assert d.tool_arguments == redact_sensitive_data(inp["tool_arguments"], config)
        assert d.user_attributes == redact_sensitive_data(inp["user_attributes"], config)
        assert d.execution_result == redact_sensitive_data(inp["execution_result"], config)
        assert "alice@example.com" not in event.to_json() and event.verify_hash()
    assert inp["tool_arguments"]["password"] == "pw"  # the caller's dict is untouched


@pytest.mark.backend
def test_file_lines_are_the_returned_events(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    with AuditLogger(LoggerConfig(p, RotationPolicy.NONE, batch_size=2)) as lg:
        events = [
            lg.log_authorization(f"u{i}", ["r"], "t", {"x": 1.5, "é": [None]}, i % 2 == 0)
            for i in range(5)
        ]
        assert lg.chain.chain.verify().valid
    lines = p.read_text().splitlines()
    assert lines[:5] == [e.to_json() for e in events]
    assert [e.merkle_index for e in events] == [0, 1, 0, 1, 0]
    assert json.loads(lines[5])["_type"] == "batch_marker"


def test_rotation_periods() -> None:
    fmts = {
        RotationPolicy.DAILY: "%Y%m%d",
        RotationPolicy.HOURLY: "%Y%m%d_%H",
        RotationPolicy.WEEKLY: "%Y_W%W",
    }
    start = datetime(2023, 12, 20, 5, 30)
    for rotation, fmt in fmts.items():
        for k in range(0, 24 * 40, 7):
            now = start + timedelta(hours=k, minutes=k % 60, microseconds=k)
            a, b = logger_mod._period(now, rotation)
            suffix = now.strftime(fmt)
            assert a <= now < b
            assert a.strftime(fmt) == suffix == (b - timedelta(microseconds=1)).strftime(fmt)
            assert b.strftime(fmt) != suffix


class FakeTime:
    def __init__(self, t: float) -> None:
        self.t = t

    def time(self) -> float:
        return self.t


def test_rotation_suffix_cache_switches_at_the_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    midnight = datetime(2025, 1, 31).timestamp() + 86_400  # local midnight, Feb 1st
    fake = FakeTime(midnight - 0.5)
    monkeypatch.setattr(logger_mod, "time", fake)
    with AuditLogger(LoggerConfig(tmp_path / "a.jsonl", RotationPolicy.DAILY)) as lg:
        assert lg._current_suffix() == "20250131"
        assert lg._period_to == midnight
        fake.t = midnight - 1e-6
        assert lg._current_suffix() == "20250131"
        fake.t = midnight
        assert lg._current_suffix() == "20250201"
        fake.t = midnight - 10  # the clock stepped back: recomputed, not cached
        assert lg._current_suffix() == "20250131"
        lg.log_authorization("u", [], "t", {}, True)
        fake.t = midnight + 5
        lg.log_authorization("u", [], "t", {}, True)
        assert [f.name for f in lg.files()] == ["a_20250131.jsonl", "a_20250201.jsonl"]
        assert lg.verify().valid


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_processes_draw_different_ids() -> None:
    chain = _core.AuditChain(AuditEventV2)
    chain.append_authorization(1, "u", [], "t", {}, True)  # the random block is read
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            event = chain.append_authorization(2, "u", [], "t", {}, True)
            os.write(w, event.event_id.encode())
        finally:
            os._exit(0)
    os.close(w)
    child = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    parent = chain.append_authorization(2, "u", [], "t", {}, True).event_id
    assert len(child) == 36 and child[-12:] != parent[-12:]


def naive_redact(data: dict[str, Any], config: RedactionConfig) -> dict[str, Any]:
    """The original algorithm: every pattern substituted in every string."""

    def text_(t: str) -> str:
        for p in config.patterns:
            if config.hash_pii:
                t = p.sub(lambda m: short(m.group(0)), t)
            else:
                t = p.sub(lambda _m: config.placeholder, t)
        return t

    def short(t: str) -> str:
        return f"[HASH:{hashlib.sha256(t.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}]"

    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(k, str) and k.lower() in config.field_names:
            out[k] = short(v) if config.hash_pii and isinstance(v, str) else config.placeholder
        elif isinstance(v, dict):
            out[k] = naive_redact(v, config)
        elif isinstance(v, list):
            out[k] = [
                naive_redact(i, config)
                if isinstance(i, dict)
                else text_(i)
                if isinstance(i, str)
                else i
                for i in v
            ]
        elif isinstance(v, str):
            out[k] = text_(v)
        else:
            out[k] = v
    return out


CUSTOM_PATTERNS = [
    re.compile(r"x-\d+"),
    re.compile(r"(?x) key \s* = \s* \w+"),
    re.compile(r"a|bb@"),
    re.compile(r"(?i:zz)@q"),
    re.compile(r"(?i)k@"),
    re.compile(r"\b@?\b"),
    re.compile(r"(ab)\1-"),
]
redact_text = st.text(
    alphabet=st.sampled_from(list("ab@.-xkKQqz=1234567890 _\u017f\u212a")), max_size=30
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["a", "Password", "b", "token", "c"]),
        st.one_of(redact_text, st.lists(st.one_of(redact_text, st.integers()), max_size=3)),
        max_size=4,
    ),
    st.booleans(),
    st.lists(st.sampled_from(CUSTOM_PATTERNS), max_size=4),
)
def test_redaction_shortcuts_change_nothing(
    data: dict[str, Any], default: bool, custom: list[re.Pattern[str]]
) -> None:
    config = RedactionConfig.default()
    if not default:
        config = RedactionConfig(patterns=custom, field_names={"token"}, placeholder="<\\1>")
    assert redact_sensitive_data(data, config) == naive_redact(data, config)
    more = RedactionConfig.default()
    more.patterns += custom
    assert redact_sensitive_data(data, more) == naive_redact(data, more)
