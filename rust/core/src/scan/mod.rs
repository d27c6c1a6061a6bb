//! Multi-pattern scanning for the input and output guards.
//!
//! A [`Scanner`] compiles every pattern of a guard once. Patterns are grouped into a few
//! multi-pattern automata (`regex-automata` meta regexes in `MatchKind::All` mode, which run in
//! linear time): one pass over the text says which patterns match anywhere; match spans are
//! then computed, leftmost-first and non-overlapping like Python's `finditer`, only for those.
//!
//! Patterns are matched against the normalised [`View`] of the text unless
//! they are *raw* (they name invisible characters themselves, so they must see the original).
//! Spans are reported in original character offsets (Python `str` indices).
//!
//! Patterns the linear engine cannot run (no translation was given, the translation does not
//! parse, or the pattern can match the empty string, where Python's iteration rules differ) are
//! reported as [`Engine::Fallback`]; the caller runs them on a backtracking engine.

pub mod normalize;
pub mod tables;

use regex_automata::meta;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};

pub use normalize::{bytes_to_chars, decode_surrogatepass, normalize, View};

/// Nesting limit of the regex parser (the translator rejects deeper patterns earlier).
pub const NEST_LIMIT: u32 = 250;
/// Compiled-size limit of one pattern (Thompson NFA bytes).
pub const PATTERN_SIZE_LIMIT: usize = 4 << 20;
/// Lazy-DFA cache of one multi-pattern group.
const CACHE_CAPACITY: usize = 8 << 20;

/// One pattern to compile.
#[derive(Debug, Clone)]
pub struct PatternSpec {
    /// The pattern in Rust `regex` syntax, or `None` if only a backtracking engine can run it.
    pub regex: Option<String>,
    /// Match against the original text instead of the normalised view.
    pub raw: bool,
}

/// Which engine runs a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The linear-time automaton.
    Linear,
    /// A backtracking engine run by the caller.
    Fallback,
}

/// Errors building a [`Scanner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// Pattern `index` compiles to more than [`PATTERN_SIZE_LIMIT`] bytes.
    TooLarge { index: usize },
    /// Pattern `index` nests deeper than [`NEST_LIMIT`].
    TooDeep { index: usize },
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::TooLarge { index } => write!(
                f,
                "pattern {index} is too large: its compiled automaton exceeds {} bytes",
                PATTERN_SIZE_LIMIT
            ),
            ScanError::TooDeep { index } => write!(
                f,
                "pattern {index} is nested too deeply (limit {NEST_LIMIT})"
            ),
        }
    }
}

impl std::error::Error for ScanError {}

struct Group {
    /// Leftmost-first union of the group's patterns: a fast "does anything match?" pass
    /// (earliest match, unrolled DFA loop) that lets clean texts skip the overlapping pass.
    any: meta::Regex,
    regex: meta::Regex,
    ids: Vec<usize>,
    raw: bool,
}

/// Spans of one pattern in original character offsets.
pub type Spans = Vec<(usize, usize)>;

/// A compiled set of patterns.
pub struct Scanner {
    groups: Vec<Group>,
    /// With several groups: the leftmost-first union of every linear pattern. On a pure
    /// ASCII text whose view is the text itself, raw and view patterns see the same
    /// haystack, so one earliest-match pass tells whether any group needs a closer look.
    all: Option<meta::Regex>,
    singles: Vec<Option<meta::Regex>>,
    raw: Vec<bool>,
    engines: Vec<Engine>,
}

fn syntax_config() -> syntax::Config {
    syntax::Config::new()
        .case_insensitive(true)
        .multi_line(true)
        .unicode(true)
        .utf8(true)
        .nest_limit(NEST_LIMIT)
}

