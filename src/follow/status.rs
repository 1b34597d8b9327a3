//! What a follower reports about itself: checkpoints, failures, per-partition lag and the
//! recovery point, as Prometheus text (`/metrics`) and a health verdict (`/healthz`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::backup::BackupSummary;
use crate::metrics::epoch_seconds;

/// The follower's state, updated after every checkpoint round and read by the HTTP server.
#[derive(Debug)]
pub struct FollowStatus {
    checkpoint_interval: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    last_checkpoint: Option<(String, SystemTime)>,
    checkpoints: u64,
    failures: u64,
    last_failure: Option<String>,
    records_read: u64,
    raw_bytes_stored: u64,
    stored_bytes: u64,
    offsets_lost_to_retention: u64,
    partitions: BTreeMap<(String, i32), PartitionLag>,
}

#[derive(Debug, Clone, Copy)]
struct PartitionLag {
    /// Records below the end captured by the last checkpoint's read that it does not hold.
    records: i64,
    /// When the newest checkpoint that holds everything below its captured end began
    /// reading: every record produced before that is in a published checkpoint.
    covered_since: Option<SystemTime>,
}

/// Health as `/healthz` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy(String),
}

/// How many intervals may pass without a checkpoint before the follower is unhealthy.
const INTERVALS_BEFORE_UNHEALTHY: u32 = 3;

