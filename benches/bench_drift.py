"""Behavioral drift: record_tool_call and check_drift, native vs reference in one run.

Groups (compare within a group; pytest-benchmark prints them side by side):

* ``drift_record``: ``BehavioralMonitor.record_tool_call(name, latency_ms=...)``; the group
  also times a plain Python method with the same signature (``python_method``), the yardstick
  of the target "recording costs about a Python method call".
* ``drift_record_name``: ``record_tool_call(name)`` alone, against the same plain method.
* ``drift_record_args``: the same with a 3-key ``arguments`` dict (argument features on),
  against the same plain method called with the dict.

Recording is deferred (calls wait in a buffer; every 256 calls a batch is handed to a worker
thread that folds it into the engine without the GIL, and the caller folds itself when four
batches are already waiting), so the ``drift_record*`` benchmarks (and their yardstick) time
rounds of 1024 calls back to back: each round includes its share of the folds the worker could
not take (a tight loop outruns the worker), and min/median are per call.
* ``drift_record_burst`` / ``drift_record_burst_args``: bursts of 1024 calls on an idle
  monitor (the previous burst folded, untimed, before each round), native against the plain
  method: what the caller pays while the fold worker keeps up. Times are per burst.
* ``drift_record_cpu`` / ``drift_record_cpu_args``: the CPU time of the whole process (the
  caller and the fold worker together, ``time.process_time``) per round of 1024 calls
  including their folds: the total cost of recording, wherever it runs.
* ``drift_check_1k`` / ``drift_check_100k``: ``check_drift()`` on a locked monitor that has
  recorded 10^3 or 10^5 calls: equal times show the check does not depend on the history.

The original SDK measured 59.4 us per record_tool_call and 30.5 us per check_drift on this
kind of machine (API.md section 14); divide by the native figures for the speed-up.
"""

from __future__ import annotations

import random
import time
from types import ModuleType
from typing import Any

import pytest

from proxilion import _core, _reference
from proxilion.security.behavioral_drift import BehavioralMonitor

ARGS = {"query": "quarterly sales", "limit": 20, "region": "emea"}
DAY0 = 19000 * 86400.0


class _Plain:
    def record_tool_call(
        self, tool_name: str, arguments: Any = None, latency_ms: float | None = None
    ) -> None:
        return None


CALLS_PER_ROUND = 1024


def _timed(benchmark: Any, fn: Any, *args: Any, slow: bool = False, **kwargs: Any) -> None:
    """Time ``fn(*args, **kwargs)`` in rounds of ``CALLS_PER_ROUND`` calls (fewer rounds for
    the reference twin: ``slow``)."""
    benchmark.pedantic(
        fn,
        args=args,
        kwargs=kwargs,
        iterations=CALLS_PER_ROUND,
        rounds=8 if slow else 100,
        warmup_rounds=1,
    )


def _learned(n: int, impl: ModuleType) -> BehavioralMonitor:
    """A locked monitor that has recorded ``n`` calls (recorded natively, restored on
    ``impl``: the state is the same on both backends)."""
    rnd = random.Random(n)
    mon = BehavioralMonitor("bench", _impl=_core)
    calls = [
        (
            rnd.choice(("search", "db_query", "send_email")),
            rnd.lognormvariate(4.0, 0.3),
            {"query": "q" * rnd.randint(5, 40), "limit": rnd.choice((10, 20, 50))},
            i * 2.0,
            DAY0 + 9 * 3600.0 + (i * 2.0) % (8 * 3600.0),
        )
        for i in range(n)
    ]
    mon.replay(calls)
    mon.lock_baseline()
    return BehavioralMonitor.from_state(mon.export_state(), _impl=impl)


@pytest.mark.benchmark(group="drift_record")
def test_record_tool_call(benchmark: Any, impl: ModuleType) -> None:
    mon = BehavioralMonitor("bench", _impl=impl)
    _timed(benchmark, mon.record_tool_call, "search", latency_ms=42.0, slow=impl is _reference)


@pytest.mark.benchmark(group="drift_record")
def test_python_method_call(benchmark: Any) -> None:
    _timed(benchmark, _Plain().record_tool_call, "search", latency_ms=42.0)


