//! `kafkasnap restore`: restore a backup into a cluster (or, with --dry-run, show the plan).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kafkasnap::archive::BackupSelector;
use kafkasnap::physical::{stage_datadir_as_archive, stage_datadir_backup};
use kafkasnap::progress::{count, human_bytes, human_time, Progress, ProgressReporter};
use kafkasnap::read::{open_backup, open_datadir_backup};
use kafkasnap::restore::{
    check_archive, connect_writer, plan_restore, run_restore, GroupNames, IfExists, RestoreOptions,
    RestorePlan, TopicAction,
};
use kafkasnap::selection::TopicSelection;
use kafkasnap::store::{Location, LockKind};

use super::{
    cancel_on_signal, client_settings, load_key_file, lock_datadir_for_reading, lock_for_reading,
    print_json, Global, InvalidRequest, Outcome,
};
use crate::cli::{self, OutputFormat, RestoreArgs};

pub async fn run(args: RestoreArgs, global: &Global) -> anyhow::Result<Outcome> {
    let mut options = RestoreOptions {
        client: client_settings(&args.client)?,
        selection: TopicSelection::new(
            &args.selection.include,
            &args.selection.exclude,
            args.selection.include_internal,
        )?,
        topic_map: args.topic_map.clone(),
        from_time: args.from_time,
        until: args.until,
        if_exists: match args.if_exists {
            cli::IfExists::Fail => IfExists::Fail,
            cli::IfExists::Skip => IfExists::Skip,
            cli::IfExists::Append => IfExists::Append,
        },
        skip_groups: args.skip_groups,
        group_names: GroupNames::Same,
        parallelism: args.parallelism as usize,
        resume: args.resume,
        encryption_key: load_key_file(&args.key)?,
        stall_timeout: args.stall_timeout,
        cancel: cancel_on_signal(),
    };
    options.check()?;
    // A data directory is first turned into a temporary logical archive, so both kinds of
    // source take the same restore path.
    let scratch;
    // Held until the restore ends: a prune keeps the backup while it is read.
    let mut read_lock = None;
    let (location, manifest) = match (&args.from, &args.from_datadir) {
        (Some(from), _) => {
            let location = global.open_location(from, false)?;
            let key = options.encryption_key.as_ref();
            let chosen = open_backup(&location, &args.backup, key).await?;
            let (lock, manifest) = lock_for_reading(
                &location,
                LockKind::Restore,
                &chosen.backup_id,
                key,
                &options.cancel,
            )
            .await?;
            read_lock = Some(lock);
            (location, manifest)
        }
        (None, Some(source)) => {
            scratch = tempfile::Builder::new()
                .prefix("kafkasnap-datadir-")
                .tempdir()?;
            let staged = match stored_datadir(source, global)? {
                Some(stored) => {
                    let key = options.encryption_key.as_ref();
                    let chosen = open_datadir_backup(&stored, &args.backup, key).await?;
                    let (lock, manifest) = lock_datadir_for_reading(
                        &stored,
                        LockKind::Restore,
                        &chosen.backup_id,
                        key,
                        &options.cancel,
                    )
                    .await?;
                    read_lock = Some(lock);
                    stage_datadir_backup(&stored, &manifest, key, scratch.path()).await?
                }
                None if args.backup != BackupSelector::Latest => {
                    return Err(InvalidRequest(format!(
                        "--backup picks a data-dir backup at a location, but {source} is a data directory or a tarball"
                    ))
                    .into())
                }
                None => {
                    if options.encryption_key.is_some() {
                        tracing::warn!("{source} is not a backup location: the key file is not used");
                    }
                    stage_datadir_as_archive(PathBuf::from(source), scratch.path()).await?
                }
            };
            // The key was for the stored archive; what is restored is its plaintext
            // conversion in the scratch directory.
            options.encryption_key = None;
            staged
        }
        (None, None) => anyhow::bail!("give --from LOCATION or --from-datadir DIR"),
    };
    let plan = plan_restore(&manifest, &options).await?;
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }
    // Made before the archive check so the producer's start-up overlaps it.
    let writer = if args.dry_run {
        None
    } else {
        Some(connect_writer(&options).await?)
    };
    check_archive(&location, &manifest, &plan, options.parallelism).await?;
    let Some(writer) = writer else {
        match global.output {
            OutputFormat::Json => {
                print_json(&serde_json::json!({ "dry_run": true, "plan": plan }))?
            }
            OutputFormat::Text => print_plan(&plan),
        }
        return Ok(Outcome::Success);
    };
    let appended = appended_topics(&plan);
    if !appended.is_empty() && !plan.groups.is_empty() {
        tracing::info!(
            "--if-exists append: restoring after the records already in {}; the committed offsets of groups {} there are set to where the restored records land, replacing the target's",
            appended.join(", "),
            plan.groups.join(", ")
        );
    }
    let progress = Arc::new(Progress::default());
    let reporter = ProgressReporter::start("restore", Arc::clone(&progress), global.progress);
    let result = run_restore(&location, &manifest, plan, &options, writer, progress).await;
    drop(reporter);
    if let Some(lock) = read_lock.take() {
        lock.release().await;
    }
    let summary = result?;
    match global.output {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Text => {
            let mut details = vec![format!(
                "{} ({})",
                count(summary.records_written, "record"),
                human_bytes(summary.bytes_written)
            )];
            if args.resume {
                details.push(format!(
                    "{} already there from the interrupted run",
                    summary.records_resumed
                ));
            }
            if summary.plan.from_time.is_some() || summary.plan.until.is_some() {
                details.push(format!(
                    "{} outside the time window",
                    summary.records_filtered
                ));
            }
            details.push(match summary.groups_committed {
                0 => count(0, "group"),
                _ if appended.is_empty() => count(summary.groups_committed, "group"),
                1 => "1 group (its committed offsets on the topics appended to now point at the restored records)".to_string(),
                many => format!("{many} groups (their committed offsets on the topics appended to now point at the restored records)"),
            });
            println!(
                "restored backup {} into {}: {}, {}, {:.1}s",
                summary.plan.backup_id,
                summary.plan.target,
                topics_restored(&summary.plan),
                details.join(", "),
                summary.duration_seconds
            )
        }
    }
    Ok(Outcome::Success)
}

