//! Signed agent messages as native objects, signed and verified in one call each (API.md 8.4).
//!
//! * `AgentSignedMessage`: the message class of `proxilion.security.agent_trust` on the native
//!   backend (its Python name is `SignedMessage`). Its fields live in the object itself, so
//!   building one (every `create_signed_message`) and reading one (every `verify_message`)
//!   costs no dictionary work. `proxilion.security.agent_trust` completes the class with the
//!   twin dataclass's `__init__`, `__repr__`, `__eq__`, methods and dataclass metadata
//!   (`proxilion._reference.agent_msg.SignedMessage`), so it behaves as that dataclass.
//! * `AgentVerificationResult`: `agent_trust.VerificationResult` on the native backend, made
//!   the same way (twin dataclass in `proxilion._reference.agent_msg`); results of a
//!   verification make their `warnings` list and `verified_at` datetime only when read.
//!   `agent_result(valid, error, warnings)` makes one stamped with the current time.
//! * `AgentMessages`: the message fast paths of one `AgentTrustManager`. `sign` does the whole
//!   `create_signed_message` of a plain HMAC sender (registry checks, message id, clock,
//!   canonical text, MAC, message object); `verify` does the whole `verify_message` of an
//!   intact message under the manager's lock (replay, age, sender, signature, receiver, trust,
//!   own capability, replay record). Anything else (an unknown, expired, `NONE`-trust or
//!   Ed25519 sender, stale keys, any failed check, delegated capabilities, other message
//!   types) goes to the manager's general Python path, which gives every error and result.
//! * `AgentCredential` (`cred.rs`): the registered-agent class on the native backend; its
//!   setters keep current what the fast paths read of a sender, so reading it is a few struct
//!   reads and never stale.
//! * `AgentLock` (`lock.rs`): the manager's reentrant lock on the native backend, shared by
//!   its Python paths (`with self._lock:`) and taken by `verify` without a Python call.
//! * Message ids: version-4 UUIDs from a pool of `os.urandom` bytes, each handed out once; a
//!   forked child discards the pool it inherited (`os.register_at_fork`), so parent and child
//!   never share an id.

use std::sync::{Mutex, MutexGuard};

use pyo3::exceptions::{PyAttributeError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PySet, PyString, PyTuple, PyType,
};
use pyo3::{intern, PyTraverseError, PyVisit};

use proxilion_core::agent::{uuid4_str, uuid4_text};

use crate::convert::{hex_str, time_time};
use crate::sign::{agent_text, SigningKeys};
use crate::state;

mod cred;
mod lock;
pub(crate) use cred::PyAgentCredential;
pub(crate) use lock::AgentLock;

/// Field names, in dataclass order (`metadata` last).
const FIELDS: [&str; 10] = [
    "message_id",
    "from_agent",
    "to_agent",
    "action",
    "payload",
    "timestamp",
    "signature",
    "delegation_token",
    "reply_to",
    "metadata",
];

/// A signed message between agents (see the module doc).
///
/// Every field is an `Option` (`None`: not set yet, as in an instance made by `__new__`
/// alone), so a garbage collection that traverses the object before its fields are written
/// sees nothing.
#[pyclass(
    module = "proxilion.security.agent_trust",
    name = "SignedMessage",
    subclass,
    dict,
    weakref
)]
pub struct PyAgentMessage {
    fields: [Option<Py<PyAny>>; 9],
    metadata: Option<Py<PyAny>>,
    /// `metadata` is an empty dict that is created on first access.
    lazy_metadata: bool,
}

fn unset(name: &str) -> PyErr {
    PyAttributeError::new_err(format!("'SignedMessage' object has no attribute '{name}'"))
}

impl PyAgentMessage {
    fn field(&self, py: Python<'_>, i: usize) -> PyResult<Py<PyAny>> {
        self.fields[i]
            .as_ref()
            .map(|o| o.clone_ref(py))
            .ok_or_else(|| unset(FIELDS[i]))
    }

    fn delete_field(&mut self, i: usize) -> PyResult<()> {
        if self.fields[i].take().is_none() {
            return Err(unset(FIELDS[i]));
        }
        Ok(())
    }

    fn metadata_obj(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if self.lazy_metadata {
            self.lazy_metadata = false;
            self.metadata = Some(PyDict::new(py).into_any().unbind());
        }
        self.metadata
            .as_ref()
            .map(|o| o.clone_ref(py))
            .ok_or_else(|| unset("metadata"))
    }
}

