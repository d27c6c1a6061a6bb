//! Signed context: keyed HMAC-SHA256 signing and verification in batches, and the whole
//! memory-integrity walk over a conversation (API.md 8.1, 8.3, 8.4 and 10).
//!
//! A [`KeySet`] holds the HMAC state of each key already absorbed (the padded key blocks are
//! hashed once, not once per message). Its first key signs; every key verifies, which is how
//! key rotation keeps old signatures valid during a grace period. All tag comparisons are
//! constant time.

pub mod context;
pub mod pyfmt;
pub mod pyjson;
pub mod roles;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::mac::{MacError, TAG_LEN};

type HmacSha256 = Hmac<Sha256>;

/// One or more HMAC-SHA256 keys, ready to use. The first key signs; all keys verify.
#[derive(Clone)]
pub struct KeySet {
    keys: Vec<HmacSha256>,
}

impl std::fmt::Debug for KeySet {
    // Never print key material (or the states derived from it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet({} keys)", self.keys.len())
    }
}

/// Errors of [`KeySet::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySetError {
    /// No key at all.
    NoKeys,
    /// The key at this position is empty.
    EmptyKey(usize),
}

impl std::fmt::Display for KeySetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySetError::NoKeys => write!(f, "at least one secret key is required"),
            KeySetError::EmptyKey(i) => write!(f, "secret key {i} must not be empty"),
        }
    }
}

impl std::error::Error for KeySetError {}

impl From<MacError> for KeySetError {
    fn from(_: MacError) -> Self {
        KeySetError::EmptyKey(0)
    }
}

/// Constant-time equality of two tags, compared as four 64-bit words with `subtle` (one
/// optimisation barrier per word instead of one per byte, as `subtle` does for byte slices).
fn tags_equal(a: &[u8; TAG_LEN], b: &[u8; TAG_LEN]) -> bool {
    use subtle::ConstantTimeEq;
    let mut same = subtle::Choice::from(1u8);
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let mut xw = [0u8; 8];
        let mut yw = [0u8; 8];
        xw.copy_from_slice(x);
        yw.copy_from_slice(y);
        same &= u64::from_le_bytes(xw).ct_eq(&u64::from_le_bytes(yw));
    }
    bool::from(same)
}

/// Decode a hex tag (either case) of exactly [`TAG_LEN`] bytes.
fn decode_tag(tag_hex: &[u8]) -> Option<[u8; TAG_LEN]> {
    crate::mac::unhex32(tag_hex)
}

