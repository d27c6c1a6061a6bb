//! A bounded, sharded map from keys to GCRA state, one `AtomicU64` per key.
//!
//! * **Lock-free decisions.** A check takes a shard's read lock only to find the key's cell,
//!   then updates the cell with compare-and-swap, so concurrent checks on one key or on many
//!   keys never wait for each other. The write lock is taken only to insert or evict keys.
//! * **Bounded memory.** A bucket that is full again (`TAT <= now`) holds no information: it
//!   is indistinguishable from a key never seen. Such entries are evicted whenever a shard
//!   doubles in size (amortised O(1) per insert) and by [`KeyedGcra::evict`]. A hard cap,
//!   `max_keys`, bounds the table: when it is reached and nothing can be evicted, a *new* key
//!   is refused with [`LimitError::KeyTableFull`] (fail closed) while known keys keep working.
//!   An attacker spraying user ids cannot exhaust memory.
//! * **Bounded key size.** Keys longer than [`INLINE_KEY_MAX`] bytes are stored as a tagged
//!   SHA-256 digest (33 bytes), so huge keys cannot inflate the table either.
//! * **Hash flooding.** Shard selection and the maps use SipHash with per-table random keys.

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use sha2::{Digest, Sha256};

use super::gcra::{Decision, Gcra};
use super::LimitError;

/// Keys up to this many bytes are stored as they are; longer ones as `0xFF ++ sha256(key)`.
/// `0xFF` never occurs in UTF-8, so a digest can never equal a short key.
pub const INLINE_KEY_MAX: usize = 64;

const SHARDS: usize = 64;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();
/// A shard is swept for full buckets when it reaches this size, then again at twice the live
/// size left by the previous sweep.
const MIN_SWEEP: usize = 64;

struct Shard {
    map: HashMap<Box<[u8]>, AtomicU64>,
    sweep_at: usize,
}

/// Keyed GCRA limiter: the engine behind `TokenBucketRateLimiter`.
pub struct KeyedGcra {
    gcra: Gcra,
    max_keys: usize,
    shards: Box<[RwLock<Shard>]>,
    shard_hasher: RandomState,
    len: AtomicUsize,
    /// While the table is full: the earliest time a sweep can free an entry.
    next_full_sweep: AtomicU64,
}

fn normalise(key: &str) -> Cow<'_, [u8]> {
    let b = key.as_bytes();
    if b.len() <= INLINE_KEY_MAX {
        Cow::Borrowed(b)
    } else {
        let mut v = Vec::with_capacity(33);
        v.push(0xFF);
        v.extend_from_slice(&Sha256::digest(b));
        Cow::Owned(v)
    }
}

impl KeyedGcra {
    /// A table for `gcra` holding at most `max_keys` keys (`max_keys >= 1`).
    pub fn new(gcra: Gcra, max_keys: usize) -> Result<Self, LimitError> {
        if max_keys == 0 {
            return Err(LimitError::MaxKeys);
        }
        let shards = (0..SHARDS)
            .map(|_| {
                RwLock::new(Shard {
                    map: HashMap::new(),
                    sweep_at: MIN_SWEEP,
                })
            })
            .collect();
        Ok(Self {
            gcra,
            max_keys,
            shards,
            shard_hasher: RandomState::new(),
            len: AtomicUsize::new(0),
            next_full_sweep: AtomicU64::new(0),
        })
    }

    /// The limiter's parameters.
    pub fn gcra(&self) -> &Gcra {
        &self.gcra
    }

