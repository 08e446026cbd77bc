//! Numbers for people: durations, handler times, bytes.

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
    }
}
