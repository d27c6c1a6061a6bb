//! `GuardResult`: the result of a guard check, as a native class.
//!
//! The public API (API.md 6.1) describes `GuardResult` as a mutable dataclass with seven
//! fields. Building a Python dataclass instance costs more than scanning a short text, so the
//! native backend defines the class here and `proxilion.guards.input_guard` gives it the
//! dataclass metadata of its pure-Python twin (`proxilion._reference.guard.GuardResult`):
//! `dataclasses.fields`, `asdict`, `astuple`, `replace` and `is_dataclass` work on it, and
//! construction, attribute access, `==`, `repr`, pickling and copying behave as the
//! dataclass's do (same argument rules and error messages, any value accepted in any field,
//! extra attributes allowed, unhashable).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyList, PyString, PyTuple, PyType};
use pyo3::{intern, PyTraverseError, PyVisit};
use std::sync::Mutex;

use crate::scan::{PyPatternSet, Verdict};

/// Field names, in dataclass order.
const FIELDS: [&str; 7] = [
    "passed",
    "action",
    "matched_patterns",
    "risk_score",
    "sanitized_input",
    "matches",
    "context",
];
/// Fields without a default (`passed`, `action`).
const REQUIRED: usize = 2;

/// Outcome of a guard check (see the module doc).
///
/// `matched_patterns`, `matches` and `context` of a clean result are created on first
/// access (`None` here means "not yet created"): most callers read only `passed`.
///
/// Every field is an `Option` so that an instance whose fields are not yet written (all
/// `None`) is safe to traverse: with `dict`, CPython's `object.__new__` allocates the
/// instance dict after the object is already tracked, so a garbage collection can run
/// `__traverse__` before the fields are filled in.
#[pyclass(
    module = "proxilion.guards.input_guard",
    name = "GuardResult",
    subclass,
    dict,
    weakref
)]
pub struct PyGuardResult {
    #[pyo3(get, set)]
    passed: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    action: Option<Py<PyAny>>,
    matched_patterns: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    risk_score: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    sanitized_input: Option<Py<PyAny>>,
    matches: Option<Py<PyAny>>,
    context: Option<Py<PyAny>>,
    /// For a lazily created `context`: `{"original_input_length": n}`, else `{}`.
    input_len: Option<usize>,
}

/// `float` 0.0, shared (floats are immutable).
fn zero(py: Python<'_>) -> PyResult<Py<PyAny>> {
    static ZERO: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    Ok(ZERO
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(0.0f64.into_pyobject(py)?.into_any().unbind())
        })?
        .clone_ref(py))
}

fn empty_list(slot: &mut Option<Py<PyAny>>, py: Python<'_>) -> Py<PyAny> {
    slot.get_or_insert_with(|| PyList::empty(py).into_any().unbind())
        .clone_ref(py)
}

impl PyGuardResult {
    /// The result of a check where nothing matched: no patterns, risk 0.0, and `context`
    /// either the given dict or (created on first access) `{"original_input_length": n}`
    /// (`{}` without `input_len`).
    pub fn clean(
        py: Python<'_>,
        passed: bool,
        action: &Bound<'_, PyAny>,
        input_len: Option<usize>,
        context: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        Ok(PyGuardResult {
            passed: Some(PyBool::new(py, passed).to_owned().into_any().unbind()),
            action: Some(action.clone().unbind()),
            matched_patterns: None,
            risk_score: Some(zero(py)?),
            sanitized_input: Some(py.None()),
            matches: None,
            context: context.map(|c| c.into_any().unbind()),
            input_len,
        })
    }

    fn context_obj(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(c) = &self.context {
            return Ok(c.clone_ref(py));
        }
        let d = PyDict::new(py);
        if let Some(n) = self.input_len {
            d.set_item(intern!(py, "original_input_length"), n)?;
        }
        let d = d.into_any().unbind();
        self.context = Some(d.clone_ref(py));
        Ok(d)
    }

    fn values<'py>(&mut self, py: Python<'py>) -> PyResult<[Bound<'py, PyAny>; 7]> {
        let v = |f: &Option<Py<PyAny>>| match f {
            Some(o) => o.bind(py).clone(),
            None => py.None().into_bound(py),
        };
        Ok([
            v(&self.passed),
            v(&self.action),
            empty_list(&mut self.matched_patterns, py).into_bound(py),
            v(&self.risk_score),
            v(&self.sanitized_input),
            empty_list(&mut self.matches, py).into_bound(py),
            self.context_obj(py)?.into_bound(py),
        ])
    }
}

/// `GuardAction.<name>` from `proxilion.guards.input_guard` (imported on first use).
fn guard_action<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    static ENUM: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let e = ENUM.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("proxilion.guards.input_guard")?
                .getattr("GuardAction")?
                .unbind(),
        )
    })?;
    e.bind(py).getattr(name)
}

