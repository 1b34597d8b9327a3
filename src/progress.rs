//! Progress of a long run: counters the library updates, and a reporter that shows them as
//! a progress bar on a terminal or as periodic log lines otherwise (a CronJob has no terminal);
//! and how sizes and times are shown to people.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counters shared between the engine (which adds) and the reporter (which reads).
#[derive(Debug, Default)]
pub struct Progress {
    pub(crate) records: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) partitions_done: AtomicU64,
    pub(crate) partitions_total: AtomicU64,
    /// Records expected in total (an estimate: offset ranges include gaps).
    pub(crate) records_expected: AtomicU64,
}

impl Progress {
    pub(crate) fn add_record(&self, bytes: u64) {
        self.records.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn snapshot(&self) -> (u64, u64, u64, u64, u64) {
        (
            self.records.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.partitions_done.load(Ordering::Relaxed),
            self.partitions_total.load(Ordering::Relaxed),
            self.records_expected.load(Ordering::Relaxed),
        )
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar on stderr when it is a terminal, log lines otherwise.
    Auto,
    /// Nothing until the end.
    Off,
}

/// Shows `progress` until dropped.
pub struct ProgressReporter {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressReporter {
    pub fn start(
        verb: &'static str,
        progress: Arc<Progress>,
        mode: ProgressMode,
    ) -> ProgressReporter {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = match mode {
            ProgressMode::Off => None,
            ProgressMode::Auto if std::io::stderr().is_terminal() => {
                let stop = Arc::clone(&stop);
                Some(std::thread::spawn(move || draw_bar(verb, &progress, &stop)))
            }
            ProgressMode::Auto => {
                let stop = Arc::clone(&stop);
                Some(std::thread::spawn(move || {
                    log_lines(verb, &progress, &stop, Duration::from_secs(10))
                }))
            }
        };
        ProgressReporter { stop, thread }
    }
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn draw_bar(verb: &str, progress: &Progress, stop: &std::sync::atomic::AtomicBool) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} records  {msg}  ETA {eta}",
    )
    .expect("valid template");
    bar.set_style(style);
    bar.set_prefix(verb.to_string());
    while !stop.load(Ordering::Relaxed) {
        let (records, bytes, done, total, expected) = progress.snapshot();
        bar.set_length(expected.max(records));
        bar.set_position(records);
        bar.set_message(format!("{}  partitions {done}/{total}", human_bytes(bytes)));
        std::thread::sleep(Duration::from_millis(200));
    }
    bar.finish_and_clear();
}

fn log_lines(
    verb: &str,
    progress: &Progress,
    stop: &std::sync::atomic::AtomicBool,
    every: Duration,
) {
    let started = Instant::now();
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        if last.elapsed() < every {
            continue;
        }
        last = Instant::now();
        let (records, bytes, done, total, expected) = progress.snapshot();
        let rate = bytes as f64 / started.elapsed().as_secs_f64().max(0.001);
        tracing::info!(
            "{verb}: {records}/{expected} records, {}, partitions {done}/{total}, {}/s",
            human_bytes(bytes),
            human_bytes(rate as u64)
        );
    }
}

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(bytes: u64) -> String {
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

/// `count(1, "segment")` -> `1 segment`, `count(3, "batch")` -> `3 batches`: a number of
/// things with the noun agreeing.
pub fn count(n: impl std::fmt::Display, noun: &str) -> String {
    let n = n.to_string();
    if n == "1" {
        return format!("1 {noun}");
    }
    let consonant_y = noun
        .strip_suffix('y')
        .filter(|stem| stem.chars().last().is_some_and(|c| !"aeiou".contains(c)));
    match consonant_y {
        Some(stem) => format!("{n} {stem}ies"),
        None if ["s", "x", "ch", "sh"].iter().any(|end| noun.ends_with(end)) => {
            format!("{n} {noun}es")
        }
        None => format!("{n} {noun}s"),
    }
}

/// Epoch milliseconds as RFC 3339 in UTC (`2026-11-25T14:00:00Z`, milliseconds only when
/// there are any); a time before 1970 as its number of milliseconds.
pub fn human_time(epoch_ms: i64) -> String {
    let Ok(since_epoch) = u64::try_from(epoch_ms) else {
        return format!("{epoch_ms} (epoch ms)");
    };
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(since_epoch);
    if since_epoch % 1000 == 0 {
        humantime::format_rfc3339_seconds(time).to_string()
    } else {
        humantime::format_rfc3339_millis(time).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::{count, human_bytes, human_time};

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(count(1, "segment"), "1 segment");
        assert_eq!(count(0, "segment"), "0 segments");
        assert_eq!(count(2usize, "group"), "2 groups");
        assert_eq!(count(3u64, "batch"), "3 batches");
        assert_eq!(count(1, "batch"), "1 batch");
        assert_eq!(count(2, "entry"), "2 entries");
        assert_eq!(count(2, "key"), "2 keys");
        assert_eq!(count(-1, "offset"), "-1 offsets");
    }

    #[test]
    fn times_are_shown_as_rfc3339() {
        assert_eq!(human_time(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(human_time(1_700_000_000_500), "2023-11-14T22:13:20.500Z");
        assert_eq!(human_time(-5), "-5 (epoch ms)");
    }

    #[test]
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
