//! `proxilion._core` signing area: a key set that signs and verifies HMAC-SHA256 tags one at a
//! time or in batches, signs memory messages and verifies a whole conversation in one call;
//! plus Python's float text form, exposed so tests can prove it equals `repr(float)`.

use std::borrow::Cow;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PySequence, PyString, PyTuple, PyType,
};

use proxilion_core::sign::{context, pyfmt, pyjson, roles, KeySet};

use crate::convert::{hex_str, str_arg, text_or_bytes};

mod memory;

/// Total input size above which a batch runs with the GIL released.
const DETACH_THRESHOLD: usize = 64 * 1024;

/// HMAC-SHA256 keys, absorbed once. The first key signs; every key verifies (key rotation:
/// old keys stay in the set during their grace period). The keys are never shown.
#[pyclass(frozen, module = "proxilion._core")]
pub struct SigningKeys {
    pub(crate) keys: KeySet,
}

/// A tag argument: hex text (either case) or raw bytes. A `str` with surrogates is no tag.
enum Tag<'a> {
    Hex(Cow<'a, [u8]>),
    Raw(Cow<'a, [u8]>),
    Invalid,
}

fn tag_arg<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Tag<'a>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(match s.to_str() {
            // Borrowed (a `str` is immutable; see `convert::text_or_bytes`).
            Ok(t) => Tag::Hex(Cow::Borrowed(t.as_bytes())),
            Err(_) => Tag::Invalid,
        });
    }
    Ok(Tag::Raw(text_or_bytes(obj, "tag")?))
}

fn verify_tag(keys: &KeySet, message: &[u8], tag: &Tag<'_>) -> i64 {
    let found = match tag {
        Tag::Hex(t) => keys.verify(message, t, false),
        Tag::Raw(t) => keys.verify(message, t, true),
        Tag::Invalid => None,
    };
    found.map_or(-1, |i| i as i64)
}

fn seq_items<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a sequence of messages, not {}",
            obj.get_type().name()?
        )));
    }
    let seq = obj.cast::<PySequence>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a sequence, not {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let n = seq.len()?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(seq.get_item(i)?);
    }
    Ok(out)
}

/// `f"{obj}"` as text, and whether it encodes as UTF-8 (no lone surrogates).
pub(crate) fn render<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<(Cow<'a, str>, bool)> {
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return Ok(match s.to_str() {
            Ok(t) => (Cow::Borrowed(t), true),
            Err(_) => (Cow::Owned(s.to_string_lossy().into_owned()), false),
        });
    }
    if let Ok(f) = obj.cast_exact::<PyFloat>() {
        return Ok((Cow::Owned(pyfmt::float_repr(f.value())), true));
    }
    if obj.is_exact_instance_of::<PyInt>() {
        if let Ok(v) = obj.extract::<i64>() {
            return Ok((Cow::Owned(v.to_string()), true));
        }
    }
    // Anything else: exactly what the f-string does, `type(obj).__format__(obj, "")`.
    let text = obj.call_method1(pyo3::intern!(obj.py(), "__format__"), ("",))?;
    let text = text
        .cast_into::<PyString>()
        .map_err(|_| PyTypeError::new_err("__format__ must return a str"))?;
    Ok(match text.to_str() {
        Ok(t) => (Cow::Owned(t.to_owned()), true),
        Err(_) => (Cow::Owned(text.to_string_lossy().into_owned()), false),
    })
}

/// A rendered field: borrowed text, owned text, or a range of the shared arena.
#[derive(Default)]
enum Text<'a> {
    #[default]
    Empty,
    Cow(Cow<'a, str>),
    Arena(usize, usize),
}

impl Text<'_> {
    fn get<'s>(&'s self, arena: &'s str) -> &'s str {
        match self {
            Text::Empty => "",
            Text::Cow(c) => c,
            Text::Arena(a, b) => &arena[*a..*b],
        }
    }

    fn len(&self, arena: &str) -> usize {
        self.get(arena).len()
    }
}

