//! Signed conversation memory as native objects (API.md 8.3).
//!
//! * `SignedMessage`: the message class of `proxilion.security.memory_integrity` on the
//!   native backend. Its fields live in the object itself, so building one (which
//!   `sign_message` does for every message) and reading one (which every verification does)
//!   costs no dictionary work. `proxilion.security.memory_integrity` completes the class with
//!   the twin dataclass's `__init__`, `__repr__`, `__eq__`, methods and dataclass metadata
//!   (`proxilion._reference.memory.SignedMessage`), so it behaves as that dataclass:
//!   `dataclasses.fields/asdict/replace/is_dataclass`, construction rules and error messages,
//!   equality, `repr`, extra attributes, pickling and copying. A message signed on the system
//!   clock keeps `sequence`, `timestamp`, `signature` and `previous_hash` as native values
//!   until one is first read (its Python object is then made once and kept).
//! * `MemoryChain`: the signing state of one `MemoryIntegrityGuard` (next sequence number,
//!   last content hash) behind a lock, with `sign_message` and `verify_message` each done in
//!   one native call.

use std::sync::Mutex;

use pyo3::exceptions::{
    PyAttributeError, PyOverflowError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::{MutexExt, PyOnceLock};
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyTuple};
use pyo3::{intern, PyTraverseError, PyVisit};

use proxilion_core::sign::context;

use super::SigningKeys;
use crate::agent_msg::{attr, plain_dict};
use crate::convert::{hex_str, str_arg, time_time};
use crate::state;

/// Field names, in dataclass order (`metadata` last).
const FIELDS: [&str; 7] = [
    "role",
    "content",
    "sequence",
    "timestamp",
    "signature",
    "previous_hash",
    "metadata",
];

/// A conversation message with its HMAC signature and chain link (see the module doc).
///
/// Every field is an `Option` (`None`: not set yet, as in an instance made by `__new__`
/// alone), so a garbage collection that traverses the object before its fields are written
/// (CPython allocates the instance dict after the object is tracked) sees nothing.
#[pyclass(
    module = "proxilion.security.memory_integrity",
    name = "SignedMessage",
    subclass,
    dict,
    weakref
)]
pub struct PySignedMessage {
    fields: [Option<Py<PyAny>>; 6],
    metadata: Option<Py<PyAny>>,
    /// `metadata` is an empty dict that is created on first access.
    lazy_metadata: bool,
    /// Hex content hash of `role`, `content`, `sequence`, `timestamp` as they are: set when
    /// the message is signed (exact `str`/`int`/`float` values, which cannot change in
    /// place), cleared whenever one of these four fields is set, deleted or restored.
    chash: Option<[u8; 64]>,
    /// Values of fields that a signed message holds natively until they are first read: the
    /// Python object (an exact `int`, `float` or `str`) is made on first access and kept.
    stash: Stash,
}

/// Native values of `sequence`, `timestamp`, `signature` and `previous_hash` (fields 2 to
/// 5) not yet made Python objects. A field is set when its object or its stash value is;
/// never both.
#[derive(Default, Clone, Copy)]
struct Stash {
    seq: Option<u64>,
    ts: Option<f64>,
    sig: Option<[u8; 64]>,
    prev: Option<[u8; 64]>,
}

impl Stash {
    fn is_set(&self, i: usize) -> bool {
        match i {
            2 => self.seq.is_some(),
            3 => self.ts.is_some(),
            4 => self.sig.is_some(),
            5 => self.prev.is_some(),
            _ => false,
        }
    }

    fn clear(&mut self, i: usize) {
        match i {
            2 => self.seq = None,
            3 => self.ts = None,
            4 => self.sig = None,
            5 => self.prev = None,
            _ => {}
        }
    }

