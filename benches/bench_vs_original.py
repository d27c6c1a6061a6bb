"""Ours vs the original pure-Python SDK (PyPI ``proxilion==0.0.6``), timed in one run.

    .venv/bin/python benches/bench_vs_original.py [--rounds 7] [--target 0.05] [--only OP ...]

Starts two children running ``benches/compat/timing.py``: one on the original (installed
once into ``target/original-sdk`` by ``scripts/original_sdk.py``, run under ``python -S`` so
our package is not importable) and one on ours. For every operation of API.md section 14 both
time the same source code through the public API: ``k`` calls per repeat (``k`` calibrated
once on the original so a repeat takes about ``--target`` seconds, then used by both), with
the collector off, repeats alternating between the two children (ABBA order), ``--rounds``
repeats each. The figure is the best repeat (``timeit``'s rule: the least disturbed run) per
call, and the ratio is original / ours (> 1: ours is faster). Rows whose module is not in our
build (guards, behavioural drift while they are being merged) say so instead of a figure.

Prints a table and writes it as JSON (default ``target/bench_vs_original.json``). Not a
pytest-benchmark suite: the two SDKs share an import name and cannot live in one process.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TIMING = ROOT / "benches" / "compat" / "timing.py"
DEFAULT_JSON = ROOT / "target" / "bench_vs_original.json"

#: Row order of the table (API.md section 14).
ORDER = [
    "input_guard_70",
    "input_guard_148",
    "input_guard_10k",
    "output_guard_10k",
    "output_redact_10k",
    "bucket_allow",
    "bucket_10k_keys",
    "bucket_denied",
    "breaker_call",
    "audit_log_file",
    "verify_jsonl_chain",
    "hash_chain_append",
    "hash_chain_verify",
    "memory_sign",
    "memory_verify_100",
    "capsule_create",
    "intent_validate",
    "drift_record",
    "drift_check",
    "idor_validate",
    "agent_sign",
    "agent_verify",
    "authorize_memory",
    "authorize_file",
    "authorize_off",
    "rate_limited",
    "circuit_protected",
    "bare_call",
]


def _installer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("original_sdk", ROOT / "scripts/original_sdk.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Child:
    """A ``timing.py`` child on one SDK."""

    def __init__(self, osdk: ModuleType, sdk: str, workdir: Path) -> None:
        self.sdk = sdk
        cmd = osdk.child_command(
            TIMING,
            "--sdk",
            sdk,
            "--expect",
            str(osdk.expected_dir(sdk)),
            "--workdir",
            str(workdir),
            sdk=sdk,
        )
        self.proc = subprocess.Popen(
            cmd,
            env=osdk.child_env(sdk),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.hello: dict[str, Any] = self._read()
        if "error" in self.hello:
            raise RuntimeError(f"{sdk} child: {self.hello['error']}")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.sdk} child exited (code {self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(30)


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e9:.0f} ns"


def measure(
    ops: list[str], rounds: int, target: float, workdir: Path, progress: bool = True
) -> dict[str, Any]:
    """Time ``ops`` in both SDKs; returns the report (rows and environment)."""
    osdk = _installer()
    osdk.ensure()
    orig = Child(osdk, "original", workdir)
    ours = Child(osdk, "ours", workdir)
    rows: list[dict[str, Any]] = []
    try:
        for name in ops:
            so, su = orig.ask(cmd="setup", op=name), ours.ask(cmd="setup", op=name)
            row: dict[str, Any] = {"op": name, "label": so.get("label") or su.get("label") or name}
            row["unit"] = so.get("unit") or su.get("unit")
            problem = so.get("na") or so.get("error") or su.get("error")
            if problem or "na" in su:
                row["status"] = "n/a (not in this build)" if "na" in su else f"error: {problem}"
                row["detail"] = su.get("na") or problem
                rows.append(row)
                if progress:
                    print(f"  {name}: {row['status']}", file=sys.stderr)
                continue
            k = orig.ask(cmd="calibrate", op=name, target=target)["number"]
            times: dict[str, list[float]] = {"original": [], "ours": []}
            for r in range(rounds):
                pair = (orig, ours) if r % 2 == 0 else (ours, orig)
                for child in pair:
                    answer = child.ask(cmd="time", op=name, number=k)
                    if "error" in answer:
                        raise RuntimeError(f"{child.sdk} {name}: {answer['error']}")
                    times[child.sdk].append(answer["seconds"])
            per = k * so["per"]
            best = {s: min(t) / per for s, t in times.items()}
            median = {s: statistics.median(t) / per for s, t in times.items()}
            row.update(
                status="ok",
                calls_per_repeat=k,
                units_per_call=so["per"],
                repeats=rounds,
                original=best["original"],
                ours=best["ours"],
                ratio=best["original"] / best["ours"],
                original_median=median["original"],
                ours_median=median["ours"],
                ratio_median=median["original"] / median["ours"],
            )
            rows.append(row)
            if progress:
                print(
                    f"  {name}: {_fmt(row['original'])} / {_fmt(row['ours'])} = "
                    f"{row['ratio']:.2f}x",
                    file=sys.stderr,
                )
    finally:
        orig.close()
        ours.close()
    return {
        "command": " ".join(["python", "benches/bench_vs_original.py", *sys.argv[1:]]),
        "rounds": rounds,
        "target_seconds_per_repeat": target,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "original": {k: orig.hello.get(k) for k in ("version", "file")},
        "ours": {k: ours.hello.get(k) for k in ("version", "backend", "build")},
        "rows": rows,
    }


def table(report: dict[str, Any]) -> str:
    """Markdown table of a report."""
    lines = [
        "| operation | unit | original | ours | original / ours |",
        "|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        if row["status"] == "ok":
            cells = [_fmt(row["original"]), _fmt(row["ours"]), f"{row['ratio']:.1f}x"]
        else:
            cells = ["-", "-", row["status"]]
        lines.append(f"| {row['label']} | {row['unit']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="repeats per SDK and operation")
    ap.add_argument("--target", type=float, default=0.05, help="seconds per repeat")
    ap.add_argument("--only", nargs="+", metavar="OP", choices=ORDER, help="operations to run")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the report")
    args = ap.parse_args(argv)
    if args.rounds < 1 or not args.target > 0:
        ap.error("--rounds must be >= 1 and --target > 0")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-vs-original-") as tmp:
        report = measure(args.only or ORDER, args.rounds, args.target, Path(tmp))
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    build = report["ours"].get("build") or {}
    print(
        f"original {report['original']['version']} vs ours {report['ours']['version']} "
        f"({report['ours'].get('backend')} backend, {build.get('profile', '?')} build), "
        f"Python {report['python']}, {report['cpus']} CPUs, load {report['load_average']}"
    )
    print(table(report))
    print(f"\nwritten to {args.json}")
    return 1 if any(r["status"].startswith("error") for r in report["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
