//! Agent messages and intent capsules: the text forms their signatures cover, without Python.
//!
//! * `write_uuid4`: a version-4 UUID's canonical text from 16 random bytes (what
//!   `str(uuid.UUID(bytes=b, version=4))` gives).
//! * `write_str_repr`: Python's `repr()` of a printable-ASCII `str` (the capsule's canonical
//!   form holds `str(sorted(tools))`, a list of such reprs).
//! * `write_isoformat_utc`: `datetime.isoformat()` of an aware UTC datetime.
//! * `intent_category`: the intent-category keyword test of `detect_category`.
//! * `civil`: UTC civil time from microseconds since the epoch (capsule clocks).

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind};

pub mod civil;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The text of the version-4 UUID made from `raw` (version nibble forced to 4, variant bits
/// to `10`): lowercase hex in 8-4-4-4-12 groups, on the stack.
pub fn uuid4_text(raw: &[u8; 16]) -> [u8; 36] {
    let mut b = *raw;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1; // the '-' already there
        }
        if let Some(pair) = text.get_mut(at..at + 2) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0x0f)];
        }
        at += 2;
    }
    text
}

/// [`uuid4_text`] as a `&str`.
pub fn uuid4_str(text: &[u8; 36]) -> &str {
    // Every byte is an ASCII hex digit or '-', so the fallback is unreachable; it keeps this
    // function free of panics and `unsafe`.
    std::str::from_utf8(text).unwrap_or_default()
}

/// Append the text of [`uuid4_text`].
pub fn write_uuid4(out: &mut String, raw: &[u8; 16]) {
    out.push_str(uuid4_str(&uuid4_text(raw)));
}

/// Append Python's `repr(s)` if every character of `s` is printable ASCII, tab, newline or
/// carriage return; returns false (with `out` unchanged) otherwise, so that the caller asks
/// Python (whose rules for other characters depend on its Unicode database).
pub fn write_str_repr(out: &mut String, s: &str) -> bool {
    let bytes = s.as_bytes();
    // The usual tool name: printable ASCII with nothing to escape and no quote at all.
    if bytes
        .iter()
        .all(|&c| (0x20..0x7f).contains(&c) && c != b'\'' && c != b'"' && c != b'\\')
    {
        out.reserve(bytes.len() + 2);
        out.push('\'');
        out.push_str(s);
        out.push('\'');
        return true;
    }
    let (mut single, mut double, mut escapes) = (false, false, false);
    for &c in bytes {
        match c {
            b'\'' => single = true,
            b'"' => double = true,
            b'\\' | b'\t' | b'\n' | b'\r' => escapes = true,
            0x20..=0x7e => {}
            _ => return false,
        }
    }
    // Python: single quotes unless the text has a ' and no ".
    let quote = if single && !double { '"' } else { '\'' };
    out.push(quote);
    if !(escapes || (single && double)) {
        // Nothing to escape (the usual tool name): the text as it is.
        out.push_str(s);
        out.push(quote);
        return true;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    true
}

/// A datetime's fields, as Python's `datetime` holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    pub microsecond: i64,
}

/// Append `datetime.isoformat()` of an aware datetime whose offset is zero:
/// `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00` (the fraction only when `microsecond` is not 0).
pub fn write_isoformat_utc(out: &mut String, t: &Civil) {
    let in_range = (0..10_000).contains(&t.year)
        && [t.month, t.day, t.hour, t.minute, t.second]
            .iter()
            .all(|v| (0..100).contains(v))
        && (0..1_000_000).contains(&t.microsecond);
    if !in_range {
        // Out of datetime's range (never for a real datetime).
        write_isoformat_fields(out, t);
        return;
    }
    // Digits written into one stack buffer, then appended at once (constant divisors compile
    // to multiplications; `{:02}`-style formatting costs more than the rest of the text).
    let mut buf = *b"0000-00-00T00:00:00.000000+00:00";
    let mut put = |at: usize, v: i64, width: usize| {
        let mut v = v as u32;
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, t.year, 4);
    put(5, t.month, 2);
    put(8, t.day, 2);
    put(11, t.hour, 2);
    put(14, t.minute, 2);
    put(17, t.second, 2);
    let text = if t.microsecond != 0 {
        put(20, t.microsecond, 6);
        &buf[..]
    } else {
        buf.copy_within(26.., 19);
        &buf[..25]
    };
    // Every byte is an ASCII digit or separator.
    out.push_str(std::str::from_utf8(text).unwrap_or_default());
}

