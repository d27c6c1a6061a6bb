//! Bounded windows: recent samples with an O(1) moving mean, recent event times, recent names.

use std::collections::{HashMap, VecDeque};

use super::hash::IdState;

/// The last `capacity` samples of a metric, with the mean of the newest `window` of them kept
/// in O(1) per push.
///
/// The moving sum is updated incrementally (add the new sample, subtract the one leaving the
/// window) and recomputed exactly every `window` pushes, so rounding error cannot accumulate:
/// the amortised cost stays O(1) and the result never drifts from the exact sum by more than a
/// few ulps. The samples themselves serve percentiles at baseline time.
#[derive(Clone, Debug)]
pub struct SampleRing {
    buf: Vec<f64>,
    head: usize,
    len: usize,
    cap: usize,
    window: usize,
    sum: f64,
    since_exact: usize,
}

impl SampleRing {
    /// `capacity >= 1`; the moving window is `min(window, capacity)` samples (at least 1).
    pub fn new(capacity: usize, window: usize) -> Self {
        let cap = capacity.max(1);
        Self {
            buf: Vec::new(),
            head: 0,
            len: 0,
            cap,
            window: window.clamp(1, cap),
            sum: 0.0,
            since_exact: 0,
        }
    }

    /// Capacity (the number of samples kept).
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Length of the moving window.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index `back` positions before `head` (0 < back <= cap), without a division.
    #[inline]
    fn before_head(&self, back: usize) -> usize {
        if self.head >= back {
            self.head - back
        } else {
            self.head + self.cap - back
        }
    }

    /// Append a sample, evicting the oldest when full.
    #[inline]
    pub fn push(&mut self, x: f64) {
        let leaving = if self.len >= self.window {
            Some(self.buf[self.before_head(self.window)])
        } else {
            None
        };
        if self.buf.len() < self.cap {
            self.buf.push(x);
        } else {
            self.buf[self.head] = x;
        }
        self.head += 1;
        if self.head == self.cap {
            self.head = 0;
        }
        if self.len < self.cap {
            self.len += 1;
        }
        self.sum += x;
        if let Some(old) = leaving {
            self.sum -= old;
        }
        self.since_exact += 1;
        if self.since_exact >= self.window {
            self.sum = self.exact_window_sum();
            self.since_exact = 0;
        }
    }

    fn window_len(&self) -> usize {
        self.len.min(self.window)
    }

    fn exact_window_sum(&self) -> f64 {
        let w = self.window_len();
        if w == 0 {
            return 0.0;
        }
        // oldest first: the window is buf[start..] then buf[..head] when it wraps
        let start = self.before_head(w);
        let mut s = 0.0;
        if start < self.head {
            for &v in &self.buf[start..self.head] {
                s += v;
            }
        } else {
            for &v in &self.buf[start..] {
                s += v;
            }
            for &v in &self.buf[..self.head] {
                s += v;
            }
        }
        s
    }

    /// Mean of the newest `min(len, window)` samples, or None when empty.
    #[inline]
    pub fn window_mean(&self) -> Option<f64> {
        let w = self.window_len();
        if w == 0 {
            None
        } else {
            Some(self.sum / w as f64)
        }
    }

    /// Whether the moving window is full.
    pub fn window_full(&self) -> bool {
        self.len >= self.window
    }

    /// The samples held, oldest first.
    pub fn to_vec(&self) -> Vec<f64> {
        (0..self.len)
            .map(|i| self.buf[(self.head + self.cap - self.len + i) % self.cap])
            .collect()
    }

    /// `sorted[int((n - 1) * q)]` over the samples held (the original SDK's percentile rule).
    pub fn percentiles(&self, qs: &[f64]) -> Vec<f64> {
        let mut v = self.to_vec();
        if v.is_empty() {
            return vec![0.0; qs.len()];
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        qs.iter()
            .map(|q| v[(((n - 1) as f64) * q) as usize])
            .collect()
    }

    /// Empty the ring (keeps its geometry).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.head = 0;
        self.len = 0;
        self.sum = 0.0;
        self.since_exact = 0;
    }

    /// Push every sample of `xs` in order (used to restore a saved state).
    pub fn extend(&mut self, xs: &[f64]) {
        for &x in xs {
            self.push(x);
        }
    }
}

/// Times of recent events (monotonic seconds), keeping at most `capacity`, counting those in
/// the last `horizon` seconds in amortised O(1).
#[derive(Clone, Debug)]
pub struct TimeWindow {
    times: VecDeque<f64>,
    capacity: usize,
    horizon: f64,
}

impl TimeWindow {
    /// A window holding at most `capacity` times, counting the last `horizon` seconds.
    pub fn new(capacity: usize, horizon: f64) -> Self {
        Self {
            times: VecDeque::new(),
            capacity: capacity.max(1),
            horizon,
        }
    }

    /// Drop times more than `horizon` seconds before `now`; return how many remain.
    #[inline]
    pub fn count_recent(&mut self, now: f64) -> usize {
        while let Some(&t) = self.times.front() {
            if now - t > self.horizon {
                self.times.pop_front();
            } else {
                break;
            }
        }
        self.times.len()
    }