#[pymethods]
impl PyAgentMessage {
    /// Allocate an instance with no field set; the dataclass `__init__` (installed by
    /// `proxilion.security.agent_trust`) assigns the fields, so subclasses may take other
    /// constructor arguments, exactly as with the dataclass.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        PyAgentMessage {
            fields: Default::default(),
            metadata: None,
            lazy_metadata: false,
        }
    }

    #[getter]
    fn get_message_id(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 0)
    }
    #[setter]
    fn set_message_id(&mut self, value: Py<PyAny>) {
        self.fields[0] = Some(value);
    }
    #[deleter]
    fn delete_message_id(&mut self) -> PyResult<()> {
        self.delete_field(0)
    }
    #[getter]
    fn get_from_agent(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 1)
    }
    #[setter]
    fn set_from_agent(&mut self, value: Py<PyAny>) {
        self.fields[1] = Some(value);
    }
    #[deleter]
    fn delete_from_agent(&mut self) -> PyResult<()> {
        self.delete_field(1)
    }
    #[getter]
    fn get_to_agent(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 2)
    }
    #[setter]
    fn set_to_agent(&mut self, value: Py<PyAny>) {
        self.fields[2] = Some(value);
    }
    #[deleter]
    fn delete_to_agent(&mut self) -> PyResult<()> {
        self.delete_field(2)
    }
    #[getter]
    fn get_action(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 3)
    }
    #[setter]
    fn set_action(&mut self, value: Py<PyAny>) {
        self.fields[3] = Some(value);
    }
    #[deleter]
    fn delete_action(&mut self) -> PyResult<()> {
        self.delete_field(3)
    }
    #[getter]
    fn get_payload(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 4)
    }
    #[setter]
    fn set_payload(&mut self, value: Py<PyAny>) {
        self.fields[4] = Some(value);
    }
    #[deleter]
    fn delete_payload(&mut self) -> PyResult<()> {
        self.delete_field(4)
    }
    #[getter]
    fn get_timestamp(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 5)
    }
    #[setter]
    fn set_timestamp(&mut self, value: Py<PyAny>) {
        self.fields[5] = Some(value);
    }
    #[deleter]
    fn delete_timestamp(&mut self) -> PyResult<()> {
        self.delete_field(5)
    }
    #[getter]
    fn get_signature(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 6)
    }
    #[setter]
    fn set_signature(&mut self, value: Py<PyAny>) {
        self.fields[6] = Some(value);
    }
    #[deleter]
    fn delete_signature(&mut self) -> PyResult<()> {
        self.delete_field(6)
    }
    #[getter]
    fn get_delegation_token(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 7)
    }
    #[setter]
    fn set_delegation_token(&mut self, value: Py<PyAny>) {
        self.fields[7] = Some(value);
    }
    #[deleter]
    fn delete_delegation_token(&mut self) -> PyResult<()> {
        self.delete_field(7)
    }
    #[getter]
    fn get_reply_to(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 8)
    }
    #[setter]
    fn set_reply_to(&mut self, value: Py<PyAny>) {
        self.fields[8] = Some(value);
    }
    #[deleter]
    fn delete_reply_to(&mut self) -> PyResult<()> {
        self.delete_field(8)
    }

    #[getter]
    fn get_metadata(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.metadata_obj(py)
    }
    #[setter]
    fn set_metadata(&mut self, value: Py<PyAny>) {
        self.lazy_metadata = false;
        self.metadata = Some(value);
    }
    #[deleter]
    fn delete_metadata(&mut self) -> PyResult<()> {
        if self.metadata.is_none() && !self.lazy_metadata {
            return Err(unset("metadata"));
        }
        self.lazy_metadata = false;
        self.metadata = None;
        Ok(())
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
        let has_metadata = {
            let me = slf.borrow();
            me.metadata.is_some() || me.lazy_metadata
        };
        if has_metadata {
            let meta = slf.borrow_mut().metadata_obj(py)?;
            fields.set_item(FIELDS[9], meta)?;
        }
        state::state_pair(slf.as_any(), fields)
    }

    /// Restore what `__getstate__` gave, or the `__dict__` of a pickled twin dataclass
    /// instance (see [`crate::state`]).
    fn __setstate__(slf: &Bound<'_, Self>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let restore = state::Restore::new("SignedMessage", state)?;
        {
            let mut me = slf.borrow_mut();
            restore.each(|name, v| {
                match FIELDS.iter().position(|f| *f == name) {
                    Some(9) => {
                        me.metadata = Some(v.unbind());
                        me.lazy_metadata = false;
                    }
                    Some(i) => me.fields[i] = Some(v.unbind()),
                    None => return Ok(false),
                }
                Ok(true)
            })?;
        }
        restore.finish(slf.as_any())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for f in &self.fields {
            visit.call(f)?;
        }
        visit.call(&self.metadata)?;
        Ok(())
    }

    fn __clear__(&mut self) {
        self.fields = Default::default();
        self.metadata = None;
        self.lazy_metadata = false;
    }
}

// -- message ids ---------------------------------------------------------------------------

/// Random bytes of the id pool: 256 ids per `os.urandom` read.
const POOL_BYTES: usize = 4096;

struct IdPool {
    buf: Vec<u8>,
    pos: usize,
}

static IDS: Mutex<IdPool> = Mutex::new(IdPool {
    buf: Vec::new(),
    pos: 0,
});

fn pool() -> MutexGuard<'static, IdPool> {
    // The pool holds no invariant a panic could break (ids are taken by advancing `pos`).
    IDS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The next unused id of the pool, refilled from `os.urandom` when empty. Each id is handed
