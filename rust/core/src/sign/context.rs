//! The memory-integrity walk over a whole conversation (API.md 8.3 `verify_context`).
//!
//! One call checks every message: HMAC signature (any key of the [`KeySet`]), hash-chain link,
//! sequence, timestamps (order, gaps, and — new — freshness against the caller's clock) and
//! role-injection markers. It returns findings in the original's order; the Python layer turns
//! them into `IntegrityViolation`s (messages and severities live there).

use sha2::{Digest, Sha256};

use super::roles;
use super::KeySet;
use crate::mac::hex32 as hex64;

/// The fields of one signed message, already rendered as the text Python's f-string gives.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub role: &'a str,
    pub content: &'a str,
    /// `f"{sequence}"`.
    pub seq_text: &'a str,
    /// The sequence as an integer, if it is one.
    pub seq: Option<i64>,
    /// `f"{timestamp}"`.
    pub ts_text: &'a str,
    /// The timestamp as a finite number, if it is one.
    pub ts: Option<f64>,
    pub signature: &'a str,
    pub previous_hash: &'a str,
    /// False when some field could not be encoded as UTF-8 (lone surrogates): no valid
    /// signature can exist for it, and its content hash is undefined.
    pub encodable: bool,
    /// The content hash of exactly these fields (hex), when the caller already knows it
    /// (a message keeps the hash computed when it was signed until a field changes).
    pub content_hash: Option<[u8; 64]>,
}

/// Options of [`verify_context`].
#[derive(Debug, Clone)]
pub struct Options<'a> {
    pub genesis: &'a str,
    pub strict_sequence: bool,
    pub check_timestamps: bool,
    pub max_timestamp_drift: f64,
    /// Current time (seconds since the epoch); enables the freshness checks.
    pub now: Option<f64>,
    /// How far in the future a timestamp may be (clock skew allowance).
    pub max_clock_skew: f64,
    /// Maximum age of the newest message, if limited.
    pub max_age: Option<f64>,
}

/// One problem found. `i` is the position in the list.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    Signature {
        i: usize,
    },
    ChainBreak {
        i: usize,
        expected: String,
    },
    Reorder {
        i: usize,
        expected: i128,
        actual: i64,
    },
    Gap {
        i: usize,
        prev: i128,
        seq: i64,
    },
    SequenceType {
        i: usize,
    },
    TimestampBackwards {
        i: usize,
    },
    TimestampGap {
        i: usize,
        gap: f64,
    },
    TimestampInvalid {
        i: usize,
    },
    TimestampFuture {
        i: usize,
        ahead: f64,
    },
    Stale {
        i: usize,
        age: f64,
    },
    Role {
        i: usize,
        rule: usize,
    },
}

/// Value the chain expects after a message whose content hash is undefined. It is not hex,
/// so no honestly signed `previous_hash` equals it.
pub const UNDEFINED_HASH: &str = "<unencodable>";

/// `f"{role}|{content}|{sequence}|{timestamp}|{previous_hash}"` into `buf`.
pub fn signing_bytes(
    buf: &mut Vec<u8>,
    role: &str,
    content: &str,
    seq: &str,
    ts: &str,
    prev: &str,
) {
    buf.clear();
    for (j, part) in [role, content, seq, ts, prev].iter().enumerate() {
        if j > 0 {
            buf.push(b'|');
        }
        buf.extend_from_slice(part.as_bytes());
    }
}

/// `sha256(f"{role}:{content}:{sequence}:{timestamp}")` as lower-case hex bytes.
pub fn content_hash_hex(role: &str, content: &str, seq: &str, ts: &str) -> [u8; 64] {
    let parts: [&[u8]; 7] = [
        role.as_bytes(),
        b":",
        content.as_bytes(),
        b":",
        seq.as_bytes(),
        b":",
        ts.as_bytes(),
    ];
    with_joined(&parts, |data| hex64(&Sha256::digest(data).into()))
}

/// Largest text joined on the stack by [`with_joined`].
const STACK_TEXT: usize = 256;

