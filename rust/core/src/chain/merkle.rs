//! RFC 6962 / RFC 9162 Merkle tree over audit entries.
//!
//! Leaves are hashed `SHA-256(0x00 || leaf)` and interior nodes `SHA-256(0x01 || left ||
//! right)` (domain separation, so a leaf can never pass for a node). The tree of `n` leaves
//! splits at the largest power of two below `n`, so every size, odd ones included, has one
//! well-defined root and proofs that verify. (The original SDK's `MerkleTree` pairs an odd
//! last node with itself and omits it from proofs, which is why its proofs fail on odd
//! leaves; that class is kept in Python for compatibility, this one backs the new proofs.)
//!
//! [`MerkleLog`] keeps every level of the perfect subtrees, so after `O(n)` appends a root,
//! an inclusion proof or a consistency proof for any size costs `O(log n)` hashes.
//! [`CompactRange`] keeps only the `O(log n)` perfect-subtree peaks: enough to compute the
//! root while streaming a log of any length.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// Errors of proof construction (arguments out of range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerkleError {
    EmptyTree,
    IndexOutOfRange { index: u64, size: u64 },
    SizeOutOfRange { size: u64, have: u64 },
    BadConsistencyRange { old: u64, new: u64 },
}

impl std::fmt::Display for MerkleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MerkleError::EmptyTree => write!(f, "the tree is empty"),
            MerkleError::IndexOutOfRange { index, size } => {
                write!(f, "leaf index {index} is out of range for tree size {size}")
            }
            MerkleError::SizeOutOfRange { size, have } => {
                write!(f, "tree size {size} is larger than the {have} leaves held")
            }
            MerkleError::BadConsistencyRange { old, new } => {
                write!(
                    f,
                    "consistency needs 0 < old size <= new size, got {old} and {new}"
                )
            }
        }
    }
}

impl std::error::Error for MerkleError {}

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// Largest power of two strictly below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// All levels of the perfect subtrees of an append-only list of leaves.
#[derive(Debug, Clone, Default)]
pub struct MerkleLog {
    /// `levels[k][j]` is the root of leaves `j*2^k .. (j+1)*2^k`.
    levels: Vec<Vec<Hash>>,
}

impl MerkleLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// Append a leaf (its data is hashed with the leaf prefix).
    pub fn push(&mut self, data: &[u8]) {
        self.push_leaf_hash(leaf_hash(data));
    }

    /// Append an already-computed leaf hash.
    pub fn push_leaf_hash(&mut self, h: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(h);
        let mut k = 0;
        while self.levels[k].len() % 2 == 0 {
            let n = self.levels[k].len();
            let parent = node_hash(&self.levels[k][n - 2], &self.levels[k][n - 1]);
            if self.levels.len() == k + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[k + 1].push(parent);
            k += 1;
        }
    }

    /// Root of leaves `lo..hi` where `lo` is a multiple of the largest power of two not
    /// above `hi - lo` (true of every subtree the RFC recursion visits).
    fn subtree(&self, lo: u64, hi: u64) -> Hash {
        let n = hi - lo;
        if n.is_power_of_two() {
            let k = n.trailing_zeros() as usize;
            return self.levels[k][(lo >> k) as usize];
        }
        let k = split(n);
        node_hash(&self.subtree(lo, lo + k), &self.subtree(lo + k, hi))
    }

    fn check_size(&self, size: u64) -> Result<(), MerkleError> {
        if size > self.size() {
            return Err(MerkleError::SizeOutOfRange {
                size,
                have: self.size(),
            });
        }
        Ok(())
    }

    /// Root of the first `size` leaves (the empty-tree root for 0).
    pub fn root(&self, size: u64) -> Result<Hash, MerkleError> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(empty_root());
        }
        Ok(self.subtree(0, size))
    }

    /// RFC 6962 `PATH(index, D[0:size])`, leaf side first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, MerkleError> {
        self.check_size(size)?;
        if index >= size {
            return Err(MerkleError::IndexOutOfRange { index, size });
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    fn path(&self, m: u64, lo: u64, hi: u64, out: &mut Vec<Hash>) {
        let n = hi - lo;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, lo, lo + k, out);
            out.push(self.subtree(lo + k, hi));
        } else {
            self.path(m - k, lo + k, hi, out);
            out.push(self.subtree(lo, lo + k));
        }
    }

    /// RFC 6962 `PROOF(old, D[0:new])`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, MerkleError> {
        self.check_size(new)?;
        if old == 0 || old > new {
            return Err(MerkleError::BadConsistencyRange { old, new });
        }
        let mut proof = Vec::new();
        if old < new {
            self.subproof(old, 0, new, true, &mut proof);
        }
        Ok(proof)
    }

    fn subproof(&self, m: u64, lo: u64, hi: u64, complete: bool, out: &mut Vec<Hash>) {
        let n = hi - lo;
        if m == n {
            if !complete {
                out.push(self.subtree(lo, hi));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, lo, lo + k, complete, out);
            out.push(self.subtree(lo + k, hi));
        } else {
            self.subproof(m - k, lo + k, hi, false, out);
            out.push(self.subtree(lo, lo + k));
        }
    }
}