/// out once (taken under the pool's mutex, which is never held while Python runs).
pub(crate) fn next_id(py: Python<'_>) -> PyResult<Bound<'_, PyString>> {
    loop {
        {
            let mut p = pool();
            let start = p.pos;
            if start + 16 <= p.buf.len() {
                let mut raw = [0u8; 16];
                raw.copy_from_slice(&p.buf[start..start + 16]);
                p.buf[start..start + 16].fill(0);
                p.pos = start + 16;
                drop(p);
                return Ok(PyString::new(py, uuid4_str(&uuid4_text(&raw))));
            }
        }
        static URANDOM: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let urandom = URANDOM.get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("os")?.getattr("urandom")?.unbind())
        })?;
        let fresh = urandom
            .bind(py)
            .call1((POOL_BYTES,))?
            .cast_into::<PyBytes>()?;
        let bytes = fresh.as_bytes();
        if bytes.len() != POOL_BYTES {
            return Err(PyRuntimeError::new_err("os.urandom returned a short read"));
        }
        let mut p = pool();
        p.buf = bytes.to_vec();
        p.pos = 0;
    }
}

/// Forget the inherited pool in a forked child (registered with `os.register_at_fork`).
#[pyfunction]
fn forget_agent_ids() {
    let mut p = pool();
    p.buf.fill(0);
    p.buf.clear();
    p.pos = 0;
}

// -- clock ---------------------------------------------------------------------------------

/// `float(value)`, without a call for an exact float.
fn as_float<'py>(value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyFloat>> {
    match value.cast_into_exact::<PyFloat>() {
        Ok(f) => Ok(f),
        Err(e) => {
            let v = e.into_inner();
            let py = v.py();
            Ok(py
                .get_type::<PyFloat>()
                .call1((v,))?
                .cast_into::<PyFloat>()?)
        }
    }
}

// -- verification results ------------------------------------------------------------------

/// Field names of `VerificationResult`, in dataclass order.
const RESULT_FIELDS: [&str; 4] = ["valid", "error", "warnings", "verified_at"];

/// The outcome of a message or chain verification: the `VerificationResult` class of
/// `proxilion.security.agent_trust` on the native backend, completed there with the twin
/// dataclass's `__init__`, `__repr__`, `__eq__`, `to_dict` and metadata.
///
/// A result made by a verification keeps `warnings` (an empty list) and `verified_at` (a
/// `datetime` of the verification time, kept as epoch seconds) unmade until they are read.
#[pyclass(
    module = "proxilion.security.agent_trust",
    name = "VerificationResult",
    subclass,
    dict,
    weakref
)]
pub struct PyAgentResult {
    fields: [Option<Py<PyAny>>; 4],
    /// `warnings` is an empty list made on first access.
    lazy_warnings: bool,
    /// `verified_at` is `datetime.fromtimestamp(ts, timezone.utc)`, made on first access.
    lazy_ts: Option<f64>,
}

fn result_unset(name: &str) -> PyErr {
    PyAttributeError::new_err(format!(
        "'VerificationResult' object has no attribute '{name}'"
    ))
}