/// [`render`], writing the text of exact `int`s and `float`s into `arena`. Exact `str`s are
/// tested first (the common case): each exact-type test is one pointer comparison.
fn render_into<'a>(obj: &'a Bound<'_, PyAny>, arena: &mut String) -> PyResult<(Text<'a>, bool)> {
    if let Ok(s) = obj.cast_exact::<PyString>() {
        if let Ok(t) = s.to_str() {
            return Ok((Text::Cow(Cow::Borrowed(t)), true));
        }
    } else if let Ok(f) = obj.cast_exact::<PyFloat>() {
        let start = arena.len();
        pyjson::write_float_repr(arena, f.value());
        return Ok((Text::Arena(start, arena.len()), true));
    } else if let Ok(i) = obj.cast_exact::<PyInt>() {
        if let Ok(v) = i.extract::<i64>() {
            let start = arena.len();
            pyjson::write_int(arena, v);
            return Ok((Text::Arena(start, arena.len()), true));
        }
    }
    let (t, ok) = render(obj)?;
    Ok((Text::Cow(t), ok))
}

/// Append `f"{obj}"` to `out` (exact `str`, `float` and `int` without any call into Python);
/// returns whether the text encodes as UTF-8 (no lone surrogates).
fn push_rendered(obj: &Bound<'_, PyAny>, out: &mut String) -> PyResult<bool> {
    if let Ok(s) = obj.cast_exact::<PyString>() {
        if let Ok(t) = s.to_str() {
            out.push_str(t);
            return Ok(true);
        }
    } else if let Ok(f) = obj.cast_exact::<PyFloat>() {
        pyjson::write_float_repr(out, f.value());
        return Ok(true);
    } else if let Ok(i) = obj.cast_exact::<PyInt>() {
        if let Ok(v) = i.extract::<i64>() {
            pyjson::write_int(out, v);
            return Ok(true);
        }
    }
    let (t, ok) = render(obj)?;
    out.push_str(&t);
    Ok(ok)
}

/// An integer sequence number within i64, if the value is an `int` (bools included).
fn seq_number(obj: &Bound<'_, PyAny>) -> Option<i64> {
    if obj.is_instance_of::<PyInt>() {
        obj.extract::<i64>().ok()
    } else {
        None
    }
}

/// A finite timestamp, if the value is an `int` or `float`.
fn ts_number(obj: &Bound<'_, PyAny>) -> Option<f64> {
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        obj.extract::<f64>().ok().filter(|t| t.is_finite())
    } else {
        None
    }
}

