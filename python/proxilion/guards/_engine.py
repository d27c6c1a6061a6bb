"""Compiled pattern sets behind the guards, and the engine choice.

A guard compiles all its patterns into one ``PatternSet`` (native ``proxilion._core`` or
the pure-Python twin), rebuilt whenever its pattern list changes. The ``engine`` option
of a guard picks the implementation:

* ``"auto"`` (default): the active backend (``proxilion._backend.impl``);
* ``"native"`` / ``"reference"``: that backend explicitly;
* ``"hyperscan"``: Intel Hyperscan (the optional ``hyperscan`` package) decides which
  patterns match, in one pass over the normalised view; the native set then computes the
  spans of those patterns only. Patterns Hyperscan cannot compile, and fallback patterns,
  are checked by the native set.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from types import ModuleType
from typing import Any, Protocol, SupportsIndex, TypeVar, overload

from proxilion._reference.guard import Hits, verdict_with
from proxilion.guards._syntax import Translation, translate

__all__ = [
    "ENGINES",
    "CompiledSet",
    "PatternList",
    "cached_translate",
    "compile_set",
    "validate_engine",
    "validate_threshold",
]


#: Accepted values of a guard's ``engine`` option.
ENGINES = ("auto", "native", "reference", "hyperscan")


@lru_cache(maxsize=4096)
def cached_translate(source: str) -> Translation:
    """:func:`~proxilion.guards._syntax.translate`, memoised per source string."""
    return translate(source)


def validate_threshold(threshold: object) -> float:
    """Check a guard threshold: a real number in [0, 1] (NaN is rejected)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"threshold must be a number, not {type(threshold).__name__}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("Threshold must be between 0.0 and 1.0")
    return float(threshold)


def validate_severity(name: str, severity: object) -> float:
    """Check a pattern severity: a real number in [0, 1] (NaN is rejected)."""
    if isinstance(severity, bool) or not isinstance(severity, (int, float)):
        raise TypeError(
            f"severity of pattern {name!r} must be a number, not {type(severity).__name__}"
        )
    if not 0.0 <= severity <= 1.0:
        raise ValueError(
            f"severity of pattern {name!r} must be between 0.0 and 1.0, got {severity!r}"
        )
    return float(severity)


def validate_engine(engine: object) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    return str(engine)


def _backend(engine: str) -> ModuleType:
    if engine == "reference":
        from proxilion import _reference

        return _reference
    if engine in ("native", "hyperscan"):
        from proxilion import _core

        return _core
    from proxilion._backend import impl

    return impl


class Scanner(Protocol):
    def scan(self, text: str) -> Hits: ...


class CompiledSet:
    """One compiled pattern set: ``scan(text)`` plus what each pattern runs on."""

    __slots__ = ("engines", "pattern_set", "redact", "scan", "translations", "verdict")

    def __init__(
        self,
        scan: Callable[[str], Hits],
        redact: Callable[[str, list[str | None]], str],
        translations: list[Translation],
        engines: list[str],
        pattern_set: Any = None,
    ) -> None:
        self.scan = scan
        #: The active backend's ``PatternSet`` when this set runs on it (``InputChecker``
        #: takes it), else ``None``.
        self.pattern_set = pattern_set
        #: ``verdict(text, context, threshold, fail_action, allow)``: the hits, or on a
        #: clean text the finished ``GuardResult`` (``PatternSet.verdict``).
        self.verdict: Callable[[str, Any, float, Any, Any], Any] = (
            pattern_set.verdict if pattern_set is not None else _verdict_of(scan)
        )
        self.redact = redact
        self.translations = translations
        self.engines = engines


# Compiling a pattern set is the expensive part of building a guard (about 0.1 s for the
# default input patterns natively; seconds for a Hyperscan database), and compiled sets are
# immutable and safe to share between threads, so guards with the same patterns share one.
# Bounded, least recently used first out.
_CACHE_SIZE = 64
_CACHE: OrderedDict[tuple[str, tuple[str, ...]], CompiledSet] = OrderedDict()
_CACHE_LOCK = threading.Lock()


#: Flags of every guard pattern under Python ``re`` (the twin and ``sanitize_func`` matches).
RE_FLAGS = re.IGNORECASE | re.MULTILINE


