//! What a drill reports (the backup, its age, the recovery time, what was restored and
//! checked, what differed, what was cleaned up), and how a drill that could not finish fails.

use std::time::SystemTime;

use super::cleanup::CleanupReport;
use crate::archive::BackupId;
use crate::error::BackupKind;
use crate::read::ObjectProblem;
use crate::restore::RestoreStop;
use crate::Error;

/// A name in the backup and the name it got in the scratch cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RenamedName {
    pub source: String,
    pub target: String,
}

impl RenamedName {
    pub(super) fn new(source: &str, target: &str) -> RenamedName {
        RenamedName {
            source: source.to_string(),
            target: target.to_string(),
        }
    }
}

/// One thing the scratch cluster holds differently from the backup: a partition (`topic/N`,
/// target names) or a group's committed offset (`group G on topic/N`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    pub subject: String,
    pub detail: String,
}

/// What one drill found and measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DrillReport {
    pub backup_id: String,
    pub backup_kind: BackupKind,
    /// When the backup began (RFC 3339, as its manifest says).
    pub backup_started_at: String,
    /// The backup's age when the drill began: what a restore now would lose (recovery point).
    pub backup_age_seconds: Option<f64>,
    pub scratch_cluster: String,
    pub prefix: String,
    pub topics: Vec<RenamedName>,
    pub groups: Vec<RenamedName>,
    /// From reading the backup to the last group offset committed (a data-dir backup's
    /// download and conversion included): the recovery time. `None`: nothing was restored.
    pub restore_seconds: Option<f64>,
    pub records_restored: u64,
    pub bytes_restored: u64,
    pub records_per_second: Option<f64>,
    pub bytes_per_second: Option<f64>,
    pub check_seconds: Option<f64>,
    pub partitions_checked: usize,
    /// Records of the backup whose partition the scratch cluster holds exactly.
    pub records_checked: u64,
    pub group_offsets_checked: usize,
    /// Objects of the backup that failed their check (nothing was restored then).
    pub damaged: Vec<ObjectProblem>,
    pub differences: Vec<Difference>,
    pub cleanup: CleanupReport,
    /// No damage and no difference.
    pub exact: bool,
}

impl DrillReport {
    pub(super) fn new(kind: BackupKind, id: &BackupId, scratch_cluster: &str) -> DrillReport {
        DrillReport {
            backup_id: id.to_string(),
            backup_kind: kind,
            backup_started_at: String::new(),
            backup_age_seconds: None,
            scratch_cluster: scratch_cluster.to_string(),
            prefix: String::new(),
            topics: Vec::new(),
            groups: Vec::new(),
            restore_seconds: None,
            records_restored: 0,
            bytes_restored: 0,
            records_per_second: None,
            bytes_per_second: None,
            check_seconds: None,
            partitions_checked: 0,
            records_checked: 0,
            group_offsets_checked: 0,
            damaged: Vec::new(),
            differences: Vec::new(),
            cleanup: CleanupReport::default(),
            exact: false,
        }
    }

    /// Fills in the verdict and the throughput over `restore_seconds`.
    pub(super) fn finish(mut self, restore_seconds: Option<f64>) -> DrillReport {
        if let Some(seconds) = restore_seconds.filter(|s| *s > 0.0) {
            self.records_per_second = Some(self.records_restored as f64 / seconds);
            self.bytes_per_second = Some(self.bytes_restored as f64 / seconds);
        }
        self.exact = self.damaged.is_empty() && self.differences.is_empty();
        self
    }

    /// The report of a drill that stopped before its verdict: never exact.
    pub(super) fn stopped(self) -> DrillReport {
        let mut report = self.finish(None);
        report.exact = false;
        report
    }

    /// Damaged objects and differences found.
    pub fn findings(&self) -> usize {
        self.damaged.len() + self.differences.len()
    }
}

fn age_of(started_at: &str, now: SystemTime) -> Option<f64> {
    let started = humantime::parse_rfc3339_weak(started_at).ok()?;
    Some(
        now.duration_since(started)
            .unwrap_or_default()
            .as_secs_f64(),
    )
}

/// The backup's age at `now` from its manifest's start time, or else from the time in its id.
pub(super) fn age_seconds(started_at: &str, id: &BackupId, now: SystemTime) -> Option<f64> {
    age_of(started_at, now).or_else(|| {
        id.started_at().map(|started| {
            now.duration_since(started)
                .unwrap_or_default()
                .as_secs_f64()
        })
    })
}