impl KeySet {
    /// Absorb `keys` (first = signing key). Empty keys are rejected.
    pub fn new<K: AsRef<[u8]>>(keys: &[K]) -> Result<Self, KeySetError> {
        if keys.is_empty() {
            return Err(KeySetError::NoKeys);
        }
        let mut out = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let k = k.as_ref();
            if k.is_empty() {
                return Err(KeySetError::EmptyKey(i));
            }
            out.push(HmacSha256::new_from_slice(k).map_err(|_| KeySetError::EmptyKey(i))?);
        }
        Ok(KeySet { keys: out })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a key set has at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn tag_with(&self, i: usize, message: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.keys[i].clone();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    fn tag_parts_with(&self, i: usize, parts: &[&[u8]]) -> [u8; TAG_LEN] {
        let mut mac = self.keys[i].clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// Raw tag of `message` under the signing key.
    pub fn tag(&self, message: &[u8]) -> [u8; TAG_LEN] {
        self.tag_with(0, message)
    }

    /// Raw tag, under the signing key, of the concatenation of `parts` (without building it).
    pub fn tag_parts(&self, parts: &[&[u8]]) -> [u8; TAG_LEN] {
        self.tag_parts_with(0, parts)
    }

    /// [`KeySet::verify`] of a hex tag over the concatenation of `parts`.
    pub fn verify_parts(&self, parts: &[&[u8]], tag_hex: &[u8]) -> Option<usize> {
        let tag = decode_tag(tag_hex)?;
        (0..self.keys.len()).find(|&i| tags_equal(&self.tag_parts_with(i, parts), &tag))
    }

    /// Lower-case hex tag of `message` under the signing key.
    pub fn sign_hex(&self, message: &[u8]) -> String {
        crate::mac::hex32_string(&self.tag(message))
    }

    /// [`KeySet::sign_hex`] on the stack: the 64 ASCII bytes of the lower-case hex tag.
    pub fn sign_hex_array(&self, message: &[u8]) -> [u8; 2 * TAG_LEN] {
        crate::mac::hex32(&self.tag(message))
    }

    /// Index of the first key under which `tag` (hex of either case, or 32 raw bytes when
    /// `raw`) authenticates `message`, or `None`. Every candidate comparison is constant time.
    pub fn verify(&self, message: &[u8], tag: &[u8], raw: bool) -> Option<usize> {
        let tag: [u8; TAG_LEN] = if raw {
            tag.try_into().ok()?
        } else {
            decode_tag(tag)?
        };
        (0..self.keys.len()).find(|&i| tags_equal(&self.tag_with(i, message), &tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mac::hmac_sha256_hex;

    #[test]
    fn keyset_matches_one_shot_hmac() {
        let ks = KeySet::new(&[b"first-key-of-16b".as_slice(), b"older-key"]).unwrap();
        let tag = ks.sign_hex(b"msg");
        assert_eq!(tag, hmac_sha256_hex(b"first-key-of-16b", b"msg").unwrap());
        assert_eq!(ks.verify(b"msg", tag.as_bytes(), false), Some(0));
        assert_eq!(
            ks.verify(b"msg", tag.to_uppercase().as_bytes(), false),
            Some(0)
        );
        let old = hmac_sha256_hex(b"older-key", b"msg").unwrap();
        assert_eq!(ks.verify(b"msg", old.as_bytes(), false), Some(1));
        assert_eq!(ks.verify(b"msG", old.as_bytes(), false), None);
        let raw = hex::decode(&old).unwrap();
        assert_eq!(ks.verify(b"msg", &raw, true), Some(1));
        assert_eq!(ks.verify(b"msg", &raw[..31], true), None);
        assert_eq!(ks.verify(b"msg", b"zz", false), None);
        assert_eq!(ks.verify(b"msg", &old.as_bytes()[..62], false), None);
        let parts: [&[u8]; 3] = [b"m", b"", b"sg"];
        assert_eq!(ks.tag_parts(&parts), ks.tag(b"msg"));
        assert_eq!(ks.verify_parts(&parts, old.as_bytes()), Some(1));
        assert_eq!(ks.verify_parts(&parts[..2], old.as_bytes()), None);
        assert_eq!(ks.verify_parts(&parts, b"zz"), None);
        assert_eq!(ks.len(), 2);
        assert!(!ks.is_empty());
        assert_eq!(format!("{ks:?}"), "KeySet(2 keys)");
    }

    #[test]
    fn tags_equal_is_exact() {
        let a = [7u8; TAG_LEN];
        assert!(tags_equal(&a, &a));
        for i in 0..TAG_LEN {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!tags_equal(&a, &b), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn keyset_rejects_empty() {
        let none: [&[u8]; 0] = [];
        assert_eq!(KeySet::new(&none).unwrap_err(), KeySetError::NoKeys);
        assert_eq!(
            KeySet::new(&[b"k".as_slice(), b""]).unwrap_err(),
            KeySetError::EmptyKey(1)
        );
        assert_eq!(
            KeySetError::EmptyKey(1).to_string(),
            "secret key 1 must not be empty"
        );
    }

    /// Edge cases beyond RFC 4231 (which `mac` tests). The fox vector is the widely published
    /// one; the others were computed with CPython's `hmac` (OpenSSL), an independent
    /// implementation: empty message, a key of exactly the SHA-256 block size (64 bytes, used
    /// as is), one byte longer (hashed first), and a short key that equals its zero-padded
    /// block-size form (HMAC pads keys with zeros, so the two are the same key).
    #[test]
    fn edge_vectors() {
        let fox = b"The quick brown fox jumps over the lazy dog".as_slice();
        let cases: [(Vec<u8>, &[u8], &str); 6] = [
            (
                b"key".to_vec(),
                fox,
                "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
            ),
            (
                b"key".to_vec(),
                b"",
                "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0",
            ),
            (
                vec![0x61; 64],
                b"block-size key",
                "6421b602fea93db81cfde5f6687713a66e5dbc5a37ab5161a3d3ea6d9cc1330f",
            ),
            (
                vec![0x61; 65],
                b"block-size key",
                "d22b375edd4b0ea02f9180c0c1b1b33ffc014a6bde52cb70473025e8cf6e68f6",
            ),
            (
                [vec![0x61; 64], vec![0]].concat(),
                b"block-size key",
                "90bf44c75b5d891f1f1951c5fa62921afcacd3e0b200329558a51c7683d2bd8c",
            ),
            (
                vec![0x00; 1],
                b"\x00",
                "6620b31f2924b8c01547745f41825d322336f83ebb13d723678789d554d8a3ef",
            ),
        ];
        for (key, msg, want) in cases.iter() {
            let ks = KeySet::new(&[key.as_slice()]).unwrap();
            assert_eq!(ks.sign_hex(msg), *want);
            assert_eq!(hmac_sha256_hex(key, msg).unwrap(), *want);
            assert_eq!(ks.verify(msg, want.as_bytes(), false), Some(0));
        }
        // Zero padding: "a"*63 and "a"*63 + "\0" are the same HMAC key.
        let short = KeySet::new(&[vec![0x61u8; 63]]).unwrap();
        let padded = KeySet::new(&[[vec![0x61u8; 63], vec![0]].concat()]).unwrap();
        assert_eq!(short.sign_hex(b"m"), padded.sign_hex(b"m"));
    }
}