def compile_user_pattern(name: str, pattern: object) -> re.Pattern[str]:
    """Check and compile one guard pattern (input or output): ``TypeError`` for a non-str,
    ``ValueError`` naming the pattern for bad syntax, hostile nesting, or a pattern the
    native engine's translator rejects."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern of {name!r} must be str, not {type(pattern).__name__}")
    try:
        compiled = re.compile(pattern, RE_FLAGS)
    except re.error as exc:
        raise ValueError(f"Invalid regex pattern for {name}: {exc}") from None
    except RecursionError:
        raise ValueError(f"Invalid regex pattern for {name}: nested too deeply") from None
    try:
        cached_translate(pattern)
    except ValueError as exc:
        raise ValueError(f"Invalid regex pattern for {name}: {exc}") from None
    return compiled


def compile_set(sources: Sequence[str], engine: str) -> CompiledSet:
    """Compile ``sources`` (Python ``re`` syntax) for ``engine`` (shared per pattern list)."""
    key = (engine, tuple(sources))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    built = _compile_set(sources, engine)
    with _CACHE_LOCK:
        _CACHE[key] = built
        _CACHE.move_to_end(key)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return built


def _compile_set(sources: Sequence[str], engine: str) -> CompiledSet:
    translations = [cached_translate(s) for s in sources]
    mod = _backend(engine)
    pset = mod.PatternSet([t.spec() for t in translations])
    engines: list[str] = list(pset.engines)
    if engine == "hyperscan":
        hs = _HyperscanScanner(pset, translations)
        return CompiledSet(
            hs.scan, pset.redact, translations, [hs.engine_of(i, e) for i, e in enumerate(engines)]
        )
    from proxilion._backend import impl

    # verdict() builds the backend's GuardResult; a guard on another engine than the active
    # backend gets the public class through the Python path.
    if mod is impl:
        return CompiledSet(pset.scan, pset.redact, translations, engines, pset)
    return CompiledSet(pset.scan, pset.redact, translations, engines)


def _verdict_of(scan: Callable[[str], Hits]) -> Callable[[str, Any, float, Any, Any], Any]:
    """``PatternSet.verdict`` for an engine that only has ``scan`` (Hyperscan), or a set
    compiled for another backend than the active one (the result is the public class)."""
    from proxilion._backend import impl

    def verdict(text: str, context: Any, threshold: float, fail_action: Any, allow: Any) -> Any:
        return verdict_with(scan, impl.GuardResult, text, context, threshold, fail_action, allow)

    return verdict


def split_alternatives(regex: str) -> list[str]:
    """Top-level alternatives of a translated (Rust-syntax) pattern."""
    parts: list[str] = []
    depth = 0
    start = 0
    in_class = 0
    i = 0
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            if c == "[":
                in_class += 1
            elif c == "]":
                in_class -= 1
        elif c == "[":
            in_class = 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(regex[start:i])
            start = i + 1
        i += 1
    parts.append(regex[start:])
    return parts


def _hs_expression(regex: str) -> tuple[bytes, int] | None:
    """Hyperscan expression and flags for a translated pattern, or None if unsuitable."""
    import hyperscan

    flags = (
        hyperscan.HS_FLAG_CASELESS
        | hyperscan.HS_FLAG_MULTILINE
        | hyperscan.HS_FLAG_UTF8
        | hyperscan.HS_FLAG_SINGLEMATCH
    )
    if "(?-u:" in regex:
        # ASCII word boundaries: Hyperscan's default (non-UCP) \b. Unicode classes would need
        # UCP, which would change those boundaries, so such a mix stays native.
        plain = regex.replace(r"(?-u:\b)", r"\b").replace(r"(?-u:\B)", r"\B")
        if any(
            s in plain.replace(r"\b", "").replace(r"\B", "")
            for s in (r"\w", r"\d", r"\s", r"\W", r"\D", r"\S")
        ):
            return None
        return plain.encode(), flags
    return regex.encode(), flags | hyperscan.HS_FLAG_UCP


class _HyperscanScanner:
    def __init__(self, pset: Any, translations: list[Translation]) -> None:
        try:
            import hyperscan
        except ImportError as exc:  # pragma: no cover - hyperscan is a dev dependency
            raise ImportError(
                "engine='hyperscan' needs the optional 'hyperscan' package "
                "(pip install 'proxilion[hyperscan]')"
            ) from exc
        self._pset = pset
        self._hs = hyperscan
        native: list[int] = []
        groups: dict[bool, list[tuple[int, bytes, int]]] = {False: [], True: []}
        for i, (t, eng) in enumerate(zip(translations, pset.engines, strict=True)):
            exprs = self._expressions(t.regex) if t.regex is not None and eng == "linear" else None
            if exprs is None:
                native.append(i)
                continue
            groups[t.raw].extend((i, e, f) for e, f in exprs)
        self._on_hs = {i for g in groups.values() for i, _, _ in g}
        self._dbs: dict[bool, Any] = {}
        for raw, items in groups.items():
            while items:
                db = hyperscan.Database()
                try:
                    db.compile(
                        expressions=[e for _, e, _ in items],
                        ids=[i for i, _, _ in items],
                        flags=[f for _, _, f in items],
                    )
                except hyperscan.error:
                    # Find the expressions Hyperscan rejects; their patterns stay native.
                    bad = {i for i, e, f in items if not self._compiles(e, f)}
                    if not bad:
                        raise
                    native.extend(sorted(bad))
                    self._on_hs -= bad
                    items = [it for it in items if it[0] not in bad]
                    continue
                self._dbs[raw] = db
                break
        self._native = sorted(native)
        self._local = threading.local()

    def _expressions(self, regex: str) -> list[tuple[bytes, int]] | None:
        extra = 0
        if regex.startswith("(?s)"):
            regex = regex[4:]
            extra = self._hs.HS_FLAG_DOTALL
        out: list[tuple[bytes, int]] = []
        for part in split_alternatives(regex):
            expr = _hs_expression(part)
            if expr is None:
                return None
            out.append((expr[0], expr[1] | extra))
        return out

    def _compiles(self, expr: bytes, flags: int) -> bool:
        db = self._hs.Database()
        try:
            db.compile(expressions=[expr], ids=[0], flags=[flags])
        except self._hs.error:
            return False
        return True

    def engine_of(self, index: int, engine: str) -> str:
        return "hyperscan" if index in self._on_hs else engine

    def _scratch(self, raw: bool) -> Any:
        cache: dict[bool, Any] | None = getattr(self._local, "scratch", None)
        if cache is None:
            cache = {r: self._hs.Scratch(db) for r, db in self._dbs.items()}
            self._local.scratch = cache
        return cache[raw]

    def scan(self, text: str) -> Hits:
        prepared = self._pset.prepare(text)
        hit: set[int] = set(self._native)

        def on_match(pid: int, _f: int, _t: int, _fl: int, _c: object) -> None:
            hit.add(pid)

        db = self._dbs.get(False)
        if db is not None:
            db.scan(
                prepared.view_bytes(), match_event_handler=on_match, scratch=self._scratch(False)
            )
        db = self._dbs.get(True)
        if db is not None:
            db.scan(
                prepared.text_bytes(), match_event_handler=on_match, scratch=self._scratch(True)
            )
        if not hit:
            return []
        result: Hits = self._pset.spans(prepared, sorted(hit))
        return result


T = TypeVar("T")


class PatternList(list[T]):
    """A list that tells its guard when it changes, so the compiled set is rebuilt.

    ``dirty`` is set by every change; ``on_change`` (if set) is called after it.
    """

    dirty: bool
    on_change: Callable[[], None] | None = None

    def __init__(self, items: Iterable[T] = ()) -> None:
        super().__init__(items)
        self.dirty = True

    def _touch(self) -> None:
        self.dirty = True
        if self.on_change is not None:
            self.on_change()

    def append(self, item: T) -> None:
        super().append(item)
        self._touch()

    def extend(self, items: Iterable[T]) -> None:
        super().extend(items)
        self._touch()

    def insert(self, index: SupportsIndex, item: T) -> None:
        super().insert(index, item)
        self._touch()

    def remove(self, item: T) -> None:
        super().remove(item)
        self._touch()

    def pop(self, index: SupportsIndex = -1) -> T:
        item = super().pop(index)
        self._touch()
        return item

    def clear(self) -> None:
        super().clear()
        self._touch()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        super().sort(*args, **kwargs)
        self._touch()

    def reverse(self) -> None:
        super().reverse()
        self._touch()

    @overload
    def __setitem__(self, index: SupportsIndex, value: T) -> None: ...
    @overload
    def __setitem__(self, index: slice, value: Iterable[T]) -> None: ...
    def __setitem__(self, index: Any, value: Any) -> None:
        super().__setitem__(index, value)
        self._touch()

    def __delitem__(self, index: SupportsIndex | slice) -> None:
        super().__delitem__(index)
        self._touch()

    def __iadd__(self, items: Iterable[T]) -> PatternList[T]:  # type: ignore[override,misc]
        super().__iadd__(items)
        self._touch()
        return self