#[pymethods]
impl PyGuardResult {
    /// `GuardResult(passed, action, matched_patterns=[], risk_score=0.0,
    /// sanitized_input=None, matches=[], context={})`, with the dataclass's argument rules.
    #[new]
    #[pyo3(signature = (*args, **kwargs))]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let n = args.len();
        if n > FIELDS.len() {
            return Err(PyTypeError::new_err(format!(
                "GuardResult.__init__() takes from {} to {} positional arguments but {} were given",
                REQUIRED + 1,
                FIELDS.len() + 1,
                n + 1
            )));
        }
        let mut vals: [Option<Py<PyAny>>; 7] = Default::default();
        for (i, a) in args.iter().enumerate() {
            vals[i] = Some(a.unbind());
        }
        if let Some(kw) = kwargs {
            for (k, v) in kw.iter() {
                let key = k.cast::<PyString>()?.to_str()?.to_owned();
                let Some(i) = FIELDS.iter().position(|f| *f == key) else {
                    return Err(PyTypeError::new_err(format!(
                        "GuardResult.__init__() got an unexpected keyword argument '{key}'"
                    )));
                };
                if vals[i].is_some() {
                    return Err(PyTypeError::new_err(format!(
                        "GuardResult.__init__() got multiple values for argument '{key}'"
                    )));
                }
                vals[i] = Some(v.unbind());
            }
        }
        let [passed, action, mp, risk, san, matches, ctx] = vals;
        let missing =
            |what: &str| PyTypeError::new_err(format!("GuardResult.__init__() missing {what}"));
        let (passed, action) = match (passed, action) {
            (Some(p), Some(a)) => (p, a),
            (None, Some(_)) => {
                return Err(missing("1 required positional argument: 'passed'"));
            }
            (Some(_), None) => {
                return Err(missing("1 required positional argument: 'action'"));
            }
            (None, None) => {
                return Err(missing(
                    "2 required positional arguments: 'passed' and 'action'",
                ));
            }
        };
        Ok(PyGuardResult {
            passed: Some(passed),
            action: Some(action),
            matched_patterns: mp,
            risk_score: Some(match risk {
                Some(r) => r,
                None => zero(py)?,
            }),
            sanitized_input: Some(san.unwrap_or_else(|| py.None())),
            matches,
            context: ctx,
            input_len: None,
        })
    }

    #[getter]
    fn get_matched_patterns(&mut self, py: Python<'_>) -> Py<PyAny> {
        empty_list(&mut self.matched_patterns, py)
    }

    #[setter]
    fn set_matched_patterns(&mut self, value: Py<PyAny>) {
        self.matched_patterns = Some(value);
    }

    #[getter]
    fn get_matches(&mut self, py: Python<'_>) -> Py<PyAny> {
        empty_list(&mut self.matches, py)
    }

    #[setter]
    fn set_matches(&mut self, value: Py<PyAny>) {
        self.matches = Some(value);
    }

    #[getter]
    fn get_context(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.context_obj(py)
    }

    #[setter]
    fn set_context(&mut self, value: Py<PyAny>) {
        self.context = Some(value);
    }

    /// A passing result with action ALLOW.
    #[classmethod]
    fn allow<'py>(cls: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        cls.call1((true, guard_action(py, "ALLOW")?))
    }

    /// A failing result with action BLOCK.
    #[classmethod]
    #[pyo3(signature = (matched_patterns, risk_score, matches=None))]
    fn block<'py>(
        cls: &Bound<'py, PyType>,
        matched_patterns: &Bound<'py, PyAny>,
        risk_score: &Bound<'py, PyAny>,
        matches: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let matches = match matches {
            Some(m) if m.is_truthy()? => m.clone(),
            _ => PyList::empty(py).into_any(),
        };
        let kw = PyDict::new(py);
        kw.set_item(intern!(py, "passed"), false)?;
        kw.set_item(intern!(py, "action"), guard_action(py, "BLOCK")?)?;
        kw.set_item(intern!(py, "matched_patterns"), matched_patterns)?;
        kw.set_item(intern!(py, "risk_score"), risk_score)?;
        kw.set_item(intern!(py, "matches"), matches)?;
        cls.call((), Some(&kw))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let name = slf.get_type().qualname()?;
        let vals = slf.borrow_mut().values(py)?;
        let mut out = format!("{name}(");
        for (i, (f, v)) in FIELDS.iter().zip(vals.iter()).enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(f);
            out.push('=');
            out.push_str(v.repr()?.to_str()?);
        }
        out.push(')');
        Ok(out)
    }

    fn __richcmp__(
        slf: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if !matches!(op, CompareOp::Eq | CompareOp::Ne) || !slf.get_type().is(other.get_type()) {
            return Ok(py.NotImplemented());
        }
        let Ok(other) = other.cast::<Self>() else {
            return Ok(py.NotImplemented());
        };
        let a = PyTuple::new(py, slf.borrow_mut().values(py)?)?;
        if slf.is(other) {
            return Ok(PyBool::new(py, matches!(op, CompareOp::Eq))
                .to_owned()
                .into_any()
                .unbind());
        }
        let b = PyTuple::new(py, other.borrow_mut().values(py)?)?;
        let eq = a.eq(b)?;
        Ok(
            pyo3::types::PyBool::new(py, eq == matches!(op, CompareOp::Eq))
                .to_owned()
                .into_any()
                .unbind(),
        )
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let args = PyTuple::new(py, slf.borrow_mut().values(py)?)?;
        let state = slf.getattr(intern!(py, "__dict__"))?;
        let state = if state.is_truthy()? {
            state
        } else {
            py.None().into_bound(py)
        };
        PyTuple::new(py, [slf.get_type().into_any(), args.into_any(), state])
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.passed)?;
        visit.call(&self.action)?;
        visit.call(&self.risk_score)?;
        visit.call(&self.sanitized_input)?;
        visit.call(&self.matched_patterns)?;
        visit.call(&self.matches)?;
        visit.call(&self.context)?;
        Ok(())
    }

    fn __clear__(&mut self, py: Python<'_>) {
        self.passed = None;
        self.action = None;
        self.risk_score = None;
        self.sanitized_input = None;
        self.matched_patterns = Some(py.None());
        self.matches = Some(py.None());
        self.context = Some(py.None());
    }
}

