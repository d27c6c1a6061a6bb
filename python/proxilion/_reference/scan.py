"""Reference twin of ``rust/core/src/scan`` and ``rust/python/src/scan.rs``.

Same normalised view, same ``PatternSet`` interface and results, with Python's ``re`` as
the engine for every pattern. Character tables here must equal the Rust ones
(``rust/core/src/scan/tables.rs``); a test compares them through :func:`normalize`.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from proxilion._reference.guard import GuardResult, Hits, verdict_with

__all__ = [
    "CONFUSABLES",
    "REMOVED",
    "SCAN_DETACH_THRESHOLD",
    "PatternSet",
    "Prepared",
    "is_invisible",
    "normalize",
]

#: Same constant as the native module (the reference never releases the GIL).
SCAN_DETACH_THRESHOLD = 16 * 1024

#: Inclusive code-point ranges removed from the view.
REMOVED: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF9, 0xFFFB),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE001F),
    (0xE007F, 0xE007F),
    (0xE0100, 0xE01EF),
)
_REMOVED_LO = [lo for lo, _ in REMOVED]
TAG_FIRST = 0xE0020
TAG_LAST = 0xE007E

#: Look-alike letters mapped to the ASCII letter they imitate.
CONFUSABLES: dict[str, str] = {
    "\u0130": "I", "\u0131": "i", "\u0237": "j", "\u0251": "a", "\u0261": "g",
    "\u0262": "g", "\u0269": "i", "\u026a": "i", "\u0274": "n", "\u0280": "r",
    "\u028f": "y", "\u0299": "b", "\u029c": "h", "\u029f": "l",
    "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u0396": "Z", "\u0397": "H",
    "\u0399": "I", "\u039a": "K", "\u039c": "M", "\u039d": "N", "\u039f": "O",
    "\u03a1": "P", "\u03a4": "T", "\u03a5": "Y", "\u03a7": "X",
    "\u03b1": "a", "\u03b5": "e", "\u03b9": "i", "\u03ba": "k", "\u03bd": "v",
    "\u03bf": "o", "\u03c1": "p", "\u03c5": "u", "\u03c7": "x",
    "\u0405": "S", "\u0406": "I", "\u0408": "J", "\u0410": "A", "\u0412": "B",
    "\u0415": "E", "\u041a": "K", "\u041c": "M", "\u041d": "H", "\u041e": "O",
    "\u0420": "P", "\u0421": "C", "\u0422": "T", "\u0423": "Y", "\u0425": "X",
    "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c",
    "\u0443": "y", "\u0445": "x", "\u0455": "s", "\u0456": "i", "\u0458": "j",
    "\u0461": "w", "\u0474": "V", "\u0475": "v", "\u04ae": "Y", "\u04af": "y",
    "\u04bb": "h", "\u04c0": "I", "\u04cf": "l", "\u0501": "d", "\u051b": "q",
    "\u051d": "w",
    "\u0570": "h", "\u0578": "n", "\u057d": "u", "\u0581": "g", "\u0585": "o",
    "\u13a0": "D", "\u13a1": "R", "\u13a2": "T", "\u13a9": "Y", "\u13aa": "A",
    "\u13ab": "J", "\u13ac": "E", "\u13b3": "W", "\u13b7": "M", "\u13bb": "H",
    "\u13c0": "G", "\u13c3": "Z", "\u13cf": "b", "\u13da": "S", "\u13de": "L",
    "\u13df": "C", "\u13e2": "P", "\u13e6": "K",
    "\u1d00": "a", "\u1d04": "c", "\u1d05": "d", "\u1d07": "e", "\u1d0a": "j",
    "\u1d0b": "k", "\u1d0d": "m", "\u1d0f": "o", "\u1d18": "p", "\u1d1b": "t",
    "\u1d1c": "u", "\u1d20": "v", "\u1d21": "w", "\u1d22": "z",
    "\ua730": "f", "\ua731": "s",
}  # fmt: skip
_WORD_SEPARATORS = frozenset("\x85\u1680\u2028\u2029")
_SPACE_CONTROLS = frozenset("\x1c\x1d\x1e\x1f")
_SPACE_TABLE = str.maketrans(dict.fromkeys("\x1c\x1d\x1e\x1f", " "))
_SURROGATES = re.compile("[\ud800-\udfff]")
_FLAGS = re.IGNORECASE | re.MULTILINE


def is_invisible(cp: int) -> bool:
    """True if code point ``cp`` is removed from (or, for tags, rewritten in) the view."""
    if TAG_FIRST <= cp <= TAG_LAST:
        return True
    k = bisect.bisect_right(_REMOVED_LO, cp) - 1
    return k >= 0 and REMOVED[k][0] <= cp <= REMOVED[k][1]


def _text(text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    if not text.isascii() and _SURROGATES.search(text):
        return _SURROGATES.sub("\ufffd", text)
    return text


def _is_separator(c: str) -> bool:
    if c.isascii():
        return not c.isalpha()
    return c in _WORD_SEPARATORS


class _View:
    """Normalised view: ``text`` and, unless identity, per-character original ranges."""

    __slots__ = ("map", "text")

    def __init__(self, text: str) -> None:
        if text.isascii():
            self.map: list[tuple[int, int]] | None = None
            self.text = text.translate(_SPACE_TABLE) if _has_space_controls(text) else text
            return
        out: list[str] = []
        ranges: list[tuple[int, int]] = []
        cluster: list[str] = []
        cstart = cend = 0

        def flush() -> None:
            if not cluster:
                return
            if len(cluster) == 1 and cluster[0].isascii():
                norm = cluster[0]
            else:
                norm = unicodedata.normalize("NFKC", "".join(cluster))
            strip = bool(norm) and norm[0].isascii()
            for ch in norm:
                if strip and not ch.isascii() and unicodedata.combining(ch):
                    continue
                out.append(" " if ch in _SPACE_CONTROLS else ch)
                ranges.append((cstart, cend))

        for i, ch in enumerate(text):
            cp = ord(ch)
            if TAG_FIRST <= cp <= TAG_LAST:
                ch = chr(cp - 0xE0000)
            elif is_invisible(cp):
                continue
            if not ch.isascii() and cluster and unicodedata.combining(ch):
                cluster.append(ch)
                cend = i + 1
                continue
            flush()
            cluster = [ch]
            cstart, cend = i, i + 1
        flush()
        if any(c in CONFUSABLES for c in out):
            out = _map_confusables(out)
        self.text = "".join(out)
        self.map = ranges

    def map_span(self, start: int, end: int, orig_len: int) -> tuple[int, int]:
        m = self.map
        if m is None:
            return (start, end)
        n = len(m)
        if start >= end:
            p = m[start][0] if start < n else orig_len
            return (p, p)
        s = m[start][0] if start < n else orig_len
        e = m[end - 1][1] if end - 1 < n else orig_len
        return (s, e)


def _has_space_controls(text: str) -> bool:
    return any(c in text for c in _SPACE_CONTROLS)


def _map_confusables(chars: list[str]) -> list[str]:
    out: list[str] = []
    i, n = 0, len(chars)
    while i < n:
        if _is_separator(chars[i]):
            out.append(chars[i])
            i += 1
            continue
        j = i
        has_ascii = False
        all_conf = True
        while j < n and not _is_separator(chars[j]):
            c = chars[j]
            if c.isascii():
                has_ascii = True
            elif c not in CONFUSABLES:
                all_conf = False
            j += 1
        if has_ascii or all_conf:
            out.extend(CONFUSABLES.get(c, c) for c in chars[i:j])
        else:
            out.extend(chars[i:j])
        i = j
    return out


def normalize(text: str) -> str:
    """The normalised view of ``text`` that guard patterns are matched against."""
    return _View(_text(text)).text


class Prepared:
    """A text prepared for external engines (see :meth:`PatternSet.prepare`)."""

    __slots__ = ("_text", "_view")

    def __init__(self, text: str, view: _View) -> None:
        self._text = text
        self._view = view

    def view_bytes(self) -> bytes:
        """The normalised view as UTF-8 bytes."""
        return self._view.text.encode("utf-8")

    def text_bytes(self) -> bytes:
        """The original text (surrogates replaced) as UTF-8 bytes."""
        return self._text.encode("utf-8")


class PatternSet:
    """A compiled set of patterns; see ``proxilion._core.PatternSet``."""

    __slots__ = ("_compiled", "_engines", "_raw", "_sources")

    def __init__(self, specs: Sequence[tuple[str, str | None, bool]]) -> None:
        compiled: list[re.Pattern[str]] = []
        for i, (source, _translation, _raw) in enumerate(specs):
            try:
                compiled.append(re.compile(source, _FLAGS))
            except re.error as exc:
                raise ValueError(f"invalid regex pattern {i}: {exc}") from None
        self._sources = [s[0] for s in specs]
        self._raw = [bool(s[2]) for s in specs]
        self._engines = ["linear" if s[1] is not None else "fallback" for s in specs]
        self._compiled = compiled

    def __len__(self) -> int:
        return len(self._compiled)

    def __repr__(self) -> str:
        fb = self._engines.count("fallback")
        return f"PatternSet({len(self)} patterns, {len(self) - fb} linear, {fb} fallback)"

    @property
    def sources(self) -> list[str]:
        return list(self._sources)

    @property
    def engines(self) -> list[str]:
        return list(self._engines)

    @property
    def raw(self) -> list[bool]:
        return list(self._raw)

    def _hits(self, text: str, view: _View | None, only: Sequence[int] | None) -> Hits:
        out: Hits = []
        orig_len = len(text)
        indices = range(len(self._compiled)) if only is None else only
        for i in indices:
            pat = self._compiled[i]
            if self._raw[i]:
                spans = [m.span() for m in pat.finditer(text)]
            else:
                if view is None:
                    view = _View(text)
                spans = [view.map_span(*m.span(), orig_len) for m in pat.finditer(view.text)]
            if spans:
                out.append((i, spans))
        return out

    def scan(self, text: str) -> Hits:
        """``[(pattern_index, [(start, end), ...]), ...]`` for every matching pattern."""
        return self._hits(_text(text), None, None)

    def verdict(
        self, text: object, context: Any, threshold: float, fail_action: Any, allow: Any
    ) -> Hits | GuardResult:
        """The clean-text fast path of a guard check (see ``_core.PatternSet.verdict``)."""
        result: Hits | GuardResult = verdict_with(
            self.scan, GuardResult, text, context, threshold, fail_action, allow
        )
        return result

    def which(self, text: str) -> list[int]:
        """Indices of the patterns that match ``text`` anywhere, ascending."""
        t = _text(text)
        view: _View | None = None
        hit = []
        for i, pat in enumerate(self._compiled):
            if self._raw[i]:
                found = pat.search(t) is not None
            else:
                if view is None:
                    view = _View(t)
                found = pat.search(view.text) is not None
            if found:
                hit.append(i)
        return hit

    def prepare(self, text: str) -> Prepared:
        """Normalise ``text`` once, for an external engine."""
        t = _text(text)
        return Prepared(t, _View(t))

    def spans(self, prepared: Prepared, indices: Sequence[int]) -> Hits:
        """Like :meth:`scan`, restricted to ``indices``, on a prepared text."""
        idx = sorted(set(indices))
        for i in idx:
            if not 0 <= i < len(self._compiled):
                raise ValueError(
                    f"pattern index {i} out of range for a set of {len(self._compiled)}"
                )
        return self._hits(prepared._text, prepared._view, idx)

    def redact(self, text: str, replacements: Sequence[str | None]) -> str:
        """Chained literal replacement, pattern by pattern in list order."""
        n = len(self._compiled)
        if len(replacements) != n:
            raise ValueError(
                f"replacements has {len(replacements)} items for a set of {n} patterns"
            )
        cur = _text(text)
        nxt = 0
        hits = self.scan(cur)
        while True:
            found = next(
                ((i, s) for i, s in hits if i >= nxt and replacements[i] is not None), None
            )
            if found is None:
                break
            i, spans = found
            rep = replacements[i] or ""
            parts = []
            last = 0
            for s, e in spans:
                parts.append(cur[last:s])
                parts.append(rep)
                last = e
            parts.append(cur[last:])
            cur = "".join(parts)
            nxt = i + 1
            if nxt >= n:
                break
            hits = self.scan(cur)
        return cur
