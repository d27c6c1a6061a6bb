"""Audit log: append (per fsync policy), verification throughput, Merkle proofs at 1M
entries. Native vs reference in one run (group = operation; compare within a group).

The per-entry figures to compare with the original (API.md 14: 59.7 us per
``AuditLogger.log_authorization`` to a file, 21.7 us per entry for ``verify_jsonl_chain``)
are the ``audit_log_authorization_*`` and ``audit_verify_file`` groups (divide the verify
time by ``VERIFY_ENTRIES``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import proxilion.audit.events as events_mod
import proxilion.audit.hash_chain as hash_chain_mod
import proxilion.audit.logger as logger_mod
import proxilion.audit.verify as verify_mod
from proxilion import _core
from proxilion.audit import (
    AuditLogger,
    InMemoryAuditLogger,
    LoggerConfig,
    RedactionConfig,
    RotationPolicy,
)

VERIFY_ENTRIES = 20_000
MERKLE_LEAVES = 1_000_000

ARGS = {
    "query": "SELECT name, email FROM customers WHERE region = 'EU' ORDER BY created_at DESC",
    "limit": 100,
    "include_deleted": False,
    "columns": ["name", "email", "region"],
}
DATA = {
    "event_type": "authorization_granted",
    "user": {"user_id": "user_123", "roles": ["analyst"], "session_id": "s-1", "attributes": {}},
    "agent": {"agent_id": "agent-7", "capabilities": ["read"], "trust_score": 0.82},
    "tool_call": {
        "tool_name": "database_query",
        "arguments": ARGS,
        "timestamp": "2025-01-31T12:00:00.123456+00:00",
    },
    "authorization": {
        "allowed": True,
        "reason": "role analyst may read",
        "policies_evaluated": ["DatabasePolicy"],
        "metadata": {},
    },
    "execution_result": None,
    "error_message": None,
}


@pytest.fixture
def backend(impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Run the whole audit package on ``impl`` (native or reference hot paths)."""
    for mod in (events_mod, hash_chain_mod, logger_mod, verify_mod):
        monkeypatch.setattr(mod, "impl", impl)
    return impl


IMPLS = ["native", "reference"]


