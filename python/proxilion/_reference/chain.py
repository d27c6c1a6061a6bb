"""Reference twin of ``rust/core/src/chain`` and ``rust/python/src/chain.rs``.

Canonical JSON, audit-entry hashing and line encoding, the in-memory chain state with its
one-call-per-entry authorization path, streaming verification of JSONL
files, the group-committing file writer and the RFC 6962 Merkle log, in plain Python with the
same names, signatures, results and messages as the native module. Two known differences:
JSON syntax errors are described with Python's ``json`` wording, and I/O errors with Python's.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, cast

AUDIT_GENESIS_HASH = "sha256:" + "0" * 64
_GENESIS = {"sha256": AUDIT_GENESIS_HASH, "blake3": "blake3:" + "0" * 64}
_PROGRESS_EVERY = 4 << 20
_JSON_WS = " \t\r\n"
_BUFFER_LIMIT = 64 * 1024


def canonical_json(obj: object) -> str:
    """``json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)``."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _digest(algorithm: str, data: bytes) -> bytes:
    if algorithm == "sha256":
        return hashlib.sha256(data).digest()
    try:
        import blake3  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("BLAKE3 in the reference backend needs the 'blake3' package") from exc
    d: bytes = blake3.blake3(data).digest()
    return d


def _alg(algorithm: str) -> str:
    if algorithm not in ("sha256", "blake3"):
        raise ValueError(f"algorithm must be 'sha256' or 'blake3', got '{algorithm}'")
    return algorithm


def _check_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"argument '{what}': '{type(value).__name__}' object cannot be converted")
    return value


def _canonical_entry(
    event_id: str, timestamp: str, sequence_number: object, data: object, previous_hash: str
) -> bytes:
    canonical = {
        "data": data,
        "event_id": _check_str(event_id, "event_id"),
        "previous_hash": _check_str(previous_hash, "previous_hash"),
        "sequence_number": sequence_number,
        "timestamp": _check_str(timestamp, "timestamp"),
    }
    return canonical_json(canonical).encode("utf-8")


def audit_event_hash(
    event_id: str,
    timestamp: str,
    sequence_number: object,
    data: object,
    previous_hash: str,
    algorithm: str = "sha256",
) -> str:
    """Hash of an audit entry: ``"<alg>:" + hex(H(canonical))``."""
    alg = _alg(algorithm)
    c = _canonical_entry(event_id, timestamp, sequence_number, data, previous_hash)
    return f"{alg}:{_digest(alg, c).hex()}"


def audit_event_line(
    event_id: str,
    timestamp: str,
    sequence_number: object,
    data: object,
    previous_hash: str,
    merkle_index: int | None = None,
    algorithm: str = "sha256",
) -> tuple[str, bytes]:
    """Hash and JSONL line (with ``event_hash``, ``merkle_index`` and a newline)."""
    alg = _alg(algorithm)
    c = _canonical_entry(event_id, timestamp, sequence_number, data, previous_hash)
    h = f"{alg}:{_digest(alg, c).hex()}"
    d: dict[str, object] = {
        "data": data,
        "event_hash": h,
        "event_id": event_id,
        "previous_hash": previous_hash,
        "sequence_number": sequence_number,
        "timestamp": timestamp,
    }
    if merkle_index is not None:
        d["merkle_index"] = merkle_index
    return h, (canonical_json(d) + "\n").encode("utf-8")


# ------------------------------------------------------------------------------------------
# Authorization entries: one call per entry (twin of ``AuditChain`` in chain.rs)
# ------------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MIN_US = -62_135_596_800_000_000
_MAX_US = 253_402_300_799_999_999
_REC_LEN = 15


def _iso(us: int) -> str:
    if not _MIN_US <= us <= _MAX_US:
        raise ValueError(
            f"timestamp of {us} microseconds since the epoch is outside the years 1-9999"
        )
    return (_EPOCH + timedelta(microseconds=us)).isoformat()