/// `f(parts.concat())`, joined in a stack buffer when short (one hash update over the whole
/// text costs less than one per part), on the heap otherwise.
fn with_joined<R>(parts: &[&[u8]], f: impl FnOnce(&[u8]) -> R) -> R {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total > STACK_TEXT {
        return f(&parts.concat());
    }
    let mut buf = [0u8; STACK_TEXT];
    let mut at = 0;
    for p in parts {
        buf[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    f(&buf[..at])
}

/// `f(str(seq), repr(ts))`: the two numeric texts of a message, formatted on the stack for
/// the usual values (Python's layout; see [`super::pyfmt::float_repr`]).
pub fn with_number_texts<R>(seq: i128, ts: f64, f: impl FnOnce(&str, &str) -> R) -> R {
    let mut digits = [0u8; 40];
    let mut at = digits.len();
    let mut n = seq.unsigned_abs();
    // 64-bit divisions while the value fits (128-bit ones are library calls).
    while n > u128::from(u64::MAX) {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let mut n = n as u64;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if seq < 0 {
        at -= 1;
        digits[at] = b'-';
    }
    let seq_text = std::str::from_utf8(&digits[at..]).unwrap_or_default();
    super::pyfmt::with_repr(ts, |ts_text| f(seq_text, ts_text))
}

/// `sha256_hex(f"{role}:{content}:{sequence}:{timestamp}")`.
pub fn content_hash(role: &str, content: &str, seq: &str, ts: &str) -> String {
    crate::mac::hex32_str(&content_hash_hex(role, content, seq, ts)).to_owned()
}

/// Sign a message: (signature hex, content hash hex).
pub fn sign(
    keys: &KeySet,
    role: &str,
    content: &str,
    seq: &str,
    ts: &str,
    prev: &str,
) -> (String, String) {
    let (sig, hash) = sign_hex(keys, role, content, seq, ts, prev);
    let text = |h: [u8; 64]| crate::mac::hex32_str(&h).to_owned();
    (text(sig), text(hash))
}

/// [`sign`] as lower-case hex bytes, without building the signed text (`prev` is the
/// UTF-8 text of the previous hash).
pub fn sign_hex<P: AsRef<[u8]> + ?Sized>(
    keys: &KeySet,
    role: &str,
    content: &str,
    seq: &str,
    ts: &str,
    prev: &P,
) -> ([u8; 64], [u8; 64]) {
    let prev = prev.as_ref();
    let fields = [
        role.as_bytes(),
        content.as_bytes(),
        seq.as_bytes(),
        ts.as_bytes(),
    ];
    let hashed: usize = fields.iter().map(|f| f.len()).sum::<usize>() + 3;
    if hashed + 1 + prev.len() > STACK_TEXT {
        let parts = signed_parts(role, content, seq, ts, prev);
        return (
            with_joined(&parts, |data| hex64(&keys.tag(data))),
            content_hash_hex(role, content, seq, ts),
        );
    }
    // Both texts hold the same four fields in the same order, `:`-separated for the content
    // hash and `|`-separated (then `|previous_hash`) for the signature: join them once, hash,
    // then turn the separators and append the link.
    let mut buf = [0u8; STACK_TEXT];
    let mut seps = [0usize; 3];
    let mut at = 0;
    for (j, field) in fields.iter().enumerate() {
        if j > 0 {
            seps[j - 1] = at;
            buf[at] = b':';
            at += 1;
        }
        buf[at..at + field.len()].copy_from_slice(field);
        at += field.len();
    }
    let hash = hex64(&Sha256::digest(&buf[..at]).into());
    for i in seps {
        buf[i] = b'|';
    }
    buf[at] = b'|';
    buf[at + 1..at + 1 + prev.len()].copy_from_slice(prev);
    let sig = hex64(&keys.tag(&buf[..at + 1 + prev.len()]));
    (sig, hash)
}

/// The pieces of `f"{role}|{content}|{sequence}|{timestamp}|{previous_hash}"`.
fn signed_parts<'a>(
    role: &'a str,
    content: &'a str,
    seq: &'a str,
    ts: &'a str,
    prev: &'a [u8],
) -> [&'a [u8]; 9] {
    [
        role.as_bytes(),
        b"|",
        content.as_bytes(),
        b"|",
        seq.as_bytes(),
        b"|",
        ts.as_bytes(),
        b"|",
        prev,
    ]
}

/// Whether the hex `signature` authenticates the message under any key of `keys` (`prev`
/// and `signature` are UTF-8 texts).
pub fn verify_one<P: AsRef<[u8]> + ?Sized, S: AsRef<[u8]> + ?Sized>(
    keys: &KeySet,
    role: &str,
    content: &str,
    seq: &str,
    ts: &str,
    prev: &P,
    signature: &S,
) -> bool {
    with_joined(
        &signed_parts(role, content, seq, ts, prev.as_ref()),
        |data| keys.verify(data, signature.as_ref(), false),
    )
    .is_some()
}

/// Walk `entries` and return every finding, in the original's order (per message: signature
/// or chain, sequence, timestamps, role markers; then the staleness of the newest message).
pub fn verify_context(keys: &KeySet, entries: &[Entry<'_>], opts: &Options<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    // The link the next message must carry (hex text; genesis may be any string).
    let mut expected_hash: Vec<u8> = opts.genesis.as_bytes().to_vec();
    let mut prev_seq: Option<i128> = Some(-1);
    let mut prev_ts = 0.0f64;
    for (i, e) in entries.iter().enumerate() {
        // 1. signature, then chain link
        let sig_ok = e.encodable
            && verify_one(
                keys,
                e.role,
                e.content,
                e.seq_text,
                e.ts_text,
                e.previous_hash,
                e.signature,
            );
        if !sig_ok {
            out.push(Finding::Signature { i });
        } else if e.previous_hash.as_bytes() != expected_hash.as_slice() {
            out.push(Finding::ChainBreak {
                i,
                expected: String::from_utf8_lossy(&expected_hash).into_owned(),
            });
        }
        // 2. sequence
        if opts.strict_sequence {
            match (e.seq, prev_seq) {
                (None, _) => out.push(Finding::SequenceType { i }),
                (Some(s), Some(p)) if i128::from(s) != p + 1 => {
                    if i128::from(s) <= p {
                        out.push(Finding::Reorder {
                            i,
                            expected: p + 1,
                            actual: s,
                        });
                    } else {
                        out.push(Finding::Gap { i, prev: p, seq: s });
                    }
                }
                _ => {}
            }
        }
        prev_seq = e.seq.map(i128::from);
        // 3. timestamps
        if opts.check_timestamps {
            match e.ts {
                None => out.push(Finding::TimestampInvalid { i }),
                Some(t) => {
                    if prev_ts > 0.0 {
                        if t < prev_ts {
                            out.push(Finding::TimestampBackwards { i });
                        } else if t - prev_ts > opts.max_timestamp_drift {
                            out.push(Finding::TimestampGap {
                                i,
                                gap: t - prev_ts,
                            });
                        }
                    }
                    if let Some(now) = opts.now {
                        if t - now > opts.max_clock_skew {
                            out.push(Finding::TimestampFuture { i, ahead: t - now });
                        }
                    }
                }
            }
        }
        if let Some(t) = e.ts {
            prev_ts = t;
        }
        // 4. role markers
        if let Some(rule) = roles::first_rule(e.content) {
            out.push(Finding::Role { i, rule });
        }
        // 5. the chain continues from the message as received
        expected_hash.clear();
        if let (true, Some(h)) = (e.encodable, &e.content_hash) {
            expected_hash.extend_from_slice(h);
        } else if e.encodable {
            expected_hash
                .extend_from_slice(&content_hash_hex(e.role, e.content, e.seq_text, e.ts_text));
        } else {
            expected_hash.extend_from_slice(UNDEFINED_HASH.as_bytes());
        }
    }
    if opts.check_timestamps {
        if let (Some(now), Some(max_age), Some(last)) = (opts.now, opts.max_age, entries.last()) {
            if let Some(t) = last.ts {
                if now - t > max_age {
                    out.push(Finding::Stale {
                        i: entries.len() - 1,
                        age: now - t,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::pyfmt::float_repr;
    use super::*;

    #[test]
    fn number_texts_are_str_and_repr() {
        let seqs: [i128; 7] = [
            0,
            7,
            -1,
            255,
            1 << 40,
            i128::from(i64::MIN),
            i128::from(u64::MAX),
        ];
        let tss = [
            1712345678.1234567,
            0.0,
            -0.0,
            0.5,
            1e16,
            1e-5,
            -3.25,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1723995744893766.2,
            123.0,
        ];
        for seq in seqs {
            for ts in tss {
                let (a, b) = with_number_texts(seq, ts, |a, b| (a.to_owned(), b.to_owned()));
                assert_eq!(a, seq.to_string());
                assert_eq!(b, float_repr(ts), "{ts}");
            }
        }
    }

    #[test]
    fn joined_texts_hash_as_parts() {
        let keys = KeySet::new(&[b"k".as_slice()]).unwrap();
        let long = "x".repeat(STACK_TEXT + 10);
        // "user|" + content + "|3|1.5|p": the signed text fills the stack buffer exactly
        // (and overflows it by one) at these lengths.
        let fits = "y".repeat(STACK_TEXT - 13);
        let over = "y".repeat(STACK_TEXT - 12);
        // Separators inside a field stay as they are; only the joins change.
        for content in ["", "hi", "a:b|c::|", &fits, &over, long.as_str()] {
            let (sig, h) = sign_hex(&keys, "user", content, "3", "1.5", "p");
            let text = format!("user|{content}|3|1.5|p");
            assert_eq!(sig, hex64(&keys.tag(text.as_bytes())));
            let hashed = format!("user:{content}:3:1.5");
            assert_eq!(h, hex64(&Sha256::digest(hashed.as_bytes()).into()));
            let sig = std::str::from_utf8(&sig).unwrap();
            assert!(verify_one(&keys, "user", content, "3", "1.5", "p", sig));
            assert!(!verify_one(&keys, "user", content, "3", "1.5", "q", sig));
        }
    }

    struct Owned {
        role: String,
        content: String,
        seq: i64,
        seq_text: String,
        ts: f64,
        ts_text: String,
        sig: String,
        prev: String,
    }

    fn chain(keys: &KeySet, msgs: &[(&str, &str, f64)]) -> Vec<Owned> {
        let mut prev = "0".repeat(64);
        let mut out = Vec::new();
        for (n, (role, content, ts)) in msgs.iter().enumerate() {
            let seq_text = n.to_string();
            let ts_text = float_repr(*ts);
            let (sig, h) = sign(keys, role, content, &seq_text, &ts_text, &prev);
            out.push(Owned {
                role: role.to_string(),
                content: content.to_string(),
                seq: n as i64,
                seq_text,
                ts: *ts,
                ts_text,
                sig,
                prev: prev.clone(),
            });
            prev = h;
        }
        out
    }

    fn entries(o: &[Owned]) -> Vec<Entry<'_>> {
        o.iter()
            .map(|m| Entry {
                role: &m.role,
                content: &m.content,
                seq_text: &m.seq_text,
                seq: Some(m.seq),
                ts_text: &m.ts_text,
                ts: Some(m.ts),
                signature: &m.sig,
                previous_hash: &m.prev,
                encodable: true,
                content_hash: None,
            })
            .collect()
    }

    fn opts(genesis: &str) -> Options<'_> {
        Options {
            genesis,
            strict_sequence: true,
            check_timestamps: true,
            max_timestamp_drift: 60.0,
            now: Some(1_700_000_100.0),
            max_clock_skew: 60.0,
            max_age: None,
        }
    }

    #[test]
    fn canonical_bytes_and_hash() {
        let mut buf = Vec::new();
        signing_bytes(&mut buf, "user", "hi", "0", "1.5", "ab");
        assert_eq!(buf, b"user|hi|0|1.5|ab");
        assert_eq!(
            content_hash("user", "hi", "0", "1.5"),
            crate::mac::sha256_hex(b"user:hi:0:1.5")
        );
        let keys = KeySet::new(&[b"0123456789abcdef"]).unwrap();
        let (sig, h) = sign(&keys, "user", "hi", "0", "1.5", "ab");
        assert_eq!(sig, keys.sign_hex(b"user|hi|0|1.5|ab"));
        assert_eq!(h, content_hash("user", "hi", "0", "1.5"));
        assert!(verify_one(&keys, "user", "hi", "0", "1.5", "ab", &sig));
        assert!(!verify_one(&keys, "user", "hi", "0", "1.5", "ac", &sig));
        assert!(!verify_one(&keys, "user", "hi", "0", "1.5", "ab", "00"));
    }

    #[test]
    fn intact_chain_verifies_and_tampering_is_found() {
        let keys = KeySet::new(&[b"0123456789abcdef"]).unwrap();
        let g = "0".repeat(64);
        let msgs = chain(
            &keys,
            &[
                ("user", "Help me", 1_700_000_000.5),
                ("assistant", "Sure", 1_700_000_001.0),
                ("user", "thanks", 1_700_000_002.25),
            ],
        );
        assert!(verify_context(&keys, &entries(&msgs), &opts(&g)).is_empty());

        let mut e = entries(&msgs);
        e[1].content = "Sure!";
        assert_eq!(
            verify_context(&keys, &e, &opts(&g)),
            vec![
                Finding::Signature { i: 1 },
                Finding::ChainBreak {
                    i: 2,
                    expected: content_hash("assistant", "Sure!", "1", "1700000001.0"),
                }
            ]
        );

        // Drop the middle message: the link and the sequence both break.
        let e = entries(&msgs);
        let dropped = vec![e[0].clone(), e[2].clone()];
        let got = verify_context(&keys, &dropped, &opts(&g));
        assert!(matches!(got[0], Finding::ChainBreak { i: 1, .. }));
        assert_eq!(
            got[1],
            Finding::Gap {
                i: 1,
                prev: 0,
                seq: 2
            }
        );

        // Reordered.
        let swapped = vec![e[1].clone(), e[0].clone()];
        let got = verify_context(&keys, &swapped, &opts(&g));
        assert!(got.contains(&Finding::Reorder {
            i: 1,
            expected: 2,
            actual: 0
        }));
        assert!(got.contains(&Finding::TimestampBackwards { i: 1 }));

        // Another key does not verify; the old key in second place does.
        let other = KeySet::new(&[b"another-key-0000"]).unwrap();
        assert_eq!(verify_context(&other, &entries(&msgs), &opts(&g)).len(), 3);
        let rotated = KeySet::new(&[b"another-key-0000", b"0123456789abcdef"]).unwrap();
        assert!(verify_context(&rotated, &entries(&msgs), &opts(&g)).is_empty());
    }

    #[test]
    fn known_content_hash_is_used_as_given() {
        let keys = KeySet::new(&[b"0123456789abcdef"]).unwrap();
        let g = "0".repeat(64);
        let msgs = chain(
            &keys,
            &[
                ("user", "a", 1_700_000_000.0),
                ("user", "b", 1_700_000_001.0),
            ],
        );
        let mut e = entries(&msgs);
        let right = content_hash_hex("user", "a", "0", "1700000000.0");
        e[0].content_hash = Some(right);
        assert!(verify_context(&keys, &e, &opts(&g)).is_empty());
        e[0].content_hash = Some([b'f'; 64]);
        assert!(matches!(
            verify_context(&keys, &e, &opts(&g))[..],
            [Finding::ChainBreak { i: 1, .. }]
        ));
    }

    #[test]
    fn clock_checks() {
        let keys = KeySet::new(&[b"0123456789abcdef"]).unwrap();
        let g = "0".repeat(64);
        let msgs = chain(
            &keys,
            &[
                ("user", "a", 1_700_000_000.0),
                ("user", "b", 1_700_000_500.0),
            ],
        );
        let mut o = opts(&g);
        let got = verify_context(&keys, &entries(&msgs), &o);
        assert_eq!(
            got,
            vec![
                Finding::TimestampGap { i: 1, gap: 500.0 },
                Finding::TimestampFuture { i: 1, ahead: 400.0 }
            ]
        );
        o.now = Some(1_700_001_000.0);
        o.max_age = Some(300.0);
        o.max_timestamp_drift = 1000.0;
        assert_eq!(
            verify_context(&keys, &entries(&msgs), &o),
            vec![Finding::Stale { i: 1, age: 500.0 }]
        );
        o.check_timestamps = false;
        assert!(verify_context(&keys, &entries(&msgs), &o).is_empty());
    }

    #[test]
    fn malformed_fields_fail_closed() {
        let keys = KeySet::new(&[b"0123456789abcdef"]).unwrap();
        let g = "0".repeat(64);
        let msgs = chain(&keys, &[("user", "a", 1_700_000_000.0)]);
        let mut e = entries(&msgs);
        e[0].seq = None;
        e[0].ts = None;
        assert_eq!(
            verify_context(&keys, &e, &opts(&g)),
            vec![
                Finding::SequenceType { i: 0 },
                Finding::TimestampInvalid { i: 0 }
            ]
        );
        let mut e = entries(&msgs);
        e[0].encodable = false;
        assert_eq!(
            verify_context(&keys, &e, &opts(&g)),
            vec![Finding::Signature { i: 0 }]
        );
        let mut e = entries(&msgs);
        e[0].seq = Some(i64::MAX);
        let got = verify_context(&keys, &e, &opts(&g));
        assert!(got.contains(&Finding::Gap {
            i: 0,
            prev: -1,
            seq: i64::MAX
        }));
    }

    #[test]
    fn role_markers_reported() {
        let keys = KeySet::new(&[b"0123456789abcdef"]).unwrap();
        let g = "0".repeat(64);
        let msgs = chain(
            &keys,
            &[
                ("user", "ok", 1_700_000_000.0),
                ("user", "x\nsystem: y", 1_700_000_001.0),
            ],
        );
        assert_eq!(
            verify_context(&keys, &entries(&msgs), &opts(&g)),
            vec![Finding::Role { i: 1, rule: 1 }]
        );
    }
}