    /// The key cap.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Number of keys currently stored (full buckets may still be counted until evicted).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &[u8]) -> &RwLock<Shard> {
        let h = self.shard_hasher.hash_one(key);
        &self.shards[(h >> (64 - SHARD_BITS)) as usize]
    }

    // No code path panics while holding a lock, but never propagate poisoning anyway: the
    // state behind the lock is a map of atomics, always consistent.
    fn read(l: &RwLock<Shard>) -> RwLockReadGuard<'_, Shard> {
        l.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(l: &RwLock<Shard>) -> RwLockWriteGuard<'_, Shard> {
        l.write().unwrap_or_else(|e| e.into_inner())
    }

    fn cas(&self, cell: &AtomicU64, now: u64, cost: u64) -> bool {
        let mut cur = cell.load(Ordering::Acquire);
        loop {
            match self.gcra.decide(cur, now, cost) {
                Decision::Deny => return false,
                Decision::Allow(new) => {
                    match cell.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire)
                    {
                        Ok(_) => return true,
                        Err(seen) => cur = seen,
                    }
                }
            }
        }
    }

    /// Take `cost` tokens (`cost >= 1`) from `key`'s bucket at `now` (ns) if it has them.
    ///
    /// Errors only with [`LimitError::KeyTableFull`], for a key not yet stored while the table
    /// is full of buckets that are still refilling.
    pub fn acquire(&self, key: &str, cost: u64, now: u64) -> Result<bool, LimitError> {
        let k = normalise(key);
        let lock = self.shard(&k);
        {
            let g = Self::read(lock);
            if let Some(cell) = g.map.get(&*k) {
                return Ok(self.cas(cell, now, cost));
            }
        }
        // Unknown key: its bucket is full. A refusal needs no entry.
        let new_tat = match self.gcra.decide(0, now, cost) {
            Decision::Deny => return Ok(false),
            Decision::Allow(t) => t,
        };
        loop {
            let mut g = Self::write(lock);
            if let Some(cell) = g.map.get(&*k) {
                // Inserted by another thread meanwhile.
                return Ok(self.cas(cell, now, cost));
            }
            if g.map.len() >= g.sweep_at {
                let removed = Self::sweep_shard(&mut g, now);
                self.len.fetch_sub(removed, Ordering::Relaxed);
                g.sweep_at = MIN_SWEEP.max(g.map.len() * 2);
            }
            if self.len.fetch_add(1, Ordering::AcqRel) < self.max_keys {
                g.map
                    .insert(k.into_owned().into_boxed_slice(), AtomicU64::new(new_tat));
                return Ok(true);
            }
            self.len.fetch_sub(1, Ordering::AcqRel);
            drop(g);
            // Full: sweep the whole table, at most once per "earliest refill" instant.
            let gate = self.next_full_sweep.load(Ordering::Acquire);
            if now < gate {
                return Err(LimitError::KeyTableFull {
                    max_keys: self.max_keys,
                    retry_after_ns: gate - now,
                });
            }
            let (removed, earliest) = self.sweep_all(now);
            if removed == 0 {
                self.next_full_sweep.store(earliest, Ordering::Release);
                return Err(LimitError::KeyTableFull {
                    max_keys: self.max_keys,
                    retry_after_ns: earliest.saturating_sub(now),
                });
            }
        }
    }

    fn sweep_shard(g: &mut Shard, now: u64) -> usize {
        let before = g.map.len();
        g.map.retain(|_, cell| cell.load(Ordering::Acquire) > now);
        before - g.map.len()
    }

    /// Remove every full bucket; returns (removed, earliest TAT among the survivors).
    fn sweep_all(&self, now: u64) -> (usize, u64) {
        let mut removed = 0;
        let mut earliest = u64::MAX;
        for lock in self.shards.iter() {
            let mut g = Self::write(lock);
            let before = g.map.len();
            g.map.retain(|_, cell| {
                let tat = cell.load(Ordering::Acquire);
                if tat > now {
                    earliest = earliest.min(tat);
                    true
                } else {
                    false
                }
            });
            removed += before - g.map.len();
            g.sweep_at = MIN_SWEEP.max(g.map.len() * 2);
        }
        self.len.fetch_sub(removed, Ordering::AcqRel);
        (removed, earliest)
    }

    fn load(&self, key: &str) -> u64 {
        let k = normalise(key);
        let g = Self::read(self.shard(&k));
        g.map
            .get(&*k)
            .map_or(0, |cell| cell.load(Ordering::Acquire))
    }

    /// Whole tokens left in `key`'s bucket at `now`. Never creates an entry.
    pub fn remaining(&self, key: &str, now: u64) -> u64 {
        self.gcra.remaining(self.load(key), now)
    }

    /// Nanoseconds until `cost` tokens are available (`None`: never, cost above capacity).
    pub fn retry_after_ns(&self, key: &str, cost: u64, now: u64) -> Option<u64> {
        self.gcra.retry_after_ns(self.load(key), now, cost)
    }

    /// Give back `cost` tokens taken earlier from `key` (used to roll back a multi-limit check).
    pub fn refund(&self, key: &str, cost: u64) {
        let k = normalise(key);
        let g = Self::read(self.shard(&k));
        if let Some(cell) = g.map.get(&*k) {
            let _ = cell.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(self.gcra.refund(t, cost))
            });
            // The entry may now free up before the full-table gate: re-open it.
            self.next_full_sweep.store(0, Ordering::Release);
        }
    }

    /// Forget `key` (its bucket is full again). Returns whether it was stored.
    pub fn reset(&self, key: &str) -> bool {
        let k = normalise(key);
        let mut g = Self::write(self.shard(&k));
        let was = g.map.remove(&*k).is_some();
        if was {
            self.len.fetch_sub(1, Ordering::AcqRel);
        }
        was
    }

    /// Forget every key.
    pub fn reset_all(&self) {
        for lock in self.shards.iter() {
            let mut g = Self::write(lock);
            self.len.fetch_sub(g.map.len(), Ordering::AcqRel);
            g.map = HashMap::new();
            g.sweep_at = MIN_SWEEP;
        }
        self.next_full_sweep.store(0, Ordering::Release);
    }

    /// Evict every bucket that is full at `now` (no observable change); returns how many.
    pub fn evict(&self, now: u64) -> usize {
        let (removed, _) = self.sweep_all(now);
        self.next_full_sweep.store(0, Ordering::Release);
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const S: u64 = 1_000_000_000;

    fn table(capacity: u64, interval: u64, max_keys: usize) -> KeyedGcra {
        KeyedGcra::new(Gcra::new(capacity, interval).unwrap(), max_keys).unwrap()
    }

    #[test]
    fn per_key_buckets() {
        let t = table(2, S, 100);
        assert!(t.acquire("a", 1, 0).unwrap());
        assert!(t.acquire("a", 1, 0).unwrap());
        assert!(!t.acquire("a", 1, 0).unwrap());
        assert!(t.acquire("b", 2, 0).unwrap());
        assert_eq!(t.remaining("a", 0), 0);
        assert_eq!(t.remaining("zz", 0), 2);
        assert_eq!(t.retry_after_ns("a", 1, 0), Some(S));
        assert_eq!(t.retry_after_ns("a", 2, S / 2), Some(3 * S / 2));
        assert_eq!(t.retry_after_ns("a", 3, 0), None);
        assert!(!t.acquire("c", 3, 0).unwrap());
        assert_eq!(t.len(), 2, "a refused unknown key is not stored");
        assert!(t.reset("a"));
        assert!(!t.reset("a"));
        assert_eq!(t.remaining("a", 0), 2);
        t.reset_all();
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn long_keys_are_hashed_and_distinct() {
        let t = table(1, S, 100);
        let k1 = "x".repeat(1000);
        let k2 = format!("{}y", "x".repeat(999));
        assert!(t.acquire(&k1, 1, 0).unwrap());
        assert!(!t.acquire(&k1, 1, 0).unwrap());
        assert!(t.acquire(&k2, 1, 0).unwrap());
        assert!(t.acquire(&"x".repeat(64), 1, 0).unwrap());
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn cap_fails_closed_then_recovers_when_buckets_refill() {
        let t = table(1, S, 10);
        for i in 0..10 {
            assert!(t.acquire(&format!("k{i}"), 1, 0).unwrap());
        }
        let err = t.acquire("new", 1, 0).unwrap_err();
        assert_eq!(
            err,
            LimitError::KeyTableFull {
                max_keys: 10,
                retry_after_ns: S
            }
        );
        // Known keys still work (and are refused on their own merits).
        assert!(!t.acquire("k3", 1, S / 2).unwrap());
        // Still full before the earliest refill; gated without a sweep.
        assert!(t.acquire("new", 1, S / 2).is_err());
        // Once buckets are full again they are evicted and the new key fits.
        assert!(t.acquire("new", 1, S).unwrap());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn growth_sweeps_keep_memory_bounded() {
        let t = table(1, 10, 1_000_000);
        // 100k distinct keys, each bucket full again 10 ns later.
        for i in 0..100_000u64 {
            assert!(t.acquire(&format!("user-{i}"), 1, i * 100).unwrap());
        }
        assert!(t.len() < 100_000 / 4, "len {}", t.len());
        let n = t.len();
        assert_eq!(t.evict(0), 0);
        assert_eq!(t.evict(u64::MAX / 2), n);
        assert!(t.is_empty());
    }

    #[test]
    fn evict_removes_only_full_buckets() {
        let t = table(5, S, 100);
        t.acquire("a", 1, 0).unwrap();
        t.acquire("b", 5, 0).unwrap();
        assert_eq!(t.evict(S / 2), 0);
        assert_eq!(t.evict(S), 1);
        assert_eq!(t.len(), 1);
        assert_eq!(t.remaining("b", S), 1);
    }

    #[test]
    fn refund_rolls_back() {
        let t = table(3, S, 100);
        assert!(t.acquire("a", 2, 10 * S).unwrap());
        t.refund("a", 2);
        assert_eq!(t.remaining("a", 10 * S), 3);
        t.refund("missing", 1);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn no_over_admission_under_threads() {
        for threads in [1usize, 2, 4, 8] {
            let t = Arc::new(table(1000, S, 100));
            let admitted = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    let t = Arc::clone(&t);
                    let admitted = Arc::clone(&admitted);
                    std::thread::spawn(move || {
                        for _ in 0..2000 {
                            if t.acquire("shared", 1, 5 * S).unwrap() {
                                admitted.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            let want = 1000.min(threads * 2000);
            assert_eq!(admitted.load(Ordering::Relaxed), want, "{threads} threads");
        }
    }

    #[test]
    fn cap_is_exact_under_threads() {
        let t = Arc::new(table(1, S, 1000));
        let hs: Vec<_> = (0..4)
            .map(|n| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    let mut ok = 0;
                    for i in 0..500 {
                        if let Ok(true) = t.acquire(&format!("{n}-{i}"), 1, 0) {
                            ok += 1;
                        }
                    }
                    ok
                })
            })
            .collect();
        let total: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1000);
        assert_eq!(t.len(), 1000);
    }
}
