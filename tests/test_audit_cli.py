"""``proxilion audit`` subcommands: exit status 0 intact / 1 tampered / 2 unreadable."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from original_audit import original_lines, write
from proxilion.audit import verify_inclusion_proof
from proxilion.audit.cli import main
from proxilion.audit.verify import InclusionProof

pytestmark = pytest.mark.backend


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def logs(tmp_path: Path) -> list[Path]:
    lines = original_lines(12)
    return [
        write(tmp_path / "audit_20250101.jsonl", lines[:6]),
        write(tmp_path / "audit_20250102.jsonl", lines[6:]),
    ]


def test_verify_exit_codes(logs: list[Path], tmp_path: Path) -> None:
    status, out, _ = run("verify", *map(str, logs))
    assert status == 0
    assert (
        out
        == f"OK: 12 entries in 2 file(s) verified ({sum(p.stat().st_size for p in logs)} bytes)\n"
    )
    status, out, _ = run("verify", str(logs[1]))
    assert status == 1 and out.startswith("TAMPERED: audit_20250102.jsonl line 1:")
    text = logs[0].read_text().replace('"user_id":"user_2"', '"user_id":"user_3"')
    bad = write(tmp_path / "bad.jsonl", [text])
    status, out, _ = run("verify", str(bad), "--json")
    result = json.loads(out)
    assert status == 1
    assert (result["valid"], result["kind"], result["line"], result["verified_count"]) == (
        False,
        "hash",
        3,
        2,
    )
    status, out, _ = run("verify", str(tmp_path / "missing.jsonl"))
    assert status == 2 and out.startswith("UNREADABLE: cannot read missing.jsonl")
    torn = write(tmp_path / "torn.jsonl", [logs[0].read_text()[:-40]])
    status, out, _ = run("verify", str(torn))
    assert status == 1 and out.startswith("TORN:")


def test_progress_bar(logs: list[Path]) -> None:
    status, _, err = run("verify", "--progress", *map(str, logs))
    assert status == 0
    assert "100.0%" in err and err.endswith("\n")


def test_prove_checkpoint_keygen(logs: list[Path], tmp_path: Path) -> None:
    status, out, _ = run("prove", *map(str, logs), "--index", "7")
    assert status == 0
    proof = InclusionProof(**json.loads(out))
    assert proof.tree_size == 12 and proof.index == 7
    assert proof.event_hash == json.loads(logs[1].read_text().splitlines()[1])["event_hash"]
    assert verify_inclusion_proof(proof)
    assert not verify_inclusion_proof(proof, root_hash="00" * 32)
    status, _, err = run("prove", *map(str, logs), "--index", "12")
    assert status == 2 and "out of range" in err
    status, _, err = run("prove", str(logs[1]), "--index", "0")
    assert status == 1 and "does not verify" in err

    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    assert run("keygen", str(priv), str(pub))[0] == 0
    assert priv.stat().st_mode & 0o077 == 0
    cps = tmp_path / "cps.jsonl"
    status, out, _ = run("checkpoint", str(logs[0]), "--key", str(priv), "--out", str(cps))
    assert status == 0 and json.loads(out)["tree_size"] == 6
    status, out, _ = run("checkpoint", *map(str, logs), "--key", str(priv), "--out", str(cps))
    assert status == 0 and json.loads(out)["tree_size"] == 12
    args = ["--checkpoint", str(cps), "--public-key", str(pub)]
    status, out, _ = run("verify", *map(str, logs), *args)
    assert status == 0 and "2 checkpoint(s) matched" in out
    status, out, _ = run("verify", str(logs[0]), *args)
    assert status == 1 and "TAMPERED: the log has 6 entries but a checkpoint covers 12" in out
    status, _, err = run("verify", str(logs[0]), "--checkpoint", str(cps))
    assert status == 2 and "--public-key" in err
    status, _, err = run("checkpoint", str(logs[1]), "--key", str(priv))
    assert status == 1 and "refusing to checkpoint" in err
    status, _, err = run("checkpoint", str(logs[0]), "--key", str(tmp_path / "nokey"))
    assert status == 2


def test_module_entry_point(logs: list[Path]) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "proxilion.audit.cli", "verify", *map(str, logs)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK: 12 entries")
