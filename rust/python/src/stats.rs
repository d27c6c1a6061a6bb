//! `proxilion._core` statistics: `Welford`, `Ewma` and the behavioural-drift `DriftEngine`.
//!
//! Python objects are read (tool name, latency, argument features) before the engine's mutex
//! is taken, so no Python code ever runs while it is held. Messages match the reference twin
//! in `proxilion/_reference/stats.py`.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use arrayvec::ArrayVec;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyCFunction, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString,
    PyTuple,
};

use proxilion_core::stats::engine::{
    metric, Baseline, Config, Engine, EngineState, KeySnapshot, MetricCheck, MetricSnapshot,
    ToolSnapshot, METRIC_NAMES, N_METRICS, PER_TOOL, VALUE_METRICS,
};
use proxilion_core::stats::model::{
    ArgValue, CallArgs, MANY_KEYS, MAX_ARG_KEYS, MAX_CATEGORY_CHARS, MAX_KEY_CHARS, MAX_SIZE_DEPTH,
    MAX_SIZE_NODES, N_KINDS, OTHER_KEY,
};
use proxilion_core::stats::{Ewma, StatsError, Welford};

const STATE_FORMAT: &str = "proxilion.drift_engine";
const STATE_VERSION: u64 = 1;

fn map_err(e: StatsError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn type_name(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(obj.get_type().name()?.to_string())
}

fn guard<T>(m: &Mutex<T>) -> PyResult<MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| PyRuntimeError::new_err("drift engine state is poisoned by an earlier panic"))
}

fn is_number(obj: &Bound<'_, PyAny>) -> bool {
    !obj.is_instance_of::<PyBool>()
        && (obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>())
}

/// A finite `int`/`float` (not `bool`), as the twin's `_number`.
fn number(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    if !is_number(obj) {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number, not {}",
            type_name(obj)?
        )));
    }
    match obj.extract::<f64>() {
        Ok(f) if f.is_finite() => Ok(f),
        _ => Err(PyValueError::new_err(format!(
            "{name} must be a finite number, got {}",
            obj.repr()?
        ))),
    }
}

fn int_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<i64> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, not {}",
            type_name(obj)?
        )));
    }
    // Out-of-range ints saturate: only their sign matters to the checks that follow.
    match obj.extract::<i64>() {
        Ok(v) => Ok(v),
        Err(_) => Ok(if obj.gt(0)? { i64::MAX } else { i64::MIN }),
    }
}

fn mono_now() -> f64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64()
}

fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn is_default(obj: Option<&Bound<'_, PyAny>>) -> bool {
    obj.map_or(true, |o| o.is_none())
}

fn time_arg(obj: Option<&Bound<'_, PyAny>>, name: &str, default: fn() -> f64) -> PyResult<f64> {
    match obj {
        None => Ok(default()),
        Some(o) if o.is_none() => Ok(default()),
        Some(o) => number(o, name),
    }
}

fn tool_name<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<&'a str> {
    crate::convert::str_arg(obj, "tool_name")
}

fn latency_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
    let Some(o) = obj else { return Ok(None) };
    if o.is_none() {
        return Ok(None);
    }
    if let Ok(f) = o.cast_exact::<PyFloat>() {
        // The common case, one type test.
        let v = f.value();
        if v.is_finite() && v >= 0.0 {
            return Ok(Some(v));
        }
    }
    if !is_number(o) {
        return Err(PyTypeError::new_err(format!(
            "latency_ms must be a number or None, not {}",
            type_name(o)?
        )));
    }
    let v = o.extract::<f64>().unwrap_or(f64::INFINITY);
    if !(v.is_finite() && v >= 0.0) {
        return Err(PyValueError::new_err(format!(
            "latency_ms must be a finite number >= 0, got {}",
            o.repr()?
        )));
    }
    Ok(Some(v))
}

// --- argument features (same walk as `_size`/`_value`/`_extract_args` in the twin) ----------

fn size_of(v: &Bound<'_, PyAny>, depth: usize, budget: &mut i64) -> PyResult<f64> {
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(s.code_point_len()? as f64);
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(b.as_bytes().len() as f64);
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(b.len() as f64);
    }
    if v.is_none() || v.is_instance_of::<PyBool>() {
        return Ok(1.0);
    }
    if v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>() {
        return Ok(8.0);
    }
    if let Ok(d) = v.cast::<PyDict>() {
        if depth >= MAX_SIZE_DEPTH {
            return Ok(8.0 * d.len() as f64);
        }
        // Walked in place: nothing below runs Python code or allocates a Python object (only
        // type checks and lengths), so the dict cannot change under the iteration.
        let n = d.len();
        let mut s = 2.0;
        for (i, (k, x)) in d.iter().enumerate() {
            if *budget <= 0 {
                s += 8.0 * (n - i) as f64;
                break;
            }
            *budget -= 1;
            s += size_of(&k, depth + 1, budget)? + size_of(&x, depth + 1, budget)?;
        }
        return Ok(s);
    }
    if let Ok(l) = v.cast::<PyList>() {
        if depth >= MAX_SIZE_DEPTH {
            return Ok(8.0 * l.len() as f64);
        }
        // The list iterator re-reads the length at every step.
        let n = l.len();
        let mut s = 2.0;
        for (i, x) in l.iter().enumerate() {
            if *budget <= 0 {
                s += 8.0 * n.saturating_sub(i) as f64;
                break;
            }
            *budget -= 1;
            s += size_of(&x, depth + 1, budget)?;
        }
        return Ok(s);
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        if depth >= MAX_SIZE_DEPTH {
            return Ok(8.0 * t.len() as f64);
        }
        let n = t.len();
        let mut s = 2.0;
        for (i, x) in t.iter().enumerate() {
            if *budget <= 0 {
                s += 8.0 * (n - i) as f64;
                break;
            }
            *budget -= 1;
            s += size_of(&x, depth + 1, budget)?;
        }
        return Ok(s);
    }
    Ok(8.0)
}

/// An argument value's features before their logarithms, which are taken when the call is
/// folded (by the fold worker, off the recording thread): the value of [`ArgValue`], with its
/// text as `T` (a `&str` while recording, a [`Span`] of the batch arena while pending).
#[derive(Clone, Copy)]
enum RawValue<T> {
    /// A finite number.
    Number(f64),
    NonFinite(&'static str),
    /// Code points, and the value itself when it is a categorical token.
    Text(f64, Option<T>),
    /// Length in bytes.
    Bytes(f64),
    Bool(bool),
    Null,
    /// Approximate size.
    Container(f64),
    Other,
}

impl<T> RawValue<T> {
    fn map_text<U>(self, f: impl FnOnce(T) -> U) -> RawValue<U> {
        match self {
            RawValue::Number(x) => RawValue::Number(x),
            RawValue::NonFinite(t) => RawValue::NonFinite(t),
            RawValue::Text(n, t) => RawValue::Text(n, t.map(f)),
            RawValue::Bytes(n) => RawValue::Bytes(n),
            RawValue::Bool(b) => RawValue::Bool(b),
            RawValue::Null => RawValue::Null,
            RawValue::Container(s) => RawValue::Container(s),
            RawValue::Other => RawValue::Other,
        }
    }
}

impl<'a> RawValue<&'a str> {
    /// The engine's features (the twin's `_value`).
    fn features(self) -> ArgValue<'a> {
        match self {
            RawValue::Number(f) => ArgValue::Number((1.0 + f.abs()).log2().copysign(f)),
            RawValue::NonFinite(t) => ArgValue::NonFinite(t),
            RawValue::Text(n, t) => ArgValue::Text((1.0 + n).log2(), t),
            RawValue::Bytes(n) => ArgValue::Bytes((1.0 + n).log2()),
            RawValue::Bool(b) => ArgValue::Bool(b),
            RawValue::Null => ArgValue::Null,
            RawValue::Container(s) => ArgValue::Container((1.0 + s).log2()),
            RawValue::Other => ArgValue::Other,
        }
    }
}

/// Size and key token of a top-level key (`size_of` and the twin's key rule in one type test).
fn key_features<'a>(k: &'a Bound<'_, PyAny>, budget: &mut i64) -> PyResult<(f64, &'a str)> {
    // Exact types are tested first: one pointer comparison each, where a subtype test is a
    // call into the interpreter under the stable ABI.
    if let Ok(s) = k.cast_exact::<PyString>().or_else(|_| k.cast::<PyString>()) {
        let n = s.code_point_len()?;
        return Ok((n as f64, str_key_token(s, n)));
    }
    Ok((size_of(k, 1, budget)?, OTHER_KEY))
}

/// The key token of a `str` key of `n` code points: itself when short and encodable.
fn str_key_token<'a>(s: &'a Bound<'_, PyString>, n: usize) -> &'a str {
    if n <= MAX_KEY_CHARS {
        s.to_str().unwrap_or(OTHER_KEY)
    } else {
        OTHER_KEY
    }
}

