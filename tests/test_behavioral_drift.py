"""proxilion.security.behavioral_drift: the original's API (API.md 8.5, seed example 7), the new
metrics, persistence, shards and the kill-switch wiring. Runs on both backends."""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Any

import pytest

from proxilion import EmergencyHaltError
from proxilion.exceptions import BehavioralDriftError
from proxilion.security import (
    BaselineStats,
    BehavioralMonitor,
    DriftDetector,
    DriftMetric,
    DriftResult,
    KillSwitch,
)
from proxilion.security import behavioral_drift as bd
from proxilion.security.kill_switch import KillSwitch as OwnedKillSwitch

pytestmark = pytest.mark.backend

DAY0 = 19000 * 86400.0
TEN_AM = DAY0 + 10 * 3600.0


class Clock:
    """Injectable monotonic and wall clocks advanced by hand."""

    def __init__(self, mono: float = 0.0, wall: float = TEN_AM) -> None:
        self.mono = mono
        self.wall = wall

    def tick(self, dt: float = 1.0) -> None:
        self.mono += dt
        self.wall += dt

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall


def monitor(clock: Clock | None = None, **kw: Any) -> BehavioralMonitor:
    c = clock or Clock()
    return BehavioralMonitor("agent-1", clock=c.monotonic, wall_clock=c.time, **kw)


def learn(m: BehavioralMonitor, clock: Clock, n: int = 40, latency: float = 100.0) -> None:
    for i in range(n):
        clock.tick(30.0)
        m.record_tool_call("search", {"q": "sales", "limit": 10}, latency + i % 5)


# --- the seed example and the original API ------------------------------------------------


SEED_7 = """
from proxilion.security.behavioral_drift import BehavioralMonitor
monitor = BehavioralMonitor(
agent_id="customer-service-agent",
drift_threshold=3.0, # 3 standard deviations = anomaly
)
# Record each action
monitor.record_tool_call(
tool_name="send_email",
latency_ms=50.0,
)
# Lock baseline after sufficient samples
monitor.lock_baseline()
# Check for drift
drift_result = monitor.check_drift()
if drift_result.is_drifting:
    print(f"Behavioral anomaly: {drift_result.reason}")
"""


def test_seed_example_7_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    ns: dict[str, Any] = {}
    exec(SEED_7, ns)
    assert capsys.readouterr().out == ""
    mon = ns["monitor"]
    assert mon.lock_baseline() == {}
    assert mon.is_locked
    r = ns["drift_result"]
    assert (r.is_drifting, r.severity, r.reason) == (
        False,
        0.0,
        "Behavior within normal parameters",
    )
    assert r.drifting_metrics == []


def test_kill_switch_is_reexported_from_its_owner() -> None:
    assert bd.KillSwitch is OwnedKillSwitch is KillSwitch
    ks = bd.KillSwitch()
    with pytest.raises(EmergencyHaltError, match="Severe behavioral drift detected"):
        ks.activate(reason="Severe behavioral drift detected", raise_exception=True)


def test_drift_metric_members() -> None:
    original = [
        "tool_call_rate",
        "response_length",
        "error_rate",
        "unique_tools",
        "latency",
        "token_usage",
        "tool_repetition",
        "scope_violations",
        "context_size",
        "custom",
    ]
    new = [
        "tool_mix",
        "tool_surprise",
        "time_of_day",
        "tool_latency",
        "argument_size",
        "argument_keys",
        "argument_values",
    ]
    assert [m.value for m in DriftMetric] == original + new
    assert all(m.name == m.value.upper() for m in DriftMetric)


@pytest.mark.parametrize(
    ("kw", "exc", "msg"),
    [
        ({"baseline_window": 0}, ValueError, "baseline_window must be greater than 0"),
        ({"detection_window": -1}, ValueError, "detection_window must be greater than 0"),
        ({"drift_threshold": 0}, ValueError, "drift_threshold must be greater than 0"),
        ({"min_baseline_samples": 0}, ValueError, "min_baseline_samples must be greater than 0"),
        ({"drift_threshold": math.nan}, ValueError, "drift_threshold must be a finite number"),
        ({"baseline_window": 1.5}, TypeError, "baseline_window must be an int"),
        ({"drift_threshold": "3"}, TypeError, "drift_threshold must be a number"),
        ({"clock": 5}, TypeError, "clock must be callable"),
    ],
)
def test_constructor_validation(kw: dict[str, Any], exc: type[Exception], msg: str) -> None:
    with pytest.raises(exc, match=msg):
        BehavioralMonitor("a", **kw)
    with pytest.raises(TypeError, match="agent_id must be str, not int"):
        BehavioralMonitor(7)  # type: ignore[arg-type]