/// `datetime.fromtimestamp(ts, timezone.utc)`.
fn utc_datetime(py: Python<'_>, ts: f64) -> PyResult<Bound<'_, PyAny>> {
    static PARTS: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();
    let (fromtimestamp, utc) = PARTS.get_or_try_init(py, || {
        let dt = py.import("datetime")?;
        Ok::<_, PyErr>((
            dt.getattr("datetime")?.getattr("fromtimestamp")?.unbind(),
            dt.getattr("timezone")?.getattr("utc")?.unbind(),
        ))
    })?;
    fromtimestamp.bind(py).call1((ts, utc.bind(py)))
}

impl PyAgentResult {
    fn made(
        valid: bool,
        error: Option<Py<PyAny>>,
        warnings: Option<Py<PyAny>>,
        ts: f64,
        py: Python<'_>,
    ) -> Self {
        let lazy_warnings = warnings.is_none();
        PyAgentResult {
            fields: [
                Some(PyBool::new(py, valid).to_owned().into_any().unbind()),
                Some(error.unwrap_or_else(|| py.None())),
                warnings,
                None,
            ],
            lazy_warnings,
            lazy_ts: Some(ts),
        }
    }

    fn field(&mut self, py: Python<'_>, i: usize) -> PyResult<Py<PyAny>> {
        if i == 2 && self.lazy_warnings {
            self.lazy_warnings = false;
            self.fields[2] = Some(pyo3::types::PyList::empty(py).into_any().unbind());
        }
        if i == 3 {
            if let Some(ts) = self.lazy_ts {
                let at = utc_datetime(py, ts)?.unbind();
                self.lazy_ts = None;
                self.fields[3] = Some(at);
            }
        }
        self.fields[i]
            .as_ref()
            .map(|o| o.clone_ref(py))
            .ok_or_else(|| result_unset(RESULT_FIELDS[i]))
    }

    fn set_field(&mut self, i: usize, value: Option<Py<PyAny>>) {
        if i == 2 {
            self.lazy_warnings = false;
        }
        if i == 3 {
            self.lazy_ts = None;
        }
        self.fields[i] = value;
    }

    fn delete_field(&mut self, i: usize) -> PyResult<()> {
        let lazy = (i == 2 && self.lazy_warnings) || (i == 3 && self.lazy_ts.is_some());
        let had = self.fields[i].take().is_some();
        self.set_field(i, None);
        if !(had || lazy) {
            return Err(result_unset(RESULT_FIELDS[i]));
        }
        Ok(())
    }
}

#[pymethods]
impl PyAgentResult {
    /// Allocate an instance with no field set; the dataclass `__init__` (installed by
    /// `proxilion.security.agent_trust`) assigns the fields.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        PyAgentResult {
            fields: Default::default(),
            lazy_warnings: false,
            lazy_ts: None,
        }
    }

    #[getter]
    fn get_valid(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 0)
    }
    #[setter]
    fn set_valid(&mut self, value: Py<PyAny>) {
        self.set_field(0, Some(value));
    }
    #[deleter]
    fn delete_valid(&mut self) -> PyResult<()> {
        self.delete_field(0)
    }
    #[getter]
    fn get_error(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 1)
    }
    #[setter]
    fn set_error(&mut self, value: Py<PyAny>) {
        self.set_field(1, Some(value));
    }
    #[deleter]
    fn delete_error(&mut self) -> PyResult<()> {
        self.delete_field(1)
    }
    #[getter]
    fn get_warnings(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 2)
    }
    #[setter]
    fn set_warnings(&mut self, value: Py<PyAny>) {
        self.set_field(2, Some(value));
    }
    #[deleter]
    fn delete_warnings(&mut self) -> PyResult<()> {
        self.delete_field(2)
    }
    #[getter]
    fn get_verified_at(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 3)
    }
    #[setter]
    fn set_verified_at(&mut self, value: Py<PyAny>) {
        self.set_field(3, Some(value));
    }
    #[deleter]
    fn delete_verified_at(&mut self) -> PyResult<()> {
        self.delete_field(3)
    }

    /// `(copyreg.__newobj__, (type(self),), state)` (see [`crate::state`]).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        state::reduce_newobj(slf.as_any(), Self::__getstate__(slf)?)
    }

    /// `(fields, dict)` (see [`crate::state`]): the fields that are set, lazy ones made.
    fn __getstate__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let fields = PyDict::new(py);
        {
            let mut me = slf.borrow_mut();
            for (i, name) in RESULT_FIELDS.iter().enumerate() {
                if let Ok(v) = me.field(py, i) {
                    fields.set_item(*name, v)?;
                }
            }
        }
        state::state_pair(slf.as_any(), fields)
    }

    /// Restore what `__getstate__` gave, or the `__dict__` of a pickled twin dataclass
    /// instance (whose verification time may be kept as `_verified_ts` or `_verified_at`).
    fn __setstate__(slf: &Bound<'_, Self>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let restore = state::Restore::new("VerificationResult", state)?;
        let loose = restore.loose();
        {
            let mut me = slf.borrow_mut();
            restore.each(|name, v| {
                match RESULT_FIELDS.iter().position(|f| *f == name) {
                    Some(i) => me.set_field(i, Some(v.unbind())),
                    None if loose && name == "_verified_at" => me.set_field(3, Some(v.unbind())),
                    None if loose && name == "_verified_ts" => {
                        let ts = v.extract::<f64>()?;
                        me.fields[3] = None;
                        me.lazy_ts = Some(ts);
                    }
                    None => return Ok(false),
                }
                Ok(true)
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
        self.lazy_warnings = false;
        self.lazy_ts = None;
    }
}

/// A `VerificationResult` stamped with the current time (`verified_at` made when first
/// read); `warnings=None` gives an empty list.
#[pyfunction]
#[pyo3(signature = (valid, error=None, warnings=None))]
fn agent_result<'py>(
    py: Python<'py>,
    valid: bool,
    error: Option<Bound<'py, PyAny>>,
    warnings: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAgentResult>> {
    let ts = match time_time() {
        Some(t) => t,
        None => py
            .import("time")?
            .getattr("time")?
            .call0()?
            .extract::<f64>()?,
    };
    Bound::new(
        py,
        PyAgentResult::made(
            valid,
            error.map(Bound::unbind),
            warnings.map(Bound::unbind),
            ts,
            py,
        ),
    )
}

// -- the manager's fast paths --------------------------------------------------------------

/// Largest integer every float represents exactly.
const EXACT_INT: i64 = 1 << 53;

fn default_check_replay() -> Py<PyAny> {
    Python::attach(|py| PyBool::new(py, true).to_owned().into_any().unbind())
}

fn default_max_age() -> Py<PyAny> {
    static AGE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    Python::attach(|py| {
        AGE.get_or_init(py, || PyFloat::new(py, 300.0).into_any().unbind())
            .clone_ref(py)
    })
}

/// The message fast paths of one `AgentTrustManager` (see the module doc).
///
/// `AgentMessages(manager, credential_type)`: `manager` holds `_agents`, `_agent_keys`,
/// `_ring`, `_seen`, `_lock` and `_clock` (read once: they are never rebound),
/// `_replay_floor`, `require_explicit_trust` and `replay_cache_size` (read per call), and the
/// general paths `_create_signed_message(from, to, action, payload, token, reply_to,
/// metadata)`, `_verify_message(message, check_replay, max_age_seconds, now)` and
/// `_evict_seen(now, max_age_seconds)`. Valid results are native `VerificationResult`s made
/// as `agent_result` makes them. Exact native `AgentCredential`s are read from the object;
/// exact instances of `credential_type` (the class the manager builds, the twin dataclass on
/// the reference backend) through their `__dict__`, others by attribute access; the manager
/// and its key ring through their `__dict__` when their classes define none of the attributes
/// read. A manager whose `_lock` is an `AgentLock` has it taken natively.
#[pyclass(frozen, module = "proxilion._core", name = "AgentMessages")]
pub struct PyAgentMessages {
    manager: Py<PyAny>,
    /// `manager.__dict__`, when its class defines none of the attributes read per call.
    manager_dict: Option<Py<PyDict>>,
    /// `ring.__dict__`, when its class defines neither `_keys` nor `_generation`.
    ring_dict: Option<Py<PyDict>>,
    /// The credential class the manager builds; exact instances of a Python (dataclass) one
    /// keep their fields in their `__dict__`.
    credential_type: Py<PyType>,
    agents: Py<PyDict>,
    agent_keys: Py<PyDict>,
    ring: Py<PyAny>,
    seen: Py<PyDict>,
    /// The manager's lock when it is an [`AgentLock`] (taken natively), else `None` and
    /// the lock's own `acquire` / `release` are called.
    native_lock: Option<Py<AgentLock>>,
    acquire: Py<PyAny>,
    release: Py<PyAny>,
    clock: Py<PyAny>,
    /// `clock` is `time.time` itself: read the same system clock natively.
    system_clock: bool,
}

/// A registered sender of plain HMAC messages whose cached per-agent keys are current.
struct Sender<'py> {
    capabilities: Bound<'py, PyAny>,
    keys: Bound<'py, SigningKeys>,
}

/// `obj.__dict__`, if `obj` has one and its class defines none of `names` (so that reading
/// them from the dict is what attribute access does).
pub(crate) fn plain_dict<'py>(
    obj: &Bound<'py, PyAny>,
    names: &[&str],
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let cls = obj.get_type();
    for name in names {
        if cls.hasattr(*name)? {
            return Ok(None);
        }
    }
    Ok(obj
        .getattr("__dict__")
        .ok()
        .and_then(|d| d.cast_into_exact::<PyDict>().ok()))
}

