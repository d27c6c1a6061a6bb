"""A thread-safe TTL + LRU/LFU/FIFO cache of tool results, keyed by tool and arguments.

Repeated identical read-only tool calls (weather, search, configuration lookups) need not
run twice. :class:`ToolCache` stores results under a key derived from the tool name, the
arguments and (by default) the user; :class:`CachePolicy` says which tools may be cached and
for how long; :func:`cached_tool` wraps a function.

Security properties (deliberate differences from the original SDK):

* ``per_user_cache`` is on by default: a result computed for one user is never returned to
  another unless you turn it off for data that is the same for everyone.
* Tools with side effects (``send_*``, ``delete_*``, ``execute_*``, ``create_*``, payments,
  ...) are never cached, even if a policy lists others; caching them would silently skip the
  action on a repeat call.
* Keys are a SHA-256 of a canonical, type-tagged encoding of the arguments: ``1``, ``1.0``,
  ``True`` and ``"1"`` are different keys, dict order does not matter, and values that have
  no faithful encoding (arbitrary objects, whose ``repr`` may not reflect their state) make
  the call *uncacheable* instead of risking a wrong hit.
* ``NaN`` arguments are uncacheable (``NaN != NaN``).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import math
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import Any, ParamSpec, TypeVar, cast

from proxilion.security._tool_patterns import check_name, compile_pattern, normalize_tool_name

__all__ = [
    "DEFAULT_NEVER_CACHE",
    "CacheConfig",
    "CacheEntry",
    "CachePolicy",
    "CacheStats",
    "EvictionPolicy",
    "ToolCache",
    "UncacheableArgumentError",
    "cached_tool",
    "make_cache_key",
]

logger = logging.getLogger("proxilion.caching.tool_cache")

P = ParamSpec("P")
T = TypeVar("T")

_MISS = object()


class UncacheableArgumentError(TypeError):
    """An argument has no faithful canonical encoding, so the call cannot be cached."""


class EvictionPolicy(Enum):
    """Which entry leaves a full cache."""

    LRU = "lru"
    LFU = "lfu"
    FIFO = "fifo"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _estimate_size(value: Any) -> int:
    size = sys.getsizeof(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        size += sum(sys.getsizeof(v) for v in value)
    elif isinstance(value, dict):
        size += sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in value.items())
    return size


@dataclass
class CacheEntry:
    """One cached result."""

    key: str
    value: Any
    tool_name: str = ""
    created_at: datetime = field(default_factory=_utcnow)
    expires_at: datetime | None = None
    hits: int = 0
    last_accessed: datetime = field(default_factory=_utcnow)
    size_bytes: int = 0
    user_id: str | None = None
    _expires_mono: float | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.size_bytes <= 0:
            self.size_bytes = _estimate_size(self.value)

    def is_expired(self, now: datetime | None = None) -> bool:
        """True once ``expires_at`` has passed (never for entries without expiry)."""
        if self.expires_at is None:
            return False
        return (now or _utcnow()) >= self.expires_at

    def access(self) -> None:
        """Count a hit."""
        self.hits += 1
        self.last_accessed = _utcnow()

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "tool_name": self.tool_name,
            "user_id": self.user_id,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "hits": self.hits,
            "last_accessed": self.last_accessed.isoformat(),
            "size_bytes": self.size_bytes,
        }


@dataclass
class CacheStats:
    """Counters of a :class:`ToolCache`."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0
    size: int = 0
    max_size: int = 0
    total_bytes: int = 0

    @property
    def total_requests(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        total = self.total_requests
        return self.hits / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "expirations": self.expirations,
            "size": self.size,
            "max_size": self.max_size,
            "total_bytes": self.total_bytes,
            "total_requests": self.total_requests,
            "hit_rate": self.hit_rate,
        }


def _check_ttl(ttl: object, what: str = "ttl") -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"{what} must be a number of seconds or None, not {type(ttl).__name__}")
    if not math.isfinite(ttl) or ttl <= 0:
        raise ValueError(f"{what} must be a positive finite number of seconds, got {ttl!r}")
    return float(ttl)