/// RFC 9162 section 2.1.3.2: check that `leaf_hash` is leaf `index` of the tree of `size`
/// leaves whose root is `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// RFC 9162 section 2.1.4.2: check that the tree of `new_size` leaves with root `new_root`
/// extends the tree of `old_size` leaves with root `old_root`.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size == 0 || old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && fr == *old_root && sr == *new_root
}

/// The peaks of the perfect subtrees of a growing list of leaves: `O(log n)` memory, and
/// the RFC 6962 root of everything pushed so far at any time.
#[derive(Debug, Clone, Default)]
pub struct CompactRange {
    size: u64,
    /// Peaks from the largest (leftmost) subtree to the smallest.
    peaks: Vec<Hash>,
}

impl CompactRange {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append a leaf hash.
    pub fn push_leaf_hash(&mut self, h: Hash) {
        let mut node = h;
        let mut s = self.size;
        while s & 1 == 1 {
            // The lowest set bit of the old size is a peak of the same height: merge.
            let left = self.peaks.pop().unwrap_or([0; 32]);
            node = node_hash(&left, &node);
            s >>= 1;
        }
        self.peaks.push(node);
        self.size += 1;
    }

    /// RFC 6962 root of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        let Some(first) = it.next() else {
            return empty_root();
        };
        it.fold(*first, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 6962 definition, recursively over a slice of leaf hashes.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn roots_match_definition_for_every_size() {
        let all = leaves(70);
        let mut log = MerkleLog::new();
        let mut cr = CompactRange::new();
        assert_eq!(log.root(0).unwrap(), empty_root());
        assert_eq!(cr.root(), empty_root());
        for (i, h) in all.iter().enumerate() {
            log.push_leaf_hash(*h);
            cr.push_leaf_hash(*h);
            let want = mth(&all[..=i]);
            assert_eq!(cr.root(), want, "compact range size {}", i + 1);
            for size in 1..=(i as u64 + 1) {
                assert_eq!(log.root(size).unwrap(), mth(&all[..size as usize]));
            }
        }
    }

    #[test]
    fn inclusion_proofs_verify_for_every_leaf_and_size() {
        let all = leaves(33);
        let mut log = MerkleLog::new();
        all.iter().for_each(|h| log.push_leaf_hash(*h));
        for size in 1..=33u64 {
            let root = log.root(size).unwrap();
            for index in 0..size {
                let proof = log.inclusion_proof(index, size).unwrap();
                let leaf = &all[index as usize];
                assert!(verify_inclusion(leaf, index, size, &proof, &root));
                // Wrong leaf, wrong index, wrong root, truncated proof: all rejected.
                assert!(!verify_inclusion(&[7; 32], index, size, &proof, &root));
                if size > 1 {
                    assert!(!verify_inclusion(
                        leaf,
                        (index + 1) % size,
                        size,
                        &proof,
                        &root
                    ));
                    assert!(!verify_inclusion(leaf, index, size, &proof[1..], &root));
                }
                assert!(!verify_inclusion(leaf, index, size, &proof, &[0; 32]));
            }
        }
        assert_eq!(
            log.inclusion_proof(5, 5),
            Err(MerkleError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert!(log.inclusion_proof(0, 34).is_err());
    }

    #[test]
    fn consistency_proofs_verify_for_every_pair() {
        let all = leaves(33);
        let mut log = MerkleLog::new();
        all.iter().for_each(|h| log.push_leaf_hash(*h));
        for new in 1..=33u64 {
            let new_root = log.root(new).unwrap();
            for old in 1..=new {
                let old_root = log.root(old).unwrap();
                let proof = log.consistency_proof(old, new).unwrap();
                assert!(verify_consistency(old, new, &old_root, &new_root, &proof));
                assert!(!verify_consistency(old, new, &[9; 32], &new_root, &proof));
                if old < new {
                    assert!(!verify_consistency(old, new, &old_root, &[9; 32], &proof));
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(!verify_consistency(old, new, &old_root, &new_root, &bad));
                }
            }
        }
        assert!(log.consistency_proof(0, 3).is_err());
        assert!(log.consistency_proof(4, 3).is_err());
    }

    #[test]
    fn rfc6962_known_root() {
        // Leaf and node prefixes: a 2-leaf tree over "a" and "b".
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut log = MerkleLog::new();
        log.push(b"a");
        log.push(b"b");
        assert_eq!(log.root(2).unwrap(), node_hash(&a, &b));
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }
}
