"""Stage 8 end to end: Proxilion(audit_log_path=...) writes one hash-chained entry per
decision, allowed or denied; verification reads the file on disk and catches edits."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from proxilion import AuthorizationError, Policy, Proxilion, UserContext
from proxilion.cli import main as cli_main

ALICE = UserContext("alice", roles=["analyst"])
MALLORY = UserContext("mallory")


def _log_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("audit*.jsonl"))


def _make(path: Path) -> tuple[Proxilion, Any]:
    auth = Proxilion(audit_log_path=path)

    @auth.policy("search")
    class SearchPolicy(Policy):  # type: ignore[type-arg]
        def can_execute(self, context: dict[str, Any]) -> bool:
            return "analyst" in self.user.roles

    @auth.authorize("execute", resource="search")
    def search(query: str, user: UserContext | None = None) -> str:
        return query.upper()

    return auth, search


@pytest.mark.backend
def test_every_decision_is_written_and_verifies_on_disk(tmp_path: Path) -> None:
    auth, search = _make(tmp_path / "audit.jsonl")
    assert search("q1", user=ALICE) == "Q1"
    with pytest.raises(AuthorizationError):
        search("q2", user=MALLORY)
    assert search("q3", user=ALICE) == "Q3"
    auth.close()

    files = _log_files(tmp_path)
    assert len(files) == 1  # daily rotation: audit_YYYYMMDD.jsonl, as in the original
    lines = [json.loads(x) for x in files[0].read_text().splitlines() if x.strip()]
    events = [x for x in lines if x.get("_type") != "batch_marker"]
    decisions = [
        (e["data"]["user"]["user_id"], e["data"]["authorization"]["allowed"]) for e in events
    ]
    assert decisions == [("alice", True), ("mallory", False), ("alice", True)]
    assert events[1]["data"]["authorization"]["reason"] == (
        "Policy SearchPolicy.can_execute returned False"
    )
    for prev, cur in itertools.pairwise(events):
        assert cur["previous_hash"] == prev["event_hash"]

    # A fresh process (a new Proxilion on the same path) verifies what is on disk.
    again = Proxilion(audit_log_path=tmp_path / "audit.jsonl")
    result = again.verify_audit_chain()
    assert result.valid is True and result.error is None
    assert result.verified_count == 3
    again.close()
    assert cli_main(["audit", "verify", str(files[0])]) == 0


@pytest.mark.backend
def test_an_edit_on_disk_is_detected(tmp_path: Path) -> None:
    auth, search = _make(tmp_path / "audit.jsonl")
    search("q1", user=ALICE)
    with pytest.raises(AuthorizationError):
        search("q2", user=MALLORY)
    auth.close()
    (log,) = _log_files(tmp_path)
    # Mallory rewrites her denial into an allow.
    text = log.read_text()
    assert text.count('"allowed":false') == 1
    log.write_text(text.replace('"allowed":false', '"allowed":true'))

    again = Proxilion(audit_log_path=tmp_path / "audit.jsonl")
    result = again.verify_audit_chain()
    assert result.valid is False
    assert result.error is not None and "line 2" in result.error
    assert cli_main(["audit", "verify", str(log)]) == 1
