//! Timestamp helpers: the engine's clock is int64 nanoseconds since the Unix epoch, UTC.

pub const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// The calendar day number (days since 1970-01-01) of a timestamp shifted by `offset_ns`.
#[inline]
pub fn day_number(ts_ns: i64, offset_ns: i64) -> i64 {
    (ts_ns + offset_ns).div_euclid(NANOS_PER_DAY)
}

/// Civil date (year, month, day) of a day number; Howard Hinnant's days-to-civil algorithm.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// ISO-8601 text of a UTC nanosecond timestamp, e.g. `2020-01-02T09:30:00Z`.
pub fn format_ts(ts_ns: i64) -> String {
    let days = ts_ns.div_euclid(NANOS_PER_DAY);
    let rem = ts_ns.rem_euclid(NANOS_PER_DAY) / 1_000_000_000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(format_ts(0), "1970-01-01T00:00:00Z");
        // 2020-02-29 13:30:05 UTC
        assert_eq!(
            format_ts(1_582_983_005 * 1_000_000_000),
            "2020-02-29T13:30:05Z"
        );
        assert_eq!(format_ts(-NANOS_PER_DAY), "1969-12-31T00:00:00Z");
    }

    #[test]
    fn day_number_respects_offset() {
        let ts = 1_577_923_200 * 1_000_000_000; // 2020-01-02 00:00 UTC
        assert_eq!(day_number(ts - 1, 0), day_number(ts, 0) - 1);
        assert_eq!(day_number(ts - 1, 3_600_000_000_000), day_number(ts, 0));
    }
}
