#!/usr/bin/env python3
"""Install the original pure-Python SDK (PyPI ``proxilion==0.0.6``) for comparison runs.

The original has the same import name as this package, so it must never be installed into
the project's virtualenv. It goes into ``target/original-sdk`` (inside the ignored ``target/``
directory), once, pinned by the wheel's SHA-256, and is only ever imported by child
processes that this module starts with :func:`child_command`: ``python -S`` (no
site-packages, so the project's editable install is not on ``sys.path``) with
``PYTHONPATH=target/original-sdk``. The original has no runtime dependencies.

    python scripts/original_sdk.py            install if needed, print the directory
    python scripts/original_sdk.py --check    also start a child and print proxilion.__file__

Used by ``tests/test_compat_original.py`` and ``benches/bench_vs_original.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: The only release of the original on PyPI that installs (its repository is at 0.0.8).
VERSION = "0.0.6"
#: SHA-256 of ``proxilion-0.0.6-py3-none-any.whl`` as published on PyPI.
WHEEL_SHA256 = "d3460afbadb7a4b677b0284061f47a081a30caa180ba0abac5cd2ad27be61de7"

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "target" / "original-sdk"
#: The directory of this project's package (must not be importable in an original child).
OURS = ROOT / "python"


class InstallError(RuntimeError):
    """The original SDK could not be installed (no network, PyPI down, hash mismatch...)."""


def installed(target: Path = TARGET) -> bool:
    """True when ``target`` holds the pinned release."""
    return (target / f"proxilion-{VERSION}.dist-info").is_dir() and (
        target / "proxilion" / "__init__.py"
    ).is_file()


def ensure(target: Path = TARGET, python: str | None = None, timeout: float = 300.0) -> Path:
    """Install the original into ``target`` unless it is there; return ``target``.

    The install goes to a temporary sibling directory that is renamed into place, so a
    concurrent or interrupted run never leaves a half-installed tree behind.

    Raises:
        InstallError: pip failed (the message carries pip's output).
    """
    if installed(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="original-sdk.", dir=target.parent))
    try:
        req = tmp / "requirements.txt"
        req.write_text(f"proxilion=={VERSION} --hash=sha256:{WHEEL_SHA256}\n", encoding="utf-8")
        site = tmp / "site"
        cmd = [
            python or sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--require-hashes",
            "--target",
            str(site),
            "-r",
            str(req),
        ]
        try:
            # A fixed argument list (no shell): this interpreter running pip.
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)  # noqa: S603
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InstallError(f"pip could not run: {exc}") from exc
        if proc.returncode != 0 or not installed(site):
            raise InstallError(
                f"pip install proxilion=={VERSION} failed (exit {proc.returncode}):\n"
                f"{proc.stdout}{proc.stderr}".rstrip()
            )
        try:
            site.rename(target)
        except OSError:
            if not installed(target):  # lost a race only if the winner succeeded
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def child_command(script: Path | str, *args: str, sdk: str = "original") -> list[str]:
    """Command line running ``script`` with the original (``sdk="original"``) or ours.

    The original runs under ``python -S``: no site-packages, hence not the project's
    editable install; ``child_env`` puts ``target/original-sdk`` on ``PYTHONPATH``.
    """
    flags = ["-S"] if sdk == "original" else []
    return [sys.executable, *flags, str(script), *args]


def child_env(sdk: str = "original", target: Path = TARGET) -> dict[str, str]:
    """Environment for :func:`child_command` (``PYTHONPATH`` names the one package to use)."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONHASHSEED"] = "0"
    # Each child imports exactly one package: the original's install, or this checkout's
    # python/ directory (first on sys.path, whatever else the interpreter has installed).
    env["PYTHONPATH"] = str(target if sdk == "original" else OURS)
    return env


def expected_dir(sdk: str, target: Path = TARGET) -> Path:
    """Directory ``proxilion.__file__`` must lie in for a child of ``sdk``."""
    return (target if sdk == "original" else OURS) / "proxilion"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="import it in a child and report")
    args = ap.parse_args(argv)
    try:
        target = ensure()
    except InstallError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(target)
    if args.check:
        code = "import proxilion, sys; print(proxilion.__file__, proxilion.__version__)"
        out = subprocess.run(  # noqa: S603 - fixed argument list
            [sys.executable, "-S", "-c", code],
            env=child_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(out)
        if not out.startswith(str(expected_dir("original"))):
            print("the child did not load the original SDK", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
