"""Recording fast path of the drift engine: ``DriftEngine.record`` (the method
``BehavioralMonitor.record_tool_call`` is bound to), the native engine's pending buffer
(calls folded in batches by its worker thread, and before any other access), concurrent
recording, and forking while the worker folds."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import warnings
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion import _core, _reference
from proxilion.security.behavioral_drift import BehavioralMonitor, DriftMetric

TOOL_SURPRISE = 11
LATENCY = 4
RESPONSE_LENGTH = 1
DAY0 = 19000 * 86400.0


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return bool(a == b)


def _tool_total(engine: Any) -> int:
    tools = engine.to_state()["tools"]
    return int(sum(tools["counts"].values()) + tools["other"])


# --- DriftEngine.record -------------------------------------------------------------------


def test_record_takes_the_monitor_signature(impl: ModuleType) -> None:
    e = impl.DriftEngine()
    e.record("search")
    e.record("search", {"q": "x"})
    e.record("search", None, 12.5)
    e.record("search", arguments={"q": "y"}, latency_ms=3)
    e.record(tool_name="fetch", latency_ms=0.0)
    counts = e.sample_counts()
    assert counts[TOOL_SURPRISE] == 5
    assert counts[LATENCY] == 3
    assert _tool_total(e) == 5
    assert e.to_state()["tools"]["counts"] == {"fetch": 1, "search": 4}


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "msg"),
    [
        ((None,), {}, TypeError, "tool_name must be str, not NoneType"),
        ((b"x",), {}, TypeError, "tool_name must be str, not bytes"),
        (("\ud800",), {}, ValueError, "tool_name is not valid Unicode text"),
        (("t",), {"latency_ms": math.inf}, ValueError, "latency_ms must be a finite number >= 0"),
        (("t",), {"latency_ms": -1.0}, ValueError, "latency_ms must be a finite number >= 0"),
        (("t",), {"latency_ms": math.nan}, ValueError, "latency_ms must be a finite number >= 0"),
        (("t",), {"latency_ms": "5"}, TypeError, "latency_ms must be a number or None, not str"),
        (("t",), {"latency_ms": True}, TypeError, "latency_ms must be a number or None, not bool"),
        (("t", "q=1"), {}, TypeError, "arguments must be a mapping or None, not str"),
        (("t", [("q", 1)]), {}, TypeError, "arguments must be a mapping or None, not list"),
    ],
)
def test_record_rejects_what_record_tool_call_rejects(
    impl: ModuleType, args: tuple[Any, ...], kwargs: dict[str, Any], exc: type, msg: str
) -> None:
    e = impl.DriftEngine()
    with pytest.raises(exc, match=msg):
        e.record(*args, **kwargs)
    # nothing was recorded, not even later
    assert e.sample_counts()[TOOL_SURPRISE] == 0
    assert _tool_total(e) == 0


# --- BehavioralMonitor binding ------------------------------------------------------------


@pytest.mark.backend
def test_monitor_records_natively_without_injected_clocks() -> None:
    m = BehavioralMonitor("a")
    assert m.record_tool_call.__name__ == "record"
    assert m.record_tool_call.__self__ is m._engine  # type: ignore[attr-defined]
    m.record_tool_call("search", latency_ms=5.0)
    m.record_tool_call(tool_name="search", arguments={"q": "x"})
    assert m.get_current_metrics()["latency"] == 5.0
    # reset and from_state rebind to the new engine
    m.reset()
    m.record_tool_call("fetch", None, 7.0)
    assert m.get_current_metrics()["latency"] == 7.0
    restored = BehavioralMonitor.from_state(m.export_state())
    restored.record_tool_call("fetch", None, 9.0)
    assert restored.record_tool_call.__self__ is restored._engine  # type: ignore[attr-defined]
    assert restored.get_current_metrics()["latency"] == 8.0  # window: 7.0 (restored), 9.0


@pytest.mark.backend
def test_injected_clocks_are_read_for_every_call() -> None:
    ticks: list[str] = []

    def mono() -> float:
        ticks.append("mono")
        return 100.0 + len(ticks)

    def wall() -> float:
        ticks.append("wall")
        return DAY0 + 3 * 3600.0

    m = BehavioralMonitor("a", clock=mono, wall_clock=wall)
    assert "record_tool_call" not in vars(m)
    for _ in range(3):
        m.record_tool_call("search")
    assert ticks == ["mono", "wall"] * 3
    restored = BehavioralMonitor.from_state(m.export_state(), clock=mono, wall_clock=wall)
    restored.record_tool_call("search")
    assert ticks == ["mono", "wall"] * 4
    # the hour profile learned the injected wall clock (03:00 UTC), not the system's
    hours = restored._engine.to_state()["hours"]
    assert hours[3] == 4
    assert sum(hours) == 4


@pytest.mark.backend
def test_a_subclass_override_of_record_tool_call_is_kept() -> None:
    seen: list[str] = []

    class Audited(BehavioralMonitor):
        def record_tool_call(
            self, tool_name: str, arguments: Any = None, latency_ms: float | None = None
        ) -> None:
            seen.append(tool_name)
            super().record_tool_call(tool_name, arguments, latency_ms)

    m = Audited("a")
    m.record_tool_call("search", latency_ms=3.0)
    m.reset()
    m.record_tool_call("fetch")
    assert seen == ["search", "fetch"]
    assert m._engine.sample_counts()[TOOL_SURPRISE] == 1


# --- pending buffer: same results as recording each call at once ---------------------------

op_st = st.tuples(
    st.sampled_from(["call", "call", "call", "call", "call", "args", "error", "value", "event"]),
    st.sampled_from(["search", "db", "email"]),
    st.one_of(st.none(), st.floats(min_value=0, max_value=500.0)),
    st.floats(min_value=0.0, max_value=3.0),  # gap (monotonic seconds)
)


@settings(max_examples=12, deadline=None)
@given(
    st.lists(op_st, min_size=1, max_size=700),
    st.integers(min_value=0, max_value=700),
    st.integers(min_value=0, max_value=700),
)
def test_pending_calls_fold_to_the_same_state_as_the_reference(
    ops: list[tuple[str, str, float | None, float]], lock_at: int, check_at: int
) -> None:
    """Few reads, so the native engine folds runs of up to 256 pending calls (at the cap,
    and before an error, value, event, call with arguments, lock or check): states, checks
    and baselines must equal the reference's, which records each call at once."""
    results = []
    for mod in (_core, _reference):
        e = mod.DriftEngine(30, 5, 8)
        mono = 0.0
        out: list[Any] = []
        for i, (kind, tool, lat, dm) in enumerate(ops):
            mono += dm
            wall = DAY0 + 8 * 3600.0 + mono
            if i == lock_at:
                out.append(e.lock())
            if i == check_at:
                out.append(e.check())
                out.append(e.current_values())
            if kind == "call":
                e.record_tool_call(tool, lat, None, mono, wall)
            elif kind == "args":
                e.record_tool_call(tool, lat, {"q": tool * 3, "n": i % 4}, mono, wall)
            elif kind == "error":
                e.record_error(mono)
            elif kind == "value":
                e.record_value(RESPONSE_LENGTH, float(len(tool) * 7 + i % 3))
            else:
                e.record_tool_event(tool, mono, wall)
        out.append(e.check())
        out.append(e.baselines())
        out.append(e.baseline_status())
        results.append((out, e.to_state(), e.sample_counts()))
    assert _close(results[0], results[1])


