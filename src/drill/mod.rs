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

use std::sync::atomic::{AtomicBool, Ordering};
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
    archive_problems, connect_writer, plan_restore, run_restore, GroupNames, IfExists,
    RestoreOptions, RestoreStop,
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

/// The prefix a drill of backup `id` uses unless told another.
pub fn default_prefix(id: &BackupId) -> String {
    format!("kafkasnap-drill-{id}.")
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
    let scratch_cluster = source::describe(&options.client, &options.cancel).await?;
    let opened = match open(location, kind, id, options, &scratch_cluster).await {
        Ok(opened) => opened,
        Err(Found::Damage(problem)) => {
            report.damaged.push(problem);
            return Ok(report.finish(drill_started, None));
        }
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
    let problems = archive_problems(
        &opened.location,
        &opened.manifest,
        &plan,
        options.parallelism,
    )
    .await;
    if !problems.is_empty() {
        report.damaged = problems;
        return Ok(report.finish(drill_started, None));
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
            let why = match err {
                Error::RestoreIncomplete { why, .. } => why,
                other => RestoreStop::from(other),
            };
            return Err(unfinished(DrillStep::Restoring, why, options, &report).await);
        }
    };
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
    let checked = match until_cancelled(&options.cancel, checking).await {
        Some(Ok(checked)) => checked,
        Some(Err(err)) => {
            let why = RestoreStop::from(err);
            return Err(unfinished(DrillStep::Checking, why, options, &report).await);
        }
        None => {
            let why = RestoreStop::Interrupted;
            return Err(unfinished(DrillStep::Checking, why, options, &report).await);
        }
    };
    report.check_seconds = Some(check_clock.elapsed().as_secs_f64());
    report.partitions_checked = checked.partitions;
    report.records_checked = checked.records;
    report.group_offsets_checked = checked.group_offsets;
    report.differences = checked.differences;

    report.cleanup = cleanup::clean_up(&options.client, &report, options.keep).await;
    let report = report.finish(drill_started, Some(restore_seconds));
    if report.cleanup.left_behind.is_empty() {
        Ok(report)
    } else {
        Err(DrillError::CleanupFailed {
            report: Box::new(report),
        })
    }
}

/// What opening the backup found that is not an error: a damaged manifest or archive.
enum Found {
    Damage(ObjectProblem),
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
            let (converted, manifest) = match until_cancelled(&options.cancel, staging).await {
                Some(staged) => staged.map_err(|err| match err {
                    // The archive's own key names the damaged object.
                    Error::ArchiveDamaged { problems } => Found::Damage(ObjectProblem {
                        key: stored.archive.key.clone(),
                        problem: report::strip_key(&problems, &stored.archive.key),
                    }),
                    other => Found::from(other),
                })?,
                None => {
                    return Err(Found::Error(DrillError::Interrupted {
                        step: DrillStep::Reading,
                        cleanup: CleanupReport::default(),
                    }))
                }
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

/// The drill stopped in `step` after it may have created topics and groups: those are
/// deleted (unless `--keep`), and the error says why it stopped and what is left.
async fn unfinished(
    step: DrillStep,
    why: RestoreStop,
    options: &DrillOptions,
    report: &DrillReport,
) -> DrillError {
    let cleanup = cleanup::clean_up(&options.client, report, options.keep).await;
    match why {
        RestoreStop::Interrupted => DrillError::Interrupted { step, cleanup },
        why => DrillError::Unfinished { step, why, cleanup },
    }
}

/// `work`, or `None` as soon as `cancel` is set (checked every 50 ms).
async fn until_cancelled<T>(
    cancel: &AtomicBool,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::pin!(work);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        tokio::select! {
            done = &mut work => return Some(done),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}
