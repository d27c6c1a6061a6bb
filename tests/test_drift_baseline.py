"""Baseline lifecycle of the drift monitor: metrics short of samples at the lock keep learning
and join later (without learning the drift they must judge), tools first seen after the lock,
and the deviation floors of constant baselines. Runs on both backends (``-m backend``)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from proxilion import EmergencyHaltError
from proxilion.security.behavioral_drift import (
    BaselineSnapshot,
    BaselineStats,
    BehavioralMonitor,
    DriftDetector,
    DriftMetric,
)

pytestmark = pytest.mark.backend

M = DriftMetric
PER_TOOL = (M.TOOL_LATENCY, M.ARGUMENT_SIZE, M.ARGUMENT_KEYS, M.ARGUMENT_VALUES)
WINDOWED = {M.TOOL_CALL_RATE, M.ERROR_RATE, M.UNIQUE_TOOLS, M.TOOL_REPETITION, M.TOOL_MIX}
NEVER_RECORDED = {
    M.RESPONSE_LENGTH,
    M.TOKEN_USAGE,
    M.SCOPE_VIOLATIONS,
    M.CONTEXT_SIZE,
    M.CUSTOM,
}


class Clock:
    def __init__(self, gap: float) -> None:
        self.now = 1_000_000.0
        self.gap = gap

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += self.gap


def pipeline_args(i: int) -> dict[str, Any]:
    """What core.py stage 7 passes: the call's loggable arguments."""
    return {"key": f"k{i % 3}", "user": "<UserContext>"}


def detector(clock: Clock, **kw: Any) -> DriftDetector:
    return DriftDetector(
        "agent-1",
        monitor_kwargs={"min_baseline_samples": 20, "clock": clock, **kw},
    )


def call(d: DriftDetector, clock: Clock, rnd: random.Random, args: dict[str, Any]) -> None:
    clock.tick()
    # a trivial tool timed by perf_counter: a few microseconds, with jitter
    d.record_tool_call("lookup", args, rnd.uniform(0.005, 0.05))


def test_pipeline_scenario_partial_baseline_then_argument_drift() -> None:
    """20 calls, lock, then 5000-character arguments: before the fix the per-tool argument
    metrics (18-19 samples at the lock) never joined and the drift went unseen."""
    clock, rnd = Clock(3.0), random.Random(5)
    d = detector(clock)
    for i in range(20):
        call(d, clock, rnd, pipeline_args(i))
    base = d.lock_baseline()
    assert isinstance(base, BaselineSnapshot) and isinstance(base, dict)
    assert set(base) == {
        M.LATENCY,
        M.TOOL_SURPRISE,
        M.TIME_OF_DAY,
        M.ARGUMENT_KEYS,
    }
    # the per-tool metrics are scored from the 2nd or 3rd call: 18 or 19 samples
    assert base.tools == {
        "lookup": {
            M.TOOL_LATENCY: "learning",
            M.ARGUMENT_SIZE: "learning",
            M.ARGUMENT_KEYS: "baselined",
            M.ARGUMENT_VALUES: "learning",
        }
    }
    assert base.learning_tools == {
        "lookup": frozenset({M.TOOL_LATENCY, M.ARGUMENT_SIZE, M.ARGUMENT_VALUES})
    }
    # the sliding-window metrics learn only full windows: 57 s < 60 s of calls, 20 < 100
    # names, no errors; they keep learning (nothing is excluded any more)
    assert base.learning == NEVER_RECORDED | WINDOWED | {
        M.TOOL_LATENCY,
        M.ARGUMENT_SIZE,
        M.ARGUMENT_VALUES,
    }
    assert base.excluded == set()

    results = []
    for i in range(12):
        try:
            call(d, clock, rnd, {"key": "x" * 5000 + str(i), "user": "<UserContext>"})
            results.append(d.check())
        except EmergencyHaltError as halt:
            results.append(halt)
            break
    # 1st call: argument_values (19 samples) joins without learning the huge value and
    # drifts (warning); 2nd call: argument_size joins too and the agent is halted
    first = results[0]
    assert not isinstance(first, EmergencyHaltError)
    assert first.is_drifting and first.severity < 0.9
    assert [(m, t) for m, *_rest, t in _drifting(first)] == [(M.ARGUMENT_VALUES, "lookup")]
    assert len(results) == 2 and isinstance(results[1], EmergencyHaltError)
    assert "argument_size[lookup]" in str(results[1]) and "argument_values[lookup]" in str(
        results[1]
    )
    after = d.monitor.get_baseline()
    assert after.tools["lookup"] == dict.fromkeys(PER_TOOL, "baselined")
    assert {M.ARGUMENT_SIZE, M.ARGUMENT_VALUES, M.TOOL_LATENCY} <= set(after)
    # the drifted samples were seen (they count toward joining) but not learned
    assert after[M.ARGUMENT_SIZE].sample_count == 18
    assert after[M.ARGUMENT_VALUES].sample_count == 19


