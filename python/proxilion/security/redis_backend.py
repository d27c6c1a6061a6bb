"""Shared state in Redis: rate limits and the kill switch across replicas.

An agent server usually runs as several processes or machines. With in-process state, N
replicas allow N times the limit and a kill switch halts only the replica it was pulled on.
A :class:`RedisBackend` moves that state into Redis, with the same API:

* **Rate limits** (``TokenBucketRateLimiter(..., backend=RedisBackend(url))``): GCRA, one Lua
  script per check (``EVALSHA``), on Redis server time (``TIME``), so replicas agree whatever
  their clocks. Each bucket key expires when it has refilled, so idle keys cost nothing.
* **Kill switch** (``KillSwitch(backend=RedisBackend(url), name="prod")``): a key holding the
  active halt plus a pub/sub channel, so every replica halts at once; the key is re-read
  periodically, so a replica that missed a message (or started later) still halts.

Failure policy: if Redis cannot be reached, limiters **fail closed** by default (refuse, log
an error naming the cause, and the decorators raise :class:`RateLimitBackendError`) and the
kill switch reports itself active ("state unknown"). ``fail_open=True`` lets calls through
instead, with a warning. Needs ``pip install proxilion[redis]``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = ["RedisBackend", "RedisGcraLimiter", "RedisKillSwitchLink"]

logger = logging.getLogger("proxilion.security.redis_backend")

# GCRA on Redis server time, microseconds (exact in Lua doubles up to 2**53 us).
# KEYS[1]: bucket; ARGV: interval_us, tau_us, cost, ttl_extra_ms, mode ("acquire" | "peek")
# Returns {allowed (0/1), remaining tokens, retry_after_us for `cost`}.
_GCRA_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local base = math.max(tat, now)
local new_tat = base + cost * interval
local allowed = 0
if ARGV[5] == 'acquire' and new_tat - now <= tau then
  allowed = 1
  base = new_tat
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
             'PX', math.ceil((new_tat - now) / 1000) + tonumber(ARGV[4]))
  new_tat = base + cost * interval
end
local remaining = math.floor(math.max(0, tau - (base - now)) / interval)
local wait = math.max(0, new_tat - now - tau)
return {allowed, remaining, wait}
"""

# KEYS[1]: bucket; ARGV: give_back_us. Moves TAT back (never below 0), keeps the TTL.
_REFUND_LUA = """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat > 0 then
  local new_tat = math.max(0, tat - tonumber(ARGV[1]))
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'KEEPTTL')
end
return 1
"""


def _require_redis() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - redis is a dev requirement
        raise ImportError(
            "the Redis backend needs the redis package: pip install proxilion[redis]"
        ) from exc
    return redis


def _safe_location(url: str) -> str:
    """``host:port/db`` of a Redis URL, without credentials (for logs and repr)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 6379
    return f"{parts.scheme}://{host}:{port}{parts.path or ''}"


def _bucket_suffix(key: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"key must be str, not {type(key).__name__}")
    try:
        b = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "key is not valid Unicode text (it contains surrogate code points)"
        ) from None
    if len(b) <= 64:
        return key
    return "#" + hashlib.sha256(b).hexdigest()


class RedisBackend:
    """Connection and policy for state shared through Redis.

    Args:
        url: ``redis://[user:password@]host:port/db`` (default: ``$PROXILION_REDIS_URL``).
        client: an existing ``redis.Redis`` client to use instead of ``url``.
        prefix: prefix of every key and channel (namespaces deployments).
        fail_open: if True, a Redis outage lets rate-limited calls through (logged as a
            warning) and leaves the kill switch as last known. Default False: fail closed.
        timeout: socket connect/read timeout in seconds (keeps an outage from stalling calls).
        kill_switch_poll: seconds between re-reads of the kill-switch key by each replica.

    The password is never logged or shown in ``repr``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "proxilion:",
        fail_open: bool = False,
        timeout: float = 0.5,
        kill_switch_poll: float = 1.0,
    ) -> None:
        redis = _require_redis()
        if client is None:
            url = url or os.environ.get("PROXILION_REDIS_URL")
            if not url:
                raise ValueError("RedisBackend needs a url (or PROXILION_REDIS_URL) or a client")
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            client = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
            self.location = _safe_location(url)
        else:
            kw = client.connection_pool.connection_kwargs
            self.location = f"redis://{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be str, not {type(prefix).__name__}")
        self.client = client
        self.prefix = prefix
        self.fail_open = bool(fail_open)
        self.timeout = timeout
        self.kill_switch_poll = kill_switch_poll
        self._errors = redis.RedisError
        self._gcra = client.register_script(_GCRA_LUA)
        self._refund = client.register_script(_REFUND_LUA)
        self._last_log = 0.0

    def __repr__(self) -> str:
        mode = "fail_open" if self.fail_open else "fail_closed"
        return f"RedisBackend({self.location!r}, prefix={self.prefix!r}, {mode})"

    def ping(self) -> bool:
        """Whether Redis answers."""
        try:
            return bool(self.client.ping())
        except self._errors:
            return False

    def report_outage(self, what: str, exc: BaseException) -> str:
        """Log an outage (at most once per second) and return its one-line cause."""
        cause = f"Redis at {self.location} unreachable: {type(exc).__name__}: {exc}"
        now = time.monotonic()
        if now - self._last_log >= 1.0:
            self._last_log = now
            if self.fail_open:
                logger.warning("%s; %s failing OPEN (calls allowed)", cause, what)
            else:
                logger.error("%s; %s failing closed (calls refused)", cause, what)
        return cause

    def gcra_limiter(self, name: str, capacity: int, interval_ns: int) -> RedisGcraLimiter:
        """A shared token-bucket engine named ``name`` (same interface as ``GcraLimiter``)."""
        return RedisGcraLimiter(self, name, capacity, interval_ns)

    def kill_switch_link(
        self,
        name: str,
        on_state: Callable[[dict[str, Any] | None, int | None], None],
        generation: Callable[[], int],
    ) -> RedisKillSwitchLink:
        """Connect a local kill switch to the shared one named ``name``."""
        return RedisKillSwitchLink(self, name, on_state, generation)


