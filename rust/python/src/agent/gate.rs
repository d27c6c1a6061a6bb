//! `IntentGate`: `IntentGuard.validate_tool_call` in one native call (twin in
//! `proxilion/_reference/agent.py`, which always takes the general path).
//!
//! The common call (an exact `str` tool name that is one of the guard's allowed tools, no
//! `description`, `arguments` `None` or a `dict`, constraints that certainly pass (none, or
//! only `forbidden_args` and `max_tool_calls`, see [`constraints_pass`]), the guard's clock is
//! `time.time`, an unexpired capsule of the exact `IntentCapsule` class) is answered here:
//! under the guard's lock (an `AgentLock`, taken natively) the call count goes up by one and
//! `{"tool_name", "timestamp"}` is appended to the capsule's `tool_calls` (trimmed to its
//! `_max_tool_calls`), exactly what the Python path does, and the answer is `True`. The
//! system clock is read once, for the expiry check and the record. Every other call, before
//! any side effect, goes to the guard's general path `_validate_tool_call`, which gives every
//! refusal, log line and exception.
//!
//! The guard's state is read from its `__dict__` on every call (never cached), so the native
//! and the Python path always see the same values. Both paths hold the same lock while they
//! read and change it, so neither can interleave with the other.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyString, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use crate::agent_msg::{plain_dict, AgentLock, NativeHeld};
use crate::convert::time_time;

/// Attributes of the guard read per call (see the module doc).
const GUARD_FIELDS: [&str; 6] = [
    "_tools",
    "_expires",
    "_constraints",
    "_calls",
    "_capsule",
    "_clock",
];

/// The tool-call gate of one `IntentGuard` (see the module doc).
#[pyclass(frozen, module = "proxilion._core", name = "IntentGate")]
pub struct IntentGate {
    guard: Py<PyAny>,
    /// `guard.__dict__` when its class defines none of [`GUARD_FIELDS`]; else every call
    /// takes the general path.
    dict: Option<Py<PyDict>>,
    /// The guard's lock when it is an [`AgentLock`]; else every call takes the general path.
    lock: Option<Py<AgentLock>>,
    /// The capsule class whose `record_tool_call` the fast path performs.
    capsule_type: Py<PyType>,
    /// `time.time`, to recognise the system clock.
    time_time: Py<PyAny>,
}

/// What the fast path needs of the guard's current state, or `None` (the general path).
struct Plain<'py> {
    /// The system clock's reading (`time.time()`).
    now: f64,
    calls: i64,
    tool_calls: Bound<'py, PyList>,
    max_tool_calls: isize,
}

impl IntentGate {
    /// The fast path's checks and bookkeeping, with the lock held; `Ok(false)` before any
    /// change when the general path must decide.
    fn validate_locked<'py>(
        &self,
        py: Python<'py>,
        dict: &Bound<'py, PyDict>,
        tool_name: &Bound<'py, PyString>,
        arguments: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<bool> {
        let Some(plain) = self.plain(py, dict, tool_name, arguments)? else {
            return Ok(false);
        };
        let Some(calls) = plain.calls.checked_add(1) else {
            return Ok(false);
        };
        // One reading of the system clock serves the expiry check and the record.
        let record = PyDict::new(py);
        record.set_item(intern!(py, "tool_name"), tool_name)?;
        record.set_item(intern!(py, "timestamp"), PyFloat::new(py, plain.now))?;
        dict.set_item(intern!(py, "_calls"), calls)?;
        let list = plain.tool_calls;
        list.append(record)?;
        let len = list.len();
        let max = usize::try_from(plain.max_tool_calls).unwrap_or(0);
        if len > max {
            list.del_slice(0, len - max)?;
        }
        Ok(true)
    }

    /// The guard's state when the call takes the fast path (see the module doc).
    fn plain<'py>(
        &self,
        py: Python<'py>,
        dict: &Bound<'py, PyDict>,
        tool_name: &Bound<'py, PyString>,
        arguments: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Plain<'py>>> {
        // Expiry first, as the general path checks it: `not clock() <= expires` fails
        // closed (a NaN reading is refused there).
        let Some(expires) = exact::<PyFloat>(dict, intern!(py, "_expires"))? else {
            return Ok(None);
        };
        // A clock of the caller's: the general path reads it itself (it may have side
        // effects, and it is read once per call).
        let system_clock = dict
            .get_item(intern!(py, "_clock"))?
            .is_some_and(|c| c.is(self.time_time.bind(py)));
        let Some(now) = system_clock.then(time_time).flatten() else {
            return Ok(None);
        };
        let unexpired = now <= expires.value(); // false for a NaN reading: fails closed
        if !unexpired {
            return Ok(None);
        }
        let Some(tools) = exact::<PyFrozenSet>(dict, intern!(py, "_tools"))? else {
            return Ok(None);
        };
        if !tools.contains(tool_name)? {
            return Ok(None);
        }
        let Some(Ok(calls)) = exact::<PyInt>(dict, intern!(py, "_calls"))?.map(|c| c.extract())
        else {
            return Ok(None);
        };
        let Some(constraints) = exact::<PyDict>(dict, intern!(py, "_constraints"))? else {
            return Ok(None);
        };
        if !constraints_pass(&constraints, arguments, calls)? {
            return Ok(None);
        }
        let Some(capsule) = dict.get_item(intern!(py, "_capsule"))? else {
            return Ok(None);
        };
        if !capsule.get_type().is(self.capsule_type.bind(py)) {
            return Ok(None);
        }
        let Ok(cdict) = capsule
            .getattr(intern!(py, "__dict__"))?
            .cast_into_exact::<PyDict>()
        else {
            return Ok(None);
        };
        let Some(tool_calls) = exact::<PyList>(&cdict, intern!(py, "tool_calls"))? else {
            return Ok(None);
        };
        let Some(Ok(max_tool_calls)) =
            exact::<PyInt>(&cdict, intern!(py, "_max_tool_calls"))?.map(|m| m.extract())
        else {
            return Ok(None);
        };
        Ok(Some(Plain {
            now,
            calls,
            tool_calls,
            max_tool_calls,
        }))
    }
}