def _drifting(r: Any) -> list[tuple[DriftMetric, float, float, str | None]]:
    return [(x.metric, x.current_value, x.z_score, x.tool) for x in r.details if x.is_drifting]


def test_pipeline_auto_lock_then_argument_drift() -> None:
    """As core.py: check() after every call; the baseline auto-locks at the 20th call. Five
    ordinary calls later every per-tool metric has joined; the drift halts at its 2nd call."""
    clock, rnd = Clock(3.0), random.Random(6)
    d = detector(clock)
    for i in range(25):
        call(d, clock, rnd, pipeline_args(i))
        assert not d.check().is_drifting
        assert d.monitor.is_locked == (i >= 19)
    assert d.monitor.get_baseline().learning_tools == {}
    halted_at = None
    for i in range(10):
        try:
            call(d, clock, rnd, {"key": "y" * 5000, "user": "<UserContext>"})
            d.check()
        except EmergencyHaltError:
            halted_at = i + 1
            break
    assert halted_at == 2


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_steady_agent_after_a_partial_lock_raises_no_alarm(seed: int) -> None:
    """The learning metrics join on ordinary traffic and then judge it normal: 20 calls (so
    each of the three tools has only a few at the lock), then 600 more calls of the same
    agent (varied arguments, log-normal latencies) checked after each: no alarm."""
    clock, rnd = Clock(3.0), random.Random(seed)
    mon = BehavioralMonitor("agent-1", min_baseline_samples=20, clock=clock)

    def one() -> None:
        clock.tick()
        tool = rnd.choice(("lookup", "lookup", "search", "fetch"))
        args: dict[str, Any] = {"key": f"k{rnd.randint(0, 9)}", "n": rnd.randint(1, 50)}
        if tool == "search":
            args = {"query": " ".join("w" * rnd.randint(2, 8) for _ in range(rnd.randint(1, 5)))}
        mon.record_tool_call(tool, args, rnd.lognormvariate(math.log(30.0), 0.3))

    for _ in range(20):
        one()
    base = mon.lock_baseline()
    assert set(base.learning_tools) == {"lookup", "search", "fetch"}
    alarms = []
    for i in range(600):
        one()
        r = mon.check_drift()
        if r.is_drifting:
            alarms.append((i, r.reason))
    assert alarms == []
    base = mon.get_baseline()
    assert base.learning_tools == {}
    assert set(base.tools) == {"lookup", "search", "fetch"}
    # no errors; tool_mix's reference (frozen at 20 calls) can never hold 100; the 100-name
    # counts learn one sample per 100 names (6 of the 20 needed)
    assert base.learning == NEVER_RECORDED | {
        M.TOOL_MIX,
        M.ERROR_RATE,
        M.UNIQUE_TOOLS,
        M.TOOL_REPETITION,
    }


