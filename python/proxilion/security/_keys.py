"""Secret keys of the signing modules: validation (API.md 7.0) and rotation.

Shared by :mod:`~proxilion.security.memory_integrity`, :mod:`~proxilion.security.intent_capsule`
and :mod:`~proxilion.security.agent_trust`.

Differences from the original, on purpose:

* Keys shorter than 16 characters (the seed's ``"your-secret-key"`` has 15) are accepted with a
  :class:`WeakSecretKeyWarning`, because every seed example must run as written; the original
  0.0.7+ raised ``ConfigurationError``.
* Binary keys such as ``os.urandom(32)`` are accepted as they are. The original decoded
  ``bytes`` as UTF-8 and so rejected random keys with ``UnicodeDecodeError``.
* Empty keys and keys that are neither ``str`` nor ``bytes`` are rejected.
* Keys can be rotated: a :class:`KeyRing` signs with its newest key and still verifies with
  older keys until their grace period ends. Keys never appear in ``repr``, errors or logs.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from proxilion._backend import impl
from proxilion.exceptions import ConfigurationError

__all__ = [
    "MIN_KEY_LENGTH",
    "PLACEHOLDER_MARKERS",
    "KeyRing",
    "WeakSecretKeyWarning",
    "cached_signing_keys",
    "random_uuid4",
    "signing_keys_for",
    "validate_secret_key",
]

logger = logging.getLogger("proxilion.security.keys")

#: Keys shorter than this (characters of a ``str``, bytes of a ``bytes``) draw a warning.
MIN_KEY_LENGTH = 16
#: A key containing any of these (case-insensitive) looks like a documentation placeholder.
PLACEHOLDER_MARKERS = ("your-", "changeme", "example", "placeholder", "secret-key", "todo")
PLACEHOLDER_WARNING = "secret_key looks like a placeholder; use a random key in production."
SHORT_WARNING = (
    "secret_key is shorter than 16 characters; use a random key of at least 32 bytes "
    "(secrets.token_hex(32))."
)


_POOL_BYTES = 512  # 32 ids per refill

#: Ready-made ids, handed out by ``list.pop`` (atomic: each id goes to exactly one caller).
_IDS: list[str] = []
if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    # A forked child discards the parent's unused ids, so the two processes never share one.
    os.register_at_fork(after_in_child=_IDS.clear)


def random_uuid4() -> str:
    """``str(uuid.uuid4())``, several times faster: ids are made 32 at a time from one
    ``os.urandom`` read (formatted natively by ``impl.uuid4_batch``) and each is handed out
    once; a forked child discards the parent's unused ids."""
    while True:
        try:
            return _IDS.pop()
        except IndexError:
            _IDS.extend(impl.uuid4_batch(os.urandom(_POOL_BYTES)))


class WeakSecretKeyWarning(UserWarning):
    """A secret key is short or looks like a placeholder (it still works)."""


def _warn(text: str, stacklevel: int) -> None:
    logger.warning(text)
    # +2: this helper and validate_secret_key itself.
    warnings.warn(text, WeakSecretKeyWarning, stacklevel=stacklevel + 2)


def validate_secret_key(secret_key: object, *, stacklevel: int = 1) -> bytes:
    """Check a secret key and return its bytes (a ``str`` is encoded as UTF-8).

    Raises:
        TypeError: the key is neither ``str`` nor ``bytes``/``bytearray``.
        ConfigurationError: the key is empty, or a ``str`` that cannot be encoded.

    Short keys and placeholder-looking keys are accepted with a :class:`WeakSecretKeyWarning`
    (also logged; ``stacklevel`` as for :func:`warnings.warn`, counted from the caller). The
    key itself is never included in any message.
    """
    if isinstance(secret_key, str):
        try:
            raw = secret_key.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigurationError(
                "secret_key must be valid Unicode text (it contains surrogate code points)"
            ) from None
        length = len(secret_key)
        text = secret_key
    elif isinstance(secret_key, (bytes, bytearray)):
        raw = bytes(secret_key)
        length = len(raw)
        text = raw.decode("utf-8", "ignore")
    else:
        raise TypeError(f"secret_key must be str or bytes, not {type(secret_key).__name__}")
    if length == 0:
        raise ConfigurationError("secret_key must not be empty")
    for text_of_warning in _weaknesses(raw, text, length):
        _warn(text_of_warning, stacklevel)
    return raw


