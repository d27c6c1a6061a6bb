"""Type stub of the native extension ``proxilion._core`` (built from rust/python).

Each area of the binding has its own section below. Every function here has a pure-Python
twin with the same signature in ``proxilion._reference``.
"""

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, final

__version__: str
__all__ = [
    "__version__",
    "build_info",
    "version",
    # mac
    "blake3_keyed_hex",
    "constant_time_eq",
    "hmac_sha256",
    "hmac_sha256_hex",
    "hmac_sha256_verify",
    "sha256_hex",
    # chain
    "AUDIT_GENESIS_HASH",
    "AuditFileWriter",
    "MerkleLog",
    "audit_event_hash",
    "audit_event_line",
    "audit_verify_files",
    "canonical_json",
    "merkle_leaf_hash",
    "merkle_verify_consistency",
    "merkle_verify_inclusion",
]

def version() -> str: ...
def build_info() -> dict[str, Any]: ...

# --- mac: HMAC-SHA256 / SHA-256 / keyed BLAKE3 (rust/core/src/mac) ------------------------

def hmac_sha256_hex(key: str | bytes, message: str | bytes) -> str: ...
def hmac_sha256(key: str | bytes, message: str | bytes) -> bytes: ...
def hmac_sha256_verify(key: str | bytes, message: str | bytes, tag: str | bytes) -> bool: ...
def constant_time_eq(a: str | bytes, b: str | bytes) -> bool: ...
def sha256_hex(data: str | bytes) -> str: ...
def blake3_keyed_hex(key: str | bytes, message: str | bytes) -> str: ...

# --- chain: canonical JSON, audit entries, verification, writer, Merkle (rust/core/src/chain) -

AUDIT_GENESIS_HASH: str

def canonical_json(obj: object) -> str: ...
def audit_event_hash(
    event_id: str,
    timestamp: str,
    sequence_number: object,
    data: object,
    previous_hash: str,
    algorithm: str = "sha256",
) -> str: ...
def audit_event_line(
    event_id: str,
    timestamp: str,
    sequence_number: object,
    data: object,
    previous_hash: str,
    merkle_index: int | None = None,
    algorithm: str = "sha256",
) -> tuple[str, bytes]: ...
def audit_verify_files(
    paths: Sequence[str | os.PathLike[str]],
    checkpoints: Sequence[tuple[int, bytes]] | None = None,
    collect_digests: bool = False,
    allow_genesis_restart: bool = False,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]: ...

@final
class AuditFileWriter:
    def __new__(
        cls,
        path: str | os.PathLike[str],
        fsync: str = "interval",
        fsync_interval: float = 1.0,
        sync_writes: bool = True,
    ) -> AuditFileWriter: ...
    def enqueue(self, data: bytes) -> int: ...
    def commit(self, ticket: int) -> None: ...
    def append(self, data: bytes) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    @property
    def path(self) -> Path: ...
    @property
    def size(self) -> int: ...
    def stats(self) -> dict[str, int]: ...

@final
class MerkleLog:
    def __new__(cls) -> MerkleLog: ...
    def append(self, data: bytes) -> int: ...
    def extend_leaves(self, data: bytes) -> None: ...
    def extend_leaf_hashes(self, hashes: bytes) -> None: ...
    @property
    def size(self) -> int: ...
    def root(self, size: int | None = None) -> bytes: ...
    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]: ...
    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]: ...
    def leaf_hash(self, index: int) -> bytes: ...
    def __len__(self) -> int: ...

def merkle_leaf_hash(data: bytes) -> bytes: ...
def merkle_verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool: ...
def merkle_verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool: ...