impl FollowStatus {
    pub fn new(checkpoint_interval: Duration) -> FollowStatus {
        FollowStatus {
            checkpoint_interval,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a published checkpoint whose read began at `read_started`.
    pub(crate) fn checkpoint_published(&self, summary: &BackupSummary, read_started: SystemTime) {
        let mut inner = self.lock();
        inner.last_checkpoint = Some((summary.backup_id.clone(), SystemTime::now()));
        inner.checkpoints += 1;
        inner.records_read += summary.records_read;
        inner.raw_bytes_stored += summary.raw_bytes_read;
        inner.stored_bytes += summary.new_stored_bytes;
        inner.offsets_lost_to_retention += summary.offsets_lost_to_retention;
        let mut seen = std::collections::BTreeSet::new();
        for position in &summary.positions {
            let key = (position.topic.clone(), position.partition);
            seen.insert(key.clone());
            let behind = (position.high_watermark - position.end_offset).max(0);
            let entry = inner.partitions.entry(key).or_insert(PartitionLag {
                records: behind,
                covered_since: None,
            });
            entry.records = behind;
            if behind == 0 {
                entry.covered_since = Some(read_started);
            }
        }
        // Partitions no longer selected (topic deleted) are no longer followed.
        inner.partitions.retain(|key, _| seen.contains(key));
    }

    pub(crate) fn round_failed(&self, why: String) {
        let mut inner = self.lock();
        inner.failures += 1;
        inner.last_failure = Some(why);
    }

    /// Healthy once a checkpoint was published, for as long as the newest is younger than
    /// three intervals.
    pub fn health(&self) -> Health {
        let inner = self.lock();
        let limit = self.checkpoint_interval * INTERVALS_BEFORE_UNHEALTHY;
        let failure = || {
            inner
                .last_failure
                .as_deref()
                .map_or_else(String::new, |f| format!("; last failure: {f}"))
        };
        match &inner.last_checkpoint {
            None => Health::Unhealthy(format!("no checkpoint published yet{}", failure())),
            Some((id, at)) => {
                let age = at.elapsed().unwrap_or_default();
                if age > limit {
                    Health::Unhealthy(format!(
                        "the newest checkpoint, {id}, was published {}s ago, more than {} checkpoint intervals{}",
                        age.as_secs(),
                        INTERVALS_BEFORE_UNHEALTHY,
                        failure()
                    ))
                } else {
                    Health::Healthy
                }
            }
        }
    }

    /// The Prometheus text exposition of the follower's metrics.
    pub fn to_prometheus(&self) -> String {
        let inner = self.lock();
        let now = SystemTime::now();
        let mut text = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
            let _ = writeln!(text, "# HELP kafkasnap_follow_{name} {help}");
            let _ = writeln!(text, "# TYPE kafkasnap_follow_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(text, "kafkasnap_follow_{name}{labels} {value}");
            }
        };
        let one = |value: f64| vec![(String::new(), value)];
        metric(
            "checkpoints_total",
            "counter",
            "Checkpoints published by this process.",
            &one(inner.checkpoints as f64),
        );
        metric(
            "failures_total",
            "counter",
            "Checkpoint rounds that failed (retried at the next interval).",
            &one(inner.failures as f64),
        );
        if let Some((_, at)) = &inner.last_checkpoint {
            metric(
                "last_checkpoint_timestamp_seconds",
                "gauge",
                "When the newest checkpoint was published (Unix time).",
                &one(epoch_seconds(*at)),
            );
        }
        metric(
            "records_read_total",
            "counter",
            "Records read from the cluster and stored in checkpoints by this process.",
            &one(inner.records_read as f64),
        );
        metric(
            "raw_bytes_total",
            "counter",
            "Uncompressed bytes of the records stored by this process.",
            &one(inner.raw_bytes_stored as f64),
        );
        metric(
            "stored_bytes_total",
            "counter",
            "Bytes of segment objects written by this process.",
            &one(inner.stored_bytes as f64),
        );
        metric(
            "offsets_lost_to_retention_total",
            "counter",
            "Offsets retention deleted from the cluster before they were read (gaps, named in the checkpoints' warnings).",
            &one(inner.offsets_lost_to_retention as f64),
        );
        let covered: Vec<Option<SystemTime>> =
            inner.partitions.values().map(|p| p.covered_since).collect();
        if !covered.is_empty() && covered.iter().all(Option::is_some) {
            let oldest = covered.into_iter().flatten().min().expect("not empty");
            metric(
                "recovery_point_age_seconds",
                "gauge",
                "Seconds since the newest moment up to which every followed partition is in a published checkpoint: the data a loss now would cost.",
                &one(now.duration_since(oldest).unwrap_or_default().as_secs_f64()),
            );
        }
        let labelled = |value: &dyn Fn(&PartitionLag) -> Option<f64>| -> Vec<(String, f64)> {
            inner
                .partitions
                .iter()
                .filter_map(|((topic, partition), lag)| {
                    let labels = format!(
                        "{{topic=\"{}\",partition=\"{partition}\"}}",
                        escape_label(topic)
                    );
                    value(lag).map(|v| (labels, v))
                })
                .collect()
        };
        metric(
            "partition_lag_records",
            "gauge",
            "Records below the end the last checkpoint aimed for that it does not hold (0 once caught up).",
            &labelled(&|lag| Some(lag.records as f64)),
        );
        metric(
            "partition_lag_seconds",
            "gauge",
            "Seconds since the newest moment up to which the partition is in a published checkpoint.",
            &labelled(&|lag| {
                lag.covered_since
                    .map(|since| now.duration_since(since).unwrap_or_default().as_secs_f64())
            }),
        );
        text
    }
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::PartitionPosition;

    fn summary(positions: Vec<PartitionPosition>) -> BackupSummary {
        BackupSummary {
            backup_id: "20261207T010000Z-aaaaaa".into(),
            records_read: 5,
            positions,
            ..BackupSummary::default()
        }
    }

    fn position(topic: &str, end_offset: i64, high_watermark: i64) -> PartitionPosition {
        PartitionPosition {
            topic: topic.into(),
            partition: 0,
            end_offset,
            high_watermark,
        }
    }

    #[test]
    fn lag_falls_to_zero_once_a_checkpoint_holds_everything() {
        let status = FollowStatus::new(Duration::from_secs(60));
        assert!(matches!(status.health(), Health::Unhealthy(why) if why.contains("no checkpoint")));
        let start = SystemTime::now();
        status.checkpoint_published(&summary(vec![position("a\"b", 7, 10)]), start);
        let text = status.to_prometheus();
        assert!(
            text.contains(
                "kafkasnap_follow_partition_lag_records{topic=\"a\\\"b\",partition=\"0\"} 3"
            ),
            "{text}"
        );
        assert!(!text.contains("recovery_point_age_seconds"), "{text}");
        assert_eq!(status.health(), Health::Healthy);

        status.checkpoint_published(&summary(vec![position("a\"b", 10, 10)]), start);
        let text = status.to_prometheus();
        assert!(text.contains("partition=\"0\"} 0\n"), "{text}");
        assert!(
            text.contains("kafkasnap_follow_recovery_point_age_seconds "),
            "{text}"
        );
        assert!(
            text.contains("kafkasnap_follow_checkpoints_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("kafkasnap_follow_records_read_total 10\n"),
            "{text}"
        );
    }

    #[test]
    fn no_checkpoint_for_three_intervals_is_unhealthy() {
        let status = FollowStatus::new(Duration::from_millis(1));
        status.checkpoint_published(&summary(vec![]), SystemTime::now());
        std::thread::sleep(Duration::from_millis(10));
        status.round_failed("the broker did not answer".into());
        match status.health() {
            Health::Unhealthy(why) => {
                assert!(why.contains("more than 3 checkpoint intervals"), "{why}");
                assert!(
                    why.contains("last failure: the broker did not answer"),
                    "{why}"
                );
            }
            Health::Healthy => panic!("healthy with a stale checkpoint"),
        }
        assert!(status
            .to_prometheus()
            .contains("kafkasnap_follow_failures_total 1\n"));
    }
}
