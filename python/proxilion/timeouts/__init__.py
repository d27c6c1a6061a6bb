"""Timeout handling. ``proxilion.timeouts.manager.TimeoutError`` is what
``Proxilion.authorize_with_timeout`` raises."""

from __future__ import annotations

from proxilion.timeouts.manager import TimeoutError

__all__ = ["TimeoutError"]
