//! Sharded backups: which partitions a shard owns, the part each shard stores, and the merge
//! of a run's complete set of parts into the one manifest that publishes the backup.
//!
//! Every shard of a run stores its partitions under its own backup id and then a part file
//! (its partial manifest). Whichever shard finds all parts present merges them; the merge is
//! a pure function of the parts, so two shards finishing together publish the same bytes.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::archive::{BackupId, GroupOffsets, Manifest, ShardError, ShardSpec, Sharding, Totals};
use crate::store::BackupListing;

/// The part-file format version this code writes and reads.
pub(crate) const PART_FORMAT_VERSION: u64 = 1;

/// What one shard stores after its segments: its partial manifest (only its partitions,
/// every selected topic's metadata) and its place in the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ShardPart {
    pub(crate) format_version: u64,
    pub(crate) run: String,
    pub(crate) index: u32,
    pub(crate) count: u32,
    pub(crate) manifest: Manifest,
}

impl ShardPart {
    pub(crate) fn from_json(bytes: &[u8]) -> Result<ShardPart, crate::archive::ArchiveError> {
        crate::archive::parse_versioned(bytes, PART_FORMAT_VERSION, PART_FORMAT_VERSION)
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a shard part always serializes")
    }
}

/// Merges one part per index (`parts[i].index == i`) into the run's manifest: published
/// under the smallest part id, topics and groups united, partitions checked to be covered
/// exactly once, figures recomputed.
pub(crate) fn merge(parts: &[ShardPart]) -> Result<Manifest, ShardError> {
    let first = parts.first().expect("a run has at least one part");
    let run = first.run.clone();
    let mismatch = |problem: String| ShardError::Mismatch {
        run: run.clone(),
        problem,
    };
    for (i, part) in parts.iter().enumerate() {
        if part.index as usize != i || part.count != first.count || part.run != first.run {
            return Err(mismatch(format!(
                "part {} of {} is labelled {}/{} of run {}",
                i, first.count, part.index, part.count, part.run
            )));
        }
        let (a, b) = (&first.manifest, &part.manifest);
        if a.source.cluster_id != b.source.cluster_id {
            return Err(mismatch(format!(
                "shard 0 read cluster {:?}, shard {i} read cluster {:?}",
                a.source.cluster_id, b.source.cluster_id
            )));
        }
        if a.encryption != b.encryption {
            let describe = |m: &Manifest| match &m.encryption {
                Some(e) => format!("encrypted its segments ({}, key id {})", e.cipher, e.key_id),
                None => "did not encrypt its segments".to_string(),
            };
            return Err(mismatch(format!(
                "shard 0 {}, shard {i} {} (every shard of a run must be given the same --key-file, or none)",
                describe(a),
                describe(b)
            )));
        }
        if a.parent != b.parent {
            return Err(mismatch(format!(
                "shard 0 continued from {:?}, shard {i} from {:?} (a backup finished between their starts)",
                a.parent.as_ref().map(ToString::to_string),
                b.parent.as_ref().map(ToString::to_string)
            )));
        }
    }

    let mut merged = first.manifest.clone();
    // The merging shard writes (and seals) the manifest: it is of the version this kafkasnap
    // writes, whatever a part's embedded manifest says.
    merged.format_version = crate::archive::FORMAT_VERSION;
    merged.backup_id = parts
        .iter()
        .map(|p| p.manifest.backup_id.clone())
        .min()
        .expect("non-empty");
    merged.started_at = parts
        .iter()
        .map(|p| p.manifest.started_at.clone())
        .min()
        .expect("non-empty");
    merged.finished_at = parts
        .iter()
        .map(|p| p.manifest.finished_at.clone())
        .max()
        .expect("non-empty");

    let mut topics = first.manifest.topics.clone();
    for topic in &mut topics {
        topic.partitions.clear();
    }
    for (i, part) in parts.iter().enumerate() {
        for topic in &part.manifest.topics {
            let Some(merged_topic) = topics.iter_mut().find(|t| t.name == topic.name) else {
                return Err(mismatch(format!(
                    "shard {i} backed up topic {} that shard 0 did not select",
                    topic.name
                )));
            };
            if merged_topic.partition_count != topic.partition_count {
                return Err(mismatch(format!(
                    "topic {} had {} partitions for shard 0 and {} for shard {i}",
                    topic.name, merged_topic.partition_count, topic.partition_count
                )));
            }
            merged_topic
                .partitions
                .extend(topic.partitions.iter().cloned());
        }
        if part.manifest.topics.len() != topics.len() {
            return Err(mismatch(format!(
                "shard {i} selected {} topics, shard 0 selected {}",
                part.manifest.topics.len(),
                topics.len()
            )));
        }
    }
    for topic in &mut topics {
        topic.partitions.sort_by_key(|p| p.partition);
        let numbers: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
        let expected: Vec<i32> = (0..topic.partition_count).collect();
        if numbers != expected {
            return Err(mismatch(format!(
                "topic {} has partitions {numbers:?} across the parts, expected {expected:?}",
                topic.name
            )));
        }
    }

    let mut groups: BTreeMap<String, GroupOffsets> = BTreeMap::new();
    for part in parts {
        for group in &part.manifest.groups {
            groups
                .entry(group.group.clone())
                .or_insert_with(|| GroupOffsets {
                    group: group.group.clone(),
                    offsets: Vec::new(),
                })
                .offsets
                .extend(group.offsets.iter().cloned());
        }
    }
    merged.groups = groups
        .into_values()
        .map(|mut g| {
            g.sort_offsets();
            g
        })
        .collect();
    merged.totals = Totals::of(&topics);
    merged.topics = topics;
    merged.warnings = parts
        .iter()
        .flat_map(|p| {
            p.manifest
                .warnings
                .iter()
                .map(move |w| format!("shard {}/{}: {w}", p.index, p.count))
        })
        .collect();
    merged.sharding = Some(Sharding {
        run: first.run.clone(),
        count: first.count,
        parts: parts.iter().map(|p| p.manifest.backup_id.clone()).collect(),
    });
    Ok(merged)
}