def test_every_read_sees_the_pending_calls(impl: ModuleType) -> None:
    e = impl.DriftEngine(100, 10, 20)
    for i in range(300):  # 256 folded at the cap, 44 pending
        e.record_tool_call("search", 10.0 + i % 7, None, float(i), DAY0 + i)
    assert e.sample_counts()[TOOL_SURPRISE] == 300
    assert e.metric_state(LATENCY)["acc"][0] == 300
    assert _tool_total(e) == 300
    assert dict(e.current_values())[LATENCY] == pytest.approx(
        sum(10.0 + i % 7 for i in range(290, 300)) / 10
    )
    e.record_tool_call("fetch", 1.0, None, 300.0, DAY0 + 300)
    copy = impl.DriftEngine.from_state(e.to_state())
    assert copy.sample_counts()[TOOL_SURPRISE] == 301
    merged = impl.DriftEngine(100, 10, 20)
    merged.record_tool_call("fetch", 2.0, None, 0.0, DAY0)
    merged.merge(e)
    assert merged.sample_counts()[TOOL_SURPRISE] == 302
    baseline = dict((m, b) for m, *b in e.lock())
    assert baseline[LATENCY][4] == 301  # count: every recorded latency was learned


def test_a_rejected_call_is_not_left_pending(impl: ModuleType) -> None:
    e = impl.DriftEngine()
    e.record_tool_call("search", 1.0, None, 0.0, DAY0)
    with pytest.raises(ValueError, match="now must be a finite number"):
        e.record_tool_call("search", 1.0, None, math.nan, DAY0)
    with pytest.raises(TypeError, match="wall must be a number, not str"):
        e.record_tool_call("search", 1.0, None, 1.0, "noon")
    e.record_tool_call("search", 1.0, None, 2.0, DAY0)
    assert e.sample_counts()[TOOL_SURPRISE] == 2