class RedisGcraLimiter:
    """Token buckets in Redis with the interface of ``proxilion._core.GcraLimiter``.

    ``now`` arguments are ignored: Redis server time decides. ``unavailable`` holds the cause
    of the last failed call (``None`` once Redis answers again).
    """

    def __init__(self, backend: RedisBackend, name: str, capacity: int, interval_ns: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be greater than 0")
        if interval_ns <= 0:
            raise ValueError("interval_ns must be greater than 0")
        self.backend = backend
        self.name = name
        self.capacity = capacity
        self.interval_ns = interval_ns
        self.interval_us = max(1, math.ceil(interval_ns / 1000))
        self.tau_us = capacity * self.interval_us
        self.unavailable: str | None = None
        self._prefix = f"{backend.prefix}gcra:{name}:"

    def _call(self, key: str, cost: Any, mode: str) -> tuple[int, int, int] | None:
        if isinstance(cost, bool) or not isinstance(cost, int):
            raise TypeError(f"'{type(cost).__name__}' object cannot be interpreted as an integer")
        if cost <= 0:
            raise ValueError("cost must be greater than 0")
        bucket = self._prefix + _bucket_suffix(key)
        try:
            r = self.backend._gcra(
                keys=[bucket], args=[self.interval_us, self.tau_us, cost, 1000, mode]
            )
        except self.backend._errors as exc:
            self.unavailable = self.backend.report_outage("rate limiter", exc)
            return None
        self.unavailable = None
        return int(r[0]), int(r[1]), int(r[2])

    def acquire(self, key: str, cost: int = 1, now: float | None = None) -> bool:
        """Take ``cost`` tokens if available (one ``EVALSHA`` round trip)."""
        if isinstance(cost, int) and not isinstance(cost, bool) and cost > self.capacity:
            _bucket_suffix(key)
            return False
        r = self._call(key, cost, "acquire")
        if r is None:
            return self.backend.fail_open
        return r[0] == 1

    def remaining(self, key: str, now: float | None = None) -> int:
        """Whole tokens left (0 while Redis is unreachable and failing closed)."""
        r = self._call(key, 1, "peek")
        if r is None:
            return self.capacity if self.backend.fail_open else 0
        return r[1]

    def retry_after(self, key: str, cost: int = 1, now: float | None = None) -> float:
        """Seconds until ``cost`` tokens are available (``inf`` if never)."""
        if isinstance(cost, int) and not isinstance(cost, bool) and cost > self.capacity:
            return math.inf
        r = self._call(key, cost, "peek")
        if r is None:
            return 0.0 if self.backend.fail_open else self.backend.timeout
        return r[2] / 1e6

    def refund(self, key: str, cost: int = 1) -> None:
        """Give back ``cost`` tokens taken earlier."""
        if cost <= 0:
            raise ValueError("cost must be greater than 0")
        give = min(cost, self.capacity) * self.interval_us
        try:
            self.backend._refund(keys=[self._prefix + _bucket_suffix(key)], args=[give])
        except self.backend._errors as exc:
            self.unavailable = self.backend.report_outage("rate limiter refund", exc)

    def reset(self, key: str) -> bool:
        """Refill ``key``'s bucket; returns whether it held state."""
        return bool(self.backend.client.delete(self._prefix + _bucket_suffix(key)))

    def reset_all(self) -> None:
        """Refill every bucket of this limiter (SCAN + DEL of its keys)."""
        client = self.backend.client
        batch: list[Any] = []
        for k in client.scan_iter(match=self._prefix.replace("*", r"\*") + "*", count=1000):
            batch.append(k)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)

    def evict(self, now: float | None = None) -> int:
        """Nothing to do: Redis expires each bucket key once it has refilled."""
        return 0

    def __len__(self) -> int:
        n = 0
        pattern = self._prefix.replace("*", r"\*") + "*"
        for _ in self.backend.client.scan_iter(match=pattern, count=1000):
            n += 1
        return n

    def __repr__(self) -> str:
        return (
            f"RedisGcraLimiter(name={self.name!r}, capacity={self.capacity}, "
            f"interval_ns={self.interval_ns}, backend={self.backend!r})"
        )