impl Scanner {
    /// Compile `specs`.
    pub fn new(specs: &[PatternSpec]) -> Result<Scanner, ScanError> {
        let syn = syntax_config();
        let mut singles = Vec::with_capacity(specs.len());
        let mut engines = Vec::with_capacity(specs.len());
        // (raw, unicode word boundary) -> HIRs and their indices.
        let mut buckets: [(Vec<regex_syntax::hir::Hir>, Vec<usize>); 4] = Default::default();
        for (index, spec) in specs.iter().enumerate() {
            let Some(src) = &spec.regex else {
                singles.push(None);
                engines.push(Engine::Fallback);
                continue;
            };
            let hir = match syntax::parse_with(src, &syn) {
                Ok(h) => h,
                Err(e) => {
                    if matches!(
                        &e,
                        regex_syntax::Error::Parse(p)
                            if matches!(p.kind(), regex_syntax::ast::ErrorKind::NestLimitExceeded(_))
                    ) {
                        return Err(ScanError::TooDeep { index });
                    }
                    singles.push(None);
                    engines.push(Engine::Fallback);
                    continue;
                }
            };
            if hir.properties().minimum_len() == Some(0) {
                singles.push(None);
                engines.push(Engine::Fallback);
                continue;
            }
            let single = meta::Regex::builder()
                .configure(
                    meta::Config::new()
                        .match_kind(MatchKind::LeftmostFirst)
                        .nfa_size_limit(Some(PATTERN_SIZE_LIMIT)),
                )
                .build_from_hir(&hir)
                .map_err(|_| ScanError::TooLarge { index })?;
            let uwb = hir.properties().look_set().contains_word_unicode();
            let b = usize::from(spec.raw) * 2 + usize::from(uwb);
            buckets[b].0.push(hir);
            buckets[b].1.push(index);
            singles.push(Some(single));
            engines.push(Engine::Linear);
        }
        let all_hirs: Vec<&regex_syntax::hir::Hir> =
            buckets.iter().flat_map(|(h, _)| h.iter()).collect();
        let all = if buckets.iter().filter(|(h, _)| !h.is_empty()).count() > 1 {
            Some(
                meta::Regex::builder()
                    .configure(
                        meta::Config::new()
                            .match_kind(MatchKind::LeftmostFirst)
                            .nfa_size_limit(Some(PATTERN_SIZE_LIMIT.saturating_mul(all_hirs.len())))
                            .hybrid_cache_capacity(CACHE_CAPACITY),
                    )
                    .build_many_from_hir(&all_hirs)
                    .map_err(|_| ScanError::TooLarge {
                        index: buckets
                            .iter()
                            .find_map(|(_, ids)| ids.first().copied())
                            .unwrap_or(0),
                    })?,
            )
        } else {
            None
        };
        let mut groups = Vec::new();
        for (b, (hirs, ids)) in buckets.into_iter().enumerate() {
            if hirs.is_empty() {
                continue;
            }
            let limit = PATTERN_SIZE_LIMIT.saturating_mul(hirs.len());
            let any = meta::Regex::builder()
                .configure(
                    meta::Config::new()
                        .match_kind(MatchKind::LeftmostFirst)
                        .nfa_size_limit(Some(limit))
                        .hybrid_cache_capacity(CACHE_CAPACITY),
                )
                .build_many_from_hir(&hirs)
                .map_err(|_| ScanError::TooLarge { index: ids[0] })?;
            let regex = meta::Regex::builder()
                .configure(
                    meta::Config::new()
                        .match_kind(MatchKind::All)
                        .nfa_size_limit(Some(limit))
                        .hybrid_cache_capacity(CACHE_CAPACITY),
                )
                .build_many_from_hir(&hirs)
                .map_err(|_| ScanError::TooLarge { index: ids[0] })?;
            groups.push(Group {
                any,
                regex,
                ids,
                raw: b >= 2,
            });
        }
        Ok(Scanner {
            groups,
            all,
            singles,
            raw: specs.iter().map(|s| s.raw).collect(),
            engines,
        })
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.engines.len()
    }

    /// True when the set has no patterns.
    pub fn is_empty(&self) -> bool {
        self.engines.is_empty()
    }

    /// The engine of each pattern.
    pub fn engines(&self) -> &[Engine] {
        &self.engines
    }

    /// Whether each pattern matches the original text (`true`) or the view (`false`).
    pub fn raw(&self) -> &[bool] {
        &self.raw
    }

    /// True when some pattern needs the normalised view.
    pub fn needs_view(&self) -> bool {
        self.raw.iter().any(|r| !r)
    }

    /// Indices (ascending) of the linear patterns that match `text` anywhere (per group, one
    /// earliest-match pass, then one overlapping pass only if something matched).
    pub fn which(&self, text: &str, view: &View) -> Vec<usize> {
        let mut hit = Vec::new();
        if let Some(all) = &self.all {
            if view.is_original() && view.is_ascii() && !all.is_match(Input::new(text)) {
                return hit;
            }
        }
        for g in &self.groups {
            let hay = if g.raw { text } else { view.text(text) };
            if !g.any.is_match(Input::new(hay)) {
                continue;
            }
            let mut set = PatternSet::new(g.regex.pattern_len());
            g.regex
                .which_overlapping_matches(&Input::new(hay), &mut set);
            hit.extend(set.iter().map(|p| g.ids[p.as_usize()]));
        }
        hit.sort_unstable();
        hit
    }

