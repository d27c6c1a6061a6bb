//! Python's text forms that signed messages depend on (API.md section 10, point 2).
//!
//! The canonical bytes of a memory message contain `str(float)` of a `time.time()` value.
//! Python prints the shortest digit string that round-trips (as Rust does), but lays it out
//! by its own rules: fixed notation with a trailing `.0` for integral values while the
//! decimal point sits within 16 digits, otherwise scientific notation with a signed,
//! two-digit-minimum exponent (`1e+16`, `1.5e-05`).

use std::fmt::Write;

/// Whether zmij's own text of a float of magnitude `ax` is Python's: for 1e-4 <= |x| < 1e16
/// its layout (fixed notation, ".0" for integral values) is exactly Python's, so its text is
/// the answer unless a tie is possible. (zmij, a Schubfach shortest round-trip formatter,
/// replaced ryu here: same text, checked on 119 million values across this range and by the
/// tests below and in tests/test_sign.py, in about half the time.)
fn zmij_is_python(ax: f64) -> bool {
    (1e-4..1e16).contains(&ax) && !may_tie(ax)
}

/// `f(repr(x))`, the text formatted on the stack for the usual values (zmij's own text,
/// where its layout is Python's and no tie is possible), else [`float_repr`]'s.
pub fn with_repr<R>(x: f64, f: impl FnOnce(&str) -> R) -> R {
    if zmij_is_python(x.abs()) {
        f(zmij::Buffer::new().format_finite(x))
    } else {
        f(&float_repr(x))
    }
}

/// `repr(x)` (equivalently `str(x)`) of a Python `float`.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    let ax = x.abs();
    let mut buf = zmij::Buffer::new();
    if zmij_is_python(ax) {
        return buf.format_finite(x).to_owned();
    }
    // `zmij` gives a shortest round-trip digit string. When two strings of that length both
    // round-trip and are equally close (an exact tie), Python rounds half to even. A tie
    // needs the exact binary value to have at most 18 significant decimal digits, which is
    // rare (never for `time.time()` values); only then is the correctly rounded string of the
    // same length (exact-mode formatting rounds ties to even) computed, and used when it
    // round-trips.
    let (mut digits, mut decpt) = split_digits(buf.format_finite(ax));
    if may_tie(ax) {
        let rounded = format!("{:.*e}", digits.len().saturating_sub(1), ax);
        if rounded.parse::<f64>() == Ok(ax) {
            (digits, decpt) = split_digits(&rounded);
        }
    }
    let n = digits.len() as i32;
    let exp = decpt - 1; // value = 0.<digits> * 10^decpt = d.ddd * 10^exp
    let mut out = String::with_capacity(digits.len() + 8);
    if x.is_sign_negative() {
        out.push('-');
    }
    if decpt <= -4 || decpt > 16 {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else if decpt <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat('0').take((-decpt) as usize));
        out.push_str(&digits);
    } else if decpt >= n {
        out.push_str(&digits);
        out.extend(std::iter::repeat('0').take((decpt - n) as usize));
        out.push_str(".0");
    } else {
        out.push_str(&digits[..decpt as usize]);
        out.push('.');
        out.push_str(&digits[decpt as usize..]);
    }
    out
}

/// Significant digits (no leading/trailing zeros) and decimal-point position of a positive
/// number printed as `ddd[.ddd][e[-]dd]`: value = 0.<digits> * 10^decpt.
fn split_digits(text: &str) -> (String, i32) {
    let (mantissa, exp10) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut decpt = int_part.len() as i32 + exp10;
    let mut digits: String = int_part.chars().chain(frac_part.chars()).collect();
    let lead = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..lead);
    decpt -= lead as i32;
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    if digits.is_empty() {
        digits.push('0');
    }
    (digits, decpt)
}

/// Whether the exact value of the finite positive `x` has at most 18 significant decimal
/// digits (only then can two shortest candidates be equally close to it).
pub fn may_tie(x: f64) -> bool {
    let bits = x.to_bits();
    let exp_bits = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    let (mut m, mut e) = if exp_bits == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), exp_bits - 1075)
    };
    if m == 0 {
        return true;
    }
    let tz = m.trailing_zeros();
    m >>= tz;
    e += tz as i32;
    // x = m * 2^e with m odd.
    let mut v: u128 = if e >= 0 {
        if e > 74 {
            return false; // >= 2^74 * odd: no factor 5, so >= 23 significant digits
        }
        u128::from(m) << e
    } else {
        let k = (-e) as u32;
        if k > 27 {
            return false; // m * 5^k has more than 18 digits
        }
        u128::from(m) * u128::from(5u64.pow(k)) // 5^27 < 2^63
    };
    // Strip trailing decimal zeros; `v` is odd (none) whenever `e < 0`, so the 128-bit
    // division runs only for integral values.
    while v & 1 == 0 && v % 5 == 0 {
        v /= 10;
    }
    v < 1_000_000_000_000_000_000 // at most 18 digits
}

#[cfg(test)]
mod tests {
    use super::{float_repr, may_tie};

    #[test]
    fn tie_candidates() {
        assert!(may_tie(0.5));
        assert!(may_tie(1723995744893766.2));
        assert!(may_tie(1e22));
        assert!(!may_tie(1712345678.1234567));
        assert!(!may_tie(0.1));
        assert!(!may_tie(f64::MAX));
        assert!(!may_tie(5e-324));
    }

    /// In the fast path's range zmij must print exactly what ryu (the formatter it replaced,
    /// whose layout there is Python's) prints: a deterministic sample over every binade of
    /// the range, plus `time.time()`-like and short decimal values.
    #[test]
    fn zmij_matches_ryu_in_fixed_range() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut checked = 0;
        for _ in 0..100_000 {
            let r = next();
            let binade = 1009 + r % 68; // 2^-14 .. 2^53
            let bits = (binade << 52) | (next() & ((1 << 52) - 1));
            let timestamp = 1.0e9 + ((r >> 12) % 2_000_000_000_000_000) as f64 / 1e6;
            let short = ((r >> 20) % 100_000_000) as f64 / 10f64.powi((r % 7) as i32);
            for x in [
                f64::from_bits(bits),
                timestamp,
                short,
                1e16 - (r % 4096) as f64,
            ] {
                if (1e-4..1e16).contains(&x) {
                    for v in [x, -x] {
                        let (mut a, mut b) = (zmij::Buffer::new(), ryu::Buffer::new());
                        assert_eq!(a.format_finite(v), b.format_finite(v), "{v:e}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 795_296);
    }

    #[test]
    fn python_layouts() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (1712345678.0, "1712345678.0"),
            (1712345678.1234567, "1712345678.1234567"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e16, "1.2345e+16"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e22, "1e+22"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (9999999999999998.0, "9999999999999998.0"),
            // Exact ties between two shortest candidates: Python rounds half to even.
            (1723995744893766.2, "1723995744893766.2"),
            (83382779036323.12, "83382779036323.12"),
            (-2092201583367991.2, "-2092201583367991.2"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(*x), *want, "{x:e}");
        }
    }
}