# --- concurrency --------------------------------------------------------------------------


@pytest.mark.parametrize("with_reads", [False, True])
def test_concurrent_recording_loses_no_call(impl: ModuleType, with_reads: bool) -> None:
    """Several threads record at once (calls without arguments go through the pending
    buffer, calls with arguments straight to the engine, a reader folds concurrently):
    every call is counted exactly once."""
    e = impl.DriftEngine(100, 10, 20)
    threads_n, per_thread = 4, 700
    start = threading.Barrier(threads_n + (1 if with_reads else 0))
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                if k == 0 and i % 5 == 0:
                    e.record(f"tool{k}", {"q": i % 3}, 1.0)
                else:
                    e.record(f"tool{k}", None, float(i % 9))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            start.wait()
            for _ in range(50):
                e.check()
                e.sample_counts()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(threads_n)]
    if with_reads:
        threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    total = threads_n * per_thread
    counts = e.sample_counts()
    assert counts[TOOL_SURPRISE] == total
    assert counts[LATENCY] == total
    assert e.to_state()["tools"]["counts"] == {f"tool{k}": per_thread for k in range(threads_n)}


@pytest.mark.backend
def test_concurrent_monitor_recording_loses_no_call() -> None:
    m = BehavioralMonitor("a", min_baseline_samples=5)
    threads = [
        threading.Thread(
            target=lambda: [m.record_tool_call("search", latency_ms=5.0) for _ in range(600)]
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    baseline = m.lock_baseline()
    assert baseline[DriftMetric.LATENCY].sample_count == 1800


def test_long_tool_names_are_folded_early_and_counted(impl: ModuleType) -> None:
    """20 calls with a 10 000-character name (past the native buffer's 64 KiB budget of
    pending names, so it folds early, before 256 calls) are all counted."""
    e = impl.DriftEngine()
    long_name = "x" * 10_000
    for i in range(20):
        e.record_tool_call(long_name, 1.0, None, float(i), DAY0 + i)
    assert e.sample_counts()[TOOL_SURPRISE] == 20
    assert e.to_state()["tools"]["counts"] == {long_name: 20}


# --- the fold worker: calls with arguments are deferred too; fork safety ------------------

_VALUES: list[Any] = [
    "short",
    "x" * 500,  # long text: a length, no category
    b"\x00\xff",
    bytearray(b"abc"),
    True,
    None,
    math.nan,
    math.inf,
    -math.inf,
    10**400,  # past f64
    -3.5,
    [1, [2, [3]]],
    {"a": (1, 2)},
    object(),
    "caf\u00e9",
    "\ud800",  # a lone surrogate: no category token
]


def _rich_args(i: int) -> dict[Any, Any]:
    if i % 97 == 0:
        return {f"k{j}": j for j in range(40)}  # more keys than are profiled
    args: dict[Any, Any] = {"q": _VALUES[i % len(_VALUES)], "n": i % 5}
    if i % 7 == 0:
        args[3] = "non-text key"
    if i % 11 == 0:
        args["k" * 300] = "long key"
    return args


def test_deferred_calls_with_arguments_fold_to_the_reference_state() -> None:
    """3000 calls, every third with arguments of every kind (the native engine defers them
    with the others and folds them on its worker thread, in order, copying their texts):
    states, checks and baselines equal the reference's, which records each call at once."""
    results = []
    for mod in (_core, _reference):
        e = mod.DriftEngine(50, 5, 10)
        out: list[Any] = []
        for i in range(3000):
            args = _rich_args(i) if i % 3 == 0 else None
            e.record_tool_call(
                ("search", "db", "mail")[i % 3], float(i % 13), args, i * 0.5, DAY0 + i * 37.0
            )
            if i == 2000:
                out.append(e.lock())
        out.append(e.check())
        out.append(e.baselines())
        out.append(e.baseline_status())
        results.append((out, e.to_state(), e.sample_counts()))
    assert _close(results[0], results[1])


def test_bad_arguments_are_rejected_when_recorded_not_when_folded(impl: ModuleType) -> None:
    e = impl.DriftEngine()
    e.record_tool_call("search", 1.0, {"q": 1}, 0.0, DAY0)
    with pytest.raises(TypeError, match="arguments must be a mapping or None, not list"):
        e.record_tool_call("search", 1.0, [1, 2], 1.0, DAY0)
    with pytest.raises(TypeError, match="arguments must be a mapping or None, not list"):
        e.record("search", [1, 2], 1.0)
    assert e.sample_counts()[TOOL_SURPRISE] == 1


def _fork_and_check(e: Any, n: int) -> None:
    """Fork; in the child record ``n`` more calls and read (a deadlock is killed by an alarm
    and fails the exit code)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            signal.alarm(30)
            before = e.sample_counts()[TOOL_SURPRISE]
            for _ in range(n):
                e.record("child", None, 1.0)
            code = 0 if e.sample_counts()[TOOL_SURPRISE] == before + n else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_the_worker_folds_leaves_no_lock_held() -> None:
    """Threads keep sealing batches for the worker while the main thread forks: every
    child can record and read (no engine lock was held across the fork by a thread the child
    does not have, and the child starts its own worker), and the parent loses nothing."""
    e = _core.DriftEngine(100, 10, 20)
    stop = threading.Event()
    counts = [0, 0]

    def writer(k: int) -> None:
        while not stop.is_set():
            for _ in range(512):
                e.record(f"tool{k}", {"q": "x"} if counts[k] % 3 == 0 else None, 2.0)
                counts[k] += 1

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns about forking a multi-threaded process.
            warnings.simplefilter("ignore", DeprecationWarning)
            for _ in range(8):
                _fork_and_check(e, 600)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert e.sample_counts()[TOOL_SURPRISE] == sum(counts)


_WORKER_PROBE = """
import os
from proxilion import _core
before = len(os.listdir("/proc/self/task"))
e = _core.DriftEngine(100, 10, 20)
for i in range(2000):
    e.record("search", {"q": i % 3} if i % 2 else None, 1.0)
assert e.sample_counts()[11] == 2000
# Threads started by the recordings (counted as tasks: a new thread names itself only once it
# runs, which a loaded machine may not have let it do yet).
print(len(os.listdir("/proc/self/task")) - before)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
@pytest.mark.parametrize(("setting", "threads"), [(None, "1"), ("0", "0"), ("1", "1")])
def test_the_fold_worker_can_be_switched_off(setting: str | None, threads: str) -> None:
    """``PROXILION_DRIFT_WORKER=0`` keeps every fold on the recording thread (no worker
    thread is started); nothing is lost either way."""
    env = {k: v for k, v in os.environ.items() if k != "PROXILION_DRIFT_WORKER"}
    if setting is not None:
        env["PROXILION_DRIFT_WORKER"] = setting
    out = subprocess.run(
        [sys.executable, "-c", _WORKER_PROBE], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == threads


def test_engines_dropped_while_their_batches_wait_for_the_worker() -> None:
    """Many engines, recorded from several threads, most dropped as soon as they sealed
    batches (the worker then finds them gone): no crash, and the engines kept count every
    call."""
    kept: list[Any] = []
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for j in range(30):
                e = _core.DriftEngine(50, 5, 10)
                for i in range(600):  # two sealed batches and a partial one
                    e.record(f"t{i % 4}", {"q": i} if i % 5 == 0 else None, float(i % 7))
                if j % 10 == 0:
                    kept.append(e)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(kept) == 12
    for e in kept:
        assert e.sample_counts()[TOOL_SURPRISE] == 600


class _ReentrantInt(int):
    """An int whose float conversion records a call on the engine being recorded into."""

    engine: Any = None

    def __float__(self) -> float:
        if _ReentrantInt.engine is not None:
            eng, _ReentrantInt.engine = _ReentrantInt.engine, None
            eng.record_tool_call("inner", 1.0, {"x": 1}, 0.5, DAY0)
        return float(int(self))


def test_python_code_run_while_reading_arguments_may_record_on_the_same_engine() -> None:
    """Reading an argument may run Python code (an int subclass's ``__float__``); that code
    recording on the same engine neither deadlocks nor loses a call, and both backends end in
    the same state."""
    states = []
    for mod in (_core, _reference):
        e = mod.DriftEngine(50, 5, 3)
        _ReentrantInt.engine = e
        e.record_tool_call("outer", 2.0, {"n": _ReentrantInt(7), "q": "a"}, 1.0, DAY0)
        assert _ReentrantInt.engine is None  # the hook ran
        states.append(e.to_state())
    assert states[0] == states[1]
    assert sorted(states[0]["profiles"]) == ["inner", "outer"]
