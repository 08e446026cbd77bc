//! Numbers for people: durations, handler times, bytes, points in time.

use std::time::{SystemTime, UNIX_EPOCH};

/// A duration in ms: `850ms`, `12.5s`, `3m 4s`, `2h 5m`, `3d 4h`.
pub(crate) fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let secs = ms / 1000;
    let (days, hours, minutes, seconds) =
        (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes}m {seconds}s"),
        (0, h) => format!("{h}h {minutes}m"),
        (d, h) => format!("{d}d {h}h"),
    }
}

/// A handler time in µs: `850µs`, `12.3ms`, `4.2s`; `-` for none.
pub(crate) fn micros(us: u64) -> String {
    match us {
        0 => "-".to_owned(),
        1..=999 => format!("{us}µs"),
        1000..=999_999 => format!("{:.1}ms", us as f64 / 1000.0),
        _ => format!("{:.1}s", us as f64 / 1e6),
    }
}

/// Bytes in binary units: `512 B`, `1.5 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A point in time (ms since the epoch) in UTC: `2025-12-01 11:58:03 UTC`.
pub(crate) fn timestamp_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC")
}

/// The year, month and day of `days` since 1970-01-01 (proleptic
/// Gregorian; H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Now, ms since the epoch (this host's clock).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `ms` against `now`: `in 5m 3s`, `12.5s ago`, `now`.
pub(crate) fn relative_ms(ms: u64, now: u64) -> String {
    match ms.cmp(&now) {
        std::cmp::Ordering::Greater => format!("in {}", duration_ms(ms - now)),
        std::cmp::Ordering::Less => format!("{} ago", duration_ms(now - ms)),
        std::cmp::Ordering::Equal => "now".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(12_500), "12.5s");
        assert_eq!(duration_ms(184_000), "3m 4s");
        assert_eq!(duration_ms(7_500_000), "2h 5m");
        assert_eq!(duration_ms(4 * 86_400_000 + 3_600_000), "4d 1h");
        assert_eq!(micros(0), "-");
        assert_eq!(micros(1536), "1.5ms");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(timestamp_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(timestamp_ms(1_764_590_283_999), "2025-12-01 11:58:03 UTC");
        assert_eq!(timestamp_ms(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(relative_ms(5_000, 2_000), "in 3.0s");
        assert_eq!(relative_ms(2_000, 2_500), "500ms ago");
    }
}
