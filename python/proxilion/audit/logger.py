"""Audit loggers (``proxilion.audit.logger``): a hash-chained JSONL file log with rotation,
and an in-memory logger.

Differences from the original, all deliberate:

- ``AuditLogger.verify()`` verifies what is on disk (every file of a rotated log, in order),
  not only the copy held in memory, and names the first bad line. It returns a
  :class:`~proxilion.audit.verify.LogVerificationResult` (a ``ChainVerificationResult``).
- A logger opened on an existing log resumes its chain (and sequence numbers) from the last
  entry, so a log written by several processes in turn is one chain that verifies. A torn
  last line left by a crash is moved to ``<file>.torn`` before appending (with a warning).
- Appends are encoded and hashed in one native call, buffered and group-committed, with an
  fsync policy: ``fsync="always"`` (nothing acknowledged is ever lost), ``"interval"``
  (default; at most ``fsync_interval`` seconds of entries can be lost in an OS crash) or
  ``"never"``. With ``sync_writes=True`` (default) every entry reaches the OS before
  ``log`` returns, so killing the process loses nothing acknowledged.
- Only the last ``memory_events`` events stay in ``logger.chain`` (memory stays bounded).
- ``log_authorization`` builds, hashes, chains and queues each entry in one native call; the
  returned event materialises ``data`` and ``timestamp`` on first access (same values).
- ``InMemoryAuditLogger`` applies its ``redaction_config`` (the original stores it unused),
  and may keep only its last ``max_events`` events (default: all, as the original).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import json
import logging
import os
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from proxilion._backend import impl
from proxilion.audit.events import (
    AuditEventV2,
    RedactionConfig,
    _authorization_data,
    _ensure_sequence_at_least,
    _next_sequence,
    redact_sensitive_data,
)
from proxilion.audit.hash_chain import BatchedHashChain, ChainVerificationResult, MerkleBatch
from proxilion.audit.verify import LogVerificationResult, verify_log

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from proxilion.audit.checkpoint import Checkpoint

__all__ = ["AuditLogger", "InMemoryAuditLogger", "LoggerConfig", "RotationPolicy"]

_log = logging.getLogger("proxilion.audit")


class RotationPolicy(Enum):
    """When the log moves to a new file."""

    NONE = "none"
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    SIZE = "size"


_FSYNC = ("always", "interval", "never")


@dataclass
class LoggerConfig:
    """Settings of :class:`AuditLogger` (the original's fields, then ours)."""

    log_path: Path
    rotation: RotationPolicy = RotationPolicy.DAILY
    max_size_mb: float = 100.0
    compress_rotated: bool = True
    batch_size: int = 100
    redaction_config: RedactionConfig | None = None
    sync_writes: bool = True
    #: When to fsync: "always", "interval" or "never" (see the module docs).
    fsync: str = "interval"
    fsync_interval: float = 1.0
    #: "sha256" (compatible with the original) or "blake3" (new logs only).
    hash_algorithm: str = "sha256"
    #: Events kept in memory in ``logger.chain`` (the file keeps them all).
    memory_events: int = 1000
    #: 32-byte AES-256-GCM key: encrypt each entry's ``data`` at rest (the chain still
    #: verifies without the key). Never logged or shown in ``repr``.
    encryption_key: bytes | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.log_path = Path(self.log_path)
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.max_size_mb <= 0:
            raise ValueError(f"max_size_mb must be positive, got {self.max_size_mb}")
        if self.fsync not in _FSYNC:
            raise ValueError(f"fsync must be 'always', 'interval' or 'never', got {self.fsync!r}")
        if not 0 <= self.fsync_interval < float("inf"):
            raise ValueError(f"fsync_interval must be >= 0 seconds, got {self.fsync_interval}")
        if self.hash_algorithm not in ("sha256", "blake3"):
            raise ValueError(
                f"hash_algorithm must be 'sha256' or 'blake3', got {self.hash_algorithm!r}"
            )
        if self.memory_events < 1:
            raise ValueError(f"memory_events must be positive, got {self.memory_events}")
        if self.encryption_key is not None and (
            not isinstance(self.encryption_key, (bytes, bytearray))
            or len(self.encryption_key) != 32
        ):
            raise ValueError("encryption_key must be 32 bytes (AES-256)")

    @classmethod
    def default(cls, log_path: str | Path) -> LoggerConfig:
        """DAILY rotation and ``RedactionConfig.default()`` (PII hashed)."""
        return cls(
            log_path=Path(log_path),
            rotation=RotationPolicy.DAILY,
            redaction_config=RedactionConfig.default(),
        )


_TIME_PATTERN = r"\d{8}|\d{8}_\d{2}|\d{4}_W\d{2}"


def rotated_files(config: LoggerConfig) -> list[Path]:
    """The existing files of the log described by ``config``, oldest first."""
    path = config.log_path
    parent = path.parent if str(path.parent) else Path(".")
    stem, ext = path.stem, path.suffix
    if config.rotation is RotationPolicy.NONE:
        return [path] if path.exists() else []
    if config.rotation is RotationPolicy.SIZE:
        rx = re.compile(
            rf"^{re.escape(stem)}\.(\d{{8}}_\d{{6}})(?:_(\d+))?{re.escape(ext)}(\.gz)?$"
        )
        found: list[tuple[str, int, Path]] = []
        with contextlib.suppress(FileNotFoundError):
            for p in parent.iterdir():
                m = rx.match(p.name)
                if m:
                    found.append((m.group(1), int(m.group(2) or 0), p))
        out = [p for _, _, p in sorted(found)]
        if path.exists():
            out.append(path)
        return out
    rx = re.compile(rf"^{re.escape(stem)}_(?:{_TIME_PATTERN}){re.escape(ext)}$")
    with contextlib.suppress(FileNotFoundError):
        return sorted(p for p in parent.iterdir() if rx.match(p.name))
    return []


def _scan_tail(path: Path) -> tuple[dict[str, Any] | None, bytes]:
    """The last entry of an uncompressed log file and its torn trailing fragment (if any)."""
    size = path.stat().st_size
    chunk = 1 << 16
    while True:
        start = max(0, size - chunk)
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(size - start)
        torn = b""
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n")
            if cut < 0 and start > 0:
                chunk *= 2
                continue
            torn, data = data[cut + 1 :], data[: cut + 1]
        lines = data.split(b"\n")
        if start > 0:
            lines = lines[1:]
        for raw in reversed(lines):
            if not raw.strip():
                continue
            d = json.loads(raw)
            if not isinstance(d, dict):
                raise ValueError("not a JSON object")
            if d.get("_type") == "batch_marker":
                continue
            return d, torn
        if start == 0:
            return None, torn
        chunk *= 2


def _last_entry_gz(path: Path) -> dict[str, Any] | None:
    last = None
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                if isinstance(d, dict) and d.get("_type") != "batch_marker":
                    last = d
    return last


def _marker_line(batch: MerkleBatch) -> bytes:
    return (
        json.dumps({"_type": "batch_marker", "batch": batch.to_dict()}, sort_keys=True) + "\n"
    ).encode()


def _redacted(event: AuditEventV2, config: RedactionConfig) -> AuditEventV2:
    data = event.data
    new_data = dataclasses.replace(
        data,
        tool_arguments=redact_sensitive_data(data.tool_arguments, config),
        user_attributes=redact_sensitive_data(data.user_attributes, config),
        execution_result=(
            redact_sensitive_data(data.execution_result, config)
            if isinstance(data.execution_result, dict)
            else data.execution_result
        ),
    )
    return AuditEventV2(
        data=new_data,
        previous_hash=event.previous_hash,
        event_id=event.event_id,
        timestamp=event.timestamp,
        sequence_number=event.sequence_number,
    )


def _redact_inputs(
    config: RedactionConfig,
    tool_arguments: Any,
    user_attributes: Any,
    execution_result: Any,
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """The redacted arguments, attributes and result of a decision, as :func:`_redacted`
    leaves them in the logged event (redaction of the original's copies)."""
    return (
        redact_sensitive_data(dict(tool_arguments), config),
        redact_sensitive_data(dict(user_attributes or {}), config),
        redact_sensitive_data(execution_result, config)
        if isinstance(execution_result, dict)
        else execution_result,
    )


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _period(now: datetime, rotation: RotationPolicy) -> tuple[datetime, datetime]:
    """Start and end (same timezone as ``now``) of the rotation period holding ``now``: the interval
    over which the time suffix of the file name stays the same."""
    if rotation is RotationPolicy.HOURLY:
        start = now.replace(minute=0, second=0, microsecond=0)
        return start, start + timedelta(hours=1)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if rotation is RotationPolicy.DAILY:
        return day, day + timedelta(days=1)
    # WEEKLY (%Y_W%W): changes on Mondays and on January 1st.
    monday = day - timedelta(days=day.weekday())
    new_year = day.replace(month=1, day=1)
    next_year = new_year.replace(year=new_year.year + 1) if new_year.year < 9999 else None
    end = monday + timedelta(days=7)
    if next_year is not None and next_year < end:
        end = next_year
    return max(monday, new_year), end


class AuditLogger:
    """Tamper-evident JSONL audit log (thread-safe; a context manager).

    Opening a log that already has entries resumes its chain from the last entry (a torn
    last line is moved to ``<file>.torn`` first). If that last line is not a readable entry
    (or uses another hash algorithm) the constructor raises ``ValueError`` rather than start
    a chain that could never verify: verify the log and repair or move it first.

    ``clock`` (keyword-only) returns the time used for rotated file names (UTC, as in the
    original SDK, so every host names the same period the same way); it exists for tests.
    """

    def __init__(
        self, config: LoggerConfig, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.config = config
        self._clock = clock or _utc_now
        self._system_clock = clock is None
        # While time.time() is in [_period_from, _period_to) the file suffix is _period_suffix.
        self._period_from = self._period_to = 0.0
        self._period_suffix = ""
        self._lock = threading.RLock()
        self._writer: Any = None
        self._writer_suffix = ""
        self._closed = False
        config.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.chain = BatchedHashChain(
            config.batch_size, max_events=config.memory_events, algorithm=config.hash_algorithm
        )
        # The chain shares the logger's lock: recording a decision takes one lock.
        self.chain._lock = self.chain.chain._lock = self._lock
        self._resume()

    # -- files -----------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """The files of this log, oldest first (all of a rotated log)."""
        return rotated_files(self.config)

    _TIME_FORMATS: dict[RotationPolicy, str] = {  # noqa: RUF012 - constant
        RotationPolicy.DAILY: "%Y%m%d",
        RotationPolicy.HOURLY: "%Y%m%d_%H",
        RotationPolicy.WEEKLY: "%Y_W%W",
    }

    def _current_suffix(self) -> str:
        """The time suffix of the current file name ("" for NONE and SIZE rotation).

        With the system clock, the suffix is formatted once per rotation period (its local
        start and end are computed when it is first seen), not once per entry."""
        fmt = self._TIME_FORMATS.get(self.config.rotation)
        if fmt is None:
            return ""
        if not self._system_clock:
            return self._clock().strftime(fmt)
        t = time.time()
        if self._period_from <= t < self._period_to:
            return self._period_suffix
        now = datetime.fromtimestamp(t, timezone.utc)
        suffix = now.strftime(fmt)
        start, end = _period(now, self.config.rotation)
        try:
            t0, t1 = start.timestamp(), end.timestamp()
            # Periods are UTC, so every boundary exists; the check guards the arithmetic
            # (a period that cannot be represented is formatted per entry instead).
            exact = (
                datetime.fromtimestamp(t0, timezone.utc) == start
                and datetime.fromtimestamp(t1, timezone.utc) == end
            )
        except (OverflowError, OSError, ValueError):
            exact = False
        if exact and t0 <= t < t1:
            self._period_from, self._period_to, self._period_suffix = t0, t1, suffix
        else:
            self._period_from = self._period_to = 0.0
        return suffix

    def _path_for(self, suffix: str) -> Path:
        path = self.config.log_path
        if not suffix:
            return path
        return path.with_name(f"{path.stem}_{suffix}{path.suffix}")

    def _resume(self) -> None:
        files = self.files()
        for i, path in enumerate(reversed(files)):
            if path.name.endswith(".gz"):
                last = _last_entry_gz(path)
            else:
                try:
                    last, torn = _scan_tail(path)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise ValueError(
                        f"cannot resume the audit chain: the last line of {path} is not a "
                        f"valid entry ({exc}); verify the log"
                    ) from None
                if torn and i == 0:
                    self._set_aside(path, torn)
            if last is not None:
                head = last.get("event_hash")
                if not isinstance(head, str) or not head.startswith(
                    self.config.hash_algorithm + ":"
                ):
                    raise ValueError(
                        f"cannot resume the audit chain of {path}: its last event_hash "
                        f"{head!r} is not a {self.config.hash_algorithm} hash"
                    )
                self.chain._resume(head, 0)
                seq = last.get("sequence_number")
                if isinstance(seq, int) and not isinstance(seq, bool):
                    _ensure_sequence_at_least(seq)
                return

    @staticmethod
    def _set_aside(path: Path, torn: bytes) -> None:
        side = path.with_name(path.name + ".torn")
        with open(side, "ab") as f:
            f.write(torn + b"\n")
            f.flush()
            os.fsync(f.fileno())
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.truncate(size - len(torn))
            os.fsync(f.fileno())
        _log.warning(
            "audit log %s ended with a torn line (%d bytes, an append cut short by a crash); "
            "moved it to %s before appending",
            path,
            len(torn),
            side,
        )

    def _rotate_size(self) -> None:
        path = self.config.log_path
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        stamp = self._clock().strftime("%Y%m%d_%H%M%S")
        target = path.with_suffix(f".{stamp}{path.suffix}")
        n = 0
        while target.exists() or Path(str(target) + ".gz").exists():
            n += 1
            target = path.with_suffix(f".{stamp}_{n}{path.suffix}")
        os.replace(path, target)
        if self.config.compress_rotated:
            gz = Path(str(target) + ".gz")
            with open(target, "rb") as src, gzip.open(gz, "wb") as dst:
                shutil.copyfileobj(src, dst)
            with open(gz, "rb") as f:
                os.fsync(f.fileno())
            target.unlink()

    def _writer_now(self) -> Any:
        writer = self._writer
        if writer is not None:  # (never set on a closed logger)
            # Fast path: the open file is still the right one.
            rotation = self.config.rotation
            if rotation is RotationPolicy.NONE:
                return writer
            if rotation is not RotationPolicy.SIZE and self._system_clock:
                t = time.time()
                if (
                    self._period_from <= t < self._period_to
                    and self._period_suffix == self._writer_suffix
                ):
                    return writer
        if self._closed:
            raise ValueError("I/O operation on closed audit logger")
        suffix = self._current_suffix()
        if self.config.rotation is RotationPolicy.SIZE:
            path = self.config.log_path
            limit = self.config.max_size_mb * 1024 * 1024
            if self._writer is not None:
                size = self._writer.size
            else:
                size = path.stat().st_size if path.exists() else 0
            if size >= limit:
                self._rotate_size()
        if self._writer is None or suffix != self._writer_suffix:
            if self._writer is not None:
                self._writer.close()
            self._writer = impl.AuditFileWriter(
                self._path_for(suffix),
                self.config.fsync,
                self.config.fsync_interval,
                self.config.sync_writes,
            )
            self._writer_suffix = suffix
        return self._writer

    # -- logging ---------------------------------------------------------------------------

    def _log_locked(
        self, event: AuditEventV2, redact: bool = True
    ) -> tuple[AuditEventV2, Any, int]:
        writer = self._writer_now()
        if redact and self.config.redaction_config is not None:
            event = _redacted(event, self.config.redaction_config)
        key = self.config.encryption_key
        if key is not None:
            from proxilion.audit.encryption import encrypt_data

            event.__dict__["_wire_data"] = encrypt_data(
                event.data.to_dict(),
                bytes(key),
                event.event_id,
                event.timestamp.isoformat(),
                event.sequence_number,
            )
        line = self.chain._append_encoded(event)
        return event, writer, writer.enqueue(line)

    def log(self, event: AuditEventV2) -> AuditEventV2:
        """Redact (if configured), chain, hash and write ``event``; returns the logged event."""
        with self._lock:
            logged, writer, ticket = self._log_locked(event)
        writer.commit(ticket)
        return logged

    def log_authorization(
        self,
        user_id: str,
        user_roles: list[str],
        tool_name: str,
        tool_arguments: dict[str, Any],
        allowed: bool,
        reason: str | None = None,
        policies_evaluated: list[str] | None = None,
        session_id: str | None = None,
        user_attributes: dict[str, Any] | None = None,
        agent_id: str | None = None,
        agent_capabilities: list[str] | None = None,
        agent_trust_score: float | None = None,
        execution_result: dict[str, Any] | None = None,
    ) -> AuditEventV2:
        """Log one authorization decision (GRANTED or DENIED).

        The entry is built, hashed, chained and queued in one native call
        (``AuditChain.write_authorization``); the returned event materialises ``data`` and
        ``timestamp`` on first access. Same bytes, hashes and event as :meth:`log` of the
        event the original builds."""
        config = self.config
        if config.redaction_config is not None:
            tool_arguments, user_attributes, execution_result = _redact_inputs(
                config.redaction_config, tool_arguments, user_attributes, execution_result
            )
        # In the positional order of ``AuditChain.write_authorization`` after the sequence.
        args = (
            user_id,
            user_roles,
            tool_name,
            tool_arguments,
            allowed,
            reason,
            policies_evaluated,
            session_id,
            user_attributes,
            agent_id,
            agent_capabilities,
            agent_trust_score,
            execution_result,
        )
        if config.encryption_key is not None:
            return self._log_built(args)
        with self._lock:
            writer = self._writer_now()
            chain = self.chain
            with chain._lock:  # the logger's lock unless ``chain`` was replaced
                # The sequence number is drawn under the lock, so the file is in sequence
                # order.
                event, ticket = chain.chain._core.write_authorization(
                    writer, _next_sequence(), *args
                )
                if event.merkle_index + 1 >= chain.batch_size:
                    chain.finalize_batch()
        writer.commit(ticket)
        logged: AuditEventV2 = event
        return logged

    def _log_built(self, args: tuple[Any, ...]) -> AuditEventV2:
        """``log_authorization`` through a fully built event (entries encrypted at rest,
        whose hash covers the envelope of the whole ``data``); ``args`` are its 13
        arguments after redaction, in ``_authorization_data``'s order."""
        data = _authorization_data(*args)
        with self._lock:
            event = AuditEventV2(data=data, previous_hash="")
            logged, writer, ticket = self._log_locked(event, redact=False)
        writer.commit(ticket)
        return logged

    def finalize_batch(self) -> MerkleBatch | None:
        """Close the current Merkle batch and write a batch-marker line for it."""
        with self._lock:
            batch = self.chain.finalize_batch()
            if batch is not None:
                writer = self._writer_now()
                writer.commit(writer.enqueue(_marker_line(batch)))
            return batch

    def flush(self) -> None:
        """Write everything buffered and fsync it."""
        with self._lock:
            if self._writer is not None:
                self._writer.flush()

    def close(self) -> None:
        """Finalise the batch (writing its marker), flush and close the file."""
        with self._lock:
            if self._closed:
                return
            self.finalize_batch()
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            self._closed = True

    def __enter__(self) -> AuditLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- verification ----------------------------------------------------------------------

    def verify(self, progress: Callable[[int], object] | None = None) -> LogVerificationResult:
        """Verify the log on disk: every file of the rotated set, in order, as one chain.
        Buffered entries are flushed first."""
        self.flush()
        return verify_log(self.files(), progress=progress)

    def checkpoint(
        self,
        private_key: Ed25519PrivateKey | bytes,
        save_to: str | os.PathLike[str] | None = None,
    ) -> Checkpoint:
        """Verify the log, then sign a checkpoint of its current size and Merkle root
        (appended to ``save_to`` when given). Refuses (``ValueError``) on a log that does not
        verify."""
        from proxilion.audit.checkpoint import save_checkpoint, sign_checkpoint

        with self._lock:
            result = self.verify()
            if not result.valid:
                raise ValueError(
                    f"refusing to checkpoint a log that does not verify: {result.error}"
                )
            cp = sign_checkpoint(private_key, result.verified_count, result.root, result.last_hash)
        if save_to is not None:
            save_checkpoint(save_to, cp)
        return cp


class InMemoryAuditLogger:
    """Audit logger that keeps events in memory (tests, short-lived processes).

    ``max_events`` (keyword-only, ours) bounds memory: only the last ``max_events`` events
    are kept (in ``events`` and in ``chain``), and :meth:`verify` checks that window (its
    first event must link to the hash of the last one dropped). The default, None, keeps
    every event for the life of the logger, as the original does.

    Differences from the original, deliberate: ``redaction_config`` is applied (the original
    stores it unused); the extra arguments of :meth:`log_authorization` are keyword-only
    parameters rather than ``**kwargs`` (the same calls are accepted and rejected).
    """

    def __init__(
        self,
        batch_size: int = 100,
        redaction_config: RedactionConfig | None = None,
        *,
        max_events: int | None = None,
    ) -> None:
        if max_events is not None and (
            not isinstance(max_events, int) or isinstance(max_events, bool) or max_events < 1
        ):
            raise ValueError(f"max_events must be a positive int or None, got {max_events!r}")
        self.batch_size = batch_size
        self.redaction_config = redaction_config
        self.max_events = max_events
        self._lock = threading.RLock()
        self.chain = self._new_chain()
        self._events: deque[AuditEventV2] = deque(maxlen=max_events)

    def _new_chain(self) -> BatchedHashChain:
        chain = BatchedHashChain(self.batch_size, max_events=self.max_events)
        # The chain shares the logger's lock: recording a decision takes one lock.
        chain._lock = chain.chain._lock = self._lock
        return chain

    @property
    def events(self) -> list[AuditEventV2]:
        with self._lock:
            return list(self._events)

    def log(self, event: AuditEventV2) -> AuditEventV2:
        with self._lock:
            if self.redaction_config is not None:
                event = _redacted(event, self.redaction_config)
            self.chain.append(event)
            self._events.append(event)
            return event

    def log_authorization(
        self,
        user_id: str,
        user_roles: list[str],
        tool_name: str,
        tool_arguments: dict[str, Any],
        allowed: bool,
        reason: str | None = None,
        policies_evaluated: list[str] | None = None,
        *,
        session_id: str | None = None,
        user_attributes: dict[str, Any] | None = None,
        agent_id: str | None = None,
        agent_capabilities: list[str] | None = None,
        agent_trust_score: float | None = None,
        execution_result: dict[str, Any] | None = None,
    ) -> AuditEventV2:
        """Record one authorization decision (GRANTED or DENIED): built, hashed and chained
        in one native call (``AuditChain.append_authorization``); the returned event
        materialises ``data`` and ``timestamp`` on first access."""
        rc = self.redaction_config
        if rc is not None:
            tool_arguments, user_attributes, execution_result = _redact_inputs(
                rc, tool_arguments, user_attributes, execution_result
            )
        args = (
            user_id,
            user_roles,
            tool_name,
            tool_arguments,
            allowed,
            reason,
            policies_evaluated,
            session_id,
            user_attributes,
            agent_id,
            agent_capabilities,
            agent_trust_score,
            execution_result,
        )
        with self._lock:
            chain = self.chain
            with chain._lock:  # the logger's lock unless ``chain`` was replaced
                event: AuditEventV2 = chain.chain._core.append_authorization(
                    _next_sequence(), *args
                )
                if event.merkle_index + 1 >= chain.batch_size:  # type: ignore[operator]
                    chain.finalize_batch()
            self._events.append(event)
            return event

    def verify(self) -> ChainVerificationResult:
        return self.chain.chain.verify()

    def clear(self) -> None:
        with self._lock:
            self.chain = self._new_chain()
            self._events.clear()