    /// Record an event at `now` (evicting the oldest when full).
    #[inline]
    pub fn push(&mut self, now: f64) {
        if self.times.len() >= self.capacity {
            self.times.pop_front();
        }
        self.times.push_back(now);
    }

    /// Forget every time.
    pub fn clear(&mut self) {
        self.times.clear();
    }
}

/// Expected counts below this are raised to it in the chi-square terms (the classical rule of
/// thumb), so a rare or never-seen name adds at most `c^2 / MIX_MIN_EXPECTED`.
pub const MIX_MIN_EXPECTED: f64 = 5.0;

/// One chi-square term `(c - e)^2 / max(e, MIX_MIN_EXPECTED)`.
#[inline]
pub fn chi_term(c: f64, e: f64) -> f64 {
    let d = c - e;
    d * d / e.max(MIX_MIN_EXPECTED)
}

/// The last `capacity` names (as 64-bit keyed hashes), with, in O(1) per push: the number of
/// distinct names, of adjacent equal pairs, and the chi-square divergence of the names' counts
/// from a reference mix (`set_reference`).
///
/// The chi-square is `sum over names of (c - n p)^2 / max(n p, MIX_MIN_EXPECTED)` where `n` is
/// the number of names held, over every name of the reference (absent ones count 0) and every
/// held name outside it (probability `unseen`). It is updated incrementally once the window is
/// full and recomputed exactly (summing terms in sorted `(e, c)` order) while it fills and
/// whenever the reference changes.
#[derive(Clone, Debug)]
pub struct NameWindow {
    ring: VecDeque<u64>,
    counts: HashMap<u64, u32, IdState>,
    pairs: usize,
    capacity: usize,
    probs: HashMap<u64, f64, IdState>,
    unseen: f64,
    x2: f64,
}

impl NameWindow {
    /// A window over the last `capacity` names (empty reference).
    pub fn new(capacity: usize) -> Self {
        Self {
            ring: VecDeque::new(),
            counts: HashMap::default(),
            pairs: 0,
            capacity: capacity.max(1),
            probs: HashMap::default(),
            unseen: 1.0,
            x2: 0.0,
        }
    }

    #[inline]
    fn prob(&self, h: u64) -> f64 {
        self.probs.get(&h).copied().unwrap_or(self.unseen)
    }

    /// Append a name hash, evicting the oldest when full.
    #[inline]
    pub fn push(&mut self, h: u64) {
        let full = self.ring.len() >= self.capacity;
        let n = self.capacity as f64;
        if full {
            if let Some(old) = self.ring.pop_front() {
                if let Some(c) = self.counts.get_mut(&old) {
                    let before = *c as f64;
                    *c -= 1;
                    if *c == 0 {
                        self.counts.remove(&old);
                    }
                    let e = n * self.prob(old);
                    self.x2 += chi_term(before - 1.0, e) - chi_term(before, e);
                }
                if self.ring.front() == Some(&old) {
                    self.pairs -= 1;
                }
            }
        }
        if self.ring.back() == Some(&h) {
            self.pairs += 1;
        }
        self.ring.push_back(h);
        let c = self.counts.entry(h).or_insert(0);
        *c += 1;
        let after = *c as f64;
        if full {
            let e = n * self.prob(h);
            self.x2 += chi_term(after, e) - chi_term(after - 1.0, e);
        } else {
            self.recompute();
        }
    }

    /// Recompute the chi-square exactly.
    pub fn recompute(&mut self) {
        let n = self.ring.len() as f64;
        let mut terms: Vec<(f64, f64)> = Vec::with_capacity(self.probs.len() + self.counts.len());
        for (h, p) in &self.probs {
            let c = self.counts.get(h).copied().unwrap_or(0) as f64;
            terms.push((n * p, c));
        }
        for (h, c) in &self.counts {
            if !self.probs.contains_key(h) {
                terms.push((n * self.unseen, *c as f64));
            }
        }
        terms.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        self.x2 = terms.iter().fold(0.0, |acc, (e, c)| acc + chi_term(*c, *e));
    }

    /// Replace the reference mix (probabilities by name hash, and of any other name).
    pub fn set_reference(&mut self, probs: HashMap<u64, f64, IdState>, unseen: f64) {
        self.probs = probs;
        self.unseen = unseen;
        self.recompute();
    }

    /// Names held.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether no name is held.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Whether the window holds `capacity` names.
    pub fn is_full(&self) -> bool {
        self.ring.len() >= self.capacity
    }

    /// Distinct names held.
    pub fn unique(&self) -> usize {
        self.counts.len()
    }

    /// Adjacent equal pairs among the names held.
    pub fn repetitions(&self) -> usize {
        self.pairs
    }

    /// Chi-square divergence of the names held from the reference mix.
    pub fn chi_square(&self) -> f64 {
        self.x2
    }