/// The problem of `key` in an [`Error::ArchiveDamaged`]'s `  KEY: PROBLEM` lines.
pub(super) fn strip_key(problems: &[String], key: &str) -> String {
    let named = format!("{key}: ");
    problems
        .iter()
        .map(|line| {
            let line = line.trim();
            line.strip_prefix(&named).unwrap_or(line).to_string()
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A prefix is refused when it is empty (the drill would write under the backup's own
/// names) or cannot start a topic name.
pub(super) fn check_prefix(prefix: &str) -> Result<(), DrillError> {
    let reason = if prefix.is_empty() {
        Some("it is empty, and a drill never restores under the backup's own topic and group names")
    } else {
        crate::topic_map::check_topic_name(prefix).err()
    };
    match reason {
        Some(reason) => Err(DrillError::BadPrefix {
            prefix: prefix.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Where a drill was when it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrillStep {
    Reading,
    Restoring,
    Checking,
}

impl std::fmt::Display for DrillStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DrillStep::Reading => "reading the backup",
            DrillStep::Restoring => "restoring into the scratch cluster",
            DrillStep::Checking => "checking the restore against the backup",
        })
    }
}

/// A drill that could not give a verdict, or could not clean up after itself.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// Before the drill created anything.
    #[error(transparent)]
    Failed(#[from] Error),
    #[error("the scratch cluster {scratch} is the cluster backup {backup_id} was taken from ({why}); nothing was written. A drill restores into a scratch cluster: point -b at one, or pass --allow-source-cluster to drill into this cluster anyway (everything goes under the prefix)")]
    SourceCluster {
        scratch: String,
        backup_id: String,
        why: String,
    },
    #[error("--prefix {prefix:?} cannot be used: {reason}")]
    BadPrefix {
        prefix: String,
        reason: &'static str,
    },
    #[error("the scratch cluster {scratch} already has {}; nothing was written. An earlier drill run with --keep leaves its topics and groups: delete them, or give another --prefix", .names.join(", "))]
    AlreadyThere { scratch: String, names: Vec<String> },
    /// `report` says how far the drill got and what it deleted.
    #[error("the drill was interrupted while {step}; {}", .report.cleanup)]
    Interrupted {
        step: DrillStep,
        report: Box<DrillReport>,
    },
    #[error("the drill failed while {step}: {}; {}", stop_reason(.why), .report.cleanup)]
    Unfinished {
        step: DrillStep,
        why: RestoreStop,
        report: Box<DrillReport>,
    },
    #[error("the drill found the restore {}, but {}", verdict(.report), .report.cleanup)]
    CleanupFailed { report: Box<DrillReport> },
}

fn stop_reason(why: &RestoreStop) -> String {
    match why {
        RestoreStop::Failed(err) => err.to_string(),
        other => other.to_string(),
    }
}

fn verdict(report: &DrillReport) -> String {
    match report.findings() {
        0 => "exact".into(),
        n => format!("not exact ({n} findings)"),
    }
}

impl DrillError {
    /// The drill's report, when it got as far as one: how far it got and what it deleted.
    pub fn report(&self) -> Option<&DrillReport> {
        match self {
            DrillError::Interrupted { report, .. }
            | DrillError::Unfinished { report, .. }
            | DrillError::CleanupFailed { report } => Some(report),
            _ => None,
        }
    }

    /// True when the drill stopped because it was asked to (Ctrl-C / SIGTERM).
    pub fn is_interrupted(&self) -> bool {
        match self {
            DrillError::Interrupted { .. } => true,
            DrillError::Failed(err) => err.is_interrupted(),
            _ => false,
        }
    }

    /// The request cannot be followed (the source cluster as scratch, a bad prefix, names
    /// already taken, or a request `Error` refuses): refused before anything was written.
    pub fn is_invalid_request(&self) -> bool {
        match self {
            DrillError::SourceCluster { .. }
            | DrillError::BadPrefix { .. }
            | DrillError::AlreadyThere { .. } => true,
            DrillError::Failed(err) => err.is_invalid_request(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_that_would_reuse_or_break_names_are_refused() {
        assert!(check_prefix("kafkasnap-drill-x.").is_ok());
        assert!(matches!(
            check_prefix(""),
            Err(DrillError::BadPrefix { .. })
        ));
        assert!(matches!(
            check_prefix("drill/"),
            Err(DrillError::BadPrefix { .. })
        ));
    }

    #[test]
    fn the_damaged_archive_line_loses_its_key() {
        let problems = vec!["  datadir/X/data.tar.zst: sha256 differs".to_string()];
        assert_eq!(
            strip_key(&problems, "datadir/X/data.tar.zst"),
            "sha256 differs"
        );
    }

    #[test]
    fn age_comes_from_the_manifest_or_else_the_id() {
        let now = humantime::parse_rfc3339("2026-12-01T12:00:00Z").unwrap();
        let id = BackupId::parse("20261201T100000Z-abcdef").unwrap();
        assert_eq!(
            age_seconds("2026-12-01T11:00:00.500Z", &id, now),
            Some(3599.5)
        );
        assert_eq!(age_seconds("not a time", &id, now), Some(7200.0));
    }
}