/// Size and raw features of a top-level value (`size_of` and the twin's `_value` in one type
/// test).
fn value_features<'a>(
    v: &'a Bound<'_, PyAny>,
    budget: &mut i64,
) -> PyResult<(f64, RawValue<&'a str>)> {
    if let Ok(f) = v.cast_exact::<PyFloat>() {
        return Ok((8.0, number_features(f.value())));
    }
    if let Ok(i) = v.cast_exact::<PyInt>() {
        // An exact int of 64 bits converts without a temporary float object; `as` rounds to
        // nearest, ties to even, exactly as `float(int)` does.
        if let Ok(x) = i.extract::<i64>() {
            return Ok((8.0, number_features(x as f64)));
        }
    }
    if let Ok(s) = v.cast_exact::<PyString>().or_else(|_| v.cast::<PyString>()) {
        let n = s.code_point_len()?;
        let tok = if n <= MAX_CATEGORY_CHARS {
            s.to_str().ok()
        } else {
            None
        };
        return Ok((n as f64, RawValue::Text(n as f64, tok)));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        let n = b.as_bytes().len() as f64;
        return Ok((n, RawValue::Bytes(n)));
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        let n = b.len() as f64;
        return Ok((n, RawValue::Bytes(n)));
    }
    if v.is_none() {
        return Ok((1.0, RawValue::Null));
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok((1.0, RawValue::Bool(b.is_true())));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok((8.0, number_features(f.value())));
    }
    if v.is_instance_of::<PyInt>() {
        let f = match v.extract::<f64>() {
            Ok(f) => f,
            Err(_) => {
                if v.gt(0)? {
                    f64::MAX
                } else {
                    -f64::MAX
                }
            }
        };
        return Ok((8.0, number_features(f)));
    }
    if v.is_instance_of::<PyDict>() || v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()
    {
        let size = size_of(v, 1, budget)?;
        return Ok((size, RawValue::Container(size)));
    }
    Ok((8.0, RawValue::Other))
}

fn number_features<T>(f: f64) -> RawValue<T> {
    if f.is_nan() {
        RawValue::NonFinite("\u{0}nan")
    } else if f.is_infinite() {
        RawValue::NonFinite(if f > 0.0 { "\u{0}inf" } else { "\u{0}-inf" })
    } else {
        RawValue::Number(f)
    }
}

type Items<'py> = Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>;

/// The `(key, value)` pairs of an `arguments` mapping (a copy, so nothing can mutate it under
/// the walk).
fn argument_items<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Items<'py>> {
    let dict: Bound<'py, PyDict> = if let Ok(d) = obj.cast::<PyDict>() {
        d.clone()
    } else if obj.cast::<PyMapping>().is_ok() {
        obj.py()
            .get_type::<PyDict>()
            .call1((obj,))?
            .cast_into::<PyDict>()
            .map_err(PyErr::from)?
    } else {
        return Err(PyTypeError::new_err(format!(
            "arguments must be a mapping or None, not {}",
            type_name(obj)?
        )));
    };
    // Collected before anything else is looked at (no Python code runs during the walk).
    let mut out = Vec::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        out.push((k, v));
    }
    Ok(out)
}

/// The argument features of one call before their logarithms (see [`RawValue`]): what a
/// recording copies into the pending batch.
struct RawArgs<'a> {
    /// Approximate size of the whole mapping.
    total: f64,
    /// More than `MAX_ARG_KEYS` keys: the key set is `[MANY_KEYS]` and `keys` is empty.
    many: bool,
    /// Every key token, in mapping order (sorted when folded).
    keys: ArrayVec<&'a str, MAX_ARG_KEYS>,
    /// `(key token, value)` of the first `MAX_ARG_KEYS` entries, in mapping order.
    entries: ArrayVec<(&'a str, RawValue<&'a str>), MAX_ARG_KEYS>,
}

impl<'a> RawArgs<'a> {
    fn new() -> Self {
        Self {
            total: 0.0,
            many: false,
            keys: ArrayVec::new(),
            entries: ArrayVec::new(),
        }
    }

    /// The walk of the twin's `_extract_args` over `items` (a private copy of the mapping),
    /// into `self` (filled in place: it is a few KiB, not worth moving).
    fn read(&mut self, items: &'a [(Bound<'_, PyAny>, Bound<'_, PyAny>)]) -> PyResult<()> {
        let n = items.len();
        let many = n > MAX_ARG_KEYS;
        let mut total = 2.0;
        let mut budget = MAX_SIZE_NODES;
        let keys = &mut self.keys;
        let entries = &mut self.entries;
        keys.clear();
        entries.clear();
        for (i, (k, v)) in items.iter().enumerate() {
            if budget <= 0 {
                total += 8.0 * (n - i) as f64;
                break;
            }
            budget -= 1;
            let (sk, key) = key_features(k, &mut budget)?;
            let (sv, value) = value_features(v, &mut budget)?;
            total += sk + sv;
            if i < MAX_ARG_KEYS {
                entries.push((key, value));
                if !many {
                    keys.push(key);
                }
            }
        }
        if !many {
            // The walk stopped early (size budget): the key set still names every key.
            for (k, _) in &items[keys.len()..] {
                let tok = match k.cast::<PyString>() {
                    Ok(s) => str_key_token(s, s.code_point_len()?),
                    Err(_) => OTHER_KEY,
                };
                keys.push(tok);
            }
        }
        self.total = total;
        self.many = many;
        Ok(())
    }

    /// The engine's [`CallArgs`] (for a call folded at once).
    fn call_args(&self) -> CallArgs<'a> {
        let keyset = if self.many {
            vec![MANY_KEYS]
        } else {
            let mut ks = self.keys.to_vec();
            ks.sort_unstable();
            ks
        };
        CallArgs {
            log_size: (1.0 + self.total).log2(),
            keyset,
            entries: self
                .entries
                .iter()
                .map(|&(k, v)| (k, v.features()))
                .collect(),
        }
    }
}

/// Up to this many top-level arguments are copied to the stack (more go to the heap).
const INLINE_ITEMS: usize = 16;

// --- Welford / Ewma -------------------------------------------------------------------------

fn collect_numbers(xs: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let mut out = Vec::new();
    for x in xs.try_iter()? {
        out.push(number(&x?, "x")?);
    }
    Ok(out)
}

/// Streaming count, mean, sample variance, min and max (Welford), mergeable (Chan).
#[pyclass(frozen, module = "proxilion._core", name = "Welford")]
pub struct PyWelford {
    inner: Mutex<Welford>,
}

impl PyWelford {
    fn get(&self) -> PyResult<Welford> {
        Ok(*guard(&self.inner)?)
    }
}

#[pymethods]
impl PyWelford {
    #[new]
    fn new() -> Self {
        Self {
            inner: Mutex::new(Welford::new()),
        }
    }

    /// Add one finite sample.
    fn push(&self, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = number(x, "x")?;
        guard(&self.inner)?.push(v);
        Ok(())
    }

    /// Add every sample of `xs` (all are checked before any is added).
    fn extend(&self, xs: &Bound<'_, PyAny>) -> PyResult<()> {
        let vals = collect_numbers(xs)?;
        let mut w = guard(&self.inner)?;
        for v in vals {
            w.push(v);
        }
        Ok(())
    }

    /// Fold an accumulator over disjoint samples into this one (exact).
    fn merge(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        let o = other.cast::<PyWelford>().map_err(|_| {
            PyTypeError::new_err(format!(
                "other must be Welford, not {}",
                type_name(other).unwrap_or_default()
            ))
        })?;
        let snapshot = o.get().get()?;
        guard(&self.inner)?.merge(&snapshot);
        Ok(())
    }

    #[getter]
    fn count(&self) -> PyResult<u64> {
        Ok(self.get()?.count())
    }

    #[getter]
    fn mean(&self) -> PyResult<f64> {
        Ok(self.get()?.mean())
    }

    #[getter]
    fn m2(&self) -> PyResult<f64> {
        Ok(self.get()?.m2())
    }

    #[getter]
    fn variance(&self) -> PyResult<f64> {
        Ok(self.get()?.variance())
    }

    #[getter]
    fn population_variance(&self) -> PyResult<f64> {
        Ok(self.get()?.population_variance())
    }

    #[getter]
    fn std_dev(&self) -> PyResult<f64> {
        Ok(self.get()?.std_dev())
    }

    #[getter]
    fn min(&self) -> PyResult<f64> {
        Ok(self.get()?.min())
    }

    #[getter]
    fn max(&self) -> PyResult<f64> {
        Ok(self.get()?.max())
    }

    /// `(x - mean) / std_dev`; with zero deviation 0.0 at the mean, else +inf.
    fn z_score(&self, x: &Bound<'_, PyAny>) -> PyResult<f64> {
        let v = number(x, "x")?;
        Ok(self.get()?.z_score(v))
    }

    /// `(count, mean, m2, min, max)`.
    fn to_state(&self) -> PyResult<(u64, f64, f64, f64, f64)> {
        Ok(self.get()?.to_parts())
    }

    /// Rebuild from `to_state()`; rejects states no samples could produce.
    #[staticmethod]
    fn from_state(state: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            inner: Mutex::new(welford_from(state, "welford")?),
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let w = self.get()?;
        Ok(format!(
            "Welford(count={}, mean={}, std_dev={})",
            w.count(),
            PyFloat::new(py, w.mean()).repr()?,
            PyFloat::new(py, w.std_dev()).repr()?
        ))
    }
}

/// Exponentially weighted mean and variance; `alpha` in (0, 1].
#[pyclass(frozen, module = "proxilion._core", name = "Ewma")]
pub struct PyEwma {
    inner: Mutex<Ewma>,
}

impl PyEwma {
    fn get(&self) -> PyResult<Ewma> {
        Ok(*guard(&self.inner)?)
    }
}

