//! Compaction of a follower's small segments. Every checkpoint seals one segment per partition
//! that received records, however few, and those stay in every later checkpoint while their
//! records are in the cluster's log; so a checkpoint that lists every segment (one in
//! `--full-every`) first rewrites each run of small segments it carries into segments of
//! about `segment_bytes`, under its own prefix. The segment count then grows with the data,
//! not with the number of checkpoints, and the old small segments are freed by prune once no
//! kept checkpoint lists them (docs/FORMAT.md, "Delta manifests").

use crate::archive::{EncryptionKey, SegmentRef, TopicBackup};
use crate::read::read_segment;
use crate::store::backup_of_key;
use crate::write::{SegmentCutter, SegmentWriter};
use crate::Error;

/// A carried segment below this share of `segment_bytes` is small.
const SMALL_DIVISOR: u64 = 2;

/// What a compaction did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Compacted {
    pub(super) segments_read: u64,
    pub(super) segments_written: u64,
}

/// Rewrites every run of two or more consecutive small segments that `topics` carry from
/// earlier backups into segments of about `segment_bytes`, stored by `writer` (this backup's),
/// and puts them in the runs' place. Records below a partition's `start_offset` (deleted from
/// the cluster since) are left out. Each partition's byte sums follow; its records, offsets and
/// timestamps do not change.
pub(super) async fn compact_small_segments(
    writer: &SegmentWriter,
    topics: &mut [TopicBackup],
    segment_bytes: u64,
    encryption_key: Option<&EncryptionKey>,
) -> Result<Compacted, Error> {
    let own = &writer.backup_id;
    let small = |s: &SegmentRef| {
        s.raw_bytes < segment_bytes / SMALL_DIVISOR && backup_of_key(&s.key).as_ref() != Some(own)
    };
    let mut done = Compacted::default();
    for topic in topics.iter_mut() {
        for partition in &mut topic.partitions {
            let runs = small_runs(&partition.segments, small);
            if runs.is_empty() {
                continue;
            }
            // From the last run back, so the earlier runs' positions stay valid.
            for (from, to) in runs.into_iter().rev() {
                let run = &partition.segments[from..to];
                let merged = merge(
                    writer,
                    &topic.name,
                    partition.partition,
                    partition.start_offset,
                    run,
                    encryption_key,
                )
                .await?;
                done.segments_read += run.len() as u64;
                done.segments_written += merged.len() as u64;
                partition.segments.splice(from..to, merged);
            }
            partition.raw_bytes = partition.segments.iter().map(|s| s.raw_bytes).sum();
            partition.stored_bytes = partition.segments.iter().map(|s| s.stored_bytes).sum();
        }
    }
    Ok(done)
}

/// The `[from, to)` ranges of two or more consecutive segments that `small` picks.
fn small_runs(segments: &[SegmentRef], small: impl Fn(&SegmentRef) -> bool) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (index, segment) in segments.iter().enumerate() {
        match (small(segment), start) {
            (true, None) => start = Some(index),
            (false, Some(from)) => {
                if index - from >= 2 {
                    runs.push((from, index));
                }
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start.filter(|&from| segments.len() - from >= 2) {
        runs.push((from, segments.len()));
    }
    runs
}

/// The records of `run` (at or above `start_offset`), cut anew into segments and stored.
async fn merge(
    writer: &SegmentWriter,
    topic: &str,
    partition: i32,
    start_offset: i64,
    run: &[SegmentRef],
    encryption_key: Option<&EncryptionKey>,
) -> Result<Vec<SegmentRef>, Error> {
    let mut cutter = SegmentCutter::new(&writer.buffers);
    let mut sealed = Vec::new();
    for entry in run {
        let decoded = read_segment(&writer.location, entry, encryption_key).await?;
        for record in decoded.iter() {
            let record = record.map_err(|source| Error::Archive {
                key: entry.key.clone(),
                source,
            })?;
            if record.offset < start_offset {
                continue;
            }
            let (_, full) = cutter.push(|segment| segment.push_record(&record));
            sealed.extend(full);
        }
    }
    sealed.extend(cutter.finish());
    let mut stored = Vec::with_capacity(sealed.len());
    for segment in sealed {
        stored.push(writer.store(topic.to_string(), partition, segment).await?);
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Compression;

    fn segment(raw_bytes: u64) -> SegmentRef {
        SegmentRef {
            key: String::new(),
            compression: Compression::Zstd,
            first_offset: 0,
            last_offset: 0,
            records: 1,
            raw_bytes,
            stored_bytes: 1,
            sha256: String::new(),
            first_timestamp: None,
            last_timestamp: None,
            min_timestamp: None,
            max_timestamp: None,
            last_record_sha256: None,
        }
    }

    #[test]
    fn runs_are_two_or_more_small_segments_in_a_row() {
        let sizes = [1, 1, 100, 1, 100, 1, 1, 1];
        let segments: Vec<SegmentRef> = sizes.iter().map(|&s| segment(s)).collect();
        assert_eq!(
            small_runs(&segments, |s| s.raw_bytes < 10),
            vec![(0, 2), (5, 8)]
        );
        assert!(small_runs(&segments[2..5], |s| s.raw_bytes < 10).is_empty());
    }
}
