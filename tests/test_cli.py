"""The ``proxilion`` command (demo, version, info)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

import proxilion
from proxilion.cli import COMMANDS, build_parser, main, run_demo


def test_demo_subprocess_exits_zero_with_allowed_and_denied_lines() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "proxilion.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "ALLOWED  get_customer(customer_id='c-42')" in out
    assert "DENIED   get_customer(customer_id='c-42')         user=bob" in out
    assert "reason: Policy CustomerRecordsPolicy.can_read returned False" in out
    assert "(missing permission 'customer:export')" in out
    assert "reason: Policy DenyAllPolicy denied action 'execute'" in out  # unknown resource
    assert "HALTED   get_customer(customer_id='c-42')" in out
    assert out.rstrip().endswith(
        "summary: 14 calls, 4 allowed, 5 denied, 3 blocked, 1 limited, 1 halted; "
        "14 decisions in the audit log, hash chain intact"
    )


@pytest.mark.backend
def test_demo_in_process() -> None:
    buf = io.StringIO()
    assert run_demo(buf) == 0
    lines = buf.getvalue().splitlines()
    verdicts = [
        line.split()[0]
        for line in lines
        if line.startswith("  ")
        and line.split()[0] in ("ALLOWED", "DENIED", "BLOCKED", "LIMITED", "HALTED")
    ]
    assert verdicts == [
        "ALLOWED",
        "DENIED",
        "DENIED",
        "DENIED",
        "ALLOWED",
        "BLOCKED",
        "BLOCKED",
        "BLOCKED",
        "ALLOWED",
        "DENIED",
        "ALLOWED",
        "LIMITED",
        "DENIED",
        "HALTED",
    ]


def test_main_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "summary: 14 calls, 4 allowed, 5 denied, 3 blocked, 1 limited, 1 halted" in out
    assert "14 decisions in the audit log, hash chain intact" in out
    assert "UNEXPECTED" not in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out == (
        f"proxilion {proxilion.__version__} (API of the original {proxilion.__compat_version__})\n"
    )


@pytest.mark.backend
def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == proxilion.backend()
    assert info["build_info"] == json.loads(json.dumps(proxilion.build_info()))
    assert info["version"] == proxilion.__version__


@pytest.mark.backend
def test_info_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"backend: {proxilion.backend()}" in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: proxilion" in capsys.readouterr().out


def test_unknown_command_is_an_argparse_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_commands_are_pluggable() -> None:
    def register(sub: object) -> None:
        p = sub.add_parser("hello")  # type: ignore[attr-defined]
        p.set_defaults(handler=lambda args: 7)

    COMMANDS.append(register)
    try:
        assert main(["hello"]) == 7
    finally:
        COMMANDS.remove(register)
    assert "hello" not in build_parser().format_help()
