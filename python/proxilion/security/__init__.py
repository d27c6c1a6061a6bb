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
from proxilion.security.sequence_validator import (
    DEFAULT_SEQUENCE_RULES,
    SequenceAction,
    SequenceRule,
    SequenceValidator,
    SequenceViolation,
    ToolCallRecord,
    create_sequence_validator,
)

__all__ = [
    "DEFAULT_SEQUENCE_RULES",
    "CircuitBreaker",
    "CircuitBreakerRegistry",
    "CircuitState",
    "CircuitStats",
    "KillSwitch",
    "MultiDimensionalRateLimiter",
    "RateLimitConfig",
    "RateLimiterMiddleware",
    "SequenceAction",
    "SequenceRule",
    "SequenceValidator",
    "SequenceViolation",
    "SlidingWindowRateLimiter",
    "TokenBucketRateLimiter",
    "ToolCallRecord",
    "create_sequence_validator",
]