fn alpha_arg(alpha: &Bound<'_, PyAny>) -> PyResult<f64> {
    let a = if alpha.is_instance_of::<PyFloat>() {
        alpha.extract::<f64>()?
    } else {
        number(alpha, "alpha")?
    };
    if !(a > 0.0 && a <= 1.0) {
        return Err(PyValueError::new_err(format!(
            "alpha must be in (0, 1], got {}",
            alpha.repr()?
        )));
    }
    Ok(a)
}

#[pymethods]
impl PyEwma {
    #[new]
    fn new(alpha: &Bound<'_, PyAny>) -> PyResult<Self> {
        let a = alpha_arg(alpha)?;
        Ok(Self {
            inner: Mutex::new(Ewma::new(a).map_err(map_err)?),
        })
    }

    /// Smoothing matching a moving window of `span` samples: alpha = 2 / (span + 1).
    #[staticmethod]
    fn with_span(span: &Bound<'_, PyAny>) -> PyResult<Self> {
        let s = int_arg(span, "span")?;
        Ok(Self {
            inner: Mutex::new(Ewma::with_span(s.max(1) as usize)),
        })
    }

    /// Add one finite sample.
    fn push(&self, x: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = number(x, "x")?;
        guard(&self.inner)?.push(v);
        Ok(())
    }

    /// Add every sample of `xs` in order.
    fn extend(&self, xs: &Bound<'_, PyAny>) -> PyResult<()> {
        let vals = collect_numbers(xs)?;
        let mut e = guard(&self.inner)?;
        for v in vals {
            e.push(v);
        }
        Ok(())
    }

    /// Approximate merge of a shard of the same stream (count-weighted mixture).
    fn merge(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<()> {
        let o = other.cast::<PyEwma>().map_err(|_| {
            PyTypeError::new_err(format!(
                "other must be Ewma, not {}",
                type_name(other).unwrap_or_default()
            ))
        })?;
        let snapshot = o.get().get()?;
        let mut me = guard(&self.inner)?;
        if me.alpha() != snapshot.alpha() {
            return Err(PyValueError::new_err(format!(
                "cannot merge EWMAs with different alpha ({} and {})",
                PyFloat::new(py, me.alpha()).repr()?,
                PyFloat::new(py, snapshot.alpha()).repr()?
            )));
        }
        me.merge(&snapshot).map_err(map_err)
    }

    #[getter]
    fn alpha(&self) -> PyResult<f64> {
        Ok(self.get()?.alpha())
    }

    #[getter]
    fn count(&self) -> PyResult<u64> {
        Ok(self.get()?.count())
    }

    #[getter]
    fn mean(&self) -> PyResult<f64> {
        Ok(self.get()?.mean())
    }

    #[getter]
    fn variance(&self) -> PyResult<f64> {
        Ok(self.get()?.variance())
    }

    #[getter]
    fn std_dev(&self) -> PyResult<f64> {
        Ok(self.get()?.std_dev())
    }

    /// `(alpha, count, mean, variance)`.
    fn to_state(&self) -> PyResult<(f64, u64, f64, f64)> {
        Ok(self.get()?.to_parts())
    }

    /// Rebuild from `to_state()`.
    #[staticmethod]
    fn from_state(state: &Bound<'_, PyAny>) -> PyResult<Self> {
        let parts = seq(state, Some(4), "ewma")?;
        let alpha_f = state_float(&parts[0], "ewma alpha")?;
        let alpha_obj = PyFloat::new(state.py(), alpha_f);
        let a = alpha_arg(alpha_obj.as_any())?;
        let n = state_int(&parts[1], "ewma count")?;
        let mean = state_float(&parts[2], "ewma mean")?;
        let var = state_float(&parts[3], "ewma variance")?;
        Ok(Self {
            inner: Mutex::new(Ewma::from_parts(a, n, mean, var).map_err(map_err)?),
        })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let e = self.get()?;
        Ok(format!(
            "Ewma(alpha={}, count={}, mean={})",
            PyFloat::new(py, e.alpha()).repr()?,
            e.count(),
            PyFloat::new(py, e.mean()).repr()?
        ))
    }
}

// --- state (de)serialisation ----------------------------------------------------------------

fn bad(msg: String) -> PyErr {
    PyValueError::new_err(format!("invalid drift state: {msg}"))
}

fn req<'py>(d: &Bound<'py, PyAny>, key: &str, path: &str) -> PyResult<Bound<'py, PyAny>> {
    let m = d
        .cast::<PyMapping>()
        .map_err(|_| bad(format!("{path} must be a mapping")))?;
    if !m.contains(key)? {
        return Err(bad(format!("missing {path}.{key}")));
    }
    m.get_item(key)
}

fn mapping<'a, 'py>(x: &'a Bound<'py, PyAny>, path: &str) -> PyResult<&'a Bound<'py, PyAny>> {
    if x.cast::<PyMapping>().is_err() {
        return Err(bad(format!("{path} must be a mapping")));
    }
    Ok(x)
}

fn mapping_items<'py>(x: &Bound<'py, PyAny>, path: &str) -> PyResult<Items<'py>> {
    let m = x
        .cast::<PyMapping>()
        .map_err(|_| bad(format!("{path} must be a mapping")))?;
    let items = m.items()?;
    let mut out = Vec::new();
    for pair in items.iter() {
        out.push((pair.get_item(0)?, pair.get_item(1)?));
    }
    Ok(out)
}

fn state_int(x: &Bound<'_, PyAny>, path: &str) -> PyResult<u64> {
    if x.is_instance_of::<PyBool>() || !x.is_instance_of::<PyInt>() {
        return Err(bad(format!("{path} must be a non-negative integer")));
    }
    x.extract::<u64>()
        .map_err(|_| bad(format!("{path} must be a non-negative integer")))
}

fn state_float(x: &Bound<'_, PyAny>, path: &str) -> PyResult<f64> {
    if !is_number(x) {
        return Err(bad(format!("{path} must be a number")));
    }
    match x.extract::<f64>() {
        Ok(f) if f.is_finite() => Ok(f),
        _ => Err(bad(format!("{path} must be finite"))),
    }
}

fn state_str(x: &Bound<'_, PyAny>, path: &str) -> PyResult<String> {
    x.cast::<PyString>()
        .ok()
        .and_then(|s| s.to_str().ok().map(str::to_owned))
        .ok_or_else(|| bad(format!("{path} must be a string")))
}

fn seq<'py>(
    x: &Bound<'py, PyAny>,
    n: Option<usize>,
    path: &str,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let items: Vec<Bound<'py, PyAny>> = if let Ok(l) = x.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = x.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        return Err(bad(format!("{path} must be a list")));
    };
    if let Some(n) = n {
        if items.len() != n {
            return Err(bad(format!("{path} must have {n} items")));
        }
    }
    Ok(items)
}

type Parts = (u64, f64, f64, f64, f64);

fn parts_from(x: &Bound<'_, PyAny>, path: &str) -> PyResult<Parts> {
    let p = seq(x, Some(5), path)?;
    Ok((
        state_int(&p[0], &format!("{path}[0]"))?,
        state_float(&p[1], &format!("{path}[1]"))?,
        state_float(&p[2], &format!("{path}[2]"))?,
        state_float(&p[3], &format!("{path}[3]"))?,
        state_float(&p[4], &format!("{path}[4]"))?,
    ))
}

fn welford_from(x: &Bound<'_, PyAny>, path: &str) -> PyResult<Welford> {
    let (n, mean, m2, lo, hi) = parts_from(x, path)?;
    Welford::from_parts(n, mean, m2, lo, hi).map_err(map_err)
}

fn counts_from(x: &Bound<'_, PyAny>, path: &str) -> PyResult<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for (k, v) in mapping_items(x, path)? {
        let key = state_str(&k, &format!("{path} key"))?;
        let n = state_int(&v, &format!("{path}[{key:?}]"))?;
        out.push((key, n));
    }
    Ok(out)
}

fn parts_list<'py>(py: Python<'py>, p: Parts) -> PyResult<Bound<'py, PyList>> {
    PyList::new(
        py,
        [
            p.0.into_pyobject(py)?.into_any(),
            PyFloat::new(py, p.1).into_any(),
            PyFloat::new(py, p.2).into_any(),
            PyFloat::new(py, p.3).into_any(),
            PyFloat::new(py, p.4).into_any(),
        ],
    )
}

fn counts_dict<'py>(py: Python<'py>, entries: &[(String, u64)]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, c) in entries {
        d.set_item(k, c)?;
    }
    Ok(d)
}

fn metric_to_py<'py>(py: Python<'py>, snap: &MetricSnapshot) -> PyResult<Bound<'py, PyDict>> {
    let md = PyDict::new(py);
    md.set_item("acc", parts_list(py, snap.acc)?)?;
    md.set_item("window_means", parts_list(py, snap.window_means)?)?;
    let (n, mean, var) = snap.ewma;
    md.set_item(
        "ewma",
        PyList::new(
            py,
            [
                n.into_pyobject(py)?.into_any(),
                PyFloat::new(py, mean).into_any(),
                PyFloat::new(py, var).into_any(),
            ],
        )?,
    )?;
    md.set_item("samples", PyList::new(py, &snap.samples)?)?;
    match snap.baseline {
        None => md.set_item("baseline", py.None())?,
        Some(b) => {
            let bd = PyDict::new(py);
            bd.set_item("mean", b.mean)?;
            bd.set_item("std_dev", b.std_dev)?;
            bd.set_item("min_value", b.min)?;
            bd.set_item("max_value", b.max)?;
            bd.set_item("sample_count", b.count)?;
            bd.set_item("percentile_95", b.p95)?;
            bd.set_item("percentile_99", b.p99)?;
            bd.set_item("scale", b.scale)?;
            md.set_item("baseline", bd)?;
        }
    }
    md.set_item("rejected", snap.rejected)?;
    Ok(md)
}

