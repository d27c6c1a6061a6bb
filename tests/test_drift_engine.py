"""The drift engine (rust/core/src/stats/engine.rs) on both backends, and their agreement."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion import _core, _reference

NAMES = [
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
    "tool_mix",
    "tool_surprise",
    "time_of_day",
    "tool_latency",
    "argument_size",
    "argument_keys",
    "argument_values",
]
IDX = {n: i for i, n in enumerate(NAMES)}
HOUR = 3600.0
DAY0 = 19000 * 86400.0


def checks_by_name(engine: Any) -> dict[str, tuple[float, float]]:
    return {NAMES[m]: (cur, z) for m, cur, z, *_ in engine.check()}


def test_metric_names(impl: ModuleType) -> None:
    assert list(impl.drift_metric_names()) == NAMES


def test_config_validation(impl: ModuleType) -> None:
    assert impl.DriftEngine().config() == (100, 10, 20)
    for args, msg in [
        ((0, 10, 20), "baseline_window must be greater than 0"),
        ((10, -1, 20), "detection_window must be greater than 0"),
        ((10, 10, 0), "min_baseline_samples must be greater than 0"),
    ]:
        with pytest.raises(ValueError, match=msg):
            impl.DriftEngine(*args)
    with pytest.raises(TypeError, match="baseline_window must be an int, not float"):
        impl.DriftEngine(10.0)
    with pytest.raises(TypeError, match="detection_window must be an int, not bool"):
        impl.DriftEngine(10, True)


def test_single_sample_then_lock_is_empty(impl: ModuleType) -> None:
    e = impl.DriftEngine()
    e.record_tool_call("send_email", 50.0)
    assert e.lock() == []
    assert e.locked is True
    assert e.check() == []
    assert e.evaluate(3.0) == (0.0, [], [])


def test_latency_baseline_and_shift(impl: ModuleType) -> None:
    e = impl.DriftEngine(100, 10, 20)
    lats = [100.0 + (i % 5) for i in range(50)]
    for i, lat in enumerate(lats):
        e.record_tool_call("search", lat, None, float(i), DAY0 + 10 * HOUR + i)
    base = {NAMES[b[0]]: b for b in e.lock()}
    _m, mean, std, lo, hi, n, p95, p99, scale = base["latency"]
    assert (n, lo, hi) == (50, 100.0, 104.0)
    assert mean == pytest.approx(102.0)
    assert std == pytest.approx(statistics.stdev(lats), rel=1e-12)
    # percentiles: sorted[int((n-1)*q)]
    assert (p95, p99) == (sorted(lats)[46], sorted(lats)[48])
    # std (1.41 ms) is below the relative floor of the value metrics: 10 % of the mean
    assert scale == 0.1 * mean
    assert abs(checks_by_name(e)["latency"][1]) < 3
    for i in range(50, 60):
        e.record_tool_call("search", 200.0, None, float(i), DAY0 + 10 * HOUR + i)
    cur, z = checks_by_name(e)["latency"]
    assert cur == 200.0
    assert z == pytest.approx((200.0 - mean) / scale)
    # a frozen baseline: counts stop at the lock
    assert e.sample_counts()[IDX["latency"]] == 50
    sev, drifting, _ = e.evaluate(3.0)
    assert sev == 1.0
    assert [NAMES[d[0]] for d in drifting] == ["latency", "tool_latency"]


def test_rate_unique_repetition_values(impl: ModuleType) -> None:
    e = impl.DriftEngine(100, 100, 1)
    seq = ["a", "a", "b", "a", "c", "c", "c"]
    for i, name in enumerate(seq):
        e.record_tool_call(name, None, None, i * 20.0, DAY0)
    st = {n: e.metric_state(IDX[n])["samples"] for n in ("tool_call_rate", "unique_tools")}
    # events in the last 60 s (inclusive): t = 0, 20, 40, 60, 80, 100, 120
    assert st["tool_call_rate"] == [1.0, 2.0, 3.0, 4.0, 4.0, 4.0, 4.0]
    assert st["unique_tools"] == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0]
    # adjacent equal pairs, recorded once there are two names
    assert e.metric_state(IDX["tool_repetition"])["samples"] == [1.0, 1.0, 1.0, 1.0, 2.0, 3.0]


def test_tool_events_and_errors(impl: ModuleType) -> None:
    e = impl.DriftEngine(100, 10, 1)
    e.record_event_time(0.0)
    e.record_tool_event("search", 1.0, DAY0)
    e.record_tool_event("search", 2.0, DAY0)
    assert e.metric_state(IDX["tool_call_rate"])["samples"] == [2.0, 3.0]
    # record_event("tool_call") records no repetition sample (as the original)
    assert e.metric_state(IDX["tool_repetition"])["samples"] == []
    for t in (0.0, 10.0, 20.0, 100.0):
        e.record_error(t)
    assert e.metric_state(IDX["error_rate"])["samples"] == [1.0, 2.0, 3.0, 1.0]


def test_record_value(impl: ModuleType) -> None:
    e = impl.DriftEngine()
    e.record_value(IDX["response_length"], 12)
    e.record_value(IDX["custom"], -3.5)
    assert e.metric_state(IDX["response_length"])["samples"] == [12.0]
    assert e.metric_state(IDX["custom"])["samples"] == [-3.5]
    with pytest.raises(ValueError, match="metric tool_mix cannot be recorded directly"):
        e.record_value(IDX["tool_mix"], 1.0)
    with pytest.raises(ValueError, match="unknown metric index 99"):
        e.record_value(99, 1.0)
    with pytest.raises(ValueError, match=r"latency value must be a finite number >= 0, got -1\.0"):
        e.record_value(IDX["latency"], -1.0)
    with pytest.raises(ValueError, match="custom value must be a finite number, got nan"):
        e.record_value(IDX["custom"], math.nan)
    with pytest.raises(TypeError, match="token_usage value must be a number, not str"):
        e.record_value(IDX["token_usage"], "12")


@pytest.mark.parametrize(
    ("call", "exc", "msg"),
    [
        ((3,), TypeError, "tool_name must be str, not int"),
        (("a\ud800",), ValueError, "tool_name is not valid Unicode text"),
        (("t", math.nan), ValueError, "latency_ms must be a finite number >= 0, got nan"),
        (("t", -0.5), ValueError, r"latency_ms must be a finite number >= 0, got -0\.5"),
        (("t", 10**400), ValueError, "latency_ms must be a finite number >= 0, got 1000"),
        (("t", "5"), TypeError, "latency_ms must be a number or None, not str"),
        (("t", True), TypeError, "latency_ms must be a number or None, not bool"),
        (("t", 1.0, [1, 2]), TypeError, "arguments must be a mapping or None, not list"),
        (("t", 1.0, None, math.inf), ValueError, "now must be a finite number, got inf"),
        (("t", 1.0, None, 1.0, "x"), TypeError, "wall must be a number, not str"),
    ],
)
def test_record_rejects_bad_input(
    impl: ModuleType, call: tuple[Any, ...], exc: type[Exception], msg: str
) -> None:
    e = impl.DriftEngine()
    with pytest.raises(exc, match=msg):
        e.record_tool_call(*call)
    assert sum(e.sample_counts()) == 0  # nothing half-recorded


class Args(Mapping[str, Any]):
    """A read-only mapping that is not a dict."""

    def __init__(self, **kw: Any) -> None:
        self._d = kw

    def __getitem__(self, k: str) -> Any:
        return self._d[k]

    def __iter__(self) -> Any:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


WEIRD_ARGS: list[Any] = [
    {},
    {"n": 10**400, "m": -(10**400), "f": math.nan, "g": -math.inf, "h": math.inf},
    {"\ud800bad": 1, 5: "int key", ("t",): None, "k" * 65: "long key"},
    {"s": "\udcff", "b": b"\x00\xff", "ba": bytearray(3), "x": object(), "y": {1, 2}},
    {"deep": [[[[[[[[[[["bottom"]]]]]]]]]]], "wide": list(range(1000))},
    {f"k{i}": i for i in range(40)},
    {"nested": {"a": {"b": [{"c": "d" * 100}] * 300}}},
    {"flag": True, "none": None, "neg": -12.5, "zero": 0},
    Args(q="sales", limit=5),
    # the size budget runs out inside the first value: the later keys still form the key set
    {"wide": list(range(1000)), "after": 1, 7: "x", "k" * 65: 2},
    {f"k{i}": "v" * i for i in range(20)},  # more than the binding copies to the stack
    {f"k{i}": i for i in range(32)},  # exactly as many keys as are profiled
    # ints that round when converted to float, at and past the 64-bit boundary
    {"a": 2**53 + 1, "b": 2**63 - 1, "c": -(2**63), "d": 2**63, "e": -(2**63) - 1},
]


def test_weird_arguments_are_profiled_identically_by_both_backends() -> None:
    states = []
    checks = []
    for mod in (_core, _reference):
        e = mod.DriftEngine(50, 5, 3)
        for rnd in range(3):
            for i, a in enumerate(WEIRD_ARGS):
                e.record_tool_call(f"tool{i % 3}", 5.0 + rnd, a, float(rnd * 100 + i), DAY0)
        e.lock()
        for i, a in enumerate(WEIRD_ARGS):
            e.record_tool_call(f"tool{i % 3}", 5.0, a, 1000.0 + i, DAY0)
        states.append(e.to_state())
        checks.append(e.check())
    assert states[0] == states[1]
    assert checks[0] == checks[1]
    profile = states[0]["profiles"]["tool2"]
    # {f"k{i}": ...} has more than 32 keys: its key set is the single token "\0many"
    assert [["\x00many"], 3] in profile["keysets"]
    # non-str, surrogate and over-long keys share the token "\0key"
    keysets = [ks for ks, _ in states[0]["profiles"]["tool2"]["keysets"]]
    assert ["\x00key", "\x00key", "\x00key", "\x00key"] in keysets


def test_argument_changes_are_scored(impl: ModuleType) -> None:
    e = impl.DriftEngine(100, 10, 20)
    for i in range(200):
        e.record_tool_call(
            "db", 10.0, {"table": ("sales", "orders")[i % 2], "limit": 10 + i % 7}, i, DAY0
        )
    e.lock()
    base = {NAMES[b[0]]: b for b in e.baselines()}
    assert {"argument_keys", "argument_size", "argument_values"} <= set(base)

    def z_after(args: dict[str, Any]) -> dict[str, float]:
        f = impl.DriftEngine.from_state(e.to_state())
        for i in range(10):
            f.record_tool_call("db", 10.0, args, 1000.0 + i, DAY0)
        return {k: v[1] for k, v in checks_by_name(f).items()}

    assert max(abs(z) for z in z_after({"table": "sales", "limit": 12}).values()) < 3
    assert z_after({"table": "users", "limit": 12})["argument_values"] > 3
    assert z_after({"table": "sales", "limit": 10**9})["argument_values"] > 3
    assert z_after({"table": "sales", "limit": "12"})["argument_values"] > 3
    assert z_after({"table": "sales", "limit": 12, "drop": True})["argument_keys"] > 3
    assert z_after({"table": "sales" * 5000, "limit": 12})["argument_size"] > 3


def test_state_roundtrip_cross_backend_and_json(impl: ModuleType) -> None:
    other = _reference if impl is _core else _core
    e = impl.DriftEngine(30, 5, 10)
    for i in range(60):
        e.record_tool_call(("a", "b")[i % 2], 1.0 + i, {"x": i}, float(i), DAY0 + i * 600.0)
        if i % 7 == 0:
            e.record_error(float(i))
    state = e.to_state()
    text = json.dumps(state)
    assert json.loads(text) == state
    for mod in (impl, other):
        back = mod.DriftEngine.from_state(json.loads(text))
        assert back.to_state() == state
    e.lock()
    locked = e.to_state()
    back = other.DriftEngine.from_state(locked)
    assert back.locked
    assert back.baselines() == e.baselines()


def test_a_metric_short_at_the_lock_learns_behind_a_gate_then_joins(impl: ModuleType) -> None:
    e = impl.DriftEngine(100, 10, 20)
    lat = IDX["latency"]
    for i in range(12):
        e.record_value(lat, 50.0 + i % 4)  # mean 51.5, std 1.17: deviation floor 5.15 ms
    assert e.lock() == []
    assert e.baseline_status()[0][lat] == "learning"
    # learned: within 4 deviations (4 * 5.15 ms) of the mean learned so far
    e.record_value(lat, 60.0)
    e.record_value(lat, 40.0)
    # not learned: 200 ms is 28 deviations out (it still counts toward joining)
    e.record_value(lat, 200.0)
    ms = e.metric_state(lat)
    assert (ms["acc"][0], ms["rejected"]) == (14, 1)
    assert ms["samples"][-1] == 200.0  # it is in the current window all the same
    for _ in range(4):
        e.record_value(lat, 51.0)
    assert e.baselines() == []
    e.record_value(lat, 51.0)  # 19 learned + 1 rejected: joins, frozen
    (b,) = e.baselines()
    assert b[0] == lat and b[5] == 19
    assert b[1] == pytest.approx((12 * 51.5 + 60 + 40 + 5 * 51) / 19)
    assert e.baseline_status()[0][lat] == "baselined"
    e.record_value(lat, 51.0)
    assert e.metric_state(lat)["acc"][0] == 19  # frozen
    # windowed metrics learn only samples over full windows (60 s of calls, 100 names):
    # 50 calls over 49 s fill none, so they keep learning (nothing is excluded any more)
    w = impl.DriftEngine(100, 10, 20)
    for i in range(5):
        w.record_tool_call("a", None, None, float(i), DAY0)
    w.lock()
    for i in range(5, 50):
        w.record_tool_call("a", None, None, float(i), DAY0)
    statuses = w.baseline_status()[0]
    assert [NAMES[m] for m, s in enumerate(statuses) if s == "excluded"] == []
    windowed = ["tool_call_rate", "error_rate", "unique_tools", "tool_repetition", "tool_mix"]
    assert all(statuses[IDX[n]] == "learning" for n in windowed)
    assert w.sample_counts()[IDX["tool_call_rate"]] == 0
    assert [NAMES[m] for m, s in enumerate(statuses) if s == "baselined"] == [
        "tool_surprise",
        "time_of_day",
    ]
    assert w.baseline_status()[1] == {"a": ["learning"] * 4}  # no latency, no arguments


def _tamper(state: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    s = json.loads(json.dumps(state))
    node = s
    for p in path[:-1]:
        node = node[p]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return s


def test_from_state_rejects_malformed_and_inconsistent_states(impl: ModuleType) -> None:
    e = impl.DriftEngine(20, 5, 5)
    for i in range(30):
        e.record_tool_call("db", 3.0, {"q": "x"}, float(i), DAY0)
    e.lock()
    good = e.to_state()
    assert impl.DriftEngine.from_state(good).baselines() == e.baselines()
    bad_edits = [
        (["format"], "other"),
        (["version"], 2),
        (["version"], True),
        (["locked"], "yes"),
        (["baseline_window"], 0),
        (["metrics", "latency"], KeyError),
        (["metrics", "latency", "acc", 2], -1.0),
        (["metrics", "latency", "acc", 1], "nan"),
        (["metrics", "latency", "samples"], [1.0] * 21),
        (["metrics", "latency", "baseline", "scale"], -1.0),
        (["metrics", "latency", "baseline", "sample_count"], 0),
        (["tools", "counts", "db"], 0),
        (["hours"], [0] * 23),
        (["profiles", "db", "calls"], 99),
        (["profiles", "db", "keysets", 0, 0], ["z", "a"]),
        (["profiles", "db", "keys", "q", "kinds"], [0] * 6),
        (["profiles", "db", "keys", "q", "categories"], {f"v{i}": 1 for i in range(17)}),
    ]
    for path, value in bad_edits:
        with pytest.raises(ValueError, match="invalid drift state"):
            impl.DriftEngine.from_state(_tamper(good, path, value))
    # a metric still learning after the lock: 3 samples of 5, gate from 3
    short = impl.DriftEngine(20, 5, 5)
    for i in range(3):
        short.record_tool_call("db", 3.0, {"q": "x"}, float(i), DAY0)
    short.lock()
    learning = short.to_state()
    keys = ["profiles", "db", "metrics", "argument_keys", "rejected"]
    assert impl.DriftEngine.from_state(_tamper(learning, keys, 1)).baseline_status()[1] == {
        "db": ["learning"] * 4
    }
    for state, path, value, msg in [
        (learning, keys, 2, "enough samples but no baseline"),
        (learning, ["metrics", "custom", "rejected"], 1, "before the learning gate applies"),
        (learning, ["metrics", "tool_mix", "rejected"], 1, "before the learning gate applies"),
        (learning, ["metrics", "custom", "rejected"], -1, "non-negative integer"),
        (_tamper(learning, ["locked"], False), keys, 1, "only exist after the lock"),
    ]:
        with pytest.raises(ValueError, match=msg):
            impl.DriftEngine.from_state(_tamper(state, path, value))
    unlocked = _tamper(good, ["locked"], False)
    with pytest.raises(ValueError, match="baseline present but not locked"):
        impl.DriftEngine.from_state(unlocked)
    with pytest.raises(ValueError, match="invalid drift state"):
        impl.DriftEngine.from_state("not a mapping")


def test_merge_shards_equals_one_engine(impl: ModuleType) -> None:
    whole = impl.DriftEngine(1000, 10, 5)
    shards = [impl.DriftEngine(1000, 10, 5) for _ in range(3)]
    for i in range(90):
        call = (("a", "b", "c")[i % 3], float(i % 11), {"k": i % 4}, float(i), DAY0 + i)
        whole.record_tool_call(*call)
        shards[i % 3].record_tool_call(*call)
    merged = shards[0]
    merged.merge(shards[1])
    merged.merge(shards[2])
    a, b = whole.to_state(), merged.to_state()
    # Raw samples and learned profiles merge exactly; scores computed against a profile
    # while learning (surprise, standardised values) depend on what each shard had seen.
    la, lb = a["metrics"]["latency"]["acc"], b["metrics"]["latency"]["acc"]
    assert la[0] == lb[0] == 90
    assert la[1:] == pytest.approx(lb[1:], rel=1e-12)
    for tool in ("a", "b", "c"):
        pa, pb = a["profiles"][tool], b["profiles"][tool]
        assert pa["keysets"] == pb["keysets"]
        assert pa["keys"]["k"]["categories"] == pb["keys"]["k"]["categories"]
        assert pa["keys"]["k"]["num"] == pytest.approx(pb["keys"]["k"]["num"], rel=1e-12)
        assert pa["latency"] == pytest.approx(pb["latency"], rel=1e-12)
    assert a["tools"] == b["tools"]
    assert a["hours"] == b["hours"]
    with pytest.raises(ValueError, match="different configurations"):
        merged.merge(impl.DriftEngine(999, 10, 5))
    merged.merge(merged)  # a shard merged with itself doubles its counts, no deadlock
    assert merged.to_state()["tools"]["counts"]["a"] == 60
    merged.lock()
    with pytest.raises(ValueError, match="once a baseline is locked"):
        merged.merge(impl.DriftEngine(1000, 10, 5))
    with pytest.raises(TypeError, match="other must be DriftEngine"):
        merged.merge("x")


def test_replay_counts_checks_and_alarms(impl: ModuleType) -> None:
    e = impl.DriftEngine(100, 10, 20)
    calls = [("search", 50.0 + i % 3, None, float(i), DAY0 + 10 * HOUR + i) for i in range(100)]
    s = e.replay(calls)
    assert s == {
        "calls": 100,
        "checks": 0,
        "alarms": 0,
        "first_alarm": None,
        "per_metric": {},
        "max_abs_z": {},
    }
    e.lock()
    slow = [("search", 500.0, None, 100.0 + i, DAY0 + 10 * HOUR + 100 + i) for i in range(20)]
    s = e.replay(slow, 3.0, 2)
    assert (s["calls"], s["checks"]) == (20, 10)
    assert s["alarms"] == 10 and s["first_alarm"] == 1
    assert s["per_metric"]["latency"] == 10
    assert s["max_abs_z"]["latency"] == pytest.approx((500.0 - 50.99) / 5.099)  # 10 % floor
    with pytest.raises(TypeError, match=r"calls\[0\] must be a"):
        e.replay([("search", 1.0)])
    with pytest.raises(ValueError, match="threshold must be greater than 0"):
        e.replay([], 0.0)
    with pytest.raises(ValueError, match="check_every must be greater than 0"):
        e.replay([], 3.0, 0)


# --- differential property test ------------------------------------------------------------

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
json_value = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4)
    ),
    max_leaves=12,
)
call_st = st.tuples(
    st.sampled_from(["search", "db", "email", "calc"]),
    st.one_of(st.none(), st.floats(min_value=0, max_value=5e3)),
    st.one_of(st.none(), st.dictionaries(st.sampled_from("abcdef"), json_value, max_size=5)),
    st.floats(min_value=0.0, max_value=120.0),  # gap (monotonic seconds)
    st.floats(min_value=0.0, max_value=20000.0),  # gap (wall seconds)
    st.sampled_from(["call", "call", "call", "error", "value", "event"]),
)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(call_st, min_size=1, max_size=80),
    st.integers(min_value=0, max_value=80),
    st.sampled_from([3, 8]),
)
def test_native_and_reference_give_the_same_z_scores(
    calls: list[tuple[Any, ...]], lock_at: int, min_samples: int
) -> None:
    """Tolerance: relative 1e-9 (both run the same IEEE-754 operations in the same order, so on
    one machine they agree exactly; the tolerance only covers a libm whose log2 differs).
    Locking early leaves metrics learning after the lock (and, with 8, behind the learning
    gate), so joins, rejections and tools first seen after the lock are compared too."""
    results = []
    for mod in (_core, _reference):
        e = mod.DriftEngine(30, 5, min_samples)
        mono, wall = 0.0, DAY0
        zs = []
        for i, (tool, lat, args, dm, dw, kind) in enumerate(calls):
            mono += dm
            wall += dw
            if i == lock_at:
                zs.append(("lock", e.lock()))
            if kind == "call":
                e.record_tool_call(tool, lat, args, mono, wall)
            elif kind == "error":
                e.record_error(mono)
            elif kind == "value":
                e.record_value(IDX["response_length"], len(tool) * 7.0)
            else:
                e.record_tool_event(tool, mono, wall)
            zs.append(e.check())
            zs.append(e.baseline_status())
        results.append((zs, e.to_state(), e.current_values()))
    assert _close(results[0], results[1])
