//! `proxilion._core` agent area: intent capsules built and MACed in one call, ids, intent
//! categories (twins in `proxilion/_reference/agent.py`). Agent messages are signed by
//! `SigningKeys.agent_sign` / `agent_verify` (sign.rs).
//!
//! * `uuid4_batch`: version-4 UUID texts from random bytes (the id pool of
//!   `proxilion.security._keys` formats 32 at a time).
//! * `capsule_sign` / `capsule_verify`: both tags of an intent capsule (`signature` over the
//!   original's canonical text, `seal` over every field), the texts built natively.
//! * `intent_category`: the keyword test of `detect_category`.
//! * `capsule_create` (`agent/capsule.rs`): a whole new capsule in one call.
//! * `IntentGate` (`agent/gate.rs`): `IntentGuard.validate_tool_call` in one call.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyFrozenSet, PyList, PySet, PyString, PyTuple};

use proxilion_core::agent::{self as core, Civil};

use crate::convert::hex_str;
use crate::sign::{render, sorted_json_into, SigningKeys};

mod capsule;
mod gate;

/// Version-4 UUID texts, one per 16 bytes of `data` (its length must be a multiple of 16).
#[pyfunction]
fn uuid4_batch(data: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let b = data.cast::<PyBytes>().map_err(|_| {
        PyTypeError::new_err(format!(
            "data must be bytes, not {}",
            data.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let raw = b.as_bytes();
    if raw.len() % 16 != 0 {
        return Err(PyValueError::new_err(format!(
            "data must hold a multiple of 16 bytes, not {}",
            raw.len()
        )));
    }
    Ok(raw
        .chunks_exact(16)
        .map(|c| {
            let mut s = String::with_capacity(36);
            let mut a = [0u8; 16];
            a.copy_from_slice(c);
            core::write_uuid4(&mut s, &a);
            s
        })
        .collect())
}

/// `f"{x}"` appended to `out`; false if it holds lone surrogates.
fn push_rendered(out: &mut String, x: &Bound<'_, PyAny>) -> PyResult<bool> {
    let (t, ok) = render(x)?;
    out.push_str(&t);
    Ok(ok)
}

/// `str(sorted(values))` appended to `out`: natively for sets, frozensets, lists and tuples of
/// exact, printable-ASCII `str`s; by Python for anything else (its errors propagate).
fn push_sorted_repr(out: &mut String, values: &Bound<'_, PyAny>) -> PyResult<bool> {
    if values.cast_exact::<PySet>().is_ok_and(|s| s.is_empty()) {
        out.push_str("[]"); // the usual empty `allowed_actions`
        return Ok(true);
    }
    // One item (a capsule for one tool): nothing to collect or sort.
    let single = if let Ok(s) = values.cast_exact::<PySet>() {
        (s.len() == 1).then(|| s.iter().next()).flatten()
    } else if let Ok(l) = values.cast_exact::<PyList>() {
        (l.len() == 1).then(|| l.get_item(0).ok()).flatten()
    } else {
        None
    };
    if let Some(item) = single {
        if let Some(t) = item
            .cast_exact::<PyString>()
            .ok()
            .and_then(|s| s.to_str().ok())
        {
            let start = out.len();
            out.push('[');
            if core::write_str_repr(out, t) {
                out.push(']');
                return Ok(true);
            }
            out.truncate(start);
        }
    }
    let items: Option<Vec<Bound<'_, PyAny>>> = if let Ok(s) = values.cast_exact::<PySet>() {
        Some(s.iter().collect())
    } else if let Ok(s) = values.cast_exact::<PyFrozenSet>() {
        Some(s.iter().collect())
    } else if let Ok(l) = values.cast_exact::<PyList>() {
        Some(l.iter().collect())
    } else if let Ok(t) = values.cast_exact::<PyTuple>() {
        Some(t.iter().collect())
    } else {
        None
    };
    if let Some(items) = items {
        let mut texts: Vec<&str> = Vec::with_capacity(items.len());
        let mut plain = true;
        for it in &items {
            match it
                .cast_exact::<PyString>()
                .ok()
                .and_then(|s| s.to_str().ok())
            {
                Some(t) => texts.push(t),
                None => {
                    plain = false;
                    break;
                }
            }
        }
        if plain {
            // Code-point order of Python's sort is the byte order of the UTF-8 texts.
            texts.sort_unstable();
            let start = out.len();
            out.push('[');
            let mut ok = true;
            for (j, t) in texts.iter().enumerate() {
                if j > 0 {
                    out.push_str(", ");
                }
                if !core::write_str_repr(out, t) {
                    ok = false;
                    break;
                }
            }
            if ok {
                out.push(']');
                return Ok(true);
            }
            out.truncate(start);
        }
    }
    let py = values.py();
    let sorted = py
        .import(intern!(py, "builtins"))?
        .getattr(intern!(py, "sorted"))?
        .call1((values,))?;
    push_rendered(out, &sorted.str()?.into_any())
}

fn utc(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static UTC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    UTC.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("datetime")?
                .getattr("timezone")?
                .getattr("utc")?
                .unbind(),
        )
    })
    .map(|u| u.bind(py))
}

