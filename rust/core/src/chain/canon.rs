//! Canonical JSON exactly as Python writes it with
//! `json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)` (and the default
//! `ensure_ascii=True`, `allow_nan=True`).
//!
//! Two halves:
//! - writers for the scalar forms ([`write_str`], [`write_float`], ...), used by the Python
//!   binding while it walks a Python object, and by [`write_value`];
//! - a JSON parser ([`parse`]) with Python's `json.loads` semantics, so that a line read
//!   back from disk can be re-encoded into the exact canonical bytes that were hashed.
//!
//! Points where Python differs from common JSON libraries, all reproduced here:
//! - every character outside printable ASCII is written `\uXXXX` (lower-case hex), and a
//!   character outside the BMP as a UTF-16 surrogate pair; lone surrogates pass through;
//! - floats use Python's `repr`: shortest round-trip digits, `1.0`, `1e-05`, `1e+16`,
//!   `NaN`, `Infinity`, `-Infinity`;
//! - object keys are sorted by Unicode code point.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::io::Write as _;

/// Upper bound on nesting, for parsing and for the object walk of the binding.
pub const MAX_DEPTH: usize = 1000;

const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline]
fn push_u_escape(out: &mut Vec<u8>, unit: u32) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[((unit >> 12) & 0xf) as usize],
        HEX[((unit >> 8) & 0xf) as usize],
        HEX[((unit >> 4) & 0xf) as usize],
        HEX[(unit & 0xf) as usize],
    ]);
}

/// Escape one code point (any value up to 0x10FFFF, lone surrogates included).
#[inline]
fn push_code_point(out: &mut Vec<u8>, cp: u32) {
    match cp {
        0x22 => out.extend_from_slice(b"\\\""),
        0x5c => out.extend_from_slice(b"\\\\"),
        0x0a => out.extend_from_slice(b"\\n"),
        0x0d => out.extend_from_slice(b"\\r"),
        0x09 => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        0x20..=0x7e => out.push(cp as u8),
        0x10000.. => {
            let v = cp - 0x10000;
            push_u_escape(out, 0xd800 | (v >> 10));
            push_u_escape(out, 0xdc00 | (v & 0x3ff));
        }
        _ => push_u_escape(out, cp),
    }
}

#[inline]
fn plain_ascii(b: u8) -> bool {
    (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'
}

/// Write `s` as a quoted JSON string, `ensure_ascii` style.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && plain_ascii(bytes[i]) {
            i += 1;
        }
        out.extend_from_slice(&bytes[start..i]);
        if i == bytes.len() {
            break;
        }
        // The rest from `i` is a char boundary: plain runs stop only at ASCII bytes or at
        // the first byte of a multi-byte sequence.
        let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
        push_code_point(out, ch as u32);
        i += ch.len_utf8();
    }
    out.push(b'"');
}

/// Write a string given as code points (may hold lone surrogates, as Python `str` can).
pub fn write_code_points(out: &mut Vec<u8>, cps: impl IntoIterator<Item = u32>) {
    out.push(b'"');
    for cp in cps {
        push_code_point(out, cp);
    }
    out.push(b'"');
}

/// Python `float.__repr__` of `f`, as JSON writes it (`NaN`/`Infinity` for non-finite).
pub fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    if f == 0.0 {
        out.extend_from_slice(if f.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    // Python's repr: shortest round-trip digits, exact ties rounded half to even.
    out.extend_from_slice(crate::sign::pyfmt::float_repr(f).as_bytes());
}

/// Python `repr(float)` as a `String` (used for float dict keys and tests).
pub fn float_repr(f: f64) -> String {
    let mut v = Vec::with_capacity(24);
    write_float(&mut v, f);
    String::from_utf8(v).unwrap_or_default()
}

/// Write an `i64`.
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    let _ = write!(out, "{v}");
}

// ------------------------------------------------------------------------------------------
// Parsed values
// ------------------------------------------------------------------------------------------