def test_defaults_and_attributes() -> None:
    m = BehavioralMonitor("a")
    assert (m.agent_id, m.baseline_window, m.detection_window) == ("a", 100, 10)
    assert (m.drift_threshold, m.min_baseline_samples) == (3.0, 20)
    assert "agent_id='a'" in repr(m)


def test_baseline_stats_z_score_rules() -> None:
    b = BaselineStats(DriftMetric.LATENCY, 10.0, 2.0, 5.0, 15.0, 30, 14.0, 15.0)
    assert b.z_score(14.0) == 2.0
    assert b.is_anomaly(17.0) and not b.is_anomaly(15.0) and b.is_anomaly(15.0, threshold=2.0)
    flat = BaselineStats(DriftMetric.LATENCY, 10.0, 0.0, 10.0, 10.0, 30, 10.0, 10.0)
    assert flat.z_score(10.0) == 0.0
    assert flat.z_score(11.0) == math.inf and flat.z_score(9.0) == math.inf
    eff = BaselineStats(DriftMetric.UNIQUE_TOOLS, 10.0, 0.1, 5, 15, 30, 14, 15, 2.0)
    assert eff.z_score(14.0) == 2.0  # measured in the effective deviation


def test_check_before_baseline_and_auto_lock() -> None:
    c = Clock()
    m = monitor(c, min_baseline_samples=5)
    r = m.check_drift()
    assert (r.is_drifting, r.severity, r.reason) == (False, 0.0, "Baseline not yet established")
    for _ in range(4):
        c.tick()
        m.record_tool_call("search", latency_ms=10.0)
    assert m.check_drift().reason == "Baseline not yet established"
    assert not m.is_locked
    c.tick()
    m.record_tool_call("search", latency_ms=10.0)
    r = m.check_drift()  # 5 samples: auto-locks
    assert m.is_locked
    assert r.reason == "Behavior within normal parameters"
    assert DriftMetric.LATENCY in m.get_baseline()


def test_latency_drift_reason_severity_and_details() -> None:
    c = Clock()
    m = monitor(c)
    learn(m, c)
    base = m.lock_baseline()
    lat = base[DriftMetric.LATENCY]
    assert (lat.sample_count, lat.min_value, lat.max_value) == (40, 100.0, 104.0)
    assert lat.mean == pytest.approx(102.0)
    # the spread (1.43 ms) is below the value metrics' relative floor, 10 % of the mean
    assert lat.std_dev == pytest.approx(1.4322297480788657)
    assert lat.effective_std_dev == 0.1 * lat.mean
    assert lat.percentile_95 == 104.0
    assert not m.check_drift().is_drifting
    for _ in range(10):
        c.tick(30.0)
        m.record_tool_call("search", {"q": "sales", "limit": 10}, 200.0)
    r = m.check_drift()
    assert r.is_drifting
    z = (200.0 - lat.mean) / lat.effective_std_dev
    assert (DriftMetric.LATENCY, 200.0, pytest.approx(z)) in r.drifting_metrics
    assert r.reason.startswith("Drift detected in: ")
    assert f"latency: 200.00 (z={z:.1f})" in r.reason
    assert r.severity == 1.0  # min(1, |z| / 6)
    assert r.z_scores[DriftMetric.LATENCY] == pytest.approx(z)
    d = {x.metric: x for x in r.details}[DriftMetric.LATENCY]
    assert (d.baseline_mean, d.current_value, d.is_drifting) == (lat.mean, 200.0, True)
    assert d.baseline_std_dev == lat.effective_std_dev
    with pytest.raises(BehavioralDriftError) as ei:
        r.raise_for_drift()
    assert ei.value.current_value in (200.0, pytest.approx(ei.value.current_value))


