//! The structural check of a parsed manifest: what must hold of it before any segment is
//! read (segments ordered, non-overlapping and within their partition's range; partition
//! numbers in range; topic names unique; keys as the layout builds them; sums that do not
//! overflow; sizes under the caps). Pure: the caller says how keys are built.

use std::collections::HashSet;
use std::fmt;

use super::{Compression, Manifest};

/// The largest `raw_bytes` a segment may declare: the largest `--segment-bytes` (1 GiB) plus
/// one record of up to 1 GiB (a segment is cut after the record that reaches the size). A
/// segment declaring more is refused before it is read (a decompression bomb).
pub(crate) const MAX_SEGMENT_RAW_BYTES: u64 = 2 << 30;

/// The largest manifest a reader accepts, in bytes. A manifest lists segments, not records,
/// so a real one is far below this.
pub(crate) const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// Whether `key` is the key the store's layout builds for the segment of `topic`/`partition`
/// starting at `first_offset` with `compression` (under whichever backup's prefix it names).
pub(crate) type KeyMatches<'a> = &'a dyn Fn(&str, &str, i32, i64, Compression) -> bool;

/// One thing structurally wrong with a manifest, naming where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StructureProblem {
    DuplicateTopic {
        topic: String,
    },
    PartitionOutOfRange {
        topic: String,
        partition: i32,
        partition_count: i32,
    },
    DuplicatePartition {
        topic: String,
        partition: i32,
    },
    SegmentOffsetsReversed {
        topic: String,
        partition: i32,
        key: String,
        first: i64,
        last: i64,
    },
    SegmentOverlaps {
        topic: String,
        partition: i32,
        key: String,
        first: i64,
        previous_last: i64,
    },
    SegmentOutsidePartition {
        topic: String,
        partition: i32,
        key: String,
        first: i64,
        last: i64,
        start: i64,
        end: i64,
    },
    KeyMismatch {
        topic: String,
        partition: i32,
        key: String,
        first: i64,
        compression: Compression,
    },
    SegmentTooLarge {
        topic: String,
        partition: i32,
        key: String,
        raw_bytes: u64,
    },
    SumOverflows {
        topic: String,
        partition: i32,
        what: &'static str,
    },
}

impl fmt::Display for StructureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use StructureProblem::*;
        match self {
            DuplicateTopic { topic } => write!(f, "topic {topic:?} is listed more than once"),
            PartitionOutOfRange { topic, partition, partition_count } => write!(
                f,
                "{topic}/{partition}: partition number outside 0..{partition_count} (the topic's partition_count)"
            ),
            DuplicatePartition { topic, partition } => {
                write!(f, "{topic}/{partition}: partition is listed more than once")
            }
            SegmentOffsetsReversed { topic, partition, key, first, last } => write!(
                f,
                "{topic}/{partition}: segment {key} has first_offset {first} above last_offset {last}"
            ),
            SegmentOverlaps { topic, partition, key, first, previous_last } => write!(
                f,
                "{topic}/{partition}: segment {key} starts at offset {first}, not after the previous segment's last offset {previous_last} (segments overlap or are out of order)"
            ),
            SegmentOutsidePartition { topic, partition, key, first, last, start, end } => write!(
                f,
                "{topic}/{partition}: segment {key} holds offsets {first}..={last}, outside the partition's range {start}..{end}"
            ),
            KeyMismatch { topic, partition, key, first, compression } => write!(
                f,
                "{topic}/{partition}: segment key {key} is not the key of this partition's {compression} segment starting at offset {first}"
            ),
            SegmentTooLarge { topic, partition, key, raw_bytes } => write!(
                f,
                "{topic}/{partition}: segment {key} declares {raw_bytes} raw bytes, above the largest allowed segment ({MAX_SEGMENT_RAW_BYTES})"
            ),
            SumOverflows { topic, partition, what } => write!(
                f,
                "{topic}/{partition}: the segments' {what} add up past 2^64"
            ),
        }
    }
}

