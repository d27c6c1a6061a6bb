"""In-memory hash chains and Merkle batches (``proxilion.audit.hash_chain``), with the
original SDK's API.

Differences from the original, all deliberate:

- ``MerkleTree.get_proof`` emits a step for an odd last node paired with itself, so
  ``verify_proof`` succeeds for every leaf (the original omits it and its proofs fail on such
  leaves). Roots are unchanged. For new uses prefer :class:`proxilion.audit.proofs` (RFC
  6962 trees with inclusion and consistency proofs).
- ``BatchedHashChain.get_inclusion_proof`` locates the event by its chain position (the
  original compares the process-global sequence number against chain positions and so often
  returns ``None``).
- ``HashChain(max_events=N)`` may keep only the last N events in memory (the audit logger
  uses this so memory stays bounded); ``verify`` then checks the retained window.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from proxilion._backend import impl
from proxilion.audit.events import AuditEventV2

__all__ = [
    "GENESIS_HASH",
    "BatchedHashChain",
    "ChainVerificationResult",
    "HashChain",
    "MerkleBatch",
    "MerkleTree",
]

GENESIS_HASH = "sha256:" + "0" * 64
_GENESIS = {"sha256": GENESIS_HASH, "blake3": "blake3:" + "0" * 64}


@dataclass
class ChainVerificationResult:
    """Outcome of a chain verification. ``error`` is an alias of ``error_message`` (the
    seed's spelling; the original has only ``error_message``)."""

    valid: bool
    error_message: str | None = None
    error_index: int | None = None
    verified_count: int = 0

    @property
    def error(self) -> str | None:
        """Alias of :attr:`error_message`."""
        return self.error_message


class HashChain:
    """A thread-safe chain of :class:`AuditEventV2`, each linked to the previous hash.

    Its state (head, retained events, the current Merkle batch of a
    :class:`BatchedHashChain`) lives in one ``impl.AuditChain``, which also records
    authorization decisions in one native call each (the loggers' fast path)."""

    def __init__(self, max_events: int | None = None, algorithm: str = "sha256") -> None:
        if max_events is not None and max_events < 1:
            raise ValueError(f"max_events must be a positive int or None, got {max_events}")
        if algorithm not in _GENESIS:
            raise ValueError(f"algorithm must be 'sha256' or 'blake3', got {algorithm!r}")
        self._lock = threading.RLock()
        self._algorithm = algorithm
        self._core = impl.AuditChain(AuditEventV2, algorithm, max_events)

    @property
    def genesis_hash(self) -> str:
        return _GENESIS[self._algorithm]

    @property
    def algorithm(self) -> str:
        return self._algorithm

    @property
    def last_hash(self) -> str:
        with self._lock:
            head: str = self._core.head
            return head

    @property
    def length(self) -> int:
        with self._lock:
            n: int = self._core.length
            return n

    def _resume(self, last_hash: str, length: int) -> None:
        """Continue a chain whose head (written earlier, e.g. on disk) is ``last_hash``."""
        with self._lock:
            self._core.resume(last_hash, length)

    def append(self, event: AuditEventV2) -> AuditEventV2:
        """Hash ``event`` and append it; its ``previous_hash`` must be the head."""
        with self._lock:
            head = self._core.head
            if event.previous_hash != head:
                raise ValueError(
                    f"Event previous_hash ({event.previous_hash}) doesn't match chain head ({head})"
                )
            event.compute_hash(self._algorithm)
            self._core.push(event)
            return event

    def _append_encoded(self, event: AuditEventV2) -> bytes:
        """Link ``event`` to the head, hash it and return its JSONL line (one native call)."""
        with self._lock:
            event.previous_hash = self._core.head
            line = event._encode_line(self._algorithm)
            self._core.push(event)
            return line

    def create_and_append(self, event: AuditEventV2) -> AuditEventV2:
        """Set ``previous_hash`` to the head, then append."""
        with self._lock:
            event.previous_hash = self._core.head
            return self.append(event)

    def verify(self) -> ChainVerificationResult:
        """Check linkage, hashes and increasing sequence numbers of the events held."""
        with self._lock:
            events: list[AuditEventV2] = self._core.events()
            base: str = self._core.base
        for i, event in enumerate(events):
            if i == 0:
                if event.previous_hash != base:
                    return ChainVerificationResult(
                        False, "First event doesn't link to genesis hash", 0, 0
                    )
            else:
                expected = events[i - 1].event_hash
                if event.previous_hash != expected:
                    return ChainVerificationResult(
                        False,
                        f"Chain broken at index {i}: expected previous_hash {expected}, "
                        f"got {event.previous_hash}",
                        i,
                        i,
                    )
            if not event.verify_hash():
                return ChainVerificationResult(
                    False, f"Invalid hash at index {i}: event tampered", i, i
                )
            if i > 0:
                prev = events[i - 1].sequence_number
                if event.sequence_number <= prev:
                    return ChainVerificationResult(
                        False,
                        f"Sequence number not monotonically increasing at index {i}: "
                        f"got {event.sequence_number}, previous was {prev}",
                        i,
                        i,
                    )
        return ChainVerificationResult(True, None, None, len(events))

    def _events(self) -> list[AuditEventV2]:
        with self._lock:
            events: list[AuditEventV2] = self._core.events()
            return events

    def get_event(self, index: int) -> AuditEventV2 | None:
        """The event at chain position ``index``, or None (also when no longer retained)."""
        with self._lock:
            event: AuditEventV2 | None = self._core.event(index)
            return event

    def get_event_by_hash(self, event_hash: str) -> AuditEventV2 | None:
        for event in self._events():
            if event.event_hash == event_hash:
                return event
        return None

    def _position(self, event_hash: str) -> int | None:
        """0-based chain position of the event with ``event_hash``."""
        with self._lock:
            dropped: int = self._core.dropped
            for i, event in enumerate(self._core.events()):
                if event.event_hash == event_hash:
                    return dropped + i
            return None

    def get_proof(self, event_id: str) -> list[str]:
        """Hashes from the event with ``event_id`` up to the head, or ``[]``."""
        events = self._events()
        for i, event in enumerate(events):
            if event.event_id == event_id:
                return [e.event_hash for e in events[i:]]
        return []

    def __iter__(self) -> Iterator[AuditEventV2]:
        return iter(self._events())

    def __len__(self) -> int:
        return self.length

    def to_list(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self._events()]


def _strip(h: str) -> str:
    return h.replace("sha256:", "")


def _pair(left: str, right: str) -> str:
    return "sha256:" + hashlib.sha256((_strip(left) + _strip(right)).encode()).hexdigest()


class MerkleTree:
    """The original SDK's Merkle tree over ``"sha256:..."`` strings (pair hash over the
    concatenated hex text; a single leaf is its own root; an odd last node pairs with
    itself). Kept for compatibility; proofs here verify for every leaf (see module docs)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._leaves: list[str] = []
        self._root: str | None = None

    @property
    def leaf_count(self) -> int:
        with self._lock:
            return len(self._leaves)

    @property
    def root(self) -> str | None:
        with self._lock:
            return self._root

    def add_leaf(self, leaf_hash: str) -> int:
        with self._lock:
            self._leaves.append(leaf_hash)
            self._root = None
            return len(self._leaves) - 1

    def add_event(self, event: AuditEventV2) -> int:
        if not event.event_hash:
            event.compute_hash()
        return self.add_leaf(event.event_hash)

    def compute_root(self) -> str:
        with self._lock:
            root: str = impl.audit_merkle_root(self._leaves)
            self._root = root
            return root

    def get_proof(self, index: int) -> list[tuple[str, str]]:
        with self._lock:
            if not 0 <= index < len(self._leaves):
                raise IndexError(f"Leaf index {index} out of range")
            proof: list[tuple[str, str]] = []
            level = list(self._leaves)
            i = index
            while len(level) > 1:
                if len(level) % 2:
                    level.append(level[-1])
                if i % 2:
                    proof.append((level[i - 1], "L"))
                else:
                    proof.append((level[i + 1], "R"))
                level = [_pair(level[j], level[j + 1]) for j in range(0, len(level), 2)]
                i //= 2
            return proof

    def verify_proof(
        self, leaf_hash: str, proof: list[tuple[str, str]], expected_root: str
    ) -> bool:
        h = leaf_hash
        for sibling, side in proof:
            h = _pair(sibling, h) if side == "L" else _pair(h, sibling)
        return h == expected_root

    def clear(self) -> None:
        with self._lock:
            self._leaves.clear()
            self._root = None

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "leaves": list(self._leaves),
                "root": self._root,
                "leaf_count": len(self._leaves),
            }


@dataclass
class MerkleBatch:
    """A finalised batch of chain events summarised by its Merkle root."""

    batch_id: str
    start_sequence: int
    end_sequence: int
    event_count: int
    merkle_root: str
    created_at: str
    previous_batch_root: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


class BatchedHashChain:
    """A :class:`HashChain` whose events are also grouped into Merkle batches (the
    original's pair-hash trees; the leaves of the current batch are kept natively)."""

    def __init__(
        self, batch_size: int = 100, *, max_events: int | None = None, algorithm: str = "sha256"
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = batch_size
        self.chain = HashChain(max_events=max_events, algorithm=algorithm)
        # One lock for the chain and its batches: an append and the batch it completes are
        # one step.
        self._lock = self.chain._lock
        self._batches: list[MerkleBatch] = []
        self._batch_start = 1

    @property
    def batches(self) -> list[MerkleBatch]:
        with self._lock:
            return list(self._batches)

    def _resume(self, last_hash: str, length: int) -> None:
        with self._lock:
            self.chain._resume(last_hash, length)
            self._batch_start = length + 1

    def append(self, event: AuditEventV2) -> AuditEventV2:
        """Link ``event`` to the head (overwriting its ``previous_hash``), hash and append
        it, and add it to the current batch (``merkle_index`` set after hashing)."""
        with self._lock:
            core = self.chain._core
            event.previous_hash = core.head
            self.chain.append(event)
            event.merkle_index = core.add_leaf(event.event_hash)
            if core.leaf_count >= self.batch_size:
                self.finalize_batch()
            return event

    def _append_encoded(self, event: AuditEventV2) -> bytes:
        """As :meth:`append`, returning the JSONL line from the same native call."""
        with self._lock:
            core = self.chain._core
            event.merkle_index = core.leaf_count
            line = self.chain._append_encoded(event)
            core.add_leaf(event.event_hash)
            if core.leaf_count >= self.batch_size:
                self.finalize_batch()
            return line

    def finalize_batch(self) -> MerkleBatch | None:
        """Close the current batch (None when it is empty)."""
        with self._lock:
            core = self.chain._core
            if core.leaf_count == 0:
                return None
            leaves: list[str] = core.take_leaves()
            count = len(leaves)
            batch = MerkleBatch(
                batch_id=f"batch_{len(self._batches) + 1}",
                start_sequence=self._batch_start,
                end_sequence=self._batch_start + count - 1,
                event_count=count,
                merkle_root=impl.audit_merkle_root(leaves),
                created_at=datetime.now(timezone.utc).isoformat(),
                previous_batch_root=self._batches[-1].merkle_root if self._batches else None,
            )
            self._batches.append(batch)
            self._batch_start += count
            return batch

    def get_inclusion_proof(self, event: AuditEventV2) -> dict[str, Any] | None:
        """``{"event_hash", "batch_id", "merkle_root", "merkle_index"}`` of the finalised
        batch holding ``event``, or None."""
        with self._lock:
            pos = self.chain._position(event.event_hash)
            if pos is None:
                return None
            for batch in self._batches:
                if batch.start_sequence <= pos + 1 <= batch.end_sequence:
                    return {
                        "event_hash": event.event_hash,
                        "batch_id": batch.batch_id,
                        "merkle_root": batch.merkle_root,
                        "merkle_index": event.merkle_index,
                    }
            return None
