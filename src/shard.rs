//! Sharded backups: which partitions a shard owns, the part each shard stores, and the merge
//! of a run's complete set of parts into the one manifest that publishes the backup.
//!
//! Every shard of a run stores its partitions under its own backup id and then a part file
//! (its partial manifest). Whichever shard finds all parts present merges them; the merge is
//! a pure function of the parts, so two shards finishing together publish the same bytes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::archive::{BackupId, GroupOffsets, Manifest, Sharding, Totals};

/// The part-file format version this code writes and reads.
pub const PART_FORMAT_VERSION: u64 = 1;

/// This process's share of a sharded backup run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec {
    /// Names the run all shards belong to (e.g. the Indexed Job's name).
    pub run: String,
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("shard {0:?} is not INDEX/COUNT with 0 <= INDEX < COUNT (e.g. --shard 0/2)")]
    BadSpec(String),
    #[error("shard run name {0:?} must be 1-63 characters of a-z, A-Z, 0-9, '-' and '_' (an Indexed Job's name is one)")]
    BadRun(String),
    #[error("the parts of shard run {run} do not fit together: {problem}; run the whole sharded backup again")]
    Mismatch { run: String, problem: String },
}

impl ShardSpec {
    /// Parses `INDEX/COUNT` for run `run`.
    pub fn parse(spec: &str, run: &str) -> Result<ShardSpec, ShardError> {
        let bad = || ShardError::BadSpec(spec.to_string());
        let (index, count) = spec.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        ShardSpec::new(index, count, run).map_err(|err| match err {
            ShardError::BadSpec(_) => bad(),
            other => other,
        })
    }

    pub fn new(index: u32, count: u32, run: &str) -> Result<ShardSpec, ShardError> {
        if count == 0 || index >= count {
            return Err(ShardError::BadSpec(format!("{index}/{count}")));
        }
        let run_ok = !run.is_empty()
            && run.len() <= 63
            && run
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !run_ok {
            return Err(ShardError::BadRun(run.to_string()));
        }
        Ok(ShardSpec {
            run: run.to_string(),
            index,
            count,
        })
    }

    /// Whether this shard owns `topic`/`partition`.
    pub fn owns(&self, topic: &str, partition: i32) -> bool {
        shard_of(topic, partition, self.count) == self.index
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}/{} of run {}", self.index, self.count, self.run)
    }
}

/// The shard that owns a partition: a topic's partitions go round-robin, starting at a
/// shard picked by a fixed hash of the topic name (FNV-1a, the same on every machine and
/// build), so shards agree without talking and a topic's partitions spread evenly.
pub fn shard_of(topic: &str, partition: i32, count: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in topic.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let count = u64::from(count.max(1));
    ((hash % count + u64::from(partition.unsigned_abs()) % count) % count) as u32
}

/// What one shard stores after its segments: its partial manifest (only its partitions,
/// every selected topic's metadata) and its place in the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardPart {
    pub format_version: u64,
    pub run: String,
    pub index: u32,
    pub count: u32,
    pub manifest: Manifest,
}

impl ShardPart {
    pub fn from_json(bytes: &[u8]) -> Result<ShardPart, crate::archive::ArchiveError> {
        crate::archive::parse_versioned(bytes, PART_FORMAT_VERSION, PART_FORMAT_VERSION)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a shard part always serializes")
    }
}

/// Merges one part per index (`parts[i].index == i`) into the run's manifest: published
/// under the smallest part id, topics and groups united, partitions checked to be covered
/// exactly once, figures recomputed.
pub fn merge(parts: &[ShardPart]) -> Result<Manifest, ShardError> {
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
    /// A backup holding this run's merge is already published.
    Published(BackupId),
    /// One part per index (the newest, should a retried shard have stored two), by index.
    Complete(Vec<BackupId>),
    /// These indexes have no part yet.
    Waiting { missing: Vec<u32> },
}

