//! Behavioural-drift statistics: Welford and EWMA accumulators, bounded windows, learned
//! profiles (tool mix, hour of day, argument features) and the per-agent drift engine.
//!
//! Everything here is O(1) per recorded sample and bounded in memory; a drift check costs
//! O(number of metrics), independent of how many calls were recorded.

pub mod engine;
pub mod ewma;
pub mod hash;
pub mod model;
pub mod welford;
pub mod window;

pub use engine::{
    Baseline, BaselineStatus, Config, Engine, EngineState, MetricCheck, METRIC_NAMES, N_METRICS,
};
pub use ewma::Ewma;
pub use model::{ArgValue, CallArgs};
pub use welford::Welford;

/// Errors of the statistics layer (bindings map both to `ValueError`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsError {
    /// A bad argument (message names it).
    BadArgument(String),
    /// A saved state that no engine could have produced.
    BadState(String),
}

impl StatsError {
    /// The message without the "invalid drift state" prefix.
    pub fn message(&self) -> &str {
        match self {
            StatsError::BadArgument(m) | StatsError::BadState(m) => m,
        }
    }
}

impl std::fmt::Display for StatsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatsError::BadArgument(m) => f.write_str(m),
            StatsError::BadState(m) => write!(f, "invalid drift state: {m}"),
        }
    }
}

impl std::error::Error for StatsError {}