/// A JSON string as read from a line: the raw text when it had no escapes (`Plain` when it
/// is printable ASCII, which is written back as is), else its UTF-16 code units (which is
/// exactly what `ensure_ascii` writes back, lone surrogates included).
#[derive(Debug, Clone, PartialEq)]
pub enum JStr<'a> {
    Plain(&'a str),
    Raw(&'a str),
    Units(Vec<u16>),
}

impl JStr<'_> {
    fn text(&self) -> Option<&str> {
        match self {
            JStr::Plain(s) | JStr::Raw(s) => Some(s),
            JStr::Units(_) => None,
        }
    }

    /// Code points, Python style: valid surrogate pairs combine, lone surrogates stay.
    pub fn code_points(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            JStr::Plain(s) | JStr::Raw(s) => Box::new(s.chars().map(|c| c as u32)),
            JStr::Units(u) => Box::new(char::decode_utf16(u.iter().copied()).map(|r| {
                r.map(|c| c as u32)
                    .unwrap_or_else(|e| e.unpaired_surrogate() as u32)
            })),
        }
    }

    /// The text, if it has no lone surrogate.
    pub fn as_str(&self) -> Option<Cow<'_, str>> {
        match self {
            JStr::Plain(s) | JStr::Raw(s) => Some(Cow::Borrowed(s)),
            JStr::Units(u) => String::from_utf16(u).ok().map(Cow::Owned),
        }
    }

    fn cmp_code_points(&self, other: &JStr<'_>) -> Ordering {
        match (self.text(), other.text()) {
            // UTF-8 byte order is code point order.
            (Some(a), Some(b)) => a.as_bytes().cmp(b.as_bytes()),
            _ => self.code_points().cmp(other.code_points()),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            JStr::Plain(s) => {
                out.push(b'"');
                out.extend_from_slice(s.as_bytes());
                out.push(b'"');
            }
            JStr::Raw(s) => write_str(out, s),
            JStr::Units(u) => {
                out.push(b'"');
                for &unit in u {
                    push_code_point(out, unit as u32);
                }
                out.push(b'"');
            }
        }
    }

    fn eq_str(&self, s: &str) -> bool {
        match self {
            JStr::Plain(r) | JStr::Raw(r) => *r == s,
            JStr::Units(u) => u.iter().copied().eq(s.encode_utf16()),
        }
    }
}

/// A JSON value with Python `json.loads` semantics.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    /// An integer literal (any size), kept as text.
    Int(&'a str),
    Float(f64),
    Str(JStr<'a>),
    Array(Vec<Value<'a>>),
    Object(Vec<(JStr<'a>, Value<'a>)>),
}

impl<'a> Value<'a> {
    /// Member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Value::Object(items) => items.iter().find(|(k, _)| k.eq_str(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string value without lone surrogates.
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Str(s) => s.as_str(),
            _ => None,
        }
    }
}

/// Write `v` canonically; object members whose key is in `skip` are left out (top level
/// only). Members are sorted by code point; the parser has already rejected duplicates.
pub fn write_value(out: &mut Vec<u8>, v: &Value<'_>, skip: &[&str]) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(t) => {
            // int("-0") is 0; every other literal JSON allows is already canonical.
            if *t == "-0" {
                out.push(b'0');
            } else {
                out.extend_from_slice(t.as_bytes());
            }
        }
        Value::Float(f) => write_float(out, *f),
        Value::Str(s) => s.write(out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item, &[]);
            }
            out.push(b']');
        }
        Value::Object(items) => {
            let keep = |k: &JStr<'_>| !skip.iter().any(|s| k.eq_str(s));
            let sorted = items
                .windows(2)
                .all(|w| w[0].0.cmp_code_points(&w[1].0) == Ordering::Less);
            out.push(b'{');
            let mut first = true;
            let mut member = |k: &JStr<'_>, val: &Value<'_>| {
                if !first {
                    out.push(b',');
                }
                first = false;
                k.write(out);
                out.push(b':');
                write_value(out, val, &[]);
            };
            if sorted {
                // Lines written canonically are already in order: no allocation.
                for (k, val) in items.iter().filter(|(k, _)| keep(k)) {
                    member(k, val);
                }
            } else {
                let mut order: Vec<&(JStr<'_>, Value<'_>)> =
                    items.iter().filter(|(k, _)| keep(k)).collect();
                order.sort_by(|a, b| a.0.cmp_code_points(&b.0));
                for (k, val) in order {
                    member(k, val);
                }
            }
            out.push(b'}');
        }
    }
}

// ------------------------------------------------------------------------------------------
// Parser
// ------------------------------------------------------------------------------------------

/// Why a line is not JSON, with the byte offset where parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub pos: usize,
    pub msg: &'static str,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (char {})", self.msg, self.pos)
    }
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

/// Parse one JSON document (surrounding whitespace allowed), as Python's `json.loads` with
/// one deliberate difference: a repeated key in an object is an error rather than "last
/// wins", since no encoder of a dict can produce it.
pub fn parse(s: &str) -> Result<Value<'_>, ParseError> {
    let mut p = Parser {
        s,
        b: s.as_bytes(),
        i: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(p.err("extra data after the JSON value"));
    }
    Ok(v)
}

