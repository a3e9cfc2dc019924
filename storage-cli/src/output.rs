//! Text for people: sizes, times, tables, progress.

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};

/// `1.5 MiB`, `812 B`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `2026-11-23 09:05:24` in UTC.
pub(crate) fn utc_time(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Seconds since the Unix epoch, for JSON.
pub(crate) fn unix_seconds(time: Option<SystemTime>) -> Option<u64> {
    time.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

/// Each provider's metrics, one line per operation, on stderr.
pub(crate) fn print_metrics(providers: &storage::config::Providers) {
    for (name, _) in providers.iter() {
        let Some(snapshot) = providers.metrics(name) else {
            continue;
        };
        if snapshot.operations.is_empty() {
            continue;
        }
        eprintln!(
            "{name}: {} in, {} out",
            human_size(snapshot.bytes_in),
            human_size(snapshot.bytes_out)
        );
        for (operation, figures) in &snapshot.operations {
            let errors: Vec<String> = figures
                .errors
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            eprintln!(
                "  {operation:<8} {:>6} ops  p50 {:>8.1?}  p90 {:>8.1?}  p99 {:>8.1?}{}",
                figures.count,
                figures.p50,
                figures.p90,
                figures.p99,
                if errors.is_empty() {
                    String::new()
                } else {
                    format!("  errors: {}", errors.join(", "))
                }
            );
        }
    }
}

/// A byte progress bar on a terminal; hidden otherwise (pipes, CI, --json).
pub(crate) fn progress(total: Option<u64>, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::no_length(),
    };
    let template = "{spinner} {bytes}/{total_bytes} {bytes_per_sec} {wide_bar} {msg}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(human_size(812), "812 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_424_177);
        assert_eq!(utc_time(t), "2026-11-23 08:56:17");
        assert_eq!(utc_time(UNIX_EPOCH), "1970-01-01 00:00:00");
    }
}
