//! `kafkasnap backup --follow`: continuous backup, a checkpoint every interval until stopped.

use std::sync::Arc;

use kafkasnap::backup::BackupOptions;
use kafkasnap::follow::{run_follow, serve_status, FollowOptions, FollowStatus};
use kafkasnap::progress::{count, human_bytes};
use kafkasnap::store::Location;

use super::{finish_on_signal, print_json, Global, Outcome};
use crate::cli::{FollowArgs, OutputFormat, DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_FULL_EVERY};

pub async fn run(
    backup: BackupOptions,
    args: &FollowArgs,
    location: Location,
    global: &Global,
) -> anyhow::Result<Outcome> {
    let interval = args
        .checkpoint_interval
        .unwrap_or(DEFAULT_CHECKPOINT_INTERVAL);
    let status = Arc::new(FollowStatus::new(interval));
    if let Some(address) = &args.metrics_listen {
        serve_status(address, Arc::clone(&status)).await?;
    }
    tracing::info!(
        "following into {}: a checkpoint every {}; SIGTERM or Ctrl-C publishes a last one and stops",
        location.display(),
        humantime::format_duration(interval)
    );
    let options = FollowOptions {
        backup,
        checkpoint_interval: interval,
        full_every: args.full_every.unwrap_or(DEFAULT_FULL_EVERY),
        stop: finish_on_signal(),
        status,
    };
    let result = run_follow(&location, options).await;
    if result.is_err() {
        // A follower that failed before its first checkpoint leaves no new empty directory.
        location.remove_if_created_and_empty();
    }
    let summary = result?;
    match global.output {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Text => match &summary.last_checkpoint {
            Some(last) => println!(
                "stopped following: {} published at {} ({} read, {}); the last, {}, holds {} in {}, {} stored",
                count(summary.checkpoints, "checkpoint"),
                last.location,
                count(summary.records_read, "record"),
                count(summary.failures, "failed round"),
                last.backup_id,
                count(last.records, "record"),
                count(last.partitions, "partition"),
                human_bytes(last.stored_bytes),
            ),
            None => println!("stopped following: no checkpoint was published"),
        },
    }
    Ok(Outcome::Success)
}
