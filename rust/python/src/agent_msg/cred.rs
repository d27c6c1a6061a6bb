//! `AgentCredential` as a native class (its Python name; `_core.AgentCredential`).
//!
//! The fields live in the object, and two facts the message fast paths need are kept up to
//! date by the field setters: the trust level as an integer (when `trust_level` is an `int`
//! that compares as one) and whether `algorithm` is exactly `"hmac-sha256"`. So reading a
//! sender's state on every `create_signed_message` / `verify_message` costs a few struct
//! reads instead of a `__dict__` and four dictionary lookups, and it can never be stale: every
//! assignment, deletion, `__setstate__` (copy, pickle) and `__init__` goes through the setters.
//! `capabilities` is read live (it is a set the caller may change in place).
//!
//! `proxilion.security.agent_trust` completes the class with the twin dataclass's `__init__`,
//! `__repr__`, `__eq__`, methods and dataclass metadata
//! (`proxilion._reference.agent_msg.AgentCredential`), so it behaves as that dataclass.

use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt, PyString, PyTuple};
use pyo3::{intern, PyTraverseError, PyVisit};

use crate::state;

/// Field names, in dataclass order.
const FIELDS: [&str; 10] = [
    "agent_id",
    "trust_level",
    "capabilities",
    "public_key",
    "parent_agent",
    "created_at",
    "expires_at",
    "metadata",
    "_secret",
    "algorithm",
];

const TRUST_LEVEL: usize = 1;
const ALGORITHM: usize = 9;

/// A registered agent (see the module doc). Every field is an `Option` (`None`: not set,
/// as in an instance made by `__new__` alone).
#[pyclass(
    module = "proxilion.security.agent_trust",
    name = "AgentCredential",
    subclass,
    dict,
    weakref
)]
pub struct PyAgentCredential {
    fields: [Option<Py<PyAny>>; 10],
    /// `int(trust_level)` when `trust_level` is an `int` whose class keeps `int.__eq__`
    /// (`TrustLevel` members, plain ints), else `None`.
    level: Option<i64>,
    /// `algorithm` is exactly the `str` `"hmac-sha256"`.
    hmac: bool,
}

fn unset(name: &str) -> PyErr {
    PyAttributeError::new_err(format!(
        "'AgentCredential' object has no attribute '{name}'"
    ))
}

/// `int(value)` if `value` is an `int` whose class compares as `int` does.
fn int_level(value: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    if !value.is_instance_of::<PyInt>() {
        return Ok(None);
    }
    if !value.is_exact_instance_of::<PyInt>() {
        static INT_EQ: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let py = value.py();
        let int_eq = INT_EQ.get_or_try_init(py, || {
            Ok::<_, PyErr>(py.get_type::<PyInt>().getattr("__eq__")?.unbind())
        })?;
        if !value.get_type().getattr(intern!(py, "__eq__"))?.is(int_eq) {
            return Ok(None);
        }
    }
    Ok(value.extract::<i64>().ok())
}

/// What the message fast paths read of a credential.
pub(crate) struct CredView<'py> {
    pub agent_id: Bound<'py, PyAny>,
    pub capabilities: Bound<'py, PyAny>,
}

impl PyAgentCredential {
    fn field(&self, py: Python<'_>, i: usize) -> PyResult<Py<PyAny>> {
        self.fields[i]
            .as_ref()
            .map(|o| o.clone_ref(py))
            .ok_or_else(|| unset(FIELDS[i]))
    }

    fn set_field(&mut self, i: usize, value: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        match i {
            TRUST_LEVEL => {
                self.level = match &value {
                    Some(v) => int_level(v)?,
                    None => None,
                }
            }
            ALGORITHM => {
                self.hmac = value.as_ref().is_some_and(|v| {
                    v.cast_exact::<PyString>()
                        .is_ok_and(|s| s.to_str().is_ok_and(|s| s == "hmac-sha256"))
                })
            }
            _ => {}
        }
        self.fields[i] = value.map(Bound::unbind);
        Ok(())
    }

    fn delete_field(&mut self, i: usize) -> PyResult<()> {
        if self.fields[i].is_none() {
            return Err(unset(FIELDS[i]));
        }
        self.set_field(i, None)
    }

    /// The sender state of an HMAC agent that may sign and be verified on the fast paths:
    /// `expires_at` is `None`, the trust level is an integer other than 0 (`NONE`) and the
    /// algorithm is `"hmac-sha256"`; else `None` (the general path decides).
    pub(crate) fn hmac_view<'py>(&self, py: Python<'py>) -> Option<CredView<'py>> {
        if !self.hmac || !matches!(self.level, Some(l) if l != 0) {
            return None;
        }
        if !self.fields[6].as_ref()?.is_none(py) {
            return None;
        }
        Some(CredView {
            agent_id: self.fields[0].as_ref()?.bind(py).clone(),
            capabilities: self.fields[2].as_ref()?.bind(py).clone(),
        })
    }
}