fn datetime_type(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static DT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    DT.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("datetime")?.getattr("datetime")?.unbind())
    })
    .map(|u| u.bind(py))
}

/// Texts of the exact UTC `datetime`s rendered last. A `datetime` is immutable, and each
/// entry holds its object (so no other object can take its identity): a capsule checked
/// again reads its two timestamps here instead of through eight attribute reads each.
struct IsoCache {
    entries: Vec<(Py<PyAny>, String)>,
    /// Slot the next new entry replaces once the cache is full.
    next: usize,
}

const ISO_CACHE_SIZE: usize = 16;

static ISO_CACHE: std::sync::Mutex<IsoCache> = std::sync::Mutex::new(IsoCache {
    entries: Vec::new(),
    next: 0,
});

/// Append the cached text of `dt`, if any.
fn push_cached_isoformat(out: &mut String, dt: &Bound<'_, PyAny>) -> bool {
    let Ok(cache) = ISO_CACHE.lock() else {
        return false;
    };
    match cache
        .entries
        .iter()
        .find(|(o, _)| o.as_ptr() == dt.as_ptr())
    {
        Some((_, text)) => {
            out.push_str(text);
            true
        }
        None => false,
    }
}

fn remember_isoformat(dt: &Bound<'_, PyAny>, text: &str) {
    let entry = (dt.clone().unbind(), text.to_owned());
    let evicted = {
        let Ok(mut cache) = ISO_CACHE.lock() else {
            return;
        };
        if cache.entries.len() < ISO_CACHE_SIZE {
            cache.entries.push(entry);
            None
        } else {
            let at = cache.next;
            cache.next = (at + 1) % ISO_CACHE_SIZE;
            Some(std::mem::replace(&mut cache.entries[at], entry))
        }
    };
    // Released after the lock: dropping the last reference deallocates the object.
    drop(evicted);
}

