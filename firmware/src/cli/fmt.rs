//! Human-readable sizes, durations and UTC timestamps for command output.

/// `1536` → `1.5 KiB` (rounded to the nearest tenth). Integer arithmetic only: float
/// formatting would be the only float code in the router binary (about 13 KiB).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut unit = 0;
    let mut scale: u64 = 1;
    while bytes / scale >= 1024 && unit < UNITS.len() - 1 {
        scale *= 1024;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} B");
    }
    // Tenths of the unit, rounded half up; u128 so that no size overflows.
    let tenths = (u128::from(bytes) * 10 + u128::from(scale) / 2) / u128::from(scale);
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

/// `7384` seconds → `2h03m`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..=86_399 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// Unix seconds → `2026-11-24 21:05:00 UTC` (proleptic Gregorian, no time-zone database).
pub fn utc(unix: u64) -> String {
    let (y, m, d) = crate::smtp::received::civil_from_days(unix / 86_400);
    let rem = unix % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(8 << 20), "8.0 MiB");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024 * 1024 - 1), "1024.0 KiB");
        assert_eq!(size((3 << 30) / 2), "1.5 GiB");
        assert_eq!(size(u64::MAX), "17179869184.0 GiB");
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(7384), "2h03m");
        assert_eq!(duration(3 * 86_400 + 7200), "3d02h");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