def _weaknesses(raw: bytes, text: str, length: int) -> list[str]:
    out = []
    if length < MIN_KEY_LENGTH:
        out.append(SHORT_WARNING)
    lowered = text.lower()
    if any(m in lowered for m in PLACEHOLDER_MARKERS) or len(set(raw)) == 1:
        out.append(PLACEHOLDER_WARNING)
    return out


#: Signing keys of recently used plain (``str``/``bytes``) keys that validated without any
#: warning, so that per-call APIs taking a key (``IntentCapsule.create``/``verify``) do not
#: validate and absorb the same key on every call. Bounded; weak keys are never cached, so
#: they warn on every use as before.
_KEYS_CACHE: dict[str | bytes, Any] = {}
_KEYS_CACHE_SIZE = 16
_KEYS_CACHE_LOCK = threading.Lock()


def cached_signing_keys(secret_key: object) -> Any:
    """The cached signing keys of a plain key (see :func:`signing_keys_for`), or None."""
    if type(secret_key) is str or type(secret_key) is bytes:
        hit = _KEYS_CACHE.get(secret_key)
        if hit is not None and hit[0] is impl:
            return hit[1]
    return None


def signing_keys_for(secret_key: object, *, stacklevel: int = 1) -> Any:
    """``impl.SigningKeys([secret_key])`` after :func:`validate_secret_key` (same errors and
    warnings), reused for keys seen recently that drew no warning."""
    hit = cached_signing_keys(secret_key)
    if hit is not None:
        return hit
    cacheable = type(secret_key) is str or type(secret_key) is bytes
    raw = validate_secret_key(secret_key, stacklevel=stacklevel + 1)
    signing = impl.SigningKeys([raw])
    if cacheable:
        if isinstance(secret_key, str):
            text, length = secret_key, len(secret_key)
        else:
            text, length = raw.decode("utf-8", "ignore"), len(raw)
        if not _weaknesses(raw, text, length):
            with _KEYS_CACHE_LOCK:
                while len(_KEYS_CACHE) >= _KEYS_CACHE_SIZE:
                    del _KEYS_CACHE[next(iter(_KEYS_CACHE))]
                _KEYS_CACHE[secret_key] = (impl, signing)  # type: ignore[index]
    return signing


