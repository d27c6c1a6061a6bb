//! The per-agent drift engine: metric accumulators, learned profiles, baseline and check.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

use super::ewma::Ewma;
use super::hash::{FastState, IdState};
use super::model::{
    keyset_fingerprint, surprise_bits, ArgScores, CallArgs, Categorical, KeyModel, ToolModel,
    ALPHA, MAX_ARG_KEYS, MAX_CATEGORIES, MAX_KEYS, MAX_KEYSETS, MAX_TOOLS, N_KINDS,
};
use super::welford::{z_score, Welford};
use super::window::{NameWindow, SampleRing, TimeWindow};
use super::StatsError;

/// Number of metrics.
pub const N_METRICS: usize = 17;

/// Metric names, by index (the values of `DriftMetric`; the first ten are the original SDK's).
pub const METRIC_NAMES: [&str; N_METRICS] = [
    "tool_call_rate",
    "response_length",
    "error_rate",
    "unique_tools",
    "latency",
    "token_usage",
    "tool_repetition",
    "scope_violations",
    "context_size",
    "custom",
    "tool_mix",
    "tool_surprise",
    "time_of_day",
    "tool_latency",
    "argument_size",
    "argument_keys",
    "argument_values",
];

/// Metric indices.
pub mod metric {
    /// Events in the last 60 s.
    pub const TOOL_CALL_RATE: usize = 0;
    /// Length of a response's content.
    pub const RESPONSE_LENGTH: usize = 1;
    /// Errors in the last 60 s (plus the current one).
    pub const ERROR_RATE: usize = 2;
    /// Distinct names among the last 100 tool names.
    pub const UNIQUE_TOOLS: usize = 3;
    /// Tool latency in ms.
    pub const LATENCY: usize = 4;
    /// Tokens of a response.
    pub const TOKEN_USAGE: usize = 5;
    /// Adjacent equal pairs among the last 100 tool names.
    pub const TOOL_REPETITION: usize = 6;
    /// Scope violations (1.0 each).
    pub const SCOPE_VIOLATIONS: usize = 7;
    /// Context size.
    pub const CONTEXT_SIZE: usize = 8;
    /// Caller-defined.
    pub const CUSTOM: usize = 9;
    /// Chi-square divergence of the last 100 tools from the baseline tool mix.
    pub const TOOL_MIX: usize = 10;
    /// Surprise of the tool under the baseline tool mix (bits).
    pub const TOOL_SURPRISE: usize = 11;
    /// Surprise of the call's hour under the baseline hour-of-day profile (bits).
    pub const TIME_OF_DAY: usize = 12;
    /// Latency standardised against the tool's baseline latencies (log scale).
    pub const TOOL_LATENCY: usize = 13;
    /// Argument size standardised against the tool's baseline sizes.
    pub const ARGUMENT_SIZE: usize = 14;
    /// Surprise of the argument key set under the tool's baseline key sets (bits).
    pub const ARGUMENT_KEYS: usize = 15;
    /// Largest per-key anomaly score of the argument values against the tool's baseline.
    pub const ARGUMENT_VALUES: usize = 16;
}

/// Metrics whose per-call sample is a sliding-window statistic (so consecutive samples are
/// correlated): their scale accounts for that (see [`Engine::lock`]).
pub const WINDOWED: [bool; N_METRICS] = [
    true, false, true, true, false, false, true, false, false, false, true, false, false, false,
    false, false, false,
];

/// Absolute lower bound of each metric's scale, in the metric's unit (count metrics: half a
/// unit; `tool_mix`: 1; surprise metrics: one bit; standardised per-tool metrics: half a
/// standard deviation; `latency`: 1 ms; `response_length`, `token_usage`, `context_size`: 1;
/// `custom`: none, its unit is unknown).
pub const SCALE_FLOORS: [f64; N_METRICS] = [
    0.5, 1.0, 0.5, 0.5, 1.0, 1.0, 0.5, 0.5, 1.0, 0.0, 1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 0.5,
];

/// Relative lower bound of the scale of the original's value metrics (`response_length`,
/// `latency`, `token_usage`, `scope_violations`, `context_size`, `custom`), as a fraction of
/// the baseline's |mean|: a baseline whose samples were all (nearly) equal would otherwise
/// have a zero (or rounding-noise) deviation and turn the smallest measurement noise into an
/// absurd z-score. At a threshold of 3, a window mean within 30 % of a perfectly constant
/// baseline is not drift; three times the baseline is (z = 20).
pub const RELATIVE_FLOOR: f64 = 0.1;

/// Metrics whose scale has the [`RELATIVE_FLOOR`].
pub const RELATIVE_FLOORED: [bool; N_METRICS] = [
    false, true, false, false, true, true, false, true, true, true, false, false, false, false,
    false, false, false,
];

/// A metric still learning after the lock (see [`Engine::lock`]) does not learn a sample
/// farther than this many effective deviations from the mean it has learned (the sample still
/// counts toward its joining the baseline), so behaviour that starts right after the lock
/// cannot widen the baseline it is then judged against.
pub const LEARN_GATE: f64 = 4.0;

/// Samples a metric must have learned before the [`LEARN_GATE`] applies to it:
/// `max(2, ceil(min_baseline_samples / 2))` (fewer give no usable deviation).
pub fn gate_min(cfg: &Config) -> u64 {
    cfg.min_baseline_samples.div_ceil(2).max(2)
}

/// Full-window samples a sliding-window metric must have seen (learned or rejected) before
/// it is baselined, when its consecutive samples overlap (see [`join_min`]).
pub const WINDOW_JOIN: u64 = 100;

/// Sliding-window metrics over the last [`NAME_CAPACITY`] names that learn one sample per
/// [`NAME_CAPACITY`] names, so that the windows they learn do not overlap (the spread of
/// consecutive, almost identical windows underestimates the true one).
pub const DECIMATED: [bool; N_METRICS] = [
    false, false, false, true, false, false, true, false, false, false, false, false, false, false,
    false, false, false,
];

/// Samples metric `m` needs before it is baselined: `min_baseline_samples`, and at least
/// [`WINDOW_JOIN`] for a sliding-window metric whose samples overlap (not [`DECIMATED`]).
pub fn join_min(m: usize, cfg: &Config) -> u64 {
    if WINDOWED[m] && !DECIMATED[m] {
        cfg.min_baseline_samples.max(WINDOW_JOIN)
    } else {
        cfg.min_baseline_samples
    }
}

/// [`gate_min`] of metric `m` (from [`join_min`]).
fn metric_gate_min(m: usize, cfg: &Config) -> u64 {
    join_min(m, cfg).div_ceil(2).max(2)
}

/// Metrics (the original ten and `tool_mix`) whose scale is also at least the largest
/// distance between the baseline mean and a window mean seen while learning, divided by
/// [`ENVELOPE_DIVISOR`]: at a threshold of 3, a window must be twice as far out as any the
/// agent produced while learning to drift. (The other new metrics are scored against
/// profiles still being learned, so their early windows are not representative.)
pub const ENVELOPED: [bool; N_METRICS] = [
    true, true, true, true, true, true, true, true, true, true, true, false, false, false, false,
    false, false,
];

/// See [`ENVELOPED`].
pub const ENVELOPE_DIVISOR: f64 = 1.5;

/// Anomaly-score metrics (`tool_mix`, `tool_surprise`, `time_of_day`, `argument_keys`,
/// `argument_values`: a higher sample is a more unusual call) whose z-score is one-sided:
/// a window less unusual than the baseline scores 0, not a negative z. While learning, each
/// call is scored against the profile learned before it, so the baseline's own scores are
/// inflated by the calls that were new then; scores after it are lower by construction, and
/// an agent behaving *more* typically is not drift.
pub const ONE_SIDED: [bool; N_METRICS] = [
    false, false, false, false, false, false, false, false, false, false, true, true, true, false,
    false, true, true,
];

/// Metrics evaluated per tool: each tool has its own baseline and current window for them,
/// and a check reports the tool whose window deviates most. (Their pooled accumulators over
/// every tool are kept too, for `BaselineStats` and the current values.)
pub const PER_TOOL: [usize; 4] = [
    metric::TOOL_LATENCY,
    metric::ARGUMENT_SIZE,
    metric::ARGUMENT_KEYS,
    metric::ARGUMENT_VALUES,
];

/// Metrics that [`Engine::record_value`] accepts.
pub const VALUE_METRICS: [usize; 6] = [
    metric::RESPONSE_LENGTH,
    metric::LATENCY,
    metric::TOKEN_USAGE,
    metric::SCOPE_VIOLATIONS,
    metric::CONTEXT_SIZE,
    metric::CUSTOM,
];