/// The location holding data-dir backups that `--from-datadir` names, if it names one: a URL,
/// or a local directory with a `datadir/` of backups (a Kafka data directory has none).
fn stored_datadir(source: &str, global: &Global) -> anyhow::Result<Option<Location>> {
    let is_url = Location::is_url(source);
    let local = Path::new(source);
    if !is_url && !local.join("datadir").is_dir() {
        return Ok(None);
    }
    Ok(Some(global.open_location(source, false)?))
}

/// `3 topics`, or `3 topics (1 skipped: it already exists, --if-exists skip)`, or with
/// `(2 appended to: they already exist, --if-exists append)`.
fn topics_restored(plan: &RestorePlan) -> String {
    let total = count(plan.topics.len(), "topic");
    let with_action = |action| plan.topics.iter().filter(|t| t.action == action).count();
    let (skipped, appended) = (
        with_action(TopicAction::Skip),
        with_action(TopicAction::Append),
    );
    match (skipped, appended) {
        (0, 0) => total,
        (1, _) => format!("{total} (1 skipped: it already exists, --if-exists skip)"),
        (0, 1) => format!("{total} (1 appended to: it already exists, --if-exists append)"),
        (0, _) => {
            format!("{total} ({appended} appended to: they already exist, --if-exists append)")
        }
        _ => format!("{total} ({skipped} skipped: they already exist, --if-exists skip)"),
    }
}

/// The existing topics a restore adds its records to (`--if-exists append`).
fn appended_topics(plan: &RestorePlan) -> Vec<String> {
    plan.topics
        .iter()
        .filter(|topic| topic.action == TopicAction::Append)
        .map(|topic| topic.target.clone())
        .collect()
}

fn print_plan(plan: &RestorePlan) {
    println!(
        "dry run: restore backup {} into {} would:",
        plan.backup_id, plan.target
    );
    for topic in &plan.topics {
        let rename = if topic.source == topic.target {
            String::new()
        } else {
            format!(" (from {})", topic.source)
        };
        let action = match topic.action {
            TopicAction::Create => "create",
            TopicAction::Append => "append to",
            TopicAction::Skip => "skip (it exists; --if-exists skip)",
            TopicAction::Resume => "resume",
        };
        println!(
            "  {action} topic {}{rename}: {}, replication factor {}, {}, {}",
            topic.target,
            count(topic.partitions, "partition"),
            topic.replication_factor,
            count(topic.records, "record"),
            human_bytes(topic.bytes)
        );
        for (key, value) in &topic.configs {
            println!("      config {key}={value}");
        }
    }
    match (plan.from_time, plan.until) {
        (Some(from), Some(until)) => println!(
            "  only records with timestamps from {} to {} (both included)",
            human_time(from),
            human_time(until)
        ),
        (Some(from), None) => println!(
            "  only records with timestamps at or after {}",
            human_time(from)
        ),
        (None, Some(until)) => println!(
            "  only records with timestamps at or before {}",
            human_time(until)
        ),
        (None, None) => {}
    }
    let moves = match appended_topics(plan).is_empty() {
        true => "",
        false => {
            " (on the topics appended to too: this replaces the group's committed offsets there)"
        }
    };
    for group in &plan.groups {
        println!("  commit translated offsets of consumer group {group}{moves}");
    }
    if let Some(encryption) = &plan.encryption {
        println!(
            "  decrypt segments ({}, key id {}: the key given matches)",
            encryption.cipher, encryption.key_id
        );
    }
    println!("nothing was changed");
}
