//! Progress of a long run: counters the library updates, and a reporter that shows them as
//! a progress bar on a terminal (log lines print above it, never through it) or as log lines
//! otherwise (a CronJob has no terminal): one when the work is known, one every interval,
//! one at the end; and how sizes, counts and times are shown to people.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counters shared between the engine (which adds) and the reporter (which reads).
#[derive(Debug, Default)]
pub struct Progress {
    pub(crate) records: AtomicU64,
    /// Raw bytes: each record's frame as a segment holds it (see `RecordRef::raw_len`).
    pub(crate) bytes: AtomicU64,
    pub(crate) partitions_done: AtomicU64,
    pub(crate) partitions_total: AtomicU64,
    /// Records expected in total (an estimate: offset ranges include gaps).
    pub(crate) records_expected: AtomicU64,
    /// Raw bytes expected in total, when the run knows them (a restore does; a backup
    /// does not until it has read them): the ETA is then measured in bytes.
    pub(crate) bytes_expected: AtomicU64,
}

impl Progress {
    pub(crate) fn add_record(&self, bytes: u64) {
        self.records.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            partitions_done: self.partitions_done.load(Ordering::Relaxed),
            partitions_total: self.partitions_total.load(Ordering::Relaxed),
            records_expected: self.records_expected.load(Ordering::Relaxed),
            bytes_expected: self.bytes_expected.load(Ordering::Relaxed),
        }
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Snapshot {
    records: u64,
    bytes: u64,
    partitions_done: u64,
    partitions_total: u64,
    records_expected: u64,
    bytes_expected: u64,
}

impl Snapshot {
    /// Whether the run knows its work yet (before that it is connecting or planning).
    fn planned(&self) -> bool {
        self.partitions_total > 0
    }

    /// What is done and what there is to do, in bytes when their total is known, else in
    /// records; never less done than to do shows as over 100%.
    fn done_of_total(&self) -> (u64, u64) {
        if self.bytes_expected > 0 {
            (self.bytes, self.bytes_expected.max(self.bytes))
        } else {
            (self.records, self.records_expected.max(self.records))
        }
    }
}

/// Throughput over the last few seconds (a whole-run average would hide a stall).
#[derive(Debug)]
struct Rates {
    window: Duration,
    samples: VecDeque<(Instant, u64, u64)>,
}

impl Rates {
    fn new(window: Duration) -> Rates {
        Rates {
            window,
            samples: VecDeque::new(),
        }
    }

    fn add(&mut self, at: Instant, snapshot: &Snapshot) {
        self.samples
            .push_back((at, snapshot.records, snapshot.bytes));
        while self
            .samples
            .front()
            .is_some_and(|(first, _, _)| at.duration_since(*first) > self.window)
        {
            self.samples.pop_front();
        }
    }

    /// Records and bytes per second between the oldest and newest sample in the window;
    /// `None` until the samples span half a second (too short to mean anything).
    fn per_second(&self) -> Option<(f64, f64)> {
        let (first, records0, bytes0) = self.samples.front()?;
        let (last, records1, bytes1) = self.samples.back()?;
        let seconds = last.duration_since(*first).as_secs_f64();
        (seconds >= 0.5).then(|| {
            (
                (records1 - records0) as f64 / seconds,
                (bytes1 - bytes0) as f64 / seconds,
            )
        })
    }

    /// `12.3 MiB/s 45.6k records/s` (`records`: the word for them), or `None` as
    /// [`Self::per_second`].
    fn text(&self, records: &str) -> Option<String> {
        let (records_per_second, bytes_per_second) = self.per_second()?;
        Some(format!(
            "{}/s {} {records}/s",
            human_bytes(bytes_per_second as u64),
            human_count(records_per_second as u64)
        ))
    }

