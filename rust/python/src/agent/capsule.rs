//! `capsule_create`: a whole signed intent capsule in one call (twin in
//! `proxilion/_reference/agent.py`).
//!
//! `IntentCapsule.create` validates the key, then hands every other argument here. For the
//! common, plain arguments this builds the capsule completely: its id (from the native id
//! pool), the clock, the intent category, both `datetime`s, both canonical texts and their
//! MACs, and the instance itself (its `__dict__` exactly as the dataclass's `__init__` fills
//! it). For anything else it answers `None` *before any side effect*, and the caller takes its
//! general Python path, which gives every error and every unusual result exactly as before.
//! A plain argument is: exact `str` texts without lone surrogates, an exact `int` lifetime
//! `> 0` whose expiry stays within `datetime`'s range, tools and actions as `None` or an exact
//! `list`/`tuple`/`set`/`frozenset` of printable-ASCII exact `str`s, constraints and metadata
//! as `None` or an exact `dict` of plain JSON values (what `sorted_json` writes natively), and
//! a category that is `None` or one of `categories`.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple, PyType};

use proxilion_core::agent::{self as core, civil, Civil};
use proxilion_core::mac::hex32;

use super::{datetime_type, utc, SEAL_PREFIX};
use crate::agent_msg::next_id;
use crate::convert::hex_str;
use crate::sign::{json_into, SigningKeys};

/// `_max_tool_calls` of a new capsule (the dataclass default).
const MAX_TOOL_CALLS: i64 = 100;

/// The items of a tools/actions argument, if it is `None` (no items) or an exact
/// `list`/`tuple`/`set`/`frozenset` of exact `str`s; else `None` (the general path).
fn name_items<'py>(values: &Bound<'py, PyAny>) -> Option<Vec<Bound<'py, PyString>>> {
    let items: Vec<Bound<'py, PyAny>> = if values.is_none() {
        return Some(Vec::new());
    } else if let Ok(l) = values.cast_exact::<PyList>() {
        l.iter().collect()
    } else if let Ok(s) = values.cast_exact::<PySet>() {
        s.iter().collect()
    } else if let Ok(t) = values.cast_exact::<PyTuple>() {
        t.iter().collect()
    } else if let Ok(s) = values.cast_exact::<PyFrozenSet>() {
        s.iter().collect()
    } else {
        return None;
    };
    items
        .into_iter()
        .map(|x| x.cast_into_exact::<PyString>().ok())
        .collect()
}

/// `str(sorted(set(items)))` appended to `out`, if every item is printable ASCII (see
/// `write_str_repr`); false otherwise.
fn push_names(out: &mut String, items: &[Bound<'_, PyString>]) -> bool {
    match items.len() {
        0 => {
            out.push_str("[]");
            return true;
        }
        1 => {
            let Ok(t) = items[0].to_str() else {
                return false;
            };
            out.push('[');
            let ok = core::write_str_repr(out, t);
            out.push(']');
            return ok;
        }
        _ => {}
    }
    let mut small: arrayvec::ArrayVec<&str, 16> = arrayvec::ArrayVec::new();
    let mut large: Vec<&str> = Vec::new();
    let texts: &mut [&str] = if items.len() <= small.capacity() {
        for it in items {
            match it.to_str() {
                Ok(t) => small.push(t),
                Err(_) => return false,
            }
        }
        &mut small
    } else {
        for it in items {
            match it.to_str() {
                Ok(t) => large.push(t),
                Err(_) => return false,
            }
        }
        &mut large
    };
    // Python's code-point order is the byte order of UTF-8; equal texts are one set item.
    texts.sort_unstable();
    out.push('[');
    let mut last: Option<&str> = None;
    for t in texts.iter() {
        if last == Some(*t) {
            continue;
        }
        if last.is_some() {
            out.push_str(", ");
        }
        if !core::write_str_repr(out, t) {
            return false;
        }
        last = Some(t);
    }
    out.push(']');
    true
}

/// `json.dumps(value, sort_keys=True)` of a `None` or exact-`dict` argument appended to `out`
/// (`"{}"` for `None` and empty dicts, as `dict(value) if value else {}` stores), if the
/// native encoder reproduces it; false otherwise.
fn push_json_dict(out: &mut String, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    if value.is_none() {
        out.push_str("{}");
        return Ok(true);
    }
    let Ok(d) = value.cast_exact::<PyDict>() else {
        return Ok(false);
    };
    if d.is_empty() {
        out.push_str("{}");
        return Ok(true);
    }
    json_into(value, out, 0)
}

/// The stored copy of a constraints/metadata argument: `dict(value) if value else {}`.
fn dict_copy<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    match value.cast_exact::<PyDict>() {
        Ok(d) if !d.is_empty() => d.copy(),
        _ => Ok(PyDict::new(py)),
    }
}

