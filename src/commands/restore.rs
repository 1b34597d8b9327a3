//! `kafkasnap restore`: restore a backup into a cluster (or, with --dry-run, show the plan).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kafkasnap::archive::BackupSelector;
use kafkasnap::datadir::extract_archive;
use kafkasnap::physical::archive_datadir;
use kafkasnap::progress::{human_bytes, Progress, ProgressReporter};
use kafkasnap::read::{download_datadir_archive, open_backup, open_datadir_backup};
use kafkasnap::restore::{
    check_archive, connect_writer, plan_restore, run_restore, IfExists, RestoreOptions, RestorePlan,
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
            let source = match stored_datadir(source, global)? {
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
                    let download = scratch.path().join("archive.download");
                    tracing::info!(backup_id = %manifest.backup_id, bytes = manifest.archive.stored_bytes, "downloading the data-dir backup");
                    download_datadir_archive(
                        &stored,
                        &manifest,
                        options.encryption_key.as_ref(),
                        &download,
                    )
                    .await?;
                    download
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
                    PathBuf::from(source)
                }
            };
            // The key was for the stored archive; what is restored is its plaintext
            // conversion in the scratch directory.
            options.encryption_key = None;
            let archive_dir = scratch.path().join("archive");
            let location = global.open_location(&archive_dir.display().to_string(), true)?;
            let (unpack_into, converted) = (scratch.path().join("data"), location.clone());
            let manifest = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                // A tarball (.tar, .tar.gz, .tar.zst) is unpacked into the scratch directory first.
                let data_dir = if source.is_file() {
                    extract_archive(&source, &unpack_into)?
                } else {
                    source
                };
                Ok(archive_datadir(&data_dir, &converted)?)
            })
            .await??;
            tracing::info!(records = manifest.totals.records, "read the data directory");
            (location, manifest)
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
        OutputFormat::Text => println!(
            "restored backup {} into {}: {} topics, {} records ({}), {} already there from the interrupted run, {} outside the time window, {} groups, {:.1}s",
            summary.plan.backup_id,
            summary.plan.target,
            summary.plan.topics.len(),
            summary.records_written,
            human_bytes(summary.bytes_written),
            summary.records_resumed,
            summary.records_filtered,
            summary.groups_committed,
            summary.duration_seconds
        ),
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
        println!(
            "  {:?} topic {}{rename}: {} partitions, replication factor {}, {} records, {}",
            topic.action,
            topic.target,
            topic.partitions,
            topic.replication_factor,
            topic.records,
            human_bytes(topic.bytes)
        );
        for (key, value) in &topic.configs {
            println!("      config {key}={value}");
        }
    }
    if plan.from_time.is_some() || plan.until.is_some() {
        println!(
            "  only records with timestamps in {:?}..={:?} (epoch ms)",
            plan.from_time, plan.until
        );
    }
    for group in &plan.groups {
        println!("  commit translated offsets of consumer group {group}");
    }
    if let Some(encryption) = &plan.encryption {
        println!(
            "  decrypt segments ({}, key id {}: the key given matches)",
            encryption.cipher, encryption.key_id
        );
    }
    println!("nothing was changed");
}