/// `dict[name]` if it is present and of exactly type `T`.
fn exact<'py, T: pyo3::PyTypeInfo>(
    dict: &Bound<'py, PyDict>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, T>>> {
    Ok(dict
        .get_item(name)?
        .and_then(|v| v.cast_into_exact::<T>().ok()))
}

/// Whether the guard's constraints certainly pass for `arguments` (`None` or a `dict`) after
/// `calls` calls: none at all, or only `forbidden_args` (an exact `list`/`tuple` of exact
/// `str`s, none of them a key of an exact-`dict` `arguments`) and `max_tool_calls` (an exact
/// `int` above `calls`). Anything else, a violation included, is left to the general path.
fn constraints_pass(
    constraints: &Bound<'_, PyDict>,
    arguments: Option<&Bound<'_, PyAny>>,
    calls: i64,
) -> PyResult<bool> {
    if constraints.is_empty() {
        return Ok(true);
    }
    let args = match arguments {
        None => None,
        Some(a) => match a.cast_exact::<PyDict>() {
            Ok(d) => Some(d),
            Err(_) => return Ok(false),
        },
    };
    for (key, value) in constraints.iter() {
        let Ok(key) = key.cast_exact::<PyString>() else {
            return Ok(false);
        };
        match key.to_str() {
            Ok("forbidden_args") => {
                let absent = if let Ok(l) = value.cast_exact::<PyList>() {
                    all_absent(l.iter(), args)?
                } else if let Ok(t) = value.cast_exact::<PyTuple>() {
                    all_absent(t.iter(), args)?
                } else {
                    false
                };
                if !absent {
                    return Ok(false);
                }
            }
            Ok("max_tool_calls") => match value.cast_exact::<PyInt>().map(|m| m.extract::<i64>()) {
                Ok(Ok(max)) if calls < max => {}
                _ => return Ok(false),
            },
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// Whether every name is an exact `str` that is not a key of `args`.
fn all_absent<'py>(
    names: impl Iterator<Item = Bound<'py, PyAny>>,
    args: Option<&Bound<'py, PyDict>>,
) -> PyResult<bool> {
    for name in names {
        if !name.is_exact_instance_of::<PyString>() {
            return Ok(false);
        }
        if let Some(a) = args {
            if a.contains(&name)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

#[pymethods]
impl IntentGate {
    /// The gate of `guard`, whose capsules of class `capsule_type` it records natively.
    #[new]
    fn new(guard: &Bound<'_, PyAny>, capsule_type: Bound<'_, PyType>) -> PyResult<Self> {
        let py = guard.py();
        let lock = guard.getattr("_lock")?;
        Ok(IntentGate {
            guard: guard.clone().unbind(),
            dict: plain_dict(guard, &GUARD_FIELDS)?.map(Bound::unbind),
            lock: lock
                .cast_exact::<AgentLock>()
                .ok()
                .map(|l| l.clone().unbind()),
            capsule_type: capsule_type.unbind(),
            time_time: py.import("time")?.getattr("time")?.unbind(),
        })
    }

    /// `IntentGuard.validate_tool_call`.
    #[pyo3(signature = (tool_name, arguments=None, description=None))]
    fn validate<'py>(
        &self,
        py: Python<'py>,
        tool_name: &Bound<'py, PyAny>,
        arguments: Option<&Bound<'py, PyAny>>,
        description: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let (Some(dict), Some(lock), None, Ok(name)) = (
            &self.dict,
            &self.lock,
            description,
            tool_name.cast_exact::<PyString>(),
        ) {
            if arguments.map_or(true, |a| a.is_instance_of::<PyDict>()) {
                let lock = lock.get();
                lock.enter(py, None)?;
                let held = NativeHeld(lock);
                let done = self.validate_locked(py, dict.bind(py), name, arguments);
                drop(held);
                if done? {
                    return Ok(PyBool::new(py, true).to_owned().into_any());
                }
            }
        }
        let none = py.None().into_bound(py);
        self.guard.bind(py).call_method1(
            intern!(py, "_validate_tool_call"),
            (
                tool_name,
                arguments.unwrap_or(&none),
                description.unwrap_or(&none),
            ),
        )
    }

    fn __repr__(&self) -> String {
        "IntentGate()".to_owned()
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.guard)?;
        visit.call(&self.dict)?;
        visit.call(&self.lock)?;
        visit.call(&self.capsule_type)?;
        visit.call(&self.time_time)?;
        Ok(())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<IntentGate>()
}