/// The fields of an exact `datetime` whose `tzinfo` is `timezone.utc`, else `None`, read
/// from its pickle state in one call: `dt.__reduce__()` is `(datetime, (state, tzinfo))`,
/// `state` the 10 bytes year (2, big-endian), month, day, hour, minute, second,
/// microsecond (3, big-endian) of the `datetime` C type (protocol 2 form, no fold bit).
fn utc_civil(dt: &Bound<'_, PyAny>) -> PyResult<Option<Civil>> {
    let py = dt.py();
    let reduced = dt.call_method0(intern!(py, "__reduce__"))?;
    let Ok(reduced) = reduced.cast::<PyTuple>() else {
        return Ok(None);
    };
    let Ok(args) = reduced.get_item(1) else {
        return Ok(None);
    };
    let Ok(args) = args.cast::<PyTuple>() else {
        return Ok(None);
    };
    if args.len() != 2 || !args.get_item(1)?.is(utc(py)?) {
        return Ok(None);
    }
    let state = args.get_item(0)?;
    let Ok(state) = state.cast::<PyBytes>() else {
        return Ok(None);
    };
    let b = state.as_bytes();
    if b.len() != 10 || b[2] > 12 {
        return Ok(None);
    }
    let n = |i: usize| i64::from(b[i]);
    Ok(Some(Civil {
        year: n(0) << 8 | n(1),
        month: n(2),
        day: n(3),
        hour: n(4),
        minute: n(5),
        second: n(6),
        microsecond: n(7) << 16 | n(8) << 8 | n(9),
    }))
}

/// `dt.isoformat()` appended to `out`: natively for exact `datetime`s in `timezone.utc`,
/// else by the object's own `isoformat` (errors propagate).
fn push_isoformat(out: &mut String, dt: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = dt.py();
    if dt.get_type().is(datetime_type(py)?) {
        if push_cached_isoformat(out, dt) {
            return Ok(true);
        }
        if let Some(t) = utc_civil(dt)? {
            let start = out.len();
            core::write_isoformat_utc(out, &t);
            remember_isoformat(dt, &out[start..]);
            return Ok(true);
        }
    }
    let text = dt.call_method0(intern!(py, "isoformat"))?;
    push_rendered(out, &text)
}

/// Both canonical texts of a capsule in one buffer: the sealed text is its prefix, the
/// signed text (the original's form), then the rest; the signed text is the range `signed`.
struct CapsuleTexts {
    sealed: String,
    signed_end: usize,
}

impl CapsuleTexts {
    fn signed(&self) -> &[u8] {
        &self.sealed.as_bytes()[SEAL_PREFIX.len()..self.signed_end]
    }

    fn sealed(&self) -> &[u8] {
        self.sealed.as_bytes()
    }
}

const SEAL_PREFIX: &str = "proxilion-capsule-v2|";

/// The capsule's two canonical texts: `signed` (the original's form) and `sealed`; `None`
/// when some part holds lone surrogates.
fn capsule_texts(
    capsule: &Bound<'_, PyAny>,
    meta: &Bound<'_, PyAny>,
) -> PyResult<Option<CapsuleTexts>> {
    let py = capsule.py();
    let mut s = String::with_capacity(320);
    s.push_str(SEAL_PREFIX);
    let mut ok = true;
    ok &= push_rendered(&mut s, &capsule.getattr(intern!(py, "capsule_id"))?)?;
    s.push('|');
    ok &= push_rendered(&mut s, &capsule.getattr(intern!(py, "user_id"))?)?;
    s.push('|');
    ok &= push_rendered(&mut s, &capsule.getattr(intern!(py, "intent"))?)?;
    s.push('|');
    let category = capsule
        .getattr(intern!(py, "intent_category"))?
        .getattr(intern!(py, "_value_"))?;
    ok &= push_rendered(&mut s, &category)?;
    s.push('|');
    ok &= push_sorted_repr(&mut s, &capsule.getattr(intern!(py, "allowed_tools"))?)?;
    s.push('|');
    ok &= push_sorted_repr(&mut s, &capsule.getattr(intern!(py, "allowed_actions"))?)?;
    s.push('|');
    let constraints = capsule.getattr(intern!(py, "constraints"))?;
    if constraints.is_truthy()? {
        sorted_json_into(&constraints, false, &mut s)?;
    } else {
        s.push_str("{}");
    }
    s.push('|');
    ok &= push_isoformat(&mut s, &capsule.getattr(intern!(py, "created_at"))?)?;
    let signed_end = s.len();
    let mut sealed = s;
    sealed.push('|');
    ok &= push_isoformat(&mut sealed, &capsule.getattr(intern!(py, "expires_at"))?)?;
    sealed.push('|');
    ok &= push_rendered(
        &mut sealed,
        &capsule.getattr(intern!(py, "_max_tool_calls"))?,
    )?;
    sealed.push('|');
    ok &= push_rendered(&mut sealed, meta)?;
    Ok(ok.then_some(CapsuleTexts { sealed, signed_end }))
}

