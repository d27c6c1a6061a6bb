"""Timeouts (the parts of API.md the core needs).

:class:`TimeoutError` is raised by :meth:`proxilion.Proxilion.authorize_with_timeout`. It
shadows the builtin name inside this module, as in the original, and is deliberately **not**
a :class:`~proxilion.exceptions.ProxilionError` (nor the builtin ``TimeoutError``).
"""

from __future__ import annotations

__all__ = ["TimeoutError"]


class TimeoutError(Exception):
    """An operation did not finish within its time budget.

    Attributes:
        message: the message.
        operation: what timed out (for example ``"authorize"``), or None.
        timeout: the budget in seconds, or None.
    """

    def __init__(
        self, message: str, *, operation: str | None = None, timeout: float | None = None
    ) -> None:
        self.message = message
        self.operation = operation
        self.timeout = timeout
        super().__init__(message)
