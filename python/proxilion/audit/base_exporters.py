"""Exporters and JSONL file helpers (``proxilion.audit.base_exporters``).

:func:`verify_jsonl_chain` keeps the original's signature and error strings, but runs the
native streaming verifier, so it is stricter where the original is lax: a torn last line, a
duplicate key or an extra top-level field is reported, never accepted.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TextIO

from proxilion.audit.events import AuditEventV2
from proxilion.audit.hash_chain import HashChain, MerkleBatch

__all__ = [
    "CallbackExporter",
    "ConsoleExporter",
    "Exporter",
    "FileExporter",
    "MultiExporter",
    "StreamExporter",
    "read_jsonl_events",
    "verify_jsonl_chain",
]


def _open_text(path: str | os.PathLike[str]) -> IO[str]:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    if gz:
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _iter_entry_dicts(paths: Iterable[str | os.PathLike[str]]) -> Iterator[dict[str, Any]]:
    for path in paths:
        with _open_text(path) as f:
            for line in f:
                if not line.strip():
                    continue
                d = json.loads(line)
                if isinstance(d, dict) and d.get("_type") == "batch_marker":
                    continue
                yield d


def read_jsonl_events(
    path: str | os.PathLike[str], encryption_key: bytes | None = None
) -> Iterator[AuditEventV2]:
    """Events of a JSONL audit file (blank lines and batch markers skipped). Encrypted
    payloads are decrypted and authenticated with ``encryption_key`` (``ValueError`` without
    it or on a payload that does not authenticate); the events keep the stored envelope, so
    ``verify_hash()`` still holds."""
    from proxilion.audit.encryption import decrypt_data, is_encrypted

    for d in _iter_entry_dicts([path]):
        if is_encrypted(d.get("data")):
            if encryption_key is None:
                raise ValueError(
                    f"entry {d.get('event_id')!r} is encrypted: pass encryption_key to read it"
                )
            envelope = d["data"]
            event = AuditEventV2.from_dict({**d, "data": decrypt_data(d, encryption_key)})
            event.__dict__["_wire_data"] = envelope
            yield event
        else:
            yield AuditEventV2.from_dict(d)


def verify_jsonl_chain(path: str | os.PathLike[str]) -> tuple[bool, str | None]:
    """``(True, None)`` if the file's chain verifies, else ``(False, message)`` with the
    original's messages (``n`` counts entries, not physical lines)."""
    from proxilion.audit.verify import verify_log

    try:
        r = verify_log(path)
    except Exception as exc:
        return False, f"Verification error: {exc}"
    if r.valid:
        return True, None
    n = r.verified_count + 1
    if r.kind in ("link", "genesis"):
        return False, f"Chain broken at line {n}: expected {r.expected}, got {r.got}"
    if r.kind == "hash":
        return False, f"Invalid hash at line {n}: event tampered"
    if r.kind in ("parse", "torn", "encoding"):
        return False, f"JSON parse error at line {n}: {r.error_message}"
    return False, f"Verification error: {r.error_message}"


class Exporter(ABC):
    """Destination for audit events, batches and chains."""

    @abstractmethod
    def export_event(self, event: AuditEventV2) -> None:
        """Export one event."""

    def export_batch(self, batch: MerkleBatch) -> None:  # noqa: B027 - optional hook
        """Export a finalised Merkle batch (ignored by default)."""

    def export_chain(self, chain: HashChain) -> None:
        """Export every event held by ``chain``."""
        for event in chain:
            self.export_event(event)

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Flush buffered output."""

    def close(self) -> None:
        """Flush and release resources."""
        self.flush()

    def __enter__(self) -> Exporter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class StreamExporter(Exporter):
    """Writes each event as one JSON line to a text stream."""

    def __init__(self, stream: TextIO, pretty: bool = False) -> None:
        self._stream = stream
        self._pretty = pretty
        self._lock = threading.Lock()

    def export_event(self, event: AuditEventV2) -> None:
        with self._lock:
            self._stream.write(event.to_json(pretty=self._pretty) + "\n")

    def export_batch(self, batch: MerkleBatch) -> None:
        with self._lock:
            record = {"_type": "batch_marker", "batch": batch.to_dict()}
            self._stream.write(json.dumps(record, sort_keys=True) + "\n")

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()


class ConsoleExporter(StreamExporter):
    """Writes events to standard output."""

    def __init__(self, pretty: bool = False) -> None:
        super().__init__(sys.stdout, pretty)


class FileExporter(StreamExporter):
    """Appends events as JSON lines to a file (UTF-8)."""

    def __init__(self, path: str | os.PathLike[str], pretty: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(open(self.path, "a", encoding="utf-8"), pretty)  # noqa: SIM115

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._stream.close()


class CallbackExporter(Exporter):
    """Calls a function with each event (and optionally each batch)."""

    def __init__(
        self,
        callback: Callable[[AuditEventV2], object],
        batch_callback: Callable[[MerkleBatch], object] | None = None,
    ) -> None:
        self._callback = callback
        self._batch_callback = batch_callback

    def export_event(self, event: AuditEventV2) -> None:
        self._callback(event)

    def export_batch(self, batch: MerkleBatch) -> None:
        if self._batch_callback is not None:
            self._batch_callback(batch)


class MultiExporter(Exporter):
    """Sends everything to several exporters."""

    def __init__(self, exporters: Iterable[Exporter]) -> None:
        self.exporters = list(exporters)

    def export_event(self, event: AuditEventV2) -> None:
        for e in self.exporters:
            e.export_event(event)

    def export_batch(self, batch: MerkleBatch) -> None:
        for e in self.exporters:
            e.export_batch(batch)

    def flush(self) -> None:
        for e in self.exporters:
            e.flush()

    def close(self) -> None:
        for e in self.exporters:
            e.close()