def test_severity_is_relative_to_twice_the_threshold() -> None:
    c = Clock()
    m = monitor(c, drift_threshold=3.0)
    learn(m, c)
    m.lock_baseline()
    std = m.get_baseline()[DriftMetric.LATENCY].effective_std_dev
    assert std is not None
    # a current latency mean 4 deviations out -> severity 4/6
    target = 102.0 + 4 * std
    for _ in range(10):
        c.tick(30.0)
        m.record_tool_call("search", {"q": "sales", "limit": 10}, target)
    r = m.check_drift()
    assert r.z_scores[DriftMetric.LATENCY] == pytest.approx(4.0, rel=1e-6)
    assert max(x.severity for x in r.details if x.metric is DriftMetric.LATENCY) == pytest.approx(
        4 / 6, rel=1e-6
    )


def test_to_dict_keeps_the_original_keys() -> None:
    r = DriftResult(True, 0.75, [(DriftMetric.LATENCY, 9.5, 4.5)], "why", 123.0)
    assert r.to_dict() == {
        "is_drifting": True,
        "severity": 0.75,
        "drifting_metrics": [{"metric": "latency", "value": 9.5, "z_score": 4.5}],
        "reason": "why",
        "timestamp": 123.0,
    }
    assert set(r.to_dict(include_details=True)) == {
        "is_drifting",
        "severity",
        "drifting_metrics",
        "reason",
        "timestamp",
        "z_scores",
        "details",
    }
    json.dumps(r.to_dict(include_details=True))


def test_on_drift_callbacks_run_and_exceptions_are_swallowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    c = Clock()
    m = monitor(c)
    seen: list[DriftResult] = []

    def boom(_: DriftResult) -> None:
        raise RuntimeError("callback bug")

    m.on_drift(boom)
    m.on_drift(seen.append)
    with pytest.raises(TypeError):
        m.on_drift(5)  # type: ignore[arg-type]
    learn(m, c)
    m.lock_baseline()
    m.check_drift()
    assert seen == []
    for _ in range(10):
        c.tick(30.0)
        m.record_tool_call("search", {"q": "sales", "limit": 10}, 900.0)
    with caplog.at_level(logging.ERROR, logger="proxilion.security.behavioral_drift"):
        r = m.check_drift()
    assert seen == [r]
    assert "on_drift callback failed" in caplog.text


def test_current_metrics_baseline_copy_and_reset() -> None:
    c = Clock()
    m = monitor(c)
    learn(m, c, n=25)
    cur = m.get_current_metrics()
    assert cur["latency"] == pytest.approx(sum(100 + i % 5 for i in range(15, 25)) / 10)
    assert cur["unique_tools"] == 1.0
    assert {"tool_call_rate", "tool_surprise", "time_of_day", "argument_keys"} <= set(cur)
    b = m.lock_baseline()
    b.clear()
    assert m.get_baseline()  # a copy was returned
    assert m.lock_baseline() == m.get_baseline()  # locked: the same baseline again
    m.reset()
    assert not m.is_locked and m.get_baseline() == {} and m.get_current_metrics() == {}


def test_record_response_error_event_and_metric() -> None:
    c = Clock()
    m = monitor(c)
    m.record_response({"content": "hello", "tokens": 12})
    m.record_response({"content": 5, "token_count": 0})
    m.record_error({"type": "boom"})
    c.tick(10)
    m.record_error()
    m.record_event("latency", {"value": 42})
    m.record_event("tokens", {"value": 7})
    m.record_event("context_size", {"value": 1000})
    m.record_event("scope_violation", {})
    m.record_event("response", {"content": "abc"})
    m.record_event("tool_call", {"tool": "search"})
    m.record_event("tool_call", {"tool_name": "db"})
    m.record_event("mystery", None)
    m.record_metric(DriftMetric.CUSTOM, 3.5)
    m.record_metric("custom", 4.5)
    cur = m.get_current_metrics()
    assert cur["response_length"] == 4.0  # mean of 5 and 3
    assert cur["token_usage"] == 9.5
    assert cur["error_rate"] == 1.5  # 1 then 2
    assert (cur["latency"], cur["context_size"], cur["scope_violations"]) == (42.0, 1000.0, 1.0)
    assert cur["custom"] == 4.0
    assert cur["unique_tools"] == 1.5  # samples 1 then 2
    # 5 record_event calls, then 2 tool-call events, within a minute: the rate counts them all
    # (record_response / record_error called directly are not events)
    assert m._engine.metric_state(0)["samples"] == [6.0, 7.0]
    with pytest.raises(ValueError, match="metric tool_mix cannot be recorded directly"):
        m.record_metric(DriftMetric.TOOL_MIX, 1.0)
    with pytest.raises(TypeError, match="response must be a mapping"):
        m.record_response("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data must be a mapping or None"):
        m.record_event("latency", 5)  # type: ignore[arg-type]