def test_a_tool_first_seen_after_the_lock() -> None:
    clock, rnd = Clock(3.0), random.Random(8)
    mon = BehavioralMonitor("agent-1", min_baseline_samples=20, clock=clock)
    for i in range(40):
        clock.tick()
        mon.record_tool_call("lookup", pipeline_args(i), 20.0 + rnd.random())
    mon.lock_baseline()
    first = None
    for i in range(40):
        clock.tick()
        mon.record_tool_call("wipe", {"table": "customers"}, 20.0 + rnd.random())
        r = mon.check_drift()
        if first is None and r.is_drifting:
            first = (i + 1, [m for m, *_ in r.drifting_metrics])
        if i == 0:
            # profiled from its first call, learning its own per-tool baselines
            assert mon.get_baseline().tools["wipe"] == dict.fromkeys(PER_TOOL, "learning")
    # the switch to a never-seen tool is flagged by its surprise within a window, as before
    # (about 6.3 bits per call against a 40-call baseline)
    assert first == (5, [M.TOOL_SURPRISE])
    assert mon.get_baseline().tools["wipe"] == dict.fromkeys(PER_TOOL, "baselined")
    # its own argument baseline now judges its arguments
    for _ in range(10):
        clock.tick()
        mon.record_tool_call("wipe", {"table": "customers" * 2000}, 20.0)
    r = mon.check_drift()
    tools = {(x.metric, x.tool) for x in r.details if x.is_drifting}
    assert (M.ARGUMENT_SIZE, "wipe") in tools


def test_lock_baseline_again_returns_the_current_baseline() -> None:
    clock = Clock(3.0)
    mon = BehavioralMonitor("agent-1", min_baseline_samples=5, clock=clock)
    for i in range(5):
        clock.tick()
        mon.record_tool_call("lookup", pipeline_args(i))
    first = mon.lock_baseline()
    assert M.ARGUMENT_SIZE not in first and M.ARGUMENT_SIZE in first.learning
    before = mon.get_baseline()
    assert before == first and before is not first
    for i in range(2):
        clock.tick()
        mon.record_tool_call("lookup", pipeline_args(i))
    again = mon.lock_baseline()
    assert M.ARGUMENT_SIZE in again and M.ARGUMENT_SIZE not in again.learning
    # what was frozen at the first lock did not move
    assert {m: again[m] for m in first} == dict(first)
    copy = again.copy()
    assert isinstance(copy, BaselineSnapshot) and copy.tools == again.tools
    assert copy.learning == again.learning and copy.excluded == again.excluded


def test_before_the_lock_every_metric_is_learning() -> None:
    mon = BehavioralMonitor("agent-1")
    mon.record_tool_call("lookup", {"key": "a"}, 3.0)
    b = mon.get_baseline()
    assert b == {} and b.learning == set(DriftMetric) and b.excluded == set()
    assert b.tools == {"lookup": dict.fromkeys(PER_TOOL, "learning")}


def test_state_with_learning_metrics_round_trips() -> None:
    clock, rnd = Clock(3.0), random.Random(9)
    d = detector(clock)
    for i in range(20):
        call(d, clock, rnd, pipeline_args(i))
    d.lock_baseline()
    call(d, clock, rnd, {"key": "z" * 5000, "user": "<UserContext>"})  # rejected, not learned
    state = d.monitor.export_state()
    back = BehavioralMonitor.from_state(state)
    assert back.export_state() == state
    b1, b2 = d.monitor.get_baseline(), back.get_baseline()
    assert b1 == b2 and b1.tools == b2.tools and b1.learning == b2.learning
    vals = state["engine"]["profiles"]["lookup"]["metrics"]["argument_values"]
    assert (vals["acc"][0], vals["rejected"]) == (19, 1)
    # states saved before this field existed load with no rejections
    old = {**state, "engine": {**state["engine"]}}
    old["engine"]["metrics"] = {
        k: {f: v for f, v in ms.items() if f != "rejected"}
        for k, ms in state["engine"]["metrics"].items()
    }
    assert BehavioralMonitor.from_state(old).get_baseline() == b1


# --- zero-variance baselines -----------------------------------------------------------------


def constant_latency_monitor(latency: float) -> tuple[BehavioralMonitor, Clock]:
    """20 calls of one tool at a constant latency (the pipeline's auto-lock point)."""
    clock = Clock(3.0)
    mon = BehavioralMonitor("agent-1", min_baseline_samples=20, clock=clock)
    for _ in range(20):
        clock.tick()
        mon.record_tool_call("fetch", None, latency)
    mon.lock_baseline()
    return mon, clock