@dataclass(frozen=True)
class CacheConfig:
    """Settings of a :class:`ToolCache`.

    Args:
        max_size: entries kept before eviction (>= 1).
        default_ttl: seconds an entry lives when no other TTL applies (None: no expiry).
        eviction_policy: :class:`EvictionPolicy`.
        per_user_cache: key entries by user too (on by default, see the module docstring).
        max_value_bytes: results larger than this (estimated) are not cached (None: any).
        enabled: a disabled cache stores nothing.
    """

    max_size: int = 1000
    default_ttl: float | None = 300.0
    eviction_policy: EvictionPolicy = EvictionPolicy.LRU
    per_user_cache: bool = True
    max_value_bytes: int | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        size: Any = self.max_size
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"max_size must be an int, not {type(size).__name__}")
        if size < 1:
            raise ValueError(f"max_size must be >= 1, got {size}")
        object.__setattr__(self, "default_ttl", _check_ttl(self.default_ttl, "default_ttl"))
        policy: Any = self.eviction_policy
        if not isinstance(policy, EvictionPolicy):
            object.__setattr__(self, "eviction_policy", EvictionPolicy(policy))
        limit: Any = self.max_value_bytes
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"max_value_bytes must be a positive int or None, got {limit!r}")


_SIDE_EFFECT_VERBS = (
    "send create delete execute exec run write update remove drop insert post put patch "
    "upload set add modify email publish transfer pay charge refund book cancel deploy "
    "restart shutdown kill purge grant revoke approve submit"
)
#: Tools that are never cached: their effect, not their result, is the point of the call.
DEFAULT_NEVER_CACHE: frozenset[str] = frozenset(f"{verb}_*" for verb in _SIDE_EFFECT_VERBS.split())


class CachePolicy:
    """Which tools may be cached, and for how long.

    Args:
        never_cache: extra tool globs never to cache (added to :data:`DEFAULT_NEVER_CACHE`
            unless ``use_default_never_cache=False``).
        short_ttl / long_ttl: tool name (or glob) -> TTL seconds.
        default_ttl: TTL of other tools (``None``: use the cache's default).
        cacheable_tools: if given, only tools matching these globs are cached.
    """

    def __init__(
        self,
        never_cache: Iterable[str] | None = None,
        short_ttl: Mapping[str, float] | None = None,
        long_ttl: Mapping[str, float] | None = None,
        default_ttl: float | None = None,
        cacheable_tools: Iterable[str] | None = None,
        use_default_never_cache: bool = True,
    ) -> None:
        never = set(DEFAULT_NEVER_CACHE) if use_default_never_cache else set()
        for glob in never_cache or ():
            never.add(check_name(glob, "never_cache entry"))
        self.never_cache = frozenset(never)
        self._never_rx = compile_pattern("|".join(sorted(self.never_cache))) if never else None
        self.cacheable_tools = (
            frozenset(check_name(g, "cacheable_tools entry") for g in cacheable_tools)
            if cacheable_tools is not None
            else None
        )
        self._allow_rx = (
            compile_pattern("|".join(sorted(self.cacheable_tools)))
            if self.cacheable_tools
            else None
        )
        self._ttls: list[tuple[str, float]] = []
        for table in (short_ttl or {}, long_ttl or {}):
            for name, ttl in table.items():
                checked = _check_ttl(ttl)
                assert checked is not None
                self._ttls.append((check_name(name, "ttl tool name"), checked))
        self.short_ttl = dict(short_ttl or {})
        self.long_ttl = dict(long_ttl or {})
        self.default_ttl = _check_ttl(default_ttl, "default_ttl")

    def should_cache(self, tool_name: str) -> bool:
        """False for side-effect tools and tools outside ``cacheable_tools``."""
        key = normalize_tool_name(check_name(tool_name, "tool_name"))
        if self._never_rx is not None and self._never_rx.match(key):
            return False
        if self.cacheable_tools is not None:
            return self._allow_rx is not None and self._allow_rx.match(key) is not None
        return True

    def get_ttl(self, tool_name: str) -> float | None:
        """The TTL for ``tool_name``: exact names first, then globs, then ``default_ttl``."""
        for name, ttl in self._ttls:
            if name == tool_name:
                return ttl
        key = normalize_tool_name(tool_name)
        for name, ttl in self._ttls:
            if compile_pattern(name).match(key):
                return ttl
        return self.default_ttl


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _sort_key(item: Any) -> str:
    return json.dumps(item, sort_keys=True)


