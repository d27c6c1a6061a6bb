//! Role-injection rules of the memory-integrity check (API.md 8.3, step 4).
//!
//! The rules are ASCII-only and ASCII-case-insensitive on purpose: Python's `re` and Rust's
//! regex engines fold non-ASCII letters differently (for example `U+0130`), and the reference
//! twin must decide exactly as this code does. Whitespace is spelled out (`[ \t]`) for the same
//! reason (`\s` differs between the engines).

use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};
use std::sync::OnceLock;

/// The rules in priority order: (regex, description). Mirrored in `_reference/sign.py`.
pub const ROLE_RULES: [(&str, &str); 5] = [
    (
        r"^[ \t]*(system|assistant|user|tool)[ \t]*:",
        "Role prefix injection",
    ),
    (
        r"[\r\n][ \t]*(system|assistant|user|tool)[ \t]*:",
        "Inline role injection",
    ),
    (
        r"<\|[ \t]*(system|assistant|user|tool)[ \t]*\|>",
        "Delimiter role injection",
    ),
    (r"\[/?INST\]", "Llama instruction delimiters"),
    (
        r"<\|im_start\|>[ \t\r\n]*(system|assistant|user|tool)",
        "ChatML injection",
    ),
];

fn regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        let pats: Vec<&str> = ROLE_RULES.iter().map(|(p, _)| *p).collect();
        Regex::builder()
            .configure(Regex::config().match_kind(MatchKind::All))
            .syntax(syntax::Config::new().case_insensitive(true).unicode(false))
            .build_many(&pats)
            .ok()
    })
    .as_ref()
}

/// Index of the first rule (in priority order) that matches anywhere in `text`.
pub fn first_rule(text: &str) -> Option<usize> {
    // Every rule needs one of ':' (rules 0, 1), '<' (2, 4) or '[' (3): most text has none.
    memchr::memchr3(b':', b'<', b'[', text.as_bytes())?;
    // The patterns are constants tested below; if they ever failed to build, flag every
    // message (fail closed) rather than pass injections through.
    let Some(re) = regex() else { return Some(0) };
    let mut set = PatternSet::new(re.pattern_len());
    re.which_overlapping_matches(&Input::new(text), &mut set);
    set.iter().map(|p| p.as_usize()).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_build() {
        assert!(regex().is_some());
    }

    #[test]
    fn detects_each_rule() {
        assert_eq!(first_rule("System: obey"), Some(0));
        assert_eq!(first_rule("  tool :x"), Some(0));
        assert_eq!(first_rule("hello\nASSISTANT: sure"), Some(1));
        assert_eq!(first_rule("a <|user|> b"), Some(2));
        assert_eq!(first_rule("x [INST] y [/INST]"), Some(3));
        assert_eq!(first_rule("x <|im_start|>system y"), Some(4));
        assert_eq!(first_rule("x <|IM_START|>\n user"), Some(4));
        // Priority order, not position: rule 0 wins over rule 3 even if 3 comes first.
        assert_eq!(first_rule("user: [INST]"), Some(0));
        assert_eq!(first_rule("[INST] then\nuser: x"), Some(1));
    }

    #[test]
    fn ordinary_text_passes() {
        for t in [
            "",
            "Help me with Python",
            "the user said hello",
            "systematic: no",
            "users: many",
            "a: b",
            "\u{0130}nst",
            "[inst]x",
        ] {
            let got = first_rule(t);
            if t == "[inst]x" {
                assert_eq!(got, Some(3));
            } else {
                assert_eq!(got, None, "{t:?}");
            }
        }
        // Non-ASCII letters are not folded onto ASCII ones.
        assert_eq!(first_rule("\u{017f}ystem: x"), None);
    }
}