/// `(signature, seal)` of an intent capsule (any object with the capsule's attributes):
/// HMACs of its canonical text and of its sealed text, whose metadata part is `meta` (the
/// caller's `json.dumps(metadata, sort_keys=True, default=str)`, or `"{}"`).
#[pyfunction]
fn capsule_sign<'py>(
    keys: &Bound<'py, SigningKeys>,
    capsule: &Bound<'py, PyAny>,
    meta: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyString>, Bound<'py, PyString>)> {
    let py = capsule.py();
    let texts = capsule_texts(capsule, meta)?.ok_or_else(|| {
        PyValueError::new_err(
            "messages[0] is not valid Unicode text (it contains surrogate code points)",
        )
    })?;
    let k = &keys.get().keys;
    let hex = |text: &[u8]| hex_str(py, &k.sign_hex_array(text));
    Ok((hex(texts.signed()), hex(texts.sealed())))
}

fn hex_tag<'a>(tag: &'a Bound<'_, PyAny>) -> PyResult<Option<std::borrow::Cow<'a, str>>> {
    let (t, ok) = render(tag)?;
    Ok(ok.then_some(t))
}

/// Whether the capsule's `signature` and `seal` (rendered as `f"{x}"`) both verify under
/// some key of `keys`. A capsule without a seal (empty/falsy) verifies only when
/// `allow_legacy`, on its signature alone. Attribute and formatting errors propagate.
#[pyfunction]
fn capsule_verify(
    keys: &Bound<'_, SigningKeys>,
    capsule: &Bound<'_, PyAny>,
    meta: &Bound<'_, PyAny>,
    allow_legacy: bool,
) -> PyResult<bool> {
    let py = capsule.py();
    let seal = capsule.getattr(intern!(py, "seal"))?;
    let legacy = !seal.is_truthy()?;
    if legacy && !allow_legacy {
        return Ok(false);
    }
    let signature = capsule.getattr(intern!(py, "signature"))?;
    let Some(texts) = capsule_texts(capsule, meta)? else {
        return Ok(false);
    };
    let k = &keys.get().keys;
    let Some(sig) = hex_tag(&signature)? else {
        return Ok(false);
    };
    let sig_ok = k.verify(texts.signed(), sig.as_bytes(), false).is_some();
    if legacy {
        return Ok(sig_ok);
    }
    let Some(seal) = hex_tag(&seal)? else {
        return Ok(false);
    };
    let seal_ok = k.verify(texts.sealed(), seal.as_bytes(), false).is_some();
    Ok(sig_ok & seal_ok)
}

/// Index of the intent category of `text` (its `str.lower()` searched for the keywords of
/// each category in priority order), or 7 for none (UNKNOWN).
#[pyfunction]
fn intent_category(text: &Bound<'_, PyAny>) -> PyResult<usize> {
    let s = crate::convert::py_str(text, "text")?;
    let lowered = s.call_method0(intern!(text.py(), "lower"))?;
    let lowered = lowered.cast_into::<PyString>()?;
    // Lone surrogates cannot be part of an ASCII keyword: search the rest.
    Ok(core::intent_category(&lowered.to_string_lossy()))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(uuid4_batch, m)?)?;
    m.add_function(wrap_pyfunction!(capsule_sign, m)?)?;
    m.add_function(wrap_pyfunction!(capsule_verify, m)?)?;
    m.add_function(wrap_pyfunction!(intent_category, m)?)?;
    capsule::register(m)?;
    gate::register(m)?;
    Ok(())
}