#[pymethods]
impl PyAgentCredential {
    /// Allocate an instance with no field set; the dataclass `__init__` (installed by
    /// `proxilion.security.agent_trust`) assigns the fields.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        PyAgentCredential {
            fields: Default::default(),
            level: None,
            hmac: false,
        }
    }

    #[getter(agent_id)]
    fn get_agent_id(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 0)
    }
    #[setter(agent_id)]
    fn set_agent_id(&mut self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.set_field(0, Some(value))
    }
    #[deleter(agent_id)]
    fn delete_agent_id(&mut self) -> PyResult<()> {
        self.delete_field(0)
    }
    #[getter(trust_level)]
    fn get_trust_level(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 1)
    }
    #[setter(trust_level)]
    fn set_trust_level(&mut self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.set_field(1, Some(value))
    }
    #[deleter(trust_level)]
    fn delete_trust_level(&mut self) -> PyResult<()> {
        self.delete_field(1)
    }
    #[getter(capabilities)]
    fn get_capabilities(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 2)
    }
    #[setter(capabilities)]
    fn set_capabilities(&mut self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.set_field(2, Some(value))
    }
    #[deleter(capabilities)]
    fn delete_capabilities(&mut self) -> PyResult<()> {
        self.delete_field(2)
    }
    #[getter(public_key)]
    fn get_public_key(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 3)
    }
    #[setter(public_key)]
    fn set_public_key(&mut self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.set_field(3, Some(value))
    }
    #[deleter(public_key)]
    fn delete_public_key(&mut self) -> PyResult<()> {
        self.delete_field(3)
    }
    #[getter(parent_agent)]
    fn get_parent_agent(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 4)
    }
    #[setter(parent_agent)]
    fn set_parent_agent(&mut self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.set_field(4, Some(value))
    }
    #[deleter(parent_agent)]
    fn delete_parent_agent(&mut self) -> PyResult<()> {
        self.delete_field(4)
    }
    #[getter(created_at)]
    fn get_created_at(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 5)
    }
    #[setter(created_at)]
    fn set_created_at(&mut self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.set_field(5, Some(value))
    }
    #[deleter(created_at)]
    fn delete_created_at(&mut self) -> PyResult<()> {
        self.delete_field(5)
    }
    #[getter(expires_at)]
    fn get_expires_at(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 6)
    }
    #[setter(expires_at)]
    fn set_expires_at(&mut self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.set_field(6, Some(value))
    }
    #[deleter(expires_at)]
    fn delete_expires_at(&mut self) -> PyResult<()> {
        self.delete_field(6)
    }
    #[getter(metadata)]
    fn get_metadata(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 7)
    }
    #[setter(metadata)]
    fn set_metadata(&mut self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.set_field(7, Some(value))
    }
    #[deleter(metadata)]
    fn delete_metadata(&mut self) -> PyResult<()> {
        self.delete_field(7)
    }
    #[getter(_secret)]
    fn get_secret(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 8)
    }
    #[setter(_secret)]
    fn set_secret(&mut self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.set_field(8, Some(value))
    }
    #[deleter(_secret)]
    fn delete_secret(&mut self) -> PyResult<()> {
        self.delete_field(8)
    }
    #[getter(algorithm)]
    fn get_algorithm(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 9)
    }
    #[setter(algorithm)]
    fn set_algorithm(&mut self, value: Bound<'_, PyAny>) -> PyResult<()> {
        self.set_field(9, Some(value))
    }
    #[deleter(algorithm)]
    fn delete_algorithm(&mut self) -> PyResult<()> {
        self.delete_field(9)
    }
    /// `(copyreg.__newobj__, (type(self),), state)` (see [`crate::state`]).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        state::reduce_newobj(slf.as_any(), Self::__getstate__(slf)?)
    }

    /// `(fields, dict)` (see [`crate::state`]).
    fn __getstate__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let fields = PyDict::new(py);
        {
            let me = slf.borrow();
            for (i, f) in me.fields.iter().enumerate() {
                if let Some(v) = f {
                    fields.set_item(FIELDS[i], v.bind(py))?;
                }
            }
        }
        state::state_pair(slf.as_any(), fields)
    }

    /// Restore what `__getstate__` gave, or the `__dict__` of a pickled twin dataclass
    /// instance (see [`crate::state`]); through the setters, so the derived facts follow.
    fn __setstate__(slf: &Bound<'_, Self>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let restore = state::Restore::new("AgentCredential", state)?;
        {
            let mut me = slf.borrow_mut();
            restore.each(|name, v| match FIELDS.iter().position(|f| *f == name) {
                Some(i) => me.set_field(i, Some(v)).map(|()| true),
                None => Ok(false),
            })?;
        }
        restore.finish(slf.as_any())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for f in &self.fields {
            visit.call(f)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.fields = Default::default();
        self.level = None;
        self.hmac = false;
    }
}
