//! Tamper-evident audit log: canonical entry bytes, hash chaining, streaming verification
//! of JSONL files, RFC 6962 Merkle proofs and a group-committing file writer.
//!
//! Entry format (compatible with the original SDK, see API.md sections 9 and 10): each entry
//! is one JSON line; its hash is `"sha256:" + hex(SHA-256(canonical))` where `canonical` is
//! the line's object without `event_hash` and `merkle_index`, written with Python's
//! `json.dumps(sort_keys=True, separators=(",", ":"), default=str)` rules ([`canon`]).
//! Each entry's `previous_hash` is the hash of the entry before it, or [`GENESIS_SHA256`].
//! New logs may use BLAKE3 instead (`"blake3:"` prefix); such logs are not readable by the
//! original SDK.

pub mod canon;
pub mod event;
pub mod merkle;
pub mod verify;
pub mod writer;

use sha2::{Digest, Sha256};

/// `previous_hash` of the first entry of a SHA-256 chain (the original's `GENESIS_HASH`).
pub const GENESIS_SHA256: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";
/// `previous_hash` of the first entry of a BLAKE3 chain.
pub const GENESIS_BLAKE3: &str =
    "blake3:0000000000000000000000000000000000000000000000000000000000000000";

/// Hash function of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Blake3,
}

impl HashAlg {
    /// Parse `"sha256"` or `"blake3"`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(HashAlg::Sha256),
            "blake3" => Some(HashAlg::Blake3),
            _ => None,
        }
    }

    /// The algorithm named by the prefix of a stored hash (`"sha256:..."`).
    pub fn from_hash(h: &str) -> Option<Self> {
        if h.starts_with("sha256:") {
            Some(HashAlg::Sha256)
        } else if h.starts_with("blake3:") {
            Some(HashAlg::Blake3)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Blake3 => "blake3",
        }
    }

    pub fn genesis(self) -> &'static str {
        match self {
            HashAlg::Sha256 => GENESIS_SHA256,
            HashAlg::Blake3 => GENESIS_BLAKE3,
        }
    }

    /// Raw digest of `data`.
    pub fn digest(self, data: &[u8]) -> [u8; 32] {
        match self {
            HashAlg::Sha256 => Sha256::digest(data).into(),
            HashAlg::Blake3 => *blake3::hash(data).as_bytes(),
        }
    }

    /// `"<name>:" + hex(digest(data))`, the stored form of an entry hash.
    pub fn tagged_hex(self, data: &[u8]) -> String {
        tagged_digest(self, &self.digest(data))
    }
}

/// `"<name>:" + hex(digest)`.
pub fn tagged_digest(alg: HashAlg, digest: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(71);
    out.extend_from_slice(alg.name().as_bytes());
    out.push(b':');
    for byte in digest {
        out.push(HEX[(byte >> 4) as usize]);
        out.push(HEX[(byte & 0xf) as usize]);
    }
    // Only ASCII was written.
    String::from_utf8(out).unwrap_or_default()
}

/// Decode the 32-byte digest of a stored hash `"<alg>:<64 lower-case hex>"`.
pub fn parse_tagged(h: &str) -> Option<(HashAlg, [u8; 32])> {
    let alg = HashAlg::from_hash(h)?;
    let hx = &h[7..];
    if hx.len() != 64 || hx.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Some((alg, crate::mac::unhex32(hx.as_bytes())?))
}

/// The pieces of an entry other than `data`, already in their JSON text form except the
/// strings, which are escaped here.
pub struct EntryHead<'a> {
    pub event_id: &'a str,
    pub timestamp: &'a str,
    /// Decimal text of the sequence number (Python ints may exceed 64 bits).
    pub sequence_number: &'a str,
    pub previous_hash: &'a str,
}

/// Canonical bytes of an entry whose `data` member was already encoded as `data_json`:
/// `{"data":..,"event_id":..,"previous_hash":..,"sequence_number":..,"timestamp":..}`.
pub fn canonical_entry(out: &mut Vec<u8>, head: &EntryHead<'_>, data_json: &[u8]) {
    write_entry(out, head, data_json, None);
}

/// The JSONL line of an entry (with `event_hash`, optional `merkle_index`, and `\n`): the
/// original's `event.to_json()` form, i.e. the canonical object plus those two keys in
/// sorted position.
pub fn entry_line(
    out: &mut Vec<u8>,
    head: &EntryHead<'_>,
    data_json: &[u8],
    event_hash: &str,
    merkle_index: Option<i64>,
) {
    write_entry(out, head, data_json, Some((event_hash, merkle_index)));
    out.push(b'\n');
}

/// Members in sorted key order; `hashed` adds `event_hash` and `merkle_index`.
fn write_entry(
    out: &mut Vec<u8>,
    head: &EntryHead<'_>,
    data_json: &[u8],
    hashed: Option<(&str, Option<i64>)>,
) {
    out.extend_from_slice(b"{\"data\":");
    out.extend_from_slice(data_json);
    if let Some((event_hash, _)) = hashed {
        out.extend_from_slice(b",\"event_hash\":");
        canon::write_str(out, event_hash);
    }
    out.extend_from_slice(b",\"event_id\":");
    canon::write_str(out, head.event_id);
    if let Some((_, Some(i))) = hashed {
        out.extend_from_slice(b",\"merkle_index\":");
        canon::write_i64(out, i);
    }
    out.extend_from_slice(b",\"previous_hash\":");
    canon::write_str(out, head.previous_hash);
    out.extend_from_slice(b",\"sequence_number\":");
    out.extend_from_slice(head.sequence_number.as_bytes());
    out.extend_from_slice(b",\"timestamp\":");
    canon::write_str(out, head.timestamp);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_and_line_agree_with_parse_and_rewrite() {
        let head = EntryHead {
            event_id: "0190-abc",
            timestamp: "2025-01-31T12:00:00.123456+00:00",
            sequence_number: "7",
            previous_hash: GENESIS_SHA256,
        };
        let data = br#"{"a":1}"#;
        let mut c = Vec::new();
        canonical_entry(&mut c, &head, data);
        let h = HashAlg::Sha256.tagged_hex(&c);
        let mut line = Vec::new();
        entry_line(&mut line, &head, data, &h, Some(3));
        let text = std::str::from_utf8(&line).unwrap();
        assert!(text.ends_with("}\n"));
        let v = canon::parse(text.trim_end()).unwrap();
        let mut again = Vec::new();
        canon::write_value(&mut again, &v, &["event_hash", "merkle_index"]);
        assert_eq!(again, c);
        let mut whole = Vec::new();
        canon::write_value(&mut whole, &v, &[]);
        assert_eq!(whole, line[..line.len() - 1]);
    }

    #[test]
    fn tagged_hashes() {
        let h = HashAlg::Sha256.tagged_hex(b"abc");
        assert_eq!(
            h,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(parse_tagged(&h).unwrap().0, HashAlg::Sha256);
        assert!(parse_tagged(&h.to_uppercase()).is_none());
        assert!(parse_tagged("sha256:abc").is_none());
        assert!(parse_tagged("md5:00").is_none());
        let b = HashAlg::Blake3.tagged_hex(b"abc");
        assert!(b.starts_with("blake3:6437b3ac"));
        assert_eq!(
            parse_tagged(GENESIS_BLAKE3).unwrap(),
            (HashAlg::Blake3, [0; 32])
        );
    }
}