/// [`write_isoformat_utc`] field by field (any values: a field out of its range is written
/// as a plain decimal).
fn write_isoformat_fields(out: &mut String, t: &Civil) {
    fn digits(out: &mut String, v: i64, width: u32) {
        let ok = match width {
            2 => (0..100).contains(&v),
            4 => (0..10_000).contains(&v),
            _ => (0..1_000_000).contains(&v),
        };
        if !ok {
            // Out of datetime's range (never for a real datetime): plain decimal.
            out.push_str(&v.to_string());
            return;
        }
        let v = v as u32;
        let d = |x: u32| char::from(b'0' + (x % 10) as u8);
        match width {
            2 => {
                out.push(d(v / 10));
                out.push(d(v));
            }
            4 => {
                out.push(d(v / 1000));
                out.push(d(v / 100));
                out.push(d(v / 10));
                out.push(d(v));
            }
            _ => {
                out.push(d(v / 100_000));
                out.push(d(v / 10_000));
                out.push(d(v / 1000));
                out.push(d(v / 100));
                out.push(d(v / 10));
                out.push(d(v));
            }
        }
    }
    digits(out, t.year, 4);
    out.push('-');
    digits(out, t.month, 2);
    out.push('-');
    digits(out, t.day, 2);
    out.push('T');
    digits(out, t.hour, 2);
    out.push(':');
    digits(out, t.minute, 2);
    out.push(':');
    digits(out, t.second, 2);
    if t.microsecond != 0 {
        out.push('.');
        digits(out, t.microsecond, 6);
    }
    out.push_str("+00:00");
}

/// Intent keywords by category, in the priority order of `detect_category` (mirrors
/// `_CATEGORY_KEYWORDS` in `proxilion/security/intent_capsule.py`). The index of a category
/// here is its index there; `CATEGORY_KEYWORDS.len()` means UNKNOWN.
pub const CATEGORY_KEYWORDS: [&[&str]; 7] = [
    &["delete", "remove", "destroy", "erase", "drop", "clear"],
    &["create", "make", "generate", "build", "add", "new", "write"],
    &["update", "modify", "change", "edit", "fix", "correct"],
    &["run", "execute", "start", "launch", "deploy", "install"],
    &["send", "email", "message", "notify", "alert", "share"],
    &["analyze", "process", "calculate", "compute", "summarize"],
    &[
        "find", "search", "get", "show", "list", "display", "fetch", "what", "where", "when",
        "who", "how", "help", "tell",
    ],
];

fn keyword_automaton() -> &'static (AhoCorasick, Vec<usize>) {
    static AC: OnceLock<(AhoCorasick, Vec<usize>)> = OnceLock::new();
    AC.get_or_init(|| {
        let mut words = Vec::new();
        let mut category = Vec::new();
        for (i, ws) in CATEGORY_KEYWORDS.iter().enumerate() {
            for w in ws.iter() {
                words.push(*w);
                category.push(i);
            }
        }
        // Every pattern is a fixed ASCII word: building cannot fail.
        // A DFA: the overlapping search over a short intent is a table walk per byte.
        let ac = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::DFA))
            .build(&words)
            .unwrap_or_else(|_| unreachable!());
        (ac, category)
    })
}

