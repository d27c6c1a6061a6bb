"""Verification of audit logs on disk, and Merkle proofs over their entries.

:func:`verify_log` streams one file or a rotated set (in order, as one chain) through the
native verifier with the GIL released, and names the first bad line and what is wrong with
it. It fails closed: an unreadable file is never reported valid. With signed checkpoints it
also detects a log rewritten wholesale or cut short at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from proxilion._backend import impl
from proxilion.audit.checkpoint import Checkpoint
from proxilion.audit.hash_chain import ChainVerificationResult

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "InclusionProof",
    "LogNotVerifiedError",
    "LogVerificationResult",
    "build_merkle_log",
    "prove_inclusion",
    "verify_inclusion_proof",
    "verify_log",
]

PathLike = str | os.PathLike[str]


@dataclass
class LogVerificationResult(ChainVerificationResult):
    """A :class:`ChainVerificationResult` for files, with where and what went wrong.

    ``status`` is ``"ok"``, ``"tampered"``, ``"torn"`` (the last line of a file is an
    incomplete append; every entry before it verified) or ``"unreadable"``. ``kind`` names
    the check that failed (``hash``, ``link``, ``genesis``, ``parse``, ``field``, ``torn``,
    ``io``, ``checkpoint``, ``checkpoint_signature``, ``truncated``, ...). ``file`` and
    ``line`` (1-based, physical) locate the first bad line; ``error_index`` is the 0-based
    index of the entry there (= ``verified_count``).
    """

    status: str = "ok"
    kind: str | None = None
    file: str | None = None
    line: int | None = None
    expected: str | None = None
    got: str | None = None
    files: list[str] = field(default_factory=list)
    bytes_read: int = 0
    markers: int = 0
    algorithm: str | None = None
    last_hash: str | None = None
    root: bytes = b""
    checkpoints_checked: int = 0

    @classmethod
    def _from_native(cls, r: dict[str, Any], files: list[str]) -> LogVerificationResult:
        fi = r["file_index"]
        return cls(
            valid=bool(r["valid"]),
            error_message=r["message"],
            error_index=None if r["valid"] else r["verified_count"],
            verified_count=r["verified_count"],
            status=r["status"],
            kind=r["kind"],
            file=files[fi] if fi is not None and fi < len(files) else None,
            line=r["line"],
            expected=r["expected"],
            got=r["got"],
            files=files,
            bytes_read=r["bytes_read"],
            markers=r["markers"],
            algorithm=r["algorithm"],
            last_hash=r["last_hash"],
            root=r["root"],
            checkpoints_checked=r["checkpoints_checked"],
        )


def _run(
    paths: Sequence[PathLike],
    checkpoints: Sequence[tuple[int, bytes]] = (),
    collect_digests: bool = False,
    allow_genesis_restart: bool = False,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    files = [os.fspath(p) for p in paths]
    result: dict[str, Any] = impl.audit_verify_files(
        files,
        list(checkpoints),
        collect_digests,
        allow_genesis_restart,
        progress,
    )
    return result


def verify_log(
    paths: PathLike | Sequence[PathLike],
    *,
    checkpoints: Sequence[Checkpoint] = (),
    public_key: Ed25519PublicKey | bytes | None = None,
    allow_genesis_restart: bool = False,
    progress: Callable[[int], object] | None = None,
) -> LogVerificationResult:
    """Verify a log file, or the files of a rotated log in order, as one hash chain.

    ``checkpoints`` must be signed by ``public_key`` (required with them); a checkpoint
    whose signature does not verify makes the result invalid (``kind="checkpoint_signature"``).
    ``allow_genesis_restart`` accepts entries that restart the chain at the genesis hash, as
    logs written by the original SDK across several processes do (off by default, since it
    lets whole runs of entries be cut out unnoticed without checkpoints). ``progress`` is
    called with the bytes read so far, every few MiB.
    """
    plist = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files = [os.fspath(p) for p in plist]
    if checkpoints and public_key is None:
        raise ValueError("checkpoints need the public_key that signed them")
    for cp in checkpoints:
        if public_key is not None and not cp.verify_signature(public_key):
            return LogVerificationResult(
                valid=False,
                error_message=(
                    f"checkpoint at tree size {cp.tree_size} has an invalid signature for the "
                    "given public key (forged or altered checkpoint)"
                ),
                error_index=None,
                verified_count=0,
                status="tampered",
                kind="checkpoint_signature",
                files=files,
            )
    pairs = [(cp.tree_size, cp.root) for cp in checkpoints]
    r = _run(files, pairs, False, allow_genesis_restart, progress)
    return LogVerificationResult._from_native(r, files)


# ------------------------------------------------------------------------------------------
# Proofs
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InclusionProof:
    """RFC 6962 inclusion proof of entry ``index`` (0-based) in the tree of ``tree_size``
    entries. ``leaf_hash`` is ``SHA-256(0x00 || digest of event_hash)``."""

    index: int
    tree_size: int
    event_hash: str
    leaf_hash: str
    root_hash: str
    path: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tree_size": self.tree_size,
            "event_hash": self.event_hash,
            "leaf_hash": self.leaf_hash,
            "root_hash": self.root_hash,
            "path": list(self.path),
        }


class LogNotVerifiedError(ValueError):
    """The log does not verify, so no proof or checkpoint is made from it."""

    def __init__(self, result: LogVerificationResult) -> None:
        super().__init__(f"the log does not verify: {result.status}: {result.error_message}")
        self.result = result


@dataclass
class MerkleView:
    """The RFC 6962 tree of a verified log's entries, with their hashes."""

    tree: Any
    digests: bytes
    algorithm: str
    result: LogVerificationResult

    def event_hash(self, index: int) -> str:
        """The stored ``event_hash`` of entry ``index``."""
        if not 0 <= index < len(self.digests) // 32:
            raise ValueError(f"entry index {index} is out of range")
        return f"{self.algorithm}:{self.digests[32 * index : 32 * index + 32].hex()}"