/// Horizon of the rate metrics, in seconds.
pub const RATE_HORIZON: f64 = 60.0;
/// Event times kept for the call rate.
pub const EVENT_CAPACITY: usize = 1000;
/// Tool names kept for the unique-tools, repetition and tool-mix metrics.
pub const NAME_CAPACITY: usize = 100;
/// While learning, the reference mix of `tool_mix` is refreshed every this many calls (and
/// frozen at the lock); its samples start once it is based on at least `NAME_CAPACITY` calls.
pub const MIX_REFRESH: u64 = 100;

/// Hour of day (0..=23, UTC) of a wall-clock time in seconds since the epoch.
#[inline]
pub fn hour_of(wall: f64) -> usize {
    ((day_seconds(wall) / 3600.0).floor() as usize).min(23)
}

/// `wall.rem_euclid(86400.0)` (Python's `wall % 86400.0`), without the cost of `fmod` for
/// the wall-clock times of this era.
///
/// For `2^17 <= wall < 2^52`, `d * 86400` (`d` the floor of the quotient) is an exact integer
/// and `wall - d * 86400` is exact: both are multiples of `ulp(wall) >= 2^-35` and the
/// difference is below 2^18 in magnitude, so it fits the 53-bit significand. It is the true
/// remainder, or off by one period when the quotient rounded across an integer; adding or
/// subtracting the period then gives the true remainder, which is representable, so exactly.
/// `fmod` is exact too: the results are bit-identical. Other values take `rem_euclid`.
#[inline]
pub fn day_seconds(wall: f64) -> f64 {
    const DAY: f64 = 86400.0;
    if !(131_072.0..4_503_599_627_370_496.0).contains(&wall) {
        return wall.rem_euclid(DAY);
    }
    let r = wall - (wall / DAY).floor() * DAY;
    if r < 0.0 {
        r + DAY
    } else if r >= DAY {
        r - DAY
    } else {
        r
    }
}

/// Configuration of an engine (the original monitor's window parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Samples kept per metric (percentiles) and capacity of the error-time window.
    pub baseline_window: usize,
    /// Samples averaged into a metric's current value.
    pub detection_window: usize,
    /// Samples a metric needs to enter the baseline.
    pub min_baseline_samples: u64,
}

impl Config {
    /// Validate: every parameter must be greater than 0.
    pub fn new(
        baseline_window: i64,
        detection_window: i64,
        min_baseline_samples: i64,
    ) -> Result<Self, StatsError> {
        for (name, v) in [
            ("baseline_window", baseline_window),
            ("detection_window", detection_window),
            ("min_baseline_samples", min_baseline_samples),
        ] {
            if v <= 0 {
                return Err(StatsError::BadArgument(format!(
                    "{name} must be greater than 0"
                )));
            }
        }
        Ok(Self {
            baseline_window: baseline_window as usize,
            detection_window: detection_window as usize,
            min_baseline_samples: min_baseline_samples as u64,
        })
    }

    /// Length of the current window: `min(detection_window, baseline_window)`.
    pub fn window(&self) -> usize {
        self.detection_window.min(self.baseline_window)
    }
}

/// A locked baseline of one metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baseline {
    /// Mean of every sample learned.
    pub mean: f64,
    /// Sample standard deviation (n - 1).
    pub std_dev: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Samples learned.
    pub count: u64,
    /// 95th percentile of the last `baseline_window` samples.
    pub p95: f64,
    /// 99th percentile of the last `baseline_window` samples.
    pub p99: f64,
    /// Deviation used for z-scores: `max(std_dev, floor)` (the floors of [`SCALE_FLOORS`] and
    /// [`RELATIVE_FLOOR`]); for windowed metrics at least `sqrt(window) * std(window means)`;
    /// for the original metrics at least the learned envelope over `ENVELOPE_DIVISOR`.
    pub scale: f64,
}

impl Baseline {
    fn validate(&self, m: usize) -> Result<(), StatsError> {
        let vals = [
            self.mean,
            self.std_dev,
            self.min,
            self.max,
            self.p95,
            self.p99,
            self.scale,
        ];
        if vals.iter().any(|v| !v.is_finite())
            || self.std_dev < 0.0
            || self.scale < 0.0
            || self.count == 0
            || self.min > self.max
        {
            return Err(StatsError::BadState(format!(
                "baseline of {} is inconsistent",
                METRIC_NAMES[m]
            )));
        }
        Ok(())
    }
}

/// Where a metric (or a per-tool metric of one tool) stands with respect to the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaselineStatus {
    /// Not baselined yet: its samples are learned (before the lock, every metric; after it,
    /// a metric that had fewer than `min_baseline_samples` samples at the lock, or a tool
    /// first seen after it, until it has that many). A sliding-window metric learns only
    /// samples taken over a full window (see [`Engine`]), so one whose window never fills
    /// stays learning.
    Learning,
    /// Part of the frozen baseline (evaluated by checks).
    Baselined,
    /// No longer produced (kept so that the status strings stay stable): sliding-window
    /// metrics short of samples at the lock now keep learning full-window samples.
    Excluded,
}

impl BaselineStatus {
    /// `"learning"`, `"baselined"` or `"excluded"`.
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineStatus::Learning => "learning",
            BaselineStatus::Baselined => "baselined",
            BaselineStatus::Excluded => "excluded",
        }
    }
}

/// Accumulators of one metric.
#[derive(Clone, Debug)]
pub struct MetricState {
    /// Every sample learned before the lock.
    pub acc: Welford,
    /// Means of the current window, once full, before the lock.
    pub window_means: Welford,
    /// Exponentially smoothed samples (span = the window), never frozen.
    pub ewma: Ewma,
    /// The last `baseline_window` samples; the newest `window` give the current value.
    pub ring: SampleRing,
    /// Locked baseline.
    pub baseline: Option<Baseline>,
    /// Samples seen after the lock but not learned (beyond the [`LEARN_GATE`]) while the
    /// metric was still learning; they count toward its joining the baseline.
    pub rejected: u64,
    /// Consecutive samples taken over a full window, newest last (transient): a sliding-window
    /// metric is checked only when its whole current window holds such samples.
    full_run: usize,
}

impl MetricState {
    fn new(cfg: &Config) -> Self {
        Self::with_capacity(cfg, cfg.baseline_window)
    }

    fn with_capacity(cfg: &Config, capacity: usize) -> Self {
        Self {
            acc: Welford::new(),
            window_means: Welford::new(),
            ewma: Ewma::with_span(cfg.window()),
            ring: SampleRing::new(capacity, cfg.window()),
            baseline: None,
            rejected: 0,
            full_run: 0,
        }
    }

    /// Whether the metric is baselined or learning (`_locked`: the engine's lock; kept for
    /// the signature).
    pub fn status(&self, _m: usize, _locked: bool) -> BaselineStatus {
        if self.baseline.is_some() {
            BaselineStatus::Baselined
        } else {
            BaselineStatus::Learning
        }
    }

    /// Whether a sample `x` is learned: never once baselined; for a sliding-window metric
    /// only when taken over a full window (`full`); then always before the lock, and after it
    /// (still learning) always until it has learned [`gate_min`] samples, then only within
    /// [`LEARN_GATE`] effective deviations of their mean.
    fn learns(
        &self,
        m: usize,
        x: f64,
        cfg: &Config,
        locked: bool,
        pooled: bool,
        full: bool,
    ) -> bool {
        if self.baseline.is_some() {
            return false;
        }
        if WINDOWED[m] && !full {
            return false;
        }
        if !locked {
            return true;
        }
        if self.acc.count() < metric_gate_min(m, cfg) {
            return true;
        }
        (x - self.acc.mean()).abs() <= LEARN_GATE * self.scale(m, cfg, pooled)
    }

