//! Hashers for the engine's small bounded maps.
//!
//! Names are hashed once per call with the standard keyed SipHash (see `Engine`), which an
//! adversary cannot steer into collisions; maps keyed by those 64-bit hashes use
//! [`IdState`] (the key already is a uniform random number). Maps keyed by strings use
//! [`FastState`], a randomly seeded multiply-rotate hash: far cheaper than SipHash, and every
//! such map is bounded by a small constant, so even contrived collisions cost at most a few
//! dozen comparisons.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Builds [`IdHasher`]s: for keys that are already uniformly distributed 64-bit hashes.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdState;

impl BuildHasher for IdState {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

/// Passes a `u64` key through (other inputs are folded in, for completeness).
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`FastHasher`]s with a per-process random seed.
#[derive(Clone, Copy, Debug)]
pub struct FastState {
    seed: u64,
}

impl FastState {
    /// A randomly seeded state.
    pub fn new() -> Self {
        Self {
            seed: RandomState::new().hash_one(0x9e37_79b9_7f4a_7c15u64),
        }
    }
}

impl Default for FastState {
    fn default() -> Self {
        Self::new()
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher { h: self.seed }
    }
}

/// Multiply-rotate hash over 8-byte words with a final avalanche (murmur3 fmix64).
#[derive(Clone, Copy, Debug)]
pub struct FastHasher {
    h: u64,
}

impl FastHasher {
    #[inline]
    fn mix(&mut self, v: u64) {
        self.h = (self.h ^ v)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(31);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.mix(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i) | 0x100);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let mut x = self.h;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn fast_hash_separates_prefixes_and_lengths() {
        let s = FastState::new();
        let keys = [
            "",
            "a",
            "aa",
            "a\0",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "ba",
        ];
        let hashes: HashSet<u64> = keys.iter().map(|k| s.hash_one(k)).collect();
        assert_eq!(hashes.len(), keys.len());
        // deterministic for one state, seeded per state
        assert_eq!(s.hash_one("tool"), s.hash_one("tool"));
        assert_ne!(FastState::new().hash_one("tool"), s.hash_one("tool"));
    }

    #[test]
    fn id_hash_passes_u64_through() {
        assert_eq!(IdState.hash_one(12345u64), 12345);
    }
}
