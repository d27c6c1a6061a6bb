"""Optional AES-256-GCM encryption of audit entry payloads at rest.

With ``LoggerConfig(encryption_key=...)`` the ``data`` member of each entry is written as an
envelope::

    {"_enc": "aes-256-gcm", "kid": "<key id>", "nonce": "<base64, 12 bytes>",
     "ct": "<base64 ciphertext + 16-byte tag>"}

The plaintext is the canonical JSON of the event's data. The associated data binds the
envelope to its entry (``event_id``, ``timestamp`` and ``sequence_number``), so a ciphertext
cannot be moved to another entry. The entry hash covers the envelope, so the chain, the
Merkle tree and checkpoints verify **without the key**; with the key, :func:`decrypt_data`
also authenticates each payload. Nonces are random (96 bits): rotate the key well before
2**32 entries. Encrypted logs cannot be read by the original SDK (its ``from_dict`` expects a
plaintext ``data``), though its ``verify_jsonl_chain`` would still verify them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from proxilion._backend import impl

__all__ = ["ENVELOPE_TAG", "decrypt_data", "encrypt_data", "is_encrypted", "key_id"]

ENVELOPE_TAG = "aes-256-gcm"


def _aesgcm(key: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "payload encryption needs the 'cryptography' package (pip install proxilion[crypto])"
        ) from exc
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise ValueError("the audit encryption key must be 32 bytes (AES-256)")
    return AESGCM(bytes(key))


def key_id(key: bytes) -> str:
    """A short public identifier of ``key`` (never the key itself)."""
    return hashlib.sha256(b"proxilion-audit-key-id\x00" + bytes(key)).hexdigest()[:16]


def _aad(event_id: str, timestamp: str, sequence_number: int) -> bytes:
    return f"proxilion-audit/v1\n{event_id}\n{timestamp}\n{sequence_number}".encode()


def encrypt_data(
    data: dict[str, Any], key: bytes, event_id: str, timestamp: str, sequence_number: int
) -> dict[str, str]:
    """The envelope holding ``data`` encrypted under ``key`` for this entry."""
    aes = _aesgcm(key)
    nonce = os.urandom(12)
    plaintext = impl.canonical_json(data).encode("utf-8")
    ct = aes.encrypt(nonce, plaintext, _aad(event_id, timestamp, sequence_number))
    return {
        "_enc": ENVELOPE_TAG,
        "kid": key_id(key),
        "nonce": base64.b64encode(nonce).decode(),
        "ct": base64.b64encode(ct).decode(),
    }


def is_encrypted(data: object) -> bool:
    """Whether an entry's ``data`` member is an encryption envelope."""
    return isinstance(data, dict) and data.get("_enc") == ENVELOPE_TAG


def decrypt_data(entry: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The plaintext ``data`` of a parsed entry (a JSONL line as a dict).

    Raises ``ValueError`` when the entry is not encrypted, was encrypted under another key,
    or does not authenticate (tampered ciphertext, or an envelope moved between entries).
    """
    from cryptography.exceptions import InvalidTag

    env = entry.get("data")
    if not is_encrypted(env):
        raise ValueError("the entry's data is not encrypted")
    assert isinstance(env, dict)
    if env.get("kid") != key_id(key):
        raise ValueError(f"the entry was encrypted under key {env.get('kid')!r}, not this key")
    aes = _aesgcm(key)
    try:
        nonce = base64.b64decode(env["nonce"], validate=True)
        ct = base64.b64decode(env["ct"], validate=True)
        aad = _aad(entry["event_id"], entry["timestamp"], entry["sequence_number"])
        plaintext = aes.decrypt(nonce, ct, aad)
    except (InvalidTag, KeyError, ValueError, TypeError) as exc:
        raise ValueError(
            f"the encrypted payload of entry {entry.get('event_id')!r} does not authenticate"
        ) from exc
    out: dict[str, Any] = json.loads(plaintext)
    return out
