"""On-disk verification: logs in the original's format verify; every kind of tampering is
named with its file and line; native and reference verifiers agree; unreadable input is
never reported valid."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from original_audit import (
    GENESIS,
    batch_marker,
    dumps,
    original_entry,
    original_lines,
    original_verify_jsonl_chain,
    write,
)
from proxilion import _core, _reference
from proxilion.audit import verify_jsonl_chain

COMPARED = (
    "valid",
    "status",
    "kind",
    "file_index",
    "line",
    "expected",
    "verified_count",
    "markers",
    "restarts",
    "bytes_read",
    "files_read",
    "algorithm",
    "last_hash",
    "root",
    "checkpoints_checked",
    "digests",
)


def run(paths: list[Path], **kw: Any) -> dict[str, Any]:
    """Verify with both backends; they must agree on everything (and on the message unless
    it quotes a JSON or OS error, which each side words its own way)."""
    a = _core.audit_verify_files([str(p) for p in paths], **kw)
    b = _reference.audit_verify_files([str(p) for p in paths], **kw)
    for key in COMPARED:
        assert a[key] == b[key], key
    if a["kind"] not in ("parse", "io"):
        assert a["message"] == b["message"]
        assert a["got"] == b["got"]
    return a


def test_original_log_verifies(tmp_path: Path) -> None:
    lines = original_lines(40)
    lines.insert(20, batch_marker(20, "sha256:" + "1" * 64))
    lines.insert(5, "\n")
    p = write(tmp_path / "audit.jsonl", lines)
    r = run([p])
    assert r["valid"] and r["status"] == "ok" and r["kind"] is None and r["message"] is None
    assert r["verified_count"] == 40
    assert r["markers"] == 1
    assert r["algorithm"] == "sha256"
    assert r["last_hash"] == json.loads(lines[-1])["event_hash"]
    assert r["bytes_read"] == p.stat().st_size
    assert verify_jsonl_chain(p) == (True, None)
    assert original_verify_jsonl_chain(p) == (True, None)


def test_empty_file_and_empty_set_are_valid(tmp_path: Path) -> None:
    p = write(tmp_path / "a.jsonl", [])
    assert run([p])["valid"]
    assert run([])["valid"]


def _edit(line: str, old: str, new: str) -> str:
    assert old in line
    return line.replace(old, new, 1)


def test_edited_field(tmp_path: Path) -> None:
    lines = original_lines(10)
    lines[6] = _edit(lines[6], '"user_id":"user_6"', '"user_id":"user_0"')
    p = write(tmp_path / "audit.jsonl", lines)
    r = run([p])
    assert (r["status"], r["kind"], r["line"], r["verified_count"]) == ("tampered", "hash", 7, 6)
    assert r["message"].startswith("audit.jsonl line 7: invalid hash")
    assert r["got"] == json.loads(lines[6])["event_hash"]
    assert verify_jsonl_chain(p) == (False, "Invalid hash at line 7: event tampered")
    assert original_verify_jsonl_chain(p) == (False, "Invalid hash at line 7: event tampered")


def test_edit_of_a_field_outside_data_and_of_an_added_field(tmp_path: Path) -> None:
    lines = original_lines(4)
    d = json.loads(lines[2])
    d["timestamp"] = "2025-01-31T13:00:00+00:00"
    lines[2] = dumps(d) + "\n"
    r = run([write(tmp_path / "a.jsonl", lines)])
    assert (r["kind"], r["line"]) == ("hash", 3)
    # An extra top-level field is not covered by the original's hash but is by ours.
    lines = original_lines(4)
    d = json.loads(lines[1])
    d["injected"] = "x"
    lines[1] = dumps(d) + "\n"
    r = run([write(tmp_path / "b.jsonl", lines)])
    assert (r["kind"], r["line"]) == ("hash", 2)


def test_deleted_entry(tmp_path: Path) -> None:
    lines = original_lines(10)
    expected = json.loads(lines[3])["event_hash"]
    got = json.loads(lines[5])["previous_hash"]
    del lines[4]
    p = write(tmp_path / "audit.jsonl", lines)
    r = run([p])
    assert (r["kind"], r["line"], r["verified_count"]) == ("link", 5, 4)
    assert (r["expected"], r["got"]) == (expected, got)
    assert "deleted, inserted or reordered" in r["message"]
    assert verify_jsonl_chain(p) == (
        False,
        f"Chain broken at line 5: expected {expected}, got {got}",
    )


def test_inserted_entry(tmp_path: Path) -> None:
    lines = original_lines(10)
    # A well-formed entry with a correct hash of its own, linked to entry 2.
    prev = json.loads(lines[2])["event_hash"]
    _, forged = original_entry(77, prev)
    lines.insert(3, forged)
    r = run([write(tmp_path / "audit.jsonl", lines)])
    assert (r["kind"], r["line"], r["verified_count"]) == ("link", 5, 4)


def test_reordered_entries(tmp_path: Path) -> None:
    lines = original_lines(10)
    lines[7], lines[8] = lines[8], lines[7]
    r = run([write(tmp_path / "audit.jsonl", lines)])
    assert (r["kind"], r["line"], r["verified_count"]) == ("link", 8, 7)


def test_first_entries_removed(tmp_path: Path) -> None:
    lines = original_lines(10)
    r = run([write(tmp_path / "audit.jsonl", lines[3:])])
    assert (r["kind"], r["line"], r["expected"]) == ("genesis", 1, GENESIS)
    assert original_verify_jsonl_chain(tmp_path / "audit.jsonl")[0] is False


def test_torn_tail_reports_the_line_and_keeps_the_entries_before(tmp_path: Path) -> None:
    lines = original_lines(10)
    lines[-1] = lines[-1][:57]
    p = write(tmp_path / "audit.jsonl", lines)
    r = run([p])
    assert (r["status"], r["kind"], r["line"], r["verified_count"]) == ("torn", "torn", 10, 9)
    assert "torn last line (57 bytes without a newline" in r["message"]
    assert "the 9 entries before it verify" in r["message"]
    assert r["last_hash"] == json.loads(lines[8])["event_hash"]


def test_truncated_tail_needs_a_checkpoint(tmp_path: Path) -> None:
    lines = original_lines(12)
    full = run([write(tmp_path / "full.jsonl", lines)])
    cut = write(tmp_path / "cut.jsonl", lines[:9])
    assert run([cut])["valid"]  # a chain alone cannot see entries cut from the end
    r = run([cut], checkpoints=[(12, full["root"])])
    assert (r["status"], r["kind"]) == ("tampered", "truncated")
    assert "the log has 9 entries but a checkpoint covers 12" in r["message"]


def test_forged_rewrite_with_recomputed_hashes_is_caught_by_a_checkpoint(tmp_path: Path) -> None:
    lines = original_lines(12)
    good = run([write(tmp_path / "good.jsonl", lines)])
    checkpoint = (8, run([write(tmp_path / "eight.jsonl", lines[:8])])["root"])
    # The attacker edits entry 5 and recomputes every hash after it: the chain is intact.
    forged = lines[:5]
    prev = json.loads(lines[4])["event_hash"]
    for i in range(5, 12):
        d = json.loads(lines[i])
        if i == 5:
            d["data"]["authorization"]["allowed"] = True
        prev, line = original_entry(i, prev, data=d["data"], merkle_index=d["merkle_index"])
        forged.append(line)
    p = write(tmp_path / "forged.jsonl", forged)
    assert run([p])["valid"]
    assert original_verify_jsonl_chain(p) == (True, None)
    r = run([p], checkpoints=[checkpoint, (12, good["root"])])
    assert (r["status"], r["kind"], r["line"], r["verified_count"]) == (
        "tampered",
        "checkpoint",
        8,
        8,
    )
    assert "checkpoint at tree size 8" in r["message"]
    assert run([tmp_path / "good.jsonl"], checkpoints=[checkpoint, (12, good["root"])])["valid"]


def test_rotated_set_removed_or_swapped_file(tmp_path: Path) -> None:
    lines = original_lines(15)
    a = write(tmp_path / "audit_20250101.jsonl", lines[:5])
    b = write(tmp_path / "audit_20250102.jsonl", lines[5:10])
    c = write(tmp_path / "audit_20250103.jsonl", lines[10:])
    ok = run([a, b, c])
    assert ok["valid"] and ok["verified_count"] == 15 and ok["files_read"] == 3
    r = run([a, c])
    assert (r["kind"], r["file_index"], r["line"]) == ("link", 1, 1)
    assert "a file of the rotated set is missing, swapped or out of order" in r["message"]
    assert r["message"].startswith("audit_20250103.jsonl line 1:")
    r = run([b, a, c])
    assert (r["kind"], r["file_index"], r["line"]) == ("genesis", 0, 1)
    r = run([a, c, b])
    assert (r["kind"], r["file_index"]) == ("link", 1)
    # Last file removed: only a checkpoint notices.
    r = run([a, b], checkpoints=[(15, ok["root"])])
    assert r["kind"] == "truncated"


def test_gzip_rotated_files(tmp_path: Path) -> None:
    lines = original_lines(8)
    gz = tmp_path / "audit.20250101_000000.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write("".join(lines[:4]))
    cur = write(tmp_path / "audit.jsonl", lines[4:])
    r = run([gz, cur])
    assert r["valid"] and r["verified_count"] == 8
    assert r["bytes_read"] == len("".join(lines).encode())


@pytest.mark.parametrize(
    ("content", "kind", "status"),
    [
        (b"\xff\xfe{}\n", "encoding", "tampered"),
        (b"{not json}\n", "parse", "tampered"),
        (b"[1,2]\n", "parse", "tampered"),
        (b'{"a":1,"a":2}\n', "parse", "tampered"),
        (b'{"event_id":"x"}\n', "field", "tampered"),
        (b"\x1c\n", "parse", "tampered"),
        (b"\n\x0b", "torn", "torn"),
        (b"\x1f\x8b\x08garbage that is not gzip\n", "io", "unreadable"),
    ],
)
def test_malformed_input_is_never_valid(
    tmp_path: Path, content: bytes, kind: str, status: str
) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_bytes(content)
    r = run([p])
    assert (r["valid"], r["kind"], r["status"]) == (False, kind, status)
    assert r["message"]


def test_unreadable_paths_fail_closed(tmp_path: Path, impl: ModuleType) -> None:
    for path in [tmp_path / "missing.jsonl", tmp_path]:
        r = impl.audit_verify_files([str(path)])
        assert (r["valid"], r["status"], r["kind"]) == (False, "unreadable", "io")
        assert "cannot read" in r["message"]
    if os.geteuid() != 0:
        locked = write(tmp_path / "locked.jsonl", original_lines(1))
        locked.chmod(0)
        assert impl.audit_verify_files([str(locked)])["status"] == "unreadable"


def test_mixed_algorithms_and_unknown_prefix(tmp_path: Path, impl: ModuleType) -> None:
    lines = original_lines(3)
    d = json.loads(lines[1])
    d["event_hash"] = "md5:" + "0" * 32
    lines[1] = dumps(d) + "\n"
    r = impl.audit_verify_files([str(write(tmp_path / "a.jsonl", lines))])
    assert (r["kind"], r["line"]) == ("field", 2)
    assert "names no known hash algorithm" in r["message"]
    _h, line = impl.audit_event_line("e", "t", 1, {}, GENESIS, None, "blake3")
    r = impl.audit_verify_files([str(write(tmp_path / "b.jsonl", [line.decode()]))])
    assert (r["kind"], r["line"]) == ("genesis", 1)


def test_blake3_log(tmp_path: Path, impl: ModuleType) -> None:
    pytest.importorskip("blake3")
    prev = "blake3:" + "0" * 64
    lines = []
    for i in range(5):
        prev, line = impl.audit_event_line(f"e{i}", "t", i + 1, {"i": i}, prev, i, "blake3")
        lines.append(line.decode())
    r = run([write(tmp_path / "b.jsonl", lines)])
    assert r["valid"] and r["algorithm"] == "blake3" and r["verified_count"] == 5
    # A sha256 entry appended to a blake3 chain is refused.
    _, bad = impl.audit_event_line("x", "t", 9, {}, prev, None, "sha256")
    r = run([write(tmp_path / "c.jsonl", [*lines, bad.decode()])])
    assert (r["kind"], r["line"]) == ("algorithm", 6)


def test_genesis_restarts_only_when_allowed(tmp_path: Path) -> None:
    # The original restarts its chain at genesis in every process.
    p = write(tmp_path / "a.jsonl", original_lines(4) + original_lines(3, start=10))
    r = run([p])
    assert (r["kind"], r["line"]) == ("link", 5)
    r = run([p], allow_genesis_restart=True)
    assert r["valid"] and r["restarts"] == 1 and r["verified_count"] == 7


def test_progress_callback_and_digests(tmp_path: Path, impl: ModuleType) -> None:
    p = write(tmp_path / "a.jsonl", original_lines(6))
    seen: list[int] = []
    r = impl.audit_verify_files([str(p)], None, True, False, seen.append)
    assert seen[-1] == p.stat().st_size
    assert len(r["digests"]) == 6 * 32
    first = json.loads(p.read_text().splitlines()[0])["event_hash"]
    assert r["digests"][:32].hex() == first.split(":")[1]

    def boom(_n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        impl.audit_verify_files([str(p)], progress=boom)


def test_bad_checkpoint_argument(impl: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be 32 bytes"):
        impl.audit_verify_files([str(tmp_path / "x")], [(1, b"short")])


_FUZZ_LOG = "".join(original_lines(6))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.integers(0, len(_FUZZ_LOG.encode()) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=3,
    )
)
def test_random_corruption_is_never_valid_and_both_verifiers_agree(
    tmp_path: Path, edits: list[tuple[int, int]]
) -> None:
    data = bytearray(_FUZZ_LOG.encode())
    for pos, byte in edits:
        data[pos] = byte
    p = tmp_path / "fuzz.jsonl"
    p.write_bytes(bytes(data))
    r = run([p])  # asserts native == reference
    if bytes(data) != _FUZZ_LOG.encode() and r["valid"]:
        # Only a change that leaves every entry's parsed content equal can pass, e.g.
        # whitespace between tokens or an equivalent escape.
        good = [json.loads(x) for x in _FUZZ_LOG.splitlines()]
        got = [json.loads(x) for x in bytes(data).decode().splitlines()]
        assert got == good


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("backend", ["native", "reference"])
def test_verification_releases_the_gil(tmp_path: Path, backend: str) -> None:
    """The verifier reads a pipe that only this (Python) thread feeds: if the native call
    held the GIL while blocked reading, the feeding code could never run."""
    import threading

    impl = _core if backend == "native" else _reference
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    result: dict[str, Any] = {}
    t = threading.Thread(
        target=lambda: result.update(impl.audit_verify_files([str(fifo)])), daemon=True
    )
    t.start()
    with open(fifo, "w", encoding="utf-8") as f:
        for line in original_lines(50):
            f.write(line)
    t.join(timeout=60)
    assert not t.is_alive()
    assert result["valid"] and result["verified_count"] == 50
