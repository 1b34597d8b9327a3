//! One shard's end of a sharded run: store its part, then publish the run if every part is
//! there, or (with `--wait-for-run`) wait for the shard that finishes last to publish it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::shard::{
    merge, newest_published, run_state, PublishedRun, RunState, ShardPart, PART_FORMAT_VERSION,
};
use crate::archive::{check_shard_part_seal, seal_shard_part, BackupId, EncryptionKey, Manifest};
use crate::archive::{ShardError, ShardSpec};
use crate::read::{publish_manifest, read_manifest};
use crate::store::Location;
use crate::Error;

use super::publish::check_before_publishing;

/// How often a waiting shard looks at the location again.
const WAIT_POLL: Duration = Duration::from_secs(2);

/// One shard's view of its run once its part is stored. The summary's `backup_id` is the
/// run's published backup when there is one yet, else the id this shard's part is stored under.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShardSummary {
    pub run: String,
    pub index: u32,
    pub count: u32,
    /// The id this shard's segments and part are stored under.
    pub part_id: String,
    /// Whether the run is published (by this shard or another).
    pub published: bool,
    /// Shards whose parts are not stored yet (nothing is published until they are).
    pub waiting_for: Vec<u32>,
}

/// How long a shard waits for its run to be published, and what stops the wait.
pub(crate) struct ShardWait<'a> {
    pub(crate) up_to: Duration,
    pub(crate) cancel: &'a AtomicBool,
}

/// Stores this shard's part, then publishes the run if every part is there, waiting up to
/// `wait.up_to` for the other shards. Returns the id to report (the run's backup if
/// published, else this part's) and the shard's summary.
pub(super) async fn store_part_and_merge(
    location: &Location,
    spec: &ShardSpec,
    manifest: Manifest,
    encryption_key: Option<&EncryptionKey>,
    wait: ShardWait<'_>,
) -> Result<(BackupId, Option<ShardSummary>), Error> {
    let part_id = manifest.backup_id.clone();
    let part = ShardPart {
        format_version: PART_FORMAT_VERSION,
        run: spec.run.clone(),
        index: spec.index,
        count: spec.count,
        manifest,
    };
    let json = part.to_json();
    let seal = encryption_key
        .map(|key| seal_shard_part(key, &part_id, &json))
        .transpose()
        .map_err(|source| Error::Archive {
            key: format!("the seal of {spec}'s part"),
            source,
        })?;
    location.put_shard_part(&part_id, spec, json, seal).await?;
    tracing::info!(part_id = %part_id, "{spec}: part stored");
    let started = Instant::now();
    let mut announced = Vec::new();
    let (reported, waiting_for) = loop {
        match current_state(location, spec, &part_id, encryption_key).await? {
            RunState::Published { id, holds_own_part } => {
                if holds_own_part {
                    tracing::info!(backup_id = %id, "{spec}: the run is published");
                } else {
                    tracing::warn!("{spec} was already published as backup {id} from an earlier attempt of this shard: this part is not part of it and `prune` removes it after the grace period");
                }
                break (id, Vec::new());
            }
            RunState::Complete(ids) => {
                let id = merge_and_publish(location, spec, &ids, encryption_key).await?;
                break (id, Vec::new());
            }
            RunState::Waiting { missing } => {
                if started.elapsed() >= wait.up_to {
                    tracing::info!("{spec}: waiting for shards {missing:?}; the backup is published by the last shard to finish");
                    break (part_id.clone(), missing);
                }
                if missing != announced {
                    tracing::info!(
                        "{spec}: waiting up to {} for shards {missing:?} to store their parts",
                        humantime::format_duration(wait.up_to)
                    );
                    announced = missing;
                }
                sleep_unless_cancelled(WAIT_POLL, wait.cancel).await?;
            }
        }
    };
    let summary = ShardSummary {
        run: spec.run.clone(),
        index: spec.index,
        count: spec.count,
        part_id: part_id.to_string(),
        published: waiting_for.is_empty(),
        waiting_for,
    };
    Ok((reported, Some(summary)))
}

/// Where the run stands now: the listing, and the run name's newest published backup (read
/// with the key, so a forged manifest cannot claim this part).
async fn current_state(
    location: &Location,
    spec: &ShardSpec,
    own: &BackupId,
    encryption_key: Option<&EncryptionKey>,
) -> Result<RunState, Error> {
    let listing = location.list_backups().await?;
    let Some(id) = newest_published(spec, &listing) else {
        return Ok(run_state(spec, own, &listing, None));
    };
    let manifest = read_manifest(location, &id, encryption_key).await?;
    let parts = manifest.sharding.map(|s| s.parts).unwrap_or_default();
    let finished_at =
        humantime::parse_rfc3339(&manifest.finished_at).map_err(|_| ShardError::Mismatch {
            run: spec.run.clone(),
            problem: format!(
                "backup {id} says it finished at {:?}, which is not an RFC 3339 time",
                manifest.finished_at
            ),
        })?;
    let run = PublishedRun {
        id: &id,
        parts: &parts,
        finished_at,
    };
    Ok(run_state(spec, own, &listing, Some(run)))
}

/// Reads every part of a complete run, merges them and publishes the run's backup.
async fn merge_and_publish(
    location: &Location,
    spec: &ShardSpec,
    ids: &[BackupId],
    encryption_key: Option<&EncryptionKey>,
) -> Result<BackupId, Error> {
    let mut parts = Vec::with_capacity(ids.len());
    let mut seals = Vec::with_capacity(ids.len());
    for (index, id) in ids.iter().enumerate() {
        let their_spec = ShardSpec::new(index as u32, spec.count, &spec.run)
            .expect("a listed part's spec is valid");
        let (bytes, seal) = location.read_shard_part(id, &their_spec).await?;
        let part = ShardPart::from_json(&bytes).map_err(|source| Error::Archive {
            key: format!("the part of shard {index}/{} stored as {id}", spec.count),
            source,
        })?;
        if part.manifest.backup_id != *id || part.index as usize != index {
            return Err(ShardError::Mismatch {
                run: spec.run.clone(),
                problem: format!(
                    "the part stored as {id} describes itself as {} shard {}",
                    part.manifest.backup_id, part.index
                ),
            }
            .into());
        }
        parts.push(part);
        seals.push((bytes, seal));
    }
    // Merge first: it names parts given another key (or none) as such.
    let merged = merge(&parts)?;
    for (index, (id, (bytes, seal))) in ids.iter().zip(&seals).enumerate() {
        if let Some(key) = encryption_key {
            let problem = match &seal {
                None => Some(
                    "has no seal (it was written without the key, or the seal was removed)"
                        .to_string(),
                ),
                Some(seal) => check_shard_part_seal(key, id, bytes, seal)
                    .err()
                    .map(|err| format!("is not authenticated: {err}")),
            };
            if let Some(problem) = problem {
                return Err(ShardError::Mismatch {
                    run: spec.run.clone(),
                    problem: format!(
                        "the part of shard {index}/{} stored as {id} {problem}",
                        spec.count
                    ),
                }
                .into());
            }
        }
    }
    check_before_publishing(location, &merged).await?;
    publish_manifest(location, &merged, encryption_key).await?;
    tracing::info!(backup_id = %merged.backup_id, records = merged.totals.records, "{spec}: all {} parts stored; backup published", spec.count);
    Ok(merged.backup_id)
}

async fn sleep_unless_cancelled(duration: Duration, cancel: &AtomicBool) -> Result<(), Error> {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
