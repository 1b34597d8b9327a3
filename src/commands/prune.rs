//! `kafkasnap prune`: apply a retention policy to a location; print what is kept (and why),
//! what is removed and the space freed; delete unless `--dry-run`.

use std::time::SystemTime;

use kafkasnap::archive::EncryptionKey;
use kafkasnap::progress::{count, human_bytes};
use kafkasnap::retention::{self, PlannedBackup, Policy, PrunePlan};
use kafkasnap::store::{list_locks, Location, LocationLock, LockListing};

use super::{load_key_file, print_json, Global, InvalidRequest, Outcome};
use crate::cli::{OutputFormat, PruneArgs};

#[derive(serde::Serialize)]
struct Summary {
    location: String,
    dry_run: bool,
    policy: PolicyJson,
    kept: Vec<Entry>,
    removed: Vec<Entry>,
    /// The same policy applied to the data-dir backups at the location, on their own.
    datadir_kept: Vec<Entry>,
    datadir_removed: Vec<Entry>,
    /// Objects deleted (with --dry-run: that would be deleted).
    removed_objects: usize,
    /// Bytes freed (with --dry-run: that would be freed).
    freed_bytes: u64,
    warnings: Vec<String>,
}

#[derive(serde::Serialize)]
struct PolicyJson {
    keep_last: u32,
    keep_within_seconds: u64,
    keep_hourly: u32,
    keep_daily: u32,
    keep_weekly: u32,
    grace_seconds: u64,
}

#[derive(serde::Serialize)]
struct Entry {
    backup_id: String,
    complete: bool,
    reasons: Vec<String>,
    /// Only for removed backups.
    #[serde(skip_serializing_if = "Option::is_none")]
    objects: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
}

impl Entry {
    fn of(backup: &PlannedBackup, removed: bool) -> Entry {
        Entry {
            backup_id: backup.id.to_string(),
            complete: backup.complete,
            reasons: backup.reasons.iter().map(ToString::to_string).collect(),
            objects: removed.then_some(backup.objects.len()),
            bytes: removed.then_some(backup.bytes()),
        }
    }
}

pub async fn run(args: PruneArgs, global: &Global) -> anyhow::Result<Outcome> {
    let policy = Policy {
        keep_last: args.keep_last.unwrap_or(0),
        keep_within: args.keep_within.unwrap_or_default(),
        keep_hourly: args.keep_hourly.unwrap_or(0),
        keep_daily: args.keep_daily.unwrap_or(0),
        keep_weekly: args.keep_weekly.unwrap_or(0),
        grace: args.grace,
    };
    policy
        .validate()
        .map_err(|err| InvalidRequest(err.to_string()))?;
    let location = global.open_location(&args.location, false)?;
    // A dry run deletes nothing, so it only looks at the locks; a prune holds the
    // location's exclusive lock while it plans and deletes.
    let (lock, locks) = if args.dry_run {
        (None, list_locks(&location, SystemTime::now()).await?)
    } else {
        let (lock, locks) = LocationLock::exclusive(&location).await?;
        (Some(lock), locks)
    };
    let encryption_key = load_key_file(&args.key)?;
    let result = prune_under_lock(
        &location,
        &policy,
        &locks,
        encryption_key.as_ref(),
        args.dry_run,
    )
    .await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    let (plan, datadir, removed_objects, freed_bytes, mut warnings) = result?;
    warnings.extend(plan.warnings.iter().chain(&datadir.warnings).cloned());
    let summary = Summary {
        location: location.display().to_string(),
        dry_run: args.dry_run,
        policy: PolicyJson {
            keep_last: policy.keep_last,
            keep_within_seconds: policy.keep_within.as_secs(),
            keep_hourly: policy.keep_hourly,
            keep_daily: policy.keep_daily,
            keep_weekly: policy.keep_weekly,
            grace_seconds: policy.grace.as_secs(),
        },
        kept: plan.keep.iter().map(|b| Entry::of(b, false)).collect(),
        removed: plan.remove.iter().map(|b| Entry::of(b, true)).collect(),
        datadir_kept: datadir.keep.iter().map(|b| Entry::of(b, false)).collect(),
        datadir_removed: datadir.remove.iter().map(|b| Entry::of(b, true)).collect(),
        removed_objects,
        freed_bytes,
        warnings,
    };
    match global.output {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Text => print_text(&summary),
    }
    Ok(Outcome::Success)
}

type Pruned = (PrunePlan, PrunePlan, usize, u64, Vec<String>);

/// Plans both families against the live `locks`, and deletes unless `dry_run`; also
/// removes the lock objects of runs that are known to be gone (stale).
async fn prune_under_lock(
    location: &Location,
    policy: &Policy,
    locks: &LockListing,
    encryption_key: Option<&EncryptionKey>,
    dry_run: bool,
) -> anyhow::Result<Pruned> {
    let now = SystemTime::now();
    let plan = retention::plan(location, policy, now, locks, encryption_key).await?;
    let datadir = retention::plan_datadir(location, policy, now, locks, encryption_key).await?;
    let (mut removed_objects, mut freed_bytes) = (0, 0);
    let mut warnings = Vec::new();
    for lock in &locks.stale {
        let what = lock.describe();
        if dry_run {
            warnings.push(format!("would remove the stale lock of {what}"));
        } else {
            location.delete_lock(&lock.key).await?;
            warnings.push(format!("removed the stale lock of {what}"));
        }
    }
    for plan in [&plan, &datadir] {
        if dry_run {
            removed_objects += plan.objects_to_remove();
            freed_bytes += plan.bytes_to_free();
        } else {
            let deleted = retention::execute(location, plan).await?;
            removed_objects += deleted.objects;
            freed_bytes += deleted.bytes;
        }
    }
    Ok((plan, datadir, removed_objects, freed_bytes, warnings))
}

fn print_text(summary: &Summary) {
    let state = |complete: bool| if complete { "complete" } else { "INCOMPLETE" };
    let remove = if summary.dry_run {
        "would remove"
    } else {
        "remove"
    };
    for (kind, kept, removed) in [
        ("", &summary.kept, &summary.removed),
        ("data-dir ", &summary.datadir_kept, &summary.datadir_removed),
    ] {
        for entry in kept {
            println!(
                "{:<12}  {kind}{}  {:<10}  {}",
                "keep",
                entry.backup_id,
                state(entry.complete),
                entry.reasons.join(", ")
            );
        }
        for entry in removed {
            println!(
                "{remove:<12}  {kind}{}  {:<10}  {}  ({}, {})",
                entry.backup_id,
                state(entry.complete),
                entry.reasons.join(", "),
                count(entry.objects.unwrap_or(0), "object"),
                human_bytes(entry.bytes.unwrap_or(0))
            );
        }
    }
    for warning in &summary.warnings {
        println!("warning: {warning}");
    }
    let (kept, removed, objects) = (
        summary.kept.len() + summary.datadir_kept.len(),
        summary.removed.len() + summary.datadir_removed.len(),
        summary.removed_objects,
    );
    let freed = format!(
        "{} ({} bytes)",
        human_bytes(summary.freed_bytes),
        summary.freed_bytes
    );
    let (kept, removed, objects) = (
        count(kept, "backup"),
        count(removed, "backup"),
        count(objects, "object"),
    );
    if summary.dry_run {
        println!(
            "dry run: kept {kept}; would remove {removed} ({objects}), freeing {freed}; nothing was deleted"
        );
    } else {
        println!("kept {kept}; removed {removed} ({objects}), freed {freed}");
    }
}
