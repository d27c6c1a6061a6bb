"""Welford and EWMA accumulators (rust/core/src/stats), on both backends, and their agreement."""

from __future__ import annotations

import math
import statistics
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion import _core, _reference

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


def test_welford_matches_statistics(impl: ModuleType) -> None:
    xs = [3.0, 1.5, 4.25, 1.0, 5.5, 9.0, 2.5, 6.0]
    w = impl.Welford()
    for x in xs:
        w.push(x)
    assert w.count == 8
    assert w.mean == pytest.approx(statistics.mean(xs), rel=1e-15)
    assert w.variance == pytest.approx(statistics.variance(xs), rel=1e-14)
    assert w.std_dev == pytest.approx(statistics.stdev(xs), rel=1e-14)
    assert w.population_variance == pytest.approx(statistics.pvariance(xs), rel=1e-14)
    assert (w.min, w.max) == (1.0, 9.0)
    assert w.z_score(w.mean) == 0.0
    assert w.z_score(w.mean + w.std_dev) == pytest.approx(1.0)


def test_welford_empty_single_and_zero_deviation(impl: ModuleType) -> None:
    w = impl.Welford()
    assert (w.count, w.mean, w.variance, w.std_dev, w.min, w.max) == (0, 0.0, 0.0, 0.0, 0.0, 0.0)
    w.push(7)
    assert (w.count, w.mean, w.variance) == (1, 7.0, 0.0)
    # The original's BaselineStats rule: zero deviation -> 0 at the mean, +inf elsewhere.
    assert w.z_score(7.0) == 0.0
    assert w.z_score(8.0) == math.inf
    assert w.z_score(6.0) == math.inf


def test_welford_stable_with_large_offset(impl: ModuleType) -> None:
    w = impl.Welford()
    w.extend(1e9 + (i % 10) * 0.1 for i in range(10_000))
    assert w.mean == pytest.approx(1e9 + 0.45, abs=1e-6)
    # naive sum of squares would lose every digit here
    assert w.variance == pytest.approx(statistics.variance([(i % 10) * 0.1 for i in range(10_000)]))


def test_welford_merge_is_exact(impl: ModuleType) -> None:
    xs = [math.sin(i) * 100 + 5 for i in range(1001)]
    whole = impl.Welford()
    whole.extend(xs)
    shards = [impl.Welford() for _ in range(3)]
    for i, x in enumerate(xs):
        shards[i % 3].push(x)
    merged = impl.Welford()
    for s in shards:
        merged.merge(s)
    assert merged.count == whole.count
    assert merged.mean == pytest.approx(whole.mean, rel=1e-12)
    assert merged.variance == pytest.approx(whole.variance, rel=1e-12)
    assert (merged.min, merged.max) == (whole.min, whole.max)
    with pytest.raises(TypeError, match="other must be Welford, not int"):
        merged.merge(3)


def test_welford_state_roundtrip_and_validation(impl: ModuleType) -> None:
    w = impl.Welford()
    w.extend([1.0, 2.0, 4.0])
    state = w.to_state()
    assert state == (3, pytest.approx(7 / 3), pytest.approx(14 / 3), 1.0, 4.0)
    back = impl.Welford.from_state(state)
    assert back.to_state() == state
    for bad in [
        (1, math.nan, 0.0, 0.0, 0.0),
        (2, 1.0, -1.0, 0.0, 2.0),
        (2, 1.0, 1.0, 3.0, 2.0),
        (0, 1.0, 0.0, 0.0, 0.0),
        (-1, 1.0, 0.0, 0.0, 0.0),
        (1, 1.0, 0.0),
        "nope",
    ]:
        with pytest.raises(ValueError, match="invalid drift state"):
            impl.Welford.from_state(bad)


@pytest.mark.parametrize(
    ("value", "exc", "msg"),
    [
        (math.nan, ValueError, "x must be a finite number, got nan"),
        (math.inf, ValueError, "x must be a finite number, got inf"),
        (10**400, ValueError, "x must be a finite number, got 1000"),
        ("1", TypeError, "x must be a number, not str"),
        (True, TypeError, "x must be a number, not bool"),
        (None, TypeError, "x must be a number, not NoneType"),
    ],
)
def test_accumulators_reject_bad_samples(
    impl: ModuleType, value: object, exc: type[Exception], msg: str
) -> None:
    for acc in (impl.Welford(), impl.Ewma(0.5)):
        with pytest.raises(exc, match=msg):
            acc.push(value)
        # extend checks every sample before adding any
        with pytest.raises(exc, match=msg):
            acc.extend([1.0, value])
        assert acc.count == 0


def test_ewma_recurrence(impl: ModuleType) -> None:
    e = impl.Ewma(0.5)
    e.push(4.0)
    assert (e.mean, e.variance) == (4.0, 0.0)
    e.push(8.0)
    assert (e.mean, e.variance, e.count) == (6.0, 4.0, 2)
    assert e.std_dev == 2.0
    span = impl.Ewma.with_span(9)
    assert span.alpha == 0.2
    for _ in range(200):
        span.push(1.0)
    for _ in range(200):
        span.push(11.0)
    assert span.mean == pytest.approx(11.0, abs=1e-9)


def test_ewma_validation_merge_and_state(impl: ModuleType) -> None:
    for bad in (0.0, 1.5, -0.1, math.nan):
        with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\]"):
            impl.Ewma(bad)
    with pytest.raises(TypeError, match="alpha must be a number, not str"):
        impl.Ewma("0.5")
    a, b = impl.Ewma(0.2), impl.Ewma(0.2)
    a.extend([1.0, 1.0, 1.0])
    b.push(5.0)
    a.merge(b)
    assert (a.count, a.mean, a.variance) == (4, 2.0, 3.0)
    with pytest.raises(
        ValueError, match=r"cannot merge EWMAs with different alpha \(0.2 and 0.3\)"
    ):
        a.merge(impl.Ewma(0.3))
    state = a.to_state()
    assert state == (0.2, 4, 2.0, 3.0)
    assert impl.Ewma.from_state(state).to_state() == state
    with pytest.raises(ValueError, match="invalid drift state"):
        impl.Ewma.from_state((0.2, 0, 1.0, 0.0))
    with pytest.raises(ValueError, match="invalid drift state"):
        impl.Ewma.from_state((0.2, 1, 1.0, -1.0))


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, max_size=60), st.lists(finite, max_size=60), finite)
def test_native_matches_reference(xs: list[float], ys: list[float], probe: float) -> None:
    """Same sequence of IEEE operations: the twins agree to the last bit (tolerance 0)."""
    out = []
    for mod in (_core, _reference):
        a, b = mod.Welford(), mod.Welford()
        a.extend(xs)
        b.extend(ys)
        a.merge(b)
        e = mod.Ewma.with_span(10)
        e.extend(xs + ys)
        out.append((a.to_state(), a.std_dev, a.z_score(probe), e.to_state()))
    assert out[0] == out[1]
