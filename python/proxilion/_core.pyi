"""Type stub of the native extension ``proxilion._core`` (built from rust/python).

Each area of the binding has its own section below. Every function here has a pure-Python
twin with the same signature in ``proxilion._reference``.
"""

from collections.abc import Sequence
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
    # sign
    "SigningKeys",
    "py_float_repr",
    "role_injection_rule",
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

# --- sign: key sets, batch HMAC, memory-context walk (rust/core/src/sign) ------------------

@final
class SigningKeys:
    """HMAC-SHA256 keys; the first signs, all verify (rotation). Keys are never shown."""

    def __new__(cls, keys: Sequence[str | bytes]) -> SigningKeys: ...
    def __len__(self) -> int: ...
    def sign(self, message: str | bytes) -> str: ...
    def sign_many(self, messages: Sequence[str | bytes]) -> list[str]: ...
    def verify(self, message: str | bytes, tag: str | bytes) -> int: ...
    def verify_many(
        self, messages: Sequence[str | bytes], tags: Sequence[str | bytes]
    ) -> list[int]: ...
    def memory_sign(
        self, role: str, content: str, sequence: int, timestamp: float, previous_hash: str
    ) -> tuple[str, str]: ...
    def memory_verify_context(
        self,
        messages: Sequence[Any],
        genesis: str,
        strict_sequence: bool,
        check_timestamps: bool,
        max_timestamp_drift: float,
        now: float | None,
        max_clock_skew: float,
        max_age: float | None,
    ) -> list[tuple[str, int, float, str, str]]: ...

def py_float_repr(x: float) -> str: ...
def role_injection_rule(text: str) -> int: ...