fn metric_from_py(ms: &Bound<'_, PyAny>, path: &str, max_samples: u64) -> PyResult<MetricSnapshot> {
    mapping(ms, path)?;
    let acc = parts_from(&req(ms, "acc", path)?, &format!("{path}.acc"))?;
    let window_means = parts_from(
        &req(ms, "window_means", path)?,
        &format!("{path}.window_means"),
    )?;
    let ew = seq(&req(ms, "ewma", path)?, Some(3), &format!("{path}.ewma"))?;
    let ewma = (
        state_int(&ew[0], &format!("{path}.ewma[0]"))?,
        state_float(&ew[1], &format!("{path}.ewma[1]"))?,
        state_float(&ew[2], &format!("{path}.ewma[2]"))?,
    );
    let samples_raw = seq(&req(ms, "samples", path)?, None, &format!("{path}.samples"))?;
    if samples_raw.len() as u64 > max_samples {
        return Err(bad(format!("{path}.samples has too many items")));
    }
    let mut samples = Vec::with_capacity(samples_raw.len());
    for x in &samples_raw {
        samples.push(state_float(x, &format!("{path}.samples[]"))?);
    }
    let b = req(ms, "baseline", path)?;
    let baseline = if b.is_none() {
        None
    } else {
        let bp = format!("{path}.baseline");
        mapping(&b, &bp)?;
        let f = |k: &str| -> PyResult<f64> { state_float(&req(&b, k, &bp)?, &format!("{bp}.{k}")) };
        Some(Baseline {
            mean: f("mean")?,
            std_dev: f("std_dev")?,
            min: f("min_value")?,
            max: f("max_value")?,
            p95: f("percentile_95")?,
            p99: f("percentile_99")?,
            scale: f("scale")?,
            count: state_int(
                &req(&b, "sample_count", &bp)?,
                &format!("{bp}.sample_count"),
            )?,
        })
    };
    // optional: states saved before metrics could learn after the lock have no rejections
    let m = ms
        .cast::<PyMapping>()
        .map_err(|_| bad(format!("{path} must be a mapping")))?;
    let rejected = if m.contains("rejected")? {
        state_int(&m.get_item("rejected")?, &format!("{path}.rejected"))?
    } else {
        0
    };
    Ok(MetricSnapshot {
        acc,
        window_means,
        ewma,
        samples,
        baseline,
        rejected,
    })
}

fn state_to_py<'py>(py: Python<'py>, s: &EngineState) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("format", STATE_FORMAT)?;
    d.set_item("version", STATE_VERSION)?;
    d.set_item("baseline_window", s.config.baseline_window)?;
    d.set_item("detection_window", s.config.detection_window)?;
    d.set_item("min_baseline_samples", s.config.min_baseline_samples)?;
    d.set_item("locked", s.locked)?;
    let metrics = PyDict::new(py);
    for (m, snap) in s.metrics.iter().enumerate() {
        let md = metric_to_py(py, snap)?;
        metrics.set_item(METRIC_NAMES[m], md)?;
    }
    d.set_item("metrics", metrics)?;
    let tools = PyDict::new(py);
    tools.set_item("counts", counts_dict(py, &s.tools)?)?;
    tools.set_item("other", s.tools_other)?;
    d.set_item("tools", tools)?;
    d.set_item("hours", PyList::new(py, s.hours)?)?;
    let profiles = PyDict::new(py);
    for (tool, t) in &s.models {
        let td = PyDict::new(py);
        td.set_item("calls", t.calls)?;
        td.set_item("latency", parts_list(py, t.latency)?)?;
        td.set_item("size", parts_list(py, t.size)?)?;
        let keysets = PyList::empty(py);
        for (keys, c) in &t.keysets {
            keysets.append(PyList::new(
                py,
                [
                    PyList::new(py, keys)?.into_any(),
                    c.into_pyobject(py)?.into_any(),
                ],
            )?)?;
        }
        td.set_item("keysets", keysets)?;
        td.set_item("keyset_other", t.keyset_other)?;
        let keys = PyDict::new(py);
        for (k, ks) in &t.keys {
            let kd = PyDict::new(py);
            kd.set_item("kinds", PyList::new(py, ks.kinds)?)?;
            kd.set_item("num", parts_list(py, ks.num)?)?;
            kd.set_item("len", parts_list(py, ks.len)?)?;
            kd.set_item("categories", counts_dict(py, &ks.cats)?)?;
            kd.set_item("categories_other", ks.cats_other)?;
            keys.set_item(k, kd)?;
        }
        td.set_item("keys", keys)?;
        let tm = PyDict::new(py);
        for (k, snap) in t.metrics.iter().enumerate() {
            tm.set_item(METRIC_NAMES[PER_TOOL[k]], metric_to_py(py, snap)?)?;
        }
        td.set_item("metrics", tm)?;
        profiles.set_item(tool, td)?;
    }
    d.set_item("profiles", profiles)?;
    Ok(d)
}

fn state_from_py(s: &Bound<'_, PyAny>) -> PyResult<EngineState> {
    mapping(s, "state")?;
    let fmt = req(s, "format", "state")?;
    let fmt_ok = fmt
        .cast::<PyString>()
        .ok()
        .and_then(|f| f.to_cow().ok().map(|c| c == STATE_FORMAT))
        .unwrap_or(false);
    if !fmt_ok {
        return Err(bad(format!("format must be {STATE_FORMAT:?}")));
    }
    let version = req(s, "version", "state")?;
    let is_int = version.is_instance_of::<PyInt>() && !version.is_instance_of::<PyBool>();
    if !is_int || version.extract::<u64>().ok() != Some(STATE_VERSION) {
        return Err(bad(format!("unsupported version {}", version.repr()?)));
    }
    let bw = state_int(&req(s, "baseline_window", "state")?, "baseline_window")?;
    let dw = state_int(&req(s, "detection_window", "state")?, "detection_window")?;
    let mn = state_int(
        &req(s, "min_baseline_samples", "state")?,
        "min_baseline_samples",
    )?;
    let clamp = |v: u64| v.min(i64::MAX as u64) as i64;
    let config =
        Config::new(clamp(bw), clamp(dw), clamp(mn)).map_err(|e| bad(e.message().into()))?;
    let locked_obj = req(s, "locked", "state")?;
    let locked = locked_obj
        .cast::<PyBool>()
        .map_err(|_| bad("locked must be a bool".into()))?
        .is_true();
    let metrics_obj = req(s, "metrics", "state")?;
    mapping(&metrics_obj, "metrics")?;
    let mut metrics = Vec::with_capacity(N_METRICS);
    for name in METRIC_NAMES {
        let ms = req(&metrics_obj, name, "metrics")?;
        metrics.push(metric_from_py(&ms, &format!("metrics.{name}"), bw)?);
    }
    let tools_obj = req(s, "tools", "state")?;
    mapping(&tools_obj, "tools")?;
    let tools = counts_from(&req(&tools_obj, "counts", "tools")?, "tools")?;
    let tools_other = state_int(&req(&tools_obj, "other", "tools")?, "tools other")?;
    let hours_raw = seq(&req(s, "hours", "state")?, Some(24), "hours")?;
    let mut hours = [0u64; 24];
    for (h, x) in hours.iter_mut().zip(&hours_raw) {
        *h = state_int(x, "hours[]")?;
    }
    let mut models = Vec::new();
    for (tool, raw) in mapping_items(&req(s, "profiles", "state")?, "profiles")? {
        let tname = state_str(&tool, "profiles key")?;
        let path = format!("profiles[{tname:?}]");
        mapping(&raw, &path)?;
        let latency = parts_from(&req(&raw, "latency", &path)?, &format!("{path}.latency"))?;
        let size = parts_from(&req(&raw, "size", &path)?, &format!("{path}.size"))?;
        let mut keysets = Vec::new();
        for item in seq(
            &req(&raw, "keysets", &path)?,
            None,
            &format!("{path}.keysets"),
        )? {
            let pair = seq(&item, Some(2), &format!("{path}.keysets[]"))?;
            let mut keys = Vec::new();
            for k in seq(&pair[0], None, &path)? {
                keys.push(state_str(&k, &format!("{path}.keysets[] key"))?);
            }
            keysets.push((
                keys,
                state_int(&pair[1], &format!("{path}.keysets[] count"))?,
            ));
        }
        let keyset_other = state_int(
            &req(&raw, "keyset_other", &path)?,
            &format!("{path}.keyset_other"),
        )?;
        let calls = state_int(&req(&raw, "calls", &path)?, &format!("{path}.calls"))?;
        let mut keys = Vec::new();
        for (k, kraw) in mapping_items(&req(&raw, "keys", &path)?, &format!("{path}.keys"))? {
            let kname = state_str(&k, &format!("{path}.keys key"))?;
            let kp = format!("{path}.keys[{kname:?}]");
            mapping(&kraw, &kp)?;
            let kinds_raw = seq(
                &req(&kraw, "kinds", &kp)?,
                Some(N_KINDS),
                &format!("{kp}.kinds"),
            )?;
            let mut kinds = [0u64; N_KINDS];
            for (a, x) in kinds.iter_mut().zip(&kinds_raw) {
                *a = state_int(x, &format!("{kp}.kinds[]"))?;
            }
            keys.push((
                kname,
                KeySnapshot {
                    kinds,
                    num: parts_from(&req(&kraw, "num", &kp)?, &format!("{kp}.num"))?,
                    len: parts_from(&req(&kraw, "len", &kp)?, &format!("{kp}.len"))?,
                    cats: counts_from(
                        &req(&kraw, "categories", &kp)?,
                        &format!("{kp}.categories"),
                    )?,
                    cats_other: state_int(
                        &req(&kraw, "categories_other", &kp)?,
                        &format!("{kp}.categories_other"),
                    )?,
                },
            ));
        }
        let tm_obj = req(&raw, "metrics", &path)?;
        mapping(&tm_obj, &format!("{path}.metrics"))?;
        let mut tool_metrics = Vec::with_capacity(PER_TOOL.len());
        for m in PER_TOOL {
            let name = METRIC_NAMES[m];
            let ms = req(&tm_obj, name, &format!("{path}.metrics"))?;
            tool_metrics.push(metric_from_py(
                &ms,
                &format!("{path}.metrics.{name}"),
                dw.min(bw),
            )?);
        }
        models.push((
            tname,
            ToolSnapshot {
                calls,
                latency,
                size,
                keysets,
                keyset_other,
                keys,
                metrics: tool_metrics,
            },
        ));
    }
    Ok(EngineState {
        config,
        locked,
        metrics,
        tools,
        tools_other,
        hours,
        models,
    })
}