    /// The Python object of field `i`, taken out of the stash.
    fn take_object(&mut self, py: Python<'_>, i: usize) -> PyResult<Option<Py<PyAny>>> {
        let hex = |h: [u8; 64]| -> PyResult<Py<PyAny>> { Ok(hex_str(py, &h).into_any().unbind()) };
        Ok(match i {
            2 => match self.seq.take() {
                Some(v) => Some(v.into_pyobject(py)?.into_any().unbind()),
                None => None,
            },
            3 => self
                .ts
                .take()
                .map(|v| PyFloat::new(py, v).into_any().unbind()),
            4 => self.sig.take().map(hex).transpose()?,
            5 => self.prev.take().map(hex).transpose()?,
            _ => None,
        })
    }
}

fn unset(name: &str) -> PyErr {
    PyAttributeError::new_err(format!("'SignedMessage' object has no attribute '{name}'"))
}

impl PySignedMessage {
    /// Make the Python object of field `i` if it is still held natively.
    fn materialize(&mut self, py: Python<'_>, i: usize) -> PyResult<()> {
        if self.fields[i].is_none() {
            if let Some(obj) = self.stash.take_object(py, i)? {
                self.fields[i] = Some(obj);
            }
        }
        Ok(())
    }

    fn materialize_all(&mut self, py: Python<'_>) -> PyResult<()> {
        for i in 2..6 {
            self.materialize(py, i)?;
        }
        Ok(())
    }

    fn field(&mut self, py: Python<'_>, i: usize) -> PyResult<Py<PyAny>> {
        self.materialize(py, i)?;
        self.fields[i]
            .as_ref()
            .map(|o| o.clone_ref(py))
            .ok_or_else(|| unset(FIELDS[i]))
    }

    fn set_field(&mut self, i: usize, value: Py<PyAny>) {
        if i < 4 {
            self.chash = None;
        }
        self.stash.clear(i);
        self.fields[i] = Some(value);
    }

    fn delete_field(&mut self, i: usize) -> PyResult<()> {
        self.chash = None;
        let stashed = self.stash.is_set(i);
        self.stash.clear(i);
        if self.fields[i].take().is_none() && !stashed {
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
impl PySignedMessage {
    /// Allocate an instance with no field set; the dataclass `__init__` (installed by
    /// `proxilion.security.memory_integrity`) assigns the fields, so subclasses may take
    /// other constructor arguments, exactly as with the dataclass.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        PySignedMessage {
            fields: Default::default(),
            metadata: None,
            lazy_metadata: false,
            chash: None,
            stash: Stash::default(),
        }
    }

    #[getter]
    fn get_role(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 0)
    }
    #[setter]
    fn set_role(&mut self, value: Py<PyAny>) {
        self.set_field(0, value);
    }
    #[deleter]
    fn delete_role(&mut self) -> PyResult<()> {
        self.delete_field(0)
    }
    #[getter]
    fn get_content(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 1)
    }
    #[setter]
    fn set_content(&mut self, value: Py<PyAny>) {
        self.set_field(1, value);
    }
    #[deleter]
    fn delete_content(&mut self) -> PyResult<()> {
        self.delete_field(1)
    }
    #[getter]
    fn get_sequence(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 2)
    }
    #[setter]
    fn set_sequence(&mut self, value: Py<PyAny>) {
        self.set_field(2, value);
    }
    #[deleter]
    fn delete_sequence(&mut self) -> PyResult<()> {
        self.delete_field(2)
    }
    #[getter]
    fn get_timestamp(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 3)
    }
    #[setter]
    fn set_timestamp(&mut self, value: Py<PyAny>) {
        self.set_field(3, value);
    }
    #[deleter]
    fn delete_timestamp(&mut self) -> PyResult<()> {
        self.delete_field(3)
    }
    #[getter]
    fn get_signature(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 4)
    }
    #[setter]
    fn set_signature(&mut self, value: Py<PyAny>) {
        self.set_field(4, value);
    }
    #[deleter]
    fn delete_signature(&mut self) -> PyResult<()> {
        self.delete_field(4)
    }
    #[getter]
    fn get_previous_hash(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.field(py, 5)
    }
    #[setter]
    fn set_previous_hash(&mut self, value: Py<PyAny>) {
        self.set_field(5, value);
    }
    #[deleter]
    fn delete_previous_hash(&mut self) -> PyResult<()> {
        self.delete_field(5)
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

    /// `(fields, dict)` (see [`crate::state`]); a subclass may keep a field elsewhere, e.g.
    /// behind a property, so only the fields held here are in it.
    fn __getstate__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let fields = PyDict::new(py);
        {
            let mut me = slf.borrow_mut();
            me.materialize_all(py)?;
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
            fields.set_item(FIELDS[6], meta)?;
        }
        state::state_pair(slf.as_any(), fields)
    }

    /// Restore what `__getstate__` gave, or the `__dict__` of a pickled twin dataclass
    /// instance (see [`crate::state`]).
    fn __setstate__(slf: &Bound<'_, Self>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let restore = state::Restore::new("SignedMessage", state)?;
        {
            let mut me = slf.borrow_mut();
            me.chash = None;
            restore.each(|name, v| {
                match FIELDS.iter().position(|f| *f == name) {
                    Some(6) => {
                        me.metadata = Some(v.unbind());
                        me.lazy_metadata = false;
                    }
                    Some(i) => me.set_field(i, v.unbind()),
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
        self.chash = None;
        self.stash = Stash::default();
    }
}

/// The six signed fields of a message and its content hash, if known.
pub(crate) type NativeFields<'py> = ([Bound<'py, PyAny>; 6], Option<[u8; 64]>);

/// The six signed fields of an exact `SignedMessage` (not a subclass, which may
/// define properties), read from the object itself, with its content hash if known; `None`
/// if it is something else or a field is not set (the caller then uses attribute access,
/// which raises the right error).
pub(crate) fn native_fields<'py>(m: &Bound<'py, PyAny>) -> Option<NativeFields<'py>> {
    let py = m.py();
    if !m.get_type().is(py.get_type::<PySignedMessage>()) {
        return None;
    }
    let m = m.cast::<PySignedMessage>().ok()?;
    let mut me = m.try_borrow_mut().ok()?;
    me.materialize_all(py).ok()?;
    let get = |i: usize| me.fields[i].as_ref().map(|o| o.bind(py).clone());
    Some((
        [get(0)?, get(1)?, get(2)?, get(3)?, get(4)?, get(5)?],
        me.chash,
    ))
}

