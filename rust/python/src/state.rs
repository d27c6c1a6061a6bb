//! Copy and pickle support shared by the native classes that stand in for dataclasses
//! (memory and agent `SignedMessage`, agent `VerificationResult`).
//!
//! The state is `(fields, dict)`: `fields` maps every set field to its value, `dict` is the
//! instance `__dict__` (extra attributes) or `None` when empty. A plain dict (the `__dict__`
//! of a pickled twin dataclass instance: fields and extra attributes together) is accepted
//! too, so pickles made with the reference backend load natively.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

/// `(copyreg.__newobj__, (type(obj),), state)`: copies and unpickled objects are made by
/// `__new__` plus `__setstate__`, without running `__init__`, as a dataclass's are.
pub fn reduce_newobj<'py>(
    obj: &Bound<'py, PyAny>,
    state: Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyTuple>> {
    let py = obj.py();
    let newobj = py.import("copyreg")?.getattr(intern!(py, "__newobj__"))?;
    let cls = PyTuple::new(py, [obj.get_type()])?;
    PyTuple::new(py, [newobj, cls.into_any(), state.into_any()])
}

/// `(fields, obj.__dict__ or None)`.
pub fn state_pair<'py>(
    obj: &Bound<'py, PyAny>,
    fields: Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyTuple>> {
    let py = obj.py();
    let extra = obj.getattr(intern!(py, "__dict__"))?;
    let extra = if extra.is_truthy()? {
        extra
    } else {
        py.None().into_bound(py)
    };
    PyTuple::new(py, [fields.into_any(), extra])
}

/// A state being restored: its field entries, and the extra attributes to put back with
/// [`Restore::finish`].
pub struct Restore<'py> {
    class: &'static str,
    fields: Bound<'py, PyDict>,
    extra: Option<Bound<'py, PyAny>>,
    /// A plain dict: names that are not fields are extra attributes.
    loose: bool,
    rest: Bound<'py, PyDict>,
}

impl<'py> Restore<'py> {
    /// Read `state` (`(dict, dict | None)` or a plain dict) of an instance of `class`.
    pub fn new(class: &'static str, state: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = state.py();
        let (fields, extra, loose) = if let Ok(d) = state.cast::<PyDict>() {
            (d.clone(), None, true)
        } else {
            let t = state.cast::<PyTuple>().map_err(|_| bad_state(class))?;
            if t.len() != 2 {
                return Err(bad_state(class));
            }
            let fields = t
                .get_item(0)?
                .cast_into::<PyDict>()
                .map_err(|_| bad_state(class))?;
            (fields, Some(t.get_item(1)?), false)
        };
        Ok(Self {
            class,
            fields,
            extra,
            loose,
            rest: PyDict::new(py),
        })
    }

    /// Whether names other than fields are extra attributes (a plain-dict state).
    pub fn loose(&self) -> bool {
        self.loose
    }

    /// Every `(name, value)` entry of the fields part, in order; `f` restores a field and
    /// returns false for a name it does not know, which is then kept as an extra attribute
    /// (plain-dict state) or refused (`ValueError`).
    pub fn each(
        &self,
        mut f: impl FnMut(&str, Bound<'py, PyAny>) -> PyResult<bool>,
    ) -> PyResult<()> {
        for (k, v) in self.fields.iter() {
            let name = k
                .cast::<PyString>()
                .map_err(|_| bad_state(self.class))?
                .to_cow()?;
            if f(&name, v.clone())? {
                continue;
            }
            if !self.loose {
                return Err(PyValueError::new_err(format!(
                    "{} has no field {name:?}",
                    self.class
                )));
            }
            self.rest.set_item(k, v)?;
        }
        Ok(())
    }

    /// Put the extra attributes into `obj.__dict__`.
    pub fn finish(self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        let py = obj.py();
        let dict = obj.getattr(intern!(py, "__dict__"))?;
        if !self.rest.is_empty() {
            dict.call_method1(intern!(py, "update"), (self.rest,))?;
        }
        if let Some(extra) = self.extra.filter(|e| !e.is_none()) {
            dict.call_method1(intern!(py, "update"), (extra,))?;
        }
        Ok(())
    }
}

fn bad_state(class: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "{class} state must be a dict or a (dict, dict | None) pair"
    ))
}
