"""The ``proxilion audit`` commands: ``verify``, ``prove``, ``checkpoint`` and ``keygen``.

Hook into a parent parser with :func:`add_audit_subcommands`; each subcommand sets
``args.handler`` to a function taking the parsed arguments and returning the exit status.
Standalone: ``python -m proxilion.audit.cli verify FILE...``.

Exit status of ``verify``: 0 intact, 1 tampered (or torn, or a checkpoint mismatch),
2 unreadable (missing file, I/O error, bad checkpoint or key file).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

__all__ = ["add_audit_subcommands", "main"]

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_UNREADABLE = 2

#: Logs at least this big get a progress bar (when stderr is a terminal, or --progress).
PROGRESS_MIN_BYTES = 16 << 20


class _ProgressBar:
    """A one-line progress bar on a text stream, redrawn at most 10 times a second."""

    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.width = width
        self.last = 0.0
        self.start = time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and done < self.total:
            return
        self.last = now
        frac = min(done / self.total, 1.0)
        filled = int(frac * self.width)
        rate = done / max(now - self.start, 1e-9) / 1e6
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:5.1f}% "
            f"{done / 1e6:8.1f} MB  {rate:7.1f} MB/s"
        )
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _out(args: argparse.Namespace) -> TextIO:
    stream: TextIO = getattr(args, "stdout", None) or sys.stdout
    return stream


def _err(args: argparse.Namespace) -> TextIO:
    stream: TextIO = getattr(args, "stderr", None) or sys.stderr
    return stream


def _total_size(paths: Sequence[str]) -> int:
    total = 0
    for p in paths:
        with contextlib.suppress(OSError):
            total += os.path.getsize(p)
    return total


def _load_checkpoints(args: argparse.Namespace) -> tuple[list[Any], Any]:
    from proxilion.audit.checkpoint import load_checkpoints, load_public_key

    if not args.checkpoint:
        return [], None
    if not args.public_key:
        raise ValueError("--checkpoint needs --public-key (the key that signed it)")
    cps = []
    for path in args.checkpoint:
        cps.extend(load_checkpoints(path))
    return cps, load_public_key(args.public_key)


def cmd_verify(args: argparse.Namespace) -> int:
    """``proxilion audit verify FILE...``"""
    from proxilion.audit.verify import verify_log

    out, err = _out(args), _err(args)
    try:
        checkpoints, public_key = _load_checkpoints(args)
    except (OSError, ValueError, TypeError) as exc:
        err.write(f"error: cannot load checkpoints: {exc}\n")
        return EXIT_UNREADABLE
    bar: _ProgressBar | None = None
    progress: Callable[[int], object] | None = None
    total = _total_size(args.files)
    if args.progress or (total >= PROGRESS_MIN_BYTES and err.isatty() and not args.json):
        bar = _ProgressBar(total, err)
        progress = bar
    result = verify_log(
        args.files,
        checkpoints=checkpoints,
        public_key=public_key,
        allow_genesis_restart=args.allow_restarts,
        progress=progress,
    )
    if bar is not None:
        bar.finish()
    if args.json:
        out.write(
            json.dumps(
                {
                    "valid": result.valid,
                    "status": result.status,
                    "kind": result.kind,
                    "message": result.error_message,
                    "file": result.file,
                    "line": result.line,
                    "verified_count": result.verified_count,
                    "bytes_read": result.bytes_read,
                    "root_hash": result.root.hex() if result.root else None,
                    "last_hash": result.last_hash,
                    "checkpoints_checked": result.checkpoints_checked,
                },
                sort_keys=True,
            )
            + "\n"
        )
    elif result.valid:
        extra = f", {result.checkpoints_checked} checkpoint(s) matched" if checkpoints else ""
        out.write(
            f"OK: {result.verified_count} entries in {len(args.files)} file(s) verified "
            f"({result.bytes_read} bytes{extra})\n"
        )
    else:
        out.write(f"{result.status.upper()}: {result.error_message}\n")
        out.write(f"{result.verified_count} entries verified before the problem\n")
    if result.valid:
        return EXIT_OK
    return EXIT_UNREADABLE if result.status == "unreadable" else EXIT_TAMPERED


def cmd_prove(args: argparse.Namespace) -> int:
    """``proxilion audit prove FILE... --index N``"""
    from proxilion.audit.verify import (
        LogNotVerifiedError,
        prove_inclusion,
        verify_inclusion_proof,
    )

    try:
        proof = prove_inclusion(args.files, args.index, args.tree_size)
    except LogNotVerifiedError as exc:
        _err(args).write(f"error: {exc}\n")
        return EXIT_UNREADABLE if exc.result.status == "unreadable" else EXIT_TAMPERED
    except (ValueError, OverflowError) as exc:
        _err(args).write(f"error: {exc}\n")
        return EXIT_UNREADABLE
    if not verify_inclusion_proof(proof):  # pragma: no cover - a bug, never expected
        _err(args).write("error: the generated proof does not verify\n")
        return EXIT_TAMPERED
    _out(args).write(json.dumps(proof.to_dict(), indent=2) + "\n")
    return EXIT_OK


def cmd_checkpoint(args: argparse.Namespace) -> int:
    """``proxilion audit checkpoint FILE... --key PRIVATE.pem [--out CHECKPOINTS]``"""
    from proxilion.audit.checkpoint import load_private_key, save_checkpoint, sign_checkpoint
    from proxilion.audit.verify import verify_log

    try:
        key = load_private_key(args.key)
    except (OSError, ValueError, TypeError) as exc:
        _err(args).write(f"error: cannot load the signing key: {exc}\n")
        return EXIT_UNREADABLE
    result = verify_log(args.files)
    if not result.valid:
        _err(args).write(f"refusing to checkpoint: {result.status}: {result.error_message}\n")
        return EXIT_UNREADABLE if result.status == "unreadable" else EXIT_TAMPERED
    cp = sign_checkpoint(key, result.verified_count, result.root, result.last_hash)
    if args.out:
        save_checkpoint(args.out, cp)
    _out(args).write(cp.to_json() + "\n")
    return EXIT_OK


def cmd_keygen(args: argparse.Namespace) -> int:
    """``proxilion audit keygen PRIVATE.pem PUBLIC.pem``"""
    from proxilion.audit.checkpoint import write_key_pair

    try:
        write_key_pair(args.private, args.public)
    except OSError as exc:
        _err(args).write(f"error: {exc}\n")
        return EXIT_UNREADABLE
    _out(args).write(f"wrote {args.private} (keep secret) and {args.public}\n")
    return EXIT_OK


def add_audit_subcommands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``audit`` with its subcommands to ``subparsers`` (from ``add_subparsers()``)."""
    audit: argparse.ArgumentParser = subparsers.add_parser(
        "audit", help="verify audit logs, prove entries, sign checkpoints"
    )
    sub = audit.add_subparsers(dest="audit_command", metavar="COMMAND")
    sub.required = True

    v = sub.add_parser("verify", help="verify log files (a rotated set in order) as one chain")
    v.add_argument("files", nargs="+", metavar="FILE")
    v.add_argument("--checkpoint", action="append", metavar="FILE", help="signed checkpoints")
    v.add_argument("--public-key", metavar="PEM", help="Ed25519 key that signed them")
    v.add_argument(
        "--allow-restarts",
        action="store_true",
        help="accept chains restarting at genesis (logs of the original SDK over restarts)",
    )
    v.add_argument("--progress", action="store_true", help="always show a progress bar")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.set_defaults(handler=cmd_verify)

    p = sub.add_parser("prove", help="inclusion proof (RFC 6962) for entry N")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--index", type=int, required=True, help="0-based entry index")
    p.add_argument("--tree-size", type=int, default=None, help="tree size (default: all)")
    p.set_defaults(handler=cmd_prove)

    c = sub.add_parser("checkpoint", help="verify, then sign (size, Merkle root, time)")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--key", required=True, metavar="PEM", help="Ed25519 private key")
    c.add_argument("--out", metavar="FILE", help="append the checkpoint to this file")
    c.set_defaults(handler=cmd_checkpoint)

    k = sub.add_parser("keygen", help="create an Ed25519 key pair for checkpoints")
    k.add_argument("private", metavar="PRIVATE_PEM")
    k.add_argument("public", metavar="PUBLIC_PEM")
    k.set_defaults(handler=cmd_keygen)
    return audit


def main(
    argv: Sequence[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``audit`` subcommands standalone; returns the exit status."""
    parser = argparse.ArgumentParser(prog="proxilion")
    add_audit_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["audit", *(sys.argv[1:] if argv is None else argv)])
    args.stdout = stdout or sys.stdout
    args.stderr = stderr or sys.stderr
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
