"""Benchmarks: each hot path timed on the native backend and on its pure-Python twin in the
same run, so the ratio (not the absolute time) is the figure to report."""

from __future__ import annotations

from types import ModuleType

import pytest

from proxilion import _core, _reference


@pytest.fixture(params=["native", "reference"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    return _core if request.param == "native" else _reference