/// `obj.name`, read from `dict` when given and holding it.
#[inline]
pub(crate) fn attr<'py>(
    obj: &Bound<'py, PyAny>,
    dict: Option<&Bound<'py, PyDict>>,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    if let Some(d) = dict {
        if let Some(v) = d.get_item(name)? {
            return Ok(v);
        }
    }
    obj.getattr(name)
}

fn dict_attr<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Bound<'py, PyDict>> {
    obj.getattr(name)?
        .cast_into::<PyDict>()
        .map_err(|_| PyTypeError::new_err(format!("manager.{name} must be a dict")))
}

impl PyAgentMessages {
    /// The clock's reading, as `float(clock())`.
    fn now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFloat>> {
        match self.system_clock.then(time_time).flatten() {
            Some(t) => Ok(PyFloat::new(py, t)),
            None => as_float(self.clock.bind(py).call0()?),
        }
    }

    /// The generation of the manager's key ring, read as `KeyRing.generation` does.
    fn ring_generation<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ring = self.ring.bind(py);
        let dict = self.ring_dict.as_ref().map(|d| d.bind(py));
        if attr(ring, dict, intern!(py, "_keys"))?.len()? == 1 {
            attr(ring, dict, intern!(py, "_generation"))
        } else {
            ring.getattr(intern!(py, "generation"))
        }
    }

    /// `manager.name`.
    fn manager_attr<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dict = self.manager_dict.as_ref().map(|d| d.bind(py));
        attr(self.manager.bind(py), dict, name)
    }

    /// The capabilities of a credential of another class (a subclass, or the dataclass on
    /// the reference backend), read through attribute access (or the `__dict__` of an exact
    /// `credential_type` instance), if it is an unexpired HMAC agent above trust `NONE`.
    fn plain_sender<'py>(
        &self,
        py: Python<'py>,
        cred: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let dict = if cred.get_type_ptr() == self.credential_type.bind(py).as_type_ptr() {
            cred.getattr(intern!(py, "__dict__"))?
                .cast_into_exact::<PyDict>()
                .ok()
        } else {
            None
        };
        let dict = dict.as_ref();
        if !attr(cred, dict, intern!(py, "expires_at"))?.is_none() {
            return Ok(None);
        }
        match attr(cred, dict, intern!(py, "trust_level"))?.extract::<i64>() {
            Ok(level) if level != 0 => {}
            _ => return Ok(None),
        }
        let capabilities = attr(cred, dict, intern!(py, "capabilities"))?;
        let algorithm = attr(cred, dict, intern!(py, "algorithm"))?;
        match algorithm.cast_exact::<PyString>() {
            Ok(a) if a.to_cow().is_ok_and(|a| a == "hmac-sha256") => Ok(Some(capabilities)),
            _ => Ok(None),
        }
    }

    /// `agent_id`'s credential and keys if it is registered, unexpired, above trust `NONE`,
    /// an HMAC agent, and its cached keys are of the ring's current generation; else `None`.
    fn hmac_sender<'py>(
        &self,
        py: Python<'py>,
        agent_id: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Sender<'py>>> {
        let Some(cred) = self.agents.bind(py).get_item(agent_id)? else {
            return Ok(None);
        };
        let capabilities = if let Ok(c) = cred.cast_exact::<PyAgentCredential>() {
            // A native credential: its setters keep what is read here current.
            let Some(view) = c.try_borrow().ok().and_then(|c| c.hmac_view(py)) else {
                return Ok(None);
            };
            if !(view.agent_id.is(agent_id) || view.agent_id.eq(agent_id)?) {
                return Ok(None);
            }
            view.capabilities
        } else {
            match self.plain_sender(py, &cred)? {
                Some(caps) => caps,
                None => return Ok(None),
            }
        };
        let Some(cached) = self.agent_keys.bind(py).get_item(agent_id)? else {
            return Ok(None);
        };
        let Ok(cached) = cached.cast_into_exact::<PyTuple>() else {
            return Ok(None);
        };
        if cached.len() != 2 {
            return Ok(None);
        }
        let generation = cached.get_item(0)?;
        let current = self.ring_generation(py)?;
        if !(generation.is(&current)
            || (generation.is_exact_instance_of::<PyInt>() && generation.eq(current)?))
        {
            return Ok(None);
        }
        let Ok(keys) = cached.get_item(1)?.cast_into::<SigningKeys>() else {
            return Ok(None);
        };
        Ok(Some(Sender { capabilities, keys }))
    }

    /// Whether `action` is one of the sender's own capabilities (`"*"` or an exact match).
    /// Wildcard prefixes and delegations are left to the general path.
    fn holds(py: Python<'_>, caps: &Bound<'_, PyAny>, action: &Bound<'_, PyAny>) -> PyResult<bool> {
        if let Ok(s) = caps.cast_exact::<PySet>() {
            return Ok(s.contains(intern!(py, "*"))? || s.contains(action)?);
        }
        if let Ok(s) = caps.cast_exact::<PyFrozenSet>() {
            return Ok(s.contains(intern!(py, "*"))? || s.contains(action)?);
        }
        Ok(false)
    }

    /// The checks of `verify_message` for an exact `SignedMessage` of plain field types,
    /// with the lock held: `Some(True result)` when every check passes (the id is then
    /// recorded), `None` when the general path must decide.
    #[allow(clippy::too_many_arguments)]
    fn verify_locked<'py>(
        &self,
        py: Python<'py>,
        f: &[Bound<'py, PyAny>; 7],
        ts: f64,
        check_replay: bool,
        max_age: f64,
        max_age_obj: &Bound<'py, PyAny>,
        now: &Bound<'py, PyFloat>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let manager = self.manager.bind(py);
        let seen = self.seen.bind(py);
        let [mid, from, to, action, payload, timestamp, signature] = f;
        if check_replay {
            if seen.contains(mid)? {
                return Ok(None);
            }
            let floor = self.manager_attr(py, intern!(py, "_replay_floor"))?;
            match floor.cast_exact::<PyFloat>() {
                Ok(fl) if ts > fl.value() => {}
                _ => return Ok(None),
            }
        }
        let age = now.value() - ts;
        if age > max_age || age < -60.0 {
            return Ok(None);
        }
        let Some(sender) = self.hmac_sender(py, from)? else {
            return Ok(None);
        };
        let Ok(Some(text)) = agent_text([mid, from, to, action, payload, timestamp]) else {
            return Ok(None);
        };
        let Ok(sig) = signature.cast_exact::<PyString>()?.to_str() else {
            return Ok(None);
        };
        if sender
            .keys
            .get()
            .keys
            .verify(text.as_bytes(), sig.as_bytes(), false)
            .is_none()
        {
            return Ok(None);
        }
        if self
            .manager_attr(py, intern!(py, "require_explicit_trust"))?
            .is_truthy()?
            && !self.agents.bind(py).contains(to)?
        {
            return Ok(None);
        }
        if !Self::holds(py, &sender.capabilities, action)? {
            return Ok(None);
        }
        if check_replay {
            seen.set_item(mid, timestamp)?;
            let size = self.manager_attr(py, intern!(py, "replay_cache_size"))?;
            let over = match size.extract::<i64>() {
                Ok(n) => i64::try_from(seen.len()).map_or(true, |len| len > n),
                Err(_) => seen.len().into_pyobject(py)?.gt(&size)?,
            };
            if over {
                manager.call_method1(intern!(py, "_evict_seen"), (now, max_age_obj))?;
            }
        }
        self.valid_result(py, now).map(Some)
    }

    /// `VerificationResult(valid=True, error=None, warnings=[])` at the verification time
    /// (`now` when the clock is the system clock, whose reading it is).
    fn valid_result<'py>(
        &self,
        py: Python<'py>,
        now: &Bound<'py, PyFloat>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ts = if self.system_clock {
            now.value()
        } else {
            match time_time() {
                Some(t) => t,
                None => py
                    .import("time")?
                    .getattr("time")?
                    .call0()?
                    .extract::<f64>()?,
            }
        };
        Ok(Bound::new(py, PyAgentResult::made(true, None, None, ts, py))?.into_any())
    }
}

