//! Incremental backups: each partition continues from the parent backup's end offset, and the
//! parent's segments that still hold live records are carried into the new manifest, so every
//! manifest alone describes a complete backup (restore, verify, show and cat walk no chain).
//!
//! Records below a partition's `start_offset` (its log start when the backup began) are not
//! part of the backup even when a carried segment still holds them: retention deleted them
//! from the cluster, and a restore must give the cluster as it was at this backup.
//!
//! A partition continues its parent only if its log is the one the parent read: the same
//! cluster id, a log start not below the parent's, an end not below the parent's end, and the
//! parent's last stored record still at its offset with the same content (probed on the
//! cluster). Otherwise (the topic was re-created, the cluster restored with offsets that
//! collapsed or restarted) the partition is backed up in full, with a warning.
//!
//! A chain is encrypted throughout or not at all, under one key: a manifest names one key
//! for all the segments it lists, its parent's included (`archive::KeyFit` is that rule).

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::archive::{
    record_digest, EncryptionKey, KeyFit, Manifest, PartitionBackup, SegmentRef,
    SEALED_FROM_FORMAT_VERSION,
};
use crate::kafka::{
    probe_partitions, ClientSettings, KafkaError, PartitionTask, ProbeRequest, ProbeResult,
};
use crate::read::read_segment;
use crate::store::Location;
use crate::Error;

/// What the parent contributes to one partition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Carried {
    /// The partition's log start now; records below it are excluded.
    pub(crate) log_start: i64,
    pub(crate) segments: Vec<SegmentRef>,
    /// Records of `segments` at or above `log_start`.
    pub(crate) records: u64,
    pub(crate) first_timestamp: Option<i64>,
    /// Offsets retention deleted between the parent's end and this backup's log start.
    pub(crate) gap: u64,
}

/// Refuses to continue from `parent` with `encryption_key` unless the key fits it (both
/// plaintext, or the same key: [`KeyFit`]), checked before any object is read or written.
pub(crate) fn check_parent_key(
    parent: &Manifest,
    encryption_key: Option<&EncryptionKey>,
) -> Result<(), Error> {
    let problem = match KeyFit::of(parent.encryption.as_ref(), encryption_key) {
        KeyFit::Plaintext | KeyFit::SameKey(_) => return Ok(()),
        KeyFit::KeyMissing(encryption) => format!(
            "it is encrypted (key id {}) and no --key-file was given; give its key, or take a full backup (without --incremental)",
            encryption.key_id
        ),
        KeyFit::OtherKey { recorded, given } => format!(
            "the key does not match the one it was encrypted with (key id {}, yours {}); an incremental backup must use its parent's key: give that key, or take a full backup (without --incremental) to start a chain with the new key",
            recorded.key_id,
            given.id()
        ),
        KeyFit::NotEncrypted => "it is not encrypted, and one backup cannot hold both plaintext and encrypted segments; take a full backup (without --incremental) to start an encrypted chain".to_string(),
    };
    Err(Error::ChainEncryption {
        parent: parent.backup_id.to_string(),
        problem,
    })
}

/// Where to probe each task's partition before continuing it from `parent` (`None` for a
/// partition the parent does not have): at the parent's last stored record when the log may
/// still hold it, else at the log start (only the high watermark is wanted then).
pub(crate) fn probe_requests(
    parent: &Manifest,
    tasks: &[PartitionTask],
) -> Vec<Option<ProbeRequest>> {
    tasks
        .iter()
        .map(|task| {
            let previous = previous_of(parent, task)?;
            let last_stored = previous.segments.last().map(|s| s.last_offset);
            let offset = last_stored
                .filter(|&last| last >= task.start_offset)
                .unwrap_or(task.start_offset);
            Some(ProbeRequest {
                topic: task.topic.clone(),
                partition: task.partition,
                offset,
            })
        })
        .collect()
}

/// Probes the partitions [`probe_requests`] names (blocking); answers by task.
pub(crate) fn probe_live_logs(
    client: &ClientSettings,
    requests: &[Option<ProbeRequest>],
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<Vec<Option<ProbeResult>>, KafkaError> {
    let wanted: Vec<ProbeRequest> = requests.iter().flatten().cloned().collect();
    let mut answers = probe_partitions(client, &wanted, timeout, cancel)?.into_iter();
    Ok(requests
        .iter()
        .map(|request| request.as_ref().and_then(|_| answers.next()))
        .collect())
}

/// Why `parent` (the newest backup) cannot be continued at all, so the backup is taken in
/// full: its manifest is unsealed though encrypted (format version 1: it may have been
/// altered, and continuing would seal what it says), or it is of another cluster.
pub(crate) fn unusable_as_parent(parent: &Manifest, cluster_id: Option<&str>) -> Option<String> {
    if parent.encryption.is_some() && parent.format_version < SEALED_FROM_FORMAT_VERSION {
        return Some(unsealed_parent(
            &parent.backup_id.to_string(),
            parent.format_version,
        ));
    }
    cluster_changed(parent, cluster_id)
}

/// Why the newest backup, `backup_id`, encrypted with a manifest of format `version` that
/// has no seal, is not continued.
pub(crate) fn unsealed_parent(backup_id: &str, version: u64) -> String {
    format!(
        "the newest backup, {backup_id}, has a format version {version} manifest, which is not sealed, so it cannot be trusted as a parent"
    )
}

/// Why no partition of `parent` can be continued on the cluster with `cluster_id`: it is
/// another cluster (or one restored under a new id). `None` when either id is unknown.
fn cluster_changed(parent: &Manifest, cluster_id: Option<&str>) -> Option<String> {
    let before = parent.source.cluster_id.as_deref()?;
    let now = cluster_id?;
    (before != now).then(|| {
        format!(
            "the cluster id changed from {before} (backup {}) to {now}, so its offsets may not continue that backup's",
            parent.backup_id
        )
    })
}

fn previous_of<'m>(parent: &'m Manifest, task: &PartitionTask) -> Option<&'m PartitionBackup> {
    parent
        .topic(&task.topic)
        .and_then(|t| t.partitions.iter().find(|p| p.partition == task.partition))
}