class RedisKillSwitchLink:
    """Keeps a local :class:`~proxilion.security.kill_switch.KillSwitch` in step with Redis.

    The shared state is the key ``{prefix}killswitch:{name}`` (JSON: reason, triggered_by,
    origin, time) and the channel ``{prefix}killswitch:{name}:events``. A daemon thread
    listens on the channel and applies halts and resets from other replicas at once;
    :meth:`sync` re-reads the key (called at most every ``kill_switch_poll`` seconds by the
    switch) so a lost message or a late start cannot leave a replica running.

    ``on_state(state, generation)`` receives the halt dict or ``None`` (not halted), with the
    switch's ``generation()`` read *before* a key read (``None`` for a pub/sub message), so
    the switch can drop a read that a newer local change has made stale.
    """

    def __init__(
        self,
        backend: RedisBackend,
        name: str,
        on_state: Callable[[dict[str, Any] | None, int | None], None],
        generation: Callable[[], int],
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("kill switch name must be a non-empty string")
        self.backend = backend
        self.name = name
        self.key = f"{backend.prefix}killswitch:{name}"
        self.channel = f"{self.key}:events"
        self.origin = uuid.uuid4().hex
        self._on_state = on_state
        self._generation = generation
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._last_sync = -math.inf
        self.unavailable: str | None = None
        self._thread = threading.Thread(
            target=self._listen, name=f"proxilion-killswitch-{name}", daemon=True
        )
        self._thread.start()

    # -- writes -----------------------------------------------------------------------------

    def publish_halt(self, reason: str, triggered_by: str, ttl_seconds: float | None) -> bool:
        """Store and broadcast a halt; returns whether Redis accepted it."""
        payload = json.dumps(
            {
                "event": "halt",
                "reason": reason,
                "triggered_by": triggered_by,
                "origin": self.origin,
                "time": time.time(),
            }
        )
        try:
            pipe = self.backend.client.pipeline(transaction=True)
            if ttl_seconds is not None:
                pipe.set(self.key, payload, px=max(1, math.ceil(ttl_seconds * 1000)))
            else:
                pipe.set(self.key, payload)
            pipe.publish(self.channel, payload)
            pipe.execute()
            return True
        except self.backend._errors as exc:
            self.unavailable = self.backend.report_outage("kill switch (activate)", exc)
            return False

    def publish_reset(self) -> bool:
        """Clear and broadcast a reset; returns whether Redis accepted it."""
        payload = json.dumps({"event": "reset", "origin": self.origin, "time": time.time()})
        try:
            pipe = self.backend.client.pipeline(transaction=True)
            pipe.delete(self.key)
            pipe.publish(self.channel, payload)
            pipe.execute()
            return True
        except self.backend._errors as exc:
            self.unavailable = self.backend.report_outage("kill switch (reset)", exc)
            return False

    # -- reads ------------------------------------------------------------------------------

    def due(self) -> bool:
        """Whether the periodic re-read of the key is due."""
        return time.monotonic() - self._last_sync >= self.backend.kill_switch_poll

    def sync(self) -> dict[str, Any] | Literal[False] | None:
        """Read the shared state: the halt dict, ``None`` if not halted, ``False`` if Redis is
        unreachable (then :attr:`unavailable` holds the cause)."""
        self._last_sync = time.monotonic()
        try:
            raw = self.backend.client.get(self.key)
        except self.backend._errors as exc:
            self.unavailable = self.backend.report_outage("kill switch", exc)
            return False
        self.unavailable = None
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            data = {"reason": "kill switch key holds malformed data", "triggered_by": "redis"}
        if not isinstance(data, dict):
            data = {"reason": "kill switch key holds malformed data", "triggered_by": "redis"}
        return data

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until the listener is subscribed (for tests and orderly start-up)."""
        return self._subscribed.wait(timeout)

    def _listen(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            pubsub = None
            try:
                pubsub = self.backend.client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                # Catch up on anything published before the subscription took effect.
                gen = self._generation()
                state = self.sync()
                if state is not False:
                    self._on_state(state, gen)
                self._subscribed.set()
                backoff = 0.05
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=0.2)
                    if msg is None or msg.get("type") != "message":
                        continue
                    try:
                        data = json.loads(msg["data"])
                    except (ValueError, TypeError):
                        continue
                    if isinstance(data, dict) and data.get("origin") != self.origin:
                        self._on_state(data if data.get("event") == "halt" else None, None)
            except self.backend._errors as exc:
                self._subscribed.clear()
                self.unavailable = self.backend.report_outage("kill switch listener", exc)
                self._stop.wait(backoff)
                backoff = min(1.0, backoff * 2)
            except Exception:  # pragma: no cover - never let the listener die silently
                logger.exception("kill switch listener failed; restarting")
                self._stop.wait(backoff)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()

    def close(self) -> None:
        """Stop the listener thread."""
        self._stop.set()
        self._thread.join(timeout=2.0)
