//! `proxilion._core` MAC functions: HMAC-SHA256 sign/verify, SHA-256, keyed BLAKE3.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use proxilion_core::mac as core;

use crate::convert::{hex_str, text_or_bytes};

/// Inputs at least this long are hashed with the GIL released.
const DETACH_THRESHOLD: usize = 64 * 1024;

fn map_err(e: core::MacError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn run<T: Send>(py: Python<'_>, len: usize, f: impl FnOnce() -> T + Send) -> T {
    if len >= DETACH_THRESHOLD {
        py.detach(f)
    } else {
        f()
    }
}

/// HMAC-SHA256 of `message` under `key`, as 64 lower-case hex characters.
#[pyfunction]
fn hmac_sha256_hex<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    message: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyString>> {
    let k = text_or_bytes(key, "key")?;
    let m = text_or_bytes(message, "message")?;
    let tag = run(py, m.len(), || core::hmac_sha256(&k, &m)).map_err(map_err)?;
    Ok(hex_str(py, &core::hex32(&tag)))
}

/// HMAC-SHA256 of `message` under `key`, as 32 raw bytes.
#[pyfunction]
fn hmac_sha256<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    message: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let k = text_or_bytes(key, "key")?;
    let m = text_or_bytes(message, "message")?;
    let tag = run(py, m.len(), || core::hmac_sha256(&k, &m)).map_err(map_err)?;
    Ok(PyBytes::new(py, &tag))
}

/// Constant-time check of an HMAC-SHA256 tag given as hex `str` or raw `bytes`.
#[pyfunction]
fn hmac_sha256_verify(
    py: Python<'_>,
    key: &Bound<'_, PyAny>,
    message: &Bound<'_, PyAny>,
    tag: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let k = text_or_bytes(key, "key")?;
    let m = text_or_bytes(message, "message")?;
    if let Ok(t) = tag.cast::<pyo3::types::PyString>() {
        // A tag with surrogates is not hex: a forged tag, not an error.
        let Ok(t) = t.to_str() else {
            return Ok(false);
        };
        return run(py, m.len(), || core::hmac_sha256_verify_hex(&k, &m, t)).map_err(map_err);
    }
    let t = text_or_bytes(tag, "tag")?;
    run(py, m.len(), || core::hmac_sha256_verify(&k, &m, &t)).map_err(map_err)
}

/// Constant-time equality of two `str`/`bytes` values (lengths are not secret).
#[pyfunction]
fn constant_time_eq(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<bool> {
    let a = text_or_bytes(a, "a")?;
    let b = text_or_bytes(b, "b")?;
    Ok(core::ct_eq(&a, &b))
}

/// SHA-256 of `data`, as 64 lower-case hex characters.
#[pyfunction]
fn sha256_hex<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let d = text_or_bytes(data, "data")?;
    let digest = run(py, d.len(), || core::sha256(&d));
    Ok(hex_str(py, &core::hex32(&digest)))
}

/// Keyed BLAKE3 of `message` (key: exactly 32 bytes), as 64 lower-case hex characters.
#[pyfunction]
fn blake3_keyed_hex(
    py: Python<'_>,
    key: &Bound<'_, PyAny>,
    message: &Bound<'_, PyAny>,
) -> PyResult<String> {
    let k = text_or_bytes(key, "key")?;
    let m = text_or_bytes(message, "message")?;
    let tag = run(py, m.len(), || core::blake3_keyed(&k, &m)).map_err(map_err)?;
    Ok(tag.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(hmac_sha256_hex, m)?)?;
    m.add_function(wrap_pyfunction!(hmac_sha256, m)?)?;
    m.add_function(wrap_pyfunction!(hmac_sha256_verify, m)?)?;
    m.add_function(wrap_pyfunction!(constant_time_eq, m)?)?;
    m.add_function(wrap_pyfunction!(sha256_hex, m)?)?;
    m.add_function(wrap_pyfunction!(blake3_keyed_hex, m)?)?;
    Ok(())
}