def build_merkle_log(paths: PathLike | Sequence[PathLike]) -> MerkleView:
    """Verify the log and build the RFC 6962 tree of its entries (``impl.MerkleLog``; the
    leaf data of an entry is the 32-byte digest of its ``event_hash``).

    Raises :class:`LogNotVerifiedError` when the log does not verify.
    """
    plist = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files = [os.fspath(p) for p in plist]
    r = _run(files, (), True)
    result = LogVerificationResult._from_native(r, files)
    if not result.valid:
        raise LogNotVerifiedError(result)
    tree = impl.MerkleLog()
    tree.extend_leaves(r["digests"])
    return MerkleView(tree, r["digests"], result.algorithm or "sha256", result)


def _event_digest(event_hash: str) -> bytes:
    head, _, hx = event_hash.partition(":")
    if head not in ("sha256", "blake3") or len(hx) != 64:
        raise ValueError(f"not an entry hash: {event_hash!r}")
    return bytes.fromhex(hx)


def prove_inclusion(
    paths: PathLike | Sequence[PathLike], index: int, tree_size: int | None = None
) -> InclusionProof:
    """Inclusion proof of entry ``index`` (0-based) of a verified log."""
    view = build_merkle_log(paths)
    tree = view.tree
    size = tree.size if tree_size is None else tree_size
    path = tree.inclusion_proof(index, size)
    return InclusionProof(
        index=index,
        tree_size=size,
        event_hash=view.event_hash(index),
        leaf_hash=tree.leaf_hash(index).hex(),
        root_hash=tree.root(size).hex(),
        path=[p.hex() for p in path],
    )


def verify_inclusion_proof(proof: InclusionProof, root_hash: str | None = None) -> bool:
    """Check ``proof`` for its ``event_hash`` against ``root_hash`` (e.g. from a trusted
    checkpoint; the proof's own root by default)."""
    try:
        leaf = impl.merkle_leaf_hash(_event_digest(proof.event_hash))
        if leaf.hex() != proof.leaf_hash:
            return False
        root = bytes.fromhex(root_hash if root_hash is not None else proof.root_hash)
        path = [bytes.fromhex(p) for p in proof.path]
    except ValueError:
        return False
    ok: bool = impl.merkle_verify_inclusion(leaf, proof.index, proof.tree_size, path, root)
    return ok
