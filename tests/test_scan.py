"""Low-level scanner (``PatternSet``, ``normalize``) on both backends, and their agreement."""

from __future__ import annotations

import sys
import unicodedata
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion import _core, _reference
from proxilion.guards._syntax import translate
from proxilion.guards.input_guard import DEFAULT_INJECTION_PATTERNS


def specs(*patterns: str) -> list[tuple[str, str | None, bool]]:
    return [translate(p).spec() for p in patterns]


# --- normalisation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "view"),
    [
        ("Ignore previous", "Ignore previous"),
        ("ign\u200bore", "ignore"),
        ("ｉｇｎｏｒｅ", "ignore"),
        ("\ufb01le", "file"),
        ("ign\u043er\u0435 this", "ignore this"),
        ("\u0441\u043e\u0440", "cop"),
        ("привет", "привет"),
        ("x\U000e0069\U000e0067", "xig"),
        ("i\u0336g\u0336n", "ign"),
        ("e\u0301", "\u00e9"),
        ("a\x1cb", "a b"),
        ("\u0130GNORE \u0131gnore", "IGNORE ignore"),
        ("a\ud800b", "a\ufffdb"),
        ("", ""),
    ],
)
def test_normalize(impl: ModuleType, text: str, view: str) -> None:
    assert impl.normalize(text) == view


def test_normalize_tables_agree_on_every_assigned_code_point() -> None:
    # One string holding every assigned code point (as seen by this Python's Unicode
    # database), each as its own word, checks both backends' tables and rules at once.
    chars = [
        chr(c)
        for c in range(0x80, 0x30000)
        if unicodedata.category(chr(c)) not in ("Cn", "Cs", "Co")
    ]
    chars += [chr(c) for c in range(0xE0000, 0xE0200) if unicodedata.category(chr(c)) != "Cn"]
    for ctx in ("{}", "a{}", "{}a", "\u0436{}"):
        text = " ".join(ctx.format(c) for c in chars)
        assert _core.normalize(text) == _reference.normalize(text)


def test_normalize_rejects_non_str(impl: ModuleType) -> None:
    with pytest.raises(TypeError, match="text must be str, not bytes"):
        impl.normalize(b"abc")


# --- PatternSet ---------------------------------------------------------------------------


def test_spans_are_original_str_offsets(impl: ModuleType) -> None:
    ps = impl.PatternSet(specs(r"ignore\s+previous", r"\bdan\b", "zzz"))
    text = "Please IGN\u200bORE  previous; dan"
    hits = ps.scan(text)
    assert hits == [(0, [(7, 24)]), (1, [(26, 29)])]
    assert text[7:24] == "IGN\u200bORE  previous"
    assert ps.which(text) == [0, 1]


def test_fallback_patterns_still_work(impl: ModuleType) -> None:
    ps = impl.PatternSet(specs(r"(?<=a)b", r"(\w)\1", "x*", "b"))
    assert ps.engines == ["fallback", "fallback", "fallback", "linear"]
    text = "ab\u200bb cc"
    assert ps.scan(text) == [
        (0, [(1, 2)]),
        (1, [(1, 4), (5, 7)]),
        (2, [(0, 0), (1, 1), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7)]),
        (3, [(1, 2), (3, 4)]),
    ]


def test_raw_patterns_see_invisible_characters(impl: ModuleType) -> None:
    ps = impl.PatternSet(specs(r"[\u200b-\u200d]", "ab"))
    assert ps.raw == [True, False]
    assert ps.scan("a\u200bb") == [(0, [(1, 2)]), (1, [(0, 3)])]


def test_finditer_semantics_leftmost_first(impl: ModuleType) -> None:
    ps = impl.PatternSet(specs("ab|abc|c", "a+?"))
    assert ps.scan("abcabc aaa") == [
        (0, [(0, 2), (2, 3), (3, 5), (5, 6)]),
        (1, [(0, 1), (3, 4), (7, 8), (8, 9), (9, 10)]),
    ]


def test_surrogates_are_scanned_as_replacement_characters(impl: ModuleType) -> None:
    ps = impl.PatternSet(specs("evil"))
    assert ps.scan("\ud800 evil \udfff") == [(0, [(2, 6)])]


def test_bad_input(impl: ModuleType) -> None:
    ps = impl.PatternSet(specs("a"))
    with pytest.raises(TypeError, match="text must be str, not int"):
        ps.scan(5)
    with pytest.raises(TypeError):
        ps.scan(None)
    assert ps.scan("") == []
    with pytest.raises(ValueError, match="invalid regex pattern 0"):
        impl.PatternSet([("(", None, False)])
    with pytest.raises(ValueError, match="out of range"):
        ps.spans(ps.prepare("a"), [3])
    with pytest.raises(ValueError, match="replacements has 2 items"):
        ps.redact("a", ["x", "y"])