type FindingTuple = (&'static str, usize, f64, String, String);

fn finding_tuple(f: context::Finding) -> FindingTuple {
    use context::Finding as F;
    let none = String::new;
    match f {
        F::Signature { i } => ("signature", i, 0.0, none(), none()),
        F::ChainBreak { i, expected } => ("chain", i, 0.0, expected, none()),
        F::Reorder {
            i,
            expected,
            actual,
        } => ("reorder", i, 0.0, expected.to_string(), actual.to_string()),
        F::Gap { i, prev, seq } => ("gap", i, 0.0, prev.to_string(), seq.to_string()),
        F::SequenceType { i } => ("sequence_type", i, 0.0, none(), none()),
        F::TimestampBackwards { i } => ("timestamp_backwards", i, 0.0, none(), none()),
        F::TimestampGap { i, gap } => ("timestamp_gap", i, gap, none(), none()),
        F::TimestampInvalid { i } => ("timestamp_invalid", i, 0.0, none(), none()),
        F::TimestampFuture { i, ahead } => ("timestamp_future", i, ahead, none(), none()),
        F::Stale { i, age } => ("stale", i, age, none(), none()),
        F::Role { i, rule } => ("role", i, 0.0, roles::ROLE_RULES[rule].1.to_owned(), none()),
    }
}

#[pymethods]
impl SigningKeys {
    #[new]
    fn new(keys: &Bound<'_, PyAny>) -> PyResult<Self> {
        let items = seq_items(keys, "keys")?;
        let mut raw = Vec::with_capacity(items.len());
        for (i, k) in items.iter().enumerate() {
            raw.push(text_or_bytes(k, &format!("keys[{i}]"))?.into_owned());
        }
        let keys = KeySet::new(&raw).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(SigningKeys { keys })
    }

    fn __len__(&self) -> usize {
        self.keys.len()
    }

    fn __repr__(&self) -> String {
        format!("SigningKeys(<{} keys hidden>)", self.keys.len())
    }

    /// Hex HMAC-SHA256 of `message` under the signing key.
    fn sign<'py>(&self, message: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
        let m = text_or_bytes(message, "message")?;
        Ok(hex_str(message.py(), &self.keys.sign_hex_array(&m)))
    }

    /// Hex tags of every message, in one call.
    fn sign_many<'py>(
        &self,
        py: Python<'py>,
        messages: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyString>>> {
        let items = seq_items(messages, "messages")?;
        let mut data = Vec::with_capacity(items.len());
        for (i, m) in items.iter().enumerate() {
            data.push(text_or_bytes(m, &format!("messages[{i}]"))?);
        }
        let total: usize = data.iter().map(|d| d.len()).sum();
        let keys = &self.keys;
        let job = || {
            data.iter()
                .map(|d| keys.sign_hex_array(d))
                .collect::<Vec<_>>()
        };
        let tags = if total >= DETACH_THRESHOLD {
            py.detach(job)
        } else {
            job()
        };
        Ok(tags.iter().map(|t| hex_str(py, t)).collect())
    }

    /// Index of the key that authenticates `message` under `tag` (hex or raw), or -1.
    fn verify(&self, message: &Bound<'_, PyAny>, tag: &Bound<'_, PyAny>) -> PyResult<i64> {
        let m = text_or_bytes(message, "message")?;
        let t = tag_arg(tag)?;
        Ok(verify_tag(&self.keys, &m, &t))
    }

    /// `verify` over parallel sequences of messages and tags, in one call.
    fn verify_many(
        &self,
        py: Python<'_>,
        messages: &Bound<'_, PyAny>,
        tags: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<i64>> {
        let ms = seq_items(messages, "messages")?;
        let ts = seq_items(tags, "tags")?;
        if ms.len() != ts.len() {
            return Err(PyValueError::new_err(format!(
                "messages and tags differ in length ({} != {})",
                ms.len(),
                ts.len()
            )));
        }
        let mut pairs = Vec::with_capacity(ms.len());
        let mut total = 0usize;
        for (i, (m, t)) in ms.iter().zip(ts.iter()).enumerate() {
            let m = text_or_bytes(m, &format!("messages[{i}]"))?;
            total += m.len();
            pairs.push((m, tag_arg(t)?));
        }
        let keys = &self.keys;
        let job = || {
            pairs
                .iter()
                .map(|(m, t)| verify_tag(keys, m, t))
                .collect::<Vec<_>>()
        };
        Ok(if total >= DETACH_THRESHOLD {
            py.detach(job)
        } else {
            job()
        })
    }

    /// Sign a memory message: `(signature, content_hash)` over
    /// `f"{role}|{content}|{sequence}|{timestamp}|{previous_hash}"` and
    /// `f"{role}:{content}:{sequence}:{timestamp}"`.
    fn memory_sign(
        &self,
        role: &Bound<'_, PyAny>,
        content: &Bound<'_, PyAny>,
        sequence: &Bound<'_, PyAny>,
        timestamp: &Bound<'_, PyAny>,
        previous_hash: &Bound<'_, PyAny>,
    ) -> PyResult<(String, String)> {
        let role = str_arg(role, "role")?;
        let content = str_arg(content, "content")?;
        let prev = str_arg(previous_hash, "previous_hash")?;
        if !sequence.is_exact_instance_of::<PyInt>() {
            return Err(PyTypeError::new_err(format!(
                "sequence must be int, not {}",
                sequence.get_type().name()?
            )));
        }
        if !timestamp.is_exact_instance_of::<PyFloat>() {
            return Err(PyTypeError::new_err(format!(
                "timestamp must be float, not {}",
                timestamp.get_type().name()?
            )));
        }
        let (seq, _) = render(sequence)?;
        let (ts, _) = render(timestamp)?;
        Ok(context::sign(&self.keys, role, content, &seq, &ts, prev))
    }

    /// Sign an agent message: hex HMAC of
    /// `f"{message_id}|{from_agent}|{to_agent}|{action}|{json.dumps(payload, sort_keys=True)}|{timestamp}"`,
    /// built and MACed in one call.
    #[allow(clippy::too_many_arguments)]
    fn agent_sign<'py>(
        &self,
        message_id: &Bound<'py, PyAny>,
        from_agent: &Bound<'py, PyAny>,
        to_agent: &Bound<'py, PyAny>,
        action: &Bound<'py, PyAny>,
        payload: &Bound<'py, PyAny>,
        timestamp: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyString>> {
        let text = agent_text([message_id, from_agent, to_agent, action, payload, timestamp])?
            .ok_or_else(|| {
                PyValueError::new_err(
                    "message is not valid Unicode text (it contains surrogate code points)",
                )
            })?;
        Ok(hex_str(
            payload.py(),
            &self.keys.sign_hex_array(text.as_bytes()),
        ))
    }

    /// Index of the key under which the hex `signature` authenticates the agent message (see
    /// `agent_sign`), or -1 (also for text with lone surrogates and non-`str` signatures).
    /// Errors of `json.dumps` on the payload propagate.
    #[allow(clippy::too_many_arguments)]
    fn agent_verify(
        &self,
        message_id: &Bound<'_, PyAny>,
        from_agent: &Bound<'_, PyAny>,
        to_agent: &Bound<'_, PyAny>,
        action: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        timestamp: &Bound<'_, PyAny>,
        signature: &Bound<'_, PyAny>,
    ) -> PyResult<i64> {
        let text = agent_text([message_id, from_agent, to_agent, action, payload, timestamp])?;
        let (Some(text), Ok(sig)) = (text, signature.cast::<PyString>()) else {
            return Ok(-1);
        };
        let Ok(sig) = sig.to_str() else {
            return Ok(-1);
        };
        Ok(self
            .keys
            .verify(text.as_bytes(), sig.as_bytes(), false)
            .map_or(-1, |i| i as i64))
    }

    /// Verify a whole conversation of memory messages (objects with `role`, `content`,
    /// `sequence`, `timestamp`, `signature`, `previous_hash`). Returns the findings as
    /// `(code, index, value, expected, actual)` tuples; an empty list means intact.
    ///
    /// `plain_type`, if given, is a class whose instances keep these fields as plain instance
    /// attributes (a dataclass without properties): for exact instances of it the fields are
    /// read from the instance `__dict__`, which is what attribute access does for them.
    #[pyo3(signature = (messages, genesis, strict_sequence, check_timestamps, max_timestamp_drift, now, max_clock_skew, max_age, plain_type=None))]
    #[allow(clippy::too_many_arguments)]
    fn memory_verify_context<'py>(
        &self,
        py: Python<'py>,
        messages: &Bound<'py, PyAny>,
        genesis: &str,
        strict_sequence: bool,
        check_timestamps: bool,
        max_timestamp_drift: f64,
        now: Option<f64>,
        max_clock_skew: f64,
        max_age: Option<f64>,
        plain_type: Option<&Bound<'py, PyType>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let items = seq_items(messages, "messages")?;
        let names = [
            pyo3::intern!(py, "role"),
            pyo3::intern!(py, "content"),
            pyo3::intern!(py, "sequence"),
            pyo3::intern!(py, "timestamp"),
            pyo3::intern!(py, "signature"),
            pyo3::intern!(py, "previous_hash"),
        ];
        let dict_name = pyo3::intern!(py, "__dict__");
        let mut fields: Vec<[Bound<'py, PyAny>; 6]> = Vec::with_capacity(items.len());
        let mut known: Vec<Option<[u8; 64]>> = Vec::with_capacity(items.len());
        for m in &items {
            if let Some((f, h)) = memory::native_fields(m) {
                fields.push(f);
                known.push(h);
                continue;
            }
            known.push(None);
            let dict = match plain_type {
                Some(t) if m.get_type().is(t) => m.getattr(dict_name)?.cast_into::<PyDict>().ok(),
                _ => None,
            };
            let get = |j: usize| -> PyResult<Bound<'py, PyAny>> {
                if let Some(d) = &dict {
                    if let Some(v) = d.get_item(names[j])? {
                        return Ok(v);
                    }
                }
                m.getattr(names[j])
            };
            fields.push([get(0)?, get(1)?, get(2)?, get(3)?, get(4)?, get(5)?]);
        }
        // Texts of the numeric fields go into one arena (no allocation per message).
        let mut arena = String::with_capacity(fields.len() * 28);
        let mut rendered = Vec::with_capacity(fields.len());
        let mut total = 0usize;
        for f in &fields {
            let mut texts: [Text<'_>; 6] = Default::default();
            let mut ok = true;
            for (j, obj) in f.iter().enumerate() {
                let (t, enc) = render_into(obj, &mut arena)?;
                // A signature with surrogates is simply not a valid tag (its lossy text does
                // not decode as hex); every other field feeds the signed and hashed bytes.
                ok &= enc || j == 4;
                texts[j] = t;
            }
            total += texts[1].len(&arena);
            rendered.push((texts, ok, seq_number(&f[2]), ts_number(&f[3])));
        }
        let entries: Vec<context::Entry<'_>> = rendered
            .iter()
            .zip(known)
            .map(|((t, ok, seq, ts), content_hash)| context::Entry {
                role: t[0].get(&arena),
                content: t[1].get(&arena),
                seq_text: t[2].get(&arena),
                seq: *seq,
                ts_text: t[3].get(&arena),
                ts: *ts,
                signature: t[4].get(&arena),
                previous_hash: t[5].get(&arena),
                encodable: *ok,
                content_hash,
            })
            .collect();
        let opts = context::Options {
            genesis,
            strict_sequence,
            check_timestamps,
            max_timestamp_drift,
            now,
            max_clock_skew,
            max_age,
        };
        let keys = &self.keys;
        let job = || context::verify_context(keys, &entries, &opts);
        let findings = if total >= DETACH_THRESHOLD {
            py.detach(job)
        } else {
            job()
        };
        let out = PyList::empty(py);
        for f in findings {
            out.append(finding_tuple(f))?;
        }
        Ok(out)
    }
}

/// Nesting beyond which the native encoder leaves a value to Python's (which then reports
/// circular references or recursion exactly as `json.dumps` does).
const JSON_MAX_DEPTH: usize = 64;

/// Append `json.dumps(obj, sort_keys=True)` of `obj` to `out`, natively. Returns false, with
/// `out` in an unspecified state, for anything whose text it cannot reproduce exactly (types
/// other than exact `dict`/`list`/`tuple`/`str`/`int`/`float`/`bool`/`None`, non-`str` or
/// surrogate-holding keys and strings, integers beyond i64, deep nesting): the caller then
/// uses Python's encoder, so the bytes never differ.
pub(crate) fn json_into(obj: &Bound<'_, PyAny>, out: &mut String, depth: usize) -> PyResult<bool> {
    if depth > JSON_MAX_DEPTH {
        return Ok(false);
    }
    // Exact-type tests only (one pointer comparison each), most common types first.
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return Ok(match s.to_str() {
            Ok(t) => {
                pyjson::write_str(out, t);
                true
            }
            Err(_) => false,
        });
    }
    if let Ok(i) = obj.cast_exact::<PyInt>() {
        return Ok(match i.extract::<i64>() {
            Ok(v) => {
                pyjson::write_int(out, v);
                true
            }
            Err(_) => false,
        });
    }
    if let Ok(f) = obj.cast_exact::<PyFloat>() {
        pyjson::write_float(out, f.value());
        return Ok(true);
    }
    if let Ok(d) = obj.cast_exact::<PyDict>() {
        return json_dict(d, out, depth);
    }
    if let Ok(l) = obj.cast_exact::<PyList>() {
        return json_array(l.iter(), out, depth);
    }
    if let Ok(b) = obj.cast_exact::<PyBool>() {
        out.push_str(if b.is_true() { "true" } else { "false" });
        return Ok(true);
    }
    if obj.is_none() {
        out.push_str("null");
        return Ok(true);
    }
    if let Ok(t) = obj.cast_exact::<PyTuple>() {
        return json_array(t.iter(), out, depth);
    }
    Ok(false)
}