/// The seven fields `verify_message` reads of an exact `SignedMessage` whose id, agents,
/// action and signature are exact `str`s and whose timestamp is a finite exact `float`;
/// `None` otherwise.
fn plain_fields<'py>(m: &Bound<'py, PyAny>) -> Option<([Bound<'py, PyAny>; 7], f64)> {
    let py = m.py();
    let m = m.cast_exact::<PyAgentMessage>().ok()?;
    let me = m.try_borrow().ok()?;
    let get = |i: usize| me.fields[i].as_ref().map(|o| o.bind(py).clone());
    let f = [
        get(0)?,
        get(1)?,
        get(2)?,
        get(3)?,
        get(4)?,
        get(5)?,
        get(6)?,
    ];
    for i in [0, 1, 2, 3, 6] {
        if !f[i].is_exact_instance_of::<PyString>() {
            return None;
        }
    }
    let ts = f[5].cast_exact::<PyFloat>().ok()?.value();
    ts.is_finite().then_some((f, ts))
}

#[pymethods]
impl PyAgentMessages {
    #[new]
    fn new(manager: &Bound<'_, PyAny>, credential_type: Bound<'_, PyType>) -> PyResult<Self> {
        let py = manager.py();
        let lock = manager.getattr("_lock")?;
        let ring = manager.getattr("_ring")?;
        let manager_dict = plain_dict(
            manager,
            &[
                "_replay_floor",
                "require_explicit_trust",
                "replay_cache_size",
            ],
        )?;
        let ring_dict = plain_dict(&ring, &["_keys", "_generation"])?;
        let clock = manager.getattr("_clock")?;
        let system_clock = clock.is(py.import("time")?.getattr("time")?);
        Ok(PyAgentMessages {
            manager: manager.clone().unbind(),
            manager_dict: manager_dict.map(Bound::unbind),
            ring_dict: ring_dict.map(Bound::unbind),
            credential_type: credential_type.unbind(),
            agents: dict_attr(manager, "_agents")?.unbind(),
            agent_keys: dict_attr(manager, "_agent_keys")?.unbind(),
            ring: ring.unbind(),
            seen: dict_attr(manager, "_seen")?.unbind(),
            native_lock: lock
                .cast_exact::<AgentLock>()
                .ok()
                .map(|l| l.clone().unbind()),
            acquire: lock.getattr("acquire")?.unbind(),
            release: lock.getattr("release")?.unbind(),
            clock: clock.unbind(),
            system_clock,
        })
    }

    /// `AgentTrustManager.create_signed_message`.
    #[pyo3(signature = (from_agent, to_agent, action, payload, delegation_token=None, reply_to=None, metadata=None))]
    #[allow(clippy::too_many_arguments)]
    fn sign<'py>(
        &self,
        py: Python<'py>,
        from_agent: &Bound<'py, PyAny>,
        to_agent: &Bound<'py, PyAny>,
        action: &Bound<'py, PyAny>,
        payload: &Bound<'py, PyAny>,
        delegation_token: Option<&Bound<'py, PyAny>>,
        reply_to: Option<&Bound<'py, PyAny>>,
        metadata: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(sender) = self.hmac_sender(py, from_agent)? else {
            let none = || py.None().into_bound(py);
            return self.manager.bind(py).call_method1(
                intern!(py, "_create_signed_message"),
                (
                    from_agent,
                    to_agent,
                    action,
                    payload,
                    delegation_token.cloned().unwrap_or_else(none),
                    reply_to.cloned().unwrap_or_else(none),
                    metadata.cloned().unwrap_or_else(none),
                ),
            );
        };
        let timestamp = self.now(py)?;
        let mid = next_id(py)?;
        let text = agent_text([
            mid.as_any(),
            from_agent,
            to_agent,
            action,
            payload,
            timestamp.as_any(),
        ])?
        .ok_or_else(|| {
            PyValueError::new_err(
                "message is not valid Unicode text (it contains surrogate code points)",
            )
        })?;
        let signature = hex_str(py, &sender.keys.get().keys.sign_hex_array(text.as_bytes()));
        // `dict(metadata) if metadata else {}` ({} created on first access).
        let metadata = match metadata {
            Some(m) if m.is_truthy()? => Some(match m.cast_exact::<PyDict>() {
                Ok(d) => d.copy()?.into_any().unbind(),
                Err(_) => py.get_type::<PyDict>().call1((m,))?.unbind(),
            }),
            _ => None,
        };
        let lazy = metadata.is_none();
        let opt = |o: Option<&Bound<'py, PyAny>>| {
            Some(o.map_or_else(|| py.None(), |v| v.clone().unbind()))
        };
        Ok(Bound::new(
            py,
            PyAgentMessage {
                fields: [
                    Some(mid.into_any().unbind()),
                    Some(from_agent.clone().unbind()),
                    Some(to_agent.clone().unbind()),
                    Some(action.clone().unbind()),
                    Some(payload.clone().unbind()),
                    Some(timestamp.into_any().unbind()),
                    Some(signature.into_any().unbind()),
                    opt(delegation_token),
                    opt(reply_to),
                ],
                metadata,
                lazy_metadata: lazy,
            },
        )?
        .into_any())
    }

    /// `AgentTrustManager.verify_message`.
    #[pyo3(signature = (message, check_replay=default_check_replay(), max_age_seconds=default_max_age()))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyAny>,
        check_replay: Py<PyAny>,
        max_age_seconds: Py<PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let now = self.now(py)?;
        let check_replay = check_replay.into_bound(py);
        let max_age_obj = max_age_seconds.into_bound(py);
        let replay = check_replay
            .cast_exact::<PyBool>()
            .ok()
            .map(|b| b.is_true());
        let max_age = if let Ok(f) = max_age_obj.cast_exact::<PyFloat>() {
            Some(f.value())
        } else if max_age_obj.is_exact_instance_of::<PyInt>() {
            max_age_obj
                .extract::<i64>()
                .ok()
                .filter(|v| v.abs() <= EXACT_INT)
                .map(|v| v as f64)
        } else {
            None
        };
        if let (Some(replay), Some(max_age), Some((fields, ts))) =
            (replay, max_age, plain_fields(message))
        {
            let out = if let Some(lock) = &self.native_lock {
                let lock = lock.get();
                lock.enter(py, None)?;
                let held = NativeHeld(lock);
                let out = self.verify_locked(py, &fields, ts, replay, max_age, &max_age_obj, &now);
                drop(held);
                out
            } else {
                let release = self.release.bind(py);
                self.acquire.bind(py).call0()?;
                let held = Held(Some(release));
                let out = self.verify_locked(py, &fields, ts, replay, max_age, &max_age_obj, &now);
                held.disarm();
                release.call0()?;
                out
            };
            if let Some(result) = out? {
                return Ok(result);
            }
        }
        self.manager.bind(py).call_method1(
            intern!(py, "_verify_message"),
            (message, check_replay, max_age_obj, now),
        )
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("AgentMessages(agents={})", self.agents.bind(py).len())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.manager)?;
        visit.call(&self.manager_dict)?;
        visit.call(&self.ring_dict)?;
        visit.call(&self.credential_type)?;
        visit.call(&self.agents)?;
        visit.call(&self.agent_keys)?;
        visit.call(&self.ring)?;
        visit.call(&self.seen)?;
        visit.call(&self.native_lock)?;
        visit.call(&self.acquire)?;
        visit.call(&self.release)?;
        visit.call(&self.clock)?;
        Ok(())
    }
}