    /// Time left at the current rate, in the unit [`Snapshot::done_of_total`] measures.
    fn eta(&self, snapshot: &Snapshot) -> Option<Duration> {
        let (records_per_second, bytes_per_second) = self.per_second()?;
        let per_second = if snapshot.bytes_expected > 0 {
            bytes_per_second
        } else {
            records_per_second
        };
        let (done, total) = snapshot.done_of_total();
        (per_second > 0.0 && total > 0)
            .then(|| Duration::from_secs_f64((total - done) as f64 / per_second))
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

/// The bar being drawn, if any: log lines are written above it (see [`log_writer`]).
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Standard error for log lines: while a progress bar is drawn, each line is printed above
/// it (the bar is cleared for the write and drawn again), so no stale bar is left between
/// lines. For `tracing_subscriber::fmt().with_writer(log_writer)`.
pub fn log_writer() -> LogLine {
    LogLine
}

/// One formatted log line on its way to standard error (see [`log_writer`]).
pub struct LogLine;

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let bar = ACTIVE_BAR.lock().ok().and_then(|bar| bar.clone());
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Shows `progress` until dropped.
pub struct ProgressReporter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressReporter {
    pub fn start(
        verb: &'static str,
        progress: Arc<Progress>,
        mode: ProgressMode,
    ) -> ProgressReporter {
        let stop = Arc::new(AtomicBool::new(false));
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

const TICK: Duration = Duration::from_millis(200);

fn draw_bar(verb: &str, progress: &Progress, stop: &AtomicBool) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_prefix(verb.to_string());
    bar.set_style(ProgressStyle::with_template("{prefix} {spinner} {msg}").expect("template"));
    if let Ok(mut active) = ACTIVE_BAR.lock() {
        *active = Some(bar.clone());
    }
    let started = Instant::now();
    let mut rates = Rates::new(Duration::from_secs(5));
    let mut planned = false;
    while !stop.load(Ordering::Relaxed) {
        let snapshot = progress.snapshot();
        rates.add(Instant::now(), &snapshot);
        if !snapshot.planned() {
            bar.set_message(format!(
                "connecting ({})",
                human_duration(started.elapsed())
            ));
            bar.tick();
        } else {
            if !planned {
                // Fits 80 columns: the message is at most about 50 characters.
                let style = ProgressStyle::with_template("{prefix} {wide_bar} {percent:>3}% {msg}")
                    .expect("template");
                bar.set_style(style);
                planned = true;
            }
            // The message first: setting the position may draw, and must not draw the new
            // position beside the last tick's message.
            bar.set_message(bar_message(&snapshot, &rates));
            let (done, total) = snapshot.done_of_total();
            bar.set_length(total);
            bar.set_position(done);
        }
        std::thread::sleep(TICK);
    }
    if let Ok(mut active) = ACTIVE_BAR.lock() {
        *active = None;
    }
    bar.finish_and_clear();
}

fn log_lines(verb: &str, progress: &Progress, stop: &AtomicBool, every: Duration) {
    let started = Instant::now();
    let mut rates = Rates::new(every);
    let mut announced = false;
    let mut last = started;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(TICK);
        let snapshot = progress.snapshot();
        rates.add(Instant::now(), &snapshot);
        if snapshot.planned() && !announced {
            tracing::info!("{verb}: {}", plan_line(&snapshot));
            announced = true;
            last = Instant::now();
        } else if last.elapsed() >= every {
            last = Instant::now();
            match snapshot.planned() {
                true => tracing::info!("{verb}: {}", progress_line(&snapshot, &rates)),
                false => tracing::info!(
                    "{verb}: waiting for the cluster ({})",
                    human_duration(started.elapsed())
                ),
            }
        }
    }
    let snapshot = progress.snapshot();
    tracing::info!("{verb}: {}", end_line(&snapshot, started.elapsed()));
}

/// The bar's text: bytes so far, rates and time left (rates only once they mean something).
fn bar_message(snapshot: &Snapshot, rates: &Rates) -> String {
    let rates_text = rates.text("rec").map_or(String::new(), |t| format!(" {t}"));
    format!(
        "{}{rates_text} ETA {}",
        human_bytes(snapshot.bytes),
        rates.eta(snapshot).map_or("-".into(), human_duration)
    )
}

/// The first line without a terminal: what the run is about to do.
fn plan_line(snapshot: &Snapshot) -> String {
    let bytes = match snapshot.bytes_expected {
        0 => String::new(),
        bytes => format!(" ({})", human_bytes(bytes)),
    };
    format!(
        "{} in {}{bytes} to go",
        count(snapshot.records_expected, "record"),
        count(snapshot.partitions_total, "partition"),
    )
}

/// A line every interval without a terminal.
fn progress_line(snapshot: &Snapshot, rates: &Rates) -> String {
    let (done, total) = snapshot.done_of_total();
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    format!(
        "{percent}%: {} of about {}, {}, partitions {}/{}, {}, ETA {}",
        count(snapshot.records, "record"),
        snapshot.records_expected.max(snapshot.records),
        human_bytes(snapshot.bytes),
        snapshot.partitions_done,
        snapshot.partitions_total,
        rates
            .text("records")
            .unwrap_or_else(|| "rate unknown".into()),
        rates.eta(snapshot).map_or("unknown".into(), human_duration)
    )
}

/// The last line without a terminal, whether the run succeeded or not.
fn end_line(snapshot: &Snapshot, elapsed: Duration) -> String {
    let average = snapshot.bytes as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "{}, {} in {} ({}/s), partitions {}/{} done",
        count(snapshot.records, "record"),
        human_bytes(snapshot.bytes),
        human_duration(elapsed),
        human_bytes(average as u64),
        snapshot.partitions_done,
        snapshot.partitions_total
    )
}

/// `950`, `45.6k`, `12.0M`, `3.2G`.
fn human_count(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// `45s`, `3m07s`, `2h05m`.
fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
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
    use super::*;

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

    #[test]
    fn counts_durations_and_plurals_read_as_words() {
        assert_eq!(human_count(950), "950");
        assert_eq!(human_count(45_600), "45.6k");
        assert_eq!(human_count(12_000_000), "12.0M");
        assert_eq!(human_count(3_200_000_000), "3.2G");
        assert_eq!(human_duration(Duration::from_secs(45)), "45s");
        assert_eq!(human_duration(Duration::from_secs(187)), "3m07s");
        assert_eq!(human_duration(Duration::from_secs(7500)), "2h05m");
        assert_eq!(count(1, "partition"), "1 partition");
        assert_eq!(count(0, "record"), "0 records");
    }

    fn running(records: u64, bytes: u64) -> Snapshot {
        Snapshot {
            records,
            bytes,
            partitions_done: 1,
            partitions_total: 4,
            records_expected: 1000,
            bytes_expected: 0,
        }
    }

    #[test]
    fn rates_come_from_the_window_and_the_eta_from_what_is_left() {
        let start = Instant::now();
        let mut rates = Rates::new(Duration::from_secs(5));
        rates.add(start, &running(0, 0));
        assert_eq!(rates.per_second(), None, "one sample is no rate");
        assert_eq!(rates.eta(&running(0, 0)), None);
        rates.add(start + Duration::from_secs(2), &running(200, 2048));
        assert_eq!(rates.per_second(), Some((100.0, 1024.0)));
        // Records: 800 left at 100/s.
        assert_eq!(rates.eta(&running(200, 2048)), Some(Duration::from_secs(8)));
        // Bytes, once their total is known: 8192 left at 1024/s.
        let by_bytes = Snapshot {
            bytes_expected: 10_240,
            ..running(200, 2048)
        };
        assert_eq!(rates.eta(&by_bytes), Some(Duration::from_secs(8)));
        // Samples older than the window drop out: a stall shows as a rate of zero.
        rates.add(start + Duration::from_secs(9), &running(200, 2048));
        rates.add(start + Duration::from_secs(10), &running(200, 2048));
        assert_eq!(rates.per_second(), Some((0.0, 0.0)));
    }

    #[test]
    fn done_is_measured_in_bytes_when_their_total_is_known() {
        assert_eq!(running(200, 2048).done_of_total(), (200, 1000));
        let by_bytes = Snapshot {
            bytes_expected: 10_240,
            ..running(200, 2048)
        };
        assert_eq!(by_bytes.done_of_total(), (2048, 10_240));
        // An estimate that was too low never shows more done than there is.
        assert_eq!(running(1500, 1).done_of_total(), (1500, 1500));
    }

    #[test]
    fn the_bar_message_leaves_room_for_a_bar_at_80_columns() {
        let start = Instant::now();
        let mut rates = Rates::new(Duration::from_secs(5));
        let huge = Snapshot {
            records: 999_000_000_000,
            bytes: 999 * 1024u64.pow(4),
            bytes_expected: 1000 * 1024u64.pow(4),
            ..running(0, 0)
        };
        rates.add(start, &Snapshot::default());
        rates.add(start + Duration::from_secs(1), &huge);
        let message = bar_message(&huge, &rates);
        // "restore " + percent + message, leaving at least 20 columns of bar.
        assert!(8 + 5 + message.len() <= 60, "{message}");
    }

    #[test]
    fn lines_without_a_terminal_say_what_is_planned_done_and_left() {
        let snapshot = Snapshot {
            bytes_expected: 10_240,
            ..running(1, 2048)
        };
        assert_eq!(
            plan_line(&snapshot),
            "1000 records in 4 partitions (10.0 KiB) to go"
        );
        let start = Instant::now();
        let mut rates = Rates::new(Duration::from_secs(10));
        rates.add(start, &Snapshot::default());
        rates.add(start + Duration::from_secs(2), &snapshot);
        let line = progress_line(&snapshot, &rates);
        assert_eq!(
            line,
            "20%: 1 record of about 1000, 2.0 KiB, partitions 1/4, 1.0 KiB/s 0 records/s, ETA 8s"
        );
        assert_eq!(
            end_line(&snapshot, Duration::from_secs(2)),
            "1 record, 2.0 KiB in 2s (1.0 KiB/s), partitions 1/4 done"
        );
    }
}
