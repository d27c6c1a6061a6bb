"""Errors of the rate-limit engine that both backends raise (native and reference)."""

from __future__ import annotations

from proxilion.exceptions import RateLimitExceeded

__all__ = ["KeyTableFullError", "RateLimitBackendError"]


class KeyTableFullError(RateLimitExceeded):
    """A new key arrived while the limiter's key table is full (fail closed).

    The table holds at most ``max_keys`` buckets. Buckets that are full again carry no state
    and are evicted automatically, so this is raised only when ``max_keys`` distinct keys are
    all still refilling, typically an attacker spraying fresh user ids. Known keys keep
    working; the new key is refused until the earliest bucket refills (``retry_after``).
    It is a :class:`RateLimitExceeded`, so code that handles rate limits handles it.
    """

    def __init__(self, max_keys: int, key: str, retry_after: float | None = None) -> None:
        super().__init__(
            "key_table_full",
            key,
            max_keys,
            retry_after,
            limit=max_keys,
        )
        self.max_keys = max_keys
        message = (
            f"rate limiter key table is full ({max_keys} keys still refilling); new key refused"
        )
        if retry_after:
            message += f". Retry after {retry_after:.1f} seconds"
        self.message = message
        self.args = (message,)


class RateLimitBackendError(RateLimitExceeded):
    """The shared rate-limit backend (Redis) could not be reached and the limiter fails closed.

    Raised by the decorators and the middleware instead of a plain refusal so the cause is
    visible; ``allow_request`` returns ``False`` and logs the same message.
    """

    def __init__(self, limit_key: str, cause: str) -> None:
        super().__init__("backend_unavailable", limit_key, None, None)
        self.cause = cause
        message = f"rate limit backend unavailable ({cause}); failing closed"
        self.message = message
        self.args = (message,)
        self.details["cause"] = cause