/// Dicts of at most this many items are sorted in arrays on the stack (no allocation).
const SMALL_DICT: usize = 8;

/// A dict item whose key is an exact `str`.
type Item<'py> = Option<(Bound<'py, PyString>, Bound<'py, PyAny>)>;

/// The object of an exact `dict`, keys sorted (see [`json_into`]).
fn json_dict(d: &Bound<'_, PyDict>, out: &mut String, depth: usize) -> PyResult<bool> {
    let n = d.len();
    if n <= SMALL_DICT {
        let mut items: [Item<'_>; SMALL_DICT] = Default::default();
        let mut order = [("", 0usize); SMALL_DICT];
        json_items(d, &mut items[..n], &mut order[..n], out, depth)
    } else {
        let mut items: Vec<Item<'_>> = (0..n).map(|_| None).collect();
        let mut order = vec![("", 0usize); n];
        json_items(d, &mut items, &mut order, out, depth)
    }
}

/// Fill `items` with the `items.len()` items of `d` (false if a key is not an exact `str`, or
/// the count differs), sort their UTF-8 keys into `order` and write the object.
fn json_items<'s, 'py>(
    d: &Bound<'py, PyDict>,
    items: &'s mut [Item<'py>],
    order: &mut [(&'s str, usize)],
    out: &mut String,
    depth: usize,
) -> PyResult<bool> {
    let mut count = 0;
    for (k, v) in d.iter() {
        let (Ok(k), Some(slot)) = (k.cast_into_exact::<PyString>(), items.get_mut(count)) else {
            return Ok(false);
        };
        *slot = Some((k, v));
        count += 1;
    }
    if count != items.len() {
        return Ok(false);
    }
    let items: &'s [Item<'py>] = items;
    for (j, (slot, item)) in order.iter_mut().zip(items).enumerate() {
        let Some((k, _)) = item else {
            return Ok(false);
        };
        // A key with lone surrogates has no UTF-8 form: Python's encoder handles it.
        let Ok(text) = k.to_str() else {
            return Ok(false);
        };
        *slot = (text, j);
    }
    // Python sorts str keys by code point, which is the byte order of their UTF-8.
    order.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (j, (key, i)) in order.iter().enumerate() {
        if j > 0 {
            out.push_str(", ");
        }
        pyjson::write_str(out, key);
        out.push_str(": ");
        let Some(Some((_, v))) = items.get(*i) else {
            return Ok(false);
        };
        if !json_into(v, out, depth + 1)? {
            return Ok(false);
        }
    }
    out.push('}');
    Ok(true)
}

fn json_array<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    out: &mut String,
    depth: usize,
) -> PyResult<bool> {
    out.push('[');
    for (j, v) in items.enumerate() {
        if j > 0 {
            out.push_str(", ");
        }
        if !json_into(&v, out, depth + 1)? {
            return Ok(false);
        }
    }
    out.push(']');
    Ok(true)
}

