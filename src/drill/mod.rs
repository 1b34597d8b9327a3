//! Restore drills: a backup (the newest complete one, logical or data-dir, by default)
//! restored into a scratch cluster with every topic and consumer group renamed under a
//! prefix, checked against the backup (each partition's records by content hash, each
//! group's translated offsets), and deleted again, also when a step fails or the drill is
//! interrupted. It reports how long the restore took (the recovery time) and how old the
//! backup was (the recovery point it gives).
//!
//! Files: `check` (the restored partitions and group offsets against the backup), `cleanup`
//! (deleting what the drill created), `source` (refusing the backup's own source cluster),
//! `report` (what a drill reports, and how it fails).

mod check;
mod cleanup;
mod report;
mod source;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use cleanup::CleanupReport;
pub use report::{Difference, DrillError, DrillReport, DrillStep, RenamedName};

use crate::archive::{BackupId, BackupSelector, EncryptionKey, Manifest};
use crate::error::BackupKind;
use crate::kafka::ClientSettings;
use crate::progress::Progress;
use crate::read::{open_datadir_backup, read_manifest, resolve_backup_of_any_kind, ObjectProblem};
use crate::restore::{
    archive_problems, connect_writer, plan_restore, run_restore, unless_cancelled, Created,
    GroupNames, IfExists, RestoreOptions, RestoreStop,
};
use crate::selection::TopicSelection;
use crate::store::{Location, LocationLock, LockKind};
use crate::Error;

/// What a drill does, and where.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// The scratch cluster the backup is restored into.
    pub client: ClientSettings,
    /// Which of the backup's topics are restored.
    pub selection: TopicSelection,
    /// Put before every restored topic's and group's name; `None`: `kafkasnap-drill-<id>.`.
    pub prefix: Option<String>,
    /// Leave what the drill created in the scratch cluster (for inspection).
    pub keep: bool,
    /// Drill even into the cluster the backup was taken from.
    pub allow_source_cluster: bool,
    pub encryption_key: Option<EncryptionKey>,
    pub parallelism: usize,
    /// As restore's: fail when the scratch cluster acknowledges nothing for this long.
    pub stall_timeout: Duration,
    /// Set on Ctrl-C / SIGTERM: the drill stops, deletes what it created, and says so.
    pub cancel: Arc<AtomicBool>,
}

/// The prefix a drill of backup `id` uses unless told another: the backup's id and a random
/// run suffix (24 bits, from the operating system), so drills of one backup running at the
/// same time never share a name.
fn default_prefix(id: &BackupId) -> String {
    let mut random = [0u8; 4];
    let run = match getrandom::fill(&mut random) {
        Ok(()) => u32::from_le_bytes(random),
        // No OS randomness (never seen on Linux): the clock and the pid.
        Err(_) => {
            let since_epoch = SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            since_epoch.subsec_nanos() ^ std::process::id().rotate_left(16)
        }
    };
    prefix_of_run(id, run)
}

fn prefix_of_run(id: &BackupId, run: u32) -> String {
    format!("kafkasnap-drill-{id}-{:06x}.", run & 0x00ff_ffff)
}

/// Runs a drill of the backup `selector` names at `location` (see the module docs). A damaged
/// backup, or a restore that differs from it, is a finding in the report (`exact` false),
/// not an error; an error says what was left in the scratch cluster.
pub async fn run_drill(
    location: &Location,
    selector: &BackupSelector,
    options: &DrillOptions,
    progress: Arc<Progress>,
) -> Result<DrillReport, DrillError> {
    let drill_started = SystemTime::now();
    let (kind, id) = resolve_backup_of_any_kind(location, selector).await?;
    // A drill is a restore as far as other kafkasnap runs are concerned: a prune keeps the
    // backup while it is read.
    let (logical, datadir) = match kind {
        BackupKind::Logical => (vec![id.clone()], vec![]),
        BackupKind::Datadir => (vec![], vec![id.clone()]),
    };
    let lock = LocationLock::shared(
        location,
        LockKind::Restore,
        logical,
        datadir,
        &options.cancel,
    )
    .await
    .map_err(Error::from)?;
    let result = drill_locked(location, kind, &id, options, progress, drill_started).await;
    lock.release().await;
    result
}

