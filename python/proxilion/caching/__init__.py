"""Caching of tool results (the original's ``proxilion.caching``)."""

from __future__ import annotations

from proxilion.caching.tool_cache import (
    DEFAULT_NEVER_CACHE,
    CacheConfig,
    CacheEntry,
    CachePolicy,
    CacheStats,
    EvictionPolicy,
    ToolCache,
    UncacheableArgumentError,
    cached_tool,
    make_cache_key,
)

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
