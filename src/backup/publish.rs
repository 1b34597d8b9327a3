//! Publishing a backup: the last check that every object its manifest names is there, then
//! the manifest (complete, or as a delta of its parent), or a shard's part.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::shard_run::{store_part_and_merge, ShardSummary, ShardWait};
use crate::archive::{BackupId, EncryptionKey, Manifest, ShardSpec};
use crate::read::publish_manifest;
use crate::store::{backup_of_key, Location};
use crate::Error;

/// How a finished backup's manifest is published.
pub(super) enum PublishAs<'a> {
    /// Listing every segment (format version 2).
    Complete,
    /// Listing only the segments this backup stored, as the `depth`-th delta after its
    /// chain's last complete listing (format version 3).
    Delta { depth: u64 },
    /// As one shard's part of a sharded run, merged once every part is stored.
    ShardPart {
        spec: &'a ShardSpec,
        wait_for_run: Duration,
        cancel: &'a AtomicBool,
    },
}

/// Publishes `manifest` (complete: it lists every segment, its parents' included) as `how`
/// says, after checking that what it names is at the location. Returns the id to report and,
/// for a shard, its summary.
pub(super) async fn publish(
    location: &Location,
    manifest: Manifest,
    encryption_key: Option<&EncryptionKey>,
    how: PublishAs<'_>,
) -> Result<(BackupId, Option<ShardSummary>), Error> {
    let id = manifest.backup_id.clone();
    let records = manifest.totals.records;
    match how {
        PublishAs::Complete => {
            check_before_publishing(location, &manifest).await?;
            publish_manifest(location, &manifest, encryption_key).await?;
        }
        PublishAs::Delta { depth } => {
            let parent = manifest
                .parent
                .clone()
                .expect("only a backup with a parent is written as a delta");
            let is_own = |key: &str| backup_of_key(key).as_ref() == Some(&id);
            let own: Vec<(String, u64)> = manifest
                .segments()
                .filter(|(_, _, segment)| is_own(&segment.key))
                .map(|(_, _, segment)| (segment.key.clone(), segment.stored_bytes))
                .collect();
            location.check_delta_publishable(&id, &own, &parent).await?;
            let delta = manifest
                .into_delta(depth, |segment| is_own(&segment.key))
                .expect("a backup lists its parent's segments before its own");
            publish_manifest(location, &delta, encryption_key).await?;
        }
        PublishAs::ShardPart {
            spec,
            wait_for_run,
            cancel,
        } => {
            check_before_publishing(location, &manifest).await?;
            let waiting = ShardWait {
                up_to: wait_for_run,
                cancel,
            };
            return store_part_and_merge(location, spec, manifest, encryption_key, waiting).await;
        }
    }
    tracing::info!(backup_id = %id, records, "backup published");
    Ok((id, None))
}

/// Refuses to publish `manifest` unless every object it names (its own segments and those
/// carried from its parents) is at the location with the size it records: a prune, a
/// lifecycle rule or a person may have removed some while the backup ran.
pub(super) async fn check_before_publishing(
    location: &Location,
    manifest: &Manifest,
) -> Result<(), Error> {
    let wanted: Vec<(String, u64)> = manifest
        .segments()
        .map(|(_, _, segment)| (segment.key.clone(), segment.stored_bytes))
        .collect();
    Ok(location
        .check_publishable(&manifest.backup_id, &wanted)
        .await?)
}
