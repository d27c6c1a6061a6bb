"""Synthetic agents: a steady agent raises no alarm over 10^6 calls, and each of the four kinds
of change the security model names (tool-call rate and mix, latency, time of day, arguments)
is detected within a stated number of calls.

The baseline is learned once (natively, 30 000 calls: about three weeks of a steady agent)
and shared through ``export_state``/``from_state``; the detection scenarios then run on the
selected backend, so they also exercise restoring a baseline across backends.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from _drift_agents import TOOLS, WEIGHTS, SteadyAgent
from proxilion import _core
from proxilion.security.behavioral_drift import BehavioralMonitor, DriftMetric

N_BASELINE = 30_000
STEADY_CALLS = 1_000_000
CHUNK = 50_000


@pytest.fixture(scope="module")
def learned() -> tuple[dict[str, Any], SteadyAgent]:
    agent = SteadyAgent(seed=7)
    mon = BehavioralMonitor("steady-agent", _impl=_core)
    mon.replay(list(agent.calls(N_BASELINE)))
    base = mon.lock_baseline()
    # every metric the steady agent exercises is baselined
    assert set(base) >= {
        DriftMetric.TOOL_CALL_RATE,
        DriftMetric.UNIQUE_TOOLS,
        DriftMetric.TOOL_REPETITION,
        DriftMetric.LATENCY,
        DriftMetric.TOOL_MIX,
        DriftMetric.TOOL_SURPRISE,
        DriftMetric.TIME_OF_DAY,
        DriftMetric.TOOL_LATENCY,
        DriftMetric.ARGUMENT_SIZE,
        DriftMetric.ARGUMENT_KEYS,
        DriftMetric.ARGUMENT_VALUES,
    }
    return mon.export_state(), agent


def test_steady_agent_raises_no_alarm_in_a_million_calls(
    learned: tuple[dict[str, Any], SteadyAgent],
) -> None:
    """Drift is checked after every one of 10^6 calls at the default threshold (3.0).

    Measured: 0 alarms in 1 000 000 checks, so the false-alarm rate is below 3.0e-6 per check
    (95 % upper bound, rule of three). Largest |z| seen (seed 7): tool_call_rate 2.50,
    argument_values 2.35, latency 2.25, tool_mix 1.96, all others below 1.7. Seeds 11 and 23
    also gave 0 alarms (largest |z| 2.23 and 2.32). Runs natively (about 7 s); the reference
    twin computes the same numbers (see test_drift_engine) about 25 times slower.
    """
    state, agent0 = learned
    agent = copy.deepcopy(agent0)
    mon = BehavioralMonitor.from_state(state, _impl=_core)
    checks = alarms = 0
    max_z: dict[DriftMetric, float] = {}
    for _ in range(STEADY_CALLS // CHUNK):
        s = mon.replay(list(agent.calls(CHUNK)))
        checks += s.checks
        alarms += s.alarms
        for m, z in s.max_abs_z.items():
            max_z[m] = max(max_z.get(m, 0.0), z)
    assert checks == STEADY_CALLS
    assert alarms == 0, f"{alarms} false alarms; largest |z| per metric: {max_z}"
    assert len(max_z) >= 11  # every metric the agent exercises was evaluated


def _new_tool(a: SteadyAgent) -> None:
    a.tools = (*TOOLS, "delete_records")
    a.weights = (*WEIGHTS, 0.25)
    a.pools["delete_records"] = [{"table": "customers", "where": "1=1"}]


def _only_new_tool(a: SteadyAgent) -> None:
    _new_tool(a)
    a.tools, a.weights = ("delete_records",), (1.0,)


def _rare_tool_often(a: SteadyAgent) -> None:
    # "escalate" goes from 3 % to 40 % of the calls
    a.weights = (0.18, 0.12, 0.09, 0.06, 0.06, 0.05, 0.04, 0.40)


def _rate_x10(a: SteadyAgent) -> None:
    a.gap /= 10


def _latency_x3(a: SteadyAgent) -> None:
    a.latency_factor = 3.0


def _night_shift(a: SteadyAgent) -> None:
    a.hours = (1.0, 5.0)


def _email_body_x50(a: SteadyAgent) -> None:
    a.pools["send_email"] = [dict(x, body="x" * 20_000) for x in a.pools["send_email"]]


def _email_bcc(a: SteadyAgent) -> None:
    a.pools["send_email"] = [dict(x, bcc="drop@evil.example") for x in a.pools["send_email"]]


def _db_new_table(a: SteadyAgent) -> None:
    a.pools["db_query"] = [dict(x, table="users") for x in a.pools["db_query"]]


def _db_huge_limit(a: SteadyAgent) -> None:
    a.pools["db_query"] = [dict(x, limit=10_000_000) for x in a.pools["db_query"]]


# (kind of change, mutation, metrics expected to flag it, calls within which it is detected).
# Measured first alarms (seed 7, the same on both backends), in calls after the change:
#   new tool at 25 %: 13 | new tool only: 3 | rare tool 3 % -> 40 %: 51 | call rate x10: 15 |
#   latency x3: 20 | night shift: 3 | email body 20 KB: 35 | bcc key: 21 |
#   db table never queried: 8 | db limit 10^7: 8
SCENARIOS: dict[str, tuple[Callable[[SteadyAgent], None], set[DriftMetric], int]] = {
    # tool-call rate and mix
    "new tool, 25% of calls": (_new_tool, {DriftMetric.TOOL_MIX, DriftMetric.TOOL_SURPRISE}, 80),
    "new tool only": (_only_new_tool, {DriftMetric.TOOL_SURPRISE}, 10),
    "rare tool 3% -> 40%": (_rare_tool_often, {DriftMetric.TOOL_MIX}, 150),
    "call rate x10": (_rate_x10, {DriftMetric.TOOL_CALL_RATE}, 40),
    # latency
    "latency x3": (_latency_x3, {DriftMetric.TOOL_LATENCY}, 25),
    # time of day
    "night shift 01-05 UTC": (_night_shift, {DriftMetric.TIME_OF_DAY}, 10),
    # arguments
    "email body 20 KB": (_email_body_x50, {DriftMetric.ARGUMENT_SIZE}, 120),
    "email gains a bcc key": (_email_bcc, {DriftMetric.ARGUMENT_KEYS}, 120),
    "db table never queried": (_db_new_table, {DriftMetric.ARGUMENT_VALUES}, 40),
    "db limit 10^7": (_db_huge_limit, {DriftMetric.ARGUMENT_VALUES}, 40),
}


@pytest.mark.backend
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_kind_of_change_is_detected(
    learned: tuple[dict[str, Any], SteadyAgent], name: str
) -> None:
    mutate, metrics, within = SCENARIOS[name]
    state, agent0 = learned
    agent = copy.deepcopy(agent0)
    mon = BehavioralMonitor.from_state(state)  # the selected backend
    steady = mon.replay(list(agent.calls(1000)))
    assert (steady.checks, steady.alarms) == (1000, 0)
    mutate(agent)
    s = mon.replay(list(agent.calls(2 * within)))
    assert s.first_alarm is not None, f"{name}: not detected in {2 * within} calls"
    detected_after = s.first_alarm + 1
    print(
        f"{name}: detected after {detected_after} calls by {sorted(m.value for m in s.per_metric)}"
    )
    assert detected_after <= within, f"{name}: detected only after {detected_after} calls"
    assert metrics & set(s.per_metric), s.per_metric