// --- the engine -----------------------------------------------------------------------------

type BaselineTuple = (usize, f64, f64, f64, f64, u64, f64, f64, f64);
type CheckTuple = (usize, f64, f64, f64, f64, f64, Option<String>);
type Evaluation = (f64, Vec<(usize, f64, f64, Option<String>)>, Vec<CheckTuple>);

fn baseline_tuple((m, b): (usize, Baseline)) -> BaselineTuple {
    (
        m, b.mean, b.std_dev, b.min, b.max, b.count, b.p95, b.p99, b.scale,
    )
}

fn check_tuples(e: &Engine, checks: &[MetricCheck]) -> Vec<CheckTuple> {
    checks
        .iter()
        .map(|c| {
            (
                c.metric,
                c.current,
                c.z,
                c.baseline_mean,
                c.scale,
                c.ewma,
                c.tool.and_then(|i| e.tool_name(i)).map(str::to_owned),
            )
        })
        .collect()
}

/// Calls recorded without arguments wait in the pending buffer of their engine: the current
/// batch takes at most this many calls (and [`PENDING_ARENA_KEEP`] bytes of names), then it is
/// sealed and handed to the fold worker (see [`fold_worker`]); a read of the engine folds every
/// sealed batch and the current one first.
const PENDING_CAP: usize = 256;

/// Bytes of tool names a batch holds before it is sealed (whatever the number of calls), and
/// keeps allocated when it is recycled (beyond this it is freed).
const PENDING_ARENA_KEEP: usize = 64 * 1024;

/// Sealed batches an engine may hold: a recording that seals one more folds them itself (with
/// the GIL released), so memory and the cost of the next read stay bounded when the worker
/// falls behind (or cannot be started).
const MAX_SEALED: usize = 4;

/// Text of a pending call: `arena[start..end]` of its batch.
type Span = (usize, usize);

/// The argument features of a pending call ([`RawArgs`]): its key tokens (in mapping order)
/// and entries are `keys[keys.0..keys.1]` and `entries[entries.0..entries.1]` of its batch.
#[derive(Clone, Copy)]
struct PendingArgs {
    total: f64,
    keys: Span,
    entries: Span,
}

/// A call waiting to be folded: its tool name is `name` in the arena of its batch.
struct PendingCall {
    name: Span,
    latency: Option<f64>,
    args: Option<PendingArgs>,
    mono: f64,
    wall: f64,
}

/// Calls in recording order, their texts in one arena.
#[derive(Default)]
struct Batch {
    calls: Vec<PendingCall>,
    arena: String,
    keys: Vec<Span>,
    entries: Vec<(Span, RawValue<Span>)>,
}

impl Batch {
    fn text(&mut self, s: &str) -> Span {
        let start = self.arena.len();
        self.arena.push_str(s);
        (start, self.arena.len())
    }

    /// Append a call (its texts copied into the arena).
    fn push(
        &mut self,
        name: &str,
        latency: Option<f64>,
        args: Option<&RawArgs<'_>>,
        (mono, wall): (f64, f64),
    ) {
        let name = self.text(name);
        let args = args.map(|a| {
            let k0 = self.keys.len();
            let e0 = self.entries.len();
            if a.many {
                let span = self.text(MANY_KEYS);
                self.keys.push(span);
            }
            for &(k, v) in &a.entries {
                let key = self.text(k);
                if !a.many {
                    // keys[i] is the key of entries[i]: its text is stored once.
                    self.keys.push(key);
                }
                let value = v.map_text(|t| self.text(t));
                self.entries.push((key, value));
            }
            for k in a.keys.iter().skip(a.entries.len()) {
                let span = self.text(k);
                self.keys.push(span);
            }
            PendingArgs {
                total: a.total,
                keys: (k0, self.keys.len()),
                entries: (e0, self.entries.len()),
            }
        });
        self.calls.push(PendingCall {
            name,
            latency,
            args,
            mono,
            wall,
        });
    }

    fn is_full(&self) -> bool {
        // Long names seal early, so a batch never holds much more than PENDING_ARENA_KEEP
        // bytes of them.
        self.calls.len() >= PENDING_CAP || self.arena.len() >= PENDING_ARENA_KEEP
    }

    /// Fold every call into `engine`, in order, and empty the batch. Every call was validated
    /// when recorded, so this fails only on a bug in the engine (the calls after a failed one
    /// are still folded; the first error is returned).
    fn fold_into(&mut self, engine: &mut Engine) -> Result<(), StatsError> {
        let arena = self.arena.as_str();
        let text = |(a, b): Span| &arena[a..b];
        let mut folded = Ok(());
        let mut keyset: Vec<&str> = Vec::new();
        let mut entries: Vec<(&str, ArgValue<'_>)> = Vec::new();
        for c in &self.calls {
            let r = match c.args {
                None => engine.record_tool_call(text(c.name), c.latency, None, c.mono, c.wall),
                Some(a) => {
                    keyset.clear();
                    keyset.extend(self.keys[a.keys.0..a.keys.1].iter().map(|&k| text(k)));
                    keyset.sort_unstable();
                    entries.clear();
                    entries.extend(
                        self.entries[a.entries.0..a.entries.1]
                            .iter()
                            .map(|&(k, v)| (text(k), v.map_text(text).features())),
                    );
                    let call_args = CallArgs {
                        log_size: (1.0 + a.total).log2(),
                        keyset: std::mem::take(&mut keyset),
                        entries: std::mem::take(&mut entries),
                    };
                    let r = engine.record_tool_call(
                        text(c.name),
                        c.latency,
                        Some(&call_args),
                        c.mono,
                        c.wall,
                    );
                    keyset = call_args.keyset;
                    entries = call_args.entries;
                    r
                }
            };
            if folded.is_ok() {
                folded = r;
            }
        }
        drop((keyset, entries));
        self.calls.clear();
        self.keys.clear();
        self.entries.clear();
        self.arena.clear();
        if self.arena.capacity() > PENDING_ARENA_KEEP {
            // A burst of huge tool names: do not keep their memory for good.
            self.arena = String::new();
        }
        folded
    }
}

/// The batch being filled, and the clock synchronisation of the default clocks (see
/// [`Pending::clocks_now`]): the only state a recording locks (the worker never does).
struct Pending {
    current: Batch,
    sync: (f64, f64),
}

impl Pending {
    fn new() -> Self {
        Self {
            current: Batch::default(),
            sync: (f64::NEG_INFINITY, 0.0),
        }
    }

    /// `(monotonic, wall)` now. The wall clock is read at most once a second and
    /// extrapolated with the monotonic clock in between (reading it is a system call on some
    /// platforms, which would double the cost of recording a call); the hour of day needs
    /// nothing finer, and a step of the system clock is picked up within a second.
    fn clocks_now(&mut self) -> (f64, f64) {
        let mono = mono_now();
        if self.sync.0.is_infinite() || mono - self.sync.0 > 1.0 {
            self.sync = (mono, wall_now());
        }
        (mono, self.sync.1 + (mono - self.sync.0))
    }
}

/// Sealed batches waiting to be folded (oldest first) and emptied batches kept for reuse.
#[derive(Default)]
struct Sealed {
    batches: std::collections::VecDeque<Batch>,
    free: Vec<Batch>,
}

impl Sealed {
    /// Seal `current` (a recycled batch takes its place); returns the sealed count.
    fn seal(&mut self, current: &mut Batch) -> usize {
        let fresh = self.free.pop().unwrap_or_default();
        self.batches.push_back(std::mem::replace(current, fresh));
        self.batches.len()
    }

