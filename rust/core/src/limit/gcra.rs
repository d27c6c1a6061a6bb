//! GCRA (generic cell rate algorithm): a token bucket stored as one number.
//!
//! A token bucket of `capacity` tokens refilled at one token per `interval` is fully described by
//! its *theoretical arrival time* (TAT): the instant at which the bucket will be full again. At
//! time `now` it holds `capacity - (TAT - now) / interval` tokens (all of them when
//! `TAT <= now`). Taking `cost` tokens is allowed when
//!
//! ```text
//! max(TAT, now) + cost * interval - now <= capacity * interval      (= tau, the burst tolerance)
//! ```
//!
//! and moves TAT to `max(TAT, now) + cost * interval`. A bucket that does not exist yet has
//! `TAT = 0`, which every `now >= 0` treats as full: buckets start full, as in the original SDK.
//!
//! All times are integer nanoseconds, so the native engine and its Python twin make exactly the
//! same decisions for the same clock readings (no floating-point drift).

use super::LimitError;

/// Largest supported burst tolerance (`capacity * interval`) and clock reading, in ns
/// (about 146 years). Both fit together in a `u64` without overflow.
pub const MAX_NS: u64 = 1 << 62;

/// The parameters of one limiter: capacity (burst) and emission interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    capacity: u64,
    interval_ns: u64,
    tau_ns: u64,
}

/// Outcome of one check against a TAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Admitted; store this new TAT.
    Allow(u64),
    /// Refused; nothing changes.
    Deny,
}

impl Gcra {
    /// Validate and build the parameters. `capacity * interval_ns` must not exceed [`MAX_NS`].
    pub fn new(capacity: u64, interval_ns: u64) -> Result<Self, LimitError> {
        if capacity == 0 {
            return Err(LimitError::Capacity);
        }
        if interval_ns == 0 {
            return Err(LimitError::Interval);
        }
        let tau_ns = capacity
            .checked_mul(interval_ns)
            .filter(|t| *t <= MAX_NS)
            .ok_or(LimitError::BurstTooLarge {
                capacity,
                interval_ns,
            })?;
        Ok(Self {
            capacity,
            interval_ns,
            tau_ns,
        })
    }

    /// Maximum number of tokens (the burst).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Nanoseconds to refill one token.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// Burst tolerance `capacity * interval_ns`.
    pub fn tau_ns(&self) -> u64 {
        self.tau_ns
    }

    /// Decide a request of `cost` tokens (`cost >= 1`) at `now` against `tat`.
    #[inline]
    pub fn decide(&self, tat: u64, now: u64, cost: u64) -> Decision {
        if cost > self.capacity {
            return Decision::Deny;
        }
        // cost <= capacity, so cost * interval <= tau <= MAX_NS; base <= 2 * MAX_NS: no overflow.
        let base = tat.max(now);
        let new_tat = base + cost * self.interval_ns;
        if new_tat - now <= self.tau_ns {
            Decision::Allow(new_tat)
        } else {
            Decision::Deny
        }
    }

    /// Whole tokens available at `now` (floored, as the original's `get_remaining`).
    #[inline]
    pub fn remaining(&self, tat: u64, now: u64) -> u64 {
        let used = tat.saturating_sub(now);
        self.tau_ns.saturating_sub(used) / self.interval_ns
    }

    /// Nanoseconds until `cost` tokens are available at `now`: 0 if they are now, `None` if
    /// they never will be (`cost > capacity`).
    #[inline]
    pub fn retry_after_ns(&self, tat: u64, now: u64, cost: u64) -> Option<u64> {
        if cost > self.capacity {
            return None;
        }
        let base = tat.max(now);
        Some((base + cost * self.interval_ns - now).saturating_sub(self.tau_ns))
    }

    /// TAT after giving back `cost` tokens taken earlier (never below "full").
    #[inline]
    pub fn refund(&self, tat: u64, cost: u64) -> u64 {
        tat.saturating_sub(cost.min(self.capacity) * self.interval_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn rejects_bad_parameters() {
        assert_eq!(Gcra::new(0, 1), Err(LimitError::Capacity));
        assert_eq!(Gcra::new(1, 0), Err(LimitError::Interval));
        assert!(matches!(
            Gcra::new(u64::MAX, 2),
            Err(LimitError::BurstTooLarge { .. })
        ));
        assert!(matches!(
            Gcra::new(MAX_NS + 1, 1),
            Err(LimitError::BurstTooLarge { .. })
        ));
        assert!(Gcra::new(MAX_NS, 1).is_ok());
    }

    #[test]
    fn starts_full_then_refills_one_token_per_interval() {
        // 100 per 60 s: interval 0.6 s.
        let g = Gcra::new(100, 600_000_000).unwrap();
        let now = 5 * S;
        let mut tat = 0;
        assert_eq!(g.remaining(tat, now), 100);
        for i in 0..100 {
            match g.decide(tat, now, 1) {
                Decision::Allow(t) => tat = t,
                Decision::Deny => panic!("call {i} denied"),
            }
        }
        assert_eq!(g.remaining(tat, now), 0);
        assert_eq!(g.decide(tat, now, 1), Decision::Deny);
        assert_eq!(g.retry_after_ns(tat, now, 1), Some(600_000_000));
        // One nanosecond early: still denied. On time: allowed.
        assert_eq!(g.decide(tat, now + 599_999_999, 1), Decision::Deny);
        assert!(matches!(
            g.decide(tat, now + 600_000_000, 1),
            Decision::Allow(_)
        ));
        // After a full window the bucket is full again.
        assert_eq!(g.remaining(tat, now + 60 * S), 100);
    }

    #[test]
    fn cost_above_capacity_never_passes() {
        let g = Gcra::new(3, S).unwrap();
        assert_eq!(g.decide(0, 0, 4), Decision::Deny);
        assert_eq!(g.retry_after_ns(0, 0, 4), None);
        assert_eq!(g.decide(0, 0, 3), Decision::Allow(3 * S));
    }

    #[test]
    fn refund_restores_the_previous_state() {
        let g = Gcra::new(5, S).unwrap();
        let Decision::Allow(t) = g.decide(0, 10 * S, 2) else {
            panic!()
        };
        assert_eq!(g.remaining(t, 10 * S), 3);
        assert_eq!(g.remaining(g.refund(t, 2), 10 * S), 5);
        assert_eq!(g.refund(0, 5), 0);
    }

    #[test]
    fn clock_going_back_is_conservative() {
        let g = Gcra::new(2, S).unwrap();
        let Decision::Allow(t) = g.decide(0, 10 * S, 2) else {
            panic!()
        };
        // Earlier reading: TAT - now exceeds tau: nothing available, never an overflow.
        assert_eq!(g.remaining(t, 5 * S), 0);
        assert_eq!(g.decide(t, 5 * S, 1), Decision::Deny);
        assert_eq!(g.retry_after_ns(t, 5 * S, 1), Some(6 * S));
    }
}