/// Moves each task's start to where `parent` ended and returns what the parent carries for
/// it (`None` for partitions the parent does not have, or whose offsets no longer continue
/// the parent's: they are read in full). `probes` are [`probe_requests`]' answers, by task. Gaps (records deleted between the parent and now)
/// and partitions backed up in full because their log was replaced are reported in `warnings`.
pub(crate) async fn continue_from(
    location: &Location,
    parent: &Manifest,
    encryption_key: Option<&EncryptionKey>,
    probes: &[Option<ProbeResult>],
    tasks: &mut [PartitionTask],
    warnings: &mut Vec<String>,
) -> Result<Vec<Option<Carried>>, Error> {
    let mut carried = Vec::with_capacity(tasks.len());
    for (index, task) in tasks.iter_mut().enumerate() {
        let Some(previous) = previous_of(parent, task) else {
            carried.push(None);
            continue;
        };
        let log_start = task.start_offset;
        let expected = last_record_digest(location, previous, log_start, encryption_key).await?;
        let probe = probes.get(index).and_then(Option::as_ref);
        if let Some(why) = log_replaced(parent, previous, task, probe, expected) {
            let warning = format!(
                "{}/{}: backed up in full from offset {log_start}: {why}, so its offsets do not continue backup {} (the topic was re-created or the cluster restored)",
                task.topic, task.partition, parent.backup_id
            );
            tracing::warn!("{warning}");
            warnings.push(warning);
            carried.push(None);
            continue;
        }
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
            gap: (log_start - previous.end_offset).max(0) as u64,
        }));
    }
    Ok(carried)
}

/// The digest of the parent's last stored record of a partition, when the log may still hold
/// it (at or above `log_start`): from its segment entry, or (older manifests) by reading it.
async fn last_record_digest(
    location: &Location,
    previous: &PartitionBackup,
    log_start: i64,
    encryption_key: Option<&EncryptionKey>,
) -> Result<Option<(i64, String)>, Error> {
    let Some(last) = previous
        .segments
        .last()
        .filter(|s| s.last_offset >= log_start)
    else {
        return Ok(None);
    };
    if let Some(digest) = &last.last_record_sha256 {
        return Ok(Some((last.last_offset, digest.clone())));
    }
    let decoded = read_segment(location, last, encryption_key).await?;
    let mut digest = None;
    for record in decoded.iter() {
        let record = record.map_err(|source| Error::Archive {
            key: last.key.clone(),
            source,
        })?;
        digest = Some((record.offset, record_digest(&record)));
    }
    Ok(digest)
}