/// Where a run stands at a location, from a listing (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// The run's backup is published (by this shard or another). `holds_own_part` is false
    /// when it was published from an earlier attempt of this shard (a retry that lost the
    /// race): this part is then unused, and `prune` removes it.
    Published { id: BackupId, holds_own_part: bool },
    /// One part per index (the newest, should a retried shard have stored two), by index.
    Complete(Vec<BackupId>),
    /// These indexes have no part yet.
    Waiting { missing: Vec<u32> },
}

/// The newest published backup of a run, as [`run_state`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct PublishedRun<'a> {
    pub id: &'a BackupId,
    /// The part ids its manifest's `sharding.parts` names.
    pub parts: &'a [BackupId],
    /// Its manifest's `finished_at`: when the last of its parts finished.
    pub finished_at: SystemTime,
}

/// The newest published backup of `spec`'s run at a location (a run name may be reused, e.g.
/// `--shard-run nightly`: each run that completes publishes one backup).
pub fn newest_published(spec: &ShardSpec, listing: &[BackupListing]) -> Option<BackupId> {
    listing
        .iter()
        .filter(|b| b.complete && is_of_run(spec, b))
        .map(|b| b.id.clone())
        .max()
}

fn is_of_run(spec: &ShardSpec, backup: &BackupListing) -> bool {
    backup
        .shard_part
        .as_ref()
        .is_some_and(|p| p.run == spec.run && p.count == spec.count)
}

/// Whether part `id` began before `run` was complete (its last part finished), so belongs to
/// that run (a retried shard's part), not to a later run of the same name.
fn began_within(id: &BackupId, run: &PublishedRun<'_>) -> bool {
    id.started_at().is_none_or(|began| began < run.finished_at)
}

/// Where this shard's run stands, given the listing, this shard's just-stored part `own`,
/// and the run name's [`newest_published`] backup. A run name may be reused: a part begun
/// after that backup's run was complete belongs to the next run, and only such parts are
/// merged into it, so neither a finished run's id nor a leftover part of it is ever taken
/// for the next run's.
pub fn run_state(
    spec: &ShardSpec,
    own: &BackupId,
    listing: &[BackupListing],
    published: Option<PublishedRun<'_>>,
) -> RunState {
    if let Some(run) = &published {
        if run.parts.contains(own) || began_within(own, run) {
            return RunState::Published {
                id: run.id.clone(),
                holds_own_part: run.parts.contains(own),
            };
        }
    }
    let mut newest: Vec<Option<BackupId>> = vec![None; spec.count as usize];
    let current = listing.iter().filter(|b| {
        is_of_run(spec, b)
            && published
                .as_ref()
                .is_none_or(|run| !run.parts.contains(&b.id) && !began_within(&b.id, run))
    });
    for backup in current {
        let index = backup.shard_part.as_ref().expect("filtered").index as usize;
        if newest[index].as_ref().is_none_or(|id| *id < backup.id) {
            newest[index] = Some(backup.id.clone());
        }
    }
    let missing: Vec<u32> = (0..spec.count)
        .filter(|&i| newest[i as usize].is_none())
        .collect();
    if missing.is_empty() {
        RunState::Complete(
            newest
                .into_iter()
                .map(|id| id.expect("none missing"))
                .collect(),
        )
    } else {
        RunState::Waiting { missing }
    }
}

#[cfg(test)]
#[path = "shard_tests.rs"]
mod tests;
