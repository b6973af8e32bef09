//! Capture timestamps and civil-date conversions (no time-zone database needed: everything is UTC).

use serde::{Deserialize, Serialize};

/// Microseconds since the Unix epoch, as carried by a captured packet; events keep the capture
/// time so that a replay gives the same results as live capture.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Builds a timestamp from whole seconds and microseconds.
    pub fn from_secs_micros(secs: i64, micros: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000).saturating_add(micros))
    }

    /// Whole seconds since the epoch (floor).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// The microsecond part, 0..1_000_000.
    pub fn subsec_micros(self) -> i64 {
        self.0.rem_euclid(1_000_000)
    }

    /// The current wall-clock time; used only where no capture time exists (e.g. API actions).
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_micros() as i64)
    }

    /// Suricata's EVE timestamp format: `2009-11-24T21:27:09.534255+0000`.
    pub fn to_eve(self) -> String {
        let mut out = format_utc(self.secs());
        out.push('.');
        push_digits(&mut out, self.subsec_micros(), 6);
        out.push_str("+0000");
        out
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Seconds since the epoch from UTC calendar fields.
pub fn epoch_from_utc(year: i64, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> i64 {
    days_from_civil(year, month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(min) * 60
        + i64::from(sec)
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC, the format EVE uses for certificate validity.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            y,
            m,
            d,
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        );
    }
    // Every event carries one or more timestamps: digits by hand, no formatter machinery.
    let mut out = String::with_capacity(32);
    push_digits(&mut out, y, 4);
    out.push('-');
    push_digits(&mut out, i64::from(m), 2);
    out.push('-');
    push_digits(&mut out, i64::from(d), 2);
    out.push('T');
    push_digits(&mut out, rem / 3600, 2);
    out.push(':');
    push_digits(&mut out, (rem % 3600) / 60, 2);
    out.push(':');
    push_digits(&mut out, rem % 60, 2);
    out
}

/// Appends `v` (0 ≤ v < 10^width) zero-padded to `width` digits.
fn push_digits(out: &mut String, v: i64, width: u32) {
    let mut div = 10i64.pow(width.saturating_sub(1));
    while div > 0 {
        out.push(char::from(b'0' + ((v / div) % 10) as u8));
        div /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_dates_around_and_before_the_epoch() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_utc(0), "1970-01-01T00:00:00");
        assert_eq!(format_utc(-1), "1969-12-31T23:59:59");
        assert_eq!(format_utc(1_423_764_447), "2015-02-12T18:07:27");
        assert_eq!(epoch_from_utc(2015, 2, 12, 18, 7, 27), 1_423_764_447);
    }

    #[test]
    fn eve_timestamp_has_micros_and_offset() {
        let ts = Timestamp::from_secs_micros(1_259_098_029, 534_255);
        assert_eq!(ts.to_eve(), "2009-11-24T21:27:09.534255+0000");
        assert_eq!(
            Timestamp::from_secs_micros(0, 7).to_eve(),
            "1970-01-01T00:00:00.000007+0000"
        );
    }

    #[test]
    fn hand_written_digits_match_the_formatter_everywhere() {
        // certificate validity reaches far before 1970 and after 2049; years outside
        // 0..=9999 take the formatter's path
        let mut secs = -70_000_000_000i64;
        while secs < 260_000_000_000 {
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let rem = secs.rem_euclid(86_400);
            let expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                y,
                m,
                d,
                rem / 3600,
                (rem % 3600) / 60,
                rem % 60
            );
            assert_eq!(format_utc(secs), expected, "{secs}");
            secs += 86_400 * 367 + 3_599;
        }
    }
}
