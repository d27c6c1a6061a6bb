"""Signed checkpoints of an audit log: ``(tree size, RFC 6962 root, time)`` signed with
Ed25519 (through the ``cryptography`` package).

A hash chain alone detects edits, deletions, insertions and reordering, but not a log
rewritten wholesale by someone who recomputes every hash, nor entries cut from the end.
A checkpoint saved elsewhere (or published) pins the first ``tree_size`` entries: a rewritten
or truncated log no longer matches its root, and without the private key no valid new
checkpoint can be made.

The signed message is the UTF-8 text::

    proxilion-audit-checkpoint/v1
    <tree_size>
    <root, 64 lower-case hex>
    <timestamp, ISO 8601>
    <hash of the last entry, or "-">
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "Checkpoint",
    "generate_signing_key",
    "load_checkpoints",
    "load_private_key",
    "load_public_key",
    "public_key_bytes",
    "save_checkpoint",
    "sign_checkpoint",
]

_HEADER = "proxilion-audit-checkpoint/v1"


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "signed checkpoints need the 'cryptography' package (pip install proxilion[crypto])"
        ) from exc
    return ed25519


def generate_signing_key() -> Ed25519PrivateKey:
    """A new Ed25519 private key."""
    key: Ed25519PrivateKey = _ed25519().Ed25519PrivateKey.generate()
    return key


def _private(key: Ed25519PrivateKey | bytes) -> Ed25519PrivateKey:
    ed = _ed25519()
    if isinstance(key, (bytes, bytearray)):
        if len(key) != 32:
            raise ValueError(f"an Ed25519 private key has 32 bytes, got {len(key)}")
        out: Ed25519PrivateKey = ed.Ed25519PrivateKey.from_private_bytes(bytes(key))
        return out
    if not isinstance(key, ed.Ed25519PrivateKey):
        raise TypeError(f"private key must be Ed25519PrivateKey or bytes, not {type(key).__name__}")
    checked: Ed25519PrivateKey = key
    return checked


def _public(key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> Ed25519PublicKey:
    ed = _ed25519()
    if isinstance(key, (bytes, bytearray)):
        if len(key) != 32:
            raise ValueError(f"an Ed25519 public key has 32 bytes, got {len(key)}")
        out: Ed25519PublicKey = ed.Ed25519PublicKey.from_public_bytes(bytes(key))
        return out
    if isinstance(key, ed.Ed25519PrivateKey):
        pub: Ed25519PublicKey = key.public_key()
        return pub
    if not isinstance(key, ed.Ed25519PublicKey):
        raise TypeError(f"public key must be Ed25519PublicKey or bytes, not {type(key).__name__}")
    checked: Ed25519PublicKey = key
    return checked


def public_key_bytes(key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> bytes:
    """The 32 raw bytes of the public key."""
    from cryptography.hazmat.primitives import serialization

    raw: bytes = _public(key).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return raw


def _key_id(key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> str:
    return hashlib.sha256(public_key_bytes(key)).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that the log's first ``tree_size`` entries have RFC 6962 root
    ``root_hash`` (hex)."""

    tree_size: int
    root_hash: str
    timestamp: str
    last_hash: str | None
    key_id: str
    signature: str

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers."""
        return (
            f"{_HEADER}\n{self.tree_size}\n{self.root_hash}\n{self.timestamp}\n"
            f"{self.last_hash or '-'}\n"
        ).encode()

    @property
    def root(self) -> bytes:
        """The root as 32 bytes."""
        return bytes.fromhex(self.root_hash)

    def verify_signature(self, public_key: Ed25519PublicKey | bytes) -> bool:
        """Whether the signature is valid under ``public_key`` (constant-time in the
        underlying library; any malformed field gives False)."""
        from cryptography.exceptions import InvalidSignature

        try:
            sig = base64.b64decode(self.signature, validate=True)
            if len(bytes.fromhex(self.root_hash)) != 32 or self.tree_size < 0:
                return False
            _public(public_key).verify(sig, self.signed_bytes())
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def to_json(self) -> str:
        return json.dumps(
            {
                "tree_size": self.tree_size,
                "root_hash": self.root_hash,
                "timestamp": self.timestamp,
                "last_hash": self.last_hash,
                "key_id": self.key_id,
                "signature": self.signature,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        """Parse :meth:`to_json` output; malformed input raises ``ValueError``."""
        try:
            d = json.loads(text)
            cp = cls(
                tree_size=d["tree_size"],
                root_hash=d["root_hash"],
                timestamp=d["timestamp"],
                last_hash=d.get("last_hash"),
                key_id=d["key_id"],
                signature=d["signature"],
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a checkpoint: {exc}") from None
        if not isinstance(cp.tree_size, int) or isinstance(cp.tree_size, bool) or cp.tree_size < 0:
            raise ValueError(f"not a checkpoint: bad tree_size {cp.tree_size!r}")
        if not isinstance(cp.root_hash, str) or len(cp.root_hash) != 64:
            raise ValueError(f"not a checkpoint: bad root_hash {cp.root_hash!r}")
        try:
            bytes.fromhex(cp.root_hash)
        except ValueError:
            raise ValueError(f"not a checkpoint: bad root_hash {cp.root_hash!r}") from None
        return cp


def sign_checkpoint(
    private_key: Ed25519PrivateKey | bytes,
    tree_size: int,
    root: bytes,
    last_hash: str | None = None,
    timestamp: datetime | None = None,
) -> Checkpoint:
    """Sign ``(tree_size, root, time)`` with an Ed25519 key."""
    if len(root) != 32:
        raise ValueError(f"root must be 32 bytes, got {len(root)}")
    if tree_size < 0:
        raise ValueError(f"tree_size must be >= 0, got {tree_size}")
    key = _private(private_key)
    ts = (timestamp or datetime.now(timezone.utc)).isoformat()
    unsigned = Checkpoint(tree_size, root.hex(), ts, last_hash, _key_id(key), "")
    sig = key.sign(unsigned.signed_bytes())
    return Checkpoint(
        tree_size, root.hex(), ts, last_hash, unsigned.key_id, base64.b64encode(sig).decode()
    )


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint) -> None:
    """Append ``checkpoint`` as one JSON line to ``path`` (fsynced)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(checkpoint.to_json() + "\n")
        f.flush()
        os.fsync(f.fileno())


def load_checkpoints(path: str | os.PathLike[str]) -> list[Checkpoint]:
    """All checkpoints in a file written by :func:`save_checkpoint`."""
    out: list[Checkpoint] = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(Checkpoint.from_json(line))
            except ValueError as exc:
                raise ValueError(f"{path} line {n}: {exc}") from None
    return out


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM (PKCS#8, unencrypted) file."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    return _private(key)  # type: ignore[arg-type]


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (a private key file also works)."""
    from cryptography.hazmat.primitives import serialization

    data = Path(path).read_bytes()
    if b"PRIVATE KEY" in data:
        return _public(load_private_key(path))
    key = serialization.load_pem_public_key(data)
    return _public(key)  # type: ignore[arg-type]


def write_key_pair(
    private_path: str | os.PathLike[str], public_path: str | os.PathLike[str]
) -> None:
    """Generate a key pair and write it as PEM files (the private one with mode 0600)."""
    from cryptography.hazmat.primitives import serialization

    key = generate_signing_key()
    priv = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(priv)
    Path(public_path).write_bytes(pub)