/// `json.dumps(obj, sort_keys=True)` (with `default=str` when `default_str`) appended to `out`:
/// natively when [`json_into`] can, else by Python's own encoder.
pub(crate) fn sorted_json_into(
    obj: &Bound<'_, PyAny>,
    default_str: bool,
    out: &mut String,
) -> PyResult<()> {
    let start = out.len();
    if json_into(obj, out, 0)? {
        return Ok(());
    }
    out.truncate(start);
    let py = obj.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("sort_keys", true)?;
    if default_str {
        kwargs.set_item("default", py.get_type::<PyString>())?;
    }
    let text = py
        .import("json")?
        .getattr("dumps")?
        .call((obj,), Some(&kwargs))?;
    let text = text.cast_into::<PyString>()?;
    out.push_str(&text.to_string_lossy());
    Ok(())
}

/// `json.dumps(obj, sort_keys=True)` (plus `default=str` when `default_str`), byte for byte:
/// natively for plain JSON values, by Python's encoder for anything else.
#[pyfunction]
#[pyo3(signature = (obj, default_str=false))]
fn sorted_json(obj: &Bound<'_, PyAny>, default_str: bool) -> PyResult<String> {
    let mut out = String::with_capacity(64);
    sorted_json_into(obj, default_str, &mut out)?;
    Ok(out)
}