    /// Keep emptied batches for reuse (at most as many as can be in use at once).
    fn recycle(&mut self, batches: &mut Vec<Batch>) {
        for b in batches.drain(..) {
            if self.free.len() <= MAX_SEALED {
                self.free.push(b);
            }
        }
    }
}

/// The engine, and the first error a fold met while nobody was waiting for it (reported by
/// the next read; it would be a bug in the engine, since calls are validated when recorded).
struct Inner {
    engine: Engine,
    fold_error: Option<StatsError>,
}

impl std::ops::Deref for Inner {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl std::ops::DerefMut for Inner {
    fn deref_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }
}

/// State shared by a `DriftEngine` and the fold worker. Lock order: `inner`, `pending`,
/// `sealed`; `pending` and `sealed` are held only for constant work. A recording locks
/// `pending` (and `sealed` when it seals a batch); the worker locks `inner` and `sealed`, so
/// recordings and the worker's folds do not contend.
struct Shared {
    inner: CacheAligned<Mutex<Inner>>,
    pending: CacheAligned<Mutex<Pending>>,
    sealed: CacheAligned<Mutex<Sealed>>,
}

/// A value on cache lines of its own: the worker writes the engine while callers append to
/// the pending buffer, and sharing a line would make every append a cross-core miss.
#[repr(align(128))]
struct CacheAligned<T>(T);

impl<T> std::ops::Deref for CacheAligned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl Shared {
    /// Fold the sealed batches and, with `current`, the current one into `inner` (locked by
    /// the caller, so batches are folded in recording order whoever folds them).
    fn fold(&self, inner: &mut Inner, current: bool) -> PyResult<()> {
        let mut batches = Vec::new();
        if current {
            let mut p = guard(&self.pending)?;
            let mut q = guard(&self.sealed)?;
            batches.extend(q.batches.drain(..));
            if !p.current.calls.is_empty() {
                let fresh = q.free.pop().unwrap_or_default();
                batches.push(std::mem::replace(&mut p.current, fresh));
            }
        } else {
            batches.extend(guard(&self.sealed)?.batches.drain(..));
        }
        if batches.is_empty() {
            return Ok(());
        }
        let mut result = Ok(());
        for b in &mut batches {
            let r = b.fold_into(&mut inner.engine);
            if result.is_ok() {
                result = r;
            }
        }
        guard(&self.sealed)?.recycle(&mut batches);
        if let Err(e) = result {
            inner.fold_error.get_or_insert(e);
        }
        Ok(())
    }

    /// Fold the sealed batches with the GIL released (a recording's job when too many are
    /// sealed), inside the fork gate.
    fn fold_sealed(&self) -> PyResult<()> {
        let _gate = fork_gate::enter();
        let mut inner = guard(&self.inner)?;
        self.fold(&mut inner, false)
    }

    /// The worker's fold: as [`Shared::fold_sealed`], but only if the engine is free (whoever
    /// holds it is a read, which folds every pending batch itself, or a fold); so the worker
    /// never waits inside the fork gate.
    fn try_fold_sealed(&self) -> PyResult<()> {
        let _gate = fork_gate::enter();
        let mut inner = match self.inner.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::WouldBlock) => return Ok(()),
            Err(std::sync::TryLockError::Poisoned(_)) => return guard(&self.inner).map(drop),
        };
        self.fold(&mut inner, false)
    }
}

/// Process-wide fold worker: one background thread folds the batches engines seal, so a
/// recording costs an append to a buffer and the statistics run on another core, without the
/// GIL. Engines are referred to weakly (a dropped engine's batches are dropped with it).
mod fold_worker {
    use std::sync::mpsc::{channel, Sender};
    use std::sync::{Mutex, Weak};

    use super::Shared;

    /// The worker's queue, with the process it was started in (a forked child starts its
    /// own: the parent's thread does not exist there).
    static WORKER: Mutex<Option<(u32, Sender<Weak<Shared>>)>> = Mutex::new(None);

    fn run(rx: std::sync::mpsc::Receiver<Weak<Shared>>) {
        use std::sync::mpsc::TryRecvError;
        loop {
            // Poll for up to 100 us before sleeping: recordings come in bursts, and waking a
            // sleeping thread costs the recording that seals the next batch 5-20 us on a
            // virtual machine (measured: those spikes were a quarter of the cost of a burst
            // of 1024 calls); a worker that polls takes the next batch without a wake-up.
            let start = std::time::Instant::now();
            let w = loop {
                match rx.try_recv() {
                    Ok(w) => break w,
                    Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => {
                        if start.elapsed() > std::time::Duration::from_micros(100) {
                            match rx.recv() {
                                Ok(w) => break w,
                                Err(_) => return,
                            }
                        }
                        std::hint::spin_loop();
                    }
                }
            };
            if let Some(shared) = w.upgrade() {
                // An error is kept in the engine (poisoning: reported by its next read).
                let _ = shared.try_fold_sealed();
            }
        }
    }

    /// Whether the worker may run: not when the environment variable
    /// `PROXILION_DRIFT_WORKER` is `0` at the first sealed batch (then every fold runs on the
    /// recording thread, with the GIL released, as a full batch is sealed).
    fn enabled() -> bool {
        static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ENABLED
            .get_or_init(|| std::env::var_os("PROXILION_DRIFT_WORKER").map_or(true, |v| v != "0"))
    }

    /// Ask the worker to fold `shared`'s sealed batches; false when no worker can run (the
    /// caller folds them itself).
    pub(super) fn submit(shared: Weak<Shared>) -> bool {
        if !enabled() {
            return false;
        }
        let Ok(mut slot) = WORKER.lock() else {
            return false;
        };
        let pid = std::process::id();
        if !matches!(&*slot, Some((p, _)) if *p == pid) {
            // In a forked child the parent's queue is forgotten, not dropped: dropping its
            // sender would take the channel's internal locks, which the parent's worker may
            // have held at the fork.
            if let Some((_, inherited)) = slot.take() {
                std::mem::forget(inherited);
            }
            let (tx, rx) = channel();
            let spawned = std::thread::Builder::new()
                .name("proxilion-drift-fold".into())
                .spawn(move || run(rx));
            if spawned.is_err() {
                *slot = None;
                return false;
            }
            *slot = Some((pid, tx));
        }
        match &*slot {
            Some((_, tx)) => tx.send(shared).is_ok(),
            None => false,
        }
    }
}

/// Fork safety of the fold worker: folds without the GIL (the worker's, and a recording's
/// when the worker falls behind) run inside this gate, and `os.fork()` (hooks registered with
/// `os.register_at_fork`) closes it and waits until none runs, so no engine lock is held by a
/// thread that will not exist in the child. Atomics only (a mutex could itself be held at the
/// fork).
mod fork_gate {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

    static FORKING: AtomicBool = AtomicBool::new(false);
    static FOLDING: AtomicUsize = AtomicUsize::new(0);

    /// A fold in progress; leaving the gate when dropped.
    pub(super) struct Entered(());

    impl Drop for Entered {
        fn drop(&mut self) {
            FOLDING.fetch_sub(1, SeqCst);
        }
    }

    /// Enter the gate (waiting while a fork is in progress).
    pub(super) fn enter() -> Entered {
        loop {
            while FORKING.load(SeqCst) {
                std::thread::yield_now();
            }
            FOLDING.fetch_add(1, SeqCst);
            if !FORKING.load(SeqCst) {
                return Entered(());
            }
            FOLDING.fetch_sub(1, SeqCst);
        }
    }

    /// Before a fork (GIL held): close the gate and wait for the folds inside it. The wait is
    /// bounded (a fold waits inside only for an engine lock, held by another fold or by a
    /// read, which holds the GIL this thread has): should a read ever be stuck holding it
    /// (it would have to give up the GIL while holding the lock, e.g. in a finalizer that
    /// blocks), the fork goes ahead rather than deadlock the parent.
    pub(super) fn close() {
        FORKING.store(true, SeqCst);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while FOLDING.load(SeqCst) != 0 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
    }

    /// After a fork, in the parent and in the child.
    pub(super) fn open() {
        FORKING.store(false, SeqCst);
    }
}

/// Per-agent drift engine: O(1) recording, O(metrics) checks, bounded memory.
///
/// A call is validated, timestamped and appended to a pending batch, its argument features
/// read from the Python objects and copied (one short lock, no engine work). A full batch
/// ([`PENDING_CAP`] calls) is sealed and folded into the engine by the process's fold worker
/// thread, in order, without the GIL; anything else that touches the engine (events, errors,
/// values, checks, baselines, state) folds every batch still pending first, so every result
/// is the same as if each call had been folded at once, and a check folds at most
/// `(MAX_SEALED + 1) * PENDING_CAP` calls.
#[pyclass(frozen, module = "proxilion._core", name = "DriftEngine")]
pub struct PyDriftEngine {
    shared: Arc<Shared>,
}