/// Every structural problem of `manifest`, in manifest order; empty when it is sound.
/// A segment may begin below its partition's `start_offset` (an incremental backup carries
/// a parent's segment whose first records were since deleted), but must end inside
/// `start_offset..end_offset`.
pub(crate) fn check_manifest(
    manifest: &Manifest,
    key_matches: KeyMatches<'_>,
) -> Vec<StructureProblem> {
    use StructureProblem::*;
    let mut problems = Vec::new();
    let mut topics = HashSet::new();
    for topic in &manifest.topics {
        let name = &topic.name;
        if !topics.insert(name.as_str()) {
            problems.push(DuplicateTopic {
                topic: name.clone(),
            });
        }
        let mut partitions = HashSet::new();
        for partition in &topic.partitions {
            let number = partition.partition;
            if !(0..topic.partition_count).contains(&number) {
                problems.push(PartitionOutOfRange {
                    topic: name.clone(),
                    partition: number,
                    partition_count: topic.partition_count,
                });
            }
            if !partitions.insert(number) {
                problems.push(DuplicatePartition {
                    topic: name.clone(),
                    partition: number,
                });
            }
            let mut previous_last: Option<i64> = None;
            let (mut records, mut raw, mut stored) = (Some(0u64), Some(0u64), Some(0u64));
            for segment in &partition.segments {
                let key = || segment.key.clone();
                let (first, last) = (segment.first_offset, segment.last_offset);
                if first > last {
                    problems.push(SegmentOffsetsReversed {
                        topic: name.clone(),
                        partition: number,
                        key: key(),
                        first,
                        last,
                    });
                }
                if let Some(previous_last) = previous_last.filter(|&p| first <= p) {
                    problems.push(SegmentOverlaps {
                        topic: name.clone(),
                        partition: number,
                        key: key(),
                        first,
                        previous_last,
                    });
                }
                if !partition.holds(last) || last >= partition.end_offset {
                    problems.push(SegmentOutsidePartition {
                        topic: name.clone(),
                        partition: number,
                        key: key(),
                        first,
                        last,
                        start: partition.start_offset,
                        end: partition.end_offset,
                    });
                }
                if !key_matches(&segment.key, name, number, first, segment.compression) {
                    problems.push(KeyMismatch {
                        topic: name.clone(),
                        partition: number,
                        key: key(),
                        first,
                        compression: segment.compression,
                    });
                }
                if segment.raw_bytes > MAX_SEGMENT_RAW_BYTES {
                    problems.push(SegmentTooLarge {
                        topic: name.clone(),
                        partition: number,
                        key: key(),
                        raw_bytes: segment.raw_bytes,
                    });
                }
                records = records.and_then(|n| n.checked_add(segment.records));
                raw = raw.and_then(|n| n.checked_add(segment.raw_bytes));
                stored = stored.and_then(|n| n.checked_add(segment.stored_bytes));
                previous_last = Some(last);
            }
            for (sum, what) in [
                (records, "records"),
                (raw, "raw_bytes"),
                (stored, "stored_bytes"),
            ] {
                if sum.is_none() {
                    problems.push(SumOverflows {
                        topic: name.clone(),
                        partition: number,
                        what,
                    });
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{
        ArchiveKind, BackupId, PartitionBackup, SegmentRef, SourceCluster, TopicBackup, Totals,
        FORMAT_VERSION,
    };

    fn key_of(topic: &str, partition: i32, first: i64, compression: Compression) -> String {
        format!("k/{topic}/{partition}/{first}.{compression}")
    }

    fn matches(key: &str, topic: &str, partition: i32, first: i64, c: Compression) -> bool {
        key == key_of(topic, partition, first, c)
    }

    fn segment(topic: &str, partition: i32, first: i64, last: i64) -> SegmentRef {
        SegmentRef {
            key: key_of(topic, partition, first, Compression::Zstd),
            compression: Compression::Zstd,
            first_offset: first,
            last_offset: last,
            records: (last - first + 1) as u64,
            raw_bytes: 100,
            stored_bytes: 50,
            sha256: String::new(),
            first_timestamp: None,
            last_timestamp: None,
            min_timestamp: None,
            max_timestamp: None,
            last_record_sha256: None,
        }
    }

    fn partition(topic: &str, number: i32, ranges: &[(i64, i64)]) -> PartitionBackup {
        let segments: Vec<SegmentRef> = ranges
            .iter()
            .map(|&(a, b)| segment(topic, number, a, b))
            .collect();
        PartitionBackup {
            partition: number,
            start_offset: 0,
            end_offset: 100,
            high_watermark: 100,
            records: segments.iter().map(|s| s.records).sum(),
            raw_bytes: 0,
            stored_bytes: 0,
            first_timestamp: None,
            last_timestamp: None,
            segments,
        }
    }

    fn topic(name: &str, partitions: Vec<PartitionBackup>) -> TopicBackup {
        TopicBackup {
            name: name.into(),
            internal: false,
            partition_count: 2,
            replication_factor: 1,
            configs: vec![],
            partitions,
        }
    }

    fn manifest(topics: Vec<TopicBackup>) -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            kind: ArchiveKind::Logical,
            backup_id: BackupId::parse("20261125T145443Z-3f9a1c").unwrap(),
            parent: None,
            started_at: String::new(),
            finished_at: String::new(),
            tool_version: String::new(),
            source: SourceCluster {
                bootstrap_servers: String::new(),
                cluster_id: None,
                brokers: vec![],
            },
            compression: Compression::Zstd,
            compression_level: 3,
            segment_bytes: 1 << 20,
            encryption: None,
            topics,
            groups: vec![],
            totals: Totals::default(),
            warnings: vec![],
            sharding: None,
            delta: None,
            chain_depth: 0,
        }
    }

    fn problems_of(m: &Manifest) -> Vec<String> {
        check_manifest(m, &matches)
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn a_sound_manifest_has_no_problems() {
        let m = manifest(vec![topic(
            "t",
            vec![
                partition("t", 0, &[(0, 9), (10, 19)]),
                partition("t", 1, &[]),
            ],
        )]);
        assert!(problems_of(&m).is_empty());
    }

    #[test]
    fn overlapping_and_out_of_order_segments_are_named() {
        let m = manifest(vec![topic(
            "t",
            vec![partition("t", 0, &[(0, 9), (5, 19)])],
        )]);
        let problems = check_manifest(&m, &matches);
        assert!(matches!(
            problems.as_slice(),
            [StructureProblem::SegmentOverlaps {
                previous_last: 9,
                first: 5,
                partition: 0,
                ..
            }]
        ));
        assert!(problems[0]
            .to_string()
            .starts_with("t/0: segment k/t/0/5.zstd"));
    }

    #[test]
    fn partition_numbers_topics_and_ranges_are_checked() {
        let mut outside = partition("t", 1, &[(90, 120)]);
        outside.end_offset = 100;
        let m = manifest(vec![
            topic("t", vec![partition("t", 2, &[]), outside]),
            topic("t", vec![partition("t", 0, &[]), partition("t", 0, &[])]),
        ]);
        let problems = check_manifest(&m, &matches);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(matches!(
            problems[0],
            StructureProblem::PartitionOutOfRange { partition: 2, .. }
        ));
        assert!(matches!(
            problems[1],
            StructureProblem::SegmentOutsidePartition { last: 120, .. }
        ));
        assert!(matches!(
            problems[2],
            StructureProblem::DuplicateTopic { .. }
        ));
        assert!(matches!(
            problems[3],
            StructureProblem::DuplicatePartition { partition: 0, .. }
        ));
    }

    #[test]
    fn a_key_of_another_partition_is_refused() {
        let mut p = partition("t", 0, &[(0, 9)]);
        p.segments[0].key = key_of("t", 1, 0, Compression::Zstd);
        let m = manifest(vec![topic("t", vec![p])]);
        assert_eq!(
            problems_of(&m),
            ["t/0: segment key k/t/1/0.zstd is not the key of this partition's zstd segment starting at offset 0"]
        );
    }

    #[test]
    fn bombs_and_overflowing_sums_are_refused() {
        let mut p = partition("t", 0, &[(0, 9), (10, 19)]);
        p.segments[0].raw_bytes = MAX_SEGMENT_RAW_BYTES + 1;
        p.segments[0].records = u64::MAX;
        let m = manifest(vec![topic("t", vec![p])]);
        let problems = check_manifest(&m, &matches);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(matches!(
            problems[0],
            StructureProblem::SegmentTooLarge { .. }
        ));
        assert!(matches!(
            problems[1],
            StructureProblem::SumOverflows {
                what: "records",
                ..
            }
        ));
    }

    #[test]
    fn a_carried_segment_may_begin_below_start_offset() {
        let mut p = partition("t", 0, &[(0, 9), (10, 19)]);
        p.start_offset = 5;
        let m = manifest(vec![topic("t", vec![p])]);
        assert!(problems_of(&m).is_empty());
    }
}