/// Index into `categories` of the intent's category (the keyword test of `str.lower()`).
fn category_index(intent: &Bound<'_, PyString>, text: &str) -> PyResult<usize> {
    if text.is_ascii() {
        // ASCII lowercasing is exactly `str.lower()` on ASCII text.
        if !text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Ok(core::intent_category(text));
        }
        if text.len() <= SHORT_INTENT {
            let mut buf = [0u8; SHORT_INTENT];
            let lowered = &mut buf[..text.len()];
            lowered.copy_from_slice(text.as_bytes());
            lowered.make_ascii_lowercase();
            if let Ok(t) = std::str::from_utf8(lowered) {
                return Ok(core::intent_category(t));
            }
        }
        return Ok(core::intent_category(&text.to_ascii_lowercase()));
    }
    // Other text: Python's own lowering (its Unicode rules, e.g. KELVIN SIGN to "k").
    let lowered = intent.call_method0(intern!(intent.py(), "lower"))?;
    let lowered = lowered.cast_into::<PyString>()?;
    Ok(core::intent_category(&lowered.to_string_lossy()))
}

/// An aware UTC `datetime` with these fields, from its pickle state (one constructor call).
fn utc_datetime<'py>(py: Python<'py>, t: &Civil) -> PyResult<Bound<'py, PyAny>> {
    let state = PyBytes::new(py, &civil::pickle_state(t));
    datetime_type(py)?.call1((state, utc(py)?))
}

/// `timedelta(seconds=ttl)` of the lifetimes used last (a capsule's expiry is its creation
/// time plus this: one `datetime` addition instead of a second construction).
static DELTAS: std::sync::Mutex<Vec<(i64, Py<PyAny>)>> = std::sync::Mutex::new(Vec::new());
const DELTAS_SIZE: usize = 8;

fn ttl_delta<'py>(py: Python<'py>, ttl: i64) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(cache) = DELTAS.lock() {
        if let Some((_, d)) = cache.iter().find(|(t, _)| *t == ttl) {
            return Ok(d.bind(py).clone());
        }
    }
    static TIMEDELTA: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let delta = TIMEDELTA
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("datetime")?.getattr("timedelta")?.unbind())
        })?
        .bind(py)
        .call1((0, ttl))?;
    let evicted = match DELTAS.lock() {
        Ok(mut cache) => {
            let entry = (ttl, delta.clone().unbind());
            if cache.len() < DELTAS_SIZE {
                cache.push(entry);
                None
            } else {
                Some(std::mem::replace(
                    &mut cache[(ttl as usize) % DELTAS_SIZE],
                    entry,
                ))
            }
        }
        Err(_) => None,
    };
    drop(evicted); // after the lock: dropping a reference can run Python code
    Ok(delta)
}

fn object_new(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    NEW.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import(intern!(py, "builtins"))?
                .getattr(intern!(py, "object"))?
                .getattr(intern!(py, "__new__"))?
                .unbind(),
        )
    })
    .map(|n| n.bind(py))
}