/// Index of the first category (in priority order) one of whose keywords occurs in `lowered`
/// (the text after Python's `str.lower()`), or `CATEGORY_KEYWORDS.len()` when none does.
pub fn intent_category(lowered: &str) -> usize {
    let (ac, category) = keyword_automaton();
    let mut best = CATEGORY_KEYWORDS.len();
    for m in ac.find_overlapping_iter(lowered) {
        best = best.min(category[m.pattern().as_usize()]);
        if best == 0 {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_has_version_and_variant() {
        let mut s = String::new();
        write_uuid4(&mut s, &[0xff; 16]);
        assert_eq!(s, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        s.clear();
        write_uuid4(&mut s, &[0; 16]);
        assert_eq!(s, "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn str_repr_follows_python() {
        let cases = [
            ("abc", "'abc'"),
            ("it's", "\"it's\""),
            ("say \"hi\"", "'say \"hi\"'"),
            ("both ' \"", "'both \\' \"'"),
            ("a\\b\tc\nd\re", "'a\\\\b\\tc\\nd\\re'"),
            ("", "''"),
            ("'", "\"'\""),
            ("\"", "'\"'"),
            ("'\"", "'\\'\"'"),
            ("a\\", "'a\\\\'"),
            ("~ !", "'~ !'"),
        ];
        for (s, want) in cases {
            let mut out = String::new();
            assert!(write_str_repr(&mut out, s));
            assert_eq!(out, want);
        }
        let mut out = String::from("x");
        assert!(!write_str_repr(&mut out, "caf\u{e9}"));
        assert!(!write_str_repr(&mut out, "bell\u{7}"));
        assert!(!write_str_repr(&mut out, "del\u{7f}"));
        assert_eq!(out, "x");
    }

    #[test]
    fn isoformat_fast_path_equals_field_by_field() {
        let mut t = Civil {
            year: 0,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            microsecond: 0,
        };
        for (i, year) in [1, 9, 10, 99, 100, 999, 1000, 1970, 2026, 9999]
            .iter()
            .enumerate()
        {
            t.year = *year;
            t.month = 1 + (i as i64 * 5) % 12;
            t.day = 1 + (i as i64 * 7) % 31;
            t.hour = (i as i64 * 5) % 24;
            t.minute = (i as i64 * 13) % 60;
            t.second = (i as i64 * 17) % 60;
            for us in [0, 1, 9, 10, 999_999, 100_000, 123_456] {
                t.microsecond = us;
                let (mut fast, mut fields) = (String::from(">"), String::from(">"));
                write_isoformat_utc(&mut fast, &t);
                write_isoformat_fields(&mut fields, &t);
                assert_eq!(fast, fields);
            }
        }
        // Out of range (no real datetime): every field in plain decimal.
        t.year = 10_000;
        t.microsecond = 5;
        let mut s = String::new();
        write_isoformat_utc(&mut s, &t);
        assert_eq!(s, "10000-10-02T21:57:33.000005+00:00");
    }

    #[test]
    fn isoformat_omits_zero_microseconds() {
        let mut t = Civil {
            year: 2024,
            month: 3,
            day: 5,
            hour: 7,
            minute: 8,
            second: 9,
            microsecond: 0,
        };
        let mut s = String::new();
        write_isoformat_utc(&mut s, &t);
        assert_eq!(s, "2024-03-05T07:08:09+00:00");
        t.microsecond = 120;
        t.year = 33;
        s.clear();
        write_isoformat_utc(&mut s, &t);
        assert_eq!(s, "0033-03-05T07:08:09.000120+00:00");
    }

    #[test]
    fn category_priority_is_by_category_not_position() {
        assert_eq!(intent_category("summarize q3 sales data"), 5);
        assert_eq!(intent_category("find and delete it"), 0);
        assert_eq!(intent_category("nothing here"), 7);
        // "address" holds "add" (CREATE) and "dress" nothing: substring semantics.
        assert_eq!(intent_category("address"), 1);
        // "showcase" holds "show" (QUERY) and "how" (QUERY): overlapping matches count.
        assert_eq!(intent_category("showcase"), 6);
        assert_eq!(intent_category(""), 7);
    }
}