impl<'a> Parser<'a> {
    fn err(&self, msg: &'static str) -> ParseError {
        ParseError { pos: self.i, msg }
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn lit(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        let Some(&c) = self.b.get(self.i) else {
            return Err(self.err("expecting value"));
        };
        match c {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => Ok(Value::Str(self.string()?)),
            b'n' if self.lit(b"null") => Ok(Value::Null),
            b't' if self.lit(b"true") => Ok(Value::Bool(true)),
            b'f' if self.lit(b"false") => Ok(Value::Bool(false)),
            b'N' if self.lit(b"NaN") => Ok(Value::Float(f64::NAN)),
            b'I' if self.lit(b"Infinity") => Ok(Value::Float(f64::INFINITY)),
            b'-' if self.b[self.i..].starts_with(b"-Infinity") => {
                self.i += 9;
                Ok(Value::Float(f64::NEG_INFINITY))
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(self.err("expecting value")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.i < self.b.len() && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Value<'a>, ParseError> {
        let start = self.i;
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("expecting value")),
        }
        let mut is_float = false;
        // Python's number pattern takes a fraction or exponent only when complete.
        if self.b.get(self.i) == Some(&b'.')
            && self.b.get(self.i + 1).is_some_and(u8::is_ascii_digit)
        {
            self.i += 1;
            self.digits();
            is_float = true;
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            let save = self.i;
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                self.i = save;
            } else {
                is_float = true;
            }
        }
        let text = &self.s[start..self.i];
        if is_float {
            // Rust's parse is correctly rounded, like Python's float(); overflow gives inf.
            text.parse::<f64>()
                .map(Value::Float)
                .map_err(|_| self.err("bad number"))
        } else {
            Ok(Value::Int(text))
        }
    }

    fn hex4(&mut self) -> Result<u16, ParseError> {
        let h = self
            .b
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("invalid \\uXXXX escape"))?;
        let mut v: u16 = 0;
        for &c in h {
            let d = (c as char)
                .to_digit(16)
                .ok_or_else(|| self.err("invalid \\uXXXX escape"))?;
            v = (v << 4) | d as u16;
        }
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<JStr<'a>, ParseError> {
        self.i += 1; // opening quote
        let start = self.i;
        let mut plain = true;
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            match c {
                b'"' => {
                    let raw = &self.s[start..self.i];
                    self.i += 1;
                    return Ok(if plain {
                        JStr::Plain(raw)
                    } else {
                        JStr::Raw(raw)
                    });
                }
                b'\\' => break,
                0x00..=0x1f => return Err(self.err("invalid control character in string")),
                0x7f.. => {
                    plain = false;
                    self.i += 1;
                }
                _ => self.i += 1,
            }
        }
        // Escapes present: decode into UTF-16 units.
        let mut units: Vec<u16> = self.s[start..self.i].encode_utf16().collect();
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(JStr::Units(units));
                }
                b'\\' => {
                    self.i += 1;
                    let Some(&e) = self.b.get(self.i) else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += 1;
                    let unit = match e {
                        b'"' => b'"' as u16,
                        b'\\' => b'\\' as u16,
                        b'/' => b'/' as u16,
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => 10,
                        b'r' => 13,
                        b't' => 9,
                        b'u' => self.hex4()?,
                        _ => {
                            self.i -= 1;
                            return Err(self.err("invalid escape"));
                        }
                    };
                    units.push(unit);
                }
                0x00..=0x1f => return Err(self.err("invalid control character in string")),
                _ => {
                    let ch = self.s[self.i..].chars().next().unwrap_or('\u{fffd}');
                    let mut tmp = [0u16; 2];
                    units.extend_from_slice(ch.encode_utf16(&mut tmp));
                    self.i += ch.len_utf8();
                }
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value<'a>, ParseError> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.err("expecting ',' delimiter")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value<'a>, ParseError> {
        let start = self.i;
        self.i += 1;
        let mut items: Vec<(JStr<'a>, Value<'a>)> = Vec::with_capacity(8);
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Value::Object(items));
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return Err(self.err("expecting property name enclosed in double quotes"));
            }
            let key = self.string()?;
            self.ws();
            if self.b.get(self.i) != Some(&b':') {
                return Err(self.err("expecting ':' delimiter"));
            }
            self.i += 1;
            self.ws();
            let v = self.value(depth + 1)?;
            items.push((key, v));
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    if has_duplicate_key(&items) {
                        return Err(ParseError {
                            pos: start,
                            msg: "duplicate key in object",
                        });
                    }
                    self.i += 1;
                    return Ok(Value::Object(items));
                }
                _ => return Err(self.err("expecting ',' delimiter")),
            }
        }
    }
}

