//! Exponentially weighted moving mean and variance.

use super::StatsError;

/// Exponentially weighted mean and variance (West's recurrence), O(1) memory.
///
/// `alpha` in (0, 1] is the weight of the newest sample; `alpha = 2 / (span + 1)` matches a
/// moving window of `span` samples. The first sample initialises the mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ewma {
    alpha: f64,
    n: u64,
    mean: f64,
    var: f64,
}

impl Ewma {
    /// A new accumulator; `alpha` must be in (0, 1].
    pub fn new(alpha: f64) -> Result<Self, StatsError> {
        if !(alpha > 0.0 && alpha <= 1.0) {
            return Err(StatsError::BadArgument(format!(
                "alpha must be in (0, 1], got {alpha}"
            )));
        }
        Ok(Self {
            alpha,
            n: 0,
            mean: 0.0,
            var: 0.0,
        })
    }

    /// An accumulator whose smoothing matches a moving window of `span` samples.
    pub fn with_span(span: usize) -> Self {
        let alpha = 2.0 / (span.max(1) as f64 + 1.0);
        Self {
            alpha: alpha.min(1.0),
            n: 0,
            mean: 0.0,
            var: 0.0,
        }
    }

    /// Add one finite sample.
    #[inline]
    pub fn push(&mut self, x: f64) {
        if self.n == 0 {
            self.mean = x;
            self.var = 0.0;
        } else {
            let d = x - self.mean;
            let incr = self.alpha * d;
            self.mean += incr;
            self.var = (1.0 - self.alpha) * (self.var + d * incr);
        }
        self.n += 1;
    }

    /// Combine with a shard of the same stream (same `alpha`).
    ///
    /// Exponential smoothing depends on sample order, which shards do not keep, so this is an
    /// approximation: the count-weighted mixture of both states (means, variances and the spread
    /// between the means).
    pub fn merge(&mut self, other: &Ewma) -> Result<(), StatsError> {
        if self.alpha != other.alpha {
            return Err(StatsError::BadArgument(format!(
                "cannot merge EWMAs with different alpha ({} and {})",
                self.alpha, other.alpha
            )));
        }
        if other.n == 0 {
            return Ok(());
        }
        if self.n == 0 {
            *self = *other;
            return Ok(());
        }
        let n = self.n + other.n;
        let w = other.n as f64 / n as f64;
        let d = other.mean - self.mean;
        self.mean += d * w;
        self.var = (1.0 - w) * self.var + w * other.var + w * (1.0 - w) * (d * d);
        self.n = n;
        Ok(())
    }

    /// Smoothing factor.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Samples seen.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Smoothed mean (0.0 when empty).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Smoothed variance.
    pub fn variance(&self) -> f64 {
        self.var
    }

    /// Smoothed standard deviation.
    pub fn std_dev(&self) -> f64 {
        self.var.sqrt()
    }

    /// The state as `(alpha, count, mean, variance)`.
    pub fn to_parts(&self) -> (f64, u64, f64, f64) {
        (self.alpha, self.n, self.mean, self.var)
    }

    /// Rebuild from [`Ewma::to_parts`].
    pub fn from_parts(alpha: f64, n: u64, mean: f64, var: f64) -> Result<Self, StatsError> {
        let mut e = Self::new(alpha)?;
        if !mean.is_finite() || !var.is_finite() || var < 0.0 {
            return Err(StatsError::BadState(
                "ewma mean/variance must be finite and variance >= 0".into(),
            ));
        }
        if n == 0 && (mean != 0.0 || var != 0.0) {
            return Err(StatsError::BadState(
                "an empty ewma must have zero mean and variance".into(),
            ));
        }
        e.n = n;
        e.mean = mean;
        e.var = var;
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_level_shift() {
        let mut e = Ewma::with_span(10);
        for _ in 0..100 {
            e.push(5.0);
        }
        assert_eq!(e.mean(), 5.0);
        assert_eq!(e.variance(), 0.0);
        for _ in 0..100 {
            e.push(15.0);
        }
        assert!((e.mean() - 15.0).abs() < 1e-6);
        assert_eq!(e.count(), 200);
    }

    #[test]
    fn first_sample_initialises() {
        let mut e = Ewma::new(0.5).unwrap();
        e.push(4.0);
        assert_eq!((e.mean(), e.variance()), (4.0, 0.0));
        e.push(8.0);
        // d = 4, incr = 2 -> mean 6, var = 0.5 * (0 + 4 * 2) = 4
        assert_eq!((e.mean(), e.variance()), (6.0, 4.0));
    }

    #[test]
    fn rejects_bad_alpha_and_state() {
        assert!(Ewma::new(0.0).is_err());
        assert!(Ewma::new(1.5).is_err());
        assert!(Ewma::new(f64::NAN).is_err());
        assert!(Ewma::new(1.0).is_ok());
        assert!(Ewma::from_parts(0.5, 1, f64::INFINITY, 0.0).is_err());
        assert!(Ewma::from_parts(0.5, 1, 0.0, -1.0).is_err());
        assert!(Ewma::from_parts(0.5, 0, 1.0, 0.0).is_err());
    }

    #[test]
    fn merge_mixes_by_count() {
        let mut a = Ewma::new(0.2).unwrap();
        let mut b = Ewma::new(0.2).unwrap();
        for _ in 0..3 {
            a.push(1.0);
        }
        b.push(5.0);
        a.merge(&b).unwrap();
        assert_eq!(a.count(), 4);
        assert_eq!(a.mean(), 2.0); // 1 + 4 * 1/4
        assert_eq!(a.variance(), 3.0); // 0.25 * 0.75 * 16
        let c = Ewma::new(0.3).unwrap();
        assert!(a.merge(&c).is_err());
    }
}