/// Why a partition's log now is not the one `previous` backed up (`None`: it continues it).
/// (A changed cluster id is checked once for the whole backup, before this.)
/// `expected` is the parent's last stored record still due in the log, `probe` what the
/// cluster holds at that offset (or at the log start, when nothing is due).
fn log_replaced(
    parent: &Manifest,
    previous: &PartitionBackup,
    task: &PartitionTask,
    probe: Option<&ProbeResult>,
    expected: Option<(i64, String)>,
) -> Option<String> {
    if task.start_offset < previous.start_offset {
        return Some(format!(
            "its log start offset went down from {} to {}",
            previous.start_offset, task.start_offset
        ));
    }
    let probe = probe?;
    let end_now = probe.high_watermark.max(task.listed_end);
    if end_now < previous.end_offset {
        return Some(format!(
            "its log now ends at offset {end_now}, below offset {} where backup {} ended",
            previous.end_offset, parent.backup_id
        ));
    }
    let (offset, digest) = expected?;
    match &probe.record {
        Some((found, live)) if *found == offset && *live == digest => None,
        Some((found, _)) if *found == offset => Some(format!(
            "the record at offset {offset} is not the one backup {} holds there",
            parent.backup_id
        )),
        Some((found, _)) => Some(format!(
            "offset {offset}, backup {}'s last record, is no longer in the log (the next record is at offset {found}; compaction can do this too)",
            parent.backup_id
        )),
        None => Some(format!(
            "its log now ends at offset {}, at or below offset {offset}, backup {}'s last record",
            probe.high_watermark, parent.backup_id
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{
        ArchiveKind, BackupId, Compression, RecordRef, SegmentBuilder, SourceCluster,
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
            delta: None,
            chain_depth: 0,
        }
    }

    /// What the broker answers for a log that continues `stored_segment`'s records: the
    /// record at `offset` as stored, and the high watermark `end`.
    fn holding(offset: i64, end: i64) -> ProbeResult {
        let value = offset.to_string();
        let record = RecordRef {
            offset,
            timestamp: 1000 + offset,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            value: Some(value.as_bytes()),
            headers: vec![],
        };
        ProbeResult {
            high_watermark: end,
            record: Some((offset, record_digest(&record))),
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
        assert_eq!(
            probe_requests(&parent, &tasks)
                .iter()
                .map(|r| r.as_ref().map(|r| r.offset))
                .collect::<Vec<_>>(),
            vec![Some(199), None],
            "the parent's last record is probed; a new partition is not"
        );
        let probes = vec![Some(holding(199, 260)), None];
        let mut warnings = Vec::new();
        let carried = continue_from(&location, &parent, None, &probes, &mut tasks, &mut warnings)
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
        let requests = probe_requests(&parent, &tasks);
        assert_eq!(
            requests[0].as_ref().map(|r| r.offset),
            Some(130),
            "the parent's last record is gone: only the end is probed, at the log start"
        );
        let probes = vec![Some(holding(130, 180))];
        let mut warnings = Vec::new();
        let carried = continue_from(&location, &parent, None, &probes, &mut tasks, &mut warnings)
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

    /// Continues partition 0 of a parent holding offsets 0..200 (log start `parent_start`)
    /// against what the cluster answers now; returns the warnings, the new start offset and
    /// whether anything was carried.
    async fn continue_against(
        parent_start: i64,
        now: PartitionTask,
        probe: ProbeResult,
    ) -> (Vec<String>, i64, bool) {
        let location = Location::open("memory://", false).unwrap();
        let first = stored_segment(&location, 0..100).await;
        let second = stored_segment(&location, 100..200).await;
        let mut parent = parent(vec![first, second], 200);
        parent.topics[0].partitions[0].start_offset = parent_start;
        let mut tasks = vec![now];
        let mut warnings = Vec::new();
        let carried = continue_from(
            &location,
            &parent,
            None,
            &[Some(probe)],
            &mut tasks,
            &mut warnings,
        )
        .await
        .unwrap();
        (warnings, tasks[0].start_offset, carried[0].is_some())
    }

    #[tokio::test]
    async fn a_log_that_no_longer_continues_the_parent_is_backed_up_in_full() {
        let other_record = ProbeResult {
            high_watermark: 300,
            record: Some((199, "0".repeat(64))),
        };
        let cases = [
            // Re-created and refilled past the old end: same offsets, other records.
            (0, task(0, 0, 300), other_record, "is not the one backup"),
            // Restored with collapsed gaps: the log ends below where the parent ended.
            (
                0,
                task(0, 0, 120),
                ProbeResult {
                    high_watermark: 120,
                    record: None,
                },
                "ends at offset 120, below offset 200",
            ),
            // Retention had moved the log start to 50; now it starts at 0 again.
            (
                50,
                task(0, 0, 300),
                holding(199, 300),
                "went down from 50 to 0",
            ),
            // The parent's last record is gone from below the end (or compacted away).
            (
                0,
                task(0, 0, 300),
                holding(205, 300),
                "no longer in the log",
            ),
        ];
        for (parent_start, now, probe, expected) in cases {
            let (warnings, start, carried) = continue_against(parent_start, now, probe).await;
            assert_eq!(warnings.len(), 1, "{expected}: {warnings:?}");
            assert!(
                warnings[0].contains(expected)
                    && warnings[0].contains("backed up in full from offset 0"),
                "{warnings:?}"
            );
            assert_eq!((start, carried), (0, false), "{expected}");
        }
        // The same log, grown: continued, nothing re-read.
        let (warnings, start, carried) =
            continue_against(0, task(0, 0, 300), holding(199, 300)).await;
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!((start, carried), (200, true));
        // tansu's ListOffsets under-reports the end; the probe's watermark is the end.
        let (warnings, _, carried) = continue_against(0, task(0, 0, 150), holding(199, 200)).await;
        assert!(warnings.is_empty() && carried, "{warnings:?}");
    }

    #[test]
    fn another_cluster_id_is_named() {
        let mut parent = parent(vec![], 0);
        assert_eq!(cluster_changed(&parent, Some("b")), None, "unknown before");
        parent.source.cluster_id = Some("a".into());
        assert_eq!(cluster_changed(&parent, None), None, "unknown now");
        assert_eq!(cluster_changed(&parent, Some("a")), None);
        let why = cluster_changed(&parent, Some("b")).unwrap();
        assert!(
            why.contains("from a (backup 20261124T010000Z-000001) to b"),
            "{why}"
        );
    }
}