def test_constant_latency_then_realistic_jitter_does_not_alarm() -> None:
    mon, clock = constant_latency_monitor(40.0)
    lat = mon.get_baseline()[M.LATENCY]
    # the plain deviation is 0; drift is judged against 10 % of the mean (4 ms)
    assert (lat.std_dev, lat.effective_std_dev) == (0.0, 4.0)
    assert lat.z_score(44.0) == 1.0
    rnd = random.Random(10)
    worst = 0.0
    for _ in range(500):
        clock.tick()
        mon.record_tool_call("fetch", None, 40.0 * rnd.uniform(0.8, 1.25))
        r = mon.check_drift()
        assert not r.is_drifting, r.reason
        worst = max(worst, abs(r.z_scores[M.LATENCY]))
    assert 0.5 < worst < 3.0


def test_constant_latency_then_three_times_slower_alarms() -> None:
    mon, clock = constant_latency_monitor(40.0)
    for _ in range(10):
        clock.tick()
        mon.record_tool_call("fetch", None, 120.0)
    r = mon.check_drift()
    assert r.z_scores[M.LATENCY] == 20.0  # (120 - 40) / 4
    assert r.severity == 1.0
    assert "latency: 120.00 (z=20.0)" in r.reason
    # through a DriftDetector that is a halt
    clock2 = Clock(3.0)
    d = detector(clock2)
    for _ in range(20):
        clock2.tick()
        d.record_tool_call("fetch", None, 40.0)
    d.lock_baseline()
    with pytest.raises(EmergencyHaltError):
        for _ in range(10):
            clock2.tick()
            d.record_tool_call("fetch", None, 120.0)
            d.check()


def test_sub_millisecond_constant_latency_is_not_infinitely_sensitive() -> None:
    """The reported case: latency always 0.01 ms in the baseline, then real timings of a
    trivial function gave z = -1.05e14 and halted the agent."""
    mon, clock = constant_latency_monitor(0.01)
    lat = mon.get_baseline()[M.LATENCY]
    assert lat.effective_std_dev == 1.0  # the absolute floor of latency: 1 ms
    rnd = random.Random(11)
    for _ in range(200):
        clock.tick()
        mon.record_tool_call("fetch", None, rnd.uniform(0.004, 0.3))
        r = mon.check_drift()
        assert not r.is_drifting, r.reason
        assert abs(r.z_scores[M.LATENCY]) < 0.3
    # a real slowdown of that tool is still seen (per tool, on a log scale)
    for _ in range(10):
        clock.tick()
        mon.record_tool_call("fetch", None, 25.0)
    r = mon.check_drift()
    assert r.is_drifting
    assert {m for m, *_ in r.drifting_metrics} == {M.LATENCY, M.TOOL_LATENCY}


def test_hand_built_baseline_stats_keep_the_original_zero_deviation_rule() -> None:
    flat = BaselineStats(M.LATENCY, 0.01, 0.0, 0.01, 0.01, 30, 0.01, 0.01)
    assert flat.z_score(0.01) == 0.0 and flat.z_score(0.02) == math.inf
    floored = BaselineStats(M.LATENCY, 0.01, 0.0, 0.01, 0.01, 30, 0.01, 0.01, 1.0)
    assert floored.z_score(0.02) == pytest.approx(0.01)


# --- sliding-window metrics learn full windows only ------------------------------------------


def _steady(
    gap: float, n: int, rate_x10_at: int | None = None, done: list[int] | None = None
) -> tuple[Any, int, DriftDetector]:
    """``n`` calls every ``gap`` s (every ``gap / 10`` s from call ``rate_x10_at``), checked
    after each (auto-lock at the 20th); returns (first drift, alarms, detector). ``done``
    gets the index of each call recorded."""
    clock = Clock(gap)
    d = detector(clock)
    first: Any = None
    alarms = 0
    for i in range(n):
        if done is not None:
            done.append(i)
        if rate_x10_at is not None and i == rate_x10_at:
            clock.gap = gap / 10.0
        clock.tick()
        d.record_tool_call(("a", "b", "c")[i % 3], pipeline_args(i), 0.01)
        r = d.check()
        if r.is_drifting:
            alarms += 1
            if first is None:
                first = (i, _drifting(r))
    return first, alarms, d


