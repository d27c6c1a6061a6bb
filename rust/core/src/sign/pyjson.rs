//! The pieces of Python's `json.dumps(obj, sort_keys=True)` text (default separators `", "`
//! and `": "`, `ensure_ascii=True`, `allow_nan=True`) that signed canonical forms contain
//! (API.md section 10): string escapes, integers and floats. The walk over Python objects is in
//! the bindings; anything they cannot reproduce exactly is left to Python's own encoder.

use super::pyfmt;

/// Append `s` as a JSON string literal, escaped exactly as Python's `ensure_ascii` encoder
/// does: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`; every other character outside `' '..='~'`
/// as `\uXXXX` (lower-case hex; characters beyond the BMP as a surrogate pair).
pub fn write_str(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    if bytes.iter().all(|&b| plain(b)) {
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    out.push('"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if plain(b) {
            continue;
        }
        if b >= 0x80 && !is_char_start(b) {
            continue; // continuation byte, handled with its lead byte
        }
        out.push_str(&s[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                // `i` starts a character (ASCII control, DEL or a multi-byte lead).
                let c = s[i..].chars().next().unwrap_or('\u{fffd}');
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    push_u(out, *u);
                }
                start = i + c.len_utf8();
                continue;
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// A byte written as itself: printable ASCII other than `"` and `\`.
fn plain(b: u8) -> bool {
    (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\'
}

fn is_char_start(b: u8) -> bool {
    b & 0xc0 != 0x80
}

fn push_u(out: &mut String, u: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((u >> shift) & 0xf)] as char);
    }
}

/// Append a float as Python's encoder writes it: `float.__repr__`, and `NaN`, `Infinity`,
/// `-Infinity` for the non-finite values.
pub fn write_float(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("NaN");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        out.push_str(&pyfmt::float_repr(x));
    }
}

/// Append `repr(x)` of a float (`nan`, `inf`, `-inf` for the non-finite values).
pub fn write_float_repr(out: &mut String, x: f64) {
    pyfmt::with_repr(x, |text| out.push_str(text));
}

/// Append an integer (decimal, as `str(int)`).
pub fn write_int(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    let mut n = v.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Every byte is an ASCII digit.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, text);
        out
    }

    #[test]
    fn escapes_as_python() {
        // Expected values are what CPython's json.dumps prints.
        assert_eq!(s(""), r#""""#);
        assert_eq!(s("plain ~"), r#""plain ~""#);
        assert_eq!(s("a\"b\\c/d"), r#""a\"b\\c/d""#);
        assert_eq!(s("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(s("\u{0}\u{1f}\u{7f}"), r#""\u0000\u001f\u007f""#);
        assert_eq!(s("é€"), r#""\u00e9\u20ac""#);
        assert_eq!(s("x😀y"), r#""x\ud83d\ude00y""#);
        assert_eq!(s("\u{ffff}\u{10ffff}"), r#""\uffff\udbff\udfff""#);
    }

    #[test]
    fn numbers_as_python() {
        let mut out = String::new();
        for x in [
            1.0,
            -0.0,
            1e16,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.1,
        ] {
            write_float(&mut out, x);
            out.push(' ');
        }
        write_int(&mut out, i64::MIN);
        assert_eq!(
            out,
            "1.0 -0.0 1e+16 NaN Infinity -Infinity 0.1 -9223372036854775808"
        );
    }
}
