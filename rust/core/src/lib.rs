//! Hot-path logic of proxilion, free of any Python binding.
//!
//! Each module owns one kind of loop over bytes, hashes, counters or clocks; the
//! `proxilion-python` crate wraps them for Python. Keeping this crate PyO3-free means
//! `cargo test`, fuzzing and criterion benches run on it directly.
//!
//! Areas (see DESIGN.md):
//! - [`mac`]: HMAC-SHA256 / keyed BLAKE3 tags with constant-time verification.
//! - [`sign`]: keyed batch signing/verification, memory-context walk, Python text forms.
//! - [`scan`]: multi-pattern injection scanning (input/output guards).
//! - [`chain`]: canonical audit-entry bytes, hash chains, Merkle proofs.
//! - [`limit`]: lock-free GCRA token buckets in a bounded, sharded key table.
//! - [`stats`]: Welford / EWMA accumulators and z-scores.

#![forbid(unsafe_code)]

/// Agent-message and intent-capsule text forms (UUIDs, reprs, ISO times, intent keywords).
pub mod agent;
pub mod chain;
pub mod limit;
pub mod mac;
pub mod scan;
pub mod sign;
/// Welford / EWMA accumulators, bounded windows and the behavioural-drift engine.
pub mod stats;

/// Version of this crate, reported by `proxilion._core.build_info()`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