/// The backup as the drill restores it: a logical archive (a data-dir backup converted into
/// one in a scratch directory), and what it says about its source.
struct Opened {
    location: Location,
    manifest: Manifest,
    encryption_key: Option<EncryptionKey>,
    started_at: String,
    /// Kept until the drill ends: the converted archive of a data-dir backup.
    _scratch: Option<tempfile::TempDir>,
}

async fn drill_locked(
    location: &Location,
    kind: BackupKind,
    id: &BackupId,
    options: &DrillOptions,
    progress: Arc<Progress>,
    drill_started: SystemTime,
) -> Result<DrillReport, DrillError> {
    let clock = Instant::now();
    let mut report = DrillReport::new(kind, id, &options.client.bootstrap_servers);
    let prefix = options.prefix.clone().unwrap_or_else(|| default_prefix(id));
    report::check_prefix(&prefix)?;
    report.prefix = prefix.clone();
    let Some(scratch_cluster) = source::describe(&options.client, &options.cancel).await? else {
        return Err(nothing_created(DrillStep::Reading, report));
    };
    let opened = match open(location, kind, id, options, &scratch_cluster).await {
        Ok(opened) => opened,
        Err(Found::Damage(problem)) => {
            report.damaged.push(problem);
            return Ok(report.finish(None));
        }
        Err(Found::Interrupted) => return Err(nothing_created(DrillStep::Reading, report)),
        Err(Found::Error(err)) => return Err(err),
    };
    report.backup_started_at = opened.started_at.clone();
    report.backup_age_seconds = report::age_seconds(&opened.started_at, id, drill_started);

    let restore_options = restore_options(&opened, options, &prefix);
    let topic_targets: Vec<&str> = restore_options
        .topic_map
        .iter()
        .map(|(_, target)| target.as_str())
        .collect();
    source::refuse_leftovers(&options.client, &scratch_cluster, &topic_targets, &[]).await?;
    let plan = plan_restore(&opened.manifest, &restore_options).await?;
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }
    let groups = GroupNames::Prefixed(prefix.clone());
    report.topics = plan
        .topics
        .iter()
        .map(|t| RenamedName::new(&t.source, &t.target))
        .collect();
    report.groups = plan
        .groups
        .iter()
        .map(|g| RenamedName::new(g, &groups.target(g)))
        .collect();
    let group_targets: Vec<&str> = report.groups.iter().map(|g| g.target.as_str()).collect();
    source::refuse_leftovers(&options.client, &scratch_cluster, &[], &group_targets).await?;
    let writer = connect_writer(&restore_options).await?;
    let checking_archive = archive_problems(
        &opened.location,
        &opened.manifest,
        &plan,
        options.parallelism,
    );
    let Some(problems) = unless_cancelled(&options.cancel, checking_archive)
        .await
        .ok()
    else {
        return Err(nothing_created(DrillStep::Reading, report));
    };
    if !problems.is_empty() {
        report.damaged = problems;
        return Ok(report.finish(None));
    }

    // From here on the scratch cluster may hold what the drill created.
    let restored = run_restore(
        &opened.location,
        &opened.manifest,
        plan.clone(),
        &restore_options,
        writer,
        progress,
    )
    .await;
    let restore_seconds = clock.elapsed().as_secs_f64();
    let summary = match restored {
        Ok(summary) => summary,
        Err(err) => {
            let (why, created) = stop_of(err);
            let stopped = Stopped {
                step: DrillStep::Restoring,
                why,
                created: &created,
            };
            return Err(stopped.clean_up(options, report).await);
        }
    };
    let created = summary.created.clone();
    report.restore_seconds = Some(restore_seconds);
    report.records_restored = summary.records_written;
    report.bytes_restored = summary.bytes_written;
    tracing::info!(
        records = summary.records_written,
        seconds = restore_seconds,
        "restored; checking it against the backup"
    );

    let check_clock = Instant::now();
    let checking = check::check_restore(&opened, &plan, options, &groups);
    let checked = match unless_cancelled(&options.cancel, checking).await.ok() {
        Some(Ok(checked)) => checked,
        failed => {
            let why = match failed {
                Some(Err(err)) => RestoreStop::from(err),
                _ => RestoreStop::Interrupted,
            };
            let stopped = Stopped {
                step: DrillStep::Checking,
                why,
                created: &created,
            };
            return Err(stopped.clean_up(options, report).await);
        }
    };
    report.check_seconds = Some(check_clock.elapsed().as_secs_f64());
    report.partitions_checked = checked.partitions;
    report.records_checked = checked.records;
    report.group_offsets_checked = checked.group_offsets;
    report.differences = checked.differences;

    report.cleanup = cleanup::clean_up(&options.client, &created, options.keep).await;
    let report = report.finish(Some(restore_seconds));
    if report.cleanup.left_behind.is_empty() {
        Ok(report)
    } else {
        Err(DrillError::CleanupFailed {
            report: Box::new(report),
        })
    }
}

