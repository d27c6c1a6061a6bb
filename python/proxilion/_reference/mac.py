"""Reference twin of ``rust/core/src/mac``: HMAC-SHA256, SHA-256, keyed BLAKE3."""

from __future__ import annotations

import hashlib
import hmac as _hmac

from proxilion._reference._convert import text_or_bytes


def _key(key: object) -> bytes:
    k = text_or_bytes(key, "key")
    if not k:
        raise ValueError("secret key must not be empty")
    return k


def hmac_sha256(key: str | bytes, message: str | bytes) -> bytes:
    """HMAC-SHA256 of ``message`` under ``key``, as 32 raw bytes."""
    k = _key(key)
    m = text_or_bytes(message, "message")
    return _hmac.new(k, m, hashlib.sha256).digest()


def hmac_sha256_hex(key: str | bytes, message: str | bytes) -> str:
    """HMAC-SHA256 of ``message`` under ``key``, as 64 lower-case hex characters."""
    k = _key(key)
    m = text_or_bytes(message, "message")
    return _hmac.new(k, m, hashlib.sha256).hexdigest()


def hmac_sha256_verify(key: str | bytes, message: str | bytes, tag: str | bytes) -> bool:
    """Constant-time check of an HMAC-SHA256 tag given as hex ``str`` or raw ``bytes``."""
    k = _key(key)
    m = text_or_bytes(message, "message")
    expected = _hmac.new(k, m, hashlib.sha256).digest()
    if isinstance(tag, str):
        try:
            raw = bytes.fromhex(tag)
        except ValueError:
            return False
        # bytes.fromhex skips ASCII whitespace; the native decoder does not.
        if len(tag) != 2 * len(raw):
            return False
        return _hmac.compare_digest(expected, raw)
    return _hmac.compare_digest(expected, text_or_bytes(tag, "tag"))


def constant_time_eq(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time equality of two ``str``/``bytes`` values (lengths are not secret)."""
    return _hmac.compare_digest(text_or_bytes(a, "a"), text_or_bytes(b, "b"))


def sha256_hex(data: str | bytes) -> str:
    """SHA-256 of ``data``, as 64 lower-case hex characters."""
    return hashlib.sha256(text_or_bytes(data, "data")).hexdigest()


def blake3_keyed_hex(key: str | bytes, message: str | bytes) -> str:
    """Keyed BLAKE3 of ``message`` (key: exactly 32 bytes), as 64 lower-case hex characters.

    Needs the ``blake3`` package (the reference twin has no BLAKE3 of its own).
    """
    k = text_or_bytes(key, "key")
    m = text_or_bytes(message, "message")
    if len(k) != 32:
        raise ValueError(f"BLAKE3 keyed hashing needs a 32-byte key, got {len(k)} bytes")
    try:
        import blake3  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "keyed BLAKE3 in the reference backend needs the 'blake3' package"
        ) from exc
    digest: str = blake3.blake3(m, key=k).hexdigest()
    return digest
