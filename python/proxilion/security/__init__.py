"""Security controls (API.md section 7). Names are added here as their modules land."""

from __future__ import annotations

from proxilion.security.circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerRegistry,
    CircuitState,
    CircuitStats,
)
from proxilion.security.kill_switch import KillSwitch
from proxilion.security.rate_limiter import (
    MultiDimensionalRateLimiter,
    RateLimitConfig,
    RateLimiterMiddleware,
    SlidingWindowRateLimiter,
    TokenBucketRateLimiter,
)

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerRegistry",
    "CircuitState",
    "CircuitStats",
    "KillSwitch",
    "MultiDimensionalRateLimiter",
    "RateLimitConfig",
    "RateLimiterMiddleware",
    "SlidingWindowRateLimiter",
    "TokenBucketRateLimiter",
]
