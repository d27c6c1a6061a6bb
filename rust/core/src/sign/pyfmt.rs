//! Python's text forms that signed messages depend on (API.md section 10, point 2).
//!
//! The canonical bytes of a memory message contain `str(float)` of a `time.time()` value.
//! Python prints the shortest digit string that round-trips (as Rust does), but lays it out
//! by its own rules: fixed notation with a trailing `.0` for integral values while the
//! decimal point sits within 16 digits, otherwise scientific notation with a signed,
//! two-digit-minimum exponent (`1e+16`, `1.5e-05`).

use std::fmt::Write;

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
    // Rust's `{:e}` gives a shortest round-trip digit string, `d[.ddd]e<exp>`. When two
    // strings of that length both round-trip and are equally close (an exact tie), Rust may
    // pick either, while Python rounds half to even. The correctly rounded string of the same
    // length (exact-mode formatting rounds ties to even) is Python's choice whenever it
    // round-trips; otherwise (asymmetric intervals at powers of two) only the shortest works.
    let shortest = format!("{ax:e}");
    let n_digits = shortest
        .split('e')
        .next()
        .map_or(1, |m| m.chars().filter(char::is_ascii_digit).count());
    let rounded = format!("{:.*e}", n_digits.saturating_sub(1), ax);
    let sci = if rounded.parse::<f64>() == Ok(ax) {
        rounded
    } else {
        shortest
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let n = digits.len() as i32;
    let decpt = exp + 1; // value = 0.<digits> * 10^decpt
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

#[cfg(test)]
mod tests {
    use super::float_repr;

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