    /// Spans (original character offsets) of the linear patterns `indices` (ascending), in
    /// `finditer` order. Patterns without a match are omitted; fallback indices are ignored.
    pub fn spans(&self, text: &str, view: &View, indices: &[usize]) -> Vec<(usize, Spans)> {
        let vtext = view.text(text);
        let mut out: Vec<(usize, Spans)> = Vec::new();
        // Byte offsets first; converted to characters in one pass per haystack.
        let mut raw_offsets: Vec<usize> = Vec::new();
        let mut view_offsets: Vec<usize> = Vec::new();
        for &i in indices {
            let Some(Some(re)) = self.singles.get(i) else {
                continue;
            };
            let hay = if self.raw[i] { text } else { vtext };
            let spans: Spans = re.find_iter(hay).map(|m| (m.start(), m.end())).collect();
            if spans.is_empty() {
                continue;
            }
            let sink = if self.raw[i] {
                &mut raw_offsets
            } else {
                &mut view_offsets
            };
            for &(s, e) in &spans {
                sink.push(s);
                sink.push(e);
            }
            out.push((i, spans));
        }
        if out.is_empty() {
            return out;
        }
        bytes_to_chars(text, &mut raw_offsets);
        if !view.is_ascii() {
            bytes_to_chars(vtext, &mut view_offsets);
        }
        let orig_len = if raw_offsets.is_empty() && view.is_identity() {
            0
        } else {
            text.chars().count()
        };
        let (mut ri, mut vi) = (0, 0);
        for (i, spans) in &mut out {
            for span in spans.iter_mut() {
                if self.raw[*i] {
                    *span = (raw_offsets[ri], raw_offsets[ri + 1]);
                    ri += 2;
                } else {
                    let (s, e) = (view_offsets[vi], view_offsets[vi + 1]);
                    vi += 2;
                    *span = view.map_span(s, e, orig_len);
                }
            }
        }
        out
    }

    /// [`which`](Self::which) then [`spans`](Self::spans) of the linear patterns.
    pub fn scan(&self, text: &str, view: &View) -> Vec<(usize, Spans)> {
        let hit = self.which(text, view);
        if hit.is_empty() {
            return Vec::new();
        }
        self.spans(text, view, &hit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(p: &str) -> PatternSpec {
        PatternSpec {
            regex: Some(p.to_owned()),
            raw: false,
        }
    }

    #[test]
    fn finds_spans_in_original_offsets() {
        let s = Scanner::new(&[spec(r"ignore\s+previous"), spec("dan"), spec("zzz")]).unwrap();
        let text = "Please IGN\u{200B}ORE  previous; dan";
        let v = View::new(text);
        let hits = s.scan(text, &v);
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].0, 0);
        let (a, b) = hits[0].1[0];
        let chars: Vec<char> = text.chars().collect();
        let got: String = chars[a..b].iter().collect();
        assert_eq!(got, "IGN\u{200B}ORE  previous");
        assert_eq!(hits[1], (1, vec![(26, 29)]));
    }

    #[test]
    fn raw_patterns_see_the_original() {
        let s = Scanner::new(&[PatternSpec {
            regex: Some(r"[\x{200B}]".into()),
            raw: true,
        }])
        .unwrap();
        let text = "é\u{200B}x";
        assert_eq!(s.scan(text, &View::new(text)), vec![(0, vec![(1, 2)])]);
    }

    #[test]
    fn empty_matching_and_unparsable_patterns_fall_back() {
        let s = Scanner::new(&[
            spec("a*"),
            spec("(?<=a)b"),
            PatternSpec {
                regex: None,
                raw: false,
            },
            spec("b"),
        ])
        .unwrap();
        assert_eq!(
            s.engines(),
            &[
                Engine::Fallback,
                Engine::Fallback,
                Engine::Fallback,
                Engine::Linear
            ]
        );
        let text = "ab";
        assert_eq!(s.scan(text, &View::new(text)), vec![(3, vec![(1, 2)])]);
    }

    #[test]
    fn limits_are_errors() {
        let deep = format!("{}a{}", "(".repeat(300), ")".repeat(300));
        assert_eq!(
            Scanner::new(&[spec(&deep)]).err(),
            Some(ScanError::TooDeep { index: 0 })
        );
        assert_eq!(
            Scanner::new(&[spec("x"), spec(r"\w{1000}{1000}")]).err(),
            Some(ScanError::TooLarge { index: 1 })
        );
    }

    #[test]
    fn ascii_fast_path_keeps_raw_and_view_apart() {
        // Two groups (view and raw), so the one-pass union check is built; it runs only
        // when the view is the text itself.
        let s = Scanner::new(&[
            spec(r"ignore previous"),
            PatternSpec {
                regex: Some(r"x\x{1c}y".into()),
                raw: true,
            },
        ])
        .unwrap();
        for (text, want) in [
            ("please ignore previous", vec![(0, vec![(7, 22)])]),
            (
                "ignore\x1cprevious x\x1cy",
                vec![(0, vec![(0, 15)]), (1, vec![(16, 19)])],
            ),
            ("x\x1cy", vec![(1, vec![(0, 3)])]),
            ("nothing here", vec![]),
            ("IGNORE PREVIOUS é", vec![(0, vec![(0, 15)])]),
        ] {
            assert_eq!(s.scan(text, &View::new(text)), want, "{text:?}");
        }
    }

    #[test]
    fn leftmost_first_non_overlapping() {
        let s = Scanner::new(&[spec("ab|abc|c")]).unwrap();
        let t = "abcabc";
        assert_eq!(
            s.scan(t, &View::new(t)),
            vec![(0, vec![(0, 2), (2, 3), (3, 5), (5, 6)])]
        );
    }
}
