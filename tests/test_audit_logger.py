"""AuditLogger and the in-memory chain API (API.md 9), including the seed's example 11."""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from original_audit import GENESIS, dumps, original_verify_jsonl_chain
from proxilion.audit import (
    GENESIS_HASH,
    AuditEventV2,
    AuditLogger,
    BatchedHashChain,
    CallbackExporter,
    ChainVerificationResult,
    HashChain,
    InMemoryAuditLogger,
    LoggerConfig,
    MultiExporter,
    RedactionConfig,
    RotationPolicy,
    StreamExporter,
    create_authorization_event,
    read_jsonl_events,
    redact_sensitive_data,
    reset_sequence,
    verify_jsonl_chain,
    verify_log,
)
from proxilion.audit.checkpoint import generate_signing_key, load_checkpoints, public_key_bytes

pytestmark = pytest.mark.backend


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def log_some(logger: AuditLogger, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        logger.log_authorization(
            f"user_{i}",
            ["analyst"],
            "database_query",
            {"query": f"SELECT {i}", "n": i, "ratio": i / 7},
            allowed=i % 3 != 0,
            reason=None if i % 3 else "denied by policy",
            policies_evaluated=["DocPolicy"],
            agent_id="agent-1" if i % 2 else None,
            agent_trust_score=0.5,
        )


def config(path: Path, **kw: Any) -> LoggerConfig:
    kw.setdefault("rotation", RotationPolicy.NONE)
    return LoggerConfig(log_path=path, **kw)


def test_seed_example_11(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = LoggerConfig.default("./logs/audit.jsonl")
    logger = AuditLogger(config)
    logger.log_authorization("user_123", ["analyst"], "read_file", {"path": "/a"}, True)
    logger.log_authorization("user_123", ["analyst"], "delete_file", {"path": "/a"}, False)
    result = logger.verify()
    assert result.valid
    assert result.error is None and result.error_message is None
    assert result.verified_count == 2
    (path,) = logger.files()
    assert re.fullmatch(r"audit_\d{8}\.jsonl", path.name)
    # Edit the file afterwards: the original would still say valid; we do not.
    text = path.read_text()
    path.write_text(text.replace('"allowed":false', '"allowed":true'))
    result = logger.verify()
    assert not result.valid
    assert result.error == result.error_message
    assert result.error.startswith(f"{path.name} line 2: invalid hash")
    assert (result.status, result.kind, result.line, result.error_index) == (
        "tampered",
        "hash",
        2,
        1,
    )
    assert isinstance(result, ChainVerificationResult)


def test_lines_have_the_original_format_and_verify_with_the_original(tmp_path: Path) -> None:
    p = tmp_path / "audit.jsonl"
    with AuditLogger(config(p, batch_size=4)) as logger:
        log_some(logger, 6)
    lines = p.read_text().splitlines()
    assert len(lines) == 7  # 6 entries, then the marker of the partial batch written by close
    for line in lines[:6]:
        d = json.loads(line)
        assert list(d) == sorted(d)
        assert set(d) == {
            "data",
            "event_hash",
            "event_id",
            "merkle_index",
            "previous_hash",
            "sequence_number",
            "timestamp",
        }
        assert line == dumps(d)
        canonical = {k: d[k] for k in ("event_id", "timestamp", "sequence_number", "data")}
        canonical["previous_hash"] = d["previous_hash"]
        assert set(d["data"]) == {
            "event_type",
            "user",
            "agent",
            "tool_call",
            "authorization",
            "execution_result",
            "error_message",
        }
    assert [json.loads(x)["merkle_index"] for x in lines[:6]] == [0, 1, 2, 3, 0, 1]
    marker = json.loads(lines[6])
    assert marker["_type"] == "batch_marker" and marker["batch"]["event_count"] == 2
    assert ", " in lines[6] and ": " in lines[6]  # default separators, as the original
    assert json.loads(lines[0])["previous_hash"] == GENESIS
    assert original_verify_jsonl_chain(p) == (True, None)
    assert verify_jsonl_chain(p) == (True, None)
    events = list(read_jsonl_events(p))
    assert len(events) == 6 and all(e.verify_hash() for e in events)


def test_resume_continues_one_chain_across_processes(tmp_path: Path) -> None:
    p = tmp_path / "audit.jsonl"
    reset_sequence(0)
    with AuditLogger(config(p)) as a:
        log_some(a, 3)
    reset_sequence(0)  # a new process starts its counter again
    with AuditLogger(config(p)) as b:
        log_some(b, 3, start=3)
        assert b.verify().verified_count == 6
    seqs = [e.sequence_number for e in read_jsonl_events(p)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    assert original_verify_jsonl_chain(p) == (True, None)


def test_torn_tail_is_set_aside_on_resume(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = tmp_path / "audit.jsonl"
    with AuditLogger(config(p)) as a:
        log_some(a, 4)
    with open(p, "ab") as f:
        f.write(b'{"data":{"agent":nu')
    r = verify_log(p)
    assert (r.status, r.kind, r.verified_count) == ("torn", "torn", 4)
    with caplog.at_level(logging.WARNING, logger="proxilion.audit"):
        b = AuditLogger(config(p))
    assert "torn line" in caplog.text
    assert (tmp_path / "audit.jsonl.torn").read_bytes() == b'{"data":{"agent":nu\n'
    log_some(b, 2)
    r = b.verify()
    assert r.valid and r.verified_count == 6
    b.close()


def test_daily_rotation_is_verified_as_one_chain(tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 1, 30, 23, 0))
    logger = AuditLogger(LoggerConfig.default(tmp_path / "audit.jsonl"), clock=clock)
    log_some(logger, 3)
    clock.now += timedelta(hours=2)
    log_some(logger, 3, start=3)
    clock.now += timedelta(days=1)
    log_some(logger, 2, start=6)
    files = logger.files()
    assert [f.name for f in files] == [
        "audit_20250130.jsonl",
        "audit_20250131.jsonl",
        "audit_20250201.jsonl",
    ]
    r = logger.verify()
    assert r.valid and r.verified_count == 8 and r.files == [str(f) for f in files]
    logger.close()
    # A file of the set removed or swapped is named.
    r = verify_log([files[0], files[2]])
    assert (r.kind, r.file, r.line) == ("link", str(files[2]), 1)
    a, b = files[1].read_bytes(), files[2].read_bytes()
    files[1].write_bytes(b)
    files[2].write_bytes(a)
    r = AuditLogger(LoggerConfig.default(tmp_path / "x.jsonl")).verify()
    assert r.valid and r.verified_count == 0  # another log: no files yet
    r = verify_log(files)
    assert (r.valid, r.kind, r.file, r.line) == (False, "link", str(files[1]), 1)


def test_hourly_and_weekly_names(tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 1, 31, 13, 5))
    for rot, name in [
        (RotationPolicy.HOURLY, "h_20250131_13.jsonl"),
        (RotationPolicy.WEEKLY, "w_2025_W04.jsonl"),
    ]:
        stem = name.split("_")[0]
        with AuditLogger(config(tmp_path / f"{stem}.jsonl", rotation=rot), clock=clock) as lg:
            log_some(lg, 1)
            assert [f.name for f in lg.files()] == [name]


def test_size_rotation_with_compression(tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 1, 31, 12, 0, 0))
    cfg = config(tmp_path / "audit.jsonl", rotation=RotationPolicy.SIZE, max_size_mb=0.002)
    logger = AuditLogger(cfg, clock=clock)
    for i in range(12):
        log_some(logger, 1, start=i)
        clock.now += timedelta(seconds=1 if i % 2 else 0)
    files = logger.files()
    assert len(files) >= 3
    assert files[-1].name == "audit.jsonl"
    assert all(f.name.endswith(".jsonl.gz") for f in files[:-1])
    assert all(f.read_bytes()[:2] == b"\x1f\x8b" for f in files[:-1])
    r = logger.verify()
    assert r.valid and r.verified_count == 12
    logger.close()
    # Entries of a rotated, compressed file edited: still caught.
    with gzip.open(files[0], "rt") as f:
        text = f.read()
    with gzip.open(files[0], "wt") as f:
        f.write(text.replace("SELECT 0", "SELECT 9"))
    r = verify_log(files)
    assert (r.kind, r.file, r.line) == ("hash", str(files[0]), 1)


def test_redaction(tmp_path: Path) -> None:
    p = tmp_path / "audit.jsonl"
    cfg = config(p, redaction_config=RedactionConfig.default())
    with AuditLogger(cfg) as logger:
        event = logger.log_authorization(
            "u",
            [],
            "send",
            {"to": "alice@example.com", "password": "hunter2", "note": "ssn 123-45-6789"},
            True,
            user_attributes={"api_key": "k-123"},
            execution_result={"token": "abc", "out": ["card 4111111111111111"]},
        )
    text = p.read_text()
    for secret in ["alice@example.com", "hunter2", "123-45-6789", "k-123", "4111111111111111"]:
        assert secret not in text
    args = event.data.tool_arguments
    assert re.fullmatch(r"\[HASH:[0-9a-f]{16}\]", args["password"])
    assert args["to"].startswith("[HASH:")
    assert event.data.execution_result == {
        "token": event.data.execution_result["token"],
        "out": [event.data.execution_result["out"][0]],
    }
    assert "[HASH:" in event.data.execution_result["out"][0]
    plain = RedactionConfig(field_names={"secret"}, hash_pii=False)
    assert redact_sensitive_data({"Secret": "x", "a": {"secret": 1}}, plain) == {
        "Secret": "[REDACTED]",
        "a": {"secret": "[REDACTED]"},
    }
    assert verify_log(p).valid


def test_checkpoints_detect_rewrites_and_truncation(tmp_path: Path) -> None:
    key = generate_signing_key()
    pub = public_key_bytes(key)
    p = tmp_path / "audit.jsonl"
    cps = tmp_path / "checkpoints.jsonl"
    logger = AuditLogger(config(p))
    log_some(logger, 5)
    cp5 = logger.checkpoint(key, save_to=cps)
    log_some(logger, 3, start=5)
    logger.checkpoint(key, save_to=cps)
    logger.close()
    saved = load_checkpoints(cps)
    assert [c.tree_size for c in saved] == [5, 8]
    assert saved[0] == cp5 and cp5.verify_signature(pub)
    r = verify_log(p, checkpoints=saved, public_key=pub)
    assert r.valid and r.checkpoints_checked == 2
    # Wrong key, altered checkpoint: the signature fails.
    other = public_key_bytes(generate_signing_key())
    r = verify_log(p, checkpoints=saved, public_key=other)
    assert (r.valid, r.kind) == (False, "checkpoint_signature")
    forged = type(cp5)(**{**cp5.__dict__, "tree_size": 4})
    assert verify_log(p, checkpoints=[forged], public_key=pub).kind == "checkpoint_signature"
    with pytest.raises(ValueError, match="need the public_key"):
        verify_log(p, checkpoints=saved)
    # Truncated tail.
    lines = p.read_text().splitlines(keepends=True)
    p.write_text("".join(lines[:6]))
    r = verify_log(p, checkpoints=saved, public_key=pub)
    assert (r.valid, r.kind) == (False, "truncated")
    # Refuses to sign a broken log.
    p.write_text("".join(lines[:3]) + lines[4])
    broken = AuditLogger(config(p))
    with pytest.raises(ValueError, match="refusing to checkpoint a log that does not verify"):
        broken.checkpoint(key)


def test_fsync_policies(tmp_path: Path) -> None:
    with AuditLogger(config(tmp_path / "a.jsonl", fsync="always")) as lg:
        log_some(lg, 3)
        stats = lg._writer.stats()
        assert stats["syncs"] == 3 and stats["synced"] == stats["enqueued"]
    with AuditLogger(config(tmp_path / "b.jsonl", fsync="never", sync_writes=False)) as lg:
        log_some(lg, 3)
        assert (tmp_path / "b.jsonl").read_bytes() == b""  # still buffered
        assert lg._writer.stats()["syncs"] == 0
        lg.flush()
        assert len((tmp_path / "b.jsonl").read_text().splitlines()) == 3
    with AuditLogger(config(tmp_path / "c.jsonl", fsync_interval=3600.0)) as lg:
        log_some(lg, 3)
        stats = lg._writer.stats()
        assert stats["syncs"] == 0 and stats["written"] == stats["enqueued"]
    for bad in [{"fsync": "sometimes"}, {"fsync_interval": -1.0}, {"batch_size": 0}]:
        with pytest.raises(ValueError):
            config(tmp_path / "d.jsonl", **bad)
    with pytest.raises(ValueError, match="max_size_mb"):
        config(tmp_path / "d.jsonl", max_size_mb=0)
    with pytest.raises(ValueError, match="hash_algorithm"):
        config(tmp_path / "d.jsonl", hash_algorithm="md5")


def test_concurrent_writers_keep_one_ordered_chain(tmp_path: Path) -> None:
    p = tmp_path / "audit.jsonl"
    logger = AuditLogger(config(p, fsync="always", memory_events=500))

    def work(t: int) -> None:
        log_some(logger, 40, start=t * 100)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    r = logger.verify()
    assert r.valid and r.verified_count == 160
    assert logger.chain.chain.verify().valid
    seqs = [e.sequence_number for e in read_jsonl_events(p)]
    assert seqs == sorted(seqs)
    logger.close()
    with pytest.raises(ValueError, match="closed"):
        log_some(logger, 1)


def test_memory_is_bounded(tmp_path: Path) -> None:
    with AuditLogger(config(tmp_path / "a.jsonl", memory_events=5)) as lg:
        log_some(lg, 12)
        assert len(list(lg.chain.chain)) == 5
        assert lg.chain.chain.length == 12
        assert lg.chain.chain.verify().valid
        assert lg.chain.chain.get_event(0) is None
        assert lg.chain.chain.get_event(11) is not None
        assert lg.verify().verified_count == 12


def test_blake3_logger(tmp_path: Path) -> None:
    pytest.importorskip("blake3")
    p = tmp_path / "audit.jsonl"
    with AuditLogger(config(p, hash_algorithm="blake3")) as lg:
        log_some(lg, 4)
    r = verify_log(p)
    assert r.valid and r.algorithm == "blake3"
    with pytest.raises(ValueError, match="not a sha256 hash"):
        AuditLogger(config(p))


def test_hash_chain_api_and_messages() -> None:
    chain = HashChain()
    assert chain.verify() == ChainVerificationResult(True, None, None, 0)
    assert chain.genesis_hash == chain.last_hash == GENESIS_HASH == GENESIS
    event = create_authorization_event("u", ["r"], "t", {"a": 1}, True)
    assert event.previous_hash == "GENESIS"
    with pytest.raises(ValueError) as e:
        chain.append(event)
    assert str(e.value) == (
        f"Event previous_hash (GENESIS) doesn't match chain head ({GENESIS_HASH})"
    )
    events = []
    for i in range(4):
        ev = create_authorization_event("u", ["r"], "t", {"i": i}, i % 2 == 0)
        chain.create_and_append(ev)
        events.append(ev)
    assert len(chain) == chain.length == 4
    assert chain.verify().valid and chain.verify().verified_count == 4
    assert chain.get_event(2) is events[2] and chain.get_event(9) is None
    assert chain.get_event_by_hash(events[1].event_hash) is events[1]
    assert chain.get_proof(events[2].event_id) == [events[2].event_hash, events[3].event_hash]
    assert chain.get_proof("nope") == []
    assert [e["event_id"] for e in chain.to_list()] == [e.event_id for e in events]
    events[2].data.tool_arguments["i"] = 99
    r = chain.verify()
    assert (r.valid, r.error_message, r.error_index, r.verified_count) == (
        False,
        "Invalid hash at index 2: event tampered",
        2,
        2,
    )
    assert r.error == r.error_message
    events[2].data.tool_arguments["i"] = 2
    events[3].sequence_number = events[2].sequence_number
    events[3].compute_hash()
    r = chain.verify()
    assert r.error_message == (
        "Sequence number not monotonically increasing at index 3: "
        f"got {events[2].sequence_number}, previous was {events[2].sequence_number}"
    )
    events[1].previous_hash = "sha256:" + "f" * 64
    events[1].compute_hash()
    r = chain.verify()
    assert r.error_message == (
        f"Chain broken at index 1: expected previous_hash {events[0].event_hash}, "
        f"got {events[1].previous_hash}"
    )
    assert (r.error_index, r.verified_count) == (1, 1)
    first = HashChain()
    ev = create_authorization_event("u", [], "t", {}, True, previous_hash=GENESIS_HASH)
    first.append(ev)
    ev.previous_hash = "sha256:" + "1" * 64
    ev.compute_hash()
    assert first.verify().error_message == "First event doesn't link to genesis hash"


def test_batched_chain() -> None:
    with pytest.raises(ValueError):
        BatchedHashChain(0)
    chain = BatchedHashChain(batch_size=3)
    events = [
        chain.append(create_authorization_event("u", [], "t", {"i": i}, True)) for i in range(7)
    ]
    assert [e.merkle_index for e in events] == [0, 1, 2, 0, 1, 2, 0]
    assert events[0].previous_hash == GENESIS_HASH
    assert [b.batch_id for b in chain.batches] == ["batch_1", "batch_2"]
    b1, b2 = chain.batches
    assert (b1.start_sequence, b1.end_sequence, b1.event_count) == (1, 3, 3)
    assert b2.previous_batch_root == b1.merkle_root
    assert json.loads(b1.to_json()) == b1.to_dict()
    proof = chain.get_inclusion_proof(events[4])
    assert proof == {
        "event_hash": events[4].event_hash,
        "batch_id": "batch_2",
        "merkle_root": b2.merkle_root,
        "merkle_index": 1,
    }
    assert chain.get_inclusion_proof(events[6]) is None
    last = chain.finalize_batch()
    assert last is not None and last.event_count == 1 and chain.finalize_batch() is None
    assert chain.chain.verify().valid


def test_event_serialisation_round_trip() -> None:
    event = create_authorization_event(
        "u", ["a"], "t", {"x": [1, 2.5]}, False, reason="no", agent_id="ag", agent_trust_score=0.9
    )
    event.previous_hash = GENESIS_HASH
    h = event.compute_hash()
    assert h.startswith("sha256:") and event.verify_hash()
    d = event.to_dict()
    assert "merkle_index" not in d and d["event_hash"] == h
    assert event.to_json() == dumps(d)
    assert json.loads(event.to_json(pretty=True)) == d
    again = AuditEventV2.from_dict(json.loads(event.to_json()))
    assert again == event and again.verify_hash()
    assert event.to_dict(include_hash=False).keys() == {
        "event_id",
        "timestamp",
        "sequence_number",
        "data",
        "previous_hash",
    }
    assert d["data"]["agent"] == {"agent_id": "ag", "capabilities": [], "trust_score": 0.9}
    assert AuditEventV2(data=event.data, previous_hash="x").verify_hash() is False
    reset_sequence(41)
    assert AuditEventV2(data=event.data, previous_hash="x").sequence_number == 42
    uid = AuditEventV2(data=event.data, previous_hash="x").event_id
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", uid)
    stamp = datetime(2025, 1, 31, 12, 0, tzinfo=timezone.utc)
    assert (
        AuditEventV2(data=event.data, previous_hash="x", timestamp=stamp).to_dict()["timestamp"]
        == "2025-01-31T12:00:00+00:00"
    )


def test_in_memory_logger() -> None:
    logger = InMemoryAuditLogger(batch_size=2, redaction_config=RedactionConfig.default())
    logger.log_authorization("u", [], "t", {"password": "pw"}, True, session_id="s")
    logger.log_authorization("u", [], "t", {}, False, reason="r", agent_id="a")
    assert len(logger.events) == 2
    assert logger.events[0].data.tool_arguments["password"].startswith("[HASH:")
    assert logger.verify().valid and logger.verify().verified_count == 2
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        logger.log_authorization("u", [], "t", {}, True, bogus=1)
    logger.clear()
    assert logger.events == [] and logger.verify().verified_count == 0


def test_exporters(tmp_path: Path) -> None:
    buf = io.StringIO()
    seen: list[AuditEventV2] = []
    event = create_authorization_event("u", [], "t", {}, True, previous_hash=GENESIS_HASH)
    event.compute_hash()
    with MultiExporter([StreamExporter(buf), CallbackExporter(seen.append)]) as ex:
        ex.export_event(event)
        chain = HashChain()
        chain.create_and_append(create_authorization_event("u", [], "t", {}, True))
        ex.export_chain(chain)
    assert len(seen) == 2
    assert buf.getvalue().splitlines()[0] == event.to_json()


def test_resume_refuses_an_unreadable_tail(tmp_path: Path) -> None:
    p = tmp_path / "audit.jsonl"
    p.write_text('{"not": "an entry"\n')
    with pytest.raises(ValueError, match="cannot resume the audit chain"):
        AuditLogger(config(p))