/// Whether two keys of an object are the same string (compared by code point, so `"a"` and
/// `"\u0061"` are the same key). `O(n log n)`, so a huge crafted object cannot stall a
/// verification.
fn has_duplicate_key(items: &[(JStr<'_>, Value<'_>)]) -> bool {
    if items.len() <= 16 {
        return items.iter().enumerate().any(|(i, (a, _))| {
            items[..i]
                .iter()
                .any(|(b, _)| a.cmp_code_points(b) == Ordering::Equal)
        });
    }
    let mut keys: Vec<&JStr<'_>> = items.iter().map(|(k, _)| k).collect();
    keys.sort_by(|a, b| a.cmp_code_points(b));
    keys.windows(2)
        .any(|w| w[0].cmp_code_points(w[1]) == Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        let v = parse(s).unwrap();
        let mut out = Vec::new();
        write_value(&mut out, &v, &[]);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn float_repr_matches_python() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (-2.5, "-2.5"),
            (-0.0, "-0.0"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (123.456, "123.456"),
            (1712345678.0, "1712345678.0"),
            (1712345678.1234567, "1712345678.1234567"),
            // An exact tie between two shortest strings: Python rounds half to even.
            (2f64.powi(43) + 0.3125, "8796093022208.312"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(*f), *want, "{f:e}");
        }
    }

    #[test]
    fn strings_escape_like_ensure_ascii() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{7f}é€😀/");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""a\"b\\c\n\r\t\b\f\u0001\u007f\u00e9\u20ac\ud83d\ude00/""#
        );
        let mut out = Vec::new();
        write_code_points(&mut out, [0x61, 0xd800, 0x1f600]);
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\ud800\ud83d\ude00""#);
    }

    #[test]
    fn parse_and_rewrite_canonically() {
        assert_eq!(
            canon(r#" {"b": [1, 2.50, -0, 1E5, "x\/y"], "a": null, "é": true, "z": {}} "#),
            r#"{"a":null,"b":[1,2.5,0,100000.0,"x/y"],"z":{},"\u00e9":true}"#
        );
        assert_eq!(
            canon(r#"[NaN, Infinity, -Infinity, 1e400]"#),
            "[NaN,Infinity,-Infinity,Infinity]"
        );
        // Lone surrogates survive; a pair written as escapes equals the raw character.
        assert_eq!(canon(r#""\ud800x""#), r#""\ud800x""#);
        assert_eq!(canon("\"😀\""), r#""\ud83d\ude00""#);
        assert_eq!(
            canon("123456789012345678901234567890"),
            "123456789012345678901234567890"
        );
    }

    #[test]
    fn keys_sort_by_code_point_not_utf16() {
        // U+E000 < U+1F600 by code point, although its UTF-16 unit is larger than 0xD83D.
        assert_eq!(
            canon(r#"{"\ud83d\ude00": 1, "\ue000": 2, "A": 3}"#),
            r#"{"A":3,"\ue000":2,"\ud83d\ude00":1}"#
        );
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "",
            "{",
            "{\"a\":1,}",
            "[1 2]",
            "\"abc",
            "{\"a\":1}x",
            "\"\\x\"",
            "\"\\u12\"",
            "{\"a\":1,\"a\":2}",
            "{\"a\":1,\"\\u0061\":2}",
            "\"a\u{1}\"",
            "01",
            "-",
            "tru",
            "{a:1}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(&deep).unwrap_err().msg, "nesting too deep");
    }

    #[test]
    fn python_number_edge_cases() {
        // "1." and "1e" are not numbers in Python's scanner: the value ends before them.
        assert!(parse("1.").is_err());
        assert!(parse("1e").is_err());
        assert_eq!(parse("1.5e3").unwrap(), Value::Float(1500.0));
        assert_eq!(parse("-12").unwrap(), Value::Int("-12"));
    }
}

#[cfg(test)]
mod dup_tests {
    use super::*;

    #[test]
    fn duplicate_keys_in_large_objects() {
        let mut text = String::from("{");
        for i in 0..5000 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        let ok = format!("{}\"z\":0}}", text);
        assert!(parse(&ok).is_ok());
        let dup = format!("{}\"k4999\":0}}", text);
        assert_eq!(parse(&dup).unwrap_err().msg, "duplicate key in object");
    }
}
