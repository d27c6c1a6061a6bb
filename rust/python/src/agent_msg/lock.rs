//! `AgentLock`: the reentrant lock of an `AgentTrustManager` on the native backend.
//!
//! It behaves as `threading.RLock` for the manager's Python code (`with lock:`, `acquire`,
//! `release`), and the native message paths take and release it with a few struct
//! operations instead of two Python calls. One lock serialises both, so the replay set, the
//! replay floor and their eviction are only ever changed by one thread at a time.
//!
//! A thread that must wait releases the GIL and wakes every few milliseconds to let Python
//! handle signals (a `KeyboardInterrupt` interrupts the wait, as with `RLock`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyOverflowError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// Identifiers of threads (never 0), handed out on first use.
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static THREAD: u64 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

fn me() -> u64 {
    THREAD.with(|t| *t)
}

#[derive(Default)]
struct State {
    /// The owning thread, 0 when free.
    owner: u64,
    /// How many times the owner holds it.
    count: u64,
    /// Threads waiting for it (a release wakes one only if there is one: a wake-up is a
    /// system call).
    waiters: u64,
}

/// A reentrant lock (see the module doc).
#[pyclass(frozen, module = "proxilion._core", name = "AgentLock")]
#[derive(Default)]
pub struct AgentLock {
    state: Mutex<State>,
    freed: Condvar,
}

/// How long a waiting thread sleeps between signal checks.
const SLICE: Duration = Duration::from_millis(20);

impl AgentLock {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state holds no invariant a panic could break between its two plain writes.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take the lock without waiting: whether it was free or already ours.
    pub(crate) fn try_enter(&self) -> bool {
        let me = me();
        let mut s = self.state();
        if s.owner == 0 || s.owner == me {
            s.owner = me;
            s.count += 1;
            true
        } else {
            false
        }
    }

    /// Take the lock, waiting (GIL released) up to `timeout` (`None`: for ever).
    pub(crate) fn enter(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<bool> {
        if self.try_enter() {
            return Ok(true);
        }
        let me = me();
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let slice = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    left.min(SLICE)
                }
                None => SLICE,
            };
            let got = py.detach(|| {
                let mut s = self.state();
                s.waiters += 1;
                let (mut s, _) = self
                    .freed
                    .wait_timeout_while(s, slice, |s| s.owner != 0 && s.owner != me)
                    .unwrap_or_else(|e| e.into_inner());
                s.waiters -= 1;
                if s.owner == 0 || s.owner == me {
                    s.owner = me;
                    s.count += 1;
                    true
                } else {
                    false
                }
            });
            if got {
                return Ok(true);
            }
            py.check_signals()?;
        }
    }

    /// Release one hold; an error if this thread does not hold the lock.
    pub(crate) fn exit(&self) -> PyResult<()> {
        let mut s = self.state();
        if s.owner != me() || s.count == 0 {
            return Err(PyRuntimeError::new_err("cannot release un-acquired lock"));
        }
        s.count -= 1;
        if s.count == 0 {
            s.owner = 0;
            let waiting = s.waiters > 0;
            drop(s);
            if waiting {
                self.freed.notify_one();
            }
        }
        Ok(())
    }
}

#[pymethods]
impl AgentLock {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// As `RLock.acquire`: wait for the lock (at most `timeout` seconds if given), or only
    /// try with `blocking=False`; returns whether it is now held.
    #[pyo3(signature = (blocking=true, timeout=-1.0))]
    fn acquire(&self, py: Python<'_>, blocking: bool, timeout: f64) -> PyResult<bool> {
        if !blocking {
            if timeout != -1.0 {
                return Err(PyValueError::new_err(
                    "can't specify a timeout for a non-blocking call",
                ));
            }
            return Ok(self.try_enter());
        }
        if timeout == -1.0 {
            return self.enter(py, None);
        }
        if timeout.is_nan() || timeout < 0.0 {
            return Err(PyValueError::new_err(
                "timeout value must be a non-negative number",
            ));
        }
        let t = Duration::try_from_secs_f64(timeout)
            .map_err(|_| PyOverflowError::new_err("timeout value is too large"))?;
        self.enter(py, Some(t))
    }

    /// As `RLock.release`.
    fn release(&self) -> PyResult<()> {
        self.exit()
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        self.enter(py, None)
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.exit()?;
        Ok(false)
    }

    /// Whether the calling thread holds the lock (as `RLock._is_owned`).
    fn _is_owned(&self) -> bool {
        let s = self.state();
        s.owner == me() && s.count > 0
    }

    fn __repr__(&self) -> String {
        let s = self.state();
        let state = if s.owner == 0 { "unlocked" } else { "locked" };
        format!("<AgentLock {state} count={}>", s.count)
    }
}
