//! Incremental backups: each partition continues from the parent backup's end offset, and the
//! parent's segments that still hold live records are carried into the new manifest, so every
//! manifest alone describes a complete backup (restore, verify, show and cat walk no chain).
//!
//! Records below a partition's `start_offset` (its log start when the backup began) are not
//! part of the backup even when a carried segment still holds them: retention deleted them
//! from the cluster, and a restore must give the cluster as it was at this backup.
//!
//! A chain is encrypted throughout or not at all, under one key: a manifest names one key
//! for all the segments it lists, its parent's included.

use crate::archive::{EncryptionKey, Manifest, SegmentRef};
use crate::catalog::read_segment;
use crate::kafka::PartitionTask;
use crate::store::Location;
use crate::Error;

/// What the parent contributes to one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    /// The partition's log start now; records below it are excluded.
    pub log_start: i64,
    pub segments: Vec<SegmentRef>,
    /// Records of `segments` at or above `log_start`.
    pub records: u64,
    pub first_timestamp: Option<i64>,
}

/// Refuses to continue from `parent` with `encryption_key` unless both are plaintext or
/// both use the same key (checked by key id, before any object is read or written).
pub fn check_parent_key(
    parent: &Manifest,
    encryption_key: Option<&EncryptionKey>,
) -> Result<(), Error> {
    let problem = match (&parent.encryption, encryption_key) {
        (None, None) => return Ok(()),
        (Some(encryption), Some(key)) if encryption.key_id == key.id() => return Ok(()),
        (Some(encryption), None) => format!(
            "it is encrypted (key id {}) and no --key-file was given; give its key, or take a full backup (without --incremental)",
            encryption.key_id
        ),
        (Some(encryption), Some(key)) => format!(
            "the key does not match the one it was encrypted with (key id {}, yours {}); an incremental backup must use its parent's key: give that key, or take a full backup (without --incremental) to start a chain with the new key",
            encryption.key_id,
            key.id()
        ),
        (None, Some(_)) => "it is not encrypted, and one backup cannot hold both plaintext and encrypted segments; take a full backup (without --incremental) to start an encrypted chain".to_string(),
    };
    Err(Error::ChainEncryption {
        parent: parent.backup_id.to_string(),
        problem,
    })
}

