//! RFC 3339 timestamps as kube-apiserver writes them (`2026-11-20T10:00:00.123456Z`), parsed
//! on a fast path; anything else (offsets, leap seconds, odd forms) goes to jiff's parser.
//!
//! Every event carries two timestamps in this one form, so a fast path for it pays (`cargo
//! bench --bench mapping`, BENCHMARKS.md).

use std::fmt;

use jiff::Timestamp;
use serde::Deserializer;
use serde::de::{self, Visitor};

/// `serde(deserialize_with)` for a required timestamp.
pub(super) fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    d.deserialize_str(TimestampVisitor)
}

/// `serde(deserialize_with)` for an optional (absent or null) timestamp.
pub(super) fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    d.deserialize_option(OptionVisitor)
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Timestamp, E> {
        parse(s).map_err(E::custom)
    }
}

struct OptionVisitor;

impl<'de> Visitor<'de> for OptionVisitor {
    type Value = Option<Timestamp>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        required(d).map(Some)
    }
}

/// Parses a timestamp: the fast path for `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, else jiff.
pub(super) fn parse(s: &str) -> Result<Timestamp, jiff::Error> {
    match fast(s.as_bytes()) {
        Some(ts) => Ok(ts),
        None => s.parse(),
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn fast(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || *b.last()? != b'Z'
    {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    let nanos = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            digits(fraction)? * 10i64.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
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
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    // Days from 1970-01-01 to the civil date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Timestamp::new(seconds, nanos as i32).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_agrees_with_jiff() {
        let mut cases = vec![
            "1970-01-01T00:00:00Z".to_owned(),
            "2026-11-20T10:00:00.123456Z".to_owned(),
            "2026-11-20T10:00:00.1Z".to_owned(),
            "2026-11-20T10:00:00.123456789Z".to_owned(),
            "2024-02-29T23:59:59.999999Z".to_owned(),
            "2000-02-29T12:00:00Z".to_owned(),
            "1969-12-31T23:59:59.5Z".to_owned(),
            "0001-01-01T00:00:00Z".to_owned(),
            "9999-12-31T23:59:59.999999999Z".to_owned(),
        ];
        for year in [1900, 1999, 2023, 2024, 2100, 2400] {
            for month in 1..=12 {
                for day in [1, 28, 29, 30, 31] {
                    cases.push(format!("{year:04}-{month:02}-{day:02}T07:08:09.010Z"));
                }
            }
        }
        for case in &cases {
            let want = case.parse::<Timestamp>();
            match (fast(case.as_bytes()), want) {
                (Some(got), Ok(want)) => assert_eq!(got, want, "{case}"),
                // Invalid dates (Feb 30) must fall through to jiff, which rejects them.
                (None, Err(_)) => {}
                (got, want) => panic!("{case}: fast {got:?}, jiff {want:?}"),
            }
            assert_eq!(parse(case).ok(), case.parse::<Timestamp>().ok(), "{case}");
        }
    }

    #[test]
    fn other_forms_go_to_jiff() {
        for case in [
            "2026-11-20T10:00:00+02:00",
            "2026-11-20T10:00:00.5-01:30",
            "2026-11-20 10:00:00Z",
            "2026-11-20T10:00:00.Z",
            "2026-11-20T10:00:00.1234567890Z",
            "2026-13-20T10:00:00Z",
            "2026-11-20T24:00:00Z",
            "20261120T100000Z",
            "",
            "yesterday",
        ] {
            assert_eq!(fast(case.as_bytes()), None, "{case}");
            assert_eq!(parse(case).ok(), case.parse::<Timestamp>().ok(), "{case}");
        }
    }
}
