//! `proxilion._core` scanning: `PatternSet` (a compiled multi-pattern set) and `normalize`.
//!
//! One `PatternSet.scan(text)` call does the whole job for one text: normalise, find which
//! patterns match (one pass of the linear-time automata), compute their spans in original
//! `str` offsets, and run the few fallback patterns (look-around, back-references) on Python's
//! `re` over the same normalised view. Large texts are scanned with the GIL released.

use std::borrow::Cow;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::guard::PyGuardResult;
use pyo3::{intern, IntoPyObject};

use proxilion_core::scan::{
    decode_surrogatepass, normalize as core_normalize, Engine, PatternSpec, Scanner, Spans, View,
};

/// Texts at least this long (in UTF-8 bytes) are scanned with the GIL released.
pub const DETACH_THRESHOLD: usize = 16 * 1024;

/// Borrow the text of a `str`; lone surrogates become U+FFFD (one character each, so indices
/// are unchanged). Any other type is a `TypeError`.
fn text_of<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, str>> {
    let s = crate::convert::py_str(obj, "text")?;
    match s.to_str() {
        Ok(t) => Ok(Cow::Borrowed(t)),
        Err(_) => {
            let b = s.call_method1("encode", ("utf-8", "surrogatepass"))?;
            let b = b.cast::<PyBytes>()?;
            Ok(Cow::Owned(decode_surrogatepass(b.as_bytes())))
        }
    }
}

fn run<T: Send>(py: Python<'_>, len: usize, f: impl FnOnce() -> T + Send) -> T {
    if len >= DETACH_THRESHOLD {
        py.detach(f)
    } else {
        f()
    }
}

/// A compiled set of patterns (see the module doc).
///
/// `PatternSet(specs)` takes one `(source, translation, raw)` tuple per pattern: the Python
/// `re` source (always compiled with IGNORECASE | MULTILINE), its translation to Rust regex
/// syntax or `None` if only a backtracking engine can run it, and whether it must see the
/// original text instead of the normalised view.
#[pyclass(frozen, module = "proxilion._core", name = "PatternSet")]
pub struct PyPatternSet {
    scanner: Scanner,
    sources: Vec<String>,
    fallback: Vec<(usize, Py<PyAny>)>,
}

/// A text prepared for external engines: its normalised view, kept for `PatternSet.spans`.
#[pyclass(frozen, module = "proxilion._core", name = "Prepared")]
pub struct PyPrepared {
    text: String,
    view: View,
}

#[pymethods]
impl PyPrepared {
    /// The normalised view as UTF-8 bytes.
    fn view_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.view.text(&self.text).as_bytes())
    }

    /// The original text (surrogates replaced) as UTF-8 bytes.
    fn text_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.text.as_bytes())
    }
}

pub(crate) type Hits = Vec<(usize, Spans)>;

/// What [`PyPatternSet::verdict_of`] found.
pub(crate) enum Verdict<'py> {
    /// Nothing matched: the finished `GuardResult`.
    Clean(Bound<'py, PyAny>),
    /// What matched (never empty).
    Hits(Hits),
}

