//! Calendar arithmetic for retention: UTC hours, days and ISO weeks (a backup id's time is
//! `BackupId::started_at`).

use std::time::{SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: i64 = 86_400;

/// Whole seconds since 1970-01-01T00:00:00Z, rounding towards the past.
fn epoch_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs() as i64,
        Err(before) => {
            let before = before.duration();
            -(before.as_secs() as i64) - i64::from(before.subsec_nanos() > 0)
        }
    }
}

/// Days since 1970-01-01 (UTC), rounding towards the past.
fn epoch_days(time: SystemTime) -> i64 {
    epoch_seconds(time).div_euclid(SECONDS_PER_DAY)
}

/// The UTC hour of `time`, `YYYY-MM-DDTHHZ` (ISO 8601 to the hour).
pub(super) fn utc_hour(time: SystemTime) -> String {
    let hour = epoch_seconds(time).rem_euclid(SECONDS_PER_DAY) / 3_600;
    format!("{}T{hour:02}Z", utc_day(time))
}

/// `YYYY-MM-DD` of `time` in UTC.
pub(super) fn utc_day(time: SystemTime) -> String {
    let (year, month, day) = civil_from_days(epoch_days(time));
    format!("{year:04}-{month:02}-{day:02}")
}

/// ISO 8601 week of `time` in UTC, `YYYY-Www`: weeks start on Monday and belong to the
/// year of their Thursday.
pub(super) fn iso_week(time: SystemTime) -> String {
    let days = epoch_days(time);
    let from_monday = (days + 3).rem_euclid(7); // 1970-01-01 was a Thursday
    let thursday = days - from_monday + 3;
    let (year, _, _) = civil_from_days(thursday);
    let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
    format!("{year:04}-W{week:02}")
}

/// Proleptic Gregorian date of a day number (days since 1970-01-01); H. Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day number (days since 1970-01-01) of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::BackupId;
    use std::time::Duration;

    const HOUR: u64 = 3_600;
    /// 2025-03-03T00:00:00Z, a Monday (ISO week 2025-W10).
    const MONDAY: u64 = 1_740_960_000;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn calendar_buckets_are_utc_hours_days_and_iso_weeks() {
        let cases: &[(&str, &str, &str)] = &[
            ("1970-01-01T00:00:00Z", "1970-01-01", "1970-W01"),
            ("2020-12-31T23:59:59Z", "2020-12-31", "2020-W53"),
            ("2021-01-03T12:00:00Z", "2021-01-03", "2020-W53"),
            ("2021-01-04T00:00:00Z", "2021-01-04", "2021-W01"),
            ("2024-02-29T08:00:00Z", "2024-02-29", "2024-W09"),
            ("2024-12-30T00:00:00Z", "2024-12-30", "2025-W01"),
            ("2025-03-03T00:00:00Z", "2025-03-03", "2025-W10"),
            ("2026-11-24T02:00:00Z", "2026-11-24", "2026-W48"),
            ("2027-01-01T00:00:00Z", "2027-01-01", "2026-W53"),
        ];
        for (time, day, week) in cases {
            let time = humantime::parse_rfc3339(time).unwrap();
            assert_eq!(utc_day(time), *day);
            assert_eq!(iso_week(time), *week, "{day}");
        }
        let hours: &[(&str, &str)] = &[
            ("1970-01-01T00:00:00Z", "1970-01-01T00Z"),
            ("2020-12-31T23:59:59Z", "2020-12-31T23Z"),
            ("2024-02-29T08:59:59Z", "2024-02-29T08Z"),
            ("2024-02-29T09:00:00Z", "2024-02-29T09Z"),
        ];
        for (time, hour) in hours {
            assert_eq!(utc_hour(humantime::parse_rfc3339(time).unwrap()), *hour);
        }
        // Before the epoch, a fraction of a second rounds towards the past.
        let just_before = UNIX_EPOCH - Duration::from_millis(1);
        assert_eq!(utc_hour(just_before), "1969-12-31T23Z");
        for days in [-800_000, -1, 0, 59, 365, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn ids_carry_their_time() {
        let time = at(MONDAY + 2 * HOUR + 7);
        let id = BackupId::new(time);
        assert_eq!(id.started_at(), Some(time));
        let impossible = BackupId::parse("20251399T250000Z-1").unwrap();
        assert_eq!(impossible.started_at(), None);
    }
}