/// `(True, None)`, shared (tuples are immutable).
fn ok_pair(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static OK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    Ok(OK
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(
                PyTuple::new(
                    py,
                    [
                        PyBool::new(py, true).to_owned().into_any(),
                        py.None().into_bound(py),
                    ],
                )?
                .into_any()
                .unbind(),
            )
        })?
        .bind(py)
        .clone())
}

fn context_integrity_error(py: Python<'_>, message: String) -> PyResult<PyErr> {
    static CLS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let cls = CLS.get_or_try_init(py, || {
        Ok::<_, PyErr>(
            py.import("proxilion.exceptions")?
                .getattr("ContextIntegrityError")?
                .unbind(),
        )
    })?;
    Ok(PyErr::from_value(cls.bind(py).call1((message,))?))
}

/// Text of an exact `str` that has a UTF-8 form.
fn exact_str<'a>(obj: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    obj.cast_exact::<PyString>().ok()?.to_str().ok()
}

/// The state a chain guards with its lock.
struct ChainState {
    /// Sequence number of the next message.
    seq: u64,
    /// Content hash of the last message signed (or the genesis hash, or a restored value).
    last_hash: LastHash,
    /// Most messages this chain signs.
    max_size: u64,
    /// `str(max_context_size)` as given (for the error message).
    max_text: String,
}

/// The link the next message carries: the hex content hash of the message signed last
/// (held natively, as the message's own `previous_hash` is), or a `str` (the genesis hash,
/// or a restored value).
enum LastHash {
    Hex([u8; 64]),
    Str(Py<PyString>),
}

impl LastHash {
    fn to_str(&self, py: Python<'_>) -> PyResult<Py<PyString>> {
        Ok(match self {
            LastHash::Hex(h) => hex_str(py, h).unbind(),
            LastHash::Str(s) => s.clone_ref(py),
        })
    }
}