/// Where `spec`'s run stands, given a location's listing.
pub fn run_state(spec: &ShardSpec, listing: &[crate::store::BackupListing]) -> RunState {
    let of_run = |b: &&crate::store::BackupListing| {
        b.shard_part
            .as_ref()
            .is_some_and(|p| p.run == spec.run && p.count == spec.count)
    };
    if let Some(published) = listing.iter().filter(of_run).find(|b| b.complete) {
        return RunState::Published(published.id.clone());
    }
    let mut newest: Vec<Option<BackupId>> = vec![None; spec.count as usize];
    for backup in listing.iter().filter(of_run) {
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
mod tests {
    use super::*;
    use crate::archive::{
        ArchiveKind, CommittedOffset, Compression, PartitionBackup, SourceCluster, TopicBackup,
        FORMAT_VERSION,
    };

    #[test]
    fn specs_parse_and_refuse_nonsense() {
        assert_eq!(
            ShardSpec::parse("1/3", "nightly-1").unwrap(),
            ShardSpec {
                run: "nightly-1".into(),
                index: 1,
                count: 3
            }
        );
        for bad in ["3/3", "0/0", "1", "a/2", "-1/2", "1/2/3"] {
            assert_eq!(
                ShardSpec::parse(bad, "r"),
                Err(ShardError::BadSpec(bad.into())),
                "{bad}"
            );
        }
        for run in ["", "has space", "../x", &"x".repeat(64)] {
            assert!(
                matches!(ShardSpec::parse("0/2", run), Err(ShardError::BadRun(_))),
                "{run}"
            );
        }
    }

    #[test]
    fn every_partition_has_exactly_one_owner_and_topics_spread() {
        for count in 1..=5u32 {
            let shards: Vec<ShardSpec> = (0..count)
                .map(|i| ShardSpec::new(i, count, "r").unwrap())
                .collect();
            for topic in ["orders", "payments", "a", ""] {
                let mut per_shard = vec![0; count as usize];
                for partition in 0..12 {
                    let owners: Vec<u32> = shards
                        .iter()
                        .filter(|s| s.owns(topic, partition))
                        .map(|s| s.index)
                        .collect();
                    assert_eq!(owners.len(), 1, "{topic}/{partition} of {count}");
                    per_shard[owners[0] as usize] += 1;
                }
                let (min, max) = (per_shard.iter().min(), per_shard.iter().max());
                assert!(
                    max.unwrap() - min.unwrap() <= 1,
                    "{topic} over {count}: {per_shard:?}"
                );
            }
        }
    }

    #[test]
    fn ownership_is_a_fixed_function() {
        // Pinned (FNV-1a of the name, then round-robin): changing the function would split a
        // run whose shards run different builds.
        assert_eq!(shard_of("orders", 0, 7), 4);
        assert_eq!(shard_of("orders", 3, 7), 0);
        assert_eq!(shard_of("payments", 0, 4), 2);
        assert_eq!(shard_of("payments", 1, 4), 3);
        assert_eq!(shard_of("payments", 2, 4), 0);
    }

    fn partition(number: i32, records: u64) -> PartitionBackup {
        PartitionBackup {
            partition: number,
            start_offset: 0,
            end_offset: records as i64,
            high_watermark: records as i64,
            records,
            raw_bytes: records * 10,
            stored_bytes: records,
            first_timestamp: None,
            last_timestamp: None,
            segments: vec![],
        }
    }

    fn part(index: u32, count: u32, id: &str, partitions: &[i32]) -> ShardPart {
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            kind: ArchiveKind::Logical,
            backup_id: BackupId::parse(id).unwrap(),
            parent: None,
            started_at: format!("2026-11-25T10:00:0{index}Z"),
            finished_at: format!("2026-11-25T10:01:0{index}Z"),
            tool_version: "0.1.0".into(),
            source: SourceCluster {
                bootstrap_servers: "127.0.0.1:9092".into(),
                cluster_id: Some("c1".into()),
                brokers: vec![],
            },
            compression: Compression::Zstd,
            compression_level: 3,
            segment_bytes: 1 << 24,
            encryption: None,
            topics: vec![TopicBackup {
                name: "orders".into(),
                internal: false,
                partition_count: 3,
                replication_factor: 1,
                configs: vec![],
                partitions: partitions.iter().map(|&p| partition(p, 5)).collect(),
            }],
            groups: vec![GroupOffsets {
                group: "billing".into(),
                offsets: partitions
                    .iter()
                    .map(|&p| CommittedOffset {
                        topic: "orders".into(),
                        partition: p,
                        offset: 2,
                        metadata: None,
                    })
                    .collect(),
            }],
            totals: Totals::default(),
            warnings: vec![format!("note from {index}")],
            sharding: None,
        };
        ShardPart {
            format_version: PART_FORMAT_VERSION,
            run: "nightly".into(),
            index,
            count,
            manifest,
        }
    }

    #[test]
    fn parts_merge_into_one_manifest_under_the_smallest_id() {
        let parts = [
            part(0, 2, "20261125T100002Z-bbbbbb", &[1]),
            part(1, 2, "20261125T100001Z-aaaaaa", &[0, 2]),
        ];
        let merged = merge(&parts).unwrap();
        assert_eq!(merged.backup_id.as_str(), "20261125T100001Z-aaaaaa");
        assert_eq!(merged.started_at, "2026-11-25T10:00:00Z");
        assert_eq!(merged.finished_at, "2026-11-25T10:01:01Z");
        let numbers: Vec<i32> = merged.topics[0]
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect();
        assert_eq!(numbers, vec![0, 1, 2]);
        assert_eq!(merged.totals.records, 15);
        assert_eq!(merged.totals.partitions, 3);
        let offsets: Vec<i32> = merged.groups[0]
            .offsets
            .iter()
            .map(|o| o.partition)
            .collect();
        assert_eq!(offsets, vec![0, 1, 2]);
        assert_eq!(
            merged.warnings,
            vec!["shard 0/2: note from 0", "shard 1/2: note from 1"]
        );
        let sharding = merged.sharding.as_ref().unwrap();
        assert_eq!(sharding.parts[0].as_str(), "20261125T100002Z-bbbbbb");
        // Merging again (another shard finishing at the same time) gives the same bytes.
        assert_eq!(merge(&parts).unwrap().to_json(), merged.to_json());
    }

    #[test]
    fn parts_that_do_not_fit_are_refused() {
        let missing = [
            part(0, 2, "20261125T100002Z-bbbbbb", &[1]),
            part(1, 2, "20261125T100001Z-aaaaaa", &[0]),
        ];
        let err = merge(&missing).unwrap_err().to_string();
        assert!(err.contains("partitions [0, 1]"), "{err}");

        let mut other_cluster = part(1, 2, "20261125T100001Z-aaaaaa", &[0, 2]);
        other_cluster.manifest.source.cluster_id = Some("c2".into());
        let err = merge(&[part(0, 2, "20261125T100002Z-bbbbbb", &[1]), other_cluster])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cluster"), "{err}");

        let key = crate::archive::EncryptionKey::parse(&[0x99; 32]).unwrap();
        let mut encrypted = part(1, 2, "20261125T100001Z-aaaaaa", &[0, 2]);
        encrypted.manifest.encryption = Some(key.describe());
        let err = merge(&[
            part(0, 2, "20261125T100002Z-bbbbbb", &[1]),
            encrypted.clone(),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("shard 0 did not encrypt its segments")
                && err.contains(&format!(
                    "shard 1 encrypted its segments (aes-256-gcm, key id {})",
                    key.id()
                )),
            "{err}"
        );
        let mut also_encrypted = part(0, 2, "20261125T100002Z-bbbbbb", &[1]);
        also_encrypted.manifest.encryption = Some(key.describe());
        let merged = merge(&[also_encrypted, encrypted]).unwrap();
        assert_eq!(merged.encryption, Some(key.describe()));

        let mut grown = part(1, 2, "20261125T100001Z-aaaaaa", &[0, 2]);
        grown.manifest.topics[0].partition_count = 4;
        let err = merge(&[part(0, 2, "20261125T100002Z-bbbbbb", &[1]), grown])
            .unwrap_err()
            .to_string();
        assert!(err.contains("had 3 partitions for shard 0 and 4"), "{err}");
    }

    #[test]
    fn a_run_is_complete_published_or_waiting() {
        use crate::store::BackupListing;
        let spec = ShardSpec::new(1, 2, "nightly").unwrap();
        let entry = |id: &str, complete: bool, part: Option<(&str, u32, u32)>| BackupListing {
            id: BackupId::parse(id).unwrap(),
            complete,
            shard_part: part.map(|(run, i, n)| ShardSpec::new(i, n, run).unwrap()),
        };
        let mut listing = vec![
            entry("20261124T100000Z-000001", true, None),
            entry("20261125T100000Z-000002", false, Some(("nightly", 1, 2))),
            entry("20261125T100001Z-000003", false, Some(("other", 0, 2))),
            entry("20261125T100002Z-000004", false, Some(("nightly", 0, 3))),
        ];
        assert_eq!(
            run_state(&spec, &listing),
            RunState::Waiting { missing: vec![0] }
        );
        listing.push(entry(
            "20261125T100003Z-000005",
            false,
            Some(("nightly", 0, 2)),
        ));
        // A retried shard 1 stored a second part: the newest is used.
        listing.push(entry(
            "20261125T100004Z-000006",
            false,
            Some(("nightly", 1, 2)),
        ));
        let parts = match run_state(&spec, &listing) {
            RunState::Complete(parts) => parts,
            other => panic!("{other:?}"),
        };
        let names: Vec<&str> = parts.iter().map(BackupId::as_str).collect();
        assert_eq!(
            names,
            ["20261125T100003Z-000005", "20261125T100004Z-000006"]
        );
        listing[4].complete = true;
        assert_eq!(
            run_state(&spec, &listing),
            RunState::Published(BackupId::parse("20261125T100003Z-000005").unwrap())
        );
    }

    #[test]
    fn parts_round_trip_through_json() {
        let part = part(0, 2, "20261125T100002Z-bbbbbb", &[1]);
        assert_eq!(ShardPart::from_json(&part.to_json()).unwrap(), part);
    }
}