impl PyPatternSet {
    /// See `verdict`.
    pub(crate) fn verdict_of<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyAny>,
        context: &Bound<'py, PyAny>,
        threshold: f64,
        fail_action: &Bound<'py, PyAny>,
        allow: &Bound<'py, PyAny>,
    ) -> PyResult<Verdict<'py>> {
        let s = crate::convert::py_str(text, "input_text")?;
        let t = text_of(text)?;
        let hits = self.scan_str(py, &t, None)?;
        if !hits.is_empty() {
            return Ok(Verdict::Hits(hits));
        }
        let n = s.len()?;
        let ctx = if !context.is_none() && context.is_truthy()? {
            let ctx = PyDict::new(py);
            ctx.set_item(intern!(py, "original_input_length"), n)?;
            match context.cast::<PyDict>() {
                Ok(d) => ctx.update(d.as_mapping())?,
                Err(_) => {
                    ctx.call_method1(intern!(py, "update"), (context,))?;
                }
            }
            Some(ctx)
        } else {
            None
        };
        let passed = threshold > 0.0;
        let action = if passed { allow } else { fail_action };
        let result = PyGuardResult::clean(py, passed, action, Some(n), ctx)?;
        Ok(Verdict::Clean(Bound::new(py, result)?.into_any()))
    }

    fn fallback_hits(
        &self,
        py: Python<'_>,
        text: &str,
        view: &View,
        only: Option<&[usize]>,
    ) -> PyResult<Hits> {
        let mut out = Vec::new();
        if self.fallback.is_empty() {
            return Ok(out);
        }
        let orig_len = text.chars().count();
        let mut raw_s: Option<Bound<'_, PyString>> = None;
        let mut view_s: Option<Bound<'_, PyString>> = None;
        for (i, pat) in &self.fallback {
            if only.is_some_and(|o| o.binary_search(i).is_err()) {
                continue;
            }
            let raw = self.scanner.raw()[*i];
            let hay = if raw {
                raw_s.get_or_insert_with(|| PyString::new(py, text)).clone()
            } else {
                view_s
                    .get_or_insert_with(|| PyString::new(py, view.text(text)))
                    .clone()
            };
            let mut spans = Vec::new();
            for m in pat.bind(py).call_method1("finditer", (hay,))?.try_iter()? {
                let (s, e): (usize, usize) = m?.call_method0("span")?.extract()?;
                spans.push(if raw {
                    (s, e)
                } else {
                    view.map_span(s, e, orig_len)
                });
            }
            if !spans.is_empty() {
                out.push((*i, spans));
            }
        }
        Ok(out)
    }

    fn scan_str(&self, py: Python<'_>, text: &str, only: Option<&[usize]>) -> PyResult<Hits> {
        let scanner = &self.scanner;
        let (view, mut hits) = run(py, text.len(), || {
            let view = if scanner.needs_view() {
                View::new(text)
            } else {
                View::default()
            };
            let hits = match only {
                None => scanner.scan(text, &view),
                Some(o) => scanner.spans(text, &view, o),
            };
            (view, hits)
        });
        let fb = self.fallback_hits(py, text, &view, only)?;
        if !fb.is_empty() {
            hits.extend(fb);
            hits.sort_unstable_by_key(|h| h.0);
        }
        Ok(hits)
    }
}

fn char_to_byte(s: &str, offsets: &mut [usize]) {
    if s.is_ascii() {
        return;
    }
    let mut order: Vec<usize> = (0..offsets.len()).collect();
    order.sort_unstable_by_key(|&k| offsets[k]);
    let mut it = s
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(s.len()));
    let mut ci = 0usize;
    let mut cur = it.next().unwrap_or(s.len());
    for k in order {
        while ci < offsets[k] {
            cur = it.next().unwrap_or(s.len());
            ci += 1;
        }
        offsets[k] = cur;
    }
}

#[pymethods]
impl PyPatternSet {
    #[new]
    fn new(py: Python<'_>, specs: Vec<(String, Option<String>, bool)>) -> PyResult<Self> {
        let core_specs: Vec<PatternSpec> = specs
            .iter()
            .map(|(_, t, raw)| PatternSpec {
                regex: t.clone(),
                raw: *raw,
            })
            .collect();
        let scanner =
            Scanner::new(&core_specs).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let re = py.import("re")?;
        let flags = re
            .getattr("IGNORECASE")?
            .call_method1("__or__", (re.getattr("MULTILINE")?,))?;
        let mut fallback = Vec::new();
        for (i, engine) in scanner.engines().iter().enumerate() {
            if *engine == Engine::Fallback {
                let compiled = re
                    .call_method1("compile", (specs[i].0.as_str(), &flags))
                    .map_err(|e| {
                        PyValueError::new_err(format!("invalid regex pattern {i}: {}", e.value(py)))
                    })?;
                fallback.push((i, compiled.unbind()));
            }
        }
        Ok(PyPatternSet {
            scanner,
            sources: specs.into_iter().map(|s| s.0).collect(),
            fallback,
        })
    }

    fn __len__(&self) -> usize {
        self.scanner.len()
    }

    /// The Python `re` source of each pattern.
    #[getter]
    fn sources(&self) -> Vec<String> {
        self.sources.clone()
    }

