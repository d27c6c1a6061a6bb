//! The pieces of an authorization audit entry that the original SDK builds in Python, made
//! natively so that one call per entry does the whole job:
//!
//! - [`iso_utc`]: `datetime.isoformat()` of an aware UTC datetime given as microseconds since
//!   the Unix epoch (`YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`, the fraction omitted when it is
//!   zero, years 0001-9999 as Python's `datetime` allows);
//! - [`uuid7`]: the original's UUIDv7-style event id (48-bit big-endian Unix milliseconds,
//!   then 10 random bytes, version nibble 7, RFC 4122 variant);
//! - [`random_bytes`]: operating-system randomness, read in blocks and handed out in small
//!   pieces (a block is never shared between a process and a child it forks);
//! - [`write_authorization_data`]: the layout of `AuditEventData.to_dict()` of an
//!   authorization decision, members in the sorted order `json.dumps(sort_keys=True)` gives
//!   them, with the values written by a caller-supplied closure (the binding encodes Python
//!   objects there). The order of the closure calls is the order in which `json.dumps`
//!   meets the values, so an unencodable value raises the same error first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::canon;

/// Microseconds since the Unix epoch of `0001-01-01T00:00:00` (Python's `datetime.min`).
pub const MIN_US: i64 = -62_135_596_800_000_000;
/// Microseconds since the Unix epoch of `9999-12-31T23:59:59.999999` (`datetime.max`).
pub const MAX_US: i64 = 253_402_300_799_999_999;

/// The current time in microseconds since the Unix epoch (floor, as `datetime.now()`).
pub fn now_us() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(MAX_US),
        // A clock before 1970: negative, floored like Python's.
        Err(e) => {
            let d = e.duration();
            let us = i64::try_from(d.as_micros()).unwrap_or(-MIN_US);
            if d.as_nanos() % 1000 == 0 {
                -us
            } else {
                -us - 1
            }
        }
    }
}

/// Civil date of a day count since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[inline]
fn push_num(out: &mut Vec<u8>, v: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut v = v;
    for i in (0..width).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// Why a timestamp cannot be formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange(pub i64);

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "timestamp of {} microseconds since the epoch is outside the years 1-9999",
            self.0
        )
    }
}

impl std::error::Error for OutOfRange {}

/// Append `datetime.isoformat()` of the aware UTC datetime `us` microseconds after the epoch.
pub fn iso_utc(out: &mut Vec<u8>, us: i64) -> Result<(), OutOfRange> {
    if !(MIN_US..=MAX_US).contains(&us) {
        return Err(OutOfRange(us));
    }
    let secs = us.div_euclid(1_000_000);
    let micro = us.rem_euclid(1_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    push_num(out, y as u32, 4);
    out.push(b'-');
    push_num(out, m, 2);
    out.push(b'-');
    push_num(out, d, 2);
    out.push(b'T');
    push_num(out, sod / 3600, 2);
    out.push(b':');
    push_num(out, sod / 60 % 60, 2);
    out.push(b':');
    push_num(out, sod % 60, 2);
    if micro != 0 {
        out.push(b'.');
        push_num(out, micro, 6);
    }
    out.extend_from_slice(b"+00:00");
    Ok(())
}

/// `iso_utc` as a `String`.
pub fn iso_utc_string(us: i64) -> Result<String, OutOfRange> {
    let mut v = Vec::with_capacity(32);
    iso_utc(&mut v, us)?;
    // Only ASCII digits and punctuation were written.
    Ok(String::from_utf8(v).unwrap_or_default())
}

/// The original's UUIDv7-style id from Unix milliseconds and 10 random bytes.
pub fn uuid7(ms: u64, random: &[u8; 10]) -> String {
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&(ms & 0xffff_ffff_ffff).to_be_bytes()[2..]);
    b[6..].copy_from_slice(random);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 36];
    let mut j = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[j] = b'-';
            j += 1;
        }
        out[j] = HEX[(byte >> 4) as usize];
        out[j + 1] = HEX[(byte & 0xf) as usize];
        j += 2;
    }
    // Only ASCII was written.
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

const POOL_BLOCK: usize = 4096;

struct Pool {
    generation: u64,
    buf: Vec<u8>,
    used: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    generation: u64::MAX,
    buf: Vec::new(),
    used: 0,
});