def test_bad_tool_calls_raise_named_errors() -> None:
    m = BehavioralMonitor("a")
    with pytest.raises(TypeError, match="tool_name must be str"):
        m.record_tool_call(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="latency_ms must be a finite number >= 0"):
        m.record_tool_call("t", latency_ms=math.inf)
    with pytest.raises(TypeError, match="arguments must be a mapping or None"):
        m.record_tool_call("t", arguments="q=1")  # type: ignore[arg-type]


def test_time_of_day_uses_the_injected_wall_clock() -> None:
    c = Clock()
    m = monitor(c)
    for _ in range(200):
        c.tick(60.0)
        if c.wall - DAY0 > 11 * 3600:  # stay within 10:00-11:00
            c.wall = TEN_AM
        m.record_tool_call("search")
    m.lock_baseline()
    assert not m.check_drift().is_drifting
    c.wall = DAY0 + 3 * 3600.0  # 03:00 UTC: an hour never seen, about 8.7 bits each
    for _ in range(3):
        c.tick(60.0)
        m.record_tool_call("search")
    assert not m.check_drift().is_drifting  # 3 such calls in a window of 10: z < 3
    c.tick(60.0)
    m.record_tool_call("search")
    r = m.check_drift()
    assert [x[0] for x in r.drifting_metrics] == [DriftMetric.TIME_OF_DAY]


def test_concurrent_recording_is_consistent() -> None:
    m = BehavioralMonitor("a", baseline_window=10_000)

    def work(k: int) -> None:
        for i in range(500):
            m.record_tool_call(f"t{k}", {"i": i}, float(i % 10))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = m.export_state()["engine"]
    assert state["metrics"]["latency"]["acc"][0] == 2000
    assert state["tools"]["counts"] == {f"t{k}": 500 for k in range(4)}


# --- persistence, shards, replay ----------------------------------------------------------


def test_export_and_restore_a_locked_baseline() -> None:
    c = Clock()
    m = monitor(c)
    learn(m, c, n=60)
    m.lock_baseline()
    state = json.loads(json.dumps(m.export_state()))
    back = BehavioralMonitor.from_state(state, clock=c.monotonic, wall_clock=c.time)
    assert back.agent_id == "agent-1" and back.is_locked
    assert back.get_baseline() == m.get_baseline()
    for mon in (m, back):
        for _ in range(10):
            c.tick(30.0)
            mon.record_tool_call("search", {"q": "sales", "limit": 10}, 400.0)
    # same drift, up to the last bit of the moving sums (restored windows start a new sum)
    restored, original = back.check_drift(), m.check_drift()
    assert [x[0] for x in restored.drifting_metrics] == [x[0] for x in original.drifting_metrics]
    for (_, v1, z1), (_, v2, z2) in zip(
        restored.drifting_metrics, original.drifting_metrics, strict=True
    ):
        assert (v1, z1) == (pytest.approx(v2, rel=1e-12), pytest.approx(z2, rel=1e-12))
    assert "tool_latency[search]: " in restored.reason
    with pytest.raises(ValueError, match="invalid drift state"):
        BehavioralMonitor.from_state({**state, "version": 9})
    with pytest.raises(ValueError, match="invalid drift state"):
        BehavioralMonitor.from_state({**state, "agent_id": 5})
    broken = json.loads(json.dumps(state))
    broken["engine"]["metrics"]["latency"]["baseline"]["std_dev"] = -1
    with pytest.raises(ValueError, match="invalid drift state"):
        BehavioralMonitor.from_state(broken)


def test_merge_monitor_shards() -> None:
    c = Clock()
    a, b = monitor(c), monitor(c)
    for i in range(30):
        c.tick()
        (a if i % 2 else b).record_tool_call("search", latency_ms=float(i))
    a.merge(b)
    base = a.lock_baseline()
    assert base[DriftMetric.LATENCY].sample_count == 30
    assert base[DriftMetric.LATENCY].mean == pytest.approx(14.5)
    with pytest.raises(TypeError, match="other must be BehavioralMonitor"):
        a.merge(object())  # type: ignore[arg-type]


