//! `proxilion._core.GcraLimiter`: the keyed GCRA engine behind the token-bucket rate limiters.
//!
//! One native call per check: the key is read straight from the `str` object, the clock is
//! read in Rust (or taken from `now`, or from an injected Python clock), and the decision is a
//! compare-and-swap on the key's `AtomicU64`. The GIL is kept: a check costs far less than
//! releasing and re-acquiring it.

use std::time::Instant;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyFloat;

use proxilion_core::limit::{Gcra, KeyedGcra, LimitError, MAX_NS};

fn value_error(e: LimitError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn positive(v: i64, what: &str) -> PyResult<u64> {
    if v <= 0 {
        Err(PyValueError::new_err(format!(
            "{what} must be greater than 0"
        )))
    } else {
        Ok(v as u64)
    }
}

fn key_str<'a>(key: &'a Bound<'_, PyAny>) -> PyResult<&'a str> {
    crate::convert::str_arg(key, "key")
}

/// Keyed GCRA token buckets with a bounded, sharded key table (see `rust/core/src/limit`).
#[pyclass(frozen, module = "proxilion._core")]
pub struct GcraLimiter {
    table: KeyedGcra,
    clock: Option<Py<PyAny>>,
    base: Instant,
}

impl GcraLimiter {
    fn seconds_to_ns(py: Python<'_>, now: f64) -> PyResult<u64> {
        let ns = (now * 1e9).floor();
        if ns.is_finite() && (0.0..=MAX_NS as f64).contains(&ns) {
            Ok(ns as u64)
        } else {
            Err(PyValueError::new_err(format!(
                "now must be a finite, non-negative number of seconds below 2**62 ns, got {}",
                PyFloat::new(py, now).repr()?
            )))
        }
    }

    fn now_ns(&self, py: Python<'_>, now: Option<f64>) -> PyResult<u64> {
        if let Some(t) = now {
            return Self::seconds_to_ns(py, t);
        }
        match &self.clock {
            None => Ok(self.base.elapsed().as_nanos().min(MAX_NS as u128) as u64),
            Some(clock) => {
                let v = clock.call0(py)?;
                let t: f64 = v.extract(py).map_err(|_| {
                    let name = v
                        .bind(py)
                        .get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default();
                    PyTypeError::new_err(format!(
                        "clock must return a number of seconds, not {name}"
                    ))
                })?;
                Self::seconds_to_ns(py, t)
            }
        }
    }

    fn table_full(py: Python<'_>, key: &str, max_keys: usize, retry_ns: u64) -> PyErr {
        let build = || -> PyResult<PyErr> {
            let cls = py
                .import("proxilion._limit_errors")?
                .getattr("KeyTableFullError")?;
            let exc = cls.call1((max_keys, key, retry_ns as f64 / 1e9))?;
            Ok(PyErr::from_value(exc))
        };
        build().unwrap_or_else(|e| e)
    }
}

#[pymethods]
impl GcraLimiter {
    /// `capacity` tokens per bucket, one token refilled every `interval_ns` nanoseconds, at most
    /// `max_keys` keys; `clock` (seconds, monotonic) defaults to a native monotonic clock.
    #[new]
    #[pyo3(signature = (capacity, interval_ns, max_keys = 1_000_000, clock = None))]
    fn new(
        py: Python<'_>,
        capacity: i64,
        interval_ns: i64,
        max_keys: i64,
        clock: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let capacity = positive(capacity, "capacity")?;
        let interval_ns = positive(interval_ns, "interval_ns")?;
        let max_keys = positive(max_keys, "max_keys")?;
        if let Some(c) = &clock {
            if !c.bind(py).is_callable() {
                return Err(PyTypeError::new_err(format!(
                    "clock must be callable, not {}",
                    c.bind(py).get_type().name()?
                )));
            }
        }
        let gcra = Gcra::new(capacity, interval_ns).map_err(value_error)?;
        let table = KeyedGcra::new(gcra, usize::try_from(max_keys).unwrap_or(usize::MAX))
            .map_err(value_error)?;
        Ok(Self {
            table,
            clock,
            base: Instant::now(),
        })
    }

    /// Tokens per bucket.
    #[getter]
    fn capacity(&self) -> u64 {
        self.table.gcra().capacity()
    }

    /// Nanoseconds to refill one token.
    #[getter]
    fn interval_ns(&self) -> u64 {
        self.table.gcra().interval_ns()
    }

    /// The key cap.
    #[getter]
    fn max_keys(&self) -> usize {
        self.table.max_keys()
    }

    /// Take `cost` tokens from `key`'s bucket if it has them; returns whether it did.
    #[pyo3(signature = (key, cost = 1, now = None))]
    fn acquire(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        cost: i64,
        now: Option<f64>,
    ) -> PyResult<bool> {
        let k = key_str(key)?;
        let cost = positive(cost, "cost")?;
        let now = self.now_ns(py, now)?;
        match self.table.acquire(k, cost, now) {
            Ok(b) => Ok(b),
            Err(LimitError::KeyTableFull {
                max_keys,
                retry_after_ns,
            }) => Err(Self::table_full(py, k, max_keys, retry_after_ns)),
            Err(e) => Err(value_error(e)),
        }
    }

    /// Whole tokens left in `key`'s bucket (never creates an entry).
    #[pyo3(signature = (key, now = None))]
    fn remaining(&self, py: Python<'_>, key: &Bound<'_, PyAny>, now: Option<f64>) -> PyResult<u64> {
        let k = key_str(key)?;
        let now = self.now_ns(py, now)?;
        Ok(self.table.remaining(k, now))
    }

    /// Seconds until `cost` tokens are available: 0.0 if now, `inf` if never (cost > capacity).
    #[pyo3(signature = (key, cost = 1, now = None))]
    fn retry_after(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        cost: i64,
        now: Option<f64>,
    ) -> PyResult<f64> {
        let k = key_str(key)?;
        let cost = positive(cost, "cost")?;
        let now = self.now_ns(py, now)?;
        Ok(match self.table.retry_after_ns(k, cost, now) {
            Some(ns) => ns as f64 / 1e9,
            None => f64::INFINITY,
        })
    }

    /// Give back `cost` tokens taken earlier from `key`.
    #[pyo3(signature = (key, cost = 1))]
    fn refund(&self, key: &Bound<'_, PyAny>, cost: i64) -> PyResult<()> {
        let k = key_str(key)?;
        let cost = positive(cost, "cost")?;
        self.table.refund(k, cost);
        Ok(())
    }

    /// Forget `key` (its bucket is full again); returns whether it was stored.
    fn reset(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.table.reset(key_str(key)?))
    }

    /// Forget every key.
    fn reset_all(&self) {
        self.table.reset_all();
    }

    /// Remove every bucket that is full (no observable change); returns how many.
    #[pyo3(signature = (now = None))]
    fn evict(&self, py: Python<'_>, now: Option<f64>) -> PyResult<usize> {
        let now = self.now_ns(py, now)?;
        Ok(self.table.evict(now))
    }

    fn __len__(&self) -> usize {
        self.table.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "GcraLimiter(capacity={}, interval_ns={}, max_keys={}, keys={})",
            self.table.gcra().capacity(),
            self.table.gcra().interval_ns(),
            self.table.max_keys(),
            self.table.len()
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<GcraLimiter>()?;
    Ok(())
}
