"""Pure-Python twins of every native hot path in ``proxilion._core``.

Each function here has the same name, signature, results and exceptions as its native
counterpart. The twins are the oracle for differential and property tests, the fallback when
the extension is missing, and the baseline that ``benches/`` divides by.
"""

from __future__ import annotations

from proxilion._reference.mac import (
    blake3_keyed_hex,
    constant_time_eq,
    hmac_sha256,
    hmac_sha256_hex,
    hmac_sha256_verify,
    sha256_hex,
)
from proxilion._reference.stats import DriftEngine, Ewma, Welford, drift_metric_names

__version__ = "0.1.0"

__all__ = [
    "DriftEngine",
    "Ewma",
    "Welford",
    "__version__",
    "blake3_keyed_hex",
    "build_info",
    "constant_time_eq",
    "drift_metric_names",
    "hmac_sha256",
    "hmac_sha256_hex",
    "hmac_sha256_verify",
    "sha256_hex",
    "version",
]


def version() -> str:
    """Version of the backend (same as the native crate version)."""
    return __version__


def build_info() -> dict[str, object]:
    """Facts about this backend, shaped like ``proxilion._core.build_info()``."""
    return {
        "version": __version__,
        "backend": "reference",
        "profile": "python",
        "features": ["mac", "stats"],
    }