/// Bumped in a child process right after a fork (see [`note_fork`]).
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Tell [`random_bytes`] that this process is a child just forked: the block it inherited
/// is discarded, so parent and child never hand out the same bytes. The Python binding
/// calls this from an `os.register_at_fork(after_in_child=...)` hook (every fork that goes
/// on running Python code runs those hooks).
pub fn note_fork() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Fill `dest` with operating-system randomness (the source of `os.urandom`: `getrandom(2)`
/// on Linux, `BCryptGenRandom` on Windows, and so on, through the `getrandom` crate). Bytes
/// are read a block at a time and handed out once each; a fork (see [`note_fork`])
/// discards the inherited block.
pub fn random_bytes(dest: &mut [u8]) -> std::io::Result<()> {
    fn os_random(dest: &mut [u8]) -> std::io::Result<()> {
        getrandom::fill(dest).map_err(std::io::Error::from)
    }
    let generation = FORK_GENERATION.load(Ordering::SeqCst);
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if dest.len() > POOL_BLOCK {
        drop(pool);
        return os_random(dest);
    }
    if pool.generation != generation || pool.buf.len() - pool.used < dest.len() {
        let mut block = vec![0u8; POOL_BLOCK];
        os_random(&mut block)?;
        pool.buf = block;
        pool.used = 0;
        pool.generation = generation;
    }
    let start = pool.used;
    dest.copy_from_slice(&pool.buf[start..start + dest.len()]);
    // Hand-out bytes are wiped from the pool so they are never given twice.
    pool.buf[start..start + dest.len()].fill(0);
    pool.used += dest.len();
    Ok(())
}

/// A value of an authorization entry, in the order `json.dumps(sort_keys=True)` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthField {
    AgentId,
    Capabilities,
    TrustScore,
    Allowed,
    Policies,
    Reason,
    ExecutionResult,
    Arguments,
    ToolName,
    Attributes,
    Roles,
    SessionId,
    UserId,
}

/// Write `AuditEventData.to_dict()` of an authorization decision canonically:
/// `{"agent":..,"authorization":{"allowed","metadata":{},"policies_evaluated","reason"},
/// "error_message":null,"event_type":"authorization_granted|denied","execution_result":..,
/// "tool_call":{"arguments","timestamp","tool_name"},"user":{"attributes","roles",
/// "session_id","user_id"}}`, the agent member `null` unless `with_agent`. `value` writes
/// each [`AuthField`]; an error it returns stops the writing.
pub fn write_authorization_data<E>(
    out: &mut Vec<u8>,
    granted: bool,
    with_agent: bool,
    tool_timestamp: &str,
    mut value: impl FnMut(&mut Vec<u8>, AuthField) -> Result<(), E>,
) -> Result<(), E> {
    out.extend_from_slice(b"{\"agent\":");
    if with_agent {
        out.extend_from_slice(b"{\"agent_id\":");
        value(out, AuthField::AgentId)?;
        out.extend_from_slice(b",\"capabilities\":");
        value(out, AuthField::Capabilities)?;
        out.extend_from_slice(b",\"trust_score\":");
        value(out, AuthField::TrustScore)?;
        out.push(b'}');
    } else {
        out.extend_from_slice(b"null");
    }
    out.extend_from_slice(b",\"authorization\":{\"allowed\":");
    value(out, AuthField::Allowed)?;
    out.extend_from_slice(b",\"metadata\":{},\"policies_evaluated\":");
    value(out, AuthField::Policies)?;
    out.extend_from_slice(b",\"reason\":");
    value(out, AuthField::Reason)?;
    out.extend_from_slice(b"},\"error_message\":null,\"event_type\":");
    out.extend_from_slice(if granted {
        b"\"authorization_granted\""
    } else {
        b"\"authorization_denied\""
    });
    out.extend_from_slice(b",\"execution_result\":");
    value(out, AuthField::ExecutionResult)?;
    out.extend_from_slice(b",\"tool_call\":{\"arguments\":");
    value(out, AuthField::Arguments)?;
    out.extend_from_slice(b",\"timestamp\":");
    canon::write_str(out, tool_timestamp);
    out.extend_from_slice(b",\"tool_name\":");
    value(out, AuthField::ToolName)?;
    out.extend_from_slice(b"},\"user\":{\"attributes\":");
    value(out, AuthField::Attributes)?;
    out.extend_from_slice(b",\"roles\":");
    value(out, AuthField::Roles)?;
    out.extend_from_slice(b",\"session_id\":");
    value(out, AuthField::SessionId)?;
    out.extend_from_slice(b",\"user_id\":");
    value(out, AuthField::UserId)?;
    out.extend_from_slice(b"}}");
    Ok(())
}

