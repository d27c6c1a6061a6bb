"""Translation of Python re patterns to the linear engine's syntax."""

from __future__ import annotations

import pytest

from proxilion import _core, _reference
from proxilion.guards._syntax import MAX_PATTERN_LENGTH, translate


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (r"(?=a)b", "look-around"),
        (r"(?<!a)b", "look-around"),
        (r"(a)\1", "back-reference"),
        (r"(?P<x>a)(?P=x)", "back-reference"),
        (r"(?>ab)c", "atomic group"),
        (r"a++", "possessive quantifier"),
        (r"(a)?(?(1)b|c)", "conditional"),
        (r"a*", "can match the empty string"),
        (r"(?-m:^a$)", "multiline turned off"),
    ],
)
def test_fallback_reasons(source: str, reason: str) -> None:
    t = translate(source)
    assert t.regex is None and t.reason == reason


@pytest.mark.parametrize(
    ("source", "text", "spans"),
    [
        (r"a{,2}b", "aaab", [(1, 4)]),
        (r"x{y}", "x{y}", [(0, 4)]),
        (r"\x41\u0042\U00000043\N{LATIN SMALL LETTER D}\101", "abcdA", [(0, 5)]),
        (r"end\Z", "end\nend", [(4, 7)]),
        ("(?x) a  b  # comment\n c", "abc", [(0, 3)]),
        (r"(?x)[ ]x", " x", [(0, 2)]),
        (r"(?a)café", "CAFÉ café", [(5, 9)]),
        (r"(?a:\w+)", "ab é", [(0, 2)]),
        (r"\s+", "a\x1c\tb", [(1, 3)]),
        (r"[]a]+", "]a]", [(0, 3)]),
        (r"[\d\-x]+", "1-x2", [(0, 4)]),
        (r"(?s)a.b", "a\nb", [(0, 3)]),
        (r"(?i:A)(?-i:B)", "ab aB", [(3, 5)]),
        (r"a(?#note)b", "ab", [(0, 2)]),
        (r"a&&b|~~", "a&&b ~~", [(0, 4), (5, 7)]),
        (r"\.\*\$", ".*$", [(0, 3)]),
    ],
)
def test_translation_keeps_python_semantics(
    source: str, text: str, spans: list[tuple[int, int]]
) -> None:
    t = translate(source)
    assert t.regex is not None, t.reason
    for mod in (_core, _reference):
        assert mod.PatternSet([t.spec()]).scan(text) == [(0, spans)]


def test_raw_detection() -> None:
    assert translate(r"[\u200b\u200c]").raw
    assert translate("\u202e").raw
    assert translate(r"\U000e0041").raw
    assert not translate(r"[^a-z]").raw
    assert not translate(r"zero width").raw


def test_errors() -> None:
    with pytest.raises(TypeError, match="pattern must be str, not bytes"):
        translate(b"x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid regex pattern"):
        translate("(")
    with pytest.raises(ValueError, match="pattern is too long"):
        translate("a" * (MAX_PATTERN_LENGTH + 1))
    with pytest.raises(ValueError, match="nests groups deeper"):
        translate("(" * 101 + ")" * 101)
    assert translate("(" * 100 + "a" + ")" * 100).regex is not None