/// Moves each task's start to where `parent` ended and returns what the parent carries for
/// it (`None` for partitions the parent does not have: they are read in full). Gaps (records
/// deleted between the parent and now) are reported in `warnings`.
pub async fn continue_from(
    location: &Location,
    parent: &Manifest,
    encryption_key: Option<&EncryptionKey>,
    tasks: &mut [PartitionTask],
    warnings: &mut Vec<String>,
) -> Result<Vec<Option<Carried>>, Error> {
    let mut carried = Vec::with_capacity(tasks.len());
    for task in tasks.iter_mut() {
        let previous = parent
            .topic(&task.topic)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == task.partition));
        let Some(previous) = previous else {
            carried.push(None);
            continue;
        };
        let log_start = task.start_offset;
        if log_start > previous.end_offset {
            warnings.push(format!(
                "{}/{}: offsets {}..{} were deleted from the cluster after backup {} and before this one; no backup holds them",
                task.topic, task.partition, previous.end_offset, log_start, parent.backup_id
            ));
        }
        let segments: Vec<SegmentRef> = previous
            .segments
            .iter()
            .filter(|s| s.last_offset >= log_start)
            .cloned()
            .collect();
        let mut records: u64 = segments.iter().map(|s| s.records).sum();
        let mut first_timestamp = segments.first().and_then(|s| s.first_timestamp);
        if let Some(straddling) = segments.first().filter(|s| s.first_offset < log_start) {
            let decoded = read_segment(location, straddling, encryption_key).await?;
            let mut below = 0;
            first_timestamp = None;
            for record in decoded.iter() {
                let record = record.map_err(|source| Error::Archive {
                    key: straddling.key.clone(),
                    source,
                })?;
                if record.offset < log_start {
                    below += 1;
                } else if first_timestamp.is_none() {
                    first_timestamp = Some(record.timestamp);
                }
            }
            records -= below;
        }
        task.start_offset = log_start.max(previous.end_offset);
        carried.push(Some(Carried {
            log_start,
            segments,
            records,
            first_timestamp,
        }));
    }
    Ok(carried)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{
        ArchiveKind, BackupId, Compression, PartitionBackup, SegmentBuilder, SourceCluster,
        TimestampType, TopicBackup, Totals, FORMAT_VERSION,
    };

    /// Stores a segment of records `offsets` (timestamp = 1000 + offset) and returns its entry.
    async fn stored_segment(location: &Location, offsets: std::ops::Range<i64>) -> SegmentRef {
        let mut builder = SegmentBuilder::new(4096);
        for offset in offsets {
            let value = offset.to_string();
            builder.push(
                offset,
                1000 + offset,
                TimestampType::CreateTime,
                None,
                Some(value.as_bytes()),
                std::iter::empty(),
            );
        }
        let stored = builder
            .seal()
            .unwrap()
            .compress(Compression::Zstd, 1)
            .unwrap();
        let key = format!(
            "backups/20261124T010000Z-000001/segments/t/0/{:020}.kseg.zst",
            stored.first_offset()
        );
        let entry = stored.to_ref(key.clone());
        location.put(&key, stored.bytes).await.unwrap();
        entry
    }

    fn parent(segments: Vec<SegmentRef>, end_offset: i64) -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            kind: ArchiveKind::Logical,
            backup_id: BackupId::parse("20261124T010000Z-000001").unwrap(),
            parent: None,
            started_at: "2026-11-24T01:00:00Z".into(),
            finished_at: "2026-11-24T01:00:01Z".into(),
            tool_version: "test".into(),
            source: SourceCluster {
                bootstrap_servers: "127.0.0.1:9092".into(),
                cluster_id: None,
                brokers: vec![],
            },
            compression: Compression::Zstd,
            compression_level: 1,
            segment_bytes: 4096,
            encryption: None,
            topics: vec![TopicBackup {
                name: "t".into(),
                internal: false,
                partition_count: 2,
                replication_factor: 1,
                configs: vec![],
                partitions: vec![PartitionBackup {
                    partition: 0,
                    start_offset: 0,
                    end_offset,
                    high_watermark: end_offset,
                    records: segments.iter().map(|s| s.records).sum(),
                    raw_bytes: 0,
                    stored_bytes: 0,
                    first_timestamp: Some(1000),
                    last_timestamp: None,
                    segments,
                }],
            }],
            groups: vec![],
            totals: Totals::default(),
            warnings: vec![],
            sharding: None,
        }
    }

    fn task(partition: i32, log_start: i64, end: i64) -> PartitionTask {
        PartitionTask {
            topic: "t".into(),
            partition,
            start_offset: log_start,
            listed_end: end,
        }
    }

    #[tokio::test]
    async fn each_partition_continues_where_the_parent_ended() {
        let location = Location::open("memory://", false).unwrap();
        let first = stored_segment(&location, 0..100).await;
        let second = stored_segment(&location, 100..200).await;
        let parent = parent(vec![first, second.clone()], 200);
        // Partition 0: retention moved the log start to 150, inside the parent's second
        // segment. Partition 1: new since the parent, read in full.
        let mut tasks = vec![task(0, 150, 260), task(1, 0, 40)];
        let mut warnings = Vec::new();
        let carried = continue_from(&location, &parent, None, &mut tasks, &mut warnings)
            .await
            .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            tasks[0].start_offset, 200,
            "only records after the parent are read"
        );
        assert_eq!(tasks[1].start_offset, 0);
        let kept = carried[0].as_ref().unwrap();
        assert_eq!(
            kept.segments,
            vec![second],
            "the first segment is all below 150"
        );
        assert_eq!(kept.log_start, 150);
        assert_eq!(
            kept.records, 50,
            "records 150..200 of the straddling segment"
        );
        assert_eq!(kept.first_timestamp, Some(1150));
        assert_eq!(carried[1], None);
    }

    #[test]
    fn a_chain_keeps_one_key_or_none() {
        let key = EncryptionKey::parse(&[1u8; 32]).unwrap();
        let other = EncryptionKey::parse(&[2u8; 32]).unwrap();
        let plain = parent(vec![], 0);
        let mut encrypted = parent(vec![], 0);
        encrypted.encryption = Some(key.describe());

        check_parent_key(&plain, None).unwrap();
        check_parent_key(&encrypted, Some(&key)).unwrap();
        let refusals = [
            (check_parent_key(&encrypted, None), "no --key-file"),
            (check_parent_key(&encrypted, Some(&other)), "does not match"),
            (check_parent_key(&plain, Some(&key)), "not encrypted"),
        ];
        for (result, expected) in refusals {
            let err = result.unwrap_err().to_string();
            assert!(
                err.contains(expected) && err.contains("20261124T010000Z-000001"),
                "{err}"
            );
        }
        let err = check_parent_key(&encrypted, Some(&other))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key.id()) && err.contains(other.id()), "{err}");
    }

    #[tokio::test]
    async fn records_deleted_since_the_parent_are_a_named_gap() {
        let location = Location::open("memory://", false).unwrap();
        let segment = stored_segment(&location, 0..100).await;
        let parent = parent(vec![segment], 100);
        let mut tasks = vec![task(0, 130, 180)];
        let mut warnings = Vec::new();
        let carried = continue_from(&location, &parent, None, &mut tasks, &mut warnings)
            .await
            .unwrap();
        assert_eq!(
            warnings,
            vec!["t/0: offsets 100..130 were deleted from the cluster after backup 20261124T010000Z-000001 and before this one; no backup holds them"]
        );
        assert_eq!(tasks[0].start_offset, 130);
        let kept = carried[0].as_ref().unwrap();
        assert!(kept.segments.is_empty(), "nothing of the parent is live");
        assert_eq!(kept.records, 0);
    }
}