/// The original SDK's Merkle pair hash: SHA-256 of the two hashes' texts concatenated after
/// removing every `"sha256:"` substring, as `"sha256:<hex>"`.
pub fn legacy_pair(left: &str, right: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for side in [left, right] {
        // `side.replace("sha256:", "")`, without copying in the usual case of one prefix.
        match side.strip_prefix("sha256:") {
            Some(rest) if !rest.contains("sha256:") => h.update(rest.as_bytes()),
            _ => h.update(side.replace("sha256:", "").as_bytes()),
        }
    }
    super::tagged_digest(super::HashAlg::Sha256, &h.finalize().into())
}

/// The original SDK's `MerkleTree.compute_root` over `leaves`: a single leaf is its own
/// root; otherwise leaves pair up level by level, an odd last node paired with itself.
/// `None` for no leaves.
pub fn legacy_merkle_root<S: AsRef<str>>(leaves: &[S]) -> Option<String> {
    match leaves {
        [] => None,
        [one] => Some(one.as_ref().to_string()),
        _ => {
            let mut level: Vec<String> = leaves
                .chunks(2)
                .map(|p| legacy_pair(p[0].as_ref(), p[p.len() - 1].as_ref()))
                .collect();
            while level.len() > 1 {
                level = level
                    .chunks(2)
                    .map(|p| legacy_pair(&p[0], &p[p.len() - 1]))
                    .collect();
            }
            level.pop()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(us: i64) -> String {
        iso_utc_string(us).unwrap()
    }

    #[test]
    fn isoformat_like_python() {
        assert_eq!(iso(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso(1), "1970-01-01T00:00:00.000001+00:00");
        assert_eq!(iso(-1), "1969-12-31T23:59:59.999999+00:00");
        // datetime(2025, 1, 31, 12, 0, 0, 123456, tzinfo=timezone.utc).timestamp()
        assert_eq!(
            iso(1_738_324_800_123_456),
            "2025-01-31T12:00:00.123456+00:00"
        );
        assert_eq!(iso(1_738_324_800_000_000), "2025-01-31T12:00:00+00:00");
        assert_eq!(iso(951_782_400_000_000), "2000-02-29T00:00:00+00:00");
        assert_eq!(iso(MIN_US), "0001-01-01T00:00:00+00:00");
        assert_eq!(iso(MAX_US), "9999-12-31T23:59:59.999999+00:00");
        // Year 999 is zero-padded.
        assert_eq!(iso(-30_641_760_000_000_000), "0999-01-01T00:00:00+00:00");
        assert_eq!(iso_utc_string(MAX_US + 1), Err(OutOfRange(MAX_US + 1)));
        assert!(iso_utc_string(MIN_US - 1).is_err());
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // Day counts -> civil dates are consecutive and valid across leap rules.
        let mut prev = civil_from_days(-146_097 * 2 - 1);
        for z in (-146_097 * 2)..(146_097 * 2) {
            let (y, m, d) = civil_from_days(z);
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let dim = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            assert!((1..=12).contains(&m) && d >= 1 && d <= dim[(m - 1) as usize]);
            let (py, pm, pd) = prev;
            let next_day = (py, pm, pd + 1) == (y, m, d);
            let next_month = (py, pm + 1, 1) == (y, m, d);
            let next_year = (py + 1, 1, 1) == (y, m, d) && pm == 12;
            assert!(
                next_day || next_month || next_year,
                "{prev:?} -> {y}-{m}-{d}"
            );
            prev = (y, m, d);
        }
    }

    #[test]
    fn uuid7_layout() {
        let id = uuid7(0x0190_a1b2_c3d4, &[0xff; 10]);
        assert_eq!(id, "0190a1b2-c3d4-7fff-bfff-ffffffffffff");
        let id = uuid7(1, &[0; 10]);
        assert_eq!(id, "00000000-0001-7000-8000-000000000000");
        // Only 48 bits of milliseconds are kept.
        assert_eq!(&uuid7(1 << 48, &[0; 10])[..13], "00000000-0000");
    }

    #[test]
    fn random_bytes_differ_and_fill() {
        let mut a = [0u8; 10];
        let mut b = [0u8; 10];
        random_bytes(&mut a).unwrap();
        random_bytes(&mut b).unwrap();
        assert_ne!(a, b);
        let mut big = vec![0u8; POOL_BLOCK + 1];
        random_bytes(&mut big).unwrap();
        assert!(big.iter().any(|&x| x != 0));
        // Draining more than a block refills it.
        for _ in 0..(POOL_BLOCK / 10 + 5) {
            random_bytes(&mut a).unwrap();
        }
        // After a fork the inherited block is dropped: the next bytes come from a new read.
        let used_before = POOL.lock().unwrap().used;
        assert!(used_before > 0);
        note_fork();
        random_bytes(&mut a).unwrap();
        assert_eq!(POOL.lock().unwrap().used, 10);
    }

    #[test]
    fn authorization_layout() {
        let mut out = Vec::new();
        let r: Result<(), ()> = write_authorization_data(&mut out, true, true, "T", |o, f| {
            o.extend_from_slice(format!("{f:?}").as_bytes());
            Ok(())
        });
        r.unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"agent\":{\"agent_id\":AgentId,\"capabilities\":Capabilities,\
             \"trust_score\":TrustScore},\"authorization\":{\"allowed\":Allowed,\
             \"metadata\":{},\"policies_evaluated\":Policies,\"reason\":Reason},\
             \"error_message\":null,\"event_type\":\"authorization_granted\",\
             \"execution_result\":ExecutionResult,\"tool_call\":{\"arguments\":Arguments,\
             \"timestamp\":\"T\",\"tool_name\":ToolName},\"user\":{\"attributes\":Attributes,\
             \"roles\":Roles,\"session_id\":SessionId,\"user_id\":UserId}}"
        );
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let r = write_authorization_data(&mut out, false, false, "T", |_, f| {
            seen.push(f);
            if f == AuthField::Arguments {
                Err("bad")
            } else {
                Ok(())
            }
        });
        assert_eq!(r, Err("bad"));
        assert_eq!(
            seen,
            [
                AuthField::Allowed,
                AuthField::Policies,
                AuthField::Reason,
                AuthField::ExecutionResult,
                AuthField::Arguments
            ]
        );
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with("{\"agent\":null,"));
    }

    #[test]
    fn legacy_merkle_root_matches_the_original_algorithm() {
        let h = |i: u8| HashAlgTest::leaf(i);
        assert_eq!(legacy_merkle_root::<&str>(&[]), None);
        assert_eq!(legacy_merkle_root(&[h(1)]), Some(h(1)));
        let ab = legacy_pair(&h(1), &h(2));
        let cc = legacy_pair(&h(3), &h(3));
        assert_eq!(
            legacy_merkle_root(&[h(1), h(2), h(3)]),
            Some(legacy_pair(&ab, &cc))
        );
        // Pair hash = sha256 of the hex texts concatenated.
        let want = super::super::HashAlg::Sha256
            .tagged_hex(format!("{}{}", &h(1)[7..], &h(2)[7..]).as_bytes());
        assert_eq!(ab, want);
        // Five leaves: (ab, cd, ee) -> (abcd, eeee) -> root.
        let cd = legacy_pair(&h(3), &h(4));
        let ee = legacy_pair(&h(5), &h(5));
        let abcd = legacy_pair(&ab, &cd);
        let eeee = legacy_pair(&ee, &ee);
        assert_eq!(
            legacy_merkle_root(&[h(1), h(2), h(3), h(4), h(5)]),
            Some(legacy_pair(&abcd, &eeee))
        );
    }

    struct HashAlgTest;
    impl HashAlgTest {
        fn leaf(i: u8) -> String {
            super::super::HashAlg::Sha256.tagged_hex(&[i])
        }
    }
}