    /// Add a sample to the window and, when [`MetricState::learns`] it, to the accumulators
    /// (the window means only when `track_windows`: the metrics whose scale uses them).
    /// After the lock, a learning metric joins the baseline (frozen from then on) once it
    /// has seen `min_baseline_samples` full-window samples, learned or rejected. `full`:
    /// whether a sliding-window sample was taken over a full window (ignored for the
    /// others). Returns whether `x` was learned.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        m: usize,
        x: f64,
        cfg: &Config,
        locked: bool,
        pooled: bool,
        track_windows: bool,
        full: bool,
        sample: bool,
    ) -> bool {
        let learn = self.learns(m, x, cfg, locked, pooled, full && sample);
        self.full_run = if full {
            self.full_run.saturating_add(1)
        } else {
            0
        };
        self.ring.push(x);
        self.ewma.push(x);
        if learn {
            self.acc.push(x);
        }
        let wm_ok = if DECIMATED[m] {
            // Every full window (the last `window` of them full) feeds the window means while
            // learning before the lock; after it only the learned samples do.
            full && self.baseline.is_none() && (learn || !locked)
        } else {
            // A windowed metric's window means start once `window` full-window samples
            // were learned (fullness is monotone, so the current window holds only those).
            learn && (!WINDOWED[m] || self.acc.count() >= cfg.window() as u64)
        };
        if wm_ok && track_windows && self.ring.window_full() {
            if let Some(wm) = self.ring.window_mean() {
                self.window_means.push(wm);
            }
        }
        let seen = (full && sample) || !WINDOWED[m];
        if !learn && locked && self.baseline.is_none() && seen {
            self.rejected += 1;
        }
        if locked && self.baseline.is_none() && self.acc.count() + self.rejected >= join_min(m, cfg)
        {
            self.baseline = Some(self.make_baseline(m, cfg, pooled));
        }
        learn
    }

    /// The deviation z-scores are measured in, from what was learned: the larger of the
    /// standard deviation and [`SCALE_FLOORS`]`[m]` (and, for the value metrics,
    /// [`RELATIVE_FLOOR`] times |mean|); for pooled windowed metrics at least
    /// `sqrt(window) * std(window means)`; for pooled enveloped metrics at least the envelope
    /// over [`ENVELOPE_DIVISOR`].
    fn scale(&self, m: usize, cfg: &Config, pooled: bool) -> f64 {
        let std = self.acc.std_dev();
        let mean = self.acc.mean();
        let mut scale = std.max(SCALE_FLOORS[m]);
        if RELATIVE_FLOORED[m] {
            scale = scale.max(RELATIVE_FLOOR * mean.abs());
        }
        let wm = &self.window_means;
        if pooled && wm.count() >= 2 {
            if WINDOWED[m] {
                scale = scale.max((cfg.window() as f64).sqrt() * wm.std_dev());
            }
            if ENVELOPED[m] {
                let envelope = (wm.max() - mean).max(mean - wm.min());
                scale = scale.max(envelope / ENVELOPE_DIVISOR);
            }
        }
        scale
    }

    /// The baseline of metric `m` from what was learned (the caller checks the count).
    fn make_baseline(&self, m: usize, cfg: &Config, pooled: bool) -> Baseline {
        let p = self.ring.percentiles(&[0.95, 0.99]);
        Baseline {
            mean: self.acc.mean(),
            std_dev: self.acc.std_dev(),
            min: self.acc.min(),
            max: self.acc.max(),
            count: self.acc.count(),
            p95: p[0],
            p99: p[1],
            scale: self.scale(m, cfg, pooled),
        }
    }

    /// The baseline of metric `m` at the lock (None below `min_baseline_samples`).
    fn compute_baseline(&self, m: usize, cfg: &Config, pooled: bool) -> Option<Baseline> {
        if self.acc.count() < join_min(m, cfg) {
            return None;
        }
        Some(self.make_baseline(m, cfg, pooled))
    }

    fn check(&self, m: usize, tool: Option<usize>) -> Option<MetricCheck> {
        let (Some(b), Some(cur)) = (self.baseline, self.ring.window_mean()) else {
            return None;
        };
        if WINDOWED[m] && self.full_run < self.ring.window() {
            return None;
        }
        let mut z = z_score(cur, b.mean, b.scale);
        if ONE_SIDED[m] && z < 0.0 {
            z = 0.0;
        }
        Some(MetricCheck {
            metric: m,
            current: cur,
            z,
            baseline_mean: b.mean,
            scale: b.scale,
            ewma: self.ewma.mean(),
            tool,
        })
    }

    fn snapshot(&self) -> MetricSnapshot {
        let (_, n, mean, var) = self.ewma.to_parts();
        MetricSnapshot {
            acc: self.acc.to_parts(),
            window_means: self.window_means.to_parts(),
            ewma: (n, mean, var),
            samples: self.ring.to_vec(),
            baseline: self.baseline,
            rejected: self.rejected,
        }
    }

    fn restore(
        &mut self,
        snap: &MetricSnapshot,
        m: usize,
        cfg: &Config,
        locked: bool,
        where_: &str,
    ) -> Result<(), StatsError> {
        let bad = |msg: String| StatsError::BadState(format!("{where_}{}: {msg}", METRIC_NAMES[m]));
        let (n, mean, m2, lo, hi) = snap.acc;
        self.acc = Welford::from_parts(n, mean, m2, lo, hi).map_err(|x| bad(x.message().into()))?;
        let (n, mean, m2, lo, hi) = snap.window_means;
        self.window_means =
            Welford::from_parts(n, mean, m2, lo, hi).map_err(|x| bad(x.message().into()))?;
        let (n, mean, var) = snap.ewma;
        self.ewma = Ewma::from_parts(self.ewma.alpha(), n, mean, var)
            .map_err(|x| bad(x.message().into()))?;
        if snap.samples.len() > self.ring.capacity() {
            return Err(bad("more samples than the window holds".into()));
        }
        if snap.samples.iter().any(|v| !v.is_finite()) {
            return Err(bad("samples must be finite".into()));
        }
        self.ring.clear();
        self.ring.extend(&snap.samples);
        if let Some(b) = snap.baseline {
            if !locked {
                return Err(bad("baseline present but not locked".into()));
            }
            b.validate(m)?;
        }
        if snap.rejected > 0 && !locked {
            return Err(bad("rejected samples only exist after the lock".into()));
        }
        if snap.rejected > 0 && self.acc.count() < metric_gate_min(m, cfg) {
            return Err(bad(
                "rejected samples before the learning gate applies".into()
            ));
        }
        let seen = self.acc.count().saturating_add(snap.rejected);
        if locked && snap.baseline.is_none() && seen >= join_min(m, cfg) {
            return Err(bad("enough samples but no baseline".into()));
        }
        self.baseline = snap.baseline;
        self.rejected = snap.rejected;
        Ok(())
    }

    fn merge(&mut self, o: &MetricState) -> Result<(), StatsError> {
        self.acc.merge(&o.acc);
        self.window_means.merge(&o.window_means);
        self.ewma.merge(&o.ewma)?;
        self.ring.extend(&o.ring.to_vec());
        Ok(())
    }
}

/// A tool's learned profile and its per-tool metrics (see [`PER_TOOL`]).
#[derive(Clone, Debug)]
pub struct ToolEntry {
    /// Latency and argument profile.
    pub model: ToolModel,
    /// Accumulators of the `PER_TOOL` metrics for this tool, in that order.
    pub metrics: Vec<MetricState>,
}

impl ToolEntry {
    fn new(cfg: &Config) -> Self {
        Self {
            model: ToolModel::default(),
            metrics: (0..PER_TOOL.len())
                .map(|_| MetricState::with_capacity(cfg, cfg.window()))
                .collect(),
        }
    }
}

/// One metric evaluated by [`Engine::check`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricCheck {
    /// Metric index.
    pub metric: usize,
    /// Mean of the current window.
    pub current: f64,
    /// `(current - baseline.mean) / baseline.scale` (0 or +inf when the scale is 0); at
    /// least 0 for the [`ONE_SIDED`] metrics.
    pub z: f64,
    /// Baseline mean.
    pub baseline_mean: f64,
    /// Baseline scale.
    pub scale: f64,
    /// Exponentially smoothed value.
    pub ewma: f64,
    /// For per-tool metrics, the index (in [`Engine::tool_name`]) of the tool evaluated.
    pub tool: Option<usize>,
}

/// Saved state of one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSnapshot {
    /// `Welford::to_parts` of the learned samples.
    pub acc: (u64, f64, f64, f64, f64),
    /// `Welford::to_parts` of the window means.
    pub window_means: (u64, f64, f64, f64, f64),
    /// `(count, mean, variance)` of the EWMA.
    pub ewma: (u64, f64, f64),
    /// Samples held, oldest first.
    pub samples: Vec<f64>,
    /// Locked baseline.
    pub baseline: Option<Baseline>,
    /// Samples rejected by the [`LEARN_GATE`] while learning after the lock.
    pub rejected: u64,
}

/// Saved profile of one argument key.
#[derive(Clone, Debug, PartialEq)]
pub struct KeySnapshot {
    /// Observations per kind.
    pub kinds: [u64; N_KINDS],
    /// Numbers.
    pub num: (u64, f64, f64, f64, f64),
    /// Lengths.
    pub len: (u64, f64, f64, f64, f64),
    /// Categorical values.
    pub cats: Vec<(String, u64)>,
    /// Categorical overflow count.
    pub cats_other: u64,
}

/// Saved profile of one tool's arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSnapshot {
    /// Calls profiled.
    pub calls: u64,
    /// Latencies.
    pub latency: (u64, f64, f64, f64, f64),
    /// Sizes.
    pub size: (u64, f64, f64, f64, f64),
    /// Key sets with counts.
    pub keysets: Vec<(Vec<String>, u64)>,
    /// Key sets that did not fit.
    pub keyset_other: u64,
    /// Per-key profiles, sorted by key.
    pub keys: Vec<(String, KeySnapshot)>,
    /// The tool's own accumulators of the `PER_TOOL` metrics, in that order.
    pub metrics: Vec<MetricSnapshot>,
}

