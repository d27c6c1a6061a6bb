"""Tool result cache (proxilion.caching.tool_cache)."""

from __future__ import annotations

import asyncio
import enum
import math
import threading
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion.caching import (
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
from proxilion.types import UserContext


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def cache(**config: Any) -> tuple[ToolCache, Clock]:
    clock = Clock()
    policy = config.pop("policy", None)
    return ToolCache(config=CacheConfig(**config), policy=policy, clock=clock), clock


class TestEntryAndStats:
    def test_entry(self) -> None:
        entry = CacheEntry(key="k", value="value", tool_name="my_tool")
        assert entry.hits == 0
        assert entry.size_bytes > 0
        assert entry.is_expired() is False
        entry.access()
        entry.access()
        assert entry.hits == 2
        past = datetime.now(timezone.utc) - timedelta(seconds=10)
        assert CacheEntry(key="k", value=1, expires_at=past).is_expired() is True
        future = datetime.now(timezone.utc) + timedelta(seconds=10)
        assert CacheEntry(key="k", value=1, expires_at=future).is_expired() is False
        d = entry.to_dict()
        assert d["key"] == "k" and d["tool_name"] == "my_tool" and "created_at" in d

    def test_stats(self) -> None:
        assert CacheStats(hits=3, misses=1).hit_rate == 0.75
        assert CacheStats().hit_rate == 0.0
        assert CacheStats(hits=5, misses=3).total_requests == 8
        d = CacheStats(hits=10, misses=5, evictions=2).to_dict()
        assert (d["hits"], d["misses"], d["evictions"]) == (10, 5, 2)
        assert d["hit_rate"] == pytest.approx(2 / 3)


class TestPolicy:
    def test_side_effect_tools_are_never_cached(self) -> None:
        policy = CachePolicy()
        assert policy.should_cache("get_weather") is True
        assert policy.should_cache("search_docs") is True
        for tool in ("send_email", "create_file", "delete_user", "execute_code", "Transfer_Funds"):
            assert policy.should_cache(tool) is False
        assert "pay_*" in DEFAULT_NEVER_CACHE
        custom = CachePolicy(never_cache={"no_cache_tool"})
        assert custom.should_cache("no_cache_tool") is False
        assert custom.should_cache("send_email") is False
        opt_out = CachePolicy(use_default_never_cache=False)
        assert opt_out.should_cache("send_email") is True

    def test_allow_list(self) -> None:
        policy = CachePolicy(cacheable_tools={"get_*"})
        assert policy.should_cache("get_x") is True
        assert policy.should_cache("lookup_x") is False
        assert CachePolicy(cacheable_tools=set()).should_cache("get_x") is False

    def test_ttls(self) -> None:
        policy = CachePolicy(
            short_ttl={"get_stock_price": 60, "quote_*": 5},
            long_ttl={"get_config": 86400},
            default_ttl=300,
        )
        assert policy.get_ttl("get_stock_price") == 60
        assert policy.get_ttl("quote_eur") == 5
        assert policy.get_ttl("get_config") == 86400
        assert policy.get_ttl("unknown_tool") == 300
        assert CachePolicy().get_ttl("x") is None

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"short_ttl": {"a": 0}},
            {"long_ttl": {"a": math.nan}},
            {"default_ttl": -1},
            {"never_cache": {""}},
            {"short_ttl": {"": 5}},
        ],
    )
    def test_bad_policy(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises((TypeError, ValueError)):
            CachePolicy(**kwargs)


class TestConfig:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_size": 0},
            {"max_size": True},
            {"default_ttl": 0},
            {"default_ttl": math.inf},
            {"eviction_policy": "random"},
            {"max_value_bytes": 0},
        ],
    )
    def test_bad_config(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises((TypeError, ValueError)):
            CacheConfig(**kwargs)

    def test_defaults(self) -> None:
        config = CacheConfig()
        assert config.per_user_cache is True
        assert config.default_ttl == 300.0
        assert CacheConfig(eviction_policy="lfu").eviction_policy is EvictionPolicy.LFU


class TestCache:
    def test_get_set_miss(self) -> None:
        c, _ = cache()
        assert c.set("get_x", {"arg": "value"}, "result") is True
        assert c.get("get_x", {"arg": "value"}) == "result"
        assert c.get("get_x", {"arg": "other"}) is None
        assert c.get("get_y", {"arg": "value"}) is None
        assert c.get("get_y", {}, default="d") == "d"
        c.set("get_x", {"city": "NYC"}, "nyc")
        c.set("get_x", {"city": "LA"}, "la")
        assert c.get("get_x", {"city": "NYC"}) == "nyc"
        assert c.get("get_x", {"city": "LA"}) == "la"
        assert ("get_x", {"city": "LA"}) in c
        assert ("get_x", {"city": "SF"}) not in c
        assert "get_x" not in c

    def test_key_canonicalisation(self) -> None:
        c, _ = cache()
        c.set("get_x", {"a": 1, "b": [1, 2]}, "r")
        assert c.get("get_x", {"b": [1, 2], "a": 1}) == "r"  # dict order irrelevant
        for other in ({"a": 1.0, "b": [1, 2]}, {"a": True, "b": [1, 2]}, {"a": "1", "b": [1, 2]}):
            assert c.get("get_x", other) is None
        assert c.get("get_x", {"a": 1, "b": (1, 2)}) is None  # tuple vs list
        assert make_cache_key("t", {"s": {2, 1}}) == make_cache_key("t", {"s": {1, 2}})
        assert make_cache_key("t", {1: "x"}) != make_cache_key("t", {"1": "x"})
        assert len(make_cache_key("t", None)) == 64

    @pytest.mark.parametrize(
        "value",
        [
            b"\x00\xff",
            datetime(2024, 1, 1, tzinfo=timezone.utc),
            date(2024, 1, 1),
            timedelta(seconds=5),
            enum.Enum("Color", "RED").RED,
            None,
            -0.0,
            10**30,
            "\ud800",
        ],
    )
    def test_cacheable_types(self, value: Any) -> None:
        c, _ = cache()
        assert c.set("get_x", {"v": value}, "ok") is True
        assert c.get("get_x", {"v": value}) == "ok"

    @pytest.mark.parametrize("value", [object(), math.nan, {"x": [object()]}, lambda: 1])
    def test_uncacheable_arguments(self, value: Any) -> None:
        c, _ = cache()
        assert c.set("get_x", {"v": value}, "r") is False
        assert c.get("get_x", {"v": value}) is None
        assert c.invalidate("get_x", {"v": value}) == 0
        with pytest.raises(UncacheableArgumentError):
            make_cache_key("get_x", {"v": value})
        assert isinstance(UncacheableArgumentError("x"), TypeError)

    def test_deep_nesting_is_uncacheable(self) -> None:
        deep: Any = "x"
        for _ in range(100):
            deep = [deep]
        with pytest.raises(UncacheableArgumentError):
            make_cache_key("t", {"d": deep})

    def test_ttl(self) -> None:
        c, clock = cache(default_ttl=None)
        c.set("get_x", {"a": 1}, "r", ttl=1)
        c.set("get_y", {"a": 1}, "forever")
        clock.now += 0.999
        assert c.get("get_x", {"a": 1}) == "r"
        clock.now += 0.001
        assert c.get("get_x", {"a": 1}) is None
        clock.now += 10**6
        assert c.get("get_y", {"a": 1}) == "forever"
        assert c.get_stats().expirations == 1

    def test_policy_ttl_and_default(self) -> None:
        c, clock = cache(default_ttl=300, policy=CachePolicy(short_ttl={"short_tool": 1}))
        c.set("short_tool", {"a": 1}, "r")
        c.set("other", {"a": 1}, "r")
        clock.now += 1
        assert c.get("short_tool", {"a": 1}) is None
        clock.now += 298
        assert c.get("other", {"a": 1}) == "r"
        clock.now += 1
        assert c.get("other", {"a": 1}) is None

    def test_refused_by_policy_size_or_config(self) -> None:
        c, _ = cache(policy=CachePolicy(never_cache={"no_cache_tool"}))
        assert c.set("no_cache_tool", {"a": 1}, "r") is False
        assert c.get("no_cache_tool", {"a": 1}) is None
        small, _ = cache(max_value_bytes=100)
        assert small.set("get_x", {}, "x" * 1000) is False
        assert small.set("get_x", {}, "x") is True
        off, _ = cache(enabled=False)
        assert off.set("get_x", {}, "x") is False

    def test_lru(self) -> None:
        c, _ = cache(max_size=2, eviction_policy=EvictionPolicy.LRU)
        c.set("tool1", {"a": 1}, "r1")
        c.set("tool2", {"a": 2}, "r2")
        c.get("tool1", {"a": 1})
        c.set("tool3", {"a": 3}, "r3")
        assert c.get("tool1", {"a": 1}) == "r1"
        assert c.get("tool2", {"a": 2}) is None
        assert c.get("tool3", {"a": 3}) == "r3"
        assert c.get_stats().evictions == 1

    def test_lfu(self) -> None:
        c, _ = cache(max_size=2, eviction_policy=EvictionPolicy.LFU)
        c.set("tool1", {"a": 1}, "r1")
        c.set("tool2", {"a": 2}, "r2")
        c.get("tool1", {"a": 1})
        c.get("tool1", {"a": 1})
        c.get("tool2", {"a": 2})
        c.set("tool3", {"a": 3}, "r3")
        assert c.get("tool1", {"a": 1}) == "r1"
        assert c.get("tool2", {"a": 2}) is None
        assert c.get("tool3", {"a": 3}) == "r3"

    def test_fifo_and_expired_first(self) -> None:
        c, clock = cache(max_size=2, eviction_policy=EvictionPolicy.FIFO)
        c.set("tool1", {}, "r1")
        c.set("tool2", {}, "r2", ttl=1)
        c.get("tool1", {})
        clock.now += 2
        c.set("tool3", {}, "r3")  # the expired entry goes first
        assert c.get("tool1", {}) == "r1"
        c.set("tool4", {}, "r4")  # then insertion order
        assert c.get("tool1", {}) is None
        assert c.get("tool3", {}) == "r3"

    def test_overwrite_keeps_one_entry(self) -> None:
        c, _ = cache()
        c.set("get_x", {"a": 1}, "old")
        c.set("get_x", {"a": 1}, "new")
        assert len(c) == 1
        assert c.get("get_x", {"a": 1}) == "new"

    def test_invalidate_clear_cleanup_entries(self) -> None:
        c, clock = cache(default_ttl=None)
        c.set("tool1", {"a": 1}, "r1")
        c.set("tool1", {"a": 2}, "r2", ttl=5)
        c.set("tool2", {"a": 1}, "r3")
        assert c.invalidate("tool1", {"a": 1}) == 1
        assert c.invalidate("tool1", {"a": 1}) == 0
        assert [e.tool_name for e in c.get_entries()] == ["tool1", "tool2"]
        assert [e.value for e in c.get_entries("tool1")] == ["r2"]
        clock.now += 5
        assert c.get_entries("tool1") == []
        assert c.cleanup_expired() == 1
        assert len(c) == 1
        c.set("tool1", {"a": 3}, "r4")
        c.set("tool1", {"a": 4}, "r5")
        assert c.invalidate("tool1") == 2
        assert c.invalidate("tool9") == 0
        assert c.clear() == 1
        assert len(c) == 0
        assert c.get_stats().total_bytes == 0

    def test_stats(self) -> None:
        c, _ = cache()
        c.set("tool1", {"a": 1}, "r")
        c.get("tool1", {"a": 1})
        c.get("tool1", {"a": 1})
        c.get("tool2", {"a": 2})
        stats = c.get_stats()
        assert (stats.hits, stats.misses, stats.size) == (2, 1, 1)
        assert stats.hit_rate == pytest.approx(2 / 3)
        c.reset_stats()
        assert c.get_stats().hits == 0

    def test_per_user_isolation_by_default(self) -> None:
        c, _ = cache()
        c.set("get_x", {"a": 1}, "alice-result", user_id="alice")
        c.set("get_x", {"a": 1}, "bob-result", user_id="bob")
        assert c.get("get_x", {"a": 1}, user_id="alice") == "alice-result"
        assert c.get("get_x", {"a": 1}, user_id="bob") == "bob-result"
        assert c.get("get_x", {"a": 1}) is None
        assert ("get_x", {"a": 1}, "bob") in c
        assert c.invalidate_user("alice") == 1
        assert c.get("get_x", {"a": 1}, user_id="alice") is None
        shared, _ = cache(per_user_cache=False)
        shared.set("get_x", {"a": 1}, "same", user_id="alice")
        assert shared.get("get_x", {"a": 1}, user_id="bob") == "same"

    def test_bad_arguments(self) -> None:
        c, _ = cache()
        with pytest.raises(ValueError):
            c.set("", {}, 1)
        with pytest.raises(ValueError):
            c.set("get_x", {}, 1, ttl=-1)
        with pytest.raises(TypeError):
            ToolCache(config={"max_size": 1})  # type: ignore[arg-type]

    def test_threads(self) -> None:
        c, _ = cache(max_size=50)
        errors: list[BaseException] = []

        def writer(offset: int) -> None:
            try:
                for i in range(300):
                    c.set("get_x", {"i": (i + offset) % 80}, i)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def reader() -> None:
            try:
                for i in range(300):
                    value = c.get("get_x", {"i": i % 80})
                    assert value is None or isinstance(value, int)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(k * 7,)) for k in range(3)]
        threads += [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(c) == 50
        stats = c.get_stats()
        assert stats.hits + stats.misses == 900
        assert len(c.get_entries()) == 50


class TestDecorator:
    def test_positional_and_keyword_calls_share_entries(self) -> None:
        c, _ = cache()
        calls: list[tuple[str, int]] = []

        @cached_tool(c)
        def my_tool(arg1: str, arg2: int = 10) -> str:
            """Doc."""
            calls.append((arg1, arg2))
            return f"{arg1}-{arg2}"

        assert my_tool("test", 5) == "test-5"
        assert my_tool("test", 5) == "test-5"
        assert my_tool(arg1="test", arg2=5) == "test-5"
        assert my_tool(arg2=5, arg1="test") == "test-5"
        assert my_tool("test") == "test-10"
        assert my_tool("test", 10) == "test-10"
        assert calls == [("test", 5), ("test", 10)]
        assert my_tool.__name__ == "my_tool"
        assert my_tool.__doc__ == "Doc."

    def test_ttl_key_params_user_and_none_results(self) -> None:
        c, clock = cache(default_ttl=None)
        calls: list[str] = []

        @cached_tool(c, ttl=1, key_params=["important"])
        def lookup(
            important: str, not_important: str = "", user: UserContext | None = None
        ) -> str | None:
            calls.append(important)
            return None if important == "none" else f"{important}-{not_important}"

        alice = UserContext(user_id="alice")
        assert lookup("k", "v1", user=alice) == "k-v1"
        assert lookup("k", "v2", user=alice) == "k-v1"
        assert lookup("k", "v1", user=UserContext(user_id="bob")) == "k-v1"
        assert calls == ["k", "k"]  # bob has his own entry
        assert lookup("none") is None
        assert lookup("none") is None
        assert calls == ["k", "k", "none"]  # a cached None is a hit
        clock.now += 1
        lookup("k", "v1", user=alice)
        assert calls == ["k", "k", "none", "k"]

    def test_exceptions_policy_and_uncacheable_calls_run(self) -> None:
        c, _ = cache()
        calls: list[Any] = []

        @cached_tool(c)
        def get_thing(x: Any) -> Any:
            calls.append(x)
            if x == "boom":
                raise RuntimeError("boom")
            return x

        with pytest.raises(RuntimeError):
            get_thing("boom")
        with pytest.raises(RuntimeError):
            get_thing("boom")
        marker = object()
        assert get_thing(marker) is marker
        assert get_thing(marker) is marker
        assert calls == ["boom", "boom", marker, marker]

        @cached_tool(c)
        def send_email(to: str) -> str:
            calls.append(to)
            return "sent"

        send_email("a")
        send_email("a")
        assert calls[-2:] == ["a", "a"]

    async def test_async(self) -> None:
        c, _ = cache()
        calls: list[int] = []

        @cached_tool(c, tool_name="get_async")
        async def fetch(n: int) -> int:
            calls.append(n)
            await asyncio.sleep(0)
            return n * 2

        assert await fetch(2) == 4
        assert await fetch(n=2) == 4
        assert calls == [2]
        assert c.get("get_async", {"n": 2}) == 4

    def test_bad_decorator_arguments(self) -> None:
        with pytest.raises(TypeError):
            cached_tool("cache")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            cached_tool(ToolCache(), ttl=0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=120, deadline=None)
@given(json_values, json_values)
def test_equal_keys_iff_equal_typed_values(a: Any, b: Any) -> None:
    def typed(v: Any) -> Any:
        if isinstance(v, dict):
            return ("d", frozenset((k, typed(x)) for k, x in v.items()))
        if isinstance(v, list):
            return ("l", tuple(typed(x) for x in v))
        if isinstance(v, float):
            return ("f", repr(v))
        if isinstance(v, bool):
            return ("b", v)
        if isinstance(v, int):
            return ("i", v)
        return ("o", v)

    same_key = make_cache_key("t", {"v": a}) == make_cache_key("t", {"v": b})
    assert same_key == (typed(a) == typed(b))