/// The threshold and fail action of an [`PyInputChecker`], changed together.
struct CheckerConfig {
    threshold: f64,
    fail_action: Py<PyAny>,
}

/// `InputGuard.check` for one compiled pattern set, as one native call.
///
/// `InputChecker(pattern_set, threshold, fail_action, allow, finish)`; its bound method
/// `check(input_text, context=None)` (a fast-call builtin, installed as the guard's `check`)
/// does what `InputGuard.check` does: a falsy text gives
/// `GuardResult.allow()`, a non-`str` a `TypeError`, a clean text the finished result, and a
/// text where something matched `finish(input_text, context, hits)` (the guard's Python
/// code, which builds matches, sanitises and logs). `configure` changes the threshold and
/// action (the guard's setters call it); it is safe while other threads check.
#[pyclass(frozen, module = "proxilion._core", name = "InputChecker")]
pub struct PyInputChecker {
    pset: Py<PyPatternSet>,
    allow: Py<PyAny>,
    finish: Py<PyAny>,
    config: Mutex<CheckerConfig>,
}

#[pymethods]
impl PyInputChecker {
    #[new]
    fn new(
        pattern_set: Py<PyPatternSet>,
        threshold: f64,
        fail_action: Py<PyAny>,
        allow: Py<PyAny>,
        finish: Py<PyAny>,
    ) -> Self {
        PyInputChecker {
            pset: pattern_set,
            allow,
            finish,
            config: Mutex::new(CheckerConfig {
                threshold,
                fail_action,
            }),
        }
    }

    /// Set the threshold and the action for failing texts.
    fn configure(&self, threshold: f64, fail_action: Py<PyAny>) -> PyResult<()> {
        let mut c = self.config.lock().map_err(|_| poisoned())?;
        c.threshold = threshold;
        c.fail_action = fail_action;
        Ok(())
    }

    /// The pattern set this checker scans with.
    #[getter]
    fn pattern_set(&self, py: Python<'_>) -> Py<PyPatternSet> {
        self.pset.clone_ref(py)
    }

    /// `InputGuard.check(input_text, context=None)` (see the class doc).
    #[pyo3(signature = (input_text, context=None))]
    fn check<'py>(
        &self,
        py: Python<'py>,
        input_text: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let none = py.None().into_bound(py);
        let context = context.unwrap_or(&none);
        if !input_text.is_truthy()? {
            let allow = self.allow.bind(py);
            let r = PyGuardResult::clean(py, true, allow, None, None)?;
            return Ok(Bound::new(py, r)?.into_any());
        }
        let (threshold, fail_action) = {
            let c = self.config.lock().map_err(|_| poisoned())?;
            (c.threshold, c.fail_action.clone_ref(py))
        };
        let pset = self.pset.get();
        match pset.verdict_of(
            py,
            input_text,
            context,
            threshold,
            fail_action.bind(py),
            self.allow.bind(py),
        )? {
            Verdict::Clean(r) => Ok(r),
            Verdict::Hits(h) => self.finish.bind(py).call1((input_text, context, h)),
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.finish)?;
        visit.call(&self.allow)?;
        Ok(())
    }
}

fn poisoned() -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err("InputChecker state lock poisoned")
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGuardResult>()?;
    m.add_class::<PyInputChecker>()?;
    Ok(())
}