/// What opening the backup found that is not an error: a damaged manifest or archive, or
/// an interrupt.
enum Found {
    Damage(ObjectProblem),
    Interrupted,
    Error(DrillError),
}

impl From<Error> for Found {
    fn from(err: Error) -> Found {
        match err {
            Error::ManifestDamaged {
                key, source: err, ..
            } => Found::Damage(ObjectProblem {
                key,
                problem: err.to_string(),
            }),
            other => Found::Error(other.into()),
        }
    }
}

impl From<DrillError> for Found {
    fn from(err: DrillError) -> Found {
        Found::Error(err)
    }
}

/// Reads backup `id`, refuses it when the scratch cluster is its source, and (a data-dir
/// backup) downloads it and converts it into a logical archive.
async fn open(
    location: &Location,
    kind: BackupKind,
    id: &BackupId,
    options: &DrillOptions,
    scratch_cluster: &source::ScratchCluster,
) -> Result<Opened, Found> {
    let key = options.encryption_key.as_ref();
    match kind {
        BackupKind::Logical => {
            let manifest = read_manifest(location, id, key).await?;
            source::refuse_source(
                &source::BackupSource::of_logical(&manifest),
                scratch_cluster,
                options,
            )?;
            Ok(Opened {
                location: location.clone(),
                started_at: manifest.started_at.clone(),
                manifest,
                encryption_key: options.encryption_key.clone(),
                _scratch: None,
            })
        }
        BackupKind::Datadir => {
            let selector = BackupSelector::Exact(id.clone());
            let stored = open_datadir_backup(location, &selector, key).await?;
            source::refuse_source(
                &source::BackupSource::of_datadir(&stored),
                scratch_cluster,
                options,
            )?;
            let scratch = tempfile::Builder::new()
                .prefix("kafkasnap-drill-")
                .tempdir()
                .map_err(|source| {
                    Error::Datadir(crate::datadir::DatadirError::Io {
                        path: std::env::temp_dir(),
                        source,
                    })
                })?;
            let staging =
                crate::physical::stage_datadir_backup(location, &stored, key, scratch.path());
            let (converted, manifest) = match unless_cancelled(&options.cancel, staging).await.ok()
            {
                Some(staged) => staged.map_err(|err| match err {
                    // The archive's own key names the damaged object.
                    Error::ArchiveDamaged { problems } => Found::Damage(ObjectProblem {
                        key: stored.archive.key.clone(),
                        problem: report::strip_key(&problems, &stored.archive.key),
                    }),
                    other => Found::from(other),
                })?,
                None => return Err(Found::Interrupted),
            };
            Ok(Opened {
                location: converted,
                manifest,
                // The converted archive is plaintext.
                encryption_key: None,
                started_at: stored.started_at.clone(),
                _scratch: Some(scratch),
            })
        }
    }
}

