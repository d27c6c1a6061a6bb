"""Child process of ``tests/test_compat_original.py``: runs compatibility jobs against one SDK.

Started twice per test session: once on the original pure-Python SDK (``python -S`` with
``PYTHONPATH=target/original-sdk``, see ``scripts/original_sdk.py``) and once on ours. The
same job code (``compat_ops.py``) runs in both, so results can be compared field by field.

Protocol (JSON Lines on stdin/stdout): the first line written is a handshake
``{"sdk", "file", "version", "sys_path"}`` proving which ``proxilion`` was imported; then each
input line is a JSON list of jobs ``{"op": name, "args": {...}}`` and the answer is one line,
a list with ``{"ok": value}`` or ``{"error": {"type", "message"}}`` per job. Anything the
libraries print goes to stderr, never into the protocol stream.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Any


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sdk", choices=["original", "ours"], required=True)
    ap.add_argument("--expect", required=True, help="directory proxilion must be loaded from")
    ap.add_argument("--forbid", required=True, help="directory that must not be on sys.path")
    args = ap.parse_args()

    proto = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr

    forbid = os.path.realpath(args.forbid)
    if any(os.path.realpath(p or ".") == forbid for p in sys.path):
        print(f"refusing to run: {forbid} is on sys.path", file=sys.stderr)
        return 3

    import compat_ops

    import proxilion

    file = os.path.realpath(proxilion.__file__ or "")
    hello = {
        "sdk": args.sdk,
        "file": file,
        "version": getattr(proxilion, "__version__", None),
        "sys_path": sys.path,
    }
    if not file.startswith(os.path.realpath(args.expect) + os.sep):
        hello["error"] = f"loaded {file}, expected a module under {args.expect}"
        proto.write(json.dumps(hello) + "\n")
        proto.flush()
        return 4
    proto.write(json.dumps(hello) + "\n")
    proto.flush()

    for line in sys.stdin:
        if not line.strip():
            continue
        results: list[dict[str, Any]] = []
        for job in json.loads(line):
            try:
                value = compat_ops.OPS[job["op"]](**job.get("args", {}))
                results.append({"ok": value})
            except Exception as exc:  # reported to the parent, which decides
                traceback.print_exc(file=sys.stderr)
                results.append({"error": {"type": type(exc).__name__, "message": str(exc)}})
        proto.write(json.dumps(results, default=repr) + "\n")
        proto.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