@pytest.mark.benchmark(group="drift_record_name")
def test_record_tool_call_name_only(benchmark: Any, impl: ModuleType) -> None:
    mon = BehavioralMonitor("bench", _impl=impl)
    _timed(benchmark, mon.record_tool_call, "search", slow=impl is _reference)


@pytest.mark.benchmark(group="drift_record_name")
def test_python_method_call_name_only(benchmark: Any) -> None:
    _timed(benchmark, _Plain().record_tool_call, "search")


@pytest.mark.benchmark(group="drift_record_args")
def test_record_tool_call_with_arguments(benchmark: Any, impl: ModuleType) -> None:
    mon = BehavioralMonitor("bench", _impl=impl)
    _timed(benchmark, mon.record_tool_call, "search", ARGS, 42.0, slow=impl is _reference)


@pytest.mark.benchmark(group="drift_record_args")
def test_python_method_call_with_arguments(benchmark: Any) -> None:
    _timed(benchmark, _Plain().record_tool_call, "search", ARGS, 42.0)


def _burst(record: Any, args: Any, latency: float | None) -> None:
    for _ in range(CALLS_PER_ROUND):
        record("search", args, latency)


def _timed_burst(benchmark: Any, record: Any, flush: Any, args: Any, latency: Any) -> None:
    """Time bursts of ``CALLS_PER_ROUND`` calls on an idle monitor: before each round
    (untimed) ``flush`` folds whatever the previous one left, so the round times what the
    caller pays while the fold worker keeps up (four batches handed to it, folded on the
    other core). The figure is per round: divide by ``CALLS_PER_ROUND``."""

    def setup() -> None:
        flush()

    benchmark.pedantic(_burst, args=(record, args, latency), setup=setup, rounds=100, iterations=1)


@pytest.mark.parametrize("args", [None, ARGS], ids=["", "_args"])
@pytest.mark.parametrize("who", ["native", "python_method"])
def test_record_burst(benchmark: Any, who: str, args: Any) -> None:
    benchmark.group = "drift_record_burst" + ("_args" if args else "")
    if who == "native":
        mon = BehavioralMonitor("bench", _impl=_core)
        _timed_burst(benchmark, mon.record_tool_call, mon.get_current_metrics, args, 42.0)
    else:
        _timed_burst(benchmark, _Plain().record_tool_call, lambda: None, args, 42.0)


def _recorded_and_folded(record: Any, flush: Any, args: Any, latency: float | None) -> None:
    _burst(record, args, latency)
    flush()


@pytest.mark.benchmark(timer=time.process_time)
@pytest.mark.parametrize("args", [None, ARGS], ids=["", "_args"])
@pytest.mark.parametrize("who", ["native", "python_method"])
def test_record_cpu(benchmark: Any, who: str, args: Any) -> None:
    """CPU time of the whole process (every thread: the caller's and the fold worker's) for a
    round of ``CALLS_PER_ROUND`` calls and their folds (flushed at the end of the round): what
    recording costs in total, wherever the work runs. Per round: divide by
    ``CALLS_PER_ROUND``."""
    benchmark.group = "drift_record_cpu" + ("_args" if args else "")
    if who == "native":
        mon = BehavioralMonitor("bench", _impl=_core)
        record, flush = mon.record_tool_call, mon.get_current_metrics
    else:
        record, flush = _Plain().record_tool_call, lambda: None
    benchmark.pedantic(
        _recorded_and_folded, args=(record, flush, args, 42.0), rounds=60, warmup_rounds=2
    )


@pytest.mark.benchmark(group="drift_check_1k")
def test_check_drift_after_1k_calls(benchmark: Any, impl: ModuleType) -> None:
    mon = _learned(1_000, impl)
    result = benchmark(mon.check_drift)
    assert result.reason


@pytest.mark.benchmark(group="drift_check_100k")
def test_check_drift_after_100k_calls(benchmark: Any, impl: ModuleType) -> None:
    mon = _learned(100_000, impl)
    result = benchmark(mon.check_drift)
    assert result.reason