def _canonical(value: Any, depth: int = 0) -> Any:
    """A JSON-encodable, type-tagged form of ``value`` (raises if there is none)."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return value
    if depth > 64:
        raise UncacheableArgumentError("argument nesting is too deep to cache")
    if isinstance(value, str):
        return ["str", str.__str__(value)]
    if isinstance(value, int):
        return ["i", int.__repr__(value)]
    if isinstance(value, float):
        if math.isnan(value):
            raise UncacheableArgumentError("NaN arguments are not cacheable")
        return ["f", float.__repr__(value)]
    if isinstance(value, bytes):
        return ["b", value.hex()]
    if isinstance(value, (list, tuple)):
        tag = "l" if isinstance(value, list) else "t"
        return [tag, [_canonical(v, depth + 1) for v in value]]
    if isinstance(value, dict):
        if all(type(k) is str for k in value):
            return ["d", [[k, _canonical(value[k], depth + 1)] for k in sorted(value)]]
        items = [[_canonical(k, depth + 1), _canonical(v, depth + 1)] for k, v in value.items()]
        items.sort(key=lambda kv: _sort_key(kv[0]))
        return ["dk", items]
    if isinstance(value, (set, frozenset)):
        members = [_canonical(v, depth + 1) for v in value]
        members.sort(key=_sort_key)
        return ["s", members]
    if isinstance(value, datetime):
        return ["dt", value.isoformat()]
    if isinstance(value, date):
        return ["da", value.isoformat()]
    if isinstance(value, timedelta):
        return ["td", repr(value.total_seconds())]
    if isinstance(value, Enum):
        return [
            "e",
            f"{type(value).__module__}.{type(value).__qualname__}",
            _canonical(value.value, depth + 1),
        ]
    raise UncacheableArgumentError(f"arguments of type {type(value).__name__} are not cacheable")


def make_cache_key(
    tool_name: str, arguments: Mapping[str, Any] | None, user_id: str | None = None
) -> str:
    """The cache key (hex SHA-256) of a call.

    Raises:
        UncacheableArgumentError: an argument cannot be encoded faithfully.
    """
    check_name(tool_name, "tool_name")
    args = dict(arguments or {})
    payload = _ENCODER.encode([tool_name, user_id, _canonical(args)])
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


class ToolCache:
    """Thread-safe cache of tool results with TTL and LRU/LFU/FIFO eviction.

    Args:
        config: :class:`CacheConfig` (defaults if None).
        policy: :class:`CachePolicy` (defaults if None).
        clock: monotonic seconds (injectable for tests); expiry uses it.
    """

    def __init__(
        self,
        config: CacheConfig | None = None,
        policy: CachePolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config if config is not None else CacheConfig()
        self.policy = policy if policy is not None else CachePolicy()
        if not isinstance(self.config, CacheConfig):
            raise TypeError("config must be a CacheConfig")
        if not isinstance(self.policy, CachePolicy):
            raise TypeError("policy must be a CachePolicy")
        self._clock = clock
        self._lock = threading.RLock()
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._by_tool: dict[str, set[str]] = {}
        self._stats = CacheStats(max_size=self.config.max_size)

    def __repr__(self) -> str:
        return f"ToolCache(size={len(self._entries)}, max_size={self.config.max_size})"

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, tuple) or len(item) not in (2, 3):
            return False
        tool_name, arguments = item[0], item[1]
        user_id = item[2] if len(item) == 3 else None
        return self.get(tool_name, arguments, user_id=user_id, default=_MISS, count=False) is not (
            _MISS
        )

    def make_key(
        self, tool_name: str, arguments: Mapping[str, Any] | None, user_id: str | None = None
    ) -> str:
        """The key of a call under this cache's ``per_user_cache`` setting."""
        return make_cache_key(tool_name, arguments, user_id if self.config.per_user_cache else None)

    # ------------------------------------------------------------------ core

    def _drop(self, key: str) -> CacheEntry | None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            keys = self._by_tool.get(entry.tool_name)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tool[entry.tool_name]
            self._stats.total_bytes -= entry.size_bytes
        return entry

    def _expired(self, entry: CacheEntry, now: float) -> bool:
        return entry._expires_mono is not None and now >= entry._expires_mono

    def get(
        self,
        tool_name: str,
        arguments: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        default: Any = None,
        *,
        count: bool = True,
    ) -> Any:
        """The cached result, or ``default`` on a miss (or for uncacheable arguments)."""
        try:
            key = self.make_key(tool_name, arguments, user_id)
        except UncacheableArgumentError:
            return default
        with self._lock:
            entry = self._entries.get(key)
            now = self._clock()
            if entry is not None and self._expired(entry, now):
                self._drop(key)
                self._stats.expirations += 1
                entry = None
            if entry is None:
                if count:
                    self._stats.misses += 1
                return default
            if count:
                self._stats.hits += 1
                entry.access()
                if self.config.eviction_policy is EvictionPolicy.LRU:
                    self._entries.move_to_end(key)
            return entry.value

    def set(
        self,
        tool_name: str,
        arguments: Mapping[str, Any] | None,
        value: Any,
        ttl: float | None = None,
        user_id: str | None = None,
    ) -> bool:
        """Store a result; False when the policy, the size limit or the arguments forbid.

        The TTL is ``ttl``, else the policy's TTL for the tool, else the config default.
        """
        check_name(tool_name, "tool_name")
        seconds = _check_ttl(ttl)
        if not self.config.enabled or not self.policy.should_cache(tool_name):
            return False
        try:
            key = self.make_key(tool_name, arguments, user_id)
        except UncacheableArgumentError as exc:
            logger.debug("not caching %s: %s", tool_name, exc)
            return False
        if seconds is None:
            seconds = self.policy.get_ttl(tool_name)
        if seconds is None:
            seconds = self.config.default_ttl
        now_wall = _utcnow()
        entry = CacheEntry(
            key=key,
            value=value,
            tool_name=tool_name,
            created_at=now_wall,
            expires_at=now_wall + timedelta(seconds=seconds) if seconds is not None else None,
            last_accessed=now_wall,
            user_id=user_id if self.config.per_user_cache else None,
        )
        limit = self.config.max_value_bytes
        if limit is not None and entry.size_bytes > limit:
            return False
        with self._lock:
            entry._expires_mono = self._clock() + seconds if seconds is not None else None
            self._drop(key)
            while len(self._entries) >= self.config.max_size:
                self._evict_one()
            self._entries[key] = entry
            self._by_tool.setdefault(tool_name, set()).add(key)
            self._stats.total_bytes += entry.size_bytes
        return True

    def _evict_one(self) -> None:
        now = self._clock()
        expired = next((k for k, e in self._entries.items() if self._expired(e, now)), None)
        if expired is not None:
            self._drop(expired)
            self._stats.expirations += 1
            return
        if self.config.eviction_policy is EvictionPolicy.LFU:
            victim = min(self._entries.items(), key=lambda kv: kv[1].hits)[0]
        else:  # LRU keeps recency order; FIFO keeps insertion order
            victim = next(iter(self._entries))
        self._drop(victim)
        self._stats.evictions += 1

    def invalidate(
        self,
        tool_name: str,
        arguments: Mapping[str, Any] | None = None,
        user_id: str | None = None,
    ) -> int:
        """Drop one call's entry (with ``arguments``) or every entry of the tool."""
        check_name(tool_name, "tool_name")
        with self._lock:
            if arguments is None:
                keys = list(self._by_tool.get(tool_name, ()))
                for key in keys:
                    self._drop(key)
                return len(keys)
            try:
                key = self.make_key(tool_name, arguments, user_id)
            except UncacheableArgumentError:
                return 0
            return 1 if self._drop(key) is not None else 0

    def invalidate_user(self, user_id: str) -> int:
        """Drop every entry cached for ``user_id``."""
        with self._lock:
            keys = [k for k, e in self._entries.items() if e.user_id == user_id]
            for key in keys:
                self._drop(key)
            return len(keys)

    def clear(self) -> int:
        """Drop everything; returns how many entries there were."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            self._by_tool.clear()
            self._stats.total_bytes = 0
            return count

    def cleanup_expired(self) -> int:
        """Drop expired entries now; returns how many."""
        with self._lock:
            now = self._clock()
            keys = [k for k, e in self._entries.items() if self._expired(e, now)]
            for key in keys:
                self._drop(key)
            self._stats.expirations += len(keys)
            return len(keys)

    def get_stats(self) -> CacheStats:
        with self._lock:
            stats = CacheStats(**{**self._stats.__dict__})
            stats.size = len(self._entries)
            return stats

    def reset_stats(self) -> None:
        with self._lock:
            total = self._stats.total_bytes
            self._stats = CacheStats(max_size=self.config.max_size, total_bytes=total)

    def get_entries(self, tool_name: str | None = None) -> list[CacheEntry]:
        """Live entries (of one tool if given), oldest first."""
        with self._lock:
            now = self._clock()
            return [
                e
                for e in self._entries.values()
                if (tool_name is None or e.tool_name == tool_name) and not self._expired(e, now)
            ]


def cached_tool(
    cache: ToolCache,
    ttl: float | None = None,
    key_params: Iterable[str] | None = None,
    tool_name: str | None = None,
    user_param: str = "user",
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Cache a function's results in ``cache``, keyed by its bound arguments.

    Positional and keyword forms of the same call share an entry (arguments are bound to
    the signature, defaults applied). ``key_params`` restricts the key to those parameters.
    The ``user_param`` argument is not part of the key; its ``user_id`` (for a
    ``UserContext``) keys per-user entries. Exceptions are not cached. Calls with
    uncacheable arguments, or of tools the policy refuses, simply run.
    """
    if not isinstance(cache, ToolCache):
        raise TypeError(f"cache must be a ToolCache, not {type(cache).__name__}")
    seconds = _check_ttl(ttl)
    wanted = None if key_params is None else frozenset(key_params)

    def decorator(func: Callable[P, T]) -> Callable[P, T]:
        name: str = tool_name or str(getattr(func, "__name__", "tool"))
        signature = inspect.signature(func)

        def key_of(args: Any, kwargs: Any) -> tuple[dict[str, Any], str | None]:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            user = bound.arguments.get(user_param)
            user_id = getattr(user, "user_id", None) if user is not None else None
            if user_id is not None and not isinstance(user_id, str):
                user_id = str(user_id)
            key_args = {
                k: v
                for k, v in bound.arguments.items()
                if k != user_param and not k.startswith("_") and (wanted is None or k in wanted)
            }
            return key_args, user_id

        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[..., Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                key_args, user_id = key_of(args, kwargs)
                hit = cache.get(name, key_args, user_id=user_id, default=_MISS)
                if hit is not _MISS:
                    return hit
                result = await async_func(*args, **kwargs)
                cache.set(name, key_args, result, ttl=seconds, user_id=user_id)
                return result

            return cast(Callable[P, T], async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            key_args, user_id = key_of(args, kwargs)
            hit = cache.get(name, key_args, user_id=user_id, default=_MISS)
            if hit is not _MISS:
                return cast(T, hit)
            result = func(*args, **kwargs)
            cache.set(name, key_args, result, ttl=seconds, user_id=user_id)
            return result

        return wrapper

    return decorator
