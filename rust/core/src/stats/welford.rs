//! Welford's streaming mean/variance, mergeable (Chan et al.) and serialisable.

use super::StatsError;

/// Streaming count, mean, variance, minimum and maximum of a sequence of finite `f64`.
///
/// Memory is O(1) whatever the number of samples. Updates use Welford's recurrence, which stays
/// accurate where the naive sum-of-squares formula cancels catastrophically (large offsets,
/// 10^9 samples). Two accumulators over disjoint samples merge exactly (Chan, Golub and LeVeque),
/// so per-thread shards can be combined.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Welford {
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Welford {
    /// An empty accumulator.
    pub const fn new() -> Self {
        Self {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: 0.0,
            max: 0.0,
        }
    }

    /// Add one sample. The caller guarantees `x` is finite.
    #[inline]
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        if self.n == 1 {
            self.mean = x;
            self.m2 = 0.0;
            self.min = x;
            self.max = x;
            return;
        }
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
        if x < self.min {
            self.min = x;
        }
        if x > self.max {
            self.max = x;
        }
    }

    /// Fold `other` (samples disjoint from ours) into `self`.
    pub fn merge(&mut self, other: &Welford) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let n = self.n + other.n;
        let na = self.n as f64;
        let nb = other.n as f64;
        let nf = n as f64;
        let d = other.mean - self.mean;
        self.mean += d * (nb / nf);
        self.m2 += other.m2 + d * d * (na * nb / nf);
        self.n = n;
        if other.min < self.min {
            self.min = other.min;
        }
        if other.max > self.max {
            self.max = other.max;
        }
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean (0.0 when empty).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sum of squared deviations from the mean.
    pub fn m2(&self) -> f64 {
        self.m2
    }

    /// Sample variance (n - 1 denominator); 0.0 with fewer than two samples.
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f64).max(0.0)
        }
    }

    /// Population variance (n denominator); 0.0 when empty.
    pub fn population_variance(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            (self.m2 / self.n as f64).max(0.0)
        }
    }

    /// Sample standard deviation (n - 1), as `statistics.stdev`; 0.0 with fewer than two samples.
    pub fn std_dev(&self) -> f64 {
        self.variance().sqrt()
    }

    /// Smallest sample (0.0 when empty).
    pub fn min(&self) -> f64 {
        self.min
    }

    /// Largest sample (0.0 when empty).
    pub fn max(&self) -> f64 {
        self.max
    }

    /// `(x - mean) / std_dev`; with a zero deviation, 0.0 at the mean and +inf elsewhere.
    pub fn z_score(&self, x: f64) -> f64 {
        z_score(x, self.mean, self.std_dev())
    }

    /// The state as `(count, mean, m2, min, max)`.
    pub fn to_parts(&self) -> (u64, f64, f64, f64, f64) {
        (self.n, self.mean, self.m2, self.min, self.max)
    }

    /// Rebuild from [`Welford::to_parts`], rejecting states no sequence of samples can produce.
    pub fn from_parts(n: u64, mean: f64, m2: f64, min: f64, max: f64) -> Result<Self, StatsError> {
        for (name, v) in [("mean", mean), ("m2", m2), ("min", min), ("max", max)] {
            if !v.is_finite() {
                return Err(StatsError::BadState(format!(
                    "welford {name} must be finite"
                )));
            }
        }
        if n == 0 {
            if mean != 0.0 || m2 != 0.0 || min != 0.0 || max != 0.0 {
                return Err(StatsError::BadState(
                    "an empty welford accumulator must have zero mean, m2, min and max".into(),
                ));
            }
            return Ok(Self::new());
        }
        if m2 < 0.0 {
            return Err(StatsError::BadState("welford m2 must be >= 0".into()));
        }
        if min > max {
            return Err(StatsError::BadState(
                "welford min must not exceed max".into(),
            ));
        }
        Ok(Self {
            n,
            mean,
            m2,
            min,
            max,
        })
    }
}