class KeyRing:
    """The current signing key and older keys still accepted during their grace period.

    Args:
        secret_key: the first signing key (validated with :func:`validate_secret_key`).
        key_id: its identifier (default ``"k1"``; later keys default to ``"k2"``, ...).
        clock: wall clock in seconds, injectable for tests.

    ``signing_keys()`` gives the native :class:`~proxilion._core.SigningKeys` (current key
    first, then unexpired older keys, newest first), rebuilt only when the set changes.
    Thread-safe. ``repr`` shows key ids only.
    """

    def __init__(
        self,
        secret_key: str | bytes,
        *,
        key_id: str | None = None,
        clock: Callable[[], float] = time.time,
        _stacklevel: int = 1,
    ) -> None:
        raw = validate_secret_key(secret_key, stacklevel=_stacklevel + 1)
        self._clock = clock
        self._lock = threading.RLock()
        self._counter = 1
        kid = key_id if key_id is not None else "k1"
        self._check_id(kid)
        # (key_id, key bytes, expires_at or None for the current key)
        self._keys: list[tuple[str, bytes, float | None]] = [(kid, raw, None)]
        self._generation = 0
        self._cache: Any = None
        self._cache_gen = -1
        #: The ``SigningKeys`` of the ring while it holds exactly one key (nothing can expire
        #: then), else ``None``: the lock-free fast path of :meth:`signing_keys`, read
        #: directly by the native signing chains (``MemoryChain``). Set under the lock by
        #: ``signing_keys``, cleared by ``rotate`` before the keys change.
        self._single: Any = None

    @staticmethod
    def _check_id(key_id: object) -> None:
        if not isinstance(key_id, str) or not key_id:
            raise ConfigurationError("key_id must be a non-empty str")

    def __repr__(self) -> str:
        return f"KeyRing(current={self.current_key_id!r}, active={self.key_ids()!r})"

    def _expire(self) -> None:
        if len(self._keys) == 1:
            return
        now = self._clock()
        kept = [k for k in self._keys if k[2] is None or now < k[2]]
        if len(kept) != len(self._keys):
            self._keys = kept
            self._generation += 1

    @property
    def current_key_id(self) -> str:
        """Identifier of the key that signs."""
        with self._lock:
            return self._keys[0][0]

    @property
    def generation(self) -> int:
        """Changes whenever the set of active keys changes (rotation, expiry, retirement)."""
        if len(self._keys) == 1:
            # Only the current key: nothing can expire. (The list is replaced, never mutated,
            # so this unlocked read sees either the old or the new set, as a locked one would
            # just before or after a concurrent rotation.)
            return self._generation
        with self._lock:
            self._expire()
            return self._generation

    def key_ids(self) -> list[str]:
        """Identifiers of the active keys, current first."""
        with self._lock:
            self._expire()
            return [k[0] for k in self._keys]

    def active_keys(self) -> list[tuple[str, bytes]]:
        """``(key_id, key bytes)`` of the active keys, current first. Internal use only."""
        with self._lock:
            self._expire()
            return [(k[0], k[1]) for k in self._keys]

    def current_key(self) -> bytes:
        """Bytes of the signing key. Internal use only."""
        with self._lock:
            return self._keys[0][1]

    def rotate(
        self, new_key: str | bytes, *, key_id: str | None = None, grace_seconds: float = 3600.0
    ) -> str:
        """Make ``new_key`` the signing key; the previous one verifies for ``grace_seconds``.

        Returns the new key's id. ``grace_seconds=0`` retires the old key at once.
        """
        if (
            isinstance(grace_seconds, bool)
            or not isinstance(grace_seconds, (int, float))
            or not math.isfinite(grace_seconds)
            or grace_seconds < 0
        ):
            raise ConfigurationError("grace_seconds must be a finite number >= 0")
        raw = validate_secret_key(new_key, stacklevel=2)
        with self._lock:
            self._counter += 1
            kid = key_id if key_id is not None else f"k{self._counter}"
            self._check_id(kid)
            if any(k[0] == kid for k in self._keys):
                raise ConfigurationError(f"key_id {kid!r} is already in use")
            until = self._clock() + float(grace_seconds)
            old_id, old_raw, _ = self._keys[0]
            rest = [(old_id, old_raw, until), *self._keys[1:]]
            self._single = None
            self._keys = [(kid, raw, None), *rest]
            self._generation += 1
            self._expire()
            return kid

    def retire(self, key_id: str) -> bool:
        """Drop an older key at once. The current key cannot be retired."""
        with self._lock:
            if self._keys[0][0] == key_id:
                raise ConfigurationError("the current key cannot be retired; rotate first")
            before = len(self._keys)
            self._keys = [k for k in self._keys if k[0] != key_id]
            if len(self._keys) != before:
                self._generation += 1
                return True
            return False

    def signing_keys(self) -> Any:
        """The active keys as one native ``SigningKeys`` (cached per generation)."""
        single = self._single
        if single is not None:
            return single  # one key: nothing can expire; see `generation`
        with self._lock:
            self._expire()
            if self._cache_gen != self._generation:
                self._cache = impl.SigningKeys([k[1] for k in self._keys])
                self._cache_gen = self._generation
            self._single = self._cache if len(self._keys) == 1 else None
            return self._cache