    /// `"linear"` or `"fallback"` for each pattern.
    #[getter]
    fn engines(&self) -> Vec<&'static str> {
        self.scanner
            .engines()
            .iter()
            .map(|e| match e {
                Engine::Linear => "linear",
                Engine::Fallback => "fallback",
            })
            .collect()
    }

    /// Whether each pattern matches the original text (`True`) or the normalised view.
    #[getter]
    fn raw(&self) -> Vec<bool> {
        self.scanner.raw().to_vec()
    }

    /// `[(pattern_index, [(start, end), ...]), ...]` for every pattern that matches `text`,
    /// in pattern order; spans are `str` offsets in `text`, in `finditer` order.
    fn scan(&self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<Hits> {
        let t = text_of(text)?;
        self.scan_str(py, &t, None)
    }

    /// The clean-text fast path of a guard check, in one call.
    ///
    /// Scans `text` like `scan`. If some pattern matches, returns the (non-empty) hits list
    /// and the caller builds its result. If nothing matches, returns a new `GuardResult`:
    /// `passed = threshold > 0`, `action` = `allow` if passed else `fail_action`, no
    /// matches, `risk_score = 0.0`, `sanitized_input = None`, and `context =
    /// {"original_input_length": len(text), **context}` (merged only when `context` is
    /// truthy, as `dict.update` would).
    #[pyo3(signature = (text, context, threshold, fail_action, allow))]
    fn verdict<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyAny>,
        context: &Bound<'py, PyAny>,
        threshold: f64,
        fail_action: &Bound<'py, PyAny>,
        allow: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.verdict_of(py, text, context, threshold, fail_action, allow)? {
            Verdict::Clean(r) => Ok(r),
            Verdict::Hits(h) => h.into_pyobject(py).map(Bound::into_any),
        }
    }

    /// Indices of the patterns that match `text` anywhere, ascending.
    fn which(&self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
        let t = text_of(text)?;
        let scanner = &self.scanner;
        let (view, mut hit) = run(py, t.len(), || {
            let view = View::new(&t);
            let hit = scanner.which(&t, &view);
            (view, hit)
        });
        if !self.fallback.is_empty() {
            hit.extend(
                self.fallback_hits(py, &t, &view, None)?
                    .into_iter()
                    .map(|h| h.0),
            );
            hit.sort_unstable();
        }
        Ok(hit)
    }

    /// Normalise `text` once, for an external engine (see `spans`).
    fn prepare(&self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<PyPrepared> {
        let t = text_of(text)?.into_owned();
        let view = run(py, t.len(), || View::new(&t));
        Ok(PyPrepared { text: t, view })
    }

    /// Like `scan`, restricted to the patterns `indices`, on a prepared text.
    fn spans(
        &self,
        py: Python<'_>,
        prepared: &Bound<'_, PyPrepared>,
        indices: Vec<usize>,
    ) -> PyResult<Hits> {
        let p = prepared.get();
        let mut idx = indices;
        idx.sort_unstable();
        idx.dedup();
        if let Some(&bad) = idx.iter().find(|&&i| i >= self.scanner.len()) {
            return Err(PyValueError::new_err(format!(
                "pattern index {bad} out of range for a set of {}",
                self.scanner.len()
            )));
        }
        let scanner = &self.scanner;
        let mut hits = run(py, p.text.len(), || scanner.spans(&p.text, &p.view, &idx));
        let fb = self.fallback_hits(py, &p.text, &p.view, Some(&idx))?;
        if !fb.is_empty() {
            hits.extend(fb);
            hits.sort_unstable_by_key(|h| h.0);
        }
        Ok(hits)
    }

    /// Replace, pattern by pattern in list order, every match of pattern `i` with
    /// `replacements[i]` (literal text; `None` skips the pattern), each pattern seeing the
    /// text as left by the previous ones (like chaining `re.sub` calls).
    fn redact(
        &self,
        py: Python<'_>,
        text: &Bound<'_, PyAny>,
        replacements: Vec<Option<String>>,
    ) -> PyResult<String> {
        let n = self.scanner.len();
        if replacements.len() != n {
            return Err(PyValueError::new_err(format!(
                "replacements has {} items for a set of {n} patterns",
                replacements.len()
            )));
        }
        let mut cur = text_of(text)?.into_owned();
        let mut next = 0usize;
        let mut hits = self.scan_str(py, &cur, None)?;
        while let Some((i, spans)) = hits
            .into_iter()
            .find(|(i, _)| *i >= next && replacements[*i].is_some())
        {
            let rep = replacements[i].as_deref().unwrap_or_default();
            let mut offs: Vec<usize> = spans.iter().flat_map(|&(s, e)| [s, e]).collect();
            char_to_byte(&cur, &mut offs);
            let mut out = String::with_capacity(cur.len());
            let mut last = 0;
            for pair in offs.chunks(2) {
                out.push_str(&cur[last..pair[0]]);
                out.push_str(rep);
                last = pair[1];
            }
            out.push_str(&cur[last..]);
            cur = out;
            next = i + 1;
            if next >= n {
                break;
            }
            hits = self.scan_str(py, &cur, None)?;
        }
        Ok(cur)
    }

    fn __repr__(&self) -> String {
        let fb = self.fallback.len();
        format!(
            "PatternSet({} patterns, {} linear, {fb} fallback)",
            self.scanner.len(),
            self.scanner.len() - fb
        )
    }
}

/// The normalised view of `text` that guard patterns are matched against.
#[pyfunction]
fn normalize(py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<String> {
    let t = text_of(text)?;
    Ok(run(py, t.len(), || core_normalize(&t)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPatternSet>()?;
    m.add_class::<PyPrepared>()?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add("SCAN_DETACH_THRESHOLD", DETACH_THRESHOLD)?;
    Ok(())
}
