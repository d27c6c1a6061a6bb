//! UTC civil time from microseconds since the Unix epoch, as Python's `datetime` holds it.
//!
//! `IntentCapsule.create` takes the clock once natively and needs both its `created_at` and
//! `expires_at` as `datetime` fields (their ISO texts are signed, and the objects are built
//! from the `datetime` pickle state, the cheapest constructor the stable ABI offers).

use std::time::{SystemTime, UNIX_EPOCH};

use super::Civil;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Microseconds since the epoch of `datetime(1, 1, 1, tzinfo=timezone.utc)` (`datetime.min`).
pub const MIN_MICROS: i64 = -62_135_596_800_000_000;
/// Microseconds since the epoch of `datetime(9999, 12, 31, 23, 59, 59, 999999)` in UTC
/// (`datetime.max`).
pub const MAX_MICROS: i64 = 253_402_300_799_999_999;

/// The civil fields of `datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)`,
/// or `None` outside `datetime`'s range (years 1 to 9999).
pub fn civil_from_unix_micros(us: i64) -> Option<Civil> {
    if !(MIN_MICROS..=MAX_MICROS).contains(&us) {
        return None;
    }
    let days = us.div_euclid(MICROS_PER_DAY);
    let rest = us.rem_euclid(MICROS_PER_DAY);
    // Days to year/month/day (Hinnant's `civil_from_days`, proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let secs = rest / 1_000_000;
    Some(Civil {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
        microsecond: rest % 1_000_000,
    })
}

/// The 10-byte pickle state of a `datetime` with these fields (fold 0): year (2 bytes,
/// big-endian), month, day, hour, minute, second, microsecond (3 bytes, big-endian).
/// `datetime(state, tzinfo)` rebuilds the object from it. `t` must be in `datetime`'s range
/// (as [`civil_from_unix_micros`] gives).
pub fn pickle_state(t: &Civil) -> [u8; 10] {
    let b = |v: i64, shift: u32| ((v >> shift) & 0xff) as u8;
    [
        b(t.year, 8),
        b(t.year, 0),
        b(t.month, 0),
        b(t.day, 0),
        b(t.hour, 0),
        b(t.minute, 0),
        b(t.second, 0),
        b(t.microsecond, 16),
        b(t.microsecond, 8),
        b(t.microsecond, 0),
    ]
}

/// The system (real-time) clock in whole microseconds since the epoch, rounded down, as
/// `datetime.now()` reads it; `None` before 1970 or beyond `datetime`'s range.
pub fn unix_micros_now() -> Option<i64> {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(d.as_micros())
        .ok()
        .filter(|us| *us <= MAX_MICROS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn civil(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, us: i64) -> Civil {
        Civil {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
            microsecond: us,
        }
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(
            civil_from_unix_micros(0),
            Some(civil(1970, 1, 1, 0, 0, 0, 0))
        );
        assert_eq!(
            civil_from_unix_micros(-1),
            Some(civil(1969, 12, 31, 23, 59, 59, 999_999))
        );
        // 2000-02-29T12:34:56.789012 (a leap day of a century divisible by 400).
        assert_eq!(
            civil_from_unix_micros(951_827_696_789_012),
            Some(civil(2000, 2, 29, 12, 34, 56, 789_012))
        );
        // 2100-03-01 (2100 is no leap year).
        assert_eq!(
            civil_from_unix_micros(4_107_542_400_000_000),
            Some(civil(2100, 3, 1, 0, 0, 0, 0))
        );
    }

    #[test]
    fn range_ends_are_datetime_min_and_max() {
        assert_eq!(
            civil_from_unix_micros(MIN_MICROS),
            Some(civil(1, 1, 1, 0, 0, 0, 0))
        );
        assert_eq!(
            civil_from_unix_micros(MAX_MICROS),
            Some(civil(9999, 12, 31, 23, 59, 59, 999_999))
        );
        assert_eq!(civil_from_unix_micros(MIN_MICROS - 1), None);
        assert_eq!(civil_from_unix_micros(MAX_MICROS + 1), None);
        assert_eq!(civil_from_unix_micros(i64::MIN), None);
        assert_eq!(civil_from_unix_micros(i64::MAX), None);
    }

    #[test]
    fn consecutive_days_advance_the_calendar_by_one() {
        // Walk 1600-01-01 .. 2400-12-31 day by day against a plain calendar counter.
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_len = |y: i64, m: i64| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        assert_eq!(
            civil_from_unix_micros(-11_676_096_000_000_000),
            Some(civil(1600, 1, 1, 0, 0, 0, 0))
        );
        let (mut y, mut m, mut d) = (1600, 1, 1);
        let mut us = -11_676_096_000_000_000_i64;
        while y <= 2400 {
            let got = civil_from_unix_micros(us + 3_723_000_004);
            assert_eq!(got, Some(civil(y, m, d, 1, 2, 3, 4)));
            us += MICROS_PER_DAY;
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn pickle_state_layout() {
        let t = civil(2026, 11, 26, 15, 55, 22, 123_456);
        assert_eq!(
            pickle_state(&t),
            [0x07, 0xea, 11, 26, 15, 55, 22, 0x01, 0xe2, 0x40]
        );
    }

    #[test]
    fn clock_is_after_2020() {
        let now = unix_micros_now().unwrap_or_default();
        assert!(now > 1_577_836_800_000_000);
    }
}