@pytest.fixture(params=IMPLS)
def variant(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``native`` / ``reference``: the whole audit package on that backend."""
    from proxilion import _reference

    mod = _reference if request.param == "reference" else _core
    for m in (events_mod, hash_chain_mod, logger_mod, verify_mod):
        monkeypatch.setattr(m, "impl", mod)
    name: str = request.param
    return name


def _log(logger: Any) -> None:
    logger.log_authorization(
        "user_123",
        ["analyst"],
        "database_query",
        ARGS,
        True,
        reason="role analyst may read",
        policies_evaluated=["DatabasePolicy"],
        session_id="s-1",
        agent_id="agent-7",
        agent_capabilities=["read"],
        agent_trust_score=0.82,
    )


@pytest.fixture
def make_logger(tmp_path: Path) -> Iterator[Any]:
    made: list[Any] = []

    def make(fsync: str, redact: bool = False) -> Any:
        cfg = LoggerConfig(
            log_path=tmp_path / f"audit-{len(made)}.jsonl",
            rotation=RotationPolicy.NONE,
            fsync=fsync,
            redaction_config=RedactionConfig.default() if redact else None,
        )
        lg = AuditLogger(cfg)
        made.append(lg)
        return lg

    yield make
    for lg in made:
        lg.close()


@pytest.mark.benchmark(group="audit_entry_encode_hash")
def test_encode_and_hash_one_entry(benchmark: Any, impl: ModuleType) -> None:
    prev = "sha256:" + "0" * 64
    benchmark(impl.audit_event_line, "0190-id", "2025-01-31T12:00:00+00:00", 7, DATA, prev, 3)


@pytest.mark.benchmark(group="audit_in_memory_log_authorization")
def test_in_memory_log_authorization(benchmark: Any, variant: str) -> None:
    logger = InMemoryAuditLogger()
    benchmark(_log, logger)
    event = logger._events[-1]
    assert event.data.tool_arguments == ARGS and event.verify_hash()


@pytest.mark.benchmark(group="audit_log_authorization_interval")
def test_log_authorization_fsync_interval(benchmark: Any, variant: str, make_logger: Any) -> None:
    benchmark(_log, make_logger("interval"))


@pytest.mark.benchmark(group="audit_log_authorization_never")
def test_log_authorization_fsync_never(benchmark: Any, variant: str, make_logger: Any) -> None:
    benchmark(_log, make_logger("never"))


@pytest.mark.benchmark(group="audit_log_authorization_redacted")
def test_log_authorization_default_redaction(
    benchmark: Any, variant: str, make_logger: Any
) -> None:
    benchmark(_log, make_logger("interval", redact=True))


@pytest.mark.benchmark(group="audit_log_authorization_always")
def test_log_authorization_fsync_always(
    benchmark: Any, backend: ModuleType, make_logger: Any
) -> None:
    benchmark.pedantic(_log, args=(make_logger("always"),), rounds=300, iterations=1)


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("verify") / "audit.jsonl"
    writer = _core.AuditFileWriter(path, "never", 1.0, False)
    prev = "sha256:" + "0" * 64
    for i in range(VERIFY_ENTRIES):
        prev, line = _core.audit_event_line(
            f"0190a1b2-c3d4-7e5f-8a9b-{i:012x}",
            "2025-01-31T12:00:00.123456+00:00",
            i + 1,
            DATA,
            prev,
            i % 100,
        )
        writer.append(line)
    writer.close()
    return path


@pytest.mark.benchmark(group="audit_verify_file")
def test_verify_file(benchmark: Any, impl: ModuleType, big_log: Path) -> None:
    r = benchmark.pedantic(impl.audit_verify_files, args=([str(big_log)],), rounds=3)
    assert r["valid"] and r["verified_count"] == VERIFY_ENTRIES
    benchmark.extra_info["entries"] = VERIFY_ENTRIES
    benchmark.extra_info["bytes"] = os.path.getsize(big_log)


@pytest.fixture(scope="module")
def trees() -> dict[str, Any]:
    from proxilion import _reference

    leaves = b"".join(i.to_bytes(32, "big") for i in range(MERKLE_LEAVES))
    out: dict[str, Any] = {}
    for name, mod in (("native", _core), ("reference", _reference)):
        t = mod.MerkleLog()
        t.extend_leaves(leaves)
        out[name] = t
    return out


def _which(impl: ModuleType) -> str:
    return "native" if impl is _core else "reference"


@pytest.mark.benchmark(group="merkle_1M_inclusion_proof")
def test_inclusion_proof_1m(benchmark: Any, impl: ModuleType, trees: dict[str, Any]) -> None:
    tree = trees[_which(impl)]
    proof = benchmark(tree.inclusion_proof, 777_777, MERKLE_LEAVES - 3)
    assert len(proof) == 20


@pytest.mark.benchmark(group="merkle_1M_verify_inclusion")
def test_verify_inclusion_1m(benchmark: Any, impl: ModuleType, trees: dict[str, Any]) -> None:
    tree = trees[_which(impl)]
    size = MERKLE_LEAVES - 3
    proof, root, leaf = (
        tree.inclusion_proof(777_777, size),
        tree.root(size),
        tree.leaf_hash(777_777),
    )
    assert benchmark(impl.merkle_verify_inclusion, leaf, 777_777, size, proof, root)


@pytest.mark.benchmark(group="merkle_1M_consistency_proof")
def test_consistency_proof_1m(benchmark: Any, impl: ModuleType, trees: dict[str, Any]) -> None:
    tree = trees[_which(impl)]
    benchmark(tree.consistency_proof, 654_321, MERKLE_LEAVES)


@pytest.mark.benchmark(group="merkle_1M_verify_consistency")
def test_verify_consistency_1m(benchmark: Any, impl: ModuleType, trees: dict[str, Any]) -> None:
    tree = trees[_which(impl)]
    proof = tree.consistency_proof(654_321, MERKLE_LEAVES)
    a, b = tree.root(654_321), tree.root(MERKLE_LEAVES)
    assert benchmark(impl.merkle_verify_consistency, 654_321, MERKLE_LEAVES, a, b, proof)


def _log_threads(logger: AuditLogger, threads: int = 4, per_thread: int = 25) -> None:

    def work() -> None:
        for _ in range(per_thread):
            _log(logger)

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


@pytest.mark.benchmark(group="audit_log_authorization_always_4threads_100entries")
def test_log_authorization_fsync_always_group_commit(
    benchmark: Any, backend: ModuleType, make_logger: Any
) -> None:
    logger = make_logger("always")
    benchmark.pedantic(_log_threads, args=(logger,), rounds=5, iterations=1)
    stats = logger._writer.stats()
    benchmark.extra_info["entries"] = 500
    benchmark.extra_info["fsyncs"] = stats["syncs"]
    assert stats["syncs"] <= 500
