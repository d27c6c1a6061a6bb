//! Rate limiting: lock-free GCRA token buckets in a bounded, sharded key table.
//!
//! * [`gcra`]: the decision rule on one theoretical-arrival time (integer nanoseconds).
//! * [`table`]: [`KeyedGcra`], one `AtomicU64` per key updated by compare-and-swap, with
//!   eviction of idle (full) buckets and a hard key cap that fails closed.
//!
//! Clocks are never read here: every operation takes `now` in nanoseconds from the caller, so
//! tests inject time and never sleep.

pub mod gcra;
pub mod table;

pub use gcra::{Decision, Gcra, MAX_NS};
pub use table::{KeyedGcra, INLINE_KEY_MAX};

/// Errors of the rate-limit engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
    /// `capacity` is 0.
    Capacity,
    /// `interval_ns` is 0.
    Interval,
    /// `max_keys` is 0.
    MaxKeys,
    /// `capacity * interval_ns` exceeds [`MAX_NS`].
    BurstTooLarge { capacity: u64, interval_ns: u64 },
    /// A new key arrived while the table holds `max_keys` buckets that are all still refilling;
    /// the earliest frees up in `retry_after_ns`.
    KeyTableFull {
        max_keys: usize,
        retry_after_ns: u64,
    },
}

impl std::fmt::Display for LimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitError::Capacity => write!(f, "capacity must be greater than 0"),
            LimitError::Interval => write!(f, "interval_ns must be greater than 0"),
            LimitError::MaxKeys => write!(f, "max_keys must be greater than 0"),
            LimitError::BurstTooLarge {
                capacity,
                interval_ns,
            } => write!(
                f,
                "capacity * interval_ns must be at most 2**62 ns (about 146 years), got \
                 capacity={capacity}, interval_ns={interval_ns}"
            ),
            LimitError::KeyTableFull { max_keys, .. } => write!(
                f,
                "rate limiter key table is full ({max_keys} keys still refilling); new key refused"
            ),
        }
    }
}

impl std::error::Error for LimitError {}