@pytest.mark.parametrize("gap", [0.1, 1.0])
def test_steady_agent_through_an_auto_lock_never_alarms(gap: float) -> None:
    """Before the fix the windowed counts were baselined while their windows filled (rates
    1..20): every 1 s the agent was warned from call ~46, every 0.1 s halted at call ~71."""
    first, alarms, d = _steady(gap, 2200)
    assert (first, alarms) == (None, 0)
    assert not d.kill_switch.is_active
    base = d.monitor.get_baseline()
    # every windowed metric joined once its window was full (the 100-name counts after 20
    # samples, one per 100 names: call 2100), except tool_mix (its reference mix is frozen
    # at the lock with 20 < 100 calls: it can never start) and error_rate
    assert base.learning == NEVER_RECORDED | {M.TOOL_MIX, M.ERROR_RATE}
    assert {M.TOOL_CALL_RATE, M.UNIQUE_TOOLS, M.TOOL_REPETITION} <= set(base)
    # calls in the last 60 s, over full windows only (an exact count at 1 s per call)
    if gap == 1.0:
        assert base[M.TOOL_CALL_RATE].mean == 61.0
    assert base[M.UNIQUE_TOOLS].mean == 3.0


@pytest.mark.parametrize("gap", [0.1, 1.0])
def test_a_tenfold_rate_halts_after_the_windows_joined(gap: float) -> None:
    """The call rate joined the baseline (100 full-window samples); calls ten times as
    frequent from call 1000 halt the agent a few calls later, on the call rate alone."""
    done: list[int] = []
    with pytest.raises(
        EmergencyHaltError, match=r"Drift detected in: tool_call_rate: [0-9.]+ \(z="
    ):
        _steady(gap, 1300, rate_x10_at=1000, done=done)
    assert 1000 < done[-1] <= 1010


def test_a_window_that_never_fills_stays_learning() -> None:
    """30 calls a day: the 60 s rate window never holds a full minute of history, so
    tool_call_rate learns nothing and stays learning (reported), instead of a baseline of 1s."""
    clock = Clock(2880.0)
    d = detector(clock)
    for i in range(30):
        clock.tick()
        d.record_tool_call("lookup", pipeline_args(i), 0.01)
        d.check()
    base = d.monitor.get_baseline()
    assert M.TOOL_CALL_RATE in base.learning and M.UNIQUE_TOOLS in base.learning
    assert M.TOOL_CALL_RATE not in base


@pytest.mark.parametrize("gap", [0.1, 1.0])
def test_pipeline_steady_traffic_never_trips_the_kill_switch(gap: float) -> None:
    """Proxilion stage 7 records every protected call and, once the baseline is locked,
    checks drift after each: 2000 steady calls after the lock pass and the kill switch stays
    off."""
    from proxilion import Policy, Proxilion, UserContext

    clock = Clock(gap)
    d = detector(clock)
    auth = Proxilion(behavioral_monitor=d)

    @auth.policy("lookup")
    class LookupPolicy(Policy):  # type: ignore[type-arg]
        def can_execute(self, context: dict[str, Any]) -> bool:
            return True

    @auth.authorize("execute", resource="lookup")
    def lookup(key: str, user: UserContext | None = None) -> str:
        return key

    alice = UserContext(user_id="alice", roles=["user"])
    # warm-up of more than a minute and a hundred calls, then an explicit lock (stage 7
    # checks drift only once the baseline was locked on purpose)
    for i in range(800):
        clock.tick()
        assert lookup(f"k{i % 3}", user=alice) == f"k{i % 3}"
    d.lock_baseline()
    for i in range(2000):
        clock.tick()
        assert lookup(f"k{i % 3}", user=alice) == f"k{i % 3}"
    assert not auth.kill_switch.is_active
    assert d.monitor.is_locked
    assert M.TOOL_CALL_RATE in d.monitor.get_baseline()
