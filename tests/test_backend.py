"""Backend selection: native by default, reference on request, loud fallback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import proxilion


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "PROXILION_BACKEND"}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        capture_output=True,
        text=True,
        env=full,
        check=False,
    )


def test_native_is_active_by_default() -> None:
    r = _run("import proxilion; print(proxilion.backend())")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "native"


def test_env_forces_reference() -> None:
    r = _run(
        "import proxilion; print(proxilion.backend(), proxilion.build_info()['backend'])",
        PROXILION_BACKEND="reference",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["reference", "reference"]


def test_bad_env_value_is_named() -> None:
    r = _run("import proxilion", PROXILION_BACKEND="fast")
    assert r.returncode != 0
    assert "PROXILION_BACKEND must be 'auto', 'native' or 'reference', got 'fast'" in r.stderr


_HIDE_CORE = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'proxilion._core':\n"
    "            raise ImportError('blocked for the test')\n"
    "sys.meta_path.insert(0, Block())\n"
)


def test_missing_extension_falls_back_with_one_warning() -> None:
    r = _run(
        _HIDE_CORE + "import proxilion, proxilion._backend\n"
        "import importlib; print(proxilion.backend())"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "reference"
    assert r.stderr.count("BackendWarning") == 1
    assert "native extension unavailable" in r.stderr


def test_missing_extension_with_native_forced_fails() -> None:
    r = _run(_HIDE_CORE + "import proxilion", PROXILION_BACKEND="native")
    assert r.returncode != 0
    assert "PROXILION_BACKEND=native but the extension proxilion._core is not importable" in (
        r.stderr
    )


@pytest.mark.backend
def test_backend_reflects_this_process() -> None:
    expected = os.environ.get("PROXILION_BACKEND", "native")
    assert proxilion.backend() == ("reference" if expected == "reference" else "native")
    assert proxilion.build_info()["backend"] == proxilion.backend()
