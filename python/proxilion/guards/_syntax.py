"""Translation of Python ``re`` patterns to the linear-time engine's syntax.

Guard patterns are written in Python ``re`` syntax and always compiled with
``re.IGNORECASE | re.MULTILINE``. :func:`translate` rewrites one into Rust ``regex`` syntax
(which Hyperscan also accepts) with the same meaning, or says why it cannot:

* look-around, back-references, atomic groups, possessive quantifiers and conditionals
  have no linear-time equivalent; such patterns run on Python's backtracking ``re``
  (the *fallback* engine), which the guards report;
* a pattern that can match the empty string also runs on ``re``, whose rules for
  iterating over empty matches differ from the automaton's.

Semantics kept exactly: escapes (``\\x``, ``\\u``, ``\\U``, ``\\N{...}``, octal), ``\\Z``,
``{,n}`` and literal ``{``, verbose mode (``(?x)``), the ASCII flag ``(?a)`` (ASCII ``\\w``,
``\\b``, ``\\d``, ``\\s``), scoped flags, and Python's definition of ``\\s`` (which also
counts ``\\x1c``-``\\x1f``). Every literal is emitted as a ``\\x{...}`` escape, so no
character means something else in the target syntax.

A pattern that names an invisible character (zero-width, bidi control, tag, variation
selector: the characters the normalised view removes), by itself or by escape, is
matched against the original text (``raw``) instead of the normalised view.

Hostile patterns are refused with :class:`ValueError` before any engine sees them: longer
than :data:`MAX_PATTERN_LENGTH` characters or nested deeper than :data:`MAX_NESTING`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from proxilion._reference.scan import is_invisible

__all__ = ["MAX_NESTING", "MAX_PATTERN_LENGTH", "Translation", "translate"]

#: Longest accepted pattern source, in characters.
MAX_PATTERN_LENGTH = 16_384
#: Deepest accepted nesting of groups.
MAX_NESTING = 100

try:  # Python 3.11+
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre_parse

_HEX = "0123456789abcdefABCDEF"
_OCT = "01234567"
_VERBOSE_SPACE = " \t\n\r\v\f"
_SIMPLE_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
_ASCII_CLASS_ITEMS = {
    "d": r"0-9",
    "w": r"0-9A-Za-z_",
    "s": r"\x{9}\x{a}\x{b}\x{c}\x{d}\x{20}",
}
_UNICODE_CLASS_ITEMS = {"d": r"\d", "w": r"\w", "s": r"\s\x{1c}-\x{1f}"}


@dataclass(frozen=True)
class Translation:
    """Result of :func:`translate`.

    ``regex`` is the Rust-syntax pattern, or ``None`` when only the backtracking fallback
    can run the pattern (``reason`` says why). ``raw`` is true when the pattern must see
    the original text instead of the normalised view.
    """

    source: str
    regex: str | None
    raw: bool
    reason: str | None = None

    def spec(self) -> tuple[str, str | None, bool]:
        """The ``(source, translation, raw)`` tuple that ``PatternSet`` takes."""
        return (self.source, self.regex, self.raw)


class _Fallback(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _lit(cp: int) -> str:
    return f"\\x{{{cp:x}}}"


class _Translator:
    def __init__(self, src: str) -> None:
        self.s = src
        self.i = 0
        self.out: list[str] = []
        self.raw = False
        # Flag state stack: (verbose, ascii).
        self.stack: list[tuple[bool, bool]] = []
        self.verbose = False
        self.ascii = False
        self.depth = 0

    # -- helpers -------------------------------------------------------------------------
    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def note_char(self, cp: int) -> None:
        if is_invisible(cp):
            self.raw = True

    def note_range(self, lo: int, hi: int) -> None:
        if hi - lo < 0x800 and any(is_invisible(c) for c in range(lo, hi + 1)):
            self.raw = True

    def literal(self, cp: int) -> str:
        self.note_char(cp)
        if cp < 128 and chr(cp).isalnum():
            return chr(cp)
        if self.ascii and cp >= 128:
            # ASCII-mode IGNORECASE folds ASCII letters only.
            return f"(?-i:{_lit(cp)})"
        return _lit(cp)

    # -- escapes -------------------------------------------------------------------------
    def escape_code(self, in_class: bool) -> int | str:
        """Parse after a backslash: a code point, or a shorthand letter ("d", "W", ...)."""
        d = self.peek()
        if not d:
            raise _Fallback("trailing backslash")
        self.i += 1
        if d in "dDsSwW":
            return d
        if d in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[d]
        if d == "b" and in_class:
            return 8
        if d in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[d]
            digits = self.s[self.i : self.i + n]
            if len(digits) != n or any(c not in _HEX for c in digits):
                raise _Fallback("malformed escape")
            self.i += n
            return int(digits, 16)
        if d == "N":
            end = self.s.find("}", self.i)
            if self.peek() != "{" or end < 0:
                raise _Fallback("malformed \\N escape")
            name = self.s[self.i + 1 : end]
            self.i = end + 1
            try:
                return ord(unicodedata.lookup(name))
            except (KeyError, TypeError):
                raise _Fallback("unknown character name") from None
        if d in _OCT and (in_class or d == "0"):
            digits = d
            while len(digits) < 3 and self.peek() in _OCT and self.peek():
                digits += self.peek()
                self.i += 1
            return int(digits, 8)
        if d.isdigit():
            # \ddd with three octal digits is octal; otherwise a group reference.
            three = d + self.s[self.i : self.i + 2]
            if len(three) == 3 and all(c in _OCT for c in three):
                self.i += 2
                return int(three, 8)
            raise _Fallback("back-reference")
        if d.isascii() and d.isalpha():
            # \A \Z \b \B outside classes are handled by the caller.
            self.i -= 1
            raise _Fallback("unsupported escape")
        return ord(d)

    def shorthand(self, letter: str) -> str:
        low = letter.lower()
        items = (_ASCII_CLASS_ITEMS if self.ascii else _UNICODE_CLASS_ITEMS)[low]
        return f"[^{items}]" if letter.isupper() else f"[{items}]"

    # -- classes -------------------------------------------------------------------------
    def parse_class(self) -> str:
        # self.i is just after "[".
        negate = False
        if self.peek() == "^":
            negate = True
            self.i += 1
        items: list[str] = []
        first = True
        non_ascii = False
        while True:
            c = self.peek()
            if not c:
                raise _Fallback("unterminated class")
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            lo: int | str
            if c == "\\":
                self.i += 1
                lo = self.escape_code(in_class=True)
            else:
                self.i += 1
                lo = ord(c)
            if isinstance(lo, str):
                items.append(self.shorthand(lo) if lo.isupper() else self.shorthand(lo)[1:-1])
                continue
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                c2 = self.peek()
                self.i += 1
                if c2 == "\\":
                    hi = self.escape_code(in_class=True)
                    if isinstance(hi, str):
                        raise _Fallback("bad range")
                else:
                    hi = ord(c2)
                if hi < lo:
                    raise _Fallback("bad range")
                self.note_range(lo, hi)
                non_ascii = non_ascii or hi >= 128
                items.append(f"{_lit(lo)}-{_lit(hi)}")
            else:
                self.note_char(lo)
                non_ascii = non_ascii or lo >= 128
                items.append(_lit(lo))
        if self.ascii and non_ascii:
            raise _Fallback("non-ASCII class in ASCII mode")
        return "[" + ("^" if negate else "") + "".join(items) + "]"

    # -- groups --------------------------------------------------------------------------
    def parse_flags(self) -> tuple[str, str, str]:
        """Read "(?" flags up to ":" or ")": (on, off, terminator)."""
        on = off = ""
        target = "on"
        while True:
            c = self.peek()
            self.i += 1
            if c in (":", ")"):
                return on, off, c
            if c == "-":
                target = "off"
            elif c in "aiLmsux":
                if target == "on":
                    on += c
                else:
                    off += c
            else:
                raise _Fallback("unsupported group")

    def open_group(self, at_start: bool) -> str:
        # self.i is just after "(".
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ValueError(f"pattern nests groups deeper than {MAX_NESTING} levels")
        self.stack.append((self.verbose, self.ascii))
        if self.peek() != "?":
            return "("
        nxt = self.peek(1)
        if nxt == ":":
            self.i += 2
            return "(?:"
        if nxt == "P":
            if self.peek(2) == "<":
                end = self.s.find(">", self.i)
                if end < 0:
                    raise _Fallback("malformed group name")
                self.i = end + 1
                return "("
            raise _Fallback("back-reference")
        if nxt in "=!>(" or (nxt == "<" and self.peek(2) in "=!"):
            raise _Fallback(
                {
                    "=": "look-around",
                    "!": "look-around",
                    ">": "atomic group",
                    "(": "conditional",
                }.get(nxt, "look-around")
            )
        self.i += 1
        on, off, term = self.parse_flags()
        if "m" in off:
            raise _Fallback("multiline turned off")
        if term == ")":
            # Global flags: Python requires them at the start.
            self.stack.pop()
            self.depth -= 1
            if not at_start:
                raise _Fallback("global flags not at the start")
            if "x" in on:
                self.verbose = True
            if "a" in on:
                self.ascii = True
            return "(?s)" if "s" in on else ""
        if "x" in on:
            self.verbose = True
        if "x" in off:
            self.verbose = False
        if "a" in on:
            self.ascii = True
        rust_on = "".join(c for c in on if c in "is")
        rust_off = "".join(c for c in off if c in "is")
        flags = rust_on + (("-" + rust_off) if rust_off else "")
        return f"(?{flags}:" if flags else "(?:"

    # -- main loop -----------------------------------------------------------------------
    def quantifier_suffix(self) -> str:
        if self.peek() == "?":
            self.i += 1
            return "?"
        if self.peek() == "+":
            raise _Fallback("possessive quantifier")
        return ""

    def run(self) -> str:
        s = self.s
        at_start = True
        while self.i < len(s):
            c = s[self.i]
            if self.verbose and c in _VERBOSE_SPACE:
                self.i += 1
                continue
            if self.verbose and c == "#":
                nl = s.find("\n", self.i)
                self.i = len(s) if nl < 0 else nl + 1
                continue
            self.i += 1
            if c == "(":
                if self.peek() == "?" and self.peek(1) == "#":
                    end = s.find(")", self.i)
                    if end < 0:
                        raise _Fallback("unterminated comment")
                    self.i = end + 1
                    continue
                self.out.append(self.open_group(at_start))
                at_start = at_start and self.out[-1] in ("", "(?s)")
                continue
            at_start = False
            if c == ")":
                if not self.stack:
                    raise _Fallback("unbalanced parenthesis")
                self.verbose, self.ascii = self.stack.pop()
                self.depth -= 1
                self.out.append(")")
            elif c in "*+?":
                self.out.append(c + self.quantifier_suffix())
            elif c == "{":
                m = re.match(r"(\d*)(,?)(\d*)\}", s[self.i :])
                if m and (m.group(1) or m.group(2) or m.group(3)) and (m.group(1) or m.group(2)):
                    lo = m.group(1) or "0"
                    body = f"{lo},{m.group(3)}" if m.group(2) else lo
                    self.i += m.end()
                    self.out.append("{" + body + "}" + self.quantifier_suffix())
                else:
                    self.out.append(self.literal(ord("{")))
            elif c in ".|^$":
                self.out.append(c)
            elif c == "[":
                self.out.append(self.parse_class())
            elif c == "\\":
                d = self.peek()
                if d in ("A", "Z", "b", "B"):
                    self.i += 1
                    if d == "A":
                        self.out.append(r"\A")
                    elif d == "Z":
                        self.out.append(r"\z")
                    elif self.ascii:
                        self.out.append(f"(?-u:\\{d})")
                    else:
                        self.out.append(f"\\{d}")
                    continue
                code = self.escape_code(in_class=False)
                if isinstance(code, str):
                    self.out.append(self.shorthand(code))
                else:
                    self.out.append(self.literal(code))
            else:
                self.out.append(self.literal(ord(c)))
        if self.stack:
            raise _Fallback("unbalanced parenthesis")
        return "".join(self.out)


def _min_width(source: str) -> int | None:
    try:
        width: tuple[int, int] = _sre_parse.parse(source, re.IGNORECASE | re.MULTILINE).getwidth()
    except Exception:  # the parser is private: any failure means unknown
        return None
    return width[0]


def translate(source: str) -> Translation:
    """Translate one Python ``re`` pattern (see the module docstring).

    Raises :class:`TypeError` if ``source`` is not a ``str`` and :class:`ValueError` if it
    is too long, nests too deeply, or is not a valid Python pattern.
    """
    if not isinstance(source, str):
        raise TypeError(f"pattern must be str, not {type(source).__name__}")
    if len(source) > MAX_PATTERN_LENGTH:
        raise ValueError(
            f"pattern is too long: {len(source)} characters (limit {MAX_PATTERN_LENGTH})"
        )
    try:
        re.compile(source, re.IGNORECASE | re.MULTILINE)
    except re.error as exc:
        raise ValueError(f"invalid regex pattern: {exc}") from None
    except RecursionError:
        raise ValueError(f"pattern nests groups deeper than {MAX_NESTING} levels") from None
    t = _Translator(source)
    try:
        regex = t.run()
    except _Fallback as fb:
        return Translation(source, None, t.raw or _mentions_invisible(source), fb.reason)
    if _min_width(source) == 0:
        return Translation(source, None, t.raw, "can match the empty string")
    return Translation(source, regex, t.raw)


def _mentions_invisible(source: str) -> bool:
    """Cheap raw-view test for patterns the translator gave up on."""
    if any(is_invisible(ord(c)) for c in source):
        return True
    for m in re.finditer(r"\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))", source):
        if is_invisible(int(m.group(m.lastindex or 1), 16)):
            return True
    return False