/// `(x - mean) / std`, with the original SDK's rule for a zero deviation: 0.0 when `x == mean`,
/// else +inf.
#[inline]
pub fn z_score(x: f64, mean: f64, std: f64) -> f64 {
    let d = x - mean;
    if std == 0.0 {
        if d == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        d / std
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn matches_two_pass_formula() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1013) as f64 * 0.37 - 50.0)
            .collect();
        let mut w = Welford::new();
        xs.iter().for_each(|&x| w.push(x));
        let (m, v) = naive(&xs);
        assert_eq!(w.count(), 1000);
        assert!((w.mean() - m).abs() < 1e-12 * m.abs().max(1.0));
        assert!((w.variance() - v).abs() < 1e-10 * v);
        assert_eq!(w.min(), -50.0);
        assert_eq!(w.max(), xs.iter().cloned().fold(f64::MIN, f64::max));
    }

    #[test]
    fn empty_and_single() {
        let mut w = Welford::new();
        assert_eq!(
            (w.count(), w.mean(), w.variance(), w.std_dev()),
            (0, 0.0, 0.0, 0.0)
        );
        w.push(42.5);
        assert_eq!((w.count(), w.mean(), w.variance()), (1, 42.5, 0.0));
        assert_eq!(w.z_score(42.5), 0.0);
        assert_eq!(w.z_score(43.0), f64::INFINITY);
        assert_eq!(w.z_score(40.0), f64::INFINITY);
        assert_eq!(w.population_variance(), 0.0);
    }

    #[test]
    fn merge_equals_sequential() {
        let xs: Vec<f64> = (0..999).map(|i| (i as f64).sin() * 1e3 + 1e6).collect();
        let mut all = Welford::new();
        xs.iter().for_each(|&x| all.push(x));
        let mut shards = [Welford::new(); 4];
        for (i, &x) in xs.iter().enumerate() {
            shards[i % 4].push(x);
        }
        let mut merged = Welford::new();
        for s in &shards {
            merged.merge(s);
        }
        assert_eq!(merged.count(), all.count());
        assert!((merged.mean() - all.mean()).abs() < 1e-9);
        assert!((merged.variance() / all.variance() - 1.0).abs() < 1e-10);
        assert_eq!(merged.min(), all.min());
        assert_eq!(merged.max(), all.max());
        // Merging empty accumulators is a no-op either way round.
        let mut e = Welford::new();
        e.merge(&all);
        assert_eq!(e, all);
        let before = all;
        all.merge(&Welford::new());
        assert_eq!(all, before);
    }

    #[test]
    fn stable_with_large_offset() {
        // Naive sum of squares loses every digit here; Welford keeps the variance of 1/12.
        let mut w = Welford::new();
        let n = 2_000_000u64;
        for i in 0..n {
            // A deterministic low-discrepancy sequence in [0, 1).
            let u = ((i as f64) * 0.618_033_988_749_895).fract();
            w.push(1e9 + u);
        }
        assert!((w.mean() - (1e9 + 0.5)).abs() < 1e-6, "{}", w.mean());
        assert!((w.variance() - 1.0 / 12.0).abs() < 1e-5, "{}", w.variance());
    }

    #[test]
    fn merged_to_a_billion_samples() {
        // 1000 shards of 10^6 samples each (built by merging, so the test stays fast) reach
        // n = 10^9 with the exact mean and variance of the mixture.
        let mut shard = Welford::new();
        for i in 0..1_000_000u64 {
            shard.push(((i % 1000) as f64) * 1e-3);
        }
        let mut total = Welford::new();
        for k in 0..1000u64 {
            let mut s = shard;
            let shift = (k % 10) as f64; // shards differ in location
            s.mean += shift;
            s.min += shift;
            s.max += shift;
            total.merge(&s);
        }
        assert_eq!(total.count(), 1_000_000_000);
        // mixture mean = 0.4995 + 4.5; variance = within (~1/12) + between (8.25)
        let within = shard.population_variance();
        let expect_var = (within + 8.25) * 1e9 / (1e9 - 1.0);
        assert!((total.mean() - 4.9995).abs() < 1e-9, "{}", total.mean());
        assert!(
            (total.variance() / expect_var - 1.0).abs() < 1e-9,
            "{}",
            total.variance()
        );
    }

    /// 10^9 pushes (about 10 s in release): run with
    /// `cargo test --release -p proxilion-core --lib -- --ignored billion`.
    #[test]
    #[ignore]
    fn billion_sequential_pushes() {
        let mut w = Welford::new();
        let n = 1_000_000_000u64;
        for i in 0..n {
            let u = ((i as f64) * 0.618_033_988_749_895).fract();
            w.push(1e6 + u);
        }
        assert_eq!(w.count(), n);
        assert!((w.mean() - (1e6 + 0.5)).abs() < 1e-6, "{}", w.mean());
        assert!((w.variance() - 1.0 / 12.0).abs() < 1e-6, "{}", w.variance());
    }

    #[test]
    fn parts_roundtrip_and_validation() {
        let mut w = Welford::new();
        [1.0, 2.0, 4.0].iter().for_each(|&x| w.push(x));
        let (n, m, m2, lo, hi) = w.to_parts();
        assert_eq!(Welford::from_parts(n, m, m2, lo, hi).unwrap(), w);
        assert!(Welford::from_parts(1, f64::NAN, 0.0, 0.0, 0.0).is_err());
        assert!(Welford::from_parts(2, 1.0, -1.0, 0.0, 2.0).is_err());
        assert!(Welford::from_parts(2, 1.0, 1.0, 3.0, 2.0).is_err());
        assert!(Welford::from_parts(0, 1.0, 0.0, 0.0, 0.0).is_err());
        assert_eq!(
            Welford::from_parts(0, 0.0, 0.0, 0.0, 0.0).unwrap(),
            Welford::new()
        );
    }
}