/// Saved state of an engine (everything but the transient windows of event times and names).
#[derive(Clone, Debug, PartialEq)]
pub struct EngineState {
    /// Configuration.
    pub config: Config,
    /// Whether the baseline is locked.
    pub locked: bool,
    /// Per metric, by index.
    pub metrics: Vec<MetricSnapshot>,
    /// Tool mix, sorted by name.
    pub tools: Vec<(String, u64)>,
    /// Tools beyond the cap.
    pub tools_other: u64,
    /// Calls per hour of day.
    pub hours: [u64; 24],
    /// Per-tool argument profiles, sorted by tool.
    pub models: Vec<(String, ToolSnapshot)>,
}

/// The drift engine of one agent.
///
/// Recording is O(1) per call (amortised), and so is a check (O(number of metrics)),
/// whatever the number of calls recorded. Memory is bounded by constants.
#[derive(Clone, Debug)]
pub struct Engine {
    cfg: Config,
    locked: bool,
    metrics: Vec<MetricState>,
    events: TimeWindow,
    errors: TimeWindow,
    names: NameWindow,
    hasher: RandomState,
    tools: Categorical,
    hours: [u64; 24],
    hours_total: u64,
    models: HashMap<String, ToolEntry, FastState>,
    tool_order: Vec<String>,
    mix_total: u64,
    /// Monotonic time of the first event recorded (transient, like the windows).
    first_event: Option<f64>,
    /// Tool names recorded (transient): the [`DECIMATED`] metrics learn every 100th only.
    names_seen: u64,
}

fn check_finite(name: &str, v: f64) -> Result<(), StatsError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(StatsError::BadArgument(format!(
            "{name} must be a finite number"
        )))
    }
}