/// The signed text of an agent message,
/// `f"{message_id}|{from}|{to}|{action}|{json.dumps(payload, sort_keys=True)}|{timestamp}"`;
/// `None` if some part holds lone surrogates (no UTF-8 form, so no valid signature).
pub(crate) fn agent_text(parts: [&Bound<'_, PyAny>; 6]) -> PyResult<Option<String>> {
    let mut out = String::with_capacity(160);
    let mut encodable = true;
    for (j, part) in parts.iter().enumerate() {
        if j > 0 {
            out.push('|');
        }
        if j == 4 {
            sorted_json_into(part, false, &mut out)?;
            continue;
        }
        encodable &= push_rendered(part, &mut out)?;
    }
    Ok(encodable.then_some(out))
}

/// `repr(x)` of a Python float (also `str(x)` and `f"{x}"`), computed in Rust.
#[pyfunction]
fn py_float_repr(x: &Bound<'_, PyAny>) -> PyResult<String> {
    if x.is_instance_of::<pyo3::types::PyBool>()
        || !(x.is_instance_of::<PyFloat>() || x.is_instance_of::<PyInt>())
    {
        return Err(PyTypeError::new_err(format!(
            "x must be float, not {}",
            x.get_type().name()?
        )));
    }
    Ok(pyfmt::float_repr(x.extract::<f64>()?))
}

/// Index of the first role-injection rule matching `text`, or -1.
#[pyfunction]
fn role_injection_rule(text: &Bound<'_, PyAny>) -> PyResult<i64> {
    let t = crate::convert::py_str(text, "text")?.to_string_lossy();
    Ok(roles::first_rule(&t).map_or(-1, |r| r as i64))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SigningKeys>()?;
    m.add_function(wrap_pyfunction!(py_float_repr, m)?)?;
    m.add_function(wrap_pyfunction!(sorted_json, m)?)?;
    m.add_function(wrap_pyfunction!(role_injection_rule, m)?)?;
    memory::register(m)?;
    Ok(())
}