/// The signing state of one `MemoryIntegrityGuard` and its two per-message operations.
///
/// `MemoryChain(ring, clock, max_context_size, genesis, verify_fallback)`: `ring` is the
/// guard's `KeyRing` (its `_single` attribute, when not `None`, is the `SigningKeys` of a
/// ring holding one key; otherwise `ring.signing_keys()` gives the active keys, expiring
/// old ones), `clock` the wall clock, `verify_fallback(ring, message, expected)` the
/// guard's general `verify_message` (used for anything but an intact exact
/// `SignedMessage` of plain field types, so every failure is reported by the same code).
#[pyclass(frozen, module = "proxilion._core", name = "MemoryChain")]
pub struct PyMemoryChain {
    ring: Py<PyAny>,
    /// `ring.__dict__`, when the ring's class does not define `_single` (so that reading it
    /// from the dict is what attribute access does, without the generic lookup).
    ring_dict: Option<Py<PyDict>>,
    clock: Py<PyAny>,
    /// `clock` is `time.time` itself: read the same system clock natively.
    system_clock: bool,
    genesis: Py<PyString>,
    fallback: Py<PyAny>,
    state: Mutex<ChainState>,
}

fn max_size(value: &Bound<'_, PyAny>) -> PyResult<(u64, String)> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "max_context_size must be an int, not {}",
            value.get_type().name()?
        )));
    }
    let text = value.str()?.to_string();
    if value.lt(1)? {
        return Err(PyValueError::new_err("max_context_size must be >= 1"));
    }
    // Beyond u64 the limit is never reached.
    Ok((value.extract::<u64>().unwrap_or(u64::MAX), text))
}

fn poisoned<T>(_: T) -> PyErr {
    PyRuntimeError::new_err("memory chain lock poisoned")
}