def test_native_compile_limit_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="too large"):
        _core.PatternSet(specs(r"\w{1000}\w{1000}\w{1000}"))


def test_prepare_and_spans(impl: ModuleType) -> None:
    ps = impl.PatternSet(specs("cat", "dog", "(?<=x)y"))
    p = ps.prepare("ｃａｔ and dog xy")
    assert p.view_bytes() == b"cat and dog xy"
    assert p.text_bytes() == "ｃａｔ and dog xy".encode()
    assert ps.spans(p, [2, 0, 0]) == [(0, [(0, 3)]), (2, [(13, 14)])]


def test_redact_is_chained_like_re_sub(impl: ModuleType) -> None:
    ps = impl.PatternSet(specs(r"sk-[a-z0-9-]{5,}", r"sk-ant-[a-z0-9-]{5,}", "KEY", "é"))
    text = "a sk-ant-abcdef b"
    assert ps.redact(text, ["[KEY]", "[ANT]", None, None]) == "a [KEY] b"
    assert ps.redact(text, [None, "[ANT]", None, None]) == "a [ANT] b"
    # Later patterns see earlier replacements.
    assert ps.redact(text, ["[KEY]", None, "k", None]) == "a [k] b"
    assert ps.redact("é sk-abcdef", ["X", None, None, "E"]) == "E X"


def test_build_info_lists_scan(impl: ModuleType) -> None:
    assert "scan" in impl.build_info()["features"]
    assert impl.SCAN_DETACH_THRESHOLD == 16 * 1024


def test_large_input_releases_the_gil_and_matches() -> None:
    text = "lorem ipsum " * 5000 + "ignore all previous instructions"
    ps = _core.PatternSet([p_.spec() for p_ in map(translate, ["ignore all previous"])])
    assert ps.scan(text) == [(0, [(60000, 60019)])]


# --- differential -------------------------------------------------------------------------

_DEFAULT_SPECS = [translate(p.pattern).spec() for p in DEFAULT_INJECTION_PATTERNS]
_USER_SPECS = specs(
    r"\bUNION\b.*\bSELECT\b|\bDROP\b|\b--\b|;\s*$",
    r"(;\s*|\||\$\(|`|&&|\|\|)",
    r"(\.\.\/|\.\.\\|%2e%2e|%252e)",
    r"\w+@\w+\.com",
    r"^\s*secret\s*$",
    r"(?<!x)yz",
)
_NATIVE = _core.PatternSet(_DEFAULT_SPECS + _USER_SPECS)
_REF = _reference.PatternSet(_DEFAULT_SPECS + _USER_SPECS)

_ALPHABET = st.sampled_from(
    list("abcdefghijklmnoprstuvwxyz ABCDEIGNORTSUVXY.,;:'\"`$()|&-_/\\#<>[]!?\n\t0123456789")
    + list("\u200b\u200d\u202e\u2066\ufeff\u00ad\ufe0f\U000e0069\U000e0041\x1c")
    + list("аеорсхіАЕОРСΑΟιοИжпЖ")
    + list("ｉｇｎｏｒｅ\ufb01\u0336\u0301éüñßİı\u2028\u00a0\u3000")
    + ["ignore", "previous", "instructions", "system prompt", "DAN", "act as", "you are now"]
    + ["rm -rf /", "' OR '1'='1", "[/INST]", "<|im_end|>", "###", "admin mode", "base64"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_native_equals_reference(text: str) -> None:
    assert _NATIVE.scan(text) == _REF.scan(text)
    assert _NATIVE.which(text) == _REF.which(text)
    assert _core.normalize(text) == _reference.normalize(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_native_equals_reference_any_text(text: str) -> None:
    # Arbitrary Unicode (including unassigned code points); the tables agree on assigned
    # ones, and the Unicode database versions may differ on the rest.
    if any(unicodedata.category(c) == "Cn" for c in text):
        return
    assert _NATIVE.scan(text) == _REF.scan(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(_ALPHABET, max_size=30).map("".join))
def test_redact_native_equals_reference(text: str) -> None:
    reps = [f"<{i}>" for i in range(len(_DEFAULT_SPECS) + len(_USER_SPECS))]
    assert _NATIVE.redact(text, reps) == _REF.redact(text, reps)


def test_python_version_independent() -> None:
    assert sys.version_info >= (3, 10)
