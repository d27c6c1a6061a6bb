"""Cost of a protected tool call (``@auth.authorize``) and of ``Proxilion.check``.

The original SDK's figures (API.md section 14, same kind of machine) are 38.2 us per decorated
call with in-memory audit and 12.4 us with audit off, against a bare call of 46 ns. Each
benchmark stores ``original_us`` and ``speedup_vs_original`` (original median / ours) in its
``extra_info``; compare ratios, not absolute times.
"""

from __future__ import annotations

from typing import Any

import pytest

from proxilion import Policy, Proxilion, UserContext

ORIGINAL_AUDIT_MEMORY_US = 38.2
ORIGINAL_AUDIT_OFF_US = 12.4

USER = UserContext("alice", ["analyst"], "sess-1", {"dept": "finance"})


def _auth(**kwargs: Any) -> Proxilion:
    auth = Proxilion(**kwargs)

    @auth.policy("search")
    class SearchPolicy(Policy[Any]):
        def can_execute(self, context: dict[str, Any]) -> bool:
            return "analyst" in self.user.roles

    return auth


def _record(benchmark: Any, original_us: float | None) -> None:
    median_us = benchmark.stats.stats.median * 1e6
    benchmark.extra_info["median_us"] = round(median_us, 3)
    if original_us is not None:
        benchmark.extra_info["original_us"] = original_us
        benchmark.extra_info["speedup_vs_original"] = round(original_us / median_us, 2)


def _search(query: str, limit: int = 10, user: UserContext | None = None) -> int:
    return limit


@pytest.mark.benchmark(group="authorize_call")
def test_bare_call(benchmark: Any) -> None:
    assert benchmark(_search, query="q", limit=5, user=USER) == 5
    _record(benchmark, None)


@pytest.mark.benchmark(group="authorize_call")
def test_decorated_call_audit_in_memory(benchmark: Any) -> None:
    auth = _auth()
    tool = auth.authorize("execute", resource="search")(_search)
    assert benchmark(tool, query="q", limit=5, user=USER) == 5
    assert auth.get_audit_events()[-1].data.authorization_allowed is True
    _record(benchmark, ORIGINAL_AUDIT_MEMORY_US)


@pytest.mark.benchmark(group="authorize_call")
def test_decorated_call_audit_off(benchmark: Any) -> None:
    auth = _auth(enable_audit=False)
    tool = auth.authorize("execute", resource="search")(_search)
    assert benchmark(tool, query="q", limit=5, user=USER) == 5
    _record(benchmark, ORIGINAL_AUDIT_OFF_US)


@pytest.mark.benchmark(group="authorize_call")
def test_decorated_call_denied(benchmark: Any) -> None:
    auth = _auth(enable_audit=False)
    tool = auth.authorize("execute", resource="unknown_tool")(_search)
    guest = UserContext("bob")

    def call() -> bool:
        try:
            tool(query="q", user=guest)
        except Exception:
            return False
        return True

    assert benchmark(call) is False
    _record(benchmark, None)


@pytest.mark.benchmark(group="check")
def test_check(benchmark: Any) -> None:
    auth = _auth()
    result = benchmark(auth.check, USER, "execute", "search", {"query": "q"})
    assert result.allowed is True
    _record(benchmark, None)


@pytest.mark.benchmark(group="check")
def test_check_unknown_resource(benchmark: Any) -> None:
    auth = _auth()
    result = benchmark(auth.check, USER, "execute", "nothing", {"query": "q"})
    assert result.allowed is False
    _record(benchmark, None)