impl PyMemoryChain {
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, SigningKeys>> {
        let ring = self.ring.bind(py);
        let ring_dict = self.ring_dict.as_ref().map(|d| d.bind(py));
        let single = attr(ring, ring_dict, intern!(py, "_single"))?;
        let keys = if single.is_none() {
            ring.call_method0(intern!(py, "signing_keys"))?
        } else {
            single
        };
        keys.cast_into::<SigningKeys>().map_err(|e| {
            PyTypeError::new_err(format!(
                "the key ring must give native SigningKeys, not {}",
                e.into_inner()
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })
    }

    /// Whether `message` is an exact `SignedMessage` of plain field types that verifies
    /// (and links to `expected`, if given). False means "let the general path decide".
    fn verifies_fast(
        &self,
        py: Python<'_>,
        message: &Bound<'_, PyAny>,
        expected: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if !message.get_type().is(py.get_type::<PySignedMessage>()) {
            return Ok(false);
        }
        let Ok(m) = message.cast::<PySignedMessage>() else {
            return Ok(false);
        };
        // The keys first: reading the ring is Python attribute access, which must not run
        // while the message is borrowed.
        let keys = self.keys(py)?;
        let Ok(me) = m.try_borrow() else {
            return Ok(false);
        };
        let text = |i: usize| me.fields[i].as_ref().and_then(|o| exact_str(o.bind(py)));
        // A field is held natively or as an object of the plain type, else: general path.
        let (Some(role), Some(content)) = (text(0), text(1)) else {
            return Ok(false);
        };
        let sig = match &me.stash.sig {
            Some(h) => Some(h.as_slice()),
            None => text(4).map(str::as_bytes),
        };
        let prev = match &me.stash.prev {
            Some(h) => Some(h.as_slice()),
            None => text(5).map(str::as_bytes),
        };
        let (Some(sig), Some(prev)) = (sig, prev) else {
            return Ok(false);
        };
        if let Some(e) = expected {
            match exact_str(e) {
                Some(e) if e.as_bytes() == prev => {}
                _ => return Ok(false),
            }
        }
        let seq = match (me.stash.seq, &me.fields[2]) {
            (Some(v), _) => i128::from(v),
            (None, Some(o)) => {
                let o = o.bind(py);
                if !o.is_exact_instance_of::<PyInt>() {
                    return Ok(false);
                }
                match o.extract::<i64>() {
                    Ok(v) => i128::from(v),
                    Err(_) => return Ok(false),
                }
            }
            (None, None) => return Ok(false),
        };
        let ts = match (me.stash.ts, &me.fields[3]) {
            (Some(v), _) => v,
            (None, Some(o)) => match o.bind(py).cast_exact::<PyFloat>() {
                Ok(f) => f.value(),
                Err(_) => return Ok(false),
            },
            (None, None) => return Ok(false),
        };
        Ok(context::with_number_texts(seq, ts, |seq, ts| {
            context::verify_one(&keys.get().keys, role, content, seq, ts, prev, sig)
        }))
    }
}

#[pymethods]
impl PyMemoryChain {
    #[new]
    fn new(
        ring: Py<PyAny>,
        clock: Py<PyAny>,
        max_context_size: &Bound<'_, PyAny>,
        genesis: Bound<'_, PyString>,
        verify_fallback: Py<PyAny>,
    ) -> PyResult<Self> {
        let (max_size, max_text) = max_size(max_context_size)?;
        let py = max_context_size.py();
        let system_clock = clock.bind(py).is(py.import("time")?.getattr("time")?);
        let ring_dict = plain_dict(ring.bind(py), &["_single"])?.map(Bound::unbind);
        Ok(PyMemoryChain {
            ring,
            ring_dict,
            clock,
            system_clock,
            genesis: genesis.clone().unbind(),
            fallback: verify_fallback,
            state: Mutex::new(ChainState {
                seq: 0,
                last_hash: LastHash::Str(genesis.unbind()),
                max_size,
                max_text,
            }),
        })
    }

    /// Sign the next message of the chain, as `MemoryIntegrityGuard.sign_message`.
    #[pyo3(signature = (role, content, metadata=None))]
    fn sign_message<'py>(
        &self,
        py: Python<'py>,
        role: &Bound<'py, PyAny>,
        content: &Bound<'py, PyAny>,
        metadata: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PySignedMessage>> {
        // `dict(metadata or {})`, made before anything is consumed ({} created on access).
        let metadata = match metadata {
            Some(m) if m.is_truthy()? => Some(match m.cast_exact::<PyDict>() {
                Ok(d) => d.copy()?.into_any().unbind(),
                Err(_) => py.get_type::<PyDict>().call1((m,))?.unbind(),
            }),
            _ => None,
        };
        let keys = self.keys(py)?;
        // The clock is read under the lock, so sequence numbers and timestamps rise together
        // across threads; a thread waiting for the lock lets go of the interpreter.
        let mut st = self.state.lock_py_attached(py).map_err(poisoned)?;
        if st.seq >= st.max_size {
            return Err(context_integrity_error(
                py,
                format!("Message chain exceeds max_context_size ({})", st.max_text),
            )?);
        }
        // The timestamp: held natively when read from the system clock; the clock's own
        // `float` object otherwise (`float(t)` of anything else).
        let (ts_value, ts_obj, ts_stash) = match self.system_clock.then(time_time).flatten() {
            Some(t) => (t, None, Some(t)),
            None => {
                let t = self.clock.bind(py).call0()?;
                let f = match t.cast_exact::<PyFloat>() {
                    Ok(f) => f.clone(),
                    Err(_) => py
                        .get_type::<PyFloat>()
                        .call1((t,))?
                        .cast_into::<PyFloat>()?,
                };
                (f.value(), Some(f), None)
            }
        };
        let role_s = str_arg(role, "role")?;
        let content_s = str_arg(content, "content")?;
        let seq = st.seq;
        let prev_obj = match &st.last_hash {
            LastHash::Hex(_) => None,
            LastHash::Str(p) => Some(p.clone_ref(py).into_bound(py)),
        };
        let prev_s = match (&st.last_hash, &prev_obj) {
            (LastHash::Hex(h), _) => h.as_slice(),
            (_, Some(p)) => str_arg(p.as_any(), "previous_hash")?.as_bytes(),
            (_, None) => return Err(PyRuntimeError::new_err("memory chain link missing")),
        };
        let (sig, hash) = context::with_number_texts(i128::from(seq), ts_value, |seq_t, ts_t| {
            context::sign_hex(&keys.get().keys, role_s, content_s, seq_t, ts_t, prev_s)
        });
        let prev_hex = match &st.last_hash {
            LastHash::Hex(h) => Some(*h),
            LastHash::Str(_) => None,
        };
        st.seq = seq + 1;
        st.last_hash = LastHash::Hex(hash);
        drop(st);
        let lazy = metadata.is_none();
        let exact =
            role.is_exact_instance_of::<PyString>() && content.is_exact_instance_of::<PyString>();
        Bound::new(
            py,
            PySignedMessage {
                fields: [
                    Some(role.clone().unbind()),
                    Some(content.clone().unbind()),
                    None,
                    ts_obj.map(|t| t.into_any().unbind()),
                    None,
                    prev_obj.map(|p| p.into_any().unbind()),
                ],
                metadata,
                lazy_metadata: lazy,
                chash: exact.then_some(hash),
                stash: Stash {
                    seq: Some(seq),
                    ts: ts_stash,
                    sig: Some(sig),
                    prev: prev_hex,
                },
            },
        )
    }

    /// `MemoryIntegrityGuard.verify_message`: `(True, None)` at once for an intact exact
    /// `SignedMessage`, else whatever `verify_fallback(ring, message, expected)` returns.
    #[pyo3(signature = (message, expected_previous_hash=None))]
    fn verify_message<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyAny>,
        expected_previous_hash: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if self.verifies_fast(py, message, expected_previous_hash)? {
            return ok_pair(py);
        }
        let expected = match expected_previous_hash {
            Some(e) => e.clone(),
            None => py.None().into_bound(py),
        };
        self.fallback
            .bind(py)
            .call1((self.ring.bind(py), message, expected))
    }

    /// `(sequence_counter, last_hash)`.
    fn state(&self, py: Python<'_>) -> PyResult<(u64, Py<PyString>)> {
        let st = self.state.lock_py_attached(py).map_err(poisoned)?;
        Ok((st.seq, st.last_hash.to_str(py)?))
    }

    /// Continue from `(sequence_counter, last_hash)` (checked by the caller).
    fn restore(
        &self,
        py: Python<'_>,
        sequence: &Bound<'_, PyAny>,
        last_hash: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if sequence.is_instance_of::<PyBool>() || !sequence.is_instance_of::<PyInt>() {
            return Err(PyTypeError::new_err(format!(
                "sequence must be int, not {}",
                sequence.get_type().name()?
            )));
        }
        let sequence = sequence
            .extract::<u64>()
            .map_err(|_| PyOverflowError::new_err("sequence out of range"))?;
        let last_hash = crate::convert::py_str(last_hash, "last_hash")?.clone();
        let mut st = self.state.lock_py_attached(py).map_err(poisoned)?;
        st.seq = sequence;
        st.last_hash = LastHash::Str(last_hash.unbind());
        Ok(())
    }

    /// Start a new chain: sequence 0, genesis hash.
    fn reset(&self, py: Python<'_>) -> PyResult<()> {
        let mut st = self.state.lock_py_attached(py).map_err(poisoned)?;
        st.seq = 0;
        st.last_hash = LastHash::Str(self.genesis.clone_ref(py));
        Ok(())
    }

    /// Change the most messages the chain signs.
    fn set_max_context_size(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let (n, text) = max_size(value)?;
        let mut st = self.state.lock_py_attached(py).map_err(poisoned)?;
        st.max_size = n;
        st.max_text = text;
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let st = self.state.lock_py_attached(py).map_err(poisoned)?;
        Ok(format!("MemoryChain(sequence={})", st.seq))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.ring)?;
        visit.call(&self.ring_dict)?;
        visit.call(&self.clock)?;
        visit.call(&self.fallback)?;
        Ok(())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySignedMessage>()?;
    m.add_class::<PyMemoryChain>()?;
    Ok(())
}
