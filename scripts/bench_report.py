"""Summarise a pytest-benchmark JSON file as a Markdown table of ratios.

Usage: python scripts/bench_report.py target/bench-all.json

Benchmarks parametrised by the ``impl`` fixture (``[native]`` / ``[reference]``) are paired
within their group and reported as reference/native; every other benchmark is listed with
its median. Only ratios from one run are meaningful: absolute times depend on the machine.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path


def _fmt(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def main(path: str) -> int:
    data = json.loads(Path(path).read_text())
    pairs: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    singles: list[tuple[str, str, float]] = []
    for bench in data["benchmarks"]:
        name = bench["name"]
        group = bench.get("group") or bench["fullname"].split("::")[0]
        median = bench["stats"]["median"]
        m = re.search(r"\[(native|reference)(?:-([^\]]*))?\]$", name)
        if m:
            base = name[: m.start()] + (f"[{m.group(2)}]" if m.group(2) else "")
            pairs[(group, base)][m.group(1)] = median
        else:
            singles.append((group, name, median))
    print("| group | benchmark | native | reference | reference / native |")
    print("|---|---|---|---|---|")
    for (group, base), impls in sorted(pairs.items()):
        native, reference = impls.get("native"), impls.get("reference")
        ratio = f"{reference / native:.1f}x" if native and reference else "-"
        print(
            f"| {group} | {base} | {_fmt(native) if native else '-'} | "
            f"{_fmt(reference) if reference else '-'} | {ratio} |"
        )
    if singles:
        print()
        print("| group | benchmark | median |")
        print("|---|---|---|")
        for group, name, median in sorted(singles):
            print(f"| {group} | {name} | {_fmt(median)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "target/bench-all.json"))
