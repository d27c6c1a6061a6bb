"""Emergency kill switch (API.md section 8.5, seed example 8).

Once activated, every protected operation fails with :class:`EmergencyHaltError` until the
switch is reset. Activation is logged at CRITICAL level with its reason, and every halt is
kept in :attr:`KillSwitch.history`. ``proxilion.security.behavioral_drift.KillSwitch`` is this
class.

With ``backend=RedisBackend(url)`` (or a ``redis://`` URL) the switch is shared: activating it in
one replica halts every replica using the same Redis and ``name`` (a key plus pub/sub, and a
periodic re-read of the key), and ``reset()`` in any replica is the manual override for all.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from proxilion.exceptions import EmergencyHaltError

if TYPE_CHECKING:
    from proxilion.security.redis_backend import RedisBackend, RedisKillSwitchLink

__all__ = ["HaltRecord", "KillSwitch"]

logger = logging.getLogger("proxilion.security.kill_switch")


@dataclass(frozen=True)
class HaltRecord:
    """One activation of the switch: why, by whom, when (UTC)."""

    reason: str
    triggered_by: str
    activated_at: datetime


class KillSwitch:
    """A thread-safe emergency stop.

    Args:
        auto_reset_seconds: if set, reading :attr:`is_active` this many seconds after the
            activation clears the switch (the reset callbacks are not called). Must be a
            positive finite number.
        clock: monotonic clock in seconds (injectable for tests).
        backend: ``None`` (this process only), or a
            :class:`~proxilion.security.redis_backend.RedisBackend` or ``redis://`` URL to
            share the switch between replicas. If Redis is unreachable the switch reports
            itself active ("state unknown", fail closed) unless the backend has
            ``fail_open=True``.
        name: which shared switch to join (replicas with the same Redis and name halt
            together).
    """

    def __init__(
        self,
        auto_reset_seconds: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        backend: RedisBackend | str | None = None,
        name: str = "default",
    ) -> None:
        if auto_reset_seconds is not None:
            if isinstance(auto_reset_seconds, bool) or not isinstance(
                auto_reset_seconds, (int, float)
            ):
                raise TypeError(
                    "auto_reset_seconds must be a number or None, not "
                    f"{type(auto_reset_seconds).__name__}"
                )
            if not math.isfinite(auto_reset_seconds) or auto_reset_seconds <= 0:
                raise ValueError(
                    "auto_reset_seconds must be a positive finite number, got "
                    f"{auto_reset_seconds!r}"
                )
        self.auto_reset_seconds = auto_reset_seconds
        self._clock = clock
        self._lock = threading.RLock()
        self._active = False
        self._reason: str | None = None
        self._triggered_by: str | None = None
        self._activated_mono: float | None = None
        self._activated_at: datetime | None = None
        self._halt_callbacks: list[Callable[[str], Any]] = []
        self._reset_callbacks: list[Callable[[], Any]] = []
        self.history: list[HaltRecord] = []
        self.name = name
        self._halted = threading.Event()
        # Bumped on every state change; a Redis read started before a change is stale.
        self._generation = 0
        # Whether the current halt is known to Redis (received from it, or published to it).
        self._shared = False
        self._link: RedisKillSwitchLink | None = None
        self.backend: RedisBackend | None = None
        if backend is not None:
            if isinstance(backend, str):
                from proxilion.security.redis_backend import RedisBackend

                backend = RedisBackend(backend)
            self.backend = backend
            self._link = backend.kill_switch_link(
                name, self._on_shared_state, lambda: self._generation
            )

    def __repr__(self) -> str:
        return f"KillSwitch(active={self._active}, reason={self._reason!r})"

    @property
    def is_active(self) -> bool:
        """Whether the switch is engaged (a property, as in the original).

        With a shared backend, the Redis key is re-read at most every ``kill_switch_poll``
        seconds (pub/sub delivers halts at once in between); while Redis is unreachable a
        fail-closed switch reports True.
        """
        link = self._link
        if link is not None:
            if link.due():
                gen = self._generation
                state = link.sync()
                if state is not False:
                    self._on_shared_state(state, gen)
            if link.unavailable is not None and not link.backend.fail_open:
                return True
        with self._lock:
            if (
                self._active
                and self.auto_reset_seconds is not None
                and self._activated_mono is not None
                and self._clock() - self._activated_mono >= self.auto_reset_seconds
            ):
                logger.warning("Kill switch auto-reset after %.1fs", self.auto_reset_seconds)
                self._clear()
            return self._active

    @property
    def reason(self) -> str | None:
        """Reason of the current activation, or None."""
        return self._reason

    def _unknown_reason(self) -> str | None:
        link = self._link
        if link is not None and link.unavailable is not None and not link.backend.fail_open:
            return f"kill switch state unknown, failing closed ({link.unavailable})"
        return None

    @property
    def triggered_by(self) -> str | None:
        """Who triggered the current activation, or None."""
        return self._triggered_by

    def activate(
        self, reason: str, triggered_by: str = "system", raise_exception: bool = True
    ) -> None:
        """Engage the switch, log it, run the halt callbacks, then (by default) raise
        :class:`EmergencyHaltError`."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("kill switch reason must be a non-empty string")
        with self._lock:
            self._active = True
            self._reason = reason
            self._triggered_by = triggered_by
            self._activated_mono = self._clock()
            self._activated_at = datetime.now(timezone.utc)
            self.history.append(HaltRecord(reason, triggered_by, self._activated_at))
            self._halted.set()
            self._shared = False
            self._generation += 1
            callbacks = list(self._halt_callbacks)
        logger.critical("EMERGENCY HALT activated by %s: %s", triggered_by, reason)
        if self._link is not None:
            shared = self._link.publish_halt(reason, triggered_by, self.auto_reset_seconds)
            with self._lock:
                self._shared = shared and self._active
                # A key read that started before the write landed is stale.
                self._generation += 1
        for cb in callbacks:
            try:
                cb(reason)
            except Exception:
                logger.exception("kill switch halt callback failed")
        if raise_exception:
            raise EmergencyHaltError(reason, triggered_by)

    def _clear(self) -> None:
        self._generation += 1
        self._halted.clear()
        self._shared = False
        self._active = False
        self._reason = None
        self._triggered_by = None
        self._activated_mono = None
        self._activated_at = None

    def reset(self) -> bool:
        """Disengage the switch. Returns whether it was active; reset callbacks run only then.

        With a shared backend this clears the switch of every replica.
        """
        if self._link is not None:
            self._link.publish_reset()
        with self._lock:
            was_active = self._active
            self._clear()
            callbacks = list(self._reset_callbacks) if was_active else []
        if was_active:
            logger.warning("Kill switch reset")
        for cb in callbacks:
            try:
                cb()
            except Exception:
                logger.exception("kill switch reset callback failed")
        return was_active

    def deactivate(self) -> bool:
        """Alias of :meth:`reset` (the manual override the seed promises)."""
        return self.reset()

    def check(self) -> None:
        """Raise :class:`EmergencyHaltError` if the switch is active."""
        if self.is_active:
            reason = self._reason or self._unknown_reason() or "kill switch active"
            raise EmergencyHaltError(reason, "kill_switch_check")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the switch is activated (here or, when shared, by another replica);
        returns whether it is active. Does not poll Redis: pub/sub wakes it."""
        return self._halted.wait(timeout)

    def close(self) -> None:
        """Stop listening to the shared switch (no-op without a backend)."""
        if self._link is not None:
            self._link.close()

    def _on_shared_state(self, state: dict[str, Any] | None, generation: int | None) -> None:
        """Apply the shared state from Redis: a key read (``generation`` is the local
        generation when the read started; a stale read is dropped) or a pub/sub message
        (``generation`` None)."""
        link = self._link
        if state is not None:
            reason = str(state.get("reason") or "kill switch activated")
            triggered_by = str(state.get("triggered_by") or "remote")
            with self._lock:
                if generation is not None and generation != self._generation:
                    return
                if self._active and self._reason == reason:
                    self._shared = True
                    return
                self._active = True
                self._reason = reason
                self._triggered_by = triggered_by
                self._activated_mono = self._clock()
                self._activated_at = datetime.now(timezone.utc)
                self.history.append(HaltRecord(reason, triggered_by, self._activated_at))
                self._shared = True
                self._generation += 1
                self._halted.set()
                callbacks = list(self._halt_callbacks)
            logger.critical(
                "EMERGENCY HALT (shared switch %r) activated by %s: %s",
                self.name,
                triggered_by,
                reason,
            )
            for cb in callbacks:
                try:
                    cb(reason)
                except Exception:
                    logger.exception("kill switch halt callback failed")
            return
        callbacks_r: list[Callable[[], Any]] = []
        pending: tuple[str, str] | None = None
        with self._lock:
            if not self._active or (generation is not None and generation != self._generation):
                return
            if generation is not None and not self._shared:
                pending = (self._reason or "kill switch active", self._triggered_by or "system")
            else:
                self._clear()
                callbacks_r = list(self._reset_callbacks)
        if pending is not None:
            # Halted here while Redis was unreachable: a halt is never undone by an outage.
            if link is not None and link.publish_halt(
                pending[0], pending[1], self.auto_reset_seconds
            ):
                with self._lock:
                    self._shared = self._active
                    self._generation += 1
            return
        logger.warning("Kill switch %r reset by another replica", self.name)
        for cb_r in callbacks_r:
            try:
                cb_r()
            except Exception:
                logger.exception("kill switch reset callback failed")

    def on_halt(self, callback: Callable[[str], Any]) -> None:
        """Call ``callback(reason)`` on every activation."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        with self._lock:
            self._halt_callbacks.append(callback)

    def on_reset(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` when an active switch is reset."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        with self._lock:
            self._reset_callbacks.append(callback)

    def get_status(self) -> dict[str, Any]:
        """``{"active", "reason", "activation_time"}`` (raw flag, no auto-reset applied)."""
        with self._lock:
            return {
                "active": self._active,
                "reason": self._reason,
                "activation_time": self._activated_at.isoformat() if self._activated_at else None,
            }