impl PyDriftEngine {
    fn with_engine(engine: Engine) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner: CacheAligned(Mutex::new(Inner {
                    engine,
                    fold_error: None,
                })),
                pending: CacheAligned(Mutex::new(Pending::new())),
                sealed: CacheAligned(Mutex::new(Sealed::default())),
            }),
        }
    }

    /// The engine, locked, with every pending call folded in. Called with the GIL held: if
    /// the worker is folding, the wait releases the GIL (the lock is then taken again with
    /// the GIL held, so it is never held by a thread waiting for the GIL).
    fn engine(&self) -> PyResult<MutexGuard<'_, Inner>> {
        let s = &*self.shared;
        let mut g = loop {
            match s.inner.try_lock() {
                Ok(g) => break g,
                Err(std::sync::TryLockError::WouldBlock) => {
                    Python::attach(|py| py.detach(|| guard(&s.inner).map(drop)))?;
                }
                Err(std::sync::TryLockError::Poisoned(_)) => {
                    return guard(&s.inner);
                }
            }
        };
        s.fold(&mut g, true)?;
        if let Some(e) = g.fold_error.take() {
            return Err(map_err(e));
        }
        Ok(g)
    }

    /// The `now` and `wall` arguments, defaulting to the clocks (see [`Pending::clocks_now`]).
    fn times(
        &self,
        now: Option<&Bound<'_, PyAny>>,
        wall: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(f64, f64)> {
        if is_default(now) && is_default(wall) {
            return Ok(guard(&self.shared.pending)?.clocks_now());
        }
        Ok((
            time_arg(now, "now", mono_now)?,
            time_arg(wall, "wall", wall_now)?,
        ))
    }

    /// Append a call without arguments to the pending batch (`times`: injected clocks, or
    /// None for the default ones). A full batch is sealed and handed to the fold worker; with
    /// too many sealed (or no worker), this call folds them, with the GIL released.
    fn defer(
        &self,
        py: Python<'_>,
        name: &str,
        latency: Option<f64>,
        args: Option<&RawArgs<'_>>,
        times: Option<(f64, f64)>,
    ) -> PyResult<()> {
        let sealed = {
            let mut p = guard(&self.shared.pending)?;
            let t = match times {
                Some(t) => t,
                None => p.clocks_now(),
            };
            p.current.push(name, latency, args, t);
            if p.current.is_full() {
                guard(&self.shared.sealed)?.seal(&mut p.current)
            } else {
                return Ok(());
            }
        };
        if sealed > MAX_SEALED || !fold_worker::submit(Arc::downgrade(&self.shared)) {
            let s = &*self.shared;
            py.detach(|| s.fold_sealed())?;
        }
        Ok(())
    }

    fn record_call(
        &self,
        name_obj: &Bound<'_, PyAny>,
        latency_ms: Option<&Bound<'_, PyAny>>,
        arguments: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
        wall: Option<&Bound<'_, PyAny>>,
        defer: bool,
    ) -> PyResult<()> {
        let name = tool_name(name_obj)?;
        let latency = latency_arg(latency_ms)?;
        // The arguments' items are copied (to the stack when few) before anything else is
        // looked at: reading a value may run Python code (an `int` subclass's `__float__`),
        // which must not see or change the walk.
        let mut inline: ArrayVec<(Bound<'_, PyAny>, Bound<'_, PyAny>), INLINE_ITEMS> =
            ArrayVec::new();
        let heap: Items<'_>;
        let items: Option<&[(Bound<'_, PyAny>, Bound<'_, PyAny>)]> = match arguments {
            None => None,
            Some(a) if a.is_none() => None,
            Some(a) => match a.cast_exact::<PyDict>() {
                Ok(d) if d.len() <= INLINE_ITEMS => {
                    for pair in d.iter() {
                        // Cannot fail: nothing runs Python code between the length and the copy.
                        if inline.try_push(pair).is_err() {
                            return Err(PyRuntimeError::new_err(
                                "arguments changed size while being read",
                            ));
                        }
                    }
                    Some(&inline)
                }
                _ => {
                    heap = argument_items(a)?;
                    Some(&heap)
                }
            },
        };
        let mut raw = RawArgs::new();
        let args = match items {
            Some(it) => {
                raw.read(it)?;
                Some(&raw)
            }
            None => None,
        };
        if defer {
            let t = if is_default(now) && is_default(wall) {
                None
            } else {
                Some(self.times(now, wall)?)
            };
            return self.defer(name_obj.py(), name, latency, args, t);
        }
        let (mono, wall) = self.times(now, wall)?;
        let call = args.map(RawArgs::call_args);
        self.engine()?
            .record_tool_call(name, latency, call.as_ref(), mono, wall)
            .map_err(map_err)
    }
}