def test_replay_summary() -> None:
    m = BehavioralMonitor("a")
    calls = [("search", 50.0, None, float(i), TEN_AM + i) for i in range(50)]
    s = m.replay(calls)
    assert (s.calls, s.checks, s.alarms, s.alarm_rate) == (50, 0, 0, 0.0)
    m.lock_baseline()
    s = m.replay([("search", 5000.0, None, 50.0 + i, TEN_AM + 50 + i) for i in range(10)])
    assert s.checks == 10 and s.alarms == 10 and s.first_alarm == 0
    assert s.per_metric[DriftMetric.LATENCY] == 10
    assert s.alarm_rate == 1.0


# --- DriftDetector and the kill switch ------------------------------------------------------


def drifting_detector(**kw: Any) -> tuple[DriftDetector, Clock]:
    c = Clock()
    d = DriftDetector("agent-9", monitor_kwargs={"clock": c.monotonic, "wall_clock": c.time}, **kw)
    learn(d.monitor, c)
    d.lock_baseline()
    for _ in range(10):
        c.tick(30.0)
        d.record_tool_call("search", {"q": "sales", "limit": 10}, 5000.0)
    return d, c


def test_detector_threshold_validation() -> None:
    for kw in ({"auto_halt_threshold": 1.5}, {"warning_threshold": -0.1}):
        with pytest.raises(ValueError, match="must be between 0 and 1"):
            DriftDetector("a", **kw)
    with pytest.raises(TypeError, match="kill_switch must be a KillSwitch"):
        DriftDetector("a", kill_switch="x")  # type: ignore[arg-type]
    d = DriftDetector("a")
    assert isinstance(d.monitor, BehavioralMonitor) and isinstance(d.kill_switch, KillSwitch)


def test_severe_drift_halts_once(caplog: pytest.LogCaptureFixture) -> None:
    d, _ = drifting_detector()
    halts: list[str] = []
    d.kill_switch.on_halt(halts.append)
    with (
        caplog.at_level(logging.ERROR),
        pytest.raises(EmergencyHaltError) as ei,
    ):
        d.check()
    assert halts == [d.kill_switch.reason]  # activated exactly once (the original: twice)
    assert len(d.kill_switch.history) == 1
    assert ei.value.reason.startswith("Behavioral drift detected for agent agent-9: Drift")
    assert ei.value.triggered_by == "drift_detector:agent-9"
    assert "activating kill switch" in caplog.text
    # halted: checks and records raise without activating again; errors are still recorded
    with pytest.raises(EmergencyHaltError):
        d.check()
    with pytest.raises(EmergencyHaltError):
        d.record_tool_call("search")
    with pytest.raises(EmergencyHaltError):
        d.record_response({"content": "x"})
    with pytest.raises(EmergencyHaltError):
        d.record_event("latency", {"value": 1})
    d.record_error({"e": 1})
    assert len(halts) == 1
    status = d.get_status()
    assert set(status) == {"agent_id", "kill_switch", "current_metrics", "baseline_locked"}
    assert status["kill_switch"]["active"] is True and status["baseline_locked"] is True
    d.reset()
    assert not d.kill_switch.is_active and not d.monitor.is_locked


def test_direct_monitor_check_halts_once_too() -> None:
    d, _ = drifting_detector()
    halts: list[str] = []
    d.kill_switch.on_halt(halts.append)
    r = d.monitor.check_drift()  # the on_drift callback halts, without raising
    assert r.is_drifting and d.kill_switch.is_active
    with pytest.raises(EmergencyHaltError):
        d.check()
    assert len(halts) == 1


def test_moderate_drift_warns_without_halting(caplog: pytest.LogCaptureFixture) -> None:
    d, _ = drifting_detector(auto_halt_threshold=1.0, warning_threshold=0.5)
    d.auto_halt_threshold = 1.01  # severity never reaches it
    with caplog.at_level(logging.WARNING, logger="proxilion.security.behavioral_drift"):
        r = d.check()
    assert r.is_drifting and not d.kill_switch.is_active
    assert "Behavioral drift warning for agent agent-9" in caplog.text


def test_shared_kill_switch_is_not_reset_by_the_detector() -> None:
    shared = KillSwitch()
    d, _ = drifting_detector(kill_switch=shared)
    assert d.kill_switch is shared
    with pytest.raises(EmergencyHaltError):
        d.check()
    assert shared.is_active
    d.reset()
    assert shared.is_active  # owned elsewhere: reset it there
    shared.reset()
