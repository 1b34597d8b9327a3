//! Stopping a restore: giving up on Ctrl-C in any phase and the stall watch that fails a restore
//! whose target acknowledges nothing for `--stall-timeout` (what it had written by then is
//! `crate::error::Written`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Created, RestorePlan, RestoreStop, TopicAction, TopicWritten, WritePhase, Written};
use crate::kafka::RecordWriter;

/// Awaits `work`, or gives up soon after `cancel` is set ([`RestoreStop::Interrupted`]). A
/// blocking Kafka call given up on ends on its own (within its timeout), its result unused.
pub(crate) async fn unless_cancelled<F: Future>(
    cancel: &AtomicBool,
    work: F,
) -> Result<F::Output, RestoreStop> {
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            done = &mut work => return Ok(done),
            _ = tick.tick() => if cancel.load(Ordering::Relaxed) {
                return Err(RestoreStop::Interrupted);
            },
        }
    }
}

/// How far [`run_restore`] got, for the message of one that stops part-way.
#[derive(Default)]
pub(super) struct Stage {
    pub(super) phase: Option<WritePhase>,
    /// Records already in each target topic from an interrupted run (`--resume`).
    pub(super) resumed: HashMap<String, u64>,
    pub(super) groups_committed: usize,
    pub(super) groups_total: usize,
    /// Topics the cluster created for this run, and groups it committed offsets for.
    pub(super) created: Created,
}

impl Stage {
    pub(super) fn written(
        &self,
        plan: &RestorePlan,
        resuming: bool,
        writer: &RecordWriter,
    ) -> Written {
        Written {
            phase: self.phase.unwrap_or(WritePhase::Nothing),
            resuming,
            topics: plan
                .topics
                .iter()
                .filter(|t| t.action != TopicAction::Skip)
                .map(|t| TopicWritten {
                    topic: t.target.clone(),
                    acknowledged: writer.tracker().delivered_to(&t.target),
                    resumed: self.resumed.get(&t.target).copied().unwrap_or(0),
                    in_backup: t.records,
                })
                .collect(),
            groups_committed: self.groups_committed,
            groups_total: self.groups_total,
            created: self.created.clone(),
        }
    }
}

/// Waits until every record sent is acknowledged (or failed), stopping on Ctrl-C or a stall.
pub(super) async fn flush(
    writer: &Arc<RecordWriter>,
    cancel: &AtomicBool,
    watch: &mut StallWatch,
) -> Result<(), RestoreStop> {
    loop {
        let flushing = Arc::clone(writer);
        let flushed =
            tokio::task::spawn_blocking(move || flushing.flush(Duration::from_millis(100)))
                .await
                .expect("flush does not panic");
        if flushed.is_ok() {
            return Ok(());
        }
        check_stop(cancel, watch, writer)?;
    }
}

/// Ctrl-C, or records waiting with no delivery report for the stall timeout.
pub(super) fn check_stop(
    cancel: &AtomicBool,
    watch: &mut StallWatch,
    writer: &RecordWriter,
) -> Result<(), RestoreStop> {
    if cancel.load(Ordering::Relaxed) {
        return Err(RestoreStop::Interrupted);
    }
    let tracker = writer.tracker();
    match watch.observe(tracker.reports(), tracker.in_flight(), Instant::now()) {
        Some(waiting) => Err(RestoreStop::Stalled {
            waited: watch.timeout(),
            waiting,
        }),
        None => Ok(()),
    }
}

/// Watches the producer's delivery reports: stalled once records are waiting and no report
/// (good or failed) has come for the timeout.
#[derive(Debug)]
pub(crate) struct StallWatch {
    timeout: Duration,
    reports: u64,
    since: Instant,
}

impl StallWatch {
    pub(crate) fn new(timeout: Duration, now: Instant) -> StallWatch {
        StallWatch {
            timeout,
            reports: 0,
            since: now,
        }
    }

    /// Feeds the producer's counts at `now`; `Some(waiting)` once stalled.
    pub(crate) fn observe(&mut self, reports: u64, in_flight: u64, now: Instant) -> Option<u64> {
        if in_flight == 0 || reports != self.reports {
            self.reports = reports;
            self.since = now;
            return None;
        }
        (now.duration_since(self.since) >= self.timeout).then_some(in_flight)
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_is_time_without_reports_while_records_wait() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut watch = StallWatch::new(Duration::from_secs(3), start);
        // Nothing waiting: idle, however long.
        assert_eq!(watch.observe(0, 0, at(10_000)), None);
        // Records waiting since 10 s, no report.
        assert_eq!(watch.observe(0, 5, at(12_000)), None);
        assert_eq!(watch.observe(0, 5, at(12_999)), None);
        assert_eq!(watch.observe(0, 5, at(13_000)), Some(5));
        // A report resets the clock.
        assert_eq!(watch.observe(1, 4, at(14_000)), None);
        assert_eq!(watch.observe(1, 4, at(16_999)), None);
        assert_eq!(watch.observe(1, 9, at(17_000)), Some(9));
    }
}
