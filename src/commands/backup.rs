//! `kafkasnap backup`: back up a cluster to a location.

use std::sync::Arc;

use kafkasnap::archive::Compression;
use kafkasnap::archive::ShardSpec;
use kafkasnap::backup::{run_backup, BackupOptions};
use kafkasnap::metrics::{push, RunMetrics};
use kafkasnap::progress::{count, human_bytes, Progress, ProgressReporter};
use kafkasnap::selection::TopicSelection;

use super::{
    cancel_on_signal, client_settings, load_key_file, print_json, Global, InvalidRequest, Outcome,
};
use crate::cli::{BackupArgs, OutputFormat};

/// The shard this process is, from --shard, or --shards with $JOB_COMPLETION_INDEX. Every
/// problem here is a request that cannot be followed (exit 2).
fn shard_spec(args: &BackupArgs) -> Result<Option<ShardSpec>, InvalidRequest> {
    fn invalid(err: impl std::fmt::Display) -> InvalidRequest {
        InvalidRequest(err.to_string())
    }
    let run = args.shard_run.as_deref();
    let spec = match (&args.shard, args.shards, run) {
        (None, None, None) => return Ok(None),
        (None, None, Some(_)) => {
            return Err(InvalidRequest(
                "--shard-run is only meaningful with --shard INDEX/COUNT or --shards COUNT".into(),
            ))
        }
        (Some(spec), _, Some(run)) => ShardSpec::parse(spec, run).map_err(invalid)?,
        (None, Some(count), Some(run)) => {
            let index = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
                InvalidRequest(format!("--shards {count} takes the shard index from $JOB_COMPLETION_INDEX (set in a Kubernetes Indexed Job), which is not set; outside an Indexed Job use --shard INDEX/{count}"))
            })?;
            let index: u32 = index.trim().parse().map_err(|_| {
                InvalidRequest(format!("$JOB_COMPLETION_INDEX is {index:?}, not a shard index (a whole number below {count}); outside an Indexed Job use --shard INDEX/{count}"))
            })?;
            ShardSpec::new(index, count, run).map_err(invalid)?
        }
        (_, _, None) => {
            return Err(InvalidRequest(
                "a sharded backup needs --shard-run NAME, the same for every shard of the run"
                    .into(),
            ))
        }
    };
    Ok(Some(spec))
}

pub async fn run(args: BackupArgs, global: &Global) -> anyhow::Result<Outcome> {
    let compression: Compression = args.compression.parse()?;
    // Before anything is connected to or written.
    let level = compression
        .level(args.level)
        .map_err(kafkasnap::Error::from)?;
    let options = BackupOptions {
        client: client_settings(&args.client)?,
        selection: TopicSelection::new(
            &args.selection.include,
            &args.selection.exclude,
            args.selection.include_internal,
        )?,
        compression,
        level,
        segment_bytes: args.segment_bytes as usize,
        parallelism: args.parallelism as usize,
        stall_timeout: args.stall_timeout,
        incremental: args.incremental,
        shard: shard_spec(&args)?,
        wait_for_run: args.wait_for_run,
        encryption_key: load_key_file(&args.key)?,
        cancel: cancel_on_signal(),
        delta_chain_limit: None,
        finish_early: None,
    };
    let location = global.open_location(&args.to, true)?;
    if args.follow.follow {
        if args.pushgateway.is_some() {
            // From the environment too (one ConfigMap for the CronJobs and the follower).
            tracing::warn!("--pushgateway is for one-off runs such as CronJobs and is ignored by --follow; scrape the follower's --metrics-listen address instead");
        }
        return super::follow::run(options, &args.follow, location, global).await;
    }
    let progress = Arc::new(Progress::default());
    let reporter = ProgressReporter::start("backup", Arc::clone(&progress), global.progress);
    let started = std::time::Instant::now();
    let result = run_backup(&location, options, progress).await;
    drop(reporter);
    if result.is_err() {
        // A backup that failed before it stored anything leaves no new empty directory.
        location.remove_if_created_and_empty();
    }
    if let Some(url) = &args.pushgateway {
        let summary = result.as_ref().ok();
        let metrics = RunMetrics {
            command: "backup",
            succeeded: summary.is_some(),
            finished_at: std::time::SystemTime::now(),
            duration: started.elapsed(),
            records: summary.map(|s| s.records_read),
            raw_bytes: summary.map(|s| s.raw_bytes),
            stored_bytes: summary.map(|s| s.stored_bytes),
        };
        // The backup's own outcome decides the exit code; a metrics failure is only logged.
        if let Err(err) = push(url, &metrics).await {
            tracing::warn!("{err}");
        }
    }
    let summary = result?;
    for warning in &summary.warnings {
        tracing::warn!("{warning}");
    }
    match (global.output, &summary.shard) {
        (OutputFormat::Json, _) => print_json(&summary)?,
        (OutputFormat::Text, Some(shard)) if !shard.published => println!(
            "shard {}/{} of run {} stored as {} at {}: {}, {}, {} stored; backup not published yet: waiting for shards {}",
            shard.index,
            shard.count,
            shard.run,
            shard.part_id,
            summary.location,
            count(summary.partitions, "partition"),
            count(summary.records, "record"),
            human_bytes(summary.stored_bytes),
            shard
                .waiting_for
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (OutputFormat::Text, Some(shard)) => println!(
            "shard {}/{} of run {} stored as {} ({}, {}); backup {} published at {}",
            shard.index,
            shard.count,
            shard.run,
            shard.part_id,
            count(summary.partitions, "partition"),
            count(summary.records, "record"),
            summary.backup_id,
            summary.location,
        ),
        (OutputFormat::Text, None) => {
            println!(
                "backup {} complete at {}: {}, {}, {}, {} raw, {} stored, {}, {:.1}s ({}/s)",
                summary.backup_id,
                summary.location,
                count(summary.topics, "topic"),
                count(summary.partitions, "partition"),
                count(summary.records, "record"),
                human_bytes(summary.raw_bytes),
                human_bytes(summary.stored_bytes),
                count(summary.groups, "group"),
                summary.duration_seconds,
                human_bytes(
                    (summary.raw_bytes as f64 / summary.duration_seconds.max(0.001)) as u64
                ),
            );
            if let Some(parent) = &summary.parent {
                println!(
                    "  incremental on {parent}: this run read {}, stored {} in {} (the totals above are the whole chain's)",
                    count(summary.records_read, "record"),
                    human_bytes(summary.new_stored_bytes),
                    count(summary.new_segments, "new segment"),
                );
            }
        }
    }
    Ok(match &summary.shard {
        Some(shard) if !shard.published => Outcome::ShardRunWaiting,
        _ => Outcome::Success,
    })
}