    /// Forget every name (keeps the reference).
    pub fn clear(&mut self) {
        self.ring.clear();
        self.counts.clear();
        self.pairs = 0;
        self.x2 = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_window_mean_and_eviction() {
        let mut r = SampleRing::new(5, 3);
        assert_eq!(r.window_mean(), None);
        r.push(1.0);
        assert_eq!(r.window_mean(), Some(1.0));
        r.push(2.0);
        r.push(3.0);
        assert_eq!(r.window_mean(), Some(2.0));
        r.push(10.0);
        assert_eq!(r.window_mean(), Some(5.0));
        for x in [4.0, 5.0, 6.0] {
            r.push(x);
        }
        assert_eq!(r.to_vec(), vec![3.0, 10.0, 4.0, 5.0, 6.0]);
        assert_eq!(r.window_mean(), Some(5.0));
        assert_eq!(r.len(), 5);
    }

    #[test]
    fn ring_window_larger_than_capacity_is_clamped() {
        let mut r = SampleRing::new(2, 10);
        assert_eq!(r.window(), 2);
        for x in [1.0, 2.0, 3.0] {
            r.push(x);
        }
        assert_eq!(r.window_mean(), Some(2.5));
    }

    #[test]
    fn ring_moving_sum_does_not_drift() {
        let mut r = SampleRing::new(100, 10);
        let mut xs = Vec::new();
        for i in 0..100_000u64 {
            let x = if i % 2 == 0 { 1e12 } else { 1e-3 * i as f64 };
            r.push(x);
            xs.push(x);
        }
        let tail = &xs[xs.len() - 10..];
        let exact = tail.iter().sum::<f64>() / 10.0;
        let got = r.window_mean().unwrap();
        assert!(
            (got - exact).abs() <= 1e-15 * exact.abs() * 10.0,
            "{got} vs {exact}"
        );
    }

    #[test]
    fn ring_percentiles_follow_original_rule() {
        let mut r = SampleRing::new(100, 10);
        for i in (1..=20).rev() {
            r.push(i as f64);
        }
        // n = 20: p95 -> sorted[int(19 * 0.95)] = sorted[18] = 19; p99 -> sorted[18] = 19
        assert_eq!(r.percentiles(&[0.95, 0.99]), vec![19.0, 19.0]);
        let empty = SampleRing::new(10, 3);
        assert_eq!(empty.percentiles(&[0.95]), vec![0.0]);
    }

    #[test]
    fn time_window_counts_horizon_and_caps() {
        let mut t = TimeWindow::new(3, 60.0);
        assert_eq!(t.count_recent(0.0), 0);
        t.push(0.0);
        t.push(30.0);
        assert_eq!(t.count_recent(60.0), 2); // exactly 60 s old still counts
        assert_eq!(t.count_recent(60.5), 1);
        t.push(61.0);
        t.push(62.0);
        t.push(63.0); // evicts 30.0 by capacity
        assert_eq!(t.count_recent(63.0), 3);
    }

    #[test]
    fn name_window_unique_and_pairs() {
        let mut n = NameWindow::new(4);
        for h in [1u64, 1, 2, 2] {
            n.push(h);
        }
        assert_eq!((n.unique(), n.repetitions()), (2, 2));
        n.push(2); // evicts first 1 (pair 1-1 leaves), adds pair 2-2
        assert_eq!((n.unique(), n.repetitions(), n.len()), (2, 2, 4));
        n.push(3); // evicts second 1
        assert_eq!((n.unique(), n.repetitions()), (2, 2));
        n.push(4); // evicts a 2 (pair 2-2 leaves)
        assert_eq!((n.unique(), n.repetitions()), (3, 1));
        n.clear();
        assert!(n.is_empty());
    }

    fn exact_x2(n: &NameWindow) -> f64 {
        let mut m = n.clone();
        m.recompute();
        m.chi_square()
    }

    #[test]
    fn chi_square_incremental_matches_exact() {
        let mut n = NameWindow::new(100);
        let probs: HashMap<u64, f64, IdState> =
            [(1u64, 0.5), (2, 0.3), (3, 0.2)].into_iter().collect();
        n.set_reference(probs, 1e-4);
        let seq = |i: u64| match i % 10 {
            0..=4 => 1,
            5..=7 => 2,
            8 => 3,
            _ => 4 + (i % 3), // names outside the reference
        };
        for i in 0..1000u64 {
            n.push(seq(i));
            let exact = exact_x2(&n);
            assert!(
                (n.chi_square() - exact).abs() < 1e-9 * exact.max(1.0),
                "{i}"
            );
        }
        // 100 names: 50 x 1, 30 x 2, 10 x 3, 10 outside (3-4 each).
        assert!(n.chi_square() > 10.0);
        // Exactly the reference mix gives 0.
        let mut m = NameWindow::new(10);
        m.set_reference([(1u64, 0.5), (2, 0.5)].into_iter().collect(), 0.0);
        for h in [1u64, 2, 1, 2, 1, 2, 1, 2, 1, 2] {
            m.push(h);
        }
        assert_eq!(m.chi_square(), 0.0);
        m.push(1); // evicts a 1: still 5 x 1, 5 x 2
        assert_eq!(m.chi_square(), 0.0);
        m.push(1); // evicts a 2: 6 x 1, 4 x 2 -> (6-5)^2/5 + (4-5)^2/5
        assert!((m.chi_square() - 0.4).abs() < 1e-12);
    }
}
