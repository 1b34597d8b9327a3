//! Continuous backup (`backup --follow`): a checkpoint every interval, for as long as it runs.
//!
//! Each checkpoint is one incremental backup of the newest backup at the location (the
//! previous checkpoint): it reads every selected partition from where that one ended up to
//! the ends captured when it starts (or until the interval is up, so a long catch-up is
//! checkpointed as it goes), snapshots topics, configs and group offsets, and is published
//! like any backup, manifest last, as a delta manifest that lists only what it stored (a
//! complete listing every `full_every` checkpoints keeps the chains short; docs/FORMAT.md,
//! "Delta manifests"). So every checkpoint is a complete, restorable backup, what one adds to
//! the location does not grow with the number before it, and a follower killed at any moment
//! and started again continues from the newest published checkpoint: nothing it published is
//! lost and nothing is stored twice.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::archive::BackupId;
use crate::backup::{run_backup, BackupOptions, BackupSummary};
use crate::kafka::FinishEarly;
use crate::progress::Progress;
use crate::store::{Location, LocationLock};
use crate::Error;

mod serve;
mod status;

pub use serve::{serve_status, ListenError};
pub use status::{FollowStatus, Health};

/// How to follow a cluster.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// What each checkpoint backs up and how (`incremental`, `delta_chain_limit` and
    /// `finish_early` are set per checkpoint).
    pub backup: BackupOptions,
    pub checkpoint_interval: Duration,
    /// One checkpoint in this many lists every segment; the others are deltas.
    pub full_every: u64,
    /// Set on SIGTERM / Ctrl-C: publish a last checkpoint of what was read, then end.
    /// (`backup.cancel` is the hard stop: the checkpoint being taken is not published.)
    pub stop: Arc<AtomicBool>,
    pub status: Arc<FollowStatus>,
}

/// What a follower did, reported when it ends.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FollowSummary {
    pub checkpoints: u64,
    /// Checkpoint rounds that failed and were retried.
    pub failures: u64,
    pub records_read: u64,
    /// The last checkpoint published.
    pub last_checkpoint: Option<BackupSummary>,
}

/// How long the last checkpoint may read when a stop arrives between checkpoints.
const LAST_CHECKPOINT_READ: Duration = Duration::from_secs(10);

/// Follows the cluster into `location` until `options.stop` is set, then publishes a last
/// checkpoint and returns. The first checkpoint's failure is returned at once (a setting or
/// address is wrong); later ones are logged, counted in the status and retried at the next
/// interval. A hard stop (`backup.cancel`) returns [`Error::Interrupted`].
///
/// For its whole run the follower holds a follower's lock at the location, naming its newest
/// checkpoint (so a prune keeps what the next one builds on); a second follower refuses to
/// start beside it. Each checkpoint holds a backup lock of its own besides.
pub async fn run_follow(
    location: &Location,
    options: FollowOptions,
) -> Result<FollowSummary, Error> {
    let lock = LocationLock::follower(location, &options.backup.cancel).await?;
    let result = follow_under_lock(location, options, &lock).await;
    lock.release().await;
    result
}

async fn follow_under_lock(
    location: &Location,
    options: FollowOptions,
    lock: &LocationLock,
) -> Result<FollowSummary, Error> {
    let mut summary = FollowSummary::default();
    let mut followed: BTreeSet<String> = BTreeSet::new();
    loop {
        let last_round = options.stop.load(Ordering::Relaxed);
        let read_started = SystemTime::now();
        let round_clock = Instant::now();
        let finish_early = if last_round {
            FinishEarly {
                now: Arc::new(AtomicBool::new(false)),
                at: round_clock + LAST_CHECKPOINT_READ,
            }
        } else {
            FinishEarly {
                now: Arc::clone(&options.stop),
                at: round_clock + options.checkpoint_interval,
            }
        };
        // Each checkpoint gets a stop flag of its own, set by the hard stop: a failed upload
        // sets it to stop its checkpoint's read, which must not stop the next checkpoint.
        let round_cancel = Arc::new(AtomicBool::new(false));
        let mirror = tokio::spawn(mirror_flag(
            Arc::clone(&options.backup.cancel),
            Arc::clone(&round_cancel),
        ));
        let backup = BackupOptions {
            incremental: true,
            delta_chain_limit: Some(options.full_every),
            finish_early: Some(finish_early),
            cancel: round_cancel,
            ..options.backup.clone()
        };
        let result = run_backup(location, backup, Arc::new(Progress::default())).await;
        mirror.abort();
        match result {
            Ok(checkpoint) => {
                options
                    .status
                    .checkpoint_published(&checkpoint, read_started);
                log_topic_changes(&mut followed, &checkpoint);
                for warning in &checkpoint.warnings {
                    tracing::warn!(checkpoint = %checkpoint.backup_id, "{warning}");
                }
                if let Some(id) = BackupId::parse(&checkpoint.backup_id) {
                    if let Err(err) = lock.protect_only(id).await {
                        tracing::warn!("could not rewrite the follower's lock: {err}");
                    }
                }
                let behind: i64 = checkpoint
                    .positions
                    .iter()
                    .map(|p| (p.high_watermark - p.end_offset).max(0))
                    .sum();
                tracing::info!(
                    checkpoint = %checkpoint.backup_id,
                    records_read = checkpoint.records_read,
                    records = checkpoint.records,
                    delta = checkpoint.delta,
                    records_behind = behind,
                    "checkpoint published"
                );
                summary.checkpoints += 1;
                summary.records_read += checkpoint.records_read;
                summary.last_checkpoint = Some(checkpoint);
            }
            Err(err) if options.backup.cancel.load(Ordering::Relaxed) => return Err(err),
            Err(err) if summary.checkpoints == 0 && summary.failures == 0 => return Err(err),
            Err(err) if last_round || options.stop.load(Ordering::Relaxed) => return Err(err),
            Err(err) => {
                tracing::warn!("checkpoint failed; trying again at the next interval: {err}");
                options.status.round_failed(err.to_string());
                summary.failures += 1;
            }
        }
        if last_round || options.stop.load(Ordering::Relaxed) {
            return Ok(summary);
        }
        wait_for_next_round(round_clock + options.checkpoint_interval, &options.stop).await;
    }
}

/// Sets `to` once `from` is set (checked every 50 ms; the task is aborted when no longer needed).
async fn mirror_flag(from: Arc<AtomicBool>, to: Arc<AtomicBool>) {
    while !from.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    to.store(true, Ordering::Relaxed);
}

/// Sleeps until `at`, or until `stop` is set.
async fn wait_for_next_round(at: Instant, stop: &AtomicBool) {
    while Instant::now() < at && !stop.load(Ordering::Relaxed) {
        let left = at.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_millis(100))).await;
    }
}

/// Logs topics that appeared in, or left, the selection since the previous checkpoint.
fn log_topic_changes(followed: &mut BTreeSet<String>, checkpoint: &BackupSummary) {
    let now: BTreeSet<String> = checkpoint
        .positions
        .iter()
        .map(|p| p.topic.clone())
        .collect();
    if !followed.is_empty() {
        for topic in now.difference(followed) {
            tracing::info!(%topic, checkpoint = %checkpoint.backup_id, "new topic followed from its log start");
        }
        for topic in followed.difference(&now) {
            tracing::warn!(%topic, checkpoint = %checkpoint.backup_id, "topic is gone from the cluster (or the selection): the checkpoints before this one hold it, this one and later ones do not");
        }
    }
    *followed = now;
}
