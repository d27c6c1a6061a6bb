"""Emergency kill switch (API.md section 8.5, seed example 8).

Once activated, every protected operation fails with :class:`EmergencyHaltError` until the
switch is reset. Activation is logged at CRITICAL level with its reason, and every halt is
kept in :attr:`KillSwitch.history`. ``proxilion.security.behavioral_drift.KillSwitch`` is this
class.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from proxilion.exceptions import EmergencyHaltError

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
    """

    def __init__(
        self,
        auto_reset_seconds: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
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

    def __repr__(self) -> str:
        return f"KillSwitch(active={self._active}, reason={self._reason!r})"

    @property
    def is_active(self) -> bool:
        """Whether the switch is engaged (a property, as in the original)."""
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
            callbacks = list(self._halt_callbacks)
        logger.critical("EMERGENCY HALT activated by %s: %s", triggered_by, reason)
        for cb in callbacks:
            try:
                cb(reason)
            except Exception:
                logger.exception("kill switch halt callback failed")
        if raise_exception:
            raise EmergencyHaltError(reason, triggered_by)

    def _clear(self) -> None:
        self._active = False
        self._reason = None
        self._triggered_by = None
        self._activated_mono = None
        self._activated_at = None

    def reset(self) -> bool:
        """Disengage the switch. Returns whether it was active; reset callbacks run only then."""
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
            raise EmergencyHaltError(self._reason or "kill switch active", "kill_switch_check")

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