/// Texts of at least this many bytes are MACed with the GIL released.
const DETACH_THRESHOLD: usize = 64 * 1024;

/// Lowered ASCII intents up to this length are lowered on the stack.
const SHORT_INTENT: usize = 256;

/// A new signed capsule: an instance of `cls` made by `object.__new__` whose `__dict__` holds
/// every field (as `IntentCapsule.__init__` sets them), or `None` when some argument is not a
/// plain one (see the module docs); the caller then builds it by its general path.
///
/// `categories` are the `IntentCategory` members by index of `intent_category`. `capsule_id`
/// and `now_us` (microseconds since the epoch) replace the id pool and the system clock
/// (for tests).
#[pyfunction]
#[pyo3(signature = (
    cls, keys, categories, user_id, intent, allowed_tools, allowed_actions, constraints,
    ttl_seconds, metadata, intent_category, /, capsule_id=None, now_us=None
))]
#[allow(clippy::too_many_arguments)]
fn capsule_create<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    keys: &Bound<'py, SigningKeys>,
    categories: &Bound<'py, PyTuple>,
    user_id: &Bound<'py, PyAny>,
    intent: &Bound<'py, PyAny>,
    allowed_tools: &Bound<'py, PyAny>,
    allowed_actions: &Bound<'py, PyAny>,
    constraints: &Bound<'py, PyAny>,
    ttl_seconds: &Bound<'py, PyAny>,
    metadata: &Bound<'py, PyAny>,
    intent_category: &Bound<'py, PyAny>,
    capsule_id: Option<&Bound<'py, PyAny>>,
    now_us: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if categories.len() != core::CATEGORY_KEYWORDS.len() + 1 {
        return Err(PyValueError::new_err(format!(
            "categories must hold {} members, not {}",
            core::CATEGORY_KEYWORDS.len() + 1,
            categories.len()
        )));
    }
    let given_id = match capsule_id {
        None => None,
        Some(c) => Some(c.cast_exact::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "capsule_id must be str, not {}",
                c.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?),
    };
    let clock = match now_us {
        None => None,
        Some(n) => {
            let v = n.cast_exact::<PyInt>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "now_us must be int, not {}",
                    n.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            let v = v
                .extract::<i64>()
                .ok()
                .filter(|v| (civil::MIN_MICROS..=civil::MAX_MICROS).contains(v))
                .ok_or_else(|| PyValueError::new_err("now_us is out of datetime's range"))?;
            Some(v)
        }
    };
    // Every test that can send the call to the general path comes before any side effect.
    let (Ok(user), Ok(intent_str)) = (
        user_id.cast_exact::<PyString>(),
        intent.cast_exact::<PyString>(),
    ) else {
        return Ok(None);
    };
    let (Ok(user_text), Ok(intent_text)) = (user.to_str(), intent_str.to_str()) else {
        return Ok(None);
    };
    let Some(ttl) = ttl_seconds
        .cast_exact::<PyInt>()
        .ok()
        .and_then(|t| t.extract::<i64>().ok())
        .filter(|t| *t > 0)
    else {
        return Ok(None);
    };
    let (Some(tools), Some(actions)) = (name_items(allowed_tools), name_items(allowed_actions))
    else {
        return Ok(None);
    };
    let category = if intent_category.is_none() {
        categories.get_item(category_index(intent_str, intent_text)?)?
    } else {
        match categories.iter().find(|c| c.is(intent_category)) {
            Some(c) => c,
            None => return Ok(None),
        }
    };
    let Ok(value) = category
        .getattr(intern!(py, "_value_"))?
        .cast_into_exact::<PyString>()
    else {
        return Ok(None);
    };
    let Ok(value_text) = value.to_str() else {
        return Ok(None);
    };
    let mut text = String::with_capacity(
        SEAL_PREFIX.len() + 240 + user_text.len() + intent_text.len() + 32 * tools.len(),
    );
    text.push_str(SEAL_PREFIX);
    let id_at = text.len(); // the id goes here once the capsule is sure to be made
    text.push('|');
    text.push_str(user_text);
    text.push('|');
    text.push_str(intent_text);
    text.push('|');
    text.push_str(value_text);
    text.push('|');
    if !push_names(&mut text, &tools) {
        return Ok(None);
    }
    text.push('|');
    if !push_names(&mut text, &actions) {
        return Ok(None);
    }
    text.push('|');
    if !push_json_dict(&mut text, constraints)? {
        return Ok(None);
    }
    text.push('|');
    let now = match clock {
        Some(v) => v,
        None => match civil::unix_micros_now() {
            Some(v) => v,
            None => return Ok(None),
        },
    };
    let Some(expiry) = ttl.checked_mul(1_000_000).and_then(|t| now.checked_add(t)) else {
        return Ok(None);
    };
    let (Some(created), Some(expires)) = (
        civil::civil_from_unix_micros(now),
        civil::civil_from_unix_micros(expiry),
    ) else {
        return Ok(None);
    };
    core::write_isoformat_utc(&mut text, &created);
    let signed_end = text.len();
    text.push('|');
    core::write_isoformat_utc(&mut text, &expires);
    text.push('|');
    proxilion_core::sign::pyjson::write_int(&mut text, MAX_TOOL_CALLS);
    text.push('|');
    if !push_json_dict(&mut text, metadata)? {
        return Ok(None);
    }
    // Every argument is plain: from here on the capsule is made.
    let id = match given_id {
        Some(id) => id.clone(),
        None => next_id(py)?,
    };
    let Ok(id_text) = id.to_str() else {
        return Ok(None); // an injected id with lone surrogates: the general path reports it
    };
    text.insert_str(id_at, id_text);
    let at = |i: usize| i + id_text.len();
    let k = &keys.get().keys;
    let sealed = text.as_bytes();
    let signed = &sealed[SEAL_PREFIX.len()..at(signed_end)];
    let job = || (k.tag(signed), k.tag(sealed));
    // Huge texts (a long intent or metadata) are MACed with the GIL released.
    let (signature, seal) = if sealed.len() >= DETACH_THRESHOLD {
        py.detach(job)
    } else {
        job()
    };
    let signature = hex_str(py, &hex32(&signature));
    let seal = hex_str(py, &hex32(&seal));

    let created_dt = utc_datetime(py, &created)?;
    let expires_dt = created_dt.add(ttl_delta(py, ttl)?)?;

    // Fields set in the dataclass's order, as its `__init__` does (the instance keeps them in
    // the class's shared-key table, like any instance made by `__init__`).
    let capsule = object_new(py)?.call1((cls,))?;
    capsule.setattr(intern!(py, "capsule_id"), id)?;
    capsule.setattr(intern!(py, "user_id"), user)?;
    capsule.setattr(intern!(py, "intent"), intent_str)?;
    capsule.setattr(intern!(py, "intent_category"), category)?;
    capsule.setattr(intern!(py, "allowed_tools"), PySet::new(py, &tools)?)?;
    capsule.setattr(intern!(py, "allowed_actions"), PySet::new(py, &actions)?)?;
    capsule.setattr(intern!(py, "constraints"), dict_copy(py, constraints)?)?;
    capsule.setattr(intern!(py, "created_at"), created_dt)?;
    capsule.setattr(intern!(py, "expires_at"), expires_dt)?;
    capsule.setattr(intern!(py, "signature"), signature)?;
    capsule.setattr(intern!(py, "metadata"), dict_copy(py, metadata)?)?;
    capsule.setattr(intern!(py, "tool_calls"), PyList::empty(py))?;
    capsule.setattr(intern!(py, "_max_tool_calls"), MAX_TOOL_CALLS)?;
    capsule.setattr(intern!(py, "seal"), seal)?;
    Ok(Some(capsule))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(capsule_create, m)?)?;
    Ok(())
}
