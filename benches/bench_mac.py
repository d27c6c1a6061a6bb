"""HMAC-SHA256 sign/verify: native vs reference (group = operation, compare within a group)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

KEY = b"k" * 32
MSG_200 = b"m" * 200
MSG_64K = b"m" * 65536


@pytest.mark.benchmark(group="hmac_sign_200B")
def test_sign_200b(benchmark: Any, impl: ModuleType) -> None:
    benchmark(impl.hmac_sha256_hex, KEY, MSG_200)


@pytest.mark.benchmark(group="hmac_verify_200B")
def test_verify_200b(benchmark: Any, impl: ModuleType) -> None:
    tag = impl.hmac_sha256_hex(KEY, MSG_200)
    assert benchmark(impl.hmac_sha256_verify, KEY, MSG_200, tag) is True


@pytest.mark.benchmark(group="hmac_sign_64KiB")
def test_sign_64k(benchmark: Any, impl: ModuleType) -> None:
    benchmark(impl.hmac_sha256_hex, KEY, MSG_64K)