/// Restore's options for a drill: every selected topic and every group under `prefix`, into
/// topics that must not exist yet.
fn restore_options(opened: &Opened, options: &DrillOptions, prefix: &str) -> RestoreOptions {
    let topic_map = opened
        .manifest
        .topics
        .iter()
        .filter(|t| !t.internal && options.selection.matches(&t.name, t.internal))
        .map(|t| (t.name.clone(), format!("{prefix}{}", t.name)))
        .collect();
    RestoreOptions {
        client: options.client.clone(),
        selection: options.selection.clone(),
        topic_map,
        from_time: None,
        until: None,
        if_exists: IfExists::Fail,
        skip_groups: false,
        group_names: GroupNames::Prefixed(prefix.to_string()),
        parallelism: options.parallelism,
        resume: false,
        encryption_key: opened.encryption_key.clone(),
        stall_timeout: options.stall_timeout,
        cancel: Arc::clone(&options.cancel),
    }
}

/// The drill was interrupted in `step`, before it created anything.
fn nothing_created(step: DrillStep, report: DrillReport) -> DrillError {
    DrillError::Interrupted {
        step,
        report: Box::new(report.stopped()),
    }
}

/// Why a restore stopped, and what it had created by then (nothing, when it failed before it
/// began to create topics).
fn stop_of(err: Error) -> (RestoreStop, Created) {
    match err {
        Error::RestoreIncomplete { why, written } => (why, written.created().clone()),
        other => (RestoreStop::from(other), Created::default()),
    }
}

/// A drill that stopped in `step` (`why`) after it may have created topics and groups.
struct Stopped<'a> {
    step: DrillStep,
    why: RestoreStop,
    created: &'a Created,
}

impl Stopped<'_> {
    /// Deletes what the drill created (unless `--keep`); the error says why it stopped and
    /// what is left.
    async fn clean_up(self, options: &DrillOptions, mut report: DrillReport) -> DrillError {
        report.cleanup = cleanup::clean_up(&options.client, self.created, options.keep).await;
        let report = Box::new(report.stopped());
        let step = self.step;
        match self.why {
            RestoreStop::Interrupted => DrillError::Interrupted { step, report },
            why => DrillError::Unfinished { step, why, report },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{WritePhase, Written};
    use crate::kafka::KafkaError;

    #[test]
    fn the_default_prefix_differs_per_run() {
        let id = BackupId::parse("20261201T100000Z-abcdef").unwrap();
        assert_eq!(
            prefix_of_run(&id, 0x1234_5678),
            "kafkasnap-drill-20261201T100000Z-abcdef-345678."
        );
        assert!(report::check_prefix(&prefix_of_run(&id, u32::MAX)).is_ok());
        assert_ne!(default_prefix(&id), default_prefix(&id));
    }

    #[test]
    fn only_what_the_restore_created_is_deleted_after_it_stops() {
        // Creating topics failed (one already existed): the clean-up gets the topics the
        // cluster created for this run, never the planned ones.
        let mut written = Written::nothing(false);
        written.phase = WritePhase::CreatingTopics;
        written.created.topics = vec!["p.ours".into()];
        let refused = Error::from(KafkaError::Broker {
            action: "creating topic".into(),
            resource: "p.theirs".into(),
            code: rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
        });
        let (why, created) = stop_of(Error::RestoreIncomplete {
            why: RestoreStop::from(refused),
            written,
        });
        assert!(why.to_string().contains("p.theirs"), "{why}");
        assert_eq!(created.topics, ["p.ours"]);
        assert!(created.groups.is_empty());

        // A restore refused before it created anything: nothing to delete.
        let (_, created) = stop_of(Error::Interrupted);
        assert_eq!(created, Created::default());
    }
}
