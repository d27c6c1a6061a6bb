"""Type stub of the native extension ``proxilion._core`` (built from rust/python).

Each area of the binding has its own section below. Every function here has a pure-Python
twin with the same signature in ``proxilion._reference``.
"""

from typing import Any

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