#[pymethods]
impl PyDriftEngine {
    #[new]
    #[pyo3(signature = (baseline_window=None, detection_window=None, min_baseline_samples=None))]
    fn new(
        baseline_window: Option<&Bound<'_, PyAny>>,
        detection_window: Option<&Bound<'_, PyAny>>,
        min_baseline_samples: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let get = |o: Option<&Bound<'_, PyAny>>, name: &str, d: i64| -> PyResult<i64> {
            match o {
                None => Ok(d),
                Some(v) => int_arg(v, name),
            }
        };
        let bw = get(baseline_window, "baseline_window", 100)?;
        let dw = get(detection_window, "detection_window", 10)?;
        let mn = get(min_baseline_samples, "min_baseline_samples", 20)?;
        let cfg = Config::new(bw, dw, mn).map_err(map_err)?;
        Ok(Self::with_engine(Engine::new(cfg)))
    }

    /// Record one tool call (rate, mix, latency, time of day, argument features).
    #[pyo3(signature = (tool_name, latency_ms=None, arguments=None, now=None, wall=None))]
    fn record_tool_call(
        &self,
        tool_name: &Bound<'_, PyAny>,
        latency_ms: Option<&Bound<'_, PyAny>>,
        arguments: Option<&Bound<'_, PyAny>>,
        now: Option<&Bound<'_, PyAny>>,
        wall: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.record_call(tool_name, latency_ms, arguments, now, wall, true)
    }

    /// Record one tool call at the system clocks, with `BehavioralMonitor.record_tool_call`'s
    /// signature (`BehavioralMonitor` binds it as that method when no clock is injected, so
    /// recording is one native call).
    #[pyo3(signature = (tool_name, arguments=None, latency_ms=None))]
    fn record(
        &self,
        tool_name: &Bound<'_, PyAny>,
        arguments: Option<&Bound<'_, PyAny>>,
        latency_ms: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.record_call(tool_name, latency_ms, arguments, None, None, true)
    }

    /// Record a `tool_call` event: rate, unique tools, mix and time of day only.
    #[pyo3(signature = (tool_name, now=None, wall=None))]
    fn record_tool_event(
        &self,
        tool_name: &Bound<'_, PyAny>,
        now: Option<&Bound<'_, PyAny>>,
        wall: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let name = self::tool_name(tool_name)?;
        let (mono, wall) = self.times(now, wall)?;
        self.engine()?
            .record_tool_event(name, mono, wall)
            .map_err(map_err)
    }

    /// Add an event time (counted by the call rate).
    #[pyo3(signature = (now=None))]
    fn record_event_time(&self, now: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let mono = time_arg(now, "now", mono_now)?;
        self.engine()?.record_event_time(mono).map_err(map_err)
    }

    /// Record an error (errors in the last 60 s, plus this one).
    #[pyo3(signature = (now=None))]
    fn record_error(&self, now: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let mono = time_arg(now, "now", mono_now)?;
        self.engine()?.record_error(mono).map_err(map_err)
    }

    /// Record a value of response_length, latency, token_usage, scope_violations,
    /// context_size or custom (by metric index).
    fn record_value(&self, metric: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let m = int_arg(metric, "metric")?;
        if m < 0 || m as usize >= N_METRICS {
            return Err(PyValueError::new_err(format!("unknown metric index {m}")));
        }
        let m = m as usize;
        if !VALUE_METRICS.contains(&m) {
            return Err(PyValueError::new_err(format!(
                "metric {} cannot be recorded directly",
                METRIC_NAMES[m]
            )));
        }
        if !is_number(value) {
            return Err(PyTypeError::new_err(format!(
                "{} value must be a number, not {}",
                METRIC_NAMES[m],
                type_name(value)?
            )));
        }
        let x = value.extract::<f64>().unwrap_or(f64::INFINITY);
        if !x.is_finite() || (m == metric::LATENCY && x < 0.0) {
            return Err(PyValueError::new_err(format!(
                "{} value must be a finite number{}, got {}",
                METRIC_NAMES[m],
                if m == metric::LATENCY { " >= 0" } else { "" },
                value.repr()?
            )));
        }
        self.engine()?.record_value(m, x).map_err(map_err)
    }

    /// Whether the baseline is locked.
    #[getter]
    fn locked(&self) -> PyResult<bool> {
        Ok(self.engine()?.is_locked())
    }

    /// `(baseline_window, detection_window, min_baseline_samples)`.
    fn config(&self) -> PyResult<(usize, usize, u64)> {
        let c = self.engine()?.config();
        Ok((
            c.baseline_window,
            c.detection_window,
            c.min_baseline_samples,
        ))
    }

    /// Samples learned per metric, by index.
    fn sample_counts(&self) -> PyResult<Vec<u64>> {
        Ok(self.engine()?.sample_counts().to_vec())
    }

    /// Freeze the tool mix and hour profile; baseline every metric with enough samples (the
    /// others keep learning and join once they have enough). Returns the baselines; once
    /// locked, the current ones.
    fn lock(&self) -> PyResult<Vec<BaselineTuple>> {
        Ok(self
            .engine()?
            .lock()
            .into_iter()
            .map(baseline_tuple)
            .collect())
    }

    /// `(statuses, tools)`: the status (`"learning"`, `"baselined"` or `"excluded"`) of every
    /// metric by index, and `{tool: statuses of its per-tool metrics}` (tool_latency,
    /// argument_size, argument_keys, argument_values) per profiled tool, sorted by name.
    fn baseline_status<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Vec<&'static str>, Bound<'py, PyDict>)> {
        let (pooled, tools): (Vec<&'static str>, Vec<(String, Vec<&'static str>)>) = {
            let e = self.engine()?;
            let (p, t) = e.status();
            (
                p.iter().map(|s| s.as_str()).collect(),
                t.into_iter()
                    .map(|(n, s)| (n.to_owned(), s.iter().map(|x| x.as_str()).collect()))
                    .collect(),
            )
        };
        let d = PyDict::new(py);
        for (name, s) in tools {
            d.set_item(name, s)?;
        }
        Ok((pooled, d))
    }

    /// `(metric, mean, std_dev, min, max, count, p95, p99, scale)` per baselined metric.
    fn baselines(&self) -> PyResult<Vec<BaselineTuple>> {
        Ok(self
            .engine()?
            .baselines()
            .into_iter()
            .map(baseline_tuple)
            .collect())
    }

    /// `(metric, current, z, baseline_mean, scale, ewma, tool)` per evaluable metric (`tool`
    /// names the tool evaluated for a per-tool metric, else None).
    fn check(&self) -> PyResult<Vec<CheckTuple>> {
        let e = self.engine()?;
        Ok(check_tuples(&e, &e.check()))
    }

    /// `(severity, drifting, checks)`: `checks` as `check()`, `drifting` the
    /// `(metric, current, z, tool)` with `|z| > threshold`, `severity` the largest
    /// `min(1, |z| / (2 * threshold))` among them (0.0 when none).
    fn evaluate(&self, threshold: &Bound<'_, PyAny>) -> PyResult<Evaluation> {
        let thr = number(threshold, "threshold")?;
        let e = self.engine()?;
        let checks = e.check();
        let mut severity = 0.0f64;
        let mut drifting = Vec::new();
        for c in &checks {
            let az = c.z.abs();
            if az > thr {
                let tool = c.tool.and_then(|i| e.tool_name(i)).map(str::to_owned);
                drifting.push((c.metric, c.current, c.z, tool));
                let sev = (az / (2.0 * thr)).min(1.0);
                if sev > severity {
                    severity = sev;
                }
            }
        }
        Ok((severity, drifting, check_tuples(&e, &checks)))
    }

    /// `(metric, window mean)` per metric that has samples.
    fn current_values(&self) -> PyResult<Vec<(usize, f64)>> {
        Ok(self.engine()?.current_values())
    }

    /// Accumulators of one metric (for inspection and tests).
    fn metric_state<'py>(
        &self,
        py: Python<'py>,
        metric: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let m = int_arg(metric, "metric")?;
        if m < 0 || m as usize >= N_METRICS {
            return Err(PyValueError::new_err(format!("unknown metric index {m}")));
        }
        let (acc, wm, ewma, samples, rejected) = {
            let e = self.engine()?;
            let st = e.metric(m as usize);
            (
                st.acc.to_parts(),
                st.window_means.to_parts(),
                st.ewma.to_parts(),
                st.ring.to_vec(),
                st.rejected,
            )
        };
        let d = PyDict::new(py);
        d.set_item("acc", acc)?;
        d.set_item("window_means", wm)?;
        d.set_item("ewma", (ewma.1, ewma.2, ewma.3))?;
        d.set_item("samples", samples)?;
        d.set_item("rejected", rejected)?;
        Ok(d)
    }

    /// Record `(tool_name, latency_ms, arguments, now, wall)` calls in order and, once the
    /// baseline is locked, check after every `check_every` calls; count the checks with a
    /// metric over `threshold` (no callbacks, no auto-lock).
    #[pyo3(signature = (calls, threshold=None, check_every=None))]
    fn replay<'py>(
        &self,
        py: Python<'py>,
        calls: &Bound<'py, PyAny>,
        threshold: Option<&Bound<'py, PyAny>>,
        check_every: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let thr = match threshold {
            None => 3.0,
            Some(t) => number(t, "threshold")?,
        };
        if thr <= 0.0 {
            return Err(PyValueError::new_err(format!(
                "threshold must be greater than 0, got {}",
                threshold
                    .map(|t| t.repr())
                    .transpose()?
                    .map(|r| r.to_string())
                    .unwrap_or_default()
            )));
        }
        let every = match check_every {
            None => 1,
            Some(c) => int_arg(c, "check_every")?,
        };
        if every <= 0 {
            return Err(PyValueError::new_err("check_every must be greater than 0"));
        }
        let every = every as u64;
        let mut n_calls = 0u64;
        let mut checks = 0u64;
        let mut alarms = 0u64;
        let mut first: Option<usize> = None;
        let mut per_metric = [0u64; N_METRICS];
        let mut max_z = [-1.0f64; N_METRICS];
        let mut buf = Vec::with_capacity(N_METRICS);
        for (i, item) in calls.try_iter()?.enumerate() {
            let item = item?;
            let fields: Vec<Bound<'py, PyAny>> = if let Ok(t) = item.cast::<PyTuple>() {
                t.iter().collect()
            } else if let Ok(l) = item.cast::<PyList>() {
                l.iter().collect()
            } else {
                Vec::new()
            };
            if fields.len() != 5 {
                return Err(PyTypeError::new_err(format!(
                    "calls[{i}] must be a (tool_name, latency_ms, arguments, now, wall) tuple"
                )));
            }
            self.record_call(
                &fields[0],
                Some(&fields[1]),
                Some(&fields[2]),
                Some(&fields[3]),
                Some(&fields[4]),
                false,
            )?;
            n_calls += 1;
            let e = self.engine()?;
            if e.is_locked() && n_calls % every == 0 {
                checks += 1;
                e.check_into(&mut buf);
                drop(e);
                let mut drifting = false;
                for c in &buf {
                    let az = c.z.abs();
                    if az > max_z[c.metric] {
                        max_z[c.metric] = az;
                    }
                    if az > thr {
                        per_metric[c.metric] += 1;
                        drifting = true;
                    }
                }
                if drifting {
                    alarms += 1;
                    first.get_or_insert(i);
                }
            }
        }
        let d = PyDict::new(py);
        d.set_item("calls", n_calls)?;
        d.set_item("checks", checks)?;
        d.set_item("alarms", alarms)?;
        d.set_item("first_alarm", first)?;
        let pm = PyDict::new(py);
        let mz = PyDict::new(py);
        for m in 0..N_METRICS {
            if per_metric[m] > 0 {
                pm.set_item(METRIC_NAMES[m], per_metric[m])?;
            }
            if max_z[m] >= 0.0 {
                mz.set_item(METRIC_NAMES[m], max_z[m])?;
            }
        }
        d.set_item("per_metric", pm)?;
        d.set_item("max_abs_z", mz)?;
        Ok(d)
    }

    /// Fold a shard (same configuration, neither locked) into this engine.
    fn merge(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        let o = other.cast::<PyDriftEngine>().map_err(|_| {
            PyTypeError::new_err(format!(
                "other must be DriftEngine, not {}",
                type_name(other).unwrap_or_default()
            ))
        })?;
        // Snapshot first: `other` may be `self`, and two locks must never be held at once.
        let snapshot = o.get().engine()?.engine.clone();
        self.engine()?.merge(&snapshot).map_err(map_err)
    }

    /// Everything learned, as JSON-compatible data (transient windows excluded).
    fn to_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.engine()?.to_state();
        state_to_py(py, &s)
    }

    /// Rebuild an engine from `to_state()` (validated: a saved state is untrusted).
    #[staticmethod]
    fn from_state(state: &Bound<'_, PyAny>) -> PyResult<Self> {
        let s = state_from_py(state)?;
        let e = Engine::from_state(&s).map_err(map_err)?;
        Ok(Self::with_engine(e))
    }
}

/// Names of the engine's metrics, by index.
#[pyfunction]
fn drift_metric_names() -> Vec<&'static str> {
    METRIC_NAMES.to_vec()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWelford>()?;
    m.add_class::<PyEwma>()?;
    m.add_class::<PyDriftEngine>()?;
    m.add_function(wrap_pyfunction!(drift_metric_names, m)?)?;
    register_fork_hooks(m.py())
}

/// `os.register_at_fork` hooks closing the fold worker's fork gate around `os.fork()` (see
/// [`fork_gate`]); a platform without `fork` has no `register_at_fork` and needs none.
fn register_fork_hooks(py: Python<'_>) -> PyResult<()> {
    let os = py.import("os")?;
    let Ok(register) = os.getattr("register_at_fork") else {
        return Ok(());
    };
    let before = PyCFunction::new_closure(py, None, None, |_args, _kwargs| -> PyResult<()> {
        fork_gate::close();
        Ok(())
    })?;
    let after = PyCFunction::new_closure(py, None, None, |_args, _kwargs| -> PyResult<()> {
        fork_gate::open();
        Ok(())
    })?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("before", before)?;
    kwargs.set_item("after_in_parent", &after)?;
    kwargs.set_item("after_in_child", &after)?;
    register.call((), Some(&kwargs))?;
    Ok(())
}
