//! Argument conversion shared by every area of the binding.

use std::borrow::Cow;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};

/// Borrow the bytes of a `str` (UTF-8) or `bytes`/`bytearray` argument.
///
/// A `str` holding lone surrogates cannot be encoded as UTF-8 and is rejected with
/// `ValueError` naming the argument; any other type is a `TypeError` naming the type.
pub fn text_or_bytes<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(s) = obj.cast::<PyString>() {
        // Borrowed: a `str` is immutable and caches its UTF-8 form for its whole life, so the
        // bytes stay valid (and unchanged) while the caller holds `obj`, GIL released or not.
        return match s.to_str() {
            Ok(t) => Ok(Cow::Borrowed(t.as_bytes())),
            Err(_) => Err(PyValueError::new_err(format!(
                "{what} is not valid Unicode text (it contains surrogate code points)"
            ))),
        };
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Cow::Owned(b.to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be str or bytes, not {}",
        obj.get_type().name()?
    )))
}

/// A 64-character lower-case hex digest (from [`proxilion_core::mac::hex32`]) as a `str`,
/// built straight from the stack buffer.
pub fn hex_str<'py>(py: Python<'py>, hex: &[u8; 64]) -> Bound<'py, PyString> {
    PyString::new(py, proxilion_core::mac::hex32_str(hex))
}

/// The `str` argument `obj`, or a `TypeError` "`{what}` must be str, not {type}".
pub fn py_str<'a, 'py>(
    obj: &'a Bound<'py, PyAny>,
    what: &str,
) -> PyResult<&'a Bound<'py, PyString>> {
    if let Ok(s) = obj.cast_exact::<PyString>() {
        // One pointer comparison (the subtype test below is a call under the stable ABI).
        return Ok(s);
    }
    obj.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be str, not {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })
}

/// Borrow the UTF-8 text of the `str` argument `obj`: a `TypeError` for another type (see
/// [`py_str`]), a `ValueError` naming the argument when it holds lone surrogates.
pub fn str_arg<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a str> {
    py_str(obj, what)?.to_str().map_err(|_| {
        PyValueError::new_err(format!(
            "{what} is not valid Unicode text (it contains surrogate code points)"
        ))
    })
}

/// `time.time()`, computed as CPython does: the system (real-time) clock in nanoseconds,
/// converted to seconds exactly as `_PyTime_AsSecondsDouble` does. `None` before 1970 (the
/// caller then asks `time.time` itself).
pub fn time_time() -> Option<f64> {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let ns = i64::try_from(d.as_nanos()).ok()?;
    Some(if ns % 1_000_000_000 == 0 {
        (ns / 1_000_000_000) as f64
    } else {
        ns as f64 / 1e9
    })
}
