"""Shared fixtures.

``impl`` runs a test once per hot-path backend (the Rust extension and its pure-Python
twin), for tests of the low-level interface. Tests of higher-level behaviour that depends on
the backend are marked ``@pytest.mark.backend``; the test command runs those a second time
with ``PROXILION_BACKEND=reference``.
"""

from __future__ import annotations

import gc
from types import ModuleType

import pytest

from proxilion import _reference

try:
    from proxilion import _core
except ImportError:  # pragma: no cover - the test command always builds it
    _core = None  # type: ignore[assignment]

BACKENDS: dict[str, ModuleType | None] = {"native": _core, "reference": _reference}


@pytest.fixture(params=sorted(BACKENDS))
def impl(request: pytest.FixtureRequest) -> ModuleType:
    mod = BACKENDS[request.param]
    if mod is None:
        pytest.fail("the native extension proxilion._core is not built")
    return mod


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--gc-stress",
        action="store_true",
        help="collect garbage every few allocations (finds native objects that are traversed "
        "before they are fully built, or released twice)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--gc-stress"):
        gc.set_threshold(5, 1, 1)