impl Engine {
    /// A fresh engine.
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            locked: false,
            metrics: (0..N_METRICS).map(|_| MetricState::new(&cfg)).collect(),
            events: TimeWindow::new(EVENT_CAPACITY, RATE_HORIZON),
            errors: TimeWindow::new(cfg.baseline_window, RATE_HORIZON),
            names: NameWindow::new(NAME_CAPACITY),
            hasher: RandomState::new(),
            tools: Categorical::new(MAX_TOOLS),
            hours: [0; 24],
            hours_total: 0,
            models: HashMap::default(),
            tool_order: Vec::new(),
            mix_total: 0,
            first_event: None,
            names_seen: 0,
        }
    }

    /// Configuration.
    pub fn config(&self) -> Config {
        self.cfg
    }

    /// Whether the baseline is locked.
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// Accumulators of metric `m`.
    pub fn metric(&self, m: usize) -> &MetricState {
        &self.metrics[m]
    }

    #[inline]
    fn push(&mut self, m: usize, x: f64, full: bool) {
        self.push_sample(m, x, full, true);
    }

    /// [`Engine::push`] of a [`DECIMATED`] metric: `full` when the last `window` samples
    /// were taken over full windows, `sample` when this one is learned (every 100th name).
    #[inline]
    fn push_sample(&mut self, m: usize, x: f64, full: bool, sample: bool) {
        let cfg = self.cfg;
        let locked = self.locked;
        self.metrics[m].push(
            m,
            x,
            &cfg,
            locked,
            true,
            WINDOWED[m] || ENVELOPED[m],
            full,
            sample,
        );
    }

    /// Note an event time; returns whether the 60 s rate windows are full at `mono` (at
    /// least [`RATE_HORIZON`] seconds since the first event of any kind this engine saw).
    fn rate_window_full(&mut self, mono: f64) -> bool {
        let first = *self.first_event.get_or_insert(mono);
        mono - first >= RATE_HORIZON
    }

    /// Name of the tool at index `i` of the sorted tool list (see [`MetricCheck::tool`]).
    pub fn tool_name(&self, i: usize) -> Option<&str> {
        self.tool_order.get(i).map(String::as_str)
    }

    fn insert_tool(&mut self, name: &str, entry: ToolEntry) {
        if let Err(pos) = self.tool_order.binary_search_by(|x| x.as_str().cmp(name)) {
            self.tool_order.insert(pos, name.to_owned());
        }
        self.models.insert(name.to_owned(), entry);
    }

    /// 64-bit keyed hash of a name (process-local; used only for transient windows).
    #[inline]
    fn name_hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    /// Fingerprint of a sorted key list under this engine's hasher.
    pub fn keyset_fingerprint<K: AsRef<str>>(&self, keys: &[K]) -> u64 {
        keyset_fingerprint(&self.hasher, keys)
    }

    /// Rebuild the reference mix of `tool_mix` from the tool histogram.
    fn refresh_mix(&mut self) {
        let entries = self.tools.entries();
        let den = self.tools.total() as f64 + ALPHA * (entries.len() as f64 + 1.0);
        let probs: HashMap<u64, f64, IdState> = entries
            .iter()
            .map(|(name, c)| (self.name_hash(name), (*c as f64 + ALPHA) / den))
            .collect();
        let unseen = (self.tools.other() as f64 + ALPHA) / den;
        self.names.set_reference(probs, unseen);
        self.mix_total = self.tools.total();
    }

    fn call(
        &mut self,
        name: &str,
        latency: Option<f64>,
        args: Option<&CallArgs<'_>>,
        mono: f64,
        wall: f64,
        repetition: bool,
    ) -> Result<(), StatsError> {
        check_finite("monotonic time", mono)?;
        check_finite("wall-clock time", wall)?;
        if let Some(l) = latency {
            if !(l.is_finite() && l >= 0.0) {
                return Err(StatsError::BadArgument(
                    "latency_ms must be a finite number >= 0".into(),
                ));
            }
        }
        let h = self.name_hash(name);
        let rate_full = self.rate_window_full(mono);
        self.events.push(mono);
        let rate = self.events.count_recent(mono) as f64;
        self.names.push(h);
        let unique = self.names.unique() as f64;
        let reps = if self.names.len() >= 2 {
            Some(self.names.repetitions() as f64)
        } else {
            None
        };
        let mix = if self.names.is_full() && self.mix_total >= NAME_CAPACITY as u64 {
            Some(self.names.chi_square())
        } else {
            None
        };
        let tool_s = self.tools.surprise(name);
        let hour = hour_of(wall);
        let hour_s = surprise_bits(self.hours[hour], self.hours_total as f64 + ALPHA * 24.0);
        let log_latency = latency.map(|l| (1.0 + l).log2());
        let model = self.models.get(name).map(|e| &e.model);
        let lat_s = match (model, log_latency) {
            (Some(m), Some(l)) => m.latency_score(l),
            _ => None,
        };
        // A tool without a profile gets one (learning from its first call) while there is
        // room, before or after the lock.
        let new_profile = model.is_none() && self.models.len() < MAX_TOOLS;
        let scored: Option<(u64, ArgScores)> = match args {
            Some(a) => {
                let fp = self.keyset_fingerprint(&a.keyset);
                match model {
                    Some(m) => Some((fp, m.score(a, fp))),
                    None if !self.locked || new_profile => {
                        Some((fp, ToolModel::default().score(a, fp)))
                    }
                    None => None,
                }
            }
            None => None,
        };
        self.names_seen += 1;
        // full: the last `window` samples were all taken over full name windows (names are
        // never forgotten); one sample per NAME_CAPACITY names is learned (the windows
        // learned do not overlap).
        let names_full = self.names_seen >= (NAME_CAPACITY + self.cfg.window() - 1) as u64;
        let sample = self.names_seen % NAME_CAPACITY as u64 == 0;
        self.push(metric::TOOL_CALL_RATE, rate, rate_full);
        self.push_sample(metric::UNIQUE_TOOLS, unique, names_full, sample);
        if repetition {
            if let Some(r) = reps {
                self.push_sample(metric::TOOL_REPETITION, r, names_full, sample);
            }
        }
        if let Some(l) = latency {
            self.push(metric::LATENCY, l, true);
        }
        if let Some(x) = mix {
            self.push(metric::TOOL_MIX, x, true);
        }
        self.push(metric::TOOL_SURPRISE, tool_s, true);
        self.push(metric::TIME_OF_DAY, hour_s, true);
        // Per-tool samples, in PER_TOOL order.
        let mut per_tool = [None; 4];
        per_tool[0] = lat_s;
        if let Some((_, s)) = scored {
            per_tool[1] = s.size;
            per_tool[2] = Some(s.keys);
            per_tool[3] = s.values;
        }
        for (k, x) in per_tool.iter().enumerate() {
            if let Some(x) = x {
                self.push(PER_TOOL[k], *x, true);
            }
        }
        let learning = !self.locked;
        if learning {
            self.tools.observe(name);
            self.hours[hour] += 1;
            self.hours_total += 1;
        }
        if new_profile {
            let entry = ToolEntry::new(&self.cfg);
            self.insert_tool(name, entry);
        }
        let cfg = self.cfg;
        let locked = self.locked;
        if let Some(e) = self.models.get_mut(name) {
            // Each part of the profile learns while its metric does (and the sample, if any,
            // passes the metric's learning gate): tool_latency <- latencies, argument_size <-
            // sizes, argument_keys <- key sets, argument_values <- per-key values.
            let mut learn = [false; 4];
            for (k, x) in per_tool.iter().enumerate() {
                let st = &mut e.metrics[k];
                learn[k] = match x {
                    Some(x) => st.push(PER_TOOL[k], *x, &cfg, locked, false, false, true, true),
                    None => st.baseline.is_none(),
                };
            }
            if learn[0] {
                if let Some(l) = log_latency {
                    e.model.latency.push(l);
                }
            }
            if let (Some(a), Some((fp, _))) = (args, scored) {
                if learn[1] {
                    e.model.observe_size(a);
                }
                if learn[2] {
                    e.model.observe_keyset(a, fp);
                }
                if learn[3] {
                    e.model.observe_values(a);
                }
            }
        }
        if learning && self.tools.total() % MIX_REFRESH == 0 {
            self.refresh_mix();
        }
        Ok(())
    }

    /// Record a tool call: rate, unique tools, repetition, latency, tool mix, time of day and
    /// (when `args` is given) the argument metrics.
    pub fn record_tool_call(
        &mut self,
        name: &str,
        latency: Option<f64>,
        args: Option<&CallArgs<'_>>,
        mono: f64,
        wall: f64,
    ) -> Result<(), StatsError> {
        self.call(name, latency, args, mono, wall, true)
    }

    /// Record a `tool_call` event (`record_event`): like a call without latency, arguments or
    /// a repetition sample, as in the original SDK.
    pub fn record_tool_event(
        &mut self,
        name: &str,
        mono: f64,
        wall: f64,
    ) -> Result<(), StatsError> {
        self.call(name, None, None, mono, wall, false)
    }

    /// Add an event time (counted by the call rate).
    pub fn record_event_time(&mut self, mono: f64) -> Result<(), StatsError> {
        check_finite("monotonic time", mono)?;
        self.rate_window_full(mono);
        self.events.push(mono);
        Ok(())
    }

    /// Record an error: the error-rate sample is the number of errors in the last 60 s (at
    /// most `baseline_window`) plus this one.
    pub fn record_error(&mut self, mono: f64) -> Result<(), StatsError> {
        check_finite("monotonic time", mono)?;
        let full = self.rate_window_full(mono);
        let n = self.errors.count_recent(mono);
        self.errors.push(mono);
        self.push(metric::ERROR_RATE, n as f64 + 1.0, full);
        Ok(())
    }

    /// Record a value of one of [`VALUE_METRICS`].
    pub fn record_value(&mut self, m: usize, x: f64) -> Result<(), StatsError> {
        if !VALUE_METRICS.contains(&m) {
            return Err(StatsError::BadArgument(format!(
                "metric {} cannot be recorded directly",
                METRIC_NAMES.get(m).copied().unwrap_or("?")
            )));
        }
        if !x.is_finite() || (m == metric::LATENCY && x < 0.0) {
            return Err(StatsError::BadArgument(format!(
                "{} value must be a finite number{}",
                METRIC_NAMES[m],
                if m == metric::LATENCY { " >= 0" } else { "" }
            )));
        }
        self.push(m, x, true);
        Ok(())
    }

    /// Samples learned per metric.
    pub fn sample_counts(&self) -> [u64; N_METRICS] {
        let mut out = [0; N_METRICS];
        for (o, m) in out.iter_mut().zip(&self.metrics) {
            *o = m.acc.count();
        }
        out
    }

    /// Freeze the tool mix and hour profile and compute the baseline of every metric (and of
    /// every tool's per-tool metrics) with at least `min_baseline_samples` samples; those
    /// baselines are frozen. The others keep learning (see [`BaselineStatus`]) and each
    /// joins, frozen in turn, once it has seen `min_baseline_samples` samples; so does each
    /// tool first seen after the lock. Returns the baselines of the metrics baselined now;
    /// once locked, further calls return the current baselines (the same ones plus any
    /// metric that joined since).
    pub fn lock(&mut self) -> Vec<(usize, Baseline)> {
        if !self.locked {
            self.refresh_mix();
            let cfg = self.cfg;
            for (m, st) in self.metrics.iter_mut().enumerate() {
                st.baseline = st.compute_baseline(m, &cfg, true);
            }
            for e in self.models.values_mut() {
                for (k, st) in e.metrics.iter_mut().enumerate() {
                    st.baseline = st.compute_baseline(PER_TOOL[k], &cfg, false);
                }
            }
            self.locked = true;
        }
        self.baselines()
    }

    /// Status of every metric (by index) and, per profiled tool (sorted by name), of its
    /// per-tool metrics (in [`PER_TOOL`] order).
    #[allow(clippy::type_complexity)]
    pub fn status(
        &self,
    ) -> (
        [BaselineStatus; N_METRICS],
        Vec<(&str, [BaselineStatus; PER_TOOL.len()])>,
    ) {
        let mut pooled = [BaselineStatus::Learning; N_METRICS];
        for (m, (o, st)) in pooled.iter_mut().zip(&self.metrics).enumerate() {
            *o = st.status(m, self.locked);
        }
        let tools = self
            .tool_order
            .iter()
            .filter_map(|name| {
                let e = self.models.get(name)?;
                let mut s = [BaselineStatus::Learning; PER_TOOL.len()];
                for (k, (o, st)) in s.iter_mut().zip(&e.metrics).enumerate() {
                    *o = st.status(PER_TOOL[k], self.locked);
                }
                Some((name.as_str(), s))
            })
            .collect();
        (pooled, tools)
    }

    /// The locked baselines (empty before the lock).
    pub fn baselines(&self) -> Vec<(usize, Baseline)> {
        self.metrics
            .iter()
            .enumerate()
            .filter_map(|(m, st)| st.baseline.map(|b| (m, b)))
            .collect()
    }

    /// Evaluate every baselined metric that has a current value, into `out` (cleared first),
    /// in metric order. A per-tool metric is reported for the tool whose window has the
    /// largest |z| (the first in name order on ties).
    pub fn check_into(&self, out: &mut Vec<MetricCheck>) {
        out.clear();
        let mut best: [Option<MetricCheck>; 4] = [None; 4];
        for (i, name) in self.tool_order.iter().enumerate() {
            let Some(e) = self.models.get(name) else {
                continue;
            };
            for (k, st) in e.metrics.iter().enumerate() {
                if let Some(c) = st.check(PER_TOOL[k], Some(i)) {
                    if best[k].map_or(true, |b| c.z.abs() > b.z.abs()) {
                        best[k] = Some(c);
                    }
                }
            }
        }
        for (m, st) in self.metrics.iter().enumerate() {
            match PER_TOOL.iter().position(|&p| p == m) {
                Some(k) => {
                    if let Some(c) = best[k] {
                        out.push(c);
                    }
                }
                None => {
                    if let Some(c) = st.check(m, None) {
                        out.push(c);
                    }
                }
            }
        }
    }

    /// Evaluate every baselined metric that has a current value.
    pub fn check(&self) -> Vec<MetricCheck> {
        let mut out = Vec::with_capacity(N_METRICS);
        self.check_into(&mut out);
        out
    }

    /// Current value (window mean) of every metric that has samples.
    pub fn current_values(&self) -> Vec<(usize, f64)> {
        self.metrics
            .iter()
            .enumerate()
            .filter_map(|(m, st)| st.ring.window_mean().map(|v| (m, v)))
            .collect()
    }

    /// Fold the learned accumulators and profiles of `other` (a shard of the same agent, same
    /// configuration, neither locked) into `self`. Transient windows are not merged; the other
    /// shard's recent samples are appended after ours.
    pub fn merge(&mut self, other: &Engine) -> Result<(), StatsError> {
        if self.locked || other.locked {
            return Err(StatsError::BadArgument(
                "cannot merge engines once a baseline is locked".into(),
            ));
        }
        if self.cfg != other.cfg {
            return Err(StatsError::BadArgument(
                "cannot merge engines with different configurations".into(),
            ));
        }
        for (a, b) in self.metrics.iter_mut().zip(&other.metrics) {
            a.merge(b)?;
        }
        self.tools.merge(&other.tools);
        for (a, b) in self.hours.iter_mut().zip(other.hours.iter()) {
            *a += b;
        }
        self.hours_total += other.hours_total;
        let hasher = self.hasher.clone();
        let rehash = move |keys: &[String]| keyset_fingerprint(&hasher, keys);
        let mut names: Vec<&String> = other.models.keys().collect();
        names.sort();
        for name in names {
            let oe = &other.models[name];
            if !self.models.contains_key(name.as_str()) {
                if self.models.len() >= MAX_TOOLS {
                    continue;
                }
                let entry = ToolEntry::new(&self.cfg);
                self.insert_tool(name, entry);
            }
            if let Some(e) = self.models.get_mut(name.as_str()) {
                e.model.merge(&oe.model, &rehash);
                for (a, b) in e.metrics.iter_mut().zip(&oe.metrics) {
                    a.merge(b)?;
                }
            }
        }
        self.refresh_mix();
        Ok(())
    }

    /// Snapshot of everything learned (transient windows excluded).
    pub fn to_state(&self) -> EngineState {
        let metrics = self.metrics.iter().map(MetricState::snapshot).collect();
        let mut models: Vec<(String, ToolSnapshot)> = self
            .models
            .iter()
            .map(|(name, e)| {
                let m = &e.model;
                let mut keysets: Vec<(Vec<String>, u64)> = m
                    .keysets
                    .iter()
                    .map(|e| (e.keys.clone(), e.count))
                    .collect();
                keysets.sort();
                let mut keys: Vec<(String, KeySnapshot)> = m
                    .keys
                    .iter()
                    .map(|(k, km)| {
                        (
                            k.clone(),
                            KeySnapshot {
                                kinds: km.kinds,
                                num: km.num.to_parts(),
                                len: km.len.to_parts(),
                                cats: km.cats.entries(),
                                cats_other: km.cats.other(),
                            },
                        )
                    })
                    .collect();
                keys.sort_by(|a, b| a.0.cmp(&b.0));
                (
                    name.clone(),
                    ToolSnapshot {
                        calls: m.calls,
                        latency: m.latency.to_parts(),
                        size: m.size.to_parts(),
                        keysets,
                        keyset_other: m.keyset_other,
                        keys,
                        metrics: e.metrics.iter().map(MetricState::snapshot).collect(),
                    },
                )
            })
            .collect();
        models.sort_by(|a, b| a.0.cmp(&b.0));
        EngineState {
            config: self.cfg,
            locked: self.locked,
            metrics,
            tools: self.tools.entries(),
            tools_other: self.tools.other(),
            hours: self.hours,
            models,
        }
    }

    /// Rebuild an engine from [`Engine::to_state`], validating every field (a state read from
    /// disk is untrusted input).
    pub fn from_state(state: &EngineState) -> Result<Engine, StatsError> {
        let bad = |msg: String| StatsError::BadState(msg);
        let cfg = state.config;
        Config::new(
            cfg.baseline_window as i64,
            cfg.detection_window as i64,
            cfg.min_baseline_samples as i64,
        )
        .map_err(|e| bad(e.message().to_owned()))?;
        if state.metrics.len() != N_METRICS {
            return Err(bad(format!(
                "state must hold {N_METRICS} metrics, got {}",
                state.metrics.len()
            )));
        }
        let mut e = Engine::new(cfg);
        e.locked = state.locked;
        for (m, snap) in state.metrics.iter().enumerate() {
            e.metrics[m].restore(snap, m, &cfg, state.locked, "")?;
        }
        if state.tools.len() > MAX_TOOLS {
            return Err(bad("too many tools in the tool mix".into()));
        }
        e.tools = Categorical::from_parts(MAX_TOOLS, state.tools.clone(), state.tools_other)
            .ok_or_else(|| bad("tool mix is inconsistent".into()))?;
        e.hours = state.hours;
        e.hours_total = state
            .hours
            .iter()
            .try_fold(0u64, |a, &b| a.checked_add(b))
            .ok_or_else(|| bad("hour counts overflow".into()))?;
        if state.models.len() > MAX_TOOLS {
            return Err(bad("too many tool profiles".into()));
        }
        for (tool, ts) in &state.models {
            let mut m = ToolModel::default();
            let (n, mean, m2, lo, hi) = ts.latency;
            m.latency = Welford::from_parts(n, mean, m2, lo, hi)
                .map_err(|x| bad(format!("tool {tool:?} latency: {}", x.message())))?;
            let (n, mean, m2, lo, hi) = ts.size;
            m.size = Welford::from_parts(n, mean, m2, lo, hi)
                .map_err(|x| bad(format!("tool {tool:?} size: {}", x.message())))?;
            if ts.keysets.len() > MAX_KEYSETS || ts.keys.len() > MAX_KEYS {
                return Err(bad(format!("tool {tool:?}: too many key sets or keys")));
            }
            let mut sum = ts.keyset_other;
            for (keys, count) in &ts.keysets {
                let sorted = keys.windows(2).all(|w| w[0] <= w[1]);
                if !sorted || keys.len() > MAX_ARG_KEYS || *count == 0 {
                    return Err(bad(format!("tool {tool:?}: malformed key set")));
                }
                let fp = e.keyset_fingerprint(keys);
                let ks: Vec<&str> = keys.iter().map(String::as_str).collect();
                if m.keysets
                    .iter()
                    .any(|x| x.keys.iter().map(String::as_str).eq(ks.iter().copied()))
                {
                    return Err(bad(format!("tool {tool:?}: duplicate key set")));
                }
                m.push_keyset(fp, keys.clone(), *count);
                sum = sum
                    .checked_add(*count)
                    .ok_or_else(|| bad(format!("tool {tool:?}: counts overflow")))?;
            }
            m.keyset_other = ts.keyset_other;
            if sum != ts.calls {
                return Err(bad(format!(
                    "tool {tool:?}: calls ({}) must equal the key-set counts ({sum})",
                    ts.calls
                )));
            }
            m.calls = ts.calls;
            for (k, ks) in &ts.keys {
                let kerr = |x: StatsError| bad(format!("tool {tool:?} key {k:?}: {}", x.message()));
                let (n, mean, m2, lo, hi) = ks.num;
                let num = Welford::from_parts(n, mean, m2, lo, hi).map_err(kerr)?;
                let (n, mean, m2, lo, hi) = ks.len;
                let len = Welford::from_parts(n, mean, m2, lo, hi).map_err(kerr)?;
                let cats = Categorical::from_parts(MAX_CATEGORIES, ks.cats.clone(), ks.cats_other)
                    .ok_or_else(|| bad(format!("tool {tool:?} key {k:?}: bad categories")))?;
                let km = KeyModel {
                    kinds: ks.kinds,
                    num,
                    len,
                    cats,
                };
                if m.keys.insert(k.clone(), km).is_some() {
                    return Err(bad(format!("tool {tool:?}: duplicate key {k:?}")));
                }
            }
            if ts.metrics.len() != PER_TOOL.len() {
                return Err(bad(format!(
                    "tool {tool:?}: must hold {} per-tool metrics",
                    PER_TOOL.len()
                )));
            }
            let mut entry = ToolEntry::new(&cfg);
            entry.model = m;
            let where_ = format!("tool {tool:?} ");
            for (k, snap) in ts.metrics.iter().enumerate() {
                entry.metrics[k].restore(snap, PER_TOOL[k], &cfg, state.locked, &where_)?;
            }
            if e.models.contains_key(tool.as_str()) {
                return Err(bad(format!("duplicate tool profile {tool:?}")));
            }
            e.insert_tool(tool, entry);
        }
        e.refresh_mix();
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::ArgValue;
    use super::*;

    fn cfg() -> Config {
        Config::new(100, 10, 20).unwrap()
    }

    #[test]
    fn config_rejects_non_positive() {
        assert_eq!(
            Config::new(0, 10, 20).unwrap_err().to_string(),
            "baseline_window must be greater than 0"
        );
        assert_eq!(
            Config::new(1, -1, 20).unwrap_err().to_string(),
            "detection_window must be greater than 0"
        );
        assert_eq!(
            Config::new(1, 1, 0).unwrap_err().to_string(),
            "min_baseline_samples must be greater than 0"
        );
    }

    #[test]
    fn single_sample_gives_empty_baseline() {
        let mut e = Engine::new(cfg());
        e.record_tool_call("send_email", Some(50.0), None, 0.0, 0.0)
            .unwrap();
        assert!(e.lock().is_empty());
        assert!(e.is_locked());
        assert!(e.check().is_empty());
    }

    #[test]
    fn latency_shift_is_detected() {
        let mut e = Engine::new(cfg());
        for i in 0..200 {
            let lat = 50.0 + (i % 7) as f64;
            e.record_tool_call("search", Some(lat), None, i as f64, 1e9 + i as f64)
                .unwrap();
        }
        let b = e.lock();
        let lat = b.iter().find(|(m, _)| *m == metric::LATENCY).unwrap().1;
        assert_eq!(lat.count, 200);
        assert!((lat.mean - 53.0).abs() < 0.05);
        assert!(e.check().iter().all(|c| c.z.abs() < 3.0));
        for i in 200..210 {
            e.record_tool_call("search", Some(500.0), None, i as f64, 1e9 + i as f64)
                .unwrap();
        }
        let c = e.check();
        let lat = c.iter().find(|c| c.metric == metric::LATENCY).unwrap();
        assert_eq!(lat.current, 500.0);
        // std 2 ms is below the relative floor (10 % of 53 ms)
        assert_eq!(lat.scale, 0.1 * lat.baseline_mean);
        assert!(lat.z > 80.0, "{lat:?}");
        // Frozen baseline: counts do not move after the lock.
        assert_eq!(e.sample_counts()[metric::LATENCY], 200);
    }

    #[test]
    fn rejects_bad_values() {
        let mut e = Engine::new(cfg());
        assert!(e
            .record_tool_call("t", Some(f64::NAN), None, 0.0, 0.0)
            .is_err());
        assert!(e.record_tool_call("t", Some(-1.0), None, 0.0, 0.0).is_err());
        assert!(e
            .record_tool_call("t", None, None, f64::INFINITY, 0.0)
            .is_err());
        assert!(e.record_value(metric::TOOL_MIX, 1.0).is_err());
        assert!(e.record_value(metric::CUSTOM, f64::NAN).is_err());
        assert!(e.record_value(metric::CUSTOM, -3.0).is_ok());
        assert!(e.record_error(f64::NAN).is_err());
        assert_eq!(e.sample_counts().iter().sum::<u64>(), 1);
    }

    #[test]
    fn error_rate_counts_last_minute() {
        let mut e = Engine::new(cfg());
        for t in [0.0, 10.0, 20.0, 100.0] {
            e.record_error(t).unwrap();
        }
        assert_eq!(
            e.metric(metric::ERROR_RATE).ring.to_vec(),
            vec![1.0, 2.0, 3.0, 1.0]
        );
    }

    #[test]
    fn hour_of_day() {
        assert_eq!(hour_of(0.0), 0);
        assert_eq!(hour_of(3600.0 * 13.5), 13);
        assert_eq!(hour_of(-1.0), 23);
        assert_eq!(hour_of(86400.0 * 1000.0 + 7200.0), 2);
    }

    fn args<'a>(keys: &[&'a str], vals: &[ArgValue<'a>], size: f64) -> CallArgs<'a> {
        let mut ks = keys.to_vec();
        ks.sort();
        CallArgs {
            log_size: size,
            keyset: ks,
            entries: keys.iter().copied().zip(vals.iter().copied()).collect(),
        }
    }

    #[test]
    fn state_roundtrip_and_merge() {
        let mut a = Engine::new(cfg());
        let mut b = Engine::new(cfg());
        for i in 0..60 {
            let x = args(
                &["table", "limit"],
                &[ArgValue::Text(3.0, Some("sales")), ArgValue::Number(3.3)],
                5.0,
            );
            let e = if i % 2 == 0 { &mut a } else { &mut b };
            e.record_tool_call("db", Some(10.0 + i as f64), Some(&x), i as f64, 4e4)
                .unwrap();
        }
        let s = a.to_state();
        let back = Engine::from_state(&s).unwrap();
        assert_eq!(back.to_state(), s);
        a.merge(&b).unwrap();
        assert_eq!(a.sample_counts()[metric::LATENCY], 60);
        let st = a.to_state();
        assert_eq!(st.models.len(), 1);
        assert_eq!(st.models[0].1.calls, 60);
        assert_eq!(
            st.models[0].1.keysets,
            vec![(vec!["limit".into(), "table".into()], 60)]
        );
        let mut locked = a.clone();
        locked.lock();
        assert!(a.merge(&locked).is_err());
        let other = Engine::new(Config::new(50, 10, 20).unwrap());
        assert!(a.merge(&other).is_err());
    }

    #[test]
    fn from_state_rejects_tampering() {
        let mut e = Engine::new(cfg());
        let x = args(&["q"], &[ArgValue::Number(1.0)], 2.0);
        for i in 0..30 {
            e.record_tool_call("db", None, Some(&x), i as f64, 0.0)
                .unwrap();
        }
        e.lock();
        let good = e.to_state();
        let mut s = good.clone();
        s.metrics.pop();
        assert!(Engine::from_state(&s).is_err());
        let mut s = good.clone();
        s.metrics[metric::TOOL_SURPRISE]
            .baseline
            .as_mut()
            .unwrap()
            .scale = f64::NAN;
        assert!(Engine::from_state(&s).is_err());
        let mut s = good.clone();
        s.models[0].1.calls += 1;
        assert!(Engine::from_state(&s).is_err());
        let mut s = good.clone();
        s.models[0].1.keysets[0].0 = vec!["b".into(), "a".into()];
        assert!(Engine::from_state(&s).is_err());
        let mut s = good.clone();
        s.metrics[4].samples = vec![1.0; 101];
        assert!(Engine::from_state(&s).is_err());
        let mut s = good;
        s.locked = false;
        assert!(Engine::from_state(&s).is_err());
    }

    #[test]
    fn per_tool_metrics_report_the_worst_tool() {
        let mut e = Engine::new(Config::new(100, 10, 20).unwrap());
        for i in 0..200 {
            let t = if i % 2 == 0 { "fast" } else { "slow" };
            let lat = if i % 2 == 0 { 10.0 } else { 500.0 } + (i % 7) as f64;
            e.record_tool_call(t, Some(lat), None, i as f64, 4e4)
                .unwrap();
        }
        e.lock();
        // "slow" keeps its latency; "fast" becomes 20x slower: only "fast" drifts.
        for i in 200..220 {
            let (t, lat) = if i % 2 == 0 {
                ("fast", 200.0)
            } else {
                ("slow", 503.0)
            };
            e.record_tool_call(t, Some(lat), None, i as f64, 4e4)
                .unwrap();
        }
        let c = e.check();
        let tl = c.iter().find(|c| c.metric == metric::TOOL_LATENCY).unwrap();
        assert_eq!(e.tool_name(tl.tool.unwrap()), Some("fast"));
        assert!(tl.z > 3.0, "{tl:?}");
        // The pooled latency barely moves (the two tools average out).
        let lat = c.iter().find(|c| c.metric == metric::LATENCY).unwrap();
        assert!(lat.tool.is_none());
    }

    fn text_args(len: usize) -> CallArgs<'static> {
        let l = (1.0 + len as f64).log2();
        args(
            &["key"],
            &[ArgValue::Text(l, if len <= 32 { Some("k1") } else { None })],
            (1.0 + len as f64 + 8.0).log2(),
        )
    }

    fn status_of(e: &Engine, tool: &str) -> [BaselineStatus; 4] {
        e.status()
            .1
            .into_iter()
            .find(|(t, _)| *t == tool)
            .unwrap()
            .1
    }

    #[test]
    fn per_tool_metrics_short_at_the_lock_keep_learning_then_join() {
        use BaselineStatus::*;
        let mut e = Engine::new(cfg());
        let small = text_args(2);
        for i in 0..20 {
            e.record_tool_call("lookup", Some(0.01), Some(&small), i as f64, 0.0)
                .unwrap();
        }
        let b: Vec<usize> = e.lock().into_iter().map(|(m, _)| m).collect();
        assert!(!b.contains(&metric::ARGUMENT_SIZE) && b.contains(&metric::ARGUMENT_KEYS));
        // sizes are scored from the 3rd call, values from the 2nd, latencies from the 3rd
        assert_eq!(
            status_of(&e, "lookup"),
            [Learning, Learning, Baselined, Learning]
        );
        let (pooled, _) = e.status();
        // 20 calls fill no 100-name window: the windowed metrics keep learning
        assert_eq!(pooled[metric::TOOL_REPETITION], Learning);
        assert_eq!(pooled[metric::TOOL_MIX], Learning);
        assert_eq!(pooled[metric::ARGUMENT_SIZE], Learning);
        assert_eq!(pooled[metric::CUSTOM], Learning);
        assert_eq!(pooled[metric::LATENCY], Baselined);
        // the two missing samples are ordinary: learned, then the metrics join
        for i in 20..22 {
            e.record_tool_call("lookup", Some(0.01), Some(&small), i as f64, 0.0)
                .unwrap();
        }
        assert_eq!(status_of(&e, "lookup"), [Baselined; 4]);
        let entry = &e.models["lookup"];
        assert_eq!(entry.metrics[1].acc.count(), 20);
        assert_eq!(entry.model.size.count(), 22); // the size profile learned with its metric
        assert_eq!(entry.model.calls, 20); // key sets froze at the lock
        let b: Vec<usize> = e.baselines().into_iter().map(|(m, _)| m).collect();
        assert!(b.contains(&metric::ARGUMENT_SIZE) && b.contains(&metric::TOOL_LATENCY));
        assert!(!b.contains(&metric::TOOL_REPETITION));
        // then frozen: nothing more is learned
        let huge = text_args(5000);
        e.record_tool_call("lookup", Some(0.01), Some(&huge), 22.0, 0.0)
            .unwrap();
        assert_eq!(e.models["lookup"].model.size.count(), 22);
        assert_eq!(e.models["lookup"].metrics[1].acc.count(), 20);
    }

    #[test]
    fn drift_right_after_a_partial_lock_is_not_learned() {
        let mut e = Engine::new(cfg());
        let small = text_args(2);
        for i in 0..20 {
            e.record_tool_call("lookup", None, Some(&small), i as f64, 0.0)
                .unwrap();
        }
        e.lock();
        let huge = text_args(5000);
        let mut first = None;
        for i in 20..32 {
            e.record_tool_call("lookup", None, Some(&huge), i as f64, 0.0)
                .unwrap();
            let c = e.check();
            let size = c.iter().find(|c| c.metric == metric::ARGUMENT_SIZE);
            if first.is_none() && size.is_some_and(|c| c.z.abs() > 6.0) {
                first = Some(i - 19);
            }
        }
        // argument_size had 18 samples: the 2 huge ones are seen, not learned, and the
        // metric joins with the 18 ordinary ones at the 2nd call after the lock
        assert_eq!(first, Some(2));
        let st = &e.models["lookup"].metrics[1];
        assert_eq!((st.acc.count(), st.rejected), (18, 2));
        assert_eq!(st.baseline.unwrap().count, 18);
        assert_eq!(e.models["lookup"].model.size.count(), 20);
        // argument_values (19 samples) joined at the 1st call, without learning it
        let st = &e.models["lookup"].metrics[3];
        assert_eq!((st.acc.count(), st.rejected), (19, 1));
        // and the state round-trips, rejected counts included
        let s = e.to_state();
        assert_eq!(Engine::from_state(&s).unwrap().to_state(), s);
    }

    #[test]
    fn a_tool_first_seen_after_the_lock_is_surprising_then_profiled() {
        use BaselineStatus::*;
        let mut e = Engine::new(cfg());
        let small = text_args(2);
        for i in 0..30 {
            e.record_tool_call("lookup", Some(5.0), Some(&small), i as f64, 0.0)
                .unwrap();
        }
        e.lock();
        // tool_surprise flags the switch to it after 6 calls (about 6 bits each: 30 calls of
        // baseline), exactly as when its profile stayed unlearned
        let mut first = None;
        for i in 30..40 {
            e.record_tool_call("delete", Some(5.0), Some(&small), i as f64, 0.0)
                .unwrap();
            let c = e.check();
            let s = c
                .iter()
                .find(|c| c.metric == metric::TOOL_SURPRISE)
                .unwrap();
            if first.is_none() && s.z > 3.0 {
                first = Some(i - 29);
            }
        }
        assert_eq!(first, Some(6));
        assert_eq!(status_of(&e, "delete"), [Learning; 4]);
        for i in 40..60 {
            e.record_tool_call("delete", Some(5.0), Some(&small), i as f64, 0.0)
                .unwrap();
        }
        assert_eq!(status_of(&e, "delete"), [Baselined; 4]);
        assert_eq!(e.models["delete"].model.calls, 20);
        // the global tool mix stays frozen: the new tool is as surprising as on its first call
        assert!(e
            .check()
            .iter()
            .any(|c| c.metric == metric::TOOL_SURPRISE && c.z > 3.0));
    }

    #[test]
    fn constant_baselines_get_a_relative_and_absolute_floor() {
        let mut e = Engine::new(cfg());
        for i in 0..30 {
            e.record_tool_call("t", Some(40.0), None, i as f64, 0.0)
                .unwrap();
        }
        let b = e.lock();
        let lat = b.iter().find(|(m, _)| *m == metric::LATENCY).unwrap().1;
        assert_eq!((lat.std_dev, lat.scale), (0.0, 4.0)); // 10 % of 40 ms
                                                          // +-20 % jitter: no alarm
        for i in 30..60 {
            let l = 40.0 * [0.8, 1.2, 1.0, 1.1, 0.9][i % 5];
            e.record_tool_call("t", Some(l), None, i as f64, 0.0)
                .unwrap();
            assert!(
                e.check().iter().all(|c| c.z.abs() <= 3.0),
                "{:?}",
                e.check()
            );
        }
        // x3: z = 80 / 4 = 20
        for i in 60..70 {
            e.record_tool_call("t", Some(120.0), None, i as f64, 0.0)
                .unwrap();
        }
        let c = e.check();
        let lat = c.iter().find(|c| c.metric == metric::LATENCY).unwrap();
        assert_eq!(lat.z, 20.0);
        // a sub-millisecond constant: the 1 ms floor
        let mut e = Engine::new(cfg());
        for i in 0..30 {
            e.record_value(metric::LATENCY, 0.01).unwrap();
            e.record_value(metric::CUSTOM, 0.0).unwrap();
            let _ = i;
        }
        let b = e.lock();
        let lat = b.iter().find(|(m, _)| *m == metric::LATENCY).unwrap().1;
        assert_eq!(lat.scale, 1.0);
        // custom has no unit: an all-zero baseline keeps the original's rule (z = inf)
        let custom = b.iter().find(|(m, _)| *m == metric::CUSTOM).unwrap().1;
        assert_eq!(custom.scale, 0.0);
        for _ in 0..10 {
            e.record_value(metric::LATENCY, 0.05).unwrap();
        }
        e.record_value(metric::CUSTOM, 1.0).unwrap();
        let c = e.check();
        let lat = c.iter().find(|c| c.metric == metric::LATENCY).unwrap();
        assert!((lat.z - 0.04).abs() < 1e-12, "{lat:?}");
        let custom = c.iter().find(|c| c.metric == metric::CUSTOM).unwrap();
        assert_eq!(custom.z, f64::INFINITY);
    }

    #[test]
    fn from_state_checks_learning_metrics() {
        let mut e = Engine::new(cfg());
        let small = text_args(2);
        for i in 0..20 {
            e.record_tool_call("lookup", None, Some(&small), i as f64, 0.0)
                .unwrap();
        }
        let unlocked = e.to_state();
        let mut s = unlocked.clone();
        s.metrics[metric::LATENCY].rejected = 1;
        assert!(Engine::from_state(&s).is_err());
        e.lock();
        let good = e.to_state();
        assert!(Engine::from_state(&good).is_ok());
        // a learning metric with enough samples must have joined
        let mut s = good.clone();
        s.models[0].1.metrics[1].rejected = 2;
        let err = Engine::from_state(&s).unwrap_err().to_string();
        assert!(err.contains("enough samples but no baseline"), "{err}");
        // no rejections before the learning gate (here: no full-window sample yet)
        let mut s = good;
        s.metrics[metric::TOOL_REPETITION].rejected = 1;
        assert!(Engine::from_state(&s).is_err());
    }

    #[test]
    fn tool_mix_starts_after_a_full_window_and_reference() {
        let mut e = Engine::new(Config::new(100, 10, 20).unwrap());
        for i in 0..199u32 {
            let t = ["a", "b", "c", "d"][(i % 4) as usize];
            e.record_tool_call(t, None, None, i as f64, 0.0).unwrap();
        }
        // reference built at call 100, window full from call 100: samples from call 101 on
        assert_eq!(e.sample_counts()[metric::TOOL_MIX], 99);
        let last = *e.metric(metric::TOOL_MIX).ring.to_vec().last().unwrap();
        assert!(
            last < 1.0,
            "a steady round-robin matches its reference: {last}"
        );
        for i in 199..260 {
            e.record_tool_call("a", None, None, i as f64, 0.0).unwrap();
        }
        let last = *e.metric(metric::TOOL_MIX).ring.to_vec().last().unwrap();
        assert!(last > 50.0, "{last}");
    }

    #[test]
    fn day_seconds_is_rem_euclid() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut values = vec![
            0.0,
            -0.0,
            1e-300,
            -1e-300,
            86400.0,
            -86400.0,
            86_399.999_999_999_99,
            -86_399.999_999_999_99,
            1.7e9,
            -1.7e9,
            4.5e15,
            -4.5e15,
            1e300,
            -1e300,
        ];
        for k in [1.0, 2.0, 3.0, 19_000.0, 20_000.0, 52_000_000.0] {
            let b: f64 = k * 86400.0;
            for v in [b, -b] {
                values.extend([v, v.next_up(), v.next_down()]);
            }
        }
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if f.is_finite() {
                values.push(f);
            }
            values.push((x % 4_000_000_000_000) as f64 / 1000.0 - 2e9);
            values.push((x % 1_000_000_000_000) as f64 / 3.0);
        }
        for v in values {
            // Equal values (a zero may differ in sign only), so equal hours.
            assert_eq!(day_seconds(v), v.rem_euclid(86400.0), "{v:e}");
            assert_eq!(
                hour_of(v),
                ((v.rem_euclid(86400.0) / 3600.0).floor() as usize).min(23)
            );
        }
    }
}
