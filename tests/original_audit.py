"""The original SDK's audit file format, built straight from API.md 9.1-9.4 with ``json`` and
``hashlib`` (we cannot run the original here). Used to show that logs the original writes
verify with ours, and that logs we write verify with the original's ``verify_jsonl_chain``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

GENESIS = "sha256:" + "0" * 64


def dumps(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def original_data(i: int) -> dict[str, Any]:
    """An ``AuditEventData.to_dict()`` the original would write, with awkward values."""
    return {
        "event_type": "authorization_granted" if i % 2 == 0 else "authorization_denied",
        "user": {
            "user_id": f"user_{i}",
            "roles": ["analyst", "ré∂ader"],
            "session_id": None if i % 3 else f"s-{i}",
            "attributes": {"dept": "ops", "clearance": i % 4, "ratio": 1e-05 * i},
        },
        "agent": None
        if i % 2
        else {"agent_id": "agent-😀", "capabilities": ["read"], "trust_score": 0.1 * i},
        "tool_call": {
            "tool_name": "database_query",
            "arguments": {
                "query": f'SELECT * FROM t WHERE id = {i} -- "quoted" \\ tab\t',
                "limit": 10**20 + i,
                "scale": 1e16,
                "neg": -0.0,
                "nested": {"b": [1, 2.5, None, True], "a": {"z": "\u2028"}},
            },
            "timestamp": f"2025-01-31T12:00:{i % 60:02d}.{(i * 7919) % 1000000:06d}+00:00",
        },
        "authorization": {
            "allowed": i % 2 == 0,
            "reason": None if i % 2 == 0 else "policy says no",
            "policies_evaluated": ["DocPolicy"],
            "metadata": {},
        },
        "execution_result": None,
        "error_message": None,
    }


def original_entry(
    i: int, previous_hash: str, merkle_index: int | None = None, data: dict[str, Any] | None = None
) -> tuple[str, str]:
    """``(event_hash, line)`` exactly as the original's logger writes them."""
    canonical = {
        "event_id": f"0190a1b2-c3d4-7e5f-8a9b-{i:012x}",
        "timestamp": "2025-01-31T12:00:00+00:00"
        if i % 5 == 0
        else f"2025-01-31T12:00:00.{i:06d}+00:00",
        "sequence_number": i + 1,
        "data": original_data(i) if data is None else data,
        "previous_hash": previous_hash,
    }
    h = "sha256:" + hashlib.sha256(dumps(canonical).encode("utf-8")).hexdigest()
    d = dict(canonical, event_hash=h)
    if merkle_index is not None:
        d["merkle_index"] = merkle_index
    return h, dumps(d) + "\n"


def original_lines(n: int, start: int = 0, previous_hash: str = GENESIS) -> list[str]:
    lines = []
    prev = previous_hash
    for i in range(start, start + n):
        prev, line = original_entry(i, prev, merkle_index=i % 100)
        lines.append(line)
    return lines


def batch_marker(event_count: int, root: str) -> str:
    batch = {
        "batch_id": "batch_1",
        "start_sequence": 1,
        "end_sequence": event_count,
        "event_count": event_count,
        "merkle_root": root,
        "created_at": "2025-01-31T12:00:01.000000+00:00",
        "previous_batch_root": None,
    }
    return json.dumps({"_type": "batch_marker", "batch": batch}, sort_keys=True) + "\n"


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(lines), encoding="utf-8")
    return path


def original_verify_jsonl_chain(path: Path) -> tuple[bool, str | None]:
    """The original's ``verify_jsonl_chain`` as API.md 9.4 describes it."""
    expected = GENESIS
    n = 0
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                except json.JSONDecodeError as e:
                    return False, f"JSON parse error at line {n + 1}: {e}"
                if d.get("_type") == "batch_marker":
                    continue
                n += 1
                if d["previous_hash"] != expected:
                    return (
                        False,
                        f"Chain broken at line {n}: expected {expected}, got {d['previous_hash']}",
                    )
                canonical = {
                    "event_id": d["event_id"],
                    "timestamp": d["timestamp"],
                    "sequence_number": d["sequence_number"],
                    "data": d["data"],
                    "previous_hash": d["previous_hash"],
                }
                h = "sha256:" + hashlib.sha256(dumps(canonical).encode("utf-8")).hexdigest()
                if h != d["event_hash"]:
                    return False, f"Invalid hash at line {n}: event tampered"
                expected = d["event_hash"]
    except Exception as e:
        return False, f"Verification error: {e}"
    return True, None