/// The manager's native lock, held by this thread: released when this is dropped (also if
/// the checks unwind).
pub(crate) struct NativeHeld<'a>(pub(crate) &'a AgentLock);

impl Drop for NativeHeld<'_> {
    fn drop(&mut self) {
        // This thread holds the lock, so releasing it cannot fail.
        let _ = self.0.exit();
    }
}

/// The manager's lock, held: released when this is dropped armed, that is if the checks
/// unwind (a panic, which PyO3 turns into an exception), so the lock is never left held.
struct Held<'a, 'py>(Option<&'a Bound<'py, PyAny>>);

impl Held<'_, '_> {
    /// The normal path releases the lock itself (and reports a failure to).
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Held<'_, '_> {
    fn drop(&mut self) {
        if let Some(release) = self.0 {
            if let Err(e) = release.call0() {
                e.write_unraisable(release.py(), None);
            }
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("AgentSignedMessage", py.get_type::<PyAgentMessage>())?;
    m.add("AgentVerificationResult", py.get_type::<PyAgentResult>())?;
    m.add_function(wrap_pyfunction!(agent_result, m)?)?;
    m.add_class::<PyAgentMessages>()?;
    m.add("AgentCredential", py.get_type::<PyAgentCredential>())?;
    m.add_class::<AgentLock>()?;
    let os = py.import("os")?;
    if os.hasattr("register_at_fork")? {
        let kwargs = PyDict::new(py);
        kwargs.set_item("after_in_child", wrap_pyfunction!(forget_agent_ids, m)?)?;
        os.getattr("register_at_fork")?.call((), Some(&kwargs))?;
    }
    Ok(())
}
