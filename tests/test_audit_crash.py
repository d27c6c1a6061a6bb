"""Crash safety: a writer killed mid-stream (SIGKILL) loses nothing it acknowledged under
``fsync="always"``; a torn last line is reported as such and never hides earlier entries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from proxilion.audit import AuditLogger, LoggerConfig, RotationPolicy, verify_log

pytestmark = pytest.mark.backend

WRITER = """
import sys
from proxilion.audit import AuditLogger, LoggerConfig, RotationPolicy
cfg = LoggerConfig(log_path=sys.argv[1], rotation=RotationPolicy.NONE, fsync="always")
logger = AuditLogger(cfg)
for i in range(100000):
    logger.log_authorization(f"user_{i}", ["r"], "tool", {"i": i, "pad": "x" * 300}, i % 2 == 0)
    sys.stdout.write(f"{i}\\n")
    sys.stdout.flush()
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_stream_loses_nothing_acknowledged(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(log)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    assert proc.stdout is not None
    acked: list[int] = []
    try:
        for line in proc.stdout:
            acked.append(int(line))
            if len(acked) >= 60:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        rest = proc.communicate(timeout=30)[0]
    acked.extend(int(x) for x in rest.split())
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 60

    r = verify_log(log)
    assert r.status in ("ok", "torn"), r.error_message
    if r.status == "torn":
        assert r.kind == "torn" and "torn last line" in (r.error_message or "")
    assert r.verified_count >= len(acked)
    entries = []
    with open(log, "rb") as f:
        for raw in f:
            if raw.endswith(b"\n"):
                entries.append(json.loads(raw)["data"]["tool_call"]["arguments"]["i"])
    assert entries[: len(acked)] == acked

    # A new writer resumes the same chain after the crash.
    with AuditLogger(LoggerConfig(log_path=log, rotation=RotationPolicy.NONE)) as logger:
        logger.log_authorization("after", [], "tool", {}, True)
        after = logger.verify()
    assert after.valid and after.verified_count == r.verified_count + 1


def test_torn_write_at_every_cut_point(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    with AuditLogger(LoggerConfig(log_path=log, rotation=RotationPolicy.NONE)) as logger:
        for i in range(3):
            logger.log_authorization(f"u{i}", [], "t", {"i": i}, True)
    data = log.read_bytes()
    lines = data.splitlines(keepends=True)
    prefix = b"".join(lines[:2])
    last = lines[2]
    # Cut the last line anywhere (a crash mid-append): the first two entries still verify.
    for cut in range(1, len(last) - 1, 7):
        log.write_bytes(prefix + last[:cut])
        r = verify_log(log)
        assert (r.valid, r.status, r.kind, r.line, r.verified_count) == (
            False,
            "torn",
            "torn",
            3,
            2,
        )
    # Cut exactly before the newline: still torn (the write did not complete).
    log.write_bytes(prefix + last[:-1])
    assert verify_log(log).status == "torn"
    log.write_bytes(prefix + last)
    assert verify_log(log).valid
