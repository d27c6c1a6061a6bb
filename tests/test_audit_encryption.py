"""AES-256-GCM payload encryption at rest: the chain verifies without the key; the key
decrypts and authenticates each payload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from original_audit import dumps, original_verify_jsonl_chain
from proxilion.audit import AuditLogger, LoggerConfig, RotationPolicy, read_jsonl_events, verify_log
from proxilion.audit.encryption import decrypt_data, is_encrypted, key_id

pytestmark = pytest.mark.backend

KEY = bytes(range(32))


def make_log(path: Path) -> None:
    cfg = LoggerConfig(log_path=path, rotation=RotationPolicy.NONE, encryption_key=KEY)
    assert repr(KEY) not in repr(cfg) and "encryption_key" not in repr(cfg)
    with AuditLogger(cfg) as logger:
        for i in range(4):
            logger.log_authorization(f"user_{i}", ["r"], "pay", {"amount": i, "iban": "DE00"}, True)
        assert logger.chain.chain.verify().valid


def test_encrypted_log_verifies_without_the_key(tmp_path: Path) -> None:
    p = tmp_path / "audit.jsonl"
    make_log(p)
    text = p.read_text()
    assert "user_1" not in text and "iban" not in text
    entries = [json.loads(line) for line in text.splitlines() if '"_type"' not in line]
    assert all(is_encrypted(e["data"]) and e["data"]["kid"] == key_id(KEY) for e in entries)
    assert verify_log(p).valid
    assert original_verify_jsonl_chain(p) == (True, None)
    events = list(read_jsonl_events(p, encryption_key=KEY))
    assert [e.data.user_id for e in events] == ["user_0", "user_1", "user_2", "user_3"]
    assert all(e.verify_hash() for e in events)
    with pytest.raises(ValueError, match="pass encryption_key"):
        list(read_jsonl_events(p))
    with pytest.raises(ValueError, match="not this key"):
        decrypt_data(entries[0], bytes(32))


def test_moved_or_altered_ciphertext_does_not_authenticate(tmp_path: Path) -> None:
    p = tmp_path / "audit.jsonl"
    make_log(p)
    entries = [json.loads(line) for line in p.read_text().splitlines() if '"_type"' not in line]
    moved = {**entries[1], "data": entries[0]["data"]}
    with pytest.raises(ValueError, match="does not authenticate"):
        decrypt_data(moved, KEY)
    ct = entries[2]["data"]["ct"]
    altered = {
        **entries[2],
        "data": {**entries[2]["data"], "ct": ("A" if ct[0] != "A" else "B") + ct[1:]},
    }
    with pytest.raises(ValueError, match="does not authenticate"):
        decrypt_data(altered, KEY)
    # And the chain notices any change of the envelope without the key.
    lines = p.read_text().splitlines(keepends=True)
    lines[2] = dumps({**json.loads(lines[2]), "data": altered["data"]}) + "\n"
    p.write_text("".join(lines))
    r = verify_log(p)
    assert (r.kind, r.line) == ("hash", 3)


def test_bad_keys_are_rejected(tmp_path: Path) -> None:
    for bad in [b"short", b"", "x" * 32]:
        with pytest.raises(ValueError, match="32 bytes"):
            LoggerConfig(log_path=tmp_path / "a.jsonl", encryption_key=bad)  # type: ignore[arg-type]
