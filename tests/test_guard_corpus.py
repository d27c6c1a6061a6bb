"""Evaluation of the default input patterns on tests/data/guard_corpus.json.

Prints detection rate per attack category and false-positive rate per benign kind (run
with ``-s`` to see the table; docs/guards.md quotes it), and asserts the floors.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from proxilion import _core, _reference
from proxilion.guards import InputGuard
from proxilion.guards._syntax import translate
from proxilion.guards.input_guard import DEFAULT_INJECTION_PATTERNS

CORPUS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "guard_corpus.json").read_text("utf-8")
)


@pytest.fixture(autouse=True)
def _quiet() -> Any:
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.backend
def test_detection_and_false_positive_rates() -> None:
    g = InputGuard()
    rows = []
    for category, texts in CORPUS["attacks"].items():
        detected = [not g.check(t).passed for t in texts]
        in_category = [any(m["category"] == category for m in g.check(t).matches) for t in texts]
        rows.append((category, len(texts), sum(detected), sum(in_category)))
    print("\n| attack category | n | detected | by its own pattern |")
    for cat, n, d, c in rows:
        print(f"| {cat} | {n} | {d / n:.0%} | {c / n:.0%} |")
        assert d / n >= 0.9, cat
        assert c / n >= 0.8, cat
    print("\n| benign kind | n | false positives |")
    total_fp = 0
    for kind, texts in CORPUS["benign"].items():
        fps = [t for t in texts if not g.check(t).passed]
        total_fp += len(fps)
        print(f"| {kind} | {len(texts)} | {len(fps) / len(texts):.0%} |")
        assert len(fps) / len(texts) <= 0.05, (kind, fps)
    n_benign = sum(len(v) for v in CORPUS["benign"].values())
    assert total_fp / n_benign <= 0.02


def test_corpus_native_equals_reference() -> None:
    specs = [translate(p.pattern).spec() for p in DEFAULT_INJECTION_PATTERNS]
    native, ref = _core.PatternSet(specs), _reference.PatternSet(specs)
    texts = [t for group in ("attacks", "benign") for v in CORPUS[group].values() for t in v]
    for t in texts:
        assert native.scan(t) == ref.scan(t), t


def test_corpus_is_nontrivial() -> None:
    assert len(CORPUS["attacks"]) == 14
    assert sum(len(v) for v in CORPUS["attacks"].values()) >= 150
    assert sum(len(v) for v in CORPUS["benign"].values()) >= 90