def _uuid7(ts_us: int) -> str:
    ms = (max(ts_us, 0) // 1000) & 0xFFFF_FFFF_FFFF
    b = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    b[6] = (b[6] & 0x0F) | 0x70
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _auth_data(rec: tuple[Any, ...], tool_timestamp: str) -> dict[str, Any]:
    """``AuditEventData.to_dict()`` of the decision held by record ``rec``."""
    (_, _, user_id, roles, session_id, attributes, agent_id, capabilities, trust) = rec[:9]
    (tool_name, arguments, allowed, reason, policies, execution_result) = rec[9:]
    # An empty container is kept as None in the record.
    return {
        "event_type": "authorization_granted" if allowed else "authorization_denied",
        "user": {
            "user_id": user_id,
            "roles": [] if roles is None else roles,
            "session_id": session_id,
            "attributes": {} if attributes is None else attributes,
        },
        "agent": {
            "agent_id": agent_id,
            "capabilities": [] if capabilities is None else capabilities,
            "trust_score": trust,
        }
        if agent_id
        else None,
        "tool_call": {
            "tool_name": tool_name,
            "arguments": {} if arguments is None else arguments,
            "timestamp": tool_timestamp,
        },
        "authorization": {
            "allowed": allowed,
            "reason": reason,
            "policies_evaluated": [] if policies is None else policies,
            "metadata": {},
        },
        "execution_result": execution_result,
        "error_message": None,
    }


def _check_record(record: object) -> tuple[Any, ...]:
    if not isinstance(record, tuple):
        raise TypeError(f"'{type(record).__name__}' object cannot be cast as 'tuple'")
    if len(record) != _REC_LEN:
        raise ValueError(f"an authorization record has {_REC_LEN} items, got {len(record)}")
    return record


def audit_authorization_hash(
    record: tuple[Any, ...],
    event_id: str,
    timestamp: str | None,
    sequence_number: object,
    previous_hash: str,
    algorithm: str = "sha256",
) -> str:
    """Hash of an authorization entry from its record (see :class:`AuditChain`)."""
    alg = _alg(algorithm)
    rec = _check_record(record)
    ts = _iso(rec[0]) if timestamp is None else timestamp
    data = _auth_data(rec, _iso(rec[1]))
    c = _canonical_entry(event_id, ts, sequence_number, data, previous_hash)
    return f"{alg}:{_digest(alg, c).hex()}"


def _legacy_pair(left: str, right: str) -> str:
    text = left.replace("sha256:", "") + right.replace("sha256:", "")
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def audit_merkle_root(leaves: Sequence[str]) -> str:
    """The original SDK's ``MerkleTree.compute_root`` (pair hash over the hex texts)."""
    level = [_check_str(x, "leaves") for x in leaves]
    if not level:
        raise ValueError("Cannot compute root of empty tree")
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [_legacy_pair(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


class AuditChain:
    """State of an in-memory audit hash chain (head, retained events, current Merkle batch)
    and its hot path: one call builds, hashes and chains one authorization entry."""

    def __init__(
        self, event_class: type, algorithm: str = "sha256", max_events: int | None = None
    ) -> None:
        alg = _alg(algorithm)
        if max_events is not None and max_events < 0:
            raise OverflowError("can't convert negative int to unsigned")
        if max_events == 0:
            raise ValueError("max_events must be a positive int or None, got 0")
        self._alg = alg
        self._cls = event_class
        self._new: Callable[[type], Any] = getattr(event_class, "__new__")  # noqa: B009
        self._genesis = _GENESIS[alg]
        self._head = self._base = self._genesis
        self._length = self._dropped = 0
        self._max = max_events
        self._events: deque[Any] = deque()
        self._leaves: list[str] = []

    @property
    def algorithm(self) -> str:
        """Hash algorithm name."""
        return self._alg

    @property
    def genesis(self) -> str:
        """``previous_hash`` of the first entry."""
        return self._genesis

    @property
    def head(self) -> str:
        """Hash of the last entry (the genesis hash when empty)."""
        return self._head

    @property
    def base(self) -> str:
        """Hash the first retained event links to."""
        return self._base

    @property
    def length(self) -> int:
        """Entries appended (retained or not)."""
        return self._length

    @property
    def dropped(self) -> int:
        """Entries no longer retained."""
        return self._dropped

    @property
    def max_events(self) -> int | None:
        return self._max

    @property
    def leaf_count(self) -> int:
        """Leaves of the current Merkle batch."""
        return len(self._leaves)

    def events(self) -> list[Any]:
        """The retained events, oldest first."""
        return list(self._events)

    def event(self, index: int) -> Any:
        """The event at chain position ``index`` (0-based), or None."""
        i = index - self._dropped
        return self._events[i] if 0 <= i < len(self._events) else None

    def _store(self, event: Any, h: str, leaf: bool) -> None:
        if self._max is not None and len(self._events) >= self._max:
            old = self._events.popleft()
            base = old.event_hash
            if not isinstance(base, str):
                raise TypeError(f"'{type(base).__name__}' object cannot be cast as 'str'")
            self._base = base
            self._dropped += 1
        self._events.append(event)
        if leaf:
            self._leaves.append(h)
        self._head = h
        self._length += 1

    def push(self, event: Any) -> None:
        """Retain an already-hashed ``event`` and advance the head to its ``event_hash``."""
        h = event.event_hash
        if not isinstance(h, str):
            raise TypeError(f"'{type(h).__name__}' object cannot be cast as 'str'")
        self._store(event, h, False)

    def add_leaf(self, leaf: str) -> int:
        """Add a leaf to the current Merkle batch; returns its index in the batch."""
        self._leaves.append(_check_str(leaf, "leaf"))
        return len(self._leaves) - 1

    def take_leaves(self) -> list[str]:
        """Remove and return the leaves of the current batch."""
        leaves, self._leaves = self._leaves, []
        return leaves

    def resume(self, head: str, length: int) -> None:
        """Continue a chain whose head is ``head``, ``length`` entries long."""
        _check_str(head, "head")
        if length < 0:
            raise OverflowError("can't convert negative int to unsigned")
        self._head = self._base = head
        self._events = deque()
        self._leaves = []
        self._length = self._dropped = length

    def _build(
        self,
        want_line: bool,
        sequence_number: object,
        args: tuple[Any, ...],
        event_id: str | None,
        timestamp_us: int | None,
        tool_timestamp_us: int | None,
    ) -> tuple[Any, str, bytes | None]:
        (user_id, user_roles, tool_name, tool_arguments, allowed, reason, policies) = args[:7]
        (session_id, user_attributes, agent_id, capabilities, trust, execution_result) = args[7:]
        # The original's copies, in its order (lists as tuples); an empty one is kept as None.
        roles = tuple(user_roles) or None
        attributes = (dict(user_attributes) if user_attributes else None) or None
        caps = (tuple(capabilities) if capabilities else None) or None
        arguments = dict(tool_arguments) or None
        pols = (tuple(policies) if policies else None) or None
        ts_us = time.time_ns() // 1000 if timestamp_us is None else timestamp_us
        tool_us = ts_us if tool_timestamp_us is None else tool_timestamp_us
        ts = _iso(ts_us)
        tool = _iso(tool_us)
        if event_id is None:
            event_id = _uuid7(ts_us)
        elif not isinstance(event_id, str):
            raise TypeError(f"'{type(event_id).__name__}' object cannot be cast as 'str'")
        rec = (
            ts_us,
            tool_us,
            user_id,
            roles,
            session_id,
            attributes,
            agent_id,
            caps,
            trust,
            tool_name,
            arguments,
            allowed,
            reason,
            pols,
            execution_result,
        )
        data = _auth_data(rec, tool)
        index = len(self._leaves)
        c = _canonical_entry(event_id, ts, sequence_number, data, self._head)
        h = f"{self._alg}:{_digest(self._alg, c).hex()}"
        line = None
        if want_line:
            line = (
                canonical_json(
                    {
                        "data": data,
                        "event_hash": h,
                        "event_id": event_id,
                        "merkle_index": index,
                        "previous_hash": self._head,
                        "sequence_number": sequence_number,
                        "timestamp": ts,
                    }
                )
                + "\n"
            ).encode("utf-8")
        event = self._new(self._cls)
        d = event.__dict__
        d["previous_hash"] = self._head
        d["event_id"] = event_id
        d["sequence_number"] = sequence_number
        d["event_hash"] = h
        d["merkle_index"] = index
        d["_lazy"] = rec
        return event, h, line

    def append_authorization(
        self,
        sequence_number: object,
        user_id: object,
        user_roles: Any,
        tool_name: object,
        tool_arguments: Any,
        allowed: object,
        reason: object = None,
        policies_evaluated: Any = None,
        session_id: object = None,
        user_attributes: Any = None,
        agent_id: object = None,
        agent_capabilities: Any = None,
        agent_trust_score: object = None,
        execution_result: object = None,
        *,
        event_id: str | None = None,
        timestamp_us: int | None = None,
        tool_timestamp_us: int | None = None,
    ) -> Any:
        """Build, hash and chain one authorization entry; returns its event."""
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
        event, h, _ = self._build(
            False, sequence_number, args, event_id, timestamp_us, tool_timestamp_us
        )
        self._store(event, h, True)
        return event

    def write_authorization(
        self,
        writer: Any,
        sequence_number: object,
        user_id: object,
        user_roles: Any,
        tool_name: object,
        tool_arguments: Any,
        allowed: object,
        reason: object = None,
        policies_evaluated: Any = None,
        session_id: object = None,
        user_attributes: Any = None,
        agent_id: object = None,
        agent_capabilities: Any = None,
        agent_trust_score: object = None,
        execution_result: object = None,
        *,
        event_id: str | None = None,
        timestamp_us: int | None = None,
        tool_timestamp_us: int | None = None,
    ) -> tuple[Any, Any]:
        """As :meth:`append_authorization`, and queue the JSONL line on ``writer`` before
        the chain advances. Returns ``(event, ticket)``."""
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
        event, h, line = self._build(
            True, sequence_number, args, event_id, timestamp_us, tool_timestamp_us
        )
        ticket = writer.enqueue(line)
        self._store(event, h, True)
        return event, ticket

    def __repr__(self) -> str:
        return (
            f"AuditChain(algorithm={self._alg!r}, length={self._length}, "
            f"retained={len(self._events)})"
        )


# ------------------------------------------------------------------------------------------
# Merkle (RFC 6962 / RFC 9162)
# ------------------------------------------------------------------------------------------


def merkle_leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``, the RFC 6962 leaf hash."""
    return hashlib.sha256(b"\x00" + bytes(data)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


class MerkleLog:
    """RFC 6962 Merkle tree over an append-only list of leaves; roots and proofs for any size."""

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]

    def append(self, data: bytes) -> int:
        """Append a leaf (hashed as ``SHA-256(0x00 || data)``); returns its index."""
        self._push(merkle_leaf_hash(data))
        return len(self._levels[0]) - 1

    def _push(self, h: bytes) -> None:
        levels = self._levels
        levels[0].append(h)
        k = 0
        while len(levels[k]) % 2 == 0:
            parent = _node(levels[k][-2], levels[k][-1])
            if len(levels) == k + 1:
                levels.append([])
            levels[k + 1].append(parent)
            k += 1

    def extend_leaves(self, data: bytes) -> None:
        """Append leaves given as concatenated 32-byte values (each hashed as a leaf)."""
        if len(data) % 32:
            raise ValueError(f"leaves must be a multiple of 32 bytes, got {len(data)} bytes")
        for i in range(0, len(data), 32):
            self._push(merkle_leaf_hash(data[i : i + 32]))

    def extend_leaf_hashes(self, hashes: bytes) -> None:
        """Append leaf hashes given as concatenated 32-byte values."""
        if len(hashes) % 32:
            raise ValueError(f"leaf hashes must be a multiple of 32 bytes, got {len(hashes)} bytes")
        for i in range(0, len(hashes), 32):
            self._push(bytes(hashes[i : i + 32]))

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def __len__(self) -> int:
        return self.size

    def _subtree(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n & (n - 1) == 0:
            k = n.bit_length() - 1
            return self._levels[k][lo >> k]
        k = _split(n)
        return _node(self._subtree(lo, lo + k), self._subtree(lo + k, hi))

    def _check_size(self, size: int) -> None:
        if size < 0:
            raise OverflowError("can't convert negative int to unsigned")
        if size > self.size:
            raise ValueError(f"tree size {size} is larger than the {self.size} leaves held")

    def root(self, size: int | None = None) -> bytes:
        """Root of the first ``size`` leaves (all by default)."""
        size = self.size if size is None else size
        self._check_size(size)
        if size == 0:
            return hashlib.sha256(b"").digest()
        return self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Inclusion proof of leaf ``index`` in the tree of ``size`` leaves (all by default)."""
        size = self.size if size is None else size
        self._check_size(size)
        if index < 0:
            raise OverflowError("can't convert negative int to unsigned")
        if index >= size:
            raise ValueError(f"leaf index {index} is out of range for tree size {size}")
        out: list[bytes] = []

        def path(m: int, lo: int, hi: int) -> None:
            n = hi - lo
            if n <= 1:
                return
            k = _split(n)
            if m < k:
                path(m, lo, lo + k)
                out.append(self._subtree(lo + k, hi))
            else:
                path(m - k, lo + k, hi)
                out.append(self._subtree(lo, lo + k))

        path(index, 0, size)
        return out

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Consistency proof from the tree of ``old_size`` leaves to that of ``new_size``."""
        new = self.size if new_size is None else new_size
        self._check_size(new)
        if old_size < 0:
            raise OverflowError("can't convert negative int to unsigned")
        if old_size == 0 or old_size > new:
            raise ValueError(
                f"consistency needs 0 < old size <= new size, got {old_size} and {new}"
            )
        out: list[bytes] = []

        def sub(m: int, lo: int, hi: int, complete: bool) -> None:
            n = hi - lo
            if m == n:
                if not complete:
                    out.append(self._subtree(lo, hi))
                return
            k = _split(n)
            if m <= k:
                sub(m, lo, lo + k, complete)
                out.append(self._subtree(lo + k, hi))
            else:
                sub(m - k, lo + k, hi, False)
                out.append(self._subtree(lo, lo + k))

        if old_size < new:
            sub(old_size, 0, new, True)
        return out

    def leaf_hash(self, index: int) -> bytes:
        """Leaf hash at ``index``."""
        if index < 0:
            raise OverflowError("can't convert negative int to unsigned")
        if index >= self.size:
            raise ValueError(f"leaf index {index} is out of range for tree size {self.size}")
        return self._levels[0][index]


def _as_hashes(items: Iterable[bytes]) -> list[bytes] | None:
    out = [bytes(p) for p in items]
    return out if all(len(p) == 32 for p in out) else None


def merkle_verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check an RFC 6962 inclusion proof (RFC 9162 algorithm)."""
    path = _as_hashes(proof)
    if path is None or len(leaf_hash) != 32 or len(root) != 32 or index >= size:
        return False
    fn, sn = index, size - 1
    r = bytes(leaf_hash)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def merkle_verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check an RFC 6962 consistency proof (RFC 9162 algorithm)."""
    path = _as_hashes(proof)
    if path is None or len(old_root) != 32 or len(new_root) != 32:
        return False
    if old_size == 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    if not path:
        return False
    if old_size & (old_size - 1) == 0:
        path = [bytes(old_root), *path]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class _CompactRange:
    def __init__(self) -> None:
        self.size = 0
        self.peaks: list[bytes] = []

    def push(self, h: bytes) -> None:
        node, s = h, self.size
        while s & 1:
            node = _node(self.peaks.pop(), node)
            s >>= 1
        self.peaks.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.peaks:
            return hashlib.sha256(b"").digest()
        acc = self.peaks[-1]
        for left in reversed(self.peaks[:-1]):
            acc = _node(left, acc)
        return acc


# ------------------------------------------------------------------------------------------
# Verification
# ------------------------------------------------------------------------------------------


class _Fault(Exception):
    def __init__(
        self, kind: str, message: str, expected: str | None = None, got: str | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.expected = expected
        self.got = got
        self.status = {"io": "unreadable", "torn": "torn"}.get(kind, "tampered")


def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key in object")
        d[k] = v
    return d


def _text(v: object) -> str | None:
    if not isinstance(v, str):
        return None
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return v


def _parse_tagged(h: str) -> bytes | None:
    if not (h.startswith("sha256:") or h.startswith("blake3:")):
        return None
    hx = h[7:]
    if len(hx) != 64 or any(c not in "0123456789abcdef" for c in hx):
        return None
    return bytes.fromhex(hx)


class _State:
    def __init__(self, checkpoints: list[tuple[int, bytes]], collect: bool, restart: bool):
        self.alg: str | None = None
        self.prev: str | None = None
        self.count = 0
        self.markers = 0
        self.restarts = 0
        self.range = _CompactRange()
        self.checkpoints = sorted(checkpoints, key=lambda c: c[0])
        self.next_checkpoint = 0
        while (
            self.next_checkpoint < len(self.checkpoints)
            and self.checkpoints[self.next_checkpoint][0] == 0
        ):
            self.next_checkpoint += 1
        self.collect = collect
        self.digests: list[bytes] = []
        self.allow_restart = restart


def _check_line(st: _State, raw: bytes, name: str, lineno: int, first_of_file: bool) -> None:
    at = f"{name} line {lineno}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Fault("encoding", f"{at}: not valid UTF-8 at byte {e.start}") from None
    if not text.strip(_JSON_WS):
        return
    try:
        v = json.loads(text, object_pairs_hook=_no_dupes)
    except (ValueError, RecursionError) as e:
        raise _Fault("parse", f"{at}: not valid JSON: {e}", got=str(e)) from None
    if not isinstance(v, dict):
        raise _Fault("parse", f"{at}: not a JSON object")
    if "_type" in v and v["_type"] == "batch_marker":
        st.markers += 1
        return
    for key in ("event_id", "timestamp"):
        if _text(v.get(key)) is None:
            raise _Fault("field", f"{at}: field '{key}' is missing or not a string")
    seq = v.get("sequence_number")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise _Fault("field", f"{at}: field 'sequence_number' is missing or not an integer")
    if not isinstance(v.get("data"), dict):
        raise _Fault("field", f"{at}: field 'data' is missing or not an object")
    stored = _text(v.get("event_hash"))
    if stored is None:
        raise _Fault("field", f"{at}: field 'event_hash' is missing or not a string")
    previous = _text(v.get("previous_hash"))
    if previous is None:
        raise _Fault("field", f"{at}: field 'previous_hash' is missing or not a string")
    if stored.startswith("sha256:"):
        alg = "sha256"
    elif stored.startswith("blake3:"):
        alg = "blake3"
    else:
        raise _Fault(
            "field", f"{at}: event_hash {json.dumps(stored)} names no known hash algorithm"
        )
    if st.alg is None:
        st.alg = alg
    elif st.alg != alg:
        raise _Fault("algorithm", f"{at}: entry hashed with {alg} in a {st.alg} chain")
    genesis = _GENESIS[alg]
    if st.prev is None:
        if previous != genesis:
            raise _Fault(
                "genesis",
                f"{at}: the first entry does not link to the genesis hash (its previous_hash "
                f"is {previous}): entries before it were removed",
                expected=genesis,
                got=previous,
            )
    elif st.prev != previous:
        if st.allow_restart and previous == genesis:
            st.restarts += 1
        else:
            why = (
                "a file of the rotated set is missing, swapped or out of order"
                if first_of_file
                else "an entry was deleted, inserted or reordered here"
            )
            raise _Fault(
                "link",
                f"{at}: chain broken: previous_hash is {previous} but the entry before it "
                f"has hash {st.prev} ({why})",
                expected=st.prev,
                got=previous,
            )
    v.pop("event_hash", None)
    v.pop("merkle_index", None)
    computed = f"{alg}:{_digest(alg, canonical_json(v).encode('utf-8')).hex()}"
    if computed != stored:
        raise _Fault(
            "hash",
            f"{at}: invalid hash: the entry's content hashes to {computed} but its "
            f"event_hash is {stored} (the entry was edited)",
            expected=computed,
            got=stored,
        )
    digest = _parse_tagged(stored) or bytes(32)
    lh = merkle_leaf_hash(digest)
    st.range.push(lh)
    if st.collect:
        st.digests.append(digest)
    st.prev = stored
    st.count += 1


def _check_checkpoints(st: _State) -> None:
    while st.next_checkpoint < len(st.checkpoints):
        size, want = st.checkpoints[st.next_checkpoint]
        if size != st.count:
            break
        got = st.range.root()
        if got != want:
            raise _Fault(
                "checkpoint",
                f"checkpoint at tree size {size}: the Merkle root of the first {size} entries "
                f"is {got.hex()} but the signed checkpoint says {want.hex()}: entries up to "
                "here were rewritten",
            )
        st.next_checkpoint += 1


def _open(path: str) -> IO[bytes]:
    # Peek at the magic bytes through the buffer (no second open: works on pipes too).
    f = open(path, "rb")  # noqa: SIM115 - closed by the caller
    try:
        gz = f.peek(2)[:2] == b"\x1f\x8b"
    except OSError:
        f.close()
        raise
    if gz:
        g = gzip.GzipFile(fileobj=f, mode="rb")
        g.myfileobj = f  # type: ignore[assignment]  # closed with it, as gzip.open does
        return cast(IO[bytes], g)
    return f


def audit_verify_files(
    paths: Sequence[str | os.PathLike[str]],
    checkpoints: Sequence[tuple[int, bytes]] | None = None,
    collect_digests: bool = False,
    allow_genesis_restart: bool = False,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """Verify JSONL files in order as one hash chain; see ``proxilion.audit.verify``."""
    cps: list[tuple[int, bytes]] = []
    for size, root in checkpoints or ():
        if len(root) != 32:
            raise ValueError(f"checkpoint root must be 32 bytes, got {len(root)} bytes")
        cps.append((int(size), bytes(root)))
    st = _State(cps, collect_digests, allow_genesis_restart)
    nbytes = 0
    next_progress = _PROGRESS_EVERY
    failure: tuple[_Fault, int, int] | None = None
    files_read = 0
    for fi, p in enumerate(paths):
        path = os.fspath(p)
        name = Path(path).name or path
        try:
            f = _open(path)
        except OSError as e:
            failure = (_Fault("io", f"cannot read {name}: {e}"), fi, 0)
            break
        files_read += 1
        count_at_start = st.count
        lineno = 0
        try:
            with f:
                while True:
                    try:
                        raw = f.readline()
                    except (OSError, EOFError) as e:
                        msg = f"cannot read {name} after line {lineno}: {e}"
                        failure = (_Fault("io", msg), fi, lineno + 1)
                        break
                    if not raw:
                        break
                    lineno += 1
                    nbytes += len(raw)
                    if progress is not None and nbytes >= next_progress:
                        progress(nbytes)
                        next_progress = nbytes + _PROGRESS_EVERY
                    if not raw.endswith(b"\n"):
                        if not raw.strip(_JSON_WS.encode()):
                            break
                        msg = (
                            f"{name} line {lineno}: torn last line ({len(raw)} bytes without a "
                            "newline: an append was cut short, e.g. by a crash); the "
                            f"{st.count} entries before it verify"
                        )
                        failure = (_Fault("torn", msg), fi, lineno)
                        break
                    try:
                        _check_line(st, raw, name, lineno, st.count == count_at_start)
                        _check_checkpoints(st)
                    except _Fault as exc:
                        failure = (exc, fi, lineno)
                        break
        except OSError as e:  # pragma: no cover - close errors
            failure = (_Fault("io", f"cannot read {name}: {e}"), fi, lineno)
        if failure is not None:
            break
    if failure is None and st.next_checkpoint < len(st.checkpoints):
        size = st.checkpoints[st.next_checkpoint][0]
        msg = (
            f"the log has {st.count} entries but a checkpoint covers {size}: entries were "
            "removed from the end (or a file of the rotated set is missing)"
        )
        failure = (_Fault("truncated", msg), max(len(paths) - 1, 0), 0)
    if progress is not None:
        progress(nbytes)
    result: dict[str, Any] = {
        "valid": failure is None,
        "status": "ok",
        "kind": None,
        "message": None,
        "file_index": None,
        "line": None,
        "expected": None,
        "got": None,
        "verified_count": st.count,
        "markers": st.markers,
        "restarts": st.restarts,
        "bytes_read": nbytes,
        "files_read": files_read,
        "algorithm": st.alg,
        "last_hash": st.prev,
        "root": st.range.root(),
        "checkpoints_checked": st.next_checkpoint,
        "digests": b"".join(st.digests) if collect_digests else None,
    }
    if failure is not None:
        fault, fi, line = failure
        result.update(
            status=fault.status,
            kind=fault.kind,
            message=fault.message,
            file_index=fi,
            line=line if line > 0 else None,
            expected=fault.expected,
            got=fault.got,
        )
    return result


# ------------------------------------------------------------------------------------------
# Writer
# ------------------------------------------------------------------------------------------


class AuditFileWriter:
    """Append-only audit file with buffering, group commit and an fsync policy."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        fsync: str = "interval",
        fsync_interval: float = 1.0,
        sync_writes: bool = True,
    ) -> None:
        if fsync not in ("always", "interval", "never"):
            raise ValueError(f"fsync must be 'always', 'interval' or 'never', got '{fsync}'")
        if fsync == "interval" and not (0.0 <= fsync_interval < float("inf")):
            raise ValueError(
                f"fsync_interval must be a finite number of seconds >= 0, got {fsync_interval}"
            )
        self._path = Path(os.fspath(path))
        self._policy = fsync
        self._interval = fsync_interval
        self._sync_writes = sync_writes
        try:
            self._fd: int | None = os.open(
                self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
            )
            self._initial = os.fstat(self._fd).st_size
        except OSError as e:
            raise OSError(f"cannot open {self._path}: {e}") from None
        self._cond = threading.Condition(threading.Lock())
        self._pending = bytearray()
        self._enqueued = self._written = self._synced = 0
        self._writes = self._syncs = 0
        self._busy = False
        self._last_sync = time.monotonic()
        self._error: str | None = None

    def enqueue(self, data: bytes) -> int:
        """Queue bytes (whole lines); returns the ticket to pass to ``commit``."""
        with self._cond:
            if self._error is not None:
                raise OSError(self._error)
            if self._fd is None:
                raise ValueError("I/O operation on closed audit log file")
            self._pending += data
            self._enqueued += len(data)
            return self._enqueued

    def _drive(self, ticket: int, force_write: bool, force_sync: bool) -> None:
        with self._cond:
            while True:
                if self._error is not None:
                    raise OSError(self._error)
                due = (
                    self._policy == "interval"
                    and time.monotonic() - self._last_sync >= self._interval
                )
                need_sync = force_sync or self._policy == "always" or due
                need_write = (
                    force_write
                    or need_sync
                    or self._sync_writes
                    or len(self._pending) >= _BUFFER_LIMIT
                )
                if (not need_write or self._written >= ticket) and (
                    not need_sync or self._synced >= ticket
                ):
                    return
                if self._busy:
                    self._cond.wait()
                    continue
                fd = self._fd
                if fd is None:
                    raise ValueError("I/O operation on closed audit log file")
                self._busy = True
                buf, self._pending = bytes(self._pending), bytearray()
                target = self._enqueued
                self._cond.release()
                err: str | None = None
                try:
                    view = memoryview(buf)
                    while view:
                        n = os.write(fd, view)
                        view = view[n:]
                except OSError as e:
                    err = f"cannot write {self._path}: {e}"
                if err is None and need_sync:
                    try:
                        os.fdatasync(fd)
                    except OSError as e:
                        err = f"cannot fsync {self._path}: {e}"
                self._cond.acquire()
                self._busy = False
                if err is None:
                    if buf:
                        self._writes += 1
                    self._written = target
                    if need_sync:
                        self._synced = target
                        self._syncs += 1
                        self._last_sync = time.monotonic()
                else:
                    self._error = err
                self._cond.notify_all()

    def commit(self, ticket: int) -> None:
        """Make everything up to ``ticket`` as durable as the policy promises."""
        self._drive(ticket, False, False)

    def append(self, data: bytes) -> None:
        """``enqueue`` then ``commit``."""
        self._drive(self.enqueue(data), False, False)

    def flush(self) -> None:
        """Write everything queued and fsync it."""
        with self._cond:
            t = self._enqueued
        self._drive(t, True, True)

    def close(self) -> None:
        """Flush and close; later appends raise ``ValueError``."""
        with self._cond:
            t, open_ = self._enqueued, self._fd is not None
        if open_:
            self._drive(t, True, self._policy != "never")
        with self._cond:
            while self._busy:
                self._cond.wait()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    @property
    def path(self) -> Path:
        """Path of the file."""
        return self._path

    @property
    def size(self) -> int:
        """Size of the file including queued bytes."""
        with self._cond:
            return self._initial + self._enqueued

    def stats(self) -> dict[str, int]:
        """Counters: enqueued, written, synced (bytes), writes, syncs, initial_size."""
        with self._cond:
            return {
                "enqueued": self._enqueued,
                "written": self._written,
                "synced": self._synced,
                "writes": self._writes,
                "syncs": self._syncs,
                "initial_size": self._initial,
            }

    def __repr__(self) -> str:
        return f"AuditFileWriter(path={str(self._path)!r}, fsync={self._policy!r})"

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            try:
                if self._pending and self._error is None:
                    os.write(fd, bytes(self._pending))
                os.close(fd)
            except OSError:  # pragma: no cover - best effort at interpreter exit
                pass
